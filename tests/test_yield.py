"""Wafer yield model (sim/analysis/yield_model.py): Monte Carlo against the closed form and against
brute-force enumeration, edge cases, monotonicity, the per-tile defect map, validation, and a
run at wafer scale (a million tiles)."""

import itertools
import json
import math

import numpy as np
import pytest

from sim.analysis import yield_model as Y

AREA = 0.05  # mm², about one WSE-3 core


def brute_force(rows: int, cols: int, spares: int, p: float) -> float:
    """P(repairable) by enumerating every defect map of a tiny array (no binomial algebra)."""
    n = cols + spares
    total = 0.0
    for bits in itertools.product((False, True), repeat=rows * n):
        grid = np.array(bits).reshape(rows, n)
        if np.all(grid.sum(axis=1) <= spares):
            k = int(grid.sum())
            total += p**k * (1 - p) ** (rows * n - k)
    return total


def density_for(p: float, area: float = AREA) -> float:
    """The defect density that makes a tile of ``area`` defective with probability ``p``."""
    return -math.log1p(-p) / area


# --- closed form ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows,cols,spares,p",
    [(1, 3, 0, 0.2), (2, 2, 1, 0.3), (3, 2, 1, 0.1), (2, 3, 2, 0.45), (4, 2, 1, 0.6)],
)
def test_analytic_matches_enumeration(rows, cols, spares, p):
    d0 = density_for(p)
    got = Y.analytic_repair_probability(rows, cols, spares, defect_density=d0, tile_area_mm2=AREA)
    assert got == pytest.approx(brute_force(rows, cols, spares, p), rel=1e-9)


def test_analytic_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for rows, cols, spares, p in [
        (1000, 1000, 1, 4.7e-5),
        (985, 914, 71, 0.05),
        (10, 20, 2, 0.1),
        (985, 914, 71, 0.07),  # about 1e-197: must not underflow to a wrong value
    ]:
        expect = math.exp(rows * stats.binom.logcdf(spares, cols + spares, p))
        got = Y.analytic_repair_probability(
            rows, cols, spares, defect_density=density_for(p), tile_area_mm2=AREA
        )
        assert got == pytest.approx(expect, rel=1e-8)


def test_tile_defect_probability():
    assert Y.tile_defect_probability(0.0, 1.0) == 0.0
    assert Y.tile_defect_probability(0.001, 0.05) == pytest.approx(1 - math.exp(-5e-5))
    # tiny D0·A: no cancellation
    assert Y.tile_defect_probability(1e-12, 1e-6) == pytest.approx(1e-18, rel=1e-12)


# --- Monte Carlo ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows,cols,spares,p,seed",
    [
        (4, 8, 1, 0.05, 1),
        (16, 16, 2, 0.08, 2),
        (32, 64, 3, 0.02, 3),
        (100, 100, 1, 0.002, 4),
        (8, 4, 0, 0.01, 5),
    ],
)
def test_monte_carlo_agrees_with_analytic(rows, cols, spares, p, seed):
    e = Y.repair_probability(
        rows,
        cols,
        spares,
        defect_density=density_for(p),
        tile_area_mm2=AREA,
        samples=4000,
        seed=seed,
    )
    assert 0.05 < e.analytic < 0.995  # the cases are chosen to be informative
    assert e.ci_low <= e.analytic <= e.ci_high
    assert e.analytic_in_ci
    assert e.probability == e.repairable / e.samples
    assert e.expected_defective_tiles == pytest.approx(rows * (cols + spares) * p)
    sd = math.sqrt(rows * (cols + spares) * p * (1 - p) / e.samples)
    assert abs(e.mean_defective_tiles - e.expected_defective_tiles) < 5 * sd
    # rows with exactly S defects: R·P[Binomial(C+S, p) = S]
    n = cols + spares
    expect_full = rows * math.comb(n, spares) * p**spares * (1 - p) ** (n - spares)
    assert e.mean_rows_all_spares_used == pytest.approx(expect_full, rel=0.1, abs=0.05)


def test_binomial_shortcut_matches_per_tile_maps():
    """Full per-tile Poisson maps give the same repairability as the per-row binomial draw."""
    rows, cols, spares, d0 = 12, 10, 1, density_for(0.03)
    rng = np.random.default_rng(11)
    trials = 3000
    ok = sum(
        bool(
            np.all(
                Y.sample_defect_map(
                    rows, cols + spares, defect_density=d0, tile_area_mm2=AREA, rng=rng
                ).sum(axis=1)
                <= spares
            )
        )
        for _ in range(trials)
    )
    lo, hi = Y.wilson_interval(ok, trials)
    e = Y.repair_probability(
        rows, cols, spares, defect_density=d0, tile_area_mm2=AREA, samples=trials, seed=12
    )
    assert lo <= e.analytic <= hi
    assert e.ci_low <= e.analytic <= e.ci_high


def test_seed_reproducible():
    kw = dict(defect_density=0.5, tile_area_mm2=AREA, samples=500)
    a = Y.repair_probability(50, 40, 2, seed=7, **kw)
    b = Y.repair_probability(50, 40, 2, seed=7, **kw)
    c = Y.repair_probability(50, 40, 2, seed=np.random.default_rng(7), **kw)
    assert a == b
    assert c.seed is None and c.repairable == a.repairable


def test_zero_spares():
    p = 0.001
    e = Y.repair_probability(
        20, 30, 0, defect_density=density_for(p), tile_area_mm2=AREA, samples=3000, seed=0
    )
    assert e.analytic == pytest.approx((1 - p) ** (20 * 30), rel=1e-12)
    assert e.ci_low <= e.analytic <= e.ci_high


def test_zero_density():
    e = Y.repair_probability(64, 64, 0, defect_density=0.0, tile_area_mm2=AREA, samples=200)
    assert e.tile_defect_probability == 0.0
    assert e.probability == 1.0 and e.analytic == 1.0
    assert e.ci_high == 1.0 and 0.98 < e.ci_low < 1.0
    assert e.mean_defective_tiles == 0.0 and e.expected_defective_tiles == 0.0
    assert e.mean_rows_all_spares_used == 64  # S = 0: every row is "full"


def test_certain_defects():
    e = Y.repair_probability(3, 4, 2, defect_density=1e6, tile_area_mm2=AREA, samples=50)
    assert e.tile_defect_probability == 1.0
    assert e.probability == 0.0 and e.analytic == 0.0 and e.ci_low == 0.0


def test_single_sample():
    e = Y.repair_probability(2, 2, 1, defect_density=0.0, tile_area_mm2=AREA, samples=1)
    assert e.repairable == 1 and e.ci_high == 1.0


def test_million_tile_wafer_runs():
    """Wafer scale, as in the CLI: 1000 × 1000 logical tiles, S = 1..8, 1000 wafers each."""
    prev = -1.0
    for spares in range(1, 9):
        e = Y.repair_probability(
            1000,
            1000,
            spares,
            defect_density=0.001,
            tile_area_mm2=Y.WSE3.core_area_mm2,
            samples=1000,
            seed=0,
        )
        assert e.physical_tiles == 1000 * (1000 + spares)
        assert e.ci_low <= e.analytic <= e.ci_high
        assert e.analytic >= prev
        prev = e.analytic


# --- monotonicity --------------------------------------------------------------------------------


def test_analytic_monotone():
    densities = [0.0, 1e-4, 1e-3, 3e-3, 1e-2, 0.1, 1.0, 5.0]
    table = np.array(
        [
            [
                Y.analytic_repair_probability(40, 60, s, defect_density=d, tile_area_mm2=AREA)
                for d in densities
            ]
            for s in range(0, 9)
        ]
    )
    assert np.all(np.diff(table, axis=0) >= 0)  # more spares never lowers yield
    assert np.all(np.diff(table, axis=1) <= 0)  # more density never raises it


def test_monte_carlo_monotone_within_noise():
    sweep = Y.yield_sweep(
        40, 60, [0, 1, 2, 4], [1e-3, 1e-2, 0.1, 0.5], tile_area_mm2=AREA, samples=800, seed=3
    )
    for i, s in enumerate(sweep.spares):
        for j, d in enumerate(sweep.densities):
            e = sweep.estimate(s, d)
            if i + 1 < len(sweep.spares):
                assert sweep.estimate(sweep.spares[i + 1], d).ci_high >= e.ci_low
            if j + 1 < len(sweep.densities):
                assert sweep.estimate(s, sweep.densities[j + 1]).ci_low <= e.ci_high


# --- defect maps ---------------------------------------------------------------------------------


def test_defect_map_rate():
    p = 0.1
    m = Y.sample_defect_map(200, 500, defect_density=density_for(p), tile_area_mm2=AREA, rng=1)
    assert m.shape == (200, 500) and m.dtype == np.bool_
    sd = math.sqrt(m.size * p * (1 - p))
    assert abs(int(m.sum()) - m.size * p) < 5 * sd
    # per-row counts look binomial: variance close to n·p·(1-p)
    var = m.sum(axis=1).var()
    assert var == pytest.approx(500 * p * (1 - p), rel=0.25)


def test_defect_map_zero_density_and_seed():
    m = Y.sample_defect_map(8, 9, defect_density=0.0, tile_area_mm2=AREA, rng=0)
    assert not m.any()
    kw = dict(defect_density=2.0, tile_area_mm2=AREA)
    assert np.array_equal(
        Y.sample_defect_map(8, 9, rng=5, **kw), Y.sample_defect_map(8, 9, rng=5, **kw)
    )


# --- helpers -------------------------------------------------------------------------------------


def test_wilson_interval():
    lo, hi = Y.wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = Y.wilson_interval(50, 100)
    assert (lo, hi) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    lo, hi = Y.wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)


def test_spares_needed_and_max_density_consistent():
    kw = dict(tile_area_mm2=AREA)
    s = Y.spares_needed(100, 200, defect_density=0.01, target=0.99, **kw)
    assert Y.analytic_repair_probability(100, 200, s, defect_density=0.01, **kw) >= 0.99
    assert Y.analytic_repair_probability(100, 200, s - 1, defect_density=0.01, **kw) < 0.99
    d = Y.max_defect_density(100, 200, s, target=0.99, **kw)
    assert d >= 0.01
    assert Y.analytic_repair_probability(100, 200, s, defect_density=d, **kw) >= 0.99
    assert Y.analytic_repair_probability(100, 200, s, defect_density=d * 1.001, **kw) < 0.99
    assert Y.spares_needed(10, 10, defect_density=0.0, **kw) == 0
    with pytest.raises(ValueError, match="max_spares"):
        Y.spares_needed(10, 10, defect_density=100.0, max_spares=3, **kw)


def test_pooled_bound_beats_rows():
    """Pooling all spares is never worse than fixing them per row."""
    rows, cols, spares = 100, 100, 2
    for d0 in (1e-3, 1e-2, 0.1, 0.3):
        per_row = Y.analytic_repair_probability(
            rows, cols, spares, defect_density=d0, tile_area_mm2=AREA
        )
        pooled = Y.pooled_repair_probability(
            rows * (cols + spares), rows * spares, defect_density=d0, tile_area_mm2=AREA
        )
        assert pooled >= per_row


def test_wse3_anchor():
    w = Y.WSE3
    assert w.die_edge_mm**2 == w.die_area_mm2
    assert w.core_area_mm2 == pytest.approx(0.04765, abs=1e-5)
    assert w.spare_fraction == pytest.approx(0.0722, abs=1e-4)
    rows, cols, spares = w.column_spare_grid()
    assert (rows, cols, spares) == (985, 914, 71)
    assert abs(rows * cols - w.active_cores) < rows
    assert abs(rows * (cols + spares) - w.physical_cores) < rows


# --- sweep, table, plot --------------------------------------------------------------------------


def test_sweep_table_and_plot(tmp_path):
    calls = []
    sweep = Y.yield_sweep(
        30,
        40,
        [1, 3],
        [1e-3, 1e-2, 0.1],
        tile_area_mm2=AREA,
        samples=300,
        seed=9,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(i, 6) for i in range(1, 7)]
    assert len(sweep.estimates) == 6
    alone = Y.repair_probability(
        30, 40, 3, defect_density=1e-2, tile_area_mm2=AREA, samples=300, seed=9
    )
    assert sweep.estimate(3, 1e-2) == alone
    with pytest.raises(KeyError):
        sweep.estimate(2, 1e-2)
    records = sweep.to_records()
    assert json.loads(json.dumps(records)) == records
    table = sweep.to_markdown()
    assert len(table.splitlines()) == 2 + 6
    grid = sweep.to_markdown("grid").splitlines()
    assert len(grid) == 2 + 2 and grid[2].startswith("| 1 |") and grid[2].count("|") == 5
    with pytest.raises(ValueError, match="layout"):
        sweep.to_markdown("wide")
    out = Y.plot_yield(sweep, tmp_path / "yield.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a sweep including D0 = 0 plots on a linear axis
    sweep0 = Y.yield_sweep(5, 5, [0], [0.0, 0.5], tile_area_mm2=AREA, samples=20)
    assert Y.plot_yield(sweep0, str(tmp_path / "lin.png")).stat().st_size > 0


# --- validation ----------------------------------------------------------------------------------

GOOD = dict(rows=4, cols=4, spares=1, defect_density=0.01, tile_area_mm2=AREA)


@pytest.mark.parametrize(
    "change,error,match",
    [
        (dict(rows=0), ValueError, "rows must be >= 1"),
        (dict(cols=0), ValueError, "cols must be >= 1"),
        (dict(spares=-1), ValueError, "spares must be >= 0"),
        (dict(rows=2.0), TypeError, "rows must be an integer"),
        (dict(spares=True), TypeError, "spares must be an integer"),
        (dict(defect_density=-0.1), ValueError, "defect_density must be >= 0"),
        (dict(defect_density=math.nan), ValueError, "defect_density must be finite"),
        (dict(defect_density="0.1"), TypeError, "defect_density must be a real number"),
        (dict(tile_area_mm2=0.0), ValueError, "tile_area_mm2 must be > 0"),
        (dict(tile_area_mm2=math.inf), ValueError, "tile_area_mm2 must be finite"),
        (dict(samples=0), ValueError, "samples must be >= 1"),
        (dict(samples=10.5), TypeError, "samples must be an integer"),
        (dict(seed=-1), ValueError, "seed must be >= 0"),
        (dict(seed="x"), TypeError, "seed must be an integer"),
    ],
)
def test_validation(change, error, match):
    kw = {**GOOD, **change}
    rows, cols, spares = kw.pop("rows"), kw.pop("cols"), kw.pop("spares")
    with pytest.raises(error, match=match):
        Y.repair_probability(rows, cols, spares, **kw)


def test_validation_numpy_integers_accepted():
    e = Y.repair_probability(
        np.int64(3),
        np.int32(4),
        np.uint8(1),
        defect_density=np.float32(0.1),
        tile_area_mm2=AREA,
        samples=np.int64(10),
    )
    assert e.rows == 3 and isinstance(e.rows, int)


def test_validation_other_entry_points():
    with pytest.raises(ValueError, match="cols_physical must be >= 1"):
        Y.sample_defect_map(2, 0, defect_density=0.1, tile_area_mm2=AREA, rng=0)
    with pytest.raises(ValueError, match="spares_list must hold"):
        Y.yield_sweep(2, 2, [], [0.1], tile_area_mm2=AREA)
    with pytest.raises(ValueError, match="densities must hold"):
        Y.yield_sweep(2, 2, [1], [], tile_area_mm2=AREA)
    with pytest.raises(ValueError, match="duplicates"):
        Y.yield_sweep(2, 2, [1, 1], [0.1], tile_area_mm2=AREA)
    with pytest.raises(ValueError, match="density must be >= 0"):
        Y.yield_sweep(2, 2, [1], [0.1, -1.0], tile_area_mm2=AREA)
    with pytest.raises(TypeError, match="progress"):
        Y.yield_sweep(2, 2, [1], [0.1], tile_area_mm2=AREA, progress=3)
    with pytest.raises(ValueError, match="smaller than physical_tiles"):
        Y.pooled_repair_probability(10, 10, defect_density=0.1, tile_area_mm2=AREA)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        Y.max_defect_density(2, 2, 1, tile_area_mm2=AREA, target=1.0)
    with pytest.raises(ValueError, match="probability in"):
        Y.spares_needed(2, 2, defect_density=0.1, tile_area_mm2=AREA, target=1.5)
    with pytest.raises(ValueError, match="successes"):
        Y.wilson_interval(11, 10)
    with pytest.raises(TypeError, match="YieldSweep"):
        Y.plot_yield({"not": "a sweep"}, "x.png")
    with pytest.raises(ValueError, match="no logical column"):
        Y.WSE3.column_spare_grid(rows=2_000_000)
