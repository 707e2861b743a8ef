"""Dask-backed DataArrays go through the tiled engine without being computed whole
(issue 16 item 9).

Every input is wrapped in a ``map_blocks`` that counts the chunks each dask computation
evaluates: the classification must equal the in-memory one, and no computation may touch
more than a small share of an input's chunks (a ``.values`` of a whole layer would touch
all of them at once).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from helpers import write_tif

import pari_geo
from pari_geo.errors import InputError
from pari_geo.grid import GridSpec
from pari_geo.ingest import DataArrayWindows, is_lazy
from pari_geo.memory import pick_engine
from pari_geo.typology.classify import classify_nordic7
from pari_geo.typology.degurba import classify_grid
from pari_geo.typology.degurba_tiled import classify_grid_chunked

dask = pytest.importorskip("dask")
rioxarray = pytest.importorskip("rioxarray")


class ChunkCounter:
    """Counts the input chunks evaluated by each dask computation."""

    def __init__(self) -> None:
        self.per_compute: list[int] = []

    def lazy(self, path, chunk: int) -> xr.DataArray:
        da = rioxarray.open_rasterio(path, chunks={"x": chunk, "y": chunk})
        da = da.squeeze("band", drop=True)
        return da.copy(data=da.data.map_blocks(self._seen, dtype=da.dtype))

    def _seen(self, block):
        if self.per_compute:
            self.per_compute[-1] += 1
        return block

    def callback(self):
        counter = self

        from dask.callbacks import Callback

        class Mark(Callback):
            def _start(self, dsk):
                counter.per_compute.append(0)

        return Mark()


@pytest.fixture(scope="module")
def belgium():
    return pari_geo.belgium_paths()


@pytest.mark.parametrize("level", [1, 2])
def test_degurba_lazy_inputs_stream_by_windows(belgium, level):
    ref = classify_grid(belgium["population"], belgium["built"], belgium["land"], level=level)
    c = ChunkCounter()
    lazy = {k: c.lazy(belgium[k], 32) for k in ("population", "built", "land")}
    n_chunks = lazy["population"].data.npartitions
    assert n_chunks == 70
    with c.callback():
        out = classify_grid(lazy["population"], lazy["built"], lazy["land"], level=level,
                            tile_shape=(64, 64))
    np.testing.assert_array_equal(out.values, ref.values)
    assert out.attrs["parameters_hash"] == ref.attrs["parameters_hash"]
    assert c.per_compute, "the inputs were never read through dask"
    assert max(c.per_compute) <= n_chunks // 4  # windows, never a whole layer
    assert sum(c.per_compute) >= 3 * n_chunks  # every chunk of every layer was read


def test_degurba_lazy_inputs_with_nodata_class(belgium, tmp_path):
    c = ChunkCounter()
    lazy = {k: c.lazy(belgium[k], 50) for k in ("population", "built", "land")}
    res = classify_grid_chunked(lazy["population"], lazy["built"], lazy["land"],
                                out_path=tmp_path / "l2.tif", tile_shape=(64, 64),
                                nodata=255)
    assert res.counts[255] == 1910 and res.counts[30] == 2145


def test_memory_engine_still_computes_lazy_inputs(belgium):
    c = ChunkCounter()
    lazy = {k: c.lazy(belgium[k], 100) for k in ("population", "built", "land")}
    out = classify_grid(lazy["population"], lazy["built"], lazy["land"], engine="memory")
    assert int((out == 30).sum()) == 2145


def test_place_types_lazy_inputs_stream_by_windows():
    p = pari_geo.ostergotland_paths()
    kw = {"built": p["built_share"], "land": p["land_share"], "agri": p["agri_share"],
          "commuting": p["commuting_share"]}
    ref = classify_nordic7(p["population"], **kw)
    c = ChunkCounter()
    pop = c.lazy(p["population"], 25)
    lazy = {k: c.lazy(v, 25) for k, v in kw.items()}
    n_chunks = pop.data.npartitions
    assert n_chunks == 42
    with c.callback():
        out = classify_nordic7(pop, tile_shape=(64, 64), **lazy)
    np.testing.assert_array_equal(out.values, ref.values)
    assert max(c.per_compute) <= n_chunks // 2
    assert sum(c.per_compute) >= 5 * n_chunks


def test_auto_engine_picks_tiled_for_lazy_population(belgium):
    da = rioxarray.open_rasterio(belgium["population"], chunks={"x": 64, "y": 64})
    assert is_lazy(da) and not is_lazy(da.compute())
    assert pick_engine("auto", None, da) == "tiled"
    assert pick_engine("auto", None, da.compute()) == "memory"
    assert pick_engine("memory", None, da) == "memory"


# --- the window reader ----------------------------------------------------------------
def _grid_da(values, nodata=None):
    g = GridSpec("EPSG:3035", Affine(100, 0, 0, 0, -100, 100 * values.shape[0]), values.shape)
    return g.to_dataarray(values, name="population", nodata=nodata)


def test_windows_mask_nodata_and_drop_a_band():
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    a[1, 2] = -9
    da = _grid_da(a, nodata=-9).expand_dims("band").chunk({"x": 2, "y": 2})
    w = DataArrayWindows(da, "population")
    assert w.shape == (3, 4) and w.dtype == np.float64 and w.res == (100.0, 100.0)
    got = w.read(0, 3, 1, 4)
    assert np.isnan(got[1, 1]) and np.count_nonzero(np.isnan(got)) == 1
    np.testing.assert_array_equal(got[0], [1.0, 2.0, 3.0])


def test_windows_read_numpy_backed_arrays_too():
    da = _grid_da(np.arange(6.0).reshape(2, 3))
    out = DataArrayWindows(da).read(0, 2, 0, 3)
    out[0, 0] = 99.0  # a copy: the caller's array is untouched
    assert da.values[0, 0] == 0.0


def test_windows_bad_arrays_are_one_clear_error():
    da = _grid_da(np.zeros((3, 4))).chunk(2)
    with pytest.raises(InputError, match=r"\[population\]: has dims \('x', 'y'\)"):
        DataArrayWindows(da.transpose("x", "y"), "population")
    with pytest.raises(InputError, match="has no CRS"):
        DataArrayWindows(xr.DataArray(np.zeros((2, 2)), dims=("y", "x")).chunk(1), "land")

    def fail(block):
        raise OSError("remote store went away")

    broken = da.copy(data=da.data.map_blocks(fail, dtype=float))
    with pytest.raises(InputError, match=r"\[built\]: cannot be computed \(remote store"):
        DataArrayWindows(broken, "built").read(0, 2, 0, 2)


def test_tiled_engine_refuses_lazy_layers_on_another_grid(belgium, tmp_path):
    pop = rioxarray.open_rasterio(belgium["population"], chunks={"x": 64, "y": 64})
    built = pop.isel(x=slice(1, None))
    with pytest.raises(InputError, match=r"\[built\]: the tiled engine needs the three "
                                         r"layers on one identical grid"):
        classify_grid_chunked(pop, built, pop, out_path=tmp_path / "o.tif")
    assert list(tmp_path.iterdir()) == []


def test_tiled_engine_refuses_bare_arrays(tmp_path):
    with pytest.raises(InputError, match="reads files or DataArrays"):
        classify_grid_chunked(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2)),
                              out_path=tmp_path / "o.tif")


def test_lazy_values_are_checked_while_streamed(tmp_path):
    pop = np.full((40, 40), 10.0)
    pop[3, 3] = -5.0
    t = Affine(1000, 0, 0, 0, -1000, 40_000)
    paths = {k: write_tif(tmp_path / f"{k}.tif", v, transform=t, dtype="float32")
             for k, v in (("population", pop), ("built", np.zeros((40, 40))),
                          ("land", np.full((40, 40), 1e6)))}
    lazy = {k: rioxarray.open_rasterio(v, chunks={"x": 16, "y": 16}) for k, v in paths.items()}
    with pytest.raises(InputError, match=r"\[population\]: contains negative values"):
        classify_grid(lazy["population"], lazy["built"], lazy["land"], tile_shape=(16, 16),
                      workdir=tmp_path)


def test_windows_of_a_lazily_loaded_file_read_only_the_window(belgium):
    da = rioxarray.open_rasterio(belgium["population"])  # no chunks: a lazy backend array
    w = DataArrayWindows(da, "population")
    assert w.path == str(belgium["population"])  # rioxarray keeps it in .encoding
    got = w.read(10, 12, 20, 23)
    assert got.shape == (2, 3)
    assert not da.variable._in_memory  # the whole grid was never loaded


def test_windows_mask_nodata_as_the_in_memory_reader_does():
    """A finite nodata of a float64 array is data for as_dataarray (memory engine), so
    the window reader leaves it too; other dtypes are masked by both."""
    from pari_geo.ingest import as_dataarray

    a = np.array([[1.0, -200.0], [3.0, 4.0]])
    da = _grid_da(a, nodata=-200.0)
    assert not np.isnan(as_dataarray(da, "land").values).any()
    assert not np.isnan(DataArrayWindows(da, "land").read(0, 2, 0, 2)).any()
    da32 = _grid_da(a.astype(np.float32), nodata=-200.0)
    assert np.isnan(as_dataarray(da32, "land").values[0, 1])
    assert np.isnan(DataArrayWindows(da32, "land").read(0, 2, 0, 2)[0, 1])


def test_scheduler_refuses_in_memory_dataarrays(belgium, tmp_path):
    from pari_geo.errors import ConfigError

    mem = {k: rioxarray.open_rasterio(belgium[k]).load() for k in ("population", "built")}
    with pytest.raises(ConfigError, match=r"option 'scheduler'.*population, built are in "
                                          r"memory"):
        classify_grid_chunked(mem["population"], mem["built"], belgium["land"],
                              out_path=tmp_path / "o.tif", scheduler="tcp://127.0.0.1:9")
    assert list(tmp_path.iterdir()) == []
