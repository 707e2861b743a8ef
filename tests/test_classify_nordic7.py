"""`classify_nordic7` on georeferenced layers and `pari-geo classify` with nordic7 run files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from helpers import write_tif

from pari_geo.cli import main
from pari_geo.errors import InputError
from pari_geo.typology.classify import classify_nordic7

ROOT = Path(__file__).resolve().parents[1]
OST = ROOT / "data" / "sample_grids" / "ostergotland"


def test_belgium_nordic7_records_fallbacks(belgium):
    pt = classify_nordic7(
        belgium["population"],
        built=belgium["built"],
        land=belgium["land"],
        built_unit="m2",
        land_unit="m2",
    )
    assert pt.dtype == np.uint8 and pt.shape == (219, 303)
    used = json.loads(pt.attrs["layers_used"])
    fallback = json.loads(pt.attrs["layers_fallback"])
    assert {"population", "built_share", "land_share"} <= set(used)
    assert set(fallback) == {"agri_share", "commuting_share", "service_minutes", "speed_kmh",
                             "floor_area", "jobs"}
    assert set(np.unique(pt.values).tolist()) <= {0, 1, 2, 3, 4, 5, 6, 7, 255}
    # water of nordic7 (land < 0.5, no residents, no built-up) = DEGURBA's default water test
    assert int((pt.values == 0).sum()) == 2578


def test_landcover_is_turned_into_agricultural_share(tmp_path):
    # 2 x 2 grid of 1 km; land cover at 500 m: CORINE 211 (arable) and 311 (forest)
    pop = write_tif(
        tmp_path / "pop.tif",
        np.full((2, 2), 5.0, np.float32),
        crs="EPSG:3006",
        transform=Affine(1000, 0, 0, 0, -1000, 2000),
    )
    lc = np.array(
        [[211, 211, 311, 311], [211, 311, 311, 311], [211, 211, 211, 211], [211, 211, 211, 211]],
        np.int16,
    )
    lc_path = write_tif(
        tmp_path / "lc.tif", lc, crs="EPSG:3006", transform=Affine(500, 0, 0, 0, -500, 2000)
    )
    pt = classify_nordic7(pop, landcover=lc_path)
    assert "agri_share" in json.loads(pt.attrs["layers_used"])
    bad = lc.copy()
    bad[0, 0] = 999
    bad_path = write_tif(
        tmp_path / "bad.tif", bad, crs="EPSG:3006", transform=Affine(500, 0, 0, 0, -500, 2000)
    )
    with pytest.raises(InputError, match=r"classes missing from the agricultural mapping: \[999\]"):
        classify_nordic7(pop, landcover=bad_path)


@pytest.fixture()
def run_dir(tmp_path):
    shutil.copy(ROOT / "examples" / "ostergotland_nordic7.toml", tmp_path / "run.toml")
    text = (tmp_path / "run.toml").read_text().replace("../data/", f"{ROOT}/data/")
    text = text.replace('dir = "../out/ostergotland_nordic7"', 'dir = "out"')
    (tmp_path / "run.toml").write_text(text)
    return tmp_path


def test_ostergotland_run_outputs(run_dir, capsys):
    assert main(["classify", str(run_dir / "run.toml"), "--quiet"]) == 0
    out = run_dir / "out"
    with rasterio.open(out / "place_types.tif") as src:
        codes = src.read(1)
        tags = src.tags()
        assert src.colormap(1)[1][:3] == (0x7F, 0, 0)
        assert src.nodata == 255
    assert set(np.unique(codes).tolist()) == {0, 1, 2, 3, 4, 5, 6, 7, 255}
    assert json.loads(tags["PARAMETERS"])["urban_core_min_pop"] == 15000
    # speed, floor area and jobs fall back (the example gives none of them)
    assert set(json.loads(tags["LAYERS_FALLBACK"])) == {"speed_kmh", "floor_area", "jobs"}
    # residents per municipality summed over the classes equal the municipality's residents
    by_unit = pd.read_csv(out / "place_types_by_unit.csv", dtype={"code": str})
    munis = gpd.read_file(OST / "municipalities.gpkg")
    merged = by_unit.merge(munis[["code", "population"]], on="code")
    assert len(merged) == 13
    res_cols = [c for c in by_unit.columns if c.startswith("residents_")]
    np.testing.assert_allclose(merged[res_cols].sum(axis=1), merged["population"], rtol=1e-9)
    assert len(gpd.read_file(out / "place_types_by_unit.gpkg")) == 13
    assert (out / "place_types.png").stat().st_size > 10_000


def _edit(run_dir, old, new):
    f = run_dir / "run.toml"
    f.write_text(f.read_text().replace(old, new))
    return f


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            'preset = "nordregio"',
            'preset = "nordregio"\nsettlement_densty = 3',
            "typology.settlement_densty",
        ),
        ("# e.g. urban_core_min_pop = 15000", 'urban_core_min_pop = "many"', "urban_core_min_pop"),
        ("population.tif", "nope.tif", "nope.tif [population]: file not found"),
    ],
)
def test_bad_configuration_one_line_nothing_written(run_dir, capsys, old, new, message):
    f = _edit(run_dir, old, new)
    assert main(["classify", str(f), "--quiet"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (run_dir / "out").exists()


def test_degrees_non_overlap_and_share_outside(run_dir, capsys):
    a = np.full((5, 5), 0.5, np.float32)
    geo = write_tif(
        run_dir / "geo.tif", a, crs="EPSG:4326", transform=Affine(0.01, 0, 15.0, 0, -0.01, 58.5)
    )
    far = write_tif(
        run_dir / "far.tif", a, crs="EPSG:3006", transform=Affine(1000, 0, 9e6, 0, -1000, 9e6)
    )
    big = write_tif(
        run_dir / "big.tif",
        np.full((145, 155), 1.5, np.float32),  # covers the whole grid (issue 12)
        crs="EPSG:3006",
        transform=Affine(1000, 0, 465000, 0, -1000, 6540000),
    )
    for path, message in (
        (geo, "geographic CRS"),
        (far, "does not overlap"),
        (big, "outside 0..1"),
    ):
        text = (run_dir / "run.toml").read_text()
        f = run_dir / "bad.toml"
        f.write_text(
            text.replace(f"{ROOT}/data/sample_grids/ostergotland/agri_share.tif", str(path))
        )
        assert main(["classify", str(f), "--quiet"]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert not (run_dir / "out").exists()


def test_engine_tiled_gives_the_in_memory_classes(tmp_path):
    layers = {"land": OST / "land_share.tif", "built": OST / "built_share.tif",
              "agri": OST / "agri_share.tif", "commuting": OST / "commuting_share.tif"}
    ref = classify_nordic7(OST / "population.tif", engine="memory", **layers)
    got = classify_nordic7(OST / "population.tif", engine="tiled", tile_shape=(37, 41),
                           workdir=tmp_path, **layers)
    np.testing.assert_array_equal(got.values, ref.values)
    assert got.attrs["parameters_hash"] == ref.attrs["parameters_hash"]
    assert json.loads(got.attrs["layers_fallback"]) == json.loads(ref.attrs["layers_fallback"])
    auto = classify_nordic7(OST / "population.tif", **layers)  # a small grid: in memory
    np.testing.assert_array_equal(auto.values, ref.values)


def test_engine_choice_errors():
    from pari_geo.errors import ConfigError

    with pytest.raises(ConfigError, match="engine"):
        classify_nordic7(OST / "population.tif", engine="gpu")
    with pytest.raises(ConfigError, match="scheduler"):
        classify_nordic7(OST / "population.tif", engine="memory", scheduler="tcp://x:1")
