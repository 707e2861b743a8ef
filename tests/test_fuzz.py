"""Issue 8: fuzzing the run-file loader and the raster/vector readers (hypothesis).

Any exception other than a :class:`~pari_geo.errors.PariGeoError` is a bug. Crashes found
are kept below as named regression tests.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pari_geo.errors import ConfigError, PariGeoError
from pari_geo.ingest import open_raster, open_units
from pari_geo.runconfig import load_run

ROOT = Path(__file__).resolve().parents[1]
POP = (ROOT / "data/sample_grids/belgium/POP.tif").read_bytes()[:4096]
GPKG_HEAD = b"SQLite format 3\x00"
SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
TOML_TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from([
        "[inputs]\n", "[typology]\n", "[outputs]\n", "[typology.parameters]\n",
        'population = "p.tif"\n', 'built = { path = "b.tif", unit = "m2" }\n',
        "land = 3\n", 'dir = "out"\n', "level = 7\n", 'name = "degurba"\n',
        "UC_max_gap = 1.5\n", "values = [1, 2]\n", "x = [\n", 'unit = "km"\n',
        "level = true\n", "buffer_m = -1e400\n", "[[inputs]]\n", "name = {}\n",
    ]), max_size=12).map("".join),
)


def _ok_or_pari(fn):
    with contextlib.suppress(PariGeoError):
        fn()


@SETTINGS
@given(TOML_TEXT)
def test_run_loader_raises_only_config_errors(tmp_path, text):
    f = tmp_path / "run.toml"
    f.write_bytes(text.encode("utf-8") if _encodable(text) else b"")
    _ok_or_pari(lambda: load_run(f))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@SETTINGS
@given(st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=300).map(lambda b: b"II*\x00" + b),
    st.tuples(st.integers(8, len(POP) - 1), st.binary(min_size=1, max_size=16)).map(
        lambda t: POP[: t[0]] + t[1] + POP[t[0] + len(t[1]):]),
))
def test_raster_reader_raises_only_input_errors(tmp_path, data):
    f = tmp_path / "fuzz.tif"
    f.write_bytes(data)
    _ok_or_pari(lambda: open_raster(f, "population"))


@SETTINGS
@given(st.sampled_from([".gpkg", ".geojson", ".shp", ".parquet"]), st.one_of(
    st.binary(max_size=400),
    st.binary(max_size=200).map(lambda b: GPKG_HEAD + b),
    st.text(max_size=200).map(lambda t: ('{"type": "FeatureCollection", "features": [' + t)
                              .encode("utf-8", "replace")),
))
def test_vector_reader_raises_only_input_errors(tmp_path, suffix, data):
    f = tmp_path / f"fuzz{suffix}"
    f.write_bytes(data)
    _ok_or_pari(lambda: open_units(f, id_col="UID"))


# --- regressions found by fuzzing --------------------------------------------------------------
def test_regression_run_file_not_utf8(tmp_path):
    f = tmp_path / "run.toml"
    f.write_bytes(b"[inputs]\npopulation = '\xff'\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_run(f)


def test_regression_truncated_tiff_header(tmp_path):
    """A TIFF cut inside its header: one InputError naming the cause, not GDAL's 'see
    previous exception'."""
    from pari_geo.errors import InputError

    f = tmp_path / "cut.tif"
    f.write_bytes(POP[:200])
    with pytest.raises(InputError, match="cannot be read as a raster") as err:
        open_raster(f, "population")
    assert "previous exception" not in str(err.value)
