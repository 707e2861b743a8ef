"""The hidden-cluster test on planted ground truth, at several cell sizes (issue 11).

Regions come from :func:`pari_geo.datasets.planted.planted_region`: background actors drawn
exactly from the null model, unit borders that cut cells, clusters planted in low-rate
units (some straddling a border) and in high-rate units. Fixed seeds; the assertions are
properties (recall, false discovery rate, calibration), not exact numbers. The full-size
figures are in ``benchmarks/hidden_clusters/``.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

from pari_geo.clustering.actors import find_microclusters, label_actors
from pari_geo.clustering.options import CLUSTER_DEFAULTS
from pari_geo.datasets.planted import detection_scores, planted_region
from pari_geo.grid import GridSpec

# a small region keeps the tests fast; more background actors per unit keep the planted
# clusters from tipping their unit's rate above the median (which would rightly un-hide them)
SMALL = dict(size_km=(40.0, 30.0), n_low=6, n_high=2, rates_per_100=(2.0, 12.0))


def _fit(region, **extra):
    kw = dict(eps_m=500, min_actors=5, units=region.units, unit_id="unit_id",
              population=region.population)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = find_microclusters(region.actors, **kw, **extra)
        labels = label_actors(region.actors, **kw).to_numpy()
    return out, labels


@pytest.mark.parametrize("cell", [100.0, 250.0, 1000.0])
def test_planted_clusters_are_found_with_few_false_discoveries(cell):
    found = n_low = hidden = false = high_sig = high_hid = 0
    for seed in (1, 2):
        region = planted_region(cell, seed=seed, **SMALL)
        assert region.truth["straddles"].sum() >= 1  # some clusters straddle a border
        s = detection_scores(*_fit(region), region)
        found += s["found_low"]
        n_low += s["n_low"]
        hidden += s["n_hidden"]
        false += s["n_false"]
        high_sig += s["high_significant"]
        high_hid += s["high_hidden"]
    assert n_low >= 8  # planting tipped few units above the median
    assert found / n_low >= 0.9
    # BH at 0.05 expects about 0.05 x (share of null clusters) x hidden false discoveries;
    # on two small regions allow binomial room (the full-size figure is in the benchmark)
    assert false <= max(2, 0.15 * hidden)
    # clusters planted in the busiest units stand out (unless a town swallows them) but
    # are not hidden
    assert high_sig >= 2 and high_hid == 0


def test_null_regions_give_uniform_p_values_and_rarely_any_hidden_cluster():
    p, any_hidden = [], 0
    seeds = range(8)
    for seed in seeds:
        region = planted_region(1000.0, seed=900 + seed, null=True, size_km=(40.0, 30.0))
        out, _ = _fit(region, n_sim=199)
        p += out["p_value"].tolist()
        any_hidden += bool(out["hidden"].any())
    p = np.asarray(p)
    assert len(p) >= 60
    assert np.isfinite(p).all() and ((p > 0) & (p <= 1)).all()
    se = 1.0 / np.sqrt(12 * len(p))  # standard error of the mean of uniform p-values
    assert abs(p.mean() - 0.5) <= max(0.05, 4 * se)
    share = (p <= 0.05).mean()
    assert share <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / len(p))
    assert any_hidden <= 2  # at most alpha of the regions, with binomial room for 8 of them


def test_max_statistic_stays_available_and_is_family_wise():
    region = planted_region(1000.0, seed=3, **SMALL)
    pooled, labels = _fit(region)
    fw, _ = _fit(region, p_method="max")
    assert fw["p_value"].min() >= 1.0 / (CLUSTER_DEFAULTS["n_sim"] + 1)
    # the max statistic is far more conservative: fewer (or as many) hidden clusters
    assert fw["hidden"].sum() <= pooled["hidden"].sum()
    assert detection_scores(fw, labels, region)["fdr"] == 0.0


def _grid(pop, cell=1000.0):
    pop = np.asarray(pop, dtype=np.float64)
    t = Affine(cell, 0, 0, 0, -cell, pop.shape[0] * cell)
    return GridSpec("EPSG:3006", t, pop.shape).to_dataarray(pop)


def _pts(xy):
    xy = np.asarray(xy, dtype=float)
    return gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs="EPSG:3006")


def _units(boxes):
    return gpd.GeoDataFrame({"mid": list(boxes)}, geometry=[shapely.box(*b) for b in
                            boxes.values()], crs="EPSG:3006")  # fmt: skip


def test_edge_cases_have_defined_results():
    """Footprint without residents, units without actors or residents, actors exactly on a
    border, all actors in one cell: defined values, no NaN p-value, no division warning."""
    pop = np.array([[0.0, 0.0, 50.0, 50.0], [0.0, 0.0, 50.0, 50.0]])
    units = _units({"E": (0, 0, 2000, 2000), "P": (2000, 0, 4000, 2000),
                    "N": (4000, 0, 6000, 2000)})  # fmt: skip  (N: off the grid, no actors)
    empty_cluster = [(500 + 10 * i, 1500) for i in range(6)]  # where nobody lives
    on_border = [(2000.0, 500 + 10 * i) for i in range(5)]  # exactly on the E|P border
    one_cell = [(3500.0, 500.0)] * 5  # five actors at one point of P
    background = [(2200 + 300 * i, 1700) for i in range(6)]
    actors = _pts(empty_cluster + on_border + one_cell + background)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        out = find_microclusters(actors, eps_m=50, min_actors=5, units=units, unit_id="mid",
                                 population=_grid(pop), n_sim=49)  # fmt: skip
    assert len(out) == 3
    assert np.isfinite(out["p_value"]).all() and (out["p_value"] > 0).all()
    assert np.isfinite(out["q_value"]).all()
    # E has no residents: the null spreads its actors over its area, so the empty-land
    # cluster gets a finite expected count and its unit an infinite rate (never hidden)
    e_row = out[out["unit_ids"] == "E"].iloc[0]
    assert e_row["expected"] > 0 and np.isfinite(e_row["ratio"]) and not e_row["hidden"]
    # on the border: each actor goes to the first unit it touches (E)
    b_row = out[out["extent_m"].round(6) == 40.0].iloc[0]
    assert b_row["n_actors"] == 5 and b_row["unit_ids"] in ("E", "E;P")
    # all at one point: extent 0, a finite statistic
    c_row = out[out["extent_m"] == 0.0].iloc[0]
    assert c_row["unit_ids"] == "P" and np.isfinite(c_row["llr"])


def test_footprint_without_expected_actors_is_infinite_excess_with_minimal_p():
    # a unit whose only residents sit far away: the cluster's reach holds none of them,
    # the null puts no actor there: expected 0, ratio and LLR infinite, p the smallest
    pop = np.zeros((3, 3))
    pop[2, 2] = 100.0
    xy = [(500 + 10 * i, 2500) for i in range(5)] + [(2500, 500)] * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = find_microclusters(_pts(xy), eps_m=50, min_actors=5, population=_grid(pop),
                                 n_sim=19)  # fmt: skip
    row = out.iloc[0]
    assert row["expected"] == 0.0 and np.isinf(row["ratio"]) and np.isinf(row["llr"])
    assert 0 < row["p_value"] <= 1 / 20 + 1e-12


def test_one_set_of_defaults_and_ranges_for_api_and_run_file(tmp_path):
    import inspect

    from pari_geo.clustering.actors import find_microclusters as fm
    from pari_geo.errors import ConfigError
    from pari_geo.runconfig import CLUSTER_DEFAULTS as RUN_DEFAULTS
    from pari_geo.runconfig import _validate_clusters

    sig_defaults = {k: p.default for k, p in inspect.signature(fm).parameters.items()
                    if k in CLUSTER_DEFAULTS and k not in ("eps_m", "min_actors")}  # fmt: skip
    assert sig_defaults == {k: CLUSTER_DEFAULTS[k] for k in sig_defaults}
    assert {k: RUN_DEFAULTS[k] for k in sig_defaults} == sig_defaults
    assert RUN_DEFAULTS["early_stop"] == 20 and sig_defaults["early_stop"] == 20
    inputs = {"actors": object()}
    # the same values are refused by both, naming the key
    for key, bad in (("alpha", 1.0), ("alpha", 0), ("n_sim", -1), ("n_sim", 10**9),
                     ("early_stop", -2), ("p_method", "fisher"), ("random_state", -1),
                     ("eps_m", 1e-9), ("pool_size", -5), ("n_jobs", 0)):  # fmt: skip
        with pytest.raises(ConfigError, match=f"clusters.{key}"):
            _validate_clusters({key: [bad] if key == "eps_m" else bad}, inputs, "run.toml")
        with pytest.raises(ConfigError, match=key):
            find_microclusters(_pts([(0, 0)] * 3), eps_m=bad if key == "eps_m" else 100.0,
                               min_actors=3, **({} if key == "eps_m" else {key: bad}))  # fmt: skip
    # 0 switches the sequential stops off in both
    out = _validate_clusters({"early_stop": 0, "pool_size": 0}, inputs, "run.toml")
    assert out["early_stop"] is None and out["pool_size"] is None
