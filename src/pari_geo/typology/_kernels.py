"""numba kernels of the typology stage (arrays in, arrays out; no Python objects).

Only loops that vectorise badly (or only with large temporaries) live here:

* :func:`least_cost_minutes`: 8-neighbour binary-heap Dijkstra of ``minutes_to``
  (checked against ``scipy.sparse.csgraph.dijkstra`` in ``tests/test_travel_time.py``).

The DEGURBA kernels (edge smoothing, label sums) are grid operations of the engines:
:mod:`pari_geo.outofcore._grid_kernels`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .._numba import CACHE


@numba.njit(cache=CACHE, nogil=True)
def _heap_push(keys, vals, size, key, val):
    """Push onto a binary min-heap held in ``keys``/``vals``; return the new size."""
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
def _heap_pop_into(keys, vals, size):
    """Remove the root of the heap (caller has read it); return the new size."""
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
def least_cost_minutes(cost, seeds, limit):
    """Multi-source Dijkstra over the 8-neighbour grid graph (lazy-deletion binary heap).

    ``cost`` is minutes per cell side (``inf`` impassable); a step costs
    ``(cost[a] + cost[b]) / 2`` times 1 (rook) or √2 (diagonal).
    """
    nr, nc = cost.shape
    n = nr * nc
    c = cost.ravel()
    dist = np.full(n, np.inf)
    done = np.zeros(n, np.bool_)
    cap = max(1024, seeds.size + n // 4)
    keys = np.empty(cap, np.float64)
    vals = np.empty(cap, np.int64)
    size = 0
    for s in seeds:
        if dist[s] > 0.0:
            dist[s] = 0.0
            size = _heap_push(keys, vals, size, 0.0, s)
    diag = math.sqrt(2.0)
    dr = (-1, -1, -1, 0, 0, 1, 1, 1)
    dc = (-1, 0, 1, -1, 1, -1, 0, 1)
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
            vc = uc + dc[k]
            if vr < 0 or vr >= nr or vc < 0 or vc >= nc:
                continue
            v = vr * nc + vc
            if done[v]:
                continue
            cv = c[v]
            if not cv < np.inf:
                continue
            step = 0.5 * (cu + cv)
            if dr[k] != 0 and dc[k] != 0:
                step *= diag
            nd = d + step
            if nd < dist[v]:
                dist[v] = nd
                if size == keys.size:
                    nk = np.empty(2 * size, np.float64)
                    nv = np.empty(2 * size, np.int64)
                    nk[:size] = keys[:size]
                    nv[:size] = vals[:size]
                    keys = nk
                    vals = nv
                size = _heap_push(keys, vals, size, nd, v)
    if limit < np.inf:
        for i in range(n):
            if dist[i] > limit:
                dist[i] = np.inf
    return dist.reshape(nr, nc)


@numba.njit(cache=CACHE, nogil=True)
def window_mean_direct(values, before, after):
    """Mean over the window ``[i - before, i + after] x [j - before, j + after]`` of each cell.

    Cells outside the array and non-finite values are left out of the mean; a window with
    a ``+inf`` value has mean ``+inf``; a window without any finite value (and no ``+inf``)
    is NaN. The sums are *direct*, not running: first along each row, the window's values
    added left to right starting from 0, then down each column, the row sums of the
    window's rows added top to bottom starting from 0. A cell's result therefore depends
    only on the values in its window, never on where the array starts: computed on a tile
    with a halo of ``max(before, after)`` cells (or the grid edge) it is bit-identical to
    the result on the whole grid. ``O(cells x (before + after + 1))``.

    Parameters
    ----------
    values : float64[:, :]
    before, after : int
        Window cells before and after the centre (``size // 2`` and
        ``size - 1 - size // 2`` for a window of ``size`` cells a side).

    Returns
    -------
    float64[:, :]
    """
    rows, cols = values.shape
    row_sum = np.zeros((rows, cols), dtype=np.float64)
    row_n = np.zeros((rows, cols), dtype=np.int32)  # finite values; -1: a +inf in the row
    for i in range(rows):
        for j in range(cols):
            a = max(0, j - before)
            b = min(cols - 1, j + after)
            s = 0.0
            n = 0
            pinf = False
            for k in range(a, b + 1):
                v = values[i, k]
                if math.isfinite(v):
                    s += v
                    n += 1
                elif v > 0.0:
                    pinf = True
            row_sum[i, j] = s
            row_n[i, j] = -1 if pinf else n
    out = np.empty((rows, cols), dtype=np.float64)
    acc = np.zeros(cols, dtype=np.float64)
    cnt = np.zeros(cols, dtype=np.int64)
    pinf_col = np.zeros(cols, dtype=np.bool_)
    for i in range(rows):
        a = max(0, i - before)
        b = min(rows - 1, i + after)
        for j in range(cols):
            acc[j] = 0.0
            cnt[j] = 0
            pinf_col[j] = False
        for k in range(a, b + 1):
            for j in range(cols):
                n = row_n[k, j]
                if n < 0:
                    pinf_col[j] = True
                else:
                    acc[j] += row_sum[k, j]
                    cnt[j] += n
        for j in range(cols):
            if pinf_col[j]:
                out[i, j] = np.inf
            elif cnt[j] > 0:
                out[i, j] = acc[j] / cnt[j]
            else:
                out[i, j] = np.nan
    return out
