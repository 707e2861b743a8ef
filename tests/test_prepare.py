"""``pari-geo prepare``: downloaded files → a run folder (issue 15), grid part.

Real data: the bundled Belgian GHSL grids and Statbel municipalities. The Belgian grid is a
bounding box reaching into the Netherlands, Germany and France (20.6 M residents); cropped
to the municipalities, the class totals equal the municipalities' residents.
"""

from __future__ import annotations

import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from helpers import write_tif

from pari_geo.cli import main
from pari_geo.errors import ConfigError, InputError, OutputError
from pari_geo.grid import GridSpec
from pari_geo.preparation import prepare
from pari_geo.preparation.rasters import warp_tiles

#: residents of the 581 municipalities on the GHSL 1 km grid (cells by their centre)
BELGIUM_RESIDENTS = 11_554_943


def _belgium_cfg(belgium, out, **grid):
    return {
        "region": {"path": str(belgium["units"]), "id": "UID"},
        "grid": grid,
        "ghsl": {"population": str(belgium["population"]), "built": str(belgium["built"]),
                 "land": str(belgium["land"])},
        "outputs": {"dir": str(out)},
    }


@pytest.fixture(scope="module")
def belgium_prepared(belgium, tmp_path_factory):
    out = tmp_path_factory.mktemp("prep") / "belgium"
    return prepare(_belgium_cfg(belgium, out))


def test_belgium_class_totals_equal_municipalities_residents(belgium_prepared):
    from pari_geo.pipeline import run_classification
    from pari_geo.runconfig import load_run

    res = run_classification(load_run(belgium_prepared["run_file"]), progress=False)
    class_total = res["table"]["population"].sum()
    by_unit = pd.read_csv(res["out_dir"] / "degurba_l2_by_unit.csv")
    assert class_total == pytest.approx(by_unit["residents"].sum(), rel=1e-9)
    assert round(class_total) == BELGIUM_RESIDENTS  # not the box's 20.6 M
    assert belgium_prepared["population_total"] == pytest.approx(class_total, rel=1e-9)


def test_belgium_keeps_the_ghsl_grid_and_blanks_the_outside(belgium_prepared, belgium):
    out = belgium_prepared["out_dir"]
    with rasterio.open(out / "population.tif") as s, rasterio.open(belgium["population"]) as o:
        assert s.crs == o.crs  # Mollweide is equal-area: kept, no resampling
        pop = s.read(1)
        assert (s.transform.c - o.transform.c) % 1000 == 0
        col, row = ~o.transform * (s.transform.c, s.transform.f)
        orig = o.read(1)[int(row): int(row) + s.height, int(col): int(col) + s.width]
    inside = np.isfinite(pop)
    assert inside.sum() == belgium_prepared["region_cells"]
    np.testing.assert_array_equal(pop[inside], orig[inside])  # exact copy inside
    assert np.isfinite(orig[~inside]).any()  # the neighbours' residents are gone


def test_prepared_run_file_names_every_layer(belgium_prepared):
    from pari_geo.runconfig import load_run

    cfg = load_run(belgium_prepared["run_file"])
    assert set(cfg.inputs) == {"population", "built", "land", "units"}
    assert cfg.inputs["built"].unit == "m2" and cfg.inputs["units"].id == "UID"
    assert (belgium_prepared["out_dir"] / "prepare.json").is_file()


def test_prepared_geopackages_carry_no_clock_time(belgium_prepared):
    """The same inputs give the same bytes: gpkg_contents.last_change is the fixed date."""
    import sqlite3

    from pari_geo.io_write import GPKG_FIXED_DATE

    with sqlite3.connect(belgium_prepared["out_dir"] / "units.gpkg") as con:
        dates = {r[0] for r in con.execute("select last_change from gpkg_contents")}
    assert dates == {GPKG_FIXED_DATE}


def test_reprojected_to_laea_preserves_the_region_total(belgium, tmp_path):
    res = prepare(_belgium_cfg(belgium, tmp_path / "laea", crs="EPSG:3035"))
    assert res["grid"].crs.to_epsg() == 3035
    # other cells on the border, so not identical, but the same residents within 0.05 %
    assert res["population_total"] == pytest.approx(BELGIUM_RESIDENTS, rel=5e-4)
    with rasterio.open(tmp_path / "laea" / "land.tif") as s:
        assert np.nanmax(s.read(1)) <= 1e6


def _random_counts(tmp_path, name="fine.tif", shape=(60, 80), origin=(300000, 6000000)):
    rng = np.random.default_rng(0)
    vals = rng.gamma(0.6, 40, shape)
    t = Affine(100, 0, origin[0], 0, -100, origin[1])
    return write_tif(tmp_path / name, vals, transform=t), vals, t


def _laea_grid_around(t, shape):
    from rasterio.warp import transform_bounds

    b = transform_bounds("ESRI:54009", "EPSG:3035", t.c, t.f - 100 * shape[0],
                         t.c + 100 * shape[1], t.f)
    x0, y1 = np.floor(b[0] / 1000) * 1000 - 3000, np.ceil(b[3] / 1000) * 1000 + 3000
    return GridSpec("EPSG:3035", Affine(1000, 0, x0, 0, -1000, y1), (16, 18))


def test_sum_resampling_preserves_totals_across_crs(tmp_path):
    path, vals, t = _random_counts(tmp_path)
    grid = _laea_grid_around(t, vals.shape)  # the whole tile lands inside
    out = warp_tiles([path], grid, np.ones(grid.shape, bool), layer="population")
    assert np.isnan(out[0, 0]) and np.isnan(out[-1, -1])
    assert np.nansum(out) == pytest.approx(vals.sum(), rel=1e-4)


def test_aligned_grids_aggregate_exactly(tmp_path):
    path, vals, t = _random_counts(tmp_path)
    grid = GridSpec("ESRI:54009", Affine(1000, 0, t.c, 0, -1000, t.f), (6, 8))
    out = warp_tiles([path], grid, np.ones(grid.shape, bool), layer="population")
    expect = vals.reshape(6, 10, 8, 10).sum(axis=(1, 3))
    np.testing.assert_allclose(out, expect, rtol=1e-12)


def _tiles(tmp_path, vals, t, names):
    """Split a raster into a 2 x 2 mosaic of files."""
    h, w = vals.shape
    paths = []
    for k, (r, c) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        sub = vals[r * h // 2:(r + 1) * h // 2, c * w // 2:(c + 1) * w // 2]
        st = t @ Affine.translation(c * w // 2, r * h // 2)
        paths.append(write_tif(tmp_path / names[k], sub, transform=st))
    return paths


def test_several_tiles_form_one_mosaic(tmp_path):
    path, vals, t = _random_counts(tmp_path)
    tiles = _tiles(tmp_path, vals, t, [f"t{k}.tif" for k in range(4)])
    grid = _laea_grid_around(t, vals.shape)
    one = warp_tiles([path], grid, np.ones(grid.shape, bool), layer="population")
    mosaic = warp_tiles(tiles, grid, np.ones(grid.shape, bool), layer="population")
    np.testing.assert_allclose(mosaic, one, rtol=1e-9, equal_nan=True)


def _region_file(tmp_path, geom, crs="ESRI:54009", name="region.gpkg"):
    import geopandas as gpd

    p = tmp_path / name
    gpd.GeoDataFrame({"id": [1]}, geometry=[geom], crs=crs).to_file(p)
    return p


def test_tile_missing_part_of_the_region_is_named(tmp_path):
    from shapely.geometry import box

    path, vals, t = _random_counts(tmp_path)
    tiles = _tiles(tmp_path, vals, t, [f"t{k}.tif" for k in range(4)])
    region = _region_file(tmp_path, box(t.c + 500, t.f - 5500, t.c + 7500, t.f - 500))
    cfg = {"region": {"path": str(region)}, "grid": {"cell_size_m": 1000},
           "ghsl": {"population": [str(tiles[0]), str(tiles[2])]},  # the west half only
           "run": {"typology": "nordic7"}, "outputs": {"dir": str(tmp_path / "run")}}
    with pytest.raises(InputError, match=r"do not cover the east part of the region") as e:
        prepare(cfg)
    assert "t0.tif" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "run").exists()


def test_mixed_ghsl_epochs_warn(tmp_path):
    from shapely.geometry import box

    path, vals, t = _random_counts(tmp_path)
    names = [f"GHS_POP_E{e}_GLOBE_R2023A_54009_100_V1_0_R{r}_C{c}.tif"
             for e, r, c in ((2020, 1, 1), (2020, 1, 2), (2015, 2, 1), (2020, 2, 2))]
    tiles = _tiles(tmp_path, vals, t, names)
    region = _region_file(tmp_path, box(t.c + 500, t.f - 5500, t.c + 7500, t.f - 500))
    cfg = {"region": {"path": str(region)}, "ghsl": {"population": [str(p) for p in tiles]},
           "run": {"typology": "nordic7"}, "outputs": {"dir": str(tmp_path / "run")}}
    with pytest.warns(UserWarning, match=r"E2015.*mixes GHSL epochs 2015, 2020"):
        prepare(cfg)


def test_region_in_degrees_is_reprojected_with_a_warning(tmp_path):
    from shapely.geometry import box

    path, vals, t = _random_counts(tmp_path)
    # 54009 box -> lon/lat region
    import geopandas as gpd

    geo = gpd.GeoSeries([box(t.c + 500, t.f - 5500, t.c + 7500, t.f - 500)],
                        crs="ESRI:54009").to_crs("EPSG:4326")
    region = _region_file(tmp_path, geo.iloc[0], crs="EPSG:4326")
    cfg = {"region": {"path": str(region)}, "ghsl": {"population": str(path)},
           "run": {"typology": "nordic7"}, "outputs": {"dir": str(tmp_path / "run")}}
    msg = r"region.gpkg \[region\]: is in a geographic \(degrees\) CRS"
    with pytest.warns(UserWarning, match=msg):
        res = prepare(cfg)
    assert res["grid"].crs.to_epsg() == 3035


@pytest.mark.parametrize("crs,match", [("EPSG:4326", "geographic"),
                                       ("EPSG:3857", "Mercator"), ("EPSG:99999", "not a CRS")])
def test_unusable_target_crs_is_refused(belgium, tmp_path, crs, match):
    with pytest.raises(ConfigError, match=rf"key 'grid.crs': .*{match}"):
        prepare(_belgium_cfg(belgium, tmp_path / "x", crs=crs))


def test_cell_size_out_of_range_is_refused(belgium, tmp_path):
    with pytest.raises(ConfigError, match=r"grid.cell_size_m.*100..5000"):
        prepare(_belgium_cfg(belgium, tmp_path / "x", cell_size_m=20))


def test_never_replaces_a_folder_prepare_did_not_write(belgium, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(OutputError, match="not written by pari-geo prepare"):
        prepare(_belgium_cfg(belgium, tmp_path / "mine"), overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_vsizip_paths_are_read(belgium, tmp_path):
    z = tmp_path / "ghsl.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for k in ("population", "built", "land"):
            zf.write(belgium[k], arcname=f"tiles/{belgium[k].name}")
    cfg = _belgium_cfg(belgium, tmp_path / "run")
    cfg["ghsl"] = {k: f"/vsizip/{z}/tiles/{belgium[k].name}" for k in ("population", "built",
                                                                     "land")}
    res = prepare(cfg)
    assert round(res["population_total"]) == BELGIUM_RESIDENTS
    from pari_geo.ingest import open_raster

    assert open_raster(f"/vsizip/{z}/tiles/POP.tif", "population").shape == (219, 303)
    with pytest.raises(InputError, match=r"/vsizip/.*NOPE.tif \[population\]: cannot be read"):
        open_raster(f"/vsizip/{z}/tiles/NOPE.tif", "population")


def test_remote_paths_are_kept_for_gdal(tmp_path):
    from pari_geo.ingest import gdal_path
    from pari_geo.runconfig import load_run

    (tmp_path / "run.toml").write_text(
        '[inputs]\npopulation = "s3://bucket/GHS_POP.tif"\n'
        'built = "https://example.org/ghsl/BUILT_S.tif"\nland = "/vsizip/l.zip/LAND.tif"\n'
        '[typology]\nname = "degurba"\n[outputs]\ndir = "out"\n')
    cfg = load_run(tmp_path / "run.toml")
    assert cfg.inputs["population"].path == "s3://bucket/GHS_POP.tif"
    assert gdal_path(cfg.inputs["built"].path) == "/vsicurl/https://example.org/ghsl/BUILT_S.tif"
    # a relative archive is found beside the run file, as any relative path
    assert cfg.inputs["land"].path == f"/vsizip/{tmp_path}/l.zip/LAND.tif"


def test_cli_prepare_then_classify(belgium, tmp_path, capsys):
    toml = tmp_path / "PREPARE.toml"
    toml.write_text(
        f'[region]\npath = "{belgium["units"]}"\nid = "UID"\n'
        f'[ghsl]\npopulation = "{belgium["population"]}"\nbuilt = "{belgium["built"]}"\n'
        f'land = "{belgium["land"]}"\n[outputs]\ndir = "run"\n')
    assert main(["prepare", str(toml), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "30,646 in the region, 11,554,943 residents" in out
    assert main(["classify", str(tmp_path / "run" / "run.toml"), "--quiet"]) == 0
    assert "Urban centre" in capsys.readouterr().out


def test_cli_bad_input_is_one_line(belgium, tmp_path, capsys):
    toml = tmp_path / "PREPARE.toml"
    toml.write_text(f'[region]\npath = "{belgium["population"]}"\n'
                    f'[ghsl]\npopulation = "{belgium["population"]}"\n'
                    '[run]\ntypology = "nordic7"\n[outputs]\ndir = "run"\n')
    assert main(["prepare", str(toml), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "POP.tif [units]: cannot be read as a vector layer" in err


def test_unknown_key_is_named(tmp_path, capsys):
    toml = tmp_path / "PREPARE.toml"
    toml.write_text('[region]\npath = "r.gpkg"\n[ghsl]\npopulaton = "p.tif"\n'
                    '[outputs]\ndir = "run"\n')
    assert main(["prepare", str(toml)]) == 2
    assert "key 'ghsl.populaton': unknown key" in capsys.readouterr().err


def test_landcover_to_agricultural_share(tmp_path):
    from shapely.geometry import box

    path, vals, t = _random_counts(tmp_path)
    # CORINE level-3 codes at 100 m: west half arable (211), east half forest (311)
    lc = np.where(np.arange(80)[None, :] < 40, 211, 311).repeat(60, axis=0)
    lc_path = write_tif(tmp_path / "clc.tif", lc, transform=t, dtype="int16", nodata=-128)
    region = _region_file(tmp_path, box(t.c, t.f - 6000, t.c + 8000, t.f))
    cfg = {"region": {"path": str(region)}, "ghsl": {"population": str(path)},
           "landcover": {"path": str(lc_path), "mapping": "corine"},
           "run": {"typology": "nordic7"}, "outputs": {"dir": str(tmp_path / "run")}}
    res = prepare(cfg)
    with rasterio.open(res["out_dir"] / "agri_share.tif") as s:
        agri = s.read(1)
    np.testing.assert_allclose(agri[:, :4], 1.0)
    np.testing.assert_allclose(agri[:, 4:], 0.0)
    from pari_geo.runconfig import load_run

    assert load_run(res["run_file"]).inputs["agri"].path.name == "agri_share.tif"


def test_landcover_with_classes_outside_the_mapping_is_refused(tmp_path):
    from shapely.geometry import box

    path, vals, t = _random_counts(tmp_path)
    lc = np.full((60, 80), 40, np.int16)  # WorldCover cropland read with the CORINE table
    lc_path = write_tif(tmp_path / "wc.tif", lc, transform=t)
    region = _region_file(tmp_path, box(t.c, t.f - 6000, t.c + 8000, t.f))
    cfg = {"region": {"path": str(region)}, "ghsl": {"population": str(path)},
           "landcover": {"path": str(lc_path)}, "run": {"typology": "nordic7"},
           "outputs": {"dir": str(tmp_path / "run")}}
    with pytest.raises(InputError, match=r"wc.tif \[landcover\]: has classes missing from the "
                       r"mapping 'corine_agri': 40"):
        prepare(cfg)
    cfg["landcover"]["mapping"] = "worldcover"
    with rasterio.open(prepare(cfg)["out_dir"] / "agri_share.tif") as s:
        assert np.nanmin(s.read(1)) == 1.0


def test_own_mapping_with_bad_weights_is_refused(tmp_path):
    from pari_geo.preparation.landcover import load_mapping

    p = tmp_path / "m.toml"
    p.write_text("[classes]\n1 = 2\n")
    with pytest.raises(ConfigError, match=r"m.toml: key 'classes.1': weight must be in 0..1"):
        load_mapping(p)


def test_register_csv_to_actors(tmp_path):
    from pari_geo.preparation.actors import actors_from_register

    (tmp_path / "reg.csv").write_text(
        "id,x,y,nace,coop\n1,100,200,01.13,no\n2,150,250,94.99,no\n3,120,220,11.05,yes\n")
    (tmp_path / "codes.csv").write_text(
        "code,sector\n01.13,farm_shop\n94.99,association_ngo\n11.05,microbrewery\n")
    a = actors_from_register(tmp_path / "reg.csv", sector="nace", mapping=tmp_path / "codes.csv",
                             x="x", y="y", crs="EPSG:3006", id_col="id")
    assert a["sector"].tolist() == ["farm_shop", "association_ngo", "microbrewery"]
    assert a["social_economy"].tolist() == [False, True, False]
    assert a.crs.to_epsg() == 3006 and a.geometry.x.tolist() == [100, 150, 120]
    b = actors_from_register(tmp_path / "reg.csv", sector="nace", mapping=tmp_path / "codes.csv",
                             x="x", y="y", crs="EPSG:3006", social="coop")
    assert b["social_economy"].tolist() == [False, False, True]


def test_register_codes_missing_from_the_table_are_refused(tmp_path):
    from pari_geo.preparation.actors import actors_from_register

    (tmp_path / "reg.csv").write_text("x,y,nace\n1,2,01.13\n3,4,47.11\n")
    (tmp_path / "codes.csv").write_text("code,sector\n01.13,farm_shop\n")
    kw = dict(sector="nace", mapping=tmp_path / "codes.csv", x="x", y="y", crs="EPSG:3006")
    with pytest.raises(InputError, match=r"reg.csv \[actors\]: has sector codes missing from "
                       r"the mapping table: 47.11"):
        actors_from_register(tmp_path / "reg.csv", **kw)
    a = actors_from_register(tmp_path / "reg.csv", default_sector="retail", **kw)
    assert a["sector"].tolist() == ["farm_shop", "retail"]


def test_register_gpkg_in_prepare_is_clipped_to_the_region(tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point, box

    path, vals, t = _random_counts(tmp_path)
    region = _region_file(tmp_path, box(t.c, t.f - 6000, t.c + 8000, t.f))
    pts = [Point(t.c + 1000, t.f - 1000), Point(t.c + 2000, t.f - 3000),
           Point(t.c - 5000, t.f - 1000)]  # the last lies outside
    gpd.GeoDataFrame({"code": ["A", "B", "A"]}, geometry=pts, crs="ESRI:54009").to_file(
        tmp_path / "reg.gpkg")
    (tmp_path / "codes.toml").write_text('[codes]\nA = "food"\nB = { sector = "care", '
                                         'social = true }\n')
    cfg = {"region": {"path": str(region), "id": "id"}, "ghsl": {"population": str(path)},
           "actors": {"path": str(tmp_path / "reg.gpkg"), "sector": "code",
                      "mapping": str(tmp_path / "codes.toml")},
           "run": {"typology": "nordic7"}, "outputs": {"dir": str(tmp_path / "run")}}
    res = prepare(cfg)
    a = gpd.read_file(res["out_dir"] / "actors.gpkg")
    assert res["actors"] == 2 and a["sector"].tolist() == ["food", "care"]
    assert a["social_economy"].tolist() == [False, True]


def test_no_warnings_on_the_clean_belgium_case(belgium, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        prepare(_belgium_cfg(belgium, tmp_path / "w"))


def test_worldcover_tiles_in_degrees_are_averaged_onto_the_grid(tmp_path):
    """WorldCover comes in WGS 84 tiles: classes → weights, then area means on the grid."""
    from shapely.geometry import box

    path, vals, t = _random_counts(tmp_path)
    from rasterio.warp import transform_bounds

    w, s, e, n = transform_bounds("ESRI:54009", "EPSG:4326", t.c - 2000, t.f - 8000,
                                  t.c + 10000, t.f + 2000)
    res = 0.0005
    cols, rows = int((e - w) / res) + 1, int((n - s) / res) + 1
    lc = np.where(np.arange(cols)[None, :] < cols // 2, 40, 10).repeat(rows, axis=0)
    tile = write_tif(tmp_path / "ESA_WorldCover_10m_2021_v200_N48E012_Map.tif", lc,
                     crs="EPSG:4326", transform=Affine(res, 0, w, 0, -res, n), dtype="uint8")
    region = _region_file(tmp_path, box(t.c, t.f - 6000, t.c + 8000, t.f))
    cfg = {"region": {"path": str(region)}, "grid": {"crs": "EPSG:3035"},
           "ghsl": {"population": str(path)},
           "landcover": {"path": str(tile), "mapping": "worldcover"},
           "run": {"typology": "nordic7"}, "outputs": {"dir": str(tmp_path / "run")}}
    with rasterio.open(prepare(cfg)["out_dir"] / "agri_share.tif") as src:
        agri = src.read(1)
    ok = agri[np.isfinite(agri)]
    assert ok.size > 30 and ok.min() >= 0 and ok.max() <= 1
    assert (ok > 0.99).any() and (ok < 0.01).any()  # cropland west, trees east


def test_built_volume_is_prepared_beside_the_typology_layers(belgium, tmp_path):
    cfg = _belgium_cfg(belgium, tmp_path / "v")
    cfg["ghsl"]["built_volume"] = str(belgium["built"])  # stand-in for a GHS-BUILT-V tile
    res = prepare(cfg)
    assert res["layers"]["built_volume"] == "built_v.tif"
    assert "built_v" not in (res["run_file"]).read_text()  # not a typology input


def test_pbf_without_pyosmium_says_how_to_install(monkeypatch, tmp_path):
    import sys

    from pari_geo.preparation.actors import actors_from_osm

    monkeypatch.setitem(sys.modules, "osmium", None)
    (tmp_path / "x.osm.pbf").write_bytes(b"\x00" * 16)
    with pytest.raises(InputError, match=r"pip install 'pari_geo\[osm\]'"):
        actors_from_osm(tmp_path / "x.osm.pbf")


def test_mixed_ghsl_releases_warn_and_one_release_does_not():
    from pari_geo.preparation.rasters import check_ghsl_tiles

    a = "GHS_BUILT_S_E2020_GLOBE_R2023A_54009_100_V1_0_R3_C19.tif"
    b = "GHS_BUILT_S_E2020_GLOBE_R2022A_54009_100_V1_0_R3_C20.tif"
    with pytest.warns(UserWarning, match=r"R3_C20.tif \[built\]: mixes GHSL releases "
                      r"R2022A, R2023A"):
        check_ghsl_tiles("built", [a, b])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_ghsl_tiles("built", [a, a.replace("C19", "C20")])
