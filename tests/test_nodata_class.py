"""The opt-in no-data class of DEGURBA (issue 16 item 3): cells without population.

By default a cell whose population is missing counts as 0 residents, as the reference
does (in Belgium: 1,910 cells, all "Water"). With ``nodata=255`` (``[typology] nodata``,
``--nodata``) exactly those cells get 255, the raster's no-data, and every other cell keeps
its class, in memory and by tiles; the code survives writing and reopening.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from helpers import write_tif

import pari_geo
from pari_geo.classes import DEGURBA_L2, check_nodata
from pari_geo.errors import ConfigError
from pari_geo.io_write import read_class_raster, write_class_raster
from pari_geo.report import population_by_class, scheme_from_attrs
from pari_geo.typology.degurba import classify_grid
from pari_geo.typology.degurba_tiled import classify_grid_chunked


@pytest.fixture(scope="module")
def belgium():
    return pari_geo.belgium_paths()


@pytest.fixture(scope="module")
def belgium_missing(belgium):
    with rasterio.open(belgium["population"]) as src:
        pop = src.read(1, masked=True)
    return np.ma.getmaskarray(pop) | np.isnan(pop.filled(0.0))


def _town(tmp_path, pop_dtype="float32", pop_nodata=None):
    """A 9 x 9 km grid with a 5 x 5 town of 3,000 residents per cell (75,000: an urban
    centre), one missing cell in its middle and one in the far corner."""
    pop = np.full((9, 9), 20.0)
    pop[2:7, 2:7] = 3000.0
    missing = np.zeros((9, 9), dtype=bool)
    missing[4, 4] = missing[0, 8] = True
    if pop_nodata is None:
        pop[missing] = np.nan
    else:
        pop[missing] = pop_nodata
    paths = {
        "population": write_tif(tmp_path / "pop.tif", pop, dtype=pop_dtype, nodata=pop_nodata),
        "built": write_tif(tmp_path / "built.tif", np.full((9, 9), 1e5), dtype="float32"),
        "land": write_tif(tmp_path / "land.tif", np.full((9, 9), 1e6), dtype="float32"),
    }
    return paths, missing


@pytest.mark.parametrize("level", [1, 2])
def test_known_answer_missing_cells_get_the_code_and_nothing_else_changes(tmp_path, level):
    p, missing = _town(tmp_path)
    ref = classify_grid(p["population"], p["built"], p["land"], level=level)
    out = classify_grid(p["population"], p["built"], p["land"], level=level, nodata=255)
    centre = 3 if level == 1 else 30
    # the reference counts the hole in the town as 0 residents and fills it into the centre
    assert ref.values[4, 4] == centre
    np.testing.assert_array_equal(out.values[missing], 255)
    np.testing.assert_array_equal(out.values[~missing], ref.values[~missing])
    assert out.rio.nodata == 255
    assert ref.rio.nodata is None


def test_integer_population_with_a_nodata_value(tmp_path):
    p, missing = _town(tmp_path, pop_dtype="int32", pop_nodata=-1)
    out = classify_grid(p["population"], p["built"], p["land"], level=2, nodata=200)
    np.testing.assert_array_equal(np.argwhere(out.values == 200), np.argwhere(missing))


@pytest.mark.parametrize("level", [1, 2])
def test_belgium_missing_cells_only_in_memory_and_by_tiles(belgium, belgium_missing, tmp_path,
                                                           level):
    b = belgium
    ref = classify_grid(b["population"], b["built"], b["land"], level=level)
    out = classify_grid(b["population"], b["built"], b["land"], level=level, nodata=255)
    assert int(belgium_missing.sum()) == 1910
    np.testing.assert_array_equal(out.values == 255, belgium_missing)
    np.testing.assert_array_equal(out.values[~belgium_missing], ref.values[~belgium_missing])
    # the reference makes all of them water (no residents, some land missing)
    assert set(np.unique(ref.values[belgium_missing]).tolist()) == {0 if level == 1 else 10}
    res = classify_grid_chunked(b["population"], b["built"], b["land"], level=level,
                                out_path=tmp_path / "tiled.tif", tile_shape=(61, 47),
                                nodata=255)
    assert res.counts[255] == 1910
    tiled = read_class_raster(res.path)
    np.testing.assert_array_equal(tiled.values, out.values)
    assert tiled.rio.nodata == 255


def test_auto_engine_tiled_gives_the_same(belgium, tmp_path):
    b = belgium
    mem = classify_grid(b["population"], b["built"], b["land"], nodata=255)
    tiled = classify_grid(b["population"], b["built"], b["land"], nodata=255, engine="tiled",
                          tile_shape=(128, 128), workdir=tmp_path)
    np.testing.assert_array_equal(tiled.values, mem.values)
    assert tiled.rio.nodata == 255


def test_written_reopened_tables_and_maps(belgium, tmp_path):
    b = belgium
    da = classify_grid(b["population"], b["built"], b["land"], level=2, nodata=255)
    scheme = scheme_from_attrs(da)
    assert scheme.nodata == 255 and scheme.codes == DEGURBA_L2.codes
    out = write_class_raster(da, tmp_path / "l2.tif", scheme)
    with rasterio.open(out) as src:
        assert src.nodata == 255
        assert src.colormap(1)[255] == (0, 0, 0, 0)  # transparent in QGIS and maps
    back = read_class_raster(out)
    assert scheme_from_attrs(back).nodata == 255
    assert back.pari.summary()["nodata_cells"] == 1910
    with rasterio.open(b["population"]) as src:
        pop = src.read(1, masked=True).filled(0.0)
    table = population_by_class(back, pop, scheme_from_attrs(back), cell_area_km2=1.0)
    row = table.set_index("code").loc[255]
    assert row["cells"] == 1910 and row["population"] == 0
    from pari_geo.plot import new_figure

    _, ax = new_figure()
    pari_geo.plot_classes(back, ax=ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert not any(lbl.startswith("255") for lbl in labels)


def test_custom_codes_and_nodata(belgium, belgium_missing):
    b = belgium
    out = classify_grid(b["population"], b["built"], b["land"], level=1,
                        values=(13, 12, 11, 10), nodata=0)
    np.testing.assert_array_equal(out.values == 0, belgium_missing)
    assert set(np.unique(out.values).tolist()) == {13, 12, 11, 10, 0}
    assert scheme_from_attrs(out).nodata == 0


@pytest.mark.parametrize("bad, problem", [
    (10, "10 is a class code"),
    (256, "must be an integer code 0..255"),
    (-1, "must be an integer code 0..255"),
    (True, "must be an integer code 0..255"),
    (2.5, "must be an integer code 0..255"),
])
def test_bad_nodata_is_one_clear_error(belgium, tmp_path, bad, problem):
    b = belgium
    with pytest.raises(ConfigError, match=f"parameter 'nodata': {problem}"):
        classify_grid(b["population"], b["built"], b["land"], level=2, nodata=bad)
    with pytest.raises(ConfigError, match=problem):
        classify_grid_chunked(b["population"], b["built"], b["land"], level=2, nodata=bad,
                              out_path=tmp_path / "x.tif")
    assert not (tmp_path / "x.tif").exists()


def test_check_nodata_accepts_numpy_integers():
    assert check_nodata(np.uint8(255), (3, 2, 1, 0)) == 255


def test_cli_nodata(belgium, tmp_path, capsys):
    from pari_geo.cli import main

    args = ["degurba", "grid", "--population", str(belgium["population"]), "--built",
            str(belgium["built"]), "--land", str(belgium["land"])]
    out = tmp_path / "l2.tif"
    assert main([*args, "--nodata", "255", "--out", str(out)]) == 0
    with rasterio.open(out) as src:
        assert src.nodata == 255 and int((src.read(1) == 255).sum()) == 1910
    capsys.readouterr()
    assert main([*args, "--nodata", "30", "--out", str(tmp_path / "bad.tif")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "typology.nodata" in err[0] and "30 is a class code" in err[0]
    assert not (tmp_path / "bad.tif").exists()


def test_run_file_class_table_has_custom_codes_and_nodata(belgium, tmp_path):
    """``pari-geo classify`` with ``values`` and ``nodata``: the tables name the custom
    codes (the class table used to be built without ``values``) and the no-data row."""
    import pandas as pd

    from pari_geo.pipeline import run_classification
    from pari_geo.runconfig import load_run

    run = tmp_path / "run.toml"
    run.write_text(
        "[inputs]\n"
        f'population = "{belgium["population"]}"\n'
        f'built = "{belgium["built"]}"\n'
        f'land = "{belgium["land"]}"\n'
        "[typology]\nname = \"degurba\"\nlevel = 1\nnodata = 255\n"
        "[typology.parameters]\nvalues = [13, 12, 11, 10]\n"
        f'[outputs]\ndir = "{tmp_path / "out"}"\nmap = false\n',
        encoding="utf-8",
    )
    cfg = load_run(run)
    from pari_geo.typology import registry

    scheme = registry.get("degurba").scheme(cfg, None)  # as `pari-geo run` builds it
    assert scheme.codes == (13, 12, 11, 10) and scheme.nodata == 255
    run_classification(cfg, progress=False)
    table = pd.read_csv(tmp_path / "out" / "degurba_l1_population_by_class.csv")
    assert table["code"].tolist() == [13, 12, 11, 10, 255]
    assert table["name"].tolist()[0] == "Urban centre"
    assert table.set_index("code").loc[255, "cells"] == 1910


def test_nodata_with_a_buffer_crop(belgium, belgium_missing):
    b = belgium
    out = classify_grid(b["population"], b["built"], b["land"], nodata=255, buffer_m=5000)
    np.testing.assert_array_equal(out.values == 255, belgium_missing[5:-5, 5:-5])
    assert out.rio.nodata == 255


def test_custom_codes_and_nodata_by_tiles(belgium, belgium_missing, tmp_path):
    b = belgium
    res = classify_grid_chunked(b["population"], b["built"], b["land"], level=1,
                                values=(13, 12, 11, 10), nodata=0,
                                out_path=tmp_path / "l1.tif", tile_shape=(50, 70))
    back = read_class_raster(res.path)
    np.testing.assert_array_equal(back.values == 0, belgium_missing)
    assert back.rio.nodata == 0 and scheme_from_attrs(back).nodata == 0
