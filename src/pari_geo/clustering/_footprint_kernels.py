"""Numba kernels of the hidden-cluster statistic: expected actors in a cluster's reach.

Only ``@numba.njit`` functions over arrays live here; the null model and the orchestration
are in :mod:`pari_geo.clustering.significance`. The numpy twin used by the tests is
``tests/test_footprint.py::_expected_twin``.

The *footprint* of a cluster is the region DBSCAN searched around it: every square of a
lattice aligned with the null model's grid (squares of about ``eps / 4`` a side) whose
centre lies within ``eps`` of a member. Its expected count under the null model is exact
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
def footprint_expected(xs, ys, starts, eps, x0, y0, hx, hy, subx, suby, base):
    """Expected actors in the footprint of every cluster.

    Parameters
    ----------
    xs, ys : float64 arrays
        Member coordinates, grouped by cluster (cluster ``c`` is
        ``starts[c]:starts[c + 1]``).
    starts : int64 array of shape (k + 1,)
    eps : float
        DBSCAN radius (metres).
    x0, y0 : float
        Upper-left corner of the lattice (the grid's).
    hx, hy : float
        Lattice square width and height.
    subx, suby : int
        Lattice squares per grid cell along x and y (1 where the lattice aggregates).
    base : float64 2-D array
        Expected actors per grid cell, or per lattice square where it aggregates cells.

    Returns
    -------
    e : float64 array of shape (k,)
    area : float64 array of shape (k,)
        Footprint area in lattice squares.
    """
    k = starts.shape[0] - 1
    rows = base.shape[0] * suby
    cols = base.shape[1] * subx
    eps2 = eps * eps
    inv_sub2 = 1.0 / (subx * suby)
    e = np.zeros(k)
    area = np.zeros(k)
    rx = int(math.ceil(eps / hx)) + 1
    ry = int(math.ceil(eps / hy)) + 1
    for c in range(k):
        s0 = starts[c]
        s1 = starts[c + 1]
        if s1 <= s0:
            continue
        minx = xs[s0]
        maxx = xs[s0]
        miny = ys[s0]
        maxy = ys[s0]
        for i in range(s0 + 1, s1):
            minx = min(minx, xs[i])
            maxx = max(maxx, xs[i])
            miny = min(miny, ys[i])
            maxy = max(maxy, ys[i])
        j0 = int(math.floor((minx - x0) / hx)) - rx
        j1 = int(math.floor((maxx - x0) / hx)) + rx
        i0 = int(math.floor((y0 - maxy) / hy)) - ry
        i1 = int(math.floor((y0 - miny) / hy)) + ry
        mark = np.zeros((i1 - i0 + 1, j1 - j0 + 1), np.bool_)
        for m in range(s0, s1):
            px = xs[m]
            py = ys[m]
            pj = int(math.floor((px - x0) / hx))
            pi = int(math.floor((y0 - py) / hy))
            for ii in range(pi - ry, pi + ry + 1):
                cy = y0 - (ii + 0.5) * hy
                dy = cy - py
                dy2 = dy * dy
                if dy2 > eps2:
                    continue
                for jj in range(pj - rx, pj + rx + 1):
                    cx = x0 + (jj + 0.5) * hx
                    dx = cx - px
                    if dx * dx + dy2 <= eps2:
                        mark[ii - i0, jj - j0] = True
        tot = 0.0
        cnt = 0.0
        for ii in range(max(i0, 0), min(i1, rows - 1) + 1):
            for jj in range(max(j0, 0), min(j1, cols - 1) + 1):
                if mark[ii - i0, jj - j0]:
                    tot += base[ii // suby, jj // subx]
                    cnt += 1.0
        e[c] = tot * inv_sub2
        area[c] = cnt
    return e, area
