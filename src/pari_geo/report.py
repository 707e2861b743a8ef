"""Summary tables: residents and area per class, per unit and class.

Examples
--------
>>> import numpy as np
>>> from pari_geo.classes import DEGURBA_L1
>>> t = population_by_class(np.array([[3, 1], [0, 1]]), np.array([[10.0, 2.0], [np.nan, 3.0]]),
...                         DEGURBA_L1, cell_area_km2=1.0)
>>> t[["code", "cells"]].values.tolist(), t["population"].tolist()
([[3, 1], [2, 0], [1, 2], [0, 1]], [10.0, 0.0, 5.0, 0.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .classes import ClassScheme

if TYPE_CHECKING:
    import geopandas as gpd
    import xarray as xr
    from numpy.typing import ArrayLike

__all__ = [
    "population_by_class",
    "population_by_class_from_files",
    "residents_by_unit_and_class",
    "scheme_from_attrs",
]


def population_by_class(
    classes, population, scheme: ClassScheme, *, cell_area_km2: float
) -> pd.DataFrame:
    """Cells, area and residents per class (missing population counts as 0).

    Returns a DataFrame with columns ``code``, ``name``, ``cells``, ``area_km2``,
    ``population`` and ``population_share``, one row per class of ``scheme`` in class
    order (plus a ``nodata`` row when the scheme has a no-data code present in the data).
    """
    cells, pop = _class_totals(classes, population)
    return _population_table(cells, pop, scheme, cell_area_km2)


def _class_totals(classes, population) -> tuple[np.ndarray, np.ndarray]:
    """Cells and residents (NaN as 0) per uint8 class code, as two arrays of 256."""
    c = np.asarray(classes).ravel().astype(np.int64)
    p = np.asarray(population, dtype=np.float64).ravel()
    p = np.where(np.isnan(p), 0.0, p)
    return np.bincount(c, minlength=256), np.bincount(c, weights=p, minlength=256)


def population_by_class_from_files(
    classes_path, population_path, scheme: ClassScheme, *, strip_cells: int = 1 << 24
) -> pd.DataFrame:
    """:func:`population_by_class` of a class raster and a population raster on disk.

    Reads both by strips of about ``strip_cells`` cells, so it works for grids larger
    than memory. The population raster must share the class raster's CRS and cell
    lattice and cover it (it may be larger, e.g. when the classes were cropped).
    Residents are added strip by strip, so the totals may differ from
    :func:`population_by_class` on the whole arrays in the last bits.

    Examples
    --------
    >>> import os, tempfile
    >>> from pari_geo.datasets import belgium_paths
    >>> from pari_geo.classes import DEGURBA_L2
    >>> from pari_geo.io_write import write_class_raster
    >>> from pari_geo.typology.degurba import classify_grid
    >>> p = belgium_paths()
    >>> out = os.path.join(tempfile.mkdtemp(), "l2.tif")
    >>> _ = write_class_raster(classify_grid(p["population"], p["built"], p["land"]), out,
    ...                        DEGURBA_L2)
    >>> t = population_by_class_from_files(out, p["population"], DEGURBA_L2)
    >>> int(t.loc[t.code == 30, "cells"].iloc[0])
    2145
    """
    from rasterio.windows import from_bounds

    from .errors import InputError
    from .ingest import RasterWindows

    cells = np.zeros(256, np.int64)
    pop = np.zeros(256, np.float64)
    with RasterWindows(classes_path, "classes") as cls, \
            RasterWindows(population_path, "population", as_float=True) as src:
        height, width = cls.shape
        if cls.crs != src.crs or not np.isclose(abs(cls.transform.a), abs(src.transform.a)):
            raise InputError(str(population_path), "population",
                             "is not on the grid of the class raster")
        win = from_bounds(*cls.bounds, transform=src.transform)
        r_off, c_off = int(round(win.row_off)), int(round(win.col_off))
        if (r_off < 0 or c_off < 0 or r_off + height > src.shape[0]
                or c_off + width > src.shape[1]):
            raise InputError(str(population_path), "population",
                             "does not cover the class raster")
        step = max(1, strip_cells // max(width, 1))
        for r0 in range(0, height, step):
            h = min(step, height - r0)
            c = cls.read_raw(r0, r0 + h, 0, width)
            pv = src.read(r_off + r0, r_off + r0 + h, c_off, c_off + width)
            k, v = _class_totals(c, pv)
            cells += k
            pop += v
        area = abs(cls.transform.a * cls.transform.e) / 1e6
    return _population_table(cells, pop, scheme, area)


def _population_table(cells, pop, scheme: ClassScheme, cell_area_km2: float) -> pd.DataFrame:
    codes = list(scheme.codes)
    names = [scheme.names[k] for k in codes]
    if scheme.nodata is not None and cells[scheme.nodata]:
        codes.append(scheme.nodata)
        names.append("No data")
    total = pop.sum()
    df = pd.DataFrame(
        {
            "code": codes,
            "name": names,
            "cells": [int(cells[k]) for k in codes],
            "area_km2": [float(cells[k]) * cell_area_km2 for k in codes],
            "population": [float(pop[k]) for k in codes],
        }
    )
    df["population_share"] = df["population"] / total if total > 0 else np.nan
    return df


def class_attrs(da) -> dict[str, Any]:
    """A class raster's attributes with lower-case keys.

    pari_geo writes its attributes as GeoTIFF tags, which GDAL (and so rioxarray and
    rasterio) returns upper-cased (``CLASS_NAMES``); in memory they are lower-case.

    Examples
    --------
    >>> import xarray as xr
    >>> class_attrs(xr.DataArray([1], attrs={"CLASS_SCHEME": "nordic7"}))
    {'class_scheme': 'nordic7'}
    """
    return {str(k).lower(): v for k, v in da.attrs.items()}


def as_class_raster(da):
    """A class raster as pari_geo draws it: 2-D, integer codes, its attributes kept.

    A single ``band`` dimension (``rioxarray.open_rasterio``) is dropped and a masked
    float raster (``masked=True``) gets its NaN cells back as the scheme's no-data code
    (255 when the scheme has none).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.array([[[1.0, np.nan]]]), dims=("band", "y", "x"))
    >>> as_class_raster(da).values.tolist()
    [[1, 255]]
    """
    import numpy as np

    if "band" in da.dims and da.sizes["band"] == 1:
        da = da.squeeze("band", drop=True)
    if np.issubdtype(da.dtype, np.floating):
        attrs = dict(da.attrs)
        nodata = getattr(da.rio, "nodata", None) if hasattr(da, "rio") else None
        fill = 255 if nodata is None or not np.isfinite(nodata) else int(nodata)
        da = da.fillna(fill).astype(np.uint8)
        da.attrs.update(attrs)
    return da


def scheme_from_attrs(da) -> ClassScheme:
    """Recover the class scheme (codes, names, colours) recorded on a class raster.

    Works on a raster just computed (lower-case attributes) and on one reopened from a
    GeoTIFF written by pari_geo (upper-case tags, with rioxarray or
    :func:`pari_geo.io_write.read_class_raster`).

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray([1], attrs={"CLASS_NAMES": '{"1": "Inner urban area"}',
    ...                               "CLASS_SCHEME": "nordic7", "TYPOLOGY": "nordic7"})
    >>> scheme_from_attrs(da).name
    'nordic7'
    """
    import json

    from .classes import scheme_for
    from .errors import InputError

    attrs = class_attrs(da)
    if "class_names" not in attrs:
        raise InputError(
            attrs.get("source"), None,
            "not a pari_geo class raster (no class_names attribute or CLASS_NAMES tag); "
            "pass scheme= explicitly",
        )
    names = json.loads(attrs["class_names"])
    colours = json.loads(attrs.get("class_colours", "{}") or "{}")
    codes = tuple(int(k) for k in names)
    typology = str(attrs.get("typology") or "classes")
    base_name = str(
        attrs.get("class_scheme")
        or {"degurba": f"degurba_l{attrs.get('level', 2)}"}.get(typology, typology)
    )
    try:
        base = scheme_for(base_name)
        scheme = base.with_codes(codes) if len(codes) == len(base.codes) else base
    except ValueError:
        scheme = ClassScheme(
            base_name,
            codes,
            {int(k): v for k, v in names.items()},
            {int(k): v for k, v in names.items()},
            {int(k): colours.get(k, "#BBBBBB") for k in names},
        )
    return scheme.with_nodata(_nodata_code(da, scheme.codes))


def _nodata_code(da, codes: tuple[int, ...]) -> int | None:
    """The raster's no-data value when it is a code 0..255 outside ``codes`` (the no-data
    class of a DEGURBA raster made with ``nodata=``), else None."""
    import numpy as np

    nodata = getattr(da.rio, "nodata", None) if hasattr(da, "rio") else None
    if nodata is None or not np.isfinite(nodata) or float(nodata) != int(nodata):
        return None
    code = int(nodata)
    return code if 0 <= code <= 255 and code not in codes else None


def residents_by_unit_and_class(
    classes: xr.DataArray,
    population: ArrayLike,
    units: gpd.GeoDataFrame,
    id_col: str,
    scheme: ClassScheme,
    *,
    jobs: ArrayLike | None = None,
    job_sectors: Sequence[str] | None = None,
) -> gpd.GeoDataFrame:
    """Residents and area per class for each unit (cells assigned by their centre).

    Parameters
    ----------
    classes : xarray.DataArray
        Class codes with a CRS and transform.
    population : ndarray
        Residents per cell on the same grid (NaN = missing, counted as 0).
    units : GeoDataFrame
        Unit polygons (reprojected to the raster CRS if needed).
    id_col : str
        Unit id column.
    scheme : ClassScheme
    jobs : array-like, optional
        Workplaces per cell on the same grid, ``(rows, cols)`` or ``(sectors, rows,
        cols)``: the economic activity of each unit.
    job_sectors : sequence of str, optional
        Names of the sectors of a 3-D ``jobs`` (default ``sector_1`` ...).

    Returns
    -------
    GeoDataFrame
        One row per unit (in the units' order): ``id_col``, the unit's ``name`` when the
        units have a ``name`` column (any case), ``residents`` (all cells), ``area_km2``,
        then ``residents_<short>`` and ``area_km2_<short>`` per class (and ``nodata`` when
        present), plus the unit geometry. Residents summed over the class columns equal
        ``residents``. With ``jobs``: ``jobs``, ``jobs_per_resident``, and by sector
        ``jobs_<sector>`` and ``sector_evenness`` (Shannon entropy of the unit's jobs over
        the sectors divided by its maximum, 0 = one sector, 1 = all equal).
    """
    import geopandas as gpd
    from rasterio import features

    crs = classes.rio.crs
    u = units.to_crs(crs) if units.crs != crs else units
    shape = classes.shape
    transform = classes.rio.transform()
    unit_index = features.rasterize(
        ((geom, i + 1) for i, geom in enumerate(u.geometry)),
        out_shape=shape,
        transform=transform,
        fill=0,
        dtype="int32",
        all_touched=False,
    ).ravel()
    n = len(u)
    c = np.asarray(classes.values).ravel().astype(np.int64)
    p = np.asarray(population, dtype=np.float64).ravel()
    p = np.where(np.isnan(p), 0.0, p)
    cell_km2 = abs(transform.a * transform.e) / 1e6
    codes = list(scheme.codes)
    if scheme.nodata is not None and (c == scheme.nodata).any():
        codes.append(scheme.nodata)
    key = unit_index * 256 + c
    pop_uc = np.bincount(key, weights=p, minlength=(n + 1) * 256).reshape(n + 1, 256)
    cells_uc = np.bincount(key, minlength=(n + 1) * 256).reshape(n + 1, 256)
    out = pd.DataFrame({id_col: u[id_col].to_numpy()})
    name_col = next((c for c in u.columns if str(c).lower() == "name" and c != id_col), None)
    if name_col is not None:  # tables a planner reads name the municipalities
        out["name"] = u[name_col].to_numpy()
    out["residents"] = pop_uc[1:].sum(axis=1)
    out["area_km2"] = cells_uc[1:].sum(axis=1) * cell_km2
    for code in codes:
        short = scheme.short.get(code, "nodata")
        out[f"residents_{short}"] = pop_uc[1:, code]
    for code in codes:
        short = scheme.short.get(code, "nodata")
        out[f"area_km2_{short}"] = cells_uc[1:, code] * cell_km2
    if jobs is not None:
        _jobs_columns(out, unit_index, n, jobs, job_sectors)
    return gpd.GeoDataFrame(out, geometry=u.geometry.to_numpy(), crs=crs)


def _jobs_columns(out: pd.DataFrame, unit_index: np.ndarray, n: int, jobs: ArrayLike,
                  names: Sequence[str] | None) -> None:
    """Jobs, jobs per resident and, by sector, jobs and evenness per unit (in place)."""
    j = np.asarray(jobs, dtype=np.float64)
    if j.ndim == 2:
        j = j[None]
    per_sector = np.stack([np.bincount(unit_index, weights=np.nan_to_num(b.ravel()),
                                       minlength=n + 1)[1:] for b in j])
    total = per_sector.sum(axis=0)
    out["jobs"] = total
    res = out["residents"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["jobs_per_resident"] = np.where(res > 0, total / res, np.nan)
    if j.shape[0] >= 2:
        names = list(names) if names is not None else [f"sector_{i + 1}"
                                                        for i in range(j.shape[0])]
        for name, col in zip(names, per_sector, strict=True):
            out[f"jobs_{name}"] = col
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.where(total > 0, per_sector / total, 0.0)
            h = -np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0).sum(axis=0)
        out["sector_evenness"] = np.where(total > 0, h / np.log(j.shape[0]), np.nan)
