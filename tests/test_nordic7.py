"""The seven Nordic place types on hand-built grids (expected classes worked out by hand).

Unless a test says otherwise: 1 km cells, so density = residents per cell, and the default
speed of 60 km/h makes a rook step 1 minute and a diagonal step sqrt(2) minutes.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import fields
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from pari_geo.errors import ConfigError, InputError
from pari_geo.typology.nordic7 import (
    CORINE_AGRICULTURAL,
    FALLBACKS,
    Nordic7Params,
    agri_share_from_landcover,
    classify_nordic7_array,
    corine_agri_mapping,
    window_cells,
    window_mean,
)
from pari_geo.typology.travel_time import minutes_to

BELGIUM = Path(__file__).resolve().parents[1] / "data" / "sample_grids" / "belgium"


def strip(values, n):
    """A 1-row grid of ``n`` cells with ``values`` ({index: value}) and 0 elsewhere."""
    a = np.zeros((1, n))
    for i, v in values.items():
        a[0, i] = v
    return a


def run(pop, **kw):
    kw.setdefault("cell_size_m", 1000)
    return classify_nordic7_array(pop, **kw)


# --------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------
SPEC_DEFAULTS = {
    "settlement_density": 300,
    "settlement_built_share": 0.10,
    "urban_core_min_pop": 15000,
    "core_max_gap_km2": 15,
    "inner_radius_m": 1000,
    "inner_built_share": 0.20,
    "inner_density": 1500,
    "peri_urban_core_minutes": 6,
    "peri_urban_settlement_minutes": 4.5,
    "local_centre_min_pop": 5000,
    "close_to_urban_minutes": 25,
    "close_to_urban_commuting_share": 0.30,
    "service_centre_min_pop": 3000,
    "sparse_service_minutes": 45,
    "rural_radius_m": 2500,
    "heartland_agri_share": 0.25,
    "heartland_density": 10,
    "default_speed_kmh": 60,
    "settlement_min_pop": 200,
    "storey_height_m": 3.0,
    "inner_area_density": 0.1,
    "outer_area_density": 0.02,
    "outer_dense_share": 1 / 3,
    "heartland_jobs_per_resident": 0.1,
    "heartland_sector_evenness": 0.5,
    "link_distance_m": 0,
    "link_commuting_share": 1.0,
    "link_max_distance_m": 40000,
}

#: what preset syke changes (SYKE's linking of nearby localities)
SYKE_CHANGES = {"link_distance_m": 3000, "link_commuting_share": 0.2}


def test_params_defaults_are_the_spec_table():
    assert Nordic7Params().to_dict() == SPEC_DEFAULTS
    assert [f.name for f in fields(Nordic7Params)] == list(SPEC_DEFAULTS)


def _preset_file(name):
    path = resources.files("pari_geo") / "presets" / f"{name}.toml"
    with path.open("rb") as fh:
        return tomllib.load(fh)


def test_preset_file_holds_the_defaults():
    data = _preset_file("nordregio")
    assert data["name"] == "nordregio"
    assert data["parameters"] == SPEC_DEFAULTS
    assert Nordic7Params.from_preset("nordregio") == Nordic7Params()
    assert Nordic7Params.from_preset("nordic7") == Nordic7Params()  # the alias


def test_syke_preset_differs_only_in_the_linking_rules():
    data = _preset_file("syke")
    assert data["name"] == "syke"
    assert data["parameters"] == {**SPEC_DEFAULTS, **SYKE_CHANGES}
    assert Nordic7Params.from_preset("syke") == Nordic7Params().replace(**SYKE_CHANGES)


def test_params_from_mapping_and_round_trip():
    p = Nordic7Params.from_mapping({"close_to_urban_minutes": 30, "inner_built_share": 0.25})
    assert p.close_to_urban_minutes == 30.0 and isinstance(p.close_to_urban_minutes, float)
    assert Nordic7Params.from_mapping(p.to_dict()) == p
    assert p.hash() != Nordic7Params().hash()
    with pytest.raises(AttributeError):
        p.inner_density = 1.0  # frozen


@pytest.mark.parametrize(
    ("mapping", "key", "text"),
    [
        ({"inner_densty": 1500}, "inner_densty", "unknown nordic7 parameter"),
        ({"Inner_Density": 1500}, "Inner_Density", "did you mean 'inner_density'"),
        ({"inner_density": "1500"}, "inner_density", "must be a number"),
        ({"inner_density": True}, "inner_density", "must be a number"),
        ({"inner_density": [1]}, "inner_density", "must be a number"),
        ({"inner_built_share": 1.5}, "inner_built_share", "share in 0..1"),
        ({"close_to_urban_commuting_share": -0.1}, "close_to_urban_commuting_share", "0..1"),
        ({"close_to_urban_minutes": -5}, "close_to_urban_minutes", "must not be negative"),
        ({"default_speed_kmh": 0}, "default_speed_kmh", "must be positive"),
        ({"heartland_density": float("nan")}, "heartland_density", "finite"),
        ({"local_centre_min_pop": 20000}, "local_centre_min_pop", "urban_core_min_pop"),
    ],
)
def test_params_reject_bad_values_naming_the_key(mapping, key, text):
    with pytest.raises(ConfigError) as err:
        Nordic7Params.from_mapping(mapping, source="run.toml")
    assert err.value.key == key
    assert text in str(err.value)
    assert "\n" not in str(err.value)


def test_params_reject_unknown_preset():
    with pytest.raises(ConfigError, match="preset"):
        Nordic7Params.from_preset("degurba")


# --------------------------------------------------------------------------------------
# conversions and helpers
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("radius", "cell", "side"),
    [(1000, 1000, 3), (1000, 250, 9), (1000, 100, 21), (1000, 5000, 1), (2500, 1000, 7),
     (2500, 250, 21), (2500, 100, 51), (2500, 5000, 3), (1500, 1000, 5), (1499, 1000, 3)],
)  # fmt: skip
def test_window_cells(radius, cell, side):
    assert window_cells(radius, cell) == side


def window_mean_twin(values, size):
    """Slow reference: explicit loops over the window, skipping NaN and out-of-grid cells."""
    h = size // 2
    out = np.full(values.shape, np.nan)
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            win = values[max(0, r - h) : r + h + 1, max(0, c - h) : c + h + 1]
            win = win[~np.isnan(win)]
            if win.size:
                out[r, c] = np.inf if np.isinf(win).any() else win.mean()
    return out


@pytest.mark.parametrize("size", [1, 3, 5, 7])
def test_window_mean_equals_loop_twin(size):
    rng = np.random.default_rng(size)
    v = rng.uniform(0, 1000, (9, 11))
    v[rng.random(v.shape) < 0.2] = np.nan
    v[4, 4] = np.inf
    np.testing.assert_allclose(window_mean(v, size), window_mean_twin(v, size), rtol=1e-9)


def test_agri_share_from_landcover_corine():
    assert corine_agri_mapping() == CORINE_AGRICULTURAL
    assert {c for c, v in CORINE_AGRICULTURAL.items() if v} == {
        211, 212, 213, 221, 222, 223, 231, 241, 242, 243, 244,
    }  # fmt: skip
    classes = np.array([[211, 244, 311, 512], [112, 231, 48, 999]])
    share = agri_share_from_landcover(classes, nodata=48)
    np.testing.assert_array_equal(share, [[1, 1, 0, 0], [0, 1, np.nan, np.nan]])
    agg = agri_share_from_landcover(classes, factor=2, nodata=48)
    np.testing.assert_allclose(agg, [[0.75, 0.0]])  # (1 + 1 + 0 + 1) / 4 ; (0 + 0) / 2
    custom = agri_share_from_landcover(np.array([[1, 2]]), {1: 0.5, 2: 0})
    np.testing.assert_array_equal(custom, [[0.5, 0.0]])
    with pytest.raises(ValueError, match="multiple"):
        agri_share_from_landcover(classes, factor=3)
    # any shape at factor 1 (e.g. the valid cells of a raster, flattened)
    np.testing.assert_array_equal(agri_share_from_landcover(np.array([211, 311])), [1.0, 0.0])


# --------------------------------------------------------------------------------------
# steps 1-11
# --------------------------------------------------------------------------------------
def test_step1_water_and_step11_missing():
    pop = np.array([[10.0, 0, 5, 0, 0, np.nan, np.nan]])
    land = np.array([[1.0, 0.3, 0.3, 0.3, 0.0, 1.0, 0.2]])
    built = np.array([[0, 0, 0, 0.01, 0, 0, 0]])
    codes, info = run(pop, land_share=land, built_share=built)
    # 1 and 4: land < 0.5, nobody, nothing built -> water; 2 has residents, 3 is built up;
    # 5 has no population -> 255; 6 has no population but is water -> 0.
    # No settlement of 3,000 anywhere, so nothing is served: the land cells are sparse (7).
    assert codes.tolist() == [[7, 0, 7, 7, 0, 255, 0]]
    assert codes.dtype == np.uint8
    # land_share absent: 1 everywhere, so there is no water
    codes, info = run(pop, built_share=built)
    assert codes.tolist() == [[7, 7, 7, 7, 7, 255, 255]]
    assert info["layers_fallback"]["land_share"] == FALLBACKS["land_share"]


def test_density_is_per_km2_of_land():
    # 200 residents on 0.5 km2 of land = 400/km2 >= 300 -> a settlement cell
    pop = strip({0: 200.0}, 3)
    codes, info = run(pop, land_share=np.array([[0.5, 1, 1]]))
    assert info["settlement_labels"][0, 0] == 1
    assert info["density"][0, 0] == pytest.approx(400.0)
    codes, info = run(pop)
    assert info["settlement_labels"][0, 0] == 0
    # residents on no land: infinitely dense; no land, nobody: NaN (never dense)
    codes, info = run(strip({0: 5.0}, 3), land_share=np.array([[0.0, 0.0, 1.0]]))
    assert np.isinf(info["density"][0, 0]) and np.isnan(info["density"][0, 1])
    assert info["settlement_labels"][0, 0] == 1


def test_step2_settlements_are_queen_connected_and_use_built_share():
    pop = np.zeros((6, 6))
    pop[1, 1] = pop[2, 2] = 2600.0  # diagonal neighbours: one settlement of 5,200
    built = np.zeros((6, 6))
    built[3, 3] = 0.12  # built up, nobody living there: joins the settlement
    built[5, 0] = 0.09  # below settlement_built_share
    codes, info = run(pop, built_share=built)
    assert codes[1, 1] == codes[2, 2] == codes[3, 3] == 4
    assert info["settlement_population"][info["settlement_labels"][1, 1]] == 5200
    assert info["settlement_labels"][5, 0] == 0
    # without built-up share the empty cell is no settlement cell (rural heartland: its
    # 7x7 window holds the town, mean density >= 10)
    codes, info = run(pop)
    assert codes[1, 1] == codes[2, 2] == 4 and codes[3, 3] == 6
    assert "built_share" in info["layers_fallback"]
    # the settlement of 5,200 is below a local-centre threshold of 5,201
    assert run(pop, params=Nordic7Params(local_centre_min_pop=5201))[0][1, 1] == 6


def test_steps_3_to_10_on_a_strip():
    """Core, inner/outer, peri-urban zone, a linked settlement, close to urban, commuting,
    heartland by agricultural share and sparse, along a 1 x 40 strip."""
    pop = strip({0: 8000, 1: 8000, 2: 400, 3: 400, 9: 3000, 10: 3000}, 40)
    comm = strip({30: 0.30, 31: 0.29}, 40)
    agri = strip({i: 0.3 for i in range(35, 40)}, 40)
    codes, info = run(pop, commuting_share=comm, agri_share=agri)
    expected = (
        [1, 1, 1]  # core cells whose 3-cell window averages >= 1,500/km2
        + [2]  # cell 3: window (2, 3, 4) averages 267 -> outer
        + [3] * 5  # cells 4-8: 1..5 minutes from the core
        + [3, 3]  # cells 9-10: settlement with a cell (9) 6 minutes from the core: linked
        + [3] * 4  # cells 11-14: within 4.5 minutes of the linked settlement
        + [5] * 14  # cells 15-28: 12..25 minutes from the core
        + [7]  # cell 29: 26 minutes, no commuting, no agriculture, empty window
        + [5]  # cell 30: commuting share 0.30
        + [7] * 6  # cells 31-36: window mean agri at most 1.5/7 = 0.21 (< 0.25)
        + [6] * 3  # cells 37-39: window mean agri 1.5/6 = 0.25, 0.3, 0.3; served in 27+ min
    )
    assert codes[0].tolist() == expected
    assert info["minutes_to_core"][0, 28] == pytest.approx(25.0)
    assert info["service_minutes_computed"]
    assert info["service_minutes"][0, 37] == pytest.approx(27.0)
    assert info["linked_settlements"][0, 9:11].all()
    assert info["n_cores"] == 1


def test_step6_unlinked_settlement_is_a_local_centre():
    # settlement at cells 12-13 is 9 minutes from the core: not linked -> local centre
    pop = strip({0: 8000, 1: 8000, 2: 400, 3: 400, 12: 3000, 13: 3000}, 20)
    codes, _ = run(pop)
    assert codes[0].tolist() == [1, 1, 1, 2] + [3] * 6 + [5, 5, 4, 4] + [5] * 6


def test_step7_local_centre_thresholds_and_step9_density():
    pop = strip({2: 2500, 3: 2500, 10: 2499.5, 11: 2499.5}, 30)
    codes, info = run(pop)
    # settlement A (5,000) is a local centre; B (4,999) is not, but serves as a service
    # centre (>= 3,000). Heartland: 7-cell window holding a town cell (mean >= 10/km2).
    expected = [6, 6, 4, 4, 6, 6, 6] + [6] * 8 + [7] * 15
    assert codes[0].tolist() == expected
    # service minutes given: beyond 45 minutes means no heartland
    svc = np.zeros((1, 30))
    svc[0, 12:15] = 50.0
    svc[0, 5] = np.nan
    codes, info = run(pop, service_minutes=svc)
    assert codes[0].tolist() == [6, 6, 4, 4, 6, 7, 6] + [6] * 5 + [7] * 3 + [7] * 15
    assert not info["service_minutes_computed"]
    assert "service_minutes" in info["layers_used"]


def test_step9_density_threshold_and_agri_fallback():
    # 70 residents in one cell: 7-cell window means 10/km2 exactly at the cell's neighbours
    # up to 3 cells away when the window is full; a town of 3,000 serves everything.
    pop = strip({0: 3000, 20: 70}, 30)
    codes, info = run(pop)
    assert codes[0, 20] == 6 and codes[0, 17] == 6 and codes[0, 23] == 6
    assert codes[0, 16] == 7 and codes[0, 24] == 7
    assert info["layers_fallback"]["agri_share"] == FALLBACKS["agri_share"]
    codes, _ = run(pop, params=Nordic7Params(heartland_density=10.5))
    assert codes[0, 20] == 7


def test_step3_hole_filling():
    # ring of 40 cells x 500 residents (20,000) around a 3x3 hole: hole <= 15 km2 -> filled
    pop = np.zeros((9, 9))
    pop[1:8, 1:8] = 500.0
    pop[3:6, 3:6] = 0.0
    codes, info = run(pop)
    assert info["filled_holes"].sum() == 9
    assert np.all(np.isin(codes[3:6, 3:6], (1, 2)))
    assert np.all(codes[1:8, 1:8] == 2)  # no window averages 1,500/km2: no inner part
    assert np.all(codes[0] == 3)
    # a 4x4 hole (16 km2) stays open at 1 km ...
    pop = np.zeros((10, 10))
    pop[1:9, 1:9] = 400.0
    pop[3:7, 3:7] = 0.0
    codes, info = run(pop)
    assert info["core_max_gap_cells"] == 15
    assert info["filled_holes"].sum() == 0
    assert np.all(codes[3:7, 3:7] == 3)
    # ... but the same hole of 1 km2 at 250 m is filled (gap = 240 cells)
    codes, info = run(pop * 20, cell_size_m=250)
    assert info["core_max_gap_cells"] == 240
    assert info["filled_holes"].sum() == 16
    assert np.all(np.isin(codes[3:7, 3:7], (1, 2)))
    # a pocket open to the grid edge is not a hole
    pop = np.zeros((9, 9))
    pop[1:8, 1:8] = 500.0
    pop[3:6, 3:9] = 0.0
    codes, info = run(pop)
    assert info["filled_holes"].sum() == 0
    # water inside a filled hole stays water
    pop = np.zeros((9, 9))
    pop[1:8, 1:8] = 500.0
    pop[3:6, 3:6] = 0.0
    land = np.ones((9, 9))
    land[4, 4] = 0.0
    codes, _ = run(pop, land_share=land)
    assert codes[4, 4] == 0 and codes[3, 3] == 2


def test_step4_inner_by_built_share_and_fallback():
    pop = np.full((1, 20), 1000.0)  # 20,000 residents, density 1,000: never inner by density
    built = strip({i: 0.25 for i in range(5)}, 20)
    codes, _ = run(pop, built_share=built)
    # windows: cell 3 = (2, 3, 4) -> 0.25; cell 4 = (3, 4, 5) -> 0.167
    assert codes[0].tolist() == [1] * 4 + [2] * 16
    codes, info = run(pop)
    assert codes[0].tolist() == [2] * 20
    assert info["layers_fallback"]["built_share"] == FALLBACKS["built_share"]


def test_step4_only_the_largest_patch_is_inner():
    base = {0: 5000, 1: 5000, 2: 400, 3: 400, 4: 400, 5: 400, 6: 400, 7: 5000, 8: 5000}
    # windows: cells 0-2 and 6-8 average >= 1,500 -> two patches of 3; tie on size and
    # residents (10,400 each) -> the first in raster order
    codes, _ = run(strip(base, 9))
    assert codes[0].tolist() == [1, 1, 1, 2, 2, 2, 2, 2, 2]
    # more residents on the right: the right patch wins the tie on size
    codes, _ = run(strip({**base, 8: 5100}, 9))
    assert codes[0].tolist() == [2, 2, 2, 2, 2, 2, 1, 1, 1]
    # a bigger patch beats more residents: c3 = c4 = (400 + 4000 + 400) / 3 = 1600, so the
    # left patch is cells 0-4 (5 cells, 14,800 residents) against 6-8 (3 cells, 17,400)
    codes, _ = run(strip({**base, 3: 4000, 8: 12000}, 9))
    assert codes[0].tolist() == [1, 1, 1, 1, 1, 2, 2, 2, 2]


def test_speed_layer_and_water_barrier():
    pop = strip({0: 8000, 1: 8000, 2: 400, 3: 400}, 12)
    codes, info = run(pop, speed_kmh=np.full((1, 12), 30.0))  # 2 minutes per cell
    assert codes[0, 4:7].tolist() == [3, 3, 3] and codes[0, 7] == 5
    assert "speed_kmh" in info["layers_used"]
    # a lake cell at 5 cuts the strip: cells beyond are unreachable from the core
    land = np.ones((1, 12))
    land[0, 5] = 0.0
    codes, info = run(pop, land_share=land)
    assert codes[0, 4] == 3 and codes[0, 5] == 0
    assert np.all(codes[0, 6:] == 7)
    assert info["layers_fallback"]["speed_kmh"] == FALLBACKS["speed_kmh"]
    # a ferry speed over the lake opens it
    speed = np.full((1, 12), np.nan)
    speed[0, 5] = 60.0
    codes, _ = run(pop, land_share=land, speed_kmh=speed)
    # the lake stays water (0), but cells 6-9 are 3..6 minutes from the core again
    assert codes[0, 4:12].tolist() == [3, 0, 3, 3, 3, 3, 5, 5]


def test_computed_service_minutes_are_travel_time_to_3000_settlements():
    rng = np.random.default_rng(1)
    pop = rng.uniform(0, 20, (40, 40))
    pop[5, 5] = 3100.0  # service centre
    pop[30, 30] = 2900.0  # too small
    codes, info = run(pop)
    src = np.zeros((40, 40), bool)
    src[5, 5] = True
    want = minutes_to(src, cell_size_m=1000, max_minutes=45)
    np.testing.assert_allclose(info["service_minutes"], want)
    assert info["layers_fallback"]["service_minutes"] == FALLBACKS["service_minutes"]


def test_fallback_bookkeeping():
    pop = np.zeros((3, 3))
    _, info = run(pop)
    assert info["layers_used"] == ["population"]
    assert set(info["layers_fallback"]) == set(FALLBACKS)
    ones = np.ones((3, 3))
    _, info = run(pop, built_share=ones * 0, land_share=ones, agri_share=ones * 0,
                  commuting_share=ones * 0, service_minutes=ones, speed_kmh=ones * 50,
                  floor_area=ones * 1000, jobs=ones)  # fmt: skip
    assert info["layers_fallback"] == {}
    assert len(info["layers_used"]) == 9
    meta = json.loads(json.dumps(info["metadata"]))  # JSON-serialisable, no arrays
    assert meta["layers_used"] == info["layers_used"]
    assert meta["params"] == Nordic7Params().to_dict()
    assert meta["windows"] == {"inner": 3, "rural": 7}


def test_input_errors():
    pop = np.zeros((3, 3))
    with pytest.raises(InputError, match="share outside 0..1"):
        run(pop, built_share=np.full((3, 3), 250.0))
    with pytest.raises(InputError, match="shape"):
        run(pop, land_share=np.ones((2, 3)))
    with pytest.raises(InputError, match="cell size"):
        run(pop, cell_size_m=50)
    with pytest.raises(InputError, match="negative"):
        run(pop - 1)


def test_resolution_independence_of_a_uniform_region():
    """A uniform town of 2,000/km2 covering 5 x 5 km is an urban core at 1 km and 250 m."""
    for r in (1000, 250):
        f = 1000 // r
        pop = np.zeros((15 * f, 15 * f))
        pop[5 * f : 10 * f, 5 * f : 10 * f] = 2000.0 * (r / 1000) ** 2
        codes, info = run(pop, cell_size_m=r)
        assert info["n_cores"] == 1
        centre = codes[7 * f, 7 * f]
        assert centre == 1
        assert info["windows"] == {"inner": window_cells(1000, r), "rural": window_cells(2500, r)}


# --------------------------------------------------------------------------------------
# the real Belgium grids (population, built-up and land only)
# --------------------------------------------------------------------------------------
def _read(name):
    rasterio = pytest.importorskip("rasterio")
    with rasterio.open(BELGIUM / name) as src:
        return src.read(1, masked=True).astype(np.float64).filled(np.nan), src.res[0]


@pytest.mark.skipif(not BELGIUM.is_dir(), reason="Belgium sample data not present")
def test_belgium_runs_and_records_fallbacks():
    pop, res = _read("POP.tif")
    built, _ = _read("BUILT_S.tif")
    land, _ = _read("LAND.tif")
    cell_m2 = res * res
    codes, info = classify_nordic7_array(
        pop, cell_size_m=res, built_share=built / cell_m2, land_share=land / cell_m2
    )
    assert info["layers_used"] == ["population", "built_share", "land_share"]
    assert set(info["layers_fallback"]) == {
        "agri_share", "commuting_share", "service_minutes", "speed_kmh", "floor_area", "jobs",
    }  # fmt: skip
    assert info["layers_fallback"]["agri_share"] == "rural heartland decided by density only"
    assert info["service_minutes_computed"]
    assert set(np.unique(codes)) <= {0, 1, 2, 3, 4, 5, 6, 7, 255}
    for c in range(1, 8):
        assert info["class_cells"][c] > 0, c
    # every resident is in exactly one class
    total = np.nansum(pop)
    assert sum(info["class_residents"].values()) == pytest.approx(total)
    # the densest cell is urban; every core has at most one (rook-connected) inner patch
    from scipy import ndimage

    r, c = np.unravel_index(np.nanargmax(pop), pop.shape)
    assert codes[r, c] in (1, 2)
    patches, _ = ndimage.label(codes == 1)
    for core in range(1, info["n_cores"] + 1):
        assert len(np.unique(patches[(info["core_labels"] == core) & (codes == 1)])) <= 1
