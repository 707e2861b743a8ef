"""Outputs: COG layout, palette, tags, atomic writes, overwrite protection, determinism."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import rasterio
from affine import Affine

from pari_geo.classes import DEGURBA_L2
from pari_geo.errors import OutputError
from pari_geo.grid import GridSpec
from pari_geo.io_write import atomic_dir, atomic_path, write_class_raster, write_table


def test_class_raster_is_tiled_deflate_uint8_with_smod_colours_and_tags(belgium_l2, tmp_path):
    out = write_class_raster(belgium_l2, tmp_path / "l2.tif", DEGURBA_L2)
    with rasterio.open(out) as src:
        assert src.dtypes == ("uint8",)
        assert src.profile["tiled"] and src.profile["compress"] == "deflate"
        assert src.overviews(1)  # COG layout with overviews
        cmap = src.colormap(1)
        expected = {
            30: "#FF0000",
            23: "#732600",
            22: "#A87000",
            21: "#FFFF00",
            13: "#375623",
            12: "#ABCD66",
            11: "#CDF57A",
            10: "#7AB6F5",
        }
        for code, hexcol in expected.items():
            r, g, b = (int(hexcol[i : i + 2], 16) for i in (1, 3, 5))
            assert cmap[code][:3] == (r, g, b)
        tags = src.tags()
        assert json.loads(tags["CLASS_NAMES"])["22"] == "Semi-dense urban cluster"
        assert json.loads(tags["PARAMETERS"])["UC_density_threshold"] == 1500
        assert tags["PARI_GEO_VERSION"]
        assert tags["PARAMETERS_HASH"] == belgium_l2.attrs["parameters_hash"]
        np.testing.assert_array_equal(src.read(1), belgium_l2.values)


def test_same_result_gives_identical_bytes(belgium_l2, tmp_path):
    a = write_class_raster(belgium_l2, tmp_path / "a.tif", DEGURBA_L2)
    b = write_class_raster(belgium_l2, tmp_path / "b.tif", DEGURBA_L2)
    assert a.read_bytes() == b.read_bytes()


def test_existing_output_needs_overwrite(belgium_l2, tmp_path):
    target = tmp_path / "l2.tif"
    target.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="exists"):
        write_class_raster(belgium_l2, target, DEGURBA_L2)
    assert target.read_bytes() == b"keep me"
    # issue 12: --overwrite replaces only what pari_geo wrote
    with pytest.raises(OutputError, match="not written by pari_geo"):
        write_class_raster(belgium_l2, target, DEGURBA_L2, overwrite=True)
    assert target.read_bytes() == b"keep me"
    target.unlink()
    write_class_raster(belgium_l2, target, DEGURBA_L2)
    before = target.read_bytes()
    write_class_raster(belgium_l2[1:, 1:], target, DEGURBA_L2, overwrite=True)
    assert target.read_bytes() != before


def test_missing_output_directory(belgium_l2, tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        write_class_raster(belgium_l2, tmp_path / "nope" / "l2.tif", DEGURBA_L2)


def test_read_only_directory(belgium_l2, tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):  # root ignores permission bits: simulate what a user sees
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(ro) else real(p, m))
    with pytest.raises(OutputError, match="not writable"):
        write_class_raster(belgium_l2, ro / "l2.tif", DEGURBA_L2)
    assert list(ro.iterdir()) == []


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "t.csv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full (simulated)")
    assert list(tmp_path.iterdir()) == []


def test_failed_run_directory_leaves_nothing_and_keeps_old(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "provenance.json").write_text('{"pari_geo_version": "0"}')
    (target / "summary.md").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target, overwrite=True) as stage:
        (stage / "summary.md").write_text("new")
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (target / "summary.md").read_text() == "old"
    with atomic_dir(target, overwrite=True) as stage:
        (stage / "summary.md").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["summary.md"]


def test_tables_csv_gpkg_parquet(tmp_path, belgium):
    import geopandas as gpd

    units = gpd.read_file(belgium["units"]).head(3)
    for suffix in (".csv", ".gpkg", ".parquet"):
        write_table(units, tmp_path / f"u{suffix}")
    assert (tmp_path / "u.csv").read_text().splitlines()[0].startswith("UID")
    assert len(gpd.read_file(tmp_path / "u.gpkg")) == 3
    with pytest.raises(OutputError, match="unknown table format"):
        write_table(units, tmp_path / "u.xlsx")


def test_custom_codes_keep_colours(tmp_path):
    g = GridSpec("ESRI:54009", Affine(1000, 0, 0, 0, -1000, 1000), (1, 2))
    scheme = DEGURBA_L2.with_codes((8, 7, 6, 5, 4, 3, 2, 1))
    out = write_class_raster(
        g.to_dataarray(np.array([[8, 1]], np.uint8)), tmp_path / "c.tif", scheme
    )
    with rasterio.open(out) as src:
        assert src.colormap(1)[8][:3] == (255, 0, 0)
        assert src.colormap(1)[1][:3] == (0x7A, 0xB6, 0xF5)


def test_parquet_without_pyarrow_is_one_clear_error(tmp_path, monkeypatch):
    import sys

    import pandas as pd

    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import now fails
    with pytest.raises(OutputError, match=r"t\.parquet.*needs pyarrow"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet")
    assert list(tmp_path.iterdir()) == []
