"""Travel minutes over a grid too large for memory, settled tile by tile.

:func:`minutes_to_tiled` gives the same minutes, bit for bit, as the in-memory
:func:`pari_geo.typology.travel_time.minutes_to` (8-neighbour moves, a step costs its length
times the mean minutes per metre of its two cells), while holding only one tile (plus a
one-cell ring) in memory. The minutes and the per-cell costs live in raw files on disk
(:class:`~pari_geo.outofcore.components.RawGrid`).

How: every tile holding or touching a source is *dirty*. Settling a dirty tile runs a
multi-source Dijkstra inside it whose sources are all cells with finite minutes, the tile's
own and those of the ring of cells around it (read only). When a cell on the tile's edge
improves, the tiles across that edge become dirty. Dirty tiles are settled smallest pending
minutes first (a Dijkstra over tiles), so most tiles settle once. The work ends when no
tile is dirty. Each settlement
uses the in-memory kernel's arithmetic, and the minutes of a cell can only go down, so the
process ends at the unique solution of ``d[v] = min_u d[u] + step(u, v)`` (``d = 0`` at the
sources) that the in-memory Dijkstra computes: the results are identical, not just close.
Tiles far from any source are never settled; paths that wind across many tiles make some
tiles settle more than once.

Examples
--------
>>> import numpy as np
>>> src = np.zeros((4, 6), bool); src[0, 0] = True
>>> tiled = minutes_to_tiled(src, cell_size_m=1000, tile_shape=(2, 2))
>>> from pari_geo.typology.travel_time import minutes_to
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

from ..typology.travel_time import minutes_per_metre
from .components import RawGrid, _check_tile_shape, iter_tiles

__all__ = ["minutes_to_tiled"]

WindowReader = Callable[[int, int, int, int], np.ndarray]


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

    Same meaning and result as :func:`pari_geo.typology.travel_time.minutes_to`.

    Parameters
    ----------
    sources : ndarray of bool, RawGrid or callable
        Source cells. A callable is a window reader ``read(r0, r1, c0, c1)``; then
        ``shape`` is required.
    cell_size_m : float
        Cell side in metres.
    speed_kmh, default_speed_kmh, passable
        As in :func:`~pari_geo.typology.travel_time.minutes_per_metre`; ``speed_kmh`` and
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
    from ._travel_kernels import settle_tile

    grid_shape = _grid_shape(sources, shape)
    rows, cols = grid_shape
    tr, tc = _check_tile_shape(tile_shape)
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
            if settle_tile(cost_w, dist_w, top, left, bottom, right, limit, ring_only) == 0:
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
