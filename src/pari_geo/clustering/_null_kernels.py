"""Numba kernels of the null model's sampling (the simulations of the hidden-cluster test).

Only ``@numba.njit`` functions over arrays live here; the null model itself is
:class:`pari_geo.clustering.significance.NullModel`. The numpy twins used by the tests
(``tests/test_speed_equivalence_simulations.py``) are ``np.sort(seg + u)`` and
``np.clip(np.searchsorted(table, v, side="right"), lo, hi)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._numba import CACHE


@njit(cache=CACHE, nogil=True)
def sorted_search_clipped(table, v, lo, hi):
    """``np.clip(np.searchsorted(table, v, side="right"), lo, hi)`` for sorted ``v``.

    One merge walk over ``table`` (non-decreasing float64) and ``v`` (non-decreasing
    float64): ``O(len(table) + len(v))`` instead of a binary search per value, the same
    positions (how many entries of ``table`` are ``<= v[i]``), then bounded below by
    ``lo[i]`` and above by ``hi[i]`` in that order, as :func:`numpy.clip` does.

    Parameters
    ----------
    table : float64 array, non-decreasing
    v : float64 array, non-decreasing
    lo, hi : int64 arrays of ``len(v)``

    Returns
    -------
    int64 array of ``len(v)``
    """
    n = v.shape[0]
    m = table.shape[0]
    out = np.empty(n, np.int64)
    j = 0
    for i in range(n):
        x = v[i]
        while j < m and table[j] <= x:
            j += 1
        p = max(j, lo[i])
        out[i] = min(p, hi[i])
    return out


@njit(cache=CACHE, nogil=True)
def sorted_draws_by_segment(seg, u):
    """``np.sort(seg + u)`` for non-decreasing integer ``seg`` and ``u`` in ``[0, 1)``.

    Adding the integer segment rounds monotonically in ``u``, so the sorted sums are each
    segment's value plus its draws in order: every segment is sorted alone, by a counting
    sort into as many buckets as it has draws (uniform draws put about one in each) and an
    insertion sort that only moves draws inside their bucket. ``O(len(u))`` expected, where
    a comparison sort of the sums is ``O(n log n)``; the same float64 values.

    Parameters
    ----------
    seg : int64 array, non-decreasing
    u : float64 array of ``len(seg)``, values in ``[0, 1)``

    Returns
    -------
    float64 array of ``len(seg)``
    """
    n = seg.shape[0]
    out = np.empty(n, np.float64)
    count = np.zeros(n + 1, np.int64)
    s = 0
    while s < n:
        e = s + 1
        while e < n and seg[e] == seg[s]:
            e += 1
        m = e - s
        for b in range(m + 1):
            count[b] = 0
        for i in range(s, e):
            count[min(int(u[i] * m), m - 1) + 1] += 1
        for b in range(m):
            count[b + 1] += count[b]
        for i in range(s, e):
            b = min(int(u[i] * m), m - 1)
            out[s + count[b]] = u[i]
            count[b] += 1
        for i in range(s + 1, e):
            x = out[i]
            j = i - 1
            while j >= s and out[j] > x:
                out[j + 1] = out[j]
                j -= 1
            out[j + 1] = x
        base = float(seg[s])
        for i in range(s, e):
            out[i] = base + out[i]
        s = e
    return out
