"""numba kernels of the out-of-core stage (arrays in, arrays out; nopython only).

* :func:`uf_find` / :func:`uf_union`: a disjoint-set forest over global provisional
  component ids (roots are the smallest id of a set, so the result does not depend on the
  order of the unions);
* :func:`seam_union`: unions across one tile seam (straight and, for 8-connectivity,
  diagonal neighbours);
* :func:`flatten_roots`: every id pointing straight at its root;
* :func:`resolve_strip`: the raster-order pass that numbers the components 1..n in order of
  their first cell (as ``scipy.ndimage.label`` does on the whole grid) and sums the size
  layer, counts the cells and grows the bounding boxes, adding in raster order so the sums
  are bit-identical to the in-memory ``label_sums`` / ``np.bincount``.

The pure numpy twins used to check them are in ``tests/test_outofcore_degurba.py``.
"""

from __future__ import annotations

import numba
import numpy as np

from .._numba import CACHE


@numba.njit(cache=CACHE, nogil=True)
def uf_find(parent, x):
    """Root of ``x`` (with path compression)."""
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@numba.njit(cache=CACHE, nogil=True)
def uf_union(parent, a, b):
    """Merge the sets of ``a`` and ``b``; the smaller root becomes the root."""
    ra = uf_find(parent, a)
    rb = uf_find(parent, b)
    if ra == rb:
        return
    if ra < rb:
        parent[rb] = ra
    else:
        parent[ra] = rb


@numba.njit(cache=CACHE, nogil=True)
def seam_union(parent, a, b, offset, diagonal):
    """Union the components on the two sides of a seam.

    ``b[i]`` (one side, e.g. the top row of a tile) is adjacent to ``a[i + offset]``
    (the other side, e.g. the bottom row of the tile above) and, when ``diagonal``, also
    to ``a[i + offset - 1]`` and ``a[i + offset + 1]`` where these exist. Ids are > 0 for
    component cells, 0 for background. Returns the number of unions attempted.
    """
    n_a = a.shape[0]
    tried = 0
    for i in range(b.shape[0]):
        lb = b[i]
        if lb <= 0:
            continue
        j = i + offset
        lo = j - 1 if diagonal else j
        hi = j + 1 if diagonal else j
        for k in range(lo, hi + 1):
            if k < 0 or k >= n_a:
                continue
            la = a[k]
            if la > 0:
                uf_union(parent, la, lb)
                tried += 1
    return tried


@numba.njit(cache=CACHE, nogil=True)
def flatten_roots(parent):
    """Point every id at its root in place; returns the number of roots among ids >= 1."""
    n_roots = 0
    for i in range(parent.shape[0]):
        p = parent[i]
        if p == i:
            if i > 0:
                n_roots += 1
        else:
            parent[i] = parent[p]  # parent[p] is already a root (p < i)
    return n_roots


@numba.njit(cache=CACHE, nogil=True)
def resolve_strip(raw, weights, row0, roots, compact, state, sums, counts, bbox):
    """Number, sum, count and box the components of a full-width strip, in raster order.

    Parameters
    ----------
    raw : int32[:, :]
        Provisional ids of the strip (0 = background).
    weights : float[:, :] or None-like (0 x 0 array)
        Size layer of the strip; NaN counts as 0. A 0 x 0 array skips the sums.
    row0 : int
        Grid row of the strip's first row.
    roots : int64[:]
        ``roots[id]`` = root of each provisional id (flattened).
    compact : int32[:]
        ``compact[root]`` = final id, 0 while unseen; filled here.
    state : int64[1]
        ``state[0]`` = last final id given.
    sums, counts : float64[n + 1], int64[n + 1]
    bbox : int32[n + 1, 4]
        Row min, row max, col min, col max.
    """
    rows, cols = raw.shape
    use_w = weights.shape[0] == rows and weights.shape[1] == cols
    for r in range(rows):
        for c in range(cols):
            p = raw[r, c]
            if p <= 0:
                continue
            root = roots[p]
            k = compact[root]
            if k == 0:
                state[0] += 1
                k = state[0]
                compact[root] = k
                bbox[k, 0] = row0 + r
                bbox[k, 1] = row0 + r
                bbox[k, 2] = c
                bbox[k, 3] = c
            else:
                if row0 + r > bbox[k, 1]:
                    bbox[k, 1] = row0 + r
                if c < bbox[k, 2]:
                    bbox[k, 2] = c
                if c > bbox[k, 3]:
                    bbox[k, 3] = c
            counts[k] += 1
            if use_w:
                v = np.float64(weights[r, c])
                if v != v:
                    v = 0.0
                sums[k] += v


@numba.njit(cache=CACHE, nogil=True)
def map_ids(raw, lut, out):
    """``out[...] = lut[raw]`` without an intp temporary (ids >= 0)."""
    rows, cols = raw.shape
    for r in range(rows):
        for c in range(cols):
            out[r, c] = lut[raw[r, c]]
    return out
