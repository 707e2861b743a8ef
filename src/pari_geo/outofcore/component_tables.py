"""Tables over connected components: cells, the value at the first cell, the grid edge.

Operations of both engines on the components of
:meth:`~pari_geo.outofcore.ops.GridEngine.components` (numbered ``1..n`` in raster order
of their first cell; index 0 is the background):

* :func:`counts_memory` / :func:`counts_tiled`: cells per component;
* :func:`first_values_memory` / :func:`first_values_tiled`: the value of an integer layer
  at each component's first cell in raster order (e.g. the core a patch of core cells
  lies in);
* :func:`on_edge_memory` / :func:`on_edge_tiled`: components with a cell on the grid's
  edge (a component touches the edge exactly when its bounding box does).

Each engine class binds these with one line per operation.

Examples
--------
>>> import numpy as np
>>> from pari_geo.outofcore.ops import ArrayLayer
>>> class Comp:  # the part of the in-memory components these functions read
...     labels = np.array([[1, 0, 2], [0, 0, 2], [3, 0, 0]], np.int32); n = 3
>>> counts_memory(Comp()).tolist(), on_edge_memory(Comp()).tolist()
([0, 1, 2, 1], [False, True, True, True])
>>> first_values_memory(Comp(), ArrayLayer(np.arange(9).reshape(3, 3))).tolist()
[0, 0, 2, 6]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .components import iter_strips

__all__ = [
    "counts_memory",
    "counts_tiled",
    "first_values_memory",
    "first_values_tiled",
    "on_edge_memory",
    "on_edge_tiled",
]


def _labels(comp: Any) -> np.ndarray:
    labels = getattr(comp, "labels", None)
    if labels is None:
        raise RuntimeError("these components were closed")
    return labels


def counts_memory(comp: Any) -> np.ndarray:
    """Cells per component (int64 over ``0..n``; ``[0]`` is 0)."""
    counts = np.bincount(_labels(comp).ravel(), minlength=comp.n + 1)
    counts[0] = 0
    return counts


def first_values_memory(comp: Any, layer: Any) -> np.ndarray:
    """``layer`` at the first cell (raster order) of each component (``[0]`` is 0)."""
    flat = _labels(comp).ravel()
    n = comp.n
    idx = np.flatnonzero(flat)
    first = np.full(n + 1, flat.size, np.int64)
    np.minimum.at(first, flat[idx], idx)
    rows, cols = layer.shape
    values = np.asarray(layer.read(0, rows, 0, cols)).ravel()
    out = np.zeros(n + 1, dtype=values.dtype)
    out[1:] = values[first[1:]]
    return out


def on_edge_memory(comp: Any) -> np.ndarray:
    """Bool table over ``0..n``: components with a cell on the grid's edge (``[0]`` False)."""
    lab = _labels(comp)
    edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    out = np.zeros(comp.n + 1, bool)
    out[edge] = True
    out[0] = False
    return out


def counts_tiled(comp: Any) -> np.ndarray:
    """Cells per component of the tiled engine's components
    (``[0]`` is 0)."""
    return np.asarray(comp.counts)


def first_values_tiled(comp: Any, layer: Any, strip_cells: int) -> np.ndarray:
    """:func:`first_values_memory` over strips of about ``strip_cells`` cells (``comp``:
    the tiled engine's components, with ``n``, ``shape`` and ``select``)."""
    n = comp.n
    rows, cols = comp.shape
    out = np.zeros(n + 1, dtype=np.dtype(layer.dtype))
    seen = np.zeros(n + 1, bool)
    seen[0] = True
    labels = comp.select(np.arange(n + 1, dtype=np.int32))
    for s0, s1 in iter_strips((rows, cols), strip_cells):
        lab = labels.read(s0, s1, 0, cols).ravel()
        idx = np.flatnonzero(~seen[lab])
        if idx.size == 0:
            continue
        ids, first = np.unique(lab[idx], return_index=True)  # first occurrence in order
        values = np.asarray(layer.read(s0, s1, 0, cols)).ravel()
        out[ids] = values[idx[first]]
        seen[ids] = True
        if seen.all():
            break
    out[0] = 0
    return out


def on_edge_tiled(comp: Any) -> np.ndarray:
    """:func:`on_edge_memory` from the bounding boxes of tiled components."""
    rows, cols = comp.shape
    bb = comp.bbox
    out = (bb[:, 0] == 0) | (bb[:, 1] == rows - 1) | (bb[:, 2] == 0) | (bb[:, 3] == cols - 1)
    out = np.asarray(out, bool).copy()
    out[0] = False
    return out
