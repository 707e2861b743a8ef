"""The ``pari-geo`` command line.

Errors print one line on stderr and exit non-zero (exit code 2 for bad input, 1 for an
internal error); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ._version import __version__
from .errors import PariGeoError

__all__ = ["main", "cli"]

# Paths are checked by pari_geo's readers, which name the layer in their one-line errors.
_PATH = click.Path(readable=False, writable=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pari-geo")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
def cli(debug: bool) -> None:
    """pari_geo: place typologies and micro-clusters for rural regions."""


@cli.group()
def degurba() -> None:
    """Degree of Urbanisation: grid and spatial-units classification."""


@degurba.command("grid")
@click.option("--population", required=True, type=_PATH, help="Residents per cell.")
@click.option(
    "--built", required=True, type=_PATH, help="Built-up surface (m² per cell by default)."
)
@click.option("--land", required=True, type=_PATH, help="Permanent land (m² per cell by default).")
@click.option("--level", type=click.Choice(["1", "2"]), default="2", show_default=True)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a parameter (names as in degurba.md section 5); repeatable.",
)
@click.option(
    "--preset",
    type=click.Choice(["degurba", "degurba_2023"]),
    default="degurba",
    show_default=True,
    help="Rule set: current (2025) or pre-2024 semi-dense rules.",
)
@click.option(
    "--values", default=None, help="Custom output codes, comma-separated, in class order."
)
@click.option("--built-unit", type=click.Choice(["m2", "share"]), default="m2", show_default=True)
@click.option("--land-unit", type=click.Choice(["m2", "share"]), default="m2", show_default=True)
@click.option(
    "--buffer-m",
    type=float,
    default=0.0,
    show_default=True,
    help="Crop this many metres from every side of the result.",
)
@click.option("--out", required=True, type=_PATH, help="Output GeoTIFF (COG).")
@click.option("--map", "map_path", type=_PATH, default=None, help="Also write a PNG map.")
@click.option(
    "--table",
    "table_path",
    type=_PATH,
    default=None,
    help="Also write residents per class (CSV).",
)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option(
    "--engine",
    type=click.Choice(["auto", "memory", "tiled"]),
    default="auto",
    show_default=True,
    help="In memory, or tile by tile for grids larger than memory (identical classes); "
    "auto picks from the grid size and --max-memory.",
)
@click.option(
    "--max-memory",
    default=None,
    metavar="SIZE",
    help="Memory budget of the auto engine choice, e.g. 8GiB [default: half the RAM].",
)
@click.option(
    "--tile",
    default="1024x1024",
    show_default=True,
    metavar="ROWSxCOLS",
    help="Tile of the tiled engine.",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="dask scheduler (tcp://host:8786): the tiled engine's per-cell pass runs on its "
    "workers; inputs and output must be on storage all workers see.",
)
def degurba_grid(
    population,
    built,
    land,
    level,
    settings,
    preset,
    values,
    built_unit,
    land_unit,
    buffer_m,
    out,
    map_path,
    table_path,
    overwrite,
    engine,
    max_memory,
    tile,
    scheduler,
) -> None:
    """Classify grid cells (level 1: 3/2/1/0, level 2: 30/23/22/21/13/12/11/10)."""
    from .classes import DEGURBA_L1, DEGURBA_L2
    from .config import DegurbaParams
    from .io_write import atomic_files, check_output, write_class_raster, write_table
    from .typology.degurba import classify_grid

    execution = _execution_options(engine, max_memory, tile, scheduler)
    budget, tile_shape = execution.get("max_memory"), execution["tile"]
    outputs = [p for p in (out, map_path, table_path) if p]
    for p in outputs:
        check_output(p, overwrite)
    if table_path and Path(table_path).suffix.lower() not in (".csv", ".gpkg", ".parquet"):
        from .errors import OutputError

        raise OutputError(table_path, "unknown table format; use .csv, .gpkg or .parquet")
    params = DegurbaParams.from_preset(preset).with_settings(list(settings))
    if values:
        params = params.with_settings([f"values={values}"])
    lvl = int(level)
    scheduler = execution.get("scheduler")
    if scheduler is not None:
        engine = "tiled"
    if engine == "auto":
        engine = _auto_engine(population, budget)
    if engine == "tiled":
        _degurba_grid_tiled(population, built, land, lvl, params, built_unit, land_unit,
                            buffer_m, out, map_path, table_path, overwrite, tile_shape,
                            scheduler)
        return
    da = classify_grid(
        population,
        built,
        land,
        level=lvl,
        params=params,
        built_unit=built_unit,
        land_unit=land_unit,
        buffer_m=buffer_m,
    )
    scheme = DEGURBA_L1 if lvl == 1 else DEGURBA_L2
    if params.values is not None:
        scheme = scheme.with_codes(params.values)
    table = None
    if table_path:
        from .align import align_to_grid
        from .grid import GridSpec
        from .ingest import open_raster
        from .report import population_by_class

        pop = align_to_grid(
            open_raster(population, "population"), GridSpec.from_dataarray(da), "count"
        )
        table = population_by_class(
            da.values, pop.values, scheme, cell_area_km2=abs(da.rio.transform().a) ** 2 / 1e6
        )
    # the raster, the map and the table appear together or not at all
    with atomic_files(outputs, overwrite) as tmp:
        write_class_raster(da, tmp[Path(out)], scheme)
        if table is not None:
            write_table(table, tmp[Path(table_path)])
        if map_path:
            _write_map(da, scheme, tmp[Path(map_path)], False)
    counts = {int(k): int(v) for k, v in zip(*_unique(da.values), strict=True)}
    click.echo(f"wrote {out}: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))


def _auto_engine(population, budget) -> str:
    """The engine for a population raster's size; ``memory`` when the size is unknown
    (the in-memory loader then reports what is wrong with the file)."""
    from .memory import choose_engine

    try:
        import rasterio

        with rasterio.open(population) as src:
            cells = int(src.width) * int(src.height)
    except Exception:  # noqa: BLE001 - the classification reports the real problem
        return "memory"
    return choose_engine(cells, budget=budget)


def _degurba_grid_tiled(population, built, land, level, params, built_unit, land_unit,
                        buffer_m, out, map_path, table_path, overwrite, tile_shape,
                        scheduler=None) -> None:
    """``degurba grid`` through :func:`pari_geo.outofcore.classify_grid_chunked`."""
    from .classes import DEGURBA_L1, DEGURBA_L2
    from .ingest import read_overview
    from .io_write import atomic_files, write_table
    from .outofcore import classify_grid_chunked
    from .report import population_by_class_from_files

    scheme = DEGURBA_L1 if level == 1 else DEGURBA_L2
    if params.values is not None:
        scheme = scheme.with_codes(params.values)
    outputs = [p for p in (out, map_path, table_path) if p]
    with atomic_files(outputs, overwrite) as tmp:
        res = classify_grid_chunked(
            population, built, land, out_path=tmp[Path(out)], level=level, params=params,
            tile_shape=tile_shape, built_unit=built_unit, land_unit=land_unit,
            buffer_m=buffer_m, overwrite=True, scheduler=scheduler,
        )
        if table_path:
            table = population_by_class_from_files(res.path, population, scheme)
            write_table(table, tmp[Path(table_path)])
        if map_path:
            _write_map(read_overview(res.path), scheme, tmp[Path(map_path)], False)
    counts = {int(k): int(v) for k, v in sorted(res.counts.items()) if v}
    click.echo(f"wrote {out} (tiled, {tile_shape[0]}x{tile_shape[1]}): "
               + ", ".join(f"{k}: {v}" for k, v in counts.items()))


def _unique(a):
    import numpy as np

    return np.unique(a, return_counts=True)


def _write_map(da, scheme, path, overwrite):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plot import plot_classes, save_figure

    fig, ax = plt.subplots(figsize=(10, 7.5))
    plot_classes(da, scheme, ax=ax)
    save_figure(fig, path, overwrite=overwrite)
    plt.close(fig)


@degurba.command("units")
@click.option("--units", "units_path", required=True, type=_PATH, help="Unit polygons.")
@click.option("--id", "id_col", default="UID", show_default=True, help="Unit id column.")
@click.option("--classification", required=True, type=_PATH, help="Grid classification raster.")
@click.option("--population", required=True, type=_PATH, help="Population grid.")
@click.option("--level", type=click.Choice(["1", "2"]), default="1", show_default=True)
@click.option("--rules", type=click.Choice(["2024", "2021"]), default="2024", show_default=True)
@click.option(
    "--workflow",
    type=click.Choice(["official", "alternative"]),
    default="official",
    show_default=True,
)
@click.option(
    "--split-share",
    type=click.Choice(["SDUC", "SUrb"]),
    default="SDUC",
    show_default=True,
    help="Level-2 towns: share that splits 22 from 21.",
)
@click.option("--dissolve-by", default=None, help="Merge units by this column first.")
@click.option("--values", default=None, help="Custom grid codes, comma-separated (without water).")
@click.option("--out", required=True, type=_PATH, help="Output table (.csv or .gpkg).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def degurba_units(
    units_path,
    id_col,
    classification,
    population,
    level,
    rules,
    workflow,
    split_share,
    dissolve_by,
    values,
    out,
    overwrite,
) -> None:
    """Classify spatial units (municipalities) from a classified grid."""
    from .io_write import check_output, write_table
    from .typology.units import classify_units

    check_output(out, overwrite)
    vals = None
    if values:
        try:
            vals = tuple(int(v) for v in values.split(","))
        except ValueError:
            from .errors import ConfigError

            raise ConfigError(
                "values", f"must be comma-separated integers, got {values!r}"
            ) from None
    table = classify_units(
        units_path,
        classification,
        population,
        id=id_col,
        level=int(level),
        values=vals,
        workflow=workflow,
        rules=rules,
        split_share=split_share,
        dissolve_by=dissolve_by,
    )
    write_table(table, out, overwrite=overwrite)
    col = "L2" if level == "2" else "L1"
    counts = table[col].value_counts(dropna=False).sort_index()
    click.echo(
        f"wrote {out}: {len(table)} units; " + ", ".join(f"{k}: {v}" for k, v in counts.items())
    )


def _run_file_execution_options(command):
    """``--engine/--max-memory/--tile/--scheduler`` of the run-file commands (they
    override the run file's ``[execution]``)."""
    options = [
        click.option(
            "--engine",
            type=click.Choice(["auto", "memory", "tiled"]),
            default=None,
            help="In memory or tile by tile (identical classes) [default: [execution] "
            "engine, else auto from the grid size and --max-memory].",
        ),
        click.option("--max-memory", default=None, metavar="SIZE",
                     help="Memory budget of the auto engine choice, e.g. 8GiB "
                     "[default: half the RAM]."),
        click.option("--tile", default=None, metavar="ROWSxCOLS",
                     help="Tile of the tiled engine [default: 1024x1024]."),
        click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="dask scheduler (tcp://host:8786) for the tiled engine; inputs "
                     "and output must be on storage all workers see."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command("classify")
@click.argument("run_file", type=_PATH)
@click.option("--overwrite", is_flag=True, help="Replace the output folder if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_run_file_execution_options
def classify(run_file, overwrite, quiet, engine, max_memory, tile, scheduler) -> None:
    """Run a classification described by a TOML run file."""
    from .pipeline import run_classification
    from .runconfig import load_run

    execution = _execution_options(engine, max_memory, tile, scheduler)
    cfg = load_run(run_file)
    result = run_classification(cfg, overwrite=overwrite, progress=not quiet,
                                execution=execution)
    table = result["table"]
    click.echo(f"wrote {result['out_dir']} ({result['engine']} engine)")
    for row in table.itertuples():
        click.echo(
            f"  {row.code:>3} {row.name:<32} {row.cells:>8} cells "
            f"{row.population:>14,.0f} residents"
        )


@cli.command("run")
@click.argument("run_file", type=_PATH)
@click.option("--overwrite", is_flag=True, help="Replace the output folder if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_run_file_execution_options
def run(run_file, overwrite, quiet, engine, max_memory, tile, scheduler) -> None:
    """Full run: place types, micro-clusters at every scale, tables, maps and a summary."""
    from .pipeline import run_pipeline
    from .runconfig import load_run

    execution = _execution_options(engine, max_memory, tile, scheduler)
    cfg = load_run(run_file)
    result = run_pipeline(cfg, overwrite=overwrite, progress=not quiet, execution=execution)
    clusters = result["clusters"]
    click.echo(f"wrote {result['out_dir']}")
    if len(clusters):
        for eps, at in clusters.groupby("scale_eps_m"):
            click.echo(f"  {eps:>7g} m: {len(at):>5} clusters, {int(at['hidden'].sum()):>4} hidden")


# --- pari-geo prepare (issue 15): downloaded files -> a ready run folder -----------------
@cli.command("prepare")
@click.argument("prepare_file", type=_PATH)
@click.option("--overwrite", is_flag=True,
              help="Replace the run folder if an earlier prepare wrote it.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def prepare_cmd(prepare_file, overwrite, quiet) -> None:
    """Build a run folder (aligned layers + run.toml) from a PREPARE.toml."""
    from .preparation import prepare

    res = prepare(prepare_file, overwrite=overwrite, progress=not quiet)
    g = res["grid"]
    click.echo(f"wrote {res['out_dir']}: {g.shape[0]}x{g.shape[1]} cells of "
               f"{g.cell_size_m:g} m in {g.crs.to_string()}, {res['region_cells']:,} in the "
               f"region, {res['population_total']:,.0f} residents"
               + (f", {res['actors']:,} actors" if res["actors"] is not None else ""))
    click.echo(f"next: pari-geo classify {res['run_file']}")
# --- end pari-geo prepare ---------------------------------------------------------------


def _execution_options(engine, max_memory, tile, scheduler) -> dict:
    """The execution options given on the command line, validated."""
    from .runconfig import validate_execution

    given = {"engine": engine, "max_memory": max_memory, "tile": tile, "scheduler": scheduler}
    return validate_execution({k: v for k, v in given.items() if v is not None},
                              prefix="--", what="option")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pari-geo`` script."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="pari-geo", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("pari-geo: aborted", err=True)
        return 130
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        click.echo(f"pari-geo: error: {e.format_message()}", err=True)
        return e.exit_code
    except PariGeoError as e:
        if debug:
            raise
        click.echo(f"pari-geo: error: {e}", err=True)
        return 2
    except MemoryError:
        click.echo("pari-geo: error: out of memory", err=True)
        return 1
    except Exception as e:  # last resort: one line, not a traceback from inside a library
        if debug:
            raise
        first = str(e).splitlines()[0] if str(e) else ""
        click.echo(
            f"pari-geo: internal error: {type(e).__name__}: {first} (run with --debug for details)",
            err=True,
        )
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
