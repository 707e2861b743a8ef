"""DEGURBA grid classification (levels 1 and 2) by tiles, for grids larger than memory.

:func:`classify_grid_chunked` gives the same ``uint8`` class raster, cell for cell, as
:func:`pari_geo.typology.degurba.classify_grid` and writes it as the same COG (colour
table, metadata tags), plus an ``OUT_OF_CORE`` tag. The inputs are read with rasterio
windows; every intermediate lives in raw files in a temporary folder (next to the output
or in ``workdir``), removed at the end. How each step stays exact:

* **per-cell tests** (density and built-up thresholds, water flags) are local: computed tile
  by tile with the very functions of the in-memory path; population smoothing (level 1)
  reads a halo of ``window // 2`` cells, and ``scipy.ndimage.correlate`` gives the same
  value at a cell whatever lies beyond its window;
* **clusters**: :func:`~pari_geo.outofcore.components.label_tiled` (union-find across the
  tile seams, tile corners included for queen adjacency) gives global components; their
  population sums are accumulated in raster order over the whole grid, i.e. in the same
  order as the in-memory ``label_sums``, so they are bit-identical and every keep/drop
  decision (``sum >= threshold``) is the same;
* **edge smoothing** (R2022A / R2023A) runs the in-memory numba kernel on windows: the
  bounding box of every kept centre grown by a margin, overlapping windows merged. A cell
  joins a centre only next to a centre cell, so if after smoothing no centre cell lies
  within one cell of a window side that is not the grid edge, the window evolved exactly
  as the whole grid does (off-grid neighbours count as valid in R2023A, so a window side
  is not a grid side: that is what the check guards). Otherwise the margins of that
  window's centres grow and it is redone. Under R2022A growth never leaves a centre's
  bounding box;
* **gap filling** looks at each rook part of a centre inside the part's bounding box
  (``fill_holes_by_part``), which lies inside the centre's window: it runs on the same
  windows;
* **semi-dense buffer**: a queen dilation by ``steps`` cells, computed on strips with a
  halo of ``steps`` rows;
* **"optimal" built-up threshold** (input grids): the built-up shares of the cluster cells
  are written to disk in raster order and summed with numpy's own pairwise summation
  tree, so the mean is bit-identical to ``values.mean()``. With ``built_optimal_data``
  those data are loaded in memory by the in-memory code (they are meant to be modest).

Memory: one tile or strip of a few float64 layers; per-component tables (while a search
labels: about 16 bytes per provisional component, i.e. per component and tile it touches,
plus 52 per component; afterwards only a 1- or 4-byte composite table per provisional
component is kept for each search that the output still needs); the smoothing windows (7
bytes per cell of a window; a window spans a group of neighbouring centres). Disk: about
8 (population) + 2 (tests) + 1 (centres) + 4 per distinct cluster search bytes per cell
(3 searches with the default parameters: 23 bytes per cell), plus a float64 layer per
smoothed population (level 1) and the uncompressed uint8 result before the COG copy.
See ``benchmarks/out_of_core/README.md`` for measured time and memory.

``tile_shape`` never changes the result (the tests classify with tiles down to 7 x 5 cells
and one-row strips, and label components with tiles down to 1 x 1).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..classes import DEGURBA_L1, DEGURBA_L2
from ..config import DegurbaParams
from ..errors import ConfigError, InputError
from ..io_write import metadata_tags
from ..scheduler import TaskRunner, task_runner
from ..typology.degurba import (
    _IGNORE,
    _PWATER,
    _WATER,
    DegurbaLayers,
    _CellCodes,
    _codes,
    _dense,
    _is_r2023a,
    _small_gdal_cache,
    smooth_mean,
)
from ._writer import ClassRasterWriter
from .components import (
    RawGrid,
    TiledComponents,
    iter_strips,
    iter_tiles,
    label_tiled,
    tile_bands,
)
from .contiguity import fill_holes_by_part, queen_buffer

__all__ = ["classify_grid_chunked", "ChunkedResult"]

_BIT_WATER = 1 << 12
_BIT_PWATER = 1 << 13
_BIT_EXCL = 1 << 14
_MAX_MASKS = 12
#: first margin (cells) around an urban centre's bounding box for R2023A edge smoothing
#: (R2022A never grows a centre beyond its box: 2 is enough there)
_R2023A_MARGIN = 8


@dataclass(frozen=True)
class ChunkedResult:
    """What :func:`classify_grid_chunked` wrote.

    Attributes
    ----------
    path : pathlib.Path
        The class raster (COG).
    level : int
    shape : (rows, cols)
        Shape of the written raster (after any ``buffer_m`` crop).
    tile_shape : (rows, cols)
    counts : dict
        Cells per class code.
    resolved : dict
        Resolved values (built-up thresholds, optimal threshold), as the in-memory
        ``attrs["resolved"]``.
    tags : dict
        Metadata tags written to the file.
    """

    path: Path
    level: int
    shape: tuple[int, int]
    tile_shape: tuple[int, int]
    counts: dict[int, int]
    resolved: dict[str, Any]
    tags: dict[str, str] = field(repr=False)
    stats: dict[str, Any] = field(default_factory=dict, repr=False)


# ---------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------
class _Inputs:
    """The three input rasters on one identical grid, read by windows as float64."""

    names = ("population", "built", "land")

    def __init__(self, population: Any, built: Any, land: Any) -> None:
        import rasterio

        from ..grid import GridSpec, check_transform, require_projected

        self.paths = []
        for x, name in zip((population, built, land), self.names, strict=True):
            if not isinstance(x, str | os.PathLike):
                raise InputError(None, name, "the chunked path reads files: pass a path, "
                                 f"got {type(x).__name__}")
            path = str(x)
            if not os.path.isfile(path):
                raise InputError(path, name, "file not found")
            self.paths.append(path)
        self.srcs = []
        try:
            for path, name in zip(self.paths, self.names, strict=True):
                try:
                    src = rasterio.open(path)
                except Exception as err:  # rasterio raises several types
                    raise InputError(path, name, f"cannot be opened as a raster ({err})"
                                     ) from None
                self.srcs.append(src)
                if src.count < 1:
                    raise InputError(path, name, "has no band")
            meta = [(s.crs, s.transform, s.shape) for s in self.srcs]
            crs, transform, shape = meta[0]
            for (c, t, s), path, name in zip(meta, self.paths, self.names, strict=True):
                if c != crs or t != transform or s != shape:
                    raise InputError(
                        path, name,
                        "the chunked path needs the three layers on one identical grid "
                        "(same CRS, transform and shape as the population); align them "
                        "first or use pari_geo.typology.degurba.classify_grid")
                check_transform(t, path, name)
            bounds = tuple(self.srcs[0].bounds)
            self.grid = GridSpec(require_projected(crs, self.paths[0], "population", bounds),
                                 transform, shape)
        except BaseException:
            self.close()
            raise
        self.shape = (int(shape[0]), int(shape[1]))
        self.cell_size_m = self.grid.cell_size_m

    def close(self) -> None:
        for s in self.srcs:
            s.close()
        self.srcs = []

    def __enter__(self) -> _Inputs:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @staticmethod
    def _read(src: Any, r0: int, r1: int, c0: int, c1: int,
              layer: str | None = None) -> np.ndarray:
        """Band 1 window as float64, cells masked by GDAL as NaN (as the in-memory reader);
        a read failure (truncated or corrupt file) is an :class:`InputError` naming it."""
        from ..ingest import read_failure

        try:
            return _Inputs._read_window(src, r0, r1, c0, c1)
        except Exception as err:  # noqa: BLE001 - GDAL raises several types
            raise read_failure(src.name, layer, err) from None

    @staticmethod
    def _read_window(src: Any, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        from rasterio.enums import MaskFlags
        from rasterio.windows import Window

        win = Window(c0, r0, c1 - c0, r1 - r0)
        a = src.read(1, window=win)
        flags = src.mask_flag_enums[0]
        nodata = src.nodata
        invalid = None
        if MaskFlags.all_valid in flags:
            pass
        elif list(flags) == [MaskFlags.nodata] and nodata is not None:
            if a.dtype.kind == "f" and np.isnan(nodata):
                pass
            elif a.dtype.kind in "iu" and float(nodata).is_integer():
                info = np.iinfo(a.dtype)
                if info.min <= nodata <= info.max:
                    invalid = a == a.dtype.type(int(nodata))
            else:
                invalid = src.read_masks(1, window=win) == 0
        else:
            invalid = src.read_masks(1, window=win) == 0
        out = np.asarray(a, dtype=np.float64)
        if invalid is not None and invalid.any():
            out = out.copy() if out is a else out
            out[invalid] = np.nan
        return out

    def read(self, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, ...]:
        return tuple(self._read(s, r0, r1, c0, c1, name)
                     for s, name in zip(self.srcs, self.names, strict=True))


class _Summary:
    """Running ``[min, max]`` of the non-NaN values of each input (for the value checks)."""

    def __init__(self) -> None:
        self.lo = [np.inf] * 3
        self.hi = [-np.inf] * 3
        self.seen = [False] * 3

    def add(self, i: int, a: np.ndarray) -> None:
        if a.size == 0:
            return
        lo, hi = np.fmin.reduce(a, axis=None), np.fmax.reduce(a, axis=None)
        if np.isnan(lo):
            return
        self.lo[i] = min(self.lo[i], float(lo))
        self.hi[i] = max(self.hi[i], float(hi))
        self.seen[i] = True

    def merge(self, other: _Summary) -> None:
        """Fold in the summary of other tiles."""
        for i in range(3):
            if other.seen[i]:
                self.lo[i] = min(self.lo[i], other.lo[i])
                self.hi[i] = max(self.hi[i], other.hi[i])
                self.seen[i] = True

    def check(self, inputs: _Inputs, built_unit: str, land_unit: str) -> None:
        """The in-memory lean path's checks, on the same ``[min, max]`` summaries."""
        from ..grid import GridSpec
        from ..ingest import _check_layer_values, check_counts, check_share

        r = inputs.cell_size_m
        for i, (path, name) in enumerate(zip(inputs.paths, inputs.names, strict=True)):
            summary = (np.array([self.lo[i], self.hi[i]]) if self.seen[i]
                       else np.array([np.nan]))
            probe = GridSpec(inputs.grid.crs, inputs.grid.transform,
                             (1, summary.size)).to_dataarray(summary.reshape(1, -1), name=name)
            _check_layer_values(probe, path, name)
            if name == "population":
                check_counts(summary, path, name)
            else:
                check_share(summary, path, name, built_unit if name == "built" else land_unit,
                            r * r)


# ---------------------------------------------------------------------------------------
# pass 1: per-cell tests by tiles
# ---------------------------------------------------------------------------------------
_MaskKey = tuple[float, float | None, int | None]  # density t, built t, smoothing window


@dataclass
class _CellPlan:
    masks: list[_MaskKey]
    water: tuple[float, float, float] | None = None
    r2023a: bool = False
    excl_window: int | None = None  # R2023A "ignorable" on population smoothed this way
    size_windows: tuple[int, ...] = ()  # smoothed population layers to store

    def bit(self, key: _MaskKey) -> int:
        return 1 << self.masks.index(key)


class _Clock:
    """Seconds per phase into ``stats["seconds"]`` (each call closes the running phase)."""

    def __init__(self, stats: dict[str, Any]) -> None:
        import time

        self._now = time.perf_counter
        self.t = self._now()
        self.seconds = stats.setdefault("seconds", {})

    def __call__(self, phase: str) -> None:
        t = self._now()
        self.seconds[phase] = round(self.seconds.get(phase, 0.0) + t - self.t, 3)
        self.t = t


def _mask_key(t: float, b: float | None, w: int | None) -> _MaskKey:
    return (float(t), None if b is None else float(b), None if w is None else int(w))


def _cell_pass(inputs: _Inputs, plan: _CellPlan, tmp: Path, tile_shape: tuple[int, int],
               units: tuple[str, str], prefix: str, run: TaskRunner | None = None
               ) -> tuple[RawGrid, RawGrid, dict, _Summary]:
    """Tests of every cell into ``bits`` (uint16) plus the float64 size layers, by tiles.

    With a task runner (a dask cluster), each band of tiles is one task that opens the
    inputs itself and writes its own windows of the scratch files.
    """
    if len(plan.masks) > _MAX_MASKS:
        raise ValueError("too many distinct masks")
    shape = inputs.shape
    bits = RawGrid(tmp / f"{prefix}bits.u16", shape, np.uint16)
    pop_file = RawGrid(tmp / f"{prefix}pop.f64", shape, np.float64)
    smoothed = {w: RawGrid(tmp / f"{prefix}pop_w{w}.f64", shape, np.float64)
                for w in plan.size_windows}
    files = (bits, pop_file, smoothed)
    if run is None:
        summaries = [_cell_tiles(inputs, plan, files, list(iter_tiles(shape, tile_shape)),
                                 units)]
    else:
        paths = tuple(os.path.abspath(p) for p in inputs.paths)
        summaries = run(_cell_tiles, [(paths, plan, files, band, units)
                                      for band in tile_bands(shape, tile_shape)])
    summary = _Summary()
    for part in summaries:
        summary.merge(part)
    return bits, pop_file, smoothed, summary


def _cell_tiles(source: _Inputs | tuple[str, str, str], plan: _CellPlan,
                files: tuple[RawGrid, RawGrid, dict], tiles: list, units: tuple[str, str]
                ) -> _Summary:
    """The cell tests of some tiles (one task); ``source`` open inputs or their paths."""
    if not isinstance(source, _Inputs):
        with _small_gdal_cache(), _Inputs(*source) as inputs:
            return _cell_tiles(inputs, plan, files, tiles, units)
    inputs = source
    bits, pop_file, smoothed = files
    windows = {k[2] for k in plan.masks if k[2] is not None} | set(plan.size_windows)
    if plan.excl_window is not None:
        windows.add(plan.excl_window)
    halo = max((w // 2 for w in windows), default=0)
    dthr = [k[0] for k in plan.masks if k[2] is None]
    bthr = list(dict.fromkeys(k[1] for k in plan.masks if k[1] is not None))
    summary = _Summary()
    rows, cols = inputs.shape
    for r0, r1, c0, c1 in tiles:
        R0, R1 = max(0, r0 - halo), min(rows, r1 + halo)
        C0, C1 = max(0, c0 - halo), min(cols, c1 + halo)
        pop, built, land = inputs.read(R0, R1, C0, C1)
        inner = (slice(r0 - R0, r1 - R0), slice(c0 - C0, c1 - C0))
        for i, a in enumerate((pop, built, land)):
            summary.add(i, a[inner])
        lay = DegurbaLayers(pop, built, land, cell_size_m=inputs.cell_size_m,
                            built_unit=units[0], land_unit=units[1])
        codes = _CellCodes(lay, dthr, bthr, water=plan.water, permanent_water=plan.r2023a)
        smooth_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        def smoothed_layers(w: int, lay=lay, cache=smooth_cache):
            if w not in cache:
                cache[w] = (smooth_mean(lay.pop, w), smooth_mean(lay.density, w))
            return cache[w]

        out = np.zeros((r1 - r0, c1 - c0), dtype=np.uint16)
        for i, (t, b, w) in enumerate(plan.masks):
            if w is None:
                m = codes.dense(t, b)[inner]
            else:
                m = _dense(smoothed_layers(w)[1], t)[inner]
                if b is not None:
                    m |= (codes.flags[inner] & codes.built_bit(b)) != 0
            out[m] |= np.uint16(1 << i)
        if plan.water is not None:
            out[codes.flag(_WATER)[inner]] |= np.uint16(_BIT_WATER)
        if plan.r2023a:
            pw = codes.flag(_PWATER)[inner]
            if plan.excl_window is not None:
                with np.errstate(invalid="ignore"):
                    excl = (lay.land[inner] < 0.5) & (smoothed_layers(plan.excl_window)[0][inner]
                                                     == 0)
            else:
                excl = codes.flag(_IGNORE)[inner]
            out[pw] |= np.uint16(_BIT_PWATER)
            out[excl | pw] |= np.uint16(_BIT_EXCL)
        bits.write(r0, c0, out)
        pop_file.write(r0, c0, pop[inner])
        for w, g in smoothed.items():
            g.write(r0, c0, smoothed_layers(w)[0][inner])
        del lay, codes, smooth_cache
    return summary


def _bit_reader(bits: RawGrid, bit: int):
    def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        return (bits.read(r0, r1, c0, c1) & np.uint16(bit)) != 0
    return read


class _Searches:
    """Cluster searches keyed by (mask bit, contiguity, size layer), each run once.

    ``plan`` lists the keys in order of use; a search is kept only while a later use is
    planned, so per-component tables of finished searches are freed (the callers keep
    ``_mapped`` readers, which hold just the label file and one composite table).
    """

    def __init__(self, bits: RawGrid, tile_shape, tmp: Path, plan: list[tuple],
                 run: TaskRunner | None = None) -> None:
        self.bits, self.tile_shape, self.tmp, self.run = bits, tile_shape, tmp, run
        self.remaining = [self.key(*k) for k in plan]
        self.done: dict[tuple, TiledComponents] = {}
        self.n_provisional: list[int] = []

    @staticmethod
    def key(bit: int, contiguity: int, size: RawGrid) -> tuple:
        return (bit, int(contiguity), str(size.path))

    def get(self, bit: int, contiguity: int, size: RawGrid) -> TiledComponents:
        key = self.key(bit, contiguity, size)
        if key in self.remaining:
            self.remaining.remove(key)
        comp = self.done.get(key)
        if comp is None:
            comp = label_tiled(_bit_reader(self.bits, bit), int(contiguity),
                               tile_shape=self.tile_shape, weights=size,
                               shape=self.bits.shape, workdir=self.tmp, run=self.run)
            self.n_provisional.append(int(comp._lut.size - 1))
        if key in self.remaining:
            self.done[key] = comp
        else:
            self.done.pop(key, None)
        return comp


def _mapped(comp: TiledComponents, table: np.ndarray):
    """Reader of ``table[labels]`` windows (the composite table is built once).

    Holds the label file and the composite table only, not the component tables.
    """
    from ._kernels import map_ids

    lut = np.asarray(table)[comp._lut]
    raw = comp._raw  # the label file lives as long as this reader

    def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        w = raw.read(r0, r1, c0, c1)
        return map_ids(w, lut, np.empty(w.shape, dtype=lut.dtype))
    return read


# ---------------------------------------------------------------------------------------
# urban centres: edge smoothing and gap filling on windows
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
    """A centre cell within one cell of a window side that is not the grid edge?"""
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


def _urban_centres(comp: TiledComponents, params: DegurbaParams, bits: RawGrid,
                   tmp: Path, stats: dict[str, Any]) -> RawGrid:
    """Uint8 raw grid: 1 = urban centre after edge smoothing and gap filling."""
    from ._grid_kernels import RULE_R2022A, RULE_R2023A, smooth_centre_edges_inplace

    shape = comp.shape
    centre = RawGrid(tmp / "centre.u8", shape, np.uint8)
    keep = comp.keep(params.UC_size_threshold)
    k = int(keep.sum())
    stats["urban_centres"] = k
    if k == 0:
        return centre
    new_id = np.zeros(comp.n + 1, dtype=np.int32)
    new_id[keep] = np.arange(1, k + 1, dtype=np.int32)
    read_ids = _mapped(comp, new_id)
    smooth = bool(params.UC_smooth_edge)
    r2022a = params.UC_smooth_edge_fun == "majority_rule_R2022A"
    limit = params.UC_max_gap - 1
    bb = comp.bbox[keep]  # rows of centres 1..k (keep is in raster-order id order)
    rects0 = np.stack([bb[:, 0], bb[:, 1] + 1, bb[:, 2], bb[:, 3] + 1], axis=1)
    margin = np.full(k, 2 if (not smooth or r2022a) else max(2, _R2023A_MARGIN),
                     dtype=np.int64)
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
            lab = read_ids(r0, r1, c0, c1)
            if smooth:
                b = bits.read(r0, r1, c0, c1)
                if r2022a:
                    none = np.zeros(lab.shape, dtype=bool)
                    smooth_centre_edges_inplace(lab, none, none, RULE_R2022A)
                else:
                    excluded = (b & np.uint16(_BIT_EXCL)) != 0
                    blocked = (b & np.uint16(_BIT_PWATER)) != 0
                    del b
                    smooth_centre_edges_inplace(lab, excluded, blocked, RULE_R2023A)
                    del excluded, blocked
                if _guard_violated(lab, rect, shape):
                    violated.extend(members)
                    continue
            cells = lab > 0
            if params.UC_gap_fill:
                cells |= fill_holes_by_part(lab, None if limit <= 0 else limit)
            centre.write(r0, c0, cells.astype(np.uint8))
            written.add(rect)
            n_windows += 1
        if not violated:
            break
        idx = np.asarray(violated, dtype=np.int64)
        margin[idx] = margin[idx] * 2 + 2
    stats["centre_window_rounds"] = rounds
    stats["centre_windows_run"] = n_windows
    return centre


# ---------------------------------------------------------------------------------------
# "optimal" built-up threshold
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


def _optimal_chunked(inputs: _Inputs, units, tile_shape, tmp: Path, density: float,
                     size: float, contiguity: int, run: TaskRunner | None = None
                     ) -> tuple[float, float]:
    sub = tmp / "optimal"
    sub.mkdir()
    key = _mask_key(density, None, None)
    plan = _CellPlan(masks=[key])
    bits, pop, _, summary = _cell_pass(inputs, plan, sub, tile_shape, units, "", run)
    summary.check(inputs, *units)
    comp = label_tiled(_bit_reader(bits, 1), contiguity, tile_shape=tile_shape, weights=pop,
                       shape=inputs.shape, workdir=sub, run=run)
    keep = comp.keep(size)
    read_keep = _mapped(comp, keep)
    n = 0
    values_path = sub / "values.f64"
    r = inputs.cell_size_m
    with open(values_path, "wb") as f:
        if keep.any():
            for s0, s1 in iter_strips(inputs.shape, tile_shape[0] * tile_shape[1]):
                sel = read_keep(s0, s1, 0, inputs.shape[1])
                if not sel.any():
                    continue
                built = _Inputs._read(inputs.srcs[1], s0, s1, 0, inputs.shape[1], "built")
                if units[0] == "m2":
                    built = built / r / r
                v = built[sel]
                v = v[~np.isnan(v)]
                v.tofile(f)
                n += v.size
    if n == 0:
        raise InputError(None, "built_optimal_data",
                         "no dense cluster found, so the 'optimal' built-up threshold is "
                         "undefined")
    mean = _pairwise_sum_file(values_path, n) / n
    return mean, float(np.ceil(mean * 100.0) / 100.0)


def _resolve_built(inputs, params, level, built_optimal_data, units, tile_shape, tmp,
                   run=None):
    info: dict[str, Any] = {}
    uc, duc = params.UC_built_threshold, params.DUC_built_threshold
    wants = (uc == "optimal" and params.UC_built_criterium) or (
        level == 2 and duc == "optimal" and params.DUC_built_criterium)
    value = float("nan")
    if wants:
        if level == 1:
            args = (params.UC_density_threshold, params.UCL_size_threshold,
                    params.UC_contiguity_rule)
        else:
            args = (params.DUC_density_threshold, params.DUC_size_threshold,
                    params.DUC_contiguity_rule)
        if built_optimal_data is not None:
            from ..typology.degurba import _load_inputs, optimal_built_threshold

            _, opt, _ = _load_inputs(*built_optimal_data, *units)
            mean, value = optimal_built_threshold(opt, *args)
            del opt
        else:
            mean, value = _optimal_chunked(inputs, units, tile_shape, tmp, *args, run=run)
        info = {"optimal_built_mean": mean, "optimal_built_threshold": value,
                "optimal_built_data": "given" if built_optimal_data is not None
                else "input grids"}
    uc_v = value if uc == "optimal" else float(uc)
    duc_v = value if duc == "optimal" else float(duc)
    return uc_v, duc_v, info


# ---------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------
def _tags(params, level, info, scheme, sources, units, tile_shape) -> dict[str, str]:
    """Tags of the in-memory path (``write_class_raster`` of ``classify_grid``'s attrs)."""
    from .._version import __version__

    attrs = {
        "typology": "degurba",
        "level": level,
        "parameters": json.dumps(params.to_dict(), sort_keys=True),
        "parameters_hash": params.hash(),
        "resolved": json.dumps(info, sort_keys=True),
        "class_names": json.dumps({str(k): v for k, v in scheme.names.items()}),
        "class_colours": json.dumps({str(k): v for k, v in scheme.colours.items()}),
        "inputs": json.dumps({k: (None if v is None else str(v)) for k, v in sources.items()}),
        "units": json.dumps({"built": units[0], "land": units[1]}),
        "pari_geo_version": __version__,
    }
    tags = {str(k).upper(): str(v) for k, v in attrs.items()}
    tags["OUT_OF_CORE"] = json.dumps({"module": "pari_geo.outofcore.degurba",
                                      "tile_shape": list(tile_shape)})
    from ..io_write import class_tags

    tags.update(class_tags(scheme))
    return tags


# ---------------------------------------------------------------------------------------
# the classification
# ---------------------------------------------------------------------------------------
def classify_grid_chunked(
    population: str | os.PathLike,
    built: str | os.PathLike,
    land: str | os.PathLike,
    *,
    out_path: str | os.PathLike,
    level: int = 2,
    params: DegurbaParams | str | None = None,
    tile_shape: tuple[int, int] = (1024, 1024),
    workdir: str | os.PathLike | None = None,
    built_unit: str = "m2",
    land_unit: str = "m2",
    built_optimal_data: tuple[Any, Any, Any] | None = None,
    buffer_m: float = 0.0,
    overwrite: bool = False,
    extra_tags: dict[str, Any] | None = None,
    scheduler: Any = None,
    **overrides: Any,
) -> ChunkedResult:
    """Classify a grid with the Degree of Urbanisation by tiles and write it as a COG.

    Same classes, cell for cell, as :func:`pari_geo.typology.degurba.classify_grid` with
    the same arguments (levels 1 and 2, every parameter of ``degurba.md`` section 5), for
    grids that do not fit in memory: peak memory is a tile plus per-cluster tables (see
    the module docstring for how each step stays exact). The file carries the same colour
    table and tags as the in-memory path writes (``write_class_raster``), plus
    ``OUT_OF_CORE`` = the module and tile shape.

    Parameters
    ----------
    population, built, land : path-like
        Rasters on one identical grid (same CRS, transform and shape), in a projected CRS
        in metres. Tiled GeoTIFFs with blocks dividing ``tile_shape`` read fastest.
    out_path : path-like
        Output COG; written atomically (temporary file, then renamed).
    level : {1, 2}
    params : DegurbaParams or preset name, optional
        ``"degurba"`` (default rules) or ``"degurba_2023"``.
    tile_shape : (rows, cols), default (1024, 1024)
        Tile of the per-cell and labelling passes; strips of the other passes have about
        as many cells. Any shape works (results never depend on it).
    workdir : path-like, optional
        Where the temporary folder of intermediates goes (default: next to the output).
        Needs about ``8 + 3 + 4 x (number of distinct cluster searches)`` bytes per cell.
    built_unit, land_unit : {"m2", "share"}
    built_optimal_data : (population, built, land), optional
        Data of the "optimal" built-up threshold; loaded in memory by the in-memory
        loader. By default the threshold is computed by tiles on the classified grids.
    buffer_m : float, default 0
        Crop this many metres from every side of the result.
    overwrite : bool, default False
    extra_tags : dict, optional
        More metadata tags for the output (keys upper-cased; non-string values as JSON),
        e.g. the resolved run configuration.
    scheduler : str or distributed.Client, optional
        Run the per-cell pass (reading the inputs and testing every cell) and the tile
        labelling of every cluster search as dask tasks, one per band of tiles, on this
        cluster (an address such as ``"tcp://host:8786"``, or a client). The inputs and
        ``workdir`` must then be on storage every worker sees at the same path. The
        union-find across seams, the raster-order numbering and sums, edge smoothing, gap
        filling and the write run in this process. The result is byte-identical to the
        run without a scheduler. A task whose worker dies is run again; if it cannot be
        completed, :class:`~pari_geo.errors.SchedulerError` is raised and no output is
        written.
    **overrides
        Any parameter of section 5, e.g. ``UC_density_threshold=1000``.

    Returns
    -------
    ChunkedResult

    Raises
    ------
    InputError, ConfigError, OutputError
        Bad inputs, parameters or output path (before anything is written).
    SchedulerError
        The scheduler cannot be reached, or a task failed on every attempt.

    Notes
    -----
    Cluster population sums are accumulated in raster order over the whole grid, as the
    in-memory path does, so they are bit-identical and a sum exactly at a size threshold
    is decided the same way. (Summing per tile and then adding the tile sums would not be:
    float addition is not associative.) Smoothing windows span a group of neighbouring
    urban centres, so memory grows with the extent of the largest such group.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np, rasterio
    >>> from pari_geo.datasets import belgium_paths
    >>> p = belgium_paths()
    >>> out = os.path.join(tempfile.mkdtemp(), "l2.tif")
    >>> res = classify_grid_chunked(p["population"], p["built"], p["land"], level=2,
    ...                             out_path=out, tile_shape=(64, 64))
    >>> res.counts[30], res.counts[10]
    (2145, 2578)
    >>> with rasterio.open(out) as src:
    ...     src.tags()["OUT_OF_CORE"]
    '{"module": "pari_geo.outofcore.degurba", "tile_shape": [64, 64]}'
    """
    from ..io_write import check_output, scratch_dir

    if level not in (1, 2):
        raise ConfigError("level", f"must be 1 or 2, got {level!r}")
    if isinstance(params, str):
        params = DegurbaParams.from_preset(params)
    params = (params or DegurbaParams()).replace(**overrides)
    for name, unit in (("built_unit", built_unit), ("land_unit", land_unit)):
        if unit not in ("m2", "share"):
            raise ConfigError(name, f"must be 'm2' or 'share', got {unit!r}")
    try:
        from .components import _check_tile_shape

        tile_shape = _check_tile_shape(tile_shape)
    except ValueError as err:
        raise ConfigError("tile_shape", str(err)) from None
    codes = _codes(params, level)
    out_path = Path(out_path)
    check_output(out_path, overwrite)
    units = (built_unit, land_unit)
    base = Path(workdir) if workdir is not None else out_path.parent
    base.mkdir(parents=True, exist_ok=True)
    with _small_gdal_cache(), _Inputs(population, built, land) as inputs, \
            scratch_dir(".pari_geo_ooc_", base) as tmpdir, \
            task_runner(scheduler) as run_tasks:
        tasks = None if scheduler is None else run_tasks
        tmp = Path(tmpdir).resolve()  # workers may run in another folder
        grid = inputs.grid
        crop = 0
        if buffer_m:
            crop = int(round(buffer_m / grid.cell_size_m))
            if crop > 0 and 2 * crop >= min(grid.shape):
                raise ConfigError("buffer_m", f"{buffer_m} m crops away the whole grid")
            crop = max(crop, 0)
        stats: dict[str, Any] = {"tile_shape": list(tile_shape)}
        clock = _Clock(stats)
        uc_b, duc_b, info = _resolve_built(inputs, params, level, built_optimal_data, units,
                                           tile_shape, tmp, tasks)
        scheme = (DEGURBA_L1 if level == 1 else DEGURBA_L2).with_codes(codes)
        clock("optimal_threshold")
        run = _level1 if level == 1 else _level2
        info_out, writer_args = run(inputs, params, uc_b, duc_b, units, tile_shape, tmp, stats,
                                    clock, tasks)
        info.update(info_out)
        tags = _tags(params, level, info, scheme, dict(zip(inputs.names, inputs.paths,
                                                           strict=True)), units, tile_shape)
        tags.update(metadata_tags(extra_tags or {}))
        writer = ClassRasterWriter(out_path, tmp, grid, scheme, tags, "classes.tif", crop)
        try:
            writer_args(writer)
            clock("assemble")
            path = writer.finish(overwrite)
            clock("write_cog")
        finally:
            writer.close()
        counts = {int(c): int(writer.counts[c]) for c in np.flatnonzero(writer.counts)}
        return ChunkedResult(path, level, writer.out_shape, tile_shape, counts, info, tags,
                             stats)


def _level1(inputs, p, uc_built, _duc, units, tile_shape, tmp, stats, clock, run):
    v_centre, v_cluster, v_rural, v_water = _codes(p, 1)
    uc_w = p.UC_smooth_pop_window if p.UC_smooth_pop else None
    ucl_w = p.UCL_smooth_pop_window if p.UCL_smooth_pop else None
    uc_key = _mask_key(p.UC_density_threshold, uc_built if p.UC_built_criterium else None,
                       uc_w)
    ucl_key = _mask_key(p.UCL_density_threshold, None, ucl_w)
    masks = list(dict.fromkeys([uc_key, ucl_key]))
    r2023a = _is_r2023a(p)
    plan = _CellPlan(masks=masks,
                     water=(p.water_land_threshold, p.water_pop_threshold,
                            p.water_built_threshold),
                     r2023a=r2023a,
                     excl_window=uc_w if r2023a else None,
                     size_windows=tuple(sorted({w for w in (uc_w, ucl_w) if w is not None})))
    bits, pop, smoothed, summary = _cell_pass(inputs, plan, tmp, tile_shape, units, "", run)
    summary.check(inputs, *units)
    clock("cell_pass")
    uc_search = (plan.bit(uc_key), p.UC_contiguity_rule, smoothed[uc_w] if uc_w else pop)
    ucl_search = (plan.bit(ucl_key), p.UCL_contiguity_rule,
                  smoothed[ucl_w] if ucl_w else pop)
    searches = _Searches(bits, tile_shape, tmp, [uc_search, ucl_search], run)
    uc = searches.get(*uc_search)
    clock("labelling")
    centre = _urban_centres(uc, p, bits, tmp, stats)
    clock("urban_centres")
    del uc
    ucl = searches.get(*ucl_search)
    read_ucl = _mapped(ucl, ucl.keep(p.UCL_size_threshold))
    del ucl
    clock("labelling")
    stats["provisional_components"] = searches.n_provisional
    shape = inputs.shape

    def write(writer: ClassRasterWriter) -> None:
        for s0, s1 in iter_strips(shape, tile_shape[0] * tile_shape[1]):
            out = np.full((s1 - s0, shape[1]), v_rural, dtype=np.uint8)
            np.copyto(out, v_cluster, where=read_ucl(s0, s1, 0, shape[1]))
            np.copyto(out, v_centre, where=centre.read(s0, s1, 0, shape[1]).astype(bool))
            water = (bits.read(s0, s1, 0, shape[1]) & np.uint16(_BIT_WATER)) != 0
            water &= out == v_rural
            np.copyto(out, v_water, where=water)
            writer.write(s0, 0, out)

    return {"urban_centre_built_threshold": uc_built}, write


def _level2(inputs, p, uc_built, duc_built, units, tile_shape, tmp, stats, clock, run):
    c30, c23, c22, c21, c13, c12, c11, c10 = _codes(p, 2)
    uc_b = uc_built if p.UC_built_criterium else None
    duc_b = duc_built if p.DUC_built_criterium else None
    keys = {
        "uc": _mask_key(p.UC_density_threshold, uc_b, None),
        "duc": _mask_key(p.DUC_density_threshold, duc_b, None),
        "sduc": _mask_key(p.SDUC_density_threshold, None, None),
        "surb": _mask_key(p.SUrb_density_threshold, None, None),
        "rc": _mask_key(p.RC_density_threshold, None, None),
        "ldr": _mask_key(p.LDR_density_threshold, None, None),
    }
    plan = _CellPlan(masks=list(dict.fromkeys(keys.values())),
                     water=(p.water_land_threshold, p.water_pop_threshold,
                            p.water_built_threshold),
                     r2023a=_is_r2023a(p))
    bits, pop, _, summary = _cell_pass(inputs, plan, tmp, tile_shape, units, "", run)
    summary.check(inputs, *units)
    clock("cell_pass")
    order = [("uc", p.UC_contiguity_rule), ("duc", p.DUC_contiguity_rule),
             ("sduc", p.SDUC_contiguity_rule), ("surb", p.SUrb_contiguity_rule),
             ("rc", p.RC_contiguity_rule)]
    s_args = {name: (plan.bit(keys[name]), conn, pop) for name, conn in order}
    searches = _Searches(bits, tile_shape, tmp, [s_args[name] for name, _ in order], run)
    shape = inputs.shape
    rows, cols = shape
    strip_cells = tile_shape[0] * tile_shape[1]
    uc = searches.get(*s_args["uc"])
    clock("labelling")
    centre = _urban_centres(uc, p, bits, tmp, stats)
    clock("urban_centres")
    del uc
    duc = searches.get(*s_args["duc"])
    read_duc = _mapped(duc, duc.keep(p.DUC_size_threshold))
    del duc
    clock("labelling")
    # 22: semi-dense clusters, rejected whole when a cell lies in the buffer of 30/23
    n = p.SDUC_buffer_size
    steps = n if n >= 1 else 2 - n
    sduc = searches.get(*s_args["sduc"])
    clock("labelling")
    keep = sduc.keep(p.SDUC_size_threshold)
    read_sduc = None
    if keep.any():
        touching = np.zeros(sduc.n + 1, dtype=bool)
        read_lab = _mapped(sduc, np.arange(sduc.n + 1, dtype=np.int32))
        for s0, s1 in iter_strips(shape, strip_cells):
            h0, h1 = max(0, s0 - steps), min(rows, s1 + steps)
            classified = centre.read(h0, h1, 0, cols).astype(bool)
            classified |= read_duc(h0, h1, 0, cols)
            buf = queen_buffer(classified, steps)[s0 - h0:s1 - h0]
            del classified
            touching[read_lab(s0, s1, 0, cols)[buf]] = True
        del read_lab
        keep &= ~touching
        read_sduc = _mapped(sduc, keep)
    del sduc, keep
    clock("semi_dense_buffer")
    surb = searches.get(*s_args["surb"])
    read_surb = _mapped(surb, surb.keep(p.SUrb_size_threshold))
    del surb
    rc = searches.get(*s_args["rc"])
    read_rc = _mapped(rc, rc.keep(p.RC_size_threshold))
    del rc
    clock("labelling")
    stats["provisional_components"] = searches.n_provisional
    ldr_bit = np.uint16(plan.bit(keys["ldr"]))

    def write(writer: ClassRasterWriter) -> None:
        for s0, s1 in iter_strips(shape, strip_cells):
            out = np.zeros((s1 - s0, cols), dtype=np.uint8)
            uncl = np.ones(out.shape, dtype=bool)

            def assign(mask: np.ndarray, code: int, out=out, uncl=uncl) -> None:
                mask &= uncl
                np.copyto(out, code, where=mask)
                np.copyto(uncl, False, where=mask)

            b = bits.read(s0, s1, 0, cols)
            assign(centre.read(s0, s1, 0, cols).astype(bool), c30)
            assign(read_duc(s0, s1, 0, cols), c23)
            if read_sduc is not None:
                assign(read_sduc(s0, s1, 0, cols), c22)
            assign(read_surb(s0, s1, 0, cols), c21)
            assign(read_rc(s0, s1, 0, cols), c13)
            assign((b & ldr_bit) != 0, c12)
            np.copyto(out, c11, where=uncl)
            water = (b & np.uint16(_BIT_WATER)) != 0
            water &= out == c11
            np.copyto(out, c10, where=water)
            writer.write(s0, 0, out)

    return ({"urban_centre_built_threshold": uc_built,
             "dense_cluster_built_threshold": duc_built}, write)
