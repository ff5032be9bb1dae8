"""``wafer run``: real workloads on the simulated fabric (the main job)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np

from sim.cli.errors import UserError, output_dir, output_error, with_flag_names

__all__ = ["run"]


def _write_outputs(out: Path, report: dict, heatmap_args: tuple | None) -> None:
    """Write the heat map (``heatmap_args`` for :func:`sim.apps.heatmap.heatmap`, the path
    filled in, or None for none; its path goes into ``report``) and ``report.json``."""
    from sim.apps.heatmap import heatmap

    try:
        if heatmap_args is not None:
            rmap, busy, title = heatmap_args
            report["heatmap"] = str(heatmap(rmap, busy, out / "heatmap.png", title))
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    except OSError as exc:
        raise output_error(out, exc) from None


def _fabric_options(f):
    options = [
        click.option("--rows", type=click.IntRange(min=1), default=4, show_default=True,
                     help="Logical PE rows."),
        click.option("--cols", type=click.IntRange(min=1), default=4, show_default=True,
                     help="Logical PE columns."),
        click.option("--spares", type=click.IntRange(min=0), default=1, show_default=True,
                     help="Spare columns."),
        click.option("--defects", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Random defective tiles (repaired; fault-injected on RTL)."),
        click.option("--fault", type=click.Choice(["random", "stuck"]), default="random",
                     show_default=True, help="How defective tiles misbehave (RTL)."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Seed for defects, inputs and training."),
        click.option("--dtype", default="fp32", show_default=True,
                     help="Weight format: fp32, bf16, fp16, fp8 (e4m3), e5m2, int8."),
        click.option("--sram-words", type=int, default=1024, show_default=True,
                     help="SRAM per PE in 32-bit words."),
        click.option("--backend", type=click.Choice(["rtl", "golden"]), default="rtl",
                     show_default=True, help="RTL simulation or the golden model."),
        click.option("--sim", type=click.Choice(["verilator", "icarus"]), default=None,
                     help="Simulator for the RTL backend (default verilator)."),
        click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
                     help="Directory for the heat map and report (default out/<workload>)."),
        click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON "
                     "object."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.group()
def run() -> None:
    """Run a real workload on the simulated fabric and report result, cycles and utilisation."""


def _setup(rows, cols, spares, defects, fault, seed, dtype, sram_words, backend, sim):
    from fabric.array import FabricParams
    from fabric.repair import UnrepairableError
    from sim.apps.defects import random_defects
    from sim.apps.errors import WorkloadError
    from sim.toolchain.mapper import MappingError, parse_dtype

    try:
        fmt = parse_dtype(dtype)
        params = FabricParams(rows=rows, cols=cols, spares=spares, sram_words=sram_words,
                              fault_injection=backend == "rtl" and defects > 0)
        defect_map = random_defects(rows, params.physical_cols, spares, defects,
                                    np.random.default_rng(seed))
    except (MappingError, WorkloadError, UnrepairableError, TypeError, ValueError) as exc:
        raise UserError(with_flag_names(str(exc))) from None
    return params, fmt, defect_map


def _driver(params, backend, defect_map, fault, sim, optimize, echo):
    from sim.host.driver import FabricDriver
    from sim.host.errors import DriverError

    if backend == "rtl":
        echo("building and starting the RTL simulation (the first build of a fabric size takes "
             "a few minutes; later runs reuse it)...")
    try:
        return FabricDriver(params, backend=backend, defects=defect_map, fault=fault, sim=sim,
                            optimize=optimize)
    except DriverError as exc:
        raise click.ClickException(str(exc)) from None


def _report(report: dict, lines: list[tuple[str, str]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report))
        return
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        click.echo(f"  {key:<{width}}  {value}")


@run.command(name="mlp-digits")
@_fabric_options
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Run only the first N test images.")
@click.option("--hidden", type=click.IntRange(min=1), default=32, show_default=True,
              help="Hidden units.")
def mlp_digits(rows, cols, spares, defects, fault, seed, dtype, sram_words, backend, sim,
               out_dir, as_json, limit, hidden):
    """Train (cached) an MLP on scikit-learn's digits and run the test images on the fabric."""
    from tqdm import tqdm

    from sim.apps.digits import train_digits_mlp
    from sim.apps.layers import read_counters, run_layers
    from sim.host.driver import FabricDriver
    from sim.host.errors import DriverError
    from sim.toolchain.mapper import MappingError, map_layers

    echo = (lambda *_a, **_k: None) if as_json else (lambda m: click.echo(m, err=True))
    params, fmt, defect_map = _setup(rows, cols, spares, defects, fault, seed, dtype,
                                     sram_words, backend, sim)
    out_path = output_dir(out_dir or "out/mlp-digits")
    t0 = time.perf_counter()
    model = train_digits_mlp(hidden=hidden, seed=seed)
    layers = [(W, b, i == 0) for i, (W, b) in enumerate(model["layers"])]
    x_test, y_test = model["x_test"], model["y_test"]
    if limit is not None:
        x_test, y_test = x_test[:limit], y_test[:limit]
    try:
        mappings, image = map_layers(layers, fmt, params)
    except MappingError as exc:
        raise UserError(str(exc)) from None

    driver = _driver(params, backend, defect_map, fault, sim, optimize=True, echo=echo)
    golden = FabricDriver(params, backend="golden") if backend == "rtl" else None
    try:
        driver.load(image)
        if golden is not None:
            golden.load(image)
        logits, cycles, exact, ref_exact = [], [], True, True
        for x in tqdm(x_test, desc=f"mlp-digits ({backend})", unit="image", disable=as_json,
                      file=sys.stderr):
            raw, cyc = run_layers(driver, mappings, x)
            cycles.append(sum(c or 0 for c in cyc))
            if golden is not None:
                g_raw, _ = run_layers(golden, mappings, x)
                exact &= all(np.array_equal(a, b) for a, b in zip(raw, g_raw))
            # The numpy reference with the fabric's rounding order, layer by layer; each
            # layer's values need its input (int8 dequantises with the input's scale).
            value = x
            for m, out in zip(mappings, raw):
                ref_exact &= np.array_equal(m.reference(value), out)
                value = m.values(out, value)
            logits.append(value)
        macs, busy = read_counters(driver)
    except (DriverError, MappingError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        driver.close()
    pred_fabric = np.argmax(np.asarray(logits), axis=1)
    ref = x_test
    for i, (W, b) in enumerate(model["layers"]):
        ref = ref @ W.T + b
        if i == 0:
            ref = np.maximum(ref, 0)
    pred_float = np.argmax(ref.astype(np.float32), axis=1)
    n = len(y_test)
    total_cycles = int(sum(cycles))
    useful = sum(m.macs for m in mappings)
    pes = params.rows * params.cols
    report = {
        "workload": "mlp-digits",
        "backend": backend,
        "rows": rows, "cols": cols, "spares": spares, "defects": int(defect_map.sum()),
        "dtype": dtype,
        "images": n,
        "accuracy_fabric": float(np.mean(pred_fabric == y_test)),
        "accuracy_float32": float(np.mean(pred_float == y_test)),
        "agreement": float(np.mean(pred_fabric == pred_float)),
        "agreeing_predictions": int(np.sum(pred_fabric == pred_float)),
        "bit_exact": bool(exact) if golden is not None else None,
        "reference_exact": bool(ref_exact),
        "cycles": round(total_cycles / n, 1) if backend == "rtl" else None,
        "macs_per_inference": useful,
        "macs_per_cycle": round(useful * n / total_cycles, 3) if total_cycles else None,
        "utilisation": round(useful * n / (pes * total_cycles), 4) if total_cycles else None,
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    _write_outputs(out_path, report, (
        driver.repair_map, busy / total_cycles,
        f"mlp-digits, {rows}x{cols}+{spares}, {report['defects']} defects, {dtype}: PE busy "
        f"fraction") if backend == "rtl" and total_cycles else None)
    lines = [
        ("workload", f"mlp-digits, 64-{hidden}-10 MLP, {dtype} weights, "
                     + ("int8 activations (per-tensor scale), int32 accumulation"
                        if dtype == "int8" else "fp32 activations")),
        ("fabric", f"{rows} x {cols} PEs (+{spares} spare column), "
                   f"{report['defects']} defective tile(s), {backend}"),
        ("images", f"{n}"),
        ("accuracy on the fabric", f"{report['accuracy_fabric']:.4f}"),
        ("accuracy of float32 numpy", f"{report['accuracy_float32']:.4f}"),
        ("predictions agreeing", f"{report['agreeing_predictions']} / {n}"),
        ("raw outputs bit-exact vs golden", "n/a (golden backend)" if golden is None
         else ("yes" if exact else "NO")),
        ("bit-exact vs numpy (same rounding)", "yes" if ref_exact else "NO"),
    ]
    if report["cycles"] is not None:
        lines += [("cycles per inference", f"{report['cycles']}"),
                  ("MACs per cycle", f"{report['macs_per_cycle']}"),
                  ("PE utilisation", f"{report['utilisation']:.3f}"),
                  ("heat map", report.get("heatmap", "-"))]
    lines.append(("wall time", f"{report['wall_seconds']} s"))
    _report(report, lines, as_json)


@run.command(name="gemv")
@_fabric_options
@click.option("--weights", type=click.Path(), required=True,
              help=".npy or .safetensors file with the weight matrix.")
@click.option("--tensor", default=None, help="Tensor name in a .safetensors file.")
@click.option("--x", "x_source", default="random", show_default=True,
              help="'random' or a .npy file with the input vector.")
@click.option("--max-rows", type=click.IntRange(min=1), default=None,
              help="Use only the first N rows of W.")
@click.option("--max-cols", type=click.IntRange(min=1), default=None,
              help="Use only the first N columns of W.")
@click.option("--relu", is_flag=True, help="Apply ReLU to the result.")
def gemv(rows, cols, spares, defects, fault, seed, dtype, sram_words, backend, sim, out_dir,
         as_json, weights, tensor, x_source, max_rows, max_cols, relu):
    """One GEMV y = W x with W from a weight file, checked bit for bit against the golden
    model and numpy."""
    from sim.apps.errors import WorkloadError
    from sim.apps.layers import read_counters, run_layers
    from sim.apps.weights import load_weights
    from sim.host.driver import FabricDriver
    from sim.host.errors import DriverError
    from sim.toolchain.mapper import MappingError, map_layers

    echo = (lambda *_a, **_k: None) if as_json else (lambda m: click.echo(m, err=True))
    params, fmt, defect_map = _setup(rows, cols, spares, defects, fault, seed, dtype,
                                     sram_words, backend, sim)
    try:
        W, name = load_weights(weights, tensor)
        full = W.shape
        W = W[:max_rows or W.shape[0], :max_cols or W.shape[1]]
        rng = np.random.default_rng(seed)
        if x_source == "random":
            x = rng.standard_normal(W.shape[1]).astype(np.float32)
        else:
            xp = Path(x_source)
            if not xp.is_file():
                raise WorkloadError(f"--x {x_source}: no such file (or use 'random')")
            try:
                x = np.load(xp, allow_pickle=False).astype(np.float32)
            except (ValueError, OSError) as exc:
                raise WorkloadError(f"{xp} is not a valid .npy file: {exc}") from None
            if x.shape != (W.shape[1],):
                raise WorkloadError(f"x has shape {x.shape}, but W has {W.shape[1]} columns")
        mappings, image = map_layers([(W, None, relu)], fmt, params)
    except (WorkloadError, MappingError) as exc:
        hint = "" if max_rows or max_cols else " (or slice W with --max-rows/--max-cols)"
        raise UserError(f"{exc}{hint if 'SRAM' in str(exc) else ''}") from None
    m = mappings[0]
    out_path = output_dir(out_dir or "out/gemv")
    t0 = time.perf_counter()
    driver = _driver(params, backend, defect_map, fault, sim, optimize=False, echo=echo)
    try:
        driver.load(image)
        raw, cycles = run_layers(driver, mappings, x)
        macs, busy = read_counters(driver)
    except (DriverError, MappingError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        driver.close()
    exact = None  # the golden backend is the reference: nothing to compare it with
    if backend == "rtl":
        golden = FabricDriver(params, backend="golden")
        golden.load(image)
        g_raw, _ = run_layers(golden, mappings, x)
        exact = bool(np.array_equal(raw[0], g_raw[0]))
    y = m.values(raw[0], x)
    ref_exact = bool(np.array_equal(raw[0], m.reference(x)))
    y_float = W @ x
    if relu:
        y_float = np.maximum(y_float, 0)
    pes = rows * cols
    cyc = cycles[0]
    report = {
        "workload": "gemv", "backend": backend, "weights": str(weights), "tensor": name,
        "shape": list(W.shape), "full_shape": list(full), "dtype": dtype,
        "rows": rows, "cols": cols, "spares": spares, "defects": int(defect_map.sum()),
        "bit_exact": exact, "reference_exact": ref_exact,
        "max_abs_error_vs_float32": float(np.max(np.abs(y - y_float))),
        "cycles": cyc,
        "macs": m.macs,
        "macs_per_cycle": round(m.macs / cyc, 3) if cyc else None,
        "utilisation": round(m.macs / (pes * cyc), 4) if cyc else None,
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    _write_outputs(out_path, report, (
        driver.repair_map, busy / cyc,
        f"gemv {W.shape[0]}x{W.shape[1]} {dtype} on {rows}x{cols}+{spares}: PE busy fraction")
        if cyc else None)
    lines = [
        ("workload", f"GEMV, W = {name} {W.shape[0]} x {W.shape[1]} (of {full[0]} x {full[1]}), "
                     f"{dtype}"),
        ("fabric", f"{rows} x {cols} PEs (+{spares} spare), {report['defects']} defective "
                   f"tile(s), {backend}"),
        ("bit-exact vs golden model", "n/a (golden backend)" if exact is None
         else ("yes" if exact else "NO")),
        ("bit-exact vs numpy (same rounding)", "yes" if ref_exact else "NO"),
        ("max |y - float32 W x|", f"{report['max_abs_error_vs_float32']:.3g}"),
    ]
    if cyc:
        lines += [("cycles", f"{cyc}"), ("MACs per cycle", f"{report['macs_per_cycle']}"),
                  ("PE utilisation", f"{report['utilisation']:.3f}"),
                  ("heat map", report["heatmap"])]
    _report(report, lines, as_json)
