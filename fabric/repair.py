"""The repair solver: from a defect map to the tiles that form the logical array.

Physical array: ``rows × (cols + spares)`` tiles. Each row is repaired on its own: its logical
columns ``0 .. cols-1`` are given, in order, to the row's first ``cols`` working tiles; every
other tile of the row (defective, or a working spare left over) is disabled and bypassed. A row
with more than ``spares`` defective tiles cannot be repaired.

Because a logical column ``j`` always lands on physical column ``j .. j + spares``, the vertical
neighbour of a tile is at most ``spares`` columns left or right of it: the ``(2S+1):1``
vertical multiplexers of :mod:`fabric.tile` select it with ``sel = offset + spares``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["UnrepairableError", "RepairMap", "repair", "MAX_SPARES"]

#: Largest number of spare columns: the shell's 4-bit selects hold offsets -7 .. +7.
MAX_SPARES = 7


class UnrepairableError(ValueError):
    """A defect map with a row that has more defective tiles than spare columns."""

    def __init__(self, row: int, defects: int, spares: int, columns: list[int]):
        self.row, self.defects, self.spares, self.columns = row, defects, spares, columns
        super().__init__(
            f"row {row} has {defects} defective tiles (physical columns {columns}) but only "
            f"{spares} spare column{'s' if spares != 1 else ''}: it cannot be repaired; build "
            f"the fabric with --spares {defects} or more, or use a wafer with fewer defects"
        )


@dataclass(frozen=True)
class RepairMap:
    """Where each logical tile sits on the physical array.

    Attributes
    ----------
    rows, cols, spares : int
        Logical rows and columns; spare columns.
    defects : np.ndarray[bool] of shape (rows, cols + spares)
        The defect map repaired.
    column : np.ndarray[int] of shape (rows, cols)
        ``column[r, j]`` is the physical column of logical tile ``(r, j)``.
    """

    rows: int
    cols: int
    spares: int
    defects: np.ndarray
    column: np.ndarray

    @property
    def physical_cols(self) -> int:
        return self.cols + self.spares

    @property
    def enabled(self) -> np.ndarray:
        """Boolean ``(rows, cols + spares)``: the tiles that form the logical array."""
        out = np.zeros((self.rows, self.physical_cols), dtype=bool)
        for r in range(self.rows):
            out[r, self.column[r]] = True
        return out

    def physical(self, row: int, col: int) -> tuple[int, int]:
        """Physical coordinates of logical tile ``(row, col)``.

        Raises
        ------
        IndexError
            If the logical tile is outside the array.
        """
        if not (0 <= row < self.rows and 0 <= col < self.cols):
            raise IndexError(f"logical tile ({row}, {col}) is outside the {self.rows} x "
                             f"{self.cols} array")
        return row, int(self.column[row, col])

    def logical(self, row: int, phys_col: int) -> tuple[int, int] | None:
        """Logical coordinates of a physical tile, or ``None`` if it is disabled."""
        hits = np.nonzero(self.column[row] == phys_col)[0]
        return (row, int(hits[0])) if len(hits) else None

    def selects(self, row: int, phys_col: int) -> tuple[int, int]:
        """``(sel_n, sel_s)`` of an enabled physical tile: its vertical neighbours' offsets + S.

        The host's edge ports sit at the logical column's own index, as if row -1 and row
        ``rows`` were defect-free rows without spares.
        """
        logical = self.logical(row, phys_col)
        if logical is None:
            return 0, 0
        j = logical[1]
        north = int(self.column[row - 1, j]) if row > 0 else j
        south = int(self.column[row + 1, j]) if row < self.rows - 1 else j
        return north - phys_col + self.spares, south - phys_col + self.spares


def repair(defects, cols: int, spares: int) -> RepairMap:
    """Repair a defect map.

    Parameters
    ----------
    defects : array-like of bool, shape (rows, cols + spares)
        ``True`` marks a defective tile.
    cols : int
        Logical columns.
    spares : int
        Spare columns (0 to ``MAX_SPARES``).

    Returns
    -------
    RepairMap

    Raises
    ------
    ValueError
        If the map's shape does not match ``cols + spares`` or the parameters are out of range.
    UnrepairableError
        If a row has more than ``spares`` defective tiles (names the row and its defects).
    """
    if not isinstance(spares, int) or not 0 <= spares <= MAX_SPARES:
        raise ValueError(f"spares must be an integer from 0 to {MAX_SPARES}, not {spares!r}")
    if not isinstance(cols, int) or cols < 1:
        raise ValueError(f"cols must be a positive integer, not {cols!r}")
    d = np.asarray(defects, dtype=bool)
    if d.ndim != 2 or d.shape[1] != cols + spares or d.shape[0] < 1:
        raise ValueError(
            f"the defect map must have shape (rows, {cols + spares}) for {cols} columns and "
            f"{spares} spares, not {d.shape}")
    column = np.zeros((d.shape[0], cols), dtype=np.int64)
    for r in range(d.shape[0]):
        working = np.nonzero(~d[r])[0]
        if len(working) < cols:
            bad = np.nonzero(d[r])[0].tolist()
            raise UnrepairableError(r, len(bad), spares, bad)
        column[r] = working[:cols]
    return RepairMap(d.shape[0], cols, spares, d.copy(), column)
