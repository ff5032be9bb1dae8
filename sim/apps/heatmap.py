"""Heat-map picture of a run: each PE's busy fraction on the physical array, defects and unused
spares marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fabric.repair import RepairMap

__all__ = ["heatmap"]


def heatmap(rmap: RepairMap, busy_fraction: np.ndarray, path: Path, title: str) -> Path:
    """PNG of the physical array: busy fraction of each enabled PE, defective tiles crossed,
    unused spares hatched.

    Parameters
    ----------
    rmap : RepairMap
    busy_fraction : np.ndarray of shape (rows, cols)
        Per logical PE, in [0, 1].
    path : Path
    title : str
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    R, P = rmap.rows, rmap.physical_cols
    grid = np.full((R, P), np.nan)
    for r in range(R):
        for j in range(rmap.cols):
            grid[r, rmap.column[r, j]] = busy_fraction[r, j]
    fig = Figure(figsize=(1.2 + 0.9 * P, 0.9 + 0.8 * R))
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1)
    enabled = rmap.enabled
    for r in range(R):
        for p in range(P):
            if rmap.defects[r, p]:
                ax.plot([p - 0.4, p + 0.4], [r - 0.4, r + 0.4], color="#c0392b", lw=2)
                ax.plot([p - 0.4, p + 0.4], [r + 0.4, r - 0.4], color="#c0392b", lw=2)
            elif not enabled[r, p]:
                ax.add_patch(Rectangle((p - 0.5, r - 0.5), 1, 1, fill=False, hatch="//",
                                       edgecolor="#888888", lw=0))
            else:
                ax.text(p, r, f"{grid[r, p]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if grid[r, p] < 0.6 else "black")
    ax.set_xticks(range(P), [f"{p}" for p in range(P)])
    ax.set_yticks(range(R), [f"{r}" for r in range(R)])
    ax.set_xlabel("physical column")
    ax.set_ylabel("row")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="PE busy fraction", fraction=0.046, pad=0.04)
    fig.text(0.01, 0.01, "x = defective tile (bypassed), hatched = unused spare",
             fontsize=7, color="#555555")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
