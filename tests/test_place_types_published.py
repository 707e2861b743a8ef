"""Issue 14: the published SYKE/Nordregio rules of the seven place types, on hand-built
grids with known answers (floor area, localities, linking, jobs), in memory and by tiles."""

from __future__ import annotations

import numpy as np
import pytest

from pari_geo.errors import InputError
from pari_geo.typology.nordic7 import Nordic7Params, classify_nordic7_array
from pari_geo.typology.nordic7_tiled import classify_nordic7_tiled

KM2 = 1e6  # m² of a 1 km cell


def core_grid(n=11):
    """A 3x3 urban core of 18,000 residents in the middle of an empty n x n grid."""
    pop = np.zeros((n, n))
    c = n // 2
    pop[c - 1:c + 2, c - 1:c + 2] = 2000.0
    return pop, c


# --- floor area: SYKE's inner and outer urban ------------------------------------------
def test_floor_area_inner_is_the_dense_neighbourhood_and_outer_needs_a_third():
    pop, c = core_grid()
    floor = np.zeros_like(pop)
    floor[c - 1:c + 2, c - 1:c + 2] = 0.05 * KM2  # area density 0.05 on the core
    floor[c, c] = 0.65 * KM2
    # the north-west corner and its two core neighbours drop below 0.02
    for rc in ((c - 1, c - 1), (c - 1, c), (c, c - 1)):
        floor[rc] = 0.01 * KM2
    codes, info = classify_nordic7_array(pop, cell_size_m=1000, floor_area=floor)
    # inner: the centre's 3x3 mean is (0.65 + 5 * 0.05 + 3 * 0.01) / 9 = 0.103 >= 0.1;
    # its neighbours' means are below 0.1 (e.g. north-east: 0.76 / 9)
    # outer: at least 3 of the 9 window cells at >= 0.02 (cells off the core count as 0):
    # the north-west corner (1/9) falls through to peri-urban (a core cell, 0 minutes
    # from the core); the north cell (0.01 itself) and the north-east corner have 3/9
    want = np.array([[3, 2, 2],
                     [2, 1, 2],
                     [2, 2, 2]])
    np.testing.assert_array_equal(codes[c - 1:c + 2, c - 1:c + 2], want)
    assert info["rules"]["inner_urban"].startswith("SYKE")
    assert info["rules"]["outer_urban"].startswith("SYKE")


def test_inner_threshold_is_area_density_not_the_proxy():
    pop, c = core_grid()
    floor = np.where(pop > 0, 0.09 * KM2, 0.0)  # 0.09 < 0.1 everywhere: no inner cell
    codes, _ = classify_nordic7_array(pop, cell_size_m=1000, floor_area=floor)
    assert not (codes == 1).any()
    assert (codes[c - 1:c + 2, c - 1:c + 2] == 2).all()  # 9/9 of the centre's window dense
    codes, _ = classify_nordic7_array(pop, cell_size_m=1000, floor_area=floor,
                                      params=Nordic7Params(inner_area_density=0.05))
    assert codes[c, c] == 1


def test_built_volume_is_floor_area_times_storey_height():
    pop, c = core_grid()
    rng = np.random.default_rng(3)
    floor = np.where(pop > 0, rng.uniform(0.01, 0.3, pop.shape) * KM2, 0.0)
    a, _ = classify_nordic7_array(pop, cell_size_m=1000, floor_area=floor)
    b, info = classify_nordic7_array(pop, cell_size_m=1000, built_volume=floor * 3.0)
    np.testing.assert_array_equal(a, b)
    assert "built_volume" in info["rules"]["inner_urban"]
    c2, _ = classify_nordic7_array(pop, cell_size_m=1000, built_volume=floor * 4.0,
                                   params=Nordic7Params(storey_height_m=4.0))
    np.testing.assert_array_equal(a, c2)


def test_without_floor_area_the_proxies_run_and_say_so():
    pop, _ = core_grid()
    _, info = classify_nordic7_array(pop, cell_size_m=1000)
    assert info["rules"]["inner_urban"].startswith("proxy")
    assert "floor_area" in info["layers_fallback"]


@pytest.mark.parametrize(("values", "text"), [
    (0.3, "looks like a share or an area density"),
    (-5.0, "negative"),
    (1e9, "more than"),
])
def test_floor_area_in_the_wrong_unit_is_refused_in_one_line(values, text):
    pop, _ = core_grid()
    floor = np.where(pop > 0, values, 0.0)
    with pytest.raises(InputError, match=text) as err:
        classify_nordic7_array(pop, cell_size_m=1000, floor_area=floor)
    assert "[floor_area]" in str(err.value) and "\n" not in str(err.value)


# --- localities: at least 200 residents -------------------------------------------------
def village_grid(village_pop):
    """A core, and 5 km east of its edge a one-cell settlement; speed 60 km/h."""
    pop, c = core_grid(21)
    pop[c, c + 6] = village_pop  # 5 km (5 minutes) east of the core's edge cell
    return pop, c


@pytest.mark.parametrize(("village", "minimum", "linked"), [
    (350.0, 200, True), (350.0, 400, False), (310.0, 300, True), (310.0, 320, False),
])
def test_only_localities_of_settlement_min_pop_are_linked(village, minimum, linked):
    pop, c = village_grid(village)
    codes, info = classify_nordic7_array(
        pop, cell_size_m=1000, params=Nordic7Params(settlement_min_pop=minimum))
    # 4 km beyond the village (9 min from the core): peri-urban only through the link
    assert codes[c, c + 10] == (3 if linked else 5)
    assert bool(info["linked_settlements"][c, c + 6]) is linked


# --- SYKE's links: 3 km always, otherwise > 20 % commuting and < 40 km --------------------
def test_link_within_link_distance_at_a_slow_speed():
    pop, c = core_grid(21)
    pop[c, c + 4] = 400.0  # 3 km from the core's edge cell (c, c + 1)
    slow = np.full(pop.shape, 20.0)  # 6 min = 2 km: the zone does not reach the village
    base, _ = classify_nordic7_array(pop, cell_size_m=1000, speed_kmh=slow)
    syke, info = classify_nordic7_array(pop, cell_size_m=1000, speed_kmh=slow,
                                        params=Nordic7Params.from_preset("syke"))
    assert base[c, c + 4] == 5 and syke[c, c + 4] == 3
    assert info["linked_settlements"][c, c + 4]


@pytest.mark.parametrize(("share", "offset", "linked"), [
    (0.3, 20, True), (0.1, 20, False), (0.3, 45, False),
])
def test_link_by_commuting_share_and_distance(share, offset, linked):
    pop, c = core_grid(101)
    pop[c, c + 1 + offset] = 400.0  # ``offset`` km east of the core's edge
    comm = np.zeros(pop.shape)
    comm[c, c + 1 + offset] = share
    codes, info = classify_nordic7_array(pop, cell_size_m=1000, commuting_share=comm,
                                         params=Nordic7Params.from_preset("syke"))
    assert bool(info["linked_settlements"][c, c + 1 + offset]) is linked
    assert bool(codes[c, c + 1 + offset] == 3) is linked


# --- jobs: a local economic structure for rural heartland ------------------------------
def rural_grid():
    pop = np.full((9, 9), 20.0)  # 20 residents/km²: dense enough for heartland
    svc = np.zeros((9, 9))  # a service centre at hand everywhere
    return pop, svc


@pytest.mark.parametrize(("per_resident", "code"), [(0.2, 6), (0.05, 7)])
def test_heartland_needs_jobs_per_resident(per_resident, code):
    pop, svc = rural_grid()
    codes, info = classify_nordic7_array(pop, cell_size_m=1000, service_minutes=svc,
                                         jobs=pop * per_resident)
    assert (codes == code).all()
    assert "jobs per resident" in info["rules"]["rural_heartland"]


@pytest.mark.parametrize(("split", "code"), [((0.5, 0.5), 6), ((1.0, 0.0), 7),
                                              ((0.9, 0.1), 7), ((0.8, 0.2), 6)])
def test_heartland_needs_a_diverse_economy_by_sector(split, code):
    # evenness of (0.9, 0.1) is 0.469 < 0.5; of (0.8, 0.2) 0.722
    pop, svc = rural_grid()
    jobs = np.stack([pop * 0.3 * split[0], pop * 0.3 * split[1]])
    codes, info = classify_nordic7_array(pop, cell_size_m=1000, service_minutes=svc,
                                         jobs=jobs, job_sectors=["farming", "services"])
    assert (codes == code).all()
    assert info["job_sectors"] == ["farming", "services"]


def test_jobs_bad_shapes_and_values_are_refused():
    pop, svc = rural_grid()
    with pytest.raises(InputError, match=r"\[jobs\].*sectors x rows x cols"):
        classify_nordic7_array(pop, cell_size_m=1000, jobs=np.zeros((2, 3)))
    with pytest.raises(InputError, match=r"\[jobs\].*negative"):
        classify_nordic7_array(pop, cell_size_m=1000, jobs=-pop)
    with pytest.raises(InputError, match="job_sectors"):
        classify_nordic7_array(pop, cell_size_m=1000, jobs=np.stack([pop, pop]),
                               job_sectors=["a"])


# --- one rulebook: the tiled engine gives the same codes -------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_new_rules_same_codes_in_memory_and_by_tiles(seed, tmp_path):
    rng = np.random.default_rng(seed)
    shape = (60, 70)
    pop = rng.gamma(0.3, 200.0, shape)
    pop[20:30, 25:40] += rng.uniform(500, 3000, (10, 15))  # a town
    pop[45:48, 50:52] += 400.0
    floor = pop * rng.uniform(20, 80, shape)
    comm = rng.uniform(0, 0.5, shape)
    jobs = np.stack([pop * rng.uniform(0, 0.3, shape) for _ in range(3)])
    params = Nordic7Params.from_preset("syke")
    mem, info = classify_nordic7_array(pop, cell_size_m=500, floor_area=floor,
                                       commuting_share=comm, jobs=jobs, params=params)
    res = classify_nordic7_tiled(pop, cell_size_m=500, floor_area=floor, commuting=comm,
                                 jobs=jobs, params=params, tile_shape=(16, 24),
                                 workdir=tmp_path)
    np.testing.assert_array_equal(res.codes, mem)
    assert set(np.unique(mem)) >= {1, 2, 3}
    assert res.metadata["rules"] == info["rules"]
    assert res.metadata["job_sectors"] == info["job_sectors"]


# --- roads: a speed raster burned from a line layer ------------------------------------
def _roads_case(tmp_path):
    import geopandas as gpd
    import rasterio
    from affine import Affine
    from shapely.geometry import LineString

    n = 41
    pop = np.zeros((n, n))
    pop[19:22, 0:3] = 2000.0  # a core at the west edge
    t = Affine(1000, 0, 500000, 0, -1000, 6500000)
    pop_path = tmp_path / "pop.tif"
    with rasterio.open(pop_path, "w", driver="GTiff", width=n, height=n, count=1,
                       dtype="float64", crs="EPSG:3006", transform=t) as dst:
        dst.write(pop, 1)
    y = 6500000 - 20.5 * 1000
    road = gpd.GeoDataFrame({"highway": ["motorway"]},
                            geometry=[LineString([(500000 + 500, y), (500000 + 40500, y)])],
                            crs="EPSG:3006")
    road_path = tmp_path / "roads.gpkg"
    road.to_file(road_path, layer="roads")
    return pop_path, road_path


def test_roads_make_the_travel_time_and_the_fallback_is_the_constant(tmp_path):
    from pari_geo.typology.classify import classify_nordic7

    pop_path, road_path = _roads_case(tmp_path)
    const = classify_nordic7(pop_path)
    roads = classify_nordic7(pop_path, roads=road_path)
    row = 20
    # 60 km/h everywhere: 25 km of close-to-urban east of the core (cells 3..27)
    assert (const.values[row, 3:28] != 7).all() and const.values[row, 35] != 5
    # motorway at 110 km/h: 25 minutes reach 45 km along the road (the whole row) ...
    assert (roads.values[row, 3:] == 5).sum() > (const.values[row, 3:] == 5).sum()
    # ... and off the road (5 km/h) the zone is narrow
    assert roads.values[row - 10, 20] != 5 and const.values[row - 10, 10] == 5
    assert "roads" in roads.attrs["inputs"]
    tiled = classify_nordic7(pop_path, roads=road_path, engine="tiled", workdir=tmp_path)
    np.testing.assert_array_equal(tiled.values, roads.values)


def test_roads_and_speed_together_are_refused(tmp_path):
    from pari_geo.errors import ConfigError
    from pari_geo.typology.classify import classify_nordic7

    pop_path, road_path = _roads_case(tmp_path)
    with pytest.raises(ConfigError, match="roads or speed_kmh"):
        classify_nordic7(pop_path, roads=road_path, speed_kmh=50.0)


# --- commuting from an origin-destination table per unit -------------------------------
def od_case():
    """Three units side by side (west, middle, east); the core lies in the west unit."""
    from pari_geo.typology.nordic7 import CommutingOD

    pop = np.full((11, 33), 5.0)
    pop[4:7, 1:4] = 2000.0  # core in unit 1
    ids = np.repeat(np.array([1, 2, 3]), 11)[None, :].repeat(11, axis=0)
    od = CommutingOD.from_table(
        ["W", "W", "M", "M", "E", "E"], ["W", "M", "W", "M", "E", "W"],
        [0.9, 0.1, 0.45, 0.55, 0.9, 0.1], codes=["W", "M", "E"])
    return pop, ids, od


def test_od_table_gives_each_cell_its_units_share_towards_the_cores():
    pop, ids, od = od_case()
    slow = np.full(pop.shape, 5.0)  # travel time never reaches close-to-urban
    codes, info = classify_nordic7_array(pop, cell_size_m=1000, commuting_od=od,
                                         unit_ids=ids, speed_kmh=slow)
    assert info["core_units"] == ["W"]
    share = info["commuting_share"]
    # the core's own unit: work there is not commuting to another unit's core
    assert (share[:, :11] == 0.0).all() and (share[:, 11:22] == 0.45).all()
    assert (share[:, 22:] == 0.1).all()
    # >= 0.30 towards the core: close to urban in W and M, not in E
    assert (codes[0, 12:22] == 5).all() and not (codes[:, 23:] == 5).any()
    assert "commuting_share" in info["layers_used"]


def test_od_table_same_codes_as_the_equivalent_share_layer_and_by_tiles(tmp_path):
    pop, ids, od = od_case()
    codes, info = classify_nordic7_array(pop, cell_size_m=1000, commuting_od=od,
                                         unit_ids=ids, params=Nordic7Params.from_preset("syke"))
    same, _ = classify_nordic7_array(pop, cell_size_m=1000, commuting_share=info[
        "commuting_share"], params=Nordic7Params.from_preset("syke"))
    np.testing.assert_array_equal(codes, same)
    res = classify_nordic7_tiled(pop, cell_size_m=1000, commuting_od=od, unit_ids=ids,
                                 params="syke", tile_shape=(4, 7), workdir=tmp_path)
    np.testing.assert_array_equal(res.codes, codes)


def test_od_table_needs_units_and_excludes_a_share_layer():
    pop, ids, od = od_case()
    with pytest.raises(InputError, match="needs unit_ids"):
        classify_nordic7_array(pop, cell_size_m=1000, commuting_od=od)
    with pytest.raises(InputError, match="not both"):
        classify_nordic7_array(pop, cell_size_m=1000, commuting_od=od, unit_ids=ids,
                               commuting_share=np.zeros(pop.shape))


def test_od_table_file_on_the_sample_region_same_codes_on_both_engines(tmp_path):
    import pari_geo
    from pari_geo.typology.classify import classify_nordic7

    p = pari_geo.ostergotland_paths()
    kw = dict(built=p["built_share"], land=p["land_share"], agri=p["agri_share"],
              commuting_od=p["commuting_od"], units=p["municipalities"], units_id="code",
              params="syke")
    mem = classify_nordic7(p["population"], **kw)
    tiled = classify_nordic7(p["population"], engine="tiled", workdir=tmp_path, **kw)
    np.testing.assert_array_equal(mem.values, tiled.values)
    assert "commuting_od" in mem.attrs["inputs"]
    # a code the units do not have is refused in one line
    bad = tmp_path / "od.csv"
    bad.write_text("origin,destination,share\n0580,9999,0.5\n")
    with pytest.raises(InputError, match=r"\[commuting_od\].*9999"):
        classify_nordic7(p["population"], **{**kw, "commuting_od": bad})
    over = tmp_path / "over.csv"
    over.write_text("origin,destination,share\n0580,0580,0.8\n0580,0581,0.5\n")
    with pytest.raises(InputError, match="sum to 1.3"):
        classify_nordic7(p["population"], **{**kw, "commuting_od": over})


# --- economic activity reported per municipality -----------------------------------------
def test_jobs_by_unit_with_sectors_and_evenness():
    import geopandas as gpd
    from affine import Affine
    from shapely.geometry import box

    from pari_geo.classes import NORDIC7
    from pari_geo.grid import GridSpec
    from pari_geo.report import residents_by_unit_and_class

    g = GridSpec("EPSG:3006", Affine(1000, 0, 0, 0, -1000, 2000), (2, 4))
    classes = g.to_dataarray(np.full((2, 4), 7, np.uint8))
    pop = np.full((2, 4), 10.0)
    jobs = np.stack([np.full((2, 4), 1.0), np.where(np.arange(4) < 2, 1.0, 0.0)[None]
                     .repeat(2, axis=0)])
    units = gpd.GeoDataFrame({"code": ["w", "e"]}, geometry=[box(0, 0, 2000, 2000),
                                                             box(2000, 0, 4000, 2000)],
                             crs="EPSG:3006")
    t = residents_by_unit_and_class(classes, pop, units, "code", NORDIC7, jobs=jobs,
                                    job_sectors=["farming", "services"])
    assert t["jobs"].tolist() == [8.0, 4.0]
    assert t["jobs_per_resident"].tolist() == [0.2, 0.1]
    assert t["jobs_farming"].tolist() == [4.0, 4.0] and t["jobs_services"].tolist() == [4, 0]
    assert t["sector_evenness"].tolist() == [1.0, 0.0]


def test_pari_geo_run_reports_jobs_per_municipality(tmp_path):
    from helpers import tiny_run_text, write_tiny_inputs

    from pari_geo.pipeline import run_pipeline
    from pari_geo.runconfig import load_run

    p = write_tiny_inputs(tmp_path)
    text = tiny_run_text(p, tmp_path / "out").replace(
        "[inputs]\n", f'[inputs]\njobs = "{p["jobs"]}"\n')
    (tmp_path / "run.toml").write_text(text)
    run_pipeline(load_run(tmp_path / "run.toml"))
    import pandas as pd

    munis = pd.read_csv(tmp_path / "out" / "municipalities.csv")
    assert {"jobs", "jobs_per_resident", "jobs_farming", "jobs_services",
            "sector_evenness"} <= set(munis.columns)
    by_unit = pd.read_csv(tmp_path / "out" / "place_types_by_unit.csv")
    assert by_unit["jobs"].sum() == pytest.approx(munis["jobs"].sum())
    assert munis["jobs"].sum() > 0


def test_validate_reads_the_syke_example_vectors_and_table():
    from pari_geo.runconfig import load_run
    from pari_geo.validate import format_plan, validate_run

    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    plan = validate_run(load_run(root / "examples" / "ostergotland_syke.toml"))
    assert plan["vectors"]["commuting_od"]["features"] == 169
    assert plan["vectors"]["roads"]["features"] > 100
    assert any("169 rows" in line for line in format_plan(plan))


# --- review of issue 14: the edges ----------------------------------------------------------
def _tif(path, values, transform=None):
    from affine import Affine
    from helpers import write_tif

    t = transform or Affine(1000, 0, 500000, 0, -1000, 6500000)
    return write_tif(path, values, crs="EPSG:3006", transform=t, dtype="float64")


def test_roads_leave_no_fast_corridor_through_cells_without_data(tmp_path):
    import geopandas as gpd
    from shapely.geometry import LineString

    from pari_geo.typology.classify import classify_nordic7

    pop = np.zeros((5, 30))
    pop[1:4, 0:3] = 2000.0
    pop[:, 3:15] = np.nan  # no data between the core and the land to the east
    road = gpd.GeoDataFrame({"highway": ["residential"]},
                            geometry=[LineString([(500100, 6497500), (502900, 6497500)])],
                            crs="EPSG:3006")
    road.to_file(tmp_path / "r.gpkg")
    codes = classify_nordic7(_tif(tmp_path / "p.tif", pop), roads=tmp_path / "r.gpkg")
    # the no-data cells are impassable: nothing east of them is within 25 minutes
    assert not (codes.values[:, 15:] == 5).any()


def test_roads_that_miss_the_grid_and_text_speeds_are_refused(tmp_path):
    import geopandas as gpd
    from shapely.geometry import LineString

    from pari_geo.typology.classify import classify_nordic7

    pop_path = _tif(tmp_path / "p.tif", np.full((5, 5), 10.0))
    far = gpd.GeoDataFrame({"highway": ["primary"], "maxspeed": ["50 mph"]},
                           geometry=[LineString([(0, 0), (1000, 1000)])], crs="EPSG:3006")
    far.to_file(tmp_path / "far.gpkg")
    with pytest.raises(InputError, match="no road on the grid"):
        classify_nordic7(pop_path, roads=tmp_path / "far.gpkg")
    from pari_geo.preparation.roads import Roads

    with pytest.raises(InputError, match="'maxspeed' holds no speeds"):
        classify_nordic7(pop_path, roads=Roads(tmp_path / "far.gpkg", speed_column="maxspeed"))


def test_layers_without_data_are_refused_naming_the_file(tmp_path):
    from pari_geo.typology.classify import classify_nordic7

    pop_path = _tif(tmp_path / "p.tif", np.full((5, 5), 10.0))
    empty = _tif(tmp_path / "empty.tif", np.full((5, 5), np.nan))
    for key in ("floor_area", "jobs"):
        with pytest.raises(InputError, match="has no data") as err:
            classify_nordic7(pop_path, **{key: empty})
        assert "\n" not in str(err.value)
    share = _tif(tmp_path / "share.tif", np.full((5, 5), 0.3))
    with pytest.raises(InputError, match=r"share.tif \[floor_area\].*looks like a share"):
        classify_nordic7(pop_path, floor_area=share)


def test_floor_area_counts_as_built_up_never_water():
    pop = np.zeros((5, 5))
    land = np.full((5, 5), 0.2)
    floor = np.zeros((5, 5))
    floor[2, 2] = 5000.0
    codes, _ = classify_nordic7_array(pop, cell_size_m=1000, land_share=land, floor_area=floor)
    assert codes[2, 2] != 0 and codes[0, 0] == 0


def test_unit_ids_must_be_positions_not_codes():
    pop, ids, od = od_case()
    with pytest.raises(InputError, match="holds 580"):
        classify_nordic7_array(pop, cell_size_m=1000, commuting_od=od,
                               unit_ids=np.where(ids == 1, 580, ids))
    with pytest.raises(InputError, match="holds 580"):
        classify_nordic7_tiled(pop, cell_size_m=1000, commuting_od=od,
                               unit_ids=np.where(ids == 1, 580, ids))


def test_commuter_counts_need_the_own_unit_row():
    import pandas as pd

    from pari_geo.ingest import open_commuting_od

    with pytest.raises(InputError, match="origin A has no row to itself"):
        open_commuting_od(pd.DataFrame({"origin": ["A"], "destination": ["B"],
                                        "commuters": [500]}))


def test_rules_provenance_names_the_links_that_ran():
    pop, _ = core_grid()
    _, info = classify_nordic7_array(pop, cell_size_m=1000)
    assert "SYKE" not in info["rules"]["peri_urban_links"]
    _, info = classify_nordic7_array(pop, cell_size_m=1000, params="syke"
                                     if False else Nordic7Params.from_preset("syke"))
    assert "link_distance_m (SYKE)" in info["rules"]["peri_urban_links"]
    assert "no commuting layer" in info["rules"]["peri_urban_links"]
