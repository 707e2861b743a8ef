"""Window means over a grid: the neighbourhood operation of both engines.

A cell's window is the centred ``size × size`` square of cells (an even ``size`` puts
``size // 2`` cells before the centre and one fewer after it). The mean leaves out cells
outside the grid and cells without a value (NaN, ``-inf``); a window with a ``+inf`` value
has mean ``+inf``; a window without any value is NaN.

The sums are direct, not running (numba kernel
:func:`pari_geo.outofcore._window_kernels.window_mean_direct`: along rows left to right,
then down columns top to bottom), so a cell's mean does not depend on where the grid
starts:

* :func:`window_mean` (in memory) runs the kernel on the whole array;
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

__all__ = ["window_mean", "window_mean_reader", "WindowReader", "reused_window_means",
           "digest"]

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
    from ._window_kernels import window_mean_direct

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
            hit = window_mean_direct(np.ascontiguousarray(v), before, size - 1 - before)
            hit.flags.writeable = False
            memo[key] = hit
        return hit
    return window_mean_direct(np.ascontiguousarray(v), before, size - 1 - before)


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
