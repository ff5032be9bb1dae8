"""Wafer yield model of the column-spare redundancy: the probability that a wafer can be repaired.

The physical array has ``R`` rows of ``C + S`` tiles; the logical array is ``R × C``. Each row is
repaired on its own: the repair solver maps the row's ``C`` logical columns, in order, onto its
working tiles, so a row is repairable iff it has at most ``S`` defective tiles, and the wafer is
repairable iff every row is (see DESIGN.md, "Redundancy").

Defects land as a Poisson process of density ``D0`` (defects/mm²). A tile of area ``A`` (mm²) is
defective iff it receives at least one defect, so tiles are independently defective with
probability ``p = 1 - exp(-D0·A)``. The number of defective tiles in a row is then
``Binomial(C + S, p)`` and, rows being independent,

    P(repairable) = P[Binomial(C + S, p) <= S] ** R.

:func:`repair_probability` estimates that probability by Monte Carlo (with a Wilson 95 %
confidence interval) and reports the closed form next to it; :func:`yield_sweep` tabulates it
for several spare counts and densities, and :func:`plot_yield` draws the table. The model is
deliberately simple: independent point defects only (no clustering, no defects in the links or
the configuration path, no parametric failures), and every defect kills exactly one tile.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sim.checks import check_int, check_real

__all__ = [
    "WSE3",
    "WaferAnchor",
    "YieldEstimate",
    "YieldSweep",
    "analytic_repair_probability",
    "max_defect_density",
    "plot_yield",
    "pooled_repair_probability",
    "repair_probability",
    "sample_defect_map",
    "spares_needed",
    "tile_defect_probability",
    "wilson_interval",
    "yield_sweep",
]

#: Two-sided 95 % normal quantile, used by the Wilson interval.
Z95 = 1.959963984540054

#: Upper bound on the number of binomial draws held in memory at once (about 8 MiB of int64).
_CHUNK_DRAWS = 1 << 20

SeedLike = int | np.random.SeedSequence | np.random.Generator | None


# --- Published anchor ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WaferAnchor:
    """Published core counts and die size of a wafer-scale engine, and what follows from them.

    Parameters
    ----------
    name : str
        Product name.
    active_cores : int
        Cores enabled after repair (the logical array).
    physical_cores : int
        Cores on the die, spares included (the physical array).
    die_area_mm2 : float
        Die area, mm².
    die_edge_mm : float
        Edge of the (square) die, mm.
    """

    name: str
    active_cores: int
    physical_cores: int
    die_area_mm2: float
    die_edge_mm: float

    @property
    def spare_cores(self) -> int:
        """Physical minus active cores."""
        return self.physical_cores - self.active_cores

    @property
    def spare_fraction(self) -> float:
        """Fraction of the physical cores that are spares (dimensionless)."""
        return self.spare_cores / self.physical_cores

    @property
    def core_area_mm2(self) -> float:
        """Die area divided by the physical cores, mm².

        **Assumption**: the whole die is tiles (core + SRAM + router), i.e. edge I/O, scribe and
        any area outside the core grid are ignored; the value is an upper bound on the true tile
        area. It agrees with the ~0.05 mm² per core quoted by Cerebras.
        """
        return self.die_area_mm2 / self.physical_cores

    def column_spare_grid(self, rows: int | None = None) -> tuple[int, int, int]:
        """A ``(rows, cols, spares)`` grid for our column-spare scheme with the same budget.

        Parameters
        ----------
        rows : int, optional
            Number of rows ``R``. Default: ``round(sqrt(physical_cores))``, i.e. a square grid of
            physical tiles on the square die (**assumption**: square tile pitch; the published
            material used here gives no core-grid dimensions).

        Returns
        -------
        tuple of int
            ``(R, C, S)`` with ``C + S = round(physical_cores / R)`` and
            ``C = round(active_cores / R)``, so ``R·C`` and ``R·(C+S)`` are the nearest whole-row
            approximations of the active and physical core counts.
        """
        if rows is None:
            rows = round(math.sqrt(self.physical_cores))
        check_int("rows", rows, minimum=1)
        physical_cols = round(self.physical_cores / rows)
        cols = round(self.active_cores / rows)
        if cols < 1 or physical_cols < cols:
            raise ValueError(f"rows={rows} leaves no logical column; use fewer rows")
        return rows, cols, physical_cols - cols


# Sources (published, rounded figures):
# - Cerebras press release "Cerebras Systems Unveils World's Fastest AI Chip with Whopping
#   4 Trillion Transistors" (13 March 2024): WSE-3, TSMC 5 nm, 900,000 AI cores, 46,225 mm².
# - Cerebras blog "100x Defect Tolerance: How Cerebras Solved the Yield Problem" (January 2025,
#   cerebras.ai/blog/100x-defect-tolerance-how-cerebras-solved-the-yield-problem): 970,000
#   physical cores of which 900,000 active (~93 % of the silicon used), cores of ~0.05 mm²,
#   and a defect density of ~0.001 per mm² for TSMC 5 nm (a figure of that post, not a foundry
#   datasheet). These three figures were read from secondary summaries of the post.
# - The die is square, widely reported as 215 mm × 215 mm (sqrt(46,225 mm²) = 215 mm).
# Derived, not published: the per-core area (die area / physical cores, see core_area_mm2) and
# any core-grid shape (see column_spare_grid).
WSE3 = WaferAnchor(
    name="WSE-3",
    active_cores=900_000,
    physical_cores=970_000,
    die_area_mm2=46_225.0,
    die_edge_mm=215.0,
)

#: Defect density quoted for TSMC 5 nm in the Cerebras yield blog post, defects/mm² (approximate).
WSE3_QUOTED_DEFECT_DENSITY = 0.001


# --- Validation ---------------------------------------------------------------------------------


def _check_probability(name: str, value: object) -> float:
    value = check_real(name, value, positive=False, unit="(a probability)")
    if value > 1:
        raise ValueError(f"{name} must be a probability in [0, 1], not {value}")
    return value


def _check_array(rows: object, cols: object, spares: object) -> tuple[int, int, int]:
    return (
        check_int("rows", rows, minimum=1),
        check_int("cols", cols, minimum=1),
        check_int("spares", spares, minimum=0),
    )


def _check_seed(seed: object) -> SeedLike:
    if seed is None or isinstance(seed, np.random.SeedSequence | np.random.Generator):
        return seed
    return check_int("seed", seed, minimum=0)


# --- Closed forms -------------------------------------------------------------------------------


def tile_defect_probability(defect_density: float, tile_area_mm2: float) -> float:
    """Probability that a tile gets at least one defect: ``1 - exp(-D0·A)``.

    Parameters
    ----------
    defect_density : float
        Poisson defect density ``D0``, defects/mm² (>= 0).
    tile_area_mm2 : float
        Tile area ``A``, mm² (> 0).

    Returns
    -------
    float
        ``p`` in [0, 1].
    """
    d0 = check_real("defect_density", defect_density, positive=False, unit="defects/mm²")
    area = check_real("tile_area_mm2", tile_area_mm2, positive=True, unit="mm²")
    return -math.expm1(-d0 * area)


def _log_binomial_pmf(n: int, p: float) -> np.ndarray:
    """``log P[Binomial(n, p) = k]`` for ``k = 0..n``, shape ``(n + 1,)``; ``0 < p < 1``."""
    k = np.arange(1, n + 1, dtype=np.float64)
    log_choose = np.concatenate(([0.0], np.cumsum(np.log(n - k + 1) - np.log(k))))
    ks = np.arange(n + 1, dtype=np.float64)
    return log_choose + ks * math.log(p) + (n - ks) * math.log1p(-p)


def _logsumexp(x: np.ndarray) -> float:
    if x.size == 0:
        return -math.inf
    top = float(np.max(x))
    return top + math.log(float(np.sum(np.exp(x - top))))


def _log_binomial_cdf(n: int, k: int, p: float) -> float:
    """``log P[Binomial(n, p) <= k]``, accurate both when it is tiny and when it is close to 1."""
    if k >= n or p == 0.0:
        return 0.0
    if k < 0:
        return -math.inf
    if p == 1.0:
        return -math.inf
    log_pmf = _log_binomial_pmf(n, p)
    log_tail = _logsumexp(log_pmf[k + 1 :])
    if log_tail < math.log(0.5):
        return math.log1p(-math.exp(log_tail))
    return _logsumexp(log_pmf[: k + 1])


def _analytic(rows: int, cols: int, spares: int, p: float) -> float:
    return math.exp(rows * _log_binomial_cdf(cols + spares, spares, p))


def analytic_repair_probability(
    rows: int, cols: int, spares: int, *, defect_density: float, tile_area_mm2: float
) -> float:
    """Closed-form probability that a wafer is repairable: ``P[Binomial(C+S, p) <= S] ** R``.

    Parameters
    ----------
    rows, cols, spares : int
        ``R`` (>= 1), ``C`` logical columns (>= 1) and ``S`` spare columns (>= 0).
    defect_density, tile_area_mm2 : float
        Defect density ``D0`` (defects/mm²) and tile area ``A`` (mm²).

    Returns
    -------
    float
        Probability in [0, 1]. Computed in log space, so it stays accurate for a million tiles
        and for yields very close to 0 or 1.
    """
    rows, cols, spares = _check_array(rows, cols, spares)
    p = tile_defect_probability(defect_density, tile_area_mm2)
    return _analytic(rows, cols, spares, p)


def pooled_repair_probability(
    physical_tiles: int, spare_tiles: int, *, defect_density: float, tile_area_mm2: float
) -> float:
    """Idealised bound: repairable iff the whole wafer has at most ``spare_tiles`` defects.

    This is what a scheme could reach if any spare could stand in for any defective tile
    anywhere (no locality limit): ``P[Binomial(N, p) <= K]``. It is not our architecture; it
    serves as the yardstick for how much a per-row (or per-region) spare budget costs.

    Parameters
    ----------
    physical_tiles : int
        ``N``, all tiles including spares (>= 1).
    spare_tiles : int
        ``K``, the number of spares (0 <= K < N).
    defect_density, tile_area_mm2 : float
        Defect density ``D0`` (defects/mm²) and tile area ``A`` (mm²).

    Returns
    -------
    float
        Probability in [0, 1].
    """
    n = check_int("physical_tiles", physical_tiles, minimum=1)
    k = check_int("spare_tiles", spare_tiles, minimum=0)
    if k >= n:
        raise ValueError(f"spare_tiles ({k}) must be smaller than physical_tiles ({n})")
    p = tile_defect_probability(defect_density, tile_area_mm2)
    return math.exp(_log_binomial_cdf(n, k, p))


def spares_needed(
    rows: int,
    cols: int,
    *,
    defect_density: float,
    tile_area_mm2: float,
    target: float = 0.99,
    max_spares: int | None = None,
) -> int:
    """Smallest number of spare columns ``S`` whose analytic repair probability is >= target.

    Parameters
    ----------
    rows, cols : int
        ``R`` and ``C`` (>= 1).
    defect_density, tile_area_mm2 : float
        Defect density ``D0`` (defects/mm²) and tile area ``A`` (mm²).
    target : float
        Required probability that the wafer is repairable, in (0, 1].
    max_spares : int, optional
        Give up above this many spares (default: ``cols``).

    Returns
    -------
    int
        ``S`` (adding a spare column adds a tile that can itself be defective; the search
        accounts for it).

    Raises
    ------
    ValueError
        If no ``S <= max_spares`` reaches the target.
    """
    rows = check_int("rows", rows, minimum=1)
    cols = check_int("cols", cols, minimum=1)
    target = _check_probability("target", target)
    if target == 0:
        return 0
    max_spares = cols if max_spares is None else check_int("max_spares", max_spares, minimum=0)
    p = tile_defect_probability(defect_density, tile_area_mm2)
    for spares in range(max_spares + 1):
        if _analytic(rows, cols, spares, p) >= target:
            return spares
    raise ValueError(
        f"even {max_spares} spare columns give P(repairable) < {target} at "
        f"defect_density={defect_density} defects/mm²; raise max_spares or lower the density"
    )


def max_defect_density(
    rows: int, cols: int, spares: int, *, tile_area_mm2: float, target: float = 0.99
) -> float:
    """Largest defect density at which the analytic repair probability is still >= target.

    Parameters
    ----------
    rows, cols, spares : int
        ``R``, ``C``, ``S``.
    tile_area_mm2 : float
        Tile area ``A``, mm².
    target : float
        Required probability that the wafer is repairable, in (0, 1).

    Returns
    -------
    float
        ``D0``, defects/mm² (bisection on a log scale, relative precision about 1e-9).
    """
    rows, cols, spares = _check_array(rows, cols, spares)
    area = check_real("tile_area_mm2", tile_area_mm2, positive=True, unit="mm²")
    target = _check_probability("target", target)
    if not 0 < target < 1:
        raise ValueError(f"target must be strictly between 0 and 1, not {target}")

    def ok(d0: float) -> bool:
        return _analytic(rows, cols, spares, -math.expm1(-d0 * area)) >= target

    lo, hi = 1e-15 / area, 1.0 / area
    if not ok(lo):
        return 0.0
    while ok(hi):
        lo, hi = hi, hi * 10
        if hi > 1e6 / area:
            return math.inf
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        if hi / lo < 1 + 1e-9:
            break
    return lo


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Parameters
    ----------
    successes : int
        Number of successes (0 <= successes <= trials).
    trials : int
        Number of trials (>= 1).
    z : float
        Normal quantile; the default gives a two-sided 95 % interval.

    Returns
    -------
    tuple of float
        ``(low, high)``, both in [0, 1]. Unlike the normal approximation it does not collapse
        to a point when the estimate is 0 or 1.
    """
    trials = check_int("trials", trials, minimum=1)
    successes = check_int("successes", successes, minimum=0)
    if successes > trials:
        raise ValueError(f"successes ({successes}) cannot exceed trials ({trials})")
    z = check_real("z", z, positive=True, unit="(a normal quantile)")
    phat = successes / trials
    z2n = z * z / trials
    centre = (phat + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * math.sqrt(phat * (1 - phat) / trials + z2n / (4 * trials))
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


# --- Monte Carlo --------------------------------------------------------------------------------


def sample_defect_map(
    rows: int,
    cols_physical: int,
    *,
    defect_density: float,
    tile_area_mm2: float,
    rng: SeedLike,
) -> np.ndarray:
    """Draw one full defect map: a Poisson number of defects per tile, defective if >= 1.

    Parameters
    ----------
    rows : int
        ``R`` (>= 1).
    cols_physical : int
        Physical columns ``C + S`` (>= 1).
    defect_density, tile_area_mm2 : float
        Defect density ``D0`` (defects/mm²) and tile area ``A`` (mm²).
    rng : numpy.random.Generator or int or numpy.random.SeedSequence or None
        Random source; an int or seed sequence seeds a fresh ``default_rng``.

    Returns
    -------
    numpy.ndarray
        Boolean array of shape ``(rows, cols_physical)``; ``True`` marks a defective tile. This
        is the defect map of DESIGN.md that the repair solver and the fabric tests consume.
    """
    rows = check_int("rows", rows, minimum=1)
    cols_physical = check_int("cols_physical", cols_physical, minimum=1)
    d0 = check_real("defect_density", defect_density, positive=False, unit="defects/mm²")
    area = check_real("tile_area_mm2", tile_area_mm2, positive=True, unit="mm²")
    generator = np.random.default_rng(_check_seed(rng))
    return generator.poisson(d0 * area, size=(rows, cols_physical)) > 0


@dataclass(frozen=True)
class YieldEstimate:
    """Monte Carlo estimate of P(wafer repairable), with the closed form alongside.

    Attributes
    ----------
    rows, cols, spares : int
        ``R``, ``C``, ``S``; the physical array is ``R × (C + S)`` tiles.
    defect_density, tile_area_mm2 : float
        Defect density ``D0`` (defects/mm²) and tile area ``A`` (mm²).
    samples : int
        Number of simulated wafers.
    seed : int or None
        Seed of the draw (``None`` if a generator or fresh entropy was used).
    tile_defect_probability : float
        ``p = 1 - exp(-D0·A)``.
    repairable : int
        Number of simulated wafers that were repairable.
    probability : float
        ``repairable / samples``.
    ci_low, ci_high : float
        Wilson 95 % confidence interval of ``probability``.
    analytic : float
        ``P[Binomial(C+S, p) <= S] ** R``.
    expected_defective_tiles : float
        ``R·(C+S)·p``, defective tiles per wafer (closed form).
    mean_defective_tiles : float
        Mean defective tiles per simulated wafer.
    mean_rows_all_spares_used : float
        Mean number of rows per simulated wafer with exactly ``S`` defective tiles, i.e. rows
        that are repaired but have no spare left (for ``S = 0``: defect-free rows).
    """

    rows: int
    cols: int
    spares: int
    defect_density: float
    tile_area_mm2: float
    samples: int
    seed: int | None
    tile_defect_probability: float
    repairable: int
    probability: float
    ci_low: float
    ci_high: float
    analytic: float
    expected_defective_tiles: float
    mean_defective_tiles: float
    mean_rows_all_spares_used: float

    @property
    def physical_tiles(self) -> int:
        """``R·(C+S)``."""
        return self.rows * (self.cols + self.spares)

    @property
    def analytic_in_ci(self) -> bool:
        """Whether the closed form lies inside the Monte Carlo confidence interval."""
        return self.ci_low <= self.analytic <= self.ci_high

    def as_dict(self) -> dict[str, int | float | None]:
        """Plain-Python fields, ready for ``json.dumps``."""
        return asdict(self)


def _monte_carlo(
    rows: int, cols: int, spares: int, p: float, samples: int, rng: np.random.Generator
) -> tuple[int, int, int]:
    """Return ``(repairable wafers, total defective tiles, total rows with exactly S)``."""
    n = cols + spares
    chunk = max(1, min(samples, _CHUNK_DRAWS // rows))
    repairable = defective = full = 0
    done = 0
    while done < samples:
        m = min(chunk, samples - done)
        counts = rng.binomial(n, p, size=(m, rows))  # (wafers, rows): defective tiles per row
        repairable += int(np.count_nonzero(np.all(counts <= spares, axis=1)))
        defective += int(counts.sum(dtype=np.int64))
        full += int(np.count_nonzero(counts == spares))
        done += m
    return repairable, defective, full


def repair_probability(
    rows: int,
    cols: int,
    spares: int,
    *,
    defect_density: float,
    tile_area_mm2: float,
    samples: int = 1000,
    seed: SeedLike = 0,
) -> YieldEstimate:
    """Monte Carlo probability that a wafer with ``S`` spare columns per row is repairable.

    Each simulated wafer gets, for every row, the number of defective tiles in that row, drawn
    as ``Binomial(C + S, p)`` with ``p = 1 - exp(-D0·A)``; the wafer is repairable iff no row
    has more than ``S``. This is *exactly* the distribution of the per-tile model, not an
    approximation: the Poisson process puts independent Poisson(D0·A) counts on disjoint tiles,
    so the ``C + S`` tiles of a row are independent Bernoulli(p) variables, and a sum of ``n``
    independent Bernoulli(p) is Binomial(n, p) by definition. Repairability of a row depends
    only on that count (the solver maps the logical columns in order onto whichever tiles
    work), and distinct rows share no tile, so the ``R`` counts are independent. Drawing
    ``R × samples`` binomials instead of ``R × (C+S) × samples`` Bernoullis therefore gives the
    same repairability statistics at a cost independent of ``C`` (a million-tile wafer with 1000
    samples is a million binomial draws, about 0.1 s).

    Parameters
    ----------
    rows : int
        ``R``, rows of the array (>= 1).
    cols : int
        ``C``, logical columns per row (>= 1).
    spares : int
        ``S``, spare columns per row (>= 0).
    defect_density : float
        ``D0``, defects/mm² (>= 0).
    tile_area_mm2 : float
        Tile area ``A``, mm² (> 0).
    samples : int
        Number of simulated wafers (>= 1).
    seed : int or numpy.random.SeedSequence or numpy.random.Generator or None
        Random source. The same integer seed gives the same result on every call.

    Returns
    -------
    YieldEstimate
        Monte Carlo fraction with its Wilson 95 % interval, the closed form, and defect
        statistics.

    Raises
    ------
    TypeError
        If a count is not an integer or a density/area not a real number.
    ValueError
        If a count is out of range or a density/area negative or not finite.
    """
    rows, cols, spares = _check_array(rows, cols, spares)
    samples = check_int("samples", samples, minimum=1)
    p = tile_defect_probability(defect_density, tile_area_mm2)
    seed = _check_seed(seed)
    rng = np.random.default_rng(seed)
    repairable, defective, full = _monte_carlo(rows, cols, spares, p, samples, rng)
    low, high = wilson_interval(repairable, samples)
    return YieldEstimate(
        rows=rows,
        cols=cols,
        spares=spares,
        defect_density=float(defect_density),
        tile_area_mm2=float(tile_area_mm2),
        samples=samples,
        seed=seed if isinstance(seed, int) else None,
        tile_defect_probability=p,
        repairable=repairable,
        probability=repairable / samples,
        ci_low=low,
        ci_high=high,
        analytic=_analytic(rows, cols, spares, p),
        expected_defective_tiles=rows * (cols + spares) * p,
        mean_defective_tiles=defective / samples,
        mean_rows_all_spares_used=full / samples,
    )


# --- Sweeps and plots ---------------------------------------------------------------------------


@dataclass(frozen=True)
class YieldSweep:
    """A table of :class:`YieldEstimate` for several spare counts and defect densities.

    Attributes
    ----------
    rows, cols : int
        ``R`` and ``C``.
    tile_area_mm2 : float
        Tile area ``A``, mm².
    samples : int
        Simulated wafers per point.
    seed : int or None
        Seed used for every point (each point equals the stand-alone
        :func:`repair_probability` call with the same arguments).
    spares : tuple of int
        Spare counts, in the order given.
    densities : tuple of float
        Defect densities, defects/mm², in the order given.
    estimates : tuple of YieldEstimate
        ``len(spares) × len(densities)`` estimates, spare-major:
        ``estimates[i * len(densities) + j]`` is ``(spares[i], densities[j])``.
    """

    rows: int
    cols: int
    tile_area_mm2: float
    samples: int
    seed: int | None
    spares: tuple[int, ...]
    densities: tuple[float, ...]
    estimates: tuple[YieldEstimate, ...]

    def estimate(self, spares: int, density: float) -> YieldEstimate:
        """The estimate for one ``(spares, density)`` point."""
        try:
            i, j = self.spares.index(spares), self.densities.index(density)
        except ValueError:
            raise KeyError(f"no point (spares={spares}, density={density}) in the sweep") from None
        return self.estimates[i * len(self.densities) + j]

    def to_records(self) -> list[dict[str, int | float | None]]:
        """One plain dict per point (for ``--json``)."""
        return [e.as_dict() for e in self.estimates]

    def to_markdown(self, layout: str = "long") -> str:
        """The sweep as a Markdown table.

        Parameters
        ----------
        layout : {"long", "grid"}
            ``"long"``: one line per point with the tile defect probability, expected defective
            tiles, Monte Carlo estimate, its 95 % interval, closed form and the mean number of
            rows with no spare left. ``"grid"``: one line per spare count, one column per
            density, each cell ``MC (analytic)``.

        Returns
        -------
        str
            The table, without a trailing newline.
        """
        if layout == "grid":
            head = " | ".join(f"{d:.3g}" for d in self.densities)
            lines = [
                f"| S ↓ D0 (/mm²) → | {head} |",
                "|---:|" + "---:|" * len(self.densities),
            ]
            for i, s in enumerate(self.spares):
                row = self.estimates[i * len(self.densities) : (i + 1) * len(self.densities)]
                cells = " | ".join(f"{e.probability:.3f} ({e.analytic:.3f})" for e in row)
                lines.append(f"| {s} | {cells} |")
            return "\n".join(lines)
        if layout != "long":
            raise ValueError(f"layout must be 'long' or 'grid', not {layout!r}")
        lines = [
            "| S | D0 (/mm²) | p (tile) | E[defective tiles] | P MC | 95 % CI | P analytic "
            "| rows with 0 spare left |",
            "|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for e in self.estimates:
            lines.append(
                f"| {e.spares} | {e.defect_density:.3g} | {e.tile_defect_probability:.3g} "
                f"| {e.expected_defective_tiles:.4g} | {e.probability:.3f} "
                f"| [{e.ci_low:.3f}, {e.ci_high:.3f}] | {e.analytic:.4f} "
                f"| {e.mean_rows_all_spares_used:.3g} |"
            )
        return "\n".join(lines)


def yield_sweep(
    rows: int,
    cols: int,
    spares_list: Sequence[int],
    densities: Sequence[float],
    *,
    tile_area_mm2: float,
    samples: int = 1000,
    seed: int | None = 0,
    progress: Callable[[int, int], None] | None = None,
) -> YieldSweep:
    """Run :func:`repair_probability` for every spare count and defect density.

    Parameters
    ----------
    rows, cols : int
        ``R`` and ``C`` (>= 1).
    spares_list : sequence of int
        Spare columns per row to try (each >= 0, no duplicates).
    densities : sequence of float
        Defect densities ``D0``, defects/mm² (each >= 0, no duplicates).
    tile_area_mm2 : float
        Tile area ``A``, mm².
    samples : int
        Simulated wafers per point.
    seed : int or None
        Seed used for every point, so any point can be reproduced on its own.
    progress : callable, optional
        Called as ``progress(done, total)`` after each point (for a progress bar in the CLI).

    Returns
    -------
    YieldSweep
        The table, spare-major.
    """
    rows = check_int("rows", rows, minimum=1)
    cols = check_int("cols", cols, minimum=1)
    spares_t = tuple(check_int("spares", s, minimum=0) for s in spares_list)
    densities_t = tuple(
        check_real("density", d, positive=False, unit="defects/mm²") for d in densities
    )
    if not spares_t:
        raise ValueError("spares_list must hold at least one spare count")
    if not densities_t:
        raise ValueError("densities must hold at least one defect density")
    if len(set(spares_t)) != len(spares_t):
        raise ValueError(f"spares_list has duplicates: {list(spares_t)}")
    if len(set(densities_t)) != len(densities_t):
        raise ValueError(f"densities has duplicates: {list(densities_t)}")
    check_real("tile_area_mm2", tile_area_mm2, positive=True, unit="mm²")
    samples = check_int("samples", samples, minimum=1)
    if seed is not None:
        seed = check_int("seed", seed, minimum=0)
    if progress is not None and not callable(progress):
        raise TypeError("progress must be a callable progress(done, total) or None")

    total = len(spares_t) * len(densities_t)
    estimates = []
    for s in spares_t:
        for d in densities_t:
            estimates.append(
                repair_probability(
                    rows,
                    cols,
                    s,
                    defect_density=d,
                    tile_area_mm2=tile_area_mm2,
                    samples=samples,
                    seed=seed,
                )
            )
            if progress is not None:
                progress(len(estimates), total)
    return YieldSweep(
        rows=rows,
        cols=cols,
        tile_area_mm2=float(tile_area_mm2),
        samples=samples,
        seed=seed,
        spares=spares_t,
        densities=densities_t,
        estimates=tuple(estimates),
    )


def plot_yield(sweep: YieldSweep, path: str | Path) -> Path:
    """Plot P(repairable) against defect density, one colour per spare count, to a PNG.

    The closed form is drawn as a line over the whole density range; the Monte Carlo points
    carry their Wilson 95 % intervals as error bars. The density axis is logarithmic when all
    densities are positive. Rendering uses matplotlib's Agg canvas directly (no pyplot, no
    display).

    Parameters
    ----------
    sweep : YieldSweep
        Result of :func:`yield_sweep`.
    path : str or pathlib.Path
        Output file (PNG); parent directories must exist.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    if not isinstance(sweep, YieldSweep):
        raise TypeError(f"sweep must be a YieldSweep, not {type(sweep).__name__}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(7.5, 4.8), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    densities = np.array(sweep.densities)
    log_x = bool(np.all(densities > 0)) and densities.max() > densities.min()
    lo, hi = densities.min(), densities.max()
    if log_x:
        grid = np.geomspace(lo, hi, 240)
    else:
        grid = np.linspace(lo, hi if hi > lo else lo + 1.0, 240)
    colours = [f"C{i % 10}" for i in range(len(sweep.spares))]
    for i, (s, colour) in enumerate(zip(sweep.spares, colours)):
        p_grid = [
            _analytic(sweep.rows, sweep.cols, s, -math.expm1(-d * sweep.tile_area_mm2))
            for d in grid
        ]
        ax.plot(grid, p_grid, color=colour, lw=1.4)
        points = sweep.estimates[i * len(densities) : (i + 1) * len(densities)]
        mc = np.array([e.probability for e in points])
        err = np.array(
            [
                [e.probability - e.ci_low for e in points],
                [e.ci_high - e.probability for e in points],
            ]
        )
        ax.errorbar(
            densities,
            mc,
            yerr=err,
            fmt="o",
            ms=3.5,
            color=colour,
            capsize=2,
            elinewidth=1,
            label=f"S = {s}",
        )
    if log_x:
        ax.set_xscale("log")
        top = ax.secondary_xaxis("top", functions=(lambda x: x * 100, lambda x: x / 100))
        top.set_xlabel("defect density D0 (defects/cm²)")
    ax.set_xlabel("defect density D0 (defects/mm²)")
    ax.set_ylabel("P(wafer repairable)")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(
        f"{sweep.rows} × {sweep.cols} logical tiles + S spare columns per row, "
        f"tile {sweep.tile_area_mm2:.4g} mm², {sweep.samples} wafers/point",
        fontsize=9,
    )
    ax.legend(
        title="lines: closed form\npoints: Monte Carlo ± 95 % CI",
        title_fontsize=7,
        fontsize=7,
        loc="best",
    )
    fig.savefig(path, format="png")
    return path
