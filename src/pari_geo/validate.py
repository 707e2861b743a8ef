"""``pari-geo validate``: check a run file and print its plan, without computing anything.

Every input is opened for its metadata only (rasters: CRS, grid, extent; vectors: CRS,
features, columns, extent): each must be readable, georeferenced and overlap the
population grid, and the columns the run file names must exist. The plan says which
layers are on the population grid and which will be aligned, the engine the run would use
with its memory estimate and budget, the outputs and the cluster scales.

Examples
--------
>>> from pari_geo.datasets import copy_example
>>> from pari_geo.runconfig import load_run
>>> import tempfile
>>> run = load_run(copy_example("ostergotland", tempfile.mkdtemp() + "/ex"))
>>> plan = validate_run(run)
>>> plan["engine"], plan["grid"]["shape"], plan["layers"]["agri"]["on_grid"]
('memory', (145, 155), True)
>>> plan["vectors"]["actors"]["features"]
20000
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import InputError
from .ingest import RasterWindows, first_line
from .runconfig import RunConfig

__all__ = ["validate_run", "format_plan"]

_VECTOR_LAYERS = ("units", "actors", "roads")
#: tables (not georeferenced): read for their columns only
_TABLE_LAYERS = ("commuting_od",)
# run-file key of each column a vector layer names, as attribute of LayerInput
_COLUMNS = {"units": ("id", "region", "country"), "actors": ("sector", "social"),
            "roads": ("class_column", "speed_column")}
_OSM_SUFFIXES = (".pbf", ".osm", ".osm.bz2", ".osm.gz", ".o5m")


def _raster_info(path: Path, layer: str) -> dict[str, Any]:
    if not path.exists():
        raise InputError(str(path), layer, "file does not exist")
    with RasterWindows(path, layer) as src:  # the ingest stage's reader: one-line errors
        if src.crs is None:
            raise InputError(str(path), layer, "has no CRS")
        return {"crs": src.crs, "transform": src.transform, "shape": src.shape,
                "bounds": src.bounds, "res": src.res, "dtype": str(src.file_dtype),
                "nodata": src.nodata, "tags": src.tags()}


def _vector_info(path: Path, layer: str, sublayer: str | None) -> dict[str, Any]:
    import pyogrio

    if not path.exists():
        raise InputError(str(path), layer, "file does not exist")
    try:
        info = pyogrio.read_info(path, layer=sublayer)
    except Exception as err:  # noqa: BLE001 - pyogrio raises several error types
        raise InputError(str(path), layer, f"cannot be read as vector data "
                         f"({first_line(err)})") from None
    if not info.get("crs"):
        raise InputError(str(path), layer, "has no CRS")
    return {"crs": info["crs"], "features": int(info["features"]),
            "columns": [str(c) for c in info["fields"]],
            "bounds": tuple(float(v) for v in info["total_bounds"])}


def _crs_name(crs: Any) -> str:
    """``EPSG:3006`` / ``ESRI:54009`` when the CRS has an authority code, else its name."""
    from pyproj import CRS

    c = CRS.from_user_input(crs)
    auth = c.to_authority(min_confidence=70)
    return ":".join(auth) if auth else c.name


def _overlaps(bounds, crs, grid: dict[str, Any]) -> bool:
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(crs, grid["crs"], *bounds, densify_pts=21)
    g_left, g_bottom, g_right, g_top = grid["bounds"]
    return left < g_right and right > g_left and bottom < g_top and top > g_bottom


def validate_run(cfg: RunConfig, execution: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check every input of a run and return its plan (nothing is computed or written).

    Parameters
    ----------
    cfg : RunConfig
        A loaded run file (:func:`pari_geo.runconfig.load_run`).
    execution : dict, optional
        Command-line execution options (as for ``run_classification``).

    Returns
    -------
    dict
        ``grid`` (CRS, shape, cell size of the population raster), ``layers`` (each raster:
        file, CRS, shape, ``on_grid``), ``vectors`` (features, columns), ``engine``,
        ``tile``, ``scheduler``, ``memory_estimate`` and ``memory_budget`` (bytes),
        ``out_dir``, ``clusters`` and ``synthetic`` (inputs marked as synthetic data).

    Raises
    ------
    InputError
        A file that is missing, unreadable, without CRS, outside the population grid, or
        a named column that is missing.
    """
    from .memory import default_budget
    from .pipeline import execution_plan
    from .typology import registry

    cfg = cfg.with_execution(execution)
    file = str(cfg.source)
    pop = cfg.inputs["population"]
    grid = _raster_info(pop.path, "population")
    layers: dict[str, Any] = {}
    synthetic: dict[str, str] = {}
    for key, layer in sorted(cfg.inputs.items()):
        if key in _VECTOR_LAYERS or key in _TABLE_LAYERS:
            continue
        info = grid if key == "population" else _raster_info(layer.path, key)
        if key != "population" and not _overlaps(info["bounds"], info["crs"], grid):
            raise InputError(str(layer.path), key, "does not overlap the population grid")
        on_grid = (info["crs"] == grid["crs"] and info["transform"] == grid["transform"]
                   and info["shape"] == grid["shape"])
        layers[key] = {"file": str(layer.path), "crs": _crs_name(info["crs"]),
                       "shape": info["shape"], "cell_size": float(abs(info["res"][0])),
                       "on_grid": bool(on_grid)}
        note = str(info["tags"].get("DESCRIPTION", ""))
        if "SYNTHETIC" in note.upper():
            synthetic[key] = note
    vectors: dict[str, Any] = {}
    for key in _TABLE_LAYERS:
        if key in cfg.inputs:
            from .ingest import open_commuting_od

            table = open_commuting_od(cfg.inputs[key].path)  # one-line errors
            vectors[key] = {"file": str(cfg.inputs[key].path), "crs": None,
                            "features": len(table), "columns": list(table.columns)}
    for key in _VECTOR_LAYERS:
        if key not in cfg.inputs:
            continue
        layer = cfg.inputs[key]
        if key == "roads" and str(layer.path).lower().endswith(_OSM_SUFFIXES):
            from .ingest import check_file

            check_file(layer.path, key)
            vectors[key] = {"file": str(layer.path), "crs": "EPSG:4326", "features": None,
                            "columns": ["highway"]}
            continue
        info = _vector_info(layer.path, key, layer.layer)
        for attr in _COLUMNS[key]:
            col = getattr(layer, attr, None)
            if col is not None and col not in info["columns"]:
                raise InputError(str(layer.path), key,
                                 f"has no column {col!r} (inputs.{key}.{attr} in {file}); "
                                 f"columns: {', '.join(info['columns'])}")
        if key == "roads" and layer.speed_column is None and (
                layer.class_column or "highway") not in info["columns"]:
            raise InputError(str(layer.path), key, f"has no column "
                             f"{layer.class_column or 'highway'!r} (set inputs.roads."
                             f"class_column or speed_column in {file}; columns: "
                             f"{', '.join(info['columns'])})")
        if key == "units" and layer.id is None and "UID" not in info["columns"]:
            raise InputError(str(layer.path), key, f"has no column 'UID'; set inputs.units.id "
                             f"in {file} (columns: {', '.join(info['columns'])})")
        if info["features"] and not _overlaps(info["bounds"], info["crs"], grid):
            raise InputError(str(layer.path), key, "does not overlap the population grid")
        vectors[key] = {"file": str(layer.path), "crs": _crs_name(info["crs"]),
                        "features": info["features"], "columns": info["columns"]}
    engine, tile, scheduler = execution_plan(cfg)
    cells = grid["shape"][0] * grid["shape"][1]
    budget = cfg.execution.get("max_memory") or default_budget()
    return {
        "run_file": file,
        "typology": cfg.typology,
        "grid": {"crs": _crs_name(grid["crs"]), "shape": grid["shape"],
                 "cell_size": float(abs(grid["res"][0])), "cells": cells},
        "layers": layers,
        "vectors": vectors,
        "engine": engine,
        "tile": tile,
        "scheduler": scheduler,
        "memory_estimate": int(cells * registry.get(cfg.typology).bytes_per_cell),
        "memory_budget": int(budget),
        "out_dir": str(cfg.out_dir),
        "out_dir_exists": cfg.out_dir.exists(),
        "clusters": cfg.clusters,
        "synthetic": synthetic,
    }


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def format_plan(plan: dict[str, Any]) -> list[str]:
    """The plan of :func:`validate_run` as lines for the terminal.

    Examples
    --------
    >>> _size(3 * 1024**2)
    '3.0 MiB'
    """
    g = plan["grid"]
    lines = [f"{plan['run_file']}: valid ({plan['typology']}); nothing was computed",
             f"  grid: {g['shape'][0]} x {g['shape'][1]} cells of {g['cell_size']:g} "
             f"({g['crs']})"]
    for key, info in plan["layers"].items():
        where = "on the grid" if info["on_grid"] else (
            f"aligned from {info['shape'][0]} x {info['shape'][1]} cells of "
            f"{info['cell_size']:g} ({info['crs']})")
        lines.append(f"  {key:<16} {where}: {info['file']}")
    for key, info in plan["vectors"].items():
        if info["crs"] is None:  # a table
            what = f"{info['features']:,} rows"
        elif info["features"] is None:  # an OpenStreetMap extract (read when run)
            what = "OpenStreetMap extract"
        else:
            what = f"{info['features']:,} features ({info['crs']})"
        lines.append(f"  {key:<16} {what}: {info['file']}")
    engine = plan["engine"] + (f", tiles {plan['tile'][0]}x{plan['tile'][1]}"
                               if plan["engine"] == "tiled" else "")
    if plan["scheduler"]:
        engine += f", dask scheduler {plan['scheduler']}"
    lines.append(f"  engine: {engine}; memory estimate {_size(plan['memory_estimate'])} "
                 f"in memory (budget {_size(plan['memory_budget'])})")
    c = plan["clusters"]
    if c:
        lines.append(f"  clusters: scales {', '.join(f'{e:g} m' for e in c['eps_m'])}, "
                     f"min_actors {c['min_actors']}, n_sim {c['n_sim']}")
    out = plan["out_dir"] + (" (exists: needs --overwrite)" if plan["out_dir_exists"] else "")
    lines.append(f"  outputs: {out}")
    if plan["synthetic"]:
        lines.append(f"  synthetic data: {', '.join(sorted(plan['synthetic']))} "
                     "(outputs are marked as made from synthetic inputs)")
    return lines
