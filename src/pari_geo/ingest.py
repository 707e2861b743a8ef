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
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .grid import check_transform

__all__ = ["open_raster", "open_units", "check_share", "check_counts", "as_dataarray"]


def _check_file(path: str | os.PathLike, layer: str | None) -> str:
    p = Path(path)
    if not p.exists():
        raise InputError(str(path), layer, "file not found")
    if p.is_dir():
        raise InputError(str(path), layer, "is a directory, not a file")
    if not os.access(p, os.R_OK):
        raise InputError(str(path), layer, "file is not readable (permission denied)")
    if p.stat().st_size == 0:
        raise InputError(str(path), layer, "file is empty (0 bytes)")
    return str(path)


def open_raster(path: str | os.PathLike, layer: str | None = None, *, band: int = 1):
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
        Missing, empty, unreadable or non-raster file; band out of range; no CRS; rotated
        or non-square cells.

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

    fname = _check_file(path, layer)
    try:
        with rasterio.open(fname) as src:
            if band < 1 or band > src.count:
                raise InputError(fname, layer, f"has {src.count} band(s); band {band} requested")
            crs = src.crs
            transform = src.transform
            data = src.read(band, masked=True)
            nodata = src.nodata
            tags = src.tags()
    except InputError:
        raise
    except (RasterioError, OSError, ValueError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(fname, layer, f"cannot be read as a raster ({msg})") from None
    if crs is None:
        raise InputError(fname, layer, "has no CRS; assign one (e.g. gdal_edit.py -a_srs)")
    check_transform(transform, fname, layer)
    values = data.astype(np.float64).filled(np.nan)
    rows, cols = values.shape
    x = transform.c + (np.arange(cols) + 0.5) * transform.a
    y = transform.f + (np.arange(rows) + 0.5) * transform.e
    da = xr.DataArray(
        values,
        dims=("y", "x"),
        coords={"y": y, "x": x},
        name=layer,
        attrs={"source": fname, "source_nodata": nodata, "tags": tags},
    )
    return da.rio.write_crs(crs).rio.write_transform(transform)


def as_dataarray(obj: Any, layer: str | None = None):
    """Accept a path or a DataArray; return a float64 DataArray (y, x) with a CRS."""
    if isinstance(obj, str | os.PathLike):
        return open_raster(obj, layer)
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover
        xr = None
    if xr is not None and isinstance(obj, xr.DataArray):
        da = obj.squeeze(drop=True) if obj.ndim > 2 else obj
        if da.ndim != 2:
            raise InputError(None, layer, f"must be a 2-D raster, got dims {da.dims}")
        if da.rio.crs is None:
            raise InputError(da.attrs.get("source"), layer, "has no CRS (da.rio.write_crs)")
        if da.dtype != np.float64:
            da = da.astype(np.float64)
            nod = obj.rio.nodata
            if nod is not None and not np.isnan(nod):
                da = da.where(da != nod)
        return da
    raise InputError(
        None, layer, f"expected a file path or xarray.DataArray, got {type(obj).__name__}"
    )


def check_counts(values: np.ndarray, file: str | None, layer: str) -> None:
    """Refuse negative or infinite counts (population, m²)."""
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


def open_units(path_or_gdf: Any, *, id_col: str | None = None, layer: str | None = None):
    """Read administrative units (GeoPackage, GeoParquet, shapefile ...) as a GeoDataFrame.

    Refuses unreadable or empty files, a missing id column, duplicate ids, a missing CRS,
    and empty geometries; repairs nothing silently (invalid geometries are fixed with
    ``make_valid`` and a warning).

    Examples
    --------
    >>> from pari_geo.datasets import belgium_paths
    >>> units = open_units(belgium_paths()["units"], id_col="UID")
    >>> len(units)
    581
    """
    import warnings

    import geopandas as gpd

    name = "units"
    if isinstance(path_or_gdf, gpd.GeoDataFrame):
        gdf, fname = path_or_gdf.copy(), None
    else:
        fname = _check_file(path_or_gdf, name)
        try:
            if str(fname).lower().endswith(".parquet"):
                gdf = gpd.read_parquet(fname)
            else:
                gdf = gpd.read_file(fname, layer=layer)
        except Exception as err:  # pyogrio/fiona/arrow raise many types
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise InputError(fname, name, f"cannot be read as a vector layer ({msg})") from None
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
        dup = gdf[id_col][gdf[id_col].duplicated()]
        if len(dup):
            raise InputError(
                fname, name, f"id column {id_col!r} has duplicate values, e.g. {dup.iloc[0]!r}"
            )
        if gdf[id_col].isna().any():
            raise InputError(fname, name, f"id column {id_col!r} has missing values")
    geom = gdf.geometry
    if geom.isna().any() or geom.is_empty.any():
        bad = int((geom.isna() | geom.is_empty).sum())
        raise InputError(fname, name, f"{bad} feature(s) have no or empty geometry")
    invalid = ~geom.is_valid
    if invalid.any():
        warnings.warn(
            f"{fname or 'units'}: {int(invalid.sum())} invalid geometries repaired with make_valid",
            stacklevel=2,
        )
        gdf.loc[invalid, gdf.geometry.name] = geom[invalid].make_valid()
    return gdf
