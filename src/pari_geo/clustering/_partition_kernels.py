"""Numba kernels for partitioned (out-of-core) DBSCAN.

Only ``@numba.njit`` functions over arrays and named tuples live here; orchestration is
in :mod:`pari_geo.clustering.partitioned`. The per-partition neighbour work reuses the
kernels of :mod:`pari_geo.clustering._kernels` (through :mod:`pari_geo.clustering.driver`);
these kernels only route points to partitions and resolve cluster identities across
partitions, with the union-find of :mod:`pari_geo.outofcore._unionfind`. No object mode,
no warm-up at import.

Partition layout
----------------
Space is cut into ``ns`` vertical strips by the sorted cut values ``xcuts`` (strip ``s``
holds ``xcuts[s-1] <= x < xcuts[s]``), and each strip ``s`` into tiles by its own sorted
cut values ``ycuts[ycut_off[s]:ycut_off[s+1]]``. Tile ``t`` of strip ``s`` has the global
number ``ycut_off[s] + s + t``. ``xlo``/``xhi`` (per strip) and ``ylo``/``yhi`` (per tile)
are the *expanded* bounds: the box widened by the halo margin, ``-inf``/``+inf`` at the
outer edges; they are non-decreasing, so the strips (tiles) whose expanded box contains a
coordinate form a contiguous range found by binary search. :class:`TileBounds` carries
these arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from .._numba import CACHE
from ..outofcore._unionfind import find
from ._kernels import window


class TileBounds(NamedTuple):
    """Cut values and expanded (halo) bounds of the tiles (see the layout above)."""

    xcuts: np.ndarray
    """Sorted x cuts between strips (float64, ``ns - 1``)."""
    ycuts: np.ndarray
    """Sorted y cuts of every strip, concatenated (float64)."""
    ycut_off: np.ndarray
    """Strip ``s``'s y cuts are ``ycuts[ycut_off[s]:ycut_off[s + 1]]`` (int64, ``ns + 1``)."""
    xlo: np.ndarray
    """Expanded lower x bound of each strip."""
    xhi: np.ndarray
    """Expanded upper x bound of each strip."""
    ylo: np.ndarray
    """Expanded lower y bound of each tile."""
    yhi: np.ndarray
    """Expanded upper y bound of each tile."""


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
def _halo_visit(px, py, i, own_tile, tb, head, pt, fill):
    """For each tile other than ``own_tile`` whose expanded box holds ``(px, py)``:
    count the point in its halo group (``head[g + 1] += 1``) or, with ``fill``, place it
    (``pt[head[g]] = i``), where ``g = 2 * tile + 1``."""
    xlo, xhi, ycut_off, ylo, yhi = tb.xlo, tb.xhi, tb.ycut_off, tb.ylo, tb.yhi
    ns = xlo.shape[0]
    s0 = _first_ge(xhi, 0, ns, px)
    s1 = _first_gt(xlo, 0, ns, px)
    for s in range(s0, s1):
        c0 = ycut_off[s]
        base = c0 + s
        nt = ycut_off[s + 1] - c0 + 1
        t0 = _first_ge(yhi, base, base + nt, py)
        t1 = _first_gt(ylo, base, base + nt, py)
        for tile in range(t0, t1):
            if tile == own_tile:
                continue
            g = 2 * tile + 1
            if fill:
                pt[head[g]] = i
                head[g] += 1
            else:
                head[g + 1] += 1


@njit(cache=CACHE)
def tile_memberships(x, y, tb, ntiles):
    """Route a chunk of points to the tiles whose expanded box holds them.

    Returns ``pt`` (chunk indices) grouped by ``g = 2 * tile + (0 for the tile's own
    points, 1 for its halo)`` in increasing order of ``g`` and of the point within a
    group, and ``start`` (length ``2 * ntiles + 1``): group ``g`` is
    ``pt[start[g]:start[g + 1]]``. Every point is in exactly one own group. A point
    farther than the margin from its own tile's inner edges (most points) is in no halo
    and skips the search over the neighbouring strips and tiles.
    """
    xcuts, ycuts, ycut_off = tb.xcuts, tb.ycuts, tb.ycut_off
    xlo, xhi, ylo, yhi = tb.xlo, tb.xhi, tb.ylo, tb.yhi
    n = x.shape[0]
    ns = xlo.shape[0]
    own = np.empty(n, np.int64)
    near = np.zeros(n, np.bool_)
    start = np.zeros(2 * ntiles + 1, np.int64)
    dummy = np.empty(0, np.int64)
    for i in range(n):
        px = x[i]
        py = y[i]
        s = _first_gt(xcuts, 0, xcuts.shape[0], px)
        c0 = ycut_off[s]
        c1 = ycut_off[s + 1]
        base = c0 + s
        t = _first_gt(ycuts, c0, c1, py) - c0
        tile = base + t
        own[i] = tile
        start[2 * tile + 1] += 1
        nt = c1 - c0 + 1
        if (
            (s + 1 < ns and px >= xlo[s + 1])
            or (s > 0 and px <= xhi[s - 1])
            or (t + 1 < nt and py >= ylo[tile + 1])
            or (t > 0 and py <= yhi[tile - 1])
        ):
            near[i] = True
            _halo_visit(px, py, i, tile, tb, start, dummy, False)
    for g in range(2 * ntiles):
        start[g + 1] += start[g]
    head = start[:-1].copy()
    pt = np.empty(start[-1], np.int64)
    for i in range(n):
        g = 2 * own[i]
        pt[head[g]] = i
        head[g] += 1
        if near[i]:
            _halo_visit(x[i], y[i], i, own[i], tb, head, pt, True)
    return pt, start


@njit(cache=CACHE)
def flip_core_labels(labels, cell_start, ncore, top):
    """``top - labels`` at the core positions of each cell (the first ``ncore[c]``),
    the other entries uninitialised (to be filled by the border kernel)."""
    out = np.empty(labels.shape[0], np.int64)
    for c in range(cell_start.shape[0] - 1):
        s0 = cell_start[c]
        for i in range(s0, s0 + ncore[c]):
            out[i] = top - labels[i]
    return out


@njit(cache=CACHE)
def scatter_lo_hi(labels, flipped, order, cell_start, ncore, top, n_own):
    """Back to the local order: core flags, ``lo`` (``labels``) and ``hi``
    (``top - flipped``, -1 stays -1), and ``m`` = 1 + the highest component of a core
    point among the first ``n_own`` local points (0 if none)."""
    n = labels.shape[0]
    lo = np.empty(n, np.int64)
    hi = np.empty(n, np.int64)
    core = np.zeros(n, np.bool_)
    m = 0
    for c in range(cell_start.shape[0] - 1):
        s0 = cell_start[c]
        e = s0 + ncore[c]
        for i in range(s0, cell_start[c + 1]):
            j = order[i]
            lo[j] = labels[i]
            f = flipped[i]
            hi[j] = top - f if f >= 0 else -1
            if i < e:
                core[j] = True
                if j < n_own and labels[i] + 1 > m:
                    m = labels[i] + 1
    return core, lo, hi, m


@njit(cache=CACHE)
def undecided_positions(labels, flipped, order, cell_start, ncore, top, m, n_own):
    """Sorted positions of the non-core points among the first ``n_own`` local points
    whose core neighbours are in several components or in one numbered ``>= m``."""
    k = 0
    for phase in range(2):
        if phase == 1:
            out = np.empty(k, np.int64)
            k = 0
        else:
            out = np.empty(0, np.int64)
        for c in range(cell_start.shape[0] - 1):
            for i in range(cell_start[c] + ncore[c], cell_start[c + 1]):
                if order[i] >= n_own or labels[i] < 0:
                    continue
                hi = top - flipped[i]
                if labels[i] != hi or hi >= m:
                    if phase == 1:
                        out[k] = i
                    k += 1
    return out


@njit(cache=CACHE)
def _query_components(p, pts, labels, grid, ncore, eps2):
    """Distinct component numbers of the core points within eps of sorted position
    ``p``, each with the position of one such core point: ``(numbers, positions)``."""
    xs, ys = pts.xs, pts.ys
    cell_start = grid.cell_start
    nb = np.empty(25, np.int64)
    nbit = np.empty(25, np.int64)
    c = _first_gt(cell_start, 0, cell_start.shape[0], p) - 1
    m = window(c, grid, nb, nbit)
    size = 0
    for t in range(m):
        size += ncore[nb[t]]
    lab = np.empty(size, np.int64)
    pos = np.empty(size, np.int64)
    k = 0
    px = xs[p]
    py = ys[p]
    for t in range(m):
        d = nb[t]
        s0 = cell_start[d]
        for j in range(s0, s0 + ncore[d]):
            dx = px - xs[j]
            dy = py - ys[j]
            if dx * dx + dy * dy <= eps2:
                lab[k] = labels[j]
                pos[k] = j
                k += 1
    o = np.argsort(lab[:k])
    out_l = np.empty(k, np.int64)
    out_p = np.empty(k, np.int64)
    u = 0
    for i in range(k):
        if u == 0 or lab[o[i]] != out_l[u - 1]:
            out_l[u] = lab[o[i]]
            out_p[u] = pos[o[i]]
            u += 1
    return out_l[:u], out_p[:u]


@njit(cache=CACHE)
def neighbour_components(qpos, pts, labels, grid, ncore, eps2):
    """For each query point (sorted position ``qpos[k]``, core points first in each cell
    as after ``core_first``), one representative core point per distinct component
    among the core points within eps. Returns pairs ``(k, representative position)``.
    """
    ks = np.empty(0, np.int64)
    ps = np.empty(0, np.int64)
    for phase in range(2):
        total = 0
        for k in range(qpos.shape[0]):
            _, pos = _query_components(qpos[k], pts, labels, grid, ncore, eps2)
            if phase == 1:
                for i in range(pos.shape[0]):
                    ks[total + i] = k
                    ps[total + i] = pos[i]
            total += pos.shape[0]
        if phase == 0:
            ks = np.empty(total, np.int64)
            ps = np.empty(total, np.int64)
    return ks, ps


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
    number (component ids are compacted first, see :func:`_compact`).

    Called on consecutive chunks of the points in increasing index order, so a cluster is
    numbered when its smallest core index is met, as scikit-learn numbers them.
    ``number`` (per compact id, -1 = not numbered yet) and the returned counter carry
    over between chunks. Entries of non-core points are left alone.
    """
    for i in range(comp.shape[0]):
        if core[i]:
            r = find(parent, _compact(comp[i], offsets, coff))
            if number[r] < 0:
                number[r] = next_number
                next_number += 1
            comp[i] = number[r]
    return next_number


@njit(cache=CACHE)
def number_borders(comp, core, parent, number, offsets, coff):
    """After :func:`number_clusters`: replace the component id of each non-core point
    (``>= 0``; -1 noise and -2 undecided stay) by its cluster number. Returns the
    number of undecided points."""
    undecided = 0
    for i in range(comp.shape[0]):
        if not core[i]:
            if comp[i] >= 0:
                comp[i] = number[find(parent, _compact(comp[i], offsets, coff))]
            elif comp[i] == -2:
                undecided += 1
    return undecided
