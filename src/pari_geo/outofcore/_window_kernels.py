"""numba kernel of the window means (:mod:`pari_geo.outofcore.windows`), for both engines.

:func:`window_mean_direct` sums each window directly, in a fixed order, so a cell's mean
depends only on the values in its window: the tiled engine computes it on a tile plus a halo
and gets the bits of the whole grid. The pure numpy twins are in ``tests/test_nordic7.py``
and ``tests/test_outofcore_nordic7.py``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .._numba import CACHE

__all__ = ["window_mean_direct"]


@numba.njit(cache=CACHE, nogil=True)
def window_mean_direct(values, before, after):
    """Mean over the window ``[i - before, i + after] x [j - before, j + after]`` of each cell.

    Cells outside the array and non-finite values are left out of the mean; a window with
    a ``+inf`` value has mean ``+inf``; a window without any finite value (and no ``+inf``)
    is NaN. The sums are *direct*, not running: first along each row, the window's values
    added left to right starting from 0, then down each column, the row sums of the
    window's rows added top to bottom starting from 0. A cell's result therefore depends
    only on the values in its window, never on where the array starts: computed on a tile
    with a halo of ``max(before, after)`` cells (or the grid edge) it is bit-identical to
    the result on the whole grid. ``O(cells x (before + after + 1))``.

    Parameters
    ----------
    values : float64[:, :]
    before, after : int
        Window cells before and after the centre (``size // 2`` and
        ``size - 1 - size // 2`` for a window of ``size`` cells a side).

    Returns
    -------
    float64[:, :]
    """
    rows, cols = values.shape
    row_sum = np.zeros((rows, cols), dtype=np.float64)
    row_n = np.zeros((rows, cols), dtype=np.int32)  # finite values; -1: a +inf in the row
    for i in range(rows):
        for j in range(cols):
            a = max(0, j - before)
            b = min(cols - 1, j + after)
            s = 0.0
            n = 0
            pinf = False
            for k in range(a, b + 1):
                v = values[i, k]
                if math.isfinite(v):
                    s += v
                    n += 1
                elif v > 0.0:
                    pinf = True
            row_sum[i, j] = s
            row_n[i, j] = -1 if pinf else n
    out = np.empty((rows, cols), dtype=np.float64)
    acc = np.zeros(cols, dtype=np.float64)
    cnt = np.zeros(cols, dtype=np.int64)
    pinf_col = np.zeros(cols, dtype=np.bool_)
    for i in range(rows):
        a = max(0, i - before)
        b = min(rows - 1, i + after)
        for j in range(cols):
            acc[j] = 0.0
            cnt[j] = 0
            pinf_col[j] = False
        for k in range(a, b + 1):
            for j in range(cols):
                n = row_n[k, j]
                if n < 0:
                    pinf_col[j] = True
                else:
                    acc[j] += row_sum[k, j]
                    cnt[j] += n
        for j in range(cols):
            if pinf_col[j]:
                out[i, j] = np.inf
            elif cnt[j] > 0:
                out[i, j] = acc[j] / cnt[j]
            else:
                out[i, j] = np.nan
    return out
