"""numba kernel of the tiled travel-time search (:mod:`pari_geo.outofcore.travel_time`).

One call settles one tile given the current minutes of a one-cell ring around it: a
multi-source Dijkstra over the tile's 8-neighbour graph whose sources are every cell with
a finite value (tile and ring), where the ring cells are read but never improved. The step
arithmetic is the one of :func:`pari_geo.typology._kernels.least_cost_minutes`
(``d + 0.5 * (c[u] + c[v])``, times ``sqrt(2)`` diagonally), so repeated calls converge to
bit-identical minutes. The pure numpy/scipy check is in
``tests/test_outofcore_travel_time.py``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .._numba import CACHE
from ..typology._kernels import _heap_pop_into, _heap_push

__all__ = ["settle_tile"]


@numba.njit(cache=CACHE, nogil=True)
def settle_tile(cost, dist, top, left, bottom, right, limit, ring_only):
    """Improve ``dist`` inside the tile in place; return the number of improvements.

    Parameters
    ----------
    cost : float64[:, :]
        Minutes per cell side of the tile plus its ring (``inf`` impassable).
    dist : float64[:, :]
        Current minutes, same shape; the tile cells are updated in place.
    top, left, bottom, right : int
        Ring widths (0 at a grid edge, else 1): the tile is
        ``[top:rows - bottom, left:cols - right]``.
    limit : float
        Tentative minutes above ``limit`` are not propagated (``inf``: no limit).
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
    cap = 1024
    keys = np.empty(cap, np.float64)
    vals = np.empty(cap, np.int64)
    size = 0
    r_lo = top
    r_hi = nr - bottom
    c_lo = left
    c_hi = nc - right
    for u in range(n):
        if ring_only:
            ur = u // nc
            uc = u - ur * nc
            if r_lo <= ur < r_hi and c_lo <= uc < c_hi:
                continue
        if dd[u] < np.inf:
            if size == keys.size:
                nk = np.empty(2 * size, np.float64)
                nv = np.empty(2 * size, np.int64)
                nk[:size] = keys[:size]
                nv[:size] = vals[:size]
                keys = nk
                vals = nv
            size = _heap_push(keys, vals, size, dd[u], u)
    diag = math.sqrt(2.0)
    dr = (-1, -1, -1, 0, 0, 1, 1, 1)
    dcol = (-1, 0, 1, -1, 1, -1, 0, 1)
    improved = 0
    while size > 0:
        d = keys[0]
        u = vals[0]
        size = _heap_pop_into(keys, vals, size)
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
                    nk = np.empty(2 * size, np.float64)
                    nv = np.empty(2 * size, np.int64)
                    nk[:size] = keys[:size]
                    nv[:size] = vals[:size]
                    keys = nk
                    vals = nv
                size = _heap_push(keys, vals, size, nd, v)
    return improved
