"""The in-memory engine: the grid operations of :mod:`pari_geo.outofcore.ops` on whole arrays.

Every operation is a module-level function (numpy/scipy, the numba kernels of
:mod:`~pari_geo.outofcore._grid_kernels` and :mod:`~pari_geo.outofcore.contiguity`);
:class:`MemoryEngine` only binds them, so a new operation is one function here plus one
line in the class. Memory is kept low the way the typology's former in-memory code did it:
derived float64 layers exist only block by block inside :meth:`MemoryEngine.cell_map`,
one int32 label buffer is reused from search to search, and the canvas paints into one
``uint8`` raster with one bool "unpainted" mask.

Examples
--------
>>> import numpy as np
>>> from pari_geo.outofcore.ops import ArrayLayer, read_all
>>> eng = MemoryEngine((1, 4))
>>> comp = eng.components(ArrayLayer(np.array([[1, 1, 0, 1]], bool)), 4,
...                       ArrayLayer(np.array([[2.0, 3.0, 9.0, 4.0]])))
>>> comp.n, comp.sums.tolist(), read_all(comp.select(comp.keep(5))).tolist()
(2, [0.0, 5.0, 4.0], [[True, True, False, False]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .component_tables import counts_memory, first_values_memory, on_edge_memory
from .contiguity import (
    cluster_labels,
    fill_holes_by_part,
    label_cells,
    queen_buffer,
    remap_labels,
    row_blocks,
)
from .ops import (
    ArrayLayer,
    CellMapResult,
    ValueRanges,
    or_where,
    put_where,
    read_all,
    values_under,
)
from .travel_time import minutes_layer

__all__ = ["MemoryEngine", "ReusingMemoryEngine", "MemoryComponents", "MemoryCanvas"]


class _Scratch(ArrayLayer):
    """An array made by the engine for the caller alone: the canvas may overwrite it."""


def cell_map(shape: tuple[int, int], fn: Any, inputs: Mapping[str, Any],
             outputs: Mapping[str, Any], *, halo: int = 0, keep: Sequence[str] = (),
             ranges: Sequence[str] = ()) -> CellMapResult:
    """:meth:`~pari_geo.outofcore.ops.GridEngine.cell_map` on whole arrays.

    Without a halo the function runs on row blocks of about ``BLOCK_CELLS`` cells (its
    float64 temporaries stay small); with a halo it runs once on the whole grid (a
    window mean sees the same cells either way).
    """
    rows, cols = shape
    out = {name: np.zeros(shape, dtype=dtype) for name, dtype in outputs.items()}
    acc = ValueRanges(ranges)
    blocks = [slice(0, rows)] if halo > 0 else list(row_blocks(shape))
    for sl in blocks:
        blk = {name: layer.read(sl.start, sl.stop, 0, cols) for name, layer in inputs.items()}
        for name in ranges:
            acc.add(name, blk[name])
        res = fn(blk, (slice(0, sl.stop - sl.start), slice(0, cols)))
        for name, a in res.items():
            out[name][sl] = a
        del blk, res
    layers: dict[str, Any] = {name: ArrayLayer(a) for name, a in out.items()}
    for name in keep:
        layers[name] = inputs[name]
    return CellMapResult(layers, acc.result() if ranges else {})


class MemoryComponents:
    """Components held as a full int32 label array (see :class:`~.ops.Components`)."""

    def __init__(self, engine: MemoryEngine, labels: np.ndarray, sums: np.ndarray) -> None:
        self._engine = engine
        self.labels: np.ndarray | None = labels
        self.sums = sums
        self.n = int(sums.size - 1)

    def keep(self, threshold: float) -> np.ndarray:
        keep = self.sums >= threshold
        keep[0] = False
        return keep

    def select(self, table: np.ndarray) -> _Scratch:
        if self.labels is None:
            raise RuntimeError("these components were closed")
        table = np.asarray(table)
        out = np.empty(self.labels.shape, dtype=table.dtype)
        for sl in row_blocks(out.shape):  # np.take is 3x faster than table[labels]; by
            np.take(table, self.labels[sl], out=out[sl])  # blocks, its intp index copy is small
        return _Scratch(out)

    def close(self) -> None:
        if self.labels is not None:
            self._engine._release(self.labels)
            self.labels = None


def components(engine: MemoryEngine, mask: Any, connectivity: int,
               weights: Any | None = None) -> MemoryComponents:
    """Label a bool layer (``scipy.ndimage.label``) and sum ``weights`` per component."""
    m = read_all(mask)
    if weights is None:
        labels, n = label_cells(m, connectivity, output=engine._acquire())
        sums = np.zeros(n + 1)
    else:
        labels, sums = cluster_labels(m, read_all(weights), connectivity,
                                      output=engine._acquire())
    del m
    return MemoryComponents(engine, labels, sums)


def touching(comp: MemoryComponents, mask: Any) -> np.ndarray:
    """Bool table over ``0..n``: components with a cell in ``mask`` (block by block)."""
    m = read_all(mask)
    found = np.zeros(comp.n + 1, dtype=bool)
    assert comp.labels is not None
    for sl in row_blocks(m.shape):
        found[comp.labels[sl][m[sl]]] = True
    return found


def smoothed_ids(engine: MemoryEngine, comp: MemoryComponents, keep: np.ndarray, *,
                 rule: int | None, excluded: Any | None = None, blocked: Any | None = None,
                 gap_fill: bool = True, max_hole_cells: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Kept components renumbered ``1..k`` (raster order) and edge-smoothed in place; the
    bool array of the holes to fill (or None). Takes over the labels of ``comp``."""
    from ._grid_kernels import smooth_centre_edges_inplace

    labels = comp.labels
    if labels is None:
        raise RuntimeError("these components were closed")
    keep = np.asarray(keep, dtype=bool).copy()
    keep[0] = False
    k = int(keep.sum())
    new_id = np.zeros(comp.n + 1, dtype=np.int32)
    new_id[keep] = np.arange(1, k + 1, dtype=np.int32)
    remap_labels(labels, new_id)
    engine.stats["components_kept"] = k
    comp.labels = None  # the caller owns them now
    if rule is not None and k > 0:
        none = None
        if excluded is None or blocked is None:
            none = np.zeros(labels.shape, dtype=bool)
        ex = none if excluded is None else read_all(excluded)
        bl = none if blocked is None else read_all(blocked)
        smooth_centre_edges_inplace(labels, ex, bl, int(rule))
        del ex, bl, none
    fill = fill_holes_by_part(labels, max_hole_cells) if gap_fill and k > 0 else None
    return labels, fill


def smooth_and_fill(engine: MemoryEngine, comp: MemoryComponents, keep: np.ndarray,
                    **kw: Any) -> _Scratch:
    """:meth:`~pari_geo.outofcore.ops.GridEngine.smooth_and_fill` on whole arrays."""
    labels, fill = smoothed_ids(engine, comp, keep, **kw)
    cells = labels > 0
    if fill is not None:
        cells |= fill
    del fill
    engine._release(labels)
    return _Scratch(cells)


def masked_mean(values: Any, mask: Any) -> tuple[float, int]:
    """Mean of the non-NaN ``values`` where ``mask``: numpy's ``mean`` of them in raster order."""
    m = read_all(mask)
    cols = m.shape[1]
    parts = [values.read(sl.start, sl.stop, 0, cols)[m[sl]] for sl in row_blocks(m.shape)]
    picked = np.concatenate(parts) if parts else np.zeros(0)
    picked = picked[~np.isnan(picked)]
    if picked.size == 0:
        return float("nan"), 0
    return float(picked.mean()), int(picked.size)


class MemoryCanvas:
    """A ``uint8`` class raster and its "unpainted" mask (2 bytes per cell)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.out = np.zeros(shape, dtype=np.uint8)
        self.unpainted = np.ones(shape, dtype=bool)

    def paint(self, mask: Any, code: int) -> None:
        m = read_all(mask)
        for sl in row_blocks(self.out.shape):  # temporaries of one block, not of the grid
            mb = m[sl] & self.unpainted[sl]
            or_where(self.out[sl], mb, code)  # unpainted cells are still 0
            np.logical_and(self.unpainted[sl], ~mb, out=self.unpainted[sl])

    def painted(self) -> _Scratch:
        return _Scratch(~self.unpainted)

    def finish(self, rest: int, recode: Sequence[tuple[Any, int | None, int]] = ()) -> ArrayLayer:
        blocks = list(row_blocks(self.out.shape))
        for sl in blocks:
            or_where(self.out[sl], self.unpainted[sl], rest)  # unpainted cells are still 0
        self.unpainted = np.zeros((0, 0), dtype=bool)
        for mask, from_code, to_code in recode:
            m = read_all(mask)
            for sl in blocks:
                out = self.out[sl]
                put_where(out, m[sl] if from_code is None else m[sl] & (out == from_code),
                          to_code)
        return ArrayLayer(self.out)


class MemoryEngine:
    """Grid operations on whole numpy arrays (see :mod:`pari_geo.outofcore.ops`).

    Parameters
    ----------
    shape : (rows, cols)
        The grid every layer of this engine has.
    """

    name = "memory"
    streams_inputs = False

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.stats: dict[str, Any] = {}
        self._free: list[np.ndarray] = []

    # one reusable int32 label buffer (a search overwrites the labels of a closed one)
    def _acquire(self) -> np.ndarray | None:
        return self._free.pop() if self._free else None

    def _release(self, labels: np.ndarray) -> None:
        if not self._free:
            self._free.append(labels)

    def cell_map(self, fn, inputs, outputs, *, halo=0, keep=(), ranges=()) -> CellMapResult:
        return cell_map(self.shape, fn, inputs, outputs, halo=halo, keep=keep, ranges=ranges)

    def components(self, mask, connectivity, weights=None) -> MemoryComponents:
        return components(self, mask, connectivity, weights)

    def touching(self, components, mask) -> np.ndarray:
        return touching(components, mask)

    def queen_buffer(self, mask, steps) -> _Scratch:
        return _Scratch(queen_buffer(read_all(mask), int(steps)))

    def smooth_and_fill(self, components, keep, **kw) -> _Scratch:
        return smooth_and_fill(self, components, keep, **kw)

    def smoothed_ids(self, components, keep, **kw) -> tuple[np.ndarray, np.ndarray | None]:
        """The smoothed component ids and the holes to fill (in-memory only)."""
        return smoothed_ids(self, components, keep, **kw)

    def masked_mean(self, values, mask) -> tuple[float, int]:
        return masked_mean(values, mask)

    def canvas(self) -> MemoryCanvas:
        return MemoryCanvas(self.shape)

    def minutes_to(self, sources, **kw) -> ArrayLayer:
        return minutes_layer(sources, **kw)

    def component_counts(self, components) -> np.ndarray:
        return counts_memory(components)

    def component_first_values(self, components, layer) -> np.ndarray:
        return first_values_memory(components, layer)

    def component_on_edge(self, components) -> np.ndarray:
        return on_edge_memory(components)

    def values_under(self, layer, mask) -> np.ndarray:
        return values_under(layer, mask, self.shape, self.shape[0])


class ReusingMemoryEngine(MemoryEngine):
    """A :class:`MemoryEngine` that computes travel minutes once per sources and speeds.

    For rules run many times on the same grid with different thresholds (calibration):
    each distinct ``(sources, speed, passable, cell size, default speed)`` runs one
    Dijkstra without a time limit; a call with ``max_minutes`` gets those minutes with
    ``inf`` beyond the limit, the same values the limited search gives.

    Examples
    --------
    >>> import numpy as np
    >>> from pari_geo.outofcore.ops import ArrayLayer, read_all
    >>> eng = ReusingMemoryEngine((1, 4))
    >>> src = ArrayLayer(np.array([[True, False, False, False]]))
    >>> read_all(eng.minutes_to(src, cell_size_m=1000, max_minutes=2.5)).tolist()
    [[0.0, 1.0, 2.0, inf]]
    >>> eng.stats["travel_searches"], eng.minutes_to(src, cell_size_m=1000) is not None
    (1, True)
    >>> eng.stats["travel_searches"]
    1
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        super().__init__(shape)
        self._minutes: dict[tuple, np.ndarray] = {}

    def minutes_to(self, sources, **kw) -> ArrayLayer:
        from .windows import digest

        def key_of(x: Any) -> Any:
            if x is None or isinstance(x, int | float):
                return x
            if isinstance(x, np.ndarray) and x.ndim == 0:
                return float(x)
            return digest(read_all(x))

        limit = kw.pop("max_minutes", None)
        key = (key_of(sources), key_of(kw.get("speed_kmh")), key_of(kw.get("passable")),
               float(kw["cell_size_m"]), float(kw.get("default_speed_kmh", 60.0)))
        full = self._minutes.get(key)
        if full is None:
            full = read_all(minutes_layer(sources, **kw))
            full.flags.writeable = False
            self._minutes[key] = full
            self.stats["travel_searches"] = self.stats.get("travel_searches", 0) + 1
        if limit is None:
            return ArrayLayer(full)
        return ArrayLayer(np.where(full <= limit, full, np.inf))
