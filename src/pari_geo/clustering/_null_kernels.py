"""Numba kernels of the null model's sampling (the simulations of the hidden-cluster test).

Only ``@numba.njit`` functions over arrays live here; the null model itself is
:class:`pari_geo.clustering.significance.NullModel`. The numpy twin used by the tests is
``np.clip(np.searchsorted(table, v, side="right"), lo, hi)``
(``tests/test_speed_equivalence_simulations.py``).
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
