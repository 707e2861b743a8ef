"""The DBSCAN driver: the one sequence of kernel calls behind every DBSCAN entry point.

:func:`dbscan_xy` runs exact Euclidean DBSCAN on validated coordinates in four steps, each
a function here over the named tuples of :mod:`pari_geo.clustering._kernels`:

1. :func:`layout`: bin the points into cells of side just under ``eps / sqrt(2)``, sort
   them by cell (counting sort on a dense key map, else a stable argsort and binary
   search) and cut the cells into blocks of about equal point counts, one per task of
   the parallel kernels;
2. :func:`core_cells`: per-cell boxes, core flags, core points first in each cell;
3. :func:`core_labels`: join the core points with a union-find (cell pairs that are
   surely or possibly linked, tested in rounds of increasing cell distance) and number
   the clusters by their smallest original core index, as scikit-learn does;
4. :func:`border_labels`: give each non-core point the lowest cluster number among its
   core neighbours.

:func:`pari_geo.clustering.dbscan` (in memory), the Monte Carlo simulations of
:mod:`~pari_geo.clustering.significance` (``serial=True``, one DBSCAN per thread) and each
partition of :func:`~pari_geo.clustering.partitioned.dbscan_partitioned` call these
steps; the partitioned run adds its own last step (border points next to components of
other partitions). ``serial=True`` runs every kernel in the calling thread (one block, no
numba parallel region; the kernels release the GIL); the result is the same either way.

Examples
--------
>>> import numpy as np
>>> x = np.array([0.0, 1.0, 2.0, 10.0]); y = np.zeros(4)
>>> labels, core = dbscan_xy(x, y, None, 1.5, 2)
>>> labels.tolist(), core.tolist()
([0, 0, 0, -1], [True, True, True, False])
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import _kernels as kern
from ._kernels import CoreCells, Grid, Points

__all__ = [
    "SIDE_FACTOR",
    "DENSE_EXTRA",
    "Layout",
    "block_bounds",
    "layout",
    "core_cells",
    "core_labels",
    "border_labels",
    "dbscan_xy",
]

#: Cell side over eps: slightly smaller than ``1 / sqrt(2)``, so that floating-point noise
#: in the binning never makes a cell wider than eps across its diagonal.
SIDE_FACTOR = (1.0 - 2.0**-12) / math.sqrt(2.0)
#: The dense key map (one int64 per grid cell) is used while the grid has at most
#: ``2 * n + DENSE_EXTRA`` cells; beyond, cells are found by binary search of their keys.
DENSE_EXTRA = 2**21


class Layout(NamedTuple):
    """Points sorted by cell, the grid of cells and the blocks of cells (:func:`layout`)."""

    order: np.ndarray
    """Original index of each sorted position (int64)."""
    points: Points
    """Sorted coordinates and weights."""
    grid: Grid
    """The non-empty cells."""
    blocks: np.ndarray
    """Block boundaries over the cells (int64): block ``b`` is cells
    ``blocks[b]:blocks[b + 1]``."""


def block_bounds(cell_start: np.ndarray, nthreads: int) -> np.ndarray:
    """Block boundaries over cells holding about the same number of points each
    (``64 * nthreads`` blocks at most, one cell at least each).

    Examples
    --------
    >>> block_bounds(np.array([0, 5, 6, 10]), 1).tolist()   # cells of 5, 1 and 4 points
    [0, 1, 3]
    """
    ncells = cell_start.shape[0] - 1
    n = int(cell_start[-1])
    nblocks = max(1, min(ncells, 64 * nthreads))
    targets = np.linspace(0, n, nblocks + 1)
    b = np.searchsorted(cell_start, targets, side="left")
    b[0] = 0
    b[-1] = ncells
    return np.unique(b).astype(np.int64)


def layout(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray | None,
    eps: float,
    *,
    serial: bool = False,
    extent_hint: str = "of the points (",
    fix_hint: str = "rescale the coordinates",
) -> Layout:
    """Sort validated float64 points into the grid of cells of side ``eps * SIDE_FACTOR``.

    Parameters
    ----------
    x, y : ndarray of float64
        Coordinates (finite, contiguous).
    w : ndarray of float64 or None
        Non-negative weights, or None.
    eps : float
        The DBSCAN radius (> 0).
    serial : bool, default=False
        One block over all cells (for a run in the calling thread), else blocks for
        ``numba.get_num_threads()`` threads.
    extent_hint, fix_hint : str
        Words of the error raised when the grid would be too large: what the extent is
        of, and what to do.

    Raises
    ------
    ValueError
        When the grid would have more than 2**62 cells (``eps`` tiny for the extent).
    """
    import numba

    n = x.shape[0]
    side = eps * SIDE_FACTOR
    inv_side = 1.0 / side
    xmin = float(x.min())
    ymin = float(y.min())
    fx = (float(x.max()) - xmin) * inv_side
    fy = (float(y.max()) - ymin) * inv_side
    if not (fx < 2.0**62 and fy < 2.0**62 and (fx + 1.0) * (fy + 1.0) < 2.0**62):
        raise ValueError(
            f"eps={eps!r} is too small for the extent {extent_hint}"
            f"{fx:.3g} x {fy:.3g} grid cells); {fix_hint}"
        )
    nx = int(fx) + 1
    ny = int(fy) + 1
    nkeys = nx * ny
    weighted = w is not None
    if w is None:
        w = np.empty(0, np.float64)

    keys = kern.cell_keys(x, y, xmin, ymin, inv_side, ny)
    if nkeys <= 2 * n + DENSE_EXTRA:
        order, xs, ys, ws, cell_start, cell_key, dense_map = kern.counting_sort(
            keys, nkeys, x, y, w, weighted
        )
        dense = True
    else:
        order = np.argsort(keys, kind="stable").astype(np.int64, copy=False)
        skeys = keys[order]
        firsts = np.flatnonzero(np.r_[True, skeys[1:] != skeys[:-1]])
        cell_start = np.append(firsts, n).astype(np.int64)
        cell_key = np.ascontiguousarray(skeys[firsts])
        dense_map = np.empty(0, np.int64)
        dense = False
        del skeys
        xs, ys, ws = kern.gather_points(x, y, w, weighted, order)
    del keys
    if serial:
        blocks = np.array([0, cell_start.shape[0] - 1], dtype=np.int64)
    else:
        blocks = block_bounds(cell_start, numba.get_num_threads())
    grid = Grid(cell_start, cell_key, nx, ny, dense_map, dense)
    return Layout(order, Points(xs, ys, ws, weighted), grid, blocks)


def core_cells(
    lay: Layout, eps2: float, min_samples: float, *, serial: bool = False
) -> tuple[Layout, CoreCells]:
    """Core flags of the points, then each cell reordered (in place) core points first.

    ``lay.order`` and the coordinates of ``lay.points`` are reordered in place. Returns
    the layout without its sorted weights (no later step reads them, so their memory is
    freed) and the per-cell summary of the core points.
    """
    pts, grid, blocks = lay.points, lay.grid, lay.blocks
    box, cw, tight = kern.cell_boxes(pts, grid.cell_start, blocks, eps2)
    cells = kern.Cells(box, cw, tight)
    if serial:
        core = np.zeros(pts.xs.shape[0], np.bool_)
        kern.core_flags_block(pts, grid, cells, blocks, eps2, float(min_samples), core, 0)
    else:
        core = kern.core_flags(pts, grid, cells, blocks, eps2, float(min_samples))
    del cells, cw, box
    ncore, cbox = kern.core_first(pts.xs, pts.ys, lay.order, core, grid.cell_start, blocks)
    lay = lay._replace(points=pts._replace(ws=np.empty(0, np.float64)))
    return lay, CoreCells(ncore, cbox, tight)


def core_labels(
    lay: Layout, cores: CoreCells, eps2: float, *, serial: bool = False
) -> tuple[np.ndarray, int]:
    """Cluster number of every core point (sorted order) and the number of clusters.

    The entries of non-core points are left uninitialised (:func:`border_labels` writes
    them). Clusters are numbered in increasing order of their smallest original core
    index, as scikit-learn numbers them.
    """
    pts, grid, blocks = lay.points, lay.grid, lay.blocks
    parent = np.arange(pts.xs.shape[0], dtype=np.int64)
    if serial:
        ncells = grid.cell_start.shape[0] - 1
        sure = np.zeros(ncells, np.int64)
        maybe = np.zeros(ncells, np.int64)
        kern.edge_candidates_block(grid, cores, blocks, eps2, sure, maybe, 0)
    else:
        sure, maybe = kern.edge_candidates(grid, cores, blocks, eps2)
    kern.link_masks(parent, sure, grid)
    for round_mask in kern.ROUND_MASKS:
        if not np.any(maybe & round_mask):
            continue
        if serial:
            found = np.zeros(maybe.shape[0], np.int64)
            kern.resolve_maybe_block(pts, parent, maybe, round_mask, grid, cores, blocks, eps2,
                                     found, 0)
        else:
            found = kern.resolve_maybe(pts, parent, maybe, round_mask, grid, cores, blocks, eps2)
        kern.link_masks(parent, found, grid)
    del sure, maybe
    if not cores.tight.all():
        kern.link_slow(pts, parent, grid, cores, eps2)
    slot, mins = kern.cluster_roots(parent, lay.order, grid, cores)
    number = np.empty(mins.shape[0], np.int64)
    number[np.argsort(mins)] = np.arange(mins.shape[0])
    labels = kern.core_labels(parent, slot, number, grid, cores)
    return labels, int(mins.shape[0])


def border_labels(
    lay: Layout, cores: CoreCells, labels: np.ndarray, eps2: float, *, serial: bool = False
) -> None:
    """Give each non-core point of ``labels`` (in place) the lowest cluster number among
    the core points within eps of it, ``-1`` without any (scikit-learn's rule)."""
    clab = kern.cell_labels(labels, lay.grid.cell_start, cores.ncore)
    if serial:
        kern.border_labels_block(lay.points, labels, lay.grid, cores, clab, lay.blocks, eps2, 0)
    else:
        kern.border_labels(lay.points, labels, lay.grid, cores, clab, lay.blocks, eps2)


def dbscan_xy(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray | None,
    eps: float,
    min_samples: int,
    serial: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact DBSCAN of validated coordinates; returns ``(labels, core_mask)`` in the
    original order (labels ``intp``, ``-1`` noise).

    ``x``, ``y`` (and ``w``) must be finite contiguous float64 arrays of at least one
    point, ``eps > 0`` and ``min_samples >= 1`` (the public functions check this).
    ``serial=True`` runs every kernel in the calling thread, so that several threads can
    each run a DBSCAN at once, as the Monte Carlo simulations do; the result is the
    same either way.
    """
    eps2 = eps * eps
    lay = layout(x, y, w, eps, serial=serial)
    lay, cores = core_cells(lay, eps2, min_samples, serial=serial)
    labels, _ = core_labels(lay, cores, eps2, serial=serial)
    border_labels(lay, cores, labels, eps2, serial=serial)
    return kern.scatter_result(labels, lay.order, lay.grid.cell_start, cores.ncore, lay.blocks)
