"""find_microclusters / label_actors: columns, dtypes, descriptions, inputs and edge cases.

Hand-built actors in EPSG:3006 (metres); expected values worked out in each test.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine

from pari_geo.clustering.actors import CLUSTER_COLUMNS, find_microclusters, label_actors
from pari_geo.errors import ConfigError, InputError
from pari_geo.grid import GridSpec

CRS = "EPSG:3006"


def points(xy, index=None, **cols) -> gpd.GeoDataFrame:
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return gpd.GeoDataFrame(
        cols, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), index=index, crs=CRS
    )


def grid(values, cell=1000.0, x0=0.0, y0=None, crs=CRS):
    values = np.asarray(values, dtype=np.float64)
    y0 = values.shape[0] * cell if y0 is None else y0
    return GridSpec(crs, Affine(cell, 0, x0, 0, -cell, y0), values.shape).to_dataarray(values)


def assert_contract(out: gpd.GeoDataFrame) -> None:
    """Every column of CLUSTER_COLUMNS, in order, with its dtype."""
    assert list(out.columns) == list(CLUSTER_COLUMNS)
    assert out.geometry.name == "geometry"
    for col, dtype in CLUSTER_COLUMNS.items():
        if col == "geometry":
            continue
        if dtype == "str":
            assert pd.api.types.is_string_dtype(out[col]), col
        else:
            assert out[col].dtype == pd.Series([], dtype=dtype).dtype, (col, out[col].dtype)


# three separate groups: 4 actors (a, a, b, b), 3 actors (a, b, c), 4 actors (a, a, a, b)
SECTORS = ["a", "a", "b", "b", "a", "b", "c", "a", "a", "a", "b", "z"]
XY = [
    (0, 0), (100, 0), (0, 100), (100, 100),
    (5000, 0), (5100, 0), (5000, 100),
    (10000, 0), (10050, 0), (10100, 0), (10150, 0),
    (20000, 20000),
]  # fmt: skip


def test_columns_dtypes_and_sector_description():
    actors = points(XY, sector=SECTORS, social=[1, 0, 0, 1, 0, 0, 0, 1, 1, 1, None, 0])
    out = find_microclusters(
        actors, eps_m=150, min_actors=3, sector_col="sector", social_col="social", n_sim=0
    )
    assert_contract(out)
    assert out["cluster_id"].tolist() == [0, 1, 2]
    assert out["n_actors"].tolist() == [4, 3, 4]
    assert out["sectors"].tolist() == ["a;b", "a;b;c", "a;b"]
    assert out["n_sectors"].tolist() == [2, 3, 2]
    want = [math.log(2), math.log(3), -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))]
    np.testing.assert_allclose(out["sector_entropy"], want)
    # social flags: 2 of 4; 0 of 3; 3 of 3 known (the missing one left out)
    np.testing.assert_allclose(out["social_economy_share"], [0.5, 0.0, 1.0])
    # extents: diagonal of the 100 m square, (5100, 0)-(5000, 100), 150 m along a line
    np.testing.assert_allclose(out["extent_m"], [100 * math.sqrt(2), 100 * math.sqrt(2), 150])
    assert out.crs == CRS
    assert out["rung"].tolist() == ["micro"] * 3


def test_missing_sectors_and_no_sector_column():
    actors = points(XY[:4], sector=["a", None, "a", "b"])
    out = find_microclusters(actors, eps_m=150, min_actors=3, sector_col="sector", n_sim=0)
    assert out["sectors"].iloc[0] == "a;b" and out["n_sectors"].iloc[0] == 2
    p = np.array([2, 1]) / 3
    assert out["sector_entropy"].iloc[0] == pytest.approx(-(p * np.log(p)).sum())
    out = find_microclusters(points(XY[:4]), eps_m=150, min_actors=3, n_sim=0)
    assert out["sectors"].iloc[0] == "" and out["n_sectors"].iloc[0] == 0
    assert np.isnan(out["sector_entropy"].iloc[0])
    assert np.isnan(out["social_economy_share"].iloc[0])
    # a single sector: entropy 0
    out = find_microclusters(points(XY[:4], s=["x"] * 4), eps_m=150, min_actors=3,
                             sector_col="s", n_sim=0)  # fmt: skip
    assert out["sector_entropy"].iloc[0] == 0.0


def test_extent_matches_brute_force():
    rng = np.random.default_rng(3)
    xy = rng.normal(0, 300, (200, 2))
    out = find_microclusters(points(xy), eps_m=2000, min_actors=3, n_sim=0)
    assert len(out) == 1
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)).max()
    assert out["extent_m"].iloc[0] == pytest.approx(d, rel=1e-12)


def test_footprint_discs_and_hull():
    xy = [(0, 0), (100, 0), (0, 100), (100, 100)]
    discs = find_microclusters(points(xy), eps_m=150, min_actors=3, n_sim=0)
    g = discs.geometry.iloc[0]
    # union of radius-75 discs around the corners of a 100 m square
    ref = shapely.union_all([shapely.Point(p).buffer(75, quad_segs=64) for p in xy])
    assert g.area == pytest.approx(ref.area, rel=0.01)
    assert discs["area_km2"].iloc[0] == pytest.approx(g.area / 1e6)
    assert all(g.contains(shapely.Point(p)) for p in xy)
    hull = find_microclusters(points(xy), eps_m=150, min_actors=3, n_sim=0, footprint="hull")
    assert hull["area_km2"].iloc[0] == pytest.approx(0.01)  # the 100 m square
    # collinear members: a degenerate hull is buffered by eps/2
    line = find_microclusters(points([(0, 0), (50, 0), (100, 0)]), eps_m=60, min_actors=3,
                              n_sim=0, footprint="hull")  # fmt: skip
    area = line["area_km2"].iloc[0] * 1e6
    assert area == pytest.approx(100 * 60 + math.pi * 30**2, rel=0.01)


def test_label_actors_matches_cluster_ids_and_index():
    idx = [f"actor{i}" for i in range(len(XY))]
    actors = points(XY, index=idx, sector=SECTORS)
    labels = label_actors(actors, eps_m=150, min_actors=3, sector_col="sector", n_sim=0)
    assert labels.index.tolist() == idx and labels.dtype == np.int64
    assert labels.name == "cluster_id"
    out = find_microclusters(actors, eps_m=150, min_actors=3, n_sim=0)
    counts = labels[labels >= 0].value_counts().sort_index()
    assert counts.index.tolist() == out["cluster_id"].tolist()
    assert counts.tolist() == out["n_actors"].tolist()
    assert labels["actor11"] == -1
    with pytest.raises(TypeError, match="bogus"):
        label_actors(actors, eps_m=150, min_actors=3, bogus=1)


def test_empty_and_no_clusters_keep_columns_and_dtypes():
    empty = points(np.zeros((0, 2)))
    out = find_microclusters(empty, eps_m=100, min_actors=3)
    assert len(out) == 0
    assert_contract(out)
    assert out.crs == CRS
    assert len(label_actors(empty, eps_m=100, min_actors=3)) == 0
    out = find_microclusters(points([(0, 0), (5000, 0)]), eps_m=100, min_actors=3)
    assert len(out) == 0
    assert_contract(out)


def test_geographic_crs_is_reprojected_or_refused():
    xy = [(0, 0), (100, 0), (0, 100)]
    proj = points(xy, index=None)
    proj = proj.set_geometry(proj.geometry.translate(500000, 6500000))
    geo = proj.to_crs("EPSG:4326")
    with pytest.raises(InputError, match="geographic CRS.*EPSG:3035"):
        find_microclusters(geo, eps_m=150, min_actors=3)
    units = gpd.GeoDataFrame({"mid": ["m"]}, geometry=[shapely.box(499000, 6499000,
                             501000, 6501000)], crs=CRS)  # fmt: skip
    out = find_microclusters(geo, eps_m=150, min_actors=3, units=units, unit_id="mid", n_sim=0)
    assert out.crs == CRS and out["unit_ids"].tolist() == ["m"]
    assert out["extent_m"].iloc[0] == pytest.approx(100 * math.sqrt(2), abs=1e-3)


def test_bad_inputs_raise_one_clear_error():
    actors = points(XY[:4])
    with pytest.raises(InputError, match="GeoDataFrame"):
        find_microclusters(pd.DataFrame({"x": [1]}), eps_m=100, min_actors=3)
    bad = actors.copy()
    bad.loc[2, "geometry"] = None
    with pytest.raises(InputError, match="1 actor.*no or empty geometry"):
        find_microclusters(bad, eps_m=100, min_actors=3)
    bad.loc[2, "geometry"] = shapely.Point()
    with pytest.raises(InputError, match="empty geometry"):
        find_microclusters(bad, eps_m=100, min_actors=3)
    with pytest.raises(InputError, match="no column 'sector'"):
        find_microclusters(actors, eps_m=100, min_actors=3, sector_col="sector")
    nocrs = gpd.GeoDataFrame(geometry=gpd.points_from_xy([0, 1, 2], [0, 0, 0]))
    with pytest.raises(InputError, match="no CRS"):
        find_microclusters(nocrs, eps_m=100, min_actors=3)
    for kw, key in [({"eps_m": 0}, "eps_m"), ({"min_actors": 0}, "min_actors"),
                    ({"n_sim": -1}, "n_sim"), ({"footprint": "blob"}, "footprint"),
                    ({"alpha": 2}, "alpha"), ({"p_method": "x"}, "p_method")]:  # fmt: skip
        args = {"eps_m": 100, "min_actors": 3, **kw}
        with pytest.raises(ConfigError, match=key):
            find_microclusters(actors, **args)
    with pytest.raises(ConfigError, match="region_col"):
        find_microclusters(actors, eps_m=100, min_actors=3, region_col="r")


def test_polygons_become_points_on_surface():
    squares = [shapely.box(x, 0, x + 10, 10) for x in (0, 40, 80)]
    actors = gpd.GeoDataFrame(geometry=squares, crs=CRS)
    out = find_microclusters(actors, eps_m=50, min_actors=3, n_sim=0)
    assert out["n_actors"].tolist() == [3]
    assert out["extent_m"].iloc[0] == pytest.approx(80)


def test_context_units_place_type_and_residents():
    # 2 x 2 km: unit W (x < 1000) and E; place types 4 | 6 on top, 7 | 255 below
    units = gpd.GeoDataFrame(
        {"mid": ["W", "E"]},
        geometry=[shapely.box(0, 0, 1000, 2000), shapely.box(1000, 0, 2000, 2000)],
        crs=CRS,
    )
    ptypes = grid(np.array([[4, 6], [7, 255]], dtype=np.uint8).astype(float))
    ptypes = ptypes.rio.write_nodata(255)
    pop = grid([[100, 300], [0, 50]])
    # cluster 0 spans W/E on the top row: 3 members in W (type 4), 2 in E (type 6)
    # cluster 1: 3 members in the lower-right cell (no class there)
    xy = [(900, 1500), (920, 1500), (940, 1500), (1060, 1500), (1080, 1500),
          (1500, 500), (1510, 500), (1520, 500)]  # fmt: skip
    out = find_microclusters(
        points(xy), eps_m=150, min_actors=3, units=units, unit_id="mid",
        population=pop, place_types=ptypes, n_sim=0,
    )  # fmt: skip
    assert out["unit_ids"].tolist() == ["E;W", "E"]
    assert out["n_units"].tolist() == [2, 1]
    assert out["rung"].tolist() == ["inter-municipal", "micro"]
    assert out["dominant_place_type"].tolist() == [4, pd.NA]
    # residents of cluster 1: its footprint lies inside one cell of 50 residents per km²
    assert out["residents"].iloc[1] == pytest.approx(50 * out["area_km2"].iloc[1])
    # cluster 0: split by x = 1000 between 100 and 300 residents per km²
    g = out.geometry.iloc[0]
    w = g.intersection(shapely.box(0, 1000, 1000, 2000)).area / 1e6
    e = g.intersection(shapely.box(1000, 1000, 2000, 2000)).area / 1e6
    assert out["residents"].iloc[0] == pytest.approx(100 * w + 300 * e)


def test_duplicates_and_all_actors_at_one_point():
    out = find_microclusters(points([(7, 7)] * 6), eps_m=100, min_actors=3, n_sim=0)
    assert out["n_actors"].tolist() == [6]
    assert out["extent_m"].tolist() == [0.0]
    assert out["area_km2"].iloc[0] == pytest.approx(math.pi * 50**2 / 1e6, rel=0.01)
    hull = find_microclusters(points([(7, 7)] * 6), eps_m=100, min_actors=3, n_sim=0,
                              footprint="hull")  # fmt: skip
    assert hull["area_km2"].iloc[0] == pytest.approx(math.pi * 50**2 / 1e6, rel=0.01)


def test_output_writes_to_geopackage(tmp_path):
    actors = points(XY, sector=SECTORS)
    out = find_microclusters(actors, eps_m=150, min_actors=3, sector_col="sector", n_sim=0)
    path = tmp_path / "clusters.gpkg"
    out.to_file(path, layer="clusters")
    back = gpd.read_file(path, layer="clusters")
    assert back["sectors"].tolist() == out["sectors"].tolist()
    assert back["n_actors"].tolist() == out["n_actors"].tolist()
