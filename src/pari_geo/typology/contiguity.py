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

__all__ = ["label_cells", "cluster_mask", "queen_buffer", "fill_holes_by_part"]

_STRUCTURE = {
    4: ndimage.generate_binary_structure(2, 1),
    8: ndimage.generate_binary_structure(2, 2),
}


def _structure(connectivity: int) -> np.ndarray:
    try:
        return _STRUCTURE[int(connectivity)]
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}") from None


def label_cells(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    """Label the connected components of ``mask``.

    Parameters
    ----------
    mask : ndarray of bool, shape (rows, cols)
    connectivity : {4, 8}
        Rook (4) or queen (8) adjacency. Nothing wraps around the grid edge.

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
    labels, n = ndimage.label(mask, structure=_structure(connectivity), output=np.int32)
    return labels, int(n)


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
    labels, n = label_cells(dense, connectivity)
    if n == 0:
        return labels, np.zeros(0)
    weights = np.where(np.isnan(size_layer), 0.0, size_layer).astype(np.float64, copy=False)
    sizes = np.bincount(labels.ravel(), weights=weights.ravel(), minlength=n + 1)
    keep = sizes >= size_threshold
    keep[0] = False
    new_id = np.zeros(n + 1, dtype=np.int32)
    new_id[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return new_id[labels], sizes[keep]


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
    size = 2 * int(steps) + 1
    return ndimage.maximum_filter(mask.view(np.uint8), size=size, mode="constant", cval=0).astype(
        bool
    )


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
    >>> fill_holes_by_part(g, 1)[2, 2], fill_holes_by_part(g, 0)[2, 2]
    (np.True_, np.False_)
    """
    fill = np.zeros(centre_labels.shape, dtype=bool)
    rook = _STRUCTURE[4]
    for k, sl in enumerate(ndimage.find_objects(centre_labels), start=1):
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
