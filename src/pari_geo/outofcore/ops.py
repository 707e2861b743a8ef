"""The grid operations that every engine implements (the rules are written against them).

A typology's rules (``pari_geo.typology``) never touch arrays of the whole grid, files or
tiles: they describe *what* to compute as a few operations on **layers** and the engine
decides *how* (the pattern of xarray-spatial: kernel -> backend runner -> public
wrapper)::

    rules (typology/)  --calls-->  GridEngine  --runs-->  kernels (numpy/scipy/numba)
                                   |- MemoryEngine (outofcore/memory.py): whole arrays
                                   |- TiledEngine  (outofcore/tiled.py): tiles and raw
                                                    files; with a scheduler, dask tasks

The operations:

* :meth:`GridEngine.cell_map` -- a block function over named layers (per-cell tests,
  window means with a halo); the same result on any block, so the tiled engine applies
  it tile by tile and several outputs are computed in one pass;
* :meth:`GridEngine.components` -- connected components of a mask (rook or queen) with
  per-component sums of a weight layer, in raster order (bit-identical on every
  engine), cell counts and bounding boxes; :meth:`Components.select` turns a table
  over the components back into a layer (relabel / select by table);
* :meth:`GridEngine.touching` -- which components have a cell inside a mask;
* :meth:`GridEngine.queen_buffer` -- cells within Chebyshev distance ``k`` of a mask;
* :meth:`GridEngine.smooth_and_fill` -- edge smoothing (majority rules) and gap filling
  of selected components (DEGURBA's urban centres);
* :meth:`GridEngine.masked_mean` -- a global reduction: the mean of a layer's non-NaN
  values over a mask, bit-identical to numpy's pairwise sum on every engine;
* :meth:`GridEngine.canvas` -- a class raster painted step by step (a class ladder:
  each step writes only cells still unpainted), then a layer of codes.
* :meth:`GridEngine.minutes_to` -- least-cost travel minutes from a mask of sources
  (:mod:`~pari_geo.outofcore.travel_time`, one Dijkstra kernel for every engine);
* :meth:`GridEngine.values_under` -- the distinct values of a layer under a mask;
* :meth:`GridEngine.component_counts`, :meth:`GridEngine.component_first_values`,
  :meth:`GridEngine.component_on_edge` -- tables over components: cells, the value of a
  layer at the first cell, touching the grid edge
  (:mod:`~pari_geo.outofcore.component_tables`).

Window means (:mod:`~pari_geo.outofcore.windows`) are block functions of
:meth:`GridEngine.cell_map` with a halo of ``size // 2`` cells: their direct sums give the
same bits on any block.

Engines never import a typology (``architecture-target.json``: Engines -> Rules is
forbidden); a new operation is a module-level function in an engine module plus one
method per engine class.

Examples
--------
>>> import numpy as np
>>> lay = ArrayLayer(np.array([[1, 2], [3, 4]], np.uint16))
>>> bit_mask(lay, 2).read(0, 2, 0, 2).tolist()
[[False, True], [True, False]]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "values_under",
    "Layer",
    "ArrayLayer",
    "MappedLayer",
    "bit_mask",
    "read_all",
    "or_where",
    "put_where",
    "BlockFunction",
    "CellMapResult",
    "ValueRanges",
    "Components",
    "Canvas",
    "GridEngine",
    "EDGE_RULE_R2022A",
    "EDGE_RULE_R2023A",
]

#: edge-smoothing rules of :meth:`GridEngine.smooth_and_fill` (same values as the kernels)
EDGE_RULE_R2022A = 0
EDGE_RULE_R2023A = 1


@runtime_checkable
class Layer(Protocol):
    """A 2-D grid layer read by windows (``read(r0, r1, c0, c1)``, half-open)."""

    @property
    def shape(self) -> tuple[int, int]: ...

    @property
    def dtype(self) -> np.dtype: ...

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray: ...


@dataclass(frozen=True)
class ArrayLayer:
    """A layer held in memory; :meth:`read` returns a view (no copy).

    Examples
    --------
    >>> import numpy as np
    >>> ArrayLayer(np.arange(6).reshape(2, 3)).read(0, 1, 1, 3).tolist()
    [[1, 2]]
    """

    values: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.values.shape[0]), int(self.values.shape[1]))

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        return self.values[r0:r1, c0:c1]


@dataclass(frozen=True)
class MappedLayer:
    """``fn(source.read(window))``: a cell-wise function of another layer, applied lazily.

    ``fn`` must be a module-level function (or a ``functools.partial`` of one) so that the
    layer pickles for dask tasks.
    """

    source: Any
    fn: Callable[[np.ndarray], np.ndarray]
    out_dtype: Any = bool

    @property
    def shape(self) -> tuple[int, int]:
        return self.source.shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.out_dtype)

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        return self.fn(self.source.read(r0, r1, c0, c1))


def _has_bit(block: np.ndarray, bit: int) -> np.ndarray:
    out = np.empty(block.shape, dtype=bool)
    np.bitwise_and(block, block.dtype.type(bit), out=out, casting="unsafe")
    return out


def bit_mask(layer: Any, bit: int) -> MappedLayer:
    """Bool layer of the cells of an integer ``layer`` with ``bit`` set."""
    return MappedLayer(layer, partial(_has_bit, bit=int(bit)), bool)


def or_where(out: np.ndarray, mask: np.ndarray, value: int) -> None:
    """``out[mask] |= value`` in place, for an unsigned integer ``out`` and a bool ``mask``.

    Written as ``out |= mask * value``: numpy's ``where=`` and boolean-index assignment
    cost 10-40 times more than two plain passes on a grid (measured on the 66,357-cell
    Belgium grid: 275 vs 8 microseconds). Also ``out[mask] = value`` where ``out`` is 0.

    Examples
    --------
    >>> a = np.array([1, 2, 0], dtype=np.uint8)
    >>> or_where(a, np.array([True, False, True]), 4); a.tolist()
    [5, 2, 4]
    """
    if value:
        np.bitwise_or(out, np.multiply(mask, out.dtype.type(value), dtype=out.dtype), out=out)


def put_where(out: np.ndarray, mask: np.ndarray, value: int) -> None:
    """``out[mask] = value`` in place for an unsigned integer ``out`` (see :func:`or_where`).

    Examples
    --------
    >>> a = np.array([1, 2, 3], dtype=np.uint8)
    >>> put_where(a, np.array([True, False, True]), 9); a.tolist()
    [9, 2, 9]
    """
    m = np.asarray(mask, dtype=bool)
    full = out.dtype.type(np.iinfo(out.dtype).max)
    np.bitwise_and(out, np.multiply(~m, full, dtype=out.dtype), out=out)
    or_where(out, m, value)


def read_all(layer: Any) -> np.ndarray:
    """The whole layer as one array (a view for an :class:`ArrayLayer`)."""
    rows, cols = layer.shape
    return layer.read(0, rows, 0, cols)


#: ``fn(blocks, inner) -> {output name: array of the inner window}``: ``blocks`` maps
#: each input name to its window *with* the halo (clipped at the grid edge), ``inner``
#: is the ``(row slice, col slice)`` of the window without the halo inside those blocks.
BlockFunction = Callable[[Mapping[str, np.ndarray], tuple[slice, slice]],
                         Mapping[str, np.ndarray]]


@dataclass
class CellMapResult:
    """What :meth:`GridEngine.cell_map` returns.

    Attributes
    ----------
    layers : dict
        The outputs by name, plus any input asked for in ``keep`` (as a layer that is
        cheap to read again: the engine's own copy on disk for the tiled engine, the
        array itself in memory).
    ranges : dict
        ``name -> [min, max]`` (float64) of the non-NaN values of each input asked for
        in ``ranges``, or ``[nan]`` when it has none (for the value checks of ingest).
    """

    layers: dict[str, Any]
    ranges: dict[str, np.ndarray] = field(default_factory=dict)


class ValueRanges:
    """Running ``[min, max]`` of the non-NaN values of some layers."""

    def __init__(self, names: Sequence[str]) -> None:
        self.lo = dict.fromkeys(names, np.inf)
        self.hi = dict.fromkeys(names, -np.inf)
        self.seen = dict.fromkeys(names, False)

    def add(self, name: str, a: np.ndarray) -> None:
        if a.size == 0:
            return
        if a.dtype.kind == "f":
            lo, hi = np.fmin.reduce(a, axis=None), np.fmax.reduce(a, axis=None)
            if np.isnan(lo):
                return  # every value is NaN
        else:
            lo, hi = a.min(), a.max()
        self.lo[name] = min(self.lo[name], float(lo))
        self.hi[name] = max(self.hi[name], float(hi))
        self.seen[name] = True

    def merge(self, other: ValueRanges) -> None:
        for k in self.lo:
            if other.seen[k]:
                self.lo[k] = min(self.lo[k], other.lo[k])
                self.hi[k] = max(self.hi[k], other.hi[k])
                self.seen[k] = True

    def result(self) -> dict[str, np.ndarray]:
        return {k: (np.array([self.lo[k], self.hi[k]]) if self.seen[k] else np.array([np.nan]))
                for k in self.lo}


class Components(Protocol):
    """Connected components of a mask, numbered ``1..n`` in raster order of their first cell.

    ``sums`` (float64, ``n + 1``) holds the weight layer summed per component in raster
    order (NaN as 0; ``sums[0] = 0``), so every engine gives the same bits.
    """

    n: int
    sums: np.ndarray

    def keep(self, threshold: float) -> np.ndarray:
        """Bool table over ``0..n``: components with ``sums >= threshold``."""
        ...

    def select(self, table: np.ndarray) -> Any:
        """Layer ``table[labels]`` (a table over ``0..n``, e.g. a bool ``keep``)."""
        ...

    def close(self) -> None:
        """Release the labels (layers made by :meth:`select` stay valid)."""
        ...


class Canvas(Protocol):
    """A class raster painted in steps: each step writes only cells not yet painted."""

    def paint(self, mask: Any, code: int) -> None:
        """Give ``code`` to the cells of the bool layer ``mask`` that are still unpainted."""
        ...

    def painted(self) -> Any:
        """Bool layer of the cells painted so far."""
        ...

    def finish(self, rest: int, recode: Sequence[tuple[Any, int | None, int]] = ()) -> Any:
        """Unpainted cells get ``rest``; then each ``(mask, from_code, to_code)`` turns
        ``from_code`` cells of ``mask`` (every cell of it when ``from_code`` is None) into
        ``to_code``. Returns the uint8 layer."""
        ...


class GridEngine(Protocol):
    """The operations of the module docstring, on layers of one grid ``shape``."""

    name: str
    #: True when inputs are read window by window from files (checked while read)
    streams_inputs: bool
    #: diagnostics of the last operations (seconds per phase, windows run, ...)
    stats: dict[str, Any]

    def cell_map(self, fn: BlockFunction, inputs: Mapping[str, Any],
                 outputs: Mapping[str, Any], *, halo: int = 0,
                 keep: Sequence[str] = (), ranges: Sequence[str] = ()) -> CellMapResult:
        """Apply a block function over the grid (``outputs``: name -> dtype)."""
        ...

    def components(self, mask: Any, connectivity: int,
                   weights: Any | None = None) -> Components:
        """Connected components of a bool layer with per-component sums of ``weights``."""
        ...

    def touching(self, components: Components, mask: Any) -> np.ndarray:
        """Bool table over ``0..n``: components with a cell where ``mask`` is True."""
        ...

    def queen_buffer(self, mask: Any, steps: int) -> Any:
        """Bool layer: cells within Chebyshev distance ``steps`` of ``mask``."""
        ...

    def smooth_and_fill(self, components: Components, keep: np.ndarray, *,
                        rule: int | None, excluded: Any | None = None,
                        blocked: Any | None = None, gap_fill: bool = True,
                        max_hole_cells: int | None = None) -> Any:
        """Bool layer of the kept components after edge smoothing and gap filling.

        ``rule`` is :data:`EDGE_RULE_R2022A`, :data:`EDGE_RULE_R2023A` or None (no
        smoothing); ``excluded`` (non-members left out of the valid neighbours) and
        ``blocked`` (cells that never join) are bool layers used by R2023A. Holes are
        the rook pockets of each rook part of a component; those of at most
        ``max_hole_cells`` cells (None: any size) are filled. Consumes ``components``.
        """
        ...

    def masked_mean(self, values: Any, mask: Any) -> tuple[float, int]:
        """``(mean, count)`` of the non-NaN ``values`` where ``mask`` (numpy's pairwise
        sum over them in raster order; ``(nan, 0)`` when there are none)."""
        ...

    def canvas(self) -> Canvas:
        """An empty class raster on the grid."""
        ...

    def minutes_to(self, sources: Any, *, cell_size_m: float, speed_kmh: Any = None,
                   default_speed_kmh: float = 60.0, passable: Any = None,
                   max_minutes: float | None = None) -> Any:
        """Layer of least-cost travel minutes from the bool layer ``sources`` (``inf``
        beyond ``max_minutes`` or unreachable); ``speed_kmh`` a number or a layer,
        ``passable`` a bool layer (see :func:`~pari_geo.outofcore.travel_time.minutes_to`)."""
        ...

    def component_counts(self, components: Components) -> np.ndarray:
        """Cells per component (int64 over ``0..n``, ``[0]`` is 0)."""
        ...

    def component_first_values(self, components: Components, layer: Any) -> np.ndarray:
        """The value of ``layer`` at each component's first cell in raster order."""
        ...

    def component_on_edge(self, components: Components) -> np.ndarray:
        """Bool table over ``0..n``: components with a cell on the grid's edge."""
        ...

    def values_under(self, layer: Any, mask: Any) -> np.ndarray:
        """Sorted distinct finite values of ``layer`` where the bool layer ``mask`` is set
        (e.g. the units that hold an urban core)."""
        ...


def values_under(layer: Any, mask: Any, shape: tuple[int, int], strip_rows: int) -> np.ndarray:
    """:meth:`GridEngine.values_under` of any engine, strip by strip.

    Examples
    --------
    >>> lay = ArrayLayer(np.array([[3.0, 1.0], [np.nan, 3.0]]))
    >>> values_under(lay, ArrayLayer(np.ones((2, 2), bool)), (2, 2), 1).tolist()
    [1.0, 3.0]
    """
    found: set[float] = set()
    rows, cols = shape
    for r0 in range(0, rows, max(1, int(strip_rows))):
        r1 = min(rows, r0 + max(1, int(strip_rows)))
        sel = np.asarray(mask.read(r0, r1, 0, cols), bool)
        if not sel.any():
            continue
        v = np.asarray(layer.read(r0, r1, 0, cols))[sel]
        if v.dtype.kind == "f":
            v = v[np.isfinite(v)]
        found.update(np.unique(v).tolist())
    return np.array(sorted(found))
