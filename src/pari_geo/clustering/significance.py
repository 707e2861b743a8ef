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

**Footprint.** A cluster's footprint is the region DBSCAN searched around it: every square
of a lattice aligned with the grid (sides of about ``eps / 4``: cells split, or grouped)
whose centre lies within ``eps`` of the centre of a square holding a member
(:func:`footprint_lattice`, :func:`footprint_counts`). It depends on the cluster's reach, not
on which cells its members happen to fall in, and is measured the same way for observed and
simulated clusters. Its expected count is exact for that region under the null model,

    e = sum over footprint squares of (expected actors of the square's cell
                                       x the square's share of the cell),

so that under the null ``n / e`` is about 1 for large clusters at 100 m, 250 m or 1 km
cells alike (summing only the cells holding members, the former rule, left the cells
between members out and made every large cluster look like an excess at fine grids).
``n`` counts the cluster's free members.

**Statistic.** The signed Poisson log-likelihood ratio (Kulldorff's scan statistic)

    LLR = n log(n / e) - (n - e),  with the sign of n - e.

A plain ratio ``n / e`` explodes for tiny ``e`` and a plain difference ``n - e`` favours big
town clusters; the LLR's null distribution hardly depends on ``e``, so a small rural cluster
and a large town cluster are judged on the same scale. Its sign keeps it continuous (no
atom of p-values at 1 from clusters without excess).

**Calibration.** DBSCAN *selects* clusters where actors are dense, so a Poisson p-value of a
selected cluster is far too small. Each simulation redistributes every unit's free actors
under the null from its own seed (:func:`simulation_seeds`; threads do not change the
result), reruns the same DBSCAN and scores every simulated cluster the same way
(:func:`simulate_llrs`). Two p-values (:func:`monte_carlo_test`):

- ``p_method="pooled"`` (default): ``(1 + #{simulated clusters with LLR >= the cluster's})
  / (1 + max(#simulated clusters, #simulations))``, pooling the clusters of all
  simulations. Under the null an observed cluster is exchangeable with a simulated one, so
  this p-value is uniform over the clusters DBSCAN selects, and Benjamini-Hochberg on it
  controls the false discovery rate. Where the null makes fewer than one cluster per
  simulation, each simulation counts as at least one draw, so that the expected number of
  null clusters with ``p <= t`` is ``t * max(mean clusters per simulation, 1)``.
- ``p_method="max"``: ``(1 + #{simulations whose largest LLR >= the cluster's}) / (n_sim +
  1)``. This controls the family-wise error over all clusters of a run, but the largest
  LLR of a simulation is set by its biggest town clusters, so small rural clusters can
  seldom reach significance: use it for family-wise claims only.

Simulations stop early, without harming validity, when every cluster has been reached
``early_stop`` times (Besag & Clifford 1991) or, pooled, once ``pool_size`` simulated
clusters have been drawn (a stopping time that depends on the simulations only).
Benjamini-Hochberg q-values are computed across the clusters of a run (across all scales in
:func:`pari_geo.clustering.ladder.ladder`). What the planted-truth harness measures is in
``benchmarks/hidden_clusters/README.md``.

Examples
--------
>>> import numpy as np
>>> poisson_llr(np.array([10, 2, 5]), np.array([2.0, 4.0, 0.0]))
array([ 8.09437912, -0.61370564,         inf])
>>> benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5]))
array([0.04      , 0.05333333, 0.05333333, 0.5       ])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from .._progress import report_simulations
from .driver import dbscan_xy

__all__ = [
    "NullModel",
    "build_null_model",
    "poisson_llr",
    "Lattice",
    "footprint_lattice",
    "footprint_counts",
    "simulation_seeds",
    "simulate_llrs",
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
        pos = self._sample_positions(u)
        x, y = self._sample_xy(pos, u)
        return self.samp_cells[pos], x, y

    @cached_property
    def _sampling_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """First and last position in the sampling tables of each free actor's segment."""
        return self.seg_start[self.actor_seg], self.seg_end[self.actor_seg] - 1

    @cached_property
    def _sampling_rows_cols(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column (as float64: exact) of every cell of the sampling tables."""
        rows, cols = np.divmod(self.samp_cells, self.shape[1])
        return rows.astype(np.float64), cols.astype(np.float64)

    def _sample_positions(self, u: np.ndarray) -> np.ndarray:
        """Position in the sampling tables of the cell of each draw (see :meth:`sample`)."""
        from ._null_kernels import sorted_draws_by_segment, sorted_search_clipped

        # np.sort(self.actor_seg + u[:, 0]), segment by segment in linear time
        v = sorted_draws_by_segment(self.actor_seg, np.ascontiguousarray(u[:, 0]))
        lo, hi = self._sampling_bounds
        # the draws are sorted: one merge walk instead of a binary search per draw
        return sorted_search_clipped(self.samp_cum, v, lo, hi)

    def _sample_xy(self, pos: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The places of the draws in their cells: ``x0 + (col + u1) * w`` and
        ``y0 - (row + u2) * h`` (a cell's integer row and column are exact as floats)."""
        rows, cols = self._sampling_rows_cols
        x = self.x0 + (cols[pos] + u[:, 1]) * self.cell_w
        y = self.y0 - (rows[pos] + u[:, 2]) * self.cell_h
        return x, y


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
            cell_unit[owned], weights=pop.ravel()[owned], minlength=n_units  # type: ignore[union-attr]
        ).astype(np.float64)
    else:
        unit_residents = np.full(n_units, np.nan)
    # sampling weight per cell: residents, or the cell area in units without residents
    if basis == "residents":
        weight = pop.ravel().copy()  # type: ignore[union-attr]
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
    cell_residents = (
        pop.ravel().copy() if pop is not None and basis == "residents" else np.zeros(ncell)
    )

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
    """Signed Poisson log-likelihood ratio: ``n log(n/e) - (n - e)``, negative when ``n < e``.

    Positive for an excess, negative for a deficit (``-e`` when ``n == 0``), zero when
    ``n == e``; ``inf`` when ``n > 0`` and ``e == 0``. Signing keeps the statistic
    continuous, so that Monte Carlo p-values have no atom at 1 and are uniform under the
    null, while an excess ranks exactly as with the one-sided LLR.

    Examples
    --------
    >>> round(float(poisson_llr(np.array([4]), np.array([1.0]))[0]), 6)  # 4 log 4 - 3
    2.545177
    >>> poisson_llr(np.array([0, 2]), np.array([1.5, 2.0]))
    array([-1.5,  0. ])
    """
    n = np.asarray(n, dtype=np.float64)
    e = np.asarray(e, dtype=np.float64)
    n, e = np.broadcast_arrays(n, e)
    out = np.zeros(n.shape)
    pos_e = e > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(pos_e & (n > 0), n / np.where(pos_e, e, 1.0), 1.0)
        val = np.where(n > 0, n * np.log(ratio), 0.0) - (n - e)
    out[pos_e] = np.where(n[pos_e] >= e[pos_e], val[pos_e], -val[pos_e])
    out[~pos_e & (n > 0)] = np.inf
    return out


class Lattice(NamedTuple):
    """The lattice on which cluster footprints are measured (see :func:`footprint_lattice`).

    Attributes
    ----------
    x0, y0 : float
        Upper-left corner (the null model's grid corner).
    hx, hy : float
        Width and height of a lattice square, metres.
    subx, suby : int
        Lattice squares per grid cell along x and y (1 where a square holds whole cells).
    base : ndarray of float64, shape (rows, cols)
        Expected actors per grid cell, or per block of cells where squares hold whole cells.
    """

    x0: float
    y0: float
    hx: float
    hy: float
    subx: int
    suby: int
    base: np.ndarray


def _axis_step(cell: float, target: float) -> tuple[float, int, int]:
    """(square side, squares per cell, cells per square) along one axis."""
    if cell >= target:
        sub = max(1, int(round(cell / target)))
        return cell / sub, sub, 1
    agg = max(1, int(round(target / cell)))
    return cell * agg, 1, agg


def footprint_lattice(model: NullModel, eps_m: float, squares_per_eps: float = 4.0) -> Lattice:
    """The lattice of squares of about ``eps_m / squares_per_eps`` aligned with the grid.

    Along each axis a square is a whole fraction ``1/sub`` of a grid cell (cells larger
    than the target side) or a block of whole cells (smaller cells), so that the expected
    count of every square is exact under the null model. The footprint's resolution thus
    follows ``eps_m``, not the grid.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> m = build_null_model(np.array([[10.0, 10.0]]), np.zeros(1, dtype=np.int64), None,
    ...                      population=np.ones((4, 4)), transform=Affine(100, 0, 0, 0, -100, 400))
    >>> lat = footprint_lattice(m, 200.0)       # 50 m squares: each cell split in 2 x 2
    >>> lat.hx, lat.subx, lat.base.shape
    (50.0, 2, (4, 4))
    >>> lat = footprint_lattice(m, 1600.0)      # 400 m squares: blocks of 4 x 4 cells
    >>> lat.hx, lat.subx, lat.base.shape
    (400.0, 1, (1, 1))
    """
    target = float(eps_m) / float(squares_per_eps)
    hx, subx, ax = _axis_step(model.cell_w, target)
    hy, suby, ay = _axis_step(model.cell_h, target)
    ce = model.cell_expected.reshape(model.shape).astype(np.float64)
    if ax > 1 or ay > 1:
        rows, cols = model.shape
        pr, pc = -rows % ay, -cols % ax
        padded = np.pad(ce, ((0, pr), (0, pc)))
        ce = padded.reshape((rows + pr) // ay, ay, (cols + pc) // ax, ax).sum(axis=(1, 3))
    return Lattice(model.x0, model.y0, hx, hy, subx, suby, np.ascontiguousarray(ce))


def footprint_counts(
    labels: np.ndarray, xy: np.ndarray, free: np.ndarray, lattice: Lattice, eps_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Free members ``n`` and expected actors ``e`` in the footprint of every cluster.

    The footprint is every lattice square whose centre lies within ``eps_m`` of a member
    (fixed members included: they shape the cluster DBSCAN found). It does not depend on
    which grid cells the members happen to fall in, so it is measured the same way for
    observed and simulated clusters, and ``e`` is the exact expected count of that region
    under the null model.

    Examples
    --------
    One cluster of 3 members on a uniform grid with 1 expected actor per km²:

    >>> import numpy as np
    >>> from affine import Affine
    >>> lat = Lattice(0.0, 10_000.0, 250.0, 250.0, 1, 1, np.full((40, 40), 0.0625))
    >>> xy = np.array([[5000.0, 5000.0], [5100.0, 5000.0], [5000.0, 5100.0]])
    >>> n, e = footprint_counts(np.zeros(3, dtype=np.int64), xy, np.ones(3, bool), lat, 1000.0)
    >>> int(n[0]), round(float(e[0]), 2)     # about pi * 1 km² plus the members' spread
    (3, 3.62)
    """
    xy = np.asarray(xy, dtype=np.float64)
    return _footprint_counts_xy(np.asarray(labels), np.ascontiguousarray(xy[:, 0]),
                                np.ascontiguousarray(xy[:, 1]), free, lattice,
                                eps_m)  # fmt: skip


def _footprint_counts_xy(labels, x, y, free, lattice: Lattice, eps_m: float):
    """:func:`footprint_counts` on coordinate columns ``x`` and ``y`` (float64)."""
    from ._footprint_kernels import footprint_expected, group_members

    k = int(labels.max()) + 1 if len(labels) else 0
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    # members grouped by cluster, in their order inside each (a stable counting sort)
    xs, ys, starts, n = group_members(
        np.ascontiguousarray(labels, dtype=np.int64), np.ascontiguousarray(x, dtype=np.float64),
        np.ascontiguousarray(y, dtype=np.float64), np.ascontiguousarray(free, dtype=np.bool_), k,
    )  # fmt: skip
    e, _ = footprint_expected(xs, ys, starts, float(eps_m), lattice)
    return n, e


def simulation_seeds(random_state: Any, n_sim: int) -> list[np.random.SeedSequence]:
    """One independent seed per simulation, from ``random_state``.

    Simulation ``s`` always draws from the same stream whatever the number of threads or
    simulations, so results do not depend on ``n_jobs`` and a run with more simulations
    extends a shorter one.

    Examples
    --------
    >>> first = [np.random.default_rng(s).random() for s in simulation_seeds(7, 3)]
    >>> first == [np.random.default_rng(s).random() for s in simulation_seeds(7, 5)[:3]]
    True
    """
    entropy: Any
    if isinstance(random_state, np.random.Generator):
        entropy = int(random_state.integers(0, 2**63 - 1))
    elif isinstance(random_state, np.random.SeedSequence):
        entropy = random_state.entropy
    else:
        entropy = random_state
    return np.random.SeedSequence(entropy).spawn(int(n_sim))  # type: ignore[arg-type]


def _simulate_one(xy, model: NullModel, lattice, eps_m, min_actors, seed, scratch):
    """LLRs of the clusters of one null simulation (empty when there is none)."""
    sim_x, sim_y, free_idx = scratch
    u = np.random.default_rng(seed).random((len(free_idx), 3))
    x, y = model._sample_xy(model._sample_positions(u), u)
    sim_x[free_idx] = x
    sim_y[free_idx] = y
    labels, _ = dbscan_xy(sim_x, sim_y, None, float(eps_m), int(min_actors), serial=True)
    if labels.max() < 0:
        return np.zeros(0)
    n, e = _footprint_counts_xy(labels, sim_x, sim_y, model.free, lattice, eps_m)
    return poisson_llr(n, e)


def simulate_llrs(
    xy: np.ndarray,
    model: NullModel,
    *,
    eps_m: float,
    min_actors: int,
    seeds: list,
    n_jobs: int = 1,
    lattice: Lattice | None = None,
    batch: int = 4,
    executor: Any = None,
    cancel: Any = None,
):
    """Yield, in simulation order, the LLRs of the clusters of each null simulation.

    Each simulation places every free actor under the null model from its own seed
    (cell by inverse CDF within the actor's unit, then uniformly inside the cell), leaves
    fixed actors in place, reruns the exact DBSCAN with the same ``eps_m`` and
    ``min_actors`` and scores every simulated cluster with :func:`footprint_counts` and
    :func:`poisson_llr`. With ``n_jobs > 1`` simulations run in threads (the DBSCAN and
    footprint kernels release the GIL); the yielded values do not depend on ``n_jobs``.
    ``executor`` (a :class:`concurrent.futures.Executor` of threads) runs them instead of
    a pool of this call's own, so that several scales share one pool; ``n_jobs`` then only
    sets how many batches are kept ahead. Closing the generator early cancels the
    simulations not yet started; once ``cancel`` (a :class:`threading.Event`) is set, the
    batches not yet run yield nothing.

    Yields
    ------
    ndarray
        One array per simulation (empty for a simulation without clusters).
    """
    from concurrent.futures import ThreadPoolExecutor

    if lattice is None:
        lattice = footprint_lattice(model, eps_m)
    free_idx = model.free_order
    if len(free_idx) == 0:
        for _ in seeds:
            yield np.zeros(0)
        return

    def run(chunk):
        if cancel is not None and cancel.is_set():
            return []
        scratch = (np.array(xy[:, 0], dtype=np.float64, copy=True),
                   np.array(xy[:, 1], dtype=np.float64, copy=True), free_idx)  # fmt: skip
        return [_simulate_one(xy, model, lattice, eps_m, min_actors, s, scratch) for s in chunk]

    chunks = [seeds[i : i + batch] for i in range(0, len(seeds), batch)]
    if n_jobs <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield from run(chunk)
        return
    if executor is not None:
        yield from _in_order(executor, run, chunks, 2 * n_jobs)
        return
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        yield from _in_order(pool, run, chunks, 2 * n_jobs)


def _in_order(pool, run, chunks: list, ahead: int):
    """Yield the results of ``run(chunk)`` for every chunk, in order, keeping ``ahead``
    chunks submitted to ``pool``; the chunks not yet started are cancelled on close."""
    futures = [pool.submit(run, c) for c in chunks[:ahead]]
    nxt = len(futures)
    try:
        for i in range(len(chunks)):
            res = futures[i].result()
            if nxt < len(chunks):
                futures.append(pool.submit(run, chunks[nxt]))
                nxt += 1
            yield from res
    finally:
        for f in futures:
            f.cancel()


def _reference(draws: int, n_done: int, pooled: bool) -> int:
    """Size of the reference set: pooled clusters, but never fewer than the simulations.

    Where the null seldom makes a cluster at all (fewer than one per simulation), a pooled
    p-value would compare a cluster only with the rare simulated ones and forget that
    clusters themselves are rare; counting at least one draw per simulation makes it the
    probability that a simulation holds a cluster at least as extreme, so the expected
    number of null clusters with ``p <= t`` stays ``t * max(mean clusters, 1)``.
    """
    return max(draws, n_done) if pooled else draws


def monte_carlo_test(
    xy: np.ndarray,
    model: NullModel,
    observed: np.ndarray,
    *,
    eps_m: float,
    min_actors: int,
    n_sim: int,
    random_state: Any = 0,
    p_method: str = "pooled",
    early_stop: int | None = 20,
    pool_size: int | None = 10_000,
    n_jobs: int = 1,
    lattice: Lattice | None = None,
    executor: Any = None,
    cancel: Any = None,
) -> tuple[np.ndarray, int]:
    """Monte Carlo p-values of the observed cluster LLRs (see the module docstring).

    Parameters
    ----------
    xy, model, eps_m, min_actors
        As for :func:`simulate_llrs`.
    observed : ndarray of shape (k,)
        LLR of each observed cluster.
    n_sim : int
        Largest number of simulations.
    random_state : int, SeedSequence, Generator or None
        Seeds the simulations (:func:`simulation_seeds`).
    p_method : {"pooled", "max"}
        Compare with every simulated cluster's LLR (calibrated per cluster) or with each
        simulation's largest LLR (family-wise).
    early_stop : int or None, default=20
        Sequential Monte Carlo (Besag & Clifford 1991): a cluster whose LLR has been
        reached or exceeded ``early_stop`` times after ``L`` reference draws (simulated
        clusters for "pooled", simulations for "max") gets ``p = early_stop / L``; the
        simulations stop as soon as every cluster is there. None runs on.
    pool_size : int or None, default=10000
        "pooled" only: stop once this many simulated clusters have been drawn (the
        p-values then resolve to ``1 / (pool_size + 1)``). The stopping time depends on
        the simulations only, so the p-values stay valid. None runs all ``n_sim``.
    n_jobs : int, default=1
        Threads for the simulations; the result does not depend on it.
    executor : concurrent.futures.Executor, optional
        A pool of threads to run the simulations in (:func:`simulate_llrs`), shared with
        other calls; the result does not depend on it.
    cancel : threading.Event, optional
        Once set, no further simulation is run or used and the call returns after the
        simulations already running; its p-values are then those of the simulations used
        so far (for a caller giving up).

    Returns
    -------
    p : ndarray of shape (k,)
        NaN everywhere when ``n_sim == 0``.
    n_done : int
        Simulations used.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> xy = np.array([[100.0, 100.0]] * 3 + [[900.0, 900.0]])
    >>> model = build_null_model(xy, np.zeros(4, dtype=np.int64), None,
    ...                          population=np.ones((2, 2)),
    ...                          transform=Affine(500, 0, 0, 0, -500, 1000))
    >>> p, done = monte_carlo_test(xy, model, np.array([0.0]), eps_m=10, min_actors=3,
    ...                            n_sim=99, p_method="max", early_stop=5)
    >>> p.tolist(), done
    ([1.0], 5)
    """
    observed = np.asarray(observed, dtype=np.float64)
    k = len(observed)
    if n_sim == 0:
        return np.full(k, np.nan), 0
    pooled = p_method == "pooled"
    ge = np.zeros(k)
    draws = 0
    stop_p = np.full(k, np.nan)
    n_done = 0
    seeds = simulation_seeds(random_state, n_sim)
    sims = simulate_llrs(
        xy, model, eps_m=eps_m, min_actors=min_actors, seeds=seeds, n_jobs=n_jobs,
        lattice=lattice, executor=executor, cancel=cancel,
    )  # fmt: skip
    try:
        for llr in sims:
            if cancel is not None and cancel.is_set():
                break
            n_done += 1
            report_simulations(eps_m, n_done, n_sim)  # progress bars (pari_geo._progress)
            if pooled:
                srt = np.sort(llr)
                ge += len(srt) - np.searchsorted(srt, observed, side="left")
                draws += len(srt)
            else:
                ge += (llr.max() if len(llr) else 0.0) >= observed
                draws += 1
            if early_stop:
                newly = np.isnan(stop_p) & (ge >= early_stop)
                stop_p[newly] = ge[newly] / _reference(draws, n_done, pooled)
                if not np.isnan(stop_p).any():
                    break
            if pooled and pool_size and draws >= pool_size:
                break
    finally:
        sims.close()
    p = (1.0 + ge) / (1.0 + _reference(draws, n_done, pooled))
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
