"""Issue 8: same inputs and parameters give byte-identical outputs.

``pari-geo classify examples/belgium_degurba.toml`` run twice into two folders gives the same
GeoTIFF, CSV, GeoPackage (``gpkg_contents.last_change`` is fixed by ``io_write``, see
``GPKG_FIXED_DATE``), PNG (no timestamp chunk) and provenance; and the result does not depend
on numba's thread count.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_file(tmp_path: Path, out: Path) -> Path:
    text = (ROOT / "examples" / "belgium_degurba.toml").read_text()
    text = text.replace("../data/", f"{ROOT / 'data'}/").replace(
        'dir = "../out/belgium_degurba"', f'dir = "{out}"'
    )
    f = tmp_path / "run.toml"
    f.write_text(text)
    return f


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    from pari_geo.cli import main

    tmp = tmp_path_factory.mktemp("repro")
    out = tmp / "runs" / "out"
    run_file = _run_file(tmp, out)
    outs = []
    # the run folder's path is part of the recorded configuration (provenance, tags), so
    # both runs write to the same path and the first result is moved aside
    for name in ("a", "b"):
        assert main(["classify", str(run_file), "--quiet"]) == 0
        outs.append(out.rename(tmp / name))
    return outs


def test_every_output_is_byte_identical(two_runs):
    a, b = (_files(d) for d in two_runs)
    assert sorted(a) == sorted(b)
    assert {Path(n).suffix for n in a} >= {".tif", ".csv", ".gpkg", ".png", ".json"}
    differ = [n for n in a if a[n] != b[n]]
    assert differ == []


def test_no_timestamps_in_png_and_gpkg(two_runs):
    import sqlite3

    from pari_geo.io_write import GPKG_FIXED_DATE

    d = two_runs[0]
    png = (d / "degurba_l2.png").read_bytes()
    assert b"tIME" not in png and b"Creation Time" not in png
    for gpkg in d.glob("*.gpkg"):
        with sqlite3.connect(gpkg) as con:
            dates = {r[0] for r in con.execute("select last_change from gpkg_contents")}
        assert dates == {GPKG_FIXED_DATE}


def test_gpkg_date_option_is_restored(tmp_path):
    import geopandas as gpd
    import pyogrio
    from shapely.geometry import box

    from pari_geo.io_write import write_table

    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})
    gdf = gpd.GeoDataFrame({"a": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:3035")
    write_table(gdf, tmp_path / "t.gpkg")
    assert pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") is None


_THREADS_SCRIPT = """
import hashlib, sys
from pari_geo.datasets import belgium_paths
from pari_geo.typology.degurba import classify_grid
from pari_geo.classes import DEGURBA_L2
from pari_geo.io_write import write_class_raster
p = belgium_paths()
da = classify_grid(p["population"], p["built"], p["land"], level=2)
write_class_raster(da, sys.argv[1], DEGURBA_L2)
print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())
"""


def test_independent_of_numba_thread_count(tmp_path):
    digests = []
    for threads in ("1", "2"):
        env = {**os.environ, "NUMBA_NUM_THREADS": threads}
        out = tmp_path / f"t{threads}.tif"
        res = subprocess.run(
            [sys.executable, "-c", _THREADS_SCRIPT, str(out)],
            env=env, capture_output=True, text=True, timeout=300,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        digests.append(res.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1]
