"""Mapper: GEMV and MLP layers on the golden backend for many shapes and dtypes (bit-exact
against the numpy reference with the fabric's rounding order), RTL end to end on small fabrics,
and the user-facing errors."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from fabric.array import FabricParams
from pe.isa import Op
from sim.apps.defects import random_defects
from sim.apps.errors import WorkloadError
from sim.apps.layers import run_layers
from sim.apps.weights import load_weights
from sim.host.driver import FabricDriver
from sim.model.reference import gemv
from sim.toolchain.mapper import MappingError, map_layers, parse_dtype

RNG = np.random.default_rng(11)


def small(rows, cols, **kw):
    base = dict(rows=rows, cols=cols, sram_words=512, imem_words=128, num_colors=8, num_tasks=16)
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
    relu = True  # int8: applied on the host after the bias (see test_int8_relu_*)
    mappings, image = map_layers([(W, b, relu)], parse_dtype(dtype), fabric)
    driver = FabricDriver(fabric, backend="golden")
    driver.load(image)
    m = mappings[0]
    for _ in range(2):  # the image serves repeated inputs
        x = RNG.standard_normal(K).astype(np.float32)
        raw = run_gemv(driver, mappings, x)[0]
        np.testing.assert_array_equal(raw, m.reference(x))
        if dtype != "int8":  # the reference outside the mapper, from the specification
            fmt = {"fp8": "e4m3"}.get(dtype, dtype)
            np.testing.assert_array_equal(raw, gemv(W, x, fmt, cols, b, relu))
        y = m.values(raw, x)
        exact = np.maximum(W @ x + b, 0)
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


def rtl_mlp_case(shape, spares, defects, seed):
    """(fabric, defect map, a 10-7-4 MLP's layers, rng) for the RTL tests: the same fabric
    parameters as tests/test_fabric.py, so the two share their simulator builds."""
    rows, cols = shape
    fabric = FabricParams(rows=rows, cols=cols, spares=spares, sram_words=256, imem_words=64,
                          num_colors=8, num_tasks=12, num_dsds=16, fault_injection=True)
    rng = np.random.default_rng(seed)
    defect_map = random_defects(rows, fabric.physical_cols, spares, defects, rng)
    layers = [(rng.standard_normal((7, 10)).astype(np.float32),
               rng.standard_normal(7).astype(np.float32), True),
              (rng.standard_normal((4, 7)).astype(np.float32), None, False)]
    return fabric, defect_map, layers, rng


@pytest.mark.parametrize("shape, spares, defects", [((2, 2), 1, 0), ((3, 3), 1, 2)],
                         ids=["2x2", "3x3+1-defects"])
def test_rtl_gemv_and_mlp_bit_identical_to_golden(sim, shape, spares, defects):
    fabric, defect_map, layers, rng = rtl_mlp_case(shape, spares, defects, seed=5)
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


def sparse_input(rng, K, zeros):
    """A random ``x`` with a fraction ``zeros`` of its entries zero, some of them -0."""
    x = rng.standard_normal(K).astype(np.float32)
    x[rng.permutation(K)[:round(zeros * K)]] = 0.0
    x[np.flatnonzero(x == 0)[::2]] = -0.0
    return x


def value_rounded(x, dtype):
    """``x`` as a sparse GEMV's values carry it: rounded to BF16 (FP16 for fp16), from
    ml_dtypes, not the mapper."""
    kind = np.float16 if dtype == "fp16" else ml_dtypes.bfloat16
    return np.asarray(x, np.float32).astype(kind).astype(np.float32)


@pytest.mark.parametrize("rows, cols, M, K", [(1, 1, 3, 5), (2, 3, 7, 10), (3, 3, 13, 20)])
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16", "int8"])
@pytest.mark.parametrize("zeros", [0.0, 0.5, 1.0])
def test_sparse_gemv_golden_equals_dense_on_rounded_x(rows, cols, M, K, dtype, zeros):
    """Only the nonzeros travel, yet the result is the dense GEMV of ``x`` rounded to the value
    format, bit for bit (a skipped ``w·0`` leaves the partial sum as it was)."""
    fabric = small(rows, cols)
    rng = np.random.default_rng(rows * 100 + K)
    W = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal(M).astype(np.float32)
    relu = dtype != "int8"
    mappings, image = map_layers([(W, b, relu)], parse_dtype(dtype), fabric, sparse=True)
    m = mappings[0]
    if dtype == "int8":  # the dense mapping quantises x the same way
        dense = map_layers([(W, b, relu)], parse_dtype(dtype), fabric)[0][0]
    driver = FabricDriver(fabric, backend="golden")
    driver.load(image)
    for _ in range(2):  # the image serves repeated inputs
        x = sparse_input(rng, K, zeros)
        sent = m.inputs(x)[("n", 0)]
        if dtype != "int8":  # int8 quantises first, so more of x may round to zero
            assert len(sent) == np.count_nonzero(value_rounded(x, dtype)) + 1  # + end of x
        raw = run_gemv(driver, mappings, x)[0]
        np.testing.assert_array_equal(raw, m.reference(x))
        if dtype == "int8":
            np.testing.assert_array_equal(raw, dense.reference(x))
        else:  # the specification's GEMV on the rounded x
            np.testing.assert_array_equal(raw, gemv(W, value_rounded(x, dtype), dtype, cols, b,
                                                    relu))


def test_sparse_index_beyond_16_bits_is_refused():
    with pytest.raises(MappingError, match="indexes x with 16 bits, but K = 65537"):
        map_layers([(np.ones((1, 65537), np.float32), None, False)], parse_dtype("bf16"),
                   small(1, 1), sparse=True)


@pytest.mark.parametrize("shape, spares, defects", [((2, 2), 1, 0), ((3, 3), 1, 2)],
                         ids=["2x2", "3x3+1-defects"])
def test_rtl_sparse_mlp_bit_identical_to_golden(sim, shape, spares, defects):
    """A two-layer sparse MLP on RTL: range filters, dindex and the end-of-vector control task;
    the second layer's x is the first's ReLU output, sparse by itself."""
    fabric, defect_map, layers, rng = rtl_mlp_case(shape, spares, defects, seed=8)
    cols = fabric.cols
    mappings, image = map_layers(layers, parse_dtype("bf16"), fabric, sparse=True)
    golden = FabricDriver(fabric, backend="golden")
    rtl = FabricDriver(fabric, backend="rtl", sim=sim, defects=defect_map)
    try:
        for driver in (golden, rtl):
            driver.load(image)
        for zeros in (0.5, 0.0):
            x = sparse_input(rng, 10, zeros)
            g, r = run_gemv(golden, mappings, x), run_gemv(rtl, mappings, x)
            for layer, (a, b) in enumerate(zip(g, r)):
                np.testing.assert_array_equal(b, a, err_msg=f"layer {layer}")
            np.testing.assert_array_equal(
                r[0], gemv(layers[0][0], value_rounded(x, "bf16"), "bf16", cols, layers[0][1],
                           True))
        # A dense image loaded after the sparse one: loading turns the filters off.
        mappings, image = map_layers(layers, parse_dtype("bf16"), fabric)
        rtl.load(image)
        x = rng.standard_normal(10).astype(np.float32)
        np.testing.assert_array_equal(run_gemv(rtl, mappings, x)[0], mappings[0].reference(x))
    finally:
        rtl.close()


def test_loading_an_image_turns_earlier_filters_off():
    fabric = small(2, 2)
    W = RNG.standard_normal((6, 8)).astype(np.float32)
    driver = FabricDriver(fabric, backend="golden")
    x = RNG.standard_normal(8).astype(np.float32)
    for sparse in (True, False):
        mappings, image = map_layers([(W, None, False)], parse_dtype("bf16"), fabric,
                                     sparse=sparse)
        driver.load(image)
        np.testing.assert_array_equal(run_gemv(driver, mappings, x)[0], mappings[0].reference(x))


def test_layer_too_big_says_what_it_needs():
    fabric = small(2, 2, sram_words=64)
    W = np.ones((64, 64), dtype=np.float32)
    with pytest.raises(MappingError, match=r"needs \d+ SRAM words per PE .* use more PEs"):
        map_layers([(W, None, False)], parse_dtype("fp32"), fabric)


def test_bad_dtype():
    with pytest.raises(MappingError, match="unknown dtype 'fp4'; use one of fp32, bf16"):
        parse_dtype("fp4")


def opcodes(image) -> set[int]:
    return {word >> 26 for word in image.program}


def test_int8_relu_without_bias_runs_on_the_pe():
    fabric = small(2, 2)
    W = RNG.standard_normal((9, 7)).astype(np.float32)
    int8 = parse_dtype("int8")
    plain, _ = map_layers([(W, None, False)], int8, fabric)
    mappings, image = map_layers([(W, None, True)], int8, fabric)
    assert mappings[0].relu_on_fabric and Op.IMAX in opcodes(image.tiles[0, 1].pe)
    driver = FabricDriver(fabric, backend="golden")
    driver.load(image)
    x = RNG.standard_normal(7).astype(np.float32)
    raw = run_gemv(driver, mappings, x)[0]
    accumulation = plain[0].reference(x).view(np.int32)
    assert (accumulation < 0).any() and (accumulation > 0).any()
    np.testing.assert_array_equal(raw.view(np.int32), np.maximum(accumulation, 0))
    assert (mappings[0].values(raw, x) >= 0).all()


def test_int8_relu_after_a_bias_runs_on_the_host():
    W = RNG.standard_normal((6, 5)).astype(np.float32)
    b = np.full(6, -0.5, np.float32)
    mappings, image = map_layers([(W, b, True)], parse_dtype("int8"), small(1, 1))
    assert not mappings[0].relu_on_fabric
    assert Op.IMAX not in opcodes(image.tiles[0, 0].pe)
    x = RNG.standard_normal(5).astype(np.float32)
    raw = mappings[0].reference(x)
    y = mappings[0].values(raw, x)
    np.testing.assert_allclose(y, np.maximum(W @ x + b, 0), atol=0.1)
    assert (y == 0).any()


def test_too_many_layers_for_the_colours():
    layers = [(np.ones((2, 2), np.float32), None, False)] * 3
    with pytest.raises(MappingError, match="needs colours 7..9, but the fabric has 8 colours"):
        map_layers(layers, parse_dtype("fp32"), small(1, 1))


@pytest.mark.parametrize("dtype, peak, limit, becomes, hint", [
    ("fp8", 1000.0, "448", "NaN", "--dtype fp16 or bf16 or fp32"),
    ("e5m2", 1e5, "57344", "infinite", "--dtype bf16 or fp32"),
    ("fp16", 7e4, "65504", "infinite", "--dtype bf16 or fp32"),
    ("fp32", 1e39, "3.40282e+38", "infinite", "no weight format holds it"),
])
def test_weights_beyond_the_format_range_are_refused(dtype, peak, limit, becomes, hint):
    W = RNG.standard_normal((3, 4))  # float64, so fp32 can overflow too
    W[1, 2] = -peak
    with pytest.raises(MappingError) as info:
        map_layers([(W, None, False)], parse_dtype(dtype), small(1, 1))
    message = str(info.value)
    assert f"max |value| {peak:.6g}" in message
    assert f"largest finite {parse_dtype(dtype).name.lower()} value {limit}" in message
    assert f"1 element(s) would become {becomes}" in message
    assert hint in message and "scale the tensor down" in message


def test_weights_at_the_format_limit_map_and_stay_finite():
    W = np.array([[448.0, -448.0], [1.0, 0.5]], np.float32)  # the largest finite e4m3 values
    mappings, image = map_layers([(W, None, False)], parse_dtype("fp8"), small(1, 1))
    driver = FabricDriver(small(1, 1), backend="golden")
    driver.load(image)
    x = np.array([1.0, 1.0], np.float32)
    raw = run_gemv(driver, mappings, x)[0]
    np.testing.assert_array_equal(raw, mappings[0].reference(x))
    np.testing.assert_array_equal(mappings[0].values(raw), [0.0, 1.5])


def test_bias_beyond_fp32_is_refused():
    with pytest.raises(MappingError, match=r"layer 0: the bias has max \|value\| 1e\+39"):
        map_layers([(np.ones((2, 2)), np.array([1.0, 1e39]), False)], parse_dtype("bf16"),
                   small(1, 1))


def test_layers_must_chain():
    layers = [(np.ones((6, 4), np.float32), None, True),
              (np.ones((3, 5), np.float32), None, False)]
    with pytest.raises(MappingError, match=r"layers do not chain: layer 1 has W of shape "
                                           r"\(3, 5\) and takes 5 inputs, but layer 0 \(W of "
                                           r"shape \(6, 4\)\) gives 6 outputs"):
        map_layers(layers, parse_dtype("fp32"), small(1, 1))
    layers[1] = (np.ones((3, 6), np.float32), None, False)
    mappings, _ = map_layers(layers, parse_dtype("fp32"), small(1, 1))
    assert [(m.M, m.K) for m in mappings] == [(6, 4), (3, 6)]


def test_weight_files(tmp_path):
    from safetensors.numpy import save_file

    np.save(tmp_path / "w.npy", np.ones((3, 4), np.float32))
    W, name = load_weights(tmp_path / "w.npy")
    assert W.shape == (3, 4) and name == "w"
    save_file({"a.weight": np.ones((5, 6), np.float32), "a.bias": np.ones(5, np.float32),
               "b.weight": np.ones((2, 5), np.float32)}, str(tmp_path / "m.safetensors"))
    W, name = load_weights(tmp_path / "m.safetensors", "b.weight")
    assert W.shape == (2, 5) and name == "b.weight"
    with pytest.raises(WorkloadError, match="holds several 2-D tensors .* --tensor NAME"):
        load_weights(tmp_path / "m.safetensors")
    save_file({"a.bias": np.ones(5, np.float32), "scale": np.ones((), np.float32)},
              str(tmp_path / "vectors.safetensors"))
    with pytest.raises(WorkloadError, match=r"holds no 2-D tensor \(it holds: a.bias \(5,\), "
                                            r"scale \(\)\); a GEMV needs a 2-D weight matrix"):
        load_weights(tmp_path / "vectors.safetensors")
    save_file({"only.weight": np.ones((2, 3), np.float32), "only.bias": np.ones(2, np.float32)},
              str(tmp_path / "one.safetensors"))
    W, name = load_weights(tmp_path / "one.safetensors")  # the single 2-D tensor is chosen
    assert W.shape == (2, 3) and name == "only.weight"
    np.save(tmp_path / "huge.npy", np.full((2, 2), 1e39))
    with pytest.raises(WorkloadError, match=r"beyond the float32 range \(max \|value\| 1e\+39"):
        load_weights(tmp_path / "huge.npy")
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


@pytest.mark.parametrize("rows, cols, spares, count", [(1, 1, 1, 1), (3, 3, 1, 2), (4, 5, 2, 8),
                                                       (5, 4, 3, 0)])
def test_random_defects_are_repairable_and_reproducible(rows, cols, spares, count):
    from fabric.repair import repair

    for seed in range(5):
        d = random_defects(rows, cols + spares, spares, count, np.random.default_rng(seed))
        assert d.shape == (rows, cols + spares) and d.dtype == bool
        assert int(d.sum()) == count and int(d.sum(axis=1).max()) <= spares
        repair(d, cols=cols, spares=spares)  # raises if it is not repairable
        again = random_defects(rows, cols + spares, spares, count, np.random.default_rng(seed))
        np.testing.assert_array_equal(d, again)


def test_random_defects_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(WorkloadError, match=r"5 defects cannot be repaired with 1 spare "
                                            r"column\(s\) on 4 rows \(at most 4\); use fewer "
                                            r"--defects, more --spares or more --rows"):
        random_defects(4, 5, 1, 5, rng)
    with pytest.raises(WorkloadError, match="--defects must be 0 or more, not -1"):
        random_defects(4, 5, 1, -1, rng)
    with pytest.raises(WorkloadError, match="0 <= spares < physical columns"):
        random_defects(2, 2, 2, 1, rng)


def test_heatmap_axis_and_marks(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from fabric.repair import repair
    from sim.apps.heatmap import heatmap

    figures = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: figures.append(fig))
    d = np.zeros((2, 5), dtype=bool)
    d[0, 1] = d[1, 4] = True  # two spares: the unused spares are not all in the last column
    rmap = repair(d, cols=3, spares=2)
    heatmap(rmap, np.full((2, 3), 0.5), tmp_path / "h.png", "t")
    ax = figures[0].axes[0]
    assert ax.get_xlabel() == "physical column"
    hatched = sorted((round(p.get_x() + 0.5), round(p.get_y() + 0.5)) for p in ax.patches)
    assert hatched == sorted(zip(*np.nonzero((~rmap.enabled & ~d).T)))
