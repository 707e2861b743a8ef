"""Issue 14 item 7: calibration against a reference classification."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import write_tif

import pari_geo
from pari_geo.errors import ConfigError, InputError
from pari_geo.typology.agreement import compare_classes
from pari_geo.typology.calibrate import calibrate, calibrate_arrays
from pari_geo.typology.classify import classify_nordic7, load_nordic7_inputs
from pari_geo.typology.nordic7 import Nordic7Params, classify_nordic7_array

KNOWN = {"close_to_urban_minutes": 15.0, "heartland_density": 20.0, "inner_density": 2500.0}


@pytest.fixture(scope="module")
def sample():
    p = pari_geo.ostergotland_paths()
    inputs = {"population": p["population"], "built": p["built_share"],
              "land": p["land_share"], "agri": p["agri_share"],
              "commuting": p["commuting_share"]}
    return p, inputs


def test_recovers_known_non_default_parameters(sample):
    p, inputs = sample
    truth = classify_nordic7(**inputs, **KNOWN)
    fit = calibrate(inputs, truth, fit=list(KNOWN))
    assert fit.agreement == 1.0 and fit.kappa == pytest.approx(1.0)
    assert fit.start.agreement < 1.0
    # the fitted values give the reference's classes (a step function: not always the
    # very same numbers, but the same classes)
    again = classify_nordic7(**inputs, **fit.params)
    np.testing.assert_array_equal(again.values, truth.values)
    np.testing.assert_array_equal(fit.classes, truth.values)
    assert fit.confusion.values.trace() == fit.fitted.n_cells


def test_figures_on_a_reference_made_by_another_rule(sample):
    p, inputs = sample
    loaded = load_nordic7_inputs(**{"population": inputs["population"]})
    pop = loaded.population
    # another rule: classes by density alone (1: >= 1500/km2, 4: >= 300, 6: >= 10, 7 rest)
    ref = np.select([np.isnan(pop), pop >= 1500, pop >= 300, pop >= 10], [255, 1, 4, 6], 7)
    fit = calibrate({"population": inputs["population"]}, ref.astype(np.uint8),
                    fit=["heartland_density", "local_centre_min_pop"])
    start_codes, _ = classify_nordic7_array(pop, cell_size_m=1000)
    want_start = compare_classes(ref, start_codes)
    assert fit.start.agreement == pytest.approx(want_start.agreement)
    assert fit.start.kappa == pytest.approx(want_start.kappa)
    assert fit.start.confusion.equals(want_start.confusion)
    want = compare_classes(ref, classify_nordic7_array(pop, cell_size_m=1000,
                                                       params=fit.parameters)[0])
    assert fit.agreement == pytest.approx(want.agreement) and fit.agreement < 1.0
    assert fit.kappa == pytest.approx(want.kappa)
    assert fit.agreement >= fit.start.agreement
    d = json.loads(json.dumps(fit.to_dict()))
    assert set(d) >= {"params", "agreement", "kappa", "start"}


def test_cached_runs_give_the_classes_of_a_fresh_run():
    rng = np.random.default_rng(5)
    pop = rng.gamma(0.4, 40.0, (60, 60))
    pop[20:26, 20:26] += 1500.0
    pop[45, 10] += 6000.0
    truth, _ = classify_nordic7_array(pop, cell_size_m=500, params=Nordic7Params(
        close_to_urban_minutes=9, peri_urban_core_minutes=3, sparse_service_minutes=20))
    fit = calibrate_arrays(pop, truth, cell_size_m=500, fit="close_to_urban_minutes,"
                           "peri_urban_core_minutes,sparse_service_minutes")
    fresh, _ = classify_nordic7_array(pop, cell_size_m=500, params=fit.parameters)
    np.testing.assert_array_equal(fit.classes, fresh)
    assert fit.agreement == 1.0


def test_reference_points_with_a_class_column(sample, tmp_path):
    import geopandas as gpd

    p, inputs = sample
    truth = classify_nordic7(inputs["population"], heartland_density=30)
    ys, xs = np.nonzero(truth.values != 255)
    t = truth.rio.transform()
    pts = gpd.GeoDataFrame({"class": truth.values[ys, xs].astype(int)},
                           geometry=gpd.points_from_xy(t.c + (xs + 0.5) * t.a,
                                                       t.f + (ys + 0.5) * t.e),
                           crs=truth.rio.crs)
    path = tmp_path / "typology_points.gpkg"
    pts.to_file(path)
    fit = calibrate({"population": inputs["population"]}, path, class_column="class",
                    fit=["heartland_density"])
    assert fit.agreement == 1.0


def test_bad_inputs_get_one_clear_line(sample, tmp_path):
    from affine import Affine

    p, inputs = sample
    pop_only = {"population": inputs["population"]}
    truth = classify_nordic7(inputs["population"])
    with pytest.raises(ConfigError, match="'heartland_dens' is not a nordic7 parameter"):
        calibrate(pop_only, truth, fit=["heartland_dens"])
    bad = truth.values.astype(np.int16)
    bad[50, 50] = 9
    with pytest.raises(InputError, match=r"classes outside 0\.\.7: \[9\]"):
        calibrate(pop_only, bad, fit=["heartland_density"])
    other_crs = write_tif(tmp_path / "ref_3035.tif", np.ones((10, 10), np.uint8) * 7,
                          crs="EPSG:3035", transform=Affine(1000, 0, 4.5e6, 0, -1000, 3.9e6),
                          dtype="uint8")
    with pytest.raises(InputError, match="ref_3035.tif") as err:
        calibrate(pop_only, other_crs, fit=["heartland_density"])
    assert "\n" not in str(err.value) and "EPSG:3035" in str(err.value)
    with pytest.raises(ConfigError, match="objective"):
        calibrate(pop_only, truth, fit=["heartland_density"], objective="f1")


def test_cli_calibrate_writes_the_fit_and_a_run_file_that_reproduces_it(tmp_path):
    import shutil

    import rasterio

    from pari_geo.classes import NORDIC7
    from pari_geo.cli import main
    from pari_geo.io_write import write_class_raster

    pari_geo.copy_example("ostergotland", tmp_path / "ex")
    run_file = tmp_path / "ex" / "examples" / "ostergotland_nordic7.toml"
    p = pari_geo.ostergotland_paths()
    truth = classify_nordic7(p["population"], built=p["built_share"], land=p["land_share"],
                             agri=p["agri_share"], commuting=p["commuting_share"],
                             service_minutes=p["service_minutes"], heartland_density=25)
    ref = write_class_raster(truth, tmp_path / "reference.tif", NORDIC7)
    out = tmp_path / "cal"
    args = ["calibrate", str(run_file), "--reference", str(ref), "--fit",
            "heartland_density,close_to_urban_minutes", "--out", str(out)]
    assert main(args) == 0
    data = json.loads((out / "calibration.json").read_text())
    assert {"params", "agreement", "kappa", "start"} <= set(data)
    assert data["agreement"] == 1.0 and data["start"]["agreement"] < 1.0
    assert set(data["params"]) == {"heartland_density", "close_to_urban_minutes"}
    for name in ("calibrated.toml", "disagreement.tif", "disagreement.png",
                 "place_types.tif", "provenance.json"):
        assert (out / name).is_file(), name
    # the calibrated run file reproduces the fitted classes
    text = (out / "calibrated.toml").read_text()
    text = text.replace(text.split('dir = "')[1].split('"')[0], str(tmp_path / "again"))
    (tmp_path / "calibrated.toml").write_text(text)
    assert main(["classify", str(tmp_path / "calibrated.toml"), "--quiet"]) == 0
    with rasterio.open(tmp_path / "again" / "place_types.tif") as src:
        np.testing.assert_array_equal(src.read(1), truth.values)
    # the output folder is replaced only with --overwrite; a foreign folder never
    assert main(args) == 2
    assert main([*args, "--overwrite"]) == 0
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main([*args[:-1], str(foreign), "--overwrite"]) == 2
    assert (foreign / "notes.txt").read_text() == "mine"
    shutil.rmtree(out)


def test_cli_calibrate_refuses_a_degurba_run_and_unknown_names(tmp_path, capsys):
    from pari_geo.cli import main

    pari_geo.copy_example("ostergotland", tmp_path / "ex")
    nordic = tmp_path / "ex" / "examples" / "ostergotland_nordic7.toml"
    ref = tmp_path / "ref.tif"
    p = pari_geo.ostergotland_paths()
    from pari_geo.classes import NORDIC7
    from pari_geo.io_write import write_class_raster

    write_class_raster(classify_nordic7(p["population"]), ref, NORDIC7)
    assert main(["calibrate", str(nordic), "--reference", str(ref), "--fit", "nope",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "'nope' is not a nordic7 parameter" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_review_edges_of_calibration():
    from pari_geo.typology.calibrate import candidate_values

    rng = np.random.default_rng(2)
    pop = rng.gamma(0.4, 30.0, (50, 50))
    pop[10:13, 10:13] += 2500.0
    pop[20, 24] += 500.0  # a locality about 15 km from the core
    slow = np.full(pop.shape, 20.0)
    truth, _ = classify_nordic7_array(pop, cell_size_m=1000, speed_kmh=slow,
                                      params=Nordic7Params(link_distance_m=20000))
    default, _ = classify_nordic7_array(pop, cell_size_m=1000, speed_kmh=slow)
    assert (default != truth).any()
    # a parameter that starts at 0 (the rule off) is searched on its presets' scale
    assert max(candidate_values("link_distance_m", 0.0)) >= 3000 * 4
    fit = calibrate_arrays(pop, truth, cell_size_m=1000, fit=["link_distance_m"],
                           speed_kmh=slow)
    assert fit.params["link_distance_m"] > 0 and fit.agreement == 1.0
    # a scalar speed works with the reused travel times
    fit = calibrate_arrays(pop, truth, cell_size_m=1000, fit=["close_to_urban_minutes"],
                           speed_kmh=40.0)
    assert 0 < fit.agreement <= 1
    with pytest.raises(InputError, match="no place type"):
        calibrate_arrays(pop, np.where(truth == 0, 0, 255).astype(np.uint8) * 0,
                         cell_size_m=1000, fit=["heartland_density"])
    with pytest.raises(ConfigError, match="grid.heartland_density"):
        calibrate_arrays(pop, truth, cell_size_m=1000, fit=["heartland_density"],
                         grid={"heartland_density": ["x"]})


def test_unknown_input_names_are_refused(sample):
    p, inputs = sample
    with pytest.raises(ConfigError, match="inputs.floorarea"):
        calibrate({"population": inputs["population"], "floorarea": inputs["built"]},
                  np.zeros((1, 1)), fit=["heartland_density"])
