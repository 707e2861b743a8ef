"""Tests of the DEGURBA spatial-units classification (``pari_geo.typology.units``).

Spec: ``docs/degurba.md`` section 7 (and points 22-27 of section 8). The small tests use
hand-built grids of 1 km cells in ESRI:54009 whose expected values are worked out in the
comments; the Belgium tests run the 581 municipalities of the bundled sample data.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (registers .rio)
import shapely
import xarray as xr
from affine import Affine
from pyproj import CRS
from shapely.geometry import Polygon, box

from pari_geo.errors import ConfigError, InputError
from pari_geo.typology.units import classify_units

MOLL = "ESRI:54009"
BELGIUM = Path(__file__).resolve().parents[1] / "data" / "sample_grids" / "belgium"
L1_GROUPS = ["UCentre", "UCluster", "Urban", "Rural"]
L2_GROUPS = [*L1_GROUPS, "DUC", "SDUC", "SUrb", "RC", "LDR", "VLDR"]


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def grid(a, res: float = 1000.0, x0: float = 0.0, top: float | None = None, crs=MOLL):
    """North-up DataArray with top-left corner (x0, top); top defaults to nrows * res."""
    a = np.asarray(a, dtype="float64")
    nr, nc = a.shape
    top = nr * res if top is None else top
    da = xr.DataArray(
        a,
        dims=("y", "x"),
        coords={
            "y": top - res * (np.arange(nr) + 0.5),
            "x": x0 + res * (np.arange(nc) + 0.5),
        },
    )
    da = da.rio.write_crs(crs)
    return da.rio.write_transform(Affine(res, 0.0, x0, 0.0, -res, top))


def units(geoms, ids, col: str = "UID", crs=MOLL, **extra):
    return gpd.GeoDataFrame({col: ids, **extra}, geometry=list(geoms), crs=crs)


def blocks(codes_per_unit, pops_per_unit):
    """One 2 x 2 block of 1 km cells per unit, side by side; unit k = box over block k.

    Each unit's 4 values are given in the order (top-left, top-right, bottom-left,
    bottom-right). Returns (classification, population, units) with ids 1..n.
    """
    n = len(codes_per_unit)
    c = np.zeros((2, 2 * n))
    p = np.zeros((2, 2 * n))
    for k, (cs, ps) in enumerate(zip(codes_per_unit, pops_per_unit, strict=True)):
        c[:, 2 * k : 2 * k + 2] = np.reshape(cs, (2, 2))
        p[:, 2 * k : 2 * k + 2] = np.reshape(ps, (2, 2))
    geoms = [box(2000 * k, 0, 2000 * k + 2000, 2000) for k in range(n)]
    return grid(c), grid(p), units(geoms, list(range(1, n + 1)))


def as_list(series: pd.Series) -> list:
    """Int64 column -> list with None for NA."""
    return [None if pd.isna(v) else int(v) for v in series]


# ------------------------------------------------------------------------------------------
# output contract
# ------------------------------------------------------------------------------------------


def test_columns_level1_and_level2():
    cls, pop, u = blocks([[3, 3, 1, 1]], [[1, 1, 1, 1]])
    out = classify_units(u, cls, pop)
    assert list(out.columns) == (
        ["UID", "Tot_Pop"]
        + [f"{g}_Pop" for g in L1_GROUPS]
        + [f"{g}_share" for g in L1_GROUPS]
        + ["L1", "geometry"]
    )
    assert isinstance(out, gpd.GeoDataFrame)
    assert out.crs == u.crs
    assert str(out["L1"].dtype) == "Int64"

    cls2 = cls.copy(data=np.where(cls.values == 3, 30, 11))
    out2 = classify_units(u, cls2, pop, level=2)
    assert list(out2.columns) == (
        ["UID", "Tot_Pop"]
        + [f"{g}_Pop" for g in L2_GROUPS]
        + [f"{g}_share" for g in L2_GROUPS]
        + ["L1", "L2", "geometry"]
    )
    assert str(out2["L2"].dtype) == "Int64"


# ------------------------------------------------------------------------------------------
# level-1 rules (7.5), boundaries at exactly 0.5
# ------------------------------------------------------------------------------------------


def test_level1_rules_at_the_boundaries():
    cls, pop, u = blocks(
        [
            [3, 3, 1, 1],  # UCentre 20/40 = 0.5 exactly -> city (>= 0.5)
            [3, 2, 1, 1],  # UCentre 0.25, Rural 0.5 exactly -> town (Rural <= 0.5)
            [3, 1, 1, 1],  # UCentre 0.25, Rural 0.75 -> rural
            [0, 0, 2, 1],  # water 20 of 30: UCentre 0, Rural 5/30 -> town; shares sum < 1
            [3, 1, 1, 1],  # UCentre 9/20 = 0.45, Rural 0.55 -> rural
        ],
        [[10, 10, 10, 10], [10, 10, 10, 10], [10, 10, 10, 10], [10, 10, 5, 5], [9, 1, 5, 5]],
    )
    out = classify_units(u, cls, pop)
    assert as_list(out["L1"]) == [3, 2, 1, 2, 1]
    assert out["Tot_Pop"].tolist() == [40, 40, 40, 30, 20]
    assert out["UCentre_share"].tolist() == [0.5, 0.25, 0.25, 0.0, 0.45]
    assert out["Rural_share"].tolist() == [0.5, 0.5, 0.75, 5 / 30, 0.55]
    assert out["Urban_Pop"].tolist() == [20, 20, 10, 5, 9]
    # water population counts in the total but in no group
    assert out.loc[3, "Urban_share"] + out.loc[3, "Rural_share"] == pytest.approx(1 / 3)


def test_missing_class_counts_in_total_only():
    # a NaN class cell with population: in Tot_Pop, in no group
    cls, pop, u = blocks([[3, np.nan, 1, 1]], [[10, 30, 5, 5]])
    out = classify_units(u, cls, pop)
    assert out.loc[0, "Tot_Pop"] == 50
    assert out.loc[0, "UCentre_share"] == 0.2
    assert out.loc[0, "Rural_share"] == 0.2
    assert out.loc[0, "L1"] == 2  # UCentre < 0.5, Rural <= 0.5


def test_nodata_code_and_geotiff_paths(tmp_path):
    # uint8 classification with nodata 255: that cell belongs to no group (like NaN)
    cls = grid([[3, 255], [1, 1]]).astype("uint8").rio.write_nodata(255)
    cls = cls.rio.write_crs(MOLL).rio.write_transform(Affine(1000.0, 0, 0, 0, -1000.0, 2000.0))
    pop = grid([[10.0, 10.0], [5.0, 5.0]])
    u = units([box(0, 0, 2000, 2000)], [1])
    out = classify_units(u, cls, pop)
    assert out.loc[0, "Tot_Pop"] == 30 and out.loc[0, "UCentre_share"] == pytest.approx(1 / 3)
    # the same through files
    cls.rio.to_raster(tmp_path / "cls.tif")
    pop.rio.to_raster(tmp_path / "pop.tif")
    u.to_file(tmp_path / "units.gpkg")
    out2 = classify_units(tmp_path / "units.gpkg", tmp_path / "cls.tif", str(tmp_path / "pop.tif"))
    assert out2.drop(columns="geometry").equals(out.drop(columns="geometry"))


# ------------------------------------------------------------------------------------------
# level-2 rules (7.6): 2024 with SDUC (default) or SUrb split, 2021 rules
# ------------------------------------------------------------------------------------------

# 9 units, 10 residents per cell, so every share is a multiple of 0.25.
L2_CODES = [
    [30, 30, 11, 11],  # 1: UCentre .5 -> city 30 under all rules
    [30, 23, 22, 11],  # 2: town; UCentre+DUC .5 -> 23; 2021 DUC .25 >= SDUC .25, .5 > 0 -> 23
    [23, 22, 21, 21],  # 3: town; UC+DUC .25, SDUC+Rural .25 -> 22; SUrb+Rural .5 -> 21;
    #                       2021 DUC+SDUC .5 <= SUrb .5 -> 21
    [22, 13, 21, 21],  # 4: town; SDUC+Rural .5 exactly -> 21; SUrb+Rural .75 -> 21; 2021 21
    [21, 13, 12, 11],  # 5: rural (.75); RC+UC+UCluster .5 exactly -> 13; 2021 tie .25/.25/.25 -> NA
    [13, 12, 12, 11],  # 6: rural; village .25, VLDR .25 -> 12; 2021 LDR .5 largest -> 12
    [13, 12, 11, 11],  # 7: rural; village .25, VLDR .5 exactly -> 11; 2021 VLDR .5 -> 11
    [22, 22, 23, 21],  # 8: town; UC+DUC .25, SDUC+Rural .5 -> 21; SUrb+Rural .25 -> 22;
    #                       2021 DUC .25 < SDUC .5, .75 > .25 -> 22
    [13, 13, 12, 11],  # 9: rural; village .5 -> 13; 2021 RC .5 -> 13
]
L2_POPS = [[10, 10, 10, 10]] * len(L2_CODES)


def test_level2_rules_2024_default_sduc_split():
    cls, pop, u = blocks(L2_CODES, L2_POPS)
    out = classify_units(u, cls, pop, level=2)
    assert as_list(out["L1"]) == [3, 2, 2, 2, 1, 1, 1, 2, 1]
    assert as_list(out["L2"]) == [30, 23, 22, 21, 13, 12, 11, 21, 13]
    assert out["SDUC_share"].tolist() == [0, 0.25, 0.25, 0.25, 0, 0, 0, 0.5, 0]
    assert out["UCluster_Pop"].tolist() == [0, 20, 40, 30, 10, 0, 0, 40, 0]


def test_level2_rules_2024_surb_split():
    cls, pop, u = blocks(L2_CODES, L2_POPS)
    out = classify_units(u, cls, pop, level=2, split_share="SUrb")
    # only units 3 and 8 change: 3 goes 22 -> 21, 8 goes 21 -> 22
    assert as_list(out["L2"]) == [30, 23, 21, 21, 13, 12, 11, 22, 13]


def test_level2_rules_2021_with_tie_na():
    cls, pop, u = blocks(L2_CODES, L2_POPS)
    out = classify_units(u, cls, pop, level=2, rules="2021")
    assert as_list(out["L1"]) == [3, 2, 2, 2, 1, 1, 1, 2, 1]
    assert as_list(out["L2"]) == [30, 23, 21, 21, None, 12, 11, 22, 13]
    # split_share only affects the 2024 rules
    same = classify_units(u, cls, pop, level=2, rules="2021", split_share="SUrb")
    assert as_list(same["L2"]) == as_list(out["L2"])


# ------------------------------------------------------------------------------------------
# custom values (7.6 point 26)
# ------------------------------------------------------------------------------------------


def test_custom_values_level1():
    cls, pop, u = blocks([[13, 13, 11, 11], [13, 12, 11, 11], [11, 11, 11, 12]], L2_POPS[:3])
    out = classify_units(u, cls, pop, values=(13, 12, 11))
    assert as_list(out["L1"]) == [13, 12, 11]
    assert out["UCentre_share"].tolist() == [0.5, 0.25, 0]


def test_custom_values_level2_keeps_l1_as_321():
    recode = dict(zip((30, 23, 22, 21, 13, 12, 11), (7, 6, 5, 4, 3, 2, 1), strict=True))
    codes = [[recode[c] for c in unit] for unit in L2_CODES]
    cls, pop, u = blocks(codes, L2_POPS)
    out = classify_units(u, cls, pop, level=2, values=(7, 6, 5, 4, 3, 2, 1))
    assert as_list(out["L1"]) == [3, 2, 2, 2, 1, 1, 1, 2, 1]  # never recoded
    assert as_list(out["L2"]) == [7, 6, 5, 4, 3, 2, 1, 4, 3]


# ------------------------------------------------------------------------------------------
# exception 1: zero population -> area shares (7.3.3)
# ------------------------------------------------------------------------------------------


def test_exception1_area_shares_and_all_missing():
    nan = np.nan
    cls, pop, u = blocks(
        [
            [3, 3, 1, 1],  # pop 0,0,0,NaN: area = 3 cells with data, UCentre 2/3 -> city
            [1, 1, 3, 3],  # pop 0,0,NaN,NaN: area counts data cells only: Rural 2/2 -> rural
            [3, 3, 3, 3],  # all NaN: Tot_Area 0 -> NA
            [3, 1, 1, 1],  # ordinary unit, population shares: UCentre .1 -> rural
        ],
        [[0, 0, 0, nan], [0, 0, nan, nan], [nan] * 4, [1, 3, 3, 3]],
    )
    out = classify_units(u, cls, pop)
    assert as_list(out["L1"]) == [3, 1, None, 1]
    # the _Pop/_share columns keep the population values
    assert out["Tot_Pop"].tolist() == [0, 0, 0, 10]
    assert out.loc[0, "UCentre_Pop"] == 0
    assert np.isnan(out.loc[0, "UCentre_share"])

    # alternative workflow: zero-population units use the covered area of all cells,
    # missing population included (flexurba's exact_extract branch): unit 2 is then
    # UCentre 2/4 = .5 -> city, and unit 3 UCentre 4/4 -> city
    alt = classify_units(u, cls, pop, workflow="alternative")
    assert as_list(alt["L1"]) == [3, 3, 3, 1]


def test_exception1_level2_area_shares():
    # rural by area: RC 1/4, LDR 2/4, VLDR 1/4 -> village .25 < .5, VLDR < .5 -> 12
    cls, pop, u = blocks([[13, 12, 12, 11]], [[0, 0, 0, 0]])
    out = classify_units(u, cls, pop, level=2)
    assert (out.loc[0, "L1"], out.loc[0, "L2"]) == (1, 12)


# ------------------------------------------------------------------------------------------
# exception 2: units that receive no cell (7.3.4) and centre-in-polygon rasterising (7.3.1)
# ------------------------------------------------------------------------------------------


def test_exception2_all_touched_appended_at_end():
    # 2 x 2 grid of 1 km cells; row 0 is y 1000..2000, row 1 is y 0..1000
    cls = grid([[3, 1], [3, 1]])
    pop = grid([[0.0, 5.0], [30.0, 10.0]])
    u = units(
        [
            box(900, 100, 1100, 200),  # id 9: touches cells (1,0) and (1,1), holds no centre
            box(100, 1100, 200, 1200),  # id 1: inside cell (0,0) (pop 0), holds no centre
            box(0, 0, 2000, 2000),  # id 5: every centre
        ],
        [9, 1, 5],
    )
    out = classify_units(u, cls, pop)
    assert out["UID"].tolist() == [5, 9, 1]  # rasterised first, then exception 2 in input order
    assert out.attrs["exception2"] == [9, 1]
    # id 5: UCentre (0 + 30) / 45 = 2/3 -> city
    assert out.loc[0, "Tot_Pop"] == 45
    assert out.loc[0, "UCentre_share"] == pytest.approx(2 / 3)
    # id 9: all-touched cells (1,0) class 3 pop 30 and (1,1) class 1 pop 10: UCentre .75 -> city
    #       (the cell it lies in most, (1,0), alone would also say city; see the next unit)
    # id 1: all-touched cell (0,0) has pop 0 -> area shares: 1 cell of class 3 -> city
    assert as_list(out["L1"]) == [3, 3, 3]
    stats = [c for c in out.columns if c.endswith(("_Pop", "_share"))]
    assert out.loc[1:, stats].isna().all().all()  # no population assigned


def test_exception2_uses_all_touched_cells_not_one():
    # id 2 straddles a class-3 cell with 10 people and a rural cell with 30: all touched
    # cells give UCentre 10/40 = .25, Rural .75 -> rural (the class-3 cell alone: city)
    cls = grid([[3, 1]])
    pop = grid([[10.0, 30.0]])
    u = units([box(0, 0, 2000, 1000), box(950, 400, 1050, 600)], [1, 2])
    out = classify_units(u, cls, pop)
    assert out.attrs["exception2"] == [2]
    assert as_list(out["L1"]) == [1, 1]
    # level 2 too, with area shares when the touched cells have no population
    cls2 = grid([[30, 12]])
    out2 = classify_units(u, cls2, grid([[0.0, 0.0]]), level=2)
    # id 1: area 1/2 centre -> city 30; id 2: same two cells -> city 30
    assert as_list(out2["L2"]) == [30, 30]
    assert np.isnan(out2.loc[1, "Tot_Pop"]) and out2.loc[0, "Tot_Pop"] == 0


def test_centre_in_polygon_not_all_touched():
    # 1 x 3 grid; A reaches x = 1600 (centres 500 and 1500), B starts there (centre 2500 only)
    cls = grid([[1, 3, 3]])
    pop = grid([[10.0, 20.0, 40.0]])
    u = units([box(0, 0, 1600, 1000), box(1600, 0, 3000, 1000)], [1, 2])
    out = classify_units(u, cls, pop)
    assert out["Tot_Pop"].tolist() == [30, 40]  # all-touched would give B 20 + 40
    assert out["UCentre_Pop"].tolist() == [20, 40]


def test_overlap_burn_order_last_wins():
    cls = grid([[1, 3]])
    pop = grid([[10.0, 20.0]])
    big, small = box(0, 0, 2000, 1000), box(1000, 0, 2000, 1000)
    out = classify_units(units([big, small], [1, 2]), cls, pop)
    assert out["Tot_Pop"].tolist() == [10, 20]  # unit 2 burnt last takes the shared cell
    # reversed table order: unit 1 burnt last takes both cells, unit 2 gets no cell
    out = classify_units(units([small, big], [2, 1]), cls, pop)
    assert out["UID"].tolist() == [1, 2]
    assert out["Tot_Pop"].tolist()[0] == 30 and np.isnan(out["Tot_Pop"].tolist()[1])
    assert out.attrs["exception2"] == [2]


# ------------------------------------------------------------------------------------------
# row order (7.3.5) and dissolve (7.1.4)
# ------------------------------------------------------------------------------------------


def test_row_order_numeric_and_string_ids():
    cls, pop, u = blocks([[1] * 4] * 3, [[1] * 4] * 3)
    u["UID"] = [10, 9, 100]
    assert classify_units(u, cls, pop)["UID"].tolist() == [9, 10, 100]
    u["UID"] = ["10", "9", "100"]
    assert classify_units(u, cls, pop)["UID"].tolist() == ["10", "100", "9"]


def test_row_order_geometry_follows_id():
    cls, pop, u = blocks([[1] * 4] * 3, [[1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]])
    u["UID"] = ["10", "9", "100"]
    out = classify_units(u, cls, pop)
    assert out["UID"].tolist() == ["10", "100", "9"]
    assert out["Tot_Pop"].tolist() == [4, 12, 8]
    assert out.geometry.iloc[2].equals(box(2000, 0, 4000, 2000))


def test_dissolve_by():
    cls, pop, u = blocks([[3] * 4, [1] * 4, [1] * 4], [[1] * 4, [2] * 4, [3] * 4])
    u["grp"] = ["b", "a", "b"]
    u["other"] = [1, 2, 3]
    out = classify_units(u, cls, pop, dissolve_by="grp")
    assert out["grp"].tolist() == ["a", "b"]
    assert "UID" not in out.columns and "other" not in out.columns
    assert out["Tot_Pop"].tolist() == [8, 16]
    assert out["UCentre_share"].tolist() == [0, 0.25]
    assert as_list(out["L1"]) == [1, 1]
    assert out.geometry.iloc[1].area == pytest.approx(8e6)


# ------------------------------------------------------------------------------------------
# preprocessing: resampling (7.1.1-2), cropping and dropping (7.1.3, 7.1.5)
# ------------------------------------------------------------------------------------------


def test_resampling_divides_population_by_f2():
    cls = grid([[3, 1], [1, 1]])
    pop = grid([[40.0, 8.0], [12.0, 20.0]])
    whole = units([box(0, 0, 2000, 2000)], [1])
    for rs in (1000, 500, 250):
        out = classify_units(whole, cls, pop, resample_resolution=rs)
        assert out.attrs["resample_resolution"] == rs
        assert out.loc[0, "Tot_Pop"] == pytest.approx(80.0)  # totals preserved
        assert out.loc[0, "UCentre_Pop"] == pytest.approx(40.0)
    # west 400 m of column 0 only: no 1 km centre, but at 500 m two of the four fine cells
    # of (0,0) and of (1,0): (40 + 12) / 4 * 2 = 26
    half = units([box(0, 0, 400, 2000)], [1])
    out = classify_units(half, cls, pop, resample_resolution=500)
    assert out.loc[0, "Tot_Pop"] == pytest.approx(26.0)
    assert out.loc[0, "UCentre_share"] == pytest.approx(20 / 26)
    # at 1 km the same unit has no cell centre: exception 2 (all-touched (0,0) and (1,0))
    out = classify_units(half, cls, pop)
    assert out.attrs["exception2"] == [1] and out.loc[0, "L1"] == 3  # UCentre 40/52


def test_default_resolution_is_the_finer_grid():
    cls = grid([[3, 1]])  # 1 km
    pop = grid(np.full((2, 4), 5.0), res=500.0)  # 500 m, same extent
    u = units([box(0, 0, 700, 1000), box(700, 0, 2000, 1000)], [1, 2])
    out = classify_units(u, cls, pop)
    assert out.attrs["resample_resolution"] == 500
    # unit 1 holds the 500 m centres x = 250 (class 3) in both rows: 10 people, all centre
    assert out["Tot_Pop"].tolist() == [10, 30]
    assert out["UCentre_Pop"].tolist() == [10, 10]
    # unit 2: centres x = 750 (class 3, 10 people), 1250 and 1750 (rural, 20 people):
    # UCentre 1/3, Rural 2/3 -> rural
    assert out.loc[1, "Rural_share"] == pytest.approx(2 / 3)
    assert as_list(out["L1"]) == [3, 1]


def test_crop_to_common_extent_and_drop_outside_units():
    cls = grid(np.full((2, 4), 1.0))  # x 0..4000
    pop = grid(np.full((2, 2), 1.0), x0=1000.0)  # x 1000..3000
    u = units([box(1000, 0, 3000, 2000), box(3100, 0, 4000, 2000)], [1, 2])
    with pytest.warns(UserWarning, match="1 units do not intersect"):
        out = classify_units(u, cls, pop)
    assert out["UID"].tolist() == [1]
    assert out.attrs["dropped"] == [2]
    assert out.loc[0, "Tot_Pop"] == 4


def test_units_reprojected_to_grid_crs():
    cls, pop, u = blocks([[3, 3, 3, 1]], [[1, 1, 1, 1]])
    # the 2 x 2 km block shrunk by 100 m so that reprojection round-off cannot matter
    u = units([box(100, 100, 1900, 1900)], [1]).to_crs("EPSG:4326")
    with pytest.warns(UserWarning, match="reprojected"):
        out = classify_units(u, cls, pop)
    assert out.crs.equals(CRS.from_user_input(MOLL))
    assert out.loc[0, "Tot_Pop"] == 4 and out.loc[0, "UCentre_share"] == 0.75


# ------------------------------------------------------------------------------------------
# alternative workflow (7.4): exact cell fractions
# ------------------------------------------------------------------------------------------


def test_alternative_workflow_fractional_weights():
    cls = grid([[3, 1]])
    pop = grid([[10.0, 20.0]])
    u = units([box(0, 0, 1400, 1000), box(1400, 0, 2000, 1000)], [1, 2])
    # unit 1: weights 1 and 0.4: Tot = 10 + 8 = 18, UCentre 10/18 -> city
    # unit 2: weight 0.6 of the rural cell: Tot = 12 -> rural
    alt = classify_units(u, cls, pop, workflow="alternative")
    assert alt["Tot_Pop"].tolist() == pytest.approx([18.0, 12.0])
    assert alt.loc[0, "UCentre_share"] == pytest.approx(10 / 18)
    assert as_list(alt["L1"]) == [3, 1]
    # official: each unit holds one centre
    off = classify_units(u, cls, pop)
    assert off["Tot_Pop"].tolist() == [10, 20]


def test_crop_snaps_bbox_to_nearest_cell_boundary():
    # 7.1.3: the units' bbox edges snap to the *nearest* cell boundary (terra::crop "near").
    # A lone unit reaching 400 m into the second cell: its bbox edge x = 1400 snaps to 1000,
    # so that cell is cropped away (visible only in the alternative workflow / all-touched).
    cls = grid([[3, 1]])
    pop = grid([[10.0, 20.0]])
    alt = classify_units(units([box(0, 0, 1400, 1000)], [1]), cls, pop, workflow="alternative")
    assert alt.loc[0, "Tot_Pop"] == 10
    # reaching 600 m in, x = 1600 snaps to 2000 and the cell counts with weight 0.6
    alt = classify_units(units([box(0, 0, 1600, 1000)], [1]), cls, pop, workflow="alternative")
    assert alt.loc[0, "Tot_Pop"] == pytest.approx(22.0)


def test_alternative_workflow_triangle():
    # triangle over a 2 x 2 grid: bottom-left cell fully covered, top-left and bottom-right
    # half covered, top-right not at all: 1*.5 + 2*0 + 3*1 + 4*.5 = 5.5
    cls = grid([[3, 1], [1, 1]])
    pop = grid([[1.0, 2.0], [3.0, 4.0]])
    tri = Polygon([(0, 0), (2000, 0), (0, 2000)])
    out = classify_units(units([tri], [1]), cls, pop, workflow="alternative")
    assert out.loc[0, "Tot_Pop"] == pytest.approx(5.5)
    assert out.loc[0, "UCentre_Pop"] == pytest.approx(0.5)
    assert out.attrs["exception2"] == []
    # uniform population 1: the weights sum to the polygon area in cells
    ones = classify_units(
        units([tri], [1]), cls, pop.copy(data=np.ones((2, 2))), workflow="alternative"
    )
    assert ones.loc[0, "Tot_Pop"] == pytest.approx(tri.area / 1e6)


def test_alternative_matches_official_on_cell_aligned_units():
    cls, pop, u = blocks(L2_CODES, [[1, 2, 3, 4]] * len(L2_CODES))
    a = classify_units(u, cls, pop, level=2)
    b = classify_units(u, cls, pop, level=2, workflow="alternative")
    pd.testing.assert_frame_equal(
        pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry"))
    )


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------


def test_error_missing_id_column():
    cls, pop, u = blocks([[1] * 4], [[1] * 4])
    with pytest.raises(InputError, match="id column 'CODE' is missing"):
        classify_units(u, cls, pop, id="CODE")
    with pytest.raises(InputError, match="dissolve_by column 'nope' is missing"):
        classify_units(u, cls, pop, dissolve_by="nope")


def test_error_no_codes_in_values():
    cls, pop, u = blocks([[3, 2, 1, 0]], [[1] * 4])
    with pytest.raises(InputError, match=r"classification\].*none of its codes"):
        classify_units(u, cls, pop, level=2)  # a level-1 grid classified at level 2


def test_error_non_integer_resolution_multiple():
    cls = grid([[1, 1, 1]])  # 1 km
    pop = grid(np.ones((1, 10)), res=300.0)  # 300 m: 1000 / 300 is not an integer
    u = units([box(0, 0, 3000, 1000)], [1])
    with pytest.raises(InputError, match="not an integer multiple"):
        classify_units(u, cls, pop)
    cls, pop, u = blocks([[1] * 4], [[1] * 4])
    with pytest.raises(ConfigError, match="resample_resolution"):
        classify_units(u, cls, pop, resample_resolution=300)


def test_error_geographic_crs():
    cls = grid([[1.0, 1.0]], res=0.01, crs="EPSG:4326")
    pop = grid([[1.0, 1.0]], res=0.01, crs="EPSG:4326")
    u = units([box(0, 0, 0.02, 0.01)], [1], crs="EPSG:4326")
    with pytest.raises(InputError, match="geographic CRS"):
        classify_units(u, cls, pop)


def test_error_units_problems(tmp_path):
    cls, pop, u = blocks([[1] * 4, [1] * 4], [[1] * 4] * 2)
    dup = u.assign(UID=[7, 7])
    with pytest.raises(InputError, match="duplicate ids: 7"):
        classify_units(dup, cls, pop)
    with pytest.raises(InputError, match="contains no features"):
        classify_units(u.iloc[:0], cls, pop)
    bowtie = Polygon([(0, 0), (2000, 2000), (2000, 0), (0, 2000)])
    with pytest.raises(InputError, match="invalid geometries"):
        classify_units(units([bowtie], [1]), cls, pop)
    empty = units([Polygon()], [1])
    with pytest.raises(InputError, match="missing or empty geometry"):
        classify_units(empty, cls, pop)
    nocrs = gpd.GeoDataFrame({"UID": [1, 2]}, geometry=list(u.geometry))
    with pytest.raises(InputError, match="no CRS"):
        classify_units(nocrs, cls, pop)
    bad = tmp_path / "units.gpkg"
    bad.write_text("not a geopackage")
    with pytest.raises(InputError, match="units.gpkg \\[units\\]: cannot be read"):
        classify_units(bad, cls, pop)
    with pytest.raises(InputError, match="does not exist"):
        classify_units(u, tmp_path / "missing.tif", pop)


def test_error_parameters():
    cls, pop, u = blocks([[1] * 4], [[1] * 4])
    with pytest.raises(ConfigError, match="'values'.*needs 3"):
        classify_units(u, cls, pop, values=(3, 2, 1, 0))
    with pytest.raises(ConfigError, match="'level'"):
        classify_units(u, cls, pop, level=3)
    with pytest.raises(ConfigError, match="'workflow'"):
        classify_units(u, cls, pop, workflow="fast")
    with pytest.raises(ConfigError, match="'rules'"):
        classify_units(u, cls, pop, rules=2024)
    with pytest.raises(ConfigError, match="'split_share'"):
        classify_units(u, cls, pop, split_share="RC")


def test_error_grid_crs_mismatch_and_missing():
    cls, pop, u = blocks([[1] * 4], [[1] * 4])
    with pytest.raises(InputError, match=r"\[population\]: CRS"):
        classify_units(u, cls, pop.rio.write_crs("EPSG:3035"))
    with pytest.raises(InputError, match=r"\[classification\]: has no CRS"):
        classify_units(u, xr.DataArray(cls.values, dims=("y", "x")), pop)


# ------------------------------------------------------------------------------------------
# Belgium, end to end
# ------------------------------------------------------------------------------------------
#
# The grids are classified with pari_geo's own classify_grid (default parameters), which
# reproduces the reference Belgium grid counts exactly (tests/test_degurba_rules.py).


def real_classification(level: int) -> xr.DataArray:
    from pari_geo.typology.degurba import classify_grid

    return classify_grid(BELGIUM / "POP.tif", BELGIUM / "BUILT_S.tif", BELGIUM / "LAND.tif",
                         level=level)


@pytest.fixture(scope="module")
def belgium():
    pop = rioxarray.open_rasterio(BELGIUM / "POP.tif", masked=True).squeeze("band", drop=True)
    return {
        "pop_path": BELGIUM / "POP.tif",
        "pop": pop,
        "units_path": BELGIUM / "units_belgium_statbel2024.gpkg",
        "units": gpd.read_file(BELGIUM / "units_belgium_statbel2024.gpkg"),
        "wf_path": BELGIUM / "westflanders_pop_100m.tif",
        "l1": real_classification(1),
        "l2": real_classification(2),
    }


def centre_in_union_population(pop: xr.DataArray, geoms) -> float:
    """Population of the cells whose centre lies in the union of the units (independent of
    rasterio: shapely point-in-polygon on every cell centre)."""
    union = shapely.union_all(geoms)
    xs, ys = np.meshgrid(pop.x.values, pop.y.values)
    inside = shapely.contains_xy(union, xs, ys)
    return float(np.nansum(np.where(inside, pop.values.astype("float64"), 0.0)))


def test_belgium_level1_1km(belgium):
    out = classify_units(belgium["units_path"], belgium["l1"], belgium["pop_path"])
    assert len(out) == 581
    assert out["L1"].notna().all()  # every unit classified
    assert out.attrs["resample_resolution"] == 1000
    # exactly two municipalities get no cell centre at 1 km; they come last, without population
    assert out.attrs["exception2"] == [21011, 73028]
    assert out["UID"].tolist()[-2:] == [21011, 73028]
    assert out["Tot_Pop"].iloc[-2:].isna().all()
    head = out["UID"].iloc[:-2]
    assert head.is_monotonic_increasing
    # Tot_Pop over the rasterised units = population of the cells whose centre lies in the
    # union of the units (the municipalities do not overlap); tolerance: float summation
    # order only, rel 1e-9
    expected = centre_in_union_population(belgium["pop"], belgium["units"].geometry.values)
    assert out["Tot_Pop"].sum() == pytest.approx(expected, rel=1e-9)
    # and close to the area-weighted population of the union (alternative workflow): the
    # centre rule only moves border cells between inside and outside (measured 0.015 %)
    alt = classify_units(belgium["units"], belgium["l1"], belgium["pop"], workflow="alternative")
    assert out["Tot_Pop"].sum() == pytest.approx(alt["Tot_Pop"].sum(), rel=1e-3)
    assert alt["Tot_Pop"].sum() == pytest.approx(11.55e6, rel=0.01)  # Belgium 2020
    # unit classes from the real level-1 grid
    counts = out["L1"].value_counts().to_dict()
    assert counts == {3: 74, 2: 292, 1: 215}


def test_belgium_level2_1km(belgium):
    out = classify_units(belgium["units"], belgium["l2"], belgium["pop"], level=2)
    assert len(out) == 581
    assert out["L1"].notna().all() and out["L2"].notna().all()
    assert out["UID"].tolist()[-2:] == [21011, 73028]
    # shares of the level-2 groups are consistent with the level-1 groups
    rast = out.iloc[:-2]
    np.testing.assert_allclose(
        rast["UCluster_Pop"], rast[["DUC_Pop", "SDUC_Pop", "SUrb_Pop"]].sum(axis=1), rtol=1e-12
    )
    np.testing.assert_allclose(
        rast["Rural_Pop"], rast[["RC_Pop", "LDR_Pop", "VLDR_Pop"]].sum(axis=1), rtol=1e-12
    )
    # cities at level 2 are exactly the L1 == 3 units
    assert ((out["L2"] == 30) == (out["L1"] == 3)).all()
    # unit classes from the real level-2 grid
    assert out["L1"].value_counts().to_dict() == {3: 74, 2: 297, 1: 210}
    assert out["L2"].value_counts().to_dict() == {
        30: 74,
        23: 47,
        22: 186,
        21: 64,
        13: 66,
        12: 143,
        11: 1,
    }


def test_belgium_westflanders_100m(belgium):
    wf = belgium["units"][belgium["units"]["GID_2"] == "30000"]
    assert len(wf) == 64
    pop100 = rioxarray.open_rasterio(belgium["wf_path"], masked=True).squeeze("band", drop=True)
    assert pop100.shape == (691, 740)
    out = classify_units(wf, belgium["l2"], belgium["wf_path"], level=2)
    assert out.attrs["resample_resolution"] == 100  # the finer grid by default
    assert len(out) == 64 and out["L2"].notna().all()
    expected = centre_in_union_population(pop100, wf.geometry.values)
    rasterised = out["Tot_Pop"].notna()
    assert out.loc[rasterised, "Tot_Pop"].sum() == pytest.approx(expected, rel=1e-9)
    # the 100 m population sums to POP.tif: the same units at 1 km hold nearly the same total
    at_1km = classify_units(wf, belgium["l2"], belgium["pop"], level=2)
    assert out["Tot_Pop"].sum() == pytest.approx(at_1km["Tot_Pop"].sum(), rel=0.01)
    # arrondissements: 8 dissolved units ordered by GID_3
    arr = classify_units(wf, belgium["l2"], belgium["wf_path"], level=2, dissolve_by="GID_3")
    assert arr["GID_3"].tolist() == sorted(wf["GID_3"].unique()) and len(arr) == 8
    assert arr["Tot_Pop"].sum() == pytest.approx(expected, rel=1e-9)


def test_belgium_resampled_100m_all_units(belgium):
    # 1 km grids disaggregated to 100 m for all of Belgium (~2950 x 2090 cells)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing dropped
        out = classify_units(
            belgium["units"], belgium["l2"], belgium["pop"], level=2, resample_resolution=100
        )
    assert out.attrs["exception2"] == []  # at 100 m every municipality gets cells
    assert out["L2"].notna().all()
    # f^2 division: the disaggregated population of the union stays close to the 1 km total
    coarse = classify_units(belgium["units"], belgium["l2"], belgium["pop"], level=2)
    assert out["Tot_Pop"].sum() == pytest.approx(coarse["Tot_Pop"].sum(), rel=1e-3)
