"""Running a whole MLP on the fabric and reporting it: ``wafer run mlp`` and ``wafer run
mlp-digits``.

Two modes:

* **pipelined** (default; :mod:`sim.toolchain.pipeline`): every layer resident on its own region,
  activations flowing between regions over the fabric, the images streamed back to back. The
  report gives the latency (cycles for one image through the empty pipeline), the throughput
  (cycles per image in steady state, and images/s at a stated clock), MACs per cycle and PE
  utilisation in steady state.
* **host-orchestrated** (:mod:`sim.toolchain.mapper`): all layers resident, the host moving each
  image's activations from layer to layer; the fallback for models the pipeline cannot take
  (int8, or too big at once), and the report says why it ran.

Steady state on the RTL: image 0 runs alone (its cycles are the latency), then the other images
run as one batch; each image of the batch after the first adds one steady-state period, so the
period is ``(batch cycles - latency) / (batch images - 1)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from fabric.array import FabricParams
from hdl.formats import Format
from sim.apps.layers import read_counters, run_layers, run_pipelined
from sim.host.driver import FabricDriver
from sim.toolchain.mapper import MappingError, map_layers
from sim.toolchain.pipeline import PipelineMapping

__all__ = ["run_mlp", "float_reference", "MODES"]

#: The ``--mode`` choices.
MODES = ("pipelined", "host")


def float_reference(layers: list[tuple[np.ndarray, np.ndarray | None]],
                    xs: np.ndarray) -> np.ndarray:
    """The MLP in float32 numpy (ReLU between layers): shape ``(N, M_last)``."""
    value = np.asarray(xs, dtype=np.float32)
    for i, (W, b) in enumerate(layers):
        value = value @ W.T + (0 if b is None else b)
        if i < len(layers) - 1:
            value = np.maximum(value, 0)
    return value.astype(np.float32)


def run_mlp(layers: list[tuple[np.ndarray, np.ndarray | None]], xs: np.ndarray, *,
            params: FabricParams, dtype: Format, backend: str, defects: np.ndarray,
            fault: str = "random", sim: str | None = None, mode: str = "pipelined",
            clock_mhz: float = 100.0, progress: Callable | None = None,
            make_driver: Callable | None = None) -> tuple[dict, np.ndarray, dict]:
    """Run ``xs`` through an MLP on the fabric and check it against the golden model and numpy.

    Parameters
    ----------
    layers : list of (W of shape (M, K), b of shape (M,) or None)
        ReLU follows every layer but the last.
    xs : np.ndarray of shape (N, K)
        The inputs.
    params : FabricParams
    dtype : Format
        Weight format.
    backend : {"rtl", "golden"}
    defects : np.ndarray of bool, shape (rows, cols + spares)
    mode : {"pipelined", "host"}
        The pipeline falls back to the host-orchestrated mode when it cannot take the model;
        the report's ``mode`` and ``mode_reason`` say what ran and why.
    clock_mhz : float
        Clock for the images/s figure.
    progress : callable(iterable, total) -> iterable, optional
        Wraps the per-image loop of the host-orchestrated mode (a progress bar).
    make_driver : callable(params, backend, defects) -> FabricDriver, optional
        Builds the driver (default: :class:`FabricDriver` with ``fault``, ``sim``, an optimised
        RTL build).

    Returns
    -------
    report : dict
        Figures (see :func:`sim.cli.run`); cycle figures are None on the golden backend.
    outputs : np.ndarray of float32, shape (N, M_last)
        The fabric's results.
    extras : dict
        ``repair_map``, ``mac_fraction`` (per logical PE, useful MACs per cycle over the
        run; None on golden) and ``layers`` (the layer each logical PE holds, or None) for the
        heat map.

    Raises
    ------
    MappingError, sim.host.errors.DriverError
        From mapping (the model does not fit either way) or from the run.
    ValueError
        For an unknown mode or backend.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if make_driver is None:
        def make_driver(p, b, d):
            return FabricDriver(p, backend=b, defects=d, fault=fault, sim=sim,
                                optimize=True)
    t0 = time.perf_counter()
    xs = np.asarray(xs, dtype=np.float32)
    n = len(xs)
    relus = [i < len(layers) - 1 for i in range(len(layers))]
    spec = [(W, b, r) for (W, b), r in zip(layers, relus)]
    pm, reason = None, None
    if mode == "pipelined":
        try:
            pm = PipelineMapping(spec, dtype, params)
        except MappingError as exc:
            reason = str(exc)
    macs = int(sum(W.size for W, _ in layers))
    pes = params.rows * params.cols
    driver = make_driver(params, backend, defects)
    golden = make_driver(params, "golden", None) if backend == "rtl" else None
    try:
        if pm is not None:
            out, figures = _pipelined(driver, golden, pm, xs)
            held = pm.layer_of()
            regions = [f"{r.orientation} {r.rows}x{r.cols} at ({r.row0}, {r.col0})"
                       for r in pm.regions]
        else:
            mappings, image = map_layers(spec, dtype, params)
            out, figures = _host(driver, golden, mappings, image, xs, progress)
            held, regions = None, None
        counters = read_counters(driver)[0] if backend == "rtl" else None
    finally:
        driver.close()
    total = figures.pop("total_cycles")
    period = figures["cycles_per_image"]
    report = {
        "mode": "pipelined" if pm is not None else "host-orchestrated",
        "mode_reason": reason if mode == "pipelined" and pm is None else None,
        "regions": regions,
        "backend": backend,
        "rows": params.rows, "cols": params.cols, "spares": params.spares,
        "output_register": params.output_register,
        "defects": int(np.asarray(defects).sum()),
        "dtype": dtype.name.lower(),
        "images": n,
        "macs_per_image": macs,
        **figures,
        "clock_mhz": clock_mhz,
        "images_per_second": round(clock_mhz * 1e6 / period, 1) if period else None,
        "macs_per_cycle": round(macs / period, 3) if period else None,
        "utilisation": round(macs / (pes * period), 4) if period else None,
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    extras = {"repair_map": driver.repair_map, "layers": held,
              "mac_fraction": counters / total if counters is not None and total else None}
    return report, out, extras


def _pipelined(driver, golden, pm: PipelineMapping, xs: np.ndarray) -> tuple[np.ndarray, dict]:
    driver.load(pm.image)
    n = len(xs)
    raw0, latency = run_pipelined(driver, pm, xs[:1])
    raws, total, batch = [raw0], latency, None
    if n > 1:
        raw_rest, batch = run_pipelined(driver, pm, xs[1:])
        raws.append(raw_rest)
        total = (latency or 0) + (batch or 0)
    raw = np.concatenate(raws)
    period = None
    if latency is not None and batch is not None and n > 2:
        period = round((batch - latency) / (n - 2), 1)
    exact = None
    if golden is not None:
        golden.load(pm.image)
        g_raw, _ = run_pipelined(golden, pm, xs)
        exact = bool(np.array_equal(raw, g_raw))
    figures = {"bit_exact": exact,
               "reference_exact": bool(np.array_equal(raw, pm.reference(xs))),
               "latency_cycles": latency, "cycles_per_image": period, "total_cycles": total}
    return pm.values(raw), figures


def _host(driver, golden, mappings, image, xs, progress) -> tuple[np.ndarray, dict]:
    driver.load(image)
    if golden is not None:
        golden.load(image)
    outs, cycles, exact, ref_exact = [], [], True, True
    loop = progress(xs, len(xs)) if progress else xs
    for x in loop:
        raw, cyc = run_layers(driver, mappings, x)
        cycles.append(sum(c or 0 for c in cyc))
        if golden is not None:
            g_raw, _ = run_layers(golden, mappings, x)
            exact &= all(np.array_equal(a, b) for a, b in zip(raw, g_raw))
        value = x
        for m, r in zip(mappings, raw):
            ref_exact &= bool(np.array_equal(m.reference(value), r))
            value = m.values(r, value)
        outs.append(value)
    rtl = golden is not None
    per = round(sum(cycles) / len(xs), 1) if rtl else None
    figures = {"bit_exact": bool(exact) if rtl else None, "reference_exact": bool(ref_exact),
               "latency_cycles": per, "cycles_per_image": per,
               "total_cycles": sum(cycles) if rtl else None}
    return np.asarray(outs, dtype=np.float32), figures
