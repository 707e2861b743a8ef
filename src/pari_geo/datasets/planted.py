"""Planted ground truth for the hidden-cluster test: regions with known answers.

:func:`planted_region` generates a synthetic region in which every background actor is
drawn *exactly* from the null model of :mod:`pari_geo.clustering.significance` (within each
unit, actors fall into the unit's grid cells in proportion to their residents, then
uniformly inside the cell), and then plants clusters of actors whose places are known:

- ``"low"`` clusters in units whose actor rate is below the median (a municipal table
  would not show them): the test must flag them ``hidden``;
- ``"high"`` clusters in the units of the highest rates: significant, but not hidden;
- some ``"low"`` clusters straddle the border of two low-rate units.

The population is one continuous field (towns on a rural background) summed onto grids of
any cell size from 50 m, so the *same* region can be tested at 100 m, 250 m and 1 km.
Unit borders are Voronoi edges at arbitrary angles, so they cut cells.
:func:`detection_scores` compares a cluster table with the planted truth.

Examples
--------
>>> region = planted_region(cell_m=1000, seed=1, n_low=4, n_high=1, size_km=(30, 24))
>>> sorted(region.truth["kind"].unique().tolist())
['high', 'low']
>>> bool((region.actors["planted"] >= 0).sum() == region.truth["n_actors"].sum())
True
>>> null = planted_region(cell_m=1000, seed=1, null=True, size_km=(30, 24))
>>> int((null.actors["planted"] >= 0).sum()), len(null.truth)
(0, 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["PlantedRegion", "planted_region", "detection_scores"]

_BASE_M = 50.0  # resolution of the population field before summing onto the grid


@dataclass(frozen=True)
class PlantedRegion:
    """A generated region with planted clusters.

    Attributes
    ----------
    actors : geopandas.GeoDataFrame
        Points with ``planted`` (id of the planted cluster, -1 for background actors),
        ``kind`` ("low", "high" or "" for background) and ``sector``.
    units : geopandas.GeoDataFrame
        ``unit_id``, ``rate`` (actors per resident the background was drawn with),
        ``low`` (True for the units where "low" clusters are planted), geometry.
    population : xarray.DataArray
        Residents per cell (rioxarray CRS and transform).
    truth : pandas.DataFrame
        One row per planted cluster: ``planted``, ``kind``, ``unit_id``, ``n_actors``,
        ``radius_m``, ``x``, ``y``, ``straddles`` (centre on a border of two units).
    cell_m : float
        Cell side of ``population``.
    """

    actors: Any
    units: Any
    population: Any
    truth: pd.DataFrame
    cell_m: float


def _field(size_km: tuple[float, float], rng: np.random.Generator, base_m: float) -> np.ndarray:
    """Residents per ``base_m`` cell: a rural background with towns (km² densities)."""
    w, h = size_km
    cols, rows = int(round(w * 1000 / base_m)), int(round(h * 1000 / base_m))
    x = (np.arange(cols) + 0.5) * base_m / 1000.0
    y = (np.arange(rows) + 0.5) * base_m / 1000.0
    level = rng.uniform(5.0, 25.0)
    dens = np.empty((rows, cols))
    for r0 in range(0, rows, 512):  # by strips: bounded memory on country-size grids
        yy = y[r0 : r0 + 512, None]
        dens[r0 : r0 + 512] = level * (1.0 + 0.5 * np.sin(x[None, :] / 7.0) * np.cos(yy / 5.0))
    n_towns = max(2, int(round(w * h / 400.0)))
    for _ in range(n_towns):
        cx, cy = rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.1 * h, 0.9 * h)
        peak, sig = rng.uniform(1500.0, 4000.0), rng.uniform(0.8, 2.5)
        # each town touches only the cells within 4 sigma
        c0, c1 = np.searchsorted(x, [cx - 4 * sig, cx + 4 * sig])
        r0, r1 = np.searchsorted(y, [cy - 4 * sig, cy + 4 * sig])
        X, Y = np.meshgrid(x[c0:c1], y[r0:r1])
        dens[r0:r1, c0:c1] += peak * np.exp(-((X - cx) ** 2 + (Y - cy) ** 2) / (2 * sig**2))
    return dens * (base_m / 1000.0) ** 2


def _voronoi_units(size_km, n_units, rng):
    import shapely

    w, h = size_km[0] * 1000.0, size_km[1] * 1000.0
    box = shapely.box(0.0, 0.0, w, h)
    seeds = shapely.multipoints(np.column_stack([rng.uniform(0, w, n_units),
                                                 rng.uniform(0, h, n_units)]))  # fmt: skip
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=box))
    cells = shapely.intersection(cells, box)
    return [c for c in cells if not c.is_empty]


def _low_units(polys, n_low, rng) -> list[int]:
    """A connected group of ``n_low`` units (they share borders, for straddling clusters)."""
    import shapely

    tree = shapely.STRtree(polys)
    a, b = tree.query(polys, predicate="touches")
    neighbours: dict[int, set[int]] = {i: set() for i in range(len(polys))}
    for i, j in zip(a.tolist(), b.tolist(), strict=True):
        neighbours[i].add(j)
    group = [int(rng.integers(len(polys)))]
    while len(group) < n_low:
        cand = sorted(set().union(*(neighbours[g] for g in group)) - set(group))
        if not cand:
            break
        group.append(int(rng.choice(cand)))
    return group


def planted_region(
    cell_m: float = 250.0,
    *,
    seed: int = 0,
    size_km: tuple[float, float] = (60.0, 45.0),
    n_units: int = 12,
    rates_per_100: tuple[float, float] = (1.0, 6.0),
    n_low: int = 16,
    n_high: int = 3,
    sizes: tuple[int, int] = (6, 30),
    radii_m: tuple[float, float] = (100.0, 400.0),
    straddle_share: float = 0.25,
    null: bool = False,
    crs: str = "EPSG:3006",
) -> PlantedRegion:
    """Generate a region with background actors from the null model and planted clusters.

    Parameters
    ----------
    cell_m : float, default=250
        Cell side of the population grid; a multiple of 50 m that divides the region.
    seed : int
        Seed of everything (population, units, rates, actors); the same seed gives the
        same region at every ``cell_m`` except the actors' cell-level draws.
    size_km : (width, height)
        Size of the region.
    n_units : int
        Number of units (Voronoi cells of random seeds).
    rates_per_100 : (low, high)
        Unit actor rates per 100 residents, spaced geometrically between these.
    n_low, n_high : int
        Planted clusters in the low-rate units (the lowest third, connected) and in the
        three highest-rate units.
    sizes : (min, max)
        Actors per planted cluster (uniform integers).
    radii_m : (min, max)
        Radius of the disc each planted cluster is drawn in (uniform in the disc).
    straddle_share : float
        Share of the "low" clusters centred on a border between two low-rate units.
    null : bool
        No planted clusters: a pure-null region.
    crs : str
        A projected CRS in metres.

    Returns
    -------
    PlantedRegion
    """
    import geopandas as gpd
    import rioxarray  # noqa: F401  (registers .rio)
    import shapely
    import xarray as xr
    from affine import Affine
    from rasterio.features import rasterize

    if cell_m % _BASE_M or cell_m < _BASE_M:
        raise ValueError(f"cell_m must be a multiple of {_BASE_M:g} m, got {cell_m!r}")
    rng = np.random.default_rng(seed)
    # the field is summed from 50 m cells, or made at the grid's cells on large regions
    fine_cells = size_km[0] * size_km[1] * 1e6 / _BASE_M**2
    base_m = _BASE_M if fine_cells <= 20e6 else float(cell_m)
    fine = _field(size_km, rng, base_m)
    agg = int(cell_m // base_m)
    rows, cols = fine.shape[0] // agg, fine.shape[1] // agg
    pop = fine[: rows * agg, : cols * agg].reshape(rows, agg, cols, agg).sum(axis=(1, 3))
    top = rows * cell_m
    transform = Affine(cell_m, 0.0, 0.0, 0.0, -cell_m, top)

    polys = _voronoi_units(size_km, n_units, rng)
    k = len(polys)
    low = _low_units(polys, max(1, k // 3), rng)
    rates = np.geomspace(rates_per_100[0], rates_per_100[1], k) / 100.0
    order = [u for u in range(k) if u not in low]
    rng.shuffle(order)
    rate = np.empty(k)
    rate[low] = rates[: len(low)]
    rate[order] = rates[len(low) :]
    owner = rasterize(((g, i + 1) for i, g in enumerate(polys)), out_shape=(rows, cols),
                      transform=transform, fill=0, dtype="int32").ravel() - 1  # fmt: skip

    # background: exactly the null model, unit by unit
    flat = pop.ravel()
    by_unit = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[by_unit], np.arange(k + 1))
    xs, ys = [], []
    for u in range(k):
        cells = by_unit[bounds[u] : bounds[u + 1]]
        res = flat[cells].sum()
        n = rng.poisson(rate[u] * res)
        pick = rng.choice(cells, size=n, p=flat[cells] / res)
        r, c = np.divmod(pick, cols)
        xs.append((c + rng.random(n)) * cell_m)
        ys.append(top - (r + rng.random(n)) * cell_m)
    bx, by = np.concatenate(xs), np.concatenate(ys)

    truth_rows: list[dict[str, Any]] = []
    px, py, pid = [], [], []
    if not null:
        low_union = shapely.union_all([polys[u] for u in low])
        borders = shapely.intersection(
            shapely.union_all([shapely.boundary(polys[u]) for u in low]), low_union.buffer(-1.0)
        )
        from scipy.ndimage import maximum_filter

        # rural: no cell within about 1.5 km holds more than 60 residents per km² (the same
        # places at every cell size, and none next to a town a DBSCAN cluster could join)
        dens_km2 = maximum_filter(
            pop / (cell_m / 1000.0) ** 2, size=max(1, int(round(3000.0 / cell_m))), mode="nearest"
        )

        def rural_point(area, fallback) -> tuple[float, float]:
            # a rural place at least 4 km (then 2 km) from the other planted clusters, in
            # ``area``, else anywhere in ``fallback``
            for where, gap in ((area, 4000.0), (area, 2000.0), (fallback, 2000.0)):
                x0, y0, x1, y1 = where.bounds
                for _ in range(3000):
                    x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
                    r, c = int((top - y) // cell_m), int(x // cell_m)
                    ok = 0 <= r < rows and 0 <= c < cols and dens_km2[r, c] < 60.0
                    if ok and where.contains(shapely.Point(x, y)) and all(
                        (x - t["x"]) ** 2 + (y - t["y"]) ** 2 > gap**2 for t in truth_rows
                    ):
                        return x, y
            raise RuntimeError("no rural place left to plant a cluster")

        # "low" clusters go to the low-rate unit with the most background actors per planted
        # cluster so far, so that planting does not lift a unit's rate above the median
        load = {u: 0 for u in low}
        plan = []
        for _ in range(n_low):
            u = max(low, key=lambda v: (len(xs[v]) / (1.0 + load[v]), -v))
            load[u] += 1
            plan.append(("low", polys[u]))
        high_units = list(np.argsort(rate)[-3:])
        plan += [("high", polys[int(high_units[i % 3])]) for i in range(n_high)]
        n_straddle = int(round(straddle_share * n_low)) if not borders.is_empty else 0
        for i, (kind, area) in enumerate(plan):
            straddles = kind == "low" and i < n_straddle
            if straddles:
                for _ in range(1000):
                    pt = shapely.line_interpolate_point(
                        borders, rng.uniform(0, shapely.length(borders))
                    )
                    x, y = float(pt.x), float(pt.y)
                    r, c = int((top - y) // cell_m), int(x // cell_m)
                    if 0 <= r < rows and 0 <= c < cols and dens_km2[r, c] < 60.0:
                        break
            else:
                x, y = rural_point(area, low_union if kind == "low" else area)
            n = int(rng.integers(sizes[0], sizes[1] + 1))
            radius = float(rng.uniform(*radii_m))
            ang = rng.uniform(0, 2 * np.pi, n)
            dist = radius * np.sqrt(rng.random(n))
            px.append(x + dist * np.cos(ang))
            py.append(y + dist * np.sin(ang))
            pid.append(np.full(n, i))
            unit = next((u for u in range(k) if polys[u].contains(shapely.Point(x, y))), -1)
            truth_rows.append({"planted": i, "kind": kind, "unit_id": f"U{unit:02d}",
                               "n_actors": n, "radius_m": radius, "x": x, "y": y,
                               "straddles": straddles})  # fmt: skip
    ax = np.concatenate([bx, *px]) if px else bx
    ay = np.concatenate([by, *py]) if py else by
    planted = np.concatenate([np.full(len(bx), -1), *pid]) if pid else np.full(len(bx), -1)
    kinds = np.array(["", "low", "high"], dtype=object)
    kind_of = {t["planted"]: 1 if t["kind"] == "low" else 2 for t in truth_rows}
    kind_col = kinds[[kind_of.get(int(p), 0) for p in planted]]
    sectors = np.array(["farm shop", "brewery", "artist", "cooperative", "accommodation"])
    actors = gpd.GeoDataFrame(
        {"planted": planted.astype(np.int64), "kind": kind_col,
         "sector": sectors[rng.integers(0, len(sectors), len(ax))]},
        geometry=gpd.points_from_xy(ax, ay), crs=crs,
    )  # fmt: skip
    units = gpd.GeoDataFrame(
        {"unit_id": [f"U{u:02d}" for u in range(k)], "rate": rate,
         "low": [u in low for u in range(k)]},
        geometry=polys, crs=crs,
    )  # fmt: skip
    y_coords = top - (np.arange(rows) + 0.5) * cell_m
    x_coords = (np.arange(cols) + 0.5) * cell_m
    da = xr.DataArray(pop, dims=("y", "x"), coords={"y": y_coords, "x": x_coords},
                      name="population")  # fmt: skip
    da = da.rio.write_crs(crs).rio.write_transform(transform)
    truth = pd.DataFrame(truth_rows, columns=["planted", "kind", "unit_id", "n_actors",
                                              "radius_m", "x", "y", "straddles"])  # fmt: skip
    return PlantedRegion(actors=actors, units=units, population=da, truth=truth,
                         cell_m=float(cell_m))  # fmt: skip


def detection_scores(
    clusters: Any, labels: np.ndarray, region: PlantedRegion, match: float = 0.5
) -> dict[str, float]:
    """Recall and false discovery rate of the ``hidden`` flag against the planted truth.

    A "low" planted cluster is *found* when one hidden cluster holds at least ``match``
    of its actors. A "low" cluster whose planting lifted its unit's observed actor rate
    above the median (the cluster holding it has ``ordinary_unit`` False) is rightly not
    hidden: it is counted in ``tipped`` and left out of the recall. A hidden cluster is a
    *true* discovery when it holds at least ``match`` of a "low" planted cluster's actors
    or when at least ``match`` of its own members are planted "low" actors (a fragment of a
    planted cluster); otherwise (background, or a "high" cluster, which is significant but
    not hidden) it is false.

    Parameters
    ----------
    clusters : DataFrame
        One scale of :func:`~pari_geo.clustering.find_microclusters` output.
    labels : ndarray
        ``cluster_id`` of every actor (:func:`~pari_geo.clustering.label_actors`).
    region : PlantedRegion
    match : float
        Share that makes a match.

    Returns
    -------
    dict
        ``recall``, ``tipped``, ``fdr`` (0 when nothing is hidden), ``n_hidden``,
        ``n_false``, ``n_low`` (planted "low" clusters less the tipped ones), ``found_low``,
        ``high_significant`` and ``high_hidden`` (counts of "high" clusters matched by a
        significant / a hidden cluster), ``n_clusters``.
    """
    planted = region.actors["planted"].to_numpy()
    kind = region.actors["kind"].to_numpy()
    labels = np.asarray(labels)
    hidden_ids = set(clusters.loc[clusters["hidden"], "cluster_id"].astype(int))
    sig_ids = set(clusters.loc[clusters["q_value"] <= 0.05, "cluster_id"].astype(int))

    def best_cover(pid: int) -> tuple[int, float]:
        lab = labels[planted == pid]
        lab = lab[lab >= 0]
        if not len(lab):
            return -1, 0.0
        vals, cnt = np.unique(lab, return_counts=True)
        i = int(np.argmax(cnt))
        return int(vals[i]), cnt[i] / float((planted == pid).sum())

    truth = region.truth
    found = tipped = 0
    true_ids: set[int] = set()
    ordinary = dict(zip(clusters["cluster_id"].astype(int), clusters["ordinary_unit"],
                        strict=True))  # fmt: skip
    for pid in truth.loc[truth["kind"] == "low", "planted"]:
        for cid in np.unique(labels[(planted == pid) & (labels >= 0)]):
            share = ((labels == cid) & (planted == pid)).sum() / float((planted == pid).sum())
            if share >= match:
                true_ids.add(int(cid))
        cid, share = best_cover(int(pid))
        if cid >= 0 and share >= match and not ordinary.get(cid, True):
            tipped += 1  # planting lifted its unit above the median: rightly not hidden
        elif cid in hidden_ids and share >= match:
            found += 1
    for cid in hidden_ids:
        mem = labels == cid
        if (kind[mem] == "low").mean() >= match:
            true_ids.add(cid)
    high_sig = high_hid = 0
    for pid in truth.loc[truth["kind"] == "high", "planted"]:
        cid, share = best_cover(int(pid))
        if share >= match:
            high_sig += cid in sig_ids
            high_hid += cid in hidden_ids
    n_low = int((truth["kind"] == "low").sum()) - tipped
    n_false = len(hidden_ids - true_ids)
    return {
        "recall": found / n_low if n_low else float("nan"),
        "tipped": float(tipped),
        "fdr": n_false / len(hidden_ids) if hidden_ids else 0.0,
        "n_hidden": float(len(hidden_ids)),
        "n_false": float(n_false),
        "n_low": float(n_low),
        "found_low": float(found),
        "high_significant": float(high_sig),
        "high_hidden": float(high_hid),
        "n_clusters": float(len(clusters)),
    }
