"""Run a classification end to end from a validated :class:`~pari_geo.runconfig.RunConfig`.

ingest → align → typology → report → outputs, all written into a staging folder that
replaces the output folder only when everything succeeded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._version import __version__
from .runconfig import RunConfig

__all__ = ["run_classification"]


def _progress(enabled: bool, total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


def run_classification(
    cfg: RunConfig, *, overwrite: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Classify the run's grid and write raster, map, tables and provenance.

    Returns a dict with the class raster (``"classes"``), the per-class table
    (``"table"``), the unit table if units were given (``"units"``) and the written
    output folder (``"out_dir"``).
    """
    if cfg.typology == "degurba":
        return _run_degurba(cfg, overwrite=overwrite, progress=progress)
    return _run_nordic7(cfg, overwrite=overwrite, progress=progress)


def _write_common(
    stage: Path,
    cfg: RunConfig,
    classes,
    scheme,
    pop_values,
    name: str,
    units=None,
    units_table=None,
) -> Any:
    """Write raster, map, tables and provenance of a classification into ``stage``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .config import stable_hash
    from .io_write import write_class_raster, write_table
    from .plot import plot_classes, save_figure
    from .report import population_by_class, residents_by_unit_and_class

    resolved = cfg.to_dict()
    tags = {
        "run_config": json.dumps(resolved, sort_keys=True),
        "run_config_hash": stable_hash(resolved),
    }
    write_class_raster(classes, stage / f"{name}.tif", scheme, tags=tags)
    cell_km2 = abs(classes.rio.transform().a) ** 2 / 1e6
    table = population_by_class(classes.values, pop_values, scheme, cell_area_km2=cell_km2)
    if cfg.outputs.get("table", True):
        write_table(table, stage / f"{name}_population_by_class.csv")
    if cfg.outputs.get("map", True):
        fig, ax = plt.subplots(figsize=(10, 7.5))
        plot_classes(classes, scheme, ax=ax, units=units)
        save_figure(fig, stage / f"{name}.png")
        plt.close(fig)
    meta = {
        "pari_geo_version": __version__,
        "run_config_hash": tags["run_config_hash"],
        "parameters_hash": str(classes.attrs.get("parameters_hash", "")),
    }
    if units is not None and cfg.outputs.get("units_table", True):
        id_col = cfg.inputs["units"].id or "UID"
        by_unit = residents_by_unit_and_class(classes, pop_values, units, id_col, scheme)
        write_table(by_unit, stage / f"{name}_by_unit.csv")
        write_table(by_unit, stage / f"{name}_by_unit.gpkg", metadata=meta)
    if units_table is not None and cfg.outputs.get("units_table", True):
        write_table(units_table, stage / f"{name}_units.csv")
        write_table(units_table, stage / f"{name}_units.gpkg", metadata=meta)
    (stage / "provenance.json").write_text(
        json.dumps(
            {
                "pari_geo_version": __version__,
                "run": resolved,
                "classification": {
                    k: v for k, v in classes.attrs.items() if isinstance(v, str | int)
                },
            },
            sort_keys=True,
            indent=2,
        )
        + "\n"
    )
    return table


def _run_degurba(cfg: RunConfig, *, overwrite: bool, progress: bool) -> dict[str, Any]:
    from .classes import DEGURBA_L1, DEGURBA_L2
    from .config import DegurbaParams
    from .io_write import atomic_dir
    from .typology.degurba import classify_grid

    params = DegurbaParams.from_preset(cfg.preset) if cfg.preset else DegurbaParams()
    params = params.replace(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.parameters.items()}
    )
    inp = cfg.inputs
    with _progress(progress, 4, "degurba") as bar:
        classes = classify_grid(
            inp["population"].path,
            inp["built"].path,
            inp["land"].path,
            level=cfg.level,
            params=params,
            built_unit=inp["built"].unit or "m2",
            land_unit=inp["land"].unit or "m2",
            buffer_m=cfg.options.get("buffer_m", 0),
        )
        bar.update(1)
        scheme = (DEGURBA_L1 if cfg.level == 1 else DEGURBA_L2).with_codes(
            tuple(int(k) for k in json.loads(classes.attrs["class_names"]))
        )
        from .align import align_to_grid
        from .grid import GridSpec
        from .ingest import open_raster

        grid = GridSpec.from_dataarray(classes)
        pop = align_to_grid(open_raster(inp["population"].path, "population"), grid, "count")
        units = units_table = None
        if "units" in inp:
            from .ingest import open_units
            from .typology.units import classify_units

            units = open_units(inp["units"].path, id_col=inp["units"].id or "UID")
            units_table = classify_units(
                units,
                classes,
                pop,
                id=inp["units"].id or "UID",
                level=cfg.level,
                values=None if params.values is None else _unit_values(params.values),
                workflow=cfg.options.get("workflow", "official"),
                rules=cfg.options.get("rules", "2024"),
                dissolve_by=cfg.options.get("dissolve_by"),
            )
        bar.update(1)
        name = f"degurba_l{cfg.level}"
        with atomic_dir(cfg.out_dir, overwrite) as stage:
            table = _write_common(stage, cfg, classes, scheme, pop.values, name, units, units_table)
            bar.update(2)
    return {"classes": classes, "table": table, "units": units_table, "out_dir": cfg.out_dir}


def _unit_values(values: tuple[int, ...]) -> tuple[int, ...]:
    """Grid codes without the water code, as the unit classification expects."""
    return tuple(values[:-1])


def _run_nordic7(cfg: RunConfig, *, overwrite: bool, progress: bool) -> dict[str, Any]:
    from .classes import NORDIC7
    from .io_write import atomic_dir
    from .typology.classify import classify_place_types

    with _progress(progress, 3, "nordic7") as bar:
        classes, pop = classify_place_types(cfg)
        bar.update(1)
        units = None
        if "units" in cfg.inputs:
            from .ingest import open_units

            units = open_units(cfg.inputs["units"].path, id_col=cfg.inputs["units"].id)
        with atomic_dir(cfg.out_dir, overwrite) as stage:
            table = _write_common(stage, cfg, classes, NORDIC7, pop, "place_types", units)
            bar.update(2)
    return {"classes": classes, "table": table, "units": None, "out_dir": cfg.out_dir}
