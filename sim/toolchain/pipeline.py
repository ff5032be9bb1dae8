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
keeps its weight block column-major (in the weight format), ``acc`` banks of ``Mo`` fp32
partial sums ``y`` and, at the first input chunk, the bias. One task per image does the PE's
whole share, each of its vector instructions over many inputs at once, with the
multi-dimensional DSDs of ``docs/isa.md`` (a fabric input that repeats each wavelet ``Mo``
times, an accumulator that wraps every ``acc * Mo`` elements), as a WSE kernel's single DSD
operation consumes a whole input tensor. The image's first input starts the task (its data in
``r7``); the others are read by the vector instructions from the same colour's queue::

    fmul   y0, w0, x        ; bank 0 = w[:, 0] * x_0                     (Mo elements)
    fmul   yb, wb, xb       ; banks 1 .. acc-1 = w[:, j] * x_j, j < acc   ((acc - 1) Mo)
    fmac   yr, wr, xr       ; y[j mod acc] += w[:, j] * x_j, j >= acc     ((Kk - acc) Mo)
    <passing the banks on>
    end

``xb`` and ``xr`` repeat each wavelet ``Mo`` times; ``yr`` wraps every ``acc * Mo``
elements, so the chunk's input ``j`` accumulates into bank ``j mod acc``. An element reads its
accumulator word when it issues and writes it back :data:`ACCUMULATOR_RAW_CYCLES` later, so
``acc`` (:meth:`PipelineMapping.banks`) is the least number of banks with ``acc * Mo`` at
least that distance (the ``fmac`` never waits on its own writes), the same in every PE of an
output chunk. Nothing is zeroed and no DSD moves between images.

The banks pass along the reduction as they are (``acc * Mo`` values per image): the first
input chunk's PE sends ``y + b`` (``b`` in bank 0, zeros in the others) or ``y``, a middle one
``in + y``; the last one adds ``in + y``, sums its banks into bank 0 with one wrapping
``fadd s, s, yb`` (``s`` is bank 0 wrapping every ``Mo``) and sends ``relu(y0)`` (``fmax``
with zero) or ``y0``: only that PE waits on the bank sum's read-after-write distance, and
:func:`plan` gives its chunk fewer inputs to make up for it. A layer of one input chunk sums
its banks, adds ``b`` and sends the result. Colours per layer: one for its inputs (which is the
previous layer's output colour) and two alternating between reduce hops; the last layer's
output gets one more.

Numerics: weights rounded to the weight format (RNE), activations and sums fp32. Per output
and input chunk, bank ``a`` computes ``q_a = round(w * x)`` for the chunk's input ``a``, then
``q_a = round(round(w * x) + q_a)`` over its inputs ``a + acc, a + 2 acc, ...``. Across the
chunks, ``S_a = round(q_a + b_a)`` at the first (``b_0 = b``, the others ``+0``; ``S_a = q_a``
without a bias) and ``S_a = round(S_a + q_a)`` at each next one, in chunk order; then
``p = round(...round(S_0 + S_1)... + S_{acc-1})`` and ``max(p, 0)``. With one input chunk:
``p = round(...round(q_0 + q_1)... + q_{acc-1})``, then ``round(p + b)``, then ``max``.
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
           "ACCUMULATOR_RAW_CYCLES"]

#: Cycles of a PE per image besides its vector elements and read-after-write waits: the task
#: start after the previous image's last vector instruction, and the gap of about two cycles
#: between one vector instruction and the next (docs/isa.md, "Timing").
TASK_CYCLES = 6
GAP_CYCLES = 2
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
    """Banks of partial sums a PE with ``mo`` outputs and ``kk`` inputs per image keeps: the
    least ``acc`` with ``acc * mo`` at least :data:`ACCUMULATOR_RAW_CYCLES` (so that an input's
    ``fmac`` never waits on the previous ones' write-back), at most ``kk``."""
    return max(1, min(kk, math.ceil(ACCUMULATOR_RAW_CYCLES / mo)))


def _pe_cycles(mo: int, kk: int, acc: int, k: int, chunks: int) -> int:
    """The planner's estimate of one PE's cycles per image (``acc`` banks, input chunk ``k``
    of ``chunks``): its vector elements, the read-after-write waits of an instruction on the
    one before it, the gaps between instructions and the task start."""
    raw = ACCUMULATOR_RAW_CYCLES - GAP_CYCLES  # the wait an instruction starts with
    n = acc * mo
    dependent = max(mo, raw)  # Mo elements reading what the instruction before wrote
    first_read = max(0, raw - ((kk - 1) % acc + 1) * mo)  # the banks after the last input
    # (with fewer banks than the distance needs, each bank waits for its previous input)
    cycles = kk * max(mo, math.ceil(ACCUMULATOR_RAW_CYCLES / acc))
    instructions = 1 + (acc > 1) + (kk > acc)
    if chunks == 1:  # the bank sum, the bias, the output
        cycles += first_read + (acc - 1) * dependent + 2 * dependent
        instructions += (acc > 1) + 2
    elif k < chunks - 1:  # the banks passed on
        cycles += first_read + n
        instructions += 1
    else:  # the banks in, their sum, the output
        cycles += first_read + n + (acc - 1) * dependent + dependent
        instructions += 2 + (acc > 1)
    return cycles + TASK_CYCLES + GAP_CYCLES * instructions


def _row_banks(mo: int, ins) -> int:
    """Banks of an output chunk of ``mo`` outputs whose row has input chunks ``ins``: the same
    in every PE of the row (the banks pass from PE to PE), so the smallest chunk decides."""
    return accumulators(mo, min(ins))


def _busiest(outs, ins) -> int:
    """The planner's estimate of the busiest PE's cycles per image of a region with these
    output and input chunks."""
    return max(_pe_cycles(mo, kk, _row_banks(mo, ins), k, len(ins))
               for mo in set(outs) for k, kk in enumerate(ins))


def _bias_words(mo: int, acc: int, chunks: int) -> int:
    """SRAM words of the bias at a layer's first input chunk: ``b`` itself when the layer has
    one chunk, else ``b`` then zeros for the other banks (the banks pass on as they are)."""
    return mo if chunks == 1 else acc * mo


def _sram_words(mo: int, kk: int, acc: int, bits: int, bias_words: int) -> int:
    return acc * mo + math.ceil(mo * kk * bits / 32) + bias_words


def _input_split(K: int, chunks: int, cost) -> tuple[int, ...]:
    """``K`` inputs in ``chunks`` chunks, the last one possibly smaller than the others (its
    PE also sums the banks) so that ``cost(sizes)``, the busiest PE's, is least."""
    even = _split(K, chunks)
    if chunks == 1:
        return even
    best = None
    for last in range(even[-1], 0, -1):
        sizes = (*_split(K - last, chunks - 1), last)
        if min(sizes) < 1:
            break
        value = cost(sizes)
        if value is not None and (best is None or value < best[0]):
            best = (value, sizes)
    return best[1] if best else even


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
        Whether each layer has a bias / a ReLU (a ReLU costs what the copy it replaces does,
        so it does not change the plan).
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

    def split_cost(i: int, outs, ins) -> int | None:
        """Busiest PE's cycles per image of layer ``i`` with these chunks, or None if a block
        does not fit the SRAM."""
        for mo in set(outs):
            acc = _row_banks(mo, ins)
            for k, kk in enumerate(ins):
                bias = _bias_words(mo, acc, len(ins)) if biases[i] and k == 0 else 0
                if _sram_words(mo, kk, acc, bits, bias) > S:
                    return None
        return _busiest(outs, ins)

    # Boundary b is layer b's input (layer b - 1's output): its chunks are layer b - 1's
    # output chunks and layer b's input chunks, chosen for the busier of the two (taking
    # their other chunks even); the last layer's outputs are even.
    widths = [shapes[0][1]] + [m for m, _ in shapes]
    splits: dict[tuple[int, ...], tuple[int, ...]] = {}

    def boundary(b: int, counts) -> tuple[int, ...]:
        key = (b, *counts[max(0, b - 1):b + 2])
        if key not in splits:
            if b == n:
                splits[key] = _split(widths[b], counts[b])
            else:
                outs = _split(widths[b + 1], counts[b + 1])
                ins = _split(widths[b - 1], counts[b - 1]) if b else None

                def cost(sizes):
                    mine = split_cost(b, outs, sizes)
                    if mine is None or not b:
                        return mine
                    theirs = split_cost(b - 1, sizes, ins)
                    return None if theirs is None else max(mine, theirs)

                splits[key] = _input_split(widths[b], counts[b], cost)
        return splits[key]

    def chunking(i: int, counts) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Layer ``i``'s (output, input) chunk sizes for boundary chunk counts ``counts``."""
        return boundary(i + 1, counts), boundary(i, counts)

    def cost_key(i: int, counts) -> tuple:
        """What layer ``i``'s cost depends on: the chunk counts of the boundaries its two
        boundaries' splits look at."""
        return (i, *counts[max(0, i - 1):i + 3])

    costs: dict[tuple, int | None] = {}
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
                key = cost_key(i, counts)
                if key not in costs:
                    costs[key] = split_cost(i, *chunking(i, counts))
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
    for i in range(n):
        region = Region(orient, row, col, *chunking(i, counts))
        plans.append(LayerPlan(region, costs[cost_key(i, counts)]))
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
    regions : list of Region, optional
        Place the layers on these regions instead of :func:`plan`'s (for experiments and
        benches, e.g. ``bench/pipeline_cost.py``): a staircase from tile (0, 0), orientations
        alternating, each region at the previous one's :meth:`Region.next_origin`, each
        layer's input chunks the previous layer's output chunks.

    Attributes
    ----------
    plans : list of LayerPlan
        Each layer's region (with the planner's estimate of its busiest PE's cycles per
        image).
    image : FabricImage
        Routes and PE programs of every logical tile.
    macs : int
        Useful multiply-accumulates per image.

    Raises
    ------
    MappingError
        For bad shapes, layers that do not chain, int8, weights beyond the format's range, a
        model that does not fit (:func:`plan`), or ``regions`` that do not place the layers.
    """

    def __init__(self, layers, dtype: Format, fabric: FabricParams,
                 regions: list[Region] | None = None):
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
        if regions is None:
            self.plans = plan([w.shape for w in self.weights],
                              [b is not None for b in self.biases], self.relus, self.bits,
                              fabric)
        else:
            self.plans = self._given(list(regions))
        n = len(self.weights)
        self.x_colors = [FIRST_COLOR + 3 * i for i in range(n)] + [FIRST_COLOR + 3 * n]
        self.macs = sum(w.size for w in self.weights)
        # Weights as the PE sees them (binary32 bits) and as it stores them.
        self.w_bits = [round_to(w, self.dtype) for w in self.weights]
        self.w_elements = [w.view(np.uint32) if self.dtype == Format.FP32
                           else F.narrow(w.view(np.uint32), self.dtype) for w in self.weights]
        self.image = self._build()

    def _given(self, regions: list[Region]) -> list[LayerPlan]:
        """LayerPlans of explicit regions, checked (see the class's ``regions``)."""
        if len(regions) != len(self.weights):
            raise MappingError(f"{len(regions)} regions for {len(self.weights)} layers")
        origin, plans = (0, 0), []
        for i, (region, W) in enumerate(zip(regions, self.weights)):
            M, K = W.shape
            problems = []
            if (region.row0, region.col0) != origin:
                problems.append(f"starts at {(region.row0, region.col0)}, not {origin}")
            if i and region.orientation == regions[i - 1].orientation:
                problems.append("has the previous region's orientation")
            if sum(region.out_sizes) != M or sum(region.in_sizes) != K \
                    or min(region.out_sizes + region.in_sizes) < 1:
                problems.append(f"chunks {region.out_sizes} x {region.in_sizes} do not cut "
                                f"{M} x {K}")
            if i and region.in_sizes != regions[i - 1].out_sizes:
                problems.append("input chunks are not the previous layer's output chunks")
            if region.row0 + region.rows > self.fabric.rows \
                    or region.col0 + region.cols > self.fabric.cols:
                problems.append(f"leaves the {self.fabric.rows} x {self.fabric.cols} array")
            if problems:
                raise MappingError(f"region {i} ({region}) " + "; ".join(problems))
            origin = region.next_origin()
            plans.append(LayerPlan(region, _busiest(region.out_sizes, region.in_sizes)))
        return plans

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

    @staticmethod
    def banks(region: Region, o: int) -> int:
        """Banks of partial sums of output chunk ``o`` of a region (the same in every PE of
        the chunk, whose banks pass from PE to PE): :func:`accumulators` of its outputs and the
        region's smallest input chunk."""
        return _row_banks(region.out_sizes[o], region.in_sizes)

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
        acc = self.banks(region, o)
        n = acc * mo  # the banks
        y_addr, w_addr = 0, n
        b_addr = w_addr + w_words
        w_elem = w_addr * 32 // self.bits
        x_color = self.x_colors[i]
        out_color = self.x_colors[i + 1] if last else links[k % 2]
        single = chunks_k == 1
        passed = n if not last else mo  # values sent on per image
        lines = [
            f".dsd y0 mem fp32 base={y_addr} len={mo}",
            f".dsd y mem fp32 base={y_addr} len={n}",
            f".dsd w0 mem {wfmt} base={w_elem} len={mo}",
            ".dsd x reg fp32 r7",
            ".dsd zero reg fp32 r0",
            f".dsd out fabout fp32 color={out_color} len={passed}",
            f".task {x_color} on_x",
        ]
        body = ["fmul y0, w0, x"]  # bank 0: the image's first input (in r7)
        if acc > 1:  # banks 1 .. acc-1: the next inputs, each wavelet for Mo elements
            lines += [f".dsd yb mem fp32 base={y_addr + mo} len={n - mo}",
                      f".dsd wb mem {wfmt} base={w_elem + mo} len={n - mo}",
                      f".dsd xb fabin fp32 color={x_color} len={n - mo} repeat={mo}"]
            body.append("fmul yb, wb, xb")
        if kk > acc:  # the other inputs, input j into bank j mod acc
            lines += [f".dsd yr mem fp32 base={y_addr} len={(kk - acc) * mo} wrap={n}",
                      f".dsd wr mem {wfmt} base={w_elem + n} len={(kk - acc) * mo}",
                      f".dsd xr fabin fp32 color={x_color} len={(kk - acc) * mo} repeat={mo}"]
            body.append("fmac yr, wr, xr")
        if not first:
            lines.append(f".dsd in fabin fp32 color={links[(k - 1) % 2]} len={n}")
        if bias:
            lines.append(f".dsd b mem fp32 base={b_addr} len={mo if single else n}")
        # the bank sum: y0 += bank 1, += bank 2, ...
        bank_sum = [f".dsd s mem fp32 base={y_addr} len={n - mo} wrap={mo}"] if acc > 1 else []
        output = "fmax out, y0, zero" if relu else "mov out, y0"
        if single:
            lines += bank_sum
            body += ["fadd s, s, yb"] * (acc > 1) + ["fadd y0, y0, b"] * bias + [output]
        elif first:  # the banks (and the bias, in bank 0) on to the next chunk
            body.append("fadd out, y, b" if bias else "mov out, y")
        elif not last:
            body.append("fadd out, in, y")
        else:
            lines += bank_sum
            body += ["fadd y, in, y", *["fadd s, s, yb"] * (acc > 1), output]
        lines += ["on_x:", *[f"    {op}" for op in body], "    end"]
        block = self.w_elements[i][m0:m0 + mo, k0:k0 + kk]
        contents = {w_addr: pack_elements(block.T, self.bits)}  # column-major
        if bias:
            b = np.zeros(mo if single else n, dtype=np.float32)
            b[:mo] = self.biases[i][m0:m0 + mo]
            contents[b_addr] = b.view(np.uint32)
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
            W, b = self.w_bits[i], self.biases[i]
            offsets = self._offsets(region.in_sizes)
            out_offsets = self._offsets(region.out_sizes)
            single = len(region.in_sizes) == 1
            s = np.zeros((value.shape[0], W.shape[0]), dtype=np.uint32)
            for o in range(len(region.out_sizes)):
                cols = slice(out_offsets[o], out_offsets[o + 1])
                acc = self.banks(region, o)
                sums = None  # the banks passed from chunk to chunk
                for k in range(len(region.in_sizes)):
                    # bank a takes the chunk's inputs a, a + acc, a + 2 acc, ...
                    banks = []
                    for a in range(acc):
                        j = offsets[k] + a
                        q = F.fmul(W[None, cols, j], value[:, j:j + 1])
                        for j in range(offsets[k] + a + acc, offsets[k + 1], acc):
                            q = F.fmac(W[None, cols, j], value[:, j:j + 1], q)
                        banks.append(q)
                    if sums is None:
                        sums = banks
                        if b is not None and not single:  # b in bank 0, +0 in the others
                            bias = b[cols].view(np.uint32)[None, :]
                            sums = [F.fadd(q, bias if a == 0 else np.zeros_like(bias))
                                    for a, q in enumerate(sums)]
                    else:
                        sums = [F.fadd(p, q) for p, q in zip(sums, banks)]
                total = sums[0]
                for q in sums[1:]:
                    total = F.fadd(total, q)
                if b is not None and single:
                    total = F.fadd(total, b[cols].view(np.uint32)[None, :])
                s[:, cols] = total
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


def map_pipeline(layers, dtype: Format, fabric: FabricParams,
                 regions: list[Region] | None = None) -> PipelineMapping:
    """Map an MLP as a layer pipeline (see :class:`PipelineMapping`; ``regions`` places it
    on given regions instead of the planner's).

    Raises
    ------
    MappingError
        If it does not fit or is not supported; the message says what to change.
    """
    return PipelineMapping(layers, dtype, fabric, regions)
