"""The ``pari-geo`` command line.

Errors print one line on stderr and exit non-zero (exit code 2 for bad input, 1 for an
internal error); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from ._version import __version__
from .errors import PariGeoError
from .typology import registry

__all__ = ["main", "cli"]

_log = logging.getLogger("pari_geo")

# Paths are checked by pari_geo's readers, which name the layer in their one-line errors.
_PATH = click.Path(readable=False, writable=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pari-geo")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.option("-v", "--verbose", count=True,
              help="Messages on stderr: -v what is read, chosen and written; -vv debug.")
@click.option("--log-file", type=_PATH, default=None, metavar="PATH",
              help="Also append every message (debug level, with times) to PATH.")
def cli(debug: bool, verbose: int, log_file: str | None) -> None:
    """pari_geo: place typologies and micro-clusters for rural regions."""
    _setup_logging(verbose, log_file)


def _setup_logging(verbose: int, log_file: str | None) -> None:
    """Handlers of the ``pari_geo`` logger for one command (replacing earlier ones)."""
    import logging

    from .errors import OutputError

    log = logging.getLogger("pari_geo")
    for h in [h for h in log.handlers if getattr(h, "_pari_geo_cli", False)]:
        log.removeHandler(h)
        h.close()
    handlers: list[logging.Handler] = []
    if verbose:
        h = logging.StreamHandler(sys.stderr)
        h.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
        h.setFormatter(logging.Formatter("pari-geo: %(message)s"))
        handlers.append(h)
    if log_file:
        try:
            fh = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as e:
            raise OutputError(log_file, f"cannot write the log file ({e.strerror or e})") from None
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(fh)
    for h in handlers:
        h._pari_geo_cli = True  # type: ignore[attr-defined]
        log.addHandler(h)
    log.setLevel(min((h.level for h in handlers), default=logging.WARNING))


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
    help="Override a parameter (names as in docs/methods/degurba.md section 5); "
    "repeatable.",
)
@click.option(
    "--preset",
    type=click.Choice(list(registry.get("degurba").presets)),
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
@click.option(
    "--nodata",
    type=click.IntRange(0, 255),
    default=None,
    help="Class code of the cells without population (e.g. 255), the raster's no-data "
    "[default: none; they are classed as 0 residents, as the reference does].",
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
    nodata,
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
    from .files_output import check_suffixes
    from .pipeline import run_classification

    execution = _execution_options(engine, max_memory, tile, scheduler)
    check_suffixes(out, map_path, table_path)
    parameters = _degurba_settings(settings, values)
    cfg = _grid_run(
        {"population": population, "built": {"path": built, "unit": built_unit},
         "land": {"path": land, "unit": land_unit}},
        {"name": "degurba", "level": int(level), "preset": preset, "parameters": parameters,
         "buffer_m": buffer_m, **({} if nodata is None else {"nodata": nodata})},
        out, map_path, table_path).with_execution(execution)
    result = run_classification(cfg, overwrite=overwrite, progress=False)
    counts = ", ".join(f"{k}: {v}" for k, v in result["counts"].items())
    if result["engine"] == "tiled":
        rows, cols = result["tile"]
        click.echo(f"wrote {out} (tiled, {rows}x{cols}): {counts}")
    else:
        click.echo(f"wrote {out}: {counts}")


def _degurba_settings(settings, values) -> dict:
    """The parameter changes of ``--set NAME=VALUE`` and ``--values`` (parsed here,
    validated with the rest of the run)."""
    from .config import parse_settings

    changes = parse_settings(list(settings))
    if values:
        changes.update(parse_settings([f"values={values}"]))
    return changes


def _grid_run(inputs: dict, typology: dict, out, map_path, table_path):
    """The frozen run of a ``degurba grid`` command: the same validation as a run file's,
    with paths as given (relative to the working folder) and single output files."""
    from .runconfig import OutputFiles, run_from_mapping

    files = OutputFiles(Path(out), Path(map_path) if map_path else None,
                        Path(table_path) if table_path else None)
    data = {"inputs": inputs, "typology": typology, "outputs": {"dir": str(Path(out).parent)}}
    return run_from_mapping(data, source=None, base=Path.cwd(), resolve_paths=False,
                            files=files)


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
    if Path(out).suffix.lower() not in (".csv", ".gpkg", ".parquet"):
        from .errors import OutputError

        raise OutputError(out, "unknown table format; use .csv, .gpkg or .parquet")
    from .files_output import claimed

    with claimed([out], overwrite, (units_path, classification, population)):
        _degurba_units(units_path, id_col, classification, population, level, rules,
                       workflow, split_share, dissolve_by, values, out, overwrite)


def _degurba_units(units_path, id_col, classification, population, level, rules, workflow,
                   split_share, dissolve_by, values, out, overwrite) -> None:
    """``degurba units`` with its output claimed."""
    from .io_write import write_table
    from .typology.units import classify_units

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
    cfg = load_run(run_file).with_execution(execution)
    _log_run(cfg, "classify")
    result = run_classification(cfg, overwrite=overwrite, progress=not quiet)
    _log.info("wrote %s (%s engine)", result["out_dir"], result["engine"])
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
    from ._warmup import kernel_warmup

    # on an empty numba cache the DBSCAN kernels start compiling in a child process
    # first thing, while this one imports and reads the inputs (issue 11)
    with kernel_warmup():
        from .pipeline import run_pipeline
        from .runconfig import load_run

        execution = _execution_options(engine, max_memory, tile, scheduler)
        cfg = load_run(run_file).with_execution(execution)
        _log_run(cfg, "run")
        result = run_pipeline(cfg, overwrite=overwrite, progress=not quiet)
    _log.info("wrote %s", result["out_dir"])
    clusters = result["clusters"]
    click.echo(f"wrote {result['out_dir']}")
    if len(clusters):
        for eps, at in clusters.groupby("scale_eps_m"):
            click.echo(f"  {eps:>7g} m: {len(at):>5} clusters, {int(at['hidden'].sum()):>4} hidden")


# --- pari-geo validate (issue 16) ------------------------------------------------------------
@cli.command("validate")
@click.argument("run_file", type=_PATH)
@_run_file_execution_options
def validate(run_file, engine, max_memory, tile, scheduler) -> None:
    """Check a run file without running it: every input (readable, georeferenced,
    overlapping the grid, named columns present), then the plan: layers to align, engine,
    memory estimate, outputs."""
    from .runconfig import load_run
    from .validate import format_plan, validate_run

    execution = _execution_options(engine, max_memory, tile, scheduler)
    cfg = load_run(run_file).with_execution(execution)
    _log_run(cfg, "validate")
    for line in format_plan(validate_run(cfg)):
        click.echo(line)
# --- end pari-geo validate -------------------------------------------------------------------


@cli.command("schema")
def schema() -> None:
    """Print the run-file reference: every key with its type, default, allowed values and
    meaning (Markdown; docs/run-file.md is this output)."""
    from .runschema import reference_markdown

    click.echo(reference_markdown(), nl=False)


# --- pari-geo example (issue 16) -------------------------------------------------------------
@cli.command("example")
@click.argument("name", required=False)
@click.argument("dest", required=False, type=_PATH)
@click.option("--list", "list_", is_flag=True, help="List the examples and exit.")
@click.option("--overwrite", is_flag=True, help="Copy into a non-empty folder anyway.")
def example(name, dest, list_, overwrite) -> None:
    """Copy a runnable example (run files and sample data) into DEST.

    The copy has the repository's layout, so that inside DEST the README's commands run
    unchanged, e.g. ``pari-geo example ostergotland demo && cd demo && pari-geo run
    examples/ostergotland_run.toml``.
    """
    from .datasets import EXAMPLES, copy_example

    if list_ or name is None:
        for key, (_, _, text) in sorted(EXAMPLES.items()):
            click.echo(f"{key:<14} {text}")
        return
    if dest is None:
        raise click.UsageError("missing argument DEST (the folder to copy the example into)")
    run_file = copy_example(name, dest, overwrite=overwrite)
    command = "run" if run_file.name.endswith("_run.toml") else "classify"
    click.echo(f"copied example {name!r} to {dest}; run it with:")
    click.echo(f"  cd {dest} && pari-geo {command} examples/{run_file.name} --overwrite")
# --- end pari-geo example --------------------------------------------------------------------


def _log_run(cfg, command: str) -> None:
    """What a run-file command is about to do, at INFO (``-v``) and DEBUG (``-vv``)."""
    _log.info("%s %s: typology %s, output folder %s", command, cfg.source, cfg.typology,
              cfg.out_dir)
    for key, layer in sorted(cfg.inputs.items()):
        _log.debug("input %s: %s", key, layer.path)


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


@cli.command("calibrate")
@click.argument("run_file", type=_PATH)
@click.option("--reference", required=True, type=_PATH, metavar="REF",
              help="Reference classes: a class raster (codes 0..7) on any grid in the run's "
              "CRS, or points with --class-column (e.g. Nordregio's 1 km typology).")
@click.option("--fit", "fit", required=True, metavar="A,B,C",
              help="The nordic7 parameters to fit, comma-separated.")
@click.option("--out", "out_dir", required=True, type=click.Path(), metavar="DIR",
              help="Output folder (calibration.json, calibrated.toml, disagreement map).")
@click.option("--class-column", default=None, help="Class column of a point reference.")
@click.option("--objective", type=click.Choice(["agreement", "kappa"]), default="agreement",
              show_default=True, help="What the fit maximises.")
@click.option("--overwrite", is_flag=True, help="Replace the output folder if pari_geo wrote it.")
def calibrate_cmd(run_file, reference, fit, out_dir, class_column, objective, overwrite) -> None:
    """Fit the place types of RUN_FILE to a reference classification."""
    from .calibration_run import run_calibration
    from .runconfig import load_run

    cfg = load_run(run_file)
    res = run_calibration(cfg, reference, fit=fit, out_dir=out_dir, class_column=class_column,
                          objective=objective, overwrite=overwrite)
    c = res["calibration"]
    click.echo(f"wrote {res['out_dir']}: agreement {c.start.agreement:.4f} -> "
               f"{c.agreement:.4f}, kappa {c.start.kappa:.4f} -> {c.kappa:.4f} "
               f"({c.evaluations} runs of the rules)")
    for name, value in c.params.items():
        click.echo(f"  {name} = {value:g}")


def _execution_options(engine, max_memory, tile, scheduler) -> dict:
    """The execution options given on the command line, validated."""
    from .runconfig import validate_execution

    given = {"engine": engine, "max_memory": max_memory, "tile": tile, "scheduler": scheduler}
    return validate_execution({k: v for k, v in given.items() if v is not None},
                              prefix="--", what="option")


class Stopped(BaseException):
    """Raised in the main thread when the process receives SIGTERM (or SIGHUP).

    A ``BaseException`` like ``KeyboardInterrupt``, so that it unwinds through every
    ``with`` block: staging folders, scratch files and claims are removed on the way out.
    """

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        super().__init__(signal.Signals(signum).name)


#: signals that arrived inside Python's import machinery, delivered once it is left
_DEFERRED: list[int] = []


def _in_import(frame) -> bool:
    """Whether ``frame`` or a caller runs in ``importlib``'s bootstrap code."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _raise_stopped(signum, frame) -> None:
    """Raise :class:`Stopped`, unless the signal interrupted an import: an exception
    there can leave Python's import lock held (its module-lock callback takes the lock
    outside a ``try``), and every later import, in every thread, then hangs. Such a
    signal is raised again 10 ms later (SIGALRM), until it lands outside an import."""
    import signal

    if hasattr(signal, "setitimer") and _in_import(frame):
        _DEFERRED.append(signum)
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        return
    raise Stopped(signum)


def _raise_deferred(_signum, frame) -> None:
    if _DEFERRED:
        _raise_stopped(_DEFERRED.pop(), frame)


def _install_signal_handlers() -> dict:
    """SIGTERM/SIGHUP raise :class:`Stopped` (SIGINT raises KeyboardInterrupt already)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, _raise_stopped)
    if hasattr(signal, "SIGALRM") and hasattr(signal, "setitimer"):
        previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, _raise_deferred)
    return previous


def _restore_signal_handlers(previous: dict) -> None:
    import signal

    for sig, handler in previous.items():
        signal.signal(sig, handler)


class _NoteHandler:
    """Log records of pari_geo (INFO and up) as ``pari-geo: note: ...`` lines on stderr."""

    @staticmethod
    def make():
        import logging

        class Handler(logging.Handler):
            def emit(self, record):
                if record.name == "pari_geo":  # notes, not the modules' progress detail
                    click.echo(f"pari-geo: note: {record.getMessage()}", err=True)

        return Handler(logging.INFO)


def _quiet_dependencies(debug: bool):
    """Keep dependencies' log lines (GDAL/libtiff errors routed by rasterio, pyogrio ...)
    off stderr unless ``--debug``; pari_geo's own notes are printed as one line each."""
    import logging

    root = logging.getLogger()
    ours = logging.getLogger("pari_geo")
    added = []
    if not debug:
        null = logging.NullHandler()
        root.addHandler(null)
        added.append((root, null))
    note = _NoteHandler.make()
    ours.addHandler(note)
    added.append((ours, note))
    level = ours.level
    ours.setLevel(logging.INFO)
    return added, level


def _restore_logging(state) -> None:
    import logging

    added, level = state
    for logger, handler in added:
        logger.removeHandler(handler)
    logging.getLogger("pari_geo").setLevel(level)


def _print_warnings(caught, debug: bool) -> None:
    """pari_geo's warnings as one line each; dependencies' only with ``--debug``."""
    package = str(Path(__file__).resolve().parent)
    for w in caught:
        ours = str(Path(w.filename).resolve()).startswith(package) or str(
            w.message).startswith(("pari_geo", "pari-geo"))
        if not (ours or debug) or issubclass(w.category, DeprecationWarning) and not debug:
            continue
        text = str(w.message).strip().splitlines()
        click.echo(f"pari-geo: warning: {text[0] if text else w.category.__name__}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pari-geo`` script.

    Errors print one line; warnings are printed after the command finished (pari_geo's
    own as ``pari-geo: warning: ...``, dependencies' only with ``--debug``) and not at
    all when the command fails, so the error line is the only line. SIGTERM and SIGINT
    stop the command cleanly (no staging or scratch left, exit 143 or 130).
    """
    import warnings

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    handlers = _install_signal_handlers()
    logging_state = _quiet_dependencies(debug)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            code = _main(args, debug)
        finally:
            _restore_signal_handlers(handlers)
            _restore_logging(logging_state)
    if code == 0:
        _print_warnings(caught, debug)
    return code


def _main(args: list[str], debug: bool) -> int:
    try:
        cli.main(args=args, prog_name="pari-geo", standalone_mode=False)
    except Stopped as e:
        click.echo(f"pari-geo: stopped by {e}; nothing was written (staging and scratch "
                   "removed)", err=True)
        return 128 + e.signum
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("pari-geo: aborted (SIGINT); nothing was written (staging and scratch "
                   "removed)", err=True)
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
