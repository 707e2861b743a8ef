"""Roads (OpenStreetMap ``.osm.pbf`` or any line layer) → a speed raster in km/h.

Each cell gets the speed of the fastest road crossing it (``all_touched``: a road counts
in every cell its line enters), cells of the region without a road get ``offroad_kmh``,
water cells (land share below 0.5, when a land layer is given) without a road stay NaN
(impassable, as in the place types' travel-time model), cells outside the region NaN.
Speeds per ``highway`` class ship in ``pari_geo/presets/osm_speeds.toml``; a line layer
can carry its own ``speed_column`` (km/h) or a class column. Ferry routes (OSM ways
tagged ``route = ferry``, class ``ferry`` or ``route = ferry`` in a line layer) take the
table's ``ferry``
speed, so that water they cross is passable; other water cells without a road stay
impassable.

Lines are rasterised in batches of 100,000, so memory is bounded by a batch and the grid.

Examples
--------
>>> load_speeds()["motorway"], load_speeds()["residential"]
(110.0, 30.0)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from ..config import load_toml
from ..errors import ConfigError, InputError
from ..grid import GridSpec

__all__ = ["load_speeds", "speed_raster", "osm_road_batches", "OFFROAD_KMH", "Roads",
           "roads_speed"]

#: speed of cells without a road (walking across fields and forest)
OFFROAD_KMH = 5.0
_BATCH = 100_000


@dataclass(frozen=True)
class Roads:
    """A road network to burn into the speed raster of the place types' travel times.

    Parameters
    ----------
    path : path-like
        An OpenStreetMap extract (``.osm.pbf``) or any line layer GDAL reads.
    layer : str, optional
        Layer of a multi-layer file (GeoPackage).
    class_column : str, optional
        Road class column (default ``highway``), mapped to km/h by ``speeds``.
    speed_column : str, optional
        A column of speeds in km/h, used instead of the class.
    speeds : str or path, optional
        A TOML table ``[speeds]`` of class → km/h (default: the shipped
        ``osm_speeds.toml``).
    offroad_kmh : float, default 5
        Speed of land cells without a road.

    Examples
    --------
    >>> Roads("roads.gpkg", layer="roads").offroad_kmh
    5.0
    """

    path: Any
    layer: str | None = None
    class_column: str | None = None
    speed_column: str | None = None
    speeds: Any = None
    offroad_kmh: float = OFFROAD_KMH

    def __post_init__(self) -> None:
        object.__setattr__(self, "offroad_kmh", check_offroad(self.offroad_kmh, None))


def roads_speed(roads: Any, grid: GridSpec, population: np.ndarray,
                land_share: np.ndarray | None = None) -> np.ndarray:
    """The travel speed (km/h) the place types read, from ``roads`` (a :class:`Roads` or a
    path) on ``grid``.

    Cells with a road get the fastest road's speed (``all_touched``; bridges and ferries
    cross water); the other cells the rules can cross (land share 0.5 or more, unknown
    land counting as land, or residents) ``offroad_kmh``; water without a road or ferry and
    cells without population data 0 (impassable).

    Raises
    ------
    InputError
        No road of the layer reaches the grid (another CRS without a CRS record, another
        region), or the roads cannot be read.
    """
    if not isinstance(roads, Roads):
        roads = Roads(roads)
    pop = np.asarray(population, dtype=np.float64)
    inside = ~np.isnan(pop)
    land = None if land_share is None else np.where(np.isnan(land_share), 1.0, land_share)
    speed = speed_raster(roads.path, grid, np.ones(grid.shape, bool), land_share=land,
                         speeds=load_speeds(roads.speeds), offroad_kmh=roads.offroad_kmh,
                         layer=roads.layer, class_column=roads.class_column,
                         speed_column=roads.speed_column)
    on_road = np.isfinite(speed) & (speed != roads.offroad_kmh)
    if not on_road.any():
        raise InputError(str(roads.path), "roads", "has no road on the grid (another region, "
                         "or coordinates in another CRS than the file says?)")
    land_eff = np.ones(grid.shape) if land is None else land
    crossable = ~((land_eff < 0.5) & (np.nan_to_num(pop) == 0))
    speed = np.where(np.isnan(speed) & crossable, roads.offroad_kmh, speed)
    speed[~inside & ~on_road] = 0.0
    return np.where(np.isnan(speed), 0.0, speed)


def load_speeds(path: str | os.PathLike | None = None) -> dict[str, float]:
    """Highway class → km/h: the shipped table or a TOML of your own (``[speeds]``).

    Examples
    --------
    >>> sorted(load_speeds())[:3]
    ['busway', 'ferry', 'living_street']
    """
    if path is None or str(path) == "osm_speeds":
        res = resources.files("pari_geo") / "presets" / "osm_speeds.toml"
        with resources.as_file(res) as p:
            raw = load_toml(p)
        where = "pari_geo/presets/osm_speeds.toml"
    else:
        raw = load_toml(path)
        where = str(path)
    table = raw.get("speeds", {})
    out = {}
    for k, v in table.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
            raise ConfigError(f"speeds.{k}", f"must be a positive speed in km/h, got {v!r}",
                              where, what="key")
        out[str(k)] = float(v)
    if not out:
        raise ConfigError("speeds", "missing or empty", where, what="key")
    return out


def osm_road_batches(path: str | os.PathLike, speeds: dict[str, float]):
    """Yield ``(wkb list, speed array)`` batches of the extract's roads (WGS 84).

    Raises
    ------
    InputError
        When the file cannot be read or has no ``highway`` of the table's classes.
    """
    from ..ingest import check_file
    from .actors import require_osmium

    osmium = require_osmium(str(path))
    fname = check_file(path, "roads")
    wkb = osmium.geom.WKBFactory()
    geoms: list = []
    vals: list[float] = []
    n = 0
    try:
        fp = osmium.FileProcessor(fname).with_locations().with_filter(
            osmium.filter.TagFilter(*(("highway", c) for c in sorted(speeds)),
                                    *((("route", "ferry"),) if "ferry" in speeds else ())))
        for o in fp:
            if not o.is_way():
                continue
            tag = "ferry" if o.tags.get("route", "") == "ferry" else o.tags.get("highway", "")
            v = speeds.get(tag)
            if v is None:
                continue
            try:
                geoms.append(wkb.create_linestring(o))
            except Exception:  # noqa: BLE001 - ways with missing nodes (clipped extracts)
                continue
            vals.append(v)
            if len(geoms) >= _BATCH:
                n += len(geoms)
                yield geoms, np.array(vals)
                geoms, vals = [], []
    except Exception as err:  # noqa: BLE001 - libosmium raises RuntimeError for bad files
        raise InputError(fname, "roads", "cannot be read as OpenStreetMap data "
                         f"({str(err).splitlines()[0] if str(err) else type(err).__name__})"
                         ) from None
    n += len(geoms)
    if n == 0:
        raise InputError(fname, "roads", "has no ways tagged highway = "
                         f"{', '.join(sorted(speeds)[:6])} ...; is it the right extract?")
    if geoms:
        yield geoms, np.array(vals)


def _line_layer_batches(path, layer, class_column, speed_column, speeds):
    from ..ingest import read_vector

    gdf, fname = read_vector(path, "roads", layer)
    if gdf.crs is None:
        raise InputError(fname, "roads", "has no CRS")
    if speed_column is not None:
        if speed_column not in gdf.columns:
            raise InputError(fname, "roads", f"has no column {speed_column!r}")
        import pandas as pd

        v = pd.to_numeric(gdf[speed_column], errors="coerce").to_numpy(dtype=float)
        if np.isnan(v).all():
            raise InputError(fname, "roads", f"column {speed_column!r} holds no speeds in km/h "
                             "(numbers)")
    else:
        col = class_column or "highway"
        if col not in gdf.columns:
            raise InputError(fname, "roads", f"has no column {col!r} (set roads.class_column or "
                             "roads.speed_column; columns: "
                             f"{', '.join(map(str, gdf.columns[:12]))})")
        v = np.array([speeds.get(str(c), np.nan) for c in gdf[col]])
        if "route" in gdf.columns and "ferry" in speeds:  # OSM-style ferry lines
            v = np.where(np.asarray(gdf["route"].astype(str) == "ferry"), speeds["ferry"], v)
    keep = np.isfinite(v) & (v > 0)
    if not keep.any():
        raise InputError(fname, "roads", "has no road of a known class or with a speed")
    g = gdf.geometry[keep]
    return [(g.to_crs("EPSG:4326") if g.crs != "EPSG:4326" else g, v[keep])]


def speed_raster(
    path: str | os.PathLike,
    grid: GridSpec,
    inside: np.ndarray,
    *,
    land_share: np.ndarray | None = None,
    speeds: dict[str, float] | None = None,
    offroad_kmh: float = OFFROAD_KMH,
    layer: str | None = None,
    class_column: str | None = None,
    speed_column: str | None = None,
) -> np.ndarray:
    """The fastest road speed per cell (km/h); see the module docstring.

    Examples
    --------
    >>> import geopandas as gpd, tempfile, pathlib, numpy as np
    >>> from shapely.geometry import LineString
    >>> from affine import Affine
    >>> g = GridSpec("EPSG:3035", Affine(1000, 0, 0, 0, -1000, 2000), (2, 3))
    >>> roads = gpd.GeoDataFrame({"highway": ["primary", "residential"]},
    ...     geometry=[LineString([(100, 1500), (2900, 1500)]), LineString([(500, 1500),
    ...     (500, 100)])], crs="EPSG:3035")
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "roads.gpkg"
    >>> roads.to_file(p)
    >>> speed_raster(p, g, np.ones((2, 3), bool)).tolist()
    [[80.0, 80.0, 80.0], [30.0, 5.0, 5.0]]
    """
    import geopandas as gpd
    import shapely
    from rasterio import features

    speeds = speeds or load_speeds()
    fname = str(path)
    if fname.lower().endswith((".pbf", ".osm", ".osm.bz2", ".osm.gz", ".o5m")):
        batches = osm_road_batches(path, speeds)
    else:
        batches = _line_layer_batches(path, layer, class_column, speed_column, speeds)
    best = np.zeros(grid.shape)
    for geoms, vals in batches:
        if isinstance(geoms, list):
            geoms = gpd.GeoSeries(shapely.from_wkb(np.array(geoms, dtype=object)),
                                  crs="EPSG:4326")
        g = geoms.to_crs(grid.crs)
        order = np.argsort(vals, kind="stable")  # fastest drawn last wins
        burned = features.rasterize(
            ((geom, float(v)) for geom, v in zip(g.to_numpy()[order], vals[order], strict=True)
             if geom is not None and not geom.is_empty),
            out_shape=grid.shape, transform=grid.transform, fill=0.0, dtype="float64",
            all_touched=True)
        np.maximum(best, burned, out=best)
    out = np.where(best > 0, best, float(offroad_kmh))
    if land_share is not None:
        water = (np.nan_to_num(land_share, nan=0.0) < 0.5) & (best == 0)
        out[water] = np.nan
    out[~inside] = np.nan
    return out


def check_offroad(v: Any, file: str | None) -> float:
    """``roads.offroad_kmh``: a positive speed."""
    if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
        raise ConfigError("roads.offroad_kmh", f"must be a positive speed, got {v!r}", file,
                          what="key")
    return float(v)
