"""Numba kernels for partitioned (out-of-core) DBSCAN.

Only ``@numba.njit`` functions over arrays live here; orchestration is in
:mod:`pari_geo.clustering.partitioned`. The per-partition neighbour work reuses the
kernels of :mod:`pari_geo.clustering._kernels`; these kernels only route points to
partitions and resolve cluster identities across partitions. No object mode, no warm-up
at import.

Partition layout
----------------
Space is cut into ``ns`` vertical strips by the sorted cut values ``xcuts`` (strip ``s``
holds ``xcuts[s-1] <= x < xcuts[s]``), and each strip ``s`` into tiles by its own sorted
cut values ``ycuts[ycut_off[s]:ycut_off[s+1]]``. Tile ``t`` of strip ``s`` has the global
number ``ycut_off[s] + s + t``. ``xlo``/``xhi`` (per strip) and ``ylo``/``yhi`` (per tile)
are the *expanded* bounds: the box widened by the halo margin, ``-inf``/``+inf`` at the
outer edges; they are non-decreasing, so the strips (tiles) whose expanded box contains a
coordinate form a contiguous range found by binary search.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._numba import CACHE


@njit(cache=CACHE)
def _first_ge(a, lo, hi, v):
    """Smallest index ``k`` in ``[lo, hi]`` with ``a[k] >= v`` (``hi`` if none)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=CACHE)
def _first_gt(a, lo, hi, v):
    """Smallest index ``k`` in ``[lo, hi]`` with ``a[k] > v`` (``hi`` if none)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=CACHE)
def _visit(x, y, i, xcuts, xlo, xhi, ycuts, ycut_off, ylo, yhi, out_tile, out_own, m):
    """Write the tiles whose expanded box holds point ``i`` from position ``m`` on
    (``out_tile`` may be empty to count only); returns the new position."""
    ns = xlo.shape[0]
    px = x[i]
    py = y[i]
    s_own = _first_gt(xcuts, 0, xcuts.shape[0], px)
    s0 = _first_ge(xhi, 0, ns, px)
    s1 = _first_gt(xlo, 0, ns, px)
    for s in range(s0, s1):
        c0 = ycut_off[s]
        c1 = ycut_off[s + 1]
        base = c0 + s
        nt = c1 - c0 + 1
        t0 = _first_ge(yhi, base, base + nt, py) - base
        t1 = _first_gt(ylo, base, base + nt, py) - base
        if t1 <= t0:
            continue
        t_own = -1
        if s == s_own:
            t_own = _first_gt(ycuts, c0, c1, py) - c0
        for t in range(t0, t1):
            if out_tile.shape[0] > 0:
                out_tile[m] = base + t
                out_own[m] = t == t_own
            m += 1
    return m


@njit(cache=CACHE)
def tile_memberships(x, y, xcuts, xlo, xhi, ycuts, ycut_off, ylo, yhi, ntiles):
    """Route a chunk of points to the tiles whose expanded box holds them.

    Returns ``pt`` (chunk index), ``tile`` and ``own`` (True in the point's own tile,
    False in a halo) of every membership, grouped by ``2 * tile + (not own)`` in
    increasing order and by point within a group, and ``start`` (length
    ``2 * ntiles + 1``): group ``g`` is ``pt[start[g]:start[g + 1]]``. Every point has
    exactly one own membership.
    """
    n = x.shape[0]
    empty_t = np.empty(0, np.int64)
    empty_o = np.empty(0, np.bool_)
    total = 0
    for i in range(n):
        total = _visit(x, y, i, xcuts, xlo, xhi, ycuts, ycut_off, ylo, yhi, empty_t, empty_o, total)
    tile = np.empty(total, np.int64)
    own = np.empty(total, np.bool_)
    owner = np.empty(total, np.int64)
    m = 0
    for i in range(n):
        m1 = _visit(x, y, i, xcuts, xlo, xhi, ycuts, ycut_off, ylo, yhi, tile, own, m)
        for k in range(m, m1):
            owner[k] = i
        m = m1
    # stable counting sort by group 2 * tile + (not own)
    ng = 2 * ntiles
    start = np.zeros(ng + 1, np.int64)
    for k in range(total):
        g = 2 * tile[k] + (0 if own[k] else 1)
        start[g + 1] += 1
    for g in range(ng):
        start[g + 1] += start[g]
    head = start[:-1].copy()
    pt = np.empty(total, np.int64)
    for k in range(total):
        g = 2 * tile[k] + (0 if own[k] else 1)
        pt[head[g]] = owner[k]
        head[g] += 1
    return pt, start


@njit(cache=CACHE)
def _find(parent, i):
    """Root of ``i``, halving the path on the way."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=CACHE)
def union_pairs(parent, a, b):
    """Union ``a[k]`` with ``b[k]`` for every ``k`` (the smaller root becomes the root)."""
    for k in range(a.shape[0]):
        ra = _find(parent, a[k])
        rb = _find(parent, b[k])
        if ra < rb:
            parent[rb] = ra
        elif rb < ra:
            parent[ra] = rb


@njit(cache=CACHE)
def _compact(g, offsets, coff):
    """Compact id of component id ``g``: tile ``k`` (the last with ``offsets[k] <= g``)
    numbers its components from ``offsets[k]``; compact ids from ``coff[k]``."""
    k = _first_gt(offsets, 0, offsets.shape[0], g) - 1
    return coff[k] + (g - offsets[k])


@njit(cache=CACHE)
def compact_ids(g, offsets, coff):
    """:func:`_compact` of every entry of ``g``."""
    out = np.empty(g.shape[0], np.int64)
    for i in range(g.shape[0]):
        out[i] = _compact(g[i], offsets, coff)
    return out


@njit(cache=CACHE)
def number_clusters(comp, core, parent, number, next_number, offsets, coff):
    """Replace, in place, each core point's component id in ``comp`` by its cluster
    number and every other entry by -1 (component ids are compacted first, see
    :func:`_compact`).

    Called on consecutive chunks of the points in increasing index order, so a cluster is
    numbered when its smallest core index is met, as scikit-learn numbers them.
    ``number`` (per component id, -1 = not numbered yet) and the returned counter carry
    over between chunks.
    """
    for i in range(comp.shape[0]):
        if core[i]:
            r = _find(parent, _compact(comp[i], offsets, coff))
            if number[r] < 0:
                number[r] = next_number
                next_number += 1
            comp[i] = number[r]
        else:
            comp[i] = -1
    return next_number
