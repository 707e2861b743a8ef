"""Run files: a TOML document naming the inputs, the typology and the outputs.

Validated once when loaded (unknown keys and wrong types are :class:`ConfigError` naming
the key, e.g. ``outputs.rasterr``); relative paths are resolved against the run file's
folder; the result is immutable.

Example run file::

    [inputs]
    population = "../data/sample_grids/belgium/POP.tif"
    built = { path = "../data/sample_grids/belgium/BUILT_S.tif", unit = "m2" }
    land = { path = "../data/sample_grids/belgium/LAND.tif", unit = "m2" }
    units = { path = "../data/sample_grids/belgium/units_belgium_statbel2024.gpkg", id = "UID" }

    [typology]
    name = "degurba"          # or "nordic7"
    level = 2
    preset = "degurba"        # or "degurba_2023"
    [typology.parameters]
    UC_density_threshold = 1500

    [outputs]
    dir = "../out/belgium"

    [execution]               # optional: how to run, never what comes out
    engine = "auto"           # "memory", "tiled" or "auto" (from the grid size)
    max_memory = "8GiB"       # budget of the automatic choice (default: half the RAM)
    tile = "1024x1024"        # tiles of the tiled engine
    scheduler = "tcp://scheduler:8786"   # a dask cluster for the tiled engine

The ``[execution]`` settings change how a run is computed, not its results (the same
classes cell for cell, the same tables and clusters), so they are not part of the resolved
configuration written into the outputs. A raster made by the tiled engine records its
tile shape in an ``OUT_OF_CORE`` tag; with a scheduler or without, it is byte-identical.
Command-line options override the run file's: ``--engine memory`` drops its
``scheduler``, ``--scheduler`` its ``engine``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from . import runschema as schema
from .clustering.options import CLUSTER_DEFAULTS as _CLUSTER_OPTION_DEFAULTS
from .clustering.options import MAX_SIMULATIONS, check_cluster_options
from .config import load_toml
from .errors import ConfigError as _ConfigError
from .typology import registry

__all__ = ["LayerInput", "OutputFiles", "RunConfig", "load_run", "run_from_mapping",
           "validate_execution"]


def ConfigError(key: str, problem: str, file: str | None = None) -> _ConfigError:  # noqa: N802
    """A :class:`~pari_geo.errors.ConfigError` about a run-file key."""
    return _ConfigError(key, problem, file, what="key")


#: the largest ``clusters.n_sim``: the one definition in :mod:`pari_geo.clustering.options`
MAX_N_SIM = MAX_SIMULATIONS
#: Defaults of ``[clusters]``: the Python API's (:mod:`pari_geo.clustering.options`).
CLUSTER_DEFAULTS = {
    k: (list(v) if k == "eps_m" else v) for k, v in _CLUSTER_OPTION_DEFAULTS.items()
}
ENGINES = schema.EXECUTION["engine"].choices
TYPOLOGIES = registry.names()


@dataclass(frozen=True)
class LayerInput:
    """One input layer: its path and how to read it."""

    path: Any  # a Path, or a str for GDAL paths (/vsizip/, s3://, https://)
    unit: str | None = None
    id: str | None = None
    mapping: str | None = None
    band: int = 1
    layer: str | None = None
    sector: str | None = None
    social: str | None = None
    region: str | None = None
    country: str | None = None
    class_column: str | None = None
    speed_column: str | None = None
    speeds: str | None = None
    offroad_kmh: float | None = None


@dataclass(frozen=True)
class OutputFiles:
    """Single output files instead of an output folder (``pari-geo degurba grid``): the
    class raster (with its ``.qml`` style beside it), and optionally a PNG map and a table
    of residents per class. They carry no run configuration or provenance."""

    raster: Path
    map: Path | None = None
    table: Path | None = None

    def paths(self) -> list[Path]:
        """Every file written, in the order they are claimed."""
        return [p for p in (self.raster, self.raster.with_suffix(".qml"), self.map,
                            self.table) if p]


def _frozen(d: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class RunConfig:
    """A validated run (immutable): what every stage receives.

    Built by :func:`load_run` from a run file, or by :func:`run_from_mapping` from the
    same data (the command line), validated once. ``params`` is the typology's validated
    parameter object (preset plus ``parameters``); ``execution`` holds the run file's
    ``[execution]`` already updated by the command line (:meth:`with_execution`).
    """

    source: Path | None
    inputs: Mapping[str, LayerInput]
    typology: str
    level: int
    preset: str | None
    parameters: Mapping[str, Any]
    options: Mapping[str, Any]
    out_dir: Path
    outputs: Mapping[str, Any] = field(default_factory=dict)
    clusters: Mapping[str, Any] | None = None
    execution: Mapping[str, Any] = field(default_factory=dict)
    params: Any = None
    files: OutputFiles | None = None

    def __post_init__(self) -> None:
        for name in ("inputs", "parameters", "options", "outputs", "execution"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        if self.clusters is not None:
            object.__setattr__(self, "clusters", _frozen(self.clusters))

    def __reduce__(self):  # read-only mappings do not pickle; their dicts do
        values = (getattr(self, f.name) for f in dataclasses.fields(self))
        return (type(self), tuple(dict(v) if isinstance(v, MappingProxyType) else v
                                  for v in values))

    def with_execution(self, given: Mapping[str, Any] | None) -> RunConfig:
        """A copy whose ``[execution]`` is updated by ``given`` (the command line's,
        validated by :func:`validate_execution`).

        A choice on the command line overrides the run file's whole engine choice:
        ``--engine memory`` drops the file's scheduler, ``--scheduler`` the file's engine.
        """
        if not given:
            return self
        ex = {**self.execution, **given}
        if given.get("engine") == "memory" and "scheduler" not in given:
            ex.pop("scheduler", None)
        if "scheduler" in given and "engine" not in given:
            ex.pop("engine", None)
        return dataclasses.replace(self, execution=ex)

    def to_dict(self) -> dict[str, Any]:
        """Resolved configuration as plain data (written into every output)."""
        return {
            "inputs": {
                k: {
                    kk: (str(vv) if isinstance(vv, Path) else vv)
                    for kk, vv in v.__dict__.items()
                    if vv is not None
                }
                for k, v in self.inputs.items()
            },
            "typology": {
                "name": self.typology,
                "level": self.level,
                "preset": self.preset,
                "parameters": dict(self.parameters),
                **self.options,
            },
            "outputs": {"dir": str(self.out_dir), **self.outputs},
            **({"clusters": dict(self.clusters)} if self.clusters is not None else {}),
        }


def _unknown(section: str, data: Mapping, allowed, file: str | None) -> None:
    for k in data:
        if k not in allowed:
            raise ConfigError(
                f"{section}.{k}" if section else k,
                f"unknown key (allowed: {', '.join(sorted(allowed))})",
                file,
            )


def _check_types(section: str, data: Mapping, keys: Mapping[str, schema.Key],
                 file: str | None) -> None:
    """Unknown keys and wrong types of one table of the schema."""
    _unknown(section, data, keys, file)
    for k, v in data.items():
        keys[k].check_type(f"{section}.{k}", v, file)


def load_run(path: str | Path) -> RunConfig:
    """Load and validate a run file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "run.toml").write_text(
    ...     '[inputs]\\npopulation = "pop.tif"\\nbuilt = "b.tif"\\nland = "l.tif"\\n'
    ...     '[typology]\\nname = "degurba"\\n[outputs]\\ndir = "out"\\n')
    >>> cfg = load_run(d / "run.toml")
    >>> cfg.typology, cfg.level, cfg.out_dir.name
    ('degurba', 2, 'out')
    """
    path = Path(path)
    return run_from_mapping(load_toml(path), source=path, base=path.resolve().parent)


def run_from_mapping(data: Mapping[str, Any], *, source: Path | None, base: Path,
                     resolve_paths: bool = True, files: OutputFiles | None = None
                     ) -> RunConfig:
    """Validate the data of a run file (as :func:`load_run` reads it) into a
    :class:`RunConfig`.

    Parameters
    ----------
    data : mapping
        The run file's tables.
    source : Path or None
        The run file (named in messages and protected from the outputs); ``None`` for a
        run given on the command line.
    base : Path
        Folder that relative paths are resolved against.
    resolve_paths : bool
        Resolve input paths against ``base`` (a run file); ``False`` keeps them as given
        (the command line's, relative to the working folder).
    files : OutputFiles, optional
        Single output files instead of ``outputs.dir`` (``pari-geo degurba grid``).
    """
    file = None if source is None else str(source)
    _unknown("", data, schema.SECTIONS, file)
    for section in schema.REQUIRED_SECTIONS:
        if section not in data:
            raise ConfigError(section, "missing section", file)
        if not isinstance(data[section], dict):
            raise ConfigError(section, "must be a table", file)
    inputs = _validate_inputs(data["inputs"], base, file, resolve_paths)
    typ = _validate_typology(data["typology"], inputs, file)
    out_dir, outputs = _validate_outputs(data["outputs"], base, file)
    clusters = _validate_clusters(data.get("clusters"), inputs, file)
    execution = validate_execution(data.get("execution", {}), file)
    return RunConfig(source, inputs, typ["name"], typ["level"], typ["preset"],
                     typ["parameters"], typ["options"], out_dir, outputs, clusters,
                     execution, typ["params"], files)


def _validate_inputs(section: Mapping, base: Path, file: str | None,
                     resolve_paths: bool = True) -> dict[str, LayerInput]:
    inputs: dict[str, LayerInput] = {}
    _unknown("inputs", section, schema.LAYERS, file)
    for name, spec in section.items():
        key = f"inputs.{name}"
        if isinstance(spec, str):
            spec = {"path": spec}
        if not isinstance(spec, dict):
            raise ConfigError(key, f"must be a path string or a table, got {spec!r}", file)
        _unknown(key, spec, schema.LAYER_KEYS, file)
        if "path" not in spec:
            raise ConfigError(f"{key}.path", "missing", file)
        for k, v in spec.items():
            schema.LAYER_KEYS[k].check_type(f"{key}.{k}", v, file)
        _check_layer_keys(name, spec, file)
        if name == "speed" and "roads" in section:
            raise ConfigError("inputs.roads", "give roads or speed, not both (the roads make "
                              "the speed raster)", file)
        if name == "commuting_od" and "commuting" in section:
            raise ConfigError("inputs.commuting_od", "give commuting or commuting_od, not "
                              "both", file)
        if name == "commuting_od" and "units" not in section:
            raise ConfigError("inputs.commuting_od", "needs inputs.units (the units its "
                              "origins and destinations name, with their id column)", file)
        if "offroad_kmh" in spec and not spec["offroad_kmh"] > 0:
            raise ConfigError(f"{key}.offroad_kmh", f"must be a positive speed, got "
                              f"{spec['offroad_kmh']!r}", file)
        if resolve_paths and spec.get("speeds") not in (None, "osm_speeds"):
            spec = {**spec, "speeds": str(_layer_path(spec["speeds"], base))}
        path = _layer_path(spec["path"], base) if resolve_paths else spec["path"]
        inputs[name] = LayerInput(path=path, **{k: v for k, v in spec.items() if k != "path"})
    if "population" not in inputs:
        raise ConfigError("inputs.population", "missing (the population grid is required)", file)
    return inputs


def _check_layer_keys(name: str, spec: dict, file: str | None) -> None:
    """Refuse a layer key that this input does not use (it would be silently ignored)."""
    applies = schema.LAYERS[name].keys
    for k in spec:
        if k != "path" and k not in applies:
            allowed = ", ".join(("path", *applies))
            raise ConfigError(f"inputs.{name}.{k}", f"does not apply to the {name} layer "
                              f"(its keys: {allowed})", file)
    band = spec.get("band", 1)
    if band != 1:
        raise ConfigError(f"inputs.{name}.band", f"only band 1 is read, got {band}; extract "
                          f"band {band} first (gdal_translate -b {band} IN.tif OUT.tif)",
                          file)
    if "unit" in spec:
        schema.LAYER_KEYS["unit"].check_choice(f"inputs.{name}.unit", spec["unit"], file)


def _validate_typology(typ: Mapping, inputs: Mapping[str, LayerInput], file: str | None
                       ) -> dict[str, Any]:
    """The ``[typology]`` table checked against the schema and the typology's entry."""
    keys = schema.TYPOLOGY
    _check_types("typology", typ, keys, file)
    name = typ.get("name", keys["name"].default)
    if name not in registry.names():  # the registry now, not at import (tests add to it)
        raise ConfigError("typology.name", schema.choice_problem(registry.names(), name), file)
    entry = registry.get(name)
    level = typ.get("level", keys["level"].default)
    if entry.levels and level not in entry.levels:
        raise ConfigError("typology.level", schema.choice_problem(entry.levels, level), file)
    for layer in entry.needs:
        if layer not in inputs:
            raise ConfigError(f"inputs.{layer}", f"missing ({entry.label} needs it)", file)
    for k in typ:
        if k not in ("name", "preset", "parameters") and k not in entry.keys:
            owners = " and ".join(t.label for t in registry.owners_of(k))
            raise ConfigError(f"typology.{k}", f"applies to {owners} only, not to {name}",
                              file)
    for k in ("rules", "workflow"):
        if k in typ and "units" not in inputs:
            raise ConfigError(f"typology.{k}", "classifies units: it needs inputs.units", file)
    if "buffer_m" in typ and typ["buffer_m"] < 0:
        raise ConfigError("typology.buffer_m", f"must not be negative, got {typ['buffer_m']}",
                          file)
    options = {k: typ[k] for k in ("rules", "workflow", "dissolve_by", "buffer_m", "nodata")
               if k in typ}
    if "rules" in options:
        keys["rules"].check_choice("typology.rules", options["rules"], file)
    if "dissolve_by" in options and "units" not in inputs:
        raise ConfigError("typology.dissolve_by", "needs inputs.units (the units to dissolve)",
                          file)
    if "workflow" in options:
        keys["workflow"].check_choice("typology.workflow", options["workflow"], file)
    preset = typ.get("preset")
    if preset is not None and preset not in entry.presets:
        raise ConfigError("typology.preset", f"unknown {entry.label} preset {preset!r}; use "
                          f"one of {entry.presets}", file)
    parameters = dict(typ.get("parameters", {}))
    params = entry.parameters(preset, parameters, file)
    if "nodata" in options:
        from .classes import check_nodata

        codes = entry.class_codes(params, level) if entry.class_codes else ()
        check_nodata(options["nodata"], codes, "typology.nodata", file, what="key")
    return {"name": name, "level": level, "preset": preset, "parameters": parameters,
            "options": options, "params": params}


def _validate_outputs(outs: Mapping, base: Path, file: str | None) -> tuple[Path, dict[str, Any]]:
    _check_types("outputs", outs, schema.OUTPUTS, file)
    if "dir" not in outs:
        raise ConfigError("outputs.dir", "missing", file)
    if not outs["dir"].strip():
        raise ConfigError("outputs.dir", "must name a folder for the outputs, got an empty "
                          "string", file)
    out_dir = Path(outs["dir"]).expanduser()
    out_dir = (out_dir if out_dir.is_absolute() else base / out_dir).resolve()
    return out_dir, {k: v for k, v in outs.items() if k != "dir"}


def _layer_path(text: str, base: Path) -> Path | str:
    """A layer path resolved against the run file's folder; GDAL paths (``/vsizip/``,
    ``/vsicurl/``, ``s3://``, ``https://``) stay strings."""
    from .ingest import resolve_path

    return resolve_path(text, base)


def validate_execution(section: Any, file: str | None = None, prefix: str = "execution.",
                       what: str = "key") -> dict[str, Any]:
    """The ``[execution]`` settings, checked and normalised.

    ``max_memory`` becomes bytes and ``tile`` a ``(rows, cols)`` pair. Also used for the
    CLI options that override them (``prefix="--"``, ``what="option"``).

    Examples
    --------
    >>> validate_execution({"engine": "tiled", "tile": "64x32", "max_memory": "1GiB"})
    {'engine': 'tiled', 'tile': (64, 32), 'max_memory': 1073741824}
    """
    from .memory import parse_size, parse_tile

    keys = schema.EXECUTION

    def name(key: str) -> str:
        return f"{prefix}{key.replace('_', '-') if prefix == '--' else key}"

    def err(key: str, problem: str) -> _ConfigError:
        return _ConfigError(name(key), problem, file, what=what)

    if not isinstance(section, dict):
        raise err("", "must be a table")
    for k, v in section.items():
        if k not in keys:
            raise err(k, f"unknown key (allowed: {', '.join(sorted(keys))})")
        ok = isinstance(v, keys[k].type) and not isinstance(v, bool)
        if not ok:
            raise err(k, f"must be {schema.type_name(keys[k].type)}, got {v!r}")
    out: dict[str, Any] = {}
    engine = section.get("engine")
    if engine is not None:
        if engine not in keys["engine"].choices:
            raise err("engine", schema.choice_problem(keys["engine"].choices, engine))
        out["engine"] = engine
    if "tile" in section:
        try:
            out["tile"] = parse_tile(section["tile"], name("tile"), what)
        except _ConfigError as e:
            raise _ConfigError(e.key, e.problem, file, what=what) from None
    if "max_memory" in section:
        try:
            out["max_memory"] = parse_size(section["max_memory"], name("max_memory"), what)
        except _ConfigError as e:
            raise _ConfigError(e.key, e.problem, file, what=what) from None
    scheduler = section.get("scheduler")
    if scheduler is not None:
        if not scheduler.strip():
            raise err("scheduler", "must be a scheduler address such as 'tcp://host:8786'")
        if engine == "memory":
            raise err("scheduler", "runs the tiled engine; it contradicts engine = 'memory'")
        out["scheduler"] = scheduler.strip()
    return out


def _validate_clusters(section: Any, inputs: Mapping[str, LayerInput], file: str | None
                       ) -> dict | None:
    """The optional ``[clusters]`` section (micro-cluster detection of ``pari-geo run``)."""
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError("clusters", "must be a table", file)
    _check_types("clusters", section, schema.CLUSTERS, file)
    eps = section.get("eps_m", CLUSTER_DEFAULTS["eps_m"])
    eps = eps if isinstance(eps, list) else [eps]
    checked = check_cluster_options({**section, "eps_m": eps}, "clusters.", file, what="key")
    if sorted(eps) != eps or len(set(eps)) != len(eps):
        raise ConfigError("clusters.eps_m", f"scales must be strictly increasing, got {eps}", file)
    out = {**CLUSTER_DEFAULTS, **checked}
    out["eps_m"] = [float(e) for e in eps]
    if "actors" not in inputs:
        raise ConfigError("inputs.actors", "missing (the [clusters] section needs actors)", file)
    return out
