"""Agreement of two classifications and a reference classification on the run's grid
(issue 14, item 7): hand-built inputs with known answers, scikit-learn as a twin for kappa
and a brute-force loop as a twin for the resampling rules."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from helpers import write_tif
from shapely.geometry import Point, box
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from pari_geo.errors import InputError
from pari_geo.grid import GridSpec
from pari_geo.typology.agreement import (
    REFERENCE_NODATA,
    ClassAgreement,
    compare_classes,
    reference_on_grid,
)

CRS = "EPSG:3035"


def km_grid(
    rows: int = 2,
    cols: int = 2,
    *,
    size: float = 1000.0,
    x0: float = 0.0,
    y0: float | None = None,
    crs: str = CRS,
) -> GridSpec:
    y0 = rows * size if y0 is None else y0
    return GridSpec(crs, Affine(size, 0, x0, 0, -size, y0), (rows, cols))


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# --------------------------------------------------------------------------------------
# compare_classes
# --------------------------------------------------------------------------------------


def test_identical_rasters_agree_fully():
    a = np.array([[1, 2, 3], [4, 5, 0]], dtype=np.uint8)
    r = compare_classes(a, a.copy())
    assert isinstance(r, ClassAgreement)
    assert r.agreement == 1.0 and r.kappa == 1.0 and r.n_cells == 6
    assert (np.diag(r.confusion.to_numpy()) == 1).all()


def test_single_class_everywhere_is_kappa_one():
    """Expected agreement 1 makes kappa 0/0; it is defined as 1 (sklearn gives NaN)."""
    a = np.full((3, 3), 4)
    r = compare_classes(a, a)
    assert r.agreement == 1.0 and r.kappa == 1.0
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore")
        assert np.isnan(cohen_kappa_score(a.ravel(), a.ravel()))


def test_known_two_by_two_confusion():
    """[[20, 5], [10, 15]]: p_o = 35/50 = 0.7; rows 25, 25, columns 30, 20, so
    p_e = (25*30 + 25*20) / 50² = 0.5 and kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4."""
    a = np.array([1] * 25 + [2] * 25).reshape(5, 10)
    b = np.array([1] * 20 + [2] * 5 + [1] * 10 + [2] * 15).reshape(5, 10)
    r = compare_classes(a, b)
    assert r.confusion.to_numpy().tolist() == [[20, 5], [10, 15]]
    assert r.confusion.index.name == "reference" and r.confusion.columns.name == "classified"
    assert r.confusion.index.tolist() == [1, 2] and r.confusion.columns.tolist() == [1, 2]
    assert r.agreement == pytest.approx(0.7)
    assert r.kappa == pytest.approx(0.4)
    assert r.n_cells == 50
    pc = r.per_class
    assert pc.loc[1, "producers_accuracy"] == pytest.approx(20 / 25)
    assert pc.loc[1, "users_accuracy"] == pytest.approx(20 / 30)
    assert pc.loc[2, "producers_accuracy"] == pytest.approx(15 / 25)
    assert pc.loc[2, "users_accuracy"] == pytest.approx(15 / 20)
    assert pc["reference_cells"].tolist() == [25, 25]
    assert pc["classified_cells"].tolist() == [30, 20]


def test_nodata_cells_are_left_out():
    a = np.array([[1, 2, 255], [3, 255, 0]], dtype=np.uint8)
    b = np.array([[1, 2, 3], [3, 1, 255]], dtype=np.uint8)
    r = compare_classes(a, b)
    assert r.n_cells == 3 and r.agreement == 1.0
    assert 255 not in r.confusion.index and 255 not in r.confusion.columns
    assert r.confusion.index.tolist() == [1, 2, 3]


def test_nan_and_custom_nodata_are_left_out():
    a = np.array([[1.0, np.nan, 2.0], [2.0, 9.0, 1.0]])
    b = np.array([[1, 1, 2], [1, 9, 9]])
    r = compare_classes(a, b, nodata=(9,))
    assert r.n_cells == 3
    assert r.confusion.to_numpy().tolist() == [[1, 0], [1, 1]]


def test_dataarray_rio_nodata_is_left_out():
    g = km_grid(1, 3)
    a = g.to_dataarray(np.array([[1, 2, 3]], dtype=np.int16), nodata=3)
    b = g.to_dataarray(np.array([[1, 2, 1]], dtype=np.int16))
    r = compare_classes(a, b)
    assert r.n_cells == 2 and r.agreement == 1.0


def test_classes_restrict_and_order():
    a = np.array([1, 2, 3, 3, 1, 2]).reshape(2, 3)
    b = np.array([1, 3, 3, 1, 1, 2]).reshape(2, 3)
    r = compare_classes(a, b, classes=[3, 1, 6])
    # cells with class 2 on either side are out; 6 is listed but absent
    assert r.confusion.index.tolist() == [3, 1, 6] and r.confusion.columns.tolist() == [3, 1, 6]
    assert r.confusion.to_numpy().tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert r.n_cells == 4 and r.agreement == 0.75
    assert np.isnan(r.per_class.loc[6, "producers_accuracy"])


def test_to_dict_is_json():
    a = np.array([[1, 1], [2, 3]])
    b = np.array([[1, 2], [2, 2]])
    d = compare_classes(a, b).to_dict()
    text = json.dumps(d, allow_nan=False)  # NaN accuracies become null
    back = json.loads(text)
    assert back["n_cells"] == 4 and back["agreement"] == 0.5
    assert back["classes"] == [1, 2, 3]
    assert back["confusion"]["1"] == {"1": 1, "2": 1, "3": 0}
    assert back["per_class"]["3"]["users_accuracy"] is None  # nothing classified as 3
    assert back["per_class"]["3"]["producers_accuracy"] == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_kappa_and_confusion_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 8, size=(30, 40)).astype(np.uint8)
    b = np.where(rng.random(a.shape) < 0.6, a, rng.integers(0, 8, size=a.shape)).astype(np.uint8)
    a[rng.random(a.shape) < 0.1] = 255
    b[rng.random(a.shape) < 0.1] = 255
    ok = (a != 255) & (b != 255)
    r = compare_classes(a, b)
    assert r.kappa == pytest.approx(cohen_kappa_score(a[ok], b[ok]), abs=1e-12)
    labels = r.confusion.index.tolist()
    expected = confusion_matrix(a[ok], b[ok], labels=labels)
    assert (r.confusion.to_numpy() == expected).all()
    assert r.agreement == pytest.approx((a[ok] == b[ok]).mean())
    assert r.n_cells == int(ok.sum())


def test_dataarray_grid_mismatch_is_refused():
    g = km_grid(2, 2)
    values = np.ones((2, 2), dtype=np.uint8)
    a = g.to_dataarray(values)
    shifted = km_grid(2, 2, x0=500).to_dataarray(values)
    with pytest.raises(InputError, match="transform") as err:
        compare_classes(a, shifted)
    assert "[classified]" in one_line(err)
    other_crs = km_grid(2, 2, crs="EPSG:3006").to_dataarray(values)
    with pytest.raises(InputError, match="EPSG:3006.*EPSG:3035"):
        compare_classes(a, other_crs)
    with pytest.raises(InputError, match=r"shape \(2, 3\)"):
        compare_classes(a, km_grid(2, 3).to_dataarray(np.ones((2, 3))))
    # a DataArray and a plain array: only the shape must agree
    assert compare_classes(a, values).agreement == 1.0


def test_numpy_shape_mismatch_and_bad_values():
    with pytest.raises(InputError, match="shape"):
        compare_classes(np.ones((2, 2)), np.ones((3, 2)))
    with pytest.raises(InputError, match="2-D"):
        compare_classes(np.ones(4), np.ones(4))
    with pytest.raises(InputError, match="not class codes, e.g. 1.5"):
        compare_classes(np.array([[1.5, 1.0]]), np.array([[1, 1]]))
    with pytest.raises(InputError, match="no cell has a class"):
        compare_classes(np.full((2, 2), 255), np.ones((2, 2)))


# --------------------------------------------------------------------------------------
# reference_on_grid: rasters
# --------------------------------------------------------------------------------------


def brute_force(
    ref_values: np.ndarray, ref: GridSpec, grid: GridSpec, nodata: int = 255
) -> np.ndarray:
    """The documented rules, one cell at a time (slow twin)."""
    out = np.full(grid.shape, 255, dtype=np.uint8)
    rc, gc = ref.coords(), grid.coords()
    left, top, size = grid.transform.c, grid.transform.f, grid.cell_size_m
    if grid.cell_size_m > ref.cell_size_m:
        votes: dict[tuple[int, int], list[int]] = {}
        for i, y in enumerate(rc["y"]):
            for j, x in enumerate(rc["x"]):
                v = int(ref_values[i, j])
                row, col = int(np.floor((top - y) / size)), int(np.floor((x - left) / size))
                if v != nodata and 0 <= row < grid.shape[0] and 0 <= col < grid.shape[1]:
                    votes.setdefault((row, col), []).append(v)
        for (row, col), vs in votes.items():
            counts = np.bincount(vs)
            out[row, col] = int(np.argmax(counts))
        return out
    for i, y in enumerate(gc["y"]):
        for j, x in enumerate(gc["x"]):
            row = int(np.floor((ref.transform.f - y) / ref.cell_size_m))
            col = int(np.floor((x - ref.transform.c) / ref.cell_size_m))
            if 0 <= row < ref.shape[0] and 0 <= col < ref.shape[1]:
                out[i, j] = ref_values[row, col]
    return out


def fine_blocks() -> np.ndarray:
    """20 x 20 cells of 100 m over a 2 x 2 grid of 1 km with known majorities."""
    v = np.full((20, 20), 255, dtype=np.uint8)
    tl = np.full(100, 1, dtype=np.uint8)
    tl[:60] = 3  # 60 x 3, 40 x 1 -> 3
    v[:10, :10] = tl.reshape(10, 10)
    tr = np.full(100, 5, dtype=np.uint8)
    tr[:50] = 2  # a 50/50 tie of 2 and 5 -> 2 (the smallest)
    v[:10, 10:] = tr.reshape(10, 10)
    v[15, 5] = 4  # one class among no-data -> 4
    return v  # bottom-right: no-data only -> 255


def test_mode_of_100m_raster_on_1km_grid(tmp_path):
    fine = GridSpec(CRS, Affine(100, 0, 0, 0, -100, 2000), (20, 20))
    path = write_tif(
        tmp_path / "ref.tif", fine_blocks(), crs=CRS, transform=fine.transform, nodata=255
    )
    out = reference_on_grid(path, km_grid())
    assert out.dtype == np.uint8
    assert out.tolist() == [[3, 2], [4, REFERENCE_NODATA]]
    # the same from a DataArray (no-data as rio.nodata), and from a str path
    da = fine.to_dataarray(fine_blocks(), nodata=255)
    assert reference_on_grid(da, km_grid()).tolist() == [[3, 2], [4, 255]]
    assert reference_on_grid(str(path), km_grid()).tolist() == [[3, 2], [4, 255]]


def test_nodata_argument_and_band_dimension():
    fine = GridSpec(CRS, Affine(100, 0, 0, 0, -100, 2000), (20, 20))
    v = fine_blocks()
    da = fine.to_dataarray(v).expand_dims(band=[1])  # no rio.nodata declared
    with pytest.raises(InputError, match="outside 0..7: 255"):
        reference_on_grid(da, km_grid())
    assert reference_on_grid(da, km_grid(), nodata=255).tolist() == [[3, 2], [4, 255]]
    # a class passed as nodata drops out of the vote: block (0, 0) keeps only its 1s
    v3 = v.copy()
    v3[v3 == 255] = 0
    out = reference_on_grid(fine.to_dataarray(v3), km_grid(), nodata=3)
    assert out[0, 0] == 1


@pytest.mark.parametrize(
    "ref_size, ref_x0, ref_y0, size, x0, y0",
    [
        (100, 0, 2000, 1000, 0, 2000),  # aligned, ratio 10
        (100, -30, 2070, 1000, 0, 2000),  # offset origin
        (300, 50, 2150, 1000, 0, 2000),  # non-integer ratio
        (900, 0, 2700, 1000, 0, 2000),  # ratio just above 1
        (1000, 0, 2000, 250, 0, 2000),  # finer target, aligned
        (1000, -120, 2300, 300, 40, 1900),  # finer target, offsets
        (1000, 300, 1700, 1000, 0, 2000),  # equal size, shifted
        (500, 0, 2000, 500, 0, 2000),  # identical grids
    ],
)
def test_raster_rules_equal_brute_force(ref_size, ref_x0, ref_y0, size, x0, y0):
    rng = np.random.default_rng(ref_size + size)
    ref = GridSpec(CRS, Affine(ref_size, 0, ref_x0, 0, -ref_size, ref_y0), (9, 11))
    values = rng.integers(0, 8, size=ref.shape).astype(np.uint8)
    values[rng.random(ref.shape) < 0.15] = 255
    grid = GridSpec(CRS, Affine(size, 0, x0, 0, -size, y0), (7, 8))
    got = reference_on_grid(ref.to_dataarray(values, nodata=255), grid)
    assert (got == brute_force(values, ref, grid)).all()


def test_finer_target_takes_the_class_at_its_centre():
    coarse = GridSpec(CRS, Affine(1000, 0, 0, 0, -1000, 2000), (2, 2))
    da = coarse.to_dataarray(np.array([[1, 2], [3, 255]], dtype=np.uint8), nodata=255)
    fine = GridSpec(CRS, Affine(500, 0, -500, 0, -500, 2000), (4, 5))  # one column west
    out = reference_on_grid(da, fine)
    assert out.tolist() == [
        [255, 1, 1, 2, 2],
        [255, 1, 1, 2, 2],
        [255, 3, 3, 255, 255],
        [255, 3, 3, 255, 255],
    ]


def test_partial_overlap_leaves_255():
    ref = GridSpec(CRS, Affine(1000, 0, 1000, 0, -1000, 2000), (2, 1))
    da = ref.to_dataarray(np.array([[6], [7]], dtype=np.uint8))
    assert reference_on_grid(da, km_grid(2, 3)).tolist() == [[255, 6, 255], [255, 7, 255]]


# --------------------------------------------------------------------------------------
# reference_on_grid: points
# --------------------------------------------------------------------------------------


def nordregio_points(crs: str | None = CRS) -> gpd.GeoDataFrame:
    """One point per 1 km cell, two in the upper-left cell, one outside the grid."""
    return gpd.GeoDataFrame(
        {"typ": [5, 5, 2, 3, 7, 1, None], "name": list("abcdefg")},
        geometry=[
            Point(500, 1500),
            Point(100, 1900),
            Point(1500, 1500),
            Point(500, 500),
            Point(1500, 500),
            Point(9500, 500),
            Point(1500, 600),
        ],
        crs=crs,
    )


def test_points_with_class_column(tmp_path):
    out = reference_on_grid(nordregio_points(), km_grid(), class_column="typ")
    assert out.tolist() == [[5, 2], [3, 7]]  # the point outside and the NaN class ignored
    path = tmp_path / "nordregio.gpkg"
    nordregio_points().to_file(path, layer="types")
    assert reference_on_grid(path, km_grid(), class_column="typ").tolist() == [[5, 2], [3, 7]]
    assert reference_on_grid(path, km_grid(), class_column="typ", layer="types").tolist() == [
        [5, 2],
        [3, 7],
    ]


def test_two_points_in_one_cell_tie_and_nodata():
    pts = gpd.GeoDataFrame(
        {"typ": [4, 2, 9]}, geometry=[Point(100, 100), Point(900, 900), Point(500, 500)], crs=CRS
    )
    out = reference_on_grid(pts, km_grid(1, 1), class_column="typ", nodata=9)
    assert out.tolist() == [[2]]  # tie of 4 and 2 -> 2; the 9 is no-data


def test_point_on_an_edge_goes_right_and_down():
    pts = gpd.GeoDataFrame({"typ": [6]}, geometry=[Point(1000, 1000)], crs=CRS)
    out = reference_on_grid(pts, km_grid(), class_column="typ")
    assert out.tolist() == [[255, 255], [255, 6]]


def test_agreement_against_a_reference_on_grid():
    reference = reference_on_grid(nordregio_points(), km_grid(), class_column="typ")
    classified = km_grid().to_dataarray(np.array([[5, 2], [3, 6]], dtype=np.uint8))
    r = compare_classes(reference, classified)
    assert r.n_cells == 4 and r.agreement == 0.75


# --------------------------------------------------------------------------------------
# reference_on_grid: bad inputs, one line naming the file and the layer
# --------------------------------------------------------------------------------------


def assert_names(err: pytest.ExceptionInfo, path: Path | str) -> str:
    text = one_line(err)
    assert f"{path} [reference]" in text
    return text


def test_raster_in_another_crs(tmp_path):
    path = write_tif(tmp_path / "sweref.tif", np.ones((3, 3), np.uint8), crs="EPSG:3006")
    with pytest.raises(InputError) as err:
        reference_on_grid(path, km_grid())
    text = assert_names(err, path)
    assert "EPSG:3006" in text and "EPSG:3035" in text and "gdalwarp -t_srs EPSG:3035" in text


def test_points_in_another_crs(tmp_path):
    path = tmp_path / "points.gpkg"
    nordregio_points("EPSG:3006").to_file(path)
    with pytest.raises(InputError) as err:
        reference_on_grid(path, km_grid(), class_column="typ")
    text = assert_names(err, path)
    assert "EPSG:3006" in text and "to_crs('EPSG:3035')" in text


def test_raster_classes_outside_range(tmp_path):
    v = np.array([[1, 9], [12, 0]], dtype=np.uint8)
    path = write_tif(tmp_path / "codes.tif", v, crs=CRS)
    with pytest.raises(InputError) as err:
        reference_on_grid(path, km_grid())
    assert "outside 0..7: 9, 12" in assert_names(err, path)


def test_points_classes_outside_range(tmp_path):
    path = tmp_path / "codes.gpkg"
    pts = nordregio_points()
    pts.loc[0, "typ"] = 11
    pts.to_file(path)
    with pytest.raises(InputError) as err:
        reference_on_grid(path, km_grid(), class_column="typ")
    assert "outside 0..7: 11" in assert_names(err, path)
    pts["typ"] = "x"
    pts.to_file(tmp_path / "text.gpkg")
    with pytest.raises(InputError, match="not class codes, e.g. 'x'"):
        reference_on_grid(tmp_path / "text.gpkg", km_grid(), class_column="typ")


def test_no_overlap(tmp_path):
    far = Affine(1000, 0, 50_000, 0, -1000, 60_000)
    path = write_tif(tmp_path / "far.tif", np.ones((3, 3), np.uint8), crs=CRS, transform=far)
    with pytest.raises(InputError) as err:
        reference_on_grid(path, km_grid())
    assert "does not overlap the grid" in assert_names(err, path)
    pts_path = tmp_path / "far.gpkg"
    gpd.GeoDataFrame({"typ": [1]}, geometry=[Point(90_000, 90_000)], crs=CRS).to_file(pts_path)
    with pytest.raises(InputError) as err:
        reference_on_grid(pts_path, km_grid(), class_column="typ")
    assert "no point with a class inside the grid" in assert_names(err, pts_path)


def test_only_nodata_over_the_grid(tmp_path):
    path = write_tif(tmp_path / "empty.tif", np.full((2, 2), 255, np.uint8), crs=CRS, nodata=255)
    with pytest.raises(InputError) as err:
        reference_on_grid(path, km_grid())
    assert "no class in any cell" in assert_names(err, path)


def test_missing_class_column_lists_columns(tmp_path):
    path = tmp_path / "points.gpkg"
    nordregio_points().to_file(path)
    with pytest.raises(InputError) as err:
        reference_on_grid(path, km_grid(), class_column="klass")
    text = assert_names(err, path)
    assert "no column 'klass'" in text and "typ, name" in text
    with pytest.raises(InputError) as err:
        reference_on_grid(path, km_grid())  # points need a class column
    assert "pass class_column" in assert_names(err, path)


def test_class_column_with_a_raster(tmp_path):
    path = write_tif(tmp_path / "ref.tif", np.ones((2, 2), np.uint8), crs=CRS)
    with pytest.raises(InputError) as err:
        reference_on_grid(path, km_grid(), class_column="typ")
    assert "point layers only" in assert_names(err, path)


def test_no_crs(tmp_path):
    path = write_tif(tmp_path / "nocrs.tif", np.ones((2, 2), np.uint8), crs=None)
    with pytest.raises(InputError) as err:
        reference_on_grid(path, km_grid())
    assert "has no CRS" in assert_names(err, path)
    with pytest.raises(InputError, match="has no CRS") as err:
        reference_on_grid(nordregio_points(crs=None), km_grid(), class_column="typ")
    assert "[reference]" in one_line(err)
    da = xr.DataArray(np.ones((2, 2), np.uint8), dims=("y", "x"), coords=km_grid().coords())
    with pytest.raises(InputError, match="has no CRS"):
        reference_on_grid(da, km_grid())


def test_missing_and_unreadable_files(tmp_path):
    missing = tmp_path / "missing.tif"
    with pytest.raises(InputError) as err:
        reference_on_grid(missing, km_grid())
    assert "file not found" in assert_names(err, missing)
    garbage = tmp_path / "garbage.tif"
    garbage.write_text("not a raster")
    with pytest.raises(InputError) as err:
        reference_on_grid(garbage, km_grid())
    assert "cannot be read as a raster" in assert_names(err, garbage)
    bad_gpkg = tmp_path / "garbage.gpkg"
    bad_gpkg.write_text("not a GeoPackage")
    with pytest.raises(InputError) as err:
        reference_on_grid(bad_gpkg, km_grid(), class_column="typ")
    assert "cannot be read as a vector layer" in assert_names(err, bad_gpkg)
    missing_pts = tmp_path / "missing.gpkg"
    with pytest.raises(InputError) as err:
        reference_on_grid(missing_pts, km_grid(), class_column="typ")
    assert "file not found" in assert_names(err, missing_pts)


def test_polygons_and_wrong_types_are_refused(tmp_path):
    path = tmp_path / "cells.gpkg"
    gpd.GeoDataFrame({"typ": [1]}, geometry=[box(0, 0, 1000, 1000)], crs=CRS).to_file(path)
    with pytest.raises(InputError) as err:
        reference_on_grid(path, km_grid(), class_column="typ")
    assert "Polygon" in assert_names(err, path)
    with pytest.raises(InputError, match="expected a raster or vector file path"):
        reference_on_grid(np.ones((2, 2)), km_grid())
    with pytest.raises(TypeError, match="GridSpec"):
        reference_on_grid(nordregio_points(), (2, 2), class_column="typ")
