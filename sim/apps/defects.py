"""Random repairable defect maps, for ``wafer run --defects`` and the fabric tests."""

from __future__ import annotations

import numpy as np

from sim.apps.errors import WorkloadError

__all__ = ["random_defects"]


def random_defects(rows: int, physical_cols: int, spares: int, count: int,
                   rng: np.random.Generator) -> np.ndarray:
    """A random repairable defect map with exactly ``count`` defective tiles, at most ``spares``
    in any row (what the repair solver of :mod:`fabric.repair` can always bypass).

    The one generator of *repairable* maps, shared by ``wafer run --defects`` and the tests.
    (:func:`sim.analysis.yield_model.sample_defect_map` is different: it draws Poisson defects
    from a density, and its maps may be unrepairable, which is what the yield model counts.)

    Parameters
    ----------
    rows : int
        Rows of the array (>= 1).
    physical_cols : int
        Physical columns, logical columns plus spares (> ``spares``).
    spares : int
        Spare columns per row (>= 0): the most defects a row may hold.
    count : int
        Defective tiles to place (0 to ``rows * spares``).
    rng : numpy.random.Generator
        Random source; the same seed gives the same map.

    Returns
    -------
    np.ndarray of bool, shape (rows, physical_cols)
        ``True`` marks a defective tile.

    Raises
    ------
    WorkloadError
        If the sizes are out of range, or ``count`` defects cannot be placed repairably (more
        than ``rows * spares``); the message names the flags to change.
    """
    if rows < 1 or spares < 0 or physical_cols <= spares:
        raise WorkloadError(f"a defect map needs rows >= 1 and 0 <= spares < physical columns, "
                            f"not rows={rows}, spares={spares}, physical columns "
                            f"{physical_cols}")
    if count < 0:
        raise WorkloadError(f"--defects must be 0 or more, not {count}")
    if count > rows * spares:
        raise WorkloadError(f"{count} defects cannot be repaired with {spares} spare column(s) "
                            f"on {rows} rows (at most {rows * spares}); use fewer --defects, "
                            f"more --spares or more --rows")
    d = np.zeros((rows, physical_cols), dtype=bool)
    per_row = np.zeros(rows, dtype=int)
    placed = 0
    while placed < count:
        r = int(rng.integers(rows))
        if per_row[r] >= spares:
            continue
        free = np.nonzero(~d[r])[0]
        d[r, int(rng.choice(free))] = True
        per_row[r] += 1
        placed += 1
    return d
