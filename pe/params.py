"""The processing element's parameters: defined and validated once.

:class:`PEParams` is used by the RTL (:class:`pe.pe.PE`), by the golden model
(:class:`sim.model.pe.PEModel`), by the assembler (fit checks) and by the fabric's parameters
(:meth:`fabric.array.FabricParams.pe_params`).
"""

from __future__ import annotations

from dataclasses import dataclass

from hdl.color_queue import MAX_QUEUE_DEPTH
from hdl.params import check_int
from hdl.sram import check_sram_words
from hdl.wavelet import check_num_colors

__all__ = ["PEParams", "DEFAULT_COLORS", "MAX_TASKS", "MAX_DSDS", "MAX_IMEM_WORDS"]

#: Colours by default: the WSE-2's 24 routable colours.
DEFAULT_COLORS = 24
#: Largest task table, in tasks.
MAX_TASKS = 64
#: Largest DSD table (DSD numbers are the 4-bit ``a``/``b``/``c`` instruction fields).
MAX_DSDS = 16
#: Largest program memory, in instruction words (the program counter is 16 bits).
MAX_IMEM_WORDS = 1 << 16


@dataclass(frozen=True)
class PEParams:
    """Sizes of one processing element.

    Attributes
    ----------
    sram_words : int
        SRAM bank in 32-bit words, 16 to 16384 (default 1024 = 4 KiB).
    imem_words : int
        Program memory in 32-bit instruction words, 16 to 65536 (default 256).
    num_colors : int
        Colours, 1 to 32 (default 24): data tasks ``0 .. num_colors-1`` and the input queues.
    num_tasks : int
        Task-table entries, ``num_colors`` to 64 (default 32).
    num_dsds : int
        DSD-table entries, 1 to 16 (default 16).
    in_depth : int
        Wavelets per colour's input queue, 3 to 16 (default 3: with the queue's arrival
        register and the place kept for the wavelet in the filter stage or the router's output
        register (:mod:`pe.filter`), this sustains one wavelet per cycle per colour while the
        PE takes each wavelet as it becomes the head, as a vector instruction reading the
        fabric does).
    in_flight : int
        Wavelets the router's RAMP output may have in flight beyond the ``color_ready`` it saw:
        0 (default) or 1 (a router with ``output_register``: the filters then take the link
        from that register and add no stage of their own, so the queues see one wavelet in
        flight either way).

    Raises
    ------
    TypeError
        For a value that is not an integer.
    ValueError
        For a value outside its range (the message gives the range).
    """

    sram_words: int = 1024
    imem_words: int = 256
    num_colors: int = DEFAULT_COLORS
    num_tasks: int = 32
    num_dsds: int = 16
    in_depth: int = 3
    in_flight: int = 0

    def __post_init__(self):
        check_sram_words(self.sram_words)
        check_int("imem_words", self.imem_words, 16, MAX_IMEM_WORDS, "instruction words")
        check_num_colors(self.num_colors)
        check_int("num_tasks", self.num_tasks, self.num_colors, MAX_TASKS,
                  "tasks (at least num_colors)")
        check_int("num_dsds", self.num_dsds, 1, MAX_DSDS, "DSDs")
        check_int("in_depth", self.in_depth, 3, MAX_QUEUE_DEPTH,
                  "wavelets per colour (one place for the wavelet in the filter stage or the "
                  "router's output register, two to sustain one wavelet per cycle)")
        check_int("in_flight", self.in_flight, 0, 1, "wavelets in flight")

    def as_dict(self) -> dict[str, int]:
        """The parameters as keyword arguments (``PEParams(**p.as_dict()) == p``)."""
        return {"sram_words": self.sram_words, "imem_words": self.imem_words,
                "num_colors": self.num_colors, "num_tasks": self.num_tasks,
                "num_dsds": self.num_dsds, "in_depth": self.in_depth,
                "in_flight": self.in_flight}
