"""Mapper: GEMV and MLP layers on the golden backend for many shapes and dtypes (bit-exact
against the numpy reference with the fabric's rounding order), RTL end to end on small fabrics,
and the user-facing errors."""

from __future__ import annotations

import numpy as np
import pytest

from fabric.array import FabricParams
from sim.driver import FabricDriver
from sim.mapper import MappingError, map_layers, parse_dtype
from sim.workloads import WorkloadError, load_weights, random_defects, run_layers

RNG = np.random.default_rng(11)


def small(rows, cols, **kw):
    base = dict(rows=rows, cols=cols, sram_words=512, imem_words=128, num_tasks=16)
    base.update(kw)
    return FabricParams(**base)


def run_gemv(driver, mappings, x):
    raw, _ = run_layers(driver, mappings, x)
    return raw


@pytest.mark.parametrize("rows, cols, M, K", [(1, 1, 3, 5), (2, 2, 8, 8), (2, 3, 7, 10),
                                              (3, 2, 13, 5), (4, 4, 17, 33), (3, 4, 5, 40)])
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16", "fp8", "e5m2", "int8"])
def test_gemv_golden_matches_reference(rows, cols, M, K, dtype):
    fabric = small(rows, cols)
    W = RNG.standard_normal((M, K)).astype(np.float32)
    b = RNG.standard_normal(M).astype(np.float32)
    relu = dtype != "int8"
    mappings, image = map_layers([(W, b, relu)], parse_dtype(dtype), fabric)
    driver = FabricDriver(fabric, backend="golden")
    driver.load(image)
    m = mappings[0]
    for _ in range(2):  # the image serves repeated inputs
        x = RNG.standard_normal(K).astype(np.float32)
        raw = run_gemv(driver, mappings, x)[0]
        np.testing.assert_array_equal(raw, m.reference(x))
        y = m.values(raw, x)
        exact = W @ x + b
        if relu:
            exact = np.maximum(exact, 0)
        tolerance = {"fp32": 1e-4, "bf16": 0.1, "fp16": 0.02, "fp8": 1.0, "e5m2": 1.5,
                     "int8": 0.5}[dtype]
        assert np.max(np.abs(y - exact)) < tolerance * max(1.0, np.sqrt(K))


def test_mlp_two_layers_golden():
    fabric = small(2, 2)
    layers = [(RNG.standard_normal((12, 9)).astype(np.float32),
               RNG.standard_normal(12).astype(np.float32), True),
              (RNG.standard_normal((5, 12)).astype(np.float32),
               RNG.standard_normal(5).astype(np.float32), False)]
    mappings, image = map_layers(layers, parse_dtype("bf16"), fabric)
    driver = FabricDriver(fabric, backend="golden")
    driver.load(image)
    x = RNG.standard_normal(9).astype(np.float32)
    raw = run_gemv(driver, mappings, x)
    np.testing.assert_array_equal(raw[0], mappings[0].reference(x))
    np.testing.assert_array_equal(raw[1], mappings[1].reference(raw[0].view(np.float32)))


@pytest.mark.parametrize("shape, spares, defects", [((2, 2), 1, 0), ((3, 3), 1, 2)],
                         ids=["2x2", "3x3+1-defects"])
def test_rtl_gemv_and_mlp_bit_identical_to_golden(sim, shape, spares, defects):
    rows, cols = shape
    # The same parameters as tests/test_fabric.py, so the two share their simulator builds.
    fabric = FabricParams(rows=rows, cols=cols, spares=spares, sram_words=256, imem_words=64,
                          num_tasks=12, num_dsds=16, fault_injection=True)
    rng = np.random.default_rng(5)
    defect_map = random_defects(rows, fabric.physical_cols, spares, defects, rng)
    layers = [(rng.standard_normal((7, 10)).astype(np.float32),
               rng.standard_normal(7).astype(np.float32), True),
              (rng.standard_normal((4, 7)).astype(np.float32), None, False)]
    mappings, image = map_layers(layers, parse_dtype("bf16"), fabric)
    golden = FabricDriver(fabric, backend="golden")
    rtl = FabricDriver(fabric, backend="rtl", sim=sim, defects=defect_map)
    try:
        for driver in (golden, rtl):
            driver.load(image)
        for _ in range(2):
            x = rng.standard_normal(10).astype(np.float32)
            g, r = run_gemv(golden, mappings, x), run_gemv(rtl, mappings, x)
            for layer, (a, b) in enumerate(zip(g, r)):
                np.testing.assert_array_equal(b, a, err_msg=f"layer {layer}")
            np.testing.assert_array_equal(r[0], mappings[0].reference(x))
    finally:
        rtl.close()


def test_layer_too_big_says_what_it_needs():
    fabric = small(2, 2, sram_words=64)
    W = np.ones((64, 64), dtype=np.float32)
    with pytest.raises(MappingError, match=r"needs \d+ SRAM words per PE .* use more PEs"):
        map_layers([(W, None, False)], parse_dtype("fp32"), fabric)


def test_bad_dtype_and_relu_on_int8():
    with pytest.raises(MappingError, match="unknown dtype 'fp4'; use one of fp32, bf16"):
        parse_dtype("fp4")
    with pytest.raises(MappingError, match="ReLU needs a floating-point dtype"):
        map_layers([(np.ones((2, 2), np.float32), None, True)], parse_dtype("int8"), small(1, 1))


def test_too_many_layers_for_the_colours():
    layers = [(np.ones((2, 2), np.float32), None, False)] * 3
    with pytest.raises(MappingError, match="needs colours 7..9, but the fabric has 8 colours"):
        map_layers(layers, parse_dtype("fp32"), small(1, 1))


def test_weight_files(tmp_path):
    from safetensors.numpy import save_file

    np.save(tmp_path / "w.npy", np.ones((3, 4), np.float32))
    W, name = load_weights(tmp_path / "w.npy")
    assert W.shape == (3, 4) and name == "w"
    save_file({"a.weight": np.ones((5, 6), np.float32), "a.bias": np.ones(5, np.float32),
               "b.weight": np.ones((2, 5), np.float32)}, str(tmp_path / "m.safetensors"))
    W, name = load_weights(tmp_path / "m.safetensors", "b.weight")
    assert W.shape == (2, 5) and name == "b.weight"
    with pytest.raises(WorkloadError, match="holds several tensors .* --tensor NAME"):
        load_weights(tmp_path / "m.safetensors")
    with pytest.raises(WorkloadError,
                       match=r"no tensor 'c'; it holds: a.bias \(5,\), a.weight \(5, 6\)"):
        load_weights(tmp_path / "m.safetensors", "c")
    with pytest.raises(WorkloadError, match="shape \\(5,\\): a GEMV needs a 2-D matrix"):
        load_weights(tmp_path / "m.safetensors", "a.bias")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WorkloadError, match="not a valid .safetensors file"):
        load_weights(tmp_path / "bad.safetensors")
    with pytest.raises(WorkloadError, match="does not exist"):
        load_weights(tmp_path / "missing.npy")
    (tmp_path / "w.txt").write_text("1 2 3")
    with pytest.raises(WorkloadError, match="unsupported weight file type"):
        load_weights(tmp_path / "w.txt")
