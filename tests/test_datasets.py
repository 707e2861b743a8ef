"""Sample data and examples from any folder, as an installed wheel finds them (issue 16)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

import pari_geo.datasets as ds
from pari_geo.cli import main
from pari_geo.errors import ConfigError, OutputError
from pari_geo.runconfig import load_run

ROOT = Path(__file__).resolve().parents[1]


def _fake_bundle(tmp_path):
    """A folder laid out like ``pari_geo/sample_data`` of a wheel, with one marker file."""
    bundle = tmp_path / "sample_data"
    (bundle / "sample_grids" / "belgium").mkdir(parents=True)
    (bundle / "sample_grids" / "belgium" / "POP.tif").write_bytes(b"marker")
    return bundle


def test_bundled_copy_is_found_before_the_repository(tmp_path, monkeypatch):
    bundle = _fake_bundle(tmp_path)
    monkeypatch.delenv("PARI_GEO_DATA", raising=False)
    monkeypatch.setattr(ds, "_BUNDLED", bundle)
    assert ds.sample_data_dir() == bundle
    assert ds.belgium_paths()["population"].read_bytes() == b"marker"


def test_environment_variable_comes_first(tmp_path, monkeypatch):
    bundle = _fake_bundle(tmp_path)
    monkeypatch.setenv("PARI_GEO_DATA", str(bundle))
    monkeypatch.setattr(ds, "_BUNDLED", tmp_path / "nothing")
    assert ds.sample_data_dir() == bundle


def test_outside_the_repository_without_data_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("PARI_GEO_DATA", raising=False)
    monkeypatch.setattr(ds, "_BUNDLED", tmp_path / "a")
    monkeypatch.setattr(ds, "_REPOSITORY", tmp_path / "b")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="reinstall pari_geo"):
        ds.sample_data_dir()


def test_ostergotland_paths_are_the_shipped_files():
    paths = ds.ostergotland_paths()
    assert paths["population"] == ROOT / "data/sample_grids/ostergotland/population.tif"
    assert all(p.is_file() for p in paths.values())


def test_every_bundled_folder_keeps_its_licence_or_synthetic_note():
    # only data whose licence allows it are bundled, each with its attribution or the
    # statement that it is synthetic
    folders = {f for _, f, _ in ds.EXAMPLES.values()}
    for f in folders:
        d = ROOT / "data" / "sample_grids" / f
        notes = " ".join(p.read_text() for p in d.glob("*.md"))
        assert "CC BY 4.0" in notes or "SYNTHETIC" in notes.upper()


@pytest.mark.parametrize("name", sorted(ds.EXAMPLES))
def test_copied_example_is_self_contained(name, tmp_path):
    dest = tmp_path / "ex"
    run_file = ds.copy_example(name, dest)
    runs, folder, _ = ds.EXAMPLES[name]
    assert sorted(p.name for p in (dest / "examples").iterdir()) == sorted(runs)
    for r in runs:
        # the run files are the repository's, byte for byte, and read only the copy
        assert (dest / "examples" / r).read_bytes() == (ROOT / "examples" / r).read_bytes()
        cfg = load_run(dest / "examples" / r)
        for layer in cfg.inputs.values():
            assert layer.path.is_file()
            assert dest.resolve() in layer.path.resolve().parents
        assert cfg.out_dir.resolve() == (dest / "out" / Path(r).stem).resolve()
    assert run_file == dest / "examples" / runs[0]


def test_copy_refuses_a_non_empty_folder_unless_overwrite(tmp_path):
    dest = tmp_path / "ex"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep")
    with pytest.raises(OutputError, match="is not empty"):
        ds.copy_example("belgium", dest)
    ds.copy_example("belgium", dest, overwrite=True)
    assert (dest / "mine.txt").read_text() == "keep"
    assert (dest / "data/sample_grids/belgium/POP.tif").is_file()


def test_unknown_example_names_the_choices(tmp_path):
    with pytest.raises(ConfigError, match="unknown example 'mars'; choose one of belgium"):
        ds.copy_example("mars", tmp_path / "x")


def test_cli_example_list_and_copy(tmp_path, capsys):
    assert main(["example", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("belgium ")
    assert "ostergotland" in out
    dest = tmp_path / "demo"
    assert main(["example", "ostergotland", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "pari-geo run examples/ostergotland_run.toml --overwrite" in out
    assert (dest / "examples" / "ostergotland_run.toml").is_file()
    # a second copy into the same folder: one line, exit 2
    assert main(["example", "ostergotland", str(dest)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not empty" in err


def test_cli_example_runs_from_the_copy(tmp_path, capsys, monkeypatch):
    dest = tmp_path / "demo"
    assert main(["example", "ostergotland", str(dest)]) == 0
    monkeypatch.chdir(dest)
    code = main(["classify", "examples/ostergotland_nordic7.toml", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert (dest / "out" / "ostergotland_nordic7" / "place_types.tif").is_file()


def test_build_hook_bundles_what_exists():
    # setup.py copies these folders into pari_geo/sample_data of the wheel; the sdist
    # (MANIFEST.in) carries them and the tests
    text = (ROOT / "setup.py").read_text()
    assert '("data/sample_grids", "sample_data/sample_grids", "*/*")' in text
    assert '("examples", "sample_data/examples", "*.toml")' in text
    manifest = (ROOT / "MANIFEST.in").read_text().split()
    for folder in ("data", "examples", "tests", "notebooks"):
        assert folder in manifest
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["pari-geo"] == "pari_geo.cli:main"


# --- issue 14: SYNTHETIC floor area, jobs, roads and commuting of the Östergötland region ---

OST = ROOT / "data" / "sample_grids" / "ostergotland"
ACTIVITY = ("floor_area.tif", "jobs.tif", "roads.gpkg", "commuting_od.csv")


@pytest.fixture(scope="module")
def ost_region():
    from pari_geo.datasets.ostergotland import make_ostergotland

    return make_ostergotland(1000)


def _read(name):
    import rasterio

    with rasterio.open(OST / name) as src:
        return src.read(), src.tags(), src.descriptions, src.profile


def test_activity_files_exist_and_are_flagged_synthetic():
    import geopandas as gpd
    import pyogrio

    paths = ds.ostergotland_paths()
    for key, name in zip(("floor_area", "jobs", "roads", "commuting_od"), ACTIVITY, strict=True):
        assert paths[key] == OST / name and paths[key].is_file()
    for name in ("floor_area.tif", "jobs.tif"):
        _, tags, _, profile = _read(name)
        assert "SYNTHETIC" in tags["DESCRIPTION"]
        assert profile["dtype"] == "float32" and profile["compress"] == "deflate"
        assert profile["tiled"] and profile["crs"].to_epsg() == 3006
    meta = pyogrio.read_info(OST / "roads.gpkg", layer="roads")["layer_metadata"]
    assert "SYNTHETIC" in meta["DESCRIPTION"]
    roads = gpd.read_file(OST / "roads.gpkg", layer="roads")
    assert roads.synthetic.all()
    readme = (OST / "README.md").read_text(encoding="utf-8")
    for name in ACTIVITY:
        assert f"`{name}`" in readme
    assert "SYNTHETIC" in readme


def test_floor_area_density_inner_urban_in_linkoping_and_low_in_forest(ost_region):
    s = ost_region
    floor = _read("floor_area.tif")[0][0]
    land = np.nan_to_num(s.layers["land_share"])
    region = s.layers["municipality"] > 0
    assert np.isnan(floor[~region]).all() and not np.isnan(floor[region]).any()
    with np.errstate(divide="ignore", invalid="ignore"):
        density = floor / (land * 1e6)  # floor area / land area
    towns = s.towns.set_index("name")
    for town in ("Linköping", "Norrköping"):
        r, c = towns.loc[town, ["row", "col"]]
        centre = density[r - 1 : r + 2, c - 1 : c + 2]
        assert np.nanmax(centre) >= 0.1, town
        assert np.nanmean(centre) >= 0.1, town
    pop = np.nan_to_num(s.layers["population"])
    agri = np.nan_to_num(s.layers["agri_share"])
    forest = region & (agri < 0.15) & (pop < 20) & (land > 0.9)
    assert forest.sum() > 1000
    assert np.nanmax(density[forest]) < 0.02
    # the other towns mostly between the outer (0.02) and inner (0.1) thresholds
    rows, cols = np.indices(pop.shape)
    big = np.zeros(pop.shape, bool)
    for town in ("Linköping", "Norrköping"):
        r, c = towns.loc[town, ["row", "col"]]
        big |= np.hypot(rows - r, cols - c) <= 3
    other = region & (pop >= 300) & ~big
    assert 0.02 <= np.nanmedian(density[other]) <= 0.1


def test_jobs_bands_sum_and_jobs_per_resident(ost_region):
    from pari_geo.datasets.ostergotland_activity import SECTORS

    s = ost_region
    jobs, tags, descriptions, profile = _read("jobs.tif")
    assert profile["count"] == 4 and descriptions == SECTORS
    assert SECTORS == ("primary", "manufacturing", "services", "public")
    assert "SYNTHETIC" in tags["DESCRIPTION"]
    region = s.layers["municipality"] > 0
    assert np.isnan(jobs[:, ~region]).all() and not np.isnan(jobs[:, region]).any()
    assert (jobs[:, region] >= 0).all()
    np.testing.assert_array_equal(jobs, np.round(jobs))  # whole jobs
    total = jobs.sum(axis=0)  # the bands sum to the jobs of each cell
    pop = np.nan_to_num(s.layers["population"])
    ratio = np.nansum(total) / pop.sum()
    assert 0.40 <= ratio <= 0.50
    muni = s.layers["municipality"]
    per_muni = {c: np.nansum(total[muni == c]) / pop[muni == c].sum() for c in (580, 581, 512)}
    assert per_muni[580] > per_muni[581] > ratio * 0.95 > per_muni[512]
    shares = np.nansum(jobs, axis=(1, 2)) / np.nansum(total)
    assert shares[2] + shares[3] > 0.7 and shares[0] < 0.05  # services and public dominate
    # the plain has primary jobs, the forest few jobs of any kind
    agri = np.nan_to_num(s.layers["agri_share"])
    land = np.nan_to_num(s.layers["land_share"])
    plain = region & (agri > 0.5)
    forest = region & (agri < 0.15) & (pop < 20) & (land > 0.9)
    assert np.nanmean(jobs[0][plain]) > 3 * np.nanmean(jobs[0][forest])
    assert np.nanmean(total[forest]) < 5
    towns = s.towns.set_index("name")
    r, c = towns.loc["Linköping", ["row", "col"]]
    assert total[r, c] > pop[r, c]  # more jobs than residents in the centre


def test_commuting_od_shares_sum_to_one_per_origin():
    import geopandas as gpd
    import pandas as pd

    od = pd.read_csv(OST / "commuting_od.csv", dtype={"origin": str, "destination": str})
    assert list(od.columns) == ["origin", "destination", "commuters", "share"]
    codes = set(gpd.read_file(OST / "municipalities.gpkg").code)
    assert set(od.origin) == set(od.destination) == codes
    assert len(od) == len(codes) ** 2
    sums = od.groupby("origin").share.sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, rtol=0, atol=1e-12)
    by_origin = od.groupby("origin").commuters.transform("sum")
    np.testing.assert_allclose(od.share, od.commuters / by_origin)
    diag = od[od.origin == od.destination].set_index("origin").share
    assert diag["0580"] > 0.85 and diag["0581"] > 0.8  # the cities keep their workers
    # gravity: the small municipalities send their largest outflow to a city nearby
    out = od[od.origin != od.destination].sort_values("share").groupby("origin").tail(1)
    top = dict(zip(out.origin, out.destination, strict=True))
    assert top["0582"] == "0581" and top["0561"] == "0580" and top["0586"] == "0580"
    # the inflows are the jobs of each municipality
    jobs = _read("jobs.tif")[0].sum(axis=0)
    import rasterio

    with rasterio.open(OST / "municipality.tif") as src:
        muni = src.read(1)
    inflow = od.groupby("destination").commuters.sum()
    for code, n in inflow.items():
        assert abs(n - np.nansum(jobs[muni == int(code)])) <= 0.01 * n, code


def test_roads_burn_into_a_speed_raster_with_motorway_on_the_e4():
    import geopandas as gpd
    from rasterio.features import rasterize

    from pari_geo.grid import GridSpec
    from pari_geo.preparation.roads import load_speeds, speed_raster

    roads = gpd.read_file(OST / "roads.gpkg", layer="roads")
    assert roads.crs.to_epsg() == 3006
    assert set(roads.geometry.geom_type) == {"LineString"}
    classes = set(roads.highway.dropna())
    assert {"motorway", "trunk", "primary", "secondary", "tertiary", "unclassified",
            "residential"} == classes  # fmt: skip
    assert roads.loc[roads.ref == "E4", "highway"].tolist() == ["motorway"]
    ferries = roads[roads.route == "ferry"]
    assert 1 <= len(ferries) <= 2 and ferries.highway.isna().all()
    _, _, _, profile = _read("land_share.tif")
    land = _read("land_share.tif")[0][0]
    muni = _read("municipality.tif")[0][0]
    grid = GridSpec(profile["crs"], profile["transform"], land.shape)
    inside = muni > 0
    speed = speed_raster(OST / "roads.gpkg", grid, inside, land_share=land)
    e4 = rasterize(
        [(g, 1) for g in roads.geometry[roads.highway == "motorway"]],
        out_shape=land.shape,
        transform=grid.transform,
        all_touched=True,
    )
    e4 = e4.astype(bool) & inside
    assert e4.sum() > 100
    assert (speed[e4] == load_speeds()["motorway"]).all()
    assert np.nanmax(speed) == 110.0 and np.nanmin(speed) == 5.0
    assert np.isnan(speed[~inside]).all()
    # by speed_kmh the ferries carry 20 km/h across the water
    by_speed = speed_raster(
        OST / "roads.gpkg", grid, inside, land_share=land, speed_column="speed_kmh"
    )
    on_ferry = rasterize(
        [(g, 1) for g in ferries.geometry],
        out_shape=land.shape,
        transform=grid.transform,
        all_touched=True,
    ).astype(bool)
    wet = on_ferry & (land < 0.5) & inside
    assert wet.any() and (by_speed[wet] >= 20).all()
    # by class, a ferry line (route = ferry) takes the table's ferry speed: its water is
    # passable (faster roads crossing the same cell win)
    assert (speed[wet] >= load_speeds()["ferry"]).all()
    known = roads.highway.notna()
    assert (roads.speed_kmh[known] == [load_speeds()[h] for h in roads.highway[known]]).all()


# The shipped sample files were written with this GDAL (major, minor). Another GDAL (the
# floor-version CI stage has 3.8) encodes the same content into other bytes (compression,
# tag order), so bytes are compared only there; the content is compared everywhere.
SHIPPED_WITH_GDAL = (3, 10)


def _gdal_version():
    import rasterio

    return tuple(int(x) for x in rasterio.__gdal_version__.split(".")[:2])


def _same_content(made: Path, shipped: Path) -> None:
    """Assert two sample files hold the same data, metadata and georeferencing."""
    if made.suffix == ".tif":
        import rasterio

        with rasterio.open(made) as a, rasterio.open(shipped) as b:
            pa, pb = dict(a.profile), dict(b.profile)
            na, nb = pa.pop("nodata"), pb.pop("nodata")
            assert pa == pb, made.name
            assert na == nb or (np.isnan(na) and np.isnan(nb)), made.name
            assert a.tags() == b.tags(), made.name
            assert a.descriptions == b.descriptions, made.name
            for band in range(1, a.count + 1):
                assert a.tags(band) == b.tags(band), (made.name, band)
            np.testing.assert_array_equal(a.read(), b.read(), err_msg=made.name)
    elif made.suffix == ".gpkg":
        import geopandas as gpd
        import pyogrio

        layers = pyogrio.list_layers(made)
        assert layers.tolist() == pyogrio.list_layers(shipped).tolist(), made.name
        for layer, _ in layers:
            a = gpd.read_file(made, layer=layer)
            b = gpd.read_file(shipped, layer=layer)
            assert a.crs == b.crs, (made.name, layer)
            assert a.geometry.to_wkb().tolist() == b.geometry.to_wkb().tolist(), made.name
            pd_a, pd_b = a.drop(columns="geometry"), b.drop(columns="geometry")
            assert pd_a.equals(pd_b), (made.name, layer)
    else:
        assert made.read_bytes() == shipped.read_bytes(), made.name


def _regenerated(tmp_path):
    from pari_geo.datasets.ostergotland import LAYER_FILES, write_ostergotland

    paths = write_ostergotland(tmp_path, overwrite=True, activity=True)
    names = {p.name for p in paths.values()}
    assert names == {*LAYER_FILES.values(), "municipalities.gpkg", *ACTIVITY}
    return sorted(names)


def test_regeneration_has_the_content_of_every_shipped_file(tmp_path):
    for name in _regenerated(tmp_path):
        _same_content(tmp_path / name, OST / name)


@pytest.mark.skipif(
    _gdal_version() != SHIPPED_WITH_GDAL,
    reason="bytes depend on the GDAL that writes them; the content test runs here",
)
def test_regeneration_is_byte_identical_to_every_shipped_file(tmp_path):
    for name in _regenerated(tmp_path):
        assert (tmp_path / name).read_bytes() == (OST / name).read_bytes(), name


def test_activity_of_the_250m_variant():
    from pari_geo.datasets.ostergotland import make_ostergotland
    from pari_geo.datasets.ostergotland_activity import make_activity

    s = make_ostergotland(250)
    a = make_activity(s)
    assert a.floor_area.shape == (580, 620) and a.jobs.shape == (4, 580, 620)
    pop = np.nan_to_num(s.layers["population"])
    # the same municipal job totals as the 1 km files, and about the same floor area
    jobs_1km = _read("jobs.tif")[0]
    assert np.nansum(a.jobs) == np.nansum(jobs_1km)
    floor_1km = _read("floor_area.tif")[0][0]
    assert np.nansum(a.floor_area) == pytest.approx(np.nansum(floor_1km), rel=0.05)
    land = np.nan_to_num(s.layers["land_share"])
    with np.errstate(divide="ignore", invalid="ignore"):
        density = a.floor_area / (land * 250.0**2)
    r, c = s.towns.set_index("name").loc["Linköping", ["row", "col"]]
    assert np.nanmax(density[r - 4 : r + 5, c - 4 : c + 5]) >= 0.1
    assert 0.40 <= np.nansum(a.jobs) / pop.sum() <= 0.50
    assert a.roads.equals(make_activity().roads)  # the same lines at every resolution
