"""Exact DBSCAN beyond memory: spatial partitions with halos, merged across seams.

:func:`dbscan_partitioned` gives, array for array, the result of the in-memory
:func:`pari_geo.clustering.dbscan` (and so of ``sklearn.cluster.DBSCAN``) while holding
only one partition's points in memory at a time. The points may be an array, a
``numpy.memmap`` or the path of a ``.npy`` file, read in chunks.

How it works
------------
1. **Plan.** One streaming pass validates the points and keeps a systematic sample; the
   plane is cut into vertical strips at sample quantiles of x, and each strip into tiles
   at quantiles of y within it (or at given cut lines), so that each tile holds about
   ``partition_size`` points.
2. **Route.** A second pass writes each point to its own tile and to the *halo* of every
   other tile whose box, widened by a margin of ``2 * eps`` (slightly more, to absorb
   floating-point rounding of the inclusive test ``dx*dx + dy*dy <= eps*eps``), holds
   it. Tile files live in a scratch directory (or in memory for small inputs).
3. **Cluster each tile** with its halo, on the kernels of the in-memory DBSCAN. The core
   flags of the tile's own points are exact, and so are those of the halo points within
   eps of the tile; farther halo points can only miss neighbours, so every point flagged
   core is core. Every local link between core points is therefore a true one, and
   every true link with an end in the tile is seen. A non-core point whose core
   neighbours all lie in one local component gets that component.
4. **Join** the local components with a union-find, through the halo core points (whose
   component in the tile that owns them is known), and **number** the clusters in one
   scan in index order by their smallest core-point index, as scikit-learn does.
5. **Border points** whose core neighbours span several local components (rare) keep,
   from step 3, one core neighbour per component; they take the lowest of these
   neighbours' cluster numbers.

Memory: one tile with its halo at a time (about ``_BYTES_PER_POINT`` bytes per point,
see ``max_memory``), a chunk of input, and global arrays of 9 bytes per point: the
labels (int64, which also hold the component ids while they are resolved) and the core
mask (bool). With ``out_dir`` these two are ``.npy`` files on disk, memory-mapped.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..outofcore._unionfind import union_pairs
from . import _partition_kernels as pk
from . import driver
from ._partition_kernels import TileBounds
from .estimator import check_params
from .threads import numba_threads, resolve_threads

__all__ = ["dbscan_partitioned", "dbscan_partitioned_dask"]

log = logging.getLogger(__name__)

#: Approximate peak bytes per point (tile + halo) of the per-partition work.
_BYTES_PER_POINT = 200
_DEFAULT_MAX_MEMORY = 2 * 2**30
#: In-memory inputs up to this many points keep their tiles in memory (no scratch files)
#: unless ``workdir`` is given.
_IN_MEMORY_MAX = 4_000_000
_SAMPLE_SIZE = 1_000_000
_MAX_TILES = 1_000_000


# ---------------------------------------------------------------------------------------
# input: arrays, memmaps and .npy files read in chunks
# ---------------------------------------------------------------------------------------
class _Source:
    """Row chunks of an (n, 1|2) coordinate array, an ``np.memmap`` or a ``.npy`` file."""

    def __init__(self, points: Any, name: str = "points") -> None:
        self.path: Path | None = None
        self.array: np.ndarray | None = None
        if isinstance(points, (str, os.PathLike)):
            self.path = Path(points)
            if not self.path.is_file():
                raise ValueError(f"{name}: no such .npy file: {self.path}")
            with open(self.path, "rb") as f:
                try:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                    else:
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                except ValueError as e:
                    raise ValueError(f"{name}: {self.path} is not a .npy file ({e})") from e
                self.offset = f.tell()
            if fortran:  # columns contiguous: fall back to a memory map
                self.array = np.load(self.path, mmap_mode="r")
                self.path = None
            self.shape = tuple(shape)
            self.dtype = np.dtype(dtype)
        else:
            arr = points if isinstance(points, np.ndarray) else np.asarray(points)
            if arr.dtype == object:
                try:
                    arr = np.asarray(points, dtype=np.float64)
                except (TypeError, ValueError) as e:
                    raise ValueError(f"{name} must hold numbers: {e}") from e
            self.array = arr
            self.shape = arr.shape
            self.dtype = arr.dtype
        if self.dtype.kind not in "biuf":
            raise ValueError(
                f"{name} must hold real numbers (projected coordinates); got dtype {self.dtype}"
            )
        if len(self.shape) != 2:
            raise ValueError(
                f"{name} must be a 2-D array of shape (n_samples, 2); got shape {self.shape}"
            )
        if self.shape[0] < 1:
            raise ValueError(f"{name} has 0 samples (shape {self.shape}); at least 1 is required")
        if self.shape[1] not in (1, 2):
            raise ValueError(
                f"pari_geo DBSCAN handles 2-D Euclidean points only (projected coordinates, "
                f"shape (n_samples, 2)); {name} has {self.shape[1]} features: use "
                f"sklearn.cluster.DBSCAN for other metrics or dimensions"
            )
        self.n = int(self.shape[0])
        self.d = int(self.shape[1])
        self.in_memory = self.path is None and not isinstance(self.array, np.memmap)

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Float64 x and y (zeros for one column) of rows ``start:stop``."""
        if self.path is not None:
            with open(self.path, "rb") as f:
                f.seek(self.offset + start * self.d * self.dtype.itemsize)
                block = np.fromfile(f, dtype=self.dtype, count=(stop - start) * self.d)
            block = block.reshape(stop - start, self.d)
        else:
            block = self.array[start:stop]  # type: ignore[index]
        block = np.asarray(block, dtype=np.float64)
        x = np.ascontiguousarray(block[:, 0])
        y = np.ascontiguousarray(block[:, 1]) if self.d == 2 else np.zeros_like(x)
        if isinstance(self.array, np.memmap):
            _release(self.array)
        return x, y


def _release(mm: np.memmap) -> None:
    """Drop a shared memory map's pages from this process's resident set (the page cache
    keeps them, with any changes); without it a streamed pass over a memmap counts the
    whole file. Copy-on-write maps (``mode="c"``) are left alone."""
    import mmap

    if getattr(mm, "mode", "c") == "c":  # private (copy-on-write) pages would be lost
        return
    m = getattr(mm, "_mmap", None)
    if m is not None and hasattr(m, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        with contextlib.suppress(OSError, ValueError):
            m.madvise(mmap.MADV_DONTNEED)


def _weights_reader(sample_weight: Any, n: int):
    """A function ``(start, stop) -> float64 weights``, validated chunk by chunk later."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, (str, os.PathLike)):
        sample_weight = np.load(sample_weight, mmap_mode="r")
    w = sample_weight if isinstance(sample_weight, np.ndarray) else np.asarray(sample_weight)
    if w.ndim == 0:  # a scalar weight, as scikit-learn allows
        val = float(w)

        def const(start: int, stop: int) -> np.ndarray:
            return np.full(stop - start, val, np.float64)

        return const
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight.shape == {w.shape}, expected {(n,)}!")
    if w.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must hold real numbers; got dtype {w.dtype}")

    def read(start: int, stop: int) -> np.ndarray:
        out = np.asarray(w[start:stop], dtype=np.float64)
        if isinstance(w, np.memmap):
            _release(w)
        return out

    return read


def _check_weight_chunk(wc: np.ndarray, start: int) -> None:
    if not np.all(np.isfinite(wc)):
        raise ValueError("sample_weight contains NaN or infinite values")
    neg = np.flatnonzero(wc < 0)
    if neg.size:
        raise ValueError(
            f"sample_weight must be non-negative; negative value at index "
            f"{start + neg[0]} ({wc[neg[0]]!r})"
        )


# ---------------------------------------------------------------------------------------
# tile stores: per tile, the records of its own points and of its halo
# ---------------------------------------------------------------------------------------
def _record_dtype(weighted: bool) -> np.dtype:
    fields = [("i", "<i8"), ("x", "<f8"), ("y", "<f8")]
    if weighted:
        fields.append(("w", "<f8"))
    return np.dtype(fields)


class _TileStore:
    """Append-only record lists per (tile, kind); kind 0 = own points, 1 = halo."""

    def __init__(self, dtype: np.dtype, directory: Path | None) -> None:
        self.dtype = dtype
        self.directory = directory
        self.parts: dict[tuple[int, int], list[np.ndarray]] = {}
        self.counts: dict[tuple[int, int], int] = {}

    def _path(self, tile: int, kind: int) -> Path:
        return self.directory / f"tile{tile}_{'own' if kind == 0 else 'halo'}.bin"  # type: ignore[operator]

    def append(self, tile: int, kind: int, recs: np.ndarray) -> None:
        key = (tile, kind)
        self.counts[key] = self.counts.get(key, 0) + recs.shape[0]
        if self.directory is None:
            self.parts.setdefault(key, []).append(recs)
        else:
            with open(self._path(tile, kind), "ab") as f:
                recs.tofile(f)

    def count(self, tile: int, kind: int) -> int:
        return self.counts.get((tile, kind), 0)

    def get(self, tile: int, kind: int) -> np.ndarray:
        if self.count(tile, kind) == 0:
            return np.empty(0, self.dtype)
        if self.directory is None:
            parts = self.parts[(tile, kind)]
            if len(parts) > 1:
                self.parts[(tile, kind)] = parts = [np.concatenate(parts)]
            return parts[0]
        return np.fromfile(self._path(tile, kind), dtype=self.dtype)


# ---------------------------------------------------------------------------------------
# the plan: strips and tiles
# ---------------------------------------------------------------------------------------
class _Plan:
    """Cut values and expanded (halo) bounds of the tiles; see
    :mod:`pari_geo.clustering._partition_kernels` for the layout."""

    def __init__(self, xcuts, ycuts_per_strip, margin):
        xcuts = np.unique(np.asarray(xcuts, np.float64))
        ns = xcuts.shape[0] + 1
        if len(ycuts_per_strip) == 1 and ns > 1:
            ycuts_per_strip = list(ycuts_per_strip) * ns
        ycs = [np.unique(np.asarray(c, np.float64)) for c in ycuts_per_strip]
        self.xcuts = xcuts
        self.ycut_off = np.zeros(ns + 1, np.int64)
        self.ycut_off[1:] = np.cumsum([c.shape[0] for c in ycs])
        self.ycuts = np.concatenate(ycs) if ycs else np.empty(0)
        self.ntiles = int(self.ycut_off[-1] + ns)
        inf = np.array([np.inf])
        xe = np.concatenate([-inf, xcuts, inf])
        self.xlo = xe[:-1] - margin
        self.xhi = xe[1:] + margin
        ylo, yhi = [], []
        for c in ycs:
            ye = np.concatenate([-inf, c, inf])
            ylo.append(ye[:-1] - margin)
            yhi.append(ye[1:] + margin)
        self.ylo = np.concatenate(ylo)
        self.yhi = np.concatenate(yhi)
        self.margin = margin
        self.bounds = TileBounds(self.xcuts, self.ycuts, self.ycut_off, self.xlo, self.xhi,
                                 self.ylo, self.yhi)


def _margin(eps: float, max_abs: float) -> float:
    """Halo width: ``eps`` plus slack for the rounding of the inclusive distance test
    and of the widened bounds (any extra width is harmless, only costs a few points)."""
    return eps * (1.0 + 2.0**-30) + 16.0 * float(np.spacing(max(max_abs, 1.0)))


def _quantile_cuts(values: np.ndarray, k: int) -> np.ndarray:
    if k <= 1 or values.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(values, np.arange(1, k) / k))


def _make_plan(sx, sy, n, bbox, margin, n_partitions, tile_size, cuts) -> _Plan:
    xmin, xmax, ymin, ymax = bbox
    if cuts is not None:
        try:
            xc, yc = cuts
            xc = np.asarray(xc, np.float64).ravel()
            yc = np.asarray(yc, np.float64).ravel()
        except (TypeError, ValueError) as e:
            raise ValueError(f"cuts must be a pair (x_cuts, y_cuts) of 1-D arrays: {e}") from e
        if not (np.all(np.isfinite(xc)) and np.all(np.isfinite(yc))):
            raise ValueError("cuts must be finite numbers")
        return _Plan(xc, [yc], margin)
    if tile_size is not None:
        nx = math.floor((xmax - xmin) / tile_size)
        ny = math.floor((ymax - ymin) / tile_size)
        if (nx + 1) * (ny + 1) > _MAX_TILES:
            raise ValueError(
                f"tile_size={tile_size!r} makes {(nx + 1) * (ny + 1)} tiles "
                f"(more than {_MAX_TILES}); use a larger tile_size"
            )
        xc = xmin + tile_size * np.arange(1, nx + 1)
        yc = ymin + tile_size * np.arange(1, ny + 1)
        return _Plan(xc, [yc], margin)
    p = max(1, min(int(n_partitions), n))
    w = xmax - xmin
    h = ymax - ymin
    if h <= 0:
        kx = p
    elif w <= 0:
        kx = 1
    else:
        kx = int(np.clip(round(math.sqrt(p * w / h)), 1, p))
    ky = math.ceil(p / kx)
    xc = _quantile_cuts(sx, kx)
    strip = np.searchsorted(xc, sx, side="right")
    ycs = [_quantile_cuts(sy[strip == s], ky) for s in range(xc.shape[0] + 1)]
    return _Plan(xc, ycs, margin)


# ---------------------------------------------------------------------------------------
# per-tile work, on the steps of the in-memory DBSCAN (driver)
# ---------------------------------------------------------------------------------------
def _local_dbscan(x, y, w, eps, min_samples, n_own):
    """DBSCAN of local points (a tile and its halo) on the steps of the in-memory run.

    Returns, in the local order, ``core`` (core flags), ``lo`` and ``hi``: for a core
    point both are its component number (components numbered by smallest local index);
    for another point the lowest and highest component number among the core points
    within eps, -1 without any. Also ``m``, the number of components holding one of the
    first ``n_own`` points as a core point (they are numbered ``0 .. m-1``), and, for
    the *undecided* points (non-core among the first ``n_own``, next to a component
    ``>= m`` or to several components), pairs ``(local index of the undecided point,
    local index of a core neighbour)``, one pair per distinct neighbouring component.
    """
    eps2 = eps * eps
    lay = driver.layout(x, y, w, eps, extent_hint="of a partition (",
                        fix_hint="use more partitions or rescale")
    lay, cores = driver.core_cells(lay, eps2, min_samples)
    labels, n_comp = driver.core_labels(lay, cores, eps2)
    cell_start, order = lay.grid.cell_start, lay.order
    top = max(n_comp - 1, 0)
    # highest neighbouring component = top - lowest of the flipped numbers top - label
    flipped = pk.flip_core_labels(labels, cell_start, cores.ncore, top)
    for lab in (labels, flipped):
        driver.border_labels(lay, cores, lab, eps2)
    core_out, lo, hi, m = pk.scatter_lo_hi(labels, flipped, order, cell_start, cores.ncore, top,
                                           n_own)
    qpos = pk.undecided_positions(labels, flipped, order, cell_start, cores.ncore, top, m, n_own)
    del flipped
    if qpos.size:
        qk, rep = pk.neighbour_components(qpos, lay.points, labels, lay.grid, cores.ncore, eps2)
        pairs = (order[qpos][qk], order[rep])
    else:
        pairs = (qpos, qpos)
    return core_out, lo, hi, m, pairs


# ---------------------------------------------------------------------------------------
# the public function
# ---------------------------------------------------------------------------------------
def _check_count(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _parse_memory(max_memory) -> int:
    if max_memory is None:
        return _DEFAULT_MAX_MEMORY
    if isinstance(max_memory, str):
        s = max_memory.strip().upper().replace("IB", "").replace("B", "")
        units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
        try:
            if s and s[-1] in units:
                return int(float(s[:-1]) * units[s[-1]])
            return int(float(s))
        except ValueError:
            raise ValueError(
                f"max_memory must be a number of bytes or a string like '4GiB'; got {max_memory!r}"
            ) from None
    if isinstance(max_memory, bool) or not isinstance(max_memory, numbers.Real):
        raise ValueError(f"max_memory must be a number of bytes; got {max_memory!r}")
    if not max_memory > 0:  # type: ignore[operator]
        raise ValueError(f"max_memory must be positive; got {max_memory!r}")
    return int(max_memory)  # type: ignore[call-overload]


def _new_output(out_dir, name, dtype, n, fill):
    if out_dir is None:
        return np.full(n, fill, dtype)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    arr = np.lib.format.open_memmap(Path(out_dir) / name, mode="w+", dtype=dtype, shape=(n,))
    return arr


def dbscan_partitioned(
    points: Any,
    eps: float,
    min_samples: int = 5,
    *,
    sample_weight: Any = None,
    n_partitions: int | None = None,
    partition_size: int | None = None,
    tile_size: float | None = None,
    cuts: tuple[Any, Any] | None = None,
    max_memory: int | str | None = None,
    workdir: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    chunk_size: int = 2_000_000,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact DBSCAN of 2-D points too many for memory, by spatial partitions.

    The result is array-equal to :func:`pari_geo.clustering.dbscan` on the whole set
    (and so to ``sklearn.cluster.DBSCAN(eps, min_samples)``): same core points, same
    noise, clusters numbered in the order of their smallest core-point index, and each
    border point in the lowest-numbered cluster among its core neighbours. Only one
    partition (its points plus a halo of the points within ``2 * eps`` of it) is
    clustered at a time.

    Parameters
    ----------
    points : array-like of shape (n_samples, 2), numpy.memmap, str or path
        Point coordinates in a projected CRS (for example metres), or the path of a
        ``.npy`` file holding them (read in chunks, never loaded whole). Any real dtype;
        coordinates are used as float64. A single column is treated as points on a line.
    eps : float
        Neighbourhood radius, in the units of ``points``; distance ``<= eps`` is a
        neighbour (inclusive).
    min_samples : int, default=5
        Number of points (with ``sample_weight``: their total weight) within ``eps``,
        the point itself included, that makes a core point.
    sample_weight : array-like of shape (n_samples,), numpy.memmap or path, optional
        Non-negative point weights, as in scikit-learn.
    n_partitions : int, optional
        Number of partitions wanted (strips at x quantiles, each cut into tiles at y
        quantiles; the actual count can be lower when coordinates repeat).
    partition_size : int, optional
        Target number of points per partition (halo not counted); sets
        ``n_partitions = ceil(n_samples / partition_size)``.
    tile_size : float, optional
        Square tiles of this side (in the units of ``points``) from the lower-left
        corner of the points, instead of quantile partitions. Dense areas make big tiles.
    cuts : (x_cuts, y_cuts), optional
        Explicit cut lines: a tile holds ``x_cuts[i-1] <= x < x_cuts[i]`` and
        ``y_cuts[j-1] <= y < y_cuts[j]``.
    max_memory : int or str, default="2GiB"
        Memory budget of the per-partition work, in bytes or as ``"4GiB"``, ``"512MB"``;
        used to choose ``partition_size`` (about 200 bytes per point with its halo) when
        none of ``n_partitions``, ``partition_size``, ``tile_size``, ``cuts`` is given.
        Global arrays (9 bytes per point) and the input chunk come on top.
    workdir : str or path, optional
        Directory for the scratch tile files (a temporary subdirectory is created and
        removed). By default the system temporary directory; in-memory inputs of at most
        4 million points keep their tiles in memory unless ``workdir`` is given.
    out_dir : str or path, optional
        If given, the results are written to ``out_dir/labels.npy`` and
        ``out_dir/core_mask.npy`` (overwritten) and returned as memory maps of them
        (written through the page cache; call ``.flush()`` on them to force them to
        disk); otherwise they are in-memory arrays.
    chunk_size : int, default=2_000_000
        Number of points read at a time from ``points``.
    n_jobs : int, optional
        Numba threads for the per-partition work (as in :func:`dbscan`). The result does
        not depend on it.

    Returns
    -------
    labels : ndarray of shape (n_samples,), dtype intp
        Cluster number of each point, ``-1`` for noise.
    core_mask : ndarray of shape (n_samples,), dtype bool
        True for core points.

    Raises
    ------
    ValueError
        For NaN or infinite coordinates, a wrong shape, more than two features,
        ``eps <= 0``, ``min_samples < 1``, negative or non-finite weights, a missing or
        malformed ``.npy`` file, or contradictory partition options.

    See Also
    --------
    pari_geo.clustering.dbscan : the same result in memory (faster when it fits).

    Notes
    -----
    With ``sample_weight``, sums of weights are accumulated in a different order than in
    the in-memory run, so a sum of non-dyadic weights that rounds onto ``min_samples``
    may differ (as between :func:`dbscan` and scikit-learn). Partition sizes come from a
    sample of at most a million points and are approximate; many points at one
    coordinate cannot be split and make one large partition. A partition narrower than
    ``2 * eps`` is correct but has a halo larger than itself; each partition costs two
    scratch files, so avoid very many tiny ones on large inputs.

    Measured on 2 cores (``benchmarks/dbscan_partitioned``): 1e8 points from a ``.npy``
    file in about 1 minute with a 2.2 GiB peak resident set, where the in-memory
    :func:`dbscan` needs 9.7 GiB.

    Examples
    --------
    >>> import numpy as np
    >>> from pari_geo.clustering import dbscan_labels
    >>> from pari_geo.clustering.partitioned import dbscan_partitioned
    >>> rng = np.random.default_rng(0)
    >>> X = np.round(rng.uniform(0, 2000, size=(500, 2)))
    >>> labels, core = dbscan_partitioned(X, eps=60.0, min_samples=4, n_partitions=9)
    >>> ref_labels, ref_core = dbscan_labels(X, eps=60.0, min_samples=4)
    >>> bool(np.array_equal(labels, ref_labels) and np.array_equal(core, ref_core))
    True

    A ``.npy`` file is read in chunks:

    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     np.save(os.path.join(d, "pts.npy"), X)
    ...     lab, _ = dbscan_partitioned(os.path.join(d, "pts.npy"), 60.0, 4,
    ...                                 partition_size=100, chunk_size=128)
    >>> bool(np.array_equal(lab, ref_labels))
    True
    """
    return _run(
        points,
        eps,
        min_samples,
        sample_weight=sample_weight,
        n_partitions=n_partitions,
        partition_size=partition_size,
        tile_size=tile_size,
        cuts=cuts,
        max_memory=max_memory,
        workdir=workdir,
        out_dir=out_dir,
        chunk_size=chunk_size,
        n_jobs=n_jobs,
        executor=None,
    )


# ---------------------------------------------------------------------------------------
# per-tile tasks (module level, so that dask can ship them to worker processes)
# ---------------------------------------------------------------------------------------
def _open(arr):
    """A global output array, or the memory map of the ``.npy`` file at a path."""
    if isinstance(arr, (str, os.PathLike)):
        return np.load(arr, mmap_mode="r+")
    return arr


def _load_tile(store: _TileStore, t: int):
    """Own points first, then the halo: (n_own, global index, x, y, weights or None)."""
    own = store.get(t, 0)
    halo = store.get(t, 1)
    idx = np.concatenate([own["i"], halo["i"]])
    x = np.concatenate([own["x"], halo["x"]])
    y = np.concatenate([own["y"], halo["y"]])
    w = np.concatenate([own["w"], halo["w"]]) if "w" in own.dtype.names else None  # type: ignore[operator]
    return own.shape[0], idx, x, y, w


def _task_cluster(store, t, eps, min_samples, offset, core, labels, n_jobs):
    """Cluster tile ``t`` with its halo; write its own points' core flags and ids.

    Core flags of the own points are exact (their neighbours are all in the halo), and
    so are those of the halo points within eps of the tile (the halo is 2 eps wide);
    further halo points can only lose neighbours, so a point flagged core is core. Every
    local core-core link is thus a true one, and every true link with an end in the
    tile is seen here.

    ``labels`` receives, for the own points: core points, ``offset +`` their local
    component (components holding an own core point are numbered first, fewer than the
    tile's own points, so ``offset`` is the number of own points of the previous
    tiles); non-core points, that id when all their core neighbours are in one such
    component, -1 without core neighbours, else -2 (*undecided*).

    Returns the links ``(component id, global index of a halo core point in it)``, the
    number of components holding an own core point, and for the undecided points the
    pairs ``(global index, global index of a core neighbour)``, one per neighbouring
    local component: the point's cluster is the lowest-numbered of its partners'.
    """
    core = _open(core)
    labels = _open(labels)
    n_own, idx, x, y, w = _load_tile(store, t)
    with numba_threads(n_jobs, idx.shape[0]):
        lc, lo, hi, m, (uq, ur) = _local_dbscan(x, y, w, eps, min_samples, n_own)
    del x, y, w
    oc = lc[:n_own]
    core[idx[:n_own]] = oc
    lo_o = lo[:n_own]
    out = np.where(lo_o < 0, -1, -2).astype(np.int64)
    single = oc | ((lo_o >= 0) & (lo_o == hi[:n_own]) & (hi[:n_own] < m))
    out[single] = lo_o[single] + offset
    labels[idx[:n_own]] = out
    link = np.flatnonzero(lc[n_own:] & (lo[n_own:] >= 0) & (lo[n_own:] < m)) + n_own
    return lo[link] + offset, idx[link], m, idx[uq], idx[ur]


def _serial(calls):
    return [f(*args) for f, *args in calls]


# ---------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------
def _run(
    points,
    eps,
    min_samples,
    *,
    sample_weight,
    n_partitions,
    partition_size,
    tile_size,
    cuts,
    max_memory,
    workdir,
    out_dir,
    chunk_size,
    n_jobs,
    executor,
):
    """Validate, plan, route, then run the per-tile phases with ``executor`` (a function
    running a list of ``(function, *args)`` calls and returning their results; ``None``
    runs them here, in order, on in-memory or memory-mapped outputs)."""
    t_start = time.perf_counter()
    eps, min_samples = check_params(eps, min_samples)
    resolve_threads(n_jobs)
    n_partitions = _check_count(n_partitions, "n_partitions")
    partition_size = _check_count(partition_size, "partition_size")
    chunk_size = _check_count(chunk_size, "chunk_size")
    mem = _parse_memory(max_memory)
    if tile_size is not None and (
        isinstance(tile_size, bool)
        or not isinstance(tile_size, numbers.Real)
        or not (math.isfinite(tile_size) and tile_size > 0)
    ):
        raise ValueError(f"tile_size must be a positive finite number; got {tile_size!r}")
    given = [
        k
        for k, v in (
            ("n_partitions", n_partitions),
            ("partition_size", partition_size),
            ("tile_size", tile_size),
            ("cuts", cuts),
        )
        if v is not None
    ]
    if len(given) > 1:
        raise ValueError(
            f"give at most one of n_partitions, partition_size, tile_size, cuts; got {given}"
        )

    src = _Source(points)
    n = src.n
    wread = _weights_reader(sample_weight, n)
    weighted = wread is not None

    # ---- pass 0: validate, bounding box, systematic sample -----------------------------
    step = max(1, n // _SAMPLE_SIZE)
    any_weight = False
    sx, sy = [], []
    xmin = ymin = np.inf
    xmax = ymax = -np.inf
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        x, y = src.read(start, stop)
        fin = np.isfinite(x) & np.isfinite(y)
        if not fin.all():
            bad = start + int(np.flatnonzero(~fin)[0])
            raise ValueError(f"points contain NaN or infinity (first at row {bad})")
        xmin = min(xmin, float(x.min()))
        xmax = max(xmax, float(x.max()))
        ymin = min(ymin, float(y.min()))
        ymax = max(ymax, float(y.max()))
        first = (-start) % step
        sx.append(x[first::step])
        sy.append(y[first::step])
        if weighted:
            wc = wread(start, stop)
            _check_weight_chunk(wc, start)
            any_weight = any_weight or bool(np.any(wc))
    if weighted and not any_weight:
        raise ValueError("Sample weights must contain at least one non-zero number.")
    sx = np.concatenate(sx)
    sy = np.concatenate(sy)
    max_abs = max(abs(xmin), abs(xmax), abs(ymin), abs(ymax))
    margin = _margin(2.0 * eps, max_abs)
    if not given:
        partition_size = max(1, mem // _BYTES_PER_POINT)
    if partition_size is not None:
        n_partitions = math.ceil(n / partition_size)
    plan = _make_plan(sx, sy, n, (xmin, xmax, ymin, ymax), margin, n_partitions, tile_size, cuts)
    del sx, sy


    rec_dtype = _record_dtype(weighted)
    distributed = executor is not None
    scratch = None
    if distributed or workdir is not None or not src.in_memory or n > _IN_MEMORY_MAX:
        base = Path(workdir) if workdir is not None else None
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="pari_geo_dbscan_", dir=base))
    try:
        store = _TileStore(rec_dtype, scratch)
        marks = [("", t_start), ("scan and plan", time.perf_counter())]
        # ---- route points to tiles and halos -------------------------------------------
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            x, y = src.read(start, stop)
            wc = wread(start, stop) if weighted else None
            pt, gstart = pk.tile_memberships(x, y, plan.bounds, plan.ntiles)
            for g in np.flatnonzero(np.diff(gstart)):
                sel = pt[gstart[g] : gstart[g + 1]]
                recs = np.empty(sel.shape[0], rec_dtype)
                recs["i"] = sel + start
                recs["x"] = x[sel]
                recs["y"] = y[sel]
                if weighted:
                    recs["w"] = wc[sel]
                store.append(int(g // 2), int(g % 2), recs)
            del pt, gstart, x, y, wc
        tiles = [t for t in range(plan.ntiles) if store.count(t, 0) > 0]
        n_halo = sum(store.count(t, 1) for t in tiles)
        log.info(
            "dbscan_partitioned: %d points, %d non-empty partitions (largest %d), "
            "%d halo points (%.1f%%), routed in %.1f s",
            n,
            len(tiles),
            max(store.count(t, 0) for t in tiles),
            n_halo,
            100.0 * n_halo / n,
            time.perf_counter() - t_start,
        )
        marks.append(("route", time.perf_counter()))

        # global outputs: arrays here, or .npy files the workers open themselves
        if distributed:
            target = Path(out_dir) if out_dir is not None else scratch
            core = _new_output(target, "core_mask.npy", np.bool_, n, False)
            labels = _new_output(target, "labels.npy", np.intp, n, -1)
            core_ref = str(target / "core_mask.npy")
            labels_ref = str(target / "labels.npy")
            core.flush()
            labels.flush()
            run = executor
        else:
            core = _new_output(out_dir, "core_mask.npy", np.bool_, n, False)
            labels = _new_output(out_dir, "labels.npy", np.intp, n, -1)
            core_ref, labels_ref = core, labels
            run = _serial

        # ---- cluster each tile with its halo ---------------------------------------------
        # labels[i] holds, for now, a component id (see _task_cluster)
        offsets = np.concatenate([[0], np.cumsum([store.count(t, 0) for t in tiles])])
        offsets = offsets.astype(np.int64)
        res = run(
            [
                (
                    _task_cluster,
                    store,
                    t,
                    eps,
                    min_samples,
                    int(offsets[k]),
                    core_ref,
                    labels_ref,
                    n_jobs,
                )
                for k, t in enumerate(tiles)
            ]
        )
        marks.append(("cluster tiles", time.perf_counter()))

        # ---- join components through the halos (ids compacted tile by tile) -------------
        coff = np.concatenate([[0], np.cumsum([r[2] for r in res])]).astype(np.int64)
        uq = np.concatenate([r[3] for r in res])
        ur = np.concatenate([r[4] for r in res])
        parent = np.arange(int(coff[-1]), dtype=np.int64)
        a = np.concatenate([r[0] for r in res])
        b = np.concatenate([r[1] for r in res])
        del res
        if a.size:
            o = np.argsort(b, kind="stable")
            a = pk.compact_ids(a[o], offsets, coff)
            bb = pk.compact_ids(np.asarray(labels[b[o]], np.int64), offsets, coff)
            union_pairs(parent, a, bb)
            del o, bb
        del a, b

        # ---- numbering in index order ----------------------------------------------------
        number = np.full(parent.shape[0], -1, np.int64)
        next_number = 0
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            next_number = pk.number_clusters(
                np.asarray(labels[start:stop]),
                np.asarray(core[start:stop]),
                parent,
                number,
                next_number,
                offsets,
                coff,
            )
        n_undecided = 0
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            n_undecided += pk.number_borders(
                np.asarray(labels[start:stop]),
                np.asarray(core[start:stop]),
                parent,
                number,
                offsets,
                coff,
            )
        del parent, number
        marks.append(("join and number", time.perf_counter()))

        # ---- points next to several components: the lowest of their numbers -----------
        if uq.size:
            o = np.lexsort((ur, uq))
            uq = uq[o]
            best = np.asarray(labels[ur[o]], np.int64)
            first = np.flatnonzero(np.r_[True, uq[1:] != uq[:-1]])
            labels[uq[first]] = np.minimum.reduceat(best, first)
            del o, best, first
        log.info(
            "dbscan_partitioned: %d border points next to several components",
            n_undecided,
        )
        marks.append(("border", time.perf_counter()))
        log.info(
            "dbscan_partitioned: %d clusters, %.1f s in total (%s)",
            next_number,
            time.perf_counter() - t_start,
            ", ".join(
                f"{name} {t1 - t0:.1f} s"
                for (_, t0), (name, t1) in zip(marks[:-1], marks[1:], strict=True)
            ),
        )
        if distributed:
            # the workers wrote through their own maps: reopen to see their writes
            del labels, core
            labels = np.load(labels_ref, mmap_mode="r+")
            core = np.load(core_ref, mmap_mode="r+")
            if out_dir is None:
                labels = np.array(labels)
                core = np.array(core)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return labels, core


def _call(fn: Any, *args: Any) -> Any:
    """``fn(*args)``: one partition task as a plain function call."""
    return fn(*args)


def dbscan_partitioned_dask(
    points: Any,
    eps: float,
    min_samples: int = 5,
    *,
    client: Any = None,
    sample_weight: Any = None,
    n_partitions: int | None = None,
    partition_size: int | None = None,
    tile_size: float | None = None,
    cuts: tuple[Any, Any] | None = None,
    max_memory: int | str | None = None,
    workdir: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    chunk_size: int = 2_000_000,
    n_jobs: int | None = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`dbscan_partitioned` with the partitions run as dask tasks.

    The three per-partition phases (core flags, local components, border points) each
    run as one ``dask.delayed`` task per partition, in parallel; validation, routing,
    the union-find and the numbering run in the calling process. Tile files, labels and
    core mask are files that the workers read and write themselves (each writes only
    its partition's own points), so ``workdir`` (and ``out_dir``, if given) must be on
    a file system that all workers see. The result is identical to
    :func:`dbscan_partitioned` and to :func:`pari_geo.clustering.dbscan`.

    Parameters
    ----------
    points, eps, min_samples, sample_weight, n_partitions, partition_size, tile_size, \
cuts, max_memory, workdir, out_dir, chunk_size
        As in :func:`dbscan_partitioned`. Tiles always go to scratch files. Each worker
        holds one partition per running task: ``max_memory`` is per task.
    client : distributed.Client or str, optional
        Where to run the tasks: a client, or a scheduler address such as
        ``"tcp://host:8786"`` (connected for the call, :class:`~pari_geo.errors.
        SchedulerError` if it cannot be reached); by default dask's current scheduler
        (the active ``distributed`` client, else the local threaded scheduler).
    n_jobs : int, default=1
        Numba threads per task (one per worker thread avoids oversubscription).

    Returns
    -------
    labels : ndarray of shape (n_samples,), dtype intp
        Cluster number of each point, ``-1`` for noise.
    core_mask : ndarray of shape (n_samples,), dtype bool
        True for core points.

    Raises
    ------
    ValueError
        As :func:`dbscan_partitioned`.
    ImportError
        If dask is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from pari_geo.clustering import dbscan_labels
    >>> from pari_geo.clustering.partitioned import dbscan_partitioned_dask
    >>> rng = np.random.default_rng(0)
    >>> X = np.round(rng.uniform(0, 2000, size=(500, 2)))
    >>> labels, core = dbscan_partitioned_dask(X, 60.0, 4, n_partitions=6)
    >>> bool(np.array_equal(labels, dbscan_labels(X, 60.0, 4)[0]))
    True
    """
    try:
        import dask
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "dbscan_partitioned_dask needs dask: pip install 'pari_geo[dask]'"
        ) from exc

    def executor(calls):
        tasks = [dask.delayed(f, pure=False)(*args) for f, *args in calls]
        if client is not None:
            return client.gather(client.compute(tasks))
        return list(dask.compute(*tasks))

    options = {"sample_weight": sample_weight, "n_partitions": n_partitions,
               "partition_size": partition_size, "tile_size": tile_size, "cuts": cuts,
               "max_memory": max_memory, "workdir": workdir, "out_dir": out_dir,
               "chunk_size": chunk_size, "n_jobs": n_jobs}
    if isinstance(client, str):
        from ..scheduler import task_runner

        with task_runner(client) as run:
            return _run(points, eps, min_samples,
                        executor=lambda calls: run(_call, calls),
                        **options)
    return _run(points, eps, min_samples, executor=executor, **options)
