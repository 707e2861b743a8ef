"""Micro-clusters of actors: DBSCAN clusters with their context, significance and rung.

:func:`find_microclusters` clusters actors (farm shops, breweries, artists, cooperatives ...)
with the exact DBSCAN of :mod:`pari_geo.clustering` and describes every cluster (design
``clustering.md`` sections 2-4): its sectors, footprint, extent, the administrative units it
spans, the dominant place type and residents of its footprint, whether it stands out against
its own unit (:mod:`pari_geo.clustering.significance`) and its rung on the Cluster Ladder
(:mod:`pari_geo.clustering.rungs`). :func:`label_actors` gives every actor its cluster id.

Examples
--------
>>> import geopandas as gpd
>>> from shapely.geometry import Point
>>> pts = [Point(0, 0), Point(0, 200), Point(200, 0), Point(5000, 5000)]
>>> actors = gpd.GeoDataFrame({"sector": ["farm shop", "brewery", "artist", "care"]},
...                           geometry=pts, crs="EPSG:3006")
>>> out = find_microclusters(actors, eps_m=300, min_actors=3, sector_col="sector")
>>> out[["cluster_id", "n_actors", "sectors", "n_sectors", "rung"]]
   cluster_id  n_actors                   sectors  n_sectors   rung
0           0         3  artist;brewery;farm shop          3  micro
>>> label_actors(actors, eps_m=300, min_actors=3).tolist()
[0, 0, 0, -1]
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from . import significance as sig
from .driver import dbscan_xy
from .options import CLUSTER_DEFAULTS as _D
from .options import check_cluster_options
from .rungs import rung_of
from .threads import resolve_threads

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = [
    "find_microclusters",
    "label_actors",
    "CLUSTER_COLUMNS",
    "PreparedActors",
    "prepare_actors",
    "clusters_at_scale",
    "ScaleRun",
    "start_scale",
    "describe_scale",
    "finish_scale",
]

#: Output columns of :func:`find_microclusters` and their dtypes (geometry: GeoSeries).
CLUSTER_COLUMNS: dict[str, str | None] = {
    "cluster_id": "int64",
    "n_actors": "int64",
    "sectors": "str",
    "n_sectors": "int64",
    "sector_entropy": "float64",
    "social_economy_share": "float64",
    "geometry": None,
    "area_km2": "float64",
    "extent_m": "float64",
    "unit_ids": "str",
    "n_units": "int64",
    "dominant_place_type": "Int64",
    "residents": "float64",
    "expected": "float64",
    "ratio": "float64",
    "llr": "float64",
    "p_value": "float64",
    "q_value": "float64",
    "ordinary_unit": "bool",
    "hidden": "bool",
    "rung": "str",
}

_LAYER = "actors"
#: clusters with more members than this draw their disc union from snapped members
_SNAP_ABOVE = 500
#: residents under a cluster's geometry: exact overlay on windows of at most _EXACT_CELLS
#: cells, else the window rasterized on about _SUBCELL_BUDGET sub-cells (64 x 64 per cell on
#: small windows down to 4 x 4 on the largest)
_EXACT_CELLS = 16
_SUBCELL_BUDGET = 1_000_000


@dataclass
class PreparedActors:
    """Validated actors and context layers in the working CRS (see :func:`prepare_actors`).

    What every scale of a run shares: actor coordinates, sectors, the unit of each actor,
    the population and place-type rasters, and the null model of each ``null_cell_m``
    (built on first use). :func:`clusters_at_scale` clusters them at one ``eps_m``.
    """

    crs: Any
    xy: np.ndarray
    index: pd.Index
    sectors: np.ndarray | None
    social: np.ndarray | None
    actor_unit: np.ndarray
    unit_ids: np.ndarray | None
    unit_geoms: np.ndarray | None
    regions: np.ndarray | None
    countries: np.ndarray | None
    pop: np.ndarray | None
    pop_transform: Any
    ptype: np.ndarray | None
    ptype_transform: Any
    ptype_xy: np.ndarray | None
    _models: dict = field(default_factory=dict, repr=False)

    def null_model(self, null_cell_m: float) -> sig.NullModel | None:
        """The null model of these actors (built once: it does not depend on the scale)."""
        if null_cell_m not in self._models:
            self._models[null_cell_m] = sig.build_null_model(
                self.xy,
                self.actor_unit,
                self.unit_geoms,
                population=self.pop,
                transform=self.pop_transform,
                null_cell_m=null_cell_m,
            )
        return self._models[null_cell_m]


def _raster(obj: Any, layer: str):
    """(values 2-D float64 with NaN for nodata, transform, crs) of a raster input."""
    from ..grid import GridSpec
    from ..ingest import as_dataarray

    da = as_dataarray(obj, layer)
    src = da.attrs.get("source")
    grid = GridSpec.from_dataarray(da, file=src, layer=layer)
    values = np.asarray(da.values, dtype=np.float64)
    return values, grid.transform, grid.crs, src


def prepare_actors(
    actors: Any,
    *,
    units: Any = None,
    unit_id: str | None = None,
    region_col: str | None = None,
    country_col: str | None = None,
    population: Any = None,
    place_types: Any = None,
    sector_col: str | None = None,
    social_col: str | None = None,
) -> PreparedActors:
    """Validate the actors and their context layers once, for any number of scales.

    Parameters
    ----------
    actors, units, unit_id, region_col, country_col, population, place_types, sector_col, \
social_col
        As for :func:`find_microclusters`.

    Returns
    -------
    PreparedActors
        The inputs in the working CRS: that of ``population``, else the actors' when
        projected, else that of ``units`` when projected, else that of ``place_types``.

    Raises
    ------
    InputError
        For a layer that is missing, unreadable, in a geographic CRS or lacks a column.
    """
    import geopandas as gpd
    import shapely
    from pyproj import CRS

    from ..grid import require_projected
    from ..ingest import check_counts, open_units

    if not isinstance(actors, gpd.GeoDataFrame):
        raise InputError(
            None, _LAYER, f"must be a geopandas.GeoDataFrame, got {type(actors).__name__}"
        )
    if actors.crs is None:
        raise InputError(None, _LAYER, "has no CRS; set one with GeoDataFrame.set_crs")
    geom = actors.geometry
    bad = (geom.isna() | geom.is_empty).to_numpy()
    if bad.any():
        raise InputError(
            None,
            _LAYER,
            f"{int(bad.sum())} actor(s) have no or empty geometry (first at index "
            f"{actors.index[np.flatnonzero(bad)[0]]!r}); drop or fix them",
        )
    for key, col in (("sector_col", sector_col), ("social_col", social_col)):
        if col is not None and col not in actors.columns:
            raise InputError(
                None,
                _LAYER,
                f"has no column {col!r} ({key}); columns: {', '.join(map(str, actors.columns))}",
            )
    if units is None and (region_col is not None or country_col is not None):
        raise ConfigError("region_col/country_col", "need units (they are columns of units)")

    pop = pop_t = pop_crs = None
    if population is not None:
        pop, pop_t, pop_crs, src = _raster(population, "population")
        check_counts(pop, src, "population")
    pt = pt_t = pt_crs = None
    if place_types is not None:
        pt, pt_t, pt_crs, _ = _raster(place_types, "place_types")
        pt = np.where(pt == 255, np.nan, pt)
    units_gdf = None
    if units is not None:
        units_gdf = open_units(units, id_col=unit_id)
        for key, col in (("region_col", region_col), ("country_col", country_col)):
            if col is not None and col not in units_gdf.columns:
                raise InputError(units_gdf.attrs.get("source"), "units",
                                 f"has no column {col!r} ({key})")

    # working CRS: the population grid's, else the actors', else the units' / place types'
    acrs = CRS.from_user_input(actors.crs)
    if pop_crs is not None:
        work = pop_crs
    elif acrs.is_projected:
        work = require_projected(acrs, actors.attrs.get("source"), _LAYER)
    elif units_gdf is not None and CRS.from_user_input(units_gdf.crs).is_projected:
        work = require_projected(units_gdf.crs, units_gdf.attrs.get("source"), "units")
    elif pt_crs is not None:
        work = pt_crs
    else:
        bounds = tuple(actors.total_bounds) if len(actors) else None
        require_projected(acrs, actors.attrs.get("source"), _LAYER, bounds)  # raises
        work = acrs  # pragma: no cover

    geom = actors.geometry if acrs == work else actors.geometry.to_crs(work)
    arr = geom.to_numpy()
    not_point = shapely.get_type_id(arr) != 0
    if not_point.any():
        arr = arr.copy()
        arr[not_point] = shapely.point_on_surface(arr[not_point])
    xy = shapely.get_coordinates(arr) if len(arr) else np.zeros((0, 2))
    if xy.shape != (len(actors), 2) or not np.isfinite(xy).all():
        raise InputError(None, _LAYER, "has non-finite coordinates (NaN or infinite)")
    xy = np.ascontiguousarray(xy, dtype=np.float64)

    sectors = social = None
    if sector_col is not None:
        s = actors[sector_col]
        sectors = np.asarray(np.where(s.isna().to_numpy(), None, s.astype(str).to_numpy()),
                             dtype=object)
    if social_col is not None:
        s = actors[social_col]
        social = np.where(s.isna().to_numpy(), np.nan, s.fillna(0).astype(float).to_numpy())

    actor_unit = np.full(len(actors), -1, dtype=np.int64)
    unit_ids = unit_geoms = regions = countries = None
    if units_gdf is not None:
        if CRS.from_user_input(units_gdf.crs) != work:
            units_gdf = units_gdf.to_crs(work)
        unit_geoms = units_gdf.geometry.to_numpy()
        ids = units_gdf[unit_id] if unit_id is not None else units_gdf.index.to_series()
        unit_ids = np.asarray(ids.astype(str).to_numpy(), dtype=object)
        regions = units_gdf[region_col].to_numpy() if region_col else None
        countries = units_gdf[country_col].to_numpy() if country_col else None
        if len(xy):
            tree = shapely.STRtree(unit_geoms)
            pts = shapely.points(xy)
            a, u = tree.query(pts, predicate="intersects")
            best = np.full(len(xy), np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(best, a, u)
            actor_unit = np.where(best == np.iinfo(np.int64).max, -1, best)
        outside = int((actor_unit < 0).sum())
        if outside:
            warnings.warn(
                f"{outside} actor(s) lie outside every unit: they take part in the clustering "
                "but stay fixed in the null model and count in no unit's rate",
                stacklevel=3,
            )
    elif pop is None:
        actor_unit[:] = -1
    else:
        actor_unit[:] = 0  # the whole grid is one unit

    pt_xy = None
    if pt is not None:
        pt_xy = xy
        if pt_crs != work:
            from pyproj import Transformer

            tr = Transformer.from_crs(work, pt_crs, always_xy=True)
            pt_xy = np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))
    return PreparedActors(
        crs=work,
        xy=xy,
        index=actors.index,
        sectors=sectors,
        social=social,
        actor_unit=actor_unit,
        unit_ids=unit_ids,
        unit_geoms=unit_geoms,
        regions=regions,
        countries=countries,
        pop=pop,
        pop_transform=pop_t,
        ptype=pt,
        ptype_transform=pt_t,
        ptype_xy=pt_xy,
    )


def _empty(crs: Any):
    import geopandas as gpd

    data = {}
    for col, dtype in CLUSTER_COLUMNS.items():
        if col == "geometry":
            data[col] = gpd.GeoSeries([], crs=crs)
        else:
            data[col] = pd.Series([], dtype=dtype)
    return gpd.GeoDataFrame(data, geometry="geometry", crs=crs)


def _extent(points: np.ndarray) -> float:
    """Largest distance between two points, computed on the convex-hull vertices."""
    import shapely

    pts = np.unique(points, axis=0)
    if len(pts) < 2:
        return 0.0
    hull = shapely.convex_hull(shapely.multipoints(pts))
    v = np.unique(shapely.get_coordinates(hull), axis=0)
    d = v[:, None, :] - v[None, :, :]
    return float(np.sqrt((d**2).sum(-1).max()))


def _footprint(points: np.ndarray, eps_m: float, kind: str):
    import shapely

    pts = np.unique(points, axis=0)
    mp = shapely.multipoints(pts)
    if kind == "discs":
        if len(pts) > _SNAP_ABOVE:
            # large clusters: members snapped to a grid first, of eps/32 (the union moves by
            # at most 2.2 % of the disc radius) or coarser for clusters spread over large
            # areas, so that about _SNAP_ABOVE * 10 distinct places at most are unioned
            span = np.ptp(pts, axis=0)
            step = max(eps_m / 32.0, float(np.sqrt(span[0] * span[1] / (10 * _SNAP_ABOVE))))
            pts = np.unique(np.round(pts / step) * step, axis=0)
        # union of individual discs: much faster than buffering the MultiPoint
        return shapely.union_all(shapely.buffer(shapely.points(pts), eps_m / 2.0, quad_segs=8))
    hull = shapely.convex_hull(mp)
    if shapely.get_type_id(hull) != 3 or shapely.area(hull) <= 0:
        hull = shapely.buffer(hull, eps_m / 2.0, quad_segs=8)
    return hull


def _footprints(points: list[np.ndarray], eps_m: float, kind: str, n_jobs: int) -> list:
    """:func:`_footprint` of every cluster's members, on ``n_jobs`` threads.

    The unions are GEOS work that releases the GIL, so threads share them out (largest
    clusters first); each geometry is computed exactly as alone, whatever ``n_jobs``.
    """
    if n_jobs <= 1 or len(points) <= 1:
        return [_footprint(p, eps_m, kind) for p in points]
    from concurrent.futures import ThreadPoolExecutor

    by_size = sorted(range(len(points)), key=lambda c: -len(points[c]))
    with ThreadPoolExecutor(max_workers=min(n_jobs, len(points))) as pool:
        futures = {c: pool.submit(_footprint, points[c], eps_m, kind) for c in by_size}
        return [futures[c].result() for c in range(len(points))]


def _footprint_residents(geom, pop: np.ndarray, t) -> float:
    """Residents of the grid cells under ``geom``, weighted by the share of each cell inside.

    Residents are taken as evenly spread inside a cell: a cell half inside contributes half
    its residents. The share of each cell is exact (polygon overlay) on windows of at most
    ``_EXACT_CELLS`` cells; beyond, it is measured by GDAL's rasterizer on ``k x k``
    sub-cells of the window the geometry covers (``k`` from 64 on small windows down to 4
    on the largest, about ``_SUBCELL_BUDGET`` sub-cells in all): a polygon overlay per cell
    costs far more on the many-vertex disc unions.
    """
    import shapely
    from affine import Affine
    from rasterio.features import rasterize

    rows, cols = pop.shape
    xmin, ymin, xmax, ymax = shapely.bounds(geom)
    c0 = max(0, int(np.floor((xmin - t.c) / t.a)))
    c1 = min(cols - 1, int(np.floor((xmax - t.c) / t.a)))
    r0 = max(0, int(np.floor((t.f - ymax) / -t.e)))
    r1 = min(rows - 1, int(np.floor((t.f - ymin) / -t.e)))
    if c0 > c1 or r0 > r1:
        return 0.0
    vals = np.nan_to_num(pop[r0 : r1 + 1, c0 : c1 + 1], nan=0.0)
    if not (vals > 0).any():
        return 0.0
    h, w = vals.shape
    if h * w <= _EXACT_CELLS:  # a few cells: exact polygon overlay
        rr, cc = np.nonzero(vals > 0)
        x0 = t.c + (cc + c0) * t.a
        y1 = t.f + (rr + r0) * t.e
        boxes = shapely.box(x0, y1 + t.e, x0 + t.a, y1)
        share = shapely.area(shapely.intersection(boxes, geom)) / (t.a * -t.e)
        return float((vals[rr, cc] * share).sum())
    # sub-cells per cell side: fine on small windows, at least 4 on the largest
    k = int(np.clip(np.sqrt(_SUBCELL_BUDGET / (h * w)), 4, 64))

    sub_t = Affine(t.a / k, 0.0, t.c + c0 * t.a, 0.0, t.e / k, t.f + r0 * t.e)
    inside = rasterize([(geom, 1)], out_shape=(h * k, w * k), transform=sub_t, fill=0,
                       dtype="uint8")  # fmt: skip
    share = inside.reshape(h, k, w, k).sum(axis=(1, 3)) / float(k * k)
    return float((vals * share).sum())


def _raster_values(values: np.ndarray, t, xy: np.ndarray) -> np.ndarray:
    rows, cols = values.shape
    c = np.floor((xy[:, 0] - t.c) / t.a)
    r = np.floor((xy[:, 1] - t.f) / t.e)
    ok = (c >= 0) & (c < cols) & (r >= 0) & (r < rows)
    out = np.full(len(xy), np.nan)
    out[ok] = values[r[ok].astype(np.int64), c[ok].astype(np.int64)]
    return out


def clusters_at_scale(prep: PreparedActors, *, eps_m: float, min_actors: int, **options: Any):
    """Cluster table and per-actor labels of one scale, on prepared actors.

    The one-scale step of :func:`find_microclusters` (which prepares and calls it once)
    and of :func:`~pari_geo.clustering.ladder.ladder` (once per scale on the same
    :class:`PreparedActors`). Returns ``(clusters, labels)``: the GeoDataFrame of
    :func:`find_microclusters` and the int64 cluster id of every actor (``-1`` noise).

    ``options`` are the keywords of :func:`find_microclusters` after the layers; the ones
    left out take their default from :data:`~pari_geo.clustering.options.CLUSTER_DEFAULTS`.
    """
    run = start_scale(prep, eps_m=eps_m, min_actors=min_actors, stacklevel=4, **options)
    return finish_scale(describe_scale(run))


@dataclass
class ScaleRun:
    """One scale on its way from its DBSCAN to its table (:func:`start_scale`).

    ``test`` is the future of the Monte Carlo result ``(p, n_done)``: done already, or
    running in the background; ``rows`` the cluster descriptions once
    :func:`describe_scale` has made them; ``table`` the finished
    ``(clusters, labels)``.
    """

    prep: PreparedActors
    eps_m: float
    min_actors: int
    opts: dict
    labels: np.ndarray
    k: int = 0
    expected: Any = None
    ratio: Any = None
    llr: Any = None
    unit_rate: Any = None
    median_rate: float = np.nan
    test: Any = None
    rows: dict | None = None
    table: tuple | None = None


def start_scale(
    prep: PreparedActors,
    *,
    eps_m: float,
    min_actors: int,
    executor: Any = None,
    drivers: Any = None,
    cancel: Any = None,
    stacklevel: int = 2,
    **options: Any,
) -> ScaleRun:
    """DBSCAN of one scale, its clusters' LLRs and the start of their Monte Carlo test.

    With ``drivers`` (an executor of threads) the test runs there, its simulations in
    ``executor`` (shared by the scales of a ladder), and the caller goes on meanwhile
    (``cancel``, a :class:`threading.Event`, gives it up); without, it runs here with the
    ``n_jobs`` threads of the options. Follow with :func:`describe_scale` and
    :func:`finish_scale`; the table is the same either way.
    """
    import contextvars

    unknown = sorted(set(options) - set(_D))
    if unknown:
        raise TypeError(f"unexpected keyword(s): {', '.join(unknown)}")
    opts = check_cluster_options({**_D, **options, "eps_m": eps_m, "min_actors": min_actors})
    if len(prep.xy) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return ScaleRun(prep, eps_m, min_actors, opts, empty, table=(_empty(prep.crs), empty))
    # the simulations' serial path (the labels of dbscan_labels on one thread): a run then
    # never compiles the parallel kernels (issue 11: compile time of a first run)
    labels, _ = dbscan_xy(np.ascontiguousarray(prep.xy[:, 0]),
                           np.ascontiguousarray(prep.xy[:, 1]), None, float(eps_m),
                           int(min_actors), serial=True)  # fmt: skip
    labels = labels.astype(np.int64)
    k = int(labels.max()) + 1
    run = ScaleRun(prep, eps_m, min_actors, opts, labels, k)
    if k == 0:
        run.table = (_empty(prep.crs), labels)
        return run

    model = prep.null_model(float(opts["null_cell_m"]))
    if model is None:
        run.expected = run.ratio = run.llr = np.full(k, np.nan)
        run.test = _done((np.full(k, np.nan), 0))
        return run
    stuck = int(((prep.actor_unit >= 0) & ~model.free).sum())
    if stuck:
        warnings.warn(
            f"{stuck} actor(s) in a unit lie off the population grid or in a unit that owns "
            "no grid cell: they stay fixed in the null model and count in no unit's rate",
            stacklevel=stacklevel,
        )
    lattice = sig.footprint_lattice(model, float(eps_m))
    n_free, run.expected = sig.footprint_counts(labels, prep.xy, model.free, lattice, eps_m)
    run.llr = sig.poisson_llr(n_free, run.expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        run.ratio = n_free / run.expected
    random_state = opts["random_state"]
    if isinstance(random_state, np.random.Generator):
        # drawn here, in the order of the scales, as one scale after the other draws it
        # (simulation_seeds takes the same integer from it), not by a test's thread
        random_state = int(random_state.integers(0, 2**63 - 1))
    test_kw = dict(eps_m=float(eps_m), min_actors=int(min_actors), n_sim=int(opts["n_sim"]),
                   random_state=random_state, p_method=opts["p_method"],
                   early_stop=opts["early_stop"], pool_size=opts["pool_size"],
                   n_jobs=resolve_threads(opts["n_jobs"]), lattice=lattice)  # fmt: skip
    if drivers is None:
        run.test = _done(sig.monte_carlo_test(prep.xy, model, run.llr, **test_kw))
    else:  # in the background, reporting its progress to this context's listener
        run.test = drivers.submit(contextvars.copy_context().run, sig.monte_carlo_test,
                                  prep.xy, model, run.llr, executor=executor, cancel=cancel,
                                  **test_kw)  # fmt: skip
    run.unit_rate = model.unit_rate_per_resident()
    has_weight = model.unit_residents > 0 if model.basis == "residents" else model.unit_weight > 0
    run.median_rate = float(np.median(run.unit_rate[has_weight])) if has_weight.any() else np.nan
    return run


def _done(result: Any) -> Any:
    """A future that already holds ``result``."""
    from concurrent.futures import Future

    future: Future = Future()
    future.set_result(result)
    return future


def describe_scale(run: ScaleRun) -> ScaleRun:
    """The description of every cluster of a started scale (all but its p- and
    q-values and ``hidden``), while its simulations may still run."""
    if run.table is not None:
        return run
    prep, opts, labels, k = run.prep, run.opts, run.labels, run.k
    eps_m = run.eps_m
    clustered = np.flatnonzero(labels >= 0)
    order = clustered[np.argsort(labels[clustered], kind="stable")]
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    geoms = _footprints(
        [prep.xy[order[bounds[c] : bounds[c + 1]]] for c in range(k)],
        float(eps_m),
        opts["footprint"],
        resolve_threads(opts["n_jobs"]),
    )
    ptype_vals = None
    if prep.ptype is not None:
        ptype_vals = _raster_values(prep.ptype, prep.ptype_transform,
                                    prep.ptype_xy)  # type: ignore[arg-type]
    unit_rate, median_rate = run.unit_rate, run.median_rate
    rows: dict[str, list] = {c: [] for c in CLUSTER_COLUMNS}
    for cid in range(k):
        mem = order[bounds[cid] : bounds[cid + 1]]
        pts = prep.xy[mem]
        rows["cluster_id"].append(cid)
        rows["n_actors"].append(len(mem))
        if prep.sectors is not None:
            vals = [v for v in prep.sectors[mem] if v is not None]
            names, counts = np.unique(np.asarray(vals, dtype=str), return_counts=True)
            rows["sectors"].append(";".join(names.tolist()))
            rows["n_sectors"].append(len(names))
            if len(names):
                share = counts / counts.sum()
                rows["sector_entropy"].append(float(-(share * np.log(share)).sum()) + 0.0)
            else:
                rows["sector_entropy"].append(np.nan)
        else:
            rows["sectors"].append("")
            rows["n_sectors"].append(0)
            rows["sector_entropy"].append(np.nan)
        if prep.social is not None:
            s = prep.social[mem]
            s = s[np.isfinite(s)]
            rows["social_economy_share"].append(float((s != 0).mean()) if len(s) else np.nan)
        else:
            rows["social_economy_share"].append(np.nan)
        geom = geoms[cid]
        rows["geometry"].append(geom)
        rows["area_km2"].append(float(geom.area) / 1e6)
        ext = _extent(pts)
        rows["extent_m"].append(ext)
        mu = prep.actor_unit[mem]
        mu_in = mu[mu >= 0]
        distinct = np.unique(mu_in)
        if prep.unit_ids is not None:
            rows["unit_ids"].append(";".join(sorted(prep.unit_ids[distinct].tolist())))
            rows["n_units"].append(len(distinct))
        else:
            rows["unit_ids"].append("")
            rows["n_units"].append(0)
        dom: Any = pd.NA
        if ptype_vals is not None:
            pv = ptype_vals[mem]
            pv = pv[np.isfinite(pv)].astype(np.int64)
            if len(pv):
                codes, cnt = np.unique(pv, return_counts=True)
                dom = int(codes[np.argmax(cnt)])
        rows["dominant_place_type"].append(dom)
        rows["residents"].append(
            _footprint_residents(geom, prep.pop, prep.pop_transform)
            if prep.pop is not None
            else np.nan
        )
        rows["expected"].append(float(run.expected[cid]))
        rows["ratio"].append(float(run.ratio[cid]))
        rows["llr"].append(float(run.llr[cid]))
        ordinary = False
        if unit_rate is not None and len(mu_in):
            ucodes, ucnt = np.unique(mu_in, return_counts=True)
            main = int(ucodes[np.argmax(ucnt)])
            r = unit_rate[main]
            ordinary = bool(np.isfinite(r) and r <= median_rate)
        rows["ordinary_unit"].append(ordinary)
        rows["rung"].append(
            rung_of(
                distinct,
                regions=prep.regions,
                countries=prep.countries,
                extent_m=ext,
                n_actors=len(mem),
                micro_max_extent_m=float(opts["micro_max_extent_m"]),
                micro_max_actors=int(opts["micro_max_actors"]),
            )
        )
    run.rows = rows
    return run


def finish_scale(run: ScaleRun) -> tuple[Any, np.ndarray]:
    """The ``(clusters, labels)`` of a described scale, once its Monte Carlo test is done:
    its p-values, Benjamini-Hochberg q-values over the scale and ``hidden`` flags."""
    import geopandas as gpd

    if run.table is not None:
        return run.table
    assert run.rows is not None, "describe_scale comes first"
    p, _ = run.test.result()
    q = sig.benjamini_hochberg(p)  # NaN where p is (no null model)
    rows, alpha = run.rows, run.opts["alpha"]
    rows["p_value"] = [float(v) for v in p]
    rows["q_value"] = [float(v) for v in q]
    rows["hidden"] = [bool(o and np.isfinite(v) and v <= alpha)
                      for o, v in zip(rows["ordinary_unit"], q, strict=True)]  # fmt: skip
    data = {}
    for col, dtype in CLUSTER_COLUMNS.items():
        if col == "geometry":
            data[col] = gpd.GeoSeries(rows[col], crs=run.prep.crs)
        else:
            data[col] = pd.Series(rows[col], dtype=dtype)
    run.table = (gpd.GeoDataFrame(data, geometry="geometry", crs=run.prep.crs), run.labels)
    return run.table

def find_microclusters(
    actors: Any,
    *,
    eps_m: float,
    min_actors: int,
    units: Any = None,
    unit_id: str | None = None,
    region_col: str | None = None,
    country_col: str | None = None,
    population: Any = None,
    place_types: Any = None,
    sector_col: str | None = None,
    social_col: str | None = None,
    n_sim: int = _D["n_sim"],
    alpha: float = _D["alpha"],
    random_state: Any = _D["random_state"],
    micro_max_extent_m: float = _D["micro_max_extent_m"],
    micro_max_actors: int = _D["micro_max_actors"],
    footprint: str = _D["footprint"],
    null_cell_m: float = _D["null_cell_m"],
    p_method: str = _D["p_method"],
    early_stop: int | None = _D["early_stop"],
    pool_size: int | None = _D["pool_size"],
    n_jobs: int = _D["n_jobs"],
) -> gpd.GeoDataFrame:
    """Find clusters of actors, describe them and test whether they hide in their unit.

    Actors are clustered with exact DBSCAN (``eps_m``, ``min_samples=min_actors``); every
    cluster is described (sectors, footprint, extent, units, place type, residents), tested
    against a null model that spreads each unit's actors in proportion to its residents
    (Monte Carlo p-value, Benjamini-Hochberg q-value, ``hidden`` flag) and given its rung on
    the Cluster Ladder.

    Parameters
    ----------
    actors : geopandas.GeoDataFrame
        One row per actor. Points; polygons and lines become a point on their surface
        (``point_on_surface``). A geographic CRS is reprojected to the CRS of the population
        grid, else of the units, else of the place types; with none of them projected an
        :class:`~pari_geo.errors.InputError` names a projected CRS to use. A projected
        ``actors`` CRS is kept unless a population grid is given (then the grid's CRS is the
        working CRS). Missing or empty geometries raise ``InputError``.
    eps_m : float
        DBSCAN radius in metres (inclusive).
    min_actors : int
        DBSCAN ``min_samples``: actors within ``eps_m`` (itself included) that make a core
        actor.
    units : geopandas.GeoDataFrame or path, optional
        Administrative units (municipalities), read with :func:`pari_geo.ingest.open_units`.
        Actors are assigned to the unit they intersect (on a shared border: the first unit).
    unit_id : str, optional
        Id column of ``units`` (default: the index).
    region_col, country_col : str, optional
        Columns of ``units`` naming each unit's region and country (for the ladder rung).
    population : xarray.DataArray or path, optional
        Residents per cell of a projected, north-up grid (rioxarray CRS and transform).
    place_types : xarray.DataArray or path, optional
        Place-type codes (e.g. from :func:`pari_geo.classify_nordic7`; 255 = no class).
    sector_col : str, optional
        Column with each actor's sector. Missing sectors are left out of ``sectors``,
        ``n_sectors`` and ``sector_entropy``.
    social_col : str, optional
        Column flagging social-economy actors (truthy = yes; missing values are left out).
    n_sim : int, default=999
        Largest number of Monte Carlo simulations of the null model (at most
        :data:`~pari_geo.clustering.options.MAX_SIMULATIONS`). ``0`` skips them:
        ``p_value`` and ``q_value`` are NaN and ``hidden`` is False.
    alpha : float, default=0.05
        False discovery rate of ``hidden`` (Benjamini-Hochberg level), in (0, 1).
    random_state : int >= 0, numpy Generator or None, default=0
        Seeds the simulations (one independent stream per simulation); the same seed
        gives identical output whatever ``n_jobs``.
    micro_max_extent_m, micro_max_actors : default 5000 and 50
        Largest extent and size of a ``micro`` cluster (larger single-unit clusters are
        ``municipal``).
    footprint : {"discs", "hull"}, default="discs"
        Cluster *geometry* drawn and reported: the union of discs of radius ``eps_m / 2``
        around the members (its pieces touch exactly where members are within ``eps_m``;
        for clusters of more than 500 members, around the members snapped to a grid of
        ``eps_m / 32``, coarser when they spread over a large area),
        or their convex hull (a hull of collinear or coincident members is buffered by
        ``eps_m / 2``). The test's footprint is always the region within ``eps_m`` of a
        member (see Notes).
    null_cell_m : float, default=1000
        Cell side of the area grid of the null model when there is no population grid.
    p_method : {"pooled", "max"}, default="pooled"
        Monte Carlo p-value: against the LLRs of all simulated clusters pooled over the
        simulations (calibrated per cluster, so Benjamini-Hochberg controls the false
        discovery rate), or against each simulation's largest LLR (family-wise error
        control: conservative, smallest p ``1 / (n_sim + 1)``, and set by the largest town
        clusters). See :mod:`pari_geo.clustering.significance`.
    early_stop : int or None, default=20
        Sequential Monte Carlo (Besag-Clifford): stop once every cluster's LLR has been
        reached this many times by simulated values; 0 or None runs on. Scales without a
        standing-out cluster then cost a few simulations; p-values stay valid.
    pool_size : int or None, default=10000
        With ``p_method="pooled"``: stop once this many simulated clusters have been
        drawn (p-values resolve to ``1 / (pool_size + 1)``); 0 or None runs all ``n_sim``.
    n_jobs : int, default=-1
        Threads for the simulations (-1: all cores). The result does not depend on it.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per cluster, ordered by ``cluster_id``, with the columns and dtypes of
        :data:`CLUSTER_COLUMNS`:

        - ``cluster_id`` (int64): the DBSCAN label (see :func:`label_actors`).
        - ``n_actors``; ``sectors`` (sorted distinct sectors joined by ``;``);
          ``n_sectors``; ``sector_entropy`` (Shannon entropy of the members' sector
          shares, in nats; NaN without sectors); ``social_economy_share`` (share of
          flagged members; NaN without ``social_col``).
        - ``geometry`` (see ``footprint``), ``area_km2``, ``extent_m`` (largest distance
          between two members, on the convex-hull vertices).
        - ``unit_ids`` (ids of the units holding members, sorted, ``;``-joined; empty
          without units), ``n_units``, ``dominant_place_type`` (Int64: the most frequent
          place-type code of the members' cells, ties to the lowest code; ``<NA>`` without
          place types), ``residents`` (residents of the footprint geometry: each
          population cell counts with the share of its area inside the footprint: exact on
          up to 16 cells, measured on 4 x 4 to 64 x 64 sub-cells beyond; NaN without
          population).
        - ``expected`` (expected actors under the null in the cluster's footprint: the
          region within ``eps_m`` of a member), ``ratio`` (free members / expected; ``inf``
          when nothing is expected there, NaN for a cluster without free members), ``llr``
          (Poisson log-likelihood ratio of the excess), ``p_value`` (Monte Carlo, see
          ``p_method``; never NaN when ``n_sim > 0``), ``q_value`` (BH across the clusters
          of this call), ``ordinary_unit`` (the cluster's unit has an actor rate at or
          below the median of the units), ``hidden`` (``q_value <= alpha`` and
          ``ordinary_unit``) and ``rung`` (str). See
          :mod:`pari_geo.clustering.significance` and :mod:`pari_geo.clustering.ladder`.

    Raises
    ------
    InputError
        Bad actors (not a GeoDataFrame, no CRS, geographic CRS with nothing projected to
        reproject to, missing/empty geometries, a missing column) or bad units/rasters.
    ConfigError
        An invalid option (``eps_m <= 0``, ``min_actors < 1``, ``footprint`` ...).

    Notes
    -----
    *Null model and statistic*: see :mod:`pari_geo.clustering.significance`. ``expected``
    is the exact expected count, under the null model, of the region within ``eps_m`` of a
    member (measured on a lattice of about ``eps_m / 4`` aligned with the grid), the same
    for observed and simulated clusters, so that it does not depend on the cells the
    members happen to fall in nor on the grid's cell size; ``residents`` describes the
    drawn geometry and is not used in the test.

    *hidden* is ``q_value <= alpha`` and the actor rate per resident of the cluster's unit
    (the unit holding most members; ties: the first unit) is at or below the median rate of
    all units with residents (per km² of the area null without population). Without units
    the whole population grid is one unit. Without units and population there is no null
    model: ``expected``, ``ratio``, ``llr``, ``p_value`` and ``q_value`` are NaN.

    *Edge cases*: no actors, or no cluster, gives an empty GeoDataFrame with every column
    and dtype. Actors outside every unit are clustered but stay fixed in the simulations
    and count neither in a unit rate nor in ``expected`` and the statistic (a warning says
    how many); a cluster of such actors only has ``ratio`` NaN and ``p_value`` 1. A unit
    without residents spreads its actors uniformly over its cells in the null model and has
    an infinite rate per resident (never ``hidden``). Duplicate locations count as separate
    actors (a point with ``min_actors`` actors is a cluster of extent 0).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> pts = [Point(0, 0), Point(100, 0), Point(0, 100), Point(9000, 0)]
    >>> actors = gpd.GeoDataFrame(geometry=pts, crs="EPSG:3006")
    >>> out = find_microclusters(actors, eps_m=150, min_actors=3, n_sim=0)
    >>> out[["cluster_id", "n_actors", "extent_m", "rung", "hidden"]]
       cluster_id  n_actors    extent_m   rung  hidden
    0           0         3  141.421356  micro   False
    """
    prep = prepare_actors(
        actors,
        units=units,
        unit_id=unit_id,
        region_col=region_col,
        country_col=country_col,
        population=population,
        place_types=place_types,
        sector_col=sector_col,
        social_col=social_col,
    )
    out, _ = clusters_at_scale(
        prep,
        eps_m=eps_m,
        min_actors=min_actors,
        n_sim=n_sim,
        alpha=alpha,
        random_state=random_state,
        micro_max_extent_m=micro_max_extent_m,
        micro_max_actors=micro_max_actors,
        footprint=footprint,
        null_cell_m=null_cell_m,
        p_method=p_method,
        early_stop=early_stop,
        pool_size=pool_size,
        n_jobs=n_jobs,
    )
    out.attrs["eps_m"] = float(eps_m)  # the scale, for the .pari summary
    return out


def label_actors(actors: Any, *, eps_m: float, min_actors: int, **options: Any) -> pd.Series:
    """Cluster id of every actor (``-1`` = in no cluster), as in :func:`find_microclusters`.

    Takes the same keywords as :func:`find_microclusters` so one option dict serves both;
    only ``eps_m``, ``min_actors`` and the layers that fix the working CRS (``units``,
    ``population``, ``place_types``) matter. The ids equal ``cluster_id`` of
    ``find_microclusters`` with the same options.

    Returns
    -------
    pandas.Series
        int64, named ``cluster_id``, indexed like ``actors``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> actors = gpd.GeoDataFrame(geometry=[Point(0, 0), Point(0, 50), Point(900, 0)],
    ...                           index=["a", "b", "c"], crs="EPSG:3006")
    >>> label_actors(actors, eps_m=100, min_actors=2)
    a    0
    b    0
    c   -1
    Name: cluster_id, dtype: int64
    """
    import inspect

    known = set(inspect.signature(find_microclusters).parameters) - {"actors"}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"label_actors() got unexpected keyword(s): {', '.join(sorted(unknown))}")
    check_cluster_options({"eps_m": eps_m, "min_actors": min_actors})
    prep_keys = {"units", "unit_id", "population", "place_types"}
    prep = prepare_actors(actors, **{k: v for k, v in options.items() if k in prep_keys})
    if len(prep.xy) == 0:
        return pd.Series([], index=prep.index, dtype="int64", name="cluster_id")
    from .estimator import dbscan_labels  # scikit-learn's validation, loaded when used

    labels, _ = dbscan_labels(prep.xy, float(eps_m), int(min_actors), n_jobs=1)
    return pd.Series(labels.astype(np.int64), index=prep.index, name="cluster_id")
