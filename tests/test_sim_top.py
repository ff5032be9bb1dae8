"""The host engines of the simulation top (sim/tb/sim_top.py) in Amaranth's simulator, around a
stand-in 1 x 1 fabric: colour-aware in-order sources, capturing sinks with backpressure, the chain
feeder and its READ-answer count, the stop reasons, and the sticky link checks."""

from __future__ import annotations

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.sim import Simulator

from fabric.array import Fabric, FabricParams
from hdl.refused import mark_unused
from sim.host.packets import BROADCAST, Command, header
from sim.model.wavelet import Wavelet, pack, unpack
from sim.tb.sim_top import (
    STOP_CHECK,
    STOP_DONE,
    STOP_FULL,
    STOP_LIMIT,
    STOP_REFILL,
    EngineParams,
    SimTop,
)

PARAMS = FabricParams(rows=1, cols=1, spares=0, sram_words=256, imem_words=64,
                      num_colors=8, num_tasks=12)
SMALL = EngineParams(queue_words=8, capture_words=8, chain_words=8, chain_capture_words=8)


class StubFabric(wiring.Component):
    """w0 -> e0 through a one-wavelet buffer (it takes a wavelet only when empty), n0 accepts
    only the colours in ``n0_colours`` and drops them; chain_in -> chain_out through one register.

    ``misbehave``: ``"ready"`` drops ``ready`` on n0 although ``color_ready`` is set;
    ``"valid"`` offers at e0 whatever the sink's ``color_ready``.
    """

    def __init__(self, n0_colours: int = 0xFF, misbehave: str | None = None):
        template = Fabric(PARAMS)
        mark_unused(template)
        self.n0_colours, self.misbehave = n0_colours, misbehave
        super().__init__(template.signature)

    def elaborate(self, platform):
        m = Module()
        nc = PARAMS.num_colors
        buf = Signal(38)
        full = Signal()
        w_in, e_out = self.w0_in, self.e0_out
        m.d.comb += [w_in.color_ready.eq((~full).replicate(nc)), w_in.ready.eq(~full)]
        color = buf[32:37]
        offer = full & (1 if self.misbehave == "valid" else e_out.color_ready.bit_select(color, 1))
        m.d.comb += [e_out.valid.eq(offer), e_out.payload.eq(buf)]
        with m.If(offer & e_out.ready):
            m.d.sync += full.eq(0)
        with m.If(w_in.valid & ~full):
            m.d.sync += [buf.eq(w_in.payload.as_value()), full.eq(1)]
        n_in = self.n0_in
        m.d.comb += n_in.color_ready.eq(self.n0_colours)
        if self.misbehave == "ready":
            m.d.comb += n_in.ready.eq(0)
        else:
            m.d.comb += n_in.ready.eq(n_in.color_ready.bit_select(n_in.payload.color, 1))
        word, valid = Signal(32), Signal()
        m.d.comb += [self.chain_in.ready.eq(~valid | self.chain_out.ready),
                     self.chain_out.payload.eq(word), self.chain_out.valid.eq(valid)]
        with m.If(self.chain_in.ready):
            m.d.sync += [word.eq(self.chain_in.payload), valid.eq(self.chain_in.valid)]
        m.d.comb += [self.idle.eq(~full), self.tile_idle.eq(~full)]
        return m


class Bench:
    """Drives the top's host side from an Amaranth testbench (as sim/tb/fabric_server.py does
    through cocotb)."""

    def __init__(self, ctx, top: SimTop):
        self.ctx, self.top, self.seq = ctx, top, 0
        self.written = {"chq_mem": 0}
        for p in top.ports:
            self.written[f"src_{p}_mem"] = 0

    def queue(self, name: str, words, depth: int) -> None:
        mem = self.top.memories[name]
        start = self.written[name]
        for k, w in enumerate(words):
            self.ctx.set(mem.data[(start + k) % depth], w)
        self.written[name] = start + len(words)
        port = "chq_wr" if name == "chq_mem" else name.replace("_mem", "_wr")
        self.ctx.set(getattr(self.top, port), self.written[name])

    def read(self, name: str, start: int, n: int, depth: int) -> list[int]:
        mem = self.top.memories[name]
        return [self.ctx.get(mem.data[(start + k) % depth]) for k in range(n)]

    async def stream(self, ring: str, words: list[int], capture: str, more, **go) -> list[int]:
        """Queue ``words`` into ``ring`` chunk by chunk as room appears (``more(flag)`` sets the
        ring's more bit) and run until done; everything captured in ``capture``."""
        ctx, top = self.ctx, self.top
        rd_port = "chq_rd" if ring == "chq_mem" else ring.replace("_mem", "_rd")
        cap_wr, cap_rd = ("chc_wr", "chc_rd") if capture == "chc_mem" else (
            capture.replace("_mem", "_wr"), capture.replace("_mem", "_rd"))
        depth, cap_depth = top.memories[ring].depth, top.memories[capture].depth
        got, pending, rd = [], list(words), 0
        while True:
            room = depth - (self.written[ring] - ctx.get(getattr(top, rd_port)))
            chunk, pending = pending[:room], pending[room:]
            self.queue(ring, chunk, depth)
            more(int(bool(pending)))
            reason = await self.go(**go)
            wr = ctx.get(getattr(top, cap_wr))
            got += self.read(capture, rd, wr - rd, cap_depth)
            rd = wr
            ctx.set(getattr(top, cap_rd), rd)
            if reason & STOP_DONE:
                return got
            assert reason & (STOP_FULL | STOP_REFILL), reason

    async def go(self, *, mode: int, settle: int = 3, limit: int = 1000) -> int:
        ctx, top = self.ctx, self.top
        ctx.set(top.mode, mode)
        ctx.set(top.settle, settle)
        ctx.set(top.limit, limit)
        self.seq += 1
        ctx.set(top.start_seq, self.seq)
        for _ in range(2):  # the start is registered, then seen
            await ctx.tick()
        assert ctx.get(top.running)
        while ctx.get(top.running):
            await ctx.tick()
        return ctx.get(top.reason)


def simulate(top: SimTop, bench_fn) -> None:
    sim = Simulator(top)
    sim.add_clock(1e-6)

    async def testbench(ctx):
        await bench_fn(Bench(ctx, top))

    sim.add_testbench(testbench)
    sim.run()


def test_wavelets_pass_in_order_with_backpressure_and_ring_refills():
    top = SimTop(PARAMS, SMALL, fabric=StubFabric())
    sent = [pack(Wavelet(100 + i, 1 + i % 3)) for i in range(20)]  # more than a ring holds

    async def bench(b):
        ctx = b.ctx
        ctx.set(top.pause, 8)  # the sink refuses half the cycles
        ctx.set(top.snk_e0_target, len(sent))
        bit = top.ports.index("w0")
        got = await b.stream("src_w0_mem", sent, "snk_e0_mem",
                             lambda more: ctx.set(top.src_more, more << bit), mode=1)
        assert got == sent
        assert ctx.get(top.checks) == 0

    simulate(top, bench)


def test_source_offers_its_head_only_when_that_colour_is_ready():
    # n0 takes colour 1 only: the colour-2 head waits (and so does the colour 1 behind it).
    top = SimTop(PARAMS, SMALL, fabric=StubFabric(n0_colours=0b10))

    async def bench(b):
        ctx = b.ctx
        b.queue("src_n0_mem", [pack(Wavelet(1, 1)), pack(Wavelet(2, 2)), pack(Wavelet(3, 1))],
                SMALL.queue_words)
        reason = await b.go(mode=1, limit=50)
        assert reason == STOP_LIMIT
        assert ctx.get(top.run_cycles) == 50  # running cycles, the stop cycle included
        assert ctx.get(top.src_n0_rd) == 1
        assert ctx.get(top.checks) == 0  # waiting is no violation

    simulate(top, bench)


@pytest.mark.parametrize("misbehave, port", [("ready", "n0_in"), ("valid", "e0_out")])
def test_link_checks_are_sticky_and_stop_the_run(misbehave, port):
    top = SimTop(PARAMS, SMALL, fabric=StubFabric(misbehave=misbehave))

    async def bench(b):
        ctx = b.ctx
        src = "src_n0_mem" if misbehave == "ready" else "src_w0_mem"
        b.queue(src, [pack(Wavelet(5, 1))], SMALL.queue_words)
        if misbehave == "valid":
            ctx.set(top.pause, 15)  # sink color_ready low nearly every cycle
            ctx.set(top.snk_e0_target, 1)
        reason = await b.go(mode=1, limit=200)
        assert reason & STOP_CHECK
        bits = ctx.get(top.checks)
        failed = [name for k, name in enumerate(top.check_names()) if bits >> k & 1]
        assert len(failed) == 1 and failed[0].startswith(port)

    simulate(top, bench)


def test_chain_feeder_counts_complete_read_answers():
    top = SimTop(PARAMS, SMALL, fabric=StubFabric())
    words = [header(Command.RDATA, 0, 0, 2), 11, 12,
             header(Command.WRITE, BROADCAST, BROADCAST, 1), 0x40, 7,
             header(Command.RDATA, 0, 0, 0),
             header(Command.READ, 0, 0, 3), 0x10]

    async def bench(b):
        ctx = b.ctx
        ctx.set(top.answers_target, 2)
        out = await b.stream("chq_mem", words, "chc_mem",
                             lambda more: ctx.set(top.chq_more, more), mode=0, settle=4)
        assert out == words
        assert ctx.get(top.answers) == 2

    simulate(top, bench)


def test_engine_sizes_are_checked():
    with pytest.raises(ValueError, match="queue_words must be a power of two"):
        EngineParams(queue_words=100)
    assert unpack(pack(Wavelet(1, 2, 1))) == Wavelet(1, 2, 1)
