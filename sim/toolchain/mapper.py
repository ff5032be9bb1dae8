"""Workload mapper: GEMV ``y = W x (+ b)`` and MLP layers onto the logical PE array, as the WSE
does it.

Mapping of one layer with ``W`` of ``M × K`` on ``R × C`` PEs (Cerebras' GEMV: weights stay in PE
SRAM, activations flow):

* **Split.** Rows of ``W`` go over the ``R`` PE rows (``Mr = ceil(M / R)`` each), columns over
  the ``C`` PE columns (``Kc = ceil(K / C)`` each). ``M`` and ``K`` that do not divide are
  zero-padded: padded weight rows and columns are zero and padded ``x`` entries are sent as
  zeros, so padded outputs are exact zeros (or the padded bias) and are dropped by the host.
* **Storage.** PE ``(r, c)`` holds its ``Mr × Kc`` block column-major in the weight format (two
  bf16/fp16 or four fp8/int8 per 32-bit word), its ``Mr`` partial sums in fp32 (int32), and — in
  the last column — the bias.
* **Broadcast.** The chunk ``x[c·Kc : (c+1)·Kc]`` enters at the north edge of PE column ``c`` on
  the layer's activation colour and is multicast down the column (route ``N -> RAMP, S``).
* **Compute.** Each arriving ``x_k`` starts the PE's data task: ``fmac y, W[:, k], x_k`` — an
  AXPY of length ``Mr`` from SRAM, one element per cycle — then the column pointer advances.
  After ``Kc`` wavelets a counter activates the reduce task.
* **Reduce.** Partial sums flow east along each PE row as a stream: column 0 sends its ``y``,
  column ``c`` adds the incoming stream to its own (``fadd out, in, y``) and passes it on, on
  colours that alternate between neighbours. The last column adds the bias, applies ReLU if
  asked, and sends the ``Mr`` results out of the east edge of its row.
* **Reset.** The data task blocks itself while the reduction runs; the reduce task zeroes ``y``,
  rewinds the weight pointer and counter and unblocks it, so the same image serves any number
  of inputs, and an early ``x`` of the next GEMV waits instead of corrupting this one.

Numerics: weights are rounded to the weight format (RNE); activations and accumulation are fp32
(int32 for ``int8``, which quantises ``W`` and ``x`` symmetrically per tensor and dequantises on
the host; the bias is added there, and so is a ReLU that follows a bias, while a ReLU without
a bias runs on the PE as ``imax``). The PE computes ``round(round(w·x) + y)`` per step, then
sums partial sums west to east: :meth:`GemvMapping.reference` does the same in numpy, so it
agrees bit for bit.

**Sparse GEMV** (``sparse=True``; after the WSE's sparse activations, Cerebras at Hot Chips
2020): only the nonzero entries of ``x`` travel, each as a sparse wavelet
(:class:`hdl.wavelet.SparseWord`: the value in a 16-bit format, its index ``k`` in the upper
half), followed by one control wavelet that ends the vector:

* **Broadcast.** The whole sparse ``x`` enters at the north edge of PE column 0 and is
  multicast along row 0 and down every column (``N -> RAMP, S, E`` at ``(0, 0)``, ``W -> RAMP,
  S, E`` along row 0, ``N -> RAMP, S`` below). Every PE's **range filter** keeps the indices
  of its column's chunk, ``c·Kc .. (c+1)·Kc - 1``, and drops the others. The host interleaves
  the chunks (the first nonzero of every chunk, then the second of every chunk, ...; each
  chunk's own order kept), so all columns compute at once: sent in index order, column 0's
  chunk would fill its queue and stall the multicast while the other columns wait.
* **Compute.** Each kept wavelet starts the data task: ``dindex w, r7, base - c·Kc`` points the
  weight DSD at column ``k`` of the block (stored row-major, so column ``k`` is ``base + k`` with
  stride ``Kc``: no multiply), then ``fmac y, w, x`` with ``x`` the register's low half in the
  value format: an **indexed AXPY**.
* **End of vector.** The control wavelet starts the reduce task as a control task (its id is
  above every data task's, so the picker runs the data task for every wavelet that arrived
  before it first). The reduction is the dense one; the reduce task then zeroes ``y``. The
  next sparse ``x`` must not enter before this one's outputs have left (nothing blocks the data
  task meanwhile: the driver runs one GEMV at a time).

Values travel in BF16 (FP16 for fp16 weights, INT16 for int8), so ``x`` is rounded to that
format first and its zeros (of either sign) after rounding are not sent. Cycles scale with the
nonzeros: ``bench/sparse_gemv.py`` measures them against the dense mapping.

An MLP is several layers mapped at once (each layer has its own colours, tasks, registers and
SRAM region); the host moves activations from the east edge of one layer to the north edge of the
next (host-orchestrated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import ml_dtypes
import numpy as np

from fabric.array import FabricParams
from hdl.formats import Format
from hdl.wavelet import ControlWord, SparseWord
from sim.host.driver import FabricImage, TileProgram
from sim.model import formats as F
from sim.model.wavelet import Wavelet
from sim.toolchain.asm import AsmError, assemble
from sim.toolchain.routes import RouteTable

__all__ = ["MappingError", "GemvMapping", "map_layers", "WEIGHT_DTYPES", "parse_dtype",
           "round_to", "check_format_range", "pack_elements"]

#: Weight formats a GEMV can use (name -> Format).
WEIGHT_DTYPES = {"fp32": Format.FP32, "bf16": Format.BF16, "fp16": Format.FP16,
                 "fp8": Format.E4M3, "e4m3": Format.E4M3, "e5m2": Format.E5M2,
                 "int8": Format.INT8}
#: numpy / ml_dtypes types of the float weight formats (for their largest finite value).
_FLOAT_TYPES = {Format.FP32: np.float32, Format.BF16: ml_dtypes.bfloat16,
                Format.FP16: np.float16, Format.E4M3: ml_dtypes.float8_e4m3fn,
                Format.E5M2: ml_dtypes.float8_e5m2}
#: Colours per layer: activation broadcast and the two alternating reduction colours.
COLORS_PER_LAYER = 3


class MappingError(ValueError):
    """A workload that does not fit or is not supported; the message says what to change."""


def parse_dtype(name: str) -> Format:
    """The weight format called ``name`` (fp32, bf16, fp16, fp8/e4m3, e5m2, int8).

    Raises
    ------
    MappingError
        For an unknown name, listing the valid ones.
    """
    key = str(name).lower()
    if key not in WEIGHT_DTYPES:
        raise MappingError(f"unknown dtype {name!r}; use one of {', '.join(WEIGHT_DTYPES)}")
    return WEIGHT_DTYPES[key]


def round_to(values: np.ndarray, fmt: Format) -> np.ndarray:
    """fp32 values rounded to ``fmt`` (RNE) and widened back: the binary32 bit patterns the PE
    computes with (uint32 array of the same shape)."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32)
    if fmt == Format.FP32:
        return bits.copy()
    return F.widen(F.narrow(bits, fmt), fmt)


def check_format_range(layer: int, what: str, values, fmt: Format) -> None:
    """Refuse finite ``values`` that would round to inf or NaN in ``fmt`` (beyond its largest
    finite value), instead of silently corrupting a result.

    Raises
    ------
    MappingError
        Naming the layer, the tensor, its largest magnitude, the format's limit and a format
        that holds it (or by how much to scale).
    """
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        bits = v.astype(np.float32).view(np.uint32)
        rounded = (bits if fmt == Format.FP32 else round_to(bits.view(np.float32), fmt))
    overflow = np.isfinite(v) & ~np.isfinite(rounded.view(np.float32))
    if not overflow.any():
        return
    peak = float(np.max(np.abs(v[np.isfinite(v)])))
    limit = float(ml_dtypes.finfo(_FLOAT_TYPES[fmt]).max)
    name = Format(fmt).name.lower()
    wider = [n for n in ("fp16", "bf16", "fp32") if WEIGHT_DTYPES[n] != fmt
             and float(ml_dtypes.finfo(_FLOAT_TYPES[WEIGHT_DTYPES[n]]).max) >= peak]
    hint = (f"use --dtype {' or '.join(wider)}, or scale" if wider
            else "no weight format holds it: scale")
    raise MappingError(
        f"layer {layer}: {what} has max |value| {peak:.6g}, beyond the largest finite "
        f"{name} value {limit:.6g} ({int(overflow.sum())} element(s) would become "
        f"{'NaN' if fmt == Format.E4M3 else 'infinite'}); {hint} the tensor down by more "
        f"than {peak / limit:.3g}x")


def pack_elements(elements: np.ndarray, bits: int) -> np.ndarray:
    """Element bit patterns (``bits`` wide, in order) packed into 32-bit SRAM words, lowest
    lane first, the last word zero-padded (uint32 array of ``ceil(n * bits / 32)`` words)."""
    elements = np.asarray(elements).reshape(-1).astype(np.uint64)
    per_word = 32 // bits
    padded = np.zeros(-(-len(elements) // per_word) * per_word, dtype=np.uint64)
    padded[:len(elements)] = elements & ((1 << bits) - 1)
    lanes = padded.reshape(-1, per_word)
    words = np.zeros(len(lanes), dtype=np.uint64)
    for lane in range(per_word):
        words |= lanes[:, lane] << np.uint64(lane * bits)
    return words.astype(np.uint32)


@dataclass
class GemvMapping:
    """One GEMV layer placed on the fabric.

    Parameters
    ----------
    weights : np.ndarray of shape (M, K)
        Float weights (rounded to ``dtype``; for ``int8`` quantised per tensor).
    bias : np.ndarray of shape (M,), optional
    relu : bool
        Apply ReLU to the outputs: on the PE (``fmax``/``imax`` with zero), except for ``int8``
        with a bias, where the host applies it after adding the dequantised bias
        (``relu_on_fabric`` says which).
    dtype : Format
        Weight format.
    fabric : FabricParams
    layer : int
        Index of the layer on the fabric (selects its colours, task, registers, SRAM region).
    sram_base : int
        First SRAM word of this layer's region.
    sparse : bool
        Send only ``x``'s nonzeros as sparse wavelets (the module's "Sparse GEMV").

    Raises
    ------
    MappingError
        If the shapes are wrong, the layer does not fit the PEs' SRAM, the fabric has too
        few colours or tasks for this many layers, or a finite weight (or bias) would round to
        inf or NaN in ``dtype`` (beyond the format's largest finite value); for ``sparse``,
        if ``K`` padded to the columns exceeds the 65,536 indices of a sparse wavelet.
    """

    weights: np.ndarray
    bias: np.ndarray | None
    relu: bool
    dtype: Format
    fabric: FabricParams
    layer: int = 0
    sram_base: int = 0
    sparse: bool = False
    # derived
    M: int = field(init=False)
    K: int = field(init=False)
    Mr: int = field(init=False)
    Kc: int = field(init=False)

    def __post_init__(self):
        W = np.asarray(self.weights)
        if W.ndim != 2 or W.size == 0:
            raise MappingError(f"weights must be a non-empty 2-D matrix, not shape {W.shape}")
        if not np.issubdtype(W.dtype, np.number):
            raise MappingError(f"weights must be numeric, not {W.dtype}")
        self.M, self.K = W.shape
        if self.bias is not None:
            b = np.asarray(self.bias)
            if b.shape != (self.M,):
                raise MappingError(f"bias must have shape ({self.M},), not {b.shape}")
        self.is_int = self.dtype == Format.INT8
        # int8 adds the bias on the host after dequantising (its scale depends on x's), so a
        # ReLU after a bias is applied there too; without a bias the PE applies it (IMAX).
        self.relu_on_fabric = self.relu and not (self.is_int and self.bias is not None)
        R, C = self.fabric.rows, self.fabric.cols
        self.Mr, self.Kc = math.ceil(self.M / R), math.ceil(self.K / C)
        nc = self.fabric.num_colors
        first = 1 + COLORS_PER_LAYER * self.layer
        if first + COLORS_PER_LAYER > nc:
            raise MappingError(
                f"layer {self.layer} needs colours {first}..{first + 2}, but the fabric has "
                f"{nc} colours: map fewer layers or build it with more colours")
        self.x_color, self.link_colors = first, (first + 1, first + 2)
        self.reduce_task = nc + self.layer
        if self.reduce_task >= self.fabric.num_tasks:
            raise MappingError(f"layer {self.layer} needs task {self.reduce_task}, but the PEs "
                               f"have {self.fabric.num_tasks} tasks")
        if self.layer > 4:
            raise MappingError("at most 5 layers fit the PE's registers")
        self.counter_reg = 1 + self.layer
        if self.sparse and C * self.Kc > 1 << SparseWord.as_shape()["index"].width:
            raise MappingError(
                f"a sparse GEMV indexes x with 16 bits, but K = {self.K} padded to {C} "
                f"columns is {C * self.Kc}: split W into GEMVs of at most 65536 columns")
        self.value_format = (Format.INT16 if self.is_int else
                             Format.FP16 if self.dtype == Format.FP16 else Format.BF16)
        self._prepare()
        words = self.words_per_pe()
        if self.sram_base + words > self.fabric.sram_words:
            raise MappingError(
                f"layer {self.layer} ({self.M} x {self.K}, {Format(self.dtype).name}) needs "
                f"{words} SRAM words per PE on a {R} x {C} array ({self.Mr} x {self.Kc} block), "
                f"but only {self.fabric.sram_words - self.sram_base} of "
                f"{self.fabric.sram_words} are free: use more PEs (about "
                f"{self._pes_needed()} in all) or --sram-words "
                f"{self.sram_base + words}")

    # ---- sizes -----------------------------------------------------------------------------
    @property
    def elem_bits(self) -> int:
        """Bits of one weight element (its format's width)."""
        return Format(self.dtype).bits

    def _weight_words(self) -> int:
        return math.ceil(self.Mr * self.Kc * self.elem_bits / 32)

    def words_per_pe(self) -> int:
        """SRAM words one PE needs: partial sums, weight block, bias."""
        return self.Mr + self._weight_words() + (self.Mr if self.bias is not None else 0)

    def _pes_needed(self) -> int:
        free = max(1, self.fabric.sram_words - self.sram_base)
        per_pe = self.M * self.K * self.elem_bits / 32 + self.M + self.K
        return math.ceil(per_pe / free * 1.2)

    @property
    def macs(self) -> int:
        """Useful multiply-accumulates of one GEMV (without padding)."""
        return self.M * self.K

    # ---- numbers ---------------------------------------------------------------------------
    def _prepare(self) -> None:
        R, C, Mr, Kc = self.fabric.rows, self.fabric.cols, self.Mr, self.Kc
        if not self.is_int:
            check_format_range(self.layer, "the weight matrix", self.weights, self.dtype)
        if self.bias is not None:  # the bias stays fp32
            check_format_range(self.layer, "the bias", self.bias, Format.FP32)
        W = np.zeros((R * Mr, C * Kc), dtype=np.float32)
        W[:self.M, :self.K] = np.asarray(self.weights, dtype=np.float32)
        b = np.zeros(R * Mr, dtype=np.float32)
        if self.bias is not None:
            b[:self.M] = np.asarray(self.bias, dtype=np.float32)
        if self.is_int:
            peak = float(np.max(np.abs(W))) or 1.0
            self.w_scale = peak / 127.0
            q = np.clip(np.rint(W / self.w_scale), -127, 127).astype(np.int64)
            self.w_elements = (q & 0xFF).astype(np.uint32)  # int8 bit patterns
            self.w_values = q.astype(np.int64)
            self.b_bits = np.zeros(R * Mr, dtype=np.uint32)  # bias is added on the host
            self.b_values = b
        else:
            self.w_elements = F.narrow(W.view(np.uint32), self.dtype).astype(np.uint32) \
                if self.dtype != Format.FP32 else W.view(np.uint32).copy()
            self.w_values = round_to(W, self.dtype).view(np.float32)  # as the PE sees them
            self.b_bits = b.view(np.uint32).copy()

    def quantize_x(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """int8: the activation quantised per tensor and its scale."""
        peak = float(np.max(np.abs(x))) or 1.0
        scale = peak / 127.0
        return np.clip(np.rint(x / scale), -127, 127).astype(np.int64), scale

    def x_words(self, x) -> np.ndarray:
        """The padded activation as wavelet data (fp32 bits, or int32 for int8)."""
        x = np.asarray(x)
        if x.shape != (self.K,):
            raise MappingError(f"x must have shape ({self.K},), not {x.shape}")
        padded = np.zeros(self.fabric.cols * self.Kc, dtype=np.float32)
        if self.is_int:
            q, _ = self.quantize_x(x.astype(np.float32))
            out = np.zeros(self.fabric.cols * self.Kc, dtype=np.int64)
            out[:self.K] = q
            return (out & 0xFFFF_FFFF).astype(np.uint32)
        padded[:self.K] = np.asarray(x, dtype=np.float32)
        return padded.view(np.uint32).copy()

    # ---- fabric image ----------------------------------------------------------------------
    def addresses(self) -> dict[str, int]:
        """SRAM word addresses of this layer's region."""
        y = self.sram_base
        w = y + self.Mr
        b = w + self._weight_words()
        return {"y": y, "w": w, "b": b}

    def routes(self, r: int, c: int, table: RouteTable) -> None:
        """Add this layer's routes of tile ``(r, c)`` to ``table``."""
        R, C = self.fabric.rows, self.fabric.cols
        down = ["ramp", "s"] if r < R - 1 else ["ramp"]
        if self.sparse and r == 0:  # along row 0 from column 0's north edge, and down
            table.set(self.x_color, ["n"] if c == 0 else ["w"], down + (["e"] if c < C - 1
                                                                          else []))
        else:
            table.set(self.x_color, ["n"], down)
        table.set(self.link_colors[c % 2], ["ramp"], ["e"])
        if c > 0:
            table.set(self.link_colors[(c - 1) % 2], ["w"], ["ramp"])

    def assembly(self, r: int, c: int) -> tuple[str, str]:
        """This layer's part of PE ``(r, c)``'s program: (declarations, code)."""
        C = self.fabric.cols
        L, Mr, Kc = f"L{self.layer}_", self.Mr, self.Kc
        a = self.addresses()
        acc = "int32" if self.is_int else "fp32"
        wfmt = Format(self.dtype).name.lower()
        add, mac = ("iadd", "imac") if self.is_int else ("fadd", "fmac")
        out_color = self.link_colors[c % 2]
        in_color = self.link_colors[(c - 1) % 2] if c > 0 else self.link_colors[1]
        last = c == C - 1
        w_elem = a['w'] * 32 // self.elem_bits  # element address of the weight block
        xfmt = Format(self.value_format).name.lower() if self.sparse else acc
        lines = [
            f".dsd {L}y mem {acc} base={a['y']} len={Mr}",
            f".dsd {L}w mem {wfmt} base={w_elem} len={Mr}"
            + (f" stride={Kc}" if self.sparse else ""),
            f".dsd {L}x reg {xfmt} r7",
            f".dsd {L}out fabout {acc} color={out_color} len={Mr}",
            f".dsd {L}zero reg {acc} r0",
            f".task {self.x_color} {L}on_x",
            f".task {self.reduce_task} {L}reduce",
        ]
        if self.sparse:  # this column's chunk of the broadcast indices
            lines.append(f".filter {self.x_color} range {c * Kc} {(c + 1) * Kc - 1}")
        else:
            lines.append(f".reg r{self.counter_reg} {Kc}")
        if c > 0:
            lines.append(f".dsd {L}in fabin {acc} color={in_color} len={Mr}")
        if last and self.bias is not None and not self.is_int:
            lines.append(f".dsd {L}b mem {acc} base={a['b']} len={Mr}")
        body = []
        if not last:
            body.append(f"{add} {L}out, {L}in, {L}y" if c > 0 else f"mov {L}out, {L}y")
        else:
            if c > 0:
                body.append(f"{add} {L}y, {L}in, {L}y")
            if self.bias is not None and not self.is_int:
                body.append(f"fadd {L}y, {L}y, {L}b")
            relu = "imax" if self.is_int else "fmax"
            body.append(f"{relu} {L}out, {L}y, {L}zero" if self.relu_on_fabric
                        else f"mov {L}out, {L}y")
        if self.sparse:
            return "\n".join(lines), "\n".join([
                f"{L}on_x:",
                f"    dindex {L}w, r7, {(w_elem - c * Kc) % (1 << 16)}",
                f"    {mac} {L}y, {L}w, {L}x",
                "    end",
                f"{L}reduce:",
                *[f"    {b}" for b in body],
                f"    mov {L}y, {L}zero",
                "    end",
            ])
        code = [
            f"{L}on_x:",
            f"    {mac} {L}y, {L}w, {L}x",
            f"    daddbi {L}w, {Mr}",
            f"    addi r{self.counter_reg}, r{self.counter_reg}, -1",
            f"    bnz r{self.counter_reg}, {L}wait",
            f"    blk {self.x_color}",  # no new x until this GEMV is reduced
            f"    act {self.reduce_task}",
            f"{L}wait:",
            "    end",
            f"{L}reduce:",
            *[f"    {b}" for b in body],
            f"    mov {L}y, {L}zero",
            f"    ldi r6, {a['w'] * 32 // self.elem_bits}",
            f"    dsetb {L}w, r6",
            f"    li r{self.counter_reg}, {Kc}",
            f"    unblk {self.x_color}",
            "    end",
        ]
        return "\n".join(lines), "\n".join(code)

    def data(self, r: int, c: int) -> dict[int, np.ndarray]:
        """SRAM contents of this layer in PE ``(r, c)``: {word address: words}."""
        Mr, Kc = self.Mr, self.Kc
        block = self.w_elements[r * Mr:(r + 1) * Mr, c * Kc:(c + 1) * Kc]
        # dense: column-major (column k, then k + 1); sparse: row-major (column k at k)
        words = pack_elements(block if self.sparse else block.T, self.elem_bits)
        out = {self.addresses()["w"]: words}
        if c == self.fabric.cols - 1 and self.bias is not None and not self.is_int:
            out[self.addresses()["b"]] = self.b_bits[r * Mr:(r + 1) * Mr]
        return out

    # ---- host side -------------------------------------------------------------------------
    def inputs(self, x) -> dict[tuple[str, int], list[Wavelet]]:
        """Wavelets to send: dense, ``x`` chunk ``c`` into the north edge of column ``c``;
        sparse, the nonzeros with the chunks interleaved and the end-of-vector control
        wavelet into the north edge of column 0."""
        if self.sparse:
            values, index = self.sparse_x(x)
            chunk = index // self.Kc
            rank = np.arange(len(index)) - np.searchsorted(chunk, chunk)  # place in its chunk
            order = np.argsort(rank, kind="stable")  # interleaved, each chunk still in order
            values, index = values[order], index[order]
            end = ControlWord.const({"payload": 0, "task": self.reduce_task, "no_task": 0,
                                     "commands": []}).as_bits()
            return {("n", 0): [Wavelet(SparseWord.const({"value": int(v), "index": int(k)})
                                       .as_bits(), self.x_color)
                               for v, k in zip(values, index)]
                    + [Wavelet(end, self.x_color, 1)]}
        words = self.x_words(x)
        return {("n", c): [Wavelet(int(v), self.x_color)
                           for v in words[c * self.Kc:(c + 1) * self.Kc]]
                for c in range(self.fabric.cols)}

    def sparse_x(self, x) -> tuple[np.ndarray, np.ndarray]:
        """``x``'s nonzeros as they travel: (16-bit values in ``value_format``, their indices),
        in index order. ``x`` is rounded to the value format (int8: quantised) first; entries
        that are then zero (of either sign) are not sent.

        Raises
        ------
        MappingError
            If ``x`` has the wrong shape, or a finite entry overflows the value format.
        """
        x = np.asarray(x)
        if x.shape != (self.K,):
            raise MappingError(f"x must have shape ({self.K},), not {x.shape}")
        if self.is_int:
            q, _ = self.quantize_x(x.astype(np.float32))
            index = np.flatnonzero(q)
            return (q[index] & 0xFFFF).astype(np.uint32), index
        check_format_range(self.layer, "x", x, self.value_format)
        bits = F.narrow(np.asarray(x, np.float32).view(np.uint32), self.value_format)
        index = np.flatnonzero(bits & 0x7FFF)  # not +0 or -0
        return np.asarray(bits[index], np.uint32), index

    def expect(self) -> dict[tuple[str, int], int]:
        """Outputs each east port delivers per GEMV."""
        return {("e", r): self.Mr for r in range(self.fabric.rows)}

    def gather(self, received: dict[tuple[str, int], list[Wavelet]]) -> np.ndarray:
        """The raw output words ``y[0:M]`` (fp32 bits or int32) from the east ports.

        Raises
        ------
        MappingError
            If a port delivered the wrong number of wavelets.
        """
        out = []
        for r in range(self.fabric.rows):
            ws = received.get(("e", r), [])
            if len(ws) != self.Mr:
                raise MappingError(f"east port {r} delivered {len(ws)} results, expected "
                                   f"{self.Mr}")
            out += [w.data for w in ws]
        return np.asarray(out[:self.M], dtype=np.uint32)

    def values(self, raw: np.ndarray, x=None) -> np.ndarray:
        """Output values (float32) from raw words (int8: dequantised, then bias and, after a
        bias, ReLU applied on the host)."""
        if not self.is_int:
            return raw.view(np.float32).copy()
        _, sx = self.quantize_x(np.asarray(x, dtype=np.float32))
        y = raw.view(np.int32).astype(np.float64) * self.w_scale * sx
        y = y + self.b_values[:self.M]
        if self.relu and not self.relu_on_fabric:
            y = np.maximum(y, 0.0)
        return y.astype(np.float32)

    def reference(self, x) -> np.ndarray:
        """numpy result with the fabric's rounding order (raw words of ``y[0:M]``)."""
        R, C, Mr, Kc = self.fabric.rows, self.fabric.cols, self.Mr, self.Kc
        if self.sparse:  # only the nonzeros are added, each rounded to the value format
            values, index = self.sparse_x(x)
            dense = np.zeros(C * Kc, np.uint32)
            dense[index] = F.widen(values, self.value_format)
            sent = np.zeros(C * Kc, bool)
            sent[index] = True
        else:
            dense, sent = self.x_words(x), np.ones(C * Kc, bool)
        if self.is_int:
            W = self.w_values
            xs = dense.view(np.int32).astype(np.int64)
            total = np.zeros(R * Mr, dtype=np.int64)
            for c in range(C):
                part = W[:, c * Kc:(c + 1) * Kc] @ xs[c * Kc:(c + 1) * Kc]
                total = total + part
            wrapped = (total & 0xFFFF_FFFF).astype(np.uint32)
            if self.relu_on_fabric:
                wrapped = F.imax(wrapped, np.zeros_like(wrapped))
            return wrapped[:self.M]
        # Column c's partial sums y[:, c] accumulate x[c·Kc + k] for k = 0, 1, ... in order;
        # the columns are independent, so step k updates all of them at once.
        W = self.w_values.view(np.uint32).reshape(R * Mr, C, Kc)
        xb = dense.reshape(C, Kc)
        y = np.zeros((R * Mr, C), dtype=np.uint32)
        sb = sent.reshape(C, Kc)
        for k in range(Kc):  # a column whose x_k was not sent leaves y unchanged
            y = np.where(sb[None, :, k], F.fmac(W[:, :, k], xb[None, :, k], y), y)
        s = None
        for c in range(C):
            s = y[:, c] if s is None else F.fadd(s, y[:, c])
        if self.bias is not None:
            s = F.fadd(s, self.b_bits)
        if self.relu:
            s = F.fmax(s, np.zeros_like(s))
        return np.asarray(s[:self.M], dtype=np.uint32)


def map_layers(layers: list[tuple[np.ndarray, np.ndarray | None, bool]], dtype: Format,
               fabric: FabricParams, *, sparse: bool = False
               ) -> tuple[list[GemvMapping], FabricImage]:
    """Map GEMV layers onto one fabric image (all resident at once).

    Parameters
    ----------
    layers : list of (W, b, relu)
        ``W`` of shape (M, K), ``b`` of shape (M,) or None, ``relu`` a bool.
    dtype : Format
        Weight format of every layer.
    fabric : FabricParams
    sparse : bool
        Map every layer as a sparse GEMV (:class:`GemvMapping` ``sparse``).

    Returns
    -------
    mappings : list of GemvMapping
    image : FabricImage
        Routes and PE programs of every tile.

    Raises
    ------
    MappingError
        If a layer does not fit (SRAM, program memory, colours, tasks, DSDs), its weights
        (or bias) overflow the weight format, or layer ``i``'s ``K`` is not layer ``i - 1``'s
        ``M`` (the layers do not chain).
    """
    mappings: list[GemvMapping] = []
    base = 0
    for i, (W, b, relu) in enumerate(layers):
        m = GemvMapping(W, b, relu, dtype, fabric, layer=i, sram_base=base, sparse=sparse)
        if mappings and m.K != mappings[-1].M:
            prev = mappings[-1]
            raise MappingError(
                f"layers do not chain: layer {i} has W of shape ({m.M}, {m.K}) and takes "
                f"{m.K} inputs, but layer {i - 1} (W of shape ({prev.M}, {prev.K})) gives "
                f"{prev.M} outputs; layer {i}'s W needs {prev.M} columns")
        base += m.words_per_pe()
        mappings.append(m)
    image = FabricImage()
    pe_params = fabric.pe_params()
    for r in range(fabric.rows):
        for c in range(fabric.cols):
            table = RouteTable(fabric.num_colors)
            decls, codes = [], []
            for m in mappings:
                m.routes(r, c, table)
                d, code = m.assembly(r, c)
                decls.append(d)
                codes.append(code)
            text = "\n".join(decls + codes)
            try:
                pe = assemble(text, pe_params)
            except AsmError as exc:
                raise MappingError(f"PE ({r}, {c}) program does not fit: {exc}") from None
            for m in mappings:
                for addr, words in m.data(r, c).items():
                    pe.add_words(addr, words, pe_params)
            image.tiles[r, c] = TileProgram(table, pe)
    return mappings, image

