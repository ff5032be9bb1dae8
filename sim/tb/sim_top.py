"""The simulation top: the fabric with host engines around it, so that no Python runs per cycle.

Simulation only (it lives in ``sim/``, never in the RTL packages). :class:`SimTop` instantiates the
fabric top (the Verilog module :meth:`fabric.array.FabricParams.name` from
:func:`fabric.array.emit_verilog`, by name) and adds, as the WSE's edge I/O channels stream a
memcpy:

* per host input port ``p`` (``n{j}``, ``s{j}``, ``w{i}``, ``e{i}``) a **source engine**: a ring
  of queued wavelets in memory ``src_{p}_mem`` (38-bit words, :func:`sim.model.wavelet.pack`
  layout), written by the host up to ``src_{p}_wr`` and sent in order; the head is offered only
  while its colour's ``color_ready`` bit is set (a colour at or above ``num_colors`` is always
  offered: the receiver drops it), so every offer is taken in the cycle it is made;
* per host output port a **sink engine**: every wavelet leaving the port is captured into the
  ring ``snk_{p}_mem`` (behind routers with registered outputs, ``output_register``, it takes
  whatever arrives, sent on its credit of the cycle before, and keeps a place for it);
  ``snk_{p}_wr`` counts them (free-running), the host frees space by advancing
  ``snk_{p}_rd``; ``pause`` (0..15) makes every sink refuse that many sixteenths of the
  cycles, from a per-port LFSR (backpressure for tests);
* a **chain feeder** streaming the ring ``chq_mem`` (32-bit configuration words) into
  ``chain_in``, and a **chain sink** capturing ``chain_out`` into ``chc_mem`` and counting
  complete READ answers (``answers``; packet lengths as
  :attr:`sim.host.packets.ChainHeader.body_words`);
* a cycle counter and run control.

Counters are 32-bit and free-running; a ring of depth ``D`` holds the word with counter value
``n`` at index ``n mod D``; "reached" compares wrap-safely (the sign of the 32-bit difference).

Run control. The host writes the counters, ``mode``, ``settle`` and ``limit``, then changes
``start_seq``: the engines run (``running``) from the second cycle on (every host input is
registered once), and ``run_cycles`` counts from zero. The top stops itself (``running``
falls, ``stopped`` rises, ``reason`` says why, as ``STOP_*`` bits) when

* ``STOP_DONE``: for ``settle`` consecutive cycles the chain feeder was empty, ``answers``
  reached ``answers_target``, every sink reached its ``snk_{p}_target`` and, in run mode
  (``mode`` = 1), every source was empty and the fabric idle;
* ``STOP_ERROR``: the fabric's ``error`` line is high (run mode only);
* ``STOP_LIMIT``: ``run_cycles`` reached ``limit``;
* ``STOP_FULL``: a sink ring (or the chain capture) is full: the host must read it out;
* ``STOP_REFILL``: a source (or the chain feeder) whose ``*_more`` bit is set ran empty;
* ``STOP_CHECK``: a link check failed (see below).

While stopped, no engine offers or accepts anything.

Checks (sticky bits of ``checks``, in :meth:`SimTop.check_names` order): a source offered a colour
whose ``color_ready`` was set and the fabric did not take it (``ready`` low); the fabric offered
a wavelet at a host output while the sink's ``color_ready`` for its colour was low, or dropped or
changed an offer that was not taken (stream rule); the same stream rule at ``chain_out``; and,
on a 4-state simulator, while the engines run, an X or Z on any valid or offered payload, on
``idle`` or on ``error`` (from a small Verilog module, :data:`XCHECK_VERILOG`, which prints the
vector once; always clear on Verilator).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal, Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from fabric.array import Fabric, FabricParams
from hdl.refused import mark_unused
from hdl.wavelet import COLOR_BITS, DATA_BITS

__all__ = ["EngineParams", "SimTop", "host_ports", "STOP_DONE", "STOP_ERROR", "STOP_LIMIT",
           "STOP_FULL", "STOP_REFILL", "STOP_CHECK", "STOP_NAMES", "XCHECK_VERILOG",
           "sim_top_verilog", "SIM_TOP"]

STOP_DONE, STOP_ERROR, STOP_LIMIT, STOP_FULL, STOP_REFILL, STOP_CHECK = 1, 2, 4, 8, 16, 32
STOP_NAMES = {STOP_DONE: "done", STOP_ERROR: "error", STOP_LIMIT: "limit", STOP_FULL: "full",
              STOP_REFILL: "refill", STOP_CHECK: "check"}

#: Name of the simulation top module.
SIM_TOP = "wafer_sim_top"

WAVELET_BITS = DATA_BITS + COLOR_BITS + 1

#: A checker for X/Z on a vector (4-state simulators); a constant 0 under Verilator.
XCHECK_VERILOG = """\
module wafer_xcheck #(parameter WIDTH = 1) (input clk, input rst, input [WIDTH-1:0] data,
                                             output reg seen);
`ifdef VERILATOR
  always @(posedge clk) seen <= 1'b0;
`else
  initial seen = 1'b0;
  always @(posedge clk)
    if (rst) seen <= 1'b0;
    else if ((^data) === 1'bx) begin
      if (!seen) $display("wafer_xcheck: X or Z at %0t in %b", $time, data);
      seen <= 1'b1;
    end
`endif
endmodule
"""


@dataclass(frozen=True)
class EngineParams:
    """Sizes of the host engines' memories (each a power of two).

    Attributes
    ----------
    queue_words : int
        Wavelets per source ring (per host input port).
    capture_words : int
        Wavelets per sink ring (per host output port).
    chain_words : int
        Configuration words in the chain feeder's ring.
    chain_capture_words : int
        Words in the chain sink's ring.

    Raises
    ------
    ValueError
        If a size is not a power of two between 2 and 2**20.
    """

    queue_words: int = 1024
    capture_words: int = 1024
    chain_words: int = 4096
    chain_capture_words: int = 4096

    def __post_init__(self):
        for name in ("queue_words", "capture_words", "chain_words", "chain_capture_words"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 2 or v > 1 << 20 or v & (v - 1):
                raise ValueError(f"{name} must be a power of two from 2 to 2**20, not {v!r}")


def host_ports(params: FabricParams) -> list[str]:
    """Host port names in the fabric's order: ``n{j}``, ``s{j}`` per logical column, then
    ``w{i}``, ``e{i}`` per logical row."""
    ports = [f"{e}{j}" for j in range(params.cols) for e in ("n", "s")]
    return ports + [f"{e}{i}" for i in range(params.rows) for e in ("w", "e")]


def _reached(count: Value, target: Value) -> Value:
    """``count >= target`` for free-running 32-bit counters (sign of the difference)."""
    return ~(count - target)[31]


class SimTop(wiring.Component):
    """The fabric and its host engines (see the module docstring for the protocol).

    Parameters
    ----------
    params : FabricParams
    engines : EngineParams, optional
    fabric : wiring.Component, optional
        An Amaranth stand-in with the signature of :class:`fabric.array.Fabric` (for testing the
        engines in Amaranth's simulator); default: the fabric module, by name (``Instance``).

    Members
    -------
    start_seq : ``In(8)``
        A change starts the engines from the next cycle.
    mode : ``In(1)``
        1 = a run (wait for the sources and an idle fabric, stop on ``error``), 0 = chain only.
    settle : ``In(16)``
        Cycles the done condition must hold (at least 1).
    limit : ``In(32)``
        Stop after this many running cycles.
    pause : ``In(4)``
        Sink backpressure, in sixteenths of the cycles.
    src_more, chq_more : ``In(ports)``, ``In(1)``
        The host has more to queue: stop when the source (feeder) runs empty.
    src_{p}_wr, snk_{p}_rd, snk_{p}_target, chq_wr, chc_rd, answers_target : ``In(32)``
    src_{p}_rd, snk_{p}_wr, chq_rd, chc_wr, answers, run_cycles : ``Out(32)``
    running, stopped : ``Out(1)``
    reason : ``Out(8)``
        ``STOP_*`` bits of the last stop.
    checks : ``Out(2 * ports + 2)``
        Sticky link-check failures (:meth:`check_names`).
    idle, error, tile_idle, fault_modes
        The fabric's, passed through.
    """

    def __init__(self, params: FabricParams, engines: EngineParams | None = None,
                 fabric: wiring.Component | None = None):
        self.params = params
        self._fabric = fabric
        #: The engines' memories by name (``src_n0_mem``, ...), once elaborated.
        self.memories: dict[str, memory.Memory] = {}
        self.engines = engines or EngineParams()
        self.ports = host_ports(params)
        R, P = params.rows, params.physical_cols
        members = {
            "start_seq": In(8), "mode": In(1), "settle": In(16), "limit": In(32),
            "pause": In(4), "src_more": In(len(self.ports)), "chq_more": In(1),
            "running": Out(1), "stopped": Out(1), "reason": Out(8), "run_cycles": Out(32),
            "checks": Out(2 * len(self.ports) + 2),
            "chq_wr": In(32), "chq_rd": Out(32), "chc_wr": Out(32), "chc_rd": In(32),
            "answers": Out(32), "answers_target": In(32),
            "idle": Out(1), "error": Out(1), "tile_idle": Out(R * P),
        }
        for p in self.ports:
            members[f"src_{p}_wr"] = In(32)
            members[f"src_{p}_rd"] = Out(32)
            members[f"snk_{p}_wr"] = Out(32)
            members[f"snk_{p}_rd"] = In(32)
            members[f"snk_{p}_target"] = In(32)
        if params.fault_injection:
            members["fault_modes"] = In(2 * R * P)
        super().__init__(members)

    def check_names(self) -> list[str]:
        """What each bit of ``checks`` means, LSB first."""
        names = [f"{p}_in: an offered wavelet whose colour had color_ready set was not taken"
                 for p in self.ports]
        names += [f"{p}_out: valid without color_ready for its colour, or an untaken offer "
                  f"dropped or changed" for p in self.ports]
        return names + ["chain_out: an untaken word dropped or changed",
                        "X or Z on a valid or an offered payload"]

    def elaborate(self, platform):
        m = Module()
        prm, eng = self.params, self.engines
        # Every host input is registered: no combinational path from the top's ports, so a
        # simulator evaluation without a clock edge costs nothing (Verilator re-evaluates the
        # logic fed by top-level inputs on every evaluation). The host writes only while the
        # engines are stopped, and the start (``start_seq``) is delayed like everything else.
        host: dict[str, Signal] = {}
        for name, member in self.signature.members.items():
            if member.flow == In:
                host[name] = Signal(member.shape, name=f"{name}_q")
                m.d.sync += host[name].eq(getattr(self, name))
        fab: dict[str, Value] = {}
        if self._fabric is not None:
            m.submodules.fabric = self._fabric
            for path, _, value in self._fabric.signature.flatten(self._fabric):
                fab["__".join(str(x) for x in path)] = Value.cast(value)
        else:
            template = Fabric(prm)
            mark_unused(template)
            conns = {}
            for path, member, value in template.signature.flatten(template):
                name = "__".join(str(x) for x in path)
                sig = Signal(len(Value.cast(value)), name=f"fabric__{name}")
                fab[name] = sig
                conns[("i_" if member.flow == In else "o_") + name] = sig
            m.submodules.fabric = Instance(prm.name(), i_clk=ClockSignal(),
                                           i_rst=ResetSignal(), **conns)
        m.d.comb += [self.idle.eq(fab["idle"]), self.error.eq(fab["error"]),
                     self.tile_idle.eq(fab["tile_idle"])]
        if prm.fault_injection:
            m.d.comb += fab["fault_modes"].eq(host["fault_modes"])

        # ---- run control -----------------------------------------------------------------
        running = Signal()
        seq_seen = Signal(8)
        hold = Signal(16)
        start = Signal()
        m.d.comb += [start.eq(host["start_seq"] != seq_seen), self.running.eq(running),
                     self.stopped.eq(~running)]
        checks = []  # sticky check bits
        done_terms, src_empty, stop_terms = [], [], {}

        def stop_when(reason: int, cond):
            stop_terms.setdefault(reason, []).append(cond)

        # ---- sources ---------------------------------------------------------------------
        offered = []  # (valid, payload) of every stream this top checks for X
        for k, p in enumerate(self.ports):
            link = {f: fab[f"{p}_in__{f}"] for f in ("payload", "valid", "ready", "color_ready")}
            mem = memory.Memory(shape=WAVELET_BITS, depth=eng.queue_words, init=[])
            m.submodules[f"src_{p}_mem"] = mem
            self.memories[f"src_{p}_mem"] = mem
            rp = mem.read_port(domain="comb")
            rd = Signal(32, name=f"src_{p}_rd_q")
            wr = host[f"src_{p}_wr"]
            m.d.comb += [rp.addr.eq(rd), getattr(self, f"src_{p}_rd").eq(rd)]
            color = rp.data[DATA_BITS:DATA_BITS + COLOR_BITS]
            nonempty = rd != wr
            colour_ok = link["color_ready"].bit_select(color, 1)
            if prm.num_colors < 1 << COLOR_BITS:
                colour_ok = colour_ok | (color >= prm.num_colors)
            valid = Signal(name=f"src_{p}_valid")
            m.d.comb += [valid.eq(running & nonempty & colour_ok), link["valid"].eq(valid),
                         link["payload"].eq(rp.data)]
            with m.If(valid & link["ready"]):
                m.d.sync += rd.eq(rd + 1)
            bad = Signal(name=f"src_{p}_bad")
            with m.If(valid & ~link["ready"]):
                m.d.sync += bad.eq(1)
            checks.append(bad)
            src_empty.append(~nonempty)
            stop_when(STOP_REFILL, ~nonempty & host["src_more"][k])
        # ---- sinks -----------------------------------------------------------------------
        sink_bad = []
        for k, p in enumerate(self.ports):
            link = {f: fab[f"{p}_out__{f}"] for f in ("payload", "valid", "ready", "color_ready")}
            mem = memory.Memory(shape=WAVELET_BITS, depth=eng.capture_words, init=[])
            m.submodules[f"snk_{p}_mem"] = mem
            self.memories[f"snk_{p}_mem"] = mem
            wp = mem.write_port()
            wr = Signal(32, name=f"snk_{p}_wr_q")
            rd, target = host[f"snk_{p}_rd"], host[f"snk_{p}_target"]
            full = Signal(name=f"snk_{p}_full")
            # Behind registered outputs a place is kept for the wavelet in the output register.
            room = eng.capture_words - int(prm.output_register)
            m.d.comb += [full.eq((wr - rd)[:32] >= room),
                         getattr(self, f"snk_{p}_wr").eq(wr)]
            lfsr = Signal(16, init=(0xACE1 + 0x1D3 * k) & 0xFFFF or 1, name=f"snk_{p}_lfsr")
            m.d.sync += lfsr.eq(Mux(lfsr[0], (lfsr >> 1) ^ 0xB400, lfsr >> 1))  # Galois LFSR
            paused = lfsr[:4] < host["pause"]
            accepting = Signal(name=f"snk_{p}_accepting")
            m.d.comb += [accepting.eq(running & ~full & ~paused),
                         link["color_ready"].eq(accepting.replicate(prm.num_colors))]
            bad = Signal(name=f"snk_{p}_bad")
            if prm.output_register:
                # What arrives was sent on the credit of the cycle before: take it, whatever
                # this cycle's credit (a stop or a pause withdraws credit for later cycles).
                credit_before = Signal(name=f"snk_{p}_credit_before")
                m.d.sync += credit_before.eq(accepting)
                take = link["valid"]
                m.d.comb += link["ready"].eq(1)
                with m.If(link["valid"] & ~credit_before):
                    m.d.sync += bad.eq(1)
            else:
                take = link["valid"] & accepting
                m.d.comb += link["ready"].eq(accepting)
                # Stream rule: an offer that was not taken stays, unchanged.
                was_stalled = Signal(name=f"snk_{p}_stalled")
                last = Signal(WAVELET_BITS, name=f"snk_{p}_last")
                m.d.sync += [was_stalled.eq(link["valid"] & ~accepting),
                             last.eq(link["payload"])]
                with m.If((link["valid"] & ~accepting)
                          | (was_stalled & (~link["valid"] | (link["payload"] != last)))):
                    m.d.sync += bad.eq(1)
            m.d.comb += [wp.addr.eq(wr), wp.data.eq(link["payload"]), wp.en.eq(take)]
            with m.If(take):
                m.d.sync += wr.eq(wr + 1)
            sink_bad.append(bad)
            done_terms.append(_reached(wr, target))
            stop_when(STOP_FULL, full)
            offered.append((link["valid"], link["payload"]))
        checks += sink_bad

        # ---- chain feeder and chain sink ---------------------------------------------------
        chq = memory.Memory(shape=32, depth=eng.chain_words, init=[])
        m.submodules.chq_mem = self.memories["chq_mem"] = chq
        chq_rp = chq.read_port(domain="comb")
        chq_rd = Signal(32)
        chq_nonempty = chq_rd != host["chq_wr"]
        m.d.comb += [chq_rp.addr.eq(chq_rd), self.chq_rd.eq(chq_rd),
                     fab["chain_in__payload"].eq(chq_rp.data),
                     fab["chain_in__valid"].eq(running & chq_nonempty)]
        with m.If(running & chq_nonempty & fab["chain_in__ready"]):
            m.d.sync += chq_rd.eq(chq_rd + 1)
        stop_when(STOP_REFILL, ~chq_nonempty & host["chq_more"])
        done_terms.append(~chq_nonempty)

        chc = memory.Memory(shape=32, depth=eng.chain_capture_words, init=[])
        m.submodules.chc_mem = self.memories["chc_mem"] = chc
        chc_wp = chc.write_port()
        chc_wr = Signal(32)
        chc_full = (chc_wr - host["chc_rd"])[:32] == eng.chain_capture_words
        out_valid, out_word = fab["chain_out__valid"], fab["chain_out__payload"]
        chc_ready = Signal()
        m.d.comb += [chc_ready.eq(running & ~chc_full), fab["chain_out__ready"].eq(chc_ready),
                     self.chc_wr.eq(chc_wr)]
        chc_take = out_valid & chc_ready
        m.d.comb += [chc_wp.addr.eq(chc_wr), chc_wp.data.eq(out_word), chc_wp.en.eq(chc_take)]
        stop_when(STOP_FULL, chc_full)
        # READ answers: follow packet boundaries (header, then body_words more words).
        left = Signal(13)
        in_answer = Signal()
        answers = Signal(32)
        m.d.comb += self.answers.eq(answers)
        command, count = out_word[28:32], out_word[:12]
        with m.If(chc_take):
            m.d.sync += chc_wr.eq(chc_wr + 1)
            with m.If(left != 0):
                m.d.sync += left.eq(left - 1)
                with m.If((left == 1) & in_answer):
                    m.d.sync += [answers.eq(answers + 1), in_answer.eq(0)]
            with m.Else():
                is_rdata = command == 3  # Command.RDATA
                body = Signal(13)
                with m.Switch(command):
                    with m.Case(1):  # WRITE: address + count data words
                        m.d.comb += body.eq(count + 1)
                    with m.Case(3):  # RDATA: count data words
                        m.d.comb += body.eq(count)
                    with m.Default():  # READ, SHELL, anything else: one word
                        m.d.comb += body.eq(1)
                m.d.sync += [left.eq(body), in_answer.eq(is_rdata & (body != 0))]
                with m.If(is_rdata & (body == 0)):
                    m.d.sync += answers.eq(answers + 1)
        done_terms.append(_reached(answers, host["answers_target"]))
        chain_stalled = Signal()
        chain_last = Signal(32)
        chain_bad = Signal()
        m.d.sync += [chain_stalled.eq(out_valid & ~chc_ready), chain_last.eq(out_word)]
        with m.If(chain_stalled & (~out_valid | (out_word != chain_last))):
            m.d.sync += chain_bad.eq(1)
        checks.append(chain_bad)

        # ---- X check (4-state simulators) ----------------------------------------------------
        offered += [(fab[f"{p}_in__valid"], fab[f"{p}_in__payload"]) for p in self.ports]
        offered.append((fab["chain_out__valid"], fab["chain_out__payload"]))
        offered.append((fab["chain_in__valid"], fab["chain_in__payload"]))
        # Checked while the engines run (before the first configuration an unused output of
        # the unconfigured fabric may be X on a 4-state simulator).
        x_raw = Cat(*(Cat(v, p & v.replicate(len(p))) for v, p in offered),
                    fab["idle"], fab["error"])
        x_data = x_raw & running.replicate(len(x_raw))
        x_seen = Signal()
        if self._fabric is None:  # (Amaranth's simulator is 2-state and cannot run Verilog)
            m.submodules.xcheck = Instance("wafer_xcheck", p_WIDTH=len(x_data),
                                           i_clk=ClockSignal(), i_rst=ResetSignal(),
                                           i_data=x_data, o_seen=x_seen)
        checks.append(x_seen)
        check_bits = Signal(len(checks))
        m.d.comb += [check_bits.eq(Cat(*checks)), self.checks.eq(check_bits)]
        stop_when(STOP_CHECK, check_bits.any())

        # ---- done, stop, counters ------------------------------------------------------------
        done = Signal()
        m.d.comb += done.eq(Cat(*done_terms).all()
                            & (~host["mode"] | (Cat(*src_empty).all() & fab["idle"])))
        stop_when(STOP_DONE, done & (hold + 1 >= host["settle"]))
        stop_when(STOP_ERROR, host["mode"] & fab["error"])
        run_cycles = Signal(32)
        m.d.comb += self.run_cycles.eq(run_cycles)
        stop_when(STOP_LIMIT, run_cycles + 1 >= host["limit"])
        reason = Signal(8)
        m.d.comb += self.reason.eq(reason)
        now = Cat(*(Cat(*stop_terms.get(bit, [Const(0)])).any()
                    for bit in sorted(STOP_NAMES)))
        with m.If(start):
            m.d.sync += [seq_seen.eq(host["start_seq"]), running.eq(1), hold.eq(0), reason.eq(0),
                         run_cycles.eq(0)]
        with m.Elif(running):
            m.d.sync += [run_cycles.eq(run_cycles + 1),
                         hold.eq(Mux(done, hold + 1, 0))]
            with m.If(now.any()):
                m.d.sync += [running.eq(0), reason.eq(now)]
        return m


_MEMORY_INIT = re.compile(r"^  initial begin\n(?:    \w+\[\d+\] = [\d']+[hd][0-9a-f]+;\n)+  end\n",
                          re.M)


def sim_top_verilog(params: FabricParams, engines: EngineParams | None = None) -> str:
    """Verilog of :class:`SimTop` (module :data:`SIM_TOP`) and of the X checker. The fabric
    module it instantiates comes from :func:`fabric.array.emit_verilog`.

    The memories' all-zero ``initial`` blocks are left out (the simulator starts them at 0:
    ``--x-initial 0``), which keeps large rings from slowing the build.
    """
    from amaranth.back import verilog

    text = verilog.convert(SimTop(params, engines), name=SIM_TOP, emit_src=False)
    return _MEMORY_INIT.sub("", text) + XCHECK_VERILOG
