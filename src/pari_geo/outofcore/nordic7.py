"""The seven Nordic place types (``nordic7``) by tiles, for grids larger than memory.

:func:`classify_nordic7_tiled` gives the same ``uint8`` place-type raster, cell for cell,
as the in-memory path (:func:`pari_geo.typology.classify.classify_nordic7` on files,
:func:`pari_geo.typology.nordic7.classify_nordic7_array` on arrays), holding one tile
(plus a halo) and per-component tables in memory at a time. Every intermediate lives in
raw files (:class:`~pari_geo.outofcore.components.RawGrid`) in a temporary folder, removed
at the end. How each step of ``place-types.md`` stays exact:

* **per-cell layers** (density, water, passability, the settlement test, the commuting
  test) are computed tile by tile with the in-memory arithmetic, element by element;
* **settlements** (queen components) and their populations:
  :func:`~pari_geo.outofcore.components.label_tiled`, numbered like
  ``scipy.ndimage.label`` with sums bit-identical to ``np.bincount``, so every
  ``population >= threshold`` decision is the same;
* **core hole filling**: the complement of the cores is labelled rook-wise; a component
  is a hole when it has at most ``core_max_gap_cells`` cells and its bounding box does
  not touch the grid edge (a component touches the edge exactly when its box does);
* **inner urban patches**: rook components of the candidates, with cell counts and
  residents per patch; patches are numbered in raster order of their first cell, so the
  in-memory tie-break "first in raster order" is the patch id; the owner core of a patch
  is the core (queen component of the filled cores) of any of its cells (a rook patch of
  core cells lies inside one core);
* **window means** use the numba kernel of the in-memory path
  (:func:`pari_geo.outofcore.windows.window_mean`, direct sums in a fixed order)
  on the tile plus a halo of ``window // 2`` cells: bit-identical;
* **travel minutes** (to cores, to linked settlements, to service centres):
  :func:`~pari_geo.outofcore.travel_time.minutes_to_tiled`, bit-identical to
  :func:`~pari_geo.outofcore.travel_time.minutes_to`.

Memory: a tile with its halo of a few float64 layers, plus per-component tables (about
32 bytes per settlement, non-core component and candidate patch). Disk: about 8 bytes per
cell per float layer kept (population, density, and built-up, agricultural share, service
minutes, speed when given, up to three travel-time grids), 1 byte of flags and 4 per
labelling.

Examples
--------
>>> import numpy as np
>>> from pari_geo.typology.nordic7 import classify_nordic7_array
>>> pop = np.zeros((9, 11)); pop[3:6, 3:6] = 2000.0
>>> res = classify_nordic7_tiled(pop, cell_size_m=1000, tile_shape=(4, 3))
>>> bool(np.array_equal(res.codes, classify_nordic7_array(pop, cell_size_m=1000)[0]))
True
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..classes import NORDIC7
from ..errors import ConfigError, InputError
from ..io_write import metadata_tags
from ..scheduler import TaskRunner, task_runner
from ..typology.nordic7 import _REL_TOL as REL_TOL
from ..typology.nordic7 import (
    FALLBACKS,
    LAYERS,
    MAX_CELL_SIZE_M,
    MIN_CELL_SIZE_M,
    WATER_LAND_SHARE,
    Nordic7Params,
    _ge,
    window_cells,
)
from ._writer import ClassRasterWriter
from .windows import window_mean
from .components import (
    RawGrid,
    _check_tile_shape,
    iter_strips,
    iter_tiles,
    label_tiled,
    tile_bands,
)

__all__ = ["classify_nordic7_tiled", "Nordic7TiledResult"]

WindowReader = Callable[[int, int, int, int], np.ndarray]

# per-cell flags (uint8)
_MISSING = 1
_WATER = 2
_PASSABLE = 4
_DENSE = 8
_COMMUTING = 16
_VALID = 32
_CAND = 64
_CORE = 128

_CODES = (1, 2, 3, 4, 5, 6, 7, 0, 255)


@dataclass(frozen=True)
class Nordic7TiledResult:
    """What :func:`classify_nordic7_tiled` produced.

    Attributes
    ----------
    path : pathlib.Path or None
        The place-type raster (COG) when ``out_path`` was given.
    codes : ndarray of uint8 or None
        The place types in memory when no ``out_path`` was given.
    shape : (rows, cols)
    tile_shape : (rows, cols)
    class_cells : dict
        Cells per code (1..7, 0, 255), as the in-memory ``info["class_cells"]``.
    metadata : dict
        As the in-memory ``info["metadata"]`` (typology, layers used and fallen back,
        parameters, cell size, windows, gap cells, number of cores, whether service minutes
        were computed, cells and residents per class). ``class_residents`` are summed tile
        by tile, so they may differ in the last bits from the in-memory sums.
    tags : dict
        Metadata tags written to the file (the in-memory path's, plus ``OUT_OF_CORE``).
    stats : dict
        Work counters (components, travel-time runs).
    """

    path: Path | None
    codes: np.ndarray | None = field(repr=False)
    shape: tuple[int, int]
    tile_shape: tuple[int, int]
    class_cells: dict[int, int]
    metadata: dict[str, Any] = field(repr=False)
    tags: dict[str, str] = field(repr=False)
    stats: dict[str, Any] = field(default_factory=dict, repr=False)


# ---------------------------------------------------------------------------------------
# inputs: one window reader per layer
# ---------------------------------------------------------------------------------------
class _Stats:
    """Running summary of a layer's values (for the in-memory value checks)."""

    def __init__(self) -> None:
        self.lo = np.inf
        self.hi = -np.inf
        self.seen = False
        self.bad = 0  # cells outside the share range (after conversion)
        self.negative = False

    def add(self, a: np.ndarray) -> None:
        if a.size == 0:
            return
        lo = float(np.fmin.reduce(a, axis=None))
        if math.isnan(lo):
            return
        self.lo = min(self.lo, lo)
        self.hi = max(self.hi, float(np.fmax.reduce(a, axis=None)))
        self.seen = True

    def summary(self) -> np.ndarray:
        return np.array([self.lo, self.hi]) if self.seen else np.array([np.nan])

    def merge(self, other: _Stats) -> None:
        """Fold in the summary of other tiles."""
        if other.seen:
            self.lo = min(self.lo, other.lo)
            self.hi = max(self.hi, other.hi)
            self.seen = True
        self.bad += other.bad
        self.negative |= other.negative


class _Layer:
    """One input layer read by windows as float64 (no-data as NaN)."""

    def __init__(self, name: str, source: str | None, read: WindowReader,
                 is_file: bool, closer: Callable[[], None] | None = None) -> None:
        self.name = name
        self.source = source
        self.read = read
        self.is_file = is_file  # file or DataArray: the file-level checks apply
        self.path: str | None = None  # set when read from a file (tasks reopen it)
        self.close = closer or (lambda: None)
        self.stats = _Stats()  # raw values as read
        self.conv = _Stats()  # values after unit conversion (share layers)
        self.unknown: set[int] = set()  # land-cover classes missing from the mapping

    @classmethod
    def of_file(cls, name: str, src: Any, fname: str) -> _Layer:
        """A layer read from an open raster file (closed with the layer)."""
        lay = cls(name, fname, _raster_reader(src, fname, name), True, src.close)
        lay.path = os.path.abspath(fname)
        return lay


def _raster_reader(src: Any, fname: str | None = None, name: str | None = None
                   ) -> WindowReader:
    from rasterio.windows import Window

    from ..ingest import read_failure

    def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        try:
            data = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0), masked=True)
        except Exception as err:  # noqa: BLE001 - a truncated or corrupt input
            raise read_failure(fname or src.name, name, err) from None
        return data.astype(np.float64).filled(np.nan)

    return read


def _array_reader(arr: np.ndarray) -> WindowReader:
    def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        return np.asarray(arr[r0:r1, c0:c1], dtype=np.float64)

    return read


def _open_file(path: Any, name: str) -> tuple[Any, str]:
    import rasterio

    from ..grid import check_transform
    from ..ingest import _check_file, _first_line

    fname = _check_file(path, name)
    try:
        src = rasterio.open(fname)
    except Exception as err:  # rasterio/GDAL raise several types
        raise InputError(fname, name, f"cannot be read as a raster ({_first_line(err)})"
                         ) from None
    try:
        if src.count < 1:
            raise InputError(fname, name, "has no band")
        if src.crs is None:
            raise InputError(fname, name, "has no CRS; assign one (e.g. gdal_edit.py -a_srs)")
        check_transform(src.transform, fname, name)
        if src.width == 0 or src.height == 0:
            raise InputError(fname, name, "has no cells")
    except BaseException:
        src.close()
        raise
    return src, fname


def _is_dataarray(obj: Any) -> bool:
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, xr.DataArray)


class _Inputs:
    """The population grid and the window readers of every given layer."""

    def __init__(self, population: Any, others: dict[str, Any], cell_size_m: float | None
                 ) -> None:
        self.layers: dict[str, _Layer] = {}
        self.grid: Any = None  # GridSpec of a georeferenced population
        try:
            self._open_population(population, cell_size_m)
            for name, obj in others.items():
                if obj is not None:
                    self.layers[name] = self._open(name, obj)
        except BaseException:
            self.close()
            raise

    def _open_population(self, obj: Any, cell_size_m: float | None) -> None:
        from ..grid import GridSpec, require_projected

        if isinstance(obj, str | os.PathLike):
            src, fname = _open_file(obj, "population")
            bounds = tuple(src.bounds)
            try:
                crs = require_projected(src.crs, fname, "population", bounds)
            except BaseException:
                src.close()
                raise
            self.grid = GridSpec(crs, src.transform, src.shape)
            self.shape = (int(src.height), int(src.width))
            self.cell_size_m = self.grid.cell_size_m
            self.layers["population"] = _Layer.of_file("population", src, fname)
        elif _is_dataarray(obj):
            from ..ingest import as_dataarray

            da = as_dataarray(obj, "population")
            source = da.attrs.get("source")
            self.grid = GridSpec.from_dataarray(da, file=source, layer="population")
            self.shape = self.grid.shape
            self.cell_size_m = self.grid.cell_size_m
            self.layers["population"] = _Layer("population", source,
                                               _array_reader(np.asarray(da.values)), True)
        else:
            arr = np.asarray(obj)
            if arr.ndim != 2:
                raise InputError(None, "population",
                                 f"must be a 2-D grid, got shape {arr.shape}")
            if cell_size_m is None:
                raise InputError(None, "population",
                                 "is an array: give cell_size_m (metres), or pass a raster file")
            self.shape = (int(arr.shape[0]), int(arr.shape[1]))
            self.cell_size_m = float(cell_size_m)
            self.layers["population"] = _Layer("population", None, _array_reader(arr), False)
        if self.grid is not None and cell_size_m is not None and not math.isclose(
                float(cell_size_m), self.cell_size_m, rel_tol=1e-9):
            raise InputError(self.layers["population"].source, "population",
                             f"has cells of {self.cell_size_m:g} m, but cell_size_m="
                             f"{cell_size_m!r} was given")
        r = self.cell_size_m
        if not (MIN_CELL_SIZE_M <= r <= MAX_CELL_SIZE_M):
            raise InputError(None, "population",
                             f"cell size {r:g} m outside the 100 m .. 5 km nordic7 supports")

    def _open(self, name: str, obj: Any) -> _Layer:
        if isinstance(obj, str | os.PathLike):
            from ..grid import GridSpec

            src, fname = _open_file(obj, name)
            if self.grid is None:  # an array population: only the shape is known
                same = (src.height, src.width) == self.shape
            else:  # the in-memory path's test for "no alignment needed"
                same = src.crs is not None and GridSpec(
                    src.crs, src.transform, (src.height, src.width)).same_as(self.grid)
            if not same:
                src.close()
                raise InputError(
                    fname, name,
                    "the tiled path needs every layer on the population's grid (same CRS, "
                    "transform and shape); align it first (pari_geo.align.align_to_grid) or "
                    "use pari_geo.typology.classify.classify_nordic7")
            return _Layer.of_file(name, src, fname)
        if _is_dataarray(obj):
            from ..grid import GridSpec
            from ..ingest import as_dataarray

            da = as_dataarray(obj, name)
            source = da.attrs.get("source")
            grid = GridSpec.from_dataarray(da, file=source, layer=name)
            if self.grid is not None and not grid.same_as(self.grid):
                raise InputError(source, name,
                                 "is not on the population's grid; align it first "
                                 "(pari_geo.align.align_to_grid)")
            if self.grid is None and grid.shape != self.shape:
                raise InputError(source, name,
                                 f"has shape {grid.shape}, population has {self.shape}")
            return _Layer(name, source or "<in-memory>", _array_reader(np.asarray(da.values)),
                          True)
        arr = np.asarray(obj)
        if arr.shape != self.shape:
            raise InputError(None, name, f"has shape {arr.shape}, population has {self.shape}")
        return _Layer(name, None, _array_reader(arr), False)

    def close(self) -> None:
        for lay in self.layers.values():
            lay.close()

    def __enter__(self) -> _Inputs:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _landcover_mapping(mapping: Any) -> Any:
    from ..typology.nordic7 import corine_agri_mapping

    if mapping in (None, "corine"):
        return corine_agri_mapping()
    if not isinstance(mapping, dict):
        raise ConfigError("landcover.mapping", f"must be 'corine' or a dict, got {mapping!r}")
    return mapping


# ---------------------------------------------------------------------------------------
# pass 1: per-cell layers and flags
# ---------------------------------------------------------------------------------------
class _Store:
    """Raw files of the intermediates."""

    def __init__(self, tmp: Path, shape: tuple[int, int]) -> None:
        self.tmp = tmp
        self.shape = shape
        self.flags = RawGrid(tmp / "flags.u8", shape, np.uint8)
        self.pop0 = RawGrid(tmp / "pop0.f8", shape, np.float64)
        self.density = RawGrid(tmp / "density.f8", shape, np.float64)
        self.extra: dict[str, RawGrid] = {}

    def grid(self, name: str) -> RawGrid:
        if name not in self.extra:
            self.extra[name] = RawGrid(self.tmp / f"{name}.f8", self.shape, np.float64)
        return self.extra[name]

    def bit(self, bit: int) -> WindowReader:
        flags = self.flags

        def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
            return (flags.read(r0, r1, c0, c1) & np.uint8(bit)) != 0

        return read


def _share(lay: _Layer, a: np.ndarray, unit: str, r: float) -> np.ndarray:
    """``_share_layer`` + ``_layer`` of the in-memory path on one window (stats kept)."""
    if lay.is_file:
        lay.stats.add(a)  # raw values: check_share at the end
        if unit == "m2":
            a = a / r / r
    with np.errstate(invalid="ignore"):
        bad = (a < -1e-6) | (a > 1 + 1e-6)
    lay.stats.bad += int(np.count_nonzero(bad))
    lay.conv.add(a)
    return np.clip(a, 0.0, 1.0)


def _check_summaries(inputs: _Inputs, units: dict[str, str]) -> None:
    """The in-memory path's value checks, on the running summaries."""
    from ..ingest import check_counts, check_population, check_share

    r = inputs.cell_size_m
    pop = inputs.layers["population"]
    if pop.is_file:
        check_population(pop.stats.summary(), pop.source, "population", (r / 1000.0) ** 2)
    elif pop.stats.seen and pop.stats.lo < 0:
        raise InputError(None, "population", "has negative residents (nodata not set to NaN?)")
    for name, lname in (("built", "built_share"), ("land", "land_share"),
                        ("agri", "agri_share"), ("commuting", "commuting_share")):
        lay = inputs.layers.get(name)
        if lay is None:
            continue
        if lay.is_file:
            check_share(lay.stats.summary(), lay.source, name, units.get(name, "share"), r * r)
        if lay.stats.bad:
            conv = lay.conv
            raise InputError(None, lname,
                             f"share outside 0..1 in {lay.stats.bad} cells (min {conv.lo:g}, "
                             f"max {conv.hi:g}); give shares, not m²")
    lay = inputs.layers.get("landcover")
    if lay is not None and lay.unknown:
        raise InputError(lay.source, "landcover",
                         "has classes missing from the agricultural mapping: "
                         f"{sorted(lay.unknown)[:10]}")
    if lay is not None and lay.stats.bad:
        conv = lay.conv
        raise InputError(None, "agri_share",
                         f"share outside 0..1 in {lay.stats.bad} cells (min {conv.lo:g}, "
                         f"max {conv.hi:g}); give shares, not m²")
    for name in ("service_minutes", "speed_kmh"):
        lay = inputs.layers.get(name)
        if lay is None:
            continue
        if lay.is_file:
            check_counts(lay.stats.summary(), lay.source, name)
        if name == "service_minutes" and lay.stats.negative:
            raise InputError(None, "service_minutes", "has negative minutes")


def _present(layers: dict[str, _Layer]) -> dict[str, bool]:
    """Which optional layers were given."""
    return {k: k in layers for k in ("built", "land", "agri", "landcover", "commuting",
                                      "service_minutes", "speed_kmh")}


def _cell_pass(inputs: _Inputs, store: _Store, p: Nordic7Params, tile_shape, units,
               mapping: dict[int, float] | None, run: TaskRunner | None = None
               ) -> dict[str, bool]:
    """Per-cell layers and flags, tile by tile (the in-memory arithmetic, cell by cell).

    With a task runner (a dask cluster), each band of tiles is one task that reopens the
    layer files and writes its windows of the scratch files; the layers' value
    summaries come back and are merged here.
    """
    L = inputs.layers
    have = _present(L)
    if run is None:
        _cell_tiles(inputs, store, p, units, mapping, iter_tiles(inputs.shape, tile_shape))
        return have
    missing = [name for name, lay in L.items() if lay.path is None]
    if missing:
        raise ConfigError("scheduler", "the workers read every layer from a file; "
                          f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                          "in memory (write it to shared storage first)", what="option")
    for name, wanted in (("built", have["built"]),
                         ("agri", have["agri"] or have["landcover"]),
                         ("svc", have["service_minutes"]), ("speed", have["speed_kmh"])):
        if wanted:
            store.grid(name)  # created here: tasks only write into it
    paths = {name: lay.path for name, lay in L.items()}
    parts = run(_cell_task, [(paths, store, p, units, mapping, band)
                             for band in tile_bands(inputs.shape, tile_shape)])
    for part in parts:
        for name, (stats, conv, unknown) in part.items():
            lay = L[name]
            lay.stats.merge(stats)
            lay.conv.merge(conv)
            lay.unknown |= unknown
    return have


def _cell_task(paths: dict[str, str], store: _Store, p: Nordic7Params, units, mapping,
               tiles: list) -> dict[str, tuple[_Stats, _Stats, set[int]]]:
    """One task of the per-cell pass: reopen the layers, run the tiles, return summaries."""
    others = {name: path for name, path in paths.items() if name != "population"}
    with _Inputs(paths["population"], others, None) as inputs:
        _cell_tiles(inputs, store, p, units, mapping, tiles)
        return {name: (lay.stats, lay.conv, lay.unknown)
                for name, lay in inputs.layers.items()}


def _cell_tiles(inputs: _Inputs, store: _Store, p: Nordic7Params, units,
                mapping: dict[int, float] | None, tiles: Iterable[tuple[int, int, int, int]]
                ) -> None:
    """The per-cell work of some tiles."""
    from ..typology.nordic7 import agri_share_from_landcover

    r = inputs.cell_size_m
    area_km2 = (r / 1000.0) ** 2
    L = inputs.layers
    have = _present(L)
    keys = np.array(sorted(mapping), dtype=np.int64) if mapping is not None else None
    for r0, r1, c0, c1 in tiles:
        pop = L["population"].read(r0, r1, c0, c1)
        L["population"].stats.add(pop)
        shape = pop.shape
        built = _share(L["built"], L["built"].read(r0, r1, c0, c1), units["built"], r) \
            if have["built"] else None
        land = _share(L["land"], L["land"].read(r0, r1, c0, c1), units["land"], r) \
            if have["land"] else None
        agri = None
        if have["agri"]:
            agri = _share(L["agri"], L["agri"].read(r0, r1, c0, c1), "share", r)
        elif have["landcover"]:
            lay = L["landcover"]
            values = lay.read(r0, r1, c0, c1)
            ok = ~np.isnan(values)
            present = values[ok]
            if present.size:
                cls = np.unique(present).astype(int)
                unknown = cls[~np.isin(cls, keys)]  # type: ignore[arg-type]
                lay.unknown.update(int(u) for u in unknown)
            a = np.full(shape, np.nan)
            if present.size:
                a[ok] = agri_share_from_landcover(present.astype(np.int64), mapping)
            agri = _share(lay, a, "share", r)
        comm = _share(L["commuting"], L["commuting"].read(r0, r1, c0, c1), "share", r) \
            if have["commuting"] else None

        missing = np.isnan(pop)
        pop0 = np.where(missing, 0.0, pop)
        land_eff = np.ones(shape) if land is None else np.where(np.isnan(land), 1.0, land)
        has_built = np.zeros(shape, bool) if built is None else np.nan_to_num(built) > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            density = pop0 / (land_eff * area_km2)
        density[missing] = np.nan
        water_like = (land_eff < WATER_LAND_SHARE) & (pop0 == 0)
        water = water_like & ~has_built
        valid = ~water & ~missing
        dense = _ge(density, p.settlement_density)
        if built is not None:
            dense |= _ge(np.nan_to_num(built, nan=0.0), p.settlement_built_share)
        dense &= valid
        flags = np.zeros(shape, np.uint8)
        flags[missing] |= _MISSING
        flags[water] |= _WATER
        flags[~water_like] |= _PASSABLE
        flags[dense] |= _DENSE
        flags[valid] |= _VALID
        if comm is not None:
            flags[_ge(comm, p.close_to_urban_commuting_share)] |= _COMMUTING
        store.flags.write(r0, c0, flags)
        store.pop0.write(r0, c0, pop0)
        store.density.write(r0, c0, density)
        if built is not None:
            store.grid("built").write(r0, c0, built)
        if agri is not None:
            store.grid("agri").write(r0, c0, agri)
        if have["service_minutes"]:
            lay = L["service_minutes"]
            svc = lay.read(r0, r1, c0, c1)
            lay.stats.add(svc)
            if np.any(svc < 0):
                lay.stats.negative = True
            store.grid("svc").write(r0, c0, svc)
        if have["speed_kmh"]:
            lay = L["speed_kmh"]
            speed = lay.read(r0, r1, c0, c1)
            lay.stats.add(speed)
            store.grid("speed").write(r0, c0, speed)


# ---------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------
def _tags(params: Nordic7Params, metadata: dict[str, Any], sources: dict[str, Any],
          tile_shape: tuple[int, int]) -> dict[str, str]:
    """Tags the in-memory path writes (``write_class_raster`` of ``classify_nordic7``)."""
    from .._version import __version__

    attrs = {
        "typology": "nordic7",
        "parameters": json.dumps(params.to_dict(), sort_keys=True),
        "parameters_hash": params.hash(),
        "layers_used": json.dumps(sorted(metadata["layers_used"])),
        "layers_fallback": json.dumps(metadata["layers_fallback"], sort_keys=True),
        "service_minutes_computed": str(bool(metadata["service_minutes_computed"])),
        "inputs": json.dumps({k: str(v) for k, v in sources.items()}, sort_keys=True),
        "class_names": json.dumps({str(k): v for k, v in NORDIC7.names.items()}),
        "class_colours": json.dumps({str(k): v for k, v in NORDIC7.colours.items()}),
        "pari_geo_version": __version__,
    }
    tags = {k.upper(): v for k, v in attrs.items()}
    from ..io_write import class_tags

    tags.update(class_tags(NORDIC7))
    tags["OUT_OF_CORE"] = json.dumps({"module": "pari_geo.outofcore.nordic7",
                                      "tile_shape": list(tile_shape)})
    return tags


# ---------------------------------------------------------------------------------------
# the classification
# ---------------------------------------------------------------------------------------
def classify_nordic7_tiled(
    population: Any,
    *,
    built: Any = None,
    land: Any = None,
    agri: Any = None,
    landcover: Any = None,
    landcover_mapping: dict[int, float] | str | None = "corine",
    commuting: Any = None,
    service_minutes: Any = None,
    speed_kmh: Any = None,
    built_unit: str = "share",
    land_unit: str = "share",
    params: Nordic7Params | str | None = None,
    cell_size_m: float | None = None,
    tile_shape: tuple[int, int] = (1024, 1024),
    workdir: str | os.PathLike | None = None,
    out_path: str | os.PathLike | None = None,
    overwrite: bool = False,
    extra_tags: dict[str, Any] | None = None,
    scheduler: Any = None,
    **overrides: Any,
) -> Nordic7TiledResult:
    """Classify a grid into the seven Nordic place types by tiles (out of core).

    Same codes, cell for cell, as :func:`pari_geo.typology.classify.classify_nordic7`
    (files, DataArrays) and :func:`pari_geo.typology.nordic7.classify_nordic7_array`
    (arrays) with the same inputs and parameters, for grids that do not fit in memory: a
    tile plus a halo of a few float64 layers and per-component tables are held at a time
    (see the module docstring for how each step stays exact).

    Parameters
    ----------
    population : path, xarray.DataArray or ndarray
        Residents per cell (NaN or no-data: missing). A file or DataArray defines the grid
        (projected CRS in metres, 100 m to 5 km cells); an array needs ``cell_size_m``.
    built, land, agri, landcover, commuting, service_minutes, speed_kmh : optional
        The optional layers of ``place-types.md``, as in ``classify_nordic7``; paths,
        DataArrays or arrays *on the population's grid* (same CRS, transform and shape;
        align other grids first). ``landcover`` (classes) is used when ``agri`` is absent;
        ``speed_kmh`` may also be a number.
    landcover_mapping : dict or "corine"
        Class → agricultural weight for ``landcover``.
    built_unit, land_unit : {"share", "m2"}
        Unit of ``built`` and ``land``.
    params : Nordic7Params or preset name, optional
    cell_size_m : float, optional
        Cell side in metres; required when ``population`` is an array.
    tile_shape : (rows, cols), default (1024, 1024)
        Tile of every pass (strips of the table passes have as many cells). Any shape
        works; results never depend on it.
    workdir : path-like, optional
        Where the temporary folder of intermediates goes (default: next to ``out_path``,
        or the system's temporary folder).
    out_path : path-like, optional
        Output COG (written atomically, with the colour table and the tags of the
        in-memory path plus ``OUT_OF_CORE``). Needs a georeferenced population. Without
        it the codes are returned in memory (``result.codes``).
    overwrite : bool, default False
    extra_tags : dict, optional
        More metadata tags for the output (keys upper-cased; non-string values as JSON),
        e.g. the resolved run configuration.
    scheduler : str or distributed.Client, optional
        Run the per-cell pass (reading every layer and the per-cell arithmetic) and the
        tile labelling of settlements, holes, cores and patches as dask tasks, one per
        band of tiles, on this cluster (an address such as ``"tcp://host:8786"``, or a
        client). Every layer must then be a file, and the files and ``workdir`` on
        storage every worker sees at the same path. The rest (seams, numbering, window
        means, travel time, the write) runs in this process; the result is
        byte-identical to the run without a scheduler.
        A task that cannot be completed raises
        :class:`~pari_geo.errors.SchedulerError` and no output is written.
    **overrides
        Any parameter of the ``nordic7`` table, e.g. ``urban_core_min_pop=10000``.

    Returns
    -------
    Nordic7TiledResult

    Raises
    ------
    InputError
        As the in-memory path (bad values, missing files, geographic CRS, cell size out of
        range), and for a layer not on the population's grid.
    ConfigError
        Unknown parameter, bad unit, bad ``tile_shape``; a scheduler with a layer given
        in memory.
    SchedulerError
        The scheduler cannot be reached, or a task failed on every attempt.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, rasterio
    >>> from pari_geo.datasets import belgium_paths
    >>> p = belgium_paths()
    >>> out = os.path.join(tempfile.mkdtemp(), "nordic7.tif")
    >>> res = classify_nordic7_tiled(p["population"], built=p["built"], land=p["land"],
    ...                              built_unit="m2", land_unit="m2", out_path=out,
    ...                              tile_shape=(64, 64))
    >>> res.class_cells[0]      # water, as in the in-memory path
    2578
    >>> with rasterio.open(out) as src:
    ...     src.tags()["OUT_OF_CORE"]
    '{"module": "pari_geo.outofcore.nordic7", "tile_shape": [64, 64]}'
    """
    from .travel_time import minutes_to_tiled

    if params is None or isinstance(params, str):
        params = Nordic7Params.from_preset(params or "nordic7")
    elif not isinstance(params, Nordic7Params):
        raise ConfigError("params", f"must be a Nordic7Params or a preset name, got {params!r}")
    p = params.replace(**overrides) if overrides else params
    units = {"built": built_unit, "land": land_unit}
    for name, unit in units.items():
        if unit not in ("m2", "share"):
            raise ConfigError(f"{name}_unit", f"must be 'm2' or 'share', got {unit!r}")
    try:
        tile_shape = _check_tile_shape(tile_shape)
    except ValueError as err:
        raise ConfigError("tile_shape", str(err)) from None
    mapping = None
    if agri is None and landcover is not None:
        mapping = _landcover_mapping(landcover_mapping)
    if speed_kmh is not None and not isinstance(speed_kmh, str | os.PathLike) and not \
            _is_dataarray(speed_kmh) and np.ndim(speed_kmh) == 0:
        scalar_speed: float | None = float(speed_kmh)
        speed_kmh = None
    else:
        scalar_speed = None
    if service_minutes is not None and not isinstance(service_minutes, str | os.PathLike) \
            and not _is_dataarray(service_minutes) and np.ndim(service_minutes) == 0:
        raise InputError(None, "service_minutes", "must be a grid (file or array), "
                         f"got the number {service_minutes!r}")
    if out_path is not None:
        from ..io_write import check_output

        out_path = Path(out_path)
        check_output(out_path, overwrite)
    others = {"built": built, "land": land, "agri": agri,
              "landcover": landcover if agri is None else None, "commuting": commuting,
              "service_minutes": service_minutes, "speed_kmh": speed_kmh}
    if workdir is not None:
        base = Path(workdir)
        base.mkdir(parents=True, exist_ok=True)
    elif out_path is not None:
        base = out_path.parent
    else:
        base = None
    from ..io_write import scratch_dir

    with _Inputs(population, others, cell_size_m) as inputs, \
            scratch_dir(".pari_geo_n7_", base) as tmpdir, \
            task_runner(scheduler) as run_tasks:
        if out_path is not None and inputs.grid is None:
            raise InputError(None, "population", "out_path needs a georeferenced population "
                             "(a raster file or a DataArray), not a bare array")
        tmp = Path(tmpdir).resolve()  # workers may run in another folder
        shape = inputs.shape
        rows, cols = shape
        r = inputs.cell_size_m
        area_km2 = (r / 1000.0) ** 2
        store = _Store(tmp, shape)
        have = _cell_pass(inputs, store, p, tile_shape, units, mapping,
                          None if scheduler is None else run_tasks)
        _check_summaries(inputs, units)
        stats: dict[str, Any] = {"tile_shape": list(tile_shape)}
        strip_cells = tile_shape[0] * tile_shape[1]
        given = {
            "population": True,
            "built_share": have["built"],
            "land_share": have["land"],
            "agri_share": have["agri"] or have["landcover"],
            "commuting_share": have["commuting"],
            "service_minutes": have["service_minutes"],
            "speed_kmh": have["speed_kmh"] or scalar_speed is not None,
        }
        layers_used = [k for k in LAYERS if given[k]]
        layers_fallback = {k: FALLBACKS[k] for k in LAYERS[1:] if not given[k]}

        # 2. settlements (queen) and their residents
        tasks = None if scheduler is None else run_tasks
        settle = label_tiled(store.bit(_DENSE), 8, tile_shape=tile_shape, weights=store.pop0,
                             shape=shape, workdir=tmp, strip_cells=strip_cells, run=tasks)
        s_pop = settle.sums.copy()
        s_pop[0] = 0.0
        stats["settlements"] = settle.n

        # 3. urban cores + hole filling
        core_tab = s_pop >= p.urban_core_min_pop
        core_tab[0] = False
        any_core = bool(core_tab.any())
        gap_cells = int(math.floor(p.core_max_gap_km2 / area_km2 * (1 + REL_TOL)))
        holes = None
        hole_tab = None
        if any_core and gap_cells > 0:
            def not_core(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
                return ~settle.select(r0, r1, c0, c1, core_tab)

            holes = label_tiled(not_core, 4, tile_shape=tile_shape, shape=shape, workdir=tmp,
                                strip_cells=strip_cells, run=tasks)
            bb = holes.bbox
            edge = (bb[:, 0] == 0) | (bb[:, 1] == rows - 1) | (bb[:, 2] == 0) | (
                bb[:, 3] == cols - 1)
            hole_tab = (holes.counts <= gap_cells) & ~edge
            hole_tab[0] = False
            stats["non_core_components"] = holes.n
            stats["holes_filled"] = int(hole_tab.sum())
        if any_core:
            for r0, r1, c0, c1 in iter_tiles(shape, tile_shape):
                cores = settle.select(r0, r1, c0, c1, core_tab)
                if holes is not None:
                    cores |= holes.select(r0, r1, c0, c1, hole_tab)  # type: ignore[arg-type]
                if cores.any():
                    f = store.flags.read(r0, r1, c0, c1)
                    f[cores] |= _CORE
                    store.flags.write(r0, c0, f)
        if holes is not None:
            holes.close()
            del holes, hole_tab

        # 4. inner urban candidates: window means on tiles with a halo
        w_in = window_cells(p.inner_radius_m, r)
        w_rural = window_cells(p.rural_radius_m, r)
        any_cand = False
        if any_core:
            halo = w_in // 2
            for r0, r1, c0, c1 in iter_tiles(shape, tile_shape):
                f = store.flags.read(r0, r1, c0, c1)
                core_cells = (f & _CORE != 0) & (f & _VALID != 0)
                if not core_cells.any():
                    continue
                R0, R1, C0, C1 = (max(0, r0 - halo), min(rows, r1 + halo),
                                  max(0, c0 - halo), min(cols, c1 + halo))
                inner = (slice(r0 - R0, r1 - R0), slice(c0 - C0, c1 - C0))
                cand = _ge(window_mean(store.density.read(R0, R1, C0, C1), w_in)[inner],
                           p.inner_density)
                if have["built"]:
                    cand |= _ge(window_mean(store.grid("built").read(R0, R1, C0, C1),
                                            w_in)[inner], p.inner_built_share)
                cand &= core_cells
                if cand.any():
                    any_cand = True
                    f[cand] |= _CAND
                    store.flags.write(r0, c0, f)
        core_lab = label_tiled(store.bit(_CORE), 8, tile_shape=tile_shape, shape=shape,
                               workdir=tmp, strip_cells=strip_cells, run=tasks)
        n_cores = core_lab.n
        patches = None
        best = None
        if any_cand:
            patches = label_tiled(store.bit(_CAND), 4, tile_shape=tile_shape,
                                  weights=store.pop0, shape=shape, workdir=tmp,
                                  strip_cells=strip_cells, run=tasks)
            n_p = patches.n
            owner = np.zeros(n_p + 1, dtype=np.int64)
            for s0, s1 in iter_strips(shape, strip_cells):
                pl = patches.labels(s0, s1, 0, cols)
                m = pl > 0
                if m.any():
                    owner[pl[m]] = core_lab.labels(s0, s1, 0, cols)[m]
            size = patches.counts
            res = patches.sums
            ids = np.arange(1, n_p + 1)
            # most cells, then most residents, then first cell in raster order (= patch id)
            order = np.lexsort((ids, -res[1:], -size[1:], owner[1:]))
            best = np.zeros(n_p + 1, bool)
            seen: set[int] = set()
            for k in order:
                o = int(owner[k + 1])
                if o not in seen:
                    seen.add(o)
                    best[k + 1] = True
            stats["inner_patches"] = n_p
        core_lab.close()
        del core_lab

        # 6. peri-urban: travel minutes to the cores, linked settlements
        speed_arg: Any = scalar_speed if scalar_speed is not None else (
            store.grid("speed") if have["speed_kmh"] else None)
        travel = {"cell_size_m": r, "speed_kmh": speed_arg,
                  "default_speed_kmh": p.default_speed_kmh, "passable": store.bit(_PASSABLE),
                  "tile_shape": tile_shape, "shape": shape, "workdir": tmp}
        t_max = max(p.close_to_urban_minutes, p.peri_urban_core_minutes)
        t_core = None
        if any_core:
            t_core = minutes_to_tiled(store.bit(_CORE), max_minutes=t_max,
                                      out=tmp / "t_core.f8", **travel)
        linked_tab = np.zeros(settle.n + 1, bool)
        if t_core is not None and settle.n:
            for s0, s1 in iter_strips(shape, strip_cells):
                lab = settle.labels(s0, s1, 0, cols)
                zone = t_core.read(s0, s1, 0, cols) <= p.peri_urban_core_minutes  # type: ignore[union-attr]
                hit = lab[zone & (lab > 0)]
                hit = hit[~core_tab[hit]]
                linked_tab[hit] = True
        t_set = None
        if linked_tab.any():
            t_set = minutes_to_tiled(_selector(settle, linked_tab),
                                     max_minutes=p.peri_urban_settlement_minutes,
                                     out=tmp / "t_set.f8", **travel)
        stats["linked_settlements"] = int(linked_tab.sum())

        # 7. local centres
        local_tab = (s_pop >= p.local_centre_min_pop) & (s_pop < p.urban_core_min_pop)
        local_tab[0] = False

        # 9. service minutes when not given
        svc_grid = store.grid("svc") if have["service_minutes"] else None
        if svc_grid is None:
            centre_tab = s_pop >= p.service_centre_min_pop
            centre_tab[0] = False
            if centre_tab.any():
                svc_grid = minutes_to_tiled(_selector(settle, centre_tab),  # type: ignore[assignment]
                                            max_minutes=p.sparse_service_minutes,
                                            out=tmp / "svc_computed.f8", **travel)

        # final pass: codes tile by tile (rural window means with a halo)
        writer = None
        codes_mem = None
        if out_path is not None:
            metadata0 = {"layers_used": layers_used, "layers_fallback": layers_fallback,
                         "service_minutes_computed": not have["service_minutes"]}
            sources = _sources(inputs, {**others, "landcover": landcover})
            tags = _tags(p, metadata0, sources, tile_shape)
            tags.update(metadata_tags(extra_tags or {}))
            writer = ClassRasterWriter(out_path, tmp, inputs.grid, NORDIC7, tags,
                                           "place_types.tif")
        else:
            tags = {}
            codes_mem = np.empty(shape, np.uint8)
        cells = np.zeros(256, np.int64)
        residents = np.zeros(256, np.float64)
        halo = w_rural // 2
        try:
            for r0, r1, c0, c1 in iter_tiles(shape, tile_shape):
                f = store.flags.read(r0, r1, c0, c1)
                water = f & _WATER != 0
                valid = f & _VALID != 0
                core_cells = (f & _CORE != 0) & valid
                out = np.full(f.shape, 255, np.uint8)
                out[water] = 0
                unset = ~water
                if patches is not None:
                    inner_u = patches.select(r0, r1, c0, c1, best)  # type: ignore[arg-type]
                    out[inner_u] = 1
                    out[core_cells & ~inner_u] = 2
                else:
                    out[core_cells] = 2
                unset &= ~core_cells
                tc = t_core.read(r0, r1, c0, c1) if t_core is not None else None  # type: ignore[union-attr]
                peri = settle.select(r0, r1, c0, c1, linked_tab)
                if tc is not None:
                    peri |= tc <= p.peri_urban_core_minutes
                if t_set is not None:
                    peri |= t_set.read(r0, r1, c0, c1) <= p.peri_urban_settlement_minutes  # type: ignore[union-attr]
                peri &= unset & valid
                out[peri] = 3
                unset &= ~peri
                local = settle.select(r0, r1, c0, c1, local_tab) & unset & valid
                out[local] = 4
                unset &= ~local
                close = f & _COMMUTING != 0
                if tc is not None:
                    close |= tc <= p.close_to_urban_minutes
                close &= unset & valid
                out[close] = 5
                unset &= ~close
                if svc_grid is not None:
                    with np.errstate(invalid="ignore"):
                        served = svc_grid.read(r0, r1, c0, c1) <= p.sparse_service_minutes
                else:
                    served = np.zeros(f.shape, bool)
                cand6 = served & unset & valid
                if cand6.any():
                    R0, R1, C0, C1 = (max(0, r0 - halo), min(rows, r1 + halo),
                                      max(0, c0 - halo), min(cols, c1 + halo))
                    inner = (slice(r0 - R0, r1 - R0), slice(c0 - C0, c1 - C0))
                    rural_ok = _ge(window_mean(store.density.read(R0, R1, C0, C1),
                                               w_rural)[inner], p.heartland_density)
                    if have["agri"] or have["landcover"]:
                        rural_ok |= _ge(window_mean(store.grid("agri").read(R0, R1, C0, C1),
                                                    w_rural)[inner], p.heartland_agri_share)
                    heart = cand6 & rural_ok
                    out[heart] = 6
                    unset &= ~heart
                out[unset & valid] = 7
                cells += np.bincount(out.ravel(), minlength=256)
                residents += np.bincount(out.ravel(), weights=store.pop0.read(
                    r0, r1, c0, c1).ravel(), minlength=256)
                if writer is not None:
                    writer.write(r0, c0, out)
                else:
                    codes_mem[r0:r1, c0:c1] = out  # type: ignore[index]
            path = writer.finish(overwrite) if writer is not None else None
        finally:
            if writer is not None:
                writer.close()
        settle.close()
        if patches is not None:
            patches.close()
        class_cells = {c: int(cells[c]) for c in _CODES}
        metadata = {
            "typology": "nordic7",
            "layers_used": layers_used,
            "layers_fallback": layers_fallback,
            "params": p.to_dict(),
            "cell_size_m": r,
            "cell_area_km2": area_km2,
            "windows": {"inner": w_in, "rural": w_rural},
            "core_max_gap_cells": gap_cells,
            "n_cores": int(n_cores),
            "service_minutes_computed": not have["service_minutes"],
            "class_cells": class_cells,
            "class_residents": {c: float(residents[c]) for c in _CODES},
        }
        return Nordic7TiledResult(path, codes_mem, shape, tile_shape, class_cells, metadata,
                                  tags, stats)


def _sources(inputs: _Inputs, objs: dict[str, Any]) -> dict[str, Any]:
    """The ``inputs`` record of the in-memory ``classify_nordic7`` (paths, DataArray sources)."""
    sources: dict[str, Any] = {"population": inputs.layers["population"].source}
    for name in ("built", "land", "agri", "landcover", "commuting", "service_minutes",
                 "speed_kmh"):
        obj = objs.get(name)
        if isinstance(obj, str | os.PathLike):
            sources[name] = str(obj)
        elif obj is not None and hasattr(obj, "attrs"):
            sources[name] = obj.attrs.get("source", "<in-memory>")
    return sources


def _selector(comp: Any, table: np.ndarray) -> WindowReader:
    """Reader of ``table[labels]`` windows of a :class:`TiledComponents`."""
    def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        return comp.select(r0, r1, c0, c1, table)

    return read
