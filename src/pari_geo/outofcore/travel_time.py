"""Travel minutes over a grid: the travel-time operation of both engines.

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
cell (exact shortest paths, Dijkstra's algorithm), the cost convention of
``skimage.graph.MCP_Geometric`` (mean of the two costs times the step length, start cost 0).

* :func:`minutes_to` (in memory) runs the one Dijkstra kernel
  (:func:`pari_geo.outofcore._travel_kernels.settle`, a binary-heap Dijkstra compiled with
  numba) once on the whole grid; it is about twice as fast as ``MCP_Geometric`` on a
  10-million-cell grid (see ``benchmarks/travel_time/``) and can stop early at
  ``max_minutes``. On a grid of at most :data:`~pari_geo._numba.SMALL_GRID_CELLS` cells it
  runs :func:`minutes_scipy` instead, scipy's Dijkstra on the explicit graph with the
  kernel's step costs: the same bits, and no kernel to compile on a first run.
* :func:`minutes_to_tiled` (out of core) gives the same minutes, bit for bit, holding only
  one tile (plus a one-cell ring) in memory; the minutes and the per-cell costs live in raw
  files on disk (:class:`~pari_geo.outofcore.components.RawGrid`). Every tile holding or
  touching a source is *dirty*. Settling a dirty tile runs the same kernel inside it, whose
  sources are all cells with finite minutes, the tile's own and those of the ring of cells
  around it (read only). When a cell on the tile's edge improves, the tiles across that
  edge become dirty. Dirty tiles are settled smallest pending minutes first (a Dijkstra
  over tiles), so most tiles settle once. The work ends when no tile is dirty. The minutes
  of a cell can only go down, so the process ends at the unique solution of
  ``d[v] = min_u d[u] + step(u, v)`` (``d = 0`` at the sources) that the whole-grid call
  computes: the results are identical, not just close. Tiles far from any source are never
  settled; paths that wind across many tiles make some tiles settle more than once.

The tests check both against ``scipy.sparse.csgraph.dijkstra`` on the explicit grid graph
and against ``MCP_Geometric``.

Examples
--------
>>> import numpy as np
>>> src = np.zeros((1, 4), bool); src[0, 0] = True
>>> minutes_to(src, cell_size_m=1000).round(3).tolist()   # 60 km/h: 1 minute per km
[[0.0, 1.0, 2.0, 3.0]]
>>> src = np.zeros((4, 6), bool); src[0, 0] = True
>>> tiled = minutes_to_tiled(src, cell_size_m=1000, tile_shape=(2, 2))
>>> bool(np.array_equal(tiled, minutes_to(src, cell_size_m=1000)))
True
"""

from __future__ import annotations

import heapq
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import _numba
from ._travel_kernels import NO_RING, Ring, settle
from .components import RawGrid, check_tile_shape, iter_tiles

__all__ = [
    "minutes_to",
    "minutes_scipy",
    "minutes_per_metre",
    "minutes_to_tiled",
    "minutes_layer",
    "minutes_layer_tiled",
]

WindowReader = Callable[[int, int, int, int], np.ndarray]


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
    if cost.size <= _numba.SMALL_GRID_CELLS:
        out = minutes_scipy(cost, src, limit)
    else:
        out = np.where(src, 0.0, np.inf)
        settle(cost, out, NO_RING, limit, False)
    if limit < np.inf:
        out[out > limit] = np.inf
    return out


#: the 8 steps of the grid graph, in the kernel's order
_STEPS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def minutes_scipy(cost: np.ndarray, sources: np.ndarray, limit: float = np.inf) -> np.ndarray:
    """The minutes of :func:`~pari_geo.outofcore._travel_kernels.settle` on a whole grid
    (sources at 0), with ``scipy.sparse.csgraph.dijkstra`` on the explicit 8-neighbour
    graph: the same bits.

    Each step costs what the kernel adds, ``0.5 * (cost[a] + cost[b])``, times ``sqrt(2)``
    diagonally, between two passable cells (finite cost); a source on an impassable cell
    keeps 0 and reaches nothing. Both compute the unique fixed point
    ``d[v] = min(d[v], d[u] + step(u, v))`` with the same additions, so they agree bit for
    bit. About 100 bytes per cell for the graph: :func:`minutes_to` uses it on grids of at
    most :data:`~pari_geo._numba.SMALL_GRID_CELLS` cells.

    Parameters
    ----------
    cost : float64[:, :]
        Minutes per cell side (``inf``: impassable).
    sources : bool[:, :]
    limit : float
        Minutes beyond ``limit`` are ``inf`` (``inf``: no limit).

    Returns
    -------
    float64[:, :]

    Examples
    --------
    >>> import numpy as np
    >>> src = np.zeros((2, 3), bool); src[0, 0] = True
    >>> minutes_scipy(np.ones((2, 3)), src).round(3).tolist()
    [[0.0, 1.0, 2.0], [1.0, 1.414, 2.414]]
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    nr, nc = cost.shape
    starts = np.flatnonzero(sources.ravel())
    if starts.size == 0:
        return np.full(cost.shape, np.inf)
    index = np.arange(nr * nc).reshape(nr, nc)
    diag = math.sqrt(2.0)
    tails, heads, steps = [], [], []
    for dr, dc in _STEPS:
        r0, r1 = max(0, -dr), nr - max(0, dr)
        c0, c1 = max(0, -dc), nc - max(0, dc)
        cu = cost[r0:r1, c0:c1]
        cv = cost[r0 + dr:r1 + dr, c0 + dc:c1 + dc]
        ok = (cu < np.inf) & (cv < np.inf)
        step = 0.5 * (cu[ok] + cv[ok])
        if dr and dc:
            step *= diag
        tails.append(index[r0:r1, c0:c1][ok])
        heads.append(index[r0 + dr:r1 + dr, c0 + dc:c1 + dc][ok])
        steps.append(step)
    graph = csr_matrix((np.concatenate(steps), (np.concatenate(tails), np.concatenate(heads))),
                       shape=(nr * nc, nr * nc))  # fmt: skip
    dist = dijkstra(graph, directed=True, indices=starts, min_only=True, limit=limit)
    return np.ascontiguousarray(dist.reshape(cost.shape))


def _speed_of(speed_kmh: Any, read: Callable[[Any], np.ndarray]) -> Any:
    """A speed for :func:`minutes_to`: None, a number, or the array of a layer."""
    if speed_kmh is None or not hasattr(speed_kmh, "read"):
        return speed_kmh
    return read(speed_kmh)


def minutes_layer(sources: Any, *, cell_size_m: float, speed_kmh: Any = None,
                  default_speed_kmh: float = 60.0, passable: Any = None,
                  max_minutes: float | None = None) -> Any:
    """The travel-time operation of the in-memory engine: :func:`minutes_to` on layers.

    ``sources`` and ``passable`` are bool layers, ``speed_kmh`` a number or a layer
    (see :mod:`pari_geo.outofcore.ops`); returns an in-memory layer of minutes.
    """
    from .ops import ArrayLayer, read_all

    return ArrayLayer(minutes_to(
        read_all(sources), cell_size_m=cell_size_m,
        speed_kmh=_speed_of(speed_kmh, read_all), default_speed_kmh=default_speed_kmh,
        passable=None if passable is None else read_all(passable), max_minutes=max_minutes))


def minutes_layer_tiled(sources: Any, *, cell_size_m: float, tile_shape: tuple[int, int],
                        workdir: str | os.PathLike, speed_kmh: Any = None,
                        default_speed_kmh: float = 60.0, passable: Any = None,
                        max_minutes: float | None = None) -> RawGrid:
    """The travel-time operation of the tiled engine: :func:`minutes_to_tiled` on layers.

    ``sources``, ``passable`` and ``speed_kmh`` (or a number) are layers read by windows;
    the minutes are a raw float64 file in ``workdir``, returned as a
    :class:`~pari_geo.outofcore.components.RawGrid` (itself a layer).
    """
    fd, name = tempfile.mkstemp(suffix=".f8", prefix="minutes_", dir=workdir)
    os.close(fd)

    def reader(layer: Any) -> Any:
        return None if layer is None else (layer.read if hasattr(layer, "read") else layer)

    return minutes_to_tiled(  # type: ignore[return-value]
        reader(sources), cell_size_m=cell_size_m, speed_kmh=reader(speed_kmh),
        default_speed_kmh=default_speed_kmh, passable=reader(passable),
        max_minutes=max_minutes, tile_shape=tile_shape, shape=tuple(sources.shape),
        out=name, workdir=workdir)


def _reader(x: Any, name: str, shape: tuple[int, int] | None) -> WindowReader | None:
    """A window reader for an array, a RawGrid or a callable (None stays None)."""
    if x is None:
        return None
    if isinstance(x, RawGrid):
        if shape is not None and x.shape != shape:
            raise ValueError(f"{name} has shape {x.shape}, expected {shape}")
        return x.read
    if callable(x):
        return x
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, a RawGrid or a window reader")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    return lambda r0, r1, c0, c1: arr[r0:r1, c0:c1]


def _grid_shape(sources: Any, shape: tuple[int, int] | None) -> tuple[int, int]:
    if shape is not None:
        rows, cols = (int(v) for v in shape)
        return rows, cols
    if isinstance(sources, RawGrid):
        return sources.shape
    if callable(sources):
        raise ValueError("shape is required when sources is a window reader")
    arr = np.asarray(sources)
    if arr.ndim != 2:
        raise ValueError(f"sources must be a 2-D boolean mask, got shape {arr.shape}")
    return arr.shape  # type: ignore[return-value]


def minutes_to_tiled(
    sources: Any,
    *,
    cell_size_m: float,
    speed_kmh: Any = None,
    default_speed_kmh: float = 60.0,
    passable: Any = None,
    max_minutes: float | None = None,
    tile_shape: tuple[int, int] = (1024, 1024),
    shape: tuple[int, int] | None = None,
    out: str | os.PathLike | None = None,
    workdir: str | os.PathLike | None = None,
) -> np.ndarray | RawGrid:
    """Least-cost travel minutes to the nearest source, tile by tile (out of core).

    Same meaning and result as :func:`minutes_to`.

    Parameters
    ----------
    sources : ndarray of bool, RawGrid or callable
        Source cells. A callable is a window reader ``read(r0, r1, c0, c1)``; then
        ``shape`` is required.
    cell_size_m : float
        Cell side in metres.
    speed_kmh, default_speed_kmh, passable
        As in :func:`minutes_per_metre`; ``speed_kmh`` and
        ``passable`` may also be RawGrids or window readers.
    max_minutes : float, optional
        Minutes above this are ``inf`` (and are not searched further).
    tile_shape : (rows, cols), default (1024, 1024)
        Cells held in memory at once (plus a one-cell ring and the search's heap).
    shape : (rows, cols), optional
        Grid shape (needed only with window readers).
    out : path-like, optional
        Raw float64 file for the result, returned as a :class:`RawGrid`. Without it the
        result is returned as an array (for grids that fit in memory).
    workdir : path-like, optional
        Where the temporary per-cell costs (8 bytes per cell) are kept.

    Returns
    -------
    ndarray of float64 or RawGrid
        Minutes; 0 at the sources, ``inf`` where unreachable (or beyond ``max_minutes``).

    Examples
    --------
    >>> import numpy as np
    >>> src = np.zeros((3, 7), bool); src[1, 0] = True
    >>> water = np.ones((3, 7), bool); water[:2, 3] = False   # a wall with a gap below
    >>> t = minutes_to_tiled(src, cell_size_m=1000, passable=water, tile_shape=(2, 3))
    >>> round(float(t[0, 4]), 3)     # around the wall through the gap: 3 + 2·√2 minutes
    5.828
    """
    grid_shape = _grid_shape(sources, shape)
    rows, cols = grid_shape
    tr, tc = check_tile_shape(tile_shape)
    r = float(cell_size_m)
    if not (r > 0 and math.isfinite(r)):
        raise ValueError(f"cell_size_m must be a positive number, got {cell_size_m!r}")
    limit = np.inf if max_minutes is None else float(max_minutes)
    if not limit >= 0:
        raise ValueError(f"max_minutes must be a non-negative number, got {max_minutes!r}")
    read_src = _reader(sources, "sources", grid_shape)
    scalar_speed = speed_kmh is not None and np.ndim(speed_kmh) == 0 and not callable(
        speed_kmh) and not isinstance(speed_kmh, RawGrid)
    read_speed = None if speed_kmh is None or scalar_speed else _reader(
        speed_kmh, "speed_kmh", grid_shape)
    read_pass = _reader(passable, "passable", grid_shape)
    minutes_per_metre((1, 1), default_speed_kmh=default_speed_kmh,
                      speed_kmh=speed_kmh if scalar_speed else None)  # validates the scalars

    with tempfile.TemporaryDirectory(dir=workdir, prefix="pari_geo_minutes_") as tmpdir:
        tmp = Path(tmpdir)
        cost = RawGrid(tmp / "cost.f8", grid_shape, np.float64)
        dist = RawGrid(out if out is not None else tmp / "minutes.f8", grid_shape, np.float64)
        n_ti = -(-rows // tr)
        n_tj = -(-cols // tc)
        # dirty tiles, settled smallest pending minutes first (a Dijkstra over tiles), so
        # that most tiles settle once; key[ti, tj] is the tile's pending key, inf = clean
        key = np.full((n_ti, n_tj), np.inf)
        settled = np.zeros((n_ti, n_tj), bool)
        heap: list[tuple[float, int, int]] = []
        for r0, r1, c0, c1 in iter_tiles(grid_shape, (tr, tc)):
            win = (r1 - r0, c1 - c0)
            speed = speed_kmh if scalar_speed else (
                None if read_speed is None else np.asarray(read_speed(r0, r1, c0, c1),
                                                           dtype=np.float64))
            ok = None if read_pass is None else np.asarray(read_pass(r0, r1, c0, c1), bool)
            mpm = minutes_per_metre(win, speed_kmh=speed, default_speed_kmh=default_speed_kmh,
                                    passable=ok)
            cost.write(r0, c0, np.ascontiguousarray(mpm * r))
            src = np.asarray(read_src(r0, r1, c0, c1)).astype(bool, copy=False)  # type: ignore[misc]
            dist.write(r0, c0, np.where(src, 0.0, np.inf))
            if src.any():
                # the sources are new values for the tile and for the tiles around it
                ti, tj = r0 // tr, c0 // tc
                for di in (-1, 0, 1):
                    for dj in (-1, 0, 1):
                        _mark(key, heap, ti + di, tj + dj, 0.0)
        while heap:
            k, ti, tj = heapq.heappop(heap)
            if k != key[ti, tj]:
                continue  # stale entry: the tile was marked again with a smaller key
            key[ti, tj] = np.inf
            r0, c0 = ti * tr, tj * tc
            r1, c1 = min(rows, r0 + tr), min(cols, c0 + tc)
            top, left = int(r0 > 0), int(c0 > 0)
            bottom, right = int(r1 < rows), int(c1 < cols)
            er0, er1, ec0, ec1 = r0 - top, r1 + bottom, c0 - left, c1 + right
            cost_w = cost.read(er0, er1, ec0, ec1)
            dist_w = dist.read(er0, er1, ec0, ec1)
            inner = (slice(top, top + r1 - r0), slice(left, left + c1 - c0))
            before = dist_w[inner].copy()
            ring_only = bool(settled[ti, tj])
            settled[ti, tj] = True
            if settle(cost_w, dist_w, Ring(top, left, bottom, right), limit, ring_only) == 0:
                continue
            after = dist_w[inner]
            dist.write(r0, c0, np.ascontiguousarray(after))
            changed = after != before
            # a changed edge cell is new input for the tiles across that edge
            for hit, di, dj in (  # type: ignore[assignment]
                (changed[0], -1, None), (changed[-1], 1, None),
                (changed[:, 0], None, -1), (changed[:, -1], None, 1),
            ):
                if not hit.any():
                    continue
                edge = after[0] if di == -1 else after[-1] if di == 1 else (
                    after[:, 0] if dj == -1 else after[:, -1])
                low = float(edge[hit].min())
                for step in (-1, 0, 1):
                    if di is not None:
                        _mark(key, heap, ti + di, tj + step, low)
                    else:
                        _mark(key, heap, ti + step, tj + dj, low)
        if limit < np.inf:
            for r0, r1, c0, c1 in iter_tiles(grid_shape, (tr, tc)):
                d = dist.read(r0, r1, c0, c1)
                if (d > limit).any():
                    d[d > limit] = np.inf
                    dist.write(r0, c0, d)
        if out is not None:
            return RawGrid(dist.path, grid_shape, np.float64, create=False)
        return dist.read(0, rows, 0, cols)


def _mark(key: np.ndarray, heap: list, ti: int, tj: int, k: float) -> None:
    """Mark tile (ti, tj) dirty with pending minutes ``k`` (keeps the smaller key)."""
    if 0 <= ti < key.shape[0] and 0 <= tj < key.shape[1] and k < key[ti, tj]:
        key[ti, tj] = k
        heapq.heappush(heap, (k, ti, tj))
