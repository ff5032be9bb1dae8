"""Layer-pipelined MLPs (sim/toolchain/pipeline.py) on the golden model: many shapes, dtypes
and fabric sizes, raw outputs bit-exact with the numpy reference of the same rounding order, and
the reference itself checked against a plain per-element implementation of that order."""

import re

import numpy as np
import pytest

from fabric.array import FabricParams
from hdl.formats import Format
from sim.host.driver import FabricDriver
from sim.model import formats as F
from sim.toolchain.mapper import MappingError, round_to
from sim.toolchain.pipeline import (
    ACCUMULATOR_RAW_CYCLES,
    Region,
    accumulators,
    map_pipeline,
    plan,
)


def fabric(rows, cols, **kw):
    return FabricParams(rows=rows, cols=cols, spares=1, num_colors=24, num_tasks=32, **kw)


def mlp(rng, sizes, bias=True):
    """Random layers (W, b, relu): ReLU on every layer but the last."""
    layers = []
    for i, (k, m) in enumerate(zip(sizes, sizes[1:])):
        W = (rng.standard_normal((m, k)) / np.sqrt(k)).astype(np.float32)
        b = rng.standard_normal(m).astype(np.float32) * 0.1 if bias else None
        layers.append((W, b, i < len(sizes) - 2))
    return layers


def naive_reference(pm, xs):
    """The rounding order of the module docstring, one element at a time (independent of
    PipelineMapping.reference's vectorisation)."""

    def add(a, b):
        return F.fadd(np.array([a]), np.array([b]))[0]

    out = []
    for x in np.asarray(xs, dtype=np.float32):
        value = x.view(np.uint32)
        for i, region in enumerate(pm.regions):
            W = round_to(pm.weights[i], pm.dtype)
            b = pm.biases[i]
            M = W.shape[0]
            bounds = np.cumsum([0, *region.in_sizes])
            out_bounds = np.cumsum([0, *region.out_sizes])
            chunks = len(region.in_sizes)
            result = np.zeros(M, dtype=np.uint32)
            for m in range(M):
                mo = region.out_sizes[int(np.searchsorted(out_bounds, m, side="right")) - 1]
                # the docstring's rule: the fewest banks whose Mo outputs each cover the
                # accumulator's RAW distance, at most the smallest chunk's inputs; input n of
                # a chunk goes to bank n mod acc, whose first input is a product
                acc = min(min(region.in_sizes), -(-ACCUMULATOR_RAW_CYCLES // mo))
                sums = None
                for k in range(chunks):
                    q = [None] * acc
                    for n, j in enumerate(range(bounds[k], bounds[k + 1])):
                        w, xj = np.array([W[m, j]]), np.array([value[j]])
                        a = n % acc
                        q[a] = (F.fmul(w, xj) if q[a] is None
                                else F.fmac(w, xj, np.array([q[a]])))[0]
                    if sums is None and (b is None or chunks == 1):
                        sums = q
                    elif sums is None:  # the first chunk: b in bank 0, +0 in the others
                        bias = [b[m:m + 1].view(np.uint32)[0]] + [np.uint32(0)] * (acc - 1)
                        sums = [add(q_, b_) for q_, b_ in zip(q, bias)]
                    else:
                        sums = [add(p_, q_) for p_, q_ in zip(sums, q)]
                p = sums[0]
                for s_ in sums[1:]:
                    p = add(p, s_)
                if b is not None and chunks == 1:
                    p = add(p, b[m:m + 1].view(np.uint32)[0])
                if pm.relus[i]:
                    p = F.fmax(np.array([p]), np.zeros(1, np.uint32))[0]
                result[m] = p
            value = result
        out.append(value)
    return np.asarray(out)


def run_golden(pm, xs, params):
    d = FabricDriver(params, backend="golden")
    d.load(pm.image)
    for port, ws in pm.inputs(xs).items():
        d.send(*port, ws)
    result = d.run(expect=pm.expect(len(xs)))
    return pm.gather(result.received, len(xs))


CASES = [
    # (sizes, rows, cols, dtype)
    ((64, 32, 10), 4, 4, Format.BF16),
    ((64, 32, 10), 4, 4, Format.FP32),
    ((64, 32, 10), 3, 3, Format.FP16),
    ((20, 17, 9, 5), 3, 3, Format.BF16),
    ((30, 12, 7), 3, 3, Format.E4M3),
    ((30, 12, 7), 2, 3, Format.E5M2),
    ((64, 128, 128, 10), 8, 8, Format.BF16),
    ((5, 3), 1, 2, Format.FP32),
    ((40, 40), 4, 3, Format.BF16),
]


@pytest.mark.parametrize("sizes, rows, cols, dtype", CASES)
def test_pipelined_mlp_is_bit_exact_on_golden(sizes, rows, cols, dtype):
    rng = np.random.default_rng(sum(sizes) + rows * cols)
    params = fabric(rows, cols, sram_words=4096)
    pm = map_pipeline(mlp(rng, sizes), dtype, params)
    xs = rng.standard_normal((7, sizes[0])).astype(np.float32)
    raw = run_golden(pm, xs, params)
    assert raw.shape == (7, sizes[-1])
    assert np.array_equal(raw, pm.reference(xs))


@pytest.mark.parametrize("sizes, rows, cols, dtype", [CASES[3], CASES[4], CASES[7]])
def test_reference_matches_the_element_by_element_order(sizes, rows, cols, dtype):
    rng = np.random.default_rng(5)
    pm = map_pipeline(mlp(rng, sizes), dtype, fabric(rows, cols))
    xs = rng.standard_normal((3, sizes[0])).astype(np.float32)
    assert np.array_equal(pm.reference(xs), naive_reference(pm, xs))


def test_without_bias_and_negative_zero():
    """No bias: the first reduce hop sends y as it is; an all-zero input row gives +0 sums."""
    rng = np.random.default_rng(6)
    params = fabric(3, 3)
    pm = map_pipeline(mlp(rng, (12, 9, 4), bias=False), Format.FP32, params)
    xs = np.vstack([np.zeros(12, np.float32), -rng.random(12).astype(np.float32)])
    raw = run_golden(pm, xs, params)
    assert np.array_equal(raw, pm.reference(xs))


def test_regions_alternate_and_stay_disjoint():
    params = fabric(8, 8, sram_words=4096)
    pm = map_pipeline(mlp(np.random.default_rng(7), (64, 128, 128, 10)), Format.BF16, params)
    orientations = [r.orientation for r in pm.regions]
    assert all(a != b for a, b in zip(orientations, orientations[1:]))
    seen = set()
    for region in pm.regions:
        for _, _, tile in region.tiles():
            assert tile not in seen
            seen.add(tile)
            assert 0 <= tile[0] < 8 and 0 <= tile[1] < 8
    held = pm.layer_of()
    assert (held >= 0).sum() == len(seen)


def test_chunks_chain_from_layer_to_layer():
    """Each layer's input chunks are the previous layer's output chunks (a boundary may give
    its last chunk fewer inputs), and every chunk covers its layer exactly."""
    for sizes, rows, cols, dtype in CASES:
        pm = map_pipeline(mlp(np.random.default_rng(1), sizes), dtype,
                          fabric(rows, cols, sram_words=4096))
        for i, region in enumerate(pm.regions):
            assert sum(region.in_sizes) == sizes[i] and min(region.in_sizes) >= 1
            assert sum(region.out_sizes) == sizes[i + 1] and min(region.out_sizes) >= 1
            if i:
                assert region.in_sizes == pm.regions[i - 1].out_sizes


def _random_case(rng):
    layers = int(rng.integers(1, 4))
    sizes = tuple(int(v) for v in rng.integers(2, 70, layers + 1))
    rows, cols = (int(v) for v in rng.integers(1, 6, 2))
    dtype = [Format.FP32, Format.BF16, Format.FP16, Format.E4M3, Format.E5M2][
        int(rng.integers(5))]
    return sizes, rows, cols, dtype, bool(rng.random() < 0.8)


@pytest.mark.parametrize("seed", range(16))
def test_random_pipelines_are_bit_exact_on_golden(seed):
    """Random MLPs (1-3 layers of 2-69, with or without bias) on random fabrics and weight
    formats: raw outputs equal to the element-by-element reference; together they use every
    kernel shape (one bank and several, a chunk with no fmac beyond the banks, single- and
    multi-chunk layers). A model that does not fit must say so."""
    rng = np.random.default_rng(100 + seed)
    sizes, rows, cols, dtype, bias = _random_case(rng)
    params = fabric(rows, cols, sram_words=4096)
    try:
        pm = map_pipeline(mlp(rng, sizes, bias=bias), dtype, params)
    except MappingError as exc:
        assert "does not fit" in str(exc) or "colours" in str(exc), exc
        return
    xs = rng.standard_normal((4, sizes[0])).astype(np.float32)
    raw = run_golden(pm, xs, params)
    assert np.array_equal(raw, naive_reference(pm, xs))
    assert np.array_equal(raw, pm.reference(xs))


def test_random_pipelines_cover_every_kernel_shape():
    shapes = set()
    for seed in range(16):
        rng = np.random.default_rng(100 + seed)
        sizes, rows, cols, dtype, bias = _random_case(rng)
        try:
            pm = map_pipeline(mlp(rng, sizes, bias=bias), dtype, fabric(rows, cols,
                                                                       sram_words=4096))
        except MappingError:
            continue
        for region in pm.regions:
            for o in range(len(region.out_sizes)):
                acc = pm.banks(region, o)
                for kk in region.in_sizes:
                    shapes.add(("banks", acc > 1))
                    shapes.add(("fmac", kk > acc))
                shapes.add(("chunks", len(region.in_sizes) > 1))
    assert shapes == {(k, v) for k in ("banks", "fmac", "chunks") for v in (False, True)}, shapes


def test_given_regions_are_used_and_checked():
    """``regions=`` places the layers there (bit-exact on golden) and refuses a staircase
    that does not place them, saying why."""
    rng = np.random.default_rng(3)
    params = fabric(3, 4)
    layers = mlp(rng, (30, 12, 7))
    regions = [Region("h", 0, 0, (6, 6), (12, 10, 8)), Region("v", 0, 3, (7,), (6, 6))]
    pm = map_pipeline(layers, Format.BF16, params, regions=regions)
    assert pm.regions == regions
    xs = rng.standard_normal((3, 30)).astype(np.float32)
    assert np.array_equal(run_golden(pm, xs, params), naive_reference(pm, xs))
    bad = [
        ([regions[0]], "1 regions for 2 layers"),
        ([regions[0], Region("v", 0, 3, (7,), (5, 7))], "not the previous layer's output"),
        ([regions[0], Region("h", 0, 3, (7,), (6, 6))], "previous region's orientation"),
        ([regions[0], Region("v", 1, 3, (7,), (6, 6))], "starts at (1, 3), not (0, 3)"),
        ([Region("h", 0, 0, (6, 6), (10, 10, 10, 0)), regions[1]], "do not cut"),
    ]
    for given, message in bad:
        with pytest.raises(MappingError, match=re.escape(message)):
            map_pipeline(layers, Format.BF16, params, regions=given)


def test_errors_are_clear():
    rng = np.random.default_rng(8)
    with pytest.raises(MappingError, match="int8 layers are host-orchestrated only"):
        map_pipeline(mlp(rng, (8, 4)), Format.INT8, fabric(2, 2))
    with pytest.raises(MappingError, match="layers do not chain"):
        W1, W2 = np.ones((4, 8), np.float32), np.ones((3, 5), np.float32)
        map_pipeline([(W1, None, True), (W2, None, False)], Format.FP32, fabric(2, 2))
    with pytest.raises(MappingError, match="does not fit a 2 x 2 array as a pipeline with 64 "
                                           "SRAM words"):
        map_pipeline(mlp(rng, (200, 100, 10)), Format.FP32, fabric(2, 2, sram_words=64))
    with pytest.raises(MappingError, match="needs 26 colours"):
        plan([(4, 4)] * 8, [False] * 8, [True] * 8, 32, fabric(4, 4))
    with pytest.raises(MappingError, match=r"inputs must have shape \(N, 8\)"):
        map_pipeline(mlp(rng, (8, 4)), Format.FP32, fabric(2, 2)).inputs(np.zeros(7))


# ---- on RTL ----------------------------------------------------------------------------------

#: 3 x 3 logical PEs and a spare column; 12 colours are enough for a 3-layer pipeline
#: (pipeline.FIRST_COLOR + 3 per layer + 1).
RTL_PARAMS = FabricParams(rows=3, cols=3, spares=1, sram_words=512, imem_words=64,
                          num_colors=12, num_tasks=12, fault_injection=True)


@pytest.fixture(scope="module")
def rtl_driver(sim, waves):
    defects = np.zeros((RTL_PARAMS.rows, RTL_PARAMS.physical_cols), dtype=bool)
    defects[1, 1] = True  # the repair shifts row 1 onto the spare column
    driver = FabricDriver(RTL_PARAMS, backend="rtl", sim=sim, waves=waves, defects=defects,
                          optimize=True)
    yield driver
    driver.close()


@pytest.mark.parametrize("sizes, dtype", [((8, 60, 6), Format.BF16),
                                          ((6, 40, 12, 5), Format.FP32)])
def test_pipelined_mlp_is_bit_exact_on_rtl_with_a_defect(rtl_driver, sizes, dtype):
    """A 2-layer and a 3-layer MLP, five images back to back, on a repaired 3 x 3 + 1 fabric:
    raw outputs equal to the golden model's and to the numpy reference of the same rounding
    order; kernels with one and with several banks of partial sums take part."""
    rng = np.random.default_rng(len(sizes))
    pm = map_pipeline(mlp(rng, sizes), dtype, RTL_PARAMS)
    assert len(pm.regions) == len(sizes) - 1
    kernels = {accumulators(mo, kk) for r in pm.regions for mo in r.out_sizes
               for kk in r.in_sizes}
    assert 1 in kernels and len(kernels) > 1, kernels
    xs = rng.standard_normal((5, sizes[0])).astype(np.float32)
    rtl_driver.load(pm.image)
    for port, ws in pm.inputs(xs).items():
        rtl_driver.send(*port, ws)
    result = rtl_driver.run(expect=pm.expect(len(xs)), max_cycles=200_000)
    raw = pm.gather(result.received, len(xs))
    assert np.array_equal(raw, run_golden(pm, xs, RTL_PARAMS))
    assert np.array_equal(raw, naive_reference(pm, xs))
