"""Window means over a grid: the neighbourhood operation of both engines.

A cell's window is the centred ``size × size`` square of cells (an even ``size`` puts
``size // 2`` cells before the centre and one fewer after it). The mean leaves out cells
outside the grid and cells without a value (NaN, ``-inf``); a window with a ``+inf`` value
has mean ``+inf``; a window without any value is NaN.

The sums are direct, not running (numba kernel
:func:`pari_geo.outofcore._window_kernels.window_mean_direct`: along rows left to right,
then down columns top to bottom), so a cell's mean does not depend on where the grid
starts:

* :func:`window_mean` (in memory) runs the kernel on the whole array, or on a grid of at
  most :data:`~pari_geo._numba.SMALL_GRID_CELLS` cells its numpy twin
  :func:`window_mean_numpy` (the same sums in the same order: the same bits);
* :func:`window_mean_reader` (by tiles) gives a window reader that reads its input with a
  halo of ``size // 2`` cells and runs the same kernel: the very same bits as the whole
  grid, for any window.

Examples
--------
>>> import numpy as np
>>> v = np.arange(12.0).reshape(3, 4)
>>> read = window_mean_reader(lambda r0, r1, c0, c1: v[r0:r1, c0:c1], 3, v.shape)
>>> bool(np.array_equal(read(1, 3, 2, 4), window_mean(v, 3)[1:3, 2:4]))
True
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["window_mean", "window_mean_numpy", "window_mean_reader", "WindowReader",
           "reused_window_means", "digest"]

#: window means already computed, by (size, shape, digest of the values); active only
#: inside :func:`reused_window_means` (one calibration runs the rules many times)
_REUSE: dict[tuple, np.ndarray] | None = None


def digest(a: np.ndarray) -> bytes:
    """A 16-byte digest of an array's dtype, shape and bytes (a cache key).

    Examples
    --------
    >>> digest(np.zeros(3)) == digest(np.zeros(3)) != digest(np.ones(3))
    True
    """
    a = np.ascontiguousarray(a)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.digest()


@contextlib.contextmanager
def reused_window_means() -> Iterator[None]:
    """Inside this block, :func:`window_mean` of the same values and size is computed once.

    The results are read-only arrays; the same bits as computing them again. Used when the
    same rules run many times on the same layers (calibration).

    Examples
    --------
    >>> v = np.arange(9.0).reshape(3, 3)
    >>> with reused_window_means():
    ...     a = window_mean(v, 3); b = window_mean(v.copy(), 3)
    >>> a is b, a.flags.writeable
    (True, False)
    """
    global _REUSE
    outer = _REUSE
    _REUSE = {} if outer is None else outer
    try:
        yield
    finally:
        _REUSE = outer

#: a window reader: ``read(r0, r1, c0, c1) -> ndarray`` of shape ``(r1 - r0, c1 - c0)``
WindowReader = Callable[[int, int, int, int], np.ndarray]


def window_mean(values: np.ndarray, size: int) -> np.ndarray:
    """Mean over the centred ``size × size`` window, leaving out-of-grid and NaN cells out.

    Parameters
    ----------
    values : ndarray of float, 2-D
    size : int
        Window side in cells; 1 or less returns a copy of ``values``.

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> import numpy as np
    >>> window_mean(np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]]), 3).round(3).tolist()
    [[2.5, 3.0, 3.667], [2.5, 3.0, 3.667]]
    >>> window_mean(np.array([[1.0, np.inf, 1.0, 1.0]]), 3).tolist()
    [[inf, inf, inf, 1.0]]
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"window_mean needs a 2-D array, got shape {v.shape}")
    size = int(size)
    if size <= 1:
        return v.copy()
    before = size // 2
    memo = _REUSE
    if memo is not None:
        key = (size, v.shape, digest(v))
        hit = memo.get(key)
        if hit is None:
            hit = _window_mean_direct(v, before, size - 1 - before)
            hit.flags.writeable = False
            memo[key] = hit
        return hit
    return _window_mean_direct(v, before, size - 1 - before)


def _window_mean_direct(v: np.ndarray, before: int, after: int) -> np.ndarray:
    """The direct window sums: the numba kernel, or on grids of at most
    :data:`~pari_geo._numba.SMALL_GRID_CELLS` cells its numpy twin (the same bits)."""
    from .. import _numba

    if v.size <= _numba.SMALL_GRID_CELLS:
        return window_mean_numpy(v, before, after)
    from ._window_kernels import window_mean_direct

    return window_mean_direct(np.ascontiguousarray(v), before, after)


def window_mean_numpy(values: np.ndarray, before: int, after: int) -> np.ndarray:
    """:func:`~pari_geo.outofcore._window_kernels.window_mean_direct` with numpy: the same
    sums in the same order, so the same bits.

    Each row sum adds the window's values left to right starting from 0, each column sum
    the row sums top to bottom starting from 0, as the kernel does; a cell outside the
    grid or without a finite value adds ``0.0``, which leaves every partial sum unchanged
    (a sum that starts at ``+0.0`` is never ``-0.0``). ``O(cells x (before + after + 1))``
    with a few temporaries the size of the grid.

    Parameters
    ----------
    values : float64[:, :]
    before, after : int
        Window cells before and after the centre.

    Returns
    -------
    float64[:, :]

    Examples
    --------
    >>> import numpy as np
    >>> window_mean_numpy(np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]]), 1, 1).round(3).tolist()
    [[2.5, 3.0, 3.667], [2.5, 3.0, 3.667]]
    """
    v = np.asarray(values, dtype=np.float64)
    rows, cols = v.shape
    finite = np.isfinite(v)
    x = np.where(finite, v, 0.0)
    row_pinf = _shifted_sums(v == np.inf, before, after, axis=1, dtype=np.bool_)
    row_sum = _shifted_sums(x, before, after, axis=1, dtype=np.float64)
    row_n = _shifted_sums(finite, before, after, axis=1, dtype=np.int64)
    # rows of a window with a +inf value add nothing; they make the column's mean +inf
    row_sum[row_pinf] = 0.0
    row_n[row_pinf] = 0
    pinf = _shifted_sums(row_pinf, before, after, axis=0, dtype=np.bool_)
    acc = _shifted_sums(row_sum, before, after, axis=0, dtype=np.float64)
    cnt = _shifted_sums(row_n, before, after, axis=0, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = acc / cnt
    out[cnt == 0] = np.nan
    out[pinf] = np.inf
    return out


def _shifted_sums(a: np.ndarray, before: int, after: int, *, axis: int,
                  dtype: type) -> np.ndarray:  # fmt: skip
    """``out[.., j] = a[.., j - before] + ... + a[.., j + after]`` along ``axis``, added in
    that order starting from 0, the cells outside the array left out (or for booleans:
    any of them)."""
    n = a.shape[axis]
    out: np.ndarray = np.zeros(a.shape, dtype=dtype)
    for off in range(-before, after + 1):
        lo, hi = max(0, -off), min(n, n - off)
        if lo >= hi:
            continue
        dst = (slice(None), slice(lo, hi)) if axis == 1 else (slice(lo, hi), slice(None))
        src = (slice(None), slice(lo + off, hi + off)) if axis == 1 else (
            slice(lo + off, hi + off), slice(None))
        if dtype is np.bool_:
            out[dst] |= a[src]
        else:
            out[dst] += a[src]
    return out


def window_mean_reader(read: WindowReader, size: int, shape: tuple[int, int]) -> WindowReader:
    """A window reader of the window means of the layer ``read`` reads (by tiles).

    Parameters
    ----------
    read : callable
        Window reader of the input layer, ``read(r0, r1, c0, c1) -> ndarray``.
    size : int
        Window side in cells, as in :func:`window_mean`.
    shape : (rows, cols)
        Grid shape (the halo stops at the grid edge).

    Returns
    -------
    callable
        ``mean(r0, r1, c0, c1)``: bit-identical to ``window_mean(whole, size)[r0:r1, c0:c1]``,
        computed from the input window plus a halo of ``size // 2`` cells.
    """
    rows, cols = (int(v) for v in shape)
    size = int(size)
    halo = max(size // 2, 0)

    def mean(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        R0, R1 = max(0, r0 - halo), min(rows, r1 + halo)
        C0, C1 = max(0, c0 - halo), min(cols, c1 + halo)
        out = window_mean(read(R0, R1, C0, C1), size)
        return out[r0 - R0:r1 - R0, c0 - C0:c1 - C0]

    return mean
