"""The range and drop filters of the PE's input queues, between the router's RAMP output and
the queues.

After the Cerebras SDK's colour filters (``@set_local_color_config(.., .{ .filter = ..})``):
each colour's input queue has a filter that selects *data* wavelets by their index, the upper
16 bits of the data word (:class:`hdl.wavelet.SparseWord`). Per colour, a mode
(:class:`pe.isa.FilterMode`) and inclusive bounds ``lo .. hi`` (:data:`pe.isa.FilterWord`):

* ``OFF``: every wavelet enters the queue (the state after configuration loads nothing);
* ``RANGE``: a wavelet enters only if ``lo <= index <= hi`` (a *range filter*: a PE keeps its
  slice of a broadcast vector);
* ``DROP``: a wavelet whose index is in ``lo .. hi`` is dropped, the others enter (a *drop
  filter*; with ``lo = 0, hi = 0xFFFF`` the colour is drained).

A dropped wavelet is taken from the link (it costs the link a cycle) and leaves no trace.
Control wavelets are never filtered and never enter the queues: the PE takes them off the link
(``docs/isa.md``, "Tasks").

Micro-architecture::

    link ──┬─> [stage register] ──────────────────────┬─> compare, mode ──> queues
           └─> bounds (LUT RAM, by colour) ─> [bounds] ┘

The filter table is a LUT RAM of ``num_colors`` bounds and a 2-bit mode per colour in
flip-flops (reset to ``OFF``). With ``registered`` (a transmitter whose link is the end of its
allocation: the router without output registers) the link is registered, and the bounds are
read at the arriving wavelet's colour into a register beside it, so the two 16-bit
comparisons start from flip-flops and no path runs from the router's allocation into the
queues' counters (the bounds read is one LUT RAM level after the link; the comparisons, the
longer part, come after the register). The mode is selected at the staged colour, in
parallel with the comparisons (selected at the arriving colour, its 24:1 mux lengthened the
tile's path from the router's allocation). Behind a router with output registers the link
already comes from flip-flops: the stage is combinational and the bounds are read at the staged
colour. Either way the queues see one wavelet in flight beyond the ``color_ready`` the router
saw (``ColorQueues(in_flight=1)``), so ``color_ready`` passes through unchanged and the queues
keep a place per colour for it.
"""

from amaranth.hdl import Array, Module, Mux, ResetInserter, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hdl.params import check_bool
from hdl.wavelet import (
    COLOR_BITS,
    DATA_BITS,
    LinkSignature,
    SparseWord,
    Wavelet,
    check_num_colors,
    ready_at,
)
from pe.isa import FilterMode, FilterModeWord, FilterWord

__all__ = ["InputFilter"]


class InputFilter(wiring.Component):
    """Per-colour range and drop filters in front of the PE's input queues.

    Parameters
    ----------
    num_colors : int
        Colours (1 to 32).
    registered : bool
        Register the link before the filter (default ``True``; ``False`` behind a transmitter
        that drives the link from an output register).

    Members
    -------
    link_in : ``In(LinkSignature(num_colors))``
        From the router's RAMP output. ``color_ready`` is the queues'; ``ready`` is that bit
        at the wavelet's colour (high for a control wavelet, which the PE takes itself, and
        for a colour beyond the queues, which they take and drop).
    link_out : ``Out(LinkSignature(num_colors))``
        To :class:`hdl.color_queue.ColorQueues` (``in_flight=1``): the data wavelets that pass.
    cfg_color : ``In(5)``
        Colour whose filter the configuration bus reads or writes.
    cfg_wdata : ``In(32)``
        Configuration word written.
    cfg_range_we, cfg_mode_we : ``In(1)``
        Write ``cfg_wdata`` as the colour's :data:`pe.isa.FilterWord` / its mode word.
    cfg_range : ``Out(32)``, cfg_mode : ``Out(32)``
        The colour's two words, read combinationally (for the PE's registered read-back).
    flush : ``In(1)``
        Drop the staged wavelet (the PE's CLEAR).
    dropped : ``Out(1)``
        A data wavelet was dropped by its filter this cycle.

    Raises
    ------
    TypeError, ValueError
        For a parameter of the wrong type or out of range.
    """

    def __init__(self, *, num_colors: int, registered: bool = True):
        self.num_colors = check_num_colors(num_colors)
        self.registered = check_bool("registered", registered)
        super().__init__({
            "link_in": In(LinkSignature(num_colors)),
            "link_out": Out(LinkSignature(num_colors)),
            "cfg_color": In(COLOR_BITS),
            "cfg_wdata": In(DATA_BITS),
            "cfg_range_we": In(1),
            "cfg_mode_we": In(1),
            "cfg_range": Out(DATA_BITS),
            "cfg_mode": Out(DATA_BITS),
            "flush": In(1),
            "dropped": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        C = self.num_colors
        link_in, link_out = self.link_in, self.link_out

        # ---- stage ------------------------------------------------------------------------
        valid = Signal()
        staged = Signal(Wavelet)
        if self.registered:
            stage = ResetInserter(self.flush)(Module())
            stage.d.sync += [valid.eq(link_in.valid), staged.eq(link_in.payload)]
            m.submodules.stage = stage
        else:
            m.d.comb += [valid.eq(link_in.valid & ~self.flush), staged.eq(link_in.payload)]

        # ---- filter table: bounds per colour in LUT RAM, modes in flip-flops -------------
        # (the modes are reset to OFF, so a colour nobody configured keeps every wavelet; the
        # bounds matter only under a mode that was written, so their memory is not reset)
        m.submodules.ranges = ranges = memory.Memory(shape=FilterWord, depth=C, init=[])
        range_wr = ranges.write_port()
        range_cfg = ranges.read_port(domain="comb")
        mode_bits = FilterModeWord["mode"].width
        modes = Array(Signal(mode_bits, name=f"mode_{c}") for c in range(C))
        for c in range(C):
            with m.If(self.cfg_mode_we & (self.cfg_color == c)):
                m.d.sync += modes[c].eq(FilterModeWord(self.cfg_wdata).mode)
        m.d.comb += [
            range_wr.addr.eq(self.cfg_color), range_wr.data.eq(self.cfg_wdata),
            range_wr.en.eq(self.cfg_range_we),
            range_cfg.addr.eq(self.cfg_color),
            self.cfg_range.eq(range_cfg.data.as_value()),
            self.cfg_mode.eq(modes[self.cfg_color]),
        ]
        mode = modes[staged.color]  # a few levels, beside the comparisons' carry chains
        if self.registered:  # the bounds read at the arriving colour, beside the stage
            range_rd = ranges.read_port(domain="sync")
            m.d.comb += range_rd.addr.eq(link_in.payload.color)
        else:
            range_rd = ranges.read_port(domain="comb")
            m.d.comb += range_rd.addr.eq(staged.color)

        # ---- compare ----------------------------------------------------------------------
        index = SparseWord(staged.data).index
        bounds = range_rd.data
        inside = Signal()
        m.d.comb += inside.eq((index >= bounds.lo) & (index <= bounds.hi))
        keep = Signal()
        m.d.comb += keep.eq(Mux(mode == FilterMode.RANGE, inside,
                                Mux(mode == FilterMode.DROP, ~inside, 1)))
        data_wavelet = valid & ~staged.ctrl
        m.d.comb += [
            link_out.valid.eq(data_wavelet & keep),
            link_out.payload.eq(staged),
            self.dropped.eq(data_wavelet & ~keep),
            link_in.color_ready.eq(link_out.color_ready),
        ]
        ready = ready_at(link_out.color_ready, link_in.payload.color, C)
        m.d.comb += link_in.ready.eq(link_in.payload.ctrl | ready)
        return m
