"""The one Dijkstra of pari_geo: numba kernels of travel minutes over the grid.

Both engines use :func:`settle`: the in-memory :func:`~pari_geo.outofcore.travel_time.minutes_to`
calls it once on the whole grid (no ring), the tiled
:func:`~pari_geo.outofcore.travel_time.minutes_to_tiled` once per dirty tile with the
one-cell ring of minutes around it. A call is a multi-source Dijkstra over the 8-neighbour
graph of the window whose sources are every cell with a finite value (tile and ring); ring
cells are read but never improved. A step between neighbours ``a`` and ``b`` costs
``0.5 * (cost[a] + cost[b])``, times ``sqrt(2)`` diagonally (``cost`` in minutes per cell
side), the convention of ``skimage.graph.MCP_Geometric``.

The minutes it leaves are the unique fixed point ``d[v] = min(d[v], d[u] + step(u, v))``
of the values it starts from (every step is non-negative, so a cell popped later can never
improve one popped earlier), whatever the order of equal keys in the heap: one call on a
whole grid and any sequence of tile calls end at the same bits.

The binary min-heap (:func:`heap_push`, :func:`heap_pop_into`) keeps keys and values in two
growable arrays; stale entries are skipped when popped (lazy deletion). The pure
numpy/scipy twins (``scipy.sparse.csgraph.dijkstra`` on the explicit grid graph) are in
``tests/test_travel_time.py`` and ``tests/test_outofcore_travel_time.py``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from .._numba import CACHE

__all__ = ["Ring", "NO_RING", "settle", "heap_push", "heap_pop_into"]


class Ring(NamedTuple):
    """Widths of the read-only ring around a tile in a :func:`settle` window.

    0 at a grid edge (or for a whole grid), else 1: the tile is
    ``window[top:rows - bottom, left:cols - right]``.
    """

    top: int
    left: int
    bottom: int
    right: int


NO_RING = Ring(0, 0, 0, 0)
"""The ring of a whole grid: no read-only cells."""


@numba.njit(cache=CACHE, nogil=True)
def heap_push(keys, vals, size, key, val):
    """Push onto a binary min-heap held in ``keys``/``vals``; return the new size.

    The arrays must have room for one more entry (grow them with :func:`_grow`).
    """
    i = size
    keys[i] = key
    vals[i] = val
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= key:
            break
        keys[i] = keys[parent]
        vals[i] = vals[parent]
        i = parent
    keys[i] = key
    vals[i] = val
    return size + 1


@numba.njit(cache=CACHE, nogil=True)
def heap_pop_into(keys, vals, size):
    """Remove the root of the heap (the caller has read it); return the new size."""
    size -= 1
    if size == 0:
        return 0
    key = keys[size]
    val = vals[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and keys[child + 1] < keys[child]:
            child += 1
        if keys[child] >= key:
            break
        keys[i] = keys[child]
        vals[i] = vals[child]
        i = child
    keys[i] = key
    vals[i] = val
    return size


@numba.njit(cache=CACHE, nogil=True)
def _grow(keys, vals, size):
    """The heap arrays, doubled (their ``size`` entries kept)."""
    nk = np.empty(2 * keys.size, np.float64)
    nv = np.empty(2 * keys.size, np.int64)
    # an element loop, not ``nk[:size] = keys[:size]``: numba's slice assignment from an
    # array compiles its shape-mismatch message (string formatting), about 1.3 s of a
    # first run's compilation for a copy that never mismatches
    for i in range(size):
        nk[i] = keys[i]
        nv[i] = vals[i]
    return nk, nv


@numba.njit(cache=CACHE, nogil=True)
def settle(cost, dist, ring, limit, ring_only):
    """Improve ``dist`` inside the tile in place; return the number of improvements.

    Parameters
    ----------
    cost : float64[:, :]
        Minutes per cell side of the window (``inf``: impassable).
    dist : float64[:, :], C-contiguous
        Current minutes, same shape (0 at sources, ``inf`` unknown); the tile's cells are
        updated in place.
    ring : Ring
        Ring widths; :data:`NO_RING` for a whole grid.
    limit : float
        Cells are not expanded beyond ``limit`` minutes (``inf``: no limit); cells left
        with more than ``limit`` minutes are not final (the caller sets them to ``inf``).
    ring_only : bool
        Start from the ring cells only. Valid once the tile has been settled: its own
        minutes are then consistent with each other, so only new ring values can improve
        them (and cells that do not improve need not be expanded again).

    Returns
    -------
    int
        How many times a tile cell's minutes decreased (0: the tile was settled).
    """
    nr, nc = cost.shape
    n = nr * nc
    c = cost.ravel()
    dd = dist.ravel()
    done = np.zeros(n, np.bool_)
    r_lo = ring.top
    r_hi = nr - ring.bottom
    c_lo = ring.left
    c_hi = nc - ring.right
    # the cells to start from, in a plain scan (a heap that may grow inside this loop
    # makes numba refcount the heap arrays on every cell: 30x slower on 10M cells)
    starts = np.empty(n, np.int64)
    n_starts = 0
    for u in range(n):
        if ring_only:
            ur = u // nc
            uc = u - ur * nc
            if r_lo <= ur < r_hi and c_lo <= uc < c_hi:
                continue
        if dd[u] < np.inf:
            starts[n_starts] = u
            n_starts += 1
    cap = max(1024, n // 4, n_starts)  # np.empty: pages are touched only when used
    keys = np.empty(cap, np.float64)
    vals = np.empty(cap, np.int64)
    size = np.int64(0)  # not a literal 0: numba would compile the heap helpers twice
    for i in range(n_starts):
        u = starts[i]
        size = heap_push(keys, vals, size, dd[u], u)
    diag = math.sqrt(2.0)
    dr = (-1, -1, -1, 0, 0, 1, 1, 1)
    dcol = (-1, 0, 1, -1, 1, -1, 0, 1)
    improved = 0
    while size > 0:
        d = keys[0]
        u = vals[0]
        size = heap_pop_into(keys, vals, size)
        if done[u]:
            continue
        if d > limit:
            break
        done[u] = True
        cu = c[u]
        if not cu < np.inf:
            continue
        ur = u // nc
        uc = u - ur * nc
        for k in range(8):
            vr = ur + dr[k]
            vc = uc + dcol[k]
            if vr < r_lo or vr >= r_hi or vc < c_lo or vc >= c_hi:
                continue  # outside the grid, or a ring cell (read only)
            v = vr * nc + vc
            if done[v]:
                continue
            cv = c[v]
            if not cv < np.inf:
                continue
            step = 0.5 * (cu + cv)
            if dr[k] != 0 and dcol[k] != 0:
                step *= diag
            nd = d + step
            if nd < dd[v]:
                improved += 1
                dd[v] = nd
                if size == keys.size:
                    keys, vals = _grow(keys, vals, size)
                size = heap_push(keys, vals, size, nd, v)
    return improved
