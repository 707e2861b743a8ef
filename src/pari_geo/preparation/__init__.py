"""From open data to a run: build a ready run folder for any region (``pari-geo prepare``).

The stage sits at ingest/align: it reads downloaded files (GHSL tiles, land cover,
OpenStreetMap extracts, business registers, a region polygon layer), puts them on one grid
over the region (cells outside are no data, so tables count the region's residents only)
and writes the aligned GeoTIFFs, the region's units, the actors and a ``run.toml`` that
``pari-geo classify`` and ``pari-geo run`` accept.

Run folder::

    population.tif  built_s.tif  built_v.tif  land.tif   (GHSL, sums preserved)
    agri_share.tif                                        (land cover, 0..1)
    speed_kmh.tif                                         (roads, km/h)
    units.gpkg  actors.gpkg                               (in the grid's CRS)
    run.toml  prepare.json                                (run file, provenance)

Examples
--------
>>> import tempfile, pathlib
>>> from pari_geo.datasets import belgium_paths
>>> p = belgium_paths()
>>> out = pathlib.Path(tempfile.mkdtemp()) / "belgium"
>>> res = prepare({"region": {"path": str(p["units"]), "id": "UID"},
...                "ghsl": {"population": str(p["population"]), "built": str(p["built"]),
...                         "land": str(p["land"])},
...                "outputs": {"dir": str(out)}})
>>> round(res["population_total"]), sorted(f.name for f in out.iterdir())[:3]
(11554943, ['built_s.tif', 'land.tif', 'population.tif'])
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OutputError
from .spec import GHSL_LAYERS, PrepareConfig, from_dict, load_prepare

__all__ = ["prepare", "load_prepare", "PrepareConfig"]

_MARKER = "prepare.json"


def _config(config: Any) -> PrepareConfig:
    if isinstance(config, PrepareConfig):
        return config
    if isinstance(config, dict):
        return from_dict(config, "<prepare>", base=Path.cwd())
    return load_prepare(config)


def _check_target(out: Path, overwrite: bool) -> None:
    """Never replace a folder pari-geo prepare did not write."""
    if out.exists() and overwrite and not (out / _MARKER).is_file():
        raise OutputError(str(out), f"exists and was not written by pari-geo prepare (no "
                          f"{_MARKER}); refusing to replace it, choose another outputs.dir")


def prepare(config: str | os.PathLike | dict | PrepareConfig, *, overwrite: bool = False,
            progress: bool = False) -> dict[str, Any]:
    """Build the run folder described by a ``PREPARE.toml`` (path, dict or config).

    Parameters
    ----------
    config : path, dict or PrepareConfig
        The prepare file (see :mod:`pari_geo.preparation.spec` for its keys).
    overwrite : bool
        Replace an existing run folder (only one that ``prepare`` wrote).
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``out_dir``, ``run_file``, ``grid`` (:class:`~pari_geo.grid.GridSpec`),
        ``region_cells``, ``population_total`` (residents in the region), ``layers``
        (file names) and ``actors`` (count, when prepared).

    Raises
    ------
    InputError, ConfigError, OutputError
        One line naming the file or key and the problem.
    """
    from tqdm.auto import tqdm

    from .region import choose_crs, read_region, region_grid, region_union

    cfg = _config(config)
    file = str(cfg.source)
    _check_target(cfg.out_dir, overwrite)
    reg = cfg.region
    region = read_region(reg["path"], id_col=reg.get("id"), layer=reg.get("layer"))
    crs = choose_crs(region, cfg.grid["crs"], file)
    grid, inside = region_grid(region, crs, cfg.grid["cell_size_m"])
    target = _Target(grid, inside, region_union(region, crs), file)
    steps = len(cfg.ghsl) + sum(x is not None for x in (cfg.landcover, cfg.roads, cfg.actors))
    with tqdm(total=steps + 1, desc="pari-geo prepare", disable=not progress,
              leave=False) as bar:
        arrays, layers = _ghsl_layers(cfg, target, bar)
        if cfg.landcover is not None:
            arrays["agri"], layers["agri"] = _landcover_layer(cfg.landcover, target)
            bar.update(1)
        if cfg.roads is not None:
            arrays["speed"], layers["speed"] = _speed_layer(cfg.roads, target, arrays)
            bar.update(1)
        actors = None
        if cfg.actors is not None:
            actors = _actors(cfg.actors, grid.crs, target.union, file)
            layers["actors"] = {"source": str(cfg.actors["path"]), "count": len(actors)}
            bar.update(1)
        files, total = _write_run_folder(cfg, target, region, arrays, layers, actors, overwrite)
        bar.update(1)
    return {"out_dir": cfg.out_dir, "run_file": cfg.out_dir / "run.toml", "grid": grid,
            "region_cells": int(inside.sum()), "population_total": total,
            "layers": files, "actors": None if actors is None else len(actors)}


#: source cells per block side when warping tiles (GDAL's sum warp holds ~200 bytes per
#: source cell of a block: about 200 MB here; benchmarks/prepare)
BLOCK = 1024


class _Target:
    """The grid, the region's cells, the region in the grid's CRS, the prepare file."""

    def __init__(self, grid, inside: np.ndarray, union, file: str) -> None:
        self.grid, self.inside, self.union, self.file = grid, inside, union, file


def _ghsl_layers(cfg: PrepareConfig, target: _Target, bar) -> tuple[dict, dict]:
    """The GHSL layers on the grid (sums kept) and their provenance."""
    from ..ingest import check_population
    from .rasters import check_ghsl_tiles, warp_tiles

    cell_m2 = target.grid.cell_size_m**2
    arrays: dict[str, np.ndarray] = {}
    layers: dict[str, Any] = {}
    for name, paths in cfg.ghsl.items():
        check_ghsl_tiles(name, paths)
        values = warp_tiles(paths, target.grid, target.inside, layer=name, region=target.union,
                            block=BLOCK)
        if name in ("built", "land"):  # resampling may exceed the cell by a fraction of 1 %
            np.minimum(values, cell_m2, out=values)
        arrays[name] = values
        layers[name] = {"sources": [str(p) for p in paths], "resampling": "sum"}
        bar.update(1)
    check_population(arrays["population"], str(cfg.ghsl["population"][0]), "population",
                     target.grid.cell_area_km2)
    return arrays, layers


def _landcover_layer(lc: dict[str, Any], target: _Target) -> tuple[np.ndarray, dict]:
    """Agricultural share from land-cover tiles through the mapping table."""
    from .landcover import load_mapping
    from .rasters import warp_tiles

    mapping = load_mapping(lc.get("mapping", "corine"), target.file)
    extra = lc.get("nodata", [])
    extra = [extra] if isinstance(extra, int) else extra
    values = warp_tiles(lc["path"], target.grid, target.inside, layer="landcover",
                        kind="share", values=mapping, region=target.union, block=BLOCK,
                        nodata=[float(v) for v in extra])
    return values, {"sources": [str(p) for p in lc["path"]], "mapping": mapping.source,
                    "resampling": "area-weighted mean"}


def _speed_layer(rd: dict[str, Any], target: _Target, arrays: dict) -> tuple[np.ndarray, dict]:
    """The speed raster from an .osm.pbf or a line layer (water from the land layer)."""
    from .roads import OFFROAD_KMH, check_offroad, load_speeds, speed_raster

    cell_m2 = target.grid.cell_size_m**2
    land_share = arrays["land"] / cell_m2 if "land" in arrays else None
    speeds = load_speeds(rd.get("speeds"))
    values = speed_raster(
        rd["path"], target.grid, target.inside, land_share=land_share, speeds=speeds,
        offroad_kmh=check_offroad(rd.get("offroad_kmh", OFFROAD_KMH), target.file),
        layer=rd.get("layer"), class_column=rd.get("class_column"),
        speed_column=rd.get("speed_column"))
    return values, {"source": str(rd["path"]), "speeds_kmh": speeds,
                    "rule": "fastest road per cell (all touched)"}


def _write_run_folder(cfg: PrepareConfig, target: _Target, region, arrays: dict,
                      layers: dict, actors, overwrite: bool) -> tuple[dict[str, str], float]:
    """Layers, units, actors, run.toml and prepare.json, staged and renamed into place."""
    from .._version import __version__
    from ..io_write import atomic_dir, fixed_gpkg_date
    from ..runconfig import load_run
    from .runfile import run_document, toml_text, write_layer

    grid, reg = target.grid, cfg.region
    files: dict[str, str] = {}
    with atomic_dir(cfg.out_dir, overwrite) as stage:
        for name, values in arrays.items():
            fname = {"agri": "agri_share.tif", "speed": "speed_kmh.tif"}.get(
                name, GHSL_LAYERS.get(name, f"{name}.tif"))
            dtype = "float64" if name == "population" else "float32"
            write_layer(stage / fname, values, grid, dtype=dtype,
                        tags={"layer": name, **layers.get(name, {})})
            files[name] = fname
        units_out = region.to_crs(grid.crs) if region.crs != grid.crs else region
        with fixed_gpkg_date():  # the same bytes from the same inputs (no clock inside)
            units_out.to_file(stage / "units.gpkg", driver="GPKG")
            files["units"] = "units.gpkg"
            if actors is not None:
                actors.to_file(stage / "actors.gpkg", driver="GPKG")
                files["actors"] = "actors.gpkg"
        region_cols: dict[str, str] = {k: reg[k] for k in ("region", "country") if k in reg}
        doc = run_document(files, cfg.run, reg.get("id"), region_cols, cfg.clusters)
        header = (f"# Written by pari-geo prepare from {Path(target.file).name}; the layers "
                  f"beside it are on {grid.crs.to_string()}, {grid.cell_size_m:g} m cells,\n"
                  "# no data outside the region.\n# Run:  pari-geo classify run.toml   (or "
                  "pari-geo run run.toml with actors and [clusters])\n")
        (stage / "run.toml").write_text(toml_text(doc, header), encoding="utf-8")
        load_run(stage / "run.toml")  # the run file must load as written
        total = float(np.nansum(arrays["population"]))
        provenance = {"grid": grid.to_dict(), "region_cells": int(target.inside.sum()),
                      "layers": layers, "population_total": total,
                      "prepare_file": target.file, "files": files,
                      "pari_geo_version": __version__}
        (stage / _MARKER).write_text(json.dumps(provenance, indent=2, sort_keys=True,
                                                default=str) + "\n")
    return files, total


def _actors(spec: dict[str, Any], crs, union, file: str):
    """Actors from OSM or a register, in ``crs``, only those inside the region."""
    import geopandas as gpd

    from ..errors import InputError

    path = spec["path"]
    if str(path).lower().endswith((".pbf", ".osm", ".osm.bz2", ".osm.gz")):
        from .actors import actors_from_osm, load_tag_mapping

        actors = actors_from_osm(path, load_tag_mapping(spec.get("mapping")), crs=crs)
    else:
        from .actors import actors_from_register

        if "sector" not in spec:
            from .spec import ConfigError

            raise ConfigError("actors.sector", "missing (the register's sector-code column)",
                              file)
        actors = actors_from_register(
            path, sector=spec["sector"], mapping=spec.get("mapping"), x=spec.get("x"),
            y=spec.get("y"), crs=spec.get("crs"), social=spec.get("social"),
            id_col=spec.get("id"), layer=spec.get("layer"),
            default_sector=spec.get("default_sector")).to_crs(crs)
    import shapely

    shapely.prepare(union)
    pts = actors.geometry
    keep = shapely.contains_xy(union, pts.x.to_numpy(), pts.y.to_numpy()) if len(actors) \
        else np.zeros(0, bool)
    if len(actors) and not keep.any():
        raise InputError(str(path), "actors", f"none of its {len(actors)} actors lies in the "
                         "region (another area, or swapped x/y columns?)")
    return gpd.GeoDataFrame(actors[np.asarray(keep)].reset_index(drop=True), crs=crs)
