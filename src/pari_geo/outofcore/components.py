"""Connected components of a boolean mask stored by tiles (out-of-core labelling).

The mask is read one rectangular tile at a time (any tile shape). Each tile is labelled
with ``scipy.ndimage.label``; its provisional ids are written to a raw ``int32`` file on
disk and the components are joined across the tile seams with a union-find (straight
neighbours for rook, plus the diagonal ones, i.e. tile corners too, for queen adjacency)::

    rook        queen
    . x .       x x x
    x o x       x o x
    . x .       x x x

A second pass over full-width strips in raster order numbers the components ``1..n`` in
order of their first cell, exactly as ``scipy.ndimage.label`` numbers them on the whole
grid, and adds up the size layer per component in raster order, so the sums are
bit-identical to ``np.bincount`` / the in-memory ``label_sums``. Memory: a tile (or strip)
plus tables over the components: about 16 bytes per provisional component (one per
component and tile it touches) while labelling, then 4 bytes per provisional and 32 per
final component.

Examples
--------
>>> import numpy as np
>>> m = np.array([[1, 0, 0, 1], [0, 1, 1, 0]], bool)
>>> comp = label_tiled(m, 8, tile_shape=(1, 2), weights=np.arange(8.0).reshape(2, 4))
>>> comp.n, comp.labels().tolist(), comp.sums.tolist()
(1, [[1, 0, 0, 1], [0, 1, 1, 0]], [0.0, 14.0])
>>> label_tiled(m, 4, tile_shape=(1, 2)).labels().tolist()
[[1, 0, 0, 2], [0, 3, 3, 0]]
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from . import _kernels as kern
from ._unionfind import flatten

__all__ = [
    "check_tile_shape",
    "RawGrid",
    "TiledComponents",
    "iter_tiles",
    "iter_strips",
    "label_tiled",
]

#: a window reader: ``read(r0, r1, c0, c1) -> ndarray`` of shape ``(r1 - r0, c1 - c0)``
WindowReader = Callable[[int, int, int, int], np.ndarray]

_STRUCTURE = {
    4: ndimage.generate_binary_structure(2, 1),
    8: ndimage.generate_binary_structure(2, 2),
}


def _pwrite_all(fd: int, buf: memoryview, offset: int) -> None:
    """``os.pwrite`` until every byte is written."""
    while len(buf):
        n = os.pwrite(fd, buf, offset)
        buf, offset = buf[n:], offset + n


class RawGrid:
    """A 2-D array stored row-major in a raw file, read and written by windows.

    Every access maps the file, copies the window and unmaps it again, so the pages of
    the file never stay in the process's resident memory (``np.memmap`` pages count
    towards RSS while mapped).

    Parameters
    ----------
    path : path-like
        File to create (filled with zeros) or reuse.
    shape : (rows, cols)
    dtype : numpy dtype
    create : bool, default True
        Create (or truncate) the file.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> g = RawGrid(os.path.join(d, "a.raw"), (3, 4), np.int32)
    >>> g.write(1, 2, np.array([[5, 6]], np.int32))
    >>> g.read(0, 3, 1, 4).tolist()
    [[0, 0, 0], [0, 5, 6], [0, 0, 0]]
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, int], dtype: Any,
                 create: bool = True) -> None:
        self.path = Path(path)
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self._owner: Any = None  # e.g. a TemporaryDirectory holding the file
        if create:
            with open(self.path, "wb") as f:
                f.truncate(self.shape[0] * self.shape[1] * self.dtype.itemsize)

    def _map(self, mode: str, r0: int, r1: int) -> np.memmap:
        cols = self.shape[1]
        return np.memmap(self.path, dtype=self.dtype, mode=mode,  # type: ignore[call-overload]
                         shape=(r1 - r0, cols), offset=r0 * cols * self.dtype.itemsize)

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Copy of the window ``[r0:r1, c0:c1]``."""
        if r1 <= r0 or c1 <= c0 or self.shape[1] == 0:
            return np.zeros((max(r1 - r0, 0), max(c1 - c0, 0)), dtype=self.dtype)
        mm = self._map("r", r0, r1)
        try:
            return np.array(mm[:, c0:c1])
        finally:
            del mm

    def write(self, r0: int, c0: int, values: np.ndarray) -> None:
        """Write ``values`` with its top-left cell at ``(r0, c0)``.

        Plain positioned writes of exactly the window's bytes (one per row, or one for
        full-width rows), not a memory map: on a network file system a page written
        through a map goes back whole, so two machines writing neighbouring windows
        could undo each other's rows. The file is closed before returning, which on
        NFS flushes the data for the next open.
        """
        rows, cols = values.shape
        if rows == 0 or cols == 0:
            return
        width = self.shape[1]
        if r0 < 0 or c0 < 0 or r0 + rows > self.shape[0] or c0 + cols > width:
            raise ValueError(f"window ({r0}, {c0}) + {values.shape} outside {self.shape}")
        data = np.ascontiguousarray(values, dtype=self.dtype)
        item = self.dtype.itemsize
        fd = os.open(self.path, os.O_WRONLY)
        try:
            if cols == width:
                _pwrite_all(fd, memoryview(data).cast("B"),  # type: ignore[arg-type]
                            r0 * width * item)
            else:
                for i in range(rows):
                    _pwrite_all(fd, memoryview(data[i]).cast("B"),
                                ((r0 + i) * width + c0) * item)
        finally:
            os.close(fd)

    def reader(self) -> WindowReader:
        """The window reader of this grid."""
        return self.read


def iter_tiles(shape: tuple[int, int], tile_shape: tuple[int, int]
               ) -> Iterator[tuple[int, int, int, int]]:
    """Windows ``(r0, r1, c0, c1)`` of a regular tiling, tile rows top to bottom.

    Examples
    --------
    >>> list(iter_tiles((3, 5), (2, 3)))
    [(0, 2, 0, 3), (0, 2, 3, 5), (2, 3, 0, 3), (2, 3, 3, 5)]
    """
    tr, tc = check_tile_shape(tile_shape)
    rows, cols = shape
    for r0 in range(0, rows, tr):
        for c0 in range(0, cols, tc):
            yield r0, min(rows, r0 + tr), c0, min(cols, c0 + tc)


def tile_bands(shape: tuple[int, int], tile_shape: tuple[int, int]
               ) -> list[list[tuple[int, int, int, int]]]:
    """The windows of :func:`iter_tiles` grouped by tile row: one band per task.

    Examples
    --------
    >>> tile_bands((3, 5), (2, 3))
    [[(0, 2, 0, 3), (0, 2, 3, 5)], [(2, 3, 0, 3), (2, 3, 3, 5)]]
    """
    bands: dict[int, list] = {}
    for t in iter_tiles(shape, tile_shape):
        bands.setdefault(t[0], []).append(t)
    return list(bands.values())


def iter_strips(shape: tuple[int, int], cells: int) -> Iterator[tuple[int, int]]:
    """Full-width row strips ``(r0, r1)`` of about ``cells`` cells (at least one row).

    Examples
    --------
    >>> list(iter_strips((5, 4), 8))
    [(0, 2), (2, 4), (4, 5)]
    """
    rows, cols = shape
    step = max(1, int(cells) // max(cols, 1))
    for r0 in range(0, rows, step):
        yield r0, min(rows, r0 + step)


def check_tile_shape(tile_shape: Any) -> tuple[int, int]:
    """``(rows, cols)`` of a tile as two positive integers, or a one-line
    :class:`~pari_geo.errors.ConfigError` naming ``tile_shape``.

    Examples
    --------
    >>> check_tile_shape((256, 512.0))
    (256, 512)
    """
    try:
        tr, tc = (int(v) for v in tile_shape)
        ok = tr >= 1 and tc >= 1 and tuple(float(v) for v in tile_shape) == (tr, tc)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"tile_shape must be two positive integers, got {tile_shape!r}")
    return tr, tc


def _as_reader(x: Any) -> WindowReader:
    if callable(x):
        return x
    if isinstance(x, RawGrid):
        return x.read
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError("a mask or weight array must be 2-D")
    return lambda r0, r1, c0, c1: arr[r0:r1, c0:c1]


class TiledComponents:
    """Result of :func:`label_tiled`: component tables plus labels on disk.

    Attributes
    ----------
    shape : (rows, cols)
    connectivity : {4, 8}
    n : int
        Number of components; ids are ``1..n`` in raster order of their first cell.
    sums : ndarray of float64, shape (n + 1,)
        Size layer summed per component in raster order (NaN as 0); ``sums[0] = 0``.
    counts : ndarray of int64, shape (n + 1,)
        Cells per component.
    bbox : ndarray of int32, shape (n + 1, 4)
        Row min, row max, col min, col max (inclusive) of each component.
    """

    def __init__(self, shape, connectivity, raw: RawGrid, lut: np.ndarray, sums, counts,
                 bbox) -> None:
        self.shape = shape
        self.connectivity = connectivity
        self._raw = raw
        self._lut = lut
        self.n = int(sums.size - 1)
        self.sums = sums
        self.counts = counts
        self.bbox = bbox

    def labels(self, r0: int = 0, r1: int | None = None, c0: int = 0,
               c1: int | None = None) -> np.ndarray:
        """Final labels (int32) of the window ``[r0:r1, c0:c1]`` (default: whole grid)."""
        r1 = self.shape[0] if r1 is None else r1
        c1 = self.shape[1] if c1 is None else c1
        raw = self._raw.read(r0, r1, c0, c1)
        return kern.map_ids(raw, self._lut, np.empty(raw.shape, dtype=np.int32))

    def select(self, r0: int, r1: int, c0: int, c1: int, table: np.ndarray) -> np.ndarray:
        """``table[labels]`` on a window, e.g. a bool ``keep`` table over ``0..n``."""
        raw = self._raw.read(r0, r1, c0, c1)
        table = np.asarray(table)
        return kern.map_ids(raw, table[self._lut], np.empty(raw.shape, dtype=table.dtype))

    def keep(self, threshold: float) -> np.ndarray:
        """Bool table over ``0..n``: components with ``sums >= threshold``."""
        keep = self.sums >= threshold
        keep[0] = False
        return keep

    def close(self) -> None:
        """Delete the label file (the tables stay usable)."""
        with contextlib.suppress(OSError):
            self._raw.path.unlink()


def label_tiled(
    mask: np.ndarray | WindowReader | RawGrid,
    connectivity: int,
    *,
    tile_shape: tuple[int, int] = (1024, 1024),
    weights: np.ndarray | WindowReader | RawGrid | None = None,
    shape: tuple[int, int] | None = None,
    workdir: str | os.PathLike | None = None,
    strip_cells: int | None = None,
    run: Any = None,
) -> TiledComponents:
    """Label the connected components of a mask read tile by tile.

    Same partition and numbering as ``scipy.ndimage.label`` on the whole mask (rook or
    queen structure), with per-component sums of ``weights`` equal to ``np.bincount``
    in raster order (bit for bit), cell counts and bounding boxes.

    Parameters
    ----------
    mask : ndarray of bool, RawGrid or callable ``(r0, r1, c0, c1) -> ndarray``
        The mask, or a reader of its windows (then ``shape`` is required).
    connectivity : {4, 8}
        Rook (4) or queen (8) adjacency; nothing wraps around the grid edge.
    tile_shape : (rows, cols), default (1024, 1024)
        Any positive shape; edge tiles are smaller.
    weights : same kinds as ``mask``, optional
        Size layer (e.g. population); NaN counts as 0. Without it ``sums`` is all 0.
    shape : (rows, cols), optional
        Grid shape, required when ``mask`` is a reader.
    workdir : path-like, optional
        Folder of the label file (a temporary folder by default, removed with the result).
    strip_cells : int, optional
        Cells per strip of the numbering pass (default: the tile's cell count).
    run : TaskRunner, optional
        Label the tiles as tasks of this runner (see :mod:`pari_geo.scheduler`), one per
        band of tiles: each task labels its tiles and writes them to the label file
        (``workdir`` must then be on storage the workers see, and ``mask`` a reader that
        pickles, e.g. a :class:`RawGrid` or a function of one); seams are joined here
        and the provisional ids shifted by a second round of tasks. Same result.

    Returns
    -------
    TiledComponents

    Examples
    --------
    >>> import numpy as np
    >>> m = np.array([[1, 1, 0], [0, 0, 0], [1, 0, 1]], bool)
    >>> c = label_tiled(m, 4, tile_shape=(2, 2), weights=np.ones((3, 3)))
    >>> c.n, c.sums.tolist(), c.counts.tolist(), c.bbox[1].tolist()
    (3, [0.0, 2.0, 1.0, 1.0], [0, 2, 1, 1], [0, 0, 0, 1])
    """
    try:
        structure = _STRUCTURE[int(connectivity)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}") from None
    diagonal = int(connectivity) == 8
    tr, tc = check_tile_shape(tile_shape)
    if shape is None:
        if callable(mask) or isinstance(mask, RawGrid):
            if isinstance(mask, RawGrid):
                shape = mask.shape
            else:
                raise ValueError("shape is required when mask is a reader")
        else:
            shape = np.shape(mask)
    rows, cols = (int(shape[0]), int(shape[1]))
    if rows * cols >= 2**31 - 1:
        raise ValueError("grids of 2**31 cells or more are not supported")
    read_mask = _as_reader(mask)
    read_w = None if weights is None else _as_reader(weights)
    owned = None
    if workdir is None:
        owned = tempfile.TemporaryDirectory(prefix="pari_geo_cc_")
        workdir = owned.name
    fd, name = tempfile.mkstemp(suffix=".int32", prefix="labels_", dir=workdir)
    os.close(fd)
    raw = RawGrid(name, (rows, cols), np.int32)

    if run is not None:
        parent, n_ids = _label_by_tasks(run, read_mask, structure, raw, (tr, tc), diagonal)
    else:
        parent, n_ids = _label_here(read_mask, structure, raw, (tr, tc), diagonal)
    parent = parent[:n_ids + 1]
    n_comp = int(flatten(parent)) - 1  # id 0 (the background) is a root too
    tables = kern.strip_tables(n_ids, n_comp)
    empty_w = np.zeros((0, 0), dtype=np.float64)
    if n_ids:
        for s0, s1 in iter_strips((rows, cols), strip_cells or tr * tc):
            strip = raw.read(s0, s1, 0, cols)
            w = empty_w if read_w is None else np.asarray(read_w(s0, s1, 0, cols))
            kern.resolve_strip(strip, w, s0, parent, tables)
    compact, sums, counts, bbox = tables.compact, tables.sums, tables.counts, tables.bbox
    lut = compact[parent].astype(np.int32) if n_ids else np.zeros(1, dtype=np.int32)
    del parent, compact
    raw._owner = owned  # the temporary folder lives as long as the label file is used
    if owned is None:
        weakref.finalize(raw, _unlink, raw.path)
    return TiledComponents((rows, cols), int(connectivity), raw, lut, sums, counts, bbox)


def _grow(parent: np.ndarray, need: int) -> np.ndarray:
    if need <= parent.size:
        return parent
    grown = np.zeros(max(need, 2 * parent.size), dtype=np.int64)
    grown[:parent.size] = parent
    return grown


def _label_band(read_mask: WindowReader, structure: np.ndarray, raw: RawGrid,
                tiles: list) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray,
                                           np.ndarray]]:
    """One task: label tiles with local ids ``1..n``, write them, return the tile edges."""
    out = []
    for r0, r1, c0, c1 in tiles:
        m = np.asarray(read_mask(r0, r1, c0, c1), dtype=bool)
        lab, n = ndimage.label(m, structure=structure, output=np.int32)
        if n:
            raw.write(r0, c0, lab)
        out.append((int(n), lab[0].copy(), lab[-1].copy(), lab[:, 0].copy(),
                    lab[:, -1].copy()))
    return out


def _shift_band(raw: RawGrid, tiles: list) -> None:
    """One task: add each tile's id offset to its labelled cells."""
    for (r0, r1, c0, c1), offset in tiles:
        lab = raw.read(r0, r1, c0, c1)
        lab[lab > 0] += np.int32(offset)
        raw.write(r0, c0, lab)


def _label_by_tasks(run: Any, read_mask: WindowReader, structure: np.ndarray,
                    raw: RawGrid, tile_shape: tuple[int, int], diagonal: bool
                    ) -> tuple[np.ndarray, int]:
    """:func:`_label_here` with the tiles labelled and shifted as tasks.

    Provisional ids are offset in tile order and seams joined in tile order, exactly as
    the sequential pass does, so the partition and the raster-order numbering are the
    same.
    """
    rows, cols = raw.shape
    bands = tile_bands((rows, cols), tile_shape)
    parts = run(_label_band, [(read_mask, structure, raw, band) for band in bands])
    parent = np.zeros(1024, dtype=np.int64)
    n_ids = 0
    prev_bottom = np.zeros(cols, dtype=np.int32)
    cur_bottom = np.zeros(cols, dtype=np.int32)
    shifts: dict[int, list] = {}
    for band, part in zip(bands, parts, strict=True):
        prev_bottom, cur_bottom = cur_bottom, prev_bottom
        cur_bottom[:] = 0
        right_col = np.zeros(0, dtype=np.int32)
        for (r0, r1, c0, c1), (n, top, bottom, left, right) in zip(band, part, strict=True):
            if n:
                for edge in (top, bottom, left, right):
                    edge[edge > 0] += n_ids
                parent = _grow(parent, n_ids + n + 1)
                parent[n_ids + 1:n_ids + n + 1] = np.arange(n_ids + 1, n_ids + n + 1)
                if n_ids:
                    shifts.setdefault(r0, []).append(((r0, r1, c0, c1), n_ids))
                n_ids += n
                if r0 > 0:
                    kern.seam_union(parent, prev_bottom, top, c0, diagonal)
                if c0 > 0:
                    kern.seam_union(parent, right_col, left, 0, diagonal)
            cur_bottom[c0:c1] = bottom
            right_col = right
    if shifts:
        run(_shift_band, [(raw, tiles) for tiles in shifts.values()])
    return parent, n_ids


def _label_here(read_mask: WindowReader, structure: np.ndarray, raw: RawGrid,
                tile_shape: tuple[int, int], diagonal: bool) -> tuple[np.ndarray, int]:
    """Label tile by tile into ``raw`` with provisional ids, joining seams by union-find.

    Returns the union-find ``parent`` array and the number of provisional ids.
    """
    rows, cols = raw.shape
    parent = np.zeros(1024, dtype=np.int64)
    n_ids = 0  # provisional ids used so far (1..n_ids)
    prev_bottom = np.zeros(cols, dtype=np.int32)  # bottom row of the tile row above
    cur_bottom = np.zeros(cols, dtype=np.int32)
    right_col = np.zeros(0, dtype=np.int32)
    cur_r0 = -1
    for r0, r1, c0, c1 in iter_tiles((rows, cols), tile_shape):
        if r0 != cur_r0:
            if cur_r0 >= 0:
                prev_bottom, cur_bottom = cur_bottom, prev_bottom
                cur_bottom[:] = 0
            cur_r0 = r0
        m = np.asarray(read_mask(r0, r1, c0, c1), dtype=bool)
        lab, n = ndimage.label(m, structure=structure, output=np.int32)
        n = int(n)
        if n:
            lab[lab > 0] += n_ids
            parent = _grow(parent, n_ids + n + 1)
            parent[n_ids + 1:n_ids + n + 1] = np.arange(n_ids + 1, n_ids + n + 1)
            n_ids += n
            if r0 > 0:
                kern.seam_union(parent, prev_bottom, lab[0], c0, diagonal)
            if c0 > 0:
                kern.seam_union(parent, right_col, lab[:, 0], 0, diagonal)
            raw.write(r0, c0, lab)
        cur_bottom[c0:c1] = lab[-1]
        right_col = lab[:, -1].copy()
    return parent, n_ids


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
