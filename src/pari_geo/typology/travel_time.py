"""Least-cost travel time over a grid (``minutes_to``).

Travel moves between the 8 neighbours of a cell. A step between cells ``a`` and ``b`` costs
its length (``r`` orthogonally, ``r·√2`` diagonally, ``r`` the cell size in metres) times the
mean of the two cells' minutes per metre::

    step(a, b) = length(a, b) * (mpm[a] + mpm[b]) / 2,   mpm = 60 / (1000 * speed_kmh)

    √2·r   r   √2·r
       ↖   ↑   ↗
    r  ←   o   →  r
       ↙   ↓   ↘
    √2·r   r   √2·r

The travel time of a cell is the smallest sum of step costs over all paths from any source
cell (exact shortest paths, Dijkstra's algorithm), which is the cost convention of
``skimage.graph.MCP_Geometric`` (mean of the two costs times the step length, start cost 0).
The kernel (:func:`pari_geo.typology._kernels.least_cost_minutes`) is a plain binary-heap
Dijkstra compiled with numba; it is about twice as fast
as ``MCP_Geometric`` on a 10-million-cell grid (see ``benchmarks/travel_time/``) and can stop
early at ``max_minutes``. The tests check it against ``scipy.sparse.csgraph.dijkstra`` on the
explicit grid graph and against ``MCP_Geometric``.

Examples
--------
>>> import numpy as np
>>> src = np.zeros((1, 4), bool); src[0, 0] = True
>>> minutes_to(src, cell_size_m=1000).round(3).tolist()   # 60 km/h: 1 minute per km
[[0.0, 1.0, 2.0, 3.0]]
"""

from __future__ import annotations

import math

import numpy as np

from ._kernels import least_cost_minutes

__all__ = ["minutes_to", "minutes_per_metre"]


def minutes_per_metre(
    shape: tuple[int, int],
    *,
    speed_kmh: float | np.ndarray | None = None,
    default_speed_kmh: float = 60.0,
    passable: np.ndarray | None = None,
) -> np.ndarray:
    """Minutes needed to cross one metre of each cell (``inf`` = impassable).

    Parameters
    ----------
    shape : tuple of int
        Grid shape ``(rows, cols)``.
    speed_kmh : float or ndarray or None
        Generalised travel speed. A scalar replaces ``default_speed_kmh`` on passable cells.
        An array gives a speed per cell: a finite positive speed is used as is *and makes the
        cell passable even where* ``passable`` *is False* (e.g. a ferry over water); 0 or a
        negative speed makes the cell impassable; NaN means "not given" (default speed on
        passable cells, impassable elsewhere).
    default_speed_kmh : float
        Speed used where no speed is given (km/h, > 0).
    passable : ndarray of bool or None
        False where a cell cannot be crossed without an explicit speed (water: land share
        < 0.5 and no residents). ``None``: every cell is passable.

    Returns
    -------
    ndarray of float64
        ``60 / (1000 * speed)``; ``inf`` where impassable.

    Examples
    --------
    >>> import numpy as np
    >>> minutes_per_metre((1, 3), speed_kmh=np.array([[np.nan, 30.0, 0.0]]),
    ...                   passable=np.array([[True, False, True]])).tolist()
    [[0.001, 0.002, inf]]
    """
    if not default_speed_kmh > 0 or not math.isfinite(default_speed_kmh):
        raise ValueError(f"default_speed_kmh must be a positive number, got {default_speed_kmh!r}")
    speed = np.full(shape, float(default_speed_kmh))
    if passable is None:
        ok = np.ones(shape, bool)
    else:
        ok = np.asarray(passable, bool)
        if ok.shape != tuple(shape):
            raise ValueError(f"passable has shape {ok.shape}, expected {tuple(shape)}")
        ok = ok.copy()
    if speed_kmh is not None:
        s = np.asarray(speed_kmh, dtype=np.float64)
        if s.ndim == 0:
            if not (s > 0 and np.isfinite(s)):
                raise ValueError(f"a scalar speed_kmh must be a positive number, got {s}")
            speed[:] = float(s)
        else:
            if s.shape != tuple(shape):
                raise ValueError(f"speed_kmh has shape {s.shape}, expected {tuple(shape)}")
            given = np.isfinite(s)
            fast = given & (s > 0)
            speed[fast] = s[fast]
            ok |= fast
            ok &= ~(given & (s <= 0))
    mpm = 60.0 / (1000.0 * speed)
    mpm[~ok] = np.inf
    return mpm


def minutes_to(
    sources: np.ndarray,
    *,
    cell_size_m: float,
    speed_kmh: float | np.ndarray | None = None,
    default_speed_kmh: float = 60.0,
    passable: np.ndarray | None = None,
    max_minutes: float | None = None,
) -> np.ndarray:
    """Least-cost travel minutes from the nearest source cell to every cell.

    Parameters
    ----------
    sources : ndarray of bool, shape (rows, cols)
        True at the cells travel starts from (time 0 there, whatever their speed).
    cell_size_m : float
        Cell side ``r`` in metres (square cells of a projected grid).
    speed_kmh : float or ndarray or None
        Travel speed, see :func:`minutes_per_metre` (an array speed also opens impassable
        cells, e.g. ferries over water).
    default_speed_kmh : float
        Speed where none is given; 60 km/h by default.
    passable : ndarray of bool or None
        False at cells that are impassable unless ``speed_kmh`` gives them a speed (water:
        land share < 0.5 and no residents). ``None``: everything passable.
    max_minutes : float or None
        Stop the search once every cell within this time is final; cells farther away get
        ``inf``. ``None`` (default): no limit.

    Returns
    -------
    ndarray of float64, shape (rows, cols)
        Minutes; 0 at sources; ``inf`` where impassable, unreachable (or beyond
        ``max_minutes``). An impassable source cell is 0 but nothing can be reached from it.

    Notes
    -----
    A step between neighbours ``a`` and ``b`` costs ``L * (mpm[a] + mpm[b]) / 2`` with
    ``L = r`` for rook and ``r·√2`` for diagonal moves and ``mpm = 60 / (1000 * speed_kmh)``
    minutes per metre. Diagonal moves may cut between two impassable cells (as in
    ``MCP_Geometric`` with ``fully_connected=True``). Time is ``O(n log n)`` for ``n`` cells.

    Examples
    --------
    >>> import numpy as np
    >>> src = np.zeros((3, 3), bool); src[0, 0] = True
    >>> minutes_to(src, cell_size_m=500, default_speed_kmh=30).round(2).tolist()
    [[0.0, 1.0, 2.0], [1.0, 1.41, 2.41], [2.0, 2.41, 2.83]]
    >>> water = np.array([[True, False, True], [True, False, True], [True, False, True]])
    >>> minutes_to(src, cell_size_m=500, passable=water)[:, 2].tolist()
    [inf, inf, inf]
    """
    src = np.asarray(sources)
    if src.ndim != 2:
        raise ValueError(f"sources must be a 2-D boolean mask, got shape {src.shape}")
    src = src.astype(bool, copy=False)
    r = float(cell_size_m)
    if not (r > 0 and math.isfinite(r)):
        raise ValueError(f"cell_size_m must be a positive number, got {cell_size_m!r}")
    limit = np.inf if max_minutes is None else float(max_minutes)
    mpm = minutes_per_metre(
        src.shape, speed_kmh=speed_kmh, default_speed_kmh=default_speed_kmh, passable=passable
    )
    # cost per cell in minutes per cell side: the kernel multiplies by 1 or √2
    cost = np.ascontiguousarray(mpm * r)
    seeds = np.flatnonzero(src.ravel()).astype(np.int64)
    out = least_cost_minutes(cost, seeds, limit)
    return out
