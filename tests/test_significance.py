"""Hidden-cluster significance: null model, expected counts, Monte Carlo p-values, BH, calibration.

All inputs are hand-built on 1 km grids in EPSG:3006 (metres); expected values are worked out
in the tests, the footprint's with the numpy/scipy twin of the kernel
(``helpers.footprint_expected_twin``).
"""

from __future__ import annotations

import math
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from helpers import footprint_expected_twin

from pari_geo.clustering import significance as sig
from pari_geo.clustering.actors import find_microclusters
from pari_geo.grid import GridSpec

CRS = "EPSG:3006"


def grid(pop: np.ndarray, x0: float = 0.0, y0: float | None = None, cell: float = 1000.0):
    """Population DataArray with upper-left corner (x0, y0)."""
    pop = np.asarray(pop, dtype=np.float64)
    y0 = pop.shape[0] * cell if y0 is None else y0
    return GridSpec(CRS, Affine(cell, 0, x0, 0, -cell, y0), pop.shape).to_dataarray(pop)


def points(xy, **cols) -> gpd.GeoDataFrame:
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return gpd.GeoDataFrame(cols, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=CRS)


def fp(members, eps, cell_expected, cell=1000.0, y0=None):
    """Expected actors in the footprint of ``members`` (the twin of the kernel)."""
    return footprint_expected_twin(members, eps, cell_expected, cell, y0=y0)[0]


def units_gdf(boxes: dict[str, tuple[float, float, float, float]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"mid": list(boxes)}, geometry=[shapely.box(*b) for b in boxes.values()], crs=CRS
    )


# ---------------------------------------------------------------------------- statistics


def test_poisson_llr_values():
    n = np.array([4, 10, 3, 0, 2])
    e = np.array([1.0, 10.0, 5.0, 0.0, 0.0])
    got = sig.poisson_llr(n, e)
    assert got[0] == pytest.approx(4 * math.log(4) - 3)
    assert got[1] == 0.0  # no excess
    assert got[2] == pytest.approx(-(3 * math.log(3 / 5) + 2))  # deficit: negative
    assert got[3] == 0.0  # nothing observed, nothing expected
    assert math.isinf(got[4])  # actors where the null puts none
    assert sig.poisson_llr(np.array([0]), np.array([2.5]))[0] == -2.5


def test_llr_compares_small_rural_and_big_town_excess():
    # counts at the Poisson 99th percentile for expected 1, 10, 100, 1000 (scipy.stats
    # poisson.ppf(0.99, e)): equally surprising excesses get about the same LLR (2.5-2.7),
    # while the ratio n/e would rank the tiny rural one first and n - e the town one
    from scipy.stats import poisson

    e = np.array([1.0, 10.0, 100.0, 1000.0])
    n = poisson.ppf(0.99, e)
    np.testing.assert_array_equal(n, [4, 18, 124, 1074])
    llr = sig.poisson_llr(n, e)
    assert llr.max() - llr.min() < 0.2
    assert (n / e).max() / (n / e).min() > 3
    assert (n - e).max() / (n - e).min() > 20


def test_benjamini_hochberg_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.20, np.nan])
    # sorted: .01 (r1) .03 (r2) .04 (r3) .20 (r4); m = 4 finite
    # raw: .04, .06, .0533, .20 -> monotone from the top: .04, .0533, .0533, .20
    want = np.array([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.20, np.nan])
    np.testing.assert_allclose(sig.benjamini_hochberg(p), want)
    assert np.isnan(sig.benjamini_hochberg(np.array([np.nan]))).all()
    assert sig.benjamini_hochberg(np.array([])).shape == (0,)


def test_monte_carlo_pvalues_counts_ties_as_exceeding():
    sim = np.array([0.0, 1.0, 2.0, 2.0, 5.0])
    got = sig.monte_carlo_pvalues(np.array([2.0, 6.0, 0.0]), sim)
    np.testing.assert_allclose(got, [(1 + 3) / 6, 1 / 6, 1.0])
    assert np.isnan(sig.monte_carlo_pvalues(np.array([1.0]), np.zeros(0))).all()


# ---------------------------------------------------------------------------- null model


def two_unit_setup():
    """2 x 4 grid of 1 km cells; unit L = columns 0-1, unit R = columns 2-3.

    residents        L: 10 20 | R: 30  40
                        50  0 |    60 100      -> L 80, R 230
    """
    pop = np.array([[10, 20, 30, 40], [50, 0, 60, 100]], dtype=float)
    units = units_gdf({"L": (0, 0, 2000, 2000), "R": (2000, 0, 4000, 2000)})
    xy = [
        # cluster A: 4 actors in cell (0, 0) of L
        (400, 1500), (450, 1500), (400, 1550), (450, 1550),
        # cluster B: 2 actors in cell (0, 1) of L, 2 in cell (0, 2) of R, symmetric about x=2000
        (1950, 1500), (1980, 1500), (2020, 1500), (2050, 1500),
        # loners: 1 in L, 2 in R
        (100, 100), (3900, 100), (3500, 900),
    ]  # fmt: skip
    return pop, units, points(xy)


def test_expected_counts_on_hand_built_grid():
    pop, units, actors = two_unit_setup()
    out = find_microclusters(
        actors, eps_m=200, min_actors=4, units=units, unit_id="mid",
        population=grid(pop), n_sim=0,
    )  # fmt: skip
    assert out["n_actors"].tolist() == [4, 4]
    rate_l, rate_r = 7 / 80, 4 / 230  # actors per resident of each unit
    ce = pop * np.array([rate_l, rate_l, rate_r, rate_r])  # expected actors per cell
    xy = np.column_stack([actors.geometry.x, actors.geometry.y])
    e_a, e_b = fp(xy[:4], 200, ce), fp(xy[4:8], 200, ce)
    # A: the 200 m reach of its members lies inside one cell of 10 residents; B straddles
    # the L/R border: its reach lies half on the cell of 20 (L), half on the cell of 30 (R)
    area_a = footprint_expected_twin(xy[:4], 200, np.ones_like(pop), 1000.0)[0]
    assert e_a == pytest.approx(rate_l * 10 * area_a)
    assert 0.15 < area_a < 0.25  # about pi (0.2 km)² plus the members' spread
    assert rate_l * 20 * 0.1 < e_b < rate_r * 30 * 0.1 + rate_l * 20 * 0.2
    np.testing.assert_allclose(out["expected"], [e_a, e_b])
    np.testing.assert_allclose(out["ratio"], [4 / e_a, 4 / e_b])
    np.testing.assert_allclose(
        out["llr"], [4 * math.log(4 / e_a) - (4 - e_a), 4 * math.log(4 / e_b) - (4 - e_b)]
    )
    assert out["unit_ids"].tolist() == ["L", "L;R"]
    assert out["n_units"].tolist() == [1, 2]
    # residents of the disc footprint: A lies inside one cell of 10 residents per km²;
    # B is symmetric about the L/R border: half its area on 20, half on 30 residents
    area = out["area_km2"].to_numpy()
    np.testing.assert_allclose(out["residents"], [10 * area[0], 25 * area[1]], rtol=1e-9)
    # n_sim = 0: no p-values, nothing hidden
    assert out["p_value"].isna().all() and out["q_value"].isna().all()
    assert not out["hidden"].any()


def test_null_model_samples_in_proportion_to_residents_within_units():
    pop, units, actors = two_unit_setup()
    xy = np.column_stack([actors.geometry.x, actors.geometry.y])
    au = np.array([0] * 4 + [0, 0, 1, 1] + [0, 1, 1])
    t = Affine(1000, 0, 0, 0, -1000, 2000)
    model = sig.build_null_model(xy, au, units.geometry.to_numpy(), population=pop, transform=t)
    assert model.basis == "residents"
    np.testing.assert_array_equal(model.cell_unit, [0, 0, 1, 1, 0, 0, 1, 1])
    np.testing.assert_array_equal(model.unit_actors, [7, 4])
    np.testing.assert_allclose(model.unit_residents, [80, 230])
    rng = np.random.default_rng(5)
    reps = 4000
    counts = np.zeros(8)
    for _ in range(reps):
        cells, x, y = model.sample(rng.random((model.free.sum(), 3)))
        np.add.at(counts, cells, 1)
        # positions lie inside their cell
        r, c = np.divmod(cells, 4)
        assert ((x >= c * 1000) & (x < (c + 1) * 1000)).all()
        assert ((y <= 2000 - r * 1000) & (y > 2000 - (r + 1) * 1000)).all()
    # 7 L actors over L's cells ∝ (10, 20, 50, 0), 4 R actors over R's ∝ (30, 40, 60, 100)
    want = np.array([7 * 10 / 80, 7 * 20 / 80, 4 * 30 / 230, 4 * 40 / 230,
                     7 * 50 / 80, 0.0, 4 * 60 / 230, 4 * 100 / 230]) * reps  # fmt: skip
    assert counts[5] == 0
    np.testing.assert_allclose(counts, want, rtol=0.05)


def test_unit_without_residents_uses_area_and_is_never_hidden():
    # unit E (columns 2-3) has no residents but 6 actors: they are spread uniformly over its
    # cells in the null model; its rate per resident is infinite
    pop = np.array([[10, 10, 0, 0], [10, 10, 0, 0]], dtype=float)
    units = units_gdf({"P": (0, 0, 2000, 2000), "E": (2000, 0, 4000, 2000)})
    xy = [(2500 + d, 1500) for d in (0, 10, 20, 30, 40, 50)] + [(500, 500), (1500, 500)]
    actors = points(xy)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        out = find_microclusters(
            actors, eps_m=100, min_actors=5, units=units, unit_id="mid",
            population=grid(pop), n_sim=19,
        )  # fmt: skip
    assert len(out) == 1
    # expected = rate per km² of E (6 actors / 4 km²) × the footprint's km²
    xy_e = np.array(xy[:6], dtype=float)
    area = footprint_expected_twin(xy_e, 100, np.ones_like(pop), 1000.0)[0]
    assert out["expected"].iloc[0] == pytest.approx(6 / 4 * area)
    assert out["residents"].iloc[0] == 0.0
    assert not out["hidden"].iloc[0]


def test_actors_outside_units_are_fixed_and_uncounted():
    pop, units, actors = two_unit_setup()
    far = points([(9000 + d, 9000) for d in (0, 10, 20, 30)])
    both = pd.concat([actors, far], ignore_index=True)
    with pytest.warns(UserWarning, match="4 actor.* outside every unit"):
        out = find_microclusters(
            both, eps_m=200, min_actors=4, units=units, unit_id="mid",
            population=grid(pop), n_sim=9,
        )  # fmt: skip
    assert len(out) == 3
    lone = out.iloc[2]
    assert lone["n_actors"] == 4 and lone["unit_ids"] == "" and lone["n_units"] == 0
    # off the grid: nothing expected, no free member; defined values, never a NaN p-value
    assert lone["expected"] == 0.0 and np.isnan(lone["ratio"]) and lone["llr"] == 0.0
    assert 0 < lone["p_value"] <= 1.0 and not lone["hidden"]
    # unit rates unchanged by the outside actors
    ce = pop * np.array([7 / 80, 7 / 80, 4 / 230, 4 / 230])
    xy = np.column_stack([actors.geometry.x, actors.geometry.y])
    np.testing.assert_allclose(out["expected"].iloc[0], fp(xy[:4], 200, ce))


def test_unit_with_one_actor_duplicates_and_all_at_one_point():
    # 3 units; unit "one" holds a single actor; 5 actors share one location in unit "dup"
    pop = np.full((1, 3), 100.0)
    units = units_gdf({"dup": (0, 0, 1000, 1000), "one": (1000, 0, 2000, 1000),
                       "mid": (2000, 0, 3000, 1000)})  # fmt: skip
    xy = [(500, 500)] * 5 + [(1500, 500)] + [(2500, 500)]
    out = find_microclusters(
        points(xy), eps_m=50, min_actors=5, units=units, unit_id="mid",
        population=grid(pop), n_sim=19,
    )  # fmt: skip
    assert len(out) == 1
    row = out.iloc[0]
    assert row["n_actors"] == 5 and row["extent_m"] == 0.0
    # all 5 actors of the unit sit in its only cell; the footprint (50 m around the point)
    # is a small part of it, so an excess: 5 against 5 x its share of the cell
    share = footprint_expected_twin(np.array([[500.0, 500.0]]), 50, np.ones((1, 1)), 1000.0)[0]
    assert row["expected"] == pytest.approx(5.0 * share) and row["llr"] > 0
    assert 0 < row["p_value"] <= 1.0
    # a disc of radius eps/2 (32-gon) around the shared point
    assert row["area_km2"] == pytest.approx(math.pi * 25**2 / 1e6, rel=0.01)


def test_no_units_no_population_means_no_null_model():
    out = find_microclusters(points([(0, 0)] * 3), eps_m=10, min_actors=3, n_sim=9)
    assert len(out) == 1
    for col in ("expected", "ratio", "llr", "p_value", "q_value"):
        assert np.isnan(out[col].iloc[0])
    assert not out["hidden"].iloc[0]


def test_population_without_units_is_one_unit():
    pop = np.array([[1, 1], [1, 97]], dtype=float)
    xy = [(100 + 10 * i, 1900) for i in range(5)] + [(1500, 500)] * 5
    out = find_microclusters(points(xy), eps_m=50, min_actors=5, population=grid(pop), n_sim=0)
    # rate = 10 actors / 100 residents; cell (0,0) has 1 resident, cell (1,1) 97
    ce = pop * 0.1
    xy = np.array(xy, dtype=float)
    np.testing.assert_allclose(out["expected"], [fp(xy[:5], 50, ce), fp(xy[5:], 50, ce)])
    assert out["expected"].iloc[1] < 9.7 * 0.05  # the reach is a small part of the cell


# ------------------------------------------------------------------ planted and calibration


def four_units():
    """20 x 20 km, four 10 x 10 km units; unit D holds a 3 x 3 km town of 1500 per km²."""
    pop = np.full((20, 20), 30.0)
    pop[13:16, 13:16] = 1500.0  # town in D (rows 10-19, cols 10-19)
    units = units_gdf({
        "A": (0, 10000, 10000, 20000), "B": (10000, 10000, 20000, 20000),
        "C": (0, 0, 10000, 10000), "D": (10000, 0, 20000, 10000),
    })  # fmt: skip
    return pop, units


def draw_null(pop, units, counts, rng):
    """Actors from the null model itself: per unit a multinomial over its cells ∝ residents,
    then uniform within the cell (independent of the library's sampler)."""
    rows, cols = pop.shape
    yc, xc = np.mgrid[0:rows, 0:cols]
    cx, cy = (xc + 0.5) * 1000, rows * 1000 - (yc + 0.5) * 1000
    out = []
    for geom, n in zip(units.geometry, counts, strict=True):
        inside = shapely.contains_xy(geom, cx, cy)
        w = np.where(inside, pop, 0).ravel()
        k = rng.multinomial(n, w / w.sum())
        cell = np.repeat(np.arange(w.size), k)
        r, c = np.divmod(cell, cols)
        x = (c + rng.random(len(cell))) * 1000
        y = rows * 1000 - (r + rng.random(len(cell))) * 1000
        out.append(np.column_stack([x, y]))
    return np.vstack(out)


def test_planted_rural_cluster_is_hidden_and_town_cluster_is_not():
    pop, units = four_units()
    rng = np.random.default_rng(42)
    # rates per resident: A 0.010 (after planting), B, C, D 0.012 -> A is at/below the median
    res = [3000, 3000, 3000, 100 * 30 + 9 * (1500 - 30)]
    counts = [30 - 8, 36, 36, round(0.012 * res[3])]
    xy = draw_null(pop, units, counts, rng)
    planted = np.array([(4500, 15500)]) + rng.uniform(-120, 120, (8, 2))
    actors = points(np.vstack([xy, planted]))
    out = find_microclusters(
        actors, eps_m=300, min_actors=5, units=units, unit_id="mid",
        population=grid(pop), n_sim=199, random_state=1, p_method="max", early_stop=0,
    )  # fmt: skip
    lab = out.set_index("cluster_id")
    from pari_geo.clustering.actors import label_actors

    labels = label_actors(actors, eps_m=300, min_actors=5, units=units, population=grid(pop))
    planted_id = labels.iloc[-8:].unique()
    assert len(planted_id) == 1 and planted_id[0] >= 0
    row = lab.loc[planted_id[0]]
    assert row["unit_ids"] == "A" and row["n_actors"] >= 8
    assert row["expected"] < 1 and row["llr"] > 10
    # nothing in 199 simulations beats it: p = 1/200; BH over the run's clusters keeps q small
    assert row["p_value"] == pytest.approx(1 / 200) and row["q_value"] <= 0.05
    assert bool(row["hidden"]) and row["rung"] == "micro"
    # the town cluster(s): in D, many members, actors in proportion to residents
    town = out[(out["unit_ids"] == "D") & (out["n_actors"] >= 20)]
    assert len(town) >= 1
    assert (town["p_value"] > 0.05).all() and not town["hidden"].any()
    assert (town["ratio"] < 1.5).all()
    # pooled p-values (the default): the same cluster, an even smaller p (compared with
    # every simulated cluster, not only each simulation's largest)
    pooled = find_microclusters(
        actors, eps_m=300, min_actors=5, units=units, unit_id="mid",
        population=grid(pop), n_sim=199, random_state=1,
    ).set_index("cluster_id")  # fmt: skip
    assert pooled.loc[planted_id[0], "p_value"] <= row["p_value"]
    assert bool(pooled.loc[planted_id[0], "hidden"])
    town_p = pooled.loc[town["cluster_id"], "p_value"]
    assert (town_p > 0.05).all()


@pytest.mark.parametrize("p_method", ["max", "pooled"])
def test_calibration_under_the_null(p_method):
    """Actors drawn from the null model: the share of clusters with p <= 0.05 stays <= 0.05.

    "pooled" p-values are uniform over the clusters DBSCAN selects under the null, so the
    share is about 0.05; we pool 8 runs (fixed seeds, n_sim = 99) with villages that give
    several clusters per run and allow 0.05 + 2 binomial standard errors of the pooled
    share (clusters of one run are not independent, but exchangeable with the simulated
    ones, so the expectation stays <= 0.05). "max" p-values compare with the per-simulation
    largest LLR: under the null P(any cluster of a run has p <= 0.05) <= 0.05, so at most
    about 0.4 of the 8 runs (we allow 2) may have one.
    """
    pop, units = four_units()
    pop = pop.copy()
    for r, c in [(3, 3), (5, 14), (15, 4), (12, 8), (17, 16), (7, 7)]:
        pop[r, c] = 700.0  # villages: enough actors for clusters at eps = 300 m
    rates = 0.02
    res = []
    rows, cols = pop.shape
    yc, xc = np.mgrid[0:rows, 0:cols]
    for g in units.geometry:
        inside = shapely.contains_xy(g, (xc + 0.5) * 1000, rows * 1000 - (yc + 0.5) * 1000)
        res.append(pop[inside].sum())
    counts = [round(rates * r) for r in res]
    pvals, any_sig = [], []
    for rep in range(8):
        rng = np.random.default_rng(1000 + rep)
        actors = points(draw_null(pop, units, counts, rng))
        out = find_microclusters(
            actors, eps_m=300, min_actors=4, units=units, unit_id="mid",
            population=grid(pop), n_sim=99, random_state=rep, p_method=p_method,
        )  # fmt: skip
        pvals.extend(out["p_value"].tolist())
        any_sig.append(bool((out["p_value"] <= 0.05).any()))
    pvals = np.asarray(pvals)
    assert len(pvals) >= 30  # enough clusters for the check to mean something
    share = (pvals <= 0.05).mean()
    tol = 2 * math.sqrt(0.05 * 0.95 / len(pvals))
    assert share <= 0.05 + tol
    assert sum(any_sig) <= 2  # family-wise: about 0.05 x 8 runs expected


# ------------------------------------------------------------------------- reproducibility


def test_same_seed_same_output_and_threads_irrelevant():
    import numba

    pop, units = four_units()
    rng = np.random.default_rng(7)
    actors = points(draw_null(pop, units, [60, 60, 60, 250], rng))
    kw = dict(eps_m=300, min_actors=4, units=units, unit_id="mid", population=grid(pop),
              n_sim=49, random_state=3)  # fmt: skip
    a = find_microclusters(actors, **kw)
    b = find_microclusters(actors, **kw)
    pd.testing.assert_frame_equal(a, b)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        c = find_microclusters(actors, **kw)
    finally:
        numba.set_num_threads(old)
    pd.testing.assert_frame_equal(a, c)
    d = find_microclusters(actors, **{**kw, "random_state": 4})
    pd.testing.assert_frame_equal(a.drop(columns=["p_value", "q_value", "hidden"]),
                                  d.drop(columns=["p_value", "q_value", "hidden"]))  # fmt: skip


def test_simulations_reproducible_and_empty_without_free_actors():
    pop, units, actors = two_unit_setup()
    xy = np.column_stack([actors.geometry.x, actors.geometry.y])
    au = np.array([0] * 4 + [0, 0, 1, 1] + [0, 1, 1])
    t = Affine(1000, 0, 0, 0, -1000, 2000)
    model = sig.build_null_model(xy, au, units.geometry.to_numpy(), population=pop, transform=t)
    kw = dict(eps_m=200, min_actors=4, seeds=sig.simulation_seeds(0, 20))
    a = list(sig.simulate_llrs(xy, model, **kw))
    b = list(sig.simulate_llrs(xy, model, **kw, n_jobs=2, batch=3))
    assert len(a) == 20
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    none = sig.build_null_model(xy, np.full(len(xy), -1), units.geometry.to_numpy(),
                                population=pop, transform=t)  # fmt: skip
    assert not none.free.any()
    z = list(sig.simulate_llrs(xy, none, eps_m=200, min_actors=4,
                               seeds=sig.simulation_seeds(0, 5)))  # fmt: skip
    assert len(z) == 5 and all(len(v) == 0 for v in z)


def test_monte_carlo_test_matches_simulated_maxima_and_pool():
    pop, units = four_units()
    rng = np.random.default_rng(9)
    xy = draw_null(pop, units, [60, 60, 60, 250], rng)
    au = np.repeat(np.arange(4), [60, 60, 60, 250])
    t = Affine(1000, 0, 0, 0, -1000, 20000)
    model = sig.build_null_model(xy, au, units.geometry.to_numpy(), population=pop, transform=t)
    obs = np.array([-1.0, 0.0, 1.0, 3.0, 8.0])
    sims = list(sig.simulate_llrs(xy, model, eps_m=300, min_actors=4,
                                  seeds=sig.simulation_seeds(1, 40)))  # fmt: skip
    smax = np.array([v.max() if len(v) else 0.0 for v in sims])
    pool = np.concatenate(sims)
    kw = dict(eps_m=300, min_actors=4, n_sim=40, random_state=1, early_stop=0, pool_size=0)
    for method, ref in (("max", smax), ("pooled", pool)):
        p, done = sig.monte_carlo_test(xy, model, obs, p_method=method, **kw)
        assert done == 40
        np.testing.assert_allclose(p, sig.monte_carlo_pvalues(obs, ref))
    # pooled with a pool-size stop: stops at the first simulation reaching the pool size
    cum = np.cumsum([len(v) for v in sims])
    target = int(cum[9])
    p, done = sig.monte_carlo_test(xy, model, obs, **{**kw, "pool_size": target})
    assert done == 10
    np.testing.assert_allclose(p, sig.monte_carlo_pvalues(obs, np.concatenate(sims[:10])))
    # sequential: stops once every cluster has 5 exceedances; p = exceedances / draws
    weak = float(np.sort(smax)[-8])  # reached by 8 of the 40 simulations
    p, done = sig.monte_carlo_test(xy, model, np.array([smax.min() - 1, weak]),
                                   p_method="max", **{**kw, "early_stop": 5})  # fmt: skip
    first = int(np.argmax(np.cumsum(smax >= weak) >= 5)) + 1  # draws when the 5th came
    assert done == max(first, 5) < 40
    assert p[0] == 1.0  # every simulation reaches it: 5 of 5
    assert p[1] == pytest.approx(5 / first)


def test_early_stop_keeps_strong_clusters_and_saves_weak_scales():
    pop, units = four_units()
    rng = np.random.default_rng(42)
    res = [3000, 3000, 3000, 100 * 30 + 9 * (1500 - 30)]
    xy = draw_null(pop, units, [22, 36, 36, round(0.012 * res[3])], rng)
    planted = np.array([(4500, 15500)]) + rng.uniform(-120, 120, (8, 2))
    actors = points(np.vstack([xy, planted]))
    kw = dict(eps_m=300, min_actors=5, units=units, unit_id="mid", population=grid(pop),
              n_sim=199, random_state=1)  # fmt: skip
    full = find_microclusters(actors, **kw, early_stop=0)
    seq = find_microclusters(actors, **kw, early_stop=20)
    strong = full["p_value"] == full["p_value"].min()
    # clusters nothing in the simulations reaches keep the full-run p-value
    np.testing.assert_allclose(seq.loc[strong, "p_value"], full.loc[strong, "p_value"])
    assert seq["hidden"].tolist() == full["hidden"].tolist()
    # weak clusters: Besag-Clifford p-values, not tiny
    assert (seq.loc[~strong, "p_value"] > 0.05).all()


def test_actors_off_the_population_grid_are_fixed_with_a_warning():
    pop, units, actors = two_unit_setup()
    # the grid covers only the top row of cells: the loners at y < 1000 fall off it
    with pytest.warns(UserWarning, match="3 actor.*off the population grid"):
        out = find_microclusters(
            actors, eps_m=200, min_actors=4, units=units, unit_id="mid",
            population=grid(pop[:1], y0=2000), n_sim=9,
        )  # fmt: skip
    # rates now count only the on-grid actors: L 6 / 30, R 2 / 70
    ce = pop[:1] * np.array([6 / 30, 6 / 30, 2 / 70, 2 / 70])
    xy = np.column_stack([actors.geometry.x, actors.geometry.y])
    want = [fp(xy[:4], 200, ce, y0=2000), fp(xy[4:8], 200, ce, y0=2000)]
    np.testing.assert_allclose(out["expected"], want)


def test_hidden_uses_the_unit_holding_most_members():
    """A cluster straddling L|R is judged by the unit holding most of its members.

    Cells (1 km) hold 190, 10 | 10, 190 residents. Ten scattered actors in R's east cell
    (200 m apart, never clustered at eps 100 m) make R busy.
    """
    pop = np.array([[190.0, 10.0, 10.0, 190.0]])
    units = units_gdf({"L": (0, 0, 2000, 1000), "R": (2000, 0, 4000, 1000)})
    scattered = [(x, y) for x in range(3100, 4000, 200) for y in (200, 800)]
    kw = dict(eps_m=100, min_actors=5, units=units, unit_id="mid", population=grid(pop),
              n_sim=99, random_state=0)  # fmt: skip
    # 4 members in L, 2 in R: rates L 4/200 = 0.02, R 12/200 = 0.06, median 0.04
    # expected actors per cell: 0.02 x (190, 10) | 0.06 x (10, 190)
    ce = pop * np.array([0.02, 0.02, 0.06, 0.06])
    xy = [(1960, 500), (1970, 500), (1980, 500), (1990, 500), (2010, 500), (2020, 500)]
    out = find_microclusters(points(xy + scattered), **kw)
    assert out["unit_ids"].tolist() == ["L;R"]
    assert out["expected"].iloc[0] == pytest.approx(fp(xy, 100, ce))
    assert out["q_value"].iloc[0] <= 0.05
    assert bool(out["hidden"].iloc[0])  # L (0.02) is at/below the median rate
    # 2 members in L, 4 in R: rates L 0.01, R 0.07; the same excess, but R stands out
    xy = [(1980, 500), (1990, 500), (2010, 500), (2020, 500), (2030, 500), (2040, 500)]
    out = find_microclusters(points(xy + scattered), **kw)
    ce = pop * np.array([0.01, 0.01, 0.07, 0.07])
    assert out["expected"].iloc[0] == pytest.approx(fp(xy, 100, ce))
    assert out["q_value"].iloc[0] <= 0.05
    assert not bool(out["hidden"].iloc[0])
