"""pari_geo reopens its own class rasters (issue 16): rioxarray, read_class_raster, QGIS."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
import rioxarray

import pari_geo
from pari_geo.classes import DEGURBA_L2, NORDIC7
from pari_geo.errors import InputError
from pari_geo.io_write import read_class_raster, write_class_raster
from pari_geo.plot import new_figure


@pytest.fixture(scope="module")
def written(tmp_path_factory, belgium_l2_module):
    out = tmp_path_factory.mktemp("rt") / "l2.tif"
    write_class_raster(belgium_l2_module, out, DEGURBA_L2)
    return out


@pytest.fixture(scope="module")
def belgium_l2_module():
    p = pari_geo.belgium_paths()
    return pari_geo.classify_grid(p["population"], p["built"], p["land"], level=2)


def test_read_class_raster_gives_back_the_result(written, belgium_l2_module):
    back = read_class_raster(written)
    np.testing.assert_array_equal(back.values, belgium_l2_module.values)
    assert back.dtype == np.uint8
    for key in ("class_names", "class_colours", "parameters_hash", "typology"):
        assert back.attrs[key] == belgium_l2_module.attrs[key]
    assert back.attrs["level"] == 2
    assert back.pari.summary() == {**belgium_l2_module.pari.summary(),
                                   "version": back.pari.summary()["version"]}


@pytest.mark.parametrize("masked", [False, True])
def test_rioxarray_opened_file_works_with_accessor_plots_and_explore(written, masked):
    da = rioxarray.open_rasterio(written, masked=masked)
    assert "CLASS_NAMES" in da.attrs  # GDAL upper-cases the tags
    counts = da.pari.counts()
    assert counts[30] == 2145 and counts[10] == 2578
    _, ax = new_figure()
    pari_geo.plot_classes(da, ax=ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "30 Urban centre"
    html = pari_geo.explore(da, tiles=None).get_root().render()
    assert "Urban centre" in html


def test_cf_flags_and_qgis_style(written):
    with rasterio.open(written) as src:
        tags = src.tags()
    assert tags["flag_values"] == "30 23 22 21 13 12 11 10"
    assert tags["flag_meanings"].split()[0] == "urban_centre"
    assert json.loads(tags["CLASS_NAMES"])["10"] == "Water"
    qml = written.with_suffix(".qml")
    entries = ET.parse(qml).getroot().findall(".//paletteEntry")
    assert [(e.get("value"), e.get("label"), e.get("color")) for e in entries][:2] == [
        ("30", "30 Urban centre", "#FF0000"),
        ("23", "23 Dense urban cluster", "#732600"),
    ]


def test_nordic7_run_output_reopens(tmp_path, capsys):
    from pari_geo.cli import main
    from pari_geo.datasets import copy_example

    run_file = copy_example("ostergotland", tmp_path / "ex")
    assert main(["classify", str(run_file.parent / "ostergotland_nordic7.toml"), "--quiet"]) == 0
    out = tmp_path / "ex" / "out" / "ostergotland_nordic7"
    assert (out / "place_types.qml").is_file()
    da = read_class_raster(out / "place_types.tif")
    assert da.rio.nodata == NORDIC7.nodata
    assert da.pari.summary()["title"] == "Place types (nordic7)"
    assert int(da.pari.counts()[1]) == 73


def test_not_a_class_raster_is_one_clear_error(tmp_path):
    p = pari_geo.belgium_paths()["population"]
    with pytest.raises(InputError, match="not a pari_geo class raster"):
        read_class_raster(p)
    with pytest.raises(InputError, match="missing.tif: file not found"):
        read_class_raster(tmp_path / "missing.tif")
    (tmp_path / "junk.tif").write_text("not a raster")
    with pytest.raises(InputError, match="junk.tif: cannot be read as a raster"):
        read_class_raster(tmp_path / "junk.tif")
    da = rioxarray.open_rasterio(p)
    with pytest.raises(InputError, match="pass scheme= explicitly"):
        da.pari.summary()


def test_class_raster_without_crs_is_one_clear_error(tmp_path):
    from helpers import write_tif

    p = write_tif(tmp_path / "nocrs.tif", np.ones((2, 2), np.uint8), crs=None)
    with rasterio.open(p, "r+") as dst:
        dst.update_tags(CLASS_NAMES='{"1": "x"}')
    with pytest.raises(InputError, match="nocrs.tif: has no CRS"):
        read_class_raster(p)
