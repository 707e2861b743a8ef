"""Numba kernels of the hidden-cluster statistic: expected actors in a cluster's reach.

Only ``@numba.njit`` functions over arrays and named tuples live here; the null model and
the orchestration are in :mod:`pari_geo.clustering.significance`. The numpy twin used by
the tests is ``tests/test_footprint.py::_expected_twin``.

The *footprint* of a cluster is the region DBSCAN searched around it, on a lattice aligned
with the null model's grid (squares of about ``eps / 4`` a side): every square whose centre
lies within ``eps`` of the centre of a square holding a member (the squares holding
members dilated by a disc of radius ``eps``; a member's exact place inside its square, at
most ``eps / 5`` away, does not matter). Its expected count under the null model is exact
for that region: along each axis a lattice square is either a ``1 / sub``-th of a grid
cell (its expected count is the cell's divided by ``subx * suby``, since actors are
uniform inside a cell) or a block of whole cells (the block sums, precomputed in ``base``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .._numba import CACHE


@njit(cache=CACHE, nogil=True)
def footprint_expected(xs, ys, starts, eps, lattice):
    """Expected actors and area (in lattice squares) of the footprint of every cluster.

    Parameters
    ----------
    xs, ys : float64 arrays
        Member coordinates, grouped by cluster (cluster ``c`` is
        ``starts[c]:starts[c + 1]``).
    starts : int64 array of shape (k + 1,)
    eps : float
        DBSCAN radius (metres).
    lattice : Lattice
        The named tuple of :func:`pari_geo.clustering.significance.footprint_lattice`:
        upper-left corner ``x0, y0`` (the grid's), square width and height ``hx, hy``,
        squares per grid cell ``subx, suby`` (1 where the lattice aggregates cells) and
        ``base``, the expected actors per grid cell (or per lattice square where it
        aggregates cells).

    Returns
    -------
    e : float64 array of shape (k,)
    area : float64 array of shape (k,)
        Footprint area in lattice squares (inside the grid).
    """
    x0, y0, hx, hy = lattice.x0, lattice.y0, lattice.hx, lattice.hy
    subx, suby, base = lattice.subx, lattice.suby, lattice.base
    k = starts.shape[0] - 1
    rows = base.shape[0] * suby
    cols = base.shape[1] * subx
    eps2 = eps * eps
    inv_sub = 1.0 / (subx * suby)
    rx = int(math.floor(eps / hx))
    ry = int(math.floor(eps / hy))
    # the disc stencil: offsets (di, dj) with (di hy)^2 + (dj hx)^2 <= eps^2
    n_st = 0
    st_i = np.empty((2 * ry + 1) * (2 * rx + 1), np.int64)
    st_j = np.empty((2 * ry + 1) * (2 * rx + 1), np.int64)
    for di in range(-ry, ry + 1):
        for dj in range(-rx, rx + 1):
            if (di * hy) * (di * hy) + (dj * hx) * (dj * hx) <= eps2:
                st_i[n_st] = di
                st_j[n_st] = dj
                n_st += 1
    e = np.zeros(k)
    area = np.zeros(k)
    for c in range(k):
        s0 = starts[c]
        s1 = starts[c + 1]
        if s1 <= s0:
            continue
        j0 = int(math.floor((xs[s0] - x0) / hx))
        j1 = j0
        i0 = int(math.floor((y0 - ys[s0]) / hy))
        i1 = i0
        for m in range(s0 + 1, s1):
            jj = int(math.floor((xs[m] - x0) / hx))
            ii = int(math.floor((y0 - ys[m]) / hy))
            j0 = min(j0, jj)
            j1 = max(j1, jj)
            i0 = min(i0, ii)
            i1 = max(i1, ii)
        j0 -= rx
        j1 += rx
        i0 -= ry
        i1 += ry
        w = j1 - j0 + 1
        occ = np.zeros((i1 - i0 + 1, w), np.bool_)
        mark = np.zeros((i1 - i0 + 1, w), np.bool_)
        tot = 0.0
        cnt = 0.0
        for m in range(s0, s1):
            pj = int(math.floor((xs[m] - x0) / hx)) - j0
            pi = int(math.floor((y0 - ys[m]) / hy)) - i0
            if occ[pi, pj]:
                continue
            occ[pi, pj] = True
            for t in range(n_st):
                li = pi + st_i[t]
                lj = pj + st_j[t]
                if mark[li, lj]:
                    continue
                mark[li, lj] = True
                gi = li + i0
                gj = lj + j0
                if gi >= 0 and gi < rows and gj >= 0 and gj < cols:
                    tot += base[gi // suby, gj // subx]
                    cnt += 1.0
        e[c] = tot * inv_sub
        area[c] = cnt
    return e, area
