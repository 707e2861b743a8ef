"""Connected components of dense cells, their population sums and holes.

Rook (4-) and queen (8-) connectivity::

    rook        queen
    . x .       x x x
    x o x       x o x
    . x .       x x x

Examples
--------
>>> import numpy as np
>>> m = np.array([[1, 0], [0, 1]], bool)
>>> label_cells(m, 4)[1], label_cells(m, 8)[1]
(2, 1)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = [
    "label_cells",
    "cluster_mask",
    "cluster_labels",
    "remap_labels",
    "queen_buffer",
    "fill_holes_by_part",
]

#: cells per block of the block-wise passes (bounds their temporaries to a few MB)
BLOCK_CELLS = 1 << 18


def row_blocks(shape: tuple[int, ...], block_cells: int = BLOCK_CELLS):
    """Row slices covering a 2-D grid in blocks of about ``block_cells`` cells."""
    rows, cols = shape
    step = max(1, block_cells // max(cols, 1))
    for r0 in range(0, rows, step):
        yield slice(r0, min(rows, r0 + step))

_STRUCTURE = {
    4: ndimage.generate_binary_structure(2, 1),
    8: ndimage.generate_binary_structure(2, 2),
}


def _structure(connectivity: int) -> np.ndarray:
    try:
        return _STRUCTURE[int(connectivity)]
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}") from None


def label_cells(
    mask: np.ndarray, connectivity: int, *, output: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Label the connected components of ``mask``.

    Parameters
    ----------
    mask : ndarray of bool, shape (rows, cols)
    connectivity : {4, 8}
        Rook (4) or queen (8) adjacency. Nothing wraps around the grid edge.
    output : ndarray of int32, optional
        Preallocated array (same shape) to write the labels into, e.g. to reuse a buffer.

    Returns
    -------
    labels : ndarray of int32
        0 outside the mask, 1..n inside, numbered in raster order of each component's
        first cell.
    n : int
        Number of components.

    Examples
    --------
    >>> import numpy as np
    >>> label_cells(np.array([[1, 1, 0, 1]], bool), 4)[0].tolist()
    [[1, 1, 0, 2]]
    """
    structure = _structure(connectivity)
    if output is None:
        labels, n = ndimage.label(mask, structure=structure, output=np.int32)
        return labels, int(n)
    if output.dtype != np.int32 or output.shape != mask.shape:
        raise ValueError("output must be an int32 array of the mask's shape")
    n = ndimage.label(mask, structure=structure, output=output)
    return output, int(n)


def remap_labels(labels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Replace every label ``l`` by ``table[l]`` in place, block by block.

    Same result as ``labels[...] = table[labels]`` without a full-size temporary.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.array([[0, 1, 2, 2]], np.int32)
    >>> remap_labels(lab, np.array([0, 0, 1], np.int32)).tolist()
    [[0, 0, 1, 1]]
    """
    for sl in row_blocks(labels.shape):
        labels[sl] = table[labels[sl]]
    return labels


def cluster_labels(
    dense: np.ndarray,
    size_layer: np.ndarray,
    connectivity: int,
    *,
    output: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Label the components of ``dense`` and sum ``size_layer`` over each (DEGURBA 2.1).

    Returns
    -------
    labels : ndarray of int32
        1..n in raster order of each component's first cell, 0 outside ``dense``.
    sizes : ndarray of float64, shape (n + 1,)
        ``sizes[l]`` = sum of the size layer over label ``l`` (NaN counted as 0), summed
        in raster order exactly like ``np.bincount``; ``sizes[0]`` (background) is 0.

    Examples
    --------
    >>> import numpy as np
    >>> labels, sizes = cluster_labels(np.array([[1, 0, 1]], bool),
    ...                                np.array([[2.0, 9.0, np.nan]]), 4)
    >>> labels.tolist(), sizes.tolist()
    ([[1, 0, 2]], [0.0, 2.0, 0.0])
    """
    from .. import _numba

    labels, n = label_cells(dense, connectivity, output=output)
    if n == 0:
        return labels, np.zeros(1)
    if labels.size <= _numba.SMALL_GRID_CELLS:  # numpy's bincount: the same bits
        w = np.asarray(size_layer).astype(np.float64)
        w[np.isnan(w)] = 0.0
        sizes = np.bincount(labels.ravel(), weights=w.ravel(), minlength=n + 1)
        sizes[0] = 0.0
        return labels, sizes
    from ._grid_kernels import label_sums

    return labels, label_sums(labels, size_layer, n)


def cluster_mask(
    dense: np.ndarray,
    size_layer: np.ndarray,
    size_threshold: float,
    connectivity: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Clusters of dense cells whose summed size reaches a threshold (DEGURBA 2.1).

    Parameters
    ----------
    dense : ndarray of bool
        Cells that pass the density (or built-up) criterion.
    size_layer : ndarray of float
        Usually population; missing values (NaN) count as 0.
    size_threshold : float
        A cluster is kept when its size is ``>=`` this value.
    connectivity : {4, 8}

    Returns
    -------
    labels : ndarray of int32
        Labels of the kept clusters only (1..k, in raster order), 0 elsewhere.
    sizes : ndarray of float64
        Size of each kept cluster, ``sizes[i - 1]`` for label ``i``.

    Examples
    --------
    >>> import numpy as np
    >>> dense = np.array([[1, 1, 0, 1]], bool)
    >>> pop = np.array([[3.0, 4.0, 0.0, 5.0]])
    >>> labels, sizes = cluster_mask(dense, pop, 6, 4)
    >>> labels.tolist(), sizes.tolist()
    ([[1, 1, 0, 0]], [7.0])
    """
    labels, sizes = cluster_labels(dense, size_layer, connectivity)
    if sizes.size == 1:
        return labels, np.zeros(0)
    keep = sizes >= size_threshold
    keep[0] = False
    new_id = np.zeros(sizes.size, dtype=np.int32)
    new_id[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return remap_labels(labels, new_id), sizes[keep]


def queen_buffer(mask: np.ndarray, steps: int) -> np.ndarray:
    """Cells within Chebyshev distance ``steps`` of ``mask`` (``steps`` 3x3 dilations).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((5, 5), bool); m[2, 2] = True
    >>> int(queen_buffer(m, 1).sum()), int(queen_buffer(m, 2).sum())
    (9, 25)
    """
    if steps <= 0 or not mask.any():
        return mask.copy()
    mask = np.asarray(mask, dtype=bool)
    k = int(steps)
    # separable: a 2k+1 wide OR along the rows, then along the columns (= maximum_filter
    # of size 2k+1 with a constant 0 border, without its uint8 round trip)
    rows = mask.copy()
    for s in range(1, min(k, mask.shape[1] - 1) + 1):
        rows[:, s:] |= mask[:, :-s]
        rows[:, :-s] |= mask[:, s:]
    out = rows.copy()
    for s in range(1, min(k, mask.shape[0] - 1) + 1):
        out[s:, :] |= rows[:-s, :]
        out[:-s, :] |= rows[s:, :]
    return out


def _centres_with_possible_holes(centre_labels: np.ndarray) -> np.ndarray:
    """Ids of the centres that may have a hole; the others certainly have none.

    A hole H of a part P is rook-bounded by P, so P is rook-adjacent to a cell of H that is
    either a cell of another centre (different id: same-id neighbours are in the same part)
    or a non-centre cell whose rook component of non-centre cells lies inside H and so
    does not reach the grid border (a "pocket"). Hence a centre none of whose cells is
    rook-adjacent to a pocket or to another centre has no hole. This replaces one
    ``ndimage.label`` per centre part by one labelling of the grid.
    """
    lab = centre_labels
    rows, cols = lab.shape
    background = lab == 0
    outside, n_out = ndimage.label(background, structure=_STRUCTURE[4], output=np.int32)
    del background
    ids = []
    if n_out:
        border = np.zeros(n_out + 1, dtype=bool)
        for edge in (outside[0, :], outside[-1, :], outside[:, 0], outside[:, -1]):
            border[edge] = True
        border[0] = True
        if not border.all():
            pocket = ~border
            pr_parts, pc_parts = [], []
            for sl in row_blocks(lab.shape):
                r, c = np.nonzero(pocket[outside[sl]])
                pr_parts.append(r + sl.start)
                pc_parts.append(c)
            pr, pc = np.concatenate(pr_parts), np.concatenate(pc_parts)
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                r, c = pr + dr, pc + dc
                ok = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
                ids.append(lab[r[ok], c[ok]])
    del outside
    # centres touching another centre (rook)
    for a, b in ((lab[:, 1:], lab[:, :-1]), (lab[1:, :], lab[:-1, :])):
        touch = a != b
        touch &= a > 0
        touch &= b > 0
        if touch.any():
            ids.append(a[touch])
            ids.append(b[touch])
    if not ids:
        return np.zeros(0, dtype=np.int64)
    found = np.unique(np.concatenate(ids))
    return found[found > 0].astype(np.int64)


def fill_holes_by_part(centre_labels: np.ndarray, max_hole_cells: int | None) -> np.ndarray:
    """Holes of each rook-connected part of each centre, up to a size (DEGURBA 2.4).

    For every centre id ``k`` and every 4-connected part ``P`` of the cells labelled ``k``,
    the holes are the rook-connected components of cells *not in P* that do not touch the
    grid border (so a pocket reaching the outside only through a diagonal pinch is a hole).
    A hole is filled when its number of cells is ``<= max_hole_cells``; ``None`` fills every
    hole. All parts are evaluated against the same input state.

    Parameters
    ----------
    centre_labels : ndarray of int
        Centre ids (> 0), 0 outside centres.
    max_hole_cells : int or None

    Returns
    -------
    ndarray of bool
        The cells to add (holes that are filled), excluding cells already in the part.

    Examples
    --------
    >>> import numpy as np
    >>> ring = np.ones((3, 3), int); ring[1, 1] = 0
    >>> g = np.pad(ring, 1)
    >>> bool(fill_holes_by_part(g, 1)[2, 2]), bool(fill_holes_by_part(g, 0)[2, 2])
    (True, False)
    """
    fill = np.zeros(centre_labels.shape, dtype=bool)
    rook = _STRUCTURE[4]
    candidates = _centres_with_possible_holes(centre_labels)
    if candidates.size == 0:
        return fill
    objects = ndimage.find_objects(centre_labels)
    for k in candidates.tolist():
        sl = objects[k - 1]
        if sl is None:
            continue
        in_k = centre_labels[sl] == k
        parts, n_parts = ndimage.label(in_k, structure=rook)
        part_slices = ndimage.find_objects(parts)
        for p, psl in enumerate(part_slices, start=1):
            if psl is None:
                continue
            r0 = sl[0].start + psl[0].start
            c0 = sl[1].start + psl[1].start
            r1 = sl[0].start + psl[0].stop
            c1 = sl[1].start + psl[1].stop
            if r1 - r0 < 3 or c1 - c0 < 3:
                continue  # a part this thin cannot enclose anything
            in_p = parts[psl] == p
            outside, n_out = ndimage.label(~in_p, structure=rook)
            if n_out == 0:
                continue
            # components touching the bounding box edge connect to the rest of the grid
            edge = np.zeros(n_out + 1, dtype=bool)
            edge[outside[0, :]] = True
            edge[outside[-1, :]] = True
            edge[outside[:, 0]] = True
            edge[outside[:, -1]] = True
            area = np.bincount(outside.ravel(), minlength=n_out + 1)
            is_hole = ~edge
            is_hole[0] = False
            if max_hole_cells is not None:
                is_hole &= area <= max_hole_cells
            if is_hole.any():
                fill[r0:r1, c0:c1] |= is_hole[outside]
    return fill
