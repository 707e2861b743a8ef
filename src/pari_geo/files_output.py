"""A classification written as single files (``pari-geo degurba grid --out c.tif``).

The run is the same validated :class:`~pari_geo.runconfig.RunConfig` as a run file's, with
:attr:`~pari_geo.runconfig.RunConfig.files` naming the outputs instead of a folder: the
class raster (a COG) and its QGIS style, optionally a PNG map and the residents per class.
They appear together or not at all, and carry no run configuration or provenance (the run
folder of ``pari-geo classify`` does).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from .runconfig import RunConfig
from .typology import registry

__all__ = ["run_to_files", "check_suffixes"]


def check_suffixes(out, map_path, table_path) -> None:
    """Refuse output names whose extension is not the format written."""
    from .errors import OutputError

    if Path(out).suffix.lower() not in (".tif", ".tiff"):
        raise OutputError(out, "the classification is written as a GeoTIFF (COG); give a "
                          "file name ending in .tif")
    if map_path and Path(map_path).suffix.lower() != ".png":
        raise OutputError(map_path, "maps are written as PNG; give a file name ending in "
                          ".png")
    if table_path and Path(table_path).suffix.lower() not in (".csv", ".gpkg", ".parquet"):
        raise OutputError(table_path, "unknown table format; use .csv, .gpkg or .parquet")


def claimed(outputs, overwrite: bool, inputs) -> contextlib.ExitStack:
    """Claim every output (checked, locked against concurrent runs, never an input)."""
    from .io_write import claim_output

    stack = contextlib.ExitStack()
    try:
        for p in outputs:
            stack.enter_context(claim_output(p, overwrite, protect=list(inputs)))
    except BaseException:
        stack.close()
        raise
    return stack


def run_to_files(cfg: RunConfig, engine: str, tile: tuple[int, int], scheduler: str | None,
                 *, overwrite: bool = False) -> dict[str, Any]:
    """Classify the run's grid with ``engine`` and write :attr:`RunConfig.files`.

    Returns a dict with the engine, the tile, the raster path and the cells per class
    (``counts``; with the in-memory engine every value present, nodata included).
    """
    files = cfg.files
    assert files is not None
    inputs = [layer.path for layer in cfg.inputs.values()]
    # every output is checked and claimed before any work (issue 12)
    with claimed(files.paths(), overwrite, inputs):
        if engine == "tiled":
            counts = _tiled(cfg, tile, scheduler, overwrite)
        else:
            counts = _memory(cfg, overwrite)
    return {"engine": engine, "tile": tile, "classes_path": files.raster, "counts": counts}


def _memory(cfg: RunConfig, overwrite: bool) -> dict[int, int]:
    import numpy as np

    from .io_write import atomic_files, write_class_raster, write_qml_style, write_table

    files = cfg.files
    assert files is not None
    typ = registry.get(cfg.typology)
    da = typ.classify(cfg)
    scheme = typ.scheme(cfg, da.attrs)
    table = None
    if files.table:
        from .align import align_to_grid
        from .grid import GridSpec
        from .ingest import open_raster
        from .report import population_by_class

        pop = align_to_grid(open_raster(cfg.inputs["population"].path, "population"),
                            GridSpec.from_dataarray(da), "count")
        table = population_by_class(
            da.values, pop.values, scheme, cell_area_km2=abs(da.rio.transform().a) ** 2 / 1e6
        )
    # the raster, the map and the table appear together or not at all
    with atomic_files(list[Any](files.paths()), overwrite) as tmp:
        write_class_raster(da, tmp[files.raster], scheme, style=False)
        write_qml_style(tmp[files.raster.with_suffix(".qml")], scheme)
        if table is not None and files.table:
            write_table(table, tmp[files.table])
        if files.map:
            _write_map(da, scheme, tmp[files.map])
    values, counts = np.unique(da.values, return_counts=True)
    return {int(k): int(v) for k, v in zip(values, counts, strict=True)}


def _tiled(cfg: RunConfig, tile: tuple[int, int], scheduler: str | None,
           overwrite: bool) -> dict[int, int]:
    from .ingest import read_overview
    from .io_write import atomic_files, write_qml_style, write_table
    from .report import population_by_class_from_files

    files = cfg.files
    assert files is not None
    typ = registry.get(cfg.typology)
    with atomic_files(list[Any](files.paths()), overwrite) as tmp:
        res = typ.classify_tiled(cfg, tmp[files.raster], tile, scheduler, overwrite=True)
        scheme = typ.scheme(cfg, res.tags)
        write_qml_style(tmp[files.raster.with_suffix(".qml")], scheme)
        if files.table:
            table = population_by_class_from_files(res.path, cfg.inputs["population"].path,
                                                   scheme)
            write_table(table, tmp[files.table])
        if files.map:
            _write_map(read_overview(res.path), scheme, tmp[files.map])
    return {int(k): int(v) for k, v in sorted(res.counts.items()) if v}


def _write_map(da, scheme, path) -> None:
    from .plot import new_figure, plot_classes, save_figure

    fig, ax = new_figure((10, 7.5))
    plot_classes(da, scheme, ax=ax)
    save_figure(fig, path, overwrite=False)
