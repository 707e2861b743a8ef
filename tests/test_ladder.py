"""The Cluster Ladder: rung rules on hand-built units, parents, and nesting across scales."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from pari_geo.clustering.actors import find_microclusters
from pari_geo.clustering.ladder import RUNGS, ladder, parents, rung_of
from pari_geo.errors import ConfigError

CRS = "EPSG:3006"


def points(xy) -> gpd.GeoDataFrame:
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=CRS)


def hierarchy() -> gpd.GeoDataFrame:
    """Four 10 km units along x: m1, m2 in region R1 of SE; m3 in R2 of SE; m4 in R3 of NO."""
    return gpd.GeoDataFrame(
        {
            "mid": ["m1", "m2", "m3", "m4"],
            "region": ["R1", "R1", "R2", "R3"],
            "country": ["SE", "SE", "SE", "NO"],
        },
        geometry=[shapely.box(i * 10000, 0, (i + 1) * 10000, 10000) for i in range(4)],
        crs=CRS,
    )


def group(cx: float, cy: float = 5000, n: int = 4, step: float = 40) -> list:
    return [(cx + i * step, cy) for i in range(n)]


def test_rung_rules_on_hand_built_units():
    xy = (
        group(5000)  # inside m1 -> micro
        + group(9940)  # 9940..10060 straddles m1|m2, same region -> inter-municipal
        + group(19940)  # straddles m2|m3: regions R1, R2 of SE -> national
        + group(29940)  # straddles m3|m4: SE and NO -> multinational
        + [(2000 + i * 60, 2000) for i in range(70)]  # 70 actors in m1 -> municipal (size)
        + [(500, 9000 - i * 100) for i in range(61)]  # 6 km line in m1 -> municipal (extent)
    )
    out = find_microclusters(
        points(xy), eps_m=120, min_actors=3, units=hierarchy(), unit_id="mid",
        region_col="region", country_col="country", n_sim=0,
    )  # fmt: skip
    assert out["rung"].tolist() == [
        "micro", "inter-municipal", "national", "multinational", "municipal", "municipal",
    ]  # fmt: skip
    assert out["unit_ids"].tolist() == ["m1", "m1;m2", "m2;m3", "m3;m4", "m1", "m1"]
    assert out["n_actors"].iloc[4] == 70 and out["extent_m"].iloc[4] < 5000
    assert out["extent_m"].iloc[5] == pytest.approx(6000)
    # the thresholds are options
    relaxed = find_microclusters(
        points(xy), eps_m=120, min_actors=3, units=hierarchy(), unit_id="mid",
        n_sim=0, micro_max_extent_m=7000, micro_max_actors=100,
    )  # fmt: skip
    # without region/country columns only the unit count and size rules apply
    assert relaxed["rung"].tolist() == ["micro"] + ["inter-municipal"] * 3 + ["micro"] * 2


def test_rung_without_units_from_extent_and_size_only():
    xy = group(0) + [(50000 + i * 100, 0) for i in range(60)]
    out = find_microclusters(points(xy), eps_m=120, min_actors=3, n_sim=0)
    assert out["rung"].tolist() == ["micro", "municipal"]
    assert out["unit_ids"].tolist() == ["", ""] and out["n_units"].tolist() == [0, 0]


def test_rung_of_ignores_outside_members_and_missing_labels():
    regions = np.array(["R1", None], dtype=object)
    assert rung_of(np.array([-1, 0]), regions=regions, countries=None,
                   extent_m=10, n_actors=3) == "micro"  # fmt: skip
    # a unit with no region does not make a second region
    assert rung_of(np.array([0, 1]), regions=regions, countries=None,
                   extent_m=10, n_actors=3) == "inter-municipal"  # fmt: skip
    assert set(RUNGS) == {"multinational", "national", "inter-municipal", "municipal", "micro"}


def test_parents_majority_and_ties():
    child = np.array([0, 0, 0, 1, 1, 2, 2, -1, 3])
    parent = np.array([5, 5, 4, 4, 6, 3, -1, 1, -1])
    # 0: {5: 2, 4: 1} -> 5; 1: tie {4, 6} -> 4; 2: only 3; 3: unclustered -> absent
    assert parents(child, parent) == {0: 5, 1: 4, 2: 3}
    assert parents(np.array([-1]), np.array([-1])) == {}


def test_ladder_nests_across_scales():
    # two pairs of 3-actor groups: groups merge at 1 km, pairs merge at 5 km
    xy = (group(0, 0, 3, 100) + group(600, 0, 3, 100)
          + group(4000, 0, 3, 100) + group(4600, 0, 3, 100))  # fmt: skip
    out = ladder(points(xy), eps_m=(5000, 150, 1000), min_actors=3, n_sim=0)
    assert list(out.columns)[0] == "scale_eps_m"
    assert list(out.columns)[-2:] == ["parent_cluster", "candidate_id"]
    assert out["scale_eps_m"].tolist() == [150.0] * 4 + [1000.0] * 2 + [5000.0]
    assert out["n_actors"].tolist() == [3, 3, 3, 3, 6, 6, 12]
    assert out["parent_cluster"].dtype == "Int64"
    assert out["parent_cluster"].tolist() == [0, 0, 1, 1, 0, 0, pd.NA]
    # each scale equals a standalone call (q-values aside: BH runs over all scales)
    for eps in (150.0, 1000.0, 5000.0):
        alone = find_microclusters(points(xy), eps_m=eps, min_actors=3, n_sim=0)
        part = out[out["scale_eps_m"] == eps].drop(
            columns=["scale_eps_m", "parent_cluster", "candidate_id"]
        )
        pd.testing.assert_frame_equal(part.reset_index(drop=True), alone)


def test_ladder_nesting_on_random_actors_and_per_scale_min_actors():
    rng = np.random.default_rng(11)
    centres = rng.uniform(0, 30000, (15, 2))
    xy = np.vstack([c + rng.normal(0, 150, (8, 2)) for c in centres])
    xy = np.vstack([xy, rng.uniform(0, 30000, (100, 2))])
    out = ladder(points(xy), eps_m=(300, 1000, 5000), min_actors=(4, 4, 6), n_sim=0)
    for small, big in ((300.0, 1000.0), (1000.0, 5000.0)):
        kids = out[out["scale_eps_m"] == small]
        ids = set(out.loc[out["scale_eps_m"] == big, "cluster_id"])
        assert kids["parent_cluster"].notna().all()
        assert set(kids["parent_cluster"].astype(int)) <= ids
    # with equal min_actors the clusters nest: a parent is at least as large as each child
    small = out[out["scale_eps_m"] == 300.0]
    big = out[out["scale_eps_m"] == 1000.0].set_index("cluster_id")
    assert (small["n_actors"].to_numpy() <= big.loc[small["parent_cluster"].astype(int),
            "n_actors"].to_numpy()).all()  # fmt: skip


def test_ladder_empty_and_config_errors():
    empty = ladder(points(np.zeros((0, 2))), eps_m=(100, 1000), min_actors=3)
    assert len(empty) == 0 and "parent_cluster" in empty.columns
    assert empty["parent_cluster"].dtype == "Int64"
    with pytest.raises(ConfigError, match="eps_m"):
        ladder(points([(0, 0)]), eps_m=(100, 100))
    with pytest.raises(ConfigError, match="min_actors"):
        ladder(points([(0, 0)]), eps_m=(100, 1000), min_actors=(3,))
    with pytest.raises(ConfigError, match="eps_m"):
        ladder(points([(0, 0)]), eps_m=())


def test_ladder_significance_runs_per_scale_and_is_reproducible():
    rng = np.random.default_rng(2)
    units = gpd.GeoDataFrame({"mid": ["a", "b"]}, geometry=[shapely.box(0, 0, 5000, 5000),
                             shapely.box(5000, 0, 10000, 5000)], crs=CRS)  # fmt: skip
    xy = np.vstack([rng.uniform(0, 10000, (150, 1)), rng.uniform(0, 5000, (150, 1))])
    xy = xy.reshape(2, -1).T
    kw = dict(eps_m=(300, 1000), min_actors=4, units=units, unit_id="mid", n_sim=19,
              null_cell_m=500)  # fmt: skip
    a = ladder(points(xy), **kw)
    b = ladder(points(xy), **kw)
    pd.testing.assert_frame_equal(a, b)
    assert a["p_value"].between(1 / 20, 1).all()


def test_distinct_regions_count_as_pandas_nunique_counts():
    """The rung's count of distinct regions or countries (a set, no Series per cluster)
    against ``pd.Series(...).dropna().nunique()``: missing values, repeats, numbers."""
    from pari_geo.clustering.rungs import _n_distinct

    values = np.array(["R1", None, "R2", np.nan, "R1", 1, 1.0, pd.NA], dtype=object)
    for units in ([0, 2, 4], [1, 3, 7], [5, 6], list(range(8)), []):
        idx = np.asarray(units, dtype=np.int64)
        want = int(pd.Series(values[idx]).dropna().nunique()) if len(idx) else 0
        assert _n_distinct(values, idx) == want
    assert _n_distinct(None, np.array([0])) == 0
