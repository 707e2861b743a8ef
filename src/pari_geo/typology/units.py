"""Degree of Urbanisation classification of spatial units (municipalities, districts ...).

A grid classification (level 1 codes 3/2/1/0 or level 2 codes 30 ... 10) and a population
grid are summarised per spatial unit: the share of each unit's population living in urban
centres, urban clusters, rural cells ... decides whether the unit is a city, a town or
semi-dense area or a rural area (level 1), and at level 2 which of the seven unit classes it
belongs to. The implementation follows section 7 of ``docs/degurba.md`` (the behaviour of the
R package flexurba, ``DoU_preprocess_units`` + ``DoU_classify_units``).

Only :func:`classify_units` is public; everything else in this module is a private helper.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from affine import Affine
from pyproj import CRS

from pari_geo.errors import ConfigError, InputError, where

__all__ = ["classify_units"]

#: Level-1 groups: name -> positions (0-based) in the 3 level-1 values (centre, cluster, rural).
_GROUPS_L1: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("UCentre", (0,)),
    ("UCluster", (1,)),
    ("Urban", (0, 1)),
    ("Rural", (2,)),
)
#: Level-2 groups: name -> positions in the 7 level-2 values (30, 23, 22, 21, 13, 12, 11).
_GROUPS_L2: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("UCentre", (0,)),
    ("UCluster", (1, 2, 3)),
    ("Urban", (0, 1, 2, 3)),
    ("Rural", (4, 5, 6)),
    ("DUC", (1,)),
    ("SDUC", (2,)),
    ("SUrb", (3,)),
    ("RC", (4,)),
    ("LDR", (5,)),
    ("VLDR", (6,)),
)
_DEFAULT_VALUES = {1: (3, 2, 1), 2: (30, 23, 22, 21, 13, 12, 11)}
_TOL = 1e-6  # tolerance (in cells) of the integer checks on resolutions and grid offsets


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


@dataclass
class _Grid:
    """A north-up raster: its window reader (read lazily, window by window) and geometry."""

    shape: tuple[int, int]  # (rows, cols)
    nodata: float | None  # value to treat as missing besides NaN
    x0: float  # left edge
    y0: float  # top edge
    res: float  # cell size (square cells)
    crs: CRS
    source: str | None  # file name, None for in-memory data
    layer: str
    reader: Any  # ingest.RasterWindows (a file) or ingest.DataArrayWindows (a DataArray)

    @property
    def x1(self) -> float:
        return self.x0 + self.shape[1] * self.res

    @property
    def y1(self) -> float:  # bottom edge
        return self.y0 - self.shape[0] * self.res

    def close(self) -> None:
        """Close the file (a DataArray's reader has nothing to close)."""
        self.reader.close()

    def __enter__(self) -> _Grid:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Cells [r0:r1, c0:c1] as a new float64 array, NaN where missing."""
        values = np.array(self.reader.read(r0, r1, c0, c1), dtype="float64")  # a copy
        if self.nodata is not None:
            values[values == self.nodata] = np.nan
        return values


def _is_path(obj: Any) -> bool:
    return isinstance(obj, str | os.PathLike)


def _projected_crs(rio_crs: Any, source: str | None, layer: str) -> CRS:
    """The grid's CRS as a pyproj CRS; refuse none or a geographic one."""
    if rio_crs is None:
        raise InputError(source, layer, "has no CRS; expected a projected CRS such as ESRI:54009")
    crs = CRS.from_user_input(rio_crs.to_wkt())
    if crs.is_geographic or not crs.is_projected:
        raise InputError(
            source,
            layer,
            f"has a geographic CRS ({crs.name}); cells must be in metres, reproject it to an "
            "equal-area projected CRS such as ESRI:54009 (World Mollweide)",
        )
    return crs


def _check_north_up(t: Any, source: str | None, layer: str) -> None:
    """Refuse a rotated, south-up or non-square grid."""
    if t.b != 0 or t.d != 0:
        raise InputError(source, layer, "is rotated or sheared; a north-up grid is required")
    if t.a <= 0 or t.e >= 0:
        raise InputError(
            source, layer, "must be north-up (positive x step, negative y step in the transform)"
        )
    if not math.isclose(t.a, -t.e, rel_tol=1e-9):
        raise InputError(source, layer, f"has non-square cells ({t.a} x {-t.e}); expected square")


def _read_grid(obj: Any, layer: str) -> _Grid:
    """Open a GeoTIFF path or take a 2-D rioxarray DataArray; return a :class:`_Grid`
    (a context manager: it closes the file).

    Files and DataArrays are read through ingest's window readers; nothing but the
    metadata is read here."""
    if _is_path(obj):
        return _read_grid_file(os.fspath(obj), layer)
    source: str | None = None
    if isinstance(obj, xr.DataArray):
        import rioxarray  # noqa: F401

        da = obj
    else:
        raise InputError(
            None, layer, f"expected an xarray.DataArray or a GeoTIFF path, got {type(obj).__name__}"
        )
    if "band" in da.dims:
        if da.sizes["band"] != 1:
            raise InputError(source, layer, f"has {da.sizes['band']} bands; expected one")
        da = da.squeeze("band", drop=True)
    if da.ndim != 2:
        raise InputError(source, layer, f"must be 2-D (y, x); got dims {da.dims}")
    if da.size == 0:
        raise InputError(source, layer, "is empty (no cells)")
    crs = _projected_crs(da.rio.crs, source, layer)
    t = da.rio.transform()
    _check_north_up(t, source, layer)
    nodata = da.rio.nodata
    if nodata is not None and math.isnan(float(nodata)):
        nodata = None
    try:
        da = da.transpose(da.rio.y_dim, da.rio.x_dim)
    except Exception as exc:  # rioxarray raises its own DimensionError
        raise InputError(source, layer, f"has no recognisable x/y dimensions ({exc})") from exc
    from ..ingest import DataArrayWindows

    shape = (int(da.shape[0]), int(da.shape[1]))
    return _Grid(shape, nodata, float(t.c), float(t.f), float(t.a), crs, source, layer,
                 DataArrayWindows(da, layer))


def _read_grid_file(source: str, layer: str) -> _Grid:
    """:func:`_read_grid` of a file: its metadata from :class:`~pari_geo.ingest.RasterWindows`."""
    from ..ingest import RasterWindows

    if not os.path.exists(source):
        raise InputError(source, layer, "file does not exist")
    reader = RasterWindows(source, layer, as_float=True)  # one-line errors of its own
    try:
        if reader.count != 1:
            raise InputError(source, layer, f"has {reader.count} bands; expected one")
        if 0 in reader.shape:
            raise InputError(source, layer, "is empty (no cells)")
        crs = _projected_crs(reader.crs, source, layer)
        t = reader.transform
        _check_north_up(t, source, layer)
    except BaseException:
        reader.close()
        raise
    nodata = reader.nodata
    if nodata is not None and math.isnan(float(nodata)):
        nodata = None
    return _Grid(reader.shape, nodata, float(t.c), float(t.f), float(t.a), crs, source, layer,
                 reader)


def _read_units(obj: Any) -> tuple[gpd.GeoDataFrame, str | None]:
    """Read the units (GeoDataFrame or vector file path) and return a copy."""
    if _is_path(obj):
        source = os.fspath(obj)
        if not os.path.exists(source):
            raise InputError(source, "units", "file does not exist")
        try:
            units = gpd.read_file(source)
        except Exception as exc:  # pyogrio/fiona raise several error types
            raise InputError(source, "units", f"cannot be read as a vector layer ({exc})") from exc
        if not isinstance(units, gpd.GeoDataFrame) or "geometry" not in units:
            raise InputError(source, "units", "has no geometry column")
        return units, source
    if isinstance(obj, gpd.GeoDataFrame):  # read by open_units: it knows its file
        return obj.copy(), obj.attrs.get("source")
    raise InputError(
        None, "units", f"expected a GeoDataFrame or a vector file path, got {type(obj).__name__}"
    )


def _describe_ids(ids: Sequence[Any], n: int = 5) -> str:
    ids = [i.item() if isinstance(i, np.generic) else i for i in ids]
    shown = ", ".join(repr(i) for i in ids[:n])
    return shown + (f" ... ({len(ids)} in all)" if len(ids) > n else "")


def _validate_units(
    units: gpd.GeoDataFrame,
    source: str | None,
    id_col: str,
    dissolve_by: str | None,
    grid_crs: CRS,
) -> gpd.GeoDataFrame:
    """Check the units, reproject them to the grid CRS, dissolve; return (id, geometry) only."""
    if len(units) == 0:
        raise InputError(source, "units", "contains no features")
    key = dissolve_by if dissolve_by is not None else id_col
    what = "dissolve_by" if dissolve_by is not None else "id"
    if key not in units.columns or key == units.geometry.name:
        raise InputError(
            source,
            "units",
            f"{what} column {key!r} is missing; available columns: "
            f"{[c for c in units.columns if c != units.geometry.name]}",
        )
    if units[key].isna().any():
        raise InputError(
            source, "units", f"column {key!r} has {int(units[key].isna().sum())} missing values"
        )
    if dissolve_by is None and units[key].duplicated().any():
        dup = units.loc[units[key].duplicated(keep=False), key].unique()
        raise InputError(
            source, "units", f"id column {key!r} has duplicate ids: {_describe_ids(dup)}"
        )
    geom = units.geometry.values
    ids = units[key].to_numpy()
    bad = shapely.is_missing(geom) | shapely.is_empty(geom)
    if bad.any():
        raise InputError(
            source,
            "units",
            f"{int(bad.sum())} units have a missing or empty "
            f"geometry ({key} {_describe_ids(ids[bad])})",
        )
    kind = shapely.get_type_id(geom)
    bad = ~np.isin(kind, (3, 6))  # Polygon, MultiPolygon
    if bad.any():
        raise InputError(
            source,
            "units",
            f"{int(bad.sum())} units are not (multi)polygons ({key} {_describe_ids(ids[bad])})",
        )
    bad = ~shapely.is_valid(geom)
    if bad.any():
        raise InputError(
            source,
            "units",
            f"{int(bad.sum())} units have invalid geometries ({key} {_describe_ids(ids[bad])}); "
            "repair them first, e.g. with GeoSeries.make_valid()",
        )
    if units.crs is None:
        raise InputError(source, "units", "has no CRS; expected the CRS of the grids")
    if not CRS.from_user_input(units.crs).equals(grid_crs):
        warnings.warn(
            f"{where(source, 'units')}: CRS {units.crs.name!r} differs from the grids' "
            f"{grid_crs.name!r}; the units are reprojected to the grid CRS",
            UserWarning,
            stacklevel=3,
        )
        units = units.to_crs(grid_crs)
    units = gpd.GeoDataFrame(
        {key: units[key].to_numpy()}, geometry=units.geometry.values, crs=units.crs
    )
    if dissolve_by is not None:
        # one (multi)polygon per distinct value, ordered by that value (groupby sorts)
        units = units.dissolve(by=key, sort=True).reset_index()[[key, "geometry"]]
    return units.reset_index(drop=True)


def _check_values(level: int, values: Sequence[int] | None) -> tuple[int, ...]:
    if level not in (1, 2):
        raise ConfigError("level", f"must be 1 or 2, got {level!r}")
    if values is None:
        return _DEFAULT_VALUES[level]
    values = tuple(values)
    need = 3 if level == 1 else 7
    if len(values) != need:
        names = (
            "urban centre, urban cluster, rural"
            if level == 1
            else "30 urban centre, 23 dense urban cluster, 22 semi-dense urban cluster, "
            "21 suburban, 13 rural cluster, 12 low-density rural, 11 very-low-density rural"
        )
        raise ConfigError(
            "values",
            f"level {level} needs {need} grid codes ({names}; no water code), got {len(values)}",
        )
    for v in values:
        if isinstance(v, bool) or not float(v).is_integer():
            raise ConfigError("values", f"codes must be integers, got {v!r}")
    if len(set(values)) != len(values):
        raise ConfigError("values", f"codes must be distinct, got {values}")
    return tuple(int(v) for v in values)


# --------------------------------------------------------------------------------------------
# preprocessing (spec 7.1)
# --------------------------------------------------------------------------------------------


def _near_int(x: float) -> bool:
    return abs(x - round(x)) < _TOL


def _snap(v: float) -> int:
    """Round half up (nearest cell boundary)."""
    return int(math.floor(v + 0.5))


@dataclass
class _Prepared:
    cls: np.ndarray  # float64, NaN = missing class
    pop: np.ndarray  # float64, NaN = missing population
    transform: Affine
    res: float
    factors: tuple[int, int]  # disaggregation factors (classification, population)


def _disaggregate_window(
    g: _Grid, rs: float, f: int, X0: float, Y0: float, rows: slice, cols: slice
) -> np.ndarray:
    """Cells [rows, cols] of grid ``g`` disaggregated by ``f`` onto the rs lattice at (X0, Y0).

    Fine cell (i, j) of the window lies in coarse cell ((off_y + i) // f, (off_x + j) // f), which
    is exactly nearest-neighbour disaggregation (each coarse cell becomes f x f copies).
    """
    off_x = round((X0 - g.x0) / rs)
    off_y = round((g.y0 - Y0) / rs)
    ci = (off_y + np.arange(rows.start, rows.stop)) // f
    cj = (off_x + np.arange(cols.start, cols.stop)) // f
    # read only the coarse cells under the window, then repeat them by fancy indexing
    coarse = g.read(int(ci[0]), int(ci[-1]) + 1, int(cj[0]), int(cj[-1]) + 1)
    return coarse[np.ix_(ci - ci[0], cj - cj[0])]


def _preprocess(
    cgrid: _Grid,
    pgrid: _Grid,
    units: gpd.GeoDataFrame,
    resample_resolution: float | None,
    id_col: str,
    source: str | None = None,
) -> tuple[_Prepared, gpd.GeoDataFrame, list[Any]]:
    # 1. resample resolution and integer-multiple check
    if resample_resolution is None:
        rs = min(cgrid.res, pgrid.res)
        user_rs = False
    else:
        rs = float(resample_resolution)
        user_rs = True
        if not rs > 0 or not math.isfinite(rs):
            raise ConfigError("resample_resolution", f"must be a positive number, got {rs!r}")
    factors = []
    for g in (cgrid, pgrid):
        ratio = g.res / rs
        if ratio < 1 - _TOL or not _near_int(ratio):
            problem = (
                f"resolution {g.res:g} is not an integer multiple of the resample resolution {rs:g}"
            )
            if user_rs:
                raise ConfigError("resample_resolution", f"the {g.layer} grid's {problem}")
            raise InputError(g.source, g.layer, problem + " (the finer input resolution)")
        factors.append(round(ratio))
    # both grids must share one lattice of step rs, otherwise cells cannot be matched
    dx = (cgrid.x0 - pgrid.x0) / rs
    dy = (cgrid.y0 - pgrid.y0) / rs
    if not (_near_int(dx) and _near_int(dy)):
        raise InputError(
            pgrid.source,
            pgrid.layer,
            f"is not aligned with the classification grid: origins differ by "
            f"({cgrid.x0 - pgrid.x0:g}, {cgrid.y0 - pgrid.y0:g}) m, not a multiple of {rs:g} m",
        )
    # 3a. common extent (intersection)
    X0 = max(cgrid.x0, pgrid.x0)
    X1 = min(cgrid.x1, pgrid.x1)
    Y0 = min(cgrid.y0, pgrid.y0)
    Y1 = max(cgrid.y1, pgrid.y1)
    ncols = round((X1 - X0) / rs)
    nrows = round((Y0 - Y1) / rs)
    if ncols <= 0 or nrows <= 0:
        raise InputError(pgrid.source, pgrid.layer, "does not overlap the classification grid")
    # 3b. crop to the units' bounding box, edges snapped to the nearest cell boundary
    bx0, by0, bx1, by1 = units.total_bounds
    c0 = min(max(_snap((bx0 - X0) / rs), 0), ncols)
    c1 = min(max(_snap((bx1 - X0) / rs), 0), ncols)
    r0 = min(max(_snap((Y0 - by1) / rs), 0), nrows)
    r1 = min(max(_snap((Y0 - by0) / rs), 0), nrows)
    if c1 <= c0:  # bbox narrower than half a cell: keep the cells it overlaps
        c0 = min(max(math.floor((bx0 - X0) / rs), 0), ncols)
        c1 = min(max(math.ceil((bx1 - X0) / rs), 0), ncols)
    if r1 <= r0:
        r0 = min(max(math.floor((Y0 - by1) / rs), 0), nrows)
        r1 = min(max(math.ceil((Y0 - by0) / rs), 0), nrows)
    if c1 <= c0 or r1 <= r0:
        raise InputError(
            source,
            "units",
            "no unit intersects the common extent of the classification and population grids",
        )
    rows, cols = slice(r0, r1), slice(c0, c1)
    # 2. nearest disaggregation of the window only; population divided by f^2
    cls = _disaggregate_window(cgrid, rs, factors[0], X0, Y0, rows, cols)
    pop = _disaggregate_window(pgrid, rs, factors[1], X0, Y0, rows, cols)
    if factors[1] != 1:
        pop = pop / (factors[1] * factors[1])
    left, top = X0 + c0 * rs, Y0 - r0 * rs
    transform = Affine(rs, 0.0, left, 0.0, -rs, top)
    # 5. drop units that do not intersect the cropped extent
    ext = shapely.box(left, top - (r1 - r0) * rs, left + (c1 - c0) * rs, top)
    keep = shapely.intersects(units.geometry.values, ext)
    dropped = units.loc[~keep, id_col].tolist()
    if dropped:
        warnings.warn(
            f"{len(dropped)} units do not intersect the classification and population grids "
            f"and are dropped ({id_col} {_describe_ids(dropped)})",
            UserWarning,
            stacklevel=3,
        )
        units = units.loc[keep].reset_index(drop=True)
    if len(units) == 0:
        raise InputError(
            source,
            "units",
            "no unit intersects the common extent of the classification and population grids",
        )
    return _Prepared(cls, pop, transform, rs, (factors[0], factors[1])), units, dropped


# --------------------------------------------------------------------------------------------
# zonal sums and rules (spec 7.2-7.6)
# --------------------------------------------------------------------------------------------


def _zonal(
    zone: np.ndarray,
    weight: np.ndarray,
    pop: np.ndarray,
    cls: np.ndarray,
    n: int,
    groups: Sequence[tuple[str, tuple[int, ...]]],
    area_needs_pop: bool,
) -> dict[str, np.ndarray]:
    """Per-zone population and area sums per group, with ``np.bincount``.

    ``zone`` holds zone indices 0..n-1 (one entry per contributing cell), ``weight`` the cell
    weights (1 in the official workflow, covered fraction in the alternative one), ``pop`` and
    ``cls`` the cell values. Missing population counts as 0. Area counts the weights of cells
    with population data when ``area_needs_pop`` (official workflow), of all cells otherwise.
    """
    has_pop = ~np.isnan(pop)
    wpop = np.where(has_pop, pop, 0.0) * weight
    warea = weight * has_pop if area_needs_pop else weight
    out = {
        "Tot_Pop": np.bincount(zone, weights=wpop, minlength=n),
        "Tot_Area": np.bincount(zone, weights=warea, minlength=n),
    }
    for name, codes in groups:
        m = np.isin(cls, codes)
        out[f"{name}_Pop"] = np.bincount(zone[m], weights=wpop[m], minlength=n)
        out[f"{name}_Area"] = np.bincount(zone[m], weights=warea[m], minlength=n)
    return out


def _shares(sums: dict[str, np.ndarray], groups, kind: str) -> dict[str, np.ndarray]:
    tot = sums[f"Tot_{kind}"]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {name: sums[f"{name}_{kind}"] / tot for name, _ in groups}


def _rules_l1(s: dict[str, np.ndarray], codes: Sequence[int]) -> np.ndarray:
    """Level-1 unit rules (spec 7.5); -1 = NA. NaN shares match no rule."""
    uc, ru = s["UCentre"], s["Rural"]
    return np.select(
        [uc >= 0.5, (uc < 0.5) & (ru <= 0.5), ru > 0.5], list(codes), default=-1
    ).astype("int64")


def _rules_l2(
    s: dict[str, np.ndarray],
    l1: np.ndarray,
    codes: Sequence[int],
    rules: str,
    split_share: str,
) -> np.ndarray:
    """Level-2 unit rules (spec 7.6) given level-1 classes coded 3/2/1; -1 = NA."""
    city, town, rural = l1 == 3, l1 == 2, l1 == 1
    if rules == "2024":
        dense = s["UCentre"] + s["DUC"]
        split = s[split_share] + s["Rural"]
        village = s["RC"] + s["UCentre"] + s["UCluster"]
        conds = [
            city,
            town & (dense >= 0.5),
            town & (dense < 0.5) & (split < 0.5),
            town & (split >= 0.5),
            rural & (village >= 0.5),
            rural & (village < 0.5) & (s["VLDR"] < 0.5),
            rural & (s["VLDR"] >= 0.5),
        ]
    else:  # 2021 manual
        duc, sduc, surb = s["DUC"], s["SDUC"], s["SUrb"]
        rc, ldr, vldr = s["RC"], s["LDR"], s["VLDR"]
        conds = [
            city,
            town & (duc >= sduc) & (duc + sduc > surb),
            town & (duc < sduc) & (duc + sduc > surb),
            town & (duc + sduc <= surb),
            rural & (rc > ldr) & (rc > vldr),
            rural & (ldr > rc) & (ldr > vldr),
            rural & (vldr > rc) & (vldr > ldr),
        ]
    return np.select(conds, list(codes), default=-1).astype("int64")


def _classify(
    shares: dict[str, np.ndarray],
    level: int,
    codes: Sequence[int],
    rules: str,
    split_share: str,
) -> dict[str, np.ndarray]:
    if level == 1:
        return {"L1": _rules_l1(shares, codes)}
    l1 = _rules_l1(shares, (3, 2, 1))  # always 3/2/1 at level 2 (spec 7.6, point 26)
    return {"L1": l1, "L2": _rules_l2(shares, l1, codes, rules, split_share)}


def _unit_classes(
    sums: dict[str, np.ndarray], groups, level, codes, rules, split_share
) -> dict[str, np.ndarray]:
    """Classes from population shares, with area shares where Tot_Pop == 0 (exception 1)."""
    out = _classify(_shares(sums, groups, "Pop"), level, codes, rules, split_share)
    nopop = sums["Tot_Pop"] == 0
    if nopop.any():
        by_area = _classify(_shares(sums, groups, "Area"), level, codes, rules, split_share)
        for k in out:
            out[k] = np.where(nopop, by_area[k], out[k])
    return out


# --------------------------------------------------------------------------------------------
# workflows (spec 7.3, 7.4)
# --------------------------------------------------------------------------------------------


def _window(bounds: np.ndarray, prep: _Prepared) -> tuple[int, int, int, int] | None:
    """Cell rows/cols [r0, r1) x [c0, c1) overlapping ``bounds``, clipped to the grid."""
    t, (nr, nc) = prep.transform, prep.cls.shape
    c0 = max(math.floor((bounds[0] - t.c) / prep.res), 0)
    c1 = min(math.ceil((bounds[2] - t.c) / prep.res), nc)
    r0 = max(math.floor((t.f - bounds[3]) / prep.res), 0)
    r1 = min(math.ceil((t.f - bounds[1]) / prep.res), nr)
    if c1 <= c0 or r1 <= r0:
        return None
    return r0, r1, c0, c1


def _official(
    geoms: np.ndarray, prep: _Prepared, groups
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Centre-in-polygon rasterisation, burn order = table order; per-unit sums."""
    from rasterio.features import rasterize

    n = len(geoms)
    zone = rasterize(
        ((g, i + 1) for i, g in enumerate(geoms)),
        out_shape=prep.cls.shape,
        transform=prep.transform,
        fill=0,
        all_touched=False,
        dtype="int32",
    ).ravel()
    inside = zone > 0
    z = zone[inside] - 1
    sums = _zonal(
        z, np.ones(z.size), prep.pop.ravel()[inside], prep.cls.ravel()[inside], n, groups, True
    )
    ncells = np.bincount(z, minlength=n)
    return sums, ncells


def _all_touched(geom: Any, prep: _Prepared, groups) -> dict[str, np.ndarray] | None:
    """Exception 2: the unit alone, all-touched, on its window of the grid."""
    from rasterio.features import rasterize

    win = _window(np.asarray(geom.bounds), prep)
    if win is None:
        return None
    r0, r1, c0, c1 = win
    t = prep.transform
    wt = Affine(prep.res, 0.0, t.c + c0 * prep.res, 0.0, -prep.res, t.f - r0 * prep.res)
    mask = rasterize(
        [(geom, 1)],
        out_shape=(r1 - r0, c1 - c0),
        transform=wt,
        fill=0,
        all_touched=True,
        dtype="uint8",
    ).astype(bool)
    if not mask.any():
        return None
    pop = prep.pop[r0:r1, c0:c1][mask]
    cls = prep.cls[r0:r1, c0:c1][mask]
    return _zonal(np.zeros(pop.size, dtype="int64"), np.ones(pop.size), pop, cls, 1, groups, True)


def _coverage(geom: Any, prep: _Prepared) -> tuple[np.ndarray, np.ndarray]:
    """Flat cell indices and covered fractions (0 < w <= 1) of the cells ``geom`` intersects.

    Exact: cells whose centre lies farther than half a cell diagonal from the boundary are
    entirely inside (w = 1) or outside (w = 0) the polygon, decided by their centre; the
    fraction of the remaining cells is the area of the cell-polygon intersection (shapely 2,
    vectorised) divided by the cell area.
    """
    win = _window(np.asarray(geom.bounds), prep)
    if win is None:
        return np.zeros(0, dtype="int64"), np.zeros(0)
    r0, r1, c0, c1 = win
    rs, t = prep.res, prep.transform
    rr, cc = np.mgrid[r0:r1, c0:c1]
    rr, cc = rr.ravel(), cc.ravel()
    xl = t.c + cc * rs
    yt = t.f - rr * rs
    xc, yc = xl + rs / 2, yt - rs / 2
    shapely.prepare(geom)
    w = shapely.contains_xy(geom, xc, yc).astype("float64")
    boundary = geom.boundary
    shapely.prepare(boundary)
    near = shapely.dwithin(boundary, shapely.points(xc, yc), rs * math.sqrt(0.5) * 1.001)
    if near.any():
        boxes = shapely.box(xl[near], yt[near] - rs, xl[near] + rs, yt[near])
        w[near] = np.minimum(shapely.area(shapely.intersection(boxes, geom)) / (rs * rs), 1.0)
    keep = w > 0
    return (rr[keep] * prep.cls.shape[1] + cc[keep]).astype("int64"), w[keep]


def _alternative(geoms: np.ndarray, prep: _Prepared, groups) -> dict[str, np.ndarray]:
    """Exact cell-fraction weights (no rasterisation); per-unit weighted sums."""
    zs, idx, ws = [], [], []
    for i, g in enumerate(geoms):
        cells, w = _coverage(g, prep)
        zs.append(np.full(cells.size, i, dtype="int64"))
        idx.append(cells)
        ws.append(w)
    z, cells, w = np.concatenate(zs), np.concatenate(idx), np.concatenate(ws)
    return _zonal(z, w, prep.pop.ravel()[cells], prep.cls.ravel()[cells], len(geoms), groups, False)


# --------------------------------------------------------------------------------------------
# public function
# --------------------------------------------------------------------------------------------


def classify_units(
    units: gpd.GeoDataFrame | str | os.PathLike,
    classification: xr.DataArray | str | os.PathLike,
    population: xr.DataArray | str | os.PathLike,
    *,
    id: str = "UID",  # noqa: A002  (name fixed by the flexurba-compatible API)
    level: int = 1,
    values: Sequence[int] | None = None,
    workflow: Literal["official", "alternative"] = "official",
    rules: Literal["2024", "2021"] = "2024",
    split_share: Literal["SDUC", "SUrb"] = "SDUC",
    dissolve_by: str | None = None,
    resample_resolution: float | None = None,
) -> gpd.GeoDataFrame:
    """Classify spatial units with the Degree of Urbanisation from a grid classification.

    Each unit gets the population living in each group of grid classes (urban centres, urban
    clusters, rural cells ...), the shares of its total population, and its class: level 1
    city / town and semi-dense area / rural area; level 2 also dense town, semi-dense town,
    suburban or peri-urban area, village, dispersed rural area, mostly uninhabited area. This
    reproduces ``DoU_preprocess_units`` + ``DoU_classify_units`` of the R package flexurba.

    Parameters
    ----------
    units : GeoDataFrame or path
        (Multi)polygons of the spatial units with a unique id column, or a vector file that
        geopandas can read (first layer). Geometries must be valid and non-empty. Units in
        another CRS than the grids are reprojected to the grid CRS (with a warning); a
        missing CRS is an error.
    classification : xarray.DataArray or path
        Grid classification, 2-D (y, x) with a rioxarray CRS and transform, or a GeoTIFF.
        Level 1 codes 3/2/1(/0 water) or level 2 codes 30/23/22/21/13/12/11(/10 water), or the
        custom ``values``. Missing cells (NaN or the raster's nodata) belong to no class.
    population : xarray.DataArray or path
        Residents per cell, same CRS, on a lattice aligned with the classification (e.g. the
        100 m GHS-POP under the 1 km classification). NaN / nodata = no data.
    id : str, default "UID"
        Unique id column of ``units`` (ignored when ``dissolve_by`` is given).
    level : {1, 2}, default 1
        Level of the unit classification (and of the grid codes expected).
    values : sequence of int, optional
        Grid codes in class order, without the water code: level 1 (urban centre, urban
        cluster, rural), level 2 (30, 23, 22, 21, 13, 12, 11 equivalents). They are also the
        output codes of the unit classes (``L1`` at level 1, ``L2`` at level 2; the ``L1``
        column at level 2 is always coded 3/2/1, as in flexurba).
    workflow : {"official", "alternative"}, default "official"
        ``"official"`` (GHSL): units rasterised by cell centre, burn order = table order
        (a later unit wins on overlaps); a unit without population is classified by its area
        shares (cells with population data); a unit that receives no cell is rasterised alone
        with all-touched cells, classified on them, and appended at the end of the table with
        missing population and share columns ("no population assigned, to avoid double
        counting"). ``"alternative"``: every intersected cell contributes with the exact
        fraction of its area covered by the unit (computed with shapely 2 polygon-box
        intersections; equivalent to exactextract's coverage fraction); units without
        population use the covered area of all their cells; no rasterisation, no exception 2.
    rules : {"2024", "2021"}, default "2024"
        Level-2 rules: the July 2024 update (default) or the 2021 manual (under which a rural
        unit with a tie for its largest rural share gets NA).
    split_share : {"SDUC", "SUrb"}, default "SDUC"
        Level-2 2024 rules only: the share added to the rural share to split towns into
        semi-dense towns (22, sum < 0.5) and suburban or peri-urban areas (21, sum >= 0.5).
        ``"SDUC"`` uses the semi-dense urban cluster share, as flexurba's code and tests do;
        ``"SUrb"`` uses the suburban or peri-urban share, as flexurba's documentation words
        the rule. The two give different classes for many real towns (section 9 of
        ``docs/degurba.md``).
    dissolve_by : str, optional
        Column of ``units`` to merge units by (one unit per distinct value, ordered by
        value); that column becomes the id and ``id`` is ignored.
    resample_resolution : float, optional
        Cell size (m) of the common grid the computation runs on. Default: the finer of the
        two grid resolutions. Both resolutions must be integer multiples of it. The
        classification is disaggregated by nearest neighbour, the population too and divided
        by the square of the factor (totals preserved). The grids are cropped to their common
        extent, then to the units' bounding box with edges snapped to the *nearest* cell
        boundary (as ``terra::crop``); units outside the cropped extent are dropped with a
        warning. The snapping never loses a cell centre inside a unit, but a cell that a
        unit at the edge of the bounding box covers by less than half its width is cropped
        away, which the alternative workflow and exception 2 (all-touched) can notice.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per unit: the id column, ``Tot_Pop``, ``<g>_Pop`` for each group, then
        ``<g>_share`` for each group, ``L1`` (and ``L2`` at level 2) as nullable integers
        (``Int64``, NA when no rule matches), and the unit geometry (grid CRS). Groups: level 1
        ``UCentre, UCluster, Urban, Rural``; level 2 also ``DUC, SDUC, SUrb, RC, LDR, VLDR``.
        Water and missing classes belong to no group but count in ``Tot_Pop``. Rows: units
        sorted by id (numbers numerically, strings lexicographically), then the units of
        exception 2 in input order. ``attrs`` records ``resample_resolution``, ``level``,
        ``workflow``, ``rules``, ``split_share``, ``exception2`` (ids) and ``dropped`` (ids).

    Raises
    ------
    InputError
        Unreadable, empty or invalid units (missing id column, duplicate or missing ids,
        empty/invalid/non-polygon geometries, no CRS), rasters that are not 2-D, have no or a
        geographic CRS, differ in CRS, are not aligned, have a resolution that is not an integer
        multiple of the finer one, contain none of ``values``, or units that miss the grids.
    ConfigError
        Invalid ``level``, ``values``, ``workflow``, ``rules``, ``split_share`` or
        ``resample_resolution``.

    Notes
    -----
    Level 1 rules (first match): city if UCentre_share >= 0.5; town and semi-dense area if
    UCentre_share < 0.5 and Rural_share <= 0.5; rural area if Rural_share > 0.5. Level 2:
    cities stay 30; towns are 23 if UCentre + DUC >= 0.5, else 22 if SDUC (or SUrb) + Rural
    < 0.5, else 21; rural areas are 13 if RC + UCentre + UCluster >= 0.5, else 12 if
    VLDR < 0.5, else 11. Per-unit sums use ``np.bincount`` on the rasterised unit index grid.

    Examples
    --------
    A 4 x 4 grid of 1 km cells (ESRI:54009): an urban centre in the top-left 2 x 2 block,
    rural elsewhere, 10 residents per cell; two units split the grid into west and east halves.

    >>> import numpy as np, xarray as xr, rioxarray, geopandas as gpd
    >>> from shapely.geometry import box
    >>> def grid(a):
    ...     da = xr.DataArray(np.asarray(a, dtype=float), dims=("y", "x"),
    ...                       coords={"y": [3500.0, 2500.0, 1500.0, 500.0],
    ...                               "x": [500.0, 1500.0, 2500.0, 3500.0]})
    ...     return da.rio.write_crs("ESRI:54009")
    >>> cls = grid([[3, 3, 1, 1], [3, 3, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]])
    >>> pop = grid(np.full((4, 4), 10.0))
    >>> units = gpd.GeoDataFrame({"UID": [1, 2]},
    ...                          geometry=[box(0, 0, 2000, 4000), box(2000, 0, 4000, 4000)],
    ...                          crs="ESRI:54009")
    >>> out = classify_units(units, cls, pop)
    >>> out[["UID", "Tot_Pop", "UCentre_share", "Rural_share", "L1"]]
       UID  Tot_Pop  UCentre_share  Rural_share  L1
    0    1     80.0            0.5          0.5   3
    1    2     80.0            0.0          1.0   1
    """
    if workflow not in ("official", "alternative"):
        raise ConfigError("workflow", f"must be 'official' or 'alternative', got {workflow!r}")
    if rules not in ("2024", "2021"):
        raise ConfigError("rules", f"must be '2024' or '2021', got {rules!r}")
    if split_share not in ("SDUC", "SUrb"):
        raise ConfigError("split_share", f"must be 'SDUC' or 'SUrb', got {split_share!r}")
    codes = _check_values(level, values)
    groups = tuple(
        (name, tuple(codes[i] for i in pos))
        for name, pos in (_GROUPS_L1 if level == 1 else _GROUPS_L2)
    )

    with _read_grid(classification, "classification") as cgrid, \
            _read_grid(population, "population") as pgrid:
        if not cgrid.crs.equals(pgrid.crs):
            raise InputError(
                pgrid.source,
                "population",
                f"CRS {pgrid.crs.name!r} differs from the classification's {cgrid.crs.name!r}",
            )
        raw_units, usource = _read_units(units)
        units_gdf = _validate_units(raw_units, usource, id, dissolve_by, cgrid.crs)
        id_col = dissolve_by if dissolve_by is not None else id

        prep, units_gdf, dropped = _preprocess(cgrid, pgrid, units_gdf, resample_resolution, id_col,
                                              usource)
        present = np.unique(prep.cls[~np.isnan(prep.cls)])
        if not np.isin(present, codes).any():
            raise InputError(
                cgrid.source,
                "classification",
                f"none of its codes {present.astype('int64').tolist()[:12]} occur in values "
                f"{list(codes)} (level {level}); pass the matching level or values",
            )

        geoms = units_gdf.geometry.values
        n = len(geoms)
        ids = units_gdf[id_col]
        if workflow == "official":
            sums, ncells = _official(geoms, prep, groups)
            rasterised = ncells > 0
        else:
            sums = _alternative(geoms, prep, groups)
            rasterised = np.ones(n, dtype=bool)
        classes = _unit_classes(sums, groups, level, codes, rules, split_share)

        # exception 2: units without any cell centre, all-touched, appended at the end
        missing_idx = np.flatnonzero(~rasterised)
        for i in missing_idx:
            sub = _all_touched(geoms[i], prep, groups)
            for k in classes:
                classes[k][i] = -1
            if sub is not None:
                sub_cls = _unit_classes(sub, groups, level, codes, rules, split_share)
                for k in classes:
                    classes[k][i] = sub_cls[k][0]

        shares = _shares(sums, groups, "Pop")
        data: dict[str, Any] = {id_col: ids.to_numpy(), "Tot_Pop": sums["Tot_Pop"]}
        for name, _ in groups:
            data[f"{name}_Pop"] = sums[f"{name}_Pop"]
        for name, _ in groups:
            data[f"{name}_share"] = shares[name]
        table = pd.DataFrame(data)
        num_cols = [c for c in table.columns if c != id_col]
        table.loc[~rasterised, num_cols] = np.nan
        for k, arr in classes.items():
            table[k] = pd.arrays.IntegerArray(np.where(arr < 0, 0, arr), arr < 0)
        table["geometry"] = geoms

        order = table.loc[rasterised].sort_values(id_col, kind="mergesort")
        table = pd.concat([order, table.loc[~rasterised]], ignore_index=True)
        out = gpd.GeoDataFrame(table, geometry="geometry", crs=units_gdf.crs)
        out.attrs.update(
            {
                "resample_resolution": prep.res,
                "level": level,
                "workflow": workflow,
                "rules": rules,
                "split_share": split_share,
                "exception2": ids.iloc[missing_idx].tolist(),
                "dropped": dropped,
            }
        )
        return out
