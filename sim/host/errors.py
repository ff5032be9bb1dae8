"""What the host driver raises: a request it cannot carry out, a run that did not finish, a run
that stopped at a tile's error line."""

from __future__ import annotations

from pe.isa import ErrorFlag

__all__ = ["DriverError", "RunTimeout", "FabricError"]


class DriverError(RuntimeError):
    """The host driver could not do what was asked (the message says why)."""


class RunTimeout(DriverError):
    """A run did not finish within its cycle limit.

    Attributes
    ----------
    busy_tiles : list of (row, col)
        Logical tiles that were still busy.
    pending : dict
        Host ports with wavelets the fabric had not accepted.
    """

    def __init__(self, cycles: int, busy_tiles, pending, missing, received=None):
        self.busy_tiles, self.pending, self.missing = busy_tiles, pending, missing
        self.received = received or {}
        super().__init__(
            f"the fabric did not finish within {cycles} cycles: busy logical tiles "
            f"{busy_tiles or 'none'}; host ports still sending {pending or 'none'}; "
            f"outputs still expected {missing or 'none'} (received so far: "
            f"{self.received or 'nothing'})")

_ERROR_TEXT = {
    ErrorFlag.BOUNDS: "a memory DSD element fell outside SRAM",
    ErrorFlag.OPCODE: "unknown opcode",
    ErrorFlag.OPERANDS: "illegal operand combination",
    ErrorFlag.CONFIG_BUSY: "configuration access while running",
    ErrorFlag.TASK: "task id beyond the task table",
}


class FabricError(DriverError):
    """A run stopped because tiles raised their error line: a PE fault or dropped wavelets.

    The fabric's ``error`` output is the OR of every working tile's PE error flags and router
    drop counter (both sticky until the next :meth:`sim.host.driver.FabricDriver.load`); a run
    ends as soon as it rises instead of waiting for its cycle limit.

    Attributes
    ----------
    tiles : dict[(row, col), (ErrorFlag, int)]
        Per logical tile with a problem: its PE's error flags and the number of wavelets its
        router dropped (saturating at 65535).
    cycles : int or None
        Cycles from the start of the run to the error (RTL; ``None`` on golden).
    """

    def __init__(self, tiles: dict[tuple[int, int], tuple[ErrorFlag, int]], cycles: int | None):
        self.tiles, self.cycles = tiles, cycles
        parts = []
        for (r, c), (flags, dropped) in sorted(tiles.items()):
            what = [f"PE fault {f.name} ({_ERROR_TEXT.get(f, 'see docs/isa.md')})"
                    for f in ErrorFlag if f in flags]
            if dropped:
                what.append(f"router dropped {dropped} wavelet(s) whose colour has no route "
                            f"accepting the port they arrived on")
            parts.append(f"tile ({r}, {c}): " + ", ".join(what))
        when = f" after {cycles} cycles" if cycles is not None else ""
        super().__init__(f"the fabric stopped with an error{when}: "
                         + ("; ".join(parts) or "no tile reports one any more"))
