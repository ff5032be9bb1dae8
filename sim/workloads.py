"""Real workloads on the fabric: a GEMV from a weight file and an MLP on scikit-learn's digits.

Both run through :mod:`sim.toolchain.mapper` and :class:`sim.host.driver.FabricDriver`, on the
RTL or the golden backend, and produce a report: results, bit-exactness against the golden model
and the numpy reference, cycles, MACs per cycle, PE utilisation, and a heat map of the fabric.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from fabric.repair import RepairMap
from sim.host.driver import FabricDriver
from sim.toolchain.mapper import GemvMapping

__all__ = [
    "WorkloadError",
    "load_weights",
    "random_defects",
    "train_digits_mlp",
    "run_layers",
    "read_counters",
    "heatmap",
]


class WorkloadError(ValueError):
    """A problem with the user's workload input (file, tensor, shape); the message says what."""


# ---- inputs ----------------------------------------------------------------------------------


def load_weights(path: str | Path, tensor: str | None = None) -> tuple[np.ndarray, str]:
    """Load a 2-D weight matrix from a ``.npy`` or ``.safetensors`` file.

    Parameters
    ----------
    path : path
    tensor : str, optional
        Tensor name in a ``.safetensors`` file; may be omitted if the file holds exactly one 2-D
        tensor.

    Returns
    -------
    (np.ndarray of float32, shape (M, K), str)
        The matrix and its name.

    Raises
    ------
    WorkloadError
        Missing or malformed file, unknown tensor (the message lists the tensors), a tensor
        that is not 2-D or not numeric.
    """
    p = Path(path)
    if not p.is_file():
        raise WorkloadError(f"weight file {p} does not exist")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise WorkloadError(f"{p} is not a valid .npy file: {exc}") from None
        name = tensor or p.stem
        if tensor is not None and tensor != p.stem:
            raise WorkloadError(f"{p} is a .npy file with a single array; --tensor does not apply")
    elif suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            tensors = load_file(str(p))
        except (SafetensorError, OSError, ValueError, TypeError) as exc:
            raise WorkloadError(f"{p} is not a valid .safetensors file: {exc}") from None
        listing = ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items()) or "none"
        if tensor is None:
            two_d = [k for k, v in tensors.items() if v.ndim == 2]
            if not two_d:
                raise WorkloadError(f"{p} holds no 2-D tensor (it holds: {listing}); a GEMV "
                                    f"needs a 2-D weight matrix")
            if len(two_d) > 1:
                raise WorkloadError(f"{p} holds several 2-D tensors ({listing}): choose one "
                                    f"with --tensor NAME")
            tensor = two_d[0]
        if tensor not in tensors:
            raise WorkloadError(f"{p} has no tensor {tensor!r}; it holds: {listing}")
        array, name = tensors[tensor], tensor
    else:
        raise WorkloadError(f"{p}: unsupported weight file type {suffix!r}; use .npy or "
                            f".safetensors")
    if array.ndim != 2:
        raise WorkloadError(f"tensor {name!r} has shape {tuple(array.shape)}: a GEMV needs a 2-D "
                            f"matrix")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype.name in ("bfloat16",)
            or "float8" in array.dtype.name):
        raise WorkloadError(f"tensor {name!r} has non-numeric dtype {array.dtype}")
    if array.size == 0:
        raise WorkloadError(f"tensor {name!r} is empty")
    wide = np.asarray(array, dtype=np.float64)
    if not np.all(np.isfinite(wide)):
        raise WorkloadError(f"tensor {name!r} contains NaN or infinite values")
    with np.errstate(over="ignore"):
        values = wide.astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise WorkloadError(f"tensor {name!r} has values beyond the float32 range (max |value| "
                            f"{np.max(np.abs(wide)):.6g}); scale it down")
    return values, name


def random_defects(rows: int, physical_cols: int, spares: int, count: int,
                   rng: np.random.Generator) -> np.ndarray:
    """A random repairable defect map with exactly ``count`` defective tiles, at most ``spares``
    in any row (what the repair solver of :mod:`fabric.repair` can always bypass).

    The one generator of *repairable* maps, shared by ``wafer run --defects`` and the tests.
    (:func:`sim.yield_model.sample_defect_map` is different: it draws Poisson defects from a
    density, and its maps may be unrepairable, which is what the yield model counts.)

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


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "openwafer"


def train_digits_mlp(hidden: int = 32, seed: int = 0, cache: Path | None = None):
    """Train (or load from the cache) an MLP classifier on scikit-learn's bundled digits.

    The data are the 1,797 8 x 8 digit images bundled with scikit-learn (no download), scaled to
    [0, 1]; 80 % train, 20 % (360 images) held out. ``MLPClassifier(hidden_layer_sizes=(hidden,),
    activation="relu", random_state=seed)``.

    Returns
    -------
    dict
        ``layers`` (list of (W of shape (out, in), b) float32), ``x_test`` (float32,
        (n, 64)), ``y_test`` (int, (n,)), ``train_accuracy``.
    """
    import sklearn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    key = hashlib.sha256(json.dumps([hidden, seed, sklearn.__version__]).encode()).hexdigest()[:12]
    path = (cache or _cache_dir()) / f"mlp_digits_{key}.npz"
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.2, random_state=seed, stratify=digits.target)
    if path.exists():
        z = np.load(path)
        layers = [(z["W1"], z["b1"]), (z["W2"], z["b2"])]
        train_accuracy = float(z["train_accuracy"])
    else:
        clf = MLPClassifier(hidden_layer_sizes=(hidden,), activation="relu", max_iter=600,
                            random_state=seed)
        clf.fit(x_train, y_train)
        layers = [(clf.coefs_[i].T.astype(np.float32), clf.intercepts_[i].astype(np.float32))
                  for i in range(2)]
        train_accuracy = float(clf.score(x_train, y_train))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, W1=layers[0][0], b1=layers[0][1], W2=layers[1][0], b2=layers[1][1],
                 train_accuracy=train_accuracy)
    return {"layers": layers, "x_test": x_test, "y_test": y_test,
            "train_accuracy": train_accuracy, "cache": str(path)}


# ---- running -----------------------------------------------------------------------------------


def run_layers(driver: FabricDriver, mappings: list[GemvMapping], x: np.ndarray,
               max_cycles: int = 1_000_000) -> tuple[list[np.ndarray], list[int | None]]:
    """Run one input through every layer (host-orchestrated: each layer's east-edge outputs are
    sent into the next layer's north edge).

    Returns
    -------
    raw : list of np.ndarray[uint32]
        Raw outputs of every layer.
    cycles : list of int or None
        Cycles of each layer's run (None on the golden backend).
    """
    raw, cycles = [], []
    value = np.asarray(x, dtype=np.float32)
    for m in mappings:
        for (edge, index), wavelets in m.inputs(value).items():
            driver.send(edge, index, wavelets)
        result = driver.run(expect=m.expect(), max_cycles=max_cycles, counters=False)
        out = m.gather(result.received)
        raw.append(out)
        cycles.append(result.cycles)
        value = m.values(out, value)
    return raw, cycles


def read_counters(driver: FabricDriver) -> tuple[np.ndarray, np.ndarray]:
    """(macs, busy cycles) of every logical PE since the last load."""
    from pe.isa import AddressMap

    R, C = driver.params.rows, driver.params.cols
    macs = np.zeros((R, C), dtype=np.int64)
    busy = np.zeros((R, C), dtype=np.int64)
    for (r, c), words in driver.read_many(AddressMap.BUSY_CYCLES, 2).items():
        busy[r, c], macs[r, c] = words
    return macs, busy


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

