"""DEGURBA by tiles into a COG: the rules of :mod:`.degurba` on the tiled engine.

:func:`classify_grid_chunked` gives the same ``uint8`` class raster, cell for cell, as
:func:`pari_geo.typology.degurba.classify_grid` and writes it as the same COG (colour
table, metadata tags), plus an ``OUT_OF_CORE`` tag. The rules are
:func:`~pari_geo.typology.degurba.classify_layers`, run on a
:class:`~pari_geo.outofcore.tiled.TiledEngine` (whose docstring says how every operation
stays exact); the inputs are read by windows with :class:`pari_geo.ingest.RasterWindows`
and checked on their ``[min, max]`` during the per-cell pass, as the in-memory lean path
checks them.

Memory: one tile or strip of a few float64 layers; per-component tables (while a search
labels: about 16 bytes per provisional component, i.e. per component and tile it touches,
plus 52 per component; afterwards only a 1- or 4-byte composite table per provisional
component is kept for each search that the output still needs); the smoothing windows (7
bytes per cell of a window; a window spans a group of neighbouring centres). Disk: about
8 (population) + 2 (tests) + 1 (centres) + 4 per distinct cluster search bytes per cell
(3 searches with the default parameters: 23 bytes per cell), plus a float64 layer per
smoothed population (level 1) and the uncompressed uint8 result before the COG copy.
See ``benchmarks/out_of_core/README.md`` for measured time and memory.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..classes import check_nodata, degurba_scheme
from ..config import DegurbaParams
from ..errors import ConfigError, InputError

__all__ = ["classify_grid_chunked", "ChunkedResult"]

#: the ``OUT_OF_CORE`` tag names the module that wrote tiled rasters before the engines
#: were split from the rules; kept as it was so that outputs stay byte-identical
_TAG_MODULE = "pari_geo.outofcore.degurba"
_NAMES = ("population", "built", "land")

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


def _open_inputs(population: Any, built: Any, land: Any
                 ) -> tuple[list[Any], Any, list[str | None]]:
    """The three layers as window readers (float64, NaN = no data) on one identical grid.

    Files are read with :class:`~pari_geo.ingest.RasterWindows`, DataArrays (numpy- or
    dask-backed, never computed whole) with :class:`~pari_geo.ingest.DataArrayWindows`.
    Returns the readers, the grid and each layer's source (path, or a DataArray's
    ``source`` attribute) for messages and tags.
    """
    from ..grid import GridSpec, check_transform, require_projected
    from ..ingest import DataArrayWindows, RasterWindows

    xr = sys.modules.get("xarray")
    for x, name in zip((population, built, land), _NAMES, strict=True):
        if not isinstance(x, str | os.PathLike) and not (
                xr is not None and isinstance(x, xr.DataArray)):
            raise InputError(None, name, "the tiled engine reads files or DataArrays: pass a "
                             f"path or an xarray.DataArray, got {type(x).__name__}")
        if isinstance(x, str | os.PathLike) and not os.path.isfile(x):
            raise InputError(str(x), name, "file not found")
    layers: list[Any] = []
    try:
        for x, name in zip((population, built, land), _NAMES, strict=True):
            layers.append(RasterWindows(x, name, as_float=True)
                          if isinstance(x, str | os.PathLike) else DataArrayWindows(x, name))
        crs, transform, shape = layers[0].crs, layers[0].transform, layers[0].shape
        for lay, name in zip(layers, _NAMES, strict=True):
            if lay.crs != crs or lay.transform != transform or lay.shape != shape:
                raise InputError(
                    lay.path, name,
                    "the tiled engine needs the three layers on one identical grid "
                    "(same CRS, transform and shape as the population); align them "
                    "first (pari_geo.align.align_to_grid) or classify in memory "
                    "(classify_grid(..., engine='memory'))")
            check_transform(lay.transform, lay.path, name)
        grid = GridSpec(require_projected(crs, layers[0].path, "population",
                                          layers[0].bounds), transform, shape)
    except BaseException:
        for lay in layers:
            lay.close()
        raise
    return layers, grid, [None if lay.path is None else str(lay.path) for lay in layers]


def _check_shippable(layers: list[Any]) -> None:
    """With a scheduler every task reads its own windows: files, or dask graphs (a
    numpy-backed DataArray would be copied whole into every task)."""
    from ..ingest import DataArrayWindows

    in_memory = [name for lay, name in zip(layers, _NAMES, strict=True)
                 if isinstance(lay, DataArrayWindows) and not lay.lazy]
    if in_memory:
        for lay in layers:
            lay.close()
        raise ConfigError("scheduler", "the workers read every layer from a file or a dask "
                          f"array; {', '.join(in_memory)} "
                          f"{'is' if len(in_memory) == 1 else 'are'} in memory (write it "
                          "to shared storage, or chunk it with .chunk())", what="option")


def _range_check(grid: Any, paths: list[str | None], units: tuple[str, str]):
    """The in-memory lean path's value checks, on the ``[min, max]`` of each input."""

    def check(ranges) -> None:
        from ..grid import GridSpec
        from ..ingest import check_counts, check_layer_values, check_share

        r = grid.cell_size_m
        for path, name in zip(paths, _NAMES, strict=True):
            summary = ranges[name]
            probe = GridSpec(grid.crs, grid.transform,
                             (1, summary.size)).to_dataarray(summary.reshape(1, -1), name=name)
            check_layer_values(probe, path, name)
            if name == "population":
                check_counts(summary, path, name)
            else:
                check_share(summary, path, name, units[0] if name == "built" else units[1],
                            r * r)
    return check


def _tags(params, level, info, scheme, sources, units, tile_shape) -> dict[str, str]:
    """Tags of the in-memory path (``write_class_raster`` of ``classify_grid``'s attrs)."""
    from .._version import __version__
    from ..io_write import class_tags

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
    tags["OUT_OF_CORE"] = json.dumps({"module": _TAG_MODULE, "tile_shape": list(tile_shape)})
    tags.update(class_tags(scheme))
    return tags


def classify_grid_chunked(
    population: str | os.PathLike | Any,
    built: str | os.PathLike | Any,
    land: str | os.PathLike | Any,
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
    nodata: int | None = None,
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
    population, built, land : path-like or xarray.DataArray
        Rasters on one identical grid (same CRS, transform and shape), in a projected CRS
        in metres. Tiled GeoTIFFs with blocks dividing ``tile_shape`` read fastest. A
        DataArray is read window by window and never computed whole: a dask-backed one
        (``rioxarray.open_rasterio(path, chunks=...)``, a zarr store) streams through the
        engine as a file does.
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
    nodata : int, optional
        Code of the cells whose population is missing, the output's no-data value (see
        :func:`~pari_geo.typology.degurba.classify_grid`).
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
    from ..ingest import read_env
    from ..io_write import check_output, metadata_tags, scratch_dir
    from ..outofcore._writer import ClassRasterWriter
    from ..outofcore.components import check_tile_shape
    from ..outofcore.tiled import TiledEngine
    from ..scheduler import task_runner
    from ._degurba_inputs import _load_inputs
    from .degurba_rules import classify_layers, memory_optimal, output_codes

    if level not in (1, 2):
        raise ConfigError("level", f"must be 1 or 2, got {level!r}")
    if isinstance(params, str):
        params = DegurbaParams.from_preset(params)
    params = (params or DegurbaParams()).replace(**overrides)
    for name, unit in (("built_unit", built_unit), ("land_unit", land_unit)):
        if unit not in ("m2", "share"):
            raise ConfigError(name, f"must be 'm2' or 'share', got {unit!r}")
    try:
        tile_shape = check_tile_shape(tile_shape)
    except ValueError as err:
        raise ConfigError("tile_shape", str(err)) from None
    codes = output_codes(params, level)
    nodata = check_nodata(nodata, codes)
    out_path = Path(out_path)
    check_output(out_path, overwrite)
    units = (built_unit, land_unit)
    base = Path(workdir) if workdir is not None else out_path.parent
    base.mkdir(parents=True, exist_ok=True)
    layers, grid, paths = _open_inputs(population, built, land)
    if scheduler is not None:
        _check_shippable(layers)
    try:
        with read_env(), scratch_dir(".pari_geo_ooc_", base) as tmpdir, \
                task_runner(scheduler) as run_tasks:
            crop = 0
            if buffer_m:
                crop = int(round(buffer_m / grid.cell_size_m))
                if crop > 0 and 2 * crop >= min(grid.shape):
                    raise ConfigError("buffer_m", f"{buffer_m} m crops away the whole grid")
                crop = max(crop, 0)
            engine = TiledEngine(grid.shape, tile_shape, tmpdir,
                                 None if scheduler is None else run_tasks)
            optimal = None
            if built_optimal_data is not None:
                _, opt, _ = _load_inputs(*built_optimal_data, *units)
                optimal = memory_optimal(opt)
            inputs = dict(zip(_NAMES, layers, strict=True))
            out, info = classify_layers(engine, inputs, params, level,
                                        cell_size_m=grid.cell_size_m, units=units,
                                        optimal=optimal,
                                        check=_range_check(grid, paths, units),
                                        nodata=nodata)
            scheme = degurba_scheme(level, codes, nodata)
            tags = _tags(params, level, info, scheme, dict(zip(_NAMES, paths, strict=True)),
                         units, tile_shape)
            tags.update(metadata_tags(extra_tags or {}))
            writer = ClassRasterWriter(out_path, Path(tmpdir), grid, scheme, tags,
                                       "classes.tif", crop)
            try:
                engine.write_classes(out, writer)
                path = writer.finish(overwrite)
            finally:
                writer.close()
            counts = {int(c): int(writer.counts[c]) for c in np.flatnonzero(writer.counts)}
            return ChunkedResult(path, level, writer.out_shape, tile_shape, counts, info,
                                 tags, engine.stats)
    finally:
        for lay in layers:
            lay.close()
