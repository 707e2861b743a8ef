"""SYNTHETIC actors with planted micro-clusters on the Östergötland-shaped region (issue 5, item 3).

The generator (:mod:`pari_geo.datasets.actors`), the shipped files beside the region
(``actors.gpkg``, ``planted_clusters.csv``) and the issue-5 acceptance numbers of the
micro-cluster detector on them (recall, false discovery among hidden clusters, rungs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pari_geo.datasets.actors import (
    ACTOR_FILES,
    ORDINARY_MUNICIPALITIES,
    PLANTED,
    SECTORS,
    SOCIAL_SECTORS,
    TRUTH_COLUMNS,
    make_actors,
    municipal_targets,
    write_actors,
)
from pari_geo.datasets.ostergotland import make_ostergotland
from pari_geo.errors import OutputError

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "sample_grids" / "ostergotland"
EPS_M, MIN_ACTORS = 300.0, 5


@pytest.fixture(scope="module")
def region():
    return make_ostergotland(1000)


@pytest.fixture(scope="module")
def generated(region):
    return make_actors(region)


@pytest.fixture(scope="module")
def residents(region):
    return {str(r.code): int(r.population) for r in region.municipalities.itertuples()}


def _xy(actors):
    return np.column_stack([actors.geometry.x.to_numpy(), actors.geometry.y.to_numpy()])


def _cells(region, xy):
    t = region.transform
    c = np.floor((xy[:, 0] - t.c) / t.a).astype(int)
    r = np.floor((xy[:, 1] - t.f) / t.e).astype(int)
    return r, c


def _normalise(actors):
    df = pd.DataFrame(actors.drop(columns="geometry"))
    df["planted_cluster"] = df["planted_cluster"].where(df["planted_cluster"].notna(), "")
    df["social_economy"] = df["social_economy"].astype(bool)
    df["x"], df["y"] = actors.geometry.x.to_numpy(), actors.geometry.y.to_numpy()
    return df.reset_index(drop=True)


# --- determinism and shipped files ---------------------------------------------------------


def test_same_seed_same_frames(region, generated):
    actors, truth = generated
    again_a, again_t = make_actors(region)
    pd.testing.assert_frame_equal(_normalise(actors), _normalise(again_a))
    pd.testing.assert_frame_equal(truth, again_t)
    other, _ = make_actors(region, seed=6)
    assert not np.array_equal(_xy(other), _xy(actors))


def test_shipped_files_equal_a_fresh_generation(generated):
    import geopandas as gpd

    actors, truth = generated
    shipped = gpd.read_file(SHIPPED / ACTOR_FILES["actors"], layer="actors")
    assert shipped.crs.to_epsg() == 3006
    pd.testing.assert_frame_equal(_normalise(shipped), _normalise(actors))
    shipped_truth = pd.read_csv(SHIPPED / ACTOR_FILES["truth"], dtype={"municipalities": str})
    assert list(shipped_truth.columns) == list(TRUTH_COLUMNS)
    pd.testing.assert_frame_equal(shipped_truth, truth, check_dtype=False)


def test_write_actors_refuses_existing_files(tmp_path):
    (tmp_path / ACTOR_FILES["truth"]).write_text("keep")
    with pytest.raises(OutputError, match="exists"):
        write_actors(tmp_path)
    assert (tmp_path / ACTOR_FILES["truth"]).read_text() == "keep"
    assert not (tmp_path / ACTOR_FILES["actors"]).exists()


def test_too_few_actors_is_an_error(region):
    with pytest.raises(ValueError, match="n_actors"):
        municipal_targets(region, 100)


# --- counts, columns, flags -----------------------------------------------------------------


def test_counts_columns_and_flags(region, generated):
    actors, truth = generated
    assert len(actors) == 20000
    assert list(actors.columns) == [
        "actor_id", "sector", "social_economy", "municipality", "planted_cluster", "geometry"
    ]  # fmt: skip
    assert actors.crs.to_epsg() == 3006
    assert (actors.geometry.geom_type == "Point").all()
    assert actors.actor_id.is_unique
    assert set(actors.sector) == set(SECTORS)
    assert actors.social_economy.dtype == bool
    social_sector = actors.sector.isin(SOCIAL_SECTORS)
    assert actors.social_economy[social_sector].all()
    other = actors.social_economy[~social_sector]
    assert 0.0 < other.mean() < 0.15  # "and some others" (care, a few more)
    care = actors.social_economy[actors.sector == "care"].mean()
    assert 0.25 < care < 0.55
    # the municipality column is the municipality raster under each point
    r, c = _cells(region, _xy(actors))
    raster = region.layers["municipality"][r, c]
    assert (raster > 0).all()
    assert (actors.municipality.astype(int).to_numpy() == raster).all()
    # planted membership labels match the truth table
    sizes = actors.planted_cluster.dropna().value_counts().sort_index()
    assert sizes.index.tolist() == truth.planted_cluster.tolist()
    assert sizes.tolist() == truth.n_members.tolist()
    assert truth.n_members.between(6, 18).all()
    assert truth.planted_cluster.tolist() == [f"P{i:02d}" for i in range(1, len(PLANTED) + 1)]
    assert truth.kind.tolist() == [k for k, _ in PLANTED]
    assert set(truth.kind) == {"seed_trio", "hiking", "hidden_ordinary_unit", "inter_municipal"}


# --- background follows the null model -------------------------------------------------------


def test_background_in_proportion_to_residents(region, generated, residents):
    actors, _ = generated
    bg = actors[actors.planted_cluster.isna()]
    counts = bg.municipality.value_counts()
    # municipalities not thinned: actor share = resident share (up to rounding)
    plain = [k for k in residents if k not in ORDINARY_MUNICIPALITIES]
    assert len(plain) == 4
    res_share = np.array([residents[k] for k in plain], float)
    res_share /= res_share.sum()
    act_share = np.array([counts.get(k, 0) for k in plain], float)
    act_share /= act_share.sum()
    np.testing.assert_allclose(act_share, res_share, atol=2e-4)
    # thinned municipalities: fewer background actors per resident than the others
    plain_rate = sum(counts[k] for k in plain) / sum(residents[k] for k in plain)
    for k in ORDINARY_MUNICIPALITIES:
        assert counts[k] / residents[k] < plain_rate

    # inside each municipality: no actor in a cell without residents, and the split between
    # dense cells (>= 100 residents) and the rest follows residents within 4 binomial sigma
    pop = np.nan_to_num(region.layers["population"])
    r, c = _cells(region, _xy(bg))
    assert (pop[r, c] > 0).all()
    muni = region.layers["municipality"]
    for code in residents:
        in_m = bg.municipality.to_numpy() == code
        n = int(in_m.sum())
        cell_pop = pop[muni == int(code)]
        p_dense = cell_pop[cell_pop >= 100].sum() / cell_pop.sum()
        observed = int((pop[r[in_m], c[in_m]] >= 100).sum())
        sigma = np.sqrt(n * p_dense * (1 - p_dense)) + 0.5
        assert abs(observed - n * p_dense) <= 4 * sigma, code


def test_planted_municipalities_have_rates_at_or_below_the_median(generated, residents):
    actors, truth = generated
    counts = actors.municipality.value_counts()
    rate = {k: counts[k] / residents[k] for k in residents}
    median = float(np.median(list(rate.values())))
    for codes in truth.municipalities:
        for code in codes.split(";"):
            assert rate[code] <= median, (code, rate[code], median)
    hidden = truth.loc[truth.kind == "hidden_ordinary_unit", "municipalities"]
    assert len(hidden) >= 3
    # "ordinary": the thinned municipalities share one rate, which is the median
    assert {rate[k] for k in ORDINARY_MUNICIPALITIES} == {median}


# --- planted clusters --------------------------------------------------------------------------


def test_planted_members_within_the_stated_radius(region, generated):
    from pari_geo.clustering import dbscan_labels

    actors, truth = generated
    xy = _xy(actors)
    labels, _ = dbscan_labels(xy, EPS_M, MIN_ACTORS)
    pop = np.nan_to_num(region.layers["population"])
    towns = region.towns[["x", "y"]].to_numpy()
    for row in truth.itertuples():
        m = (actors.planted_cluster == row.planted_cluster).to_numpy()
        pts = xy[m]
        d_centre = np.hypot(*(pts - [row.centre_x, row.centre_y]).T)
        assert d_centre.max() <= row.radius_m + 0.01
        pair = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
        assert pair.max() <= row.extent_m + 0.01
        if row.kind == "hiking":  # a trail: 1-2 km long, every member near the next
            assert 800 <= row.extent_m <= 2000
            np.fill_diagonal(pair, np.inf)
            assert pair.min(axis=1).max() <= 150
        else:  # compact: pairwise within eps
            assert row.radius_m <= 140 and row.extent_m <= 280
        # DBSCAN(eps 300 m, min 5) puts all members in one cluster, mostly of planted ones
        lab = np.unique(labels[m])
        assert len(lab) == 1 and lab[0] >= 0, row.planted_cluster
        assert m.sum() >= 0.5 * (labels == lab[0]).sum()
        # rural and remote: few residents under the members, far from towns
        r, c = _cells(region, pts)
        assert ((pop[r, c] >= 1) & (pop[r, c] <= 20)).all()
        assert np.hypot(*(towns - [row.centre_x, row.centre_y]).T).min() >= 5000
    centres = truth[["centre_x", "centre_y"]].to_numpy()
    d = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    assert d.min() >= 5000


def test_planted_municipalities_and_straddling(generated):
    actors, truth = generated
    for (kind, codes), row in zip(PLANTED, truth.itertuples(), strict=True):
        members = actors[actors.planted_cluster == row.planted_cluster]
        per = members.municipality.value_counts()
        assert sorted(per.index) == sorted(codes) == row.municipalities.split(";")
        if kind == "inter_municipal":
            assert row.expected_rung == "inter-municipal"
            assert len(per) == 2 and per.min() >= 3  # members on both sides
        else:
            assert row.expected_rung == "micro"
    kinds = truth.kind.value_counts()
    assert kinds["inter_municipal"] >= 3


def test_sector_mixes_of_the_kinds(generated):
    actors, truth = generated
    for row in truth.itertuples():
        sectors = set(actors.loc[actors.planted_cluster == row.planted_cluster, "sector"])
        assert ";".join(sorted(sectors)) == row.sectors
        if row.kind == "seed_trio":
            assert {"farm_shop", "microbrewery", "artist_crafts"} <= sectors
        elif row.kind == "hiking":
            assert {"accommodation", "food_restaurant", "outdoor_activity"} <= sectors
        elif row.kind == "hidden_ordinary_unit":
            assert {"cooperative", "association", "wise"} <= sectors


# --- issue 5 acceptance: the detector on the shipped files --------------------------------------


def _detector():
    try:
        from pari_geo.clustering.actors import find_microclusters, label_actors
    except ImportError:  # pragma: no cover - the detector is not there yet
        return None
    return find_microclusters, label_actors


@pytest.mark.skipif(_detector() is None, reason="pari_geo.clustering.actors not available")
def test_detector_recovers_the_planted_clusters():
    import geopandas as gpd

    find_microclusters, label_actors = _detector()
    actors = gpd.read_file(SHIPPED / "actors.gpkg", layer="actors")
    truth = pd.read_csv(SHIPPED / "planted_clusters.csv", dtype={"municipalities": str})
    options = {
        "eps_m": EPS_M,
        "min_actors": MIN_ACTORS,
        "units": SHIPPED / "municipalities.gpkg",
        "unit_id": "code",
        "region_col": "county_code",
        "population": SHIPPED / "population.tif",
        "sector_col": "sector",
        "social_col": "social_economy",
        "n_sim": 99,
        "random_state": 0,
    }
    clusters = find_microclusters(actors, **options)
    labels = label_actors(actors, **options).to_numpy()
    planted = actors.planted_cluster.fillna("").to_numpy()
    size = np.bincount(labels[labels >= 0], minlength=len(clusters))

    matched: dict[str, int] = {}
    for row in truth.itertuples():
        mem = planted == row.planted_cluster
        for c in clusters[clusters.hidden].itertuples():
            inside = int((mem & (labels == c.cluster_id)).sum())
            if inside >= 0.8 * mem.sum() and inside >= 0.5 * size[c.cluster_id]:
                matched[row.planted_cluster] = int(c.cluster_id)
    recall = len(matched) / len(truth)
    hidden_ids = set(clusters.loc[clusters.hidden, "cluster_id"].tolist())
    false = hidden_ids - set(matched.values())
    fdr = len(false) / max(1, len(hidden_ids))
    missed = sorted(set(truth.planted_cluster) - set(matched))
    assert recall >= 0.95, f"recall {recall:.3f}; missed {missed}"
    assert fdr <= 0.05, f"false discovery {fdr:.3f}: hidden clusters {sorted(false)}"
    rung = clusters.set_index("cluster_id")["rung"]
    for row in truth.itertuples():
        if row.planted_cluster in matched:
            assert rung[matched[row.planted_cluster]] == row.expected_rung, row.planted_cluster
