"""The tiled engine: the grid operations of :mod:`.ops` for grids larger than memory.

Layers live in raw files of a work folder (:class:`~pari_geo.outofcore.components.RawGrid`)
or are computed lazily window by window; memory holds a tile or strip plus
per-component tables. With a task runner (:mod:`pari_geo.scheduler`, a dask cluster) the
per-cell pass and the tile labelling of every component search run as tasks, one per
band of tiles (the inputs and the work folder must then be on storage every worker sees
at the same path); the rest runs in this process. How each operation stays exact (the
same bits as :class:`~pari_geo.outofcore.memory.MemoryEngine`):

* **cell_map**: a block function is local; with a halo of ``h`` cells it sees the same
  cells around each inner cell as on the whole grid (``scipy.ndimage.correlate`` gives
  the same value at a cell whatever lies beyond its window);
* **components**: :func:`~pari_geo.outofcore.components.label_tiled` (union-find across
  the tile seams, tile corners included for queen adjacency) numbers components in
  raster order and sums the weights in raster order over the whole grid, so sums are
  bit-identical and every ``sum >= threshold`` decision is the same;
* **smooth_and_fill**: the in-memory numba kernel runs on windows: the bounding box of
  every kept component grown by a margin, overlapping windows merged. A cell joins only
  next to a member, so if after smoothing no member lies within one cell of a window side
  that is not the grid edge, the window evolved exactly as the whole grid does (off-grid
  neighbours count as valid in R2023A, so a window side is not a grid side: that is what
  the check guards). Otherwise the margins of that window's components grow and it is
  redone. Under R2022A growth never leaves a component's bounding box. Gap filling looks
  at each rook part inside the part's bounding box, which lies inside the window;
* **queen_buffer**: a dilation by ``k`` cells computed on each window read with a halo
  of ``k`` cells;
* **masked_mean**: the selected values are written to disk in raster order and summed
  with numpy's own pairwise summation tree, so the mean is bit-identical to
  ``values.mean()`` in memory;
* **canvas**: the painting steps are recorded and replayed strip by strip when the
  codes are read (e.g. by :meth:`TiledEngine.write_classes`).

``tile_shape`` never changes a result (the tests use tiles down to 7 x 5 cells, one-row
strips, and label components with tiles down to 1 x 1).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .component_tables import counts_tiled, first_values_tiled, on_edge_tiled
from .components import RawGrid, TiledComponents, iter_strips, iter_tiles, label_tiled, tile_bands
from .contiguity import fill_holes_by_part, queen_buffer
from .ops import EDGE_RULE_R2022A, CellMapResult, MappedLayer, ValueRanges, values_under
from .travel_time import minutes_layer_tiled

__all__ = ["TiledEngine", "TiledComponentsView", "TiledCanvas", "R2023A_MARGIN"]

#: first margin (cells) around a component's bounding box for R2023A edge smoothing
#: (R2022A never grows a component beyond its box: 2 is enough there)
R2023A_MARGIN = 8


class _Clock:
    """Seconds per operation into ``stats["seconds"]``."""

    def __init__(self, stats: dict[str, Any]) -> None:
        self.seconds = stats.setdefault("seconds", {})

    @contextlib.contextmanager
    def __call__(self, phase: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = round(self.seconds.get(phase, 0.0)
                                        + time.perf_counter() - t, 3)


# ---------------------------------------------------------------------------------------
# cell_map
# ---------------------------------------------------------------------------------------
def _cell_tiles(fn: Any, inputs: Mapping[str, Any], files: Mapping[str, RawGrid],
                keep: Sequence[str], tiles: list, halo: int, ranges: Sequence[str],
                shape: tuple[int, int], reopen: bool = False) -> ValueRanges:
    """The block function on some tiles (one task); writes every output window."""
    if reopen:  # a task: its own copies of the inputs, read under the reading settings
        from ..ingest import read_env

        with read_env():
            try:
                return _cell_tiles(fn, inputs, files, keep, tiles, halo, ranges, shape)
            finally:
                for layer in inputs.values():
                    close = getattr(layer, "close", None)
                    if close is not None:
                        close()
    rows, cols = shape
    acc = ValueRanges(ranges)
    for r0, r1, c0, c1 in tiles:
        R0, R1 = max(0, r0 - halo), min(rows, r1 + halo)
        C0, C1 = max(0, c0 - halo), min(cols, c1 + halo)
        blk = {name: layer.read(R0, R1, C0, C1) for name, layer in inputs.items()}
        inner = (slice(r0 - R0, r1 - R0), slice(c0 - C0, c1 - C0))
        for name in ranges:
            acc.add(name, blk[name][inner])
        res = fn(blk, inner)
        for name in keep:
            files[name].write(r0, c0, blk[name][inner])
        for name, a in res.items():
            files[name].write(r0, c0, a)
        del blk, res
    return acc


def cell_map(engine: TiledEngine, fn: Any, inputs: Mapping[str, Any],
             outputs: Mapping[str, Any], *, halo: int = 0, keep: Sequence[str] = (),
             ranges: Sequence[str] = ()) -> CellMapResult:
    """:meth:`~pari_geo.outofcore.ops.GridEngine.cell_map` tile by tile into raw files."""
    shape = engine.shape
    files: dict[str, RawGrid] = {}
    for name, dtype in outputs.items():
        files[name] = engine._raw(name, dtype)
    for name in keep:
        files[name] = engine._raw(name, inputs[name].dtype)
    if engine.run is None:
        parts = [_cell_tiles(fn, inputs, files, keep, list(iter_tiles(shape, engine.tile_shape)),
                             halo, ranges, shape)]
    else:
        parts = engine.run(_cell_tiles, [(fn, inputs, files, keep, band, halo, ranges, shape,
                                          True)
                                         for band in tile_bands(shape, engine.tile_shape)])
    acc = ValueRanges(ranges)
    for part in parts:
        acc.merge(part)
    return CellMapResult(dict(files), acc.result() if ranges else {})


# ---------------------------------------------------------------------------------------
# components
# ---------------------------------------------------------------------------------------
class _LabelTable:
    """Layer ``table[labels]`` of a tiled labelling (the composite table built once)."""

    def __init__(self, raw: RawGrid, lut: np.ndarray) -> None:
        self.raw, self.lut = raw, lut  # the label file lives as long as this layer
        self.shape = raw.shape
        self.dtype = lut.dtype

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        from ._kernels import map_ids

        w = self.raw.read(r0, r1, c0, c1)
        return map_ids(w, self.lut, np.empty(w.shape, dtype=self.lut.dtype))


class TiledComponentsView:
    """:class:`~pari_geo.outofcore.ops.Components` of a :class:`TiledComponents`."""

    def __init__(self, comp: TiledComponents) -> None:
        self.comp: TiledComponents | None = comp
        self.n, self.sums, self.bbox, self.counts = comp.n, comp.sums, comp.bbox, comp.counts
        self.shape = comp.shape

    def keep(self, threshold: float) -> np.ndarray:
        keep = self.sums >= threshold
        keep[0] = False
        return keep

    def select(self, table: np.ndarray) -> _LabelTable:
        if self.comp is None:
            raise RuntimeError("these components were closed")
        return _LabelTable(self.comp._raw, np.asarray(table)[self.comp._lut])

    def close(self) -> None:
        # the label file goes when no selected layer uses it any more
        self.comp = None


def components(engine: TiledEngine, mask: Any, connectivity: int,
               weights: Any | None = None) -> TiledComponentsView:
    comp = label_tiled(mask.read, int(connectivity), tile_shape=engine.tile_shape,
                       weights=None if weights is None else weights.read, shape=engine.shape,
                       workdir=engine.workdir, run=engine.run)
    engine.stats.setdefault("provisional_components", []).append(int(comp._lut.size - 1))
    return TiledComponentsView(comp)


def touching(engine: TiledEngine, comp: TiledComponentsView, mask: Any) -> np.ndarray:
    """Bool table over ``0..n``: components with a cell in ``mask`` (strip by strip)."""
    found = np.zeros(comp.n + 1, dtype=bool)
    labels = comp.select(np.arange(comp.n + 1, dtype=np.int32))
    rows, cols = engine.shape
    for s0, s1 in iter_strips(engine.shape, engine.strip_cells):
        found[labels.read(s0, s1, 0, cols)[mask.read(s0, s1, 0, cols)]] = True
    return found


class _QueenBuffer:
    """Lazy layer: cells within Chebyshev distance ``steps`` of ``mask``."""

    def __init__(self, mask: Any, steps: int) -> None:
        self.mask, self.steps = mask, int(steps)
        self.shape, self.dtype = mask.shape, np.dtype(bool)

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        rows, cols = self.shape
        k = max(self.steps, 0)
        h0, h1 = max(0, r0 - k), min(rows, r1 + k)
        g0, g1 = max(0, c0 - k), min(cols, c1 + k)
        m = np.asarray(self.mask.read(h0, h1, g0, g1), dtype=bool)
        return queen_buffer(m, self.steps)[r0 - h0:r1 - h0, c0 - g0:c1 - g0]


# ---------------------------------------------------------------------------------------
# edge smoothing and gap filling on windows
# ---------------------------------------------------------------------------------------
def _merge_rectangles(rects: np.ndarray) -> list[tuple[tuple[int, int, int, int], list[int]]]:
    """Merge overlapping half-open rectangles ``[r0, r1) x [c0, c1)`` until none overlap.

    Returns ``(bounding rectangle, member indices)`` per group, sorted by rectangle.

    Examples
    --------
    >>> import numpy as np
    >>> _merge_rectangles(np.array([[0, 2, 0, 2], [1, 3, 1, 3], [5, 6, 5, 6]]))
    [((0, 3, 0, 3), [0, 1]), ((5, 6, 5, 6), [2])]
    """
    groups = [((int(r[0]), int(r[1]), int(r[2]), int(r[3])), [i]) for i, r in enumerate(rects)]
    while True:
        n = len(groups)
        parent = list(range(n))

        def find(x: int, parent=parent) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        sizes = [max(g[0][1] - g[0][0], g[0][3] - g[0][2]) for g in groups]
        step = max(16, int(np.median(sizes)) if sizes else 16)
        buckets: dict[tuple[int, int], list[int]] = {}
        merged = False
        for i, ((r0, r1, c0, c1), _) in enumerate(groups):
            seen: set[int] = set()
            for br in range(r0 // step, (r1 - 1) // step + 1):
                for bc in range(c0 // step, (c1 - 1) // step + 1):
                    lst = buckets.setdefault((br, bc), [])
                    for j in lst:
                        if j in seen:
                            continue
                        seen.add(j)
                        q0, q1, p0, p1 = groups[j][0]
                        if r0 < q1 and q0 < r1 and c0 < p1 and p0 < c1:
                            a, b = find(i), find(j)
                            if a != b:
                                parent[max(a, b)] = min(a, b)
                                merged = True
                    lst.append(i)
        if not merged:
            return sorted(groups)
        out: dict[int, list] = {}
        for i, (rect, members) in enumerate(groups):
            root = find(i)
            if root not in out:
                out[root] = [list(rect), list(members)]
            else:
                g = out[root]
                g[0] = [min(g[0][0], rect[0]), max(g[0][1], rect[1]),
                        min(g[0][2], rect[2]), max(g[0][3], rect[3])]
                g[1].extend(members)
        groups = [(tuple(v[0]), sorted(v[1])) for v in out.values()]


def _guard_violated(lab: np.ndarray, rect: tuple[int, int, int, int],
                    shape: tuple[int, int]) -> bool:
    """A member cell within one cell of a window side that is not the grid edge?"""
    r0, r1, c0, c1 = rect
    checks = []
    if r0 > 0:
        checks.append(lab[:2, :])
    if r1 < shape[0]:
        checks.append(lab[-2:, :])
    if c0 > 0:
        checks.append(lab[:, :2])
    if c1 < shape[1]:
        checks.append(lab[:, -2:])
    return any(bool((c > 0).any()) for c in checks)


def _nonzero(a: np.ndarray) -> np.ndarray:
    return a.astype(bool)


def smooth_and_fill(engine: TiledEngine, comp: TiledComponentsView, keep: np.ndarray, *,
                    rule: int | None, excluded: Any | None = None, blocked: Any | None = None,
                    gap_fill: bool = True, max_hole_cells: int | None = None) -> MappedLayer:
    """:meth:`~pari_geo.outofcore.ops.GridEngine.smooth_and_fill` on windows (see above)."""
    from ._grid_kernels import smooth_centre_edges_inplace

    shape = engine.shape
    out = engine._raw("centres", np.uint8)
    keep = np.asarray(keep, dtype=bool).copy()
    keep[0] = False
    k = int(keep.sum())
    stats = engine.stats
    stats["urban_centres"] = k
    if k == 0:
        comp.close()
        return MappedLayer(out, _nonzero, bool)
    new_id = np.zeros(comp.n + 1, dtype=np.int32)
    new_id[keep] = np.arange(1, k + 1, dtype=np.int32)
    ids = comp.select(new_id)
    bb = comp.bbox[keep]  # rows of components 1..k (keep is in raster-order id order)
    comp.close()
    rects0 = np.stack([bb[:, 0], bb[:, 1] + 1, bb[:, 2], bb[:, 3] + 1], axis=1)
    smooth = rule is not None
    first = 2 if (not smooth or rule == EDGE_RULE_R2022A) else max(2, R2023A_MARGIN)
    margin = np.full(k, first, dtype=np.int64)
    written: set[tuple[int, int, int, int]] = set()
    rounds = 0
    n_windows = 0
    while True:
        rounds += 1
        rects = rects0.copy()
        rects[:, 0] = np.maximum(rects[:, 0] - margin, 0)
        rects[:, 1] = np.minimum(rects[:, 1] + margin, shape[0])
        rects[:, 2] = np.maximum(rects[:, 2] - margin, 0)
        rects[:, 3] = np.minimum(rects[:, 3] + margin, shape[1])
        violated: list[int] = []
        for rect, members in _merge_rectangles(rects):
            if rect in written:
                continue
            r0, r1, c0, c1 = rect
            lab = ids.read(r0, r1, c0, c1)
            if smooth:
                if excluded is None or blocked is None:
                    none = np.zeros(lab.shape, dtype=bool)
                ex = none if excluded is None else excluded.read(r0, r1, c0, c1)
                bl = none if blocked is None else blocked.read(r0, r1, c0, c1)
                smooth_centre_edges_inplace(lab, ex, bl, int(rule or 0))  # smooth: rule is not None
                del ex, bl
                if _guard_violated(lab, rect, shape):
                    violated.extend(members)
                    continue
            cells = lab > 0
            if gap_fill:
                cells |= fill_holes_by_part(lab, max_hole_cells)
            out.write(r0, c0, cells.astype(np.uint8))
            written.add(rect)
            n_windows += 1
        if not violated:
            break
        idx = np.asarray(violated, dtype=np.int64)
        margin[idx] = margin[idx] * 2 + 2
    stats["centre_window_rounds"] = rounds
    stats["centre_windows_run"] = n_windows
    return MappedLayer(out, _nonzero, bool)


# ---------------------------------------------------------------------------------------
# masked mean
# ---------------------------------------------------------------------------------------
def _pairwise_sum_file(path: Path, n: int, chunk: int = 1 << 22) -> float:
    """numpy's pairwise sum (``np.add.reduce``) of ``n`` float64 values stored in a file.

    Follows numpy's split rule (halves rounded down to a multiple of 8) down to pieces of
    at most ``chunk`` values, which numpy sums itself: the result is bit-identical to
    summing the whole array in memory. (numpy splits only above 128 values, hence the
    floor on ``chunk``.)
    """
    chunk = max(int(chunk), 128)

    def rec(start: int, m: int) -> float:
        if m <= chunk:
            a = np.fromfile(path, dtype=np.float64, count=m, offset=start * 8)
            return float(np.add.reduce(a))
        m2 = m // 2
        m2 -= m2 % 8
        return rec(start, m2) + rec(start + m2, m - m2)

    return rec(0, n) if n else 0.0


def masked_mean(engine: TiledEngine, values: Any, mask: Any) -> tuple[float, int]:
    """Mean of the non-NaN ``values`` where ``mask``, bit-identical to numpy's in memory."""
    n = 0
    path = engine._path("masked_values", "f64")
    cols = engine.shape[1]
    with open(path, "wb") as f:
        for s0, s1 in iter_strips(engine.shape, engine.strip_cells):
            sel = mask.read(s0, s1, 0, cols)
            if not sel.any():
                continue
            v = np.asarray(values.read(s0, s1, 0, cols), dtype=np.float64)[sel]
            v = v[~np.isnan(v)]
            v.tofile(f)
            n += v.size
    if n == 0:
        return float("nan"), 0
    return _pairwise_sum_file(path, n) / n, n


# ---------------------------------------------------------------------------------------
# canvas
# ---------------------------------------------------------------------------------------
class _AnyOf:
    """Lazy bool layer: the union of some bool layers."""

    def __init__(self, masks: Sequence[Any], shape: tuple[int, int]) -> None:
        self.masks, self.shape, self.dtype = list(masks), shape, np.dtype(bool)

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        out = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        for m in self.masks:
            out |= m.read(r0, r1, c0, c1)
        return out


class _Ladder:
    """Lazy uint8 layer of a finished :class:`TiledCanvas` (the steps replayed per window)."""

    def __init__(self, steps: Sequence[tuple[Any, int]], rest: int,
                 recode: Sequence[tuple[Any, int | None, int]], shape: tuple[int, int]) -> None:
        self.steps, self.rest, self.recode = list(steps), int(rest), list(recode)
        self.shape, self.dtype = shape, np.dtype(np.uint8)

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        out = np.zeros((r1 - r0, c1 - c0), dtype=np.uint8)
        unpainted = np.ones(out.shape, dtype=bool)
        for mask, code in self.steps:
            m = np.array(mask.read(r0, r1, c0, c1), dtype=bool)
            m &= unpainted
            np.copyto(out, code, where=m)
            np.copyto(unpainted, False, where=m)
        np.copyto(out, self.rest, where=unpainted)
        for mask, from_code, to_code in self.recode:
            m = np.array(mask.read(r0, r1, c0, c1), dtype=bool)
            if from_code is not None:
                m &= out == from_code
            np.copyto(out, to_code, where=m)
        return out


class TiledCanvas:
    """Records the painting steps; :meth:`finish` returns the lazy layer of codes."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.steps: list[tuple[Any, int]] = []

    def paint(self, mask: Any, code: int) -> None:
        self.steps.append((mask, int(code)))

    def painted(self) -> _AnyOf:
        return _AnyOf([m for m, _ in self.steps], self.shape)

    def finish(self, rest: int, recode: Sequence[tuple[Any, int | None, int]] = ()) -> _Ladder:
        return _Ladder(self.steps, rest, recode, self.shape)


# ---------------------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------------------
class TiledEngine:
    """Grid operations by tiles, in raw files of ``workdir`` (see the module docstring).

    Parameters
    ----------
    shape : (rows, cols)
    tile_shape : (rows, cols)
        Tile of the per-cell and labelling passes; strips of the other passes have about
        as many cells. Any shape gives the same results.
    workdir : path-like
        Folder of the intermediate files (the caller removes it).
    run : TaskRunner, optional
        Run the per-cell pass and the tile labelling as tasks (:mod:`pari_geo.scheduler`).
    """

    name = "tiled"
    streams_inputs = True

    def __init__(self, shape: tuple[int, int], tile_shape: tuple[int, int],
                 workdir: str | os.PathLike, run: Any = None) -> None:
        from .components import check_tile_shape

        self.shape = (int(shape[0]), int(shape[1]))
        self.tile_shape = check_tile_shape(tile_shape)
        self.strip_cells = self.tile_shape[0] * self.tile_shape[1]
        self.workdir = Path(workdir).resolve()  # workers may run in another folder
        self.run = run
        self.stats: dict[str, Any] = {"tile_shape": list(self.tile_shape)}
        self._clock = _Clock(self.stats)
        self._names = itertools.count()

    def _path(self, name: str, ext: str) -> Path:
        return self.workdir / f"{next(self._names):03d}_{name}.{ext}"

    def _raw(self, name: str, dtype: Any) -> RawGrid:
        dtype = np.dtype(dtype)
        return RawGrid(self._path(name, dtype.str.lstrip("<>|=")), self.shape, dtype)

    def cell_map(self, fn, inputs, outputs, *, halo=0, keep=(), ranges=()) -> CellMapResult:
        with self._clock("cell_map"):
            return cell_map(self, fn, inputs, outputs, halo=halo, keep=keep, ranges=ranges)

    def components(self, mask, connectivity, weights=None) -> TiledComponentsView:
        with self._clock("components"):
            return components(self, mask, connectivity, weights)

    def touching(self, components, mask) -> np.ndarray:
        with self._clock("touching"):
            return touching(self, components, mask)

    def queen_buffer(self, mask, steps) -> _QueenBuffer:
        return _QueenBuffer(mask, steps)

    def smooth_and_fill(self, components, keep, **kw) -> MappedLayer:
        with self._clock("smooth_and_fill"):
            return smooth_and_fill(self, components, keep, **kw)

    def masked_mean(self, values, mask) -> tuple[float, int]:
        with self._clock("masked_mean"):
            return masked_mean(self, values, mask)

    def canvas(self) -> TiledCanvas:
        return TiledCanvas(self.shape)

    def minutes_to(self, sources, **kw) -> RawGrid:
        with self._clock("minutes_to"):
            return minutes_layer_tiled(sources, tile_shape=self.tile_shape,
                                       workdir=self.workdir, **kw)

    def component_counts(self, components) -> np.ndarray:
        return counts_tiled(components)

    def component_first_values(self, components, layer) -> np.ndarray:
        return first_values_tiled(components, layer, self.strip_cells)

    def component_on_edge(self, components) -> np.ndarray:
        return on_edge_tiled(components)

    def values_under(self, layer, mask) -> np.ndarray:
        rows = max(1, self.strip_cells // max(1, self.shape[1]))
        return values_under(layer, mask, self.shape, rows)

    def write_classes(self, codes: Any, writer: Any) -> None:
        """Read a uint8 layer strip by strip into a class-raster writer."""
        rows, cols = self.shape
        with self._clock("assemble"):
            for s0, s1 in iter_strips(self.shape, self.strip_cells):
                writer.write(s0, 0, codes.read(s0, s1, 0, cols))

