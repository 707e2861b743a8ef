"""How well two place-type classifications agree, and a reference classification on the
run's grid.

:func:`compare_classes` compares two class rasters on one grid cell by cell: the share of
cells with the same class, Cohen's kappa and the confusion matrix (reference classes as
rows). :func:`reference_on_grid` puts a published classification (a class raster on any
grid of the same CRS, or points with a class column, as Nordregio publishes its 1 km place
types) on the grid of a run, so that the two can be compared.

Examples
--------
>>> import numpy as np
>>> from affine import Affine
>>> from pari_geo.grid import GridSpec
>>> grid = GridSpec("EPSG:3035", Affine(1000, 0, 0, 0, -1000, 2000), (2, 2))
>>> fine = GridSpec("EPSG:3035", Affine(500, 0, 0, 0, -500, 2000), (4, 4))
>>> published = fine.to_dataarray(np.array([[1, 1, 2, 2],
...                                         [1, 3, 2, 2],
...                                         [4, 4, 5, 5],
...                                         [4, 4, 5, 6]], dtype=np.uint8))
>>> reference = reference_on_grid(published, grid)
>>> reference
array([[1, 2],
       [4, 5]], dtype=uint8)
>>> result = compare_classes(reference, np.array([[1, 2], [4, 4]]))
>>> result.agreement, result.n_cells
(0.75, 4)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pyproj import CRS

from ..errors import InputError
from ..grid import GridSpec, check_transform

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ClassAgreement", "compare_classes", "reference_on_grid", "REFERENCE_NODATA"]

#: Code of the cells of :func:`reference_on_grid` that no reference class falls in.
REFERENCE_NODATA = 255

#: Codes a reference classification may hold: 0 water, 1..7 the Nordic place types.
REFERENCE_CODES = tuple(range(8))

_LAYER = "reference"

#: Suffixes read as vector layers (everything else is opened as a raster).
_VECTOR_SUFFIXES = (
    ".gpkg",
    ".shp",
    ".geojson",
    ".json",
    ".fgb",
    ".parquet",
    ".geoparquet",
    ".gml",
    ".kml",
    ".gdb",
    ".sqlite",
    ".csv",
)

#: Reference cells read at once (float64: 32 MB).
_BLOCK_CELLS = 1 << 22

#: Tolerance of cell-index arithmetic: a centre on a cell edge goes to the cell right of or
#: below the edge, whatever rounding error the coordinates carry.
_EDGE_EPS = 1e-9


# --------------------------------------------------------------------------------------
# compare_classes
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ClassAgreement:
    """Cell-by-cell agreement of two classifications (made by :func:`compare_classes`).

    Attributes
    ----------
    agreement : float
        Share of the compared cells whose classes are equal (overall accuracy), 0..1.
    kappa : float
        Cohen's kappa, ``(p_o - p_e) / (1 - p_e)`` with ``p_o`` the agreement and ``p_e``
        the agreement expected by chance from the row and column totals. When ``p_e`` is 1
        (both sides hold one and the same class in every cell) the ratio is 0/0; it is
        defined as 1.0 there, since the agreement is perfect (scikit-learn's
        ``cohen_kappa_score`` returns NaN).
    confusion : pandas.DataFrame
        Cell counts; index ``reference`` (the classes of ``a``), columns ``classified``
        (the classes of ``b``). Treat it as read-only.
    n_cells : int
        Number of cells compared (those with a class on both sides).

    Examples
    --------
    >>> import numpy as np
    >>> r = compare_classes(np.array([[1, 1], [2, 2]]), np.array([[1, 2], [2, 2]]))
    >>> r.confusion
    classified  1  2
    reference
    1           1  1
    2           0  2
    >>> round(r.kappa, 3)
    0.5
    """

    agreement: float
    kappa: float
    confusion: pd.DataFrame
    n_cells: int

    @property
    def per_class(self) -> pd.DataFrame:
        """Per class: cells in the reference and in the classification, cells where both
        agree, producer's accuracy (agreeing / reference cells: how much of the reference
        class was found) and user's accuracy (agreeing / classified cells: how much of what
        was classified so is so in the reference). NaN where a class is absent on that side.

        Examples
        --------
        >>> import numpy as np
        >>> r = compare_classes(np.array([[1, 1], [2, 2]]), np.array([[1, 2], [2, 2]]))
        >>> r.per_class[["producers_accuracy", "users_accuracy"]]
               producers_accuracy  users_accuracy
        class
        1                     0.5        1.000000
        2                     1.0        0.666667
        """
        import pandas as pd

        m = self.confusion.to_numpy()
        ref, cls, agree = m.sum(axis=1), m.sum(axis=0), np.diag(m)
        with np.errstate(invalid="ignore", divide="ignore"):
            producers = np.where(ref > 0, agree / np.maximum(ref, 1), np.nan)
            users = np.where(cls > 0, agree / np.maximum(cls, 1), np.nan)
        index = pd.Index(self.confusion.index.to_list(), name="class")
        return pd.DataFrame(
            {
                "reference_cells": ref,
                "classified_cells": cls,
                "agreeing_cells": agree,
                "producers_accuracy": producers,
                "users_accuracy": users,
            },
            index=index,
        )

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain JSON types: class codes become string keys, NaN ``None``.

        Examples
        --------
        >>> import json, numpy as np
        >>> r = compare_classes(np.array([[1, 1], [2, 2]]), np.array([[1, 2], [2, 2]]))
        >>> d = r.to_dict()
        >>> d["confusion"], d["n_cells"]
        ({'1': {'1': 1, '2': 1}, '2': {'1': 0, '2': 2}}, 4)
        >>> d["per_class"]["1"]["producers_accuracy"]
        0.5
        >>> _ = json.dumps(d, allow_nan=False)
        """
        confusion = {
            str(r): {str(c): int(n) for c, n in row.items()}
            for r, row in self.confusion.to_dict(orient="index").items()
        }
        per_class = {
            str(k): {name: _json_number(v) for name, v in row.items()}
            for k, row in self.per_class.to_dict(orient="index").items()
        }
        return {
            "agreement": float(self.agreement),
            "kappa": float(self.kappa),
            "n_cells": int(self.n_cells),
            "classes": [int(c) for c in self.confusion.index],
            "confusion": confusion,
            "per_class": per_class,
        }


def _json_number(v: Any) -> int | float | None:
    if isinstance(v, int | np.integer):
        return int(v)
    return None if math.isnan(float(v)) else float(v)


def compare_classes(
    a: Any,
    b: Any,
    *,
    classes: Iterable[int] | None = None,
    nodata: Iterable[float] = (REFERENCE_NODATA,),
) -> ClassAgreement:
    """Compare two classifications of the same grid cell by cell.

    Parameters
    ----------
    a : numpy.ndarray or xarray.DataArray
        2-D integer class codes of the reference (rows of the confusion matrix); float
        arrays are accepted when they hold whole numbers (NaN = no class).
    b : numpy.ndarray or xarray.DataArray
        The classification to compare with (columns), on the same grid. When both are
        DataArrays their CRS, transform and shape must be equal; otherwise their shapes.
    classes : iterable of int, optional
        The classes to compare, in the order of the confusion matrix. Cells whose class is
        not among them on either side are left out of every figure; listed classes that no
        cell holds get rows and columns of zeros. By default: every class present, sorted.
    nodata : iterable of numbers, default (255,)
        Codes meaning "no class". Cells holding one on either side are left out, as are NaN
        cells and cells equal to a DataArray's ``rio.nodata``.

    Returns
    -------
    ClassAgreement
        ``agreement``, ``kappa``, ``confusion``, ``n_cells``, ``per_class``, ``to_dict()``.

    Raises
    ------
    InputError
        Not 2-D, not numeric, fractional class codes, different grids, or no cell with a
        class on both sides.

    Notes
    -----
    The figures are exact: the confusion matrix is a count of integer codes
    (``numpy.bincount``), the agreement its trace over its sum, and kappa follows from the
    same integers (see :class:`ClassAgreement` for the case of a single class).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[1, 2, 255], [3, 3, 0]], dtype=np.uint8)
    >>> b = np.array([[1, 2, 2], [3, 1, 0]], dtype=np.uint8)
    >>> r = compare_classes(a, b)
    >>> r.n_cells, r.agreement, round(r.kappa, 4)
    (5, 0.8, 0.7368)
    >>> compare_classes(a, b, classes=[3, 1]).confusion
    classified  3  1
    reference
    3           1  1
    1           0  1
    """
    nodata = tuple(nodata)
    ref, ref_ok = _codes(a, nodata, _LAYER)
    cls, cls_ok = _codes(b, nodata, "classified")
    _check_same_grid(a, b, ref.shape, cls.shape)
    ok = ref_ok & cls_ok
    ref, cls = ref[ok], cls[ok]
    if classes is None:
        labels = np.unique(np.concatenate([ref, cls]))
    else:
        labels = np.asarray(list(dict.fromkeys(int(c) for c in classes)), dtype=np.int64)
        keep = np.isin(ref, labels) & np.isin(cls, labels)
        ref, cls = ref[keep], cls[keep]
    if ref.size == 0:
        raise InputError(
            _source(b),
            "classified",
            "no cell has a class in both "
            "classifications (all no-data, or outside the classes compared)",
        )
    counts = _confusion(ref, cls, labels)
    return _agreement(counts, labels)


def _is_dataarray(obj: Any) -> bool:
    """Whether ``obj`` is an ``xarray.DataArray`` (its ``.rio`` accessor then registered)."""
    import sys

    xr = sys.modules.get("xarray")  # a DataArray exists only once xarray is imported
    if xr is None or not isinstance(obj, xr.DataArray):
        return False
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    return True


def _source(obj: Any) -> str | None:
    attrs = getattr(obj, "attrs", None)
    return attrs.get("source") if isinstance(attrs, dict) else None


def _codes(obj: Any, nodata: tuple[float, ...], layer: str) -> tuple[np.ndarray, np.ndarray]:
    """(int64 codes, mask of cells with a class) of a 2-D array or DataArray."""
    extra: tuple[float, ...] = ()
    if _is_dataarray(obj):
        if obj.ndim > 2:
            obj = obj.squeeze(drop=True)
        if obj.rio.nodata is not None:
            extra = (float(obj.rio.nodata),)
    values = np.asarray(obj)
    if values.ndim != 2:
        raise InputError(_source(obj), layer, f"must be a 2-D raster, got {values.ndim} dims")
    if values.dtype.kind not in "biuf":
        raise InputError(_source(obj), layer, f"must hold class codes, got dtype {values.dtype}")
    ok = ~np.isnan(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
    for code in nodata + extra:
        if not np.isnan(code):
            ok &= values != code
    present = values[ok]
    if values.dtype.kind == "f" and not (
        np.isfinite(present).all() and (present == np.round(present)).all()
    ):
        bad = present[~np.isfinite(present) | (present != np.round(present))]
        raise InputError(
            _source(obj), layer, f"holds values that are not class codes, e.g. {bad[0]:g}"
        )
    codes = np.zeros(values.shape, dtype=np.int64)
    codes[ok] = present.astype(np.int64)
    return codes, ok


def _check_same_grid(a: Any, b: Any, shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> None:
    problem = None
    if shape_a != shape_b:
        problem = f"has shape {shape_b}, the reference {shape_a}"
    elif _is_dataarray(a) and _is_dataarray(b):
        crs_a, crs_b = a.rio.crs, b.rio.crs
        same_crs = (crs_a is None and crs_b is None) or (
            crs_a is not None
            and crs_b is not None
            and CRS.from_user_input(crs_a) == CRS.from_user_input(crs_b)
        )
        t_a, t_b = a.rio.transform(), b.rio.transform()
        if not same_crs:
            problem = f"is in CRS {_crs_name(crs_b)}, the reference in {_crs_name(crs_a)}"
        elif not t_a.almost_equals(t_b, precision=1e-6 * max(abs(t_a.a), 1e-12)):
            problem = f"has transform {tuple(t_b)[:6]}, the reference {tuple(t_a)[:6]}"
    if problem:
        raise InputError(
            _source(b),
            "classified",
            f"is not on the reference's grid: {problem}; "
            "put both on one grid first (e.g. reference_on_grid)",
        )


def _confusion(ref: np.ndarray, cls: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """k x k counts of (reference, classified) label pairs; every code is among ``labels``."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    i = order[np.searchsorted(sorted_labels, ref)]
    j = order[np.searchsorted(sorted_labels, cls)]
    k = labels.size
    return np.bincount(i * k + j, minlength=k * k).reshape(k, k)


def _agreement(counts: np.ndarray, labels: np.ndarray) -> ClassAgreement:
    import pandas as pd

    n = int(counts.sum())
    observed = int(np.trace(counts)) / n
    rows, cols = counts.sum(axis=1).astype(np.float64), counts.sum(axis=0).astype(np.float64)
    expected = float(rows @ cols) / (float(n) * float(n))
    kappa = 1.0 if expected >= 1.0 else (observed - expected) / (1.0 - expected)
    codes = [int(c) for c in labels]
    confusion = pd.DataFrame(
        counts.astype(np.int64),
        index=pd.Index(codes, name="reference"),
        columns=pd.Index(codes, name="classified"),
    )
    return ClassAgreement(agreement=observed, kappa=float(kappa), confusion=confusion, n_cells=n)


# --------------------------------------------------------------------------------------
# reference_on_grid
# --------------------------------------------------------------------------------------


def reference_on_grid(
    reference: Any,
    grid: GridSpec,
    *,
    class_column: str | None = None,
    nodata: float | None = None,
    layer: str | None = None,
) -> np.ndarray:
    """Put a reference classification (codes 0..7) on the grid of a run.

    Parameters
    ----------
    reference : path, xarray.DataArray or geopandas.GeoDataFrame
        Either a class raster (a GeoTIFF or any GDAL raster, or a rioxarray DataArray) on
        any north-up grid in the grid's CRS, or points (a vector file: ``.gpkg``, ``.shp``,
        ``.geojson``, ``.parquet`` ..., or a GeoDataFrame) with a class column.
    grid : GridSpec
        The grid of the run (``GridSpec.from_dataarray(place_types)``).
    class_column : str, optional
        The column of the points holding the class codes; required for points, refused
        for rasters.
    nodata : number, optional
        A code meaning "no class" in the reference, besides the raster's declared no-data
        (and NaN). Points whose class is missing are left out as well.
    layer : str, optional
        The layer of a multi-layer vector file (GeoPackage) to read.

    Returns
    -------
    numpy.ndarray
        ``uint8`` of ``grid.shape``; :data:`REFERENCE_NODATA` (255) where no reference class
        falls.

    Raises
    ------
    InputError
        One line naming the file and the layer ``reference``: the file is missing or
        unreadable; it has no CRS or another CRS than the grid; it does not overlap the
        grid; a class code is outside 0..7; the class column is missing (the message lists
        the columns).

    Notes
    -----
    Which class a grid cell gets, exactly:

    * **Coarser grid** (cells larger than the reference's) and **points**: the most
      frequent class among the reference cell centres (or points) falling in the cell;
      ties go to the smallest code. A 100 m raster on a 1 km grid gives each cell the
      majority of its 100 fine cells.
    * **Finer or equal grid**: the class of the reference cell holding the cell's centre.

    A centre or point on a cell edge belongs to the cell right of or below that edge (cells
    include their left and top edges). Reference no-data cells and points are ignored, so
    a grid cell is 255 only when no reference class falls in it. The rules are written with
    numpy on cell indices (one ``bincount`` per block of reference rows), so they hold on
    any pair of grids; GDAL's ``mode`` resampling (``rasterio.warp.reproject``) gives other
    answers on some cells, even of aligned 100 m and 1 km grids.

    Examples
    --------
    Points, as Nordregio publishes its 1 km place types (one per cell); two points in the
    upper-left cell, of which the smaller code wins the tie:

    >>> import geopandas as gpd
    >>> from affine import Affine
    >>> from shapely.geometry import Point
    >>> grid = GridSpec("EPSG:3006", Affine(1000, 0, 0, 0, -1000, 2000), (2, 2))
    >>> points = gpd.GeoDataFrame({"typ": [3, 2, 7]},
    ...                           geometry=[Point(200, 1800), Point(700, 1200),
    ...                                     Point(1500, 500)], crs="EPSG:3006")
    >>> reference_on_grid(points, grid, class_column="typ")
    array([[  2, 255],
           [255,   7]], dtype=uint8)
    """
    if not isinstance(grid, GridSpec):
        raise TypeError(f"grid must be a pari_geo.grid.GridSpec, got {type(grid).__name__}")
    if _is_vector(reference, class_column):
        x, y, codes = _read_points(reference, grid, class_column, nodata, layer)
        counts = np.zeros((*grid.shape, len(REFERENCE_CODES)), dtype=np.int64)
        _count_classes(
            counts,
            _cell_index(y, grid.transform.f, grid.transform.e, grid.shape[0]),
            _cell_index(x, grid.transform.c, grid.transform.a, grid.shape[1]),
            codes,
        )
        out = _mode(counts)
        if (out == REFERENCE_NODATA).all():
            raise InputError(
                _vector_name(reference),
                _LAYER,
                f"has no point with a class inside the grid (grid bounds {_rounded(grid.bounds)})",
            )
        return out
    src, rio_nodata = _raster_reader(reference)
    try:
        if class_column is not None:
            raise InputError(
                src.path,
                _LAYER,
                f"is a raster; class_column {class_column!r} applies to point layers only",
            )
        skip = tuple(v for v in (nodata, rio_nodata) if v is not None and not np.isnan(v))
        return _raster_on_grid(src, grid, skip)
    finally:
        src.close()


def _is_vector(reference: Any, class_column: str | None) -> bool:
    """Points (GeoDataFrame or vector file) rather than a raster (DataArray or raster file)."""
    import sys

    gpd = sys.modules.get("geopandas")
    if gpd is not None and isinstance(reference, gpd.GeoDataFrame):
        return True
    if not isinstance(reference, str | os.PathLike):
        return False
    path = os.fspath(reference)
    text = path.lower().rstrip("/")
    return (
        text.endswith(_VECTOR_SUFFIXES)
        or os.path.isdir(path)
        or (class_column is not None and not text.endswith((".tif", ".tiff", ".vrt", ".img")))
    )


def _vector_name(reference: Any) -> str | None:
    if isinstance(reference, str | os.PathLike):
        return os.fspath(reference)
    return _source(reference)


def _rounded(bounds: Sequence[float]) -> tuple[int, ...]:
    return tuple(round(v) for v in bounds)


def _crs_name(crs: Any) -> str:
    """``EPSG:3006``-style name of a CRS, or its name when it has no authority code."""
    if crs is None:
        return "none"
    crs = CRS.from_user_input(crs)
    auth = crs.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else crs.name


def _same_crs(a: Any, b: Any) -> bool:
    """The same CRS, also when one is an ESRI/WKT spelling of the other's EPSG code."""
    ca, cb = CRS.from_user_input(a), CRS.from_user_input(b)
    if ca == cb or ca.equals(cb, ignore_axis_order=True):
        return True
    ea, eb = ca.to_epsg(min_confidence=70), cb.to_epsg(min_confidence=70)
    return ea is not None and ea == eb


def _check_crs(crs: Any, grid: GridSpec, fname: str | None, assign: str, how: str) -> None:
    """Refuse a missing CRS (``assign`` says how to set one) or another CRS than the grid's
    (``how`` says how to reproject, ``{crs}`` standing for the grid's)."""
    if crs is None:
        raise InputError(fname, _LAYER, f"has no CRS; assign the one it was made in ({assign})")
    if not _same_crs(crs, grid.crs):
        target = _crs_name(grid.crs)
        raise InputError(
            fname,
            _LAYER,
            f"is in CRS {_crs_name(crs)} but the grid is in "
            f"{target}; reproject it first ({how.format(crs=target)})",
        )


def _check_codes(values: np.ndarray, fname: str | None) -> None:
    """Refuse codes other than 0..7 among ``values`` (no-data removed already)."""
    bad = (values < 0) | (values > REFERENCE_CODES[-1]) | (values != np.round(values))
    if bad.any():
        found = np.unique(values[bad])
        shown = ", ".join(f"{v:g}" for v in found[:10]) + (" ..." if found.size > 10 else "")
        raise InputError(
            fname,
            _LAYER,
            f"holds class codes outside 0..7: {shown} (if one means no class, pass it as nodata)",
        )


def _cell_index(coord: np.ndarray, origin: float, step: float, n: int) -> np.ndarray:
    """Index of the cell holding each coordinate along one axis; -1 outside the ``n``
    cells. ``step`` is negative for rows (y falls as the row index grows)."""
    idx = np.floor((np.asarray(coord, dtype=np.float64) - origin) / step + _EDGE_EPS)
    return np.where((idx >= 0) & (idx < n), idx, -1).astype(np.int64)


def _count_classes(
    counts: np.ndarray, rows: np.ndarray, cols: np.ndarray, codes: np.ndarray
) -> None:
    """Add one to ``counts[row, col, code]`` for each item inside the grid (row, col >= 0).

    Only the target rows the items reach are counted at once (one ``bincount``)."""
    inside = (rows >= 0) & (cols >= 0)
    if not inside.any():
        return
    rows, cols, codes = rows[inside], cols[inside], codes[inside].astype(np.int64)
    r0, r1 = int(rows.min()), int(rows.max()) + 1
    ncols, k = counts.shape[1], counts.shape[2]
    flat = ((rows - r0) * ncols + cols) * k + codes
    counts[r0:r1] += np.bincount(flat, minlength=(r1 - r0) * ncols * k).reshape(r1 - r0, ncols, k)


def _mode(counts: np.ndarray) -> np.ndarray:
    """Most frequent code of each cell (first maximum: the smallest code on a tie); 255
    where nothing was counted."""
    out = np.argmax(counts, axis=2).astype(np.uint8)
    out[counts.sum(axis=2) == 0] = REFERENCE_NODATA
    return out


# ---- points ---------------------------------------------------------------------------


def _read_points(
    reference: Any,
    grid: GridSpec,
    class_column: str | None,
    nodata: float | None,
    layer: str | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y and codes of the points with a class (codes checked to be 0..7)."""
    import pandas as pd

    from ..ingest import read_vector

    gdf, fname = read_vector(reference, _LAYER, layer)
    columns = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    if class_column is None:
        raise InputError(
            fname,
            _LAYER,
            "is a point layer; pass class_column, the column of "
            f"the class codes (columns: {', '.join(columns[:12])})",
        )
    if class_column not in gdf.columns:
        raise InputError(
            fname, _LAYER, f"has no column {class_column!r} (columns: {', '.join(columns[:12])})"
        )
    _check_crs(
        gdf.crs, grid, fname, "gdf.set_crs(...)", "gdf.to_crs('{crs}'), or ogr2ogr -t_srs {crs}"
    )
    geom = gdf.geometry
    empty = geom.isna() | geom.is_empty
    if empty.any():
        raise InputError(fname, _LAYER, f"{int(empty.sum())} feature(s) have no or empty geometry")
    kinds = set(geom.geom_type) - {"Point"}
    if kinds:
        raise InputError(
            fname,
            _LAYER,
            f"holds {', '.join(sorted(kinds))} geometries; give "
            "one point per cell (e.g. gdf.set_geometry(gdf.centroid))",
        )
    raw = gdf[class_column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    not_numbers = np.isnan(values) & raw.notna().to_numpy()
    if not_numbers.any():
        raise InputError(
            fname,
            _LAYER,
            f"column {class_column!r} holds values that are not "
            f"class codes, e.g. {raw[not_numbers].iloc[0]!r}",
        )
    keep = ~np.isnan(values)
    if nodata is not None:
        keep &= values != nodata
    _check_codes(values[keep], fname)
    return geom.x.to_numpy()[keep], geom.y.to_numpy()[keep], values[keep].astype(np.int64)


# ---- rasters --------------------------------------------------------------------------


def _raster_reader(reference: Any) -> tuple[Any, float | None]:
    """The reference raster as a window reader (``RasterWindows`` for a file,
    ``DataArrayWindows`` for a DataArray) and the DataArray's ``rio.nodata``, which the
    reader leaves unmasked in a float64 array."""
    from ..ingest import DataArrayWindows, RasterWindows

    if isinstance(reference, str | os.PathLike):
        return RasterWindows(reference, _LAYER, as_float=True), None
    if _is_dataarray(reference):
        rio_nodata = reference.rio.nodata
        return (
            DataArrayWindows(reference, _LAYER),
            None if rio_nodata is None else float(rio_nodata),
        )
    raise InputError(
        None,
        _LAYER,
        "expected a raster or vector file path, an "
        f"xarray.DataArray or a GeoDataFrame, got {type(reference).__name__}",
    )


def _raster_on_grid(src: Any, grid: GridSpec, skip: tuple[float, ...]) -> np.ndarray:
    fname = src.path
    _check_crs(src.crs, grid, fname, "gdal_edit.py -a_srs", "gdalwarp -t_srs {crs} -r mode")
    check_transform(src.transform, fname, _LAYER)
    ref = GridSpec(src.crs, src.transform, src.shape)
    g, b = grid.bounds, ref.bounds
    if b[0] >= g[2] or b[2] <= g[0] or b[1] >= g[3] or b[3] <= g[1]:
        raise InputError(
            fname,
            _LAYER,
            f"does not overlap the grid (reference bounds "
            f"{_rounded(b)}, grid bounds {_rounded(g)})",
        )
    if grid.cell_size_m > ref.cell_size_m * (1 + 1e-9):
        out = _binned(src, ref, grid, skip)
    else:
        out = _sampled(src, ref, grid, skip)
    if (out == REFERENCE_NODATA).all():
        raise InputError(
            fname,
            _LAYER,
            "has no class in any cell of the grid (the "
            "overlap holds only no-data, or no reference cell centre)",
        )
    return out


def _read_classes(
    src: Any, r0: int, r1: int, c0: int, c1: int, skip: tuple[float, ...]
) -> np.ndarray:
    """Window of codes as float64, NaN where no class; codes checked to be 0..7."""
    block = src.read(r0, r1, c0, c1)
    for code in skip:
        block[block == code] = np.nan
    _check_codes(block[~np.isnan(block)], src.path)
    return block


def _row_blocks(r0: int, r1: int, width: int) -> Iterator[tuple[int, int]]:
    step = max(1, _BLOCK_CELLS // max(width, 1))
    for start in range(r0, r1, step):
        yield start, min(start + step, r1)


def _span(idx: np.ndarray) -> tuple[int, int]:
    """First and one-past-last position of the non-negative entries (a monotone run)."""
    hit = np.flatnonzero(idx >= 0)
    return (int(hit[0]), int(hit[-1]) + 1) if hit.size else (0, 0)


def _binned(src: Any, ref: GridSpec, grid: GridSpec, skip: tuple[float, ...]) -> np.ndarray:
    """Coarser grid: mode of the reference cells whose centres fall in each cell."""
    centres = ref.coords()
    t = grid.transform
    row_of = _cell_index(centres["y"], t.f, t.e, grid.shape[0])  # grid row of each ref row
    col_of = _cell_index(centres["x"], t.c, t.a, grid.shape[1])
    (r0, r1), (c0, c1) = _span(row_of), _span(col_of)
    counts = np.zeros((*grid.shape, len(REFERENCE_CODES)), dtype=np.int64)
    for a, z in _row_blocks(r0, r1, c1 - c0):
        block = _read_classes(src, a, z, c0, c1, skip)
        ok = ~np.isnan(block)
        rows = np.broadcast_to(row_of[a:z, None], block.shape)[ok]
        cols = np.broadcast_to(col_of[None, c0:c1], block.shape)[ok]
        _count_classes(counts, rows, cols, block[ok])
    return _mode(counts)


def _sampled(src: Any, ref: GridSpec, grid: GridSpec, skip: tuple[float, ...]) -> np.ndarray:
    """Finer or equal grid: the class of the reference cell holding each cell's centre."""
    centres = grid.coords()
    t = ref.transform
    ref_row = _cell_index(centres["y"], t.f, t.e, ref.shape[0])  # ref row of each grid row
    ref_col = _cell_index(centres["x"], t.c, t.a, ref.shape[1])
    out = np.full(grid.shape, REFERENCE_NODATA, dtype=np.uint8)
    (g0, g1), (h0, h1) = _span(ref_row), _span(ref_col)
    if g0 == g1 or h0 == h1:
        return out
    c0, c1 = int(ref_col[h0]), int(ref_col[h1 - 1]) + 1
    for a, z in _row_blocks(g0, g1, c1 - c0):
        lo, hi = int(ref_row[a]), int(ref_row[z - 1]) + 1
        block = _read_classes(src, lo, hi, c0, c1, skip)
        picked = block[np.ix_(ref_row[a:z] - lo, ref_col[h0:h1] - c0)]
        out[a:z, h0:h1] = np.where(np.isnan(picked), REFERENCE_NODATA, picked).astype(np.uint8)
    return out
