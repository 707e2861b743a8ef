"""Numba kernels for exact two-dimensional Euclidean DBSCAN on a uniform grid.

Only ``@numba.njit`` functions over arrays and the named tuples that carry their state
(:class:`Points`, :class:`Grid`, :class:`Cells`, :class:`CoreCells`) live here; the one
driver that calls them in order is :mod:`pari_geo.clustering.driver`. No object mode, no
warm-up at import. Set the environment variable ``PARI_GEO_NUMBA_CACHE=0`` (before
importing pari_geo) to turn numba's on-disk cache off (:mod:`pari_geo._numba`). Core
points are joined with the union-find of :mod:`pari_geo.outofcore._unionfind`.

Geometry and exactness
----------------------
Points are binned into square cells of side slightly below ``eps / sqrt(2)`` and the
cells are sorted by key ``cx * ny + cy``. A point's eps-neighbours lie in the 5 x 5
window of cells around its own cell. Two points ``p`` and ``q`` are neighbours iff::

    dx = p.x - q.x; dy = p.y - q.y; dx * dx + dy * dy <= eps * eps

evaluated in float64 exactly in that order (the reduced distance scikit-learn's
KD-tree compares). Cell-level shortcuts compare the bounding boxes of the points actually
in a cell (not the nominal cell square), with the same floating-point operations; since
rounding is monotone, a box bound is a valid bound on every computed point distance, so
the shortcuts never change the result.

A cell is *tight* when the computed reduced diameter of its bounding box is ``<= eps**2``:
all its points are then mutual neighbours. Cells are tight by construction except in
pathological floating-point situations, which take an exact point-level (serial) path.

All arrays of per-point data are in *sorted* order (by cell) unless named ``orig``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .._numba import CACHE as _CACHE
from ..outofcore._unionfind import find_compress, root, union


class Points(NamedTuple):
    """The points in sorted order (by cell): coordinates and weights."""

    xs: np.ndarray
    """x (float64)."""
    ys: np.ndarray
    """y (float64)."""
    ws: np.ndarray
    """Weights (float64); empty when unweighted."""
    weighted: bool
    """Whether ``ws`` holds the weights."""


class Grid(NamedTuple):
    """The non-empty cells of the uniform grid, sorted by key ``cx * ny + cy``."""

    cell_start: np.ndarray
    """First sorted position of each cell, and ``n`` at the end (``ncells + 1``, int64)."""
    cell_key: np.ndarray
    """Key of each cell (int64, increasing)."""
    nx: int
    """Number of grid columns."""
    ny: int
    """Number of grid rows."""
    dense_map: np.ndarray
    """Key -> cell index or -1 (int64, ``nx * ny + 1``) when ``dense``, else empty."""
    dense: bool
    """Whether cells are looked up in ``dense_map`` (else by binary search of keys)."""


class Cells(NamedTuple):
    """Per-cell summary of all points (:func:`cell_boxes`)."""

    box: np.ndarray
    """Bounding box ``x0, x1, y0, y1`` of each cell's points (``(ncells, 4)`` float64)."""
    weight: np.ndarray
    """Total weight (the count when unweighted) of each cell (float64)."""
    tight: np.ndarray
    """Whether all of a cell's points are within eps of each other (bool)."""


class CoreCells(NamedTuple):
    """Per-cell summary of the core points, once they come first in each cell
    (:func:`core_first`)."""

    ncore: np.ndarray
    """Number of core points of each cell (int64)."""
    cbox: np.ndarray
    """Bounding box of each cell's core points (``+inf``/``-inf`` without any)."""
    tight: np.ndarray
    """:attr:`Cells.tight`."""

# The 25 cell offsets of the 5 x 5 window, nearest first (helps early exits).
_OFFSETS = sorted(
    ((dx, dy) for dx in range(-2, 3) for dy in range(-2, 3)),
    key=lambda o: (o[0] * o[0] + o[1] * o[1], o),
)
OFF_DX = np.array([o[0] for o in _OFFSETS], dtype=np.int64)
OFF_DY = np.array([o[1] for o in _OFFSETS], dtype=np.int64)
BIG = np.int64(2**62)
# Links are resolved in rounds of increasing cell distance: once the nearest cells are
# joined, most farther pairs are already connected and skip the point-level test.
ROUND_MASKS = [
    sum(1 << t for t, (dx, dy) in enumerate(_OFFSETS) if dx * dx + dy * dy in group)
    for group in ({1}, {2}, {4, 5}, {8})
]


# ---------------------------------------------------------------------------------------
# small inline helpers
# ---------------------------------------------------------------------------------------
@njit(cache=_CACHE, nogil=True)
def _pt_box_min(px, py, x0, x1, y0, y1):
    dx = 0.0
    if px < x0:
        dx = x0 - px
    elif px > x1:
        dx = px - x1
    dy = 0.0
    if py < y0:
        dy = y0 - py
    elif py > y1:
        dy = py - y1
    return dx * dx + dy * dy


@njit(cache=_CACHE, nogil=True)
def _pt_box_max(px, py, x0, x1, y0, y1):
    dx = max(px - x0, x1 - px)
    dy = max(py - y0, y1 - py)
    return dx * dx + dy * dy


@njit(cache=_CACHE, nogil=True)
def _box_box_min(ax0, ax1, ay0, ay1, bx0, bx1, by0, by1):
    dx = max(0.0, max(bx0 - ax1, ax0 - bx1))
    dy = max(0.0, max(by0 - ay1, ay0 - by1))
    return dx * dx + dy * dy


@njit(cache=_CACHE, nogil=True)
def _box_box_max(ax0, ax1, ay0, ay1, bx0, bx1, by0, by1):
    dx = max(bx1 - ax0, ax1 - bx0)
    dy = max(by1 - ay0, ay1 - by0)
    return dx * dx + dy * dy


@njit(cache=_CACHE, nogil=True)
def _lookup(key, cell_key, dense_map, dense):
    """Index of the cell with ``key``, or -1."""
    if dense:
        return dense_map[key]
    lo = 0
    hi = cell_key.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if cell_key[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < cell_key.shape[0] and cell_key[lo] == key:
        return lo
    return -1


@njit(cache=_CACHE, nogil=True)
def window(c, grid, out_cell, out_bit):
    """Non-empty cells of the 5 x 5 window around cell ``c`` (itself included).

    Fills ``out_cell`` (cell indices) and ``out_bit`` (offset number 0..24, nearest
    first) and returns how many were found.
    """
    cell_key, nx, ny = grid.cell_key, grid.nx, grid.ny
    dense_map, dense = grid.dense_map, grid.dense
    key = cell_key[c]
    cx = key // ny
    cy = key - cx * ny
    m = 0
    for t in range(25):
        ux = cx + OFF_DX[t]
        uy = cy + OFF_DY[t]
        if ux < 0 or ux >= nx or uy < 0 or uy >= ny:
            continue
        d = _lookup(ux * ny + uy, cell_key, dense_map, dense)
        if d >= 0:
            out_cell[m] = d
            out_bit[m] = t
            m += 1
    return m


# ---------------------------------------------------------------------------------------
# 1. binning and sorting
# ---------------------------------------------------------------------------------------
@njit(cache=_CACHE, nogil=True)
def cell_keys(x, y, xmin, ymin, inv_side, ny):
    """Cell key ``cx * ny + cy`` of every point (coordinates already validated)."""
    n = x.shape[0]
    keys = np.empty(n, np.int64)
    for i in range(n):
        cx = np.int64((x[i] - xmin) * inv_side)
        cy = np.int64((y[i] - ymin) * inv_side)
        keys[i] = cx * ny + cy
    return keys


@njit(cache=_CACHE, nogil=True)
def counting_sort(keys, nkeys, x, y, w, weighted):
    """Stable counting sort of the points by cell key (``keys`` in ``[0, nkeys)``).

    Returns ``order`` (original index of each sorted position), the sorted ``xs``,
    ``ys`` and ``ws`` (empty when unweighted), ``cell_start`` (``ncells + 1``),
    ``cell_key`` (sorted distinct keys) and ``dense_map`` (key -> cell index or -1,
    length ``nkeys + 1``). (A two-pass radix variant was measured slower here.)
    """
    n = keys.shape[0]
    head = np.zeros(nkeys + 1, np.int64)
    for i in range(n):
        head[keys[i] + 1] += 1
    ncells = 0
    for k in range(nkeys):
        if head[k + 1] > 0:
            ncells += 1
        head[k + 1] += head[k]
    order = np.empty(n, np.int64)
    xs = np.empty(n, np.float64)
    ys = np.empty(n, np.float64)
    ws = np.empty(n if weighted else 0, np.float64)
    for i in range(n):
        k = keys[i]
        p = head[k]
        order[p] = i
        xs[p] = x[i]
        ys[p] = y[i]
        if weighted:
            ws[p] = w[i]
        head[k] = p + 1
    # head[k] is now the end of bucket k
    cell_start = np.empty(ncells + 1, np.int64)
    cell_key = np.empty(ncells, np.int64)
    c = 0
    prev = 0
    for k in range(nkeys):
        end = head[k]
        if end > prev:
            cell_key[c] = k
            cell_start[c] = prev
            head[k] = c
            c += 1
        else:
            head[k] = -1
        prev = end
    head[nkeys] = -1
    cell_start[ncells] = n
    return order, xs, ys, ws, cell_start, cell_key, head


@njit(cache=_CACHE, nogil=True)
def gather_points(x, y, w, weighted, order):
    """Coordinates (and weights) in sorted order (used with the generic sort)."""
    n = order.shape[0]
    xs = np.empty(n, np.float64)
    ys = np.empty(n, np.float64)
    ws = np.empty(n if weighted else 0, np.float64)
    for i in range(n):
        j = order[i]
        xs[i] = x[j]
        ys[i] = y[j]
        if weighted:
            ws[i] = w[j]
    return xs, ys, ws


@njit(cache=_CACHE, nogil=True)
def cell_boxes(pts, cell_start, blocks, eps2):
    """Bounding box, weight (or size) and tightness of every cell (:class:`Cells`)."""
    xs, ys, ws, weighted = pts.xs, pts.ys, pts.ws, pts.weighted
    ncells = cell_start.shape[0] - 1
    box = np.empty((ncells, 4), np.float64)
    cw = np.empty(ncells, np.float64)
    tight = np.empty(ncells, np.bool_)
    for b in range(blocks.shape[0] - 1):
        for c in range(blocks[b], blocks[b + 1]):
            s0 = cell_start[c]
            s1 = cell_start[c + 1]
            x0 = xs[s0]
            x1 = x0
            y0 = ys[s0]
            y1 = y0
            acc = 0.0
            for i in range(s0, s1):
                xi = xs[i]
                yi = ys[i]
                if xi < x0:
                    x0 = xi
                if xi > x1:
                    x1 = xi
                if yi < y0:
                    y0 = yi
                if yi > y1:
                    y1 = yi
                if weighted:
                    acc += ws[i]
            box[c, 0] = x0
            box[c, 1] = x1
            box[c, 2] = y0
            box[c, 3] = y1
            cw[c] = acc if weighted else float(s1 - s0)
            dx = x1 - x0
            dy = y1 - y0
            tight[c] = dx * dx + dy * dy <= eps2
    return box, cw, tight


# ---------------------------------------------------------------------------------------
# 2. core points
# ---------------------------------------------------------------------------------------
@njit(cache=_CACHE, nogil=True)
def core_flags_block(pts, grid, cells, blocks, eps2, min_samples, core, b):
    """One block of cells of :func:`core_flags`, in the calling thread, into ``core``."""
    xs, ys, ws, weighted = pts.xs, pts.ys, pts.ws, pts.weighted
    cell_start = grid.cell_start
    box, cw, tight = cells.box, cells.weight, cells.tight
    nb = np.empty(25, np.int64)
    nbit = np.empty(25, np.int64)
    for c in range(blocks[b], blocks[b + 1]):
        s0 = cell_start[c]
        s1 = cell_start[c + 1]
        tc = tight[c]
        if tc and cw[c] >= min_samples:
            for i in range(s0, s1):
                core[i] = True
            continue
        m0 = window(c, grid, nb, nbit)
        # keep the cells that can hold a neighbour of some point of c
        m = 0
        for t in range(m0):
            d = nb[t]
            if tc and d == c:
                continue
            if (
                _box_box_min(
                    box[c, 0],
                    box[c, 1],
                    box[c, 2],
                    box[c, 3],
                    box[d, 0],
                    box[d, 1],
                    box[d, 2],
                    box[d, 3],
                )
                <= eps2
            ):
                nb[m] = d
                m += 1
        base = cw[c] if tc else 0.0
        for i in range(s0, s1):
            px = xs[i]
            py = ys[i]
            acc = base
            if acc < min_samples:
                for t in range(m):
                    d = nb[t]
                    if _pt_box_min(px, py, box[d, 0], box[d, 1], box[d, 2], box[d, 3]) > eps2:
                        continue
                    if _pt_box_max(px, py, box[d, 0], box[d, 1], box[d, 2], box[d, 3]) <= eps2:
                        acc += cw[d]
                    else:
                        for j in range(cell_start[d], cell_start[d + 1]):
                            dx = px - xs[j]
                            dy = py - ys[j]
                            if dx * dx + dy * dy <= eps2:
                                if weighted:
                                    acc += ws[j]
                                else:
                                    acc += 1.0
                    if acc >= min_samples:
                        break
            core[i] = acc >= min_samples


@njit(cache=_CACHE, parallel=True)
def core_flags(pts, grid, cells, blocks, eps2, min_samples):
    """Core flag (sorted order) of every point.

    A point is core iff the total weight (count when unweighted) of the points within
    eps, itself included, is ``>= min_samples``. Weights are non-negative, so the running
    sum may stop as soon as it reaches ``min_samples``.
    """
    n = pts.xs.shape[0]
    core = np.zeros(n, np.bool_)
    for b in prange(blocks.shape[0] - 1):
        core_flags_block(pts, grid, cells, blocks, eps2, min_samples, core, b)
    return core


@njit(cache=_CACHE, nogil=True)
def core_first(xs, ys, order, core, cell_start, blocks):
    """Reorder each cell in place, stably, so that its core points come first.

    Returns the number of core points per cell and the bounding box of each cell's core
    points (``+inf``/``-inf`` when it has none). Cells that are all core or all non-core
    are left untouched.
    """
    ncells = cell_start.shape[0] - 1
    ncore = np.zeros(ncells, np.int64)
    cbox = np.empty((ncells, 4), np.float64)
    for b in range(blocks.shape[0] - 1):
        for c in range(blocks[b], blocks[b + 1]):
            s0 = cell_start[c]
            s1 = cell_start[c + 1]
            x0 = np.inf
            x1 = -np.inf
            y0 = np.inf
            y1 = -np.inf
            k = 0
            for i in range(s0, s1):
                if core[i]:
                    k += 1
                    xi = xs[i]
                    yi = ys[i]
                    if xi < x0:
                        x0 = xi
                    if xi > x1:
                        x1 = xi
                    if yi < y0:
                        y0 = yi
                    if yi > y1:
                        y1 = yi
            ncore[c] = k
            cbox[c, 0] = x0
            cbox[c, 1] = x1
            cbox[c, 2] = y0
            cbox[c, 3] = y1
            if k == 0 or k == s1 - s0:
                continue
            m = s1 - s0 - k
            tx = np.empty(m, np.float64)
            ty = np.empty(m, np.float64)
            to = np.empty(m, np.int64)
            k = s0
            t = 0
            for i in range(s0, s1):
                if core[i]:
                    xs[k] = xs[i]
                    ys[k] = ys[i]
                    order[k] = order[i]
                    k += 1
                else:
                    tx[t] = xs[i]
                    ty[t] = ys[i]
                    to[t] = order[i]
                    t += 1
            for t in range(m):
                xs[k + t] = tx[t]
                ys[k + t] = ty[t]
                order[k + t] = to[t]
    return ncore, cbox


# ---------------------------------------------------------------------------------------
# 3. connecting core points (union-find)
# ---------------------------------------------------------------------------------------
# ``parent`` is over sorted positions; sets are joined by index (the smaller sorted
# position becomes the root), so the result does not depend on the order of the unions.
@njit(cache=_CACHE, nogil=True)
def edge_candidates_block(grid, cores, blocks, eps2, sure, maybe, b):
    """One block of cells of :func:`edge_candidates`, in the calling thread."""
    ncore, cbox, tight = cores.ncore, cores.cbox, cores.tight
    nb = np.empty(25, np.int64)
    nbit = np.empty(25, np.int64)
    for c in range(blocks[b], blocks[b + 1]):
        if ncore[c] == 0 or not tight[c]:
            continue
        m = window(c, grid, nb, nbit)
        s = np.int64(0)
        u = np.int64(0)
        for t in range(m):
            d = nb[t]
            if d <= c or ncore[d] == 0 or not tight[d]:
                continue
            if (
                _box_box_min(
                    cbox[c, 0],
                    cbox[c, 1],
                    cbox[c, 2],
                    cbox[c, 3],
                    cbox[d, 0],
                    cbox[d, 1],
                    cbox[d, 2],
                    cbox[d, 3],
                )
                > eps2
            ):
                continue
            bit = np.int64(1) << nbit[t]
            if (
                _box_box_max(
                    cbox[c, 0],
                    cbox[c, 1],
                    cbox[c, 2],
                    cbox[c, 3],
                    cbox[d, 0],
                    cbox[d, 1],
                    cbox[d, 2],
                    cbox[d, 3],
                )
                <= eps2
            ):
                s |= bit
            else:
                u |= bit
        sure[c] = s
        maybe[c] = u


@njit(cache=_CACHE, parallel=True)
def edge_candidates(grid, cores, blocks, eps2):
    """Classify the links from each core cell to its *forward* core neighbours.

    Only cells with a larger key are considered (each pair once). Returns two bit masks
    per cell over the 25 window offsets: ``sure`` (all core points of both cells are
    within eps of each other) and ``maybe`` (a point-level test is needed). Pairs that
    involve a non-tight cell are left to :func:`link_slow`.
    """
    ncells = grid.cell_start.shape[0] - 1
    sure = np.zeros(ncells, np.int64)
    maybe = np.zeros(ncells, np.int64)
    for b in prange(blocks.shape[0] - 1):
        edge_candidates_block(grid, cores, blocks, eps2, sure, maybe, b)
    return sure, maybe


@njit(cache=_CACHE, nogil=True)
def link_masks(parent, masks, grid):
    """Union the first core points of cell pairs flagged in ``masks`` (serial)."""
    cell_start, cell_key, ny = grid.cell_start, grid.cell_key, grid.ny
    dense_map, dense = grid.dense_map, grid.dense
    for c in range(masks.shape[0]):
        mk = masks[c]
        if mk == 0:
            continue
        key = cell_key[c]
        cx = key // ny
        cy = key - cx * ny
        for t in range(25):
            if (mk >> t) & 1:
                d = _lookup((cx + OFF_DX[t]) * ny + cy + OFF_DY[t], cell_key, dense_map, dense)
                union(parent, cell_start[c], cell_start[d])


@njit(cache=_CACHE, nogil=True)
def resolve_maybe_block(pts, parent, maybe, round_mask, grid, cores, blocks, eps2, found, b):
    """One block of cells of :func:`resolve_maybe`, in the calling thread, into ``found``."""
    xs, ys = pts.xs, pts.ys
    cell_start, cell_key, ny = grid.cell_start, grid.cell_key, grid.ny
    dense_map, dense = grid.dense_map, grid.dense
    ncore, cbox = cores.ncore, cores.cbox
    for c in range(blocks[b], blocks[b + 1]):
        mk = maybe[c] & round_mask
        if mk == 0:
            continue
        key = cell_key[c]
        cx = key // ny
        cy = key - cx * ny
        sc = cell_start[c]
        rc = root(parent, sc)
        res = np.int64(0)
        for t in range(25):
            if not (mk >> t) & 1:
                continue
            d = _lookup((cx + OFF_DX[t]) * ny + cy + OFF_DY[t], cell_key, dense_map, dense)
            sd = cell_start[d]
            if root(parent, sd) == rc:
                continue
            hit = False
            for i in range(sc, sc + ncore[c]):
                px = xs[i]
                py = ys[i]
                if _pt_box_min(px, py, cbox[d, 0], cbox[d, 1], cbox[d, 2], cbox[d, 3]) > eps2:
                    continue
                for j in range(sd, sd + ncore[d]):
                    dx = px - xs[j]
                    dy = py - ys[j]
                    if dx * dx + dy * dy <= eps2:
                        hit = True
                        break
                if hit:
                    break
            if hit:
                res |= np.int64(1) << t
        found[c] = res


@njit(cache=_CACHE, parallel=True)
def resolve_maybe(pts, parent, maybe, round_mask, grid, cores, blocks, eps2):
    """Point-level test of the ``maybe`` links (restricted to the offsets in
    ``round_mask``) whose cells are not yet connected.

    ``parent`` is only read here, so the result does not depend on scheduling.
    """
    ncells = maybe.shape[0]
    found = np.zeros(ncells, np.int64)
    for b in prange(blocks.shape[0] - 1):
        resolve_maybe_block(pts, parent, maybe, round_mask, grid, cores, blocks, eps2, found, b)
    return found


@njit(cache=_CACHE, nogil=True)
def link_slow(pts, parent, grid, cores, eps2):
    """Exact point-level linking for cells that are not tight (serial, rarely used)."""
    xs, ys = pts.xs, pts.ys
    cell_start = grid.cell_start
    ncore, tight = cores.ncore, cores.tight
    nb = np.empty(25, np.int64)
    nbit = np.empty(25, np.int64)
    for c in range(cell_start.shape[0] - 1):
        if tight[c] or ncore[c] == 0:
            continue
        m = window(c, grid, nb, nbit)
        sc = cell_start[c]
        for i in range(sc, sc + ncore[c]):
            for t in range(m):
                d = nb[t]
                sd = cell_start[d]
                for j in range(sd, sd + ncore[d]):
                    dx = xs[i] - xs[j]
                    dy = ys[i] - ys[j]
                    if dx * dx + dy * dy <= eps2:
                        # a tight cell is represented by its first core point
                        union(parent, i, sd if tight[d] else j)
                        if tight[d]:
                            break


@njit(cache=_CACHE, nogil=True)
def cluster_roots(parent, order, grid, cores):
    """Roots of the union-find and the smallest original core index of each.

    Only *representatives* take part in the union-find: the first core point of a tight
    cell (also its smallest original index, the order being stable) and every core point
    of a non-tight cell. Returns ``slot`` (root position -> root number; only entries at
    roots are set) and ``mins`` (smallest original index per root number).
    """
    cell_start, ncore, tight = grid.cell_start, cores.ncore, cores.tight
    n = parent.shape[0]
    ncells = cell_start.shape[0] - 1
    slot = np.empty(n, np.int64)
    nroots = 0
    for c in range(ncells):
        s0 = cell_start[c]
        e = s0 + ncore[c] if not tight[c] else s0 + min(ncore[c], 1)
        for i in range(s0, e):
            find_compress(parent, i)
    for c in range(ncells):
        s0 = cell_start[c]
        e = s0 + ncore[c] if not tight[c] else s0 + min(ncore[c], 1)
        for i in range(s0, e):
            if parent[i] == i:
                slot[i] = nroots
                nroots += 1
    mins = np.full(nroots, np.int64(2**62), np.int64)
    for c in range(ncells):
        s0 = cell_start[c]
        e = s0 + ncore[c] if not tight[c] else s0 + min(ncore[c], 1)
        for i in range(s0, e):
            k = slot[parent[i]]
            if order[i] < mins[k]:
                mins[k] = order[i]
    return slot, mins


@njit(cache=_CACHE, nogil=True)
def core_labels(parent, slot, number, grid, cores):
    """Cluster number of every core point (sorted order). The other entries are left
    uninitialised and must be written by :func:`border_labels`.

    ``number[k]`` is the cluster number of root number ``k``: clusters are numbered in
    increasing order of their smallest original core index, as scikit-learn does.
    """
    cell_start, ncore, tight = grid.cell_start, cores.ncore, cores.tight
    n = parent.shape[0]
    labels = np.empty(n, np.int64)
    for c in range(cell_start.shape[0] - 1):
        s0 = cell_start[c]
        if tight[c]:
            if ncore[c] > 0:
                lab = number[slot[parent[s0]]]
                for i in range(s0, s0 + ncore[c]):
                    labels[i] = lab
        else:
            for i in range(s0, s0 + ncore[c]):
                labels[i] = number[slot[parent[i]]]
    return labels


# ---------------------------------------------------------------------------------------
# 4. border points
# ---------------------------------------------------------------------------------------
@njit(cache=_CACHE, nogil=True)
def cell_labels(labels, cell_start, ncore):
    """Common cluster number of a cell's core points, -1 without core points, -2 if they
    belong to several clusters (possible only in a non-tight cell)."""
    ncells = cell_start.shape[0] - 1
    out = np.full(ncells, -1, np.int64)
    for c in range(ncells):
        s0 = cell_start[c]
        if ncore[c] > 0:
            lab = labels[s0]
            for i in range(s0 + 1, s0 + ncore[c]):
                if labels[i] != lab:
                    lab = -2
                    break
            out[c] = lab
    return out


@njit(cache=_CACHE, nogil=True)
def border_labels_block(pts, labels, grid, cores, clab, blocks, eps2, b):
    """One block of cells of :func:`border_labels`, in the calling thread."""
    xs, ys = pts.xs, pts.ys
    cell_start = grid.cell_start
    ncore, cbox = cores.ncore, cores.cbox
    big = np.int64(2**62)
    nb = np.empty(25, np.int64)
    nbit = np.empty(25, np.int64)
    for c in range(blocks[b], blocks[b + 1]):
        s0 = cell_start[c] + ncore[c]
        s1 = cell_start[c + 1]
        if s0 == s1:
            continue
        m0 = window(c, grid, nb, nbit)
        # candidate cells with core points, sorted by cluster number (insertion sort)
        m = 0
        for t in range(m0):
            d = nb[t]
            if ncore[d] == 0:
                continue
            k = m
            while k > 0 and clab[nb[k - 1]] > clab[d]:
                nb[k] = nb[k - 1]
                k -= 1
            nb[k] = d
            m += 1
        for i in range(s0, s1):
            px = xs[i]
            py = ys[i]
            best = big
            for t in range(m):
                d = nb[t]
                lab = clab[d]
                if lab >= best:
                    break
                if _pt_box_min(px, py, cbox[d, 0], cbox[d, 1], cbox[d, 2], cbox[d, 3]) > eps2:
                    continue
                sd = cell_start[d]
                if lab == -2:
                    for j in range(sd, sd + ncore[d]):
                        dx = px - xs[j]
                        dy = py - ys[j]
                        if dx * dx + dy * dy <= eps2 and labels[j] < best:
                            best = labels[j]
                    continue
                if _pt_box_max(px, py, cbox[d, 0], cbox[d, 1], cbox[d, 2], cbox[d, 3]) <= eps2:
                    best = lab
                    break
                for j in range(sd, sd + ncore[d]):
                    dx = px - xs[j]
                    dy = py - ys[j]
                    if dx * dx + dy * dy <= eps2:
                        best = lab
                        break
                if best == lab:
                    break
            labels[i] = best if best != big else -1


@njit(cache=_CACHE, parallel=True)
def border_labels(pts, labels, grid, cores, clab, blocks, eps2):
    """Give each non-core point the lowest cluster number among the clusters of the core
    points within eps of it (scikit-learn's rule), in place on ``labels``."""
    for b in prange(blocks.shape[0] - 1):
        border_labels_block(pts, labels, grid, cores, clab, blocks, eps2, b)


@njit(cache=_CACHE, nogil=True)
def scatter_result(labels, order, cell_start, ncore, blocks):
    """Labels and core mask in the caller's original order."""
    n = labels.shape[0]
    out = np.empty(n, np.intp)
    core = np.zeros(n, np.bool_)
    for b in range(blocks.shape[0] - 1):
        for c in range(blocks[b], blocks[b + 1]):
            s0 = cell_start[c]
            s1 = cell_start[c + 1]
            for i in range(s0, s1):
                j = order[i]
                out[j] = labels[i]
                core[j] = i < s0 + ncore[c]
    return out, core
