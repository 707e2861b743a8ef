"""numba kernels of the out-of-core stage (arrays in, arrays out; nopython only).

* :func:`seam_union`: unions across one tile seam (straight and, for 8-connectivity,
  diagonal neighbours), with the one union-find of :mod:`._unionfind` (joined by index:
  roots are the smallest id of a set, so the result does not depend on the order of the
  unions; ``_unionfind.flatten`` then points every id at its root);
* :func:`resolve_strip`: the raster-order pass that numbers the components 1..n in order of
  their first cell (as ``scipy.ndimage.label`` does on the whole grid) and sums the size
  layer, counts the cells and grows the bounding boxes, adding in raster order so the sums
  are bit-identical to the in-memory ``label_sums`` / ``np.bincount``.

The pure numpy twins used to check them are in ``tests/test_outofcore_degurba.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from .._numba import CACHE
from ._unionfind import union


class StripTables(NamedTuple):
    """The per-component tables :func:`resolve_strip` fills, strip after strip.

    Attributes
    ----------
    compact : int32[:]
        ``compact[root]`` = final id, 0 while unseen.
    state : int64[1]
        ``state[0]`` = last final id given.
    sums : float64[n + 1]
    counts : int64[n + 1]
    bbox : int32[n + 1, 4]
        Row min, row max, col min, col max.
    """

    compact: np.ndarray
    state: np.ndarray
    sums: np.ndarray
    counts: np.ndarray
    bbox: np.ndarray


def strip_tables(n_ids: int, n_comp: int) -> StripTables:
    """Empty tables for ``n_ids`` provisional ids and ``n_comp`` components."""
    return StripTables(np.zeros(n_ids + 1, dtype=np.int32), np.zeros(1, dtype=np.int64),
                       np.zeros(n_comp + 1, dtype=np.float64),
                       np.zeros(n_comp + 1, dtype=np.int64),
                       np.zeros((n_comp + 1, 4), dtype=np.int32))


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
                union(parent, la, lb)
                tried += 1
    return tried


@numba.njit(cache=CACHE, nogil=True)
def resolve_strip(raw, weights, row0, roots, tables):
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
    tables : StripTables
        Filled here.
    """
    compact, state, sums, counts, bbox = (tables.compact, tables.state, tables.sums,
                                          tables.counts, tables.bbox)
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
