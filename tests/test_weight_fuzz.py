"""Fuzzing the weight-file readers (``wafer run mlp --weights``, ``wafer run gemv --weights``):
truncated files, flipped bytes, wrong dtypes, NaN and infinite weights, huge shapes. Each gets
a clear one-line error (exit code 2, no traceback) or, when the corruption left a valid file, a
normal run; and a failed run writes nothing into its output directory."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from safetensors.numpy import save_file
from test_cli import invoke


def _check(result, out_dir, name):
    """A clean error (nothing written) or a successful golden run."""
    assert "Traceback" not in result.output, (name, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        name, repr(result.exception))
    if result.exit_code == 0:
        assert json.loads(result.output)["backend"] == "golden"
        return "ran"
    assert result.exit_code == 2, (name, result.exit_code, result.output)
    assert result.output.strip().startswith("Error:"), (name, result.output)
    assert not out_dir.exists() or not any(out_dir.iterdir()), (
        name, "a failed run wrote", list(out_dir.iterdir()))
    return "error"


@pytest.fixture(scope="module")
def good_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    rng = np.random.default_rng(5)
    W0, b0 = rng.standard_normal((6, 8)).astype(np.float32), np.zeros(6, np.float32)
    W1 = rng.standard_normal((3, 6)).astype(np.float32)
    np.savez(d / "m.npz", W0=W0, b0=b0, W1=W1)
    save_file({"layers.0.weight": W0, "layers.0.bias": b0, "layers.1.weight": W1},
              str(d / "m.safetensors"))
    return d


@pytest.mark.parametrize("suffix", ["npz", "safetensors"])
def test_corrupted_weight_files_fail_cleanly(good_files, tmp_path, suffix):
    data = (good_files / f"m.{suffix}").read_bytes()
    rng = random.Random(suffix)
    outcomes = []
    for n in range(24):
        blob = bytearray(data)
        if n % 3 == 0:  # truncated anywhere, the header included
            blob = blob[:rng.randrange(0, len(blob))]
        else:  # a few random bytes overwritten
            for _ in range(1 + n % 4):
                blob[rng.randrange(len(blob))] = rng.randrange(256)
        path = tmp_path / f"bad{n}.{suffix}"
        path.write_bytes(bytes(blob))
        out_dir = tmp_path / f"out{n}"
        result = invoke("run", "mlp", "--weights", path, "--rows", 2, "--cols", 2,
                        "--backend", "golden", "--out", out_dir, "--json")
        outcomes.append(_check(result, out_dir, f"{suffix} case {n}"))
    assert "error" in outcomes  # the fuzzing did reach the readers' checks


@pytest.mark.parametrize("tensors, message", [
    ({"W0": np.array([["a", "b"]])}, "non-numeric dtype"),
    ({"W0": np.ones((2, 2), np.complex64)}, "non-numeric dtype"),
    ({"W0": np.array([[1.0, np.inf]], np.float32)}, "NaN or infinite"),
    ({"W0": np.array([[np.nan]], np.float32)}, "NaN or infinite"),
    ({"W0": np.ones((1, 3), np.float32), "b0": np.ones((2,), np.float32)}, "bias"),
])
def test_bad_tensors_are_refused(tmp_path, tensors, message):
    np.savez(tmp_path / "w.npz", **tensors)
    out_dir = tmp_path / "out"
    result = invoke("run", "mlp", "--weights", tmp_path / "w.npz", "--backend", "golden",
                    "--out", out_dir)
    assert _check(result, out_dir, message) == "error"
    assert message in result.output, result.output


def test_huge_shapes_are_refused_without_allocating(tmp_path):
    """A .npz member whose header claims a 60000 x 60000 fp32 layer (14.4 GB) but holds a few
    bytes: refused as malformed, without allocating it."""
    import io
    import zipfile

    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        member, {"descr": "<f4", "fortran_order": False, "shape": (60000, 60000)})
    member.write(b"\0" * 64)
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        z.writestr("W0.npy", member.getvalue())
    out_dir = tmp_path / "out"
    result = invoke("run", "mlp", "--weights", tmp_path / "huge.npz", "--backend", "golden",
                    "--out", out_dir)
    assert _check(result, out_dir, "huge") == "error"
