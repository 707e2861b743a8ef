"""The seven place types by tiles: the rules of :mod:`.nordic7` on the tiled engine.

:func:`classify_nordic7_tiled` gives the same ``uint8`` place-type raster, cell for cell,
as :func:`pari_geo.typology.classify.classify_nordic7` (files, DataArrays) and
:func:`pari_geo.typology.nordic7.classify_nordic7_array` (arrays), for grids larger than
memory. The rules are :func:`pari_geo.typology.nordic7.run_rules`, run on a
:class:`~pari_geo.outofcore.tiled.TiledEngine` (whose docstring says how every operation
stays exact); files are read by windows with :class:`pari_geo.ingest.RasterWindows`. One
per-cell pass first turns the optional layers into shares (m² divided by the cell area,
land cover mapped to an agricultural share, clipped to 0..1) and gathers each input's
``[min, max]``, on which the in-memory path's value checks run.

Memory: a tile with its halo of a few float64 layers, plus per-component tables (about 32
bytes per settlement, non-core component and candidate patch). Disk: about 8 bytes per
cell per float layer kept (the shares given, residents, density, up to three travel-time
grids), 1 byte of flags and 4 per labelling.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..classes import NORDIC7
from ..errors import ConfigError, InputError
from .nordic7 import (
    FALLBACKS,
    LAYERS,
    MAX_CELL_SIZE_M,
    MIN_CELL_SIZE_M,
    SECTOR_PREFIX,
    CommutingOD,
    Nordic7Params,
    agri_share_from_landcover,
    check_floor_area,
    check_unit_ids,
    corine_agri_mapping,
    rules_applied,
    run_rules,
)

__all__ = ["classify_nordic7_tiled", "Nordic7TiledResult"]

#: the ``OUT_OF_CORE`` tag names the module that wrote tiled rasters before the engines
#: were split from the rules; kept as it was so that outputs stay byte-identical
_TAG_MODULE = "pari_geo.outofcore.nordic7"
_CODES = (1, 2, 3, 4, 5, 6, 7, 0, 255)
#: optional input name -> the rules' layer name (shares after the per-cell pass)
_SHARES = {"built": "built_share", "land": "land_share", "agri": "agri_share",
           "commuting": "commuting_share"}


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
        Work counters (components, travel-time runs) and seconds per operation.
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
# inputs: one layer per input, on the population's grid
# ---------------------------------------------------------------------------------------
def _is_dataarray(obj: Any) -> bool:
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, xr.DataArray)


@dataclass
class _Input:
    """One input layer: the engine layer, where it came from, whether file checks apply."""

    layer: Any
    source: str | None
    is_file: bool  # a file or a DataArray: the file-level value checks apply


def _open_file(path: Any, name: str, band: int = 1) -> Any:
    """A :class:`~pari_geo.ingest.RasterWindows` (float64) with the raster checks."""
    from ..ingest import RasterWindows

    return _checked(RasterWindows(path, name, band=band, as_float=True), name)


def _checked(lay: Any, name: str) -> Any:
    """``lay`` (a window reader) after the raster checks: a CRS, a north-up grid of square
    cells, at least one cell; closed when one fails."""
    from ..grid import check_transform

    try:
        if lay.crs is None:
            raise InputError(lay.path, name, "has no CRS; assign one (e.g. gdal_edit.py -a_srs)")
        check_transform(lay.transform, lay.path, name)
        if 0 in lay.shape:
            raise InputError(lay.path, name, "has no cells")
    except BaseException:
        lay.close()
        raise
    return lay


class _Inputs:
    """The population grid and every given layer."""

    def __init__(self, population: Any, others: dict[str, Any], cell_size_m: float | None
                 ) -> None:
        self.inputs: dict[str, _Input] = {}
        self.grid: Any = None  # GridSpec of a georeferenced population
        try:
            self._open_population(population, cell_size_m)
            for name, obj in others.items():
                if obj is not None:
                    self.inputs[name] = self._open(name, obj)
        except BaseException:
            self.close()
            raise

    def _open_population(self, obj: Any, cell_size_m: float | None) -> None:
        from ..grid import GridSpec, require_projected
        from ..ingest import DataArrayWindows, is_lazy
        from ..outofcore.ops import ArrayLayer

        if isinstance(obj, str | os.PathLike):
            lay = _open_file(obj, "population")
            self.inputs["population"] = _Input(lay, lay.path, True)
            crs = require_projected(lay.crs, lay.path, "population", lay.bounds)
            self.grid = GridSpec(crs, lay.transform, lay.shape)
            self.shape = lay.shape
            self.cell_size_m = self.grid.cell_size_m
        elif is_lazy(obj):  # dask-backed: read by windows, never computed whole
            lay = _checked(DataArrayWindows(obj, "population"), "population")
            crs = require_projected(lay.crs, lay.path, "population", lay.bounds)
            self.grid = GridSpec(crs, lay.transform, lay.shape)
            self.shape = lay.shape
            self.cell_size_m = self.grid.cell_size_m
            self.inputs["population"] = _Input(lay, lay.path, True)
        elif _is_dataarray(obj):
            from ..ingest import as_dataarray

            da = as_dataarray(obj, "population")
            source = da.attrs.get("source")
            self.grid = GridSpec.from_dataarray(da, file=source, layer="population")
            self.shape = self.grid.shape
            self.cell_size_m = self.grid.cell_size_m
            self.inputs["population"] = _Input(
                ArrayLayer(np.asarray(da.values, dtype=np.float64)), source, True)
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
            self.inputs["population"] = _Input(
                ArrayLayer(np.asarray(arr, dtype=np.float64)), None, False)
        if self.grid is not None and cell_size_m is not None and not math.isclose(
                float(cell_size_m), self.cell_size_m, rel_tol=1e-9):
            raise InputError(self.inputs["population"].source, "population",
                             f"has cells of {self.cell_size_m:g} m, but cell_size_m="
                             f"{cell_size_m!r} was given")
        r = self.cell_size_m
        if not (MIN_CELL_SIZE_M <= r <= MAX_CELL_SIZE_M):
            raise InputError(None, "population",
                             f"cell size {r:g} m outside the 100 m .. 5 km nordic7 supports")

    def _open(self, name: str, obj: Any) -> _Input:
        from ..grid import GridSpec
        from ..ingest import DataArrayWindows, is_lazy
        from ..outofcore.ops import ArrayLayer

        if isinstance(obj, str | os.PathLike | _Band):
            lay = (_open_file(obj.path, name, obj.band) if isinstance(obj, _Band)
                   else _open_file(obj, name))
            if self.grid is None:  # an array population: only the shape is known
                same = lay.shape == self.shape
            else:  # the in-memory path's test for "no alignment needed"
                same = GridSpec(lay.crs, lay.transform, lay.shape).same_as(self.grid)
            if not same:
                lay.close()
                raise InputError(
                    lay.path, name,
                    "the tiled path needs every layer on the population's grid (same CRS, "
                    "transform and shape); align it first (pari_geo.align.align_to_grid) or "
                    "use pari_geo.typology.classify.classify_nordic7")
            return _Input(lay, lay.path, True)
        if is_lazy(obj):  # dask-backed: read by windows, never computed whole
            lay = DataArrayWindows(obj, name)
            if self.grid is None or not GridSpec(lay.crs, lay.transform,
                                                 lay.shape).same_as(self.grid):
                raise InputError(lay.path, name,
                                 "is not on the population's grid; align it first "
                                 "(pari_geo.align.align_to_grid)")
            return _Input(lay, lay.path or "<in-memory>", True)
        if _is_dataarray(obj):
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
            return _Input(ArrayLayer(np.asarray(da.values, dtype=np.float64)),
                          source or "<in-memory>", True)
        arr = np.asarray(obj)
        if arr.shape != self.shape:
            raise InputError(None, name, f"has shape {arr.shape}, population has {self.shape}")
        return _Input(ArrayLayer(np.asarray(arr, dtype=np.float64)), None, False)

    def close(self) -> None:
        for inp in self.inputs.values():
            close = getattr(inp.layer, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> _Inputs:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _landcover_mapping(mapping: Any) -> Any:
    if mapping in (None, "corine"):
        return corine_agri_mapping()
    if not isinstance(mapping, dict):
        raise ConfigError("landcover.mapping", f"must be 'corine' or a dict, got {mapping!r}")
    return mapping


# ---------------------------------------------------------------------------------------
# the per-cell pass: shares (converted, clipped), input checks
# ---------------------------------------------------------------------------------------
def _to_share(a: np.ndarray, *, scale: float) -> np.ndarray:
    """A share layer's values before clipping (m² divided by the cell area)."""
    return a / scale / scale if scale != 1.0 else a


def _share(a: np.ndarray, *, scale: float) -> np.ndarray:
    """The share 0..1 the rules read."""
    return np.clip(_to_share(a, scale=scale), 0.0, 1.0)


def _outside(a: np.ndarray, *, scale: float) -> np.ndarray:
    """Cells whose share is outside 0..1 (beyond a 1e-6 rounding allowance)."""
    v = _to_share(a, scale=scale)
    with np.errstate(invalid="ignore"):
        return (v < -1e-6) | (v > 1 + 1e-6)


def _agri(a: np.ndarray, *, mapping: dict[int, float]) -> np.ndarray:
    """Agricultural share of a land-cover window (NaN where the class is missing)."""
    ok = ~np.isnan(a)
    present = a[ok]
    agri = np.full(a.shape, np.nan)
    if present.size:
        agri[ok] = agri_share_from_landcover(present.astype(np.int64), mapping)
    return agri


def _agri_share(a: np.ndarray, *, mapping: dict[int, float]) -> np.ndarray:
    return np.clip(_agri(a, mapping=mapping), 0.0, 1.0)


def _agri_outside(a: np.ndarray, *, mapping: dict[int, float]) -> np.ndarray:
    return _outside(_agri(a, mapping=mapping), scale=1.0)


def _unknown(a: np.ndarray, *, keys: np.ndarray) -> np.ndarray:
    """Cells of a land-cover window whose class is missing from the mapping."""
    ok = ~np.isnan(a)
    out = np.zeros(a.shape, bool)
    out[ok] = ~np.isin(a[ok].astype(int), keys)
    return out


def _prepare_block(blocks: Mapping[str, np.ndarray], inner: tuple[slice, slice], *,
                   scale: dict[str, float], mapping: dict[int, float] | None
                   ) -> dict[str, np.ndarray]:
    """The shares read with a halo by the rules (built-up, agricultural), kept on disk."""
    out: dict[str, np.ndarray] = {}
    if "built" in blocks:
        out["built_share"] = _share(blocks["built"][inner], scale=scale.get("built", 1.0))
    if "agri" in blocks:
        out["agri_share"] = _share(blocks["agri"][inner], scale=1.0)
    elif "landcover" in blocks:
        assert mapping is not None
        out["agri_share"] = _agri_share(blocks["landcover"][inner], mapping=mapping)
    return out


def _ones(block: np.ndarray) -> np.ndarray:
    return np.ones(block.shape)


def _count(engine: Any, mask: Any) -> int:
    """Cells where the bool layer ``mask`` is True (error path)."""
    from ..outofcore.ops import MappedLayer

    return int(engine.masked_mean(MappedLayer(mask, _ones, np.float64), mask)[1])


def _landcover_agri_range(engine: Any, layer: Any, mapping: dict[int, float]
                          ) -> tuple[float, float]:
    """``[min, max]`` of the agricultural share a land-cover layer maps to (error path)."""
    from ..outofcore.ops import MappedLayer

    agri = MappedLayer(layer, partial(_agri, mapping=mapping), np.float64)
    lo_hi = engine.cell_map(_identity_block, {"a": agri}, {}, ranges=("a",)).ranges["a"]
    return float(lo_hi[0]), float(lo_hi[-1])


def _identity_block(blocks: Mapping[str, np.ndarray], inner: tuple[slice, slice]
                    ) -> dict[str, np.ndarray]:
    return {}


def _unknown_classes(layer: Any, mapping: dict[int, float], strip_cells: int) -> list[int]:
    """Land-cover classes missing from the mapping, read strip by strip (error path)."""
    from ..outofcore.components import iter_strips

    rows, cols = layer.shape
    keys = np.array(sorted(mapping), dtype=np.int64)
    found: set[int] = set()
    for s0, s1 in iter_strips((rows, cols), strip_cells):
        a = layer.read(s0, s1, 0, cols)
        present = a[~np.isnan(a)]
        if present.size:
            cls = np.unique(present).astype(int)
            found.update(int(u) for u in cls[~np.isin(cls, keys)])
    return sorted(found)


def _check(engine: Any, inputs: _Inputs, ranges: dict[str, np.ndarray],
           scale: dict[str, float], units: dict[str, str],
           mapping: dict[int, float] | None, n_units: int = 0) -> None:
    """The in-memory path's value checks, on the ``[min, max]`` of every input."""
    from ..ingest import check_counts, check_population, check_share
    from ..outofcore.ops import MappedLayer

    r = inputs.cell_size_m
    pop = inputs.inputs["population"]
    lo_hi = ranges["population"]
    if pop.is_file:
        check_population(lo_hi, pop.source, "population", (r / 1000.0) ** 2)
    elif lo_hi.size == 2 and lo_hi[0] < 0:
        raise InputError(None, "population", "has negative residents (nodata not set to NaN?)")
    for name, lname in _SHARES.items():
        inp = inputs.inputs.get(name)
        if inp is None:
            continue
        raw = ranges[name]
        if inp.is_file:
            check_share(raw, inp.source, name, units.get(name, "share"), r * r)
        if raw.size != 2:
            continue
        lo, hi = float(raw[0]), float(raw[1])
        if inp.is_file and units.get(name, "share") == "m2":
            lo, hi = lo / r / r, hi / r / r  # division by r is monotone: the same bits
        if lo < -1e-6 or hi > 1 + 1e-6:
            outside = MappedLayer(inp.layer, partial(_outside, scale=scale.get(name, 1.0)), bool)
            raise InputError(None, lname,
                             f"share outside 0..1 in {_count(engine, outside)} cells "
                             f"(min {lo:g}, max {hi:g}); give shares, not m²")
    inp = inputs.inputs.get("landcover")
    if inp is not None:
        assert mapping is not None
        keys = np.array(sorted(mapping), dtype=np.int64)
        if _count(engine, MappedLayer(inp.layer, partial(_unknown, keys=keys), bool)):
            unknown = _unknown_classes(inp.layer, mapping, engine.strip_cells
                                       if hasattr(engine, "strip_cells") else 1 << 20)
            raise InputError(inp.source, "landcover",
                             f"has classes missing from the agricultural mapping: {unknown[:10]}")
        weights = np.array(list(mapping.values()), dtype=np.float64)
        if ((weights < -1e-6) | (weights > 1 + 1e-6)).any():
            n_bad = _count(engine, MappedLayer(inp.layer, partial(_agri_outside,
                                                                  mapping=mapping), bool))
            if n_bad:
                lo, hi = _landcover_agri_range(engine, inp.layer, mapping)
                raise InputError(None, "agri_share",
                                 f"share outside 0..1 in {n_bad} cells (min {lo:g}, "
                                 f"max {hi:g}); give shares, not m²")
    for name in ("floor_area", "built_volume"):
        inp = inputs.inputs.get(name)
        if inp is not None:
            check_floor_area(ranges[name], inp.source, name, r * r)
    jobs_names = [k for k in inputs.inputs if k == "jobs" or k.startswith(SECTOR_PREFIX)]
    for name in jobs_names:
        check_counts(ranges[name], inputs.inputs[name].source, name)
    if jobs_names and all(ranges[k].size != 2 or np.isnan(ranges[k]).all()
                          for k in jobs_names):
        raise InputError(inputs.inputs[jobs_names[0]].source, "jobs",
                         "has no data (every cell is no-data/NaN)")
    if "unit_id" in inputs.inputs and ranges["unit_id"].size == 2:
        check_unit_ids(ranges["unit_id"], n_units, inputs.inputs["unit_id"].source)
    for name in ("service_minutes", "speed_kmh"):
        inp = inputs.inputs.get(name)
        if inp is None:
            continue
        if inp.is_file:
            check_counts(ranges[name], inp.source, name)
        if name == "service_minutes" and ranges[name].size == 2 and ranges[name][0] < 0:
            raise InputError(None, "service_minutes", "has negative minutes")


# ---------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------
def _roads_layer(roads: Any, inputs: _Inputs, layers: Mapping[str, Any]) -> Any:
    """The speed raster of ``roads`` on the population's grid, as a layer."""
    from ..outofcore.ops import ArrayLayer, read_all
    from ..preparation.roads import roads_speed

    if inputs.grid is None:
        raise InputError(None, "roads", "needs a georeferenced population (a raster file or "
                         "a DataArray) to burn the roads on")
    pop = read_all(layers["population"])
    land = read_all(layers["land_share"]) if "land_share" in layers else None
    return ArrayLayer(roads_speed(roads, inputs.grid, pop, land_share=land))


def _jobs_inputs(jobs: Any, names: Any = None) -> dict[str, Any]:
    """The jobs input(s): one layer, or one per sector (the bands of a raster file, the
    first axis of a 3-D array or DataArray)."""
    if jobs is None:
        return {}
    if isinstance(jobs, str | os.PathLike):
        from ..ingest import RasterWindows

        with RasterWindows(jobs, "jobs") as lay:
            count = lay.count
            desc = [d or f"sector_{i + 1}" for i, d in enumerate(lay.dataset.descriptions)]
        if count < 2:
            return {"jobs": jobs}
        names = desc if names is None else names
        parts: list[Any] = [_Band(jobs, i + 1) for i in range(count)]
    elif np.ndim(jobs) == 3:
        parts = [jobs[i] for i in range(np.shape(jobs)[0])]
        if names is None:
            names = [f"sector_{i + 1}" for i in range(len(parts))]
    else:
        return {"jobs": jobs}
    names = [str(n) for n in names]
    if len(names) != len(parts) or len(set(names)) != len(names):
        raise InputError(None, "jobs", f"has {len(parts)} sectors but job_sectors names "
                         f"{len(names)} (distinct names, one per sector)")
    if len(parts) == 1:
        return {"jobs": parts[0]}
    return {SECTOR_PREFIX + n: part for n, part in zip(names, parts, strict=True)}


class _Band:
    """Band ``band`` of a raster file, as a jobs input (see :func:`_jobs_inputs`)."""

    def __init__(self, path: Any, band: int) -> None:
        self.path, self.band = path, band


def _sum_block(blocks: Mapping[str, np.ndarray], inner: tuple[slice, slice]
               ) -> dict[str, np.ndarray]:
    """Total jobs of the sector layers (NaN where every sector is missing)."""
    parts = [blocks[k][inner] for k in sorted(blocks)]
    stack = np.stack(parts)
    known = np.isfinite(stack)
    total = np.where(known, stack, 0.0).sum(axis=0)
    return {"jobs": np.where(known.any(axis=0), total, np.nan)}


def _jobs_layers(engine: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    """``jobs`` (total) and the ``jobs_sector:`` layers the rules read."""
    sectors = {k: v for k, v in given.items() if k.startswith(SECTOR_PREFIX)}
    if not sectors:
        return {"jobs": given["jobs"]} if "jobs" in given else {}
    total = engine.cell_map(_sum_block, sectors, {"jobs": np.float64}).layers["jobs"]
    return {"jobs": total, **sectors}


def _tags(params: Nordic7Params, metadata: dict[str, Any], sources: dict[str, Any],
          tile_shape: tuple[int, int]) -> dict[str, str]:
    """Tags the in-memory path writes (``write_class_raster`` of ``classify_nordic7``)."""
    from .._version import __version__
    from ..io_write import class_tags

    attrs = {
        "typology": "nordic7",
        "parameters": json.dumps(params.to_dict(), sort_keys=True),
        "parameters_hash": params.hash(),
        "layers_used": json.dumps(sorted(metadata["layers_used"])),
        "layers_fallback": json.dumps(metadata["layers_fallback"], sort_keys=True),
        "service_minutes_computed": str(bool(metadata["service_minutes_computed"])),
        "rules": json.dumps(metadata["rules"], sort_keys=True),
        "inputs": json.dumps({k: str(v) for k, v in sources.items()}, sort_keys=True),
        "class_names": json.dumps({str(k): v for k, v in NORDIC7.names.items()}),
        "class_colours": json.dumps({str(k): v for k, v in NORDIC7.colours.items()}),
        "pari_geo_version": __version__,
    }
    tags = {k.upper(): v for k, v in attrs.items()}
    tags.update(class_tags(NORDIC7))
    tags["OUT_OF_CORE"] = json.dumps({"module": _TAG_MODULE, "tile_shape": list(tile_shape)})
    return tags


def _sources(inputs: _Inputs, objs: dict[str, Any]) -> dict[str, Any]:
    """The ``inputs`` record of the in-memory ``classify_nordic7`` (paths, DataArray sources)."""
    sources: dict[str, Any] = {"population": inputs.inputs["population"].source}
    for name in ("built", "land", "agri", "landcover", "commuting", "service_minutes",
                 "speed_kmh", "floor_area", "built_volume", "jobs"):
        obj = objs.get(name)
        if isinstance(obj, str | os.PathLike):
            sources[name] = str(obj)
        elif obj is not None and hasattr(obj, "attrs"):
            sources[name] = obj.attrs.get("source", "<in-memory>")
    if objs.get("commuting_od") is not None:
        sources["commuting_od"] = str(objs["commuting_od"])
    if objs.get("roads") is not None:
        sources["roads"] = str(getattr(objs["roads"], "path", objs["roads"]))
    return sources


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
    floor_area: Any = None,
    built_volume: Any = None,
    jobs: Any = None,
    job_sectors: Any = None,
    roads: Any = None,
    commuting_od: Any = None,
    unit_ids: Any = None,
    units: Any = None,
    units_id: str | None = None,
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
    tile plus a halo of a few float64 layers and per-component tables are held at a time.

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
    floor_area, built_volume : optional
        m² of floor, or m³ of buildings, per cell (SYKE's inner/outer rules).
    jobs : optional
        Workplaces per cell; a raster file with several bands is read as one sector per
        band (the band descriptions name them), and a 3-D array as one sector per first
        index; their sum is the total.
    job_sectors : sequence of str, optional
        Sector names (default: the band descriptions, or ``sector_1`` ...).
    commuting_od, unit_ids : optional
        Commuting between units (a :class:`~pari_geo.typology.nordic7.CommutingOD`) and
        the unit index of each cell (an array or raster on the population's grid), as in
        ``classify_nordic7_array``; instead of ``commuting``. ``commuting_od`` may also be
        a table (path or DataFrame) with ``units`` and ``units_id``, as in
        ``classify_nordic7`` (the units are rasterised in memory, 8 bytes per cell).
    units, units_id : optional
        The units an OD table names, and their id column.
    roads : path or Roads, optional
        A road network burned into the speed raster, as in ``classify_nordic7`` (the
        raster is built in memory, 8 bytes per cell, from the population's missing cells
        and the land share).
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
        Run the per-cell passes and the tile labelling of every component search as dask
        tasks, one per band of tiles, on this cluster (an address such as
        ``"tcp://host:8786"``, or a client). Every layer must then be a file, and the
        files and ``workdir`` on storage every worker sees at the same path. The rest
        (seams, numbering, travel time, the write) runs in this process; the result is
        byte-identical to the run without a scheduler. A task that cannot be completed
        raises :class:`~pari_geo.errors.SchedulerError` and no output is written.
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
    from ..ingest import DataArrayWindows, RasterWindows, read_env
    from ..io_write import check_output, metadata_tags, scratch_dir
    from ..outofcore._writer import ClassRasterWriter
    from ..outofcore.components import check_tile_shape, iter_tiles
    from ..outofcore.ops import MappedLayer, read_all
    from ..outofcore.tiled import TiledEngine
    from ..scheduler import task_runner

    if params is None or isinstance(params, str):
        params = Nordic7Params.from_preset(params or "nordic7")
    elif not isinstance(params, Nordic7Params):
        raise ConfigError("params", f"must be a Nordic7Params or a preset name, got {params!r}")
    p = params.replace(**overrides) if overrides else params
    share_units = {"built": built_unit, "land": land_unit}
    for name, unit in share_units.items():
        if unit not in ("m2", "share"):
            raise ConfigError(f"{name}_unit", f"must be 'm2' or 'share', got {unit!r}")
    try:
        tile_shape = check_tile_shape(tile_shape)
    except ValueError as err:
        raise ConfigError("tile_shape", str(err)) from None
    mapping = None
    if agri is None and landcover is not None:
        mapping = _landcover_mapping(landcover_mapping)
    scalar_speed: float | None = None
    if speed_kmh is not None and not isinstance(speed_kmh, str | os.PathLike) and not \
            _is_dataarray(speed_kmh) and np.ndim(speed_kmh) == 0:
        scalar_speed = float(speed_kmh)
        speed_kmh = None
    if service_minutes is not None and not isinstance(service_minutes, str | os.PathLike) \
            and not _is_dataarray(service_minutes) and np.ndim(service_minutes) == 0:
        raise InputError(None, "service_minutes", "must be a grid (file or array), "
                         f"got the number {service_minutes!r}")
    if roads is not None and (speed_kmh is not None or scalar_speed is not None):
        raise ConfigError("roads", "give roads or speed_kmh, not both (the roads make the "
                          "speed raster)")
    if out_path is not None:
        out_path = Path(out_path)
        check_output(out_path, overwrite)
    others = {"built": built, "land": land, "agri": agri,
              "landcover": landcover if agri is None else None, "commuting": commuting,
              "service_minutes": service_minutes, "speed_kmh": speed_kmh,
              "floor_area": floor_area,
              "built_volume": built_volume if floor_area is None else None}
    others.update(_jobs_inputs(jobs, job_sectors))
    od_source = commuting_od if isinstance(commuting_od, str | os.PathLike) else (
        None if commuting_od is None else "<in-memory>")
    if commuting_od is not None and not isinstance(commuting_od, CommutingOD):
        from ..grid import GridSpec
        from .commuting import od_on_grid

        if _is_dataarray(population) or isinstance(population, str | os.PathLike):
            from ..ingest import RasterWindows

            if _is_dataarray(population):
                g = GridSpec.from_dataarray(population, layer="population")
            else:
                with RasterWindows(population, "population") as lay:
                    g = GridSpec(lay.crs, lay.transform, lay.shape)
        else:
            raise InputError(None, "commuting_od", "a table needs a georeferenced population "
                             "to put the units on; give a CommutingOD and unit_ids")
        commuting_od, unit_ids = od_on_grid(commuting_od, units, units_id, g,
                                            commuting is not None)
    if commuting_od is not None:
        if commuting is not None:
            raise InputError(None, "commuting_od", "give commuting or an OD table, not both")
        if unit_ids is None:
            raise InputError(None, "commuting_od", "needs unit_ids, the unit index of each "
                             "cell")
        others["unit_id"] = unit_ids
    if workdir is not None:
        base: Path | None = Path(workdir)
        base.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
    elif out_path is not None:
        base = out_path.parent
    else:
        base = None

    with _Inputs(population, others, cell_size_m) as inputs, read_env(), \
            scratch_dir(".pari_geo_n7_", base) as tmpdir, \
            task_runner(scheduler) as run_tasks:
        if out_path is not None and inputs.grid is None:
            raise InputError(None, "population", "out_path needs a georeferenced population "
                             "(a raster file or a DataArray), not a bare array")
        if scheduler is not None:
            missing = [name for name, inp in inputs.inputs.items()
                       if not isinstance(inp.layer, RasterWindows | DataArrayWindows)]
            if missing:
                raise ConfigError("scheduler", "the workers read every layer from a file; "
                                  f"{', '.join(missing)} "
                                  f"{'is' if len(missing) == 1 else 'are'} "
                                  "in memory (write it to shared storage first)", what="option")
        shape = inputs.shape
        r = inputs.cell_size_m
        engine = TiledEngine(shape, tile_shape, tmpdir, None if scheduler is None else run_tasks)
        given = {name: inp.layer for name, inp in inputs.inputs.items()}
        scale = {k: r for k, inp in inputs.inputs.items()
                 if k in ("built", "land") and inp.is_file and share_units[k] == "m2"}
        outputs: dict[str, Any] = {}
        if "built" in given:
            outputs["built_share"] = np.float64
        if "agri" in given or "landcover" in given:
            outputs["agri_share"] = np.float64
        # one pass over every input: each input's [min, max], and the shares the rules
        # read with a halo; the others are converted as they are read
        res = engine.cell_map(partial(_prepare_block, scale=scale, mapping=mapping), given,
                              outputs, ranges=tuple(given))
        ranges = dict(res.ranges)
        _check(engine, inputs, ranges, scale, share_units, mapping,
               0 if commuting_od is None else len(commuting_od.codes))
        shares = dict(res.layers)
        for name in ("land", "commuting"):
            if name in given:
                shares[_SHARES[name]] = MappedLayer(
                    given[name], partial(_share, scale=scale.get(name, 1.0)), np.float64)

        layers: dict[str, Any] = {"population": given["population"], **shares}
        for name in ("service_minutes", "floor_area", "built_volume", "unit_id"):
            if name in given:
                layers[name] = given[name]
        layers.update(_jobs_layers(engine, given))
        speed: Any = scalar_speed if scalar_speed is not None else given.get("speed_kmh")
        if roads is not None:
            speed = _roads_layer(roads, inputs, layers)
        run = run_rules(engine, layers, cell_size_m=r, params=p, speed_kmh=speed,
                        commuting_od=commuting_od)

        have = {"population": True, "built_share": "built" in given,
                "land_share": "land" in given,
                "agri_share": "agri" in given or "landcover" in given,
                "commuting_share": "commuting" in given or commuting_od is not None,
                "service_minutes": "service_minutes" in given,
                "speed_kmh": "speed_kmh" in given or scalar_speed is not None or
                roads is not None,
                "floor_area": "floor_area" in given or "built_volume" in given,
                "jobs": "jobs" in layers}
        layers_used = [k for k in LAYERS if have[k]]
        layers_fallback = {k: FALLBACKS[k] for k in LAYERS[1:] if not have[k]}

        writer = None
        codes_mem = None
        if out_path is not None:
            metadata0 = {"layers_used": layers_used, "layers_fallback": layers_fallback,
                         "service_minutes_computed": run.service_minutes_computed,
                         "rules": rules_applied(run, layers)}
            tags = _tags(p, metadata0, _sources(inputs, {**others, "landcover": landcover,
                                                          "jobs": jobs, "roads": roads,
                                                          "commuting_od": od_source}),
                         tile_shape)
            tags.update(metadata_tags(extra_tags or {}))
            writer = ClassRasterWriter(out_path, Path(tmpdir), inputs.grid, NORDIC7, tags,
                                       "place_types.tif")
        else:
            tags = {}
        cells = np.zeros(256, np.int64)
        residents = np.zeros(256, np.float64)
        for r0, r1, c0, c1 in iter_tiles(shape, tile_shape):  # the former final pass's sums
            out = run.codes.read(r0, r1, c0, c1)
            cells += np.bincount(out.ravel(), minlength=256)
            residents += np.bincount(out.ravel(), weights=run.pop0.read(r0, r1, c0, c1).ravel(),
                                     minlength=256)
        try:
            if writer is not None:
                engine.write_classes(run.codes, writer)
                path = writer.finish(overwrite)
            else:
                path = None
                codes_mem = np.array(read_all(run.codes), dtype=np.uint8)
        finally:
            if writer is not None:
                writer.close()
        class_cells = {c: int(cells[c]) for c in _CODES}
        metadata = {
            "typology": "nordic7",
            "layers_used": layers_used,
            "layers_fallback": layers_fallback,
            "params": p.to_dict(),
            "cell_size_m": r,
            "cell_area_km2": run.cell_area_km2,
            "windows": dict(run.windows),
            "core_max_gap_cells": run.core_max_gap_cells,
            "n_cores": int(run.n_cores),
            "service_minutes_computed": run.service_minutes_computed,
            "rules": rules_applied(run, layers),
            "job_sectors": [k[len(SECTOR_PREFIX):] for k in layers
                            if k.startswith(SECTOR_PREFIX)],
            "commuting_from_od": commuting_od is not None,
            "core_units": run.stats.get("core_units", []),
            "class_cells": class_cells,
            "class_residents": {c: float(residents[c]) for c in _CODES},
        }
        stats = {**engine.stats, **run.stats}
        return Nordic7TiledResult(path, codes_mem, shape, tile_shape, class_cells, metadata,
                                  tags, stats)
