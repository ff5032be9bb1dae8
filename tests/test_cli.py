"""The ``wafer`` command line: reports, JSON keys and clear errors (golden backend, no RTL)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from sim.cli.wafer import main


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_elaborate_writes_verilog_and_summary(tmp_path):
    result = invoke("elaborate", "--rows", "2", "--cols", "3", "--spares", "1", "-o",
                    str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["physical_tiles"] == 8 and summary["logical_tiles"] == 6
    text = (tmp_path / summary["verilog_file"]).read_text()
    assert text.count("module wafer_tile(") == 1  # the tile is emitted once
    assert text.count("wafer_tile tile_") == 8  # and instantiated for every physical tile
    assert (tmp_path / "summary.md").exists()


def test_elaborate_with_registered_router_outputs(tmp_path):
    result = invoke("elaborate", "--rows", "1", "--cols", "1", "--output-register", "-o",
                    str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["top"].endswith("_or")
    assert (summary["parameters"]["output_register"], summary["parameters"]["queue_depth"],
            summary["parameters"]["in_depth"]) == (True, 3, 3)


def test_bad_parameters_are_one_clear_line(tmp_path):
    result = invoke("elaborate", "--rows", "2", "--cols", "2", "--spares", "9", "-o",
                    str(tmp_path))
    assert result.exit_code == 2
    assert "spares must be between 0 and 7, not 9" in result.output
    assert "Traceback" not in result.output


def test_yield_json_and_plot(tmp_path):
    result = invoke("yield", "--rows", "20", "--cols", "20", "--spares", "0,2",
                    "--density", "0.1,1", "--tile-area", "0.05", "--samples", "200",
                    "--out", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["points"]) == 4
    assert (tmp_path / "yield.png").stat().st_size > 1000
    bad = invoke("yield", "--density", "a,b", "--out", str(tmp_path))
    assert bad.exit_code == 2 and "comma-separated list of numbers" in bad.output


def test_mlp_digits_golden_report(tmp_path):
    result = invoke("run", "mlp-digits", "--backend", "golden", "--limit", "6", "--rows", "2",
                    "--cols", "2", "--defects", "1", "--dtype", "bf16", "--out", str(tmp_path),
                    "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for key in ("bit_exact", "latency_cycles", "cycles_per_image", "images_per_second",
                "macs_per_cycle", "utilisation", "accuracy_fabric", "accuracy_float32",
                "agreement", "regions"):
        assert key in report
    assert report["images"] == 6 and report["reference_exact"] is True
    assert report["mode"] == "pipelined" and len(report["regions"]) == 2


def test_mlp_digits_int8_golden(tmp_path):
    result = invoke("run", "mlp-digits", "--backend", "golden", "--limit", "30", "--rows", "2",
                    "--cols", "2", "--dtype", "int8", "--out", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    # int8 requantises between layers on the host: the pipeline falls back, and says why.
    assert report["mode"] == "host-orchestrated"
    assert "int8 layers are host-orchestrated only" in report["mode_reason"]
    assert report["reference_exact"] is True
    assert report["accuracy_fabric"] >= report["accuracy_float32"] - 0.1
    assert report["agreement"] >= 0.9  # fraction of predictions equal to float32


def test_gemv_errors(tmp_path):
    from safetensors.numpy import save_file

    save_file({"w1": np.ones((4, 4), np.float32), "w2": np.ones((3, 5), np.float32),
               "v": np.ones(4, np.float32)}, str(tmp_path / "m.safetensors"))
    several = invoke("run", "gemv", "--weights", str(tmp_path / "m.safetensors"),
                     "--backend", "golden")
    assert several.exit_code == 2 and "choose one with --tensor NAME" in several.output
    not_2d = invoke("run", "gemv", "--weights", str(tmp_path / "m.safetensors"),
                    "--tensor", "v", "--backend", "golden")
    assert not_2d.exit_code == 2 and "needs a 2-D matrix" in not_2d.output
    missing = invoke("run", "gemv", "--weights", str(tmp_path / "nope.npy"),
                     "--backend", "golden")
    assert missing.exit_code == 2 and "does not exist" in missing.output
    dtype = invoke("run", "gemv", "--weights", str(tmp_path / "m.safetensors"), "--tensor",
                   "w1", "--dtype", "fp4", "--backend", "golden")
    assert dtype.exit_code == 2 and "unknown dtype 'fp4'" in dtype.output
    big = np.ones((300, 300), np.float32)
    np.save(tmp_path / "big.npy", big)
    too_big = invoke("run", "gemv", "--weights", str(tmp_path / "big.npy"), "--rows", "1",
                     "--cols", "1", "--sram-words", "1024", "--backend", "golden")
    assert too_big.exit_code == 2
    assert "SRAM words per PE" in too_big.output and "--max-rows/--max-cols" in too_big.output


def test_gemv_golden_on_a_safetensors_tensor(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(3)
    save_file({"enc.weight": rng.standard_normal((12, 20)).astype(np.float32),
               "dec.weight": rng.standard_normal((20, 12)).astype(np.float32)},
              str(tmp_path / "m.safetensors"))
    result = invoke("run", "gemv", "--weights", str(tmp_path / "m.safetensors"), "--tensor",
                    "dec.weight", "--max-rows", "16", "--rows", "2", "--cols", "2",
                    "--backend", "golden", "--json", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["shape"] == [16, 12] and report["full_shape"] == [20, 12]
    # The golden backend is the reference itself: there is no golden comparison to report.
    assert report["bit_exact"] is None
    assert report["reference_exact"] is True  # golden fabric vs numpy, same rounding order
    text = invoke("run", "gemv", "--weights", str(tmp_path / "m.safetensors"), "--tensor",
                  "dec.weight", "--rows", "2", "--cols", "2", "--backend", "golden", "--out",
                  str(tmp_path / "o"))
    assert text.exit_code == 0, text.output
    line = next(x for x in text.output.splitlines() if "bit-exact vs golden model" in x)
    assert line.split()[-3:] == ["n/a", "(golden", "backend)"]


def _no_traceback(result, code=2):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("args, flag", [
    (["run", "mlp-digits", "--hidden", "0"], "--hidden"),
    (["run", "mlp-digits", "--limit", "0"], "--limit"),
    (["run", "mlp-digits", "--rows", "0"], "--rows"),
    (["run", "mlp-digits", "--cols", "-1"], "--cols"),
    (["run", "mlp-digits", "--spares", "-1"], "--spares"),
    (["run", "mlp-digits", "--defects", "-2"], "--defects"),
    (["run", "mlp-digits", "--seed", "-1"], "--seed"),
    (["run", "gemv", "--weights", "w.npy", "--max-rows", "0"], "--max-rows"),
    (["run", "gemv", "--weights", "w.npy", "--max-cols", "0"], "--max-cols"),
    (["elaborate", "--rows", "0", "-o", "x"], "--rows"),
    (["elaborate", "--spares", "-1", "-o", "x"], "--spares"),
    (["yield", "--samples", "0"], "--samples"),
    (["yield", "--cols", "0"], "--cols"),
])
def test_out_of_range_integers_are_usage_errors(args, flag):
    result = CliRunner().invoke(main, args + ["--backend", "golden"] * (args[0] == "run"))
    _no_traceback(result)
    assert f"Invalid value for '{flag}'" in result.output and "range" in result.output


@pytest.mark.parametrize("command", ["yield", "elaborate", "mlp-digits", "gemv"])
def test_unwritable_out_is_one_clear_line(tmp_path, command):
    (tmp_path / "a_file").write_text("not a directory")
    out = tmp_path / "a_file" / "sub"
    np.save(tmp_path / "w.npy", np.ones((2, 3), np.float32))
    args = {
        "yield": ["yield", "--rows", "4", "--cols", "4", "--spares", "1", "--density", "1",
                  "--samples", "10"],
        "elaborate": ["elaborate", "--rows", "1", "--cols", "1"],
        "mlp-digits": ["run", "mlp-digits", "--backend", "golden", "--limit", "1"],
        "gemv": ["run", "gemv", "--backend", "golden", "--weights", str(tmp_path / "w.npy"),
                 "--rows", "1", "--cols", "1"],
    }[command]
    result = invoke(*args, "--out", str(out))
    _no_traceback(result)
    assert f"cannot write to the output directory {out}" in result.output
    assert "choose a writable directory with --out" in result.output


def test_elaborate_more_than_16_colours(tmp_path):
    help_text = invoke("elaborate", "--help").output
    assert "--tasks" in help_text and "max(16, --colors)" in " ".join(help_text.split())
    result = invoke("elaborate", "--rows", "1", "--cols", "1", "--colors", "24", "-o",
                    str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    parameters = json.loads(result.output)["parameters"]
    assert parameters["num_colors"] == 24 and parameters["num_tasks"] == 24
    too_few = invoke("elaborate", "--rows", "1", "--cols", "1", "--colors", "24", "--tasks",
                     "16", "-o", str(tmp_path))
    _no_traceback(too_few)
    assert "--tasks must be between 24 and 64" in too_few.output
    assert "at least --colors" in too_few.output and "num_" not in too_few.output


@pytest.mark.parametrize("args, message", [
    (["--spares", "1,1"], "--spares has duplicates: [1, 1]"),
    (["--spares", "-1"], "--spares must be >= 0, not -1"),
    (["--tile-area", "0"], "--tile-area must be > 0 mm²"),
    (["--density", "0.1,0.1"], "--density has duplicates"),
    (["--density", "-1"], "--density must be >= 0 defects/mm²"),
])
def test_yield_errors_name_the_flags(tmp_path, args, message):
    result = invoke("yield", "--rows", "4", "--cols", "4", "--samples", "10", "--out",
                    str(tmp_path), *args)
    _no_traceback(result)
    assert message in result.output
    assert "spares_list" not in result.output and "tile_area_mm2" not in result.output


@pytest.mark.parametrize("sparse", [False, True])
def test_gemv_zeros_and_sparse(tmp_path, sparse):
    W = np.random.default_rng(4).standard_normal((9, 40)).astype(np.float32)
    np.save(tmp_path / "w.npy", W)
    result = invoke("run", "gemv", "--weights", str(tmp_path / "w.npy"), "--rows", "2",
                    "--cols", "2", "--backend", "golden", "--zeros", "0.75", "--json", "--out",
                    str(tmp_path / "o"), *(["--sparse"] if sparse else []))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["sparse"] is sparse and report["reference_exact"] is True
    assert report["x_length"] == 40 and report["x_nonzeros"] == 10  # 30 of 40 set to zero
    assert report["macs"] == 9 * (10 if sparse else 40)  # sparse: only the nonzeros' products
    bad = invoke("run", "gemv", "--weights", str(tmp_path / "w.npy"), "--zeros", "1.5",
                 "--backend", "golden")
    assert bad.exit_code == 2 and "--zeros" in bad.output


def test_gemv_weights_beyond_fp8_are_refused(tmp_path):
    W = np.ones((3, 4), np.float32)
    W[2, 1] = 1000.0
    np.save(tmp_path / "w.npy", W)
    result = invoke("run", "gemv", "--weights", str(tmp_path / "w.npy"), "--dtype", "fp8",
                    "--rows", "1", "--cols", "1", "--backend", "golden", "--out",
                    str(tmp_path / "o"))
    _no_traceback(result)
    assert "max |value| 1000" in result.output and "e4m3 value 448" in result.output
    assert "--dtype fp16" in result.output


def test_gemv_file_without_a_matrix(tmp_path):
    from safetensors.numpy import save_file

    save_file({"v": np.ones(4, np.float32)}, str(tmp_path / "v.safetensors"))
    result = invoke("run", "gemv", "--weights", str(tmp_path / "v.safetensors"), "--backend",
                    "golden")
    _no_traceback(result)
    assert "holds no 2-D tensor (it holds: v (4,))" in result.output


def test_mlp_from_weight_files(tmp_path):
    """``wafer run mlp`` takes W0/b0/... from .npz and <prefix>i.weight/.bias from
    .safetensors, runs them pipelined, bit-exact, and refuses malformed files clearly."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(3)
    W0, b0 = rng.standard_normal((12, 20)).astype(np.float32), np.zeros(12, np.float32)
    W1 = rng.standard_normal((5, 12)).astype(np.float32)
    np.savez(tmp_path / "m.npz", W0=W0, b0=b0, W1=W1)
    save_file({"layers.0.weight": W0, "layers.0.bias": b0, "layers.1.weight": W1},
              str(tmp_path / "m.safetensors"))
    np.save(tmp_path / "x.npy", rng.standard_normal((4, 20)).astype(np.float32))
    for name in ("m.npz", "m.safetensors"):
        result = invoke("run", "mlp", "--weights", str(tmp_path / name), "--input",
                        str(tmp_path / "x.npy"), "--rows", "3", "--cols", "3",
                        "--backend", "golden", "--out", str(tmp_path / "out"), "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["mode"] == "pipelined" and report["reference_exact"] is True
        assert report["images"] == 4 and report["macs_per_image"] == 12 * 20 + 5 * 12
    np.savez(tmp_path / "gap.npz", W0=W0, W2=W1)
    np.savez(tmp_path / "chain.npz", W0=W0, W1=W0)
    np.savez(tmp_path / "name.npz", W0=W0, weights=W1)
    np.savez(tmp_path / "nan.npz", W0=np.full((3, 3), np.nan, np.float32))
    (tmp_path / "trunc.npz").write_bytes((tmp_path / "m.npz").read_bytes()[:40])
    for name, message in (("gap.npz", "numbered 0..2 without gaps"),
                          ("chain.npz", "layers do not chain"),
                          ("name.npz", "is neither a layer's weight nor its bias"),
                          ("nan.npz", "contains NaN or infinite values"),
                          ("trunc.npz", "is not a valid .npz file"),
                          ("missing.npz", "does not exist")):
        bad = invoke("run", "mlp", "--weights", str(tmp_path / name), "--backend", "golden",
                     "--out", str(tmp_path / "out"))
        assert bad.exit_code == 2, (name, bad.output)
        assert message in bad.output and "Traceback" not in bad.output, (name, bad.output)
