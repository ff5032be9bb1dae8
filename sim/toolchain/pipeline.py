"""Layer-pipelined MLP mapping: the whole model resident, each layer on its own region of the
logical array, activations flowing from region to region over the fabric, images back to back.

As on the WSE, no host sits between the layers: layer ``L``'s outputs are the wavelets that
start layer ``L + 1``'s tasks, so while layer ``L + 1`` works on image ``i`` layer ``L`` works
on image ``i + 1``. (The host-orchestrated mapping of :mod:`sim.toolchain.mapper` stays as the
fallback for models that do not fit at once, and for int8, whose per-tensor requantisation
between layers needs the host.)

Geometry
--------
A layer ``y = relu?(W x + b)`` with ``W`` of ``M x K`` is a GEMV on a rectangular *region*, in
one of two orientations:

* ``"h"`` (reduce east, as :mod:`sim.toolchain.mapper`): input chunk ``k`` of ``x`` enters the
  region's column ``k`` from the north and is multicast down it; PE (row ``o``, column ``k``)
  holds ``W[output chunk o, input chunk k]``; partial sums flow east along each row; the last
  column emits output chunk ``o`` east, at the region's row ``o``.
* ``"v"`` (reduce south, the transpose): input chunk ``k`` enters the region's row ``k`` from
  the west and is multicast along it; PE (row ``k``, column ``o``) holds ``W[o, k]``; partial
  sums flow south; the last row emits output chunk ``o`` south, at the region's column ``o``.

An ``"h"`` layer's outputs leave by rows, exactly what a ``"v"`` region just east of it takes as
inputs; a ``"v"`` layer's outputs leave by columns, what an ``"h"`` region just below it takes.
So the layers alternate orientation and the regions form a staircase from the top-left corner
(east, then south, then east, ...), each layer's output chunking being the next layer's input
chunking. The first layer's inputs come from the host's north (``"h"``) or west (``"v"``) edge
ports; the last layer's outputs travel on through unused tiles to the east (``"h"``) or south
(``"v"``) edge. :func:`plan` chooses the orientations and chunk counts that minimise the
busiest PE's vector work per image (its estimate of the cycles per image), within the array,
the PEs' SRAM, colours and tasks.

Each PE of a layer
------------------
keeps its weight block column-major (in the weight format), ``Mo`` fp32 partial sums ``y`` and,
in the first reduce position, the bias. Each arriving input ``x`` starts its data task::

    fmac   y, w, x          ; an AXPY of length Mo from SRAM
    daddbi w, Mo            ; the next weight column
    addi   r1, r1, -1
    bz     r1, done         ; after the chunk's last input: reduce
    end
  done:
    <one or two vector instructions passing the partial sums on>
    mov    y, zero          ; ready for the next image
    dsetb  w, r6            ; rewind the weights
    li     r1, Kk
    end

An ``fmac`` element reads its accumulator word when it issues and writes it back
:data:`ACCUMULATOR_RAW_CYCLES` later, so with fewer than that many outputs the next input's
``fmac`` waits on the previous one (read-after-write interlock). Such a PE keeps **two**
accumulators ``y0`` and ``y1`` and alternates between them (``y`` is pointed at one or the
other, ``r2`` holding its base and ``r5`` the sum of both bases)::

    fmac   y, w, x
    daddbi w, Mo
    sub    r2, r5, r2       ; the other accumulator
    dsetb  y, r2
    ...
  done:
    fadd   y0, y0, y1       ; p = p_even + p_odd
    <the reduce step on y0>
    mov    yy, zero         ; both accumulators
    li     r2, 0
    dsetb  y, r2
    ...

The reduce step of the first position sends ``y + b`` (or ``y``), a middle one ``in + y``, the
last one ``relu(in + y)`` (``fadd`` then ``fmax`` with zero) on to the next layer. Colours per
layer: one for its inputs (which is the previous layer's output colour) and two alternating
between reduce hops; the last layer's output gets one more.

Numerics: weights rounded to the weight format (RNE), activations and sums fp32. Per output the
PE computes ``p = round(round(w * x) + p)`` over its input chunk from ``p = +0`` (with two
accumulators: ``p_even`` over the chunk's inputs 0, 2, 4, ..., ``p_odd`` over 1, 3, ..., each
from +0, and ``p = round(p_even + p_odd)``; :func:`accumulators` decides), then the chain
``s = round(p_0 + b)``, ``s = round(s + p_k)`` in chunk order, then ``max(s, 0)``:
:meth:`PipelineMapping.reference` does the same in numpy, so raw outputs agree bit for bit.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from fabric.array import FabricParams
from hdl.formats import Format
from pe.vector import VectorUnit
from sim.host.driver import FabricImage, TileProgram
from sim.model import formats as F
from sim.model.wavelet import Wavelet
from sim.toolchain.asm import AsmError, assemble
from sim.toolchain.mapper import MappingError, check_format_range, pack_elements, round_to
from sim.toolchain.routes import RouteTable

__all__ = ["Region", "LayerPlan", "PipelineMapping", "plan", "map_pipeline", "accumulators",
           "CYCLES_PER_INPUT", "ACCUMULATOR_RAW_CYCLES"]

#: Cycles a PE spends per arriving input at least, whatever its AXPY length, with one and with
#: two accumulators: the data task's five or seven instructions plus five cycles (the RTL PE
#: takes 11.0 cycles per input for the seven-instruction task, ``bench/pe_figures.py``; the
#: estimate keeps the cycle of margin it had before the task switch lost a cycle). The
#: planner's estimate of a PE's time per input is ``max(Mo + 2, CYCLES_PER_INPUT[acc - 1])``.
CYCLES_PER_INPUT = (10, 12)
#: Cycles from an ``fmac`` element's issue until an element that reads the word it writes may
#: issue: the vector pipeline's depth to write-back and two more (issue and the registered RAW
#: check; measured 19.5-20 per input on the RTL PE).
ACCUMULATOR_RAW_CYCLES = VectorUnit.DEPTH + 2
#: First colour used (colour 0 stays free).
FIRST_COLOR = 1


@dataclass(frozen=True)
class Region:
    """Where one layer sits and how it is cut.

    Attributes
    ----------
    orientation : {"h", "v"}
        ``"h"``: inputs from the north by columns, outputs east by rows; ``"v"``: inputs from
        the west by rows, outputs south by columns.
    row0, col0 : int
        Top-left logical tile.
    out_sizes : tuple of int
        Outputs per output chunk (rows of an ``"h"`` region, columns of a ``"v"`` one).
    in_sizes : tuple of int
        Inputs per input chunk (columns of ``"h"``, rows of ``"v"``).
    """

    orientation: str
    row0: int
    col0: int
    out_sizes: tuple[int, ...]
    in_sizes: tuple[int, ...]

    @property
    def rows(self) -> int:
        """Rows of tiles."""
        return len(self.out_sizes) if self.orientation == "h" else len(self.in_sizes)

    @property
    def cols(self) -> int:
        """Columns of tiles."""
        return len(self.in_sizes) if self.orientation == "h" else len(self.out_sizes)

    def tile(self, o: int, k: int) -> tuple[int, int]:
        """Logical tile of output chunk ``o``, input chunk ``k``."""
        if self.orientation == "h":
            return self.row0 + o, self.col0 + k
        return self.row0 + k, self.col0 + o

    def tiles(self):
        """``(o, k, (row, col))`` for every tile of the region."""
        for o in range(len(self.out_sizes)):
            for k in range(len(self.in_sizes)):
                yield o, k, self.tile(o, k)

    def next_origin(self) -> tuple[int, int]:
        """Top-left tile of the next layer's region (east of an ``"h"`` region, below a
        ``"v"`` one)."""
        if self.orientation == "h":
            return self.row0, self.col0 + self.cols
        return self.row0 + self.rows, self.col0


def _split(total: int, parts: int) -> tuple[int, ...]:
    """``total`` in ``parts`` near-equal chunks (the larger first)."""
    base, extra = divmod(total, parts)
    return tuple(base + (i < extra) for i in range(parts))


def accumulators(mo: int, kk: int) -> int:
    """Accumulators (1 or 2) a PE with ``mo`` outputs and ``kk`` inputs per image keeps: two
    when consecutive inputs' ``fmac`` would otherwise wait on each other (fewer outputs than
    :data:`ACCUMULATOR_RAW_CYCLES`, and at least two inputs)."""
    return 2 if kk >= 2 and mo < ACCUMULATOR_RAW_CYCLES else 1


def _reduce_ops(k: int, chunks: int, bias: bool, relu: bool) -> int:
    """Vector instructions of a PE's reduce step, the zeroing of ``y`` included."""
    last = k == chunks - 1
    if k == 0 and last:
        return 1 + bias + 1  # (fadd y, y, b) + fmax/mov out + mov y, zero
    if last and relu:
        return 3  # fadd y, in, y; fmax out, y, zero; mov y, zero
    return 2  # one fadd/mov out + mov y, zero


def _pe_cycles(mo: int, kk: int, k: int, chunks: int, bias: bool, relu: bool) -> int:
    """The planner's estimate of one PE's cycles per image."""
    acc = accumulators(mo, kk)
    per_input = max(mo + 2, CYCLES_PER_INPUT[acc - 1],
                    math.ceil(ACCUMULATOR_RAW_CYCLES / acc) if kk > 1 else 0)
    reduce = _reduce_ops(k, chunks, bias, relu) * mo
    if acc == 2:  # fadd y0, y0, y1 (after the last fmac's write-back) and a 2 Mo zeroing
        reduce += 2 * mo + ACCUMULATOR_RAW_CYCLES
    return kk * per_input + reduce


def _sram_words(mo: int, kk: int, bits: int, with_bias: bool) -> int:
    return (accumulators(mo, kk) * mo + math.ceil(mo * kk * bits / 32)
            + (mo if with_bias else 0))


@dataclass(frozen=True)
class LayerPlan:
    """One layer's region and the planner's figures for it."""

    region: Region
    cycles: int  # busiest PE's estimated cycles per image


def plan(shapes: list[tuple[int, int]], biases: list[bool], relus: list[bool], bits: int,
         fabric: FabricParams) -> list[LayerPlan]:
    """Choose the regions of a layer-pipelined MLP.

    Parameters
    ----------
    shapes : list of (M, K)
        Each layer's weight shape (layer ``i``'s ``K`` is layer ``i - 1``'s ``M``).
    biases, relus : list of bool
        Whether each layer has a bias / a ReLU.
    bits : int
        Width of one weight element (32, 16 or 8).
    fabric : FabricParams

    Returns
    -------
    list of LayerPlan
        The staircase (first orientation ``"h"`` or ``"v"``) whose busiest PE has the least
        estimated vector work per image; ties go to fewer PEs.

    Raises
    ------
    MappingError
        If no staircase fits the array, the SRAM, the colours or the tasks; the message says
        what the smallest candidate needed.
    """
    R, C, S = fabric.rows, fabric.cols, fabric.sram_words
    n = len(shapes)
    colors = FIRST_COLOR + 3 * n + 1
    if colors > fabric.num_colors:
        raise MappingError(f"a {n}-layer pipeline needs {colors} colours, the fabric has "
                           f"{fabric.num_colors}: use fewer layers or the host-orchestrated "
                           f"mode")

    def layer_cost(i: int, nk: int, no: int) -> int | None:
        """Busiest PE's cycles per image of layer ``i`` cut into ``no`` x ``nk`` chunks, or
        None if a block does not fit the SRAM."""
        M, K = shapes[i]
        outs, ins = _split(M, no), _split(K, nk)
        worst = 0
        for k in sorted({0, nk - 1, *(range(1, min(nk - 1, 2)))}):
            for mo in set(outs):
                if _sram_words(mo, ins[k], bits, biases[i] and k == 0) > S:
                    return None
                worst = max(worst, _pe_cycles(mo, ins[k], k, nk, biases[i], relus[i]))
        return worst

    costs: dict[tuple[int, int, int], int | None] = {}
    best = None
    for first in ("h", "v"):
        for counts in itertools.product(*[range(1, min(limit, d) + 1) for limit, d in zip(
                [max(R, C)] * (n + 1), [shapes[0][1]] + [m for m, _ in shapes])]):
            # counts[0]: chunks of the first layer's input; counts[i + 1]: of layer i's output.
            row, col, orient = 0, 0, first
            worst, pes, ok = 0, 0, True
            for i in range(n):
                nk, no = counts[i], counts[i + 1]
                rows, cols = (no, nk) if orient == "h" else (nk, no)
                if row + rows > R or col + cols > C:
                    ok = False
                    break
                key = (i, nk, no)
                if key not in costs:
                    costs[key] = layer_cost(i, nk, no)
                if costs[key] is None:
                    ok = False
                    break
                worst, pes = max(worst, costs[key]), pes + rows * cols
                if orient == "h":
                    col += cols
                else:
                    row += rows
                orient = "v" if orient == "h" else "h"
            if ok and (best is None or (worst, pes) < best[0]):
                best = ((worst, pes), first, counts)
    if best is None:
        raise MappingError(f"the MLP {[(m, k) for m, k in shapes]} does not fit a {R} x {C} "
                           f"array as a pipeline with {S} SRAM words per PE: use more PEs, "
                           f"--sram-words, or the host-orchestrated mode")
    _, first, counts = best
    plans, row, col, orient = [], 0, 0, first
    for i, (M, K) in enumerate(shapes):
        region = Region(orient, row, col, _split(M, counts[i + 1]), _split(K, counts[i]))
        plans.append(LayerPlan(region, costs[i, counts[i], counts[i + 1]]))
        row, col = region.next_origin()
        orient = "v" if orient == "h" else "h"
    return plans


class PipelineMapping:
    """A layer-pipelined MLP placed on the fabric (see the module docstring).

    Parameters
    ----------
    layers : list of (W, b, relu)
        ``W`` of shape (M, K) (float), ``b`` of shape (M,) or None, ``relu`` a bool; layer
        ``i``'s K must be layer ``i - 1``'s M.
    dtype : Format
        Weight format (fp32, bf16, fp16, E4M3, E5M2; int8 is host-orchestrated only).
    fabric : FabricParams

    Attributes
    ----------
    plans : list of LayerPlan
        Each layer's region.
    image : FabricImage
        Routes and PE programs of every logical tile.
    macs : int
        Useful multiply-accumulates per image.

    Raises
    ------
    MappingError
        For bad shapes, layers that do not chain, int8, weights beyond the format's range, or a
        model that does not fit (:func:`plan`).
    """

    def __init__(self, layers, dtype: Format, fabric: FabricParams):
        self.fabric, self.dtype = fabric, Format(dtype)
        if self.dtype == Format.INT8:
            raise MappingError("int8 layers are host-orchestrated only: their activations are "
                               "requantised per tensor on the host between layers")
        if not layers:
            raise MappingError("an MLP needs at least one layer")
        self.weights, self.biases, self.relus = [], [], []
        for i, (W, b, relu) in enumerate(layers):
            W = np.asarray(W)
            if W.ndim != 2 or W.size == 0 or not np.issubdtype(W.dtype, np.number):
                raise MappingError(f"layer {i}: weights must be a non-empty numeric 2-D "
                                   f"matrix, not {W.dtype} of shape {W.shape}")
            if i and W.shape[1] != self.weights[-1].shape[0]:
                raise MappingError(
                    f"layers do not chain: layer {i} has W of shape {W.shape} and takes "
                    f"{W.shape[1]} inputs, but layer {i - 1} gives "
                    f"{self.weights[-1].shape[0]} outputs")
            if b is not None:
                b = np.asarray(b)
                if b.shape != (W.shape[0],):
                    raise MappingError(f"layer {i}: bias must have shape ({W.shape[0]},), "
                                       f"not {b.shape}")
                check_format_range(i, "the bias", b, Format.FP32)
            check_format_range(i, "the weight matrix", W, self.dtype)
            self.weights.append(W.astype(np.float32))
            self.biases.append(None if b is None else b.astype(np.float32))
            self.relus.append(bool(relu))
        self.bits = self.dtype.bits
        self.plans = plan([w.shape for w in self.weights], [b is not None for b in self.biases],
                          self.relus, self.bits, fabric)
        n = len(self.weights)
        self.x_colors = [FIRST_COLOR + 3 * i for i in range(n)] + [FIRST_COLOR + 3 * n]
        self.macs = sum(w.size for w in self.weights)
        # Weights as the PE sees them (binary32 bits) and as it stores them.
        self.w_bits = [round_to(w, self.dtype) for w in self.weights]
        self.w_elements = [w.view(np.uint32) if self.dtype == Format.FP32
                           else F.narrow(w.view(np.uint32), self.dtype) for w in self.weights]
        self.image = self._build()

    # ---- geometry ---------------------------------------------------------------------------
    @property
    def regions(self) -> list[Region]:
        """Each layer's region."""
        return [p.region for p in self.plans]

    def layer_of(self) -> np.ndarray:
        """Logical ``(rows, cols)`` array: the layer each PE holds, -1 for none."""
        out = np.full((self.fabric.rows, self.fabric.cols), -1, dtype=int)
        for i, region in enumerate(self.regions):
            for _, _, (r, c) in region.tiles():
                out[r, c] = i
        return out

    def _offsets(self, sizes) -> list[int]:
        return [0, *itertools.accumulate(sizes)]

    def input_ports(self) -> list[tuple[str, int]]:
        """Host edge port of each input chunk of the first layer."""
        first = self.regions[0]
        edge = "n" if first.orientation == "h" else "w"
        return [(edge, (first.col0 if edge == "n" else first.row0) + k)
                for k in range(len(first.in_sizes))]

    def output_ports(self) -> list[tuple[str, int]]:
        """Host edge port of each output chunk of the last layer."""
        last = self.regions[-1]
        edge = "e" if last.orientation == "h" else "s"
        return [(edge, (last.row0 if edge == "e" else last.col0) + o)
                for o in range(len(last.out_sizes))]

    # ---- the fabric image -------------------------------------------------------------------
    def _build(self) -> FabricImage:
        R, C = self.fabric.rows, self.fabric.cols
        tables = {(r, c): RouteTable(self.fabric.num_colors) for r in range(R) for c in range(C)}
        programs: dict[tuple[int, int], str] = {}
        data: dict[tuple[int, int], dict[int, np.ndarray]] = {}
        for i, region in enumerate(self.regions):
            h = region.orientation == "h"
            into, along, onward = ("n", "s", "e") if h else ("w", "e", "s")
            x_color, out_color = self.x_colors[i], self.x_colors[i + 1]
            links = (x_color + 1, x_color + 2)
            chunks_o, chunks_k = len(region.out_sizes), len(region.in_sizes)
            for o, k, tile in region.tiles():
                t = tables[tile]
                # Inputs multicast across the output chunks.
                t.set(x_color, [into], ["ramp", along] if o < chunks_o - 1 else ["ramp"])
                # Partial sums to the next input chunk; the last one's results onward.
                last = k == chunks_k - 1
                t.set(out_color if last else links[k % 2], ["ramp"], [onward])
                if k > 0:
                    t.set(links[(k - 1) % 2], [_opposite(onward)], ["ramp"])
                programs[tile], data[tile] = self._pe(i, region, o, k, links)
        self._pass_through(tables)
        pe_params = self.fabric.pe_params()
        image = FabricImage()
        for tile, table in tables.items():
            pe = None
            if tile in programs:
                try:
                    pe = assemble(programs[tile], pe_params)
                except AsmError as exc:
                    raise MappingError(f"PE {tile} program does not fit: {exc}") from None
                for addr, words in data[tile].items():
                    pe.add_words(addr, words, pe_params)
            image.tiles[tile] = TileProgram(table, pe)
        return image

    def _pass_through(self, tables) -> None:
        """Routes carrying the last layer's outputs through unused tiles to the edge."""
        last, colour = self.regions[-1], self.x_colors[-1]
        R, C = self.fabric.rows, self.fabric.cols
        if last.orientation == "h":
            for o in range(len(last.out_sizes)):
                r = last.row0 + o
                for c in range(last.col0 + last.cols, C):
                    tables[r, c].set(colour, ["w"], ["e"])
        else:
            for o in range(len(last.out_sizes)):
                c = last.col0 + o
                for r in range(last.row0 + last.rows, R):
                    tables[r, c].set(colour, ["n"], ["s"])

    def _pe(self, i: int, region: Region, o: int, k: int, links) -> tuple[str, dict]:
        """Assembly and SRAM contents of layer ``i``'s PE at chunk ``(o, k)``."""
        mo, kk = region.out_sizes[o], region.in_sizes[k]
        m0 = self._offsets(region.out_sizes)[o]
        k0 = self._offsets(region.in_sizes)[k]
        chunks_k = len(region.in_sizes)
        first, last = k == 0, k == chunks_k - 1
        bias = self.biases[i] is not None and first
        relu = self.relus[i]
        wfmt = self.dtype.name.lower()
        w_words = math.ceil(mo * kk * self.bits / 32)
        acc = accumulators(mo, kk)
        y_addr, w_addr = 0, acc * mo
        b_addr = w_addr + w_words
        w_elem = w_addr * 32 // self.bits
        out_color = self.x_colors[i + 1] if last else links[k % 2]
        # With two accumulators the reduce step works on y0 (= y0 + y1), else on y itself.
        acc_name = "y0" if acc == 2 else "y"
        lines = [
            f".dsd y mem fp32 base={y_addr} len={mo}",
            f".dsd w mem {wfmt} base={w_elem} len={mo}",
            ".dsd x reg fp32 r7",
            ".dsd zero reg fp32 r0",
            f".dsd out fabout fp32 color={out_color} len={mo}",
            f".task {self.x_colors[i]} on_x",
            f".reg r1 {kk}",
            f".reg r6 {w_elem}",
        ]
        if acc == 2:
            lines += [
                f".dsd y0 mem fp32 base={y_addr} len={mo}",
                f".dsd y1 mem fp32 base={y_addr + mo} len={mo}",
                f".dsd yy mem fp32 base={y_addr} len={2 * mo}",
                f".reg r2 {y_addr}",
                f".reg r5 {2 * y_addr + mo}",
            ]
        if not first:
            lines.append(f".dsd in fabin fp32 color={links[(k - 1) % 2]} len={mo}")
        if bias:
            lines.append(f".dsd b mem fp32 base={b_addr} len={mo}")
        a = acc_name
        reduce = ["fadd y0, y0, y1"] if acc == 2 else []
        if first and last:
            if bias:
                reduce.append(f"fadd {a}, {a}, b")
            reduce.append(f"fmax out, {a}, zero" if relu else f"mov out, {a}")
        elif first:
            reduce.append(f"fadd out, {a}, b" if bias else f"mov out, {a}")
        elif last and relu:
            reduce += [f"fadd {a}, in, {a}", f"fmax out, {a}, zero"]
        else:
            reduce.append(f"fadd out, in, {a}")
        if acc == 2:
            switch = ["    sub r2, r5, r2", "    dsetb y, r2"]
            rewind = ["    mov yy, zero", f"    li r2, {y_addr}", "    dsetb y, r2"]
        else:
            switch, rewind = [], ["    mov y, zero"]
        lines += [
            "on_x:",
            "    fmac y, w, x",
            f"    daddbi w, {mo}",
            *switch,
            "    addi r1, r1, -1",
            "    bz r1, done",
            "    end",
            "done:",
            *[f"    {op}" for op in reduce],
            *rewind,
            "    dsetb w, r6",
            f"    li r1, {kk}",
            "    end",
        ]
        block = self.w_elements[i][m0:m0 + mo, k0:k0 + kk]
        contents = {w_addr: pack_elements(block.T, self.bits)}  # column-major
        if bias:
            contents[b_addr] = self.biases[i][m0:m0 + mo].view(np.uint32)
        return "\n".join(lines), contents

    # ---- host side --------------------------------------------------------------------------
    def inputs(self, xs) -> dict[tuple[str, int], list[Wavelet]]:
        """Wavelets for a batch of images, back to back: chunk ``k`` of every image, in image
        order, into the first layer's input port ``k``.

        Parameters
        ----------
        xs : array-like of shape (N, K) or (K,)
            Inputs (float).

        Raises
        ------
        MappingError
            If the inputs do not have the first layer's K columns.
        """
        xs = self._batch(xs, self.weights[0].shape[1])
        words = xs.astype(np.float32).view(np.uint32)
        colour = self.x_colors[0]
        out = {}
        offsets = self._offsets(self.regions[0].in_sizes)
        for k, port in enumerate(self.input_ports()):
            chunk = words[:, offsets[k]:offsets[k + 1]].reshape(-1)
            out[port] = [Wavelet(int(v), colour) for v in chunk]
        return out

    def expect(self, images: int) -> dict[tuple[str, int], int]:
        """Wavelets each output port delivers for ``images`` images."""
        return {port: images * size
                for port, size in zip(self.output_ports(), self.regions[-1].out_sizes)}

    def gather(self, received, images: int) -> np.ndarray:
        """The raw outputs (fp32 bits), shape ``(images, M)``, from what the ports delivered.

        Raises
        ------
        MappingError
            If a port delivered the wrong number of wavelets.
        """
        parts = []
        for port, size in zip(self.output_ports(), self.regions[-1].out_sizes):
            ws = received.get(port, [])
            if len(ws) != images * size:
                raise MappingError(f"output port {port[0]}{port[1]} delivered {len(ws)} "
                                   f"results, expected {images * size}")
            parts.append(np.asarray([w.data for w in ws], dtype=np.uint32).reshape(images, size))
        return np.concatenate(parts, axis=1)

    def reference(self, xs) -> np.ndarray:
        """numpy raw outputs (fp32 bits, shape ``(N, M)``) with the fabric's rounding order."""
        value = self._batch(xs, self.weights[0].shape[1]).astype(np.float32).view(np.uint32)
        for i, region in enumerate(self.regions):
            W = self.w_bits[i]
            offsets = self._offsets(region.in_sizes)
            out_offsets = self._offsets(region.out_sizes)
            s = None
            for k, kk in enumerate(region.in_sizes):
                p = np.zeros((value.shape[0], W.shape[0]), dtype=np.uint32)
                for o, mo in enumerate(region.out_sizes):
                    cols = slice(out_offsets[o], out_offsets[o + 1])
                    # accumulator a takes the chunk's inputs a, a + acc, a + 2 acc, ...
                    acc = accumulators(mo, kk)
                    parts = []
                    for a in range(acc):
                        q = np.zeros((value.shape[0], mo), dtype=np.uint32)
                        for j in range(offsets[k] + a, offsets[k + 1], acc):
                            q = F.fmac(W[None, cols, j], value[:, j:j + 1], q)
                        parts.append(q)
                    p[:, cols] = parts[0] if acc == 1 else F.fadd(parts[0], parts[1])
                if s is None:
                    s = p if self.biases[i] is None else F.fadd(p, self.biases[i].view(
                        np.uint32)[None, :])
                else:
                    s = F.fadd(s, p)
            if self.relus[i]:
                s = F.fmax(s, np.zeros_like(s))
            value = s
        return value

    @staticmethod
    def values(raw: np.ndarray) -> np.ndarray:
        """Output values (float32) of raw output words."""
        return np.asarray(raw, dtype=np.uint32).view(np.float32)

    @staticmethod
    def _batch(xs, K: int) -> np.ndarray:
        xs = np.asarray(xs)
        if xs.ndim == 1:
            xs = xs[None, :]
        if xs.ndim != 2 or xs.shape[1] != K:
            raise MappingError(f"inputs must have shape (N, {K}) or ({K},), not {xs.shape}")
        return xs


def _opposite(edge: str) -> str:
    return {"n": "s", "s": "n", "e": "w", "w": "e"}[edge]


def map_pipeline(layers, dtype: Format, fabric: FabricParams) -> PipelineMapping:
    """Map an MLP as a layer pipeline (see :class:`PipelineMapping`).

    Raises
    ------
    MappingError
        If it does not fit or is not supported; the message says what to change.
    """
    return PipelineMapping(layers, dtype, fabric)
