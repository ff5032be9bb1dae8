"""Example fabric kernels written with the WSE's programmable fabric: switches moved by control
wavelets that the PEs send.

:func:`broadcast_reduce` is a row broadcast followed by a row reduction **on one colour**, the
pattern of WaferLLM's and the Cerebras SDK's collectives: the colour's route at every router
changes position as the phases pass, driven by a control wavelet that ends each vector
(docs/isa.md, "Tasks": a FABOUT DSD with ``ctrl``). For every row of ``cols`` PEs, with ``x`` at
PE 0 and ``w_j`` at PE ``j`` (``length`` fp32 elements each), PE 0 ends with::

    s = p_0 + (p_1 + (... + p_{cols-1}))      p_j = round(x * w_j), every operation in fp32

Switch positions of the colour (ring mode, ``NO_POP``: every router a control wavelet leaves
applies its single ``ADVANCE``; each router sees one control wavelet per position, so it ends a
run at position 0)::

    router 0           pos 0 RAMP -> E          pos 1 E -> RAMP
    router 0 < j < n-1 pos 0 W -> RAMP, E       pos 1 E -> RAMP      pos 2 RAMP -> W
    router n-1         pos 0 W -> RAMP          pos 1 RAMP -> W

1. PE 0 sends ``x`` east, then a control wavelet; every router it leaves moves to position 1.
2. Each PE ``j > 0`` multiplies the elements of ``x`` as they arrive (a data task per wavelet).
   PE ``n-1`` then sends its product west, ending with a control wavelet: its router wraps to 0,
   router ``n-2`` moves to position 2 (RAMP -> W). A PE's sends wait at its router's RAMP input
   until the position accepts them, so no PE needs to know when the switch moved.
3. Each middle PE adds the elements from the east into its product as they arrive, then sends
   the sum west with a control wavelet; PE 0 adds them into its own product.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hdl.wavelet import ControlWord, SwitchCommand
from router.params import PopMode
from sim.host.driver import FabricImage, TileProgram
from sim.model.pe import PEParams
from sim.model.wavelet import Wavelet
from sim.toolchain.asm import assemble
from sim.toolchain.routes import RouteTable

__all__ = ["SwitchKernel", "broadcast_reduce"]

#: SRAM element addresses of the kernel's vectors (fp32, one word each).
X_BASE, W_BASE, P_BASE = 0, 64, 128


@dataclass
class SwitchKernel:
    """A kernel ready to run through :class:`sim.host.driver.FabricDriver`.

    Attributes
    ----------
    image : FabricImage
        Routes (with switches) and PE programs of every logical tile.
    inputs : dict[(edge, index), list[Wavelet]]
        What the host sends to start it.
    result : list of (row, col, word address, words)
        Where the results are read back (SRAM words).
    """

    image: FabricImage
    inputs: dict[tuple[str, int], list[Wavelet]] = field(default_factory=dict)
    result: list[tuple[int, int, int, int]] = field(default_factory=list)


def _advance() -> int:
    """The data word of the kernel's control wavelets: one ADVANCE, no control task."""
    return ControlWord.const({"no_task": 1, "commands": [SwitchCommand.ADVANCE]}).as_bits()


def broadcast_reduce(x: np.ndarray, w: np.ndarray, pe: PEParams, *, color: int = 3,
                     start_color: int = 2) -> SwitchKernel:
    """Broadcast ``x`` along every row, multiply by each PE's ``w``, reduce to the row's PE 0.

    Parameters
    ----------
    x : array of shape (rows, length), float32
        Each row's broadcast vector (held by the row's PE 0).
    w : array of shape (rows, cols, length), float32
        Each PE's vector.
    pe : PEParams
        The PEs' sizes.
    color, start_color : int
        The kernel's colour (broadcast and reduction) and the colour of the host's start
        wavelet, which enters each row's west port.

    Returns
    -------
    SwitchKernel
        Its ``result`` is each row's sum at PE ``(row, 0)``, ``length`` words from word
        :data:`P_BASE`.

    Raises
    ------
    ValueError
        For shapes that do not match, a length that does not fit the SRAM layout, or colours
        outside the PEs' colours or equal.
    """
    x = np.asarray(x, dtype=np.float32)
    w = np.asarray(w, dtype=np.float32)
    if x.ndim != 2 or w.ndim != 3 or w.shape[0] != x.shape[0] or w.shape[2] != x.shape[1]:
        raise ValueError(f"x must have shape (rows, length) and w (rows, cols, length); got "
                         f"{x.shape} and {w.shape}")
    rows, cols, length = w.shape
    if not 1 <= length <= P_BASE - W_BASE or P_BASE + length > pe.sram_words:
        raise ValueError(f"length {length} does not fit: 1 to {P_BASE - W_BASE} elements, in "
                         f"a PE of {pe.sram_words} SRAM words")
    for name, c in (("color", color), ("start_color", start_color)):
        if not 0 <= c < pe.num_colors:
            raise ValueError(f"{name} {c} is outside the PEs' {pe.num_colors} colours")
    if color == start_color:
        raise ValueError("color and start_color must differ")
    kernel = SwitchKernel(FabricImage())
    for r in range(rows):
        for c in range(cols):
            routes = _routes(c, cols, color, start_color, pe.num_colors)
            text = _program(c, cols, length, color, start_color)
            text += _data(W_BASE, w[r, c])
            if c == 0:
                text += _data(X_BASE, x[r])
            kernel.image.tiles[r, c] = TileProgram(routes, assemble(text, pe))
        kernel.inputs["w", r] = [Wavelet(0, start_color)]
        kernel.result.append((r, 0, P_BASE, length))
    return kernel


def _data(addr: int, values: np.ndarray) -> str:
    """A ``.data`` line with the exact bits of fp32 ``values`` (as int32 words)."""
    words = np.asarray(values, dtype=np.float32).view(np.int32)
    return f".data {addr} int32 " + " ".join(str(int(v)) for v in words) + "\n"


def _routes(c: int, cols: int, color: int, start_color: int, num_colors: int) -> RouteTable:
    table = RouteTable(num_colors)
    if c == 0:
        table.set(start_color, ["w"], ["ramp"])
    if cols == 1:
        return table
    if c == 0:
        table.set(color, ["ramp"], ["e"])
        positions = [(["e"], ["ramp"])]
    elif c < cols - 1:
        table.set(color, ["w"], ["ramp", "e"])
        positions = [(["e"], ["ramp"]), (["ramp"], ["w"])]
    else:
        table.set(color, ["w"], ["ramp"])
        positions = [(["ramp"], ["w"])]
    return table.set_switch(color, positions, ring=True, pop=PopMode.NO_POP)


def _program(c: int, cols: int, length: int, color: int, start_color: int) -> str:
    """The assembly of the PE in column ``c`` (data lines added by the caller)."""
    head = f"""
        .dsd x    mem    fp32  base={X_BASE} len={length}
        .dsd w    mem    fp32  base={W_BASE} len={length}
        .dsd p    mem    fp32  base={P_BASE} len={length}
        .dsd pe   mem    fp32  base={P_BASE} len=1
        .dsd we   mem    fp32  base={W_BASE} len=1
        .dsd xr   reg    fp32  r7
        .dsd out  fabout fp32  color={color} len={length}
        .dsd ctl  fabout int32 color={color} len=1 ctrl
        .dsd word reg    int32 r1
        .reg r4 {length}
        .reg r5 {length}
    """

    def send(vector: str) -> str:  # the vector, then the control wavelet that ends it
        return f"""
        mov out, {vector}
        ldi r1, {_advance()}
        mov ctl, word
        """

    if c == 0:
        broadcast = "" if cols == 1 else send("x")
        return head + f"""
        .task {start_color} main
        .task {color} on_element
    main:
        {broadcast}
        fmul p, x, w
        end
    on_element:                     ; one element of the reduction from the east
        fadd pe, pe, xr
        daddbi pe, 1
        end
    """
    last = c == cols - 1
    return head + f"""
        .task {color} on_element
    on_element:
        bz r4, reduce
        fmul pe, we, xr             ; p[i] = x[i] * w[i]
        daddbi pe, 1
        daddbi we, 1
        addi r4, r4, -1
        bnz r4, done
        daddbi pe, {-length}
        {send("p") if last else ""}
    done:
        end
    reduce:                         ; p[i] += the sum from the east
        fadd pe, pe, xr
        daddbi pe, 1
        addi r5, r5, -1
        bnz r5, done
        {send("p")}
        end
    """
