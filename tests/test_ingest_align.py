"""Ingest (open rasters/units), the grid object and alignment to the population grid."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from helpers import assert_grid_contract, write_tif

from pari_geo.align import align_to_grid
from pari_geo.errors import InputError
from pari_geo.grid import GridSpec
from pari_geo.ingest import check_share, open_raster, open_units


def test_open_raster_reads_values_crs_and_nodata(belgium):
    pop = open_raster(belgium["population"], "population")
    assert pop.shape == (219, 303)
    assert str(pop.rio.crs) == "ESRI:54009"
    assert int(np.isnan(pop.values).sum()) == 1910  # documented in ATTRIBUTION.md
    land = open_raster(belgium["land"], "land")
    assert land.dtype == np.float64 and float(land.max()) == 1_000_000


def test_gridspec_from_population(belgium):
    g = GridSpec.from_dataarray(open_raster(belgium["population"]))
    assert g.shape == (219, 303)
    assert g.cell_size_m == 1000 and g.cell_area_km2 == 1.0
    assert g.bounds == (187000.0, 5816000.0, 490000.0, 6035000.0)


@pytest.mark.parametrize("content", [b"", b"this is not a raster at all" * 10])
def test_unreadable_files_name_file_and_layer(tmp_path, content):
    f = tmp_path / "pop.tif"
    f.write_bytes(content)
    with pytest.raises(InputError) as err:
        open_raster(f, "population")
    assert str(f) in str(err.value) and "[population]" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        open_raster(tmp_path / "nope.tif", "built")


def test_no_crs_and_rotated_and_non_square(tmp_path):
    a = np.ones((3, 3), np.float32)
    with pytest.raises(InputError, match="no CRS"):
        open_raster(write_tif(tmp_path / "a.tif", a, crs=None), "population")
    rot = Affine(1000, 10, 0, 10, -1000, 3000)
    with pytest.raises(InputError, match="rotated"):
        open_raster(write_tif(tmp_path / "b.tif", a, transform=rot), "population")
    rect = Affine(1000, 0, 0, 0, -500, 3000)
    with pytest.raises(InputError, match="non-square"):
        open_raster(write_tif(tmp_path / "c.tif", a, transform=rect), "population")


def test_geographic_crs_is_refused_with_a_projected_suggestion(tmp_path):
    a = np.ones((3, 3), np.float32)
    f = write_tif(
        tmp_path / "g.tif", a, crs="EPSG:4326", transform=Affine(0.01, 0, 4.0, 0, -0.01, 51.0)
    )
    with pytest.raises(InputError, match="geographic CRS.*EPSG:3035"):
        GridSpec.from_dataarray(open_raster(f, "population"), layer="population")


def test_share_and_m2_units_are_checked():
    check_share(np.array([0.0, 0.5, 1.0]), "x.tif", "built", "share", 1e6)
    with pytest.raises(InputError, match="outside 0..1"):
        check_share(np.array([0.0, 1.5]), "x.tif", "built", "share", 1e6)
    with pytest.raises(InputError, match="more than the cell area"):
        check_share(np.array([2e6]), "x.tif", "land", "m2", 1e6)
    with pytest.raises(InputError, match="looks like a share"):
        check_share(np.array([0.2, 1.0]), "x.tif", "land", "m2", 1e6)
    with pytest.raises(InputError, match="negative"):
        check_share(np.array([-1.0]), "x.tif", "land", "m2", 1e6)


def _grid(size, shape, x0=0.0, y0=None, crs="EPSG:3035"):
    y0 = shape[0] * size if y0 is None else y0
    return GridSpec(crs, Affine(size, 0, x0, 0, -size, y0), shape)


def test_align_same_grid_passes_through():
    g = _grid(1000, (3, 4))
    da = g.to_dataarray(np.arange(12.0).reshape(3, 4))
    out = align_to_grid(da, g, "count")
    assert_grid_contract(out, da)
    np.testing.assert_array_equal(out.values, da.values)


def test_align_integer_aggregation_is_exactly_sum_preserving():
    fine = _grid(100, (20, 30))
    rng = np.random.default_rng(1)
    vals = rng.random((20, 30)) * 50
    vals[3, 4] = np.nan
    coarse = _grid(1000, (2, 3))
    out = align_to_grid(fine.to_dataarray(vals), coarse, "count")
    assert np.isclose(np.nansum(out.values), np.nansum(vals), rtol=0, atol=1e-9)
    # each coarse cell is the sum of its 10 x 10 block
    assert np.isclose(out.values[1, 2], np.nansum(vals[10:20, 20:30]))
    shares = align_to_grid(
        fine.to_dataarray(np.where(np.isnan(vals), np.nan, 0.25)), coarse, "share"
    )
    np.testing.assert_allclose(shares.values, 0.25)


def test_align_crops_and_pads_offset_grids():
    src = _grid(1000, (3, 3), x0=1000, y0=3000)  # covers x 1000..4000, y 0..3000
    dst = _grid(1000, (3, 3), x0=0, y0=3000)  # covers x 0..3000
    out = align_to_grid(src.to_dataarray(np.arange(9.0).reshape(3, 3)), dst, "count")
    expected = np.array([[np.nan, 0, 1], [np.nan, 3, 4], [np.nan, 6, 7]])
    np.testing.assert_array_equal(out.values, expected)


def test_align_reprojection_preserves_population_total():
    src = _grid(100, (60, 60), x0=4_000_000, y0=3_000_000)
    vals = np.random.default_rng(2).random((60, 60)) * 10
    # target: a 1 km grid in another projected CRS covering the source entirely
    da = src.to_dataarray(vals)
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds("EPSG:3035", "ESRI:54009", *src.bounds)
    dst = GridSpec(
        "ESRI:54009",
        Affine(
            1000,
            0,
            np.floor(left / 1000) * 1000 - 2000,
            0,
            -1000,
            np.ceil(top / 1000) * 1000 + 2000,
        ),
        (int((top - bottom) // 1000) + 6, int((right - left) // 1000) + 6),
    )
    out = align_to_grid(da, dst, "count")
    assert np.isclose(np.nansum(out.values), vals.sum(), rtol=0.01)


def test_align_refuses_layers_that_do_not_overlap():
    src = _grid(1000, (3, 3), x0=1e6)
    dst = _grid(1000, (3, 3), x0=0)
    with pytest.raises(InputError, match="does not overlap"):
        align_to_grid(src.to_dataarray(np.ones((3, 3))), dst, "share", layer="land")


def test_align_class_layer_takes_the_mode():
    fine = _grid(100, (10, 10))
    vals = np.full((10, 10), 211.0)
    vals[:6, :] = 311.0
    out = align_to_grid(fine.to_dataarray(vals), _grid(1000, (1, 1)), "class")
    assert out.values[0, 0] == 311.0


def test_open_units_checks(belgium, tmp_path):
    units = open_units(belgium["units"], id_col="UID")
    assert len(units) == 581 and units.crs.to_string() == "ESRI:54009"
    with pytest.raises(InputError, match="no id column 'NOPE'"):
        open_units(belgium["units"], id_col="NOPE")
    dup = units.head(3).copy()
    dup["UID"] = [1, 1, 2]
    with pytest.raises(InputError, match="duplicate"):
        open_units(dup, id_col="UID")
    with pytest.raises(InputError, match="no features"):
        open_units(units.head(0), id_col="UID")
