"""Run a classification end to end from a validated :class:`~pari_geo.runconfig.RunConfig`.

ingest → align → typology → report → outputs, all written into a staging folder that
replaces the output folder only when everything succeeded.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._version import __version__
from .errors import InputError
from .ingest import RasterWindows
from .runconfig import RunConfig
from .typology import registry

__all__ = ["run_classification", "run_pipeline", "municipality_table", "summary_markdown"]


def synthetic_inputs(cfg: RunConfig) -> dict[str, str]:
    """Inputs marked as synthetic data, with their note (issue 16).

    A raster counts when its ``DESCRIPTION`` tag says ``SYNTHETIC`` (the bundled
    Östergötland-shaped sample region), a vector layer when it has a true ``synthetic``
    column; outputs made from them say so in ``provenance.json`` and ``summary.md``.
    """
    found: dict[str, str] = {}
    for key, layer in sorted(cfg.inputs.items()):
        try:
            if key in ("units", "actors"):
                import pyogrio

                info = pyogrio.read_info(layer.path, layer=layer.layer)
                if "synthetic" in [str(c).lower() for c in info["fields"]]:
                    found[key] = "has a 'synthetic' column"
                continue
            with RasterWindows(layer.path, key) as src:
                note = str(src.tags().get("DESCRIPTION", ""))
        except Exception:  # noqa: BLE001 - unreadable inputs are reported by the readers
            continue
        if "SYNTHETIC" in note.upper():
            found[key] = note
    return found


def _nested(values: dict[str, Any]) -> dict[str, Any]:
    """Attribute values that hold JSON text, as JSON (``provenance.json`` nests them)."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, str) and v[:1] in "{[":
            with contextlib.suppress(ValueError):
                v = json.loads(v)
        out[k] = v
    return out


def _progress(enabled: bool, total: int, desc: str):
    """A tqdm bar on a terminal, plain lines when stderr is redirected (issue 16)."""
    from ._progress import progress

    return progress(enabled, total, desc)


def _simulation_progress(bar):
    """A hook (``pari_geo._progress.on_simulations``) moving ``bar`` on within the step of
    a scale while its Monte Carlo simulations run (the scales' tests may report from
    several threads at once; both reporters of :mod:`pari_geo._progress` take a lock)."""

    def hook(eps_m: float, n_done: int, n_sim: int) -> None:
        bar.within_step(n_done / max(n_sim, 1),
                        f"micro-clusters ({eps_m:g} m: {n_done}/{n_sim} simulations)")

    return hook


def run_classification(
    cfg: RunConfig,
    *,
    overwrite: bool = False,
    progress: bool = True,
    execution: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Classify the run's grid and write raster, map, tables and provenance.

    The engine comes from the run file's ``[execution]`` section, updated by
    ``execution`` (already validated, e.g. by
    :func:`~pari_geo.runconfig.validate_execution`): ``"memory"``, ``"tiled"`` (grids
    larger than memory, identical classes) or ``"auto"`` (from the grid size and
    ``max_memory``); a ``scheduler`` runs the tiled engine's per-cell pass on a dask
    cluster.

    Returns a dict with the class raster (``"classes"``; ``None`` with the tiled
    engine), the path of the written class raster (``"classes_path"``), the per-class
    table (``"table"``), the unit table if units were given (``"units"``), the engine
    used (``"engine"``) and the written output folder (``"out_dir"``).
    """
    from .io_write import claim_output

    cfg = cfg.with_execution(execution)
    engine, tile, scheduler = execution_plan(cfg)
    if cfg.files is not None:
        from .files_output import run_to_files

        return run_to_files(cfg, engine, tile, scheduler, overwrite=overwrite)
    # the output folder is checked and claimed before any work (issue 12)
    with claim_output(cfg.out_dir, overwrite, protect=protected_paths(cfg), folder=True):
        check_units_cover_grid(cfg)
        if engine == "tiled":
            return _run_tiled(cfg, overwrite=overwrite, progress=progress, tile=tile,
                              scheduler=scheduler)
        out = _run_memory(cfg, overwrite=overwrite, progress=progress)
    return {**out, "classes_path": cfg.out_dir / f"{_output_name(cfg)}.tif",
            "engine": "memory"}


def protected_paths(cfg: RunConfig) -> list[Path]:
    """Files the run's outputs may never be, contain or lie inside: the run file, every
    input and a land-cover mapping file."""
    paths = [*([Path(cfg.source)] if cfg.source is not None else []),
             *(layer.path for layer in cfg.inputs.values())]
    lc = cfg.inputs.get("landcover")
    if lc is not None and lc.mapping not in (None, "corine"):
        paths.append(Path(lc.mapping))
    return paths


def _out_dir(cfg: RunConfig, overwrite: bool):
    """The staging folder that replaces ``outputs.dir`` when the block succeeds."""
    from .io_write import atomic_dir

    return atomic_dir(cfg.out_dir, overwrite, protect=protected_paths(cfg))


def _output_name(cfg: RunConfig) -> str:
    """Stem of the class raster and its tables (``degurba_l<level>``, ``place_types``)."""
    return registry.get(cfg.typology).output_name(cfg)


#: in-memory bytes per grid cell of each typology (inputs, intermediates, result), from
#: the registry (:attr:`~pari_geo.typology.registry.Typology.bytes_per_cell`)
BYTES_PER_CELL = {name: registry.get(name).bytes_per_cell for name in registry.names()}


def execution_plan(
    cfg: RunConfig, execution: dict[str, Any] | None = None
) -> tuple[str, tuple[int, int], str | None]:
    """``(engine, tile, scheduler)`` of a run: its ``[execution]`` updated by ``execution``
    (:meth:`~pari_geo.runconfig.RunConfig.with_execution`).

    ``"auto"`` becomes ``"memory"`` when the grid's estimated in-memory size
    (:data:`BYTES_PER_CELL`) fits ``max_memory`` (default: half the RAM), else
    ``"tiled"``; a scheduler implies ``"tiled"``.
    """
    from .errors import ConfigError
    from .memory import choose_engine

    ex = cfg.with_execution(execution).execution
    engine = ex.get("engine", "auto")
    scheduler = ex.get("scheduler")
    tile = tuple(ex.get("tile", (1024, 1024)))
    if scheduler is not None:
        if engine == "memory":  # both from one source, e.g. an execution dict
            raise ConfigError("scheduler", "runs the tiled engine; it contradicts engine "
                              "'memory'", str(cfg.source), what="setting")
        engine = "tiled"
    if engine == "auto":
        cells = _raster_cells(cfg.inputs["population"].path)
        engine = "memory" if cells is None else choose_engine(
            cells, budget=ex.get("max_memory"),
            bytes_per_cell=registry.get(cfg.typology).bytes_per_cell)
    return engine, (int(tile[0]), int(tile[1])), scheduler


def _raster_cells(path: Path) -> int | None:
    """Cells of a raster, or None when it cannot be opened (the loader then says why)."""
    try:
        with RasterWindows(path) as src:
            rows, cols = src.shape
            return rows * cols
    except InputError:
        return None


def _run_tiled(cfg: RunConfig, *, overwrite: bool, progress: bool, tile: tuple[int, int],
               scheduler: str | None) -> dict[str, Any]:
    """The classification by tiles: raster, per-class table, map, provenance."""
    from .config import stable_hash
    from .errors import ConfigError
    from .io_write import write_qml_style, write_table
    from .report import population_by_class_from_files

    file = str(cfg.source)
    if "units" in cfg.inputs and cfg.outputs.get("units_table", True):
        raise ConfigError("inputs.units", "tables by unit need the class raster in memory; "
                          "with the tiled engine set outputs.units_table = false (and classify "
                          "the units from the written raster), or use engine 'memory'", file)
    resolved = cfg.to_dict()
    tags = {"run_config": resolved, "run_config_hash": stable_hash(resolved)}
    with _progress(progress, 3, f"{cfg.typology} (tiled)") as bar, \
            _out_dir(cfg, overwrite) as stage:
        name = _output_name(cfg)
        typ = registry.get(cfg.typology)
        res = _classify_tiled(cfg, stage / f"{name}.tif", tile, scheduler, extra_tags=tags)
        scheme = typ.scheme(cfg, res.tags)
        write_qml_style(stage / f"{name}.qml", scheme)  # class names in QGIS
        bar.update(1)
        table = population_by_class_from_files(res.path, cfg.inputs["population"].path,
                                               scheme)
        if cfg.outputs.get("table", True):
            write_table(table, stage / f"{name}_population_by_class.csv")
        if cfg.outputs.get("map", True):
            _tiled_map(res.path, scheme, stage / f"{name}.png")
        bar.update(1)
        (stage / "provenance.json").write_text(json.dumps(
            {"pari_geo_version": __version__, "run": resolved,
             "classification": _nested(_classification_attrs(res.tags)),
             "synthetic_inputs": synthetic_inputs(cfg)},
            sort_keys=True, indent=2) + "\n")
        bar.update(1)
    return {"classes": None, "classes_path": cfg.out_dir / f"{name}.tif", "table": table,
            "units": None, "engine": "tiled", "out_dir": cfg.out_dir}


def _classify_tiled(cfg: RunConfig, out_path: Path, tile: tuple[int, int],
                    scheduler: str | None, *, extra_tags: dict[str, Any] | None = None):
    """Classify the run's grid by tiles into ``out_path`` (the typology's tiled engine);
    the tiled function's result."""
    return registry.get(cfg.typology).classify_tiled(cfg, out_path, tile, scheduler,
                                                     extra_tags=extra_tags)


def _classification_attrs(tags: dict[str, str]) -> dict[str, Any]:
    """The in-memory classification's attributes, back from a tiled raster's tags."""
    skip = ("OUT_OF_CORE", "CLASS_SCHEME", "AREA_OR_POINT", "RUN_CONFIG", "RUN_CONFIG_HASH",
            "flag_values", "flag_meanings")
    return {k.lower(): (int(v) if k == "LEVEL" else v) for k, v in tags.items()
            if k not in skip}


def _tiled_map(classes_path: Path, scheme, png: Path) -> None:
    """A PNG map of a class raster on disk, drawn from an overview."""
    from .ingest import read_overview
    from .plot import new_figure, plot_classes, save_figure

    fig, ax = new_figure((10, 7.5))
    plot_classes(read_overview(classes_path), scheme, ax=ax)
    save_figure(fig, png)


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
    from .config import stable_hash
    from .io_write import write_class_raster, write_table
    from .plot import new_figure, plot_classes, save_figure
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
        fig, ax = new_figure((10, 7.5))
        plot_classes(classes, scheme, ax=ax, units=units)
        save_figure(fig, stage / f"{name}.png")
    meta = {
        "pari_geo_version": __version__,
        "run_config_hash": tags["run_config_hash"],
        "parameters_hash": str(classes.attrs.get("parameters_hash", "")),
    }
    if units is not None and cfg.outputs.get("units_table", True):
        id_col = cfg.inputs["units"].id or "UID"
        by_unit = residents_by_unit_and_class(classes, pop_values, units, id_col, scheme,
                                              **_jobs_on(cfg, classes))
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
                "classification": _nested({
                    k: v for k, v in classes.attrs.items() if isinstance(v, str | int)
                }),
                "synthetic_inputs": synthetic_inputs(cfg),
            },
            sort_keys=True,
            indent=2,
        )
        + "\n"
    )
    return table


def _run_memory(cfg: RunConfig, *, overwrite: bool, progress: bool) -> dict[str, Any]:
    """The classification in memory: raster, map, tables (with the units' classes when
    the typology classifies units) and provenance."""
    typ = registry.get(cfg.typology)
    with _progress(progress, 3 + (typ.units_table is not None), cfg.typology) as bar:
        classes = typ.classify(cfg)
        bar.update(1)
        scheme = typ.scheme(cfg, classes.attrs)
        pop = _population_on(classes, cfg)
        units = units_table = None
        if "units" in cfg.inputs:
            units = _open_units(cfg)
            if typ.units_table is not None:
                units_table = typ.units_table(cfg, classes, pop, units)
        if typ.units_table is not None:
            bar.update(1)
        with _out_dir(cfg, overwrite) as stage:
            table = _write_common(stage, cfg, classes, scheme, pop.values, _output_name(cfg),
                                  units, units_table)
            bar.update(2)
    return {"classes": classes, "table": table, "units": units_table, "out_dir": cfg.out_dir}


def _population_on(classes, cfg: RunConfig):
    """The run's residents aligned to the grid of ``classes`` (sums preserved)."""
    from .align import align_to_grid
    from .grid import GridSpec
    from .ingest import open_raster

    return align_to_grid(open_raster(cfg.inputs["population"].path, "population"),
                         GridSpec.from_dataarray(classes), "count")


def _open_units(cfg: RunConfig):
    """The run's units (``inputs.units``: path, ``id``, ``layer``)."""
    from .ingest import open_units

    u = cfg.inputs["units"]
    return open_units(u.path, id_col=u.id or "UID", layer=u.layer)


def check_units_cover_grid(cfg: RunConfig) -> None:
    """Refuse, before any work, units of which none intersects the population grid.

    (Every unit would get 0 residents.) Unreadable files are left to the readers, which
    name the problem.
    """
    import shapely
    from rasterio.warp import transform_bounds

    if "units" not in cfg.inputs:
        return
    try:
        with RasterWindows(cfg.inputs["population"].path, "population") as src:
            crs, bounds = src.crs, src.bounds
    except InputError:
        return
    if crs is None:
        return
    units = _open_units(cfg)
    if units.crs is None:
        return
    left, bottom, right, top = transform_bounds(crs, units.crs, *bounds, densify_pts=21)
    box = shapely.box(left, bottom, right, top)
    if not shapely.intersects(units.geometry.values, box).any():
        ub = tuple(round(v) for v in units.total_bounds)
        raise InputError(str(cfg.inputs["units"].path), "units",
                         f"no unit intersects the population grid (units bounds {ub}, grid "
                         f"bounds {tuple(round(v) for v in (left, bottom, right, top))} in "
                         "the units' CRS)")


def run_pipeline(
    cfg: RunConfig,
    *,
    overwrite: bool = False,
    progress: bool = True,
    execution: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full run: place types → micro-clusters at every scale → tables, maps, summary.

    Needs a run file with ``inputs.actors``, ``inputs.units`` and a ``[clusters]``
    section. Everything is written into a staging folder that replaces ``outputs.dir``
    only when the whole run succeeded.

    The engine is chosen as in :func:`run_classification`. With the tiled engine (or a
    scheduler) the grid is classified by tiles, then the class raster (1 byte per cell)
    and the residents (8) are loaded for the cluster statistics and tables: a grid whose
    :data:`RUN_BYTES_PER_CELL` exceed the memory budget is refused before any work,
    pointing to ``pari-geo classify``.

    Returns a dict with ``classes``, ``clusters`` (all scales), ``municipalities`` and
    ``out_dir``.
    """
    from .errors import ConfigError

    cfg = cfg.with_execution(execution)
    engine, tile, scheduler = execution_plan(cfg)
    if engine == "tiled":
        _check_run_fits(cfg)

    if cfg.clusters is None:
        raise ConfigError(
            "clusters",
            "missing section (pari-geo run needs [clusters])",
            str(cfg.source),
            what="key",
        )
    if "units" not in cfg.inputs:
        raise ConfigError(
            "inputs.units",
            "missing (pari-geo run needs municipalities)",
            str(cfg.source),
            what="key",
        )
    from .io_write import claim_output

    # the output folder is checked and claimed before any work (issue 12)
    with claim_output(cfg.out_dir, overwrite, protect=protected_paths(cfg), folder=True):
        check_units_cover_grid(cfg)
        return _run_pipeline(cfg, overwrite, progress, engine, tile, scheduler)


def _run_pipeline(cfg: RunConfig, overwrite: bool, progress: bool, engine: str,
                  tile: tuple[int, int], scheduler: str | None) -> dict[str, Any]:
    """The work of :func:`run_pipeline`, with the output folder claimed."""
    from ._progress import on_simulations
    from ._warmup import kernel_warmup
    from .clustering.ladder import hidden_candidates, ladder
    from .clustering.threads import resolve_threads
    from .ingest import open_actors
    from .io_write import write_table

    assert cfg.clusters is not None  # checked by run_pipeline
    steps = 3 + len(cfg.clusters["eps_m"])
    # the bar also moves on during each scale's simulations; on an empty numba cache the
    # micro-cluster kernels compile in a child process during the place types (issue 11)
    with _progress(progress, steps, "pari-geo run") as bar, \
            on_simulations(_simulation_progress(bar)), kernel_warmup() as warmup, \
            contextlib.ExitStack() as outputs:
        bar.set_postfix_str("place types")
        typ = registry.get(cfg.typology)
        if engine == "tiled":
            classes, pop = _classify_tiled_in_memory(cfg, tile, scheduler)
        else:
            classes = typ.classify(cfg)
            pop = _population_on(classes, cfg).values
        # the class table without the run's output codes (as before the registry)
        scheme = typ.scheme(cfg, None)
        name = _output_name(cfg)
        bar.update(1)
        u = cfg.inputs["units"]
        a = cfg.inputs["actors"]
        units = _open_units(cfg)
        actors = open_actors(a.path, sector_col=a.sector, social_col=a.social, layer=a.layer)
        pop_da = classes.copy(data=pop)
        pop_da.attrs["source"] = str(cfg.inputs["population"].path)
        c = cfg.clusters
        _note_long_run(len(actors), c)
        bar.set_postfix_str("micro-clusters")
        warmup.wait()  # the kernels are in numba's cache now (if a child compiled them)

        def scale_done(eps: float) -> None:
            bar.update(1)
            bar.set_postfix_str(f"micro-clusters ({eps:g} m done)")

        # the place-type outputs are written while the simulations run (ladder's meanwhile)
        stage = outputs.enter_context(_out_dir(cfg, overwrite))
        written: dict[str, Any] = {}

        def write_place_types() -> None:
            units_table = None
            if typ.units_table is not None:
                units_table = typ.units_table(cfg, classes, pop_da, units)
            written["table"] = _write_common(stage, cfg, classes, scheme, pop, name, units,
                                             units_table)  # fmt: skip

        clusters = ladder(
            actors,
            eps_m=tuple(c["eps_m"]),
            min_actors=c["min_actors"],
            units=units,
            unit_id=u.id,
            region_col=u.region,
            country_col=u.country,
            population=pop_da,
            place_types=classes if typ.place_types_for_clusters else None,
            sector_col=a.sector,
            social_col=a.social,
            n_sim=c["n_sim"],
            alpha=c["alpha"],
            random_state=c["random_state"],
            micro_max_extent_m=c["micro_max_extent_m"],
            micro_max_actors=c["micro_max_actors"],
            footprint=c["footprint"],
            early_stop=c["early_stop"],
            p_method=c["p_method"],
            pool_size=c["pool_size"],
            n_jobs=c["n_jobs"],
            on_scale=scale_done,
            meanwhile=write_place_types,
        )
        names = _unit_names(units, u.id)
        candidates = hidden_candidates(clusters, names)
        bar.set_postfix_str("writing")
        munis = municipality_table(classes, pop, units, u.id, scheme, actors, clusters,
                                   jobs=_jobs_on(cfg, classes))
        with outputs:
            table = written["table"]
            meta = {"pari_geo_version": __version__}
            write_table(clusters, stage / "clusters.gpkg", metadata=meta)
            write_table(clusters, stage / "clusters.parquet", metadata=meta)
            write_table(munis, stage / "municipalities.csv")
            write_table(munis, stage / "municipalities.gpkg", metadata=meta)
            write_table(candidates, stage / "candidates.csv")
            if cfg.outputs.get("map", True):
                _cluster_maps(stage, classes, scheme, units, u.id, clusters,
                              n_jobs=resolve_threads(c["n_jobs"]))
            (stage / "summary.md").write_text(
                summary_markdown(cfg, clusters, units, u.id, scheme, candidates),
                encoding="utf-8",
            )
            # the planner's page: maps, tables and hidden clusters in one file (issue 16)
            from .report_html import write_planner_report

            write_planner_report(stage / "report.html", cfg, table=table, munis=munis,
                                 clusters=clusters, id_col=u.id or "UID", scheme=scheme,
                                 stage=stage, synthetic=synthetic_inputs(cfg),
                                 rural_codes=typ.rural_codes)
        bar.update(2)
    return {
        "classes": classes,
        "clusters": clusters,
        "candidates": candidates,
        "municipalities": munis,
        "out_dir": cfg.out_dir,
    }


#: seconds per actor, simulation and scale of the hidden-cluster test, measured on the
#: sample run (20,000 actors, 999 simulations, 4 scales: about 25 s on 2 cores); the basis
#: of the rough estimate printed before long runs
SECONDS_PER_ACTOR_SIM_SCALE = 3e-7
#: runs estimated longer than this many seconds get a note before the simulations start
LONG_RUN_S = 60.0


def estimate_cluster_seconds(n_actors: int, clusters: Mapping[str, Any]) -> float:
    """A rough upper estimate of the cluster stage's run time in seconds.

    Without early stopping every simulation runs; with it, most clusters stop after a
    few hundred, so the estimate is an upper bound.

    Examples
    --------
    >>> round(estimate_cluster_seconds(20000, {"n_sim": 999, "eps_m": [1, 2, 3, 4]}))
    24
    """
    return (SECONDS_PER_ACTOR_SIM_SCALE * n_actors * clusters["n_sim"]
            * len(clusters["eps_m"]))


def _note_long_run(n_actors: int, clusters: Mapping[str, Any]) -> None:
    """Log (``pari_geo`` logger, printed by the CLI) an estimate for a long cluster stage."""
    import logging

    from .runconfig import MAX_N_SIM

    seconds = estimate_cluster_seconds(n_actors, clusters)
    if seconds < LONG_RUN_S:
        return
    stop = ("early stopping is off (early_stop = 0)" if not clusters.get("early_stop")
            else f"at most, early stopping after {clusters['early_stop']} exceedances "
                 "usually ends sooner")
    logging.getLogger("pari_geo").info(
        "micro-clusters: %s actors x %s simulations x %s scales: roughly %s (%s; "
        "clusters.n_sim at most %s)", f"{n_actors:,}", f"{clusters['n_sim']:,}",
        len(clusters["eps_m"]), _duration(seconds), stop, f"{MAX_N_SIM:,}")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


#: bytes per cell the full run holds with the tiled engine (classes, residents, masks)
RUN_BYTES_PER_CELL = 24


def _check_run_fits(cfg: RunConfig) -> None:
    """Refuse, before any work, a full run whose class raster cannot be held in memory."""
    from .errors import ConfigError
    from .memory import default_budget

    budget = cfg.execution.get("max_memory") or default_budget()
    cells = _raster_cells(cfg.inputs["population"].path)
    if cells is not None and cells * RUN_BYTES_PER_CELL > budget:
        raise ConfigError(
            "execution", f"the full run holds the class raster and residents in memory "
            f"(about {cells * RUN_BYTES_PER_CELL / 2**30:.1f} GiB for {cells:,} cells), more "
            f"than the budget of {budget / 2**30:.1f} GiB; classify the grid with "
            "`pari-geo classify` (tiled) or raise --max-memory", str(cfg.source),
            what="setting")


def _classify_tiled_in_memory(cfg: RunConfig, tile: tuple[int, int], scheduler: str | None):
    """Classify by tiles into a scratch file, then load classes and residents."""
    from .align import align_to_grid
    from .grid import GridSpec
    from .ingest import open_raster
    from .io_write import scratch_dir

    out = cfg.out_dir
    base = next(p for p in (out.parent, *out.parents) if p.exists())
    inp = cfg.inputs
    with scratch_dir(".pari_geo_run_", base) as tmp:
        path = Path(tmp) / "classes.tif"
        _classify_tiled(cfg, path, tile, scheduler)
        with RasterWindows(path, "classes") as src:
            data = src.read_raw(0, src.shape[0], 0, src.shape[1])  # the codes as stored
            tags = src.tags()
            grid = GridSpec(src.crs, src.transform, data.shape)
    classes = grid.to_dataarray(data, name="classes")
    classes.attrs.update(_classification_attrs(tags))
    pop = align_to_grid(open_raster(inp["population"].path, "population"), grid, "count")
    return classes, pop.values


def _jobs_on(cfg: RunConfig, classes) -> dict[str, Any]:
    """``jobs`` (and ``job_sectors``) on the classes' grid when the run has a jobs layer:
    the economic activity of each unit in its tables (issue 14 item 3)."""
    if "jobs" not in cfg.inputs:
        return {}
    import numpy as np

    from .typology.classify import load_nordic7_inputs

    loaded = load_nordic7_inputs(cfg.inputs["population"].path, jobs=cfg.inputs["jobs"].path)
    jobs = loaded.layers["jobs"]
    if np.shape(jobs)[-2:] != tuple(classes.shape):
        return {}
    return {"jobs": jobs, "job_sectors": loaded.layers.get("job_sectors")}


def municipality_table(classes, pop, units, id_col, scheme, actors, clusters, jobs=None):
    """Per unit: residents and area per class, actors, clusters and hidden clusters per rung.

    Cluster counts are per scale (``clusters_<eps>m_<rung>`` and ``hidden_<eps>m_<rung>``);
    a cluster counts for every unit it has members in (``unit_ids``).
    """
    import geopandas as gpd
    import numpy as np

    from .report import residents_by_unit_and_class

    table = residents_by_unit_and_class(classes, pop, units, id_col, scheme, **(jobs or {}))
    pts = actors.to_crs(table.crs) if actors.crs != table.crs else actors
    if len(pts):
        pts = pts.set_geometry(pts.geometry.representative_point())
        joined = gpd.sjoin(
            pts[[pts.geometry.name]], table[[id_col, "geometry"]], predicate="within", how="left"
        )
        joined = joined[~joined.index.duplicated(keep="first")]
        counts = joined[id_col].value_counts()
    else:
        counts = {}
    table["actors"] = [int(counts.get(k, 0)) for k in table[id_col]]
    with np.errstate(divide="ignore", invalid="ignore"):
        table["actors_per_1000_residents"] = np.where(
            table["residents"] > 0, 1000 * table["actors"] / table["residents"], np.nan
        )
    rungs = ("micro", "municipal", "inter-municipal", "national", "multinational")
    ids = [str(k) for k in table[id_col]]
    for eps in sorted(clusters["scale_eps_m"].unique()) if len(clusters) else []:
        at = clusters[clusters["scale_eps_m"] == eps]
        tag = f"{eps:g}m"
        for rung in rungs:
            sel = at[at["rung"] == rung]
            n_all = {k: 0 for k in ids}
            n_hidden = {k: 0 for k in ids}
            for unit_ids, hidden in zip(sel["unit_ids"], sel["hidden"], strict=True):
                for k in str(unit_ids).split(";"):
                    if k in n_all:
                        n_all[k] += 1
                        n_hidden[k] += int(bool(hidden))
            key = rung.replace("-", "_")
            table[f"clusters_{tag}_{key}"] = [n_all[k] for k in ids]
            table[f"hidden_{tag}_{key}"] = [n_hidden[k] for k in ids]
    return table


def _cluster_maps(stage: Path, classes, scheme, units, id_col, clusters,
                  n_jobs: int = 1) -> None:
    """The overview map of the finest scale and one map per municipality of a hidden
    candidate (hidden at any scale), as listed in the summary.

    Each map is drawn here and compressed and written by a writer thread meanwhile. With
    ``n_jobs > 1`` on Linux, a forked helper process draws every other municipal map at
    the same time (matplotlib draws under the GIL, so threads cannot share the drawing;
    see :func:`_map_helper`); the files are the same.
    """
    from .plot import PngWriter

    municipal = _MunicipalMaps(stage, classes, scheme, units, id_col, clusters)
    uids = municipal.uids()
    helper_uids = uids[0::2] if n_jobs > 1 and len(uids) >= 2 else []
    helper = _map_helper(municipal, helper_uids)
    own = uids[1::2] if helper else uids
    try:
        with PngWriter() as png:
            _overview_map(png, stage, classes, scheme, units, clusters)
            for uid in own:
                municipal.draw(png, uid)
        if helper is not None:
            helper.join()
    except BaseException:
        if helper is not None and helper.is_alive():  # nothing may write into the folder
            helper.kill()                              # once it is discarded
            helper.join()
        raise
    if helper is not None and helper.exitcode != 0:
        # whatever went wrong there is met (and reported) here
        import logging

        logging.getLogger("pari_geo").debug(
            "the map helper ended with exit code %s; its %d maps are drawn here",
            helper.exitcode, len(helper_uids))
        with PngWriter(overwrite=True) as png:
            for uid in helper_uids:
                municipal.draw(png, uid)


def _map_helper(municipal: _MunicipalMaps, uids: list[str]) -> Any:
    """A forked process drawing the municipal maps ``uids`` (its exit code 0 when all were
    written), or None where forking is not safe or not worth it.

    Only on Linux, and only when this process runs no other Python thread (a fork copies
    just the calling thread, so a lock another thread holds would stay locked in the
    child); ``PARI_GEO_MAP_HELPER=0`` turns it off. The child writes each file atomically
    as the parent would and leaves by ``os._exit`` (no cleanup of the parent's state).
    """
    import os
    import sys
    import threading
    import warnings

    if (not uids or not sys.platform.startswith("linux") or threading.active_count() != 1
            or os.environ.get("PARI_GEO_MAP_HELPER", "1").strip() == "0"):  # fmt: skip
        return None
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_draw_maps_and_exit, args=(municipal, uids), daemon=True,
                       name="pari_geo-maps")  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    with warnings.catch_warnings():
        # Python 3.12+ warns of fork when the process has other OS threads: here only idle
        # native pools (OpenBLAS, numba's), not Python threads, which are checked above
        warnings.filterwarnings("ignore", message=".*multi-threaded.*", category=DeprecationWarning)
        try:
            proc.start()
        except OSError:
            return None
    return proc


def _draw_maps_and_exit(municipal: _MunicipalMaps, uids: list[str]) -> None:
    """The helper process: draw ``uids``, then leave at once (exit code 1 on any error)."""
    import os

    from .plot import PngWriter

    code = 0
    try:
        with PngWriter() as png:
            for uid in uids:
                municipal.draw(png, uid)
    except BaseException:  # the parent redraws these maps and reports what fails
        code = 1
    os._exit(code)


def _overview_map(png, stage: Path, classes, scheme, units, clusters) -> None:
    from .plot import new_figure, plot_classes

    fig, ax = new_figure((10, 7.5))
    plot_classes(
        classes,
        scheme,
        ax=ax,
        units=units,
        title="Place types and micro-clusters (hidden in black)",
    )
    finest = _finest(clusters)
    if len(finest):
        _draw_clusters(ax, finest, classes.rio.crs)
    png.save(fig, stage / "clusters_map.png")


def _finest(clusters):
    if not len(clusters):
        return clusters
    return clusters[clusters["scale_eps_m"] == clusters["scale_eps_m"].min()]


class _MunicipalMaps:
    """The map of each municipality of a hidden candidate: the finest scale's clusters and
    every hidden one, reprojected once; each map draws only the units and clusters that
    reach its view (the rest would be clipped away: the same pixels for less work)."""

    def __init__(self, stage: Path, classes, scheme, units, id_col, clusters):
        import pandas as pd

        self.stage, self.classes, self.scheme = stage, classes, scheme
        self.units, self.id_col = units, id_col
        crs = classes.rio.crs
        self.hidden = clusters[clusters["hidden"]] if len(clusters) else clusters
        if not len(self.hidden):
            return
        finest = _finest(clusters)
        shown = finest[~finest["hidden"]]
        shown = pd.concat([shown, self.hidden], ignore_index=True) if len(shown) else self.hidden
        self.shown = shown.to_crs(crs)
        self.units_crs = units.to_crs(crs)
        (stage / "maps").mkdir()

    def uids(self) -> list[str]:
        """The municipalities to map, in order."""
        return sorted({k for ids in self.hidden["unit_ids"] for k in str(ids).split(";") if k})

    def draw(self, png, uid: str) -> None:
        """Draw and save ``maps/hidden_<uid>.png`` (nothing for an unknown unit)."""
        from .plot import new_figure, plot_classes

        units_crs, crs = self.units_crs, self.classes.rio.crs
        unit = units_crs[self.units[self.id_col].astype(str) == uid]
        if not len(unit):
            return
        left, bottom, right, top = unit.total_bounds
        pad = 0.05 * max(right - left, top - bottom)
        view = (left - pad, bottom - pad, right + pad, top + pad)
        sub = self.classes.rio.clip_box(*view)
        fig, ax = new_figure((8, 7))
        reach = _view_reach(ax, view)
        name = f"{uid} {unit.iloc[0]['name']}" if "name" in unit.columns else uid
        plot_classes(sub, self.scheme, ax=ax, units=_reaching(units_crs, reach),
                     title=f"Hidden micro-clusters: {name}")  # fmt: skip
        ax.set_xlim(view[0], view[2])
        ax.set_ylim(view[1], view[3])
        _draw_clusters(ax, _reaching(self.shown, reach, centroids=True), crs)
        png.save(fig, self.stage / "maps" / f"hidden_{uid}.png")


#: how far (in points) beyond a map's view a feature may lie and still be drawn: more than
#: the widest line (1.5 pt) and marker (radius about 4 pt) of the maps reach into the view
_REACH_PT = 20.0


def _view_reach(ax, view: tuple[float, float, float, float]):
    """The box ``view`` (of ax's limits) grown by :data:`_REACH_PT` points on every side.

    With an equal aspect the view fills the axes box at ``min(width / dx, height / dy)``
    points per metre, so the margin in metres is at most ``_REACH_PT`` divided by that.
    """
    import shapely

    fig = ax.get_figure()
    pos = ax.get_position(original=True)
    w_pt = pos.width * fig.get_figwidth() * 72.0
    h_pt = pos.height * fig.get_figheight() * 72.0
    x0, y0, x1, y1 = view
    per_m = min(w_pt / max(x1 - x0, 1e-9), h_pt / max(y1 - y0, 1e-9))
    m = _REACH_PT / per_m
    return shapely.box(x0 - m, y0 - m, x1 + m, y1 + m)


def _reaching(gdf, box, centroids: bool = False):
    """Rows of ``gdf`` whose geometry (or, with ``centroids``, centroid) meets ``box``,
    in their order."""
    keep = gdf.geometry.intersects(box)
    if centroids:
        keep |= gdf.geometry.centroid.intersects(box)
    return gdf[keep.to_numpy()]


def _draw_clusters(ax, clusters, crs) -> None:
    c = clusters.to_crs(crs)
    shown = c[~c["hidden"]]
    if len(shown):
        shown.boundary.plot(ax=ax, color="#555555", linewidth=0.6)
    hid = c[c["hidden"]]
    if len(hid):
        hid.plot(ax=ax, facecolor="none", edgecolor="black", linewidth=1.5)
        cent = hid.geometry.centroid
        ax.scatter(cent.x, cent.y, s=40, facecolor="none", edgecolor="black", linewidth=1.2)
    ax.set_xlabel("")
    ax.set_ylabel("")


def _unit_names(units, id_col) -> dict[str, str]:
    """Unit id -> name (the ``name`` column), or an empty dict without one."""
    if "name" not in units.columns:
        return {}
    return dict(zip(units[id_col].astype(str), units["name"].astype(str), strict=True))


def summary_markdown(
    cfg: RunConfig, clusters, units, id_col, scheme, candidates: Any = None
) -> str:
    """A short human-readable report listing the hidden candidates, rural ones first.

    Every count stands beside the list it counts: the per-scale table counts hidden
    *clusters* (a place hidden at two scales is two clusters there), the candidate list
    groups them into places (one row per candidate, with the scales where it is hidden).
    ``candidates`` is :func:`~pari_geo.clustering.ladder.hidden_candidates` of ``clusters``
    when the caller has it already.
    """
    import numpy as np
    import pandas as pd

    from .clustering.ladder import hidden_candidates

    assert cfg.clusters is not None  # a run file with [clusters]
    names = _unit_names(units, id_col)
    c = cfg.clusters
    lines = [
        "# pari_geo run summary",
        "",
        f"Run file: `{Path(str(cfg.source)).name}` · pari_geo {__version__} · typology "
        f"`{cfg.typology}` · scales {', '.join(f'{e:g} m' for e in c['eps_m'])}"
        f" · min_actors {c['min_actors']} · n_sim {c['n_sim']} · p-values "
        f"`{c['p_method']}` · alpha {c['alpha']} · seed {c['random_state']}",
        "",
    ]
    synthetic = synthetic_inputs(cfg)
    if synthetic:
        lines += [
            f"> **Synthetic data.** Made from synthetic inputs ({', '.join(synthetic)}): the "
            "places, actors and clusters below are invented, not observed.",
            "",
        ]
    rural_codes = registry.get(cfg.typology).rural_codes
    rural_col = bool(rural_codes)
    lines += [
        "## Clusters per scale and rung",
        "",
        "| scale | clusters | hidden |"
        + (" hidden, rural |" if rural_col else "")
        + " micro | municipal | inter-municipal | national | multinational |",
        "|---|---|---|" + ("---|" if rural_col else "") + "---|---|---|---|---|",
    ]
    for eps in sorted(clusters["scale_eps_m"].unique()) if len(clusters) else []:
        at = clusters[clusters["scale_eps_m"] == eps]
        rc = at["rung"].value_counts()
        hid = at[at["hidden"]]
        rural_n = int(hid["dominant_place_type"].isin(rural_codes).sum())
        lines.append(
            f"| {eps:g} m | {len(at)} | {len(hid)} |"
            + (f" {rural_n} |" if rural_col else "")
            + " "
            + " | ".join(
                str(int(rc.get(r, 0)))
                for r in ("micro", "municipal", "inter-municipal", "national", "multinational")
            )
            + " |"
        )
    cand: Any = hidden_candidates(clusters, names) if candidates is None else candidates
    if rural_col and len(cand):
        rural = cand["dominant_place_type"].isin(rural_codes).to_numpy()
    else:
        rural = None
    n_rural = int(rural.sum()) if rural is not None else None
    lines += [
        "",
        "## Hidden candidates: clusters of social and ecological innovation",
        "",
        "Clusters of actors that stand out against their municipality (Monte Carlo test "
        "against actors spread in proportion to residents, Benjamini–Hochberg false "
        f"discovery rate {c['alpha']} over all scales) in municipalities whose overall actor "
        "rate is ordinary (at or below the median), so that municipal statistics do not show "
        "them. A place hidden at several scales is one candidate; `hidden at` lists the "
        "scales, the other columns describe it at the smallest of them.",
        "",
    ]
    if not len(cand):
        lines.append("None found.")
        lines.append("")
        return "\n".join(lines)
    lines.append(
        f"{len(cand)} candidate(s)"
        + (f", {n_rural} of them in rural place types (listed first)." if rural_col else ".")
    )
    lines += [
        "",
        "| candidate | hidden at | municipalities | rung | actors | sectors | place type"
        " | expected | ratio | q |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = np.lexsort((cand["q_value"].to_numpy(), ~rural)) if rural is not None else (
        np.argsort(cand["q_value"].to_numpy(), kind="stable")
    )
    for r in cand.iloc[order].itertuples():
        dpt = r.dominant_place_type
        known = dpt is not None and not pd.isna(dpt)  # type: ignore[arg-type]
        pt = scheme.names.get(int(dpt), "") if known else ""  # type: ignore[arg-type]
        scales = ", ".join(f"{float(e):g} m" for e in str(r.hidden_at_m).split(";"))
        lines.append(
            f"| {r.candidate_id} | {scales} | {r.municipalities} | {r.rung} | {r.n_actors} |"
            f" {str(r.sectors).replace(';', ', ')} | {pt} | {r.expected:.2f} | "
            f"{r.ratio:.1f} | {r.q_value:.3g} |"
        )
    lines.append("")
    return "\n".join(lines)
