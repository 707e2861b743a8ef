"""Hidden-cluster significance: a cell-based null model, Monte Carlo p-values and BH q-values.

The question (design ``clustering.md`` section 3): does a cluster of actors stand out against
its own administrative unit? The **null model** places each unit's actors in proportion to the
unit's residents: a unit's actors fall into its population-grid cells with probabilities
proportional to the cells' residents (a multinomial draw), then uniformly within the cell.
Without a population grid the null model is uniform in land area (an internal grid of
``null_cell_m`` cells covering the units, every cell weighted by its area).

Cells belong to the unit that contains their centre. A unit whose cells hold no residents
falls back to the area null inside its own cells. An actor takes part in the null model
(it is *free*) when it lies in a unit that owns at least one cell and on the grid; other
actors (outside every unit, off the grid, or in a unit too small to own a cell centre) stay
*fixed* at their observed location in every simulation, still help DBSCAN form clusters, and
count neither in a unit's rate nor in a cluster's observed or expected count.

**Statistic.** For a cluster with ``n`` free members, the footprint at grid resolution is
the set of grid cells that hold those members, and the expected count is

    e = sum over those cells of (actor rate per resident of the cell's unit
                                 x residents of the cell),

which is exactly the expected number of actors in those cells under the null model. The
excess is measured by the Poisson log-likelihood ratio (Kulldorff's scan statistic)

    LLR = n log(n / e) - (n - e)   if n > e, else 0.

A plain ratio ``n / e`` explodes for tiny ``e`` (one actor in an empty rural cell) and a plain
difference ``n - e`` favours big town clusters; the LLR is the likelihood-ratio test of
"rate inside = rate of the unit" for a Poisson count, whose null distribution hardly depends
on ``e``, so a small rural cluster and a large town cluster are judged on the same scale.

**Calibration.** DBSCAN *selects* clusters where actors are dense, so a Poisson p-value of a
selected cluster is far too small. Each simulation redistributes every unit's free actors
under the null, reruns the same DBSCAN and scores every simulated cluster. Two p-values:

- ``p_method="max"`` (default, the design): ``(1 + #{simulations whose largest LLR >= the
  cluster's LLR}) / (n_sim + 1)``. This max-statistic p-value controls the family-wise
  error over all clusters of a run; it is valid (conservative) for each cluster, but its
  smallest value is ``1 / (n_sim + 1)``, so Benjamini-Hochberg over ``K`` clusters can only
  reach ``q <= alpha`` when enough clusters are extreme (``K / (n_sim + 1) <= alpha`` for
  a single one).
- ``p_method="pooled"``: ``(1 + #{simulated clusters with LLR >= the cluster's LLR}) /
  (1 + #{simulated clusters})``, pooling the clusters of all simulations. Under the null an
  observed cluster is exchangeable with a simulated one, so this p-value is calibrated per
  cluster (uniform over the clusters DBSCAN selects) and BH on it controls the false
  discovery rate; it is less conservative than the max-statistic.

Benjamini-Hochberg q-values are computed across the clusters of a run either way.

Examples
--------
>>> import numpy as np
>>> poisson_llr(np.array([10, 2, 5]), np.array([2.0, 4.0, 0.0]))
array([8.09437912, 0.        ,        inf])
>>> benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5]))
array([0.04      , 0.05333333, 0.05333333, 0.5       ])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "NullModel",
    "build_null_model",
    "poisson_llr",
    "cluster_counts",
    "simulate_max_llr",
    "iter_simulations",
    "monte_carlo_test",
    "monte_carlo_pvalues",
    "benjamini_hochberg",
]


@dataclass(frozen=True)
class NullModel:
    """The cell-based null model of one run (see the module docstring).

    Attributes
    ----------
    x0, y0 : float
        Upper-left corner of the grid (north-up).
    cell_w, cell_h : float
        Cell width and height in metres (both positive).
    shape : (rows, cols)
    basis : {"residents", "area"}
        What cells are weighted by.
    cell_unit : ndarray of int64, shape (rows * cols,)
        Position of the unit owning each cell (centre inside), ``-1`` for none.
    cell_expected : ndarray of float64, shape (rows * cols,)
        Expected actors per cell under the null (unit rate x cell weight).
    cell_residents : ndarray of float64, shape (rows * cols,)
        Residents per cell (zeros on the area basis).
    free : ndarray of bool, shape (n_actors,)
        Actors that are redistributed in simulations.
    actor_cell : ndarray of int64, shape (n_actors,)
        Cell of each actor, ``-1`` off the grid.
    actor_unit : ndarray of int64, shape (n_actors,)
        Unit of each actor (position), ``-1`` outside every unit.
    unit_actors : ndarray of int64, shape (n_units,)
        Free actors per unit (the numerator of the unit rate).
    unit_weight : ndarray of float64, shape (n_units,)
        Sampling weight of each unit (residents, or km² on the area basis or fallback).
    unit_residents : ndarray of float64, shape (n_units,)
        Residents of each unit's cells (NaN on the area basis).
    samp_cells, samp_cum, seg_start, seg_end, actor_seg, free_order
        Concatenated per-unit sampling tables: the cells with positive weight of each unit,
        their cumulative normalised weights shifted by the unit's segment rank, segment
        bounds; the free actors' indices ordered by segment (``free_order``) and their
        segments (``actor_seg``, non-decreasing).
    """

    x0: float
    y0: float
    cell_w: float
    cell_h: float
    shape: tuple[int, int]
    basis: str
    cell_unit: np.ndarray
    cell_expected: np.ndarray
    cell_residents: np.ndarray
    free: np.ndarray
    actor_cell: np.ndarray
    actor_unit: np.ndarray
    unit_actors: np.ndarray
    unit_weight: np.ndarray
    unit_residents: np.ndarray
    samp_cells: np.ndarray
    samp_cum: np.ndarray
    seg_start: np.ndarray
    seg_end: np.ndarray
    actor_seg: np.ndarray
    free_order: np.ndarray

    @property
    def n_cells(self) -> int:
        """Number of grid cells."""
        return int(self.shape[0] * self.shape[1])

    def unit_rate_per_resident(self) -> np.ndarray:
        """Free actors per resident of each unit (per km² on the area basis).

        ``inf`` for a unit with actors and no residents, NaN for a unit with neither.
        """
        denom = self.unit_residents if self.basis == "residents" else self.unit_weight
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.unit_actors / denom

    def sample(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Place the free actors once under the null.

        Parameters
        ----------
        u : ndarray of shape (n_free, 3)
            Uniform numbers in [0, 1): cell choice, then x and y inside the cell.

        Returns
        -------
        cells, x, y : ndarrays of shape (n_free,)
            The new places of the actors ``free_order`` (actors of one unit are
            exchangeable, so the draws are sorted, which makes the cell look-up faster).
        """
        v = np.sort(self.actor_seg + u[:, 0])
        pos = np.searchsorted(self.samp_cum, v, side="right")
        pos = np.clip(pos, self.seg_start[self.actor_seg], self.seg_end[self.actor_seg] - 1)
        cells = self.samp_cells[pos]
        rows, cols = np.divmod(cells, self.shape[1])
        x = self.x0 + (cols + u[:, 1]) * self.cell_w
        y = self.y0 - (rows + u[:, 2]) * self.cell_h
        return cells, x, y


def _cells_of(xy: np.ndarray, x0: float, y0: float, cw: float, ch: float, shape) -> np.ndarray:
    """Flat cell index of each point, -1 off the grid."""
    rows, cols = shape
    c = np.floor((xy[:, 0] - x0) / cw)
    r = np.floor((y0 - xy[:, 1]) / ch)
    inside = (c >= 0) & (c < cols) & (r >= 0) & (r < rows)
    out = np.full(len(xy), -1, dtype=np.int64)
    out[inside] = r[inside].astype(np.int64) * cols + c[inside].astype(np.int64)
    return out


def _rasterize_units(geoms, transform, shape) -> np.ndarray:
    """Unit position (0..k-1) owning each cell by its centre; -1 for none."""
    from rasterio.features import rasterize

    if len(geoms) == 0:
        return np.full(shape[0] * shape[1], -1, dtype=np.int64)
    burned = rasterize(
        ((g, i + 1) for i, g in enumerate(geoms)),
        out_shape=shape,
        transform=transform,
        fill=0,
        all_touched=False,
        dtype="int32",
    )
    return burned.ravel().astype(np.int64) - 1


def build_null_model(
    xy: np.ndarray,
    actor_unit: np.ndarray,
    unit_geoms,
    *,
    population: np.ndarray | None = None,
    transform=None,
    null_cell_m: float = 1000.0,
) -> NullModel | None:
    """Build the cell-based null model of a run.

    Parameters
    ----------
    xy : ndarray of shape (n, 2)
        Actor coordinates in the working CRS (metres).
    actor_unit : ndarray of int64, shape (n,)
        Unit position of each actor, ``-1`` outside every unit. Without units pass zeros
        and ``unit_geoms=None``: the whole grid is then one unit.
    unit_geoms : sequence of shapely geometries or None
        Unit polygons in the working CRS, in unit-position order.
    population : ndarray of shape (rows, cols), optional
        Residents per cell (NaN = none) on the grid ``transform``.
    transform : affine.Affine, optional
        Grid of ``population`` (north-up).
    null_cell_m : float, default=1000
        Cell side of the internal area grid when there is no population grid.

    Returns
    -------
    NullModel or None
        None when there is neither a population grid nor units (no null model).

    Examples
    --------
    One unit on a 1 x 2 grid of 1 km cells with 10 and 30 residents, 4 actors:

    >>> import numpy as np
    >>> from affine import Affine
    >>> xy = np.array([[100.0, 500.0], [200.0, 500.0], [1500.0, 500.0], [1600.0, 500.0]])
    >>> m = build_null_model(xy, np.zeros(4, dtype=np.int64), None,
    ...                      population=np.array([[10.0, 30.0]]),
    ...                      transform=Affine(1000, 0, 0, 0, -1000, 1000))
    >>> m.unit_rate_per_resident(), m.cell_expected, m.actor_cell
    (array([0.1]), array([1., 3.]), array([0, 0, 1, 1]))
    """
    from affine import Affine

    if population is not None:
        pop = np.where(np.isfinite(population), population, 0.0).astype(np.float64)
        shape = (int(pop.shape[0]), int(pop.shape[1]))
        t = transform
        basis = "residents"
    elif unit_geoms is not None and len(unit_geoms) > 0:
        import shapely

        xmin, ymin, xmax, ymax = shapely.total_bounds(np.asarray(unit_geoms, dtype=object))
        s = float(null_cell_m)
        left, top = np.floor(xmin / s) * s, np.ceil(ymax / s) * s
        cols = max(1, int(np.ceil((xmax - left) / s)))
        rows = max(1, int(np.ceil((top - ymin) / s)))
        if rows * cols > 50_000_000:
            raise ValueError(
                f"null_cell_m={s:g} gives {rows * cols} cells over the units; use a larger value"
            )
        shape = (rows, cols)
        t = Affine(s, 0.0, left, 0.0, -s, top)
        pop = None
        basis = "area"
    else:
        return None

    ncell = shape[0] * shape[1]
    cw, ch = float(t.a), float(-t.e)
    if unit_geoms is None:
        cell_unit = np.zeros(ncell, dtype=np.int64)
        n_units = 1
    else:
        cell_unit = _rasterize_units(list(unit_geoms), t, shape)
        n_units = len(unit_geoms)
    area_km2 = cw * ch / 1e6
    owned = cell_unit >= 0
    if basis == "residents":
        unit_residents = np.bincount(
            cell_unit[owned], weights=pop.ravel()[owned], minlength=n_units
        ).astype(np.float64)
    else:
        unit_residents = np.full(n_units, np.nan)
    # sampling weight per cell: residents, or the cell area in units without residents
    if basis == "residents":
        weight = pop.ravel().copy()
        no_res = unit_residents <= 0
        fallback = owned & no_res[np.where(owned, cell_unit, 0)]
        weight[fallback] = area_km2
    else:
        weight = np.full(ncell, area_km2)
    weight[~owned] = 0.0
    unit_weight = np.bincount(cell_unit[owned], weights=weight[owned], minlength=n_units)

    actor_cell = _cells_of(xy, t.c, t.f, cw, ch, shape)
    au = np.asarray(actor_unit, dtype=np.int64)
    free = (au >= 0) & (actor_cell >= 0)
    free &= unit_weight[np.where(au >= 0, au, 0)] > 0
    unit_actors = np.bincount(au[free], minlength=n_units).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit_rate = np.where(unit_weight > 0, unit_actors / unit_weight, 0.0)
    cell_expected = np.where(owned, unit_rate[np.where(owned, cell_unit, 0)] * weight, 0.0)
    cell_residents = pop.ravel().copy() if basis == "residents" else np.zeros(ncell)

    # sampling tables: units with free actors, their cells of positive weight
    active = np.flatnonzero(unit_actors > 0)
    seg_of_unit = np.full(n_units, -1, dtype=np.int64)
    seg_of_unit[active] = np.arange(len(active))
    pos_cells = np.flatnonzero(owned & (weight > 0) & np.isin(cell_unit, active))
    order = np.lexsort((pos_cells, seg_of_unit[cell_unit[pos_cells]]))
    samp_cells = pos_cells[order]
    seg = seg_of_unit[cell_unit[samp_cells]]
    w = weight[samp_cells]
    seg_start = np.searchsorted(seg, np.arange(len(active)), side="left")
    seg_end = np.searchsorted(seg, np.arange(len(active)), side="right")
    cum = np.cumsum(w)
    base = np.concatenate([[0.0], cum])[seg_start]
    tot = np.add.reduceat(w, seg_start) if len(w) else np.zeros(0)
    samp_cum = seg + (cum - base[seg]) / tot[seg] if len(w) else np.zeros(0)
    free_idx = np.flatnonzero(free)
    actor_seg = seg_of_unit[au[free_idx]]
    by_seg = np.argsort(actor_seg, kind="stable")
    free_order, actor_seg = free_idx[by_seg], actor_seg[by_seg]

    return NullModel(
        x0=float(t.c),
        y0=float(t.f),
        cell_w=cw,
        cell_h=ch,
        shape=shape,
        basis=basis,
        cell_unit=cell_unit,
        cell_expected=cell_expected,
        cell_residents=cell_residents,
        free=free,
        actor_cell=actor_cell,
        actor_unit=au,
        unit_actors=unit_actors,
        unit_weight=unit_weight,
        unit_residents=unit_residents,
        samp_cells=samp_cells.astype(np.int64),
        samp_cum=samp_cum.astype(np.float64),
        seg_start=seg_start.astype(np.int64),
        seg_end=seg_end.astype(np.int64),
        actor_seg=actor_seg.astype(np.int64),
        free_order=free_order.astype(np.int64),
    )


def poisson_llr(n: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Poisson log-likelihood ratio of an excess: ``n log(n/e) - (n - e)`` if ``n > e``.

    Zero when ``n <= e`` (no excess), ``inf`` when ``n > 0`` and ``e == 0``.

    Examples
    --------
    >>> round(float(poisson_llr(np.array([4]), np.array([1.0]))[0]), 6)  # 4 log 4 - 3
    2.545177
    """
    n = np.asarray(n, dtype=np.float64)
    e = np.asarray(e, dtype=np.float64)
    out = np.zeros(np.broadcast(n, e).shape)
    pos = n > e
    with np.errstate(divide="ignore", invalid="ignore"):
        val = n * np.log(n / e) - (n - e)
    out[pos] = val[pos]
    return out


def cluster_counts(
    labels: np.ndarray, free: np.ndarray, cells: np.ndarray, cell_expected: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Free members ``n`` and expected count ``e`` of every cluster of ``labels``.

    ``e`` sums the expected actors of the distinct cells holding the cluster's free
    members, so ``n`` and ``e`` refer to the same footprint.

    Examples
    --------
    >>> labels = np.array([0, 0, 0, 1, 1, -1])
    >>> free = np.array([True, True, False, True, True, True])
    >>> cells = np.array([0, 0, 1, 2, 3, 3])
    >>> cluster_counts(labels, free, cells, np.array([0.5, 9.0, 1.0, 2.0]))
    (array([2, 2]), array([0.5, 3. ]))
    """
    k = int(labels.max()) + 1 if len(labels) else 0
    m = free & (labels >= 0)
    lab = labels[m].astype(np.int64)
    c = cells[m]
    ncell = np.int64(len(cell_expected))
    n = np.bincount(lab, minlength=k)
    key = np.unique(lab * ncell + c)
    e = np.bincount(key // ncell, weights=cell_expected[key % ncell], minlength=k)
    return n, e


def simulate_max_llr(
    xy: np.ndarray,
    model: NullModel,
    *,
    eps_m: float,
    min_actors: int,
    n_sim: int,
    rng: np.random.Generator,
    return_pool: bool = False,
):
    """Largest cluster LLR in each of ``n_sim`` simulations of the null model.

    Each simulation draws all free actors at once (one ``rng.random((n_free, 3))`` call:
    cell by inverse CDF within the actor's unit, then a uniform position inside the cell),
    leaves fixed actors in place, reruns :func:`pari_geo.clustering.dbscan` with the same
    ``eps_m`` and ``min_actors`` (single-threaded; its result does not depend on threads)
    and scores the simulated clusters with :func:`cluster_counts` and :func:`poisson_llr`.

    Returns
    -------
    sim_max : ndarray of shape (n_sim,)
        Largest LLR per simulation (0 for a simulation without clusters).
    pool : ndarray
        Only with ``return_pool=True``: the LLR of every simulated cluster, a simulation
        without clusters counting as one cluster without excess (LLR 0).
    """
    out = np.zeros(n_sim)
    pool: list[np.ndarray] = []
    for s, llr in enumerate(iter_simulations(xy, model, eps_m, min_actors, n_sim, rng)):
        out[s] = llr.max()
        if return_pool:
            pool.append(llr)
    if return_pool:
        return out, np.concatenate(pool) if pool else np.zeros(n_sim)
    return out


def iter_simulations(xy, model: NullModel, eps_m: float, min_actors: int, n_sim: int, rng):
    """Yield the LLRs of the simulated clusters of each of ``n_sim`` null simulations.

    A simulation without clusters, or a model without free actors, yields ``[0.0]``.
    """
    from .estimator import dbscan_labels

    free_idx = model.free_order
    zero = np.zeros(1)
    if len(free_idx) == 0:
        for _ in range(n_sim):
            yield zero
        return
    sim_xy = np.array(xy, dtype=np.float64, copy=True)
    cells = model.actor_cell.copy()
    for _ in range(n_sim):
        u = rng.random((len(free_idx), 3))
        c, x, y = model.sample(u)
        sim_xy[free_idx, 0] = x
        sim_xy[free_idx, 1] = y
        cells[free_idx] = c
        labels, _ = dbscan_labels(sim_xy, eps_m, min_actors, n_jobs=1)
        if labels.max() < 0:
            yield zero
            continue
        n, e = cluster_counts(labels, model.free, cells, model.cell_expected)
        yield poisson_llr(n, e)


def monte_carlo_test(
    xy: np.ndarray,
    model: NullModel,
    observed: np.ndarray,
    *,
    eps_m: float,
    min_actors: int,
    n_sim: int,
    rng: np.random.Generator,
    p_method: str = "max",
    early_stop: int | None = None,
) -> tuple[np.ndarray, int]:
    """Monte Carlo p-values of the observed cluster LLRs (see the module docstring).

    Parameters
    ----------
    xy, model, eps_m, min_actors, rng
        As for :func:`simulate_max_llr`.
    observed : ndarray of shape (k,)
        LLR of each observed cluster.
    n_sim : int
        Largest number of simulations.
    p_method : {"max", "pooled"}
        Compare with each simulation's largest LLR or with every simulated cluster's LLR.
    early_stop : int, optional
        Sequential Monte Carlo (Besag & Clifford 1991): a cluster whose LLR has been
        reached or exceeded ``early_stop`` times after ``L`` reference draws (simulations
        for "max", simulated clusters for "pooled") gets ``p = exceedances / L``; the
        simulations stop as soon as every cluster is there. Clusters that never get there
        keep ``(1 + exceedances) / (1 + draws)``. Saves nearly all simulations at scales
        where no cluster stands out; strong clusters still get all ``n_sim``.

    Returns
    -------
    p : ndarray of shape (k,)
        NaN everywhere when ``n_sim == 0``.
    n_done : int
        Simulations run.

    Examples
    --------
    >>> import numpy as np
    >>> from pari_geo.clustering.significance import build_null_model, monte_carlo_test
    >>> xy = np.array([[100.0, 100.0]] * 3 + [[900.0, 900.0]])
    >>> model = build_null_model(xy, np.zeros(4, dtype=np.int64), None,
    ...                          population=np.ones((2, 2)),
    ...                          transform=__import__("affine").Affine(500, 0, 0, 0, -500, 1000))
    >>> p, done = monte_carlo_test(xy, model, np.array([0.0]), eps_m=10, min_actors=3,
    ...                            n_sim=99, rng=np.random.default_rng(0), early_stop=5)
    >>> p.tolist(), done
    ([1.0], 5)
    """
    observed = np.asarray(observed, dtype=np.float64)
    k = len(observed)
    if n_sim == 0:
        return np.full(k, np.nan), 0
    ge = np.zeros(k)
    draws = 0
    stop_p = np.full(k, np.nan)
    n_done = 0
    for llr in iter_simulations(xy, model, eps_m, min_actors, n_sim, rng):
        n_done += 1
        if p_method == "max":
            ge += llr.max() >= observed
            draws += 1
        else:
            srt = np.sort(llr)
            ge += len(srt) - np.searchsorted(srt, observed, side="left")
            draws += len(srt)
        if early_stop is not None:
            newly = np.isnan(stop_p) & (ge >= early_stop)
            stop_p[newly] = ge[newly] / draws
            if not np.isnan(stop_p).any():
                break
    p = (1.0 + ge) / (1.0 + draws)
    done = ~np.isnan(stop_p)
    p[done] = np.minimum(stop_p[done], 1.0)
    return p, n_done


def monte_carlo_pvalues(observed: np.ndarray, sim_max: np.ndarray) -> np.ndarray:
    """``(1 + #{sim_max >= observed}) / (n_sim + 1)`` per observed statistic.

    NaN for every cluster when there are no simulations.

    Examples
    --------
    >>> monte_carlo_pvalues(np.array([5.0, 0.0]), np.array([1.0, 2.0, 6.0]))
    array([0.5, 1. ])
    """
    observed = np.asarray(observed, dtype=np.float64)
    if len(sim_max) == 0:
        return np.full(observed.shape, np.nan)
    srt = np.sort(np.asarray(sim_max, dtype=np.float64))
    ge = len(srt) - np.searchsorted(srt, observed, side="left")
    return (1.0 + ge) / (len(srt) + 1.0)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values (step-up, monotone, capped at 1); NaN stays NaN.

    Examples
    --------
    >>> benjamini_hochberg(np.array([0.02, np.nan, 0.02]))
    array([0.02,  nan, 0.02])
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return q
    order = ok[np.argsort(p[ok], kind="stable")]
    ranked = p[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    q[order] = np.minimum(ranked, 1.0)
    return q
