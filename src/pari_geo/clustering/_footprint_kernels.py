"""Numba kernels of the hidden-cluster statistic: expected actors in a cluster's reach.

Only ``@numba.njit`` functions over arrays and named tuples live here; the null model and
the orchestration are in :mod:`pari_geo.clustering.significance`. The numpy twins used by
the tests are ``tests/helpers.py::footprint_expected_twin`` (the region, by dilation) and
``tests/test_speed_equivalence_simulations.py::_expected_twin`` (bit for bit: the same
order of summation, which fixes the rounding of ``e`` and so the p-values).

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
    # the disc stencil, offsets (di, dj) with (di hy)^2 + (dj hx)^2 <= eps^2: along each
    # row di the offsets |dj| <= half[di + ry] (-1: none), since the test is the same for
    # dj and -dj and holds for all |dj| up to the largest it holds for
    half = np.empty(2 * ry + 1, np.int64)
    for di in range(-ry, ry + 1):
        half[di + ry] = -1
        for dj in range(rx + 1):
            if (di * hy) * (di * hy) + (dj * hx) * (dj * hx) <= eps2:
                half[di + ry] = dj
    e = np.zeros(k)
    area = np.zeros(k)
    for c in range(k):
        s0 = starts[c]
        s1 = starts[c + 1]
        if s1 <= s0:
            continue
        # the lattice square of every member, computed once
        sq_j = np.empty(s1 - s0, np.int64)
        sq_i = np.empty(s1 - s0, np.int64)
        j0 = j1 = int(math.floor((xs[s0] - x0) / hx))
        i0 = i1 = int(math.floor((y0 - ys[s0]) / hy))
        for m in range(s0, s1):
            jj = int(math.floor((xs[m] - x0) / hx))
            ii = int(math.floor((y0 - ys[m]) / hy))
            sq_j[m - s0] = jj
            sq_i[m - s0] = ii
            j0 = min(j0, jj)
            j1 = max(j1, jj)
            i0 = min(i0, ii)
            i1 = max(i1, ii)
        j0 -= rx
        i0 -= ry
        h = i1 + ry - i0 + 1
        w = j1 + rx - j0 + 1
        occ = np.zeros((h, w), np.bool_)
        mark = np.zeros((h, w), np.bool_)
        # row and column of ``base`` of each window row and column, -1 off the grid
        brow = np.empty(h, np.int64)
        for li in range(h):
            gi = li + i0
            brow[li] = gi // suby if gi >= 0 and gi < rows else -1
        bcol = np.empty(w, np.int64)
        for lj in range(w):
            gj = lj + j0
            bcol[lj] = gj // subx if gj >= 0 and gj < cols else -1
        tot = 0.0
        cnt = 0.0
        # squares in the order of the stencil walk of every occupied square (its first
        # member first), each added when first marked: the order of the sum is fixed
        for m in range(s1 - s0):
            pi = sq_i[m] - i0
            pj = sq_j[m] - j0
            if occ[pi, pj]:
                continue
            occ[pi, pj] = True
            for t in range(2 * ry + 1):
                hw = half[t]
                li = pi + t - ry
                r = brow[li]
                for lj in range(pj - hw, pj + hw + 1):
                    if mark[li, lj]:
                        continue
                    mark[li, lj] = True
                    if r >= 0 and bcol[lj] >= 0:
                        tot += base[r, bcol[lj]]
                        cnt += 1.0
        e[c] = tot * inv_sub
        area[c] = cnt
    return e, area


@njit(cache=CACHE, nogil=True)
def group_members(labels, x, y, free, k):
    """Members' coordinates grouped by cluster, and each cluster's free members.

    A stable counting sort by label (noise, ``-1``, left out): cluster ``c`` is
    ``starts[c]:starts[c + 1]`` of ``xs``/``ys``, its members in their original order
    (the order :func:`footprint_expected` sums in, so ``e`` is the same to the bit as
    with ``numpy.argsort(labels, kind="stable")``).

    Parameters
    ----------
    labels : int array
        Cluster of each point (``0 .. k - 1``, ``-1`` noise).
    x, y : float64 arrays
    free : bool array
        Points that count in ``n``.
    k : int
        Number of clusters.

    Returns
    -------
    xs, ys : float64 arrays of the members
    starts : int64 array of shape (k + 1,)
    n : int64 array of shape (k,)
        Free members of each cluster.
    """
    starts = np.zeros(k + 1, np.int64)
    n = np.zeros(k, np.int64)
    for i in range(labels.shape[0]):
        c = labels[i]
        if c >= 0:
            starts[c + 1] += 1
            if free[i]:
                n[c] += 1
    for c in range(k):
        starts[c + 1] += starts[c]
    nxt = starts[:-1].copy()
    xs = np.empty(starts[k], np.float64)
    ys = np.empty(starts[k], np.float64)
    for i in range(labels.shape[0]):
        c = labels[i]
        if c >= 0:
            p = nxt[c]
            xs[p] = x[i]
            ys[p] = y[i]
            nxt[c] = p + 1
    return xs, ys, starts, n
