"""Heat-map picture of a run: a per-PE fraction (MAC fraction: useful MACs per cycle, or busy
fraction) on the physical array, the layer each PE holds, defects and unused spares marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fabric.repair import RepairMap

__all__ = ["heatmap"]


def heatmap(rmap: RepairMap, fraction: np.ndarray, path: Path, title: str, *,
            label: str = "PE busy fraction", layers: np.ndarray | None = None) -> Path:
    """PNG of the physical array: a fraction per enabled PE, defective tiles crossed, unused
    spares hatched.

    Parameters
    ----------
    rmap : RepairMap
    fraction : np.ndarray of shape (rows, cols)
        Per logical PE, in [0, 1] (e.g. useful MACs per cycle).
    path : Path
    title : str
    label : str
        The colour bar's label (what ``fraction`` is).
    layers : np.ndarray of int, shape (rows, cols), optional
        The layer each logical PE holds (-1 for none): printed in its square as ``L<i>``.
    """
    busy_fraction = fraction
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
                logical = rmap.logical(r, p)
                tag = ""
                if layers is not None and logical is not None:
                    held = int(layers[logical])
                    tag = f"L{held}\n" if held >= 0 else "-\n"
                ax.text(p, r, f"{tag}{grid[r, p]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if grid[r, p] < 0.6 else "black")
    ax.set_xticks(range(P), [f"{p}" for p in range(P)])
    ax.set_yticks(range(R), [f"{r}" for r in range(R)])
    ax.set_xlabel("physical column")
    ax.set_ylabel("row")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label=label, fraction=0.046, pad=0.04)
    legend = "x = defective tile (bypassed), hatched = unused spare"
    if layers is not None:
        legend += ", L<i> = the layer a PE holds"
    fig.text(0.01, 0.01, legend, fontsize=7, color="#555555")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
