"""numba kernels of the typology stage (arrays in, arrays out; no Python objects).

Only loops that vectorise badly (or only with large temporaries) live here:

* :func:`smooth_centre_edges` / :func:`smooth_centre_edges_inplace`: the iterative
  majority-rule edge smoothing of urban centres;
* :func:`label_sums`: per-cluster population sums in raster order, i.e. exactly
  ``np.bincount(labels.ravel(), weights=np.nan_to_num(w).ravel())`` (same summation order,
  so bit-identical) without its two 8-byte-per-cell temporaries (``intp`` labels and
  ``float64`` weights);
* :func:`least_cost_minutes`: 8-neighbour binary-heap Dijkstra of ``minutes_to``
  (checked against ``scipy.sparse.csgraph.dijkstra`` in ``tests/test_travel_time.py``).

The pure numpy twins used to check them are in ``tests/test_degurba_kernels.py``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .._numba import CACHE

RULE_R2022A = 0
RULE_R2023A = 1

_DR = np.array([-1, -1, -1, 0, 0, 1, 1, 1], dtype=np.int64)
_DC = np.array([-1, 0, 1, -1, 1, -1, 0, 1], dtype=np.int64)


@numba.njit(cache=CACHE, nogil=True)
def _decide(lab, excluded, r, c, rule, dr, dc, ids, counts):
    """Centre id that cell (r, c) joins in this pass, or 0 (``ids``/``counts``: scratch)."""
    rows, cols = lab.shape
    n_ids = 0
    n_valid = 0
    for j in range(8):
        rr = r + dr[j]
        cc = c + dc[j]
        if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
            n_valid += 1  # off-grid: a valid, non-centre neighbour (used by R2023A only)
            continue
        k = lab[rr, cc]
        if k > 0:
            n_valid += 1
            found = False
            for q in range(n_ids):
                if ids[q] == k:
                    counts[q] += 1
                    found = True
                    break
            if not found:
                ids[n_ids] = k
                counts[n_ids] = 1
                n_ids += 1
        elif not excluded[rr, cc]:
            n_valid += 1
    best = 0
    best_n = 0
    for q in range(n_ids):
        if counts[q] > best_n:
            best_n = counts[q]
            best = ids[q]
    if rule == RULE_R2022A:
        return best if best_n >= 5 else 0
    return best if 2 * best_n > n_valid else 0


@numba.njit(cache=CACHE, nogil=True)
def label_sums(labels, weights, n):
    """Sum ``weights`` per label ``1..n`` in raster order; NaN weights count as 0.

    ``out[1:]`` is bit-identical to ``np.bincount(labels.ravel(), weights=np.where(
    np.isnan(w), 0, w).astype(float64).ravel(), minlength=n + 1)[1:]`` (one sequential
    pass in the same order); the background ``out[0]`` is not summed and stays 0.

    Parameters
    ----------
    labels : int[:, :]
        Labels in ``0..n``.
    weights : float or int [:, :]
        Same shape as ``labels``; converted to float64 cell by cell.
    n : int
        Largest label.

    Returns
    -------
    float64[n + 1]
    """
    rows, cols = labels.shape
    out = np.zeros(n + 1, dtype=np.float64)
    for r in range(rows):
        for c in range(cols):
            k = labels[r, c]
            if k == 0:
                continue
            v = np.float64(weights[r, c])
            if v != v:
                v = 0.0
            out[k] += v
    return out


@numba.njit(cache=CACHE, nogil=True)
def smooth_centre_edges(labels, excluded, blocked, rule):
    """Majority-rule edge smoothing of labelled urban centres until nothing changes.

    Parameters
    ----------
    labels : int32[:, :]
        Centre ids (> 0), 0 elsewhere. Not modified.
    excluded : bool[:, :]
        Non-centre cells left out of the valid neighbours (R2023A: permanent water or
        ignorable). Ignored by R2022A.
    blocked : bool[:, :]
        Cells that never join (R2023A: permanent water). Pass all-False for R2022A.
    rule : int
        ``RULE_R2022A`` (5 of 8 neighbours in one centre) or ``RULE_R2023A``
        (strict majority of the valid neighbours).

    Returns
    -------
    int32[:, :]
        The smoothed labels. Each pass is a simultaneous update.
    """
    lab = labels.copy()
    smooth_centre_edges_inplace(lab, excluded, blocked, rule)
    return lab


@numba.njit(cache=CACHE, nogil=True)
def smooth_centre_edges_inplace(lab, excluded, blocked, rule):
    """:func:`smooth_centre_edges` writing into ``lab`` (int32[:, :]); returns the passes run.

    Saves the copy of the labels; the candidate de-duplication uses one byte per cell.
    """
    rows, cols = lab.shape
    dr = _DR
    dc = _DC
    queued = np.zeros((rows, cols), dtype=np.uint8)  # 1 = already in the next candidate list
    ids = np.zeros(8, dtype=np.int32)  # scratch of _decide
    counts = np.zeros(8, dtype=np.int64)
    cand = np.empty(rows * cols if rows * cols < 1024 else 1024, dtype=np.int64)
    n_cand = 0
    # first candidates: the non-centre, non-blocked neighbours of centre cells (found from
    # the centre side; the order of a list does not matter, each pass is simultaneous)
    for r in range(rows):
        for c in range(cols):
            if lab[r, c] <= 0:
                continue
            for j in range(8):
                rr = r + dr[j]
                cc = c + dc[j]
                if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
                    continue
                if lab[rr, cc] != 0 or blocked[rr, cc] or queued[rr, cc] != 0:
                    continue
                queued[rr, cc] = 1
                if n_cand == cand.shape[0]:
                    grown = np.empty(cand.shape[0] * 2, dtype=np.int64)
                    grown[:n_cand] = cand[:n_cand]
                    cand = grown
                cand[n_cand] = rr * cols + cc
                n_cand += 1
    for i in range(n_cand):
        flat = cand[i]
        queued[flat // cols, flat - (flat // cols) * cols] = 0
    pass_no = 1
    joined_idx = np.empty(max(n_cand, 1), dtype=np.int64)
    joined_lab = np.empty(max(n_cand, 1), dtype=np.int32)
    while n_cand > 0:
        if joined_idx.shape[0] < n_cand:
            joined_idx = np.empty(n_cand, dtype=np.int64)
            joined_lab = np.empty(n_cand, dtype=np.int32)
        n_join = 0
        for i in range(n_cand):
            flat = cand[i]
            r = flat // cols
            c = flat - r * cols
            if lab[r, c] != 0:
                continue
            k = _decide(lab, excluded, r, c, rule, dr, dc, ids, counts)
            if k > 0:
                joined_idx[n_join] = flat
                joined_lab[n_join] = k
                n_join += 1
        if n_join == 0:
            break
        for i in range(n_join):
            flat = joined_idx[i]
            lab[flat // cols, flat - (flat // cols) * cols] = joined_lab[i]
        pass_no += 1
        n_cand = 0
        for i in range(n_join):
            flat = joined_idx[i]
            r = flat // cols
            c = flat - r * cols
            for j in range(8):
                rr = r + dr[j]
                cc = c + dc[j]
                if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
                    continue
                if lab[rr, cc] != 0 or blocked[rr, cc] or queued[rr, cc] != 0:
                    continue
                queued[rr, cc] = 1
                if n_cand == cand.shape[0]:
                    grown = np.empty(cand.shape[0] * 2, dtype=np.int64)
                    grown[:n_cand] = cand[:n_cand]
                    cand = grown
                cand[n_cand] = rr * cols + cc
                n_cand += 1
        for i in range(n_cand):  # reset the marks for the next list
            flat = cand[i]
            queued[flat // cols, flat - (flat // cols) * cols] = 0
    return pass_no - 1


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
