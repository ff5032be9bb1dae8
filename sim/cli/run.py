"""``wafer run``: real workloads on the simulated fabric (the main job)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np

from sim.cli.errors import UserError, number_list, output_dir, output_error, with_flag_names

__all__ = ["run"]


def _write_outputs(out: Path, report: dict, heatmap_args: tuple | None) -> None:
    """Write the heat map (``heatmap_args`` for :func:`sim.apps.heatmap.heatmap`, the path
    filled in, or None for none; its path goes into ``report``) and ``report.json``."""
    from sim.apps.heatmap import heatmap

    try:
        if heatmap_args is not None:
            rmap, fraction, title, *rest = heatmap_args
            label, layers = rest if rest else ("PE busy fraction", None)
            report["heatmap"] = str(heatmap(rmap, fraction, out / "heatmap.png", title,
                                            label=label, layers=layers))
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
        click.option("--output-register", is_flag=True,
                     help="Register the routers' outputs: two cycles per hop, 3-wavelet "
                          "queues (the Fmax trade-off of docs/architecture.md)."),
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


def _setup(rows, cols, spares, defects, fault, seed, dtype, sram_words, backend, sim,
           output_register=False):
    from fabric.array import FabricParams, registered_outputs
    from fabric.repair import UnrepairableError
    from sim.apps.defects import random_defects
    from sim.apps.errors import WorkloadError
    from sim.toolchain.mapper import MappingError, parse_dtype

    try:
        fmt = parse_dtype(dtype)
        params = FabricParams(rows=rows, cols=cols, spares=spares, sram_words=sram_words,
                              fault_injection=backend == "rtl" and defects > 0,
                              **(registered_outputs() if output_register else {}))
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


def _mlp_options(f):
    options = [
        click.option("--mode", type=click.Choice(["pipelined", "host"]), default="pipelined",
                     show_default=True, help="Layer pipeline (every layer on its own region, "
                     "images back to back) or host-orchestrated (the host moves activations "
                     "between layers); the pipeline falls back to host when it cannot take "
                     "the model."),
        click.option("--clock-mhz", type=click.FloatRange(min=0, min_open=True),
                     default=100.0, show_default=True,
                     help="Clock for the images/s figure."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _run_mlp(layers, xs, labels, *, title, workload, rows, cols, spares, defects, fault, seed,
             dtype, sram_words, backend, sim, output_register, out_dir, as_json, mode,
             clock_mhz, describe):
    """Run an MLP job and print its report (shared by ``mlp`` and ``mlp-digits``)."""
    from tqdm import tqdm

    from sim.apps.mlp_job import float_reference, run_mlp
    from sim.host.errors import DriverError
    from sim.toolchain.mapper import MappingError

    echo = (lambda *_a, **_k: None) if as_json else (lambda m: click.echo(m, err=True))
    params, fmt, defect_map = _setup(rows, cols, spares, defects, fault, seed, dtype,
                                     sram_words, backend, sim, output_register)
    out_path = output_dir(out_dir or f"out/{workload}")
    if backend == "rtl":
        echo("building and starting the RTL simulation (the first build of a fabric size takes "
             "a few minutes; later runs reuse it)...")

    def progress(items, total):
        return tqdm(items, total=total, desc=f"{workload} ({backend})", unit="image",
                    disable=as_json, file=sys.stderr)

    try:
        report, outputs, extras = run_mlp(layers, xs, params=params, dtype=fmt,
                                          backend=backend, defects=defect_map, fault=fault,
                                          sim=sim, mode=mode, clock_mhz=clock_mhz,
                                          progress=progress)
    except MappingError as exc:
        raise UserError(with_flag_names(str(exc))) from None
    except DriverError as exc:
        raise click.ClickException(str(exc)) from None
    pred = np.argmax(outputs, axis=1)
    pred_float = np.argmax(float_reference(layers, xs), axis=1)
    n = len(xs)
    report = {"workload": workload, **report,
              "agreement": float(np.mean(pred == pred_float)),
              "agreeing_predictions": int(np.sum(pred == pred_float))}
    if labels is not None:
        report["accuracy_fabric"] = float(np.mean(pred == labels))
        report["accuracy_float32"] = float(np.mean(pred_float == labels))
    fraction = extras["mac_fraction"]
    _write_outputs(out_path, report, (
        extras["repair_map"], fraction, f"{title}, {rows}x{cols}+{spares}, "
        f"{report['defects']} defects, {dtype}, {report['mode']}: MAC fraction",
        "useful MACs per cycle", extras["layers"]) if fraction is not None else None)
    mode_text = report["mode"]
    if report["mode_reason"]:
        mode_text += f" (the pipeline cannot take it: {report['mode_reason']})"
    lines = [
        ("workload", describe),
        ("fabric", f"{rows} x {cols} PEs (+{spares} spare column), "
                   f"{report['defects']} defective tile(s), {backend}"
                   f"{', registered router outputs' if output_register else ''}"),
        ("mode", mode_text),
    ]
    if report["regions"]:
        lines.append(("layer regions", "; ".join(f"L{i} {r}"
                                                 for i, r in enumerate(report["regions"]))))
    lines.append(("images", f"{n}"))
    if labels is not None:
        lines += [("accuracy on the fabric", f"{report['accuracy_fabric']:.4f}"),
                  ("accuracy of float32 numpy", f"{report['accuracy_float32']:.4f}")]
    lines += [
        ("predictions agreeing", f"{report['agreeing_predictions']} / {n}"),
        ("raw outputs bit-exact vs golden", "n/a (golden backend)" if report["bit_exact"] is None
         else ("yes" if report["bit_exact"] else "NO")),
        ("bit-exact vs numpy (same rounding)", "yes" if report["reference_exact"] else "NO"),
    ]
    if report["cycles_per_image"] is not None:
        lines += [
            ("latency (one image)", f"{report['latency_cycles']} cycles"),
            ("throughput (steady state)", f"{report['cycles_per_image']} cycles per image, "
                                          f"{report['images_per_second']} images/s at "
                                          f"{clock_mhz:g} MHz"),
            ("MACs per cycle", f"{report['macs_per_cycle']} of {rows * cols}"),
            ("PE utilisation", f"{report['utilisation']:.3f}"),
            ("heat map", report.get("heatmap", "-")),
        ]
    lines.append(("wall time", f"{report['wall_seconds']} s"))
    _report(report, lines, as_json)


@run.command(name="mlp-digits")
@_fabric_options
@_mlp_options
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Run only the first N test images.")
@click.option("--hidden", type=click.IntRange(min=1), default=32, show_default=True,
              help="Hidden units (one hidden layer; see --layers).")
@click.option("--layers", "hidden_layers", default=None,
              help="Hidden layer sizes, comma-separated (e.g. 128,128); overrides --hidden.")
def mlp_digits(rows, cols, spares, defects, fault, seed, dtype, sram_words, backend, sim,
               output_register, out_dir, as_json, mode, clock_mhz, limit, hidden, hidden_layers):
    """Train (cached) an MLP on scikit-learn's digits and run the test images on the fabric."""
    from sim.apps.digits import train_digits_mlp

    sizes = (hidden,) if hidden_layers is None else tuple(number_list(hidden_layers, "--layers",
                                                                       int))
    if any(h < 1 for h in sizes):
        raise UserError(f"--layers must be positive sizes, not {hidden_layers}")
    model = train_digits_mlp(hidden=sizes, seed=seed)
    x_test, y_test = model["x_test"], model["y_test"]
    if limit is not None:
        x_test, y_test = x_test[:limit], y_test[:limit]
    shape = "-".join(str(s) for s in (64, *sizes, 10))
    _run_mlp(model["layers"], x_test, y_test, title="mlp-digits", workload="mlp-digits",
             rows=rows, cols=cols, spares=spares, defects=defects, fault=fault, seed=seed,
             dtype=dtype, sram_words=sram_words, backend=backend, sim=sim,
             output_register=output_register, out_dir=out_dir,
             as_json=as_json, mode=mode, clock_mhz=clock_mhz,
             describe=f"mlp-digits, {shape} MLP, {dtype} weights, fp32 activations")


@run.command(name="mlp")
@_fabric_options
@_mlp_options
@click.option("--weights", type=click.Path(), required=True,
              help=".npz or .safetensors file: W0, b0, W1, b1, ... (or <prefix>0.weight, "
                   "<prefix>0.bias, ...), each W of shape (outputs, inputs).")
@click.option("--input", "input_file", type=click.Path(), default=None,
              help=".npy file of inputs, shape (N, K) or (K,) (default: random).")
@click.option("--images", type=click.IntRange(min=1), default=16, show_default=True,
              help="Random inputs to run when no --input is given.")
def mlp(rows, cols, spares, defects, fault, seed, dtype, sram_words, backend, sim,
        output_register, out_dir,
        as_json, mode, clock_mhz, weights, input_file, images):
    """Any MLP from a weight file (ReLU between layers), on the fabric."""
    from sim.apps.errors import WorkloadError
    from sim.apps.weights import load_mlp

    try:
        layers = load_mlp(weights)
        K = layers[0][0].shape[1]
        if input_file is None:
            xs = np.random.default_rng(seed).standard_normal((images, K)).astype(np.float32)
        else:
            p = Path(input_file)
            if not p.is_file():
                raise WorkloadError(f"--input {input_file}: no such file")
            try:
                xs = np.load(p, allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise WorkloadError(f"{p} is not a valid .npy file: {exc}") from None
            xs = np.atleast_2d(xs)
            if xs.ndim != 2 or xs.shape[1] != K or not np.issubdtype(xs.dtype, np.number) \
                    or not np.all(np.isfinite(xs)):
                raise WorkloadError(f"{p}: inputs must be finite numbers of shape (N, {K}) or "
                                    f"({K},), not {xs.dtype} of shape {xs.shape}")
            xs = xs.astype(np.float32)
    except WorkloadError as exc:
        raise UserError(str(exc)) from None
    shape = "-".join(str(s) for s in (K, *(W.shape[0] for W, _ in layers)))
    _run_mlp(layers, xs, None, title=Path(weights).name, workload="mlp", rows=rows,
             cols=cols, spares=spares, defects=defects, fault=fault, seed=seed, dtype=dtype,
             sram_words=sram_words, backend=backend, sim=sim,
             output_register=output_register, out_dir=out_dir,
             as_json=as_json, mode=mode, clock_mhz=clock_mhz,
             describe=f"{Path(weights).name}, {shape} MLP, {dtype} weights, fp32 activations")


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
@click.option("--sparse", is_flag=True,
              help="Sparse GEMV: send only x's nonzeros, as sparse wavelets that each PE's "
                   "range filter sorts by index.")
@click.option("--zeros", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Set this fraction of x's entries (chosen at random) to zero.")
def gemv(rows, cols, spares, defects, fault, seed, dtype, sram_words, backend, sim,
         output_register, out_dir,
         as_json, weights, tensor, x_source, max_rows, max_cols, relu, sparse, zeros):
    """One GEMV y = W x with W from a weight file, checked bit for bit against the golden
    model and numpy. With --sparse only x's nonzeros travel (the WSE's sparse activations);
    MACs and utilisation then count only the nonzeros' multiply-accumulates."""
    from sim.apps.errors import WorkloadError
    from sim.apps.layers import read_counters, run_layers
    from sim.apps.weights import load_weights
    from sim.host.driver import FabricDriver
    from sim.host.errors import DriverError
    from sim.toolchain.mapper import MappingError, map_layers

    echo = (lambda *_a, **_k: None) if as_json else (lambda m: click.echo(m, err=True))
    params, fmt, defect_map = _setup(rows, cols, spares, defects, fault, seed, dtype,
                                     sram_words, backend, sim, output_register)
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
        x[rng.permutation(x.size)[:round(zeros * x.size)]] = 0.0
        mappings, image = map_layers([(W, None, relu)], fmt, params, sparse=sparse)
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
    nonzeros = len(m.sparse_x(x)[1]) if sparse else int(np.count_nonzero(x))
    useful = m.M * nonzeros if sparse else m.macs  # dense: every w·x is done, zero or not
    report = {
        "workload": "gemv", "backend": backend, "weights": str(weights), "tensor": name,
        "shape": list(W.shape), "full_shape": list(full), "dtype": dtype,
        "rows": rows, "cols": cols, "spares": spares, "defects": int(defect_map.sum()),
        "output_register": output_register, "bit_exact": exact, "reference_exact": ref_exact,
        "max_abs_error_vs_float32": float(np.max(np.abs(y - y_float))),
        "sparse": sparse, "x_nonzeros": nonzeros, "x_length": int(x.size),
        "cycles": cyc,
        "macs": useful,
        "macs_per_cycle": round(useful / cyc, 3) if cyc else None,
        "utilisation": round(useful / (pes * cyc), 4) if cyc else None,
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    _write_outputs(out_path, report, (
        driver.repair_map, busy / cyc,
        f"gemv {W.shape[0]}x{W.shape[1]} {dtype} on {rows}x{cols}+{spares}: PE busy fraction")
        if cyc else None)
    lines = [
        ("workload", f"GEMV, W = {name} {W.shape[0]} x {W.shape[1]} (of {full[0]} x {full[1]}), "
                     f"{dtype}"),
        ("x", f"{nonzeros} of {x.size} entries nonzero, "
              + ("sparse (only the nonzeros sent)" if sparse else "dense (all sent)")),
        ("fabric", f"{rows} x {cols} PEs (+{spares} spare), {report['defects']} defective "
                   f"tile(s), {backend}{', registered router outputs' if output_register else ''}"),
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
