"""Read inputs: GDAL rasters into ``xarray.DataArray`` and vector layers into GeoDataFrames.

Every failure becomes one :class:`~pari_geo.errors.InputError` naming the file, the layer
and the problem, never a traceback from inside GDAL.

Examples
--------
>>> from pari_geo.datasets import belgium_paths
>>> pop = open_raster(belgium_paths()["population"], "population")
>>> pop.shape, str(pop.rio.crs)
((219, 303), 'ESRI:54009')
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError, where
from .grid import check_transform

if TYPE_CHECKING:
    import geopandas as gpd
    import xarray as xr

__all__ = [
    "open_commuting_od",
    "check_file",
    "check_layer_values",
    "first_line",
    "read_vector",
    "RasterWindows",
    "DataArrayWindows",
    "is_lazy",
    "read_window",
    "read_env",
    "read_overview",
    "read_failure",
    "open_actors",
    "open_raster",
    "open_units",
    "check_share",
    "check_counts",
    "check_population",
    "built_over_land_message",
    "check_built_land",
    "count_built_over_land",
    "as_dataarray",
    "MAX_DENSITY_PER_KM2",
    "is_gdal_path",
    "gdal_path",
    "resolve_path",
]

#: Residents per km² above which a population cell is refused as implausible (the densest
#: districts on Earth hold a few 10⁵ per km²; 10⁷ means a wrong unit or a corrupt file).
MAX_DENSITY_PER_KM2 = 1e7


#: URL schemes GDAL reads through its virtual file systems, and the prefix each becomes
_GDAL_SCHEMES = {
    "http://": "/vsicurl/http://",
    "https://": "/vsicurl/https://",
    "ftp://": "/vsicurl/ftp://",
    "s3://": "/vsis3/",
    "gs://": "/vsigs/",
    "az://": "/vsiaz/",
}


def is_gdal_path(path: str | os.PathLike) -> bool:
    """True for a path only GDAL can resolve: ``/vsizip/``, ``/vsicurl/``, ``s3://`` ...

    Examples
    --------
    >>> is_gdal_path("/vsizip/tiles.zip/POP.tif"), is_gdal_path("s3://bucket/POP.tif")
    (True, True)
    >>> is_gdal_path("data/POP.tif")
    False
    """
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    return text.startswith("/vsi") or text.lower().startswith(tuple(_GDAL_SCHEMES))


def gdal_path(path: str | os.PathLike) -> str:
    """The path as GDAL opens it: URLs become ``/vsicurl/``, ``s3://`` ``/vsis3/`` ...

    Examples
    --------
    >>> gdal_path("s3://bucket/GHS_POP.tif"), gdal_path("https://x.org/a.tif")
    ('/vsis3/bucket/GHS_POP.tif', '/vsicurl/https://x.org/a.tif')
    >>> gdal_path("/vsizip/tiles.zip/POP.tif")
    '/vsizip/tiles.zip/POP.tif'
    """
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    for scheme, prefix in _GDAL_SCHEMES.items():
        if text.lower().startswith(scheme):
            return prefix + text[len(scheme) :]
    return text


_ARCHIVES = ("/vsizip/", "/vsitar/", "/vsigzip/", "/vsi7z/", "/vsirar/")


def resolve_path(text: str, base: str | os.PathLike) -> Path | str:
    """A path from a configuration file, resolved against the file's folder ``base``.

    Local paths become absolute ``Path``; GDAL paths stay strings, with a relative archive
    inside ``/vsizip/`` (``/vsitar/`` ...) resolved against ``base`` too; URLs are kept.

    Examples
    --------
    >>> resolve_path("/vsizip/tiles.zip/POP.tif", "/data")
    '/vsizip//data/tiles.zip/POP.tif'
    >>> resolve_path("s3://bucket/POP.tif", "/data"), resolve_path("POP.tif", "/data")
    ('s3://bucket/POP.tif', PosixPath('/data/POP.tif'))
    """
    if is_gdal_path(text):
        for prefix in _ARCHIVES:
            rest = text[len(prefix):]
            if text.startswith(prefix) and not rest.startswith(("/", "{")):
                return prefix + str(Path(base) / rest)
        return text
    p = Path(text).expanduser()
    return (p if p.is_absolute() else Path(base) / p).resolve()


def check_file(path: str | os.PathLike, layer: str | None, *, allow_dir: bool = False) -> str:
    """The path to open, after checking it exists and is a readable file.

    GDAL paths (``/vsizip/``, URLs) are passed to GDAL as they are; its reader says what
    fails. Raises :class:`~pari_geo.errors.InputError` naming the file and ``layer``.

    Examples
    --------
    >>> check_file("/no/such/file.tif", "population")
    Traceback (most recent call last):
    ...
    pari_geo.errors.InputError: ...
    """
    if is_gdal_path(path):  # GDAL resolves it (zip members, URLs); its reader says what fails
        return gdal_path(path)
    p = Path(path)
    try:
        exists = p.exists()
        is_dir = p.is_dir()
    except (OSError, ValueError) as err:  # e.g. a name too long, an embedded NUL byte
        raise InputError(str(path), layer, f"is not a usable path ({err})") from None
    if not exists:
        raise InputError(str(path), layer, "file not found")
    if is_dir and not allow_dir:
        raise InputError(str(path), layer, "is a directory, not a file")
    if not os.access(p, os.R_OK):
        raise InputError(str(path), layer, "file is not readable (permission denied)")
    if not is_dir and p.stat().st_size == 0:
        raise InputError(str(path), layer, "file is empty (0 bytes)")
    return str(path)


def first_line(err: BaseException) -> str:
    """One line describing ``err``; GDAL's "see previous exception" points to the cause."""
    text = str(err).splitlines()[0] if str(err) else ""
    if "previous exception" in text:
        cause = err.__cause__ or err.__context__
        if cause is not None and str(cause):
            text = str(cause).splitlines()[0]
        else:
            text = "the file is truncated or corrupt"
    return text or type(err).__name__


def read_failure(file: str | None, layer: str | None, err: BaseException) -> InputError:
    """The :class:`InputError` of a raster read that failed half-way (truncated or corrupt
    file), for the window-by-window readers of the tiled engine.

    Examples
    --------
    >>> str(read_failure("B.tif", "built", OSError("Read failed")))
    'B.tif [built]: cannot be read as a raster (Read failed); is the file truncated or corrupt?'
    """
    if isinstance(err, InputError):
        return err
    return InputError(file, layer, f"cannot be read as a raster ({first_line(err)}); is the "
                      "file truncated or corrupt?")


def read_window(src: Any, window: Any = None, *, band: int = 1,
                as_float: bool = False) -> np.ndarray:
    """One band of an open rasterio dataset (a window of it, or all), no-data as NaN.

    In the file's own dtype when no cell is masked (``as_float=False``): a float band
    keeps its NaN no-data, an integer band with masked cells becomes float64 with NaN
    there. With ``as_float=True`` always float64. Either way the values equal
    ``src.read(masked=True).astype(float64).filled(nan)``, as :func:`open_raster` reads.
    """
    from rasterio.enums import MaskFlags

    a = src.read(band, window=window)
    flags = src.mask_flag_enums[band - 1]
    nodata = src.nodata
    invalid = None
    if MaskFlags.all_valid in flags:
        pass
    elif list(flags) == [MaskFlags.nodata] and nodata is not None:
        if a.dtype.kind == "f" and np.isnan(nodata):
            pass  # no-data cells are NaN already
        elif a.dtype.kind in "iu" and float(nodata).is_integer():
            info = np.iinfo(a.dtype)
            if info.min <= nodata <= info.max:
                invalid = a == a.dtype.type(int(nodata))
        else:
            invalid = src.read_masks(band, window=window) == 0
    else:
        invalid = src.read_masks(band, window=window) == 0
    if as_float:
        out = np.asarray(a, dtype=np.float64)
        if invalid is not None and invalid.any():
            out = out.copy() if out is a else out
            out[invalid] = np.nan
        return out
    if invalid is not None and invalid.any():
        if a.dtype.kind != "f":
            a = a.astype(np.float64)
        a[invalid] = np.nan
    return a


def read_env() -> Any:
    """GDAL settings while inputs are read (each only if the user has not set it).

    * ``GDAL_CACHEMAX`` 64 MB: every reader here reads each block once, so cached blocks
      are never reused; with GDAL's default (5 % of RAM) the cache would hold up to that
      much decompressed data on top of the arrays.
    * ``GDAL_NUM_THREADS=ALL_CPUS``: decompress the blocks of a read in parallel (GTiff).
    """
    import contextlib

    options: dict[str, Any] = {}
    if not os.environ.get("GDAL_CACHEMAX"):
        options["GDAL_CACHEMAX"] = 64
    if not os.environ.get("GDAL_NUM_THREADS"):
        options["GDAL_NUM_THREADS"] = "ALL_CPUS"
    if not options:
        return contextlib.nullcontext()
    import rasterio

    return rasterio.Env(**options)


class RasterWindows:
    """One band of a raster read by windows: the raster reader of every stage and engine.

    Opens the file (local, inside an archive, or remote: ``https://``, ``s3://`` ... as
    :func:`gdal_path` maps them) on first use and reads windows with :func:`read_window`
    (native dtype, or float64 with ``as_float``; no-data as NaN). It pickles by path (a
    dask task reopens it) and is a layer of :mod:`pari_geo.outofcore.ops`
    (``shape``, ``dtype``, ``read(r0, r1, c0, c1)``).

    Parameters
    ----------
    path : str or path-like
    layer : str, optional
        What the layer is (for messages).
    band : int, default 1
    as_float : bool, default False

    Raises
    ------
    InputError
        File missing, not a raster, band out of range; a read that fails half-way.

    Examples
    --------
    >>> from pari_geo.datasets import belgium_paths
    >>> land = RasterWindows(belgium_paths()["land"], "land")
    >>> land.shape, land.read(0, 2, 0, 3).dtype.name
    ((219, 303), 'uint32')
    >>> land.close()
    """

    def __init__(self, path: str | os.PathLike, layer: str | None = None, *, band: int = 1,
                 as_float: bool = False) -> None:
        self.path = check_file(path, layer)
        self.layer, self.band, self.as_float = layer, int(band), bool(as_float)
        self._src: Any = None
        src = self._open()
        if src.count == 0:
            self.close()
            raise InputError(self.path, layer, "has no raster band (several datasets? open "
                             "one of its subdatasets)")
        if self.band < 1 or self.band > src.count:
            self.close()
            raise InputError(self.path, layer, f"has {src.count} band(s); band {band} "
                             "requested")
        self.crs, self.transform = src.crs, src.transform
        self.bounds = tuple(src.bounds)
        self.res = tuple(src.res)
        self.shape = (int(src.height), int(src.width))
        self.count = int(src.count)
        self.file_dtype = np.dtype(src.dtypes[self.band - 1])
        self.nodata = src.nodatavals[self.band - 1]

    @property
    def dataset(self) -> Any:
        """The open ``rasterio`` dataset, for what windows cannot do (warping); closing it
        closes this reader."""
        return self._open()

    def tags(self) -> dict[str, str]:
        """The file's dataset-level metadata tags (GDAL's default domain)."""
        src = self._open()  # an InputError of its own when the file cannot be opened
        try:
            return dict(src.tags())
        except Exception as err:  # noqa: BLE001 - GDAL raises several types
            raise read_failure(self.path, self.layer, err) from None

    def _open(self) -> Any:
        if self._src is None:
            import rasterio

            try:
                self._src = rasterio.open(self.path)
            except Exception as err:  # noqa: BLE001 - rasterio raises several types
                raise InputError(self.path, self.layer,
                                 f"cannot be read as a raster ({first_line(err)})") from None
        return self._src

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float64) if self.as_float else self.file_dtype

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """The window ``[r0:r1, c0:c1]``; a failure is an :class:`InputError` naming the file."""
        from rasterio.windows import Window

        try:
            return read_window(self._open(), Window(c0, r0, c1 - c0, r1 - r0),
                               band=self.band, as_float=self.as_float)
        except Exception as err:  # noqa: BLE001 - GDAL raises several types
            raise read_failure(self.path, self.layer, err) from None

    def read_raw(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """The window's stored values, no-data not masked (e.g. class codes)."""
        from rasterio.windows import Window

        try:
            return self._open().read(self.band, window=Window(c0, r0, c1 - c0, r1 - r0))
        except Exception as err:  # noqa: BLE001 - GDAL raises several types
            raise read_failure(self.path, self.layer, err) from None

    def read_all(self) -> np.ndarray:
        """The whole band (one read)."""
        try:
            return read_window(self._open(), band=self.band, as_float=self.as_float)
        except Exception as err:  # noqa: BLE001
            raise read_failure(self.path, self.layer, err) from None

    def close(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None

    def __enter__(self) -> RasterWindows:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_src"] = None  # reopened where it is read
        return state


def is_lazy(obj: Any) -> bool:
    """Whether ``obj`` is an ``xarray.DataArray`` backed by a dask array (chunked).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> is_lazy(xr.DataArray(np.zeros((2, 2)))), is_lazy("POP.tif")
    (False, False)
    >>> is_lazy(xr.DataArray(np.zeros((2, 2))).chunk(1))
    True
    """
    xr = sys.modules.get("xarray")  # a DataArray exists only once xarray is imported
    return xr is not None and isinstance(obj, xr.DataArray) and obj.chunks is not None


class DataArrayWindows:
    """A 2-D ``xarray.DataArray`` read by windows, as :class:`RasterWindows` reads a file.

    The array is kept as it is (numpy, a lazily loaded file of ``rioxarray.open_rasterio``,
    or dask: nothing is read or computed until a window is); :meth:`read` returns one window
    as float64 with the no-data value as NaN, so a grid larger than memory streams through
    the tiled engine one window at a time. A window of a dask array is computed with the
    synchronous scheduler, in the thread (or dask task) that reads it. No-data is masked as
    :func:`as_dataarray` masks it for the in-memory path (a finite ``rio.nodata`` of a
    non-float64 array), so both engines see the same cells. It pickles with its
    dask graph, so dask tasks read it where they run. A layer of
    :mod:`pari_geo.outofcore.ops` (``shape``, ``dtype``, ``read(r0, r1, c0, c1)``).

    Parameters
    ----------
    da : xarray.DataArray
        Dims ``(y, x)`` (a single ``band`` is dropped), north-up, with a CRS.
    layer : str, optional
        What the layer is (for messages).

    Raises
    ------
    InputError
        Not 2-D, no CRS, transposed or flipped axes; a window that cannot be computed.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> from pari_geo.grid import GridSpec
    >>> g = GridSpec("ESRI:54009", Affine(1000, 0, 0, 0, -1000, 2000), (2, 3))
    >>> da = g.to_dataarray(np.arange(6.0).reshape(2, 3)).chunk(1)
    >>> w = DataArrayWindows(da, "population")
    >>> w.shape, w.read(1, 2, 0, 2).tolist()
    ((2, 3), [[3.0, 4.0]])
    """

    def __init__(self, da: Any, layer: str | None = None) -> None:
        self.path = da.attrs.get("source") or da.encoding.get("source")
        self.layer = layer
        da = _grid_dataarray(da, layer, self.path)
        self.crs, self.transform = da.rio.crs, da.rio.transform()
        self.shape = (int(da.shape[0]), int(da.shape[1]))
        self.bounds = tuple(da.rio.bounds()) if min(self.shape) > 0 else (0.0,) * 4
        self.res = (abs(self.transform.a), abs(self.transform.e))
        self.file_dtype = np.dtype(da.dtype)
        self.nodata = _masked_nodata(da)
        self._da = da
        self.lazy = da.chunks is not None  # dask-backed

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float64)

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """The window ``[r0:r1, c0:c1]`` as float64, no-data as NaN."""
        y, x = self._da.dims
        window = self._da.isel({y: slice(r0, r1), x: slice(c0, c1)})
        try:
            # dask: this window's graph; numpy, or a lazily loaded file: only the window
            block = (window.data.compute(scheduler="synchronous") if self.lazy
                     else window.values)
        except Exception as err:  # noqa: BLE001 - any error of the graph or the backend
            raise InputError(self.path, self.layer,
                             f"cannot be computed ({first_line(err)})") from None
        out = np.array(block, dtype=np.float64)  # a copy: the caller may write to it
        if self.nodata is not None:
            out[out == self.nodata] = np.nan
        return out

    def close(self) -> None:
        """Nothing to release (the DataArray belongs to the caller)."""

    def __enter__(self) -> DataArrayWindows:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def check_population(
    values: np.ndarray, file: str | None, layer: str | None, cell_area_km2: float
) -> None:
    """Refuse an unusable population grid.

    All cells missing, infinite or negative values, or a cell denser than
    :data:`MAX_DENSITY_PER_KM2` residents per km² (NaN cells are missing data and allowed).

    Examples
    --------
    >>> import numpy as np
    >>> check_population(np.array([[1.0, np.nan]]), "P.tif", "population", 1.0)
    >>> check_population(np.array([[2e7]]), "P.tif", "population", 1.0)
    Traceback (most recent call last):
    ...
    pari_geo.errors.InputError: P.tif [population]: has 2e+07 residents in one cell ...
    """
    layer = layer or "population"
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or np.isnan(values).all():
        raise InputError(file, layer, "has no data (every cell is no-data/NaN)")
    check_counts(values, file, layer)
    vmax = float(np.nanmax(values))
    if cell_area_km2 > 0 and vmax / cell_area_km2 > MAX_DENSITY_PER_KM2:
        raise InputError(
            file,
            layer,
            f"has {vmax:g} residents in one cell ({vmax / cell_area_km2:g} per km2, more than "
            f"{MAX_DENSITY_PER_KM2:g}); is it residents per cell, and is the cell size right?",
        )


def count_built_over_land(built_share: np.ndarray, land_share: np.ndarray) -> int:
    """Number of cells whose built-up share exceeds their permanent-land share.

    A relative tolerance of 1e-9 (plus 1e-12 absolute) absorbs unit-conversion rounding;
    NaN cells never count.

    Examples
    --------
    >>> import numpy as np
    >>> count_built_over_land(np.array([0.5, 0.2, np.nan]), np.array([0.4, 0.2, 1.0]))
    1
    """
    with np.errstate(invalid="ignore"):
        over = built_share > land_share * (1 + 1e-9) + 1e-12
    return int(np.count_nonzero(over))


def built_over_land_message(n: int, file: str | None) -> str:
    """The one-line warning for ``n`` cells with more built-up than permanent land."""
    return (
        f"{where(file, 'built')}: {n} cell(s) have more built-up than permanent "
        "land (e.g. buildings on water); accepted, built-up per land is then above 1"
    )


def check_built_land(
    built: np.ndarray,
    land: np.ndarray,
    file: str | None,
    *,
    built_unit: str = "m2",
    land_unit: str = "m2",
    cell_area_m2: float = 1e6,
) -> int:
    """Warn (``UserWarning``) when built-up exceeds permanent land; return the cell count.

    GHSL has such cells where buildings stand on water (ports, piers); the classification
    handles them (built-up per land above 1), so they are accepted, but named.

    Examples
    --------
    >>> import numpy as np, warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     check_built_land(np.array([[5.0, 1.0]]), np.array([[2.0, 3.0]]), "B.tif")
    1
    >>> "more built-up than permanent land" in str(w[0].message)
    True
    """
    import warnings

    def share(a: np.ndarray, unit: str) -> np.ndarray:
        a = np.asarray(a, dtype=np.float64)
        return a / cell_area_m2 if unit == "m2" else a

    n = count_built_over_land(share(built, built_unit), share(land, land_unit))
    if n:
        warnings.warn(built_over_land_message(n, file), UserWarning, stacklevel=2)
    return n


def check_layer_values(da: Any, fname: str | None, layer: str | None) -> None:
    """Checks every reader applies: population plausibility, no all-missing layer."""
    if layer == "population":
        t = da.rio.transform()
        crs = da.rio.crs
        metres = (
            crs is not None
            and crs.is_projected
            and (crs.linear_units or "").lower()
            in {
                "metre",
                "meter",
                "m",
            }
        )
        # the density test needs metres; other CRSs are refused later with a better message
        check_population(da.values, fname, layer, abs(t.a * t.e) / 1e6 if metres else 0.0)
    elif layer in ("built", "land") and np.isnan(np.asarray(da.values, np.float64)).all():
        raise InputError(fname, layer, "has no data (every cell is no-data/NaN)")


def open_raster(
    path: str | os.PathLike, layer: str | None = None, *, band: int = 1
) -> xr.DataArray:
    """Open one band of a GDAL raster as a float64 ``xarray.DataArray`` (y, x).

    No-data cells become NaN. The array is read into memory and carries its CRS and
    transform (``da.rio.crs``, ``da.rio.transform()``) and the source path in
    ``da.attrs["source"]``.

    Parameters
    ----------
    path : str or path-like
    layer : str, optional
        What the layer is (``population``, ``built``, ``land``...), used in messages.
    band : int, default 1

    Raises
    ------
    InputError
        Missing, empty, unreadable, truncated or non-raster file; band out of range; no
        CRS; rotated or non-square cells; for ``layer="population"`` also no data at all,
        infinite or negative values and implausible densities (:func:`check_population`);
        for ``built``/``land`` no data at all.

    Examples
    --------
    >>> from pari_geo.datasets import belgium_paths
    >>> land = open_raster(belgium_paths()["land"], "land")
    >>> float(land.max())
    1000000.0
    """
    import rasterio
    import rioxarray  # noqa: F401
    import xarray as xr
    from rasterio.errors import RasterioError

    fname = check_file(path, layer)
    try:
        with rasterio.open(fname) as src:
            if band < 1 or band > src.count:
                raise InputError(fname, layer, f"has {src.count} band(s); band {band} requested")
            crs = src.crs
            transform = src.transform
            values = read_window(src, band=band, as_float=True)
            nodata = src.nodata
            tags = src.tags()
    except InputError:
        raise
    except (RasterioError, OSError, ValueError) as err:
        raise InputError(fname, layer, f"cannot be read as a raster ({first_line(err)})") from None
    except MemoryError:
        raise InputError(fname, layer, "is too large to read into memory") from None
    except Exception as err:  # GDAL raises CPLE_* errors outside RasterioError
        raise InputError(fname, layer, f"cannot be read as a raster ({first_line(err)})") from None
    if crs is None:
        raise InputError(fname, layer, "has no CRS; assign one (e.g. gdal_edit.py -a_srs)")
    check_transform(transform, fname, layer)
    rows, cols = values.shape
    if rows == 0 or cols == 0:
        raise InputError(fname, layer, "has no cells")
    x = transform.c + (np.arange(cols) + 0.5) * transform.a
    y = transform.f + (np.arange(rows) + 0.5) * transform.e
    da = xr.DataArray(
        values,
        dims=("y", "x"),
        coords={"y": y, "x": x},
        name=layer,
        attrs={"source": fname, "source_nodata": nodata, "tags": tags},
    )
    da = da.rio.write_crs(crs).rio.write_transform(transform)
    check_layer_values(da, fname, layer)
    return da


def as_dataarray(obj: Any, layer: str | None = None):
    """Accept a path or a DataArray; return a float64 DataArray (y, x) with a CRS."""
    if isinstance(obj, str | os.PathLike):
        return open_raster(obj, layer)
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover
        xr = None  # type: ignore[assignment]
    if xr is not None and isinstance(obj, xr.DataArray):
        da = _grid_dataarray(obj, layer, None)
        nod = _masked_nodata(da)
        if da.dtype != np.float64:
            da = da.astype(np.float64)
            if nod is not None:
                da = da.where(da != nod)
        check_layer_values(da, da.attrs.get("source"), layer)
        return da
    raise InputError(
        None, layer, f"expected a file path or xarray.DataArray, got {type(obj).__name__}"
    )


def _grid_dataarray(obj: Any, layer: str | None, source: str | None):
    """``obj`` as a 2-D (y, x) DataArray with a CRS, its axes checked
    (:func:`_check_orientation`); a single extra dimension such as ``band`` is dropped."""
    da = obj.squeeze(drop=True) if obj.ndim > 2 else obj
    if da.ndim != 2:
        raise InputError(source, layer, f"must be a 2-D raster, got dims {da.dims}")
    if da.rio.crs is None:
        raise InputError(source or da.attrs.get("source"), layer,
                         "has no CRS (da.rio.write_crs)")
    return _check_orientation(da, layer)


def _masked_nodata(da: Any) -> float | None:
    """The no-data value the readers turn into NaN: a finite ``rio.nodata`` of an array
    that is not float64 already (a float64 array carries its missing cells as NaN)."""
    nodata = da.rio.nodata
    if nodata is None or np.isnan(nodata) or np.dtype(da.dtype) == np.float64:
        return None
    return float(nodata)


def _check_orientation(da: Any, layer: str | None):
    """Refuse a DataArray whose axes or coordinates disagree with its grid.

    A transposed array (dims ``(x, y)``) or one flipped south-up would otherwise be read
    with a stale geotransform and cropped or mirrored without a word. Returns ``da``,
    with its transform recalculated from the coordinates when the stored one is stale.
    """
    source = da.attrs.get("source")
    try:
        x_dim, y_dim = da.rio.x_dim, da.rio.y_dim
    except Exception:  # noqa: BLE001 - rioxarray cannot find x/y
        raise InputError(source, layer, f"has no recognisable x/y dimensions (dims "
                         f"{da.dims})") from None
    if da.dims != (y_dim, x_dim):
        raise InputError(source, layer, f"has dims {da.dims}; expected ({y_dim!r}, {x_dim!r}) "
                         f"(rows, columns): use da.transpose({y_dim!r}, {x_dim!r})")
    y, x = np.asarray(da[y_dim].values), np.asarray(da[x_dim].values)
    if y.size > 1 and y[1] > y[0]:
        raise InputError(source, layer, "is south-up (y grows with the row index); flip it: "
                         f"da.isel({y_dim}=slice(None, None, -1))")
    if x.size > 1 and x[1] < x[0]:
        raise InputError(source, layer, "has x decreasing with the column index; flip it: "
                         f"da.isel({x_dim}=slice(None, None, -1))")
    if y.size > 1 and x.size > 1:
        stored, recalc = da.rio.transform(), da.rio.transform(recalc=True)
        if not stored.almost_equals(recalc, precision=1e-6 * abs(recalc.a)):
            da = da.rio.write_transform(recalc)
    return da


def check_counts(values: np.ndarray, file: str | None, layer: str) -> None:
    """Refuse negative or infinite counts (population, m²) and, for the population, built-up
    and land layers, a layer without any data."""
    values = np.asarray(values)
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    if layer in ("population", "built", "land") and (values.size == 0 or np.isnan(values).all()):
        raise InputError(file, layer, "has no data (every cell is no-data/NaN)")
    finite = values[~np.isnan(values)]
    if np.isinf(finite).any():
        raise InputError(file, layer, "contains infinite values")
    if finite.size and finite.min() < 0:
        raise InputError(file, layer, f"contains negative values (minimum {finite.min():g})")


def check_share(
    values: np.ndarray, file: str | None, layer: str, unit: str, cell_area_m2: float
) -> None:
    """Check that a built-up/land layer agrees with its stated unit.

    ``unit="share"`` requires 0..1; ``unit="m2"`` requires 0..cell area and refuses a
    layer that looks like a share (non-empty and never above 1).
    """
    check_counts(values, file, layer)
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        return
    vmax = float(finite.max())
    if unit == "share":
        if vmax > 1 + 1e-9:
            raise InputError(
                file,
                layer,
                f"is declared a share but has values up to {vmax:g} "
                "(outside 0..1); if it holds m2 per cell, declare unit 'm2'",
            )
    elif unit == "m2":
        if vmax > cell_area_m2 * (1 + 1e-6):
            raise InputError(
                file,
                layer,
                f"is declared m2 per cell but has values up to "
                f"{vmax:g}, more than the cell area {cell_area_m2:g} m2",
            )
        if 0 < vmax <= 1:
            raise InputError(
                file,
                layer,
                "is declared m2 per cell but no value exceeds 1; it "
                "looks like a share 0..1: declare unit 'share'",
            )
    else:
        raise InputError(file, layer, f"unknown unit {unit!r}; use 'm2' or 'share'")


def read_vector(path_or_gdf: Any, name: str, layer: str | None):
    """A GeoDataFrame (copied) or a vector file read into one; returns (gdf, file name)."""
    import geopandas as gpd

    if isinstance(path_or_gdf, gpd.GeoDataFrame):
        return path_or_gdf.copy(), None
    if not isinstance(path_or_gdf, str | os.PathLike):
        raise InputError(
            None, name, f"expected a GeoDataFrame or a file path, got {type(path_or_gdf).__name__}"
        )
    fname = check_file(path_or_gdf, name, allow_dir=True)
    try:
        if str(fname).lower().endswith(".parquet"):
            gdf = gpd.read_parquet(fname)
        else:
            gdf = gpd.read_file(fname, layer=layer)
    except Exception as err:  # pyogrio/fiona/arrow raise many types; all become one line
        raise InputError(
            fname, name, f"cannot be read as a vector layer ({first_line(err)})"
        ) from None
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry is None:
        raise InputError(fname, name, "has no geometry column")
    if fname is not None:
        gdf.attrs["source"] = str(fname)  # later messages name the file
    else:
        fname = gdf.attrs.get("source")
    return gdf, fname


def open_actors(
    path_or_gdf: Any,
    *,
    sector_col: str | None = None,
    social_col: str | None = None,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read actors (points; polygons are kept for the clustering stage to turn into points).

    An empty layer is allowed (it gives no clusters). Refuses an unreadable file, a missing
    CRS, missing or empty geometries, non-finite coordinates and missing named columns.

    Examples
    --------
    >>> from pari_geo.datasets import sample_data_dir
    >>> a = open_actors(sample_data_dir() / "sample_grids/ostergotland/actors.gpkg",
    ...                 sector_col="sector")
    >>> len(a), a.crs.to_epsg()
    (20000, 3006)
    """
    name = "actors"
    gdf, fname = read_vector(path_or_gdf, name, layer)
    if gdf.crs is None:
        raise InputError(fname, name, "has no CRS")
    for col in (sector_col, social_col):
        if col is not None and col not in gdf.columns:
            raise InputError(
                fname,
                name,
                f"has no column {col!r} (columns: {', '.join(map(str, gdf.columns[:12]))})",
            )
    if len(gdf) == 0:
        return gdf
    geom = gdf.geometry
    bad = geom.isna() | geom.is_empty
    if bad.any():
        raise InputError(fname, name, f"{int(bad.sum())} actor(s) have no or empty geometry")
    pts = geom.representative_point() if (geom.geom_type != "Point").any() else geom
    xy = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])
    if not np.isfinite(xy).all():
        n = int((~np.isfinite(xy).all(axis=1)).sum())
        raise InputError(fname, name, f"{n} actor(s) have non-finite (NaN or inf) coordinates")
    return gdf


def open_units(
    path_or_gdf: Any, *, id_col: str | None = None, layer: str | None = None
) -> gpd.GeoDataFrame:
    """Read administrative units (GeoPackage, GeoParquet, shapefile ...) as a GeoDataFrame.

    Refuses unreadable or empty files, a missing id column, duplicate or missing ids, a
    missing CRS, empty geometries and geometries that are not (multi)polygons (e.g. points
    among polygons); repairs nothing silently (invalid geometries are fixed with
    ``make_valid`` and a warning). Folder-based formats (shapefile folder, FileGDB) are
    accepted as paths.

    Examples
    --------
    >>> from pari_geo.datasets import belgium_paths
    >>> units = open_units(belgium_paths()["units"], id_col="UID")
    >>> len(units)
    581
    """
    import warnings

    name = "units"
    gdf, fname = read_vector(path_or_gdf, name, layer)
    if len(gdf) == 0:
        raise InputError(fname, name, "has no features")
    if gdf.crs is None:
        raise InputError(fname, name, "has no CRS")
    if id_col is not None:
        if id_col not in gdf.columns:
            raise InputError(
                fname,
                name,
                f"has no id column {id_col!r} (columns: {', '.join(map(str, gdf.columns[:12]))})",
            )
        if gdf[id_col].isna().any():
            raise InputError(fname, name, f"id column {id_col!r} has missing values")
        dup = gdf[id_col][gdf[id_col].duplicated()]
        if len(dup):
            raise InputError(
                fname, name, f"id column {id_col!r} has duplicate values, e.g. {dup.iloc[0]!r}"
            )
    geom = gdf.geometry
    if geom.isna().any() or geom.is_empty.any():
        bad = int((geom.isna() | geom.is_empty).sum())
        raise InputError(fname, name, f"{bad} feature(s) have no or empty geometry")
    kinds = geom.geom_type
    not_poly = ~kinds.isin(["Polygon", "MultiPolygon"])
    if not_poly.any():
        found = sorted(set(kinds[not_poly]))
        raise InputError(
            fname,
            name,
            f"{int(not_poly.sum())} feature(s) are not (multi)polygons ({', '.join(found)}); "
            "units must be areas",
        )
    invalid = ~geom.is_valid
    if invalid.any():
        warnings.warn(
            f"{fname or 'units'}: {int(invalid.sum())} invalid geometries repaired with make_valid",
            stacklevel=2,
        )
        gdf.loc[invalid, gdf.geometry.name] = geom[invalid].make_valid()
    return gdf


def read_overview(path: str | os.PathLike, max_side: int = 2000) -> Any:
    """A class raster read at most ``max_side`` cells wide and high (nearest), for maps.

    Every ``f``-th cell in each direction (``f`` the smallest integer factor that fits),
    read through GDAL's overviews where the file has them, so a map of a grid larger
    than memory costs a few megabytes.

    Examples
    --------
    >>> from pari_geo.datasets import belgium_paths
    >>> read_overview(belgium_paths()["population"], max_side=100).shape
    (54, 75)
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    from .grid import GridSpec

    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as err:
        raise InputError(str(path), "classes", f"cannot be opened as a raster ({err})") from None
    with src:
        f = max(1, -(-max(src.width, src.height) // max_side))
        shape = (max(1, src.height // f), max(1, src.width // f))
        window = Window(0, 0, min(src.width, shape[1] * f), min(src.height, shape[0] * f))
        data = src.read(1, window=window, out_shape=shape, resampling=Resampling.nearest)
        transform = src.transform @ src.transform.scale(f, f)
        return GridSpec(src.crs, transform, shape).to_dataarray(data, name="classes")


def open_commuting_od(path_or_df: Any) -> Any:
    """Read an origin-destination commuting table per unit (CSV or a DataFrame).

    Columns ``origin`` and ``destination`` (unit ids, read as text so that codes such as
    ``0580`` keep their zeros) and ``share`` (of the origin's employed residents, 0..1) or
    ``commuters`` (counts, turned into shares of each origin's total). The diagonal (people
    working in their own unit) belongs in the table: an origin's shares sum to 1 when the
    table is complete, and may sum to less.

    Returns
    -------
    pandas.DataFrame
        ``origin``, ``destination`` (str) and ``share`` (float).

    Raises
    ------
    InputError
        Missing file or column, shares outside 0..1 or summing above 1 for an origin,
        negative commuters, an empty table, a pair given twice.

    Examples
    --------
    >>> import pandas as pd
    >>> open_commuting_od(pd.DataFrame({"origin": ["a", "a"], "destination": ["a", "b"],
    ...                                 "commuters": [30, 10]}))["share"].tolist()
    [0.75, 0.25]
    """
    import pandas as pd

    name = "commuting_od"
    if isinstance(path_or_df, pd.DataFrame):
        df, fname = path_or_df.copy(), None
    else:
        fname = check_file(path_or_df, name)
        try:
            df = pd.read_csv(fname, dtype={"origin": str, "destination": str})
        except (ValueError, OSError, UnicodeDecodeError) as err:
            raise InputError(fname, name, f"cannot be read as a CSV table ({first_line(err)})"
                             ) from None
    missing = [c for c in ("origin", "destination") if c not in df.columns]
    if missing or not ({"share", "commuters"} & set(df.columns)):
        raise InputError(fname, name, "needs the columns origin, destination and share (or "
                         f"commuters); it has {', '.join(map(str, df.columns[:10]))}")
    if len(df) == 0:
        raise InputError(fname, name, "has no rows")
    df["origin"] = df["origin"].astype(str)
    df["destination"] = df["destination"].astype(str)
    if df.duplicated(["origin", "destination"]).any():
        first = df[df.duplicated(["origin", "destination"])].iloc[0]
        raise InputError(fname, name, f"gives the pair {first['origin']} -> "
                         f"{first['destination']} twice")
    if "share" in df.columns:
        v = pd.to_numeric(df["share"], errors="coerce")
        if v.isna().any() or (v < 0).any() or (v > 1).any():
            raise InputError(fname, name, "has shares outside 0..1 or not numbers (give "
                             "shares of the origin's employed residents, or commuters)")
        total = v.groupby(df["origin"]).sum()
        if (total > 1 + 1e-6).any():
            o = total[total > 1 + 1e-6].index[0]
            raise InputError(fname, name, f"origin {o}'s shares sum to {total[o]:.4g}, above "
                             "1")
    else:
        c = pd.to_numeric(df["commuters"], errors="coerce")
        if c.isna().any() or (c < 0).any():
            raise InputError(fname, name, "has negative or non-numeric commuters")
        own = set(df.loc[df["origin"] == df["destination"], "origin"])
        lacking = sorted(set(df["origin"]) - own)
        if lacking:
            raise InputError(fname, name, f"origin {lacking[0]} has no row to itself: with "
                             "commuters, the shares are of each origin's total in the table, "
                             "so give those who work in their own unit too (or give shares)")
        total = c.groupby(df["origin"]).transform("sum")
        v = (c / total.where(total > 0)).fillna(0.0)
    return pd.DataFrame({"origin": df["origin"].to_numpy(),
                         "destination": df["destination"].to_numpy(),
                         "share": v.to_numpy(dtype=float)})
