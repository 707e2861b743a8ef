"""The region: a polygon layer, the target CRS and the grid whose outside cells are nodata.

The grid covers the region's bounds, snapped outward to multiples of the cell size (so a
1 km grid in ESRI:54009 or EPSG:3035 coincides with the GHSL and EEA reference grids); a
cell belongs to the region when its centre lies in one of the polygons, the rule the unit
tables of :func:`pari_geo.report.residents_by_unit_and_class` use, so the run's class
totals and its municipalities' residents count the same cells.

Examples
--------
>>> from pari_geo.datasets import belgium_paths
>>> units = read_region(belgium_paths()["units"], id_col="UID")
>>> crs = choose_crs(units)
>>> grid, inside = region_grid(units, crs, 1000)
>>> crs.to_string(), grid.shape, int(inside.sum())
('ESRI:54009', (210, 296), 30646)
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import numpy as np
from affine import Affine
from pyproj import CRS

from ..errors import ConfigError, InputError
from ..grid import GridSpec

__all__ = ["read_region", "choose_crs", "check_target_crs", "region_grid", "region_union",
           "EUROPE_LONLAT"]

#: lon/lat box in which EPSG:3035 (ETRS89-LAEA Europe) is the default target CRS
EUROPE_LONLAT = (-32.0, 27.0, 45.0, 72.0)


def read_region(path: str | os.PathLike, *, id_col: str | None = None, layer: str | None = None):
    """Read the region's polygons (municipalities or one boundary) with
    :func:`pari_geo.ingest.open_units` (same checks: polygons only, a CRS, unique ids).

    Examples
    --------
    >>> from pari_geo.datasets import belgium_paths
    >>> len(read_region(belgium_paths()["units"], id_col="UID"))
    581
    """
    from ..ingest import open_units

    gdf = open_units(path, id_col=id_col, layer=layer)
    gdf.attrs["source"] = str(path)
    return gdf


def _is_mercator(crs: CRS) -> bool:
    op = crs.coordinate_operation
    method = (op.method_name if op is not None else "") or ""
    return "mercator" in method.lower() and "transverse" not in method.lower()


def check_target_crs(crs: Any, file: str | None = None, key: str = "grid.crs") -> CRS:
    """Refuse a geographic, Web Mercator or non-metre target CRS (one line naming the key).

    Examples
    --------
    >>> check_target_crs("EPSG:3035").to_epsg()
    3035
    >>> check_target_crs("EPSG:3857")
    Traceback (most recent call last):
    ...
    pari_geo.errors.ConfigError: key 'grid.crs': EPSG:3857 is a Mercator projection ...
    """
    try:
        crs = CRS.from_user_input(crs)
    except Exception as err:  # pyproj raises CRSError with a long text
        raise ConfigError(key, f"is not a CRS pyproj knows ({str(err).splitlines()[0]})",
                          file, what="key") from None
    name = crs.to_string()
    if crs.is_geographic:
        raise ConfigError(key, f"{name} is geographic (degrees); cells must be square metres: "
                          "use an equal-area or national metric CRS, e.g. EPSG:3035",
                          file, what="key")
    if _is_mercator(crs):
        raise ConfigError(key, f"{name} is a Mercator projection (areas grow with latitude); "
                          "use an equal-area or national metric CRS, e.g. EPSG:3035",
                          file, what="key")
    units = {ax.unit_name for ax in crs.axis_info}
    if not units <= {"metre", "meter", "m"}:
        raise ConfigError(key, f"{name} is not in metres (axis units {sorted(units)})",
                          file, what="key")
    return crs


def _lonlat_centre(gdf) -> tuple[float, float]:
    left, bottom, right, top = gdf.to_crs("EPSG:4326").total_bounds
    return (left + right) / 2, (bottom + top) / 2


def choose_crs(region, requested: str = "auto", file: str | None = None) -> CRS:
    """The target CRS: ``requested`` when given, else the region's own CRS when it is
    projected in metres and not Mercator (a national grid such as SWEREF99 TM, or GHSL's
    Mollweide), else EPSG:3035 in Europe and an equal-area LAEA centred on the region
    elsewhere.

    A region in a geographic CRS (degrees) is accepted and reprojected; without an
    explicit ``grid.crs`` a warning names the file and the CRS chosen.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> r = gpd.GeoDataFrame(geometry=[box(24.8, 60.1, 25.1, 60.3)], crs="EPSG:4326")
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     choose_crs(r).to_epsg()
    3035
    >>> r2 = gpd.GeoDataFrame(geometry=[box(-70, -34, -69, -33)], crs="EPSG:4326")
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     choose_crs(r2).coordinate_operation.method_name
    'Lambert Azimuthal Equal Area'
    """
    if requested and requested != "auto":
        return check_target_crs(requested, file)
    own = CRS.from_user_input(region.crs)
    src = region.attrs.get("source")
    if own.is_projected and not _is_mercator(own):
        units = {ax.unit_name for ax in own.axis_info}
        if units <= {"metre", "meter", "m"}:
            return own
    lon, lat = _lonlat_centre(region)
    w, s, e, n = EUROPE_LONLAT
    if w <= lon <= e and s <= lat <= n:
        chosen = CRS.from_epsg(3035)
    else:
        chosen = CRS.from_proj4(
            f"+proj=laea +lat_0={lat:.3f} +lon_0={lon:.3f} +x_0=0 +y_0=0 +ellps=WGS84 "
            "+units=m +no_defs"
        )
    if own.is_geographic or _is_mercator(own):
        kind = "geographic (degrees)" if own.is_geographic else "Mercator"
        warnings.warn(
            f"{src or 'region'} [region]: is in a {kind} CRS ({own.name}); the grid uses "
            f"{chosen.to_string() if chosen.to_epsg() else 'LAEA centred on the region'} "
            "(set grid.crs to choose another)",
            UserWarning,
            stacklevel=2,
        )
    return chosen


def region_grid(region, crs: Any, cell_size_m: float) -> tuple[GridSpec, np.ndarray]:
    """The grid over the region and the mask of its cells (centre inside a polygon).

    Returns
    -------
    grid : GridSpec
        Bounds snapped outward to multiples of ``cell_size_m`` in ``crs``.
    inside : ndarray of bool
        True for the region's cells.

    Raises
    ------
    InputError
        When no cell centre falls in the region (a region smaller than one cell).
    """
    from rasterio import features

    crs = CRS.from_user_input(crs)
    r = region.to_crs(crs) if CRS.from_user_input(region.crs) != crs else region
    left, bottom, right, top = r.total_bounds
    if not all(map(math.isfinite, (left, bottom, right, top))):
        raise InputError(region.attrs.get("source"), "region",
                         f"cannot be projected to {crs.to_string()} (coordinates out of range)")
    s = float(cell_size_m)
    x0, y1 = math.floor(left / s) * s, math.ceil(top / s) * s
    x1, y0 = math.ceil(right / s) * s, math.floor(bottom / s) * s
    shape = (max(1, int(round((y1 - y0) / s))), max(1, int(round((x1 - x0) / s))))
    grid = GridSpec(crs, Affine(s, 0, x0, 0, -s, y1), shape)
    inside = features.rasterize(
        ((g, 1) for g in r.geometry), out_shape=shape, transform=grid.transform, fill=0,
        dtype="uint8", all_touched=False,
    ).astype(bool)
    if not inside.any():
        raise InputError(region.attrs.get("source"), "region",
                         f"contains no cell centre of a {s:g} m grid; use smaller cells")
    return grid, inside


def region_union(region, crs: Any):
    """The region as one (multi)polygon in ``crs``."""
    crs = CRS.from_user_input(crs)
    r = region.to_crs(crs) if CRS.from_user_input(region.crs) != crs else region
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return r.geometry.union_all()
