"""Block tests in Amaranth's own simulator (no Verilator build): the arbiters and the per-colour
queue memory, each against a small Python model of its specification."""

import random
from collections import deque

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from hdl.arbiter import AtomicAllocator, RoundRobin
from hdl.color_queue import ColorQueues


def run(dut, testbench, *, extra=None):
    """Simulate ``dut`` (or a wrapping module) with one testbench on a clock."""
    sim = Simulator(extra if extra is not None else dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("delayed", [False, True])
def test_round_robin_serves_every_requester(delayed):
    """One-hot grants, only to requesters; a requester that keeps requesting waits for at most
    ``n - 1`` grants to others (``2n - 1`` with the delayed mask, which may serve one requester
    twice in a row)."""
    n = 6
    dut = RoundRobin(n, delayed=delayed)
    rng = random.Random(1)
    bound = 2 * n - 1 if delayed else n - 1

    async def bench(ctx):
        waiting = [0] * n
        for _ in range(600):
            req = rng.randrange(1, 1 << n)
            ctx.set(dut.requests, req)
            ctx.set(dut.advance, 1)
            grant = ctx.get(dut.grant)
            assert grant and grant & (grant - 1) == 0, f"grant {grant:b} is not one-hot"
            assert grant & req, f"grant {grant:b} outside requests {req:b}"
            for i in range(n):
                if not req >> i & 1 or grant >> i & 1:
                    waiting[i] = 0
                else:
                    waiting[i] += 1
                    assert waiting[i] <= bound, f"requester {i} waited {waiting[i]} grants"
            await ctx.tick()

    run(dut, bench)


def test_atomic_allocator_never_splits_a_multicast_and_always_progresses():
    """A requester goes only if it wins every output it asks for and no output serves two;
    whenever someone is ready, someone goes (the first in the shared order)."""
    inputs, outputs = 5, 5
    dut = AtomicAllocator(inputs, outputs)
    rng = random.Random(2)

    async def bench(ctx):
        waiting = [0] * inputs
        for _ in range(600):
            reqs = [rng.randrange(1 << outputs) if rng.random() < 0.8 else 0
                    for _ in range(inputs)]
            ready = [1] * inputs
            for p in range(inputs):
                ctx.set(dut.requests[p], reqs[p])
            ctx.set(dut.ready, sum(r << p for p, r in enumerate(ready)))
            go = ctx.get(dut.go)
            grants = [ctx.get(g) for g in dut.grants]
            for o in range(outputs):
                assert grants[o] & (grants[o] - 1) == 0, "an output grants two requesters"
            for p in range(inputs):
                mine = sum(1 << o for o in range(outputs) if grants[o] >> p & 1)
                if go >> p & 1:
                    assert mine == reqs[p], f"requester {p} went with only part of its outputs"
                else:
                    assert mine == 0, f"requester {p} holds an output without going"
            if any(reqs):
                assert go, f"no progress with requests {reqs}"
            for p in range(inputs):
                waiting[p] = 0 if (go >> p & 1 or not reqs[p]) else waiting[p] + 1
            await ctx.tick()

    run(dut, bench)


@pytest.mark.parametrize("storage, depth", [("lutram", 2), ("lutram", 3), ("bram", 2),
                                            ("bram", 3)])
def test_color_queues_keep_order_and_never_overflow(storage, depth):
    """Random arrivals on colours whose ``color_ready`` is set, random pops of nonempty
    colours: every wavelet comes out once, in order per colour, with its control bit; the
    occupancy and arrival outputs match a model of per-colour FIFOs; ``color_ready`` never
    promises room that is not there. With block-RAM storage the reader names its colour a
    cycle ahead and never one whose only other wavelet is the arrival being written."""
    colors = 5
    dut = ColorQueues(num_colors=colors, depth=depth, storage=storage)
    rng = random.Random(3)
    m = Module()
    m.submodules.dut = dut

    async def bench(ctx):
        model = {c: deque() for c in range(colors)}  # wavelets held, arrival register included
        serial = 0
        named = None  # bram: the colour named for this cycle
        last = None   # the colour that arrived last cycle (now in the arrival register)
        for _ in range(1500):
            cready = ctx.get(dut.link.color_ready)
            nonempty = ctx.get(dut.nonempty)
            arrival = ctx.get(dut.arrival_onehot)
            is_head = ctx.get(dut.arrival_is_head)
            assert arrival == (0 if last is None else 1 << last)
            assert is_head == (last is not None and len(model[last]) == 1)
            for c in range(colors):
                assert bool(nonempty >> c & 1) == bool(model[c]), (c, list(model[c]))
                assert ctx.get(dut.occupancy[c]) == len(model[c])
                if cready >> c & 1:
                    assert len(model[c]) < depth, f"colour {c} ready while full"
            # Pop a nonempty colour: any (LUT RAM), or the named one or the arrival when it is
            # its colour's head (block RAM).
            choices = [c for c in range(colors) if model[c]]
            if storage == "bram":
                choices = [c for c in choices if c == named or (is_head and c == last)]
            pop = rng.choice(choices) if choices and rng.random() < 0.6 else None
            ctx.set(dut.rd[0].pop, 0)
            if pop is not None:
                ctx.set(dut.rd[0].color, pop)
                ctx.set(dut.rd[0].onehot, 1 << pop)
                got = (ctx.get(dut.rd[0].data), ctx.get(dut.rd[0].ctrl))
                assert got == model[pop][0], f"colour {pop}: got {got}, want {model[pop][0]}"
                ctx.set(dut.rd[0].pop, 1)
            # Offer a wavelet of a colour that has room.
            offer = [c for c in range(colors) if cready >> c & 1]
            ctx.set(dut.link.valid, 0)
            sent = None
            if offer and rng.random() < 0.8:
                c = rng.choice(offer)
                serial += 1
                sent = (c, (serial * 2654435761) & 0xFFFF_FFFF, serial & 1)
                ctx.set(dut.link.payload, {"data": sent[1], "color": c, "ctrl": sent[2]})
                ctx.set(dut.link.valid, 1)
            if storage == "bram":
                # Name next cycle's colour: one holding a wavelet besides the one popped now
                # and the arrival being written now.
                spare = [c for c in range(colors)
                         if len(model[c]) > (pop == c) + (last == c)]
                named = rng.choice(spare) if spare else None
                ctx.set(dut.rd[0].next_color, named or 0)
            await ctx.tick()
            if pop is not None:
                model[pop].popleft()
            if sent is not None:
                model[sent[0]].append((sent[1], sent[2]))
            last = sent[0] if sent is not None else None

    run(dut, bench, extra=m)
