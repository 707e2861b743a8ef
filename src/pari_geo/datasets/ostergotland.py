"""A SYNTHETIC sample region shaped after Östergötland (Sweden) for the ``nordic7`` typology.

Nothing here is observed data. The generator places the 13 municipalities' seat towns and a
few villages at their real positions with their approximate 2024 populations, draws lakes
(Vättern in the west, Boren, Roxen north of Linköping, Glan, Sommen) and the Baltic coast
with Bråviken, Slätbaken, Valdemarsviken and an archipelago, an agricultural plain
(Östgötaslätten) from Ödeshög–Vadstena–Motala–Mjölby to Linköping–Norrköping–Söderköping,
and forest to the north and south. Every number it produces comes from that sketch plus
seeded noise; it is deterministic for a given ``seed`` and resolution.

Facts built in (issue 3): 13 municipalities with real names and codes (county 05), municipal
populations (totals exact, whole residents per cell) and seat-town populations, grid SWEREF 99
TM (EPSG:3006), 1 km cells (or 500/250/200/125/100 m on demand). Municipality boundaries are
synthetic (a weighted Voronoi partition around the municipalities' approximate centres,
clipped to a sketched county outline, drawn along 1 km cell edges at every resolution).

Layers (float32, NaN outside the county):

* ``population`` — residents per cell (whole numbers);
* ``built_share``, ``land_share``, ``agri_share`` — shares of the cell area, 0..1;
* ``commuting_share`` — modelled share of employed residents commuting into Linköping or
  Norrköping, ``0.8·exp(-d / 14 km)`` of the distance to the nearer city (plus noise);
* ``service_minutes`` — travel minutes to the nearest town of at least 3,000 residents over
  a speed surface (55 km/h forest, 70 km/h plain, 80 km/h main roads, 20 km/h boats in the
  archipelago; lakes impassable; NaN where unreachable);
* ``municipality`` — municipality code as integer (580 = 0580 Linköping), 0 outside.

Floor area, jobs by sector, roads and municipal commuting on the same grid (issue 14) come
from :mod:`pari_geo.datasets.ostergotland_activity` (``write_ostergotland(...,
activity=True)`` writes them too); they draw from their own random streams, so these
layers do not change with them.

Examples
--------
>>> s = make_ostergotland()
>>> s.crs, s.resolution_m, s.layers["population"].shape
('EPSG:3006', 1000, (145, 155))
>>> int(round(float(np.nansum(s.layers["population"]))))
473400
>>> s.municipalities.loc[s.municipalities.code == "0580", "name"].item()
'Linköping'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = [
    "MUNICIPALITIES",
    "TOWNS",
    "OstergotlandSample",
    "make_ostergotland",
    "write_ostergotland",
    "LAYER_FILES",
    "MUNICIPALITIES_GPKG_DATE",
]

DEFAULT_SEED = 3
CRS = "EPSG:3006"
_BASE = 1000  # metres: boundaries, region mask and noise live on the 1 km grid
MUNICIPALITIES_GPKG_DATE = "2026-11-22T04:34:57.378Z"
"""``gpkg_contents.last_change`` of ``municipalities.gpkg``: the date the shipped file was
first written, kept so that regenerating it gives the same bytes."""
_SYNTHETIC = (
    "SYNTHETIC sample region shaped after Ostergotland (pari_geo.datasets.ostergotland); "
    "not observed data"
)

# code, name, seat town, seat lat, seat lon, municipal pop, seat pop,
# (lat, lon) of the Voronoi site, target area km2
MUNICIPALITIES: tuple[tuple[str, str, str, float, float, int, int, float, float, float], ...] = (
    ("0580", "Linköping", "Linköping", 58.410, 15.621, 167000, 115000, 58.46, 15.55, 1560),
    ("0581", "Norrköping", "Norrköping", 58.588, 16.192, 146000, 98000, 58.68, 16.25, 1500),
    ("0583", "Motala", "Motala", 58.537, 15.036, 44000, 30000, 58.62, 15.12, 1000),
    ("0586", "Mjölby", "Mjölby", 58.325, 15.131, 28500, 14500, 58.31, 15.17, 520),
    ("0562", "Finspång", "Finspång", 58.706, 15.769, 22000, 13000, 58.80, 15.70, 1070),
    ("0582", "Söderköping", "Söderköping", 58.481, 16.322, 14800, 7700, 58.44, 16.47, 660),
    ("0561", "Åtvidaberg", "Åtvidaberg", 58.202, 16.003, 11600, 7000, 58.24, 15.93, 690),
    ("0513", "Kinda", "Kisa", 57.987, 15.633, 10000, 3700, 58.04, 15.70, 870),
    ("0563", "Valdemarsvik", "Valdemarsvik", 58.202, 16.603, 7600, 2700, 58.18, 16.52, 750),
    ("0584", "Vadstena", "Vadstena", 58.448, 14.891, 7400, 5600, 58.45, 14.93, 190),
    ("0560", "Boxholm", "Boxholm", 58.197, 15.050, 5500, 3500, 58.13, 15.12, 530),
    ("0509", "Ödeshög", "Ödeshög", 58.229, 14.654, 5300, 3000, 58.18, 14.70, 550),
    ("0512", "Ydre", "Österbymo", 57.824, 15.276, 3700, 900, 57.84, 15.30, 650),
)
"""The 13 municipalities: code, name, seat, seat lat/lon (WGS84), residents (2024, approx.),
seat-town residents, synthetic-boundary site lat/lon and target area (km²)."""

# name, municipality code, lat, lon, residents, kernel scale km
TOWNS: tuple[tuple[str, str, float, float, int, float], ...] = tuple(
    (m[2], m[0], m[3], m[4], m[6], s)
    for m, s in zip(
        MUNICIPALITIES,
        (2.0, 1.9, 1.2, 0.8, 0.8, 0.6, 0.6, 0.45, 0.45, 0.55, 0.45, 0.45, 0.3),
        strict=True,
    )
) + (
    ("Malmslätt", "0580", 58.417, 15.515, 5500, 0.55),
    ("Ljungsbro", "0580", 58.508, 15.498, 6500, 0.55),
    ("Sturefors", "0580", 58.335, 15.735, 2800, 0.4),
    ("Vikingstad", "0580", 58.383, 15.424, 2000, 0.35),
    ("Åby", "0581", 58.666, 16.180, 5000, 0.5),
    ("Skärblacka", "0581", 58.570, 15.900, 3200, 0.45),
    ("Krokek", "0581", 58.662, 16.400, 2000, 0.4),
    ("Kimstad", "0581", 58.545, 15.975, 1000, 0.3),
    ("Borensberg", "0583", 58.562, 15.282, 3000, 0.45),
    ("Godegård", "0583", 58.740, 15.150, 600, 0.3),
    ("Mantorp", "0586", 58.352, 15.285, 3800, 0.45),
    ("Skänninge", "0586", 58.395, 15.087, 3400, 0.45),
    ("Lotorp", "0562", 58.740, 15.835, 1100, 0.3),
    ("Rejmyre", "0562", 58.830, 15.920, 800, 0.3),
    ("Hällestad", "0562", 58.735, 15.570, 600, 0.3),
    ("Grebo", "0561", 58.300, 15.870, 600, 0.3),
    ("Rimforsa", "0513", 58.135, 15.680, 2200, 0.4),
    ("Horn", "0513", 57.900, 15.840, 500, 0.3),
    ("Gusum", "0563", 58.265, 16.480, 1300, 0.35),
    ("Rydsnäs", "0512", 57.790, 15.180, 400, 0.3),
)
"""Towns and villages: name, municipality code, lat, lon, residents, kernel scale (km).
The first 13 are the seat towns."""

LAYER_FILES = {
    "population": "population.tif",
    "built_share": "built_share.tif",
    "land_share": "land_share.tif",
    "agri_share": "agri_share.tif",
    "commuting_share": "commuting_share.tif",
    "service_minutes": "service_minutes.tif",
    "municipality": "municipality.tif",
}
"""File name of each layer written by :func:`write_ostergotland`."""

_UNITS = {
    "population": "residents per cell",
    "built_share": "built-up share of cell area (0..1)",
    "land_share": "permanent land share of cell area (0..1)",
    "agri_share": "agricultural share of cell area (0..1)",
    "commuting_share": "share of employed residents commuting into Linkoping or Norrkoping",
    "service_minutes": "minutes to the nearest town of >= 3000 residents",
    "municipality": "municipality code (580 = 0580 Linkoping), 0 outside",
}

# --- the sketch (lon, lat) ----------------------------------------------------------------
_REGION = [
    (14.45, 58.60), (14.55, 58.72), (14.85, 58.78), (15.10, 58.85), (15.40, 58.93),
    (15.70, 58.98), (15.95, 58.93), (16.20, 58.82), (16.50, 58.78), (16.90, 58.73),
    (17.00, 58.62), (16.92, 58.45), (16.90, 58.25), (16.85, 58.05), (16.75, 57.88),
    (16.60, 57.78), (16.35, 57.82), (16.10, 57.85), (15.85, 57.76), (15.60, 57.73),
    (15.40, 57.71), (15.20, 57.75), (15.10, 57.85), (15.05, 57.98), (14.98, 58.08),
    (14.80, 58.10), (14.55, 58.05), (14.45, 58.10),
]  # fmt: skip
_VATTERN = [
    (14.30, 57.95), (14.57, 57.95), (14.60, 58.15), (14.635, 58.22), (14.72, 58.30),
    (14.80, 58.38), (14.872, 58.445), (14.95, 58.50), (15.02, 58.533), (15.00, 58.58),
    (14.92, 58.66), (14.85, 58.74), (14.80, 58.85), (14.30, 58.85),
]  # fmt: skip
_SEA = [
    (16.72, 57.60), (16.70, 57.85), (16.75, 58.00), (16.78, 58.10), (16.72, 58.20),
    (16.75, 58.30), (16.78, 58.40), (16.82, 58.50), (16.90, 58.60), (16.95, 58.75),
    (17.40, 58.75), (17.40, 57.60),
]  # fmt: skip
_BRAVIKEN = [
    (16.24, 58.597), (16.40, 58.632), (16.60, 58.662), (16.85, 58.692), (17.20, 58.70),
    (17.20, 58.60), (16.85, 58.618), (16.60, 58.612), (16.40, 58.600), (16.26, 58.588),
]  # fmt: skip
_SLATBAKEN = [(16.40, 58.470), (16.60, 58.462), (16.85, 58.452), (16.85, 58.478),
              (16.60, 58.484), (16.40, 58.480)]  # fmt: skip
_VALDEMARSVIKEN = [(16.622, 58.196), (16.70, 58.193), (16.80, 58.195), (16.80, 58.207),
                   (16.70, 58.207), (16.622, 58.203)]  # fmt: skip
# ellipses: lon, lat, semi-axis east km, semi-axis north km
_LAKES = {
    "Roxen": (15.67, 58.50, 9.0, 2.6),
    "Boren": (15.165, 58.572, 4.5, 1.3),
    "Glan": (15.98, 58.625, 5.5, 1.8),
    "Sommen": (15.18, 58.02, 7.0, 3.0),
}
# plain axis (lon, lat) and half-width km
_PLAIN = [(14.62, 58.20), (14.90, 58.42), (15.10, 58.36), (15.40, 58.38), (15.62, 58.42),
          (15.95, 58.52), (16.19, 58.56), (16.35, 58.47)]  # fmt: skip
_PLAIN_HALF_KM = 11.0
_MAX_WEIGHT_KM = 5.0  # bounded Voronoi weights keep every town in its own municipality
_ROADS = [
    [(14.65, 58.23), (15.13, 58.33), (15.62, 58.41), (16.19, 58.59), (16.60, 58.68)],  # E4
    [(15.04, 58.54), (15.28, 58.56), (15.62, 58.41)],  # Motala-Linköping
    [(14.89, 58.45), (15.04, 58.54)],
    [(16.19, 58.59), (16.32, 58.48), (16.60, 58.20), (16.70, 57.80)],  # E22
    [(15.62, 58.41), (15.68, 58.14), (15.63, 57.99), (15.28, 57.82)],  # Linköping-Kisa-Ydre
    [(15.62, 58.41), (16.00, 58.20), (16.60, 58.20)],
    [(16.19, 58.59), (15.77, 58.71)],  # Norrköping-Finspång
    [(15.13, 58.33), (15.05, 58.20), (15.28, 57.82)],
]


@dataclass(frozen=True)
class OstergotlandSample:
    """The generated SYNTHETIC region.

    Attributes
    ----------
    layers : dict of str to ndarray
        ``population``, ``built_share``, ``land_share``, ``agri_share``, ``commuting_share``,
        ``service_minutes`` (float32, NaN outside the county) and ``municipality`` (int16).
    transform : affine.Affine
        Grid transform (north up, square cells).
    crs : str
        ``"EPSG:3006"`` (SWEREF 99 TM).
    resolution_m : int
        Cell side in metres.
    municipalities : geopandas.GeoDataFrame
        13 polygons: ``code``, ``name``, ``county_code`` (``"05"``), ``seat``, ``seat_lat``,
        ``seat_lon``, ``population``, ``seat_population``.
    towns : pandas.DataFrame
        Every generated town: ``name``, ``municipality``, ``lat``, ``lon``, ``population``,
        ``x``, ``y`` (EPSG:3006), ``row``, ``col`` (cell of the town centre).
    seed : int
        Seed of the noise.
    """

    layers: dict[str, np.ndarray]
    transform: Any
    crs: str
    resolution_m: int
    municipalities: Any
    towns: Any
    seed: int

    def cell_of(self, lat: float, lon: float) -> tuple[int, int]:
        """Row and column of the cell holding a WGS84 point.

        Examples
        --------
        >>> s = make_ostergotland()
        >>> s.cell_of(58.410, 15.621) == tuple(s.towns.set_index("name").loc["Linköping",
        ...                                                                   ["row", "col"]])
        True
        """
        x, y = _to_sweref([(lon, lat)])[0]
        col, row = ~self.transform @ (x, y)
        return int(np.floor(row)), int(np.floor(col))


def _to_sweref(lonlat):
    from pyproj import Transformer

    tr = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    pts = np.asarray(lonlat, dtype=np.float64)
    x, y = tr.transform(pts[:, 0], pts[:, 1])
    return np.column_stack([x, y])


def _polygon(lonlat):
    from shapely.geometry import Polygon

    return Polygon(_to_sweref(lonlat))


def _ellipse(lon, lat, ax_km, ay_km):
    from shapely import affinity
    from shapely.geometry import Point

    x, y = _to_sweref([(lon, lat)])[0]
    return affinity.scale(Point(x, y).buffer(1000.0, 64), ax_km, ay_km)


def _water_geometry(rng: np.random.Generator):
    from shapely.geometry import LineString, Point
    from shapely.ops import unary_union

    parts = [_polygon(_VATTERN), _polygon(_BRAVIKEN), _polygon(_SLATBAKEN),
             _polygon(_VALDEMARSVIKEN)]  # fmt: skip
    parts += [_ellipse(*v) for v in _LAKES.values()]
    sea = _polygon(_SEA)
    coast = LineString(_to_sweref(_SEA[:10]))
    # archipelago: seeded islands within 14 km of the coast
    minx, miny, maxx, maxy = sea.bounds
    islands: list[Any] = []
    while len(islands) < 260:
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        p = Point(x, y)
        d = coast.distance(p)
        if not sea.contains(p) or d > 14000 or rng.random() < d / 14000:
            continue
        islands.append(p.buffer(float(rng.gamma(2.0, 300.0)), 16))
    sea = sea.difference(unary_union(islands))
    return unary_union([*parts, sea])


def _fraction(geom, transform, shape, sub: int) -> np.ndarray:
    """Share of each cell covered by ``geom`` (rasterised on a ``sub``-times finer grid)."""
    from affine import Affine
    from rasterio.features import rasterize

    fine_t = transform @ Affine.scale(1.0 / sub)
    fine = rasterize(
        [(geom, 1)], out_shape=(shape[0] * sub, shape[1] * sub), transform=fine_t, dtype="uint8"
    )
    return fine.reshape(shape[0], sub, shape[1], sub).mean(axis=(1, 3))


def _cell_centres(transform, shape):
    rows, cols = np.indices(shape)
    x = transform.c + (cols + 0.5) * transform.a
    y = transform.f + (rows + 0.5) * transform.e
    return x, y


def _upsample(a: np.ndarray, f: int) -> np.ndarray:
    return np.repeat(np.repeat(a, f, axis=0), f, axis=1) if f > 1 else a.copy()


def _round_preserving(values: np.ndarray, total: int) -> np.ndarray:
    """Whole numbers summing exactly to ``total`` (largest remainders)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v
    scaled = v / v.sum() * total if v.sum() > 0 else np.full(v.shape, total / v.size)
    base = np.floor(scaled)
    short = int(round(total - base.sum()))
    if short > 0:
        order = np.argsort(-(scaled - base), kind="stable")[:short]
        base[order] += 1
    return base


def _smooth_noise(rng, shape, sigma, f):
    n = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    n /= n.std() + 1e-12
    return ndimage.gaussian_filter(_upsample(n, f), f / 2.0) if f > 1 else n


def _municipality_ids(x, y, region, land, cell_km2):
    """Additively weighted Voronoi partition, weights tuned to the target areas.

    Each municipality's sites are its sketch centre and its towns, so that every town lies
    in its own municipality.
    """
    codes = [m[0] for m in MUNICIPALITIES]
    site_ll = [(m[8], m[7]) for m in MUNICIPALITIES] + [(tw[3], tw[2]) for tw in TOWNS]
    owner = np.array(list(range(len(codes))) + [codes.index(tw[1]) for tw in TOWNS])
    sites = _to_sweref(site_ll)
    target = np.array([m[9] for m in MUNICIPALITIES], dtype=np.float64)
    counted = region & land
    target *= counted.sum() * cell_km2 / target.sum()
    d_site = np.hypot(x[None] - sites[:, 0, None, None], y[None] - sites[:, 1, None, None])
    d = np.full((len(codes), *x.shape), np.inf)
    for k, o in enumerate(owner):
        d[o] = np.minimum(d[o], d_site[k] / 1000.0)
    w = np.zeros(len(codes))
    for _ in range(300):
        ids = np.argmin(d - w[:, None, None], axis=0)
        area = np.bincount(ids[counted], minlength=len(codes)) * cell_km2
        w += 0.3 * (np.sqrt(target / np.pi) - np.sqrt(np.maximum(area, 1.0) / np.pi))
        w = np.clip(w - w.mean(), -_MAX_WEIGHT_KM, _MAX_WEIGHT_KM)
    ids = np.argmin(d - w[:, None, None], axis=0)
    # every town centre lies in its own municipality
    for k, o in enumerate(owner):
        ids[d_site[k] <= 1500] = o
    return np.where(region, ids + 1, 0)


def _polyline_distance(px, py, lonlat_lines) -> np.ndarray:
    from shapely import points
    from shapely.geometry import LineString, MultiLineString

    lines = MultiLineString([LineString(_to_sweref(line)) for line in lonlat_lines])
    return lines.distance(points(px.ravel(), py.ravel())).reshape(px.shape) / 1000.0


def make_ostergotland(resolution_m: int = 1000, seed: int = DEFAULT_SEED) -> OstergotlandSample:
    """Generate the SYNTHETIC Östergötland-shaped sample region.

    Parameters
    ----------
    resolution_m : int
        Cell side in metres; 1000 divided by it must be a whole number (1000, 500, 250, 200,
        125, 100).
    seed : int
        Seed of the archipelago and noise fields (the default is the shipped data's).

    Returns
    -------
    OstergotlandSample

    Examples
    --------
    >>> s = make_ostergotland(1000)
    >>> pop = s.layers["population"]; muni = s.layers["municipality"]
    >>> int(pop[muni == 512].sum())   # Ydre
    3700
    """
    import geopandas as gpd
    import pandas as pd
    from affine import Affine
    from rasterio.features import shapes
    from shapely.geometry import shape as to_shape
    from shapely.ops import unary_union

    from ..typology.travel_time import minutes_to

    res = int(resolution_m)
    if res <= 0 or _BASE % res:
        raise ValueError(f"resolution_m must divide 1000 (e.g. 1000, 250), got {resolution_m!r}")
    f = _BASE // res
    rng = np.random.default_rng(seed)

    region_geom = _polygon(_REGION)
    minx, miny, maxx, maxy = region_geom.bounds
    x0 = np.floor(minx / 5000) * 5000
    y1 = np.ceil(maxy / 5000) * 5000
    ncols = int(np.ceil((maxx - x0) / 5000) * 5)
    nrows = int(np.ceil((y1 - miny) / 5000) * 5)
    base_t = Affine(_BASE, 0, x0, 0, -_BASE, y1)
    base_shape = (nrows, ncols)
    bx, by = _cell_centres(base_t, base_shape)
    region_b = _fraction(region_geom, base_t, base_shape, 4) >= 0.5
    water_geom = _water_geometry(rng)
    land_b = _fraction(water_geom, base_t, base_shape, 4) < 0.5
    muni_b = _municipality_ids(bx, by, region_b, land_b, 1.0)

    t = Affine(res, 0, x0, 0, -res, y1)
    shape = (nrows * f, ncols * f)
    cx, cy = _cell_centres(t, shape)
    area_km2 = (res / 1000.0) ** 2
    muni_idx = _upsample(muni_b, f)
    region = muni_idx > 0
    codes = np.array([0] + [int(m[0]) for m in MUNICIPALITIES], dtype=np.int16)
    muni_code = codes[muni_idx]

    # --- water and land
    land = 1.0 - _fraction(water_geom, t, shape, max(2, 8 // max(1, f // 2)))
    land = np.clip(land, 0.0, 1.0)

    # --- landscape fields
    plain_d = _polyline_distance(cx, cy, [_PLAIN])
    plain = 1.0 / (1.0 + np.exp((plain_d - _PLAIN_HALF_KM) / 2.0))
    road_d = _polyline_distance(cx, cy, _ROADS)
    noise_a = _smooth_noise(rng, base_shape, 3.0, f)
    noise_b = _smooth_noise(rng, base_shape, 1.5, f)
    noise_c = _smooth_noise(rng, base_shape, 2.0, f)

    # --- towns: exponential kernels truncated at 450 residents/km2, whole residents
    town_xy = _to_sweref([(tw[3], tw[2]) for tw in TOWNS])
    town_pop = np.zeros(shape)
    for (_, _, _, _, p_t, s_km), (tx, ty) in zip(TOWNS, town_xy, strict=True):
        d = np.hypot(cx - tx, cy - ty) / 1000.0
        d0 = p_t / (2 * np.pi * s_km**2)
        radius = s_km * np.log(d0 / 450.0) if d0 > 450.0 else 0.0
        sel = ((d <= radius) | (d == d.min())) & (land >= 0.5)
        if not sel.any():
            sel = d == d[land >= 0.5].min()
        w = np.exp(-d[sel] / s_km) * land[sel]
        town_pop[sel] += _round_preserving(w, p_t)

    # --- rural residents per municipality: plain and town surroundings are denser
    near_town = np.zeros(shape)
    for (_, _, _, _, p_t, _), (tx, ty) in zip(TOWNS, town_xy, strict=True):
        d = np.hypot(cx - tx, cy - ty) / 1000.0
        near_town += min(p_t / 20000.0, 1.5) * np.exp(-d / 5.0)
    rural_w = (1.0 + 2.0 * plain + 2.0 * near_town) * np.exp(0.6 * noise_a) * land
    rural_w[(town_pop > 0) | (land < 0.5) | ~region] = 0.0
    rural_cap = 150.0 * area_km2 * land  # stays well below settlement density
    population = town_pop.copy()
    for i, m in enumerate(MUNICIPALITIES, start=1):
        in_m = muni_idx == i
        remainder = m[5] - int(town_pop[in_m].sum())
        if remainder < 0:
            raise RuntimeError(f"towns exceed the population of {m[1]}")
        w = rural_w[in_m]
        alloc = np.zeros(w.shape)
        free = w > 0
        left = float(remainder)
        cap = rural_cap[in_m]
        for _ in range(50):  # fill up to the cap, spread the rest
            share = np.where(free, w, 0.0)
            if share.sum() <= 0:  # every cell at the cap: spread the rest anyway
                alloc += w / w.sum() * left
                break
            share = share / share.sum() * left
            over = free & (alloc + share > cap)
            if not over.any():
                alloc += share
                break
            alloc[over] = cap[over]
            free &= ~over
            left = remainder - alloc.sum()
        population[in_m] += _round_preserving(alloc, remainder)

    # --- built-up, agricultural share, commuting
    town_dens = town_pop / (np.maximum(land, 1e-9) * area_km2)
    rural_dens = (population - town_pop) / (np.maximum(land, 1e-9) * area_km2)
    built = np.clip(town_dens / 7000.0, 0.0, 0.65) + np.clip(
        0.004 + rural_dens / 4000.0 + 0.01 * (road_d < 0.7) + 0.004 * noise_b, 0.0, 0.08
    )
    built = np.clip(built * land, 0.0, land)
    built[land == 0] = 0.0
    agri = np.clip(0.08 + 0.62 * plain + 0.08 * noise_c, 0.0, 0.9) * land
    agri = np.clip(agri, 0.0, np.maximum(land - built, 0.0))

    cities = [TOWNS[0], TOWNS[1]]
    dist_city = np.min(
        [
            np.hypot(cx - xy[0], cy - xy[1]) / 1000.0
            for xy in _to_sweref([(c[3], c[2]) for c in cities])
        ],
        axis=0,
    )
    commuting = np.clip(0.8 * np.exp(-dist_city / 14.0) + 0.03 * noise_b, 0.0, 1.0)

    # --- service minutes to towns of >= 3,000 residents
    speed = np.where(plain > 0.5, 70.0, 55.0)
    speed[road_d < 0.75] = 80.0
    coast_d = _polyline_distance(cx, cy, [_SEA[:10]])
    lake_or_sea = land < 0.5
    speed[lake_or_sea] = np.nan
    boats = lake_or_sea & (coast_d < 16.0) & (cx > _to_sweref([(16.6, 58.0)])[0][0])
    speed[boats] = 20.0
    centres = np.zeros(shape, bool)
    for (_, _, _, _, p_t, s_km), (tx, ty) in zip(TOWNS, town_xy, strict=True):
        if p_t >= 3000:
            d = np.hypot(cx - tx, cy - ty) / 1000.0
            d0 = p_t / (2 * np.pi * s_km**2)
            centres |= (d <= s_km * np.log(d0 / 450.0)) & (town_pop > 0)
            centres[np.unravel_index(np.argmin(np.where(land >= 0.5, d, np.inf)), shape)] = True
    service = minutes_to(centres, cell_size_m=res, speed_kmh=speed, passable=~lake_or_sea)
    service[~np.isfinite(service)] = np.nan

    def _out(a):
        a = np.asarray(a, dtype=np.float32).copy()
        a[~region] = np.nan
        return a

    commuting_out = _out(commuting)
    commuting_out[land == 0] = np.nan
    layers = {
        "population": _out(population),
        "built_share": _out(built),
        "land_share": _out(land),
        "agri_share": _out(agri),
        "commuting_share": commuting_out,
        "service_minutes": _out(service),
        "municipality": muni_code,
    }

    # --- municipality polygons along the 1 km cell edges
    polys: dict[int, list] = {}
    for geom, val in shapes(muni_b.astype(np.int16), mask=muni_b > 0, transform=base_t):
        polys.setdefault(int(val), []).append(to_shape(geom))
    rows = []
    for i, m in enumerate(MUNICIPALITIES, start=1):
        rows.append(
            {
                "code": m[0],
                "name": m[1],
                "county_code": "05",
                "county": "Östergötlands län",
                "seat": m[2],
                "seat_lat": m[3],
                "seat_lon": m[4],
                "population": m[5],
                "seat_population": m[6],
                "synthetic": True,
                "geometry": unary_union(polys[i]),
            }
        )
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)

    towns = pd.DataFrame(
        [
            {"name": tw[0], "municipality": tw[1], "lat": tw[2], "lon": tw[3],
             "population": tw[4]}
            for tw in TOWNS
        ]
    )  # fmt: skip
    towns["x"], towns["y"] = town_xy[:, 0], town_xy[:, 1]
    inv = ~t
    cols_rows = [inv * (xx, yy) for xx, yy in town_xy]
    towns["row"] = [int(np.floor(r_)) for _, r_ in cols_rows]
    towns["col"] = [int(np.floor(c_)) for c_, _ in cols_rows]
    return OstergotlandSample(layers, t, CRS, res, gdf, towns, int(seed))


def write_ostergotland(
    out_dir: str | Path,
    resolution_m: int = 1000,
    overwrite: bool = False,
    seed: int = DEFAULT_SEED,
    *,
    activity: bool = False,
) -> dict[str, Path]:
    """Generate the SYNTHETIC region and write GeoTIFFs and a GeoPackage.

    Writes ``population.tif``, ``built_share.tif``, ``land_share.tif``, ``agri_share.tif``,
    ``commuting_share.tif``, ``service_minutes.tif`` (float32, NaN nodata),
    ``municipality.tif`` (int16, 0 nodata) — tiled, deflate-compressed, tagged as synthetic —
    and ``municipalities.gpkg`` (layer ``municipalities``, 13 polygons). The GeoPackage's
    ``gpkg_contents.last_change`` is pinned to the date the shipped file was first written
    (:data:`MUNICIPALITIES_GPKG_DATE`), so the same seed and resolution give the same bytes.
    With ``activity``, also the layers of
    :func:`pari_geo.datasets.ostergotland_activity.write_activity` (``floor_area.tif``,
    ``jobs.tif``, ``roads.gpkg``, ``commuting_od.csv``).

    Parameters
    ----------
    out_dir : str or Path
        Folder (created if missing).
    resolution_m : int
        Cell side in metres (see :func:`make_ostergotland`).
    overwrite : bool
        Replace existing files; otherwise an existing file is an error and nothing is written.
    seed : int
        Noise seed.
    activity : bool
        Also write the activity layers (floor area, jobs, roads, commuting, issue 14).

    Returns
    -------
    dict
        Layer name (and ``municipalities``, and with ``activity`` the keys of
        :data:`~pari_geo.datasets.ostergotland_activity.ACTIVITY_FILES`) → written path.

    Raises
    ------
    pari_geo.errors.OutputError
        If a file exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     paths = write_ostergotland(d)
    ...     sorted(p.name for p in paths.values())[:3]
    ['agri_share.tif', 'built_share.tif', 'commuting_share.tif']
    """
    import rasterio

    from .._version import __version__
    from ..errors import OutputError

    out = Path(out_dir)
    targets = {k: out / v for k, v in LAYER_FILES.items()}
    targets["municipalities"] = out / "municipalities.gpkg"
    extra: dict[str, Path] = {}
    if activity:
        from .ostergotland_activity import ACTIVITY_FILES

        extra = {k: out / v for k, v in ACTIVITY_FILES.items()}
    if not overwrite:
        for p in (*targets.values(), *extra.values()):
            if p.exists():
                raise OutputError(str(p), "exists; pass overwrite=True to replace it")
    sample = make_ostergotland(resolution_m, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, path in targets.items():
        if name == "municipalities":
            continue
        a = sample.layers[name]
        is_int = name == "municipality"
        profile = {
            "driver": "GTiff",
            "height": a.shape[0],
            "width": a.shape[1],
            "count": 1,
            "dtype": "int16" if is_int else "float32",
            "crs": CRS,
            "transform": sample.transform,
            "nodata": 0 if is_int else float("nan"),
            "tiled": True,
            "blockxsize": 128,
            "blockysize": 128,
            "compress": "deflate",
            "predictor": 2 if is_int else 3,
        }
        tmp = path.with_suffix(".tmp.tif")
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(a, 1)
            dst.update_tags(
                DESCRIPTION=_SYNTHETIC,
                layer=name,
                units=_UNITS[name],
                seed=str(sample.seed),
                resolution_m=str(sample.resolution_m),
                generator=f"pari_geo {__version__} pari_geo.datasets.ostergotland",
            )
            dst.set_band_description(1, name)
        tmp.replace(path)
    gpkg = targets["municipalities"]
    tmp = gpkg.with_name("municipalities.tmp.gpkg")
    if tmp.exists():
        tmp.unlink()
    sample.municipalities.to_file(tmp, layer="municipalities", driver="GPKG")
    _pin_gpkg_date(tmp, MUNICIPALITIES_GPKG_DATE)
    tmp.replace(gpkg)
    if activity:
        from .ostergotland_activity import write_activity

        targets.update(write_activity(out, sample, overwrite=True))
    return targets


def _pin_gpkg_date(path: Path, date: str) -> None:
    """Set ``gpkg_contents.last_change`` of a one-layer GeoPackage to ``date``.

    The clock time GDAL wrote is replaced in place by a timestamp of the same length, so
    the file is otherwise exactly what GDAL wrote (an SQL update would also bump SQLite's
    change counter and library version in the header). Falls back to an SQL update when
    the timestamp is not found exactly once.
    """
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        stamps = [r[0] for r in con.execute("SELECT last_change FROM gpkg_contents")]
    finally:
        con.close()
    data = path.read_bytes()
    new = date.encode("ascii")
    if len(stamps) == 1:
        old = str(stamps[0]).encode("ascii")
        if len(old) == len(new) and data.count(old) == 1:
            path.write_bytes(data.replace(old, new))
            return
    con = sqlite3.connect(path)
    try:
        with con:
            con.execute("UPDATE gpkg_contents SET last_change = ?", (date,))
    finally:
        con.close()
