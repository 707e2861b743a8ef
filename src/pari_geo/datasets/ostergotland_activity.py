"""SYNTHETIC floor area, jobs, roads and commuting of the Östergötland-shaped region (issue 14).

Nothing here is observed data. These layers extend the region of
:mod:`pari_geo.datasets.ostergotland` on the same grid, with the same towns and the same
sketch road network its ``service_minutes`` uses, and they draw their noise from their own
random streams (``SeedSequence(seed, spawn_key=(1, k))``, one per layer; the region itself
uses ``default_rng(seed)``), so the region's layers are unchanged by them.

* ``floor_area`` — m² of building floor per cell (whole m²): ``built_share × cell area × 0.2 ×
  storeys`` (0.2: building footprint per built-up area), storeys ``1.2`` in the countryside
  rising towards each town centre by ``3.4·√(town residents / 115,000)·exp(-d / 1.5 s)``
  (``s`` the town's kernel scale; 4.6 storeys in Linköping's centre), times seeded
  log-normal noise (smooth σ 0.15, per cell σ 0.1).
* ``jobs`` — workplaces per cell in four sectors, whole numbers:
  ``primary`` (agriculture, forestry: 1.3 per km² of farmland, 0.22 per km² of other land),
  ``manufacturing`` (with mining, energy and construction: industrial rings around the
  towns), ``services`` and ``public`` (with the residents, concentrated in town centres).
  Each municipality's total is its residents times a jobs-per-resident figure (0.55 in
  Linköping down to 0.27 in Söderköping; 0.45 in the county), split over the sectors by
  municipal shares.
* ``roads`` — LineStrings in EPSG:3006 with OpenStreetMap ``highway`` classes: the E4
  (``motorway``), E22 (``trunk``) and the main roads between the seats (``primary``,
  ``secondary``) along the region's sketch lines (detouring around Glan and Sommen, which
  the sketch crosses), secondary and tertiary roads to the villages, unclassified rural
  roads, residential streets in the towns and two ferries to archipelago islands
  (``route = "ferry"``, ``highway`` empty).
* ``commuting_od`` — municipality-to-municipality commuting: a doubly constrained gravity
  model between 5 km blocks: the employed residents (residents × the county's jobs per
  resident) leave each municipality, each municipality's jobs are filled, deterrence
  ``exp(-d / 8 km) + 0.06·exp(-d / 40 km)``, weight 1.8 within the municipality.

Examples
--------
>>> a = make_activity()
>>> a.jobs.shape, a.sectors
((4, 145, 155), ('primary', 'manufacturing', 'services', 'public'))
>>> sorted(set(a.roads.highway.dropna()))[:3]
['motorway', 'primary', 'residential']
>>> bool(np.allclose(a.commuting_od.groupby("origin").share.sum(), 1.0))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .ostergotland import (
    _BASE,
    _PLAIN,
    _PLAIN_HALF_KM,
    _REGION,
    _ROADS,
    _SYNTHETIC,
    CRS,
    DEFAULT_SEED,
    MUNICIPALITIES,
    TOWNS,
    OstergotlandSample,
    _cell_centres,
    _polygon,
    _round_preserving,
    _smooth_noise,
    _to_sweref,
    _water_geometry,
    make_ostergotland,
)

__all__ = [
    "ACTIVITY_FILES",
    "SECTORS",
    "SECTOR_DESCRIPTIONS",
    "OstergotlandActivity",
    "make_activity",
    "make_roads",
    "write_activity",
]

ACTIVITY_FILES = {
    "floor_area": "floor_area.tif",
    "jobs": "jobs.tif",
    "roads": "roads.gpkg",
    "commuting_od": "commuting_od.csv",
}
"""File name of each layer written by :func:`write_activity`."""

SECTORS = ("primary", "manufacturing", "services", "public")
"""The sectors of ``jobs``, in band order (band 1 = ``primary``)."""

SECTOR_DESCRIPTIONS = {
    "primary": "agriculture, forestry and fishing (SNI A)",
    "manufacturing": "manufacturing, mining, energy and construction (SNI B-F)",
    "services": "trade, transport, hotels and private services (SNI G-N, R-U)",
    "public": "public administration, education, health and social care (SNI O-Q)",
}
"""What each sector of ``jobs`` holds (Swedish SNI 2007 sections)."""

_STREAM = 1  # SeedSequence(seed, spawn_key=(1, k)): the activity layers' streams
_ROADS_STREAM, _FLOOR_STREAM, _JOBS_STREAM = 0, 1, 2

# code: jobs per resident, manufacturing and public shares of the non-primary jobs
_ECONOMY = {
    "0580": (0.55, 0.18, 0.33),
    "0581": (0.46, 0.19, 0.30),
    "0583": (0.37, 0.24, 0.32),
    "0586": (0.40, 0.29, 0.28),
    "0562": (0.36, 0.38, 0.28),
    "0582": (0.27, 0.18, 0.33),
    "0561": (0.31, 0.29, 0.30),
    "0513": (0.31, 0.27, 0.32),
    "0563": (0.31, 0.31, 0.30),
    "0584": (0.40, 0.15, 0.40),
    "0560": (0.33, 0.40, 0.28),
    "0509": (0.30, 0.22, 0.32),
    "0512": (0.32, 0.25, 0.32),
}

# floor area
_FOOTPRINT = 0.2  # building footprint per built-up area
_STOREYS_RURAL = 1.2
_STOREYS_TOWN = 3.4  # extra storeys at the centre of a town of 115,000 (Linköping)

# jobs
_PRIMARY_PER_KM2 = (1.3, 0.22)  # farmland, other land

# commuting
_OD_BLOCK_KM = 5
_OD_DECAY_KM = (8.0, 40.0)  # near and far decay lengths
_OD_FAR_WEIGHT = 0.06
_OD_OWN_MUNICIPALITY = 1.8

# road classes along the region's sketch lines: class, ref, name, sketch line, vertices
_MAIN_ROADS = (
    ("motorway", "E4", "E4 Ödeshög–Mjölby–Linköping–Norrköping", 0, slice(None)),
    ("primary", "", "Linköping–Borensberg–Motala", 1, slice(None)),
    ("primary", "", "Motala–Vadstena", 2, slice(None)),
    ("trunk", "E22", "E22 Norrköping–Söderköping–Valdemarsvik", 3, slice(None)),
    ("primary", "", "Linköping–Rimforsa–Kisa", 4, slice(0, 3)),
    ("secondary", "", "Kisa–Österbymo", 4, slice(2, None)),
    ("primary", "", "Linköping–Åtvidaberg", 5, slice(0, 2)),
    ("secondary", "", "Åtvidaberg–Valdemarsvik", 5, slice(1, None)),
    ("primary", "", "Norrköping–Finspång", 6, slice(None)),
    ("primary", "", "Mjölby–Boxholm", 7, slice(0, 2)),
    ("secondary", "", "Boxholm–Österbymo", 7, slice(1, None)),
)
# further roads, (lon, lat)
_LOCAL_ROADS = (
    ("secondary", "Mjölby–Skänninge–Vadstena", [(15.131, 58.325), (15.087, 58.395),
                                                (14.891, 58.448)]),
    ("secondary", "Linköping–Malmslätt–Vikingstad–Mantorp", [(15.621, 58.41), (15.515, 58.417),
                                                             (15.424, 58.383),
                                                             (15.285, 58.352)]),
    ("secondary", "Linköping–Ljungsbro", [(15.621, 58.41), (15.56, 58.46), (15.498, 58.508)]),
    ("secondary", "Norrköping–Kimstad–Skärblacka", [(16.192, 58.588), (15.975, 58.545),
                                                    (15.90, 58.57)]),
    ("secondary", "Finspång–Lotorp–Rejmyre", [(15.769, 58.706), (15.835, 58.74),
                                              (15.92, 58.83)]),
    ("secondary", "Norrköping–Åby", [(16.192, 58.588), (16.18, 58.666)]),
    ("tertiary", "Motala–Godegård", [(15.036, 58.537), (15.08, 58.64), (15.15, 58.74)]),
    ("tertiary", "Finspång–Hällestad", [(15.769, 58.706), (15.57, 58.735)]),
    ("tertiary", "Kisa–Horn", [(15.633, 57.987), (15.84, 57.90)]),
)  # fmt: skip
_FERRY_KMH = 20.0  # the boats of service_minutes
_N_RURAL_ROADS = 40


@dataclass(frozen=True)
class OstergotlandActivity:
    """The SYNTHETIC floor area, jobs, roads and commuting of the region.

    Attributes
    ----------
    floor_area : ndarray
        m² of building floor per cell (whole m²), float32, NaN outside the county.
    jobs : ndarray
        Workplaces per cell and sector, float32 ``(4, rows, cols)`` in :data:`SECTORS`
        order, whole numbers, NaN outside the county.
    sectors : tuple of str
        :data:`SECTORS`.
    roads : geopandas.GeoDataFrame
        LineStrings in EPSG:3006: ``highway`` (OSM class; null for ferries), ``route``
        (``"ferry"`` or null), ``ref``, ``name``, ``speed_kmh`` (the class speed of
        ``pari_geo/presets/osm_speeds.toml``, 20 for ferries), ``synthetic``.
    commuting_od : pandas.DataFrame
        ``origin``, ``destination`` (4-digit municipality codes), ``commuters``, ``share``
        — every ordered pair of the 13 municipalities, the diagonal included.
    transform, crs, resolution_m, seed
        Those of the region.
    """

    floor_area: np.ndarray
    jobs: np.ndarray
    sectors: tuple[str, ...]
    roads: Any
    commuting_od: Any
    transform: Any
    crs: str
    resolution_m: int
    seed: int

    @property
    def total_jobs(self) -> np.ndarray:
        """Jobs per cell, all sectors (NaN outside the county)."""
        return self.jobs.sum(axis=0)


def _rng(seed: int, k: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAM, k)))


def _town_distances(sample: OstergotlandSample, cx, cy):
    """Yield ``(town tuple, distance km)`` for every town."""
    xy = sample.towns[["x", "y"]].to_numpy()
    for tw, (tx, ty) in zip(TOWNS, xy, strict=True):
        yield tw, np.hypot(cx - tx, cy - ty) / 1000.0


def _floor_area(sample, ctx, rng) -> np.ndarray:
    lift = np.zeros(ctx["shape"])
    for tw, d in _town_distances(sample, ctx["cx"], ctx["cy"]):
        np.maximum(
            lift, _STOREYS_TOWN * np.sqrt(tw[4] / 115000.0) * np.exp(-d / (1.5 * tw[5])), out=lift
        )
    storeys = _STOREYS_RURAL + lift
    smooth = _smooth_noise(rng, ctx["base_shape"], 1.0, ctx["f"])
    cell = rng.standard_normal(ctx["shape"])
    noise = np.exp(0.15 * smooth + 0.1 * cell - 0.5 * (0.15**2 + 0.1**2))
    floor = ctx["built"] * ctx["cell_m2"] * _FOOTPRINT * storeys * noise
    floor[ctx["land"] <= 0] = 0.0
    return np.round(floor)  # whole m²


def _jobs(sample, ctx, rng) -> np.ndarray:
    shape, area = ctx["shape"], ctx["area_km2"]
    pop, land, agri, built = ctx["pop"], ctx["land"], ctx["agri"], ctx["built"]
    other = np.clip(land - agri - built, 0.0, None)
    centre = np.zeros(shape)  # closeness to a town centre, weighted by the town's size
    ring = np.zeros(shape)  # industrial areas at the towns' edges
    for tw, d in _town_distances(sample, ctx["cx"], ctx["cy"]):
        p_t, s_t = tw[4], tw[5]
        weight = min(1.0, p_t / 8000.0) ** 0.5
        np.maximum(centre, weight * np.exp(-d / s_t), out=centre)
        if p_t >= 1000:
            r0, width = 1.8 * s_t, 0.8 * s_t
            ring += p_t / (2 * np.pi * r0 * width) * np.exp(-0.5 * ((d - r0) / width) ** 2)
    noise = np.exp(0.3 * _smooth_noise(rng, ctx["base_shape"], 1.5, ctx["f"]))
    noise_m = np.exp(0.5 * _smooth_noise(rng, ctx["base_shape"], 0.8, ctx["f"]))
    cell = np.exp(0.2 * rng.standard_normal(shape))
    primary = (_PRIMARY_PER_KM2[0] * agri + _PRIMARY_PER_KM2[1] * other) * area * noise * cell
    weights = {
        "manufacturing": (0.1 * pop + ring * land * area) * noise_m * cell,
        "services": (pop * (0.25 + 3.0 * centre) + 400.0 * centre**2 * land * area) * noise * cell,
        "public": pop * (0.5 + 1.5 * centre) * cell,
    }
    muni = ctx["muni"]
    jobs = np.zeros((len(SECTORS), *shape))
    for code, _name, *_rest in MUNICIPALITIES:
        in_m = muni == int(code)
        per_resident, m_share, u_share = _ECONOMY[code]
        total = int(round(float(pop[in_m].sum()) * per_resident))
        p_m = int(round(float(primary[in_m].sum())))
        rest = total - p_m
        m_m = int(round(rest * m_share))
        u_m = int(round(rest * u_share))
        totals = {"primary": p_m, "manufacturing": m_m, "public": u_m,
                  "services": rest - m_m - u_m}  # fmt: skip
        for k, sector in enumerate(SECTORS):
            w = primary[in_m] if sector == "primary" else weights[sector][in_m]
            jobs[k][in_m] = _round_preserving(w, totals[sector])
    return jobs


def _commuting_od(sample, ctx, jobs_total):
    """Doubly constrained gravity between municipalities over 5 km blocks."""
    import pandas as pd

    codes = [m[0] for m in MUNICIPALITIES]
    muni, pop = ctx["muni"], ctx["pop"]
    idx = np.full(muni.shape, -1)
    for i, c in enumerate(codes):
        idx[muni == int(c)] = i
    blk = _OD_BLOCK_KM * ctx["f"]
    rows, cols = np.indices(muni.shape)
    block = (rows // blk) * (muni.shape[1] // blk + 1) + cols // blk
    inside = idx >= 0
    key = block[inside] * len(codes) + idx[inside]
    groups, inv = np.unique(key, return_inverse=True)
    g_muni = groups % len(codes)
    cx, cy = ctx["cx"][inside], ctx["cy"][inside]
    emp_rate = jobs_total[inside].sum() / pop[inside].sum()
    E = np.bincount(inv, pop[inside] * emp_rate, len(groups))
    J = np.bincount(inv, jobs_total[inside], len(groups))

    def centroid(w):
        s = np.bincount(inv, w, len(groups))
        n = np.bincount(inv, None, len(groups))
        safe = np.where(s > 0, s, 1.0)
        ux = np.where(
            s > 0,
            np.bincount(inv, w * cx, len(groups)) / safe,
            np.bincount(inv, cx, len(groups)) / n,
        )
        uy = np.where(
            s > 0,
            np.bincount(inv, w * cy, len(groups)) / safe,
            np.bincount(inv, cy, len(groups)) / n,
        )
        return ux, uy

    ex, ey = centroid(pop[inside])
    jx, jy = centroid(jobs_total[inside])
    d = np.hypot(ex[:, None] - jx[None], ey[:, None] - jy[None]) / 1000.0
    d = np.maximum(d, 1.5)
    deter = np.exp(-d / _OD_DECAY_KM[0]) + _OD_FAR_WEIGHT * np.exp(-d / _OD_DECAY_KM[1])
    n = len(codes)
    onehot = np.zeros((len(groups), n))
    onehot[np.arange(len(groups)), g_muni] = 1.0
    origins = onehot.T @ E
    dests = onehot.T @ J
    K = onehot.T @ (E[:, None] * deter * J[None]) @ onehot
    K *= np.where(np.eye(n, dtype=bool), _OD_OWN_MUNICIPALITY, 1.0)
    a = np.ones(n)
    b = np.ones(n)
    for _ in range(200):  # Furness: rows sum to the employed residents, columns to the jobs
        a = origins / (K @ b)
        b = dests / (K.T @ a)
    T = a[:, None] * K * b[None]
    employed = _round_preserving(origins, int(round(origins.sum())))
    out = []
    for i in range(n):
        counts = _round_preserving(T[i], int(employed[i]))
        for j in range(n):
            out.append({"origin": codes[i], "destination": codes[j],
                        "commuters": int(counts[j]),
                        "share": float(counts[j] / counts.sum())})  # fmt: skip
    return pd.DataFrame(out).sort_values(["origin", "destination"], ignore_index=True)


# --- roads ---------------------------------------------------------------------------------
def _line(lonlat):
    from shapely.geometry import LineString

    return LineString(_to_sweref(lonlat))


def _detour(line, lake, margin: float = 400.0):
    """``line`` with its crossing of ``lake`` replaced by the shorter way round it."""
    from shapely.geometry import LineString
    from shapely.ops import substring

    ring = lake.buffer(margin, 32).exterior
    hits = line.intersection(ring)
    pts = [g for g in getattr(hits, "geoms", [hits]) if g.geom_type == "Point"]
    if len(pts) < 2:
        return line
    ds = sorted(line.project(p) for p in pts)
    a, b = ds[0], ds[-1]
    ra, rb = ring.project(line.interpolate(a)), ring.project(line.interpolate(b))
    if ra <= rb:
        inner = list(substring(ring, ra, rb).coords)
        outer = list(substring(ring, rb, ring.length).coords)[:-1]
        outer = (outer + list(substring(ring, 0.0, ra).coords))[::-1]
    else:
        inner = list(substring(ring, rb, ra).coords)[::-1]
        outer = list(substring(ring, ra, ring.length).coords)[:-1]
        outer = outer + list(substring(ring, 0.0, rb).coords)
    arc = inner if LineString(inner).length <= LineString(outer).length else outer
    head = list(substring(line, 0.0, a).coords)
    tail = list(substring(line, b, line.length).coords)
    return LineString(head + arc + tail)


def _around_lakes(line, lakes):
    for lake in lakes:
        if line.intersection(lake).length > 1.0:
            line = _detour(line, lake)
    return line


def _parts(geom, min_len: float = 1.0):
    from shapely.geometry import LineString

    out = []
    for g in getattr(geom, "geoms", [geom]):
        if isinstance(g, LineString) and g.length >= min_len:
            out.append(g)
    return out


def make_roads(seed: int = DEFAULT_SEED):
    """The SYNTHETIC road network (and two ferries) of the region, in EPSG:3006.

    The same at every resolution: it depends on the sketch and ``seed`` only.

    Examples
    --------
    >>> roads = make_roads()
    >>> roads.loc[roads.ref == "E4", "highway"].tolist()
    ['motorway']
    >>> int((roads.route == "ferry").sum()), roads.crs.to_epsg()
    (2, 3006)
    """
    import geopandas as gpd
    from shapely.geometry import LineString, Point
    from shapely.ops import nearest_points, unary_union

    from ..preparation.roads import load_speeds

    speeds = load_speeds()
    water = _water_geometry(np.random.default_rng(seed))  # the region's own water
    region = _polygon(_REGION)
    land = region.difference(water)
    lakes = [g for g in water.geoms if 1e6 < g.area < 500e6 and g.intersects(region)]
    rng = _rng(seed, _ROADS_STREAM)
    rows: list[dict[str, Any]] = []

    def add(highway, name, geom, ref="", route=None):
        for g in _parts(geom, 50.0):
            rows.append({"highway": highway, "route": route, "ref": ref or None, "name": name,
                         "geometry": g})  # fmt: skip

    for hw, ref, name, k, span in _MAIN_ROADS:
        add(hw, name, _around_lakes(_line(_ROADS[k][span]), lakes), ref)
    for hw, name, pts in _LOCAL_ROADS:
        add(hw, name, _around_lakes(_line(pts), lakes))

    def network():
        return unary_union([r["geometry"] for r in rows if r["route"] is None])

    # ferries: to the largest island north and south of Slätbaken, 1-8 km off the mainland
    parts = sorted(getattr(land, "geoms", [land]), key=lambda g: -g.area)
    mainland = parts[0]
    split_y = _to_sweref([(16.6, 58.3)])[0][1]
    for side, label in ((1, "north"), (-1, "south")):
        cand = [
            g for g in parts[1:]
            if g.area >= 2e6 and 1000 <= mainland.distance(g) <= 8000
            and side * (g.representative_point().y - split_y) > 0
            and region.contains(g.representative_point())
        ]  # fmt: skip
        if not cand:
            continue
        island = max(cand, key=lambda g: g.area)
        quay, pier = nearest_points(mainland, island)
        rows.append({"highway": None, "route": "ferry", "ref": None,
                     "name": f"archipelago ferry {label}",
                     "geometry": LineString([quay, pier])})  # fmt: skip
        on_road, _ = nearest_points(network(), quay)
        access = LineString([on_road, quay])
        add("tertiary", f"road to the {label} ferry", access.intersection(land.buffer(1.0)))
        centre = island.representative_point()
        add(
            "unclassified",
            f"island road ({label} ferry)",
            LineString([pier, centre]).intersection(island.buffer(1.0)),
        )

    # every town and village on a road: tertiary from 1,000 residents, unclassified below
    town_xy = _to_sweref([(tw[3], tw[2]) for tw in TOWNS])
    for tw, (tx, ty) in zip(TOWNS, town_xy, strict=True):
        p = Point(tx, ty)
        net = network()
        if net.distance(p) <= 1000.0:
            continue
        on_road, _ = nearest_points(net, p)
        road = _around_lakes(LineString([on_road, p]), lakes)
        add("tertiary" if tw[4] >= 1000 else "unclassified", f"road to {tw[0]}", road)

    # residential streets in every town
    for tw, (tx, ty) in zip(TOWNS, town_xy, strict=True):
        s_m = tw[5] * 1000.0
        for _ in range(int(np.clip(np.sqrt(tw[4]) / 25.0, 1, 14))):
            r = 1.2 * s_m * np.sqrt(rng.random())
            phi = rng.uniform(0, 2 * np.pi)
            mx, my = tx + r * np.cos(phi), ty + r * np.sin(phi)
            half = 0.5 * min(rng.gamma(2.0, 0.4 * s_m), 3.0 * s_m)
            theta = rng.uniform(0, np.pi)
            dx, dy = half * np.cos(theta), half * np.sin(theta)
            street = LineString([(mx - dx, my - dy), (mx + dx, my + dy)])
            add("residential", f"{tw[0]} street", street.intersection(land))

    # unclassified rural roads: from seeded points in the countryside to the network
    plain_line = _line(_PLAIN)
    minx, miny, maxx, maxy = mainland.bounds
    towns_pts = [Point(xy) for xy in town_xy]
    n_rural, tries = 0, 0
    net = network()
    while n_rural < _N_RURAL_ROADS and tries < 5000:
        tries += 1
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        plain = 1.0 / (1.0 + np.exp((plain_line.distance(p) / 1000.0 - _PLAIN_HALF_KM) / 2.0))
        if rng.random() > 0.35 + 0.65 * plain or not mainland.contains(p):
            continue
        if min(t.distance(p) for t in towns_pts) < 2500.0:
            continue
        on_road, _ = nearest_points(net, p)
        road = LineString([on_road, p])
        if not 1500.0 <= road.length <= 10000.0 or road.intersection(water).length > 0:
            continue
        add("unclassified", "rural road", road)
        n_rural += 1
        net = unary_union([net, road])

    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)
    gdf["speed_kmh"] = [speeds[h] if isinstance(h, str) else _FERRY_KMH for h in gdf.highway]
    gdf["synthetic"] = True
    return gdf[["highway", "route", "ref", "name", "speed_kmh", "synthetic", "geometry"]]


def make_activity(
    sample: OstergotlandSample | None = None,
    *,
    resolution_m: int = 1000,
    seed: int = DEFAULT_SEED,
) -> OstergotlandActivity:
    """Generate the SYNTHETIC floor area, jobs, roads and commuting of the region.

    Parameters
    ----------
    sample : OstergotlandSample, optional
        The region (default: ``make_ostergotland(resolution_m, seed)``).
    resolution_m, seed : int
        Used when ``sample`` is not given.

    Returns
    -------
    OstergotlandActivity

    Examples
    --------
    >>> a = make_activity()
    >>> s = make_ostergotland()
    >>> 0.43 < float(np.nansum(a.jobs) / np.nansum(s.layers["population"])) < 0.47
    True
    """
    if sample is None:
        sample = make_ostergotland(resolution_m, seed=seed)
    L = sample.layers
    shape = L["population"].shape
    f = _BASE // sample.resolution_m
    region = L["municipality"] > 0
    cx, cy = _cell_centres(sample.transform, shape)
    area_km2 = (sample.resolution_m / 1000.0) ** 2
    ctx = {
        "shape": shape,
        "base_shape": (shape[0] // f, shape[1] // f),
        "f": f,
        "cx": cx,
        "cy": cy,
        "area_km2": area_km2,
        "cell_m2": area_km2 * 1e6,
        "pop": np.nan_to_num(L["population"]).astype(np.float64),
        "land": np.nan_to_num(L["land_share"]).astype(np.float64),
        "built": np.nan_to_num(L["built_share"]).astype(np.float64),
        "agri": np.nan_to_num(L["agri_share"]).astype(np.float64),
        "muni": L["municipality"],
    }
    floor = _floor_area(sample, ctx, _rng(sample.seed, _FLOOR_STREAM))
    jobs = _jobs(sample, ctx, _rng(sample.seed, _JOBS_STREAM))
    od = _commuting_od(sample, ctx, jobs.sum(axis=0))

    floor = floor.astype(np.float32)
    floor[~region] = np.nan
    jobs = jobs.astype(np.float32)
    jobs[:, ~region] = np.nan
    return OstergotlandActivity(
        floor_area=floor,
        jobs=jobs,
        sectors=SECTORS,
        roads=make_roads(sample.seed),
        commuting_od=od,
        transform=sample.transform,
        crs=sample.crs,
        resolution_m=sample.resolution_m,
        seed=sample.seed,
    )


_UNITS = {
    "floor_area": "m2 of building floor per cell",
    "jobs": "workplaces per cell, one band per sector (primary, manufacturing, services, "
    "public); the bands sum to the jobs of the cell",
}


def write_activity(
    out_dir: str | Path,
    sample: OstergotlandSample | None = None,
    *,
    resolution_m: int = 1000,
    overwrite: bool = False,
    seed: int = DEFAULT_SEED,
) -> dict[str, Path]:
    """Generate the SYNTHETIC activity layers and write them beside the region's files.

    Writes ``floor_area.tif`` (float32), ``jobs.tif`` (float32, 4 bands in
    :data:`SECTORS` order, band descriptions the sector names) — NaN nodata, tiled,
    deflate-compressed, tagged as synthetic like the region's GeoTIFFs —, ``roads.gpkg``
    (layer ``roads``, EPSG:3006, described as synthetic) and ``commuting_od.csv``.

    Parameters
    ----------
    out_dir : str or Path
        Folder (created if missing).
    sample : OstergotlandSample, optional
        The region (default: ``make_ostergotland(resolution_m, seed)``).
    resolution_m, seed : int
        Used when ``sample`` is not given.
    overwrite : bool
        Replace existing files; otherwise an existing file is an error and nothing is written.

    Returns
    -------
    dict
        ``floor_area``, ``jobs``, ``roads``, ``commuting_od`` → written path.

    Raises
    ------
    pari_geo.errors.OutputError
        If a file exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     sorted(p.name for p in write_activity(d).values())
    ['commuting_od.csv', 'floor_area.tif', 'jobs.tif', 'roads.gpkg']
    """
    import rasterio

    from .._version import __version__
    from ..errors import OutputError
    from ..io_write import write_table

    out = Path(out_dir)
    targets = {k: out / v for k, v in ACTIVITY_FILES.items()}
    if not overwrite:
        for p in targets.values():
            if p.exists():
                raise OutputError(str(p), "exists; pass overwrite=True to replace it")
    act = make_activity(sample, resolution_m=resolution_m, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("floor_area", "jobs"):
        a = act.floor_area[None] if name == "floor_area" else act.jobs
        path = targets[name]
        profile = {
            "driver": "GTiff",
            "height": a.shape[1],
            "width": a.shape[2],
            "count": a.shape[0],
            "dtype": "float32",
            "crs": CRS,
            "transform": act.transform,
            "nodata": float("nan"),
            "tiled": True,
            "blockxsize": 128,
            "blockysize": 128,
            "compress": "deflate",
            "predictor": 3,
        }
        tmp = path.with_suffix(".tmp.tif")
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(a)
            dst.update_tags(
                DESCRIPTION=_SYNTHETIC,
                layer=name,
                units=_UNITS[name],
                seed=str(act.seed),
                resolution_m=str(act.resolution_m),
                generator=f"pari_geo {__version__} pari_geo.datasets.ostergotland_activity",
            )
            if name == "jobs":
                for k, sector in enumerate(act.sectors, start=1):
                    dst.set_band_description(k, sector)
                    dst.update_tags(k, sector=sector, content=SECTOR_DESCRIPTIONS[sector])
            else:
                dst.set_band_description(1, name)
        tmp.replace(path)
    write_table(
        act.roads,
        targets["roads"],
        overwrite=True,
        layer="roads",
        metadata={
            "DESCRIPTION": "SYNTHETIC roads of the sample region shaped after Ostergotland "
            "(pari_geo.datasets.ostergotland_activity); not observed data",
            "seed": str(act.seed),
            "ferries": "route = ferry, highway empty (NULL), speed_kmh 20",
        },
    )
    write_table(act.commuting_od, targets["commuting_od"], overwrite=True)
    return targets
