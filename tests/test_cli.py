"""The ``wafer`` command line: reports, JSON keys and clear errors (golden backend, no RTL)."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from sim.cli import main


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
    for key in ("bit_exact", "cycles", "macs_per_cycle", "utilisation", "accuracy_fabric",
                "accuracy_float32", "agreement"):
        assert key in report
    assert report["images"] == 6 and report["reference_exact"] is True


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
    assert report["bit_exact"] is True and report["reference_exact"] is True
