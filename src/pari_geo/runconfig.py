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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .clustering.options import CLUSTER_DEFAULTS as _CLUSTER_OPTION_DEFAULTS
from .clustering.options import MAX_SIMULATIONS, check_cluster_options
from .config import load_toml
from .errors import ConfigError as _ConfigError

__all__ = ["LayerInput", "RunConfig", "load_run"]


def ConfigError(key: str, problem: str, file: str | None = None) -> _ConfigError:  # noqa: N802
    """A :class:`~pari_geo.errors.ConfigError` about a run-file key."""
    return _ConfigError(key, problem, file, what="key")


_LAYER_KEYS = {
    "path": str,
    "unit": str,
    "id": str,
    "mapping": str,
    "band": int,
    "layer": str,
    "sector": str,
    "social": str,
    "region": str,
    "country": str,
}
#: the layer keys each input honours (``path`` always); any other key is refused
_LAYER_APPLIES = {
    "population": ("band",),
    "built": ("unit", "band"),
    "land": ("unit", "band"),
    "agri": ("band",),
    "landcover": ("mapping", "band"),
    "commuting": ("band",),
    "service_minutes": ("band",),
    "speed": ("band",),
    "units": ("id", "layer", "region", "country"),
    "actors": ("layer", "sector", "social"),
}
#: the largest ``clusters.n_sim`` and the range of ``clusters.eps_m`` (metres): the one
#: definition in :mod:`pari_geo.clustering.options`
MAX_N_SIM = MAX_SIMULATIONS
_CLUSTER_KEYS = {
    "eps_m": (int, float, list),
    "min_actors": int,
    "n_sim": int,
    "alpha": (int, float),
    "random_state": int,
    "micro_max_extent_m": (int, float),
    "micro_max_actors": int,
    "footprint": str,
    "early_stop": int,
    "p_method": str,
    "pool_size": int,
    "n_jobs": int,
}
#: Defaults of ``[clusters]``: the Python API's (:mod:`pari_geo.clustering.options`).
CLUSTER_DEFAULTS = {
    k: (list(v) if k == "eps_m" else v) for k, v in _CLUSTER_OPTION_DEFAULTS.items()
}
_INPUT_LAYERS = (
    "population",
    "built",
    "land",
    "units",
    "agri",
    "landcover",
    "commuting",
    "service_minutes",
    "speed",
    "actors",
)
_TYPOLOGY_KEYS = {
    "name": str,
    "level": int,
    "preset": str,
    "parameters": dict,
    "rules": str,
    "workflow": str,
    "dissolve_by": str,
    "buffer_m": (int, float),
}
_OUTPUT_KEYS = {
    "dir": str,
    "map": bool,
    "table": bool,
    "units_table": bool,
}
_EXECUTION_KEYS: dict[str, Any] = {
    "engine": str,
    "max_memory": (str, int),
    "tile": (str, list),
    "scheduler": str,
}
ENGINES = ("auto", "memory", "tiled")
TYPOLOGIES = ("degurba", "nordic7")


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


@dataclass(frozen=True)
class RunConfig:
    """A validated run file (immutable)."""

    source: Path
    inputs: dict[str, LayerInput]
    typology: str
    level: int
    preset: str | None
    parameters: dict[str, Any]
    options: dict[str, Any]
    out_dir: Path
    outputs: dict[str, Any] = field(default_factory=dict)
    clusters: dict[str, Any] | None = None
    execution: dict[str, Any] = field(default_factory=dict)

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
                "parameters": self.parameters,
                **self.options,
            },
            "outputs": {"dir": str(self.out_dir), **self.outputs},
            **({"clusters": self.clusters} if self.clusters is not None else {}),
        }


def _type_name(t: Any) -> str:
    if t == (int, float, list):
        return "a number or a list of numbers"
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return {str: "a string", int: "an integer", bool: "true/false", dict: "a table"}.get(
        t, t.__name__
    )


def _check_type(key: str, value: Any, expected: Any, file: str) -> None:
    ok = isinstance(value, expected)
    if expected is int or (isinstance(expected, tuple) and int in expected):
        ok = ok and not isinstance(value, bool)
    if not ok:
        raise ConfigError(key, f"must be {_type_name(expected)}, got {value!r}", file)


def _unknown(section: str, data: dict, allowed, file: str) -> None:
    for k in data:
        if k not in allowed:
            raise ConfigError(
                f"{section}.{k}" if section else k,
                f"unknown key (allowed: {', '.join(sorted(allowed))})",
                file,
            )


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
    file = str(path)
    data = load_toml(path)
    base = path.resolve().parent
    _unknown("", data, ("inputs", "typology", "outputs", "clusters", "execution"), file)
    for section in ("inputs", "typology", "outputs"):
        if section not in data:
            raise ConfigError(section, "missing section", file)
        if not isinstance(data[section], dict):
            raise ConfigError(section, "must be a table", file)

    inputs: dict[str, LayerInput] = {}
    _unknown("inputs", data["inputs"], _INPUT_LAYERS, file)
    for name, spec in data["inputs"].items():
        key = f"inputs.{name}"
        if isinstance(spec, str):
            spec = {"path": spec}
        if not isinstance(spec, dict):
            raise ConfigError(key, f"must be a path string or a table, got {spec!r}", file)
        _unknown(key, spec, _LAYER_KEYS, file)
        if "path" not in spec:
            raise ConfigError(f"{key}.path", "missing", file)
        for k, v in spec.items():
            _check_type(f"{key}.{k}", v, _LAYER_KEYS[k], file)
        _check_layer_keys(name, spec, file)
        inputs[name] = LayerInput(
            path=_layer_path(spec["path"], base),
            unit=spec.get("unit"),
            id=spec.get("id"),
            mapping=spec.get("mapping"),
            band=spec.get("band", 1),
            layer=spec.get("layer"),
            sector=spec.get("sector"),
            social=spec.get("social"),
            region=spec.get("region"),
            country=spec.get("country"),
        )
    if "population" not in inputs:
        raise ConfigError("inputs.population", "missing (the population grid is required)", file)

    typ = data["typology"]
    _unknown("typology", typ, _TYPOLOGY_KEYS, file)
    for k, v in typ.items():
        _check_type(f"typology.{k}", v, _TYPOLOGY_KEYS[k], file)
    name = typ.get("name", "degurba")
    if name not in TYPOLOGIES:
        raise ConfigError("typology.name", f"must be one of {TYPOLOGIES}, got {name!r}", file)
    level = typ.get("level", 2)
    if name == "degurba":
        if level not in (1, 2):
            raise ConfigError("typology.level", f"must be 1 or 2, got {level!r}", file)
        for layer in ("built", "land"):
            if layer not in inputs:
                raise ConfigError(f"inputs.{layer}", "missing (DEGURBA needs it)", file)
    _check_typology_keys(name, typ, inputs, file)
    options = {k: typ[k] for k in ("rules", "workflow", "dissolve_by", "buffer_m") if k in typ}
    if options.get("rules", "2024") not in ("2024", "2021"):
        raise ConfigError(
            "typology.rules", f"must be '2024' or '2021', got {options['rules']!r}", file
        )
    if "dissolve_by" in options and "units" not in inputs:
        raise ConfigError(
            "typology.dissolve_by", "needs inputs.units (the units to dissolve)", file
        )
    if options.get("workflow", "official") not in ("official", "alternative"):
        raise ConfigError("typology.workflow", "must be 'official' or 'alternative'", file)
    params = dict(typ.get("parameters", {}))
    _validate_parameters(name, typ.get("preset"), params, file)

    outs = data["outputs"]
    _unknown("outputs", outs, _OUTPUT_KEYS, file)
    for k, v in outs.items():
        _check_type(f"outputs.{k}", v, _OUTPUT_KEYS[k], file)
    if "dir" not in outs:
        raise ConfigError("outputs.dir", "missing", file)
    if not outs["dir"].strip():
        raise ConfigError("outputs.dir", "must name a folder for the outputs, got an empty "
                          "string", file)
    out_dir = Path(outs["dir"]).expanduser()
    out_dir = (out_dir if out_dir.is_absolute() else base / out_dir).resolve()
    outputs = {k: v for k, v in outs.items() if k != "dir"}
    clusters = _validate_clusters(data.get("clusters"), inputs, file)
    execution = validate_execution(data.get("execution", {}), file)
    return RunConfig(
        path, inputs, name, level, typ.get("preset"), params, options, out_dir, outputs, clusters,
        execution,
    )


def _check_layer_keys(name: str, spec: dict, file: str) -> None:
    """Refuse a layer key that this input does not use (it would be silently ignored)."""
    applies = _LAYER_APPLIES[name]
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
    if name in ("built", "land") and "unit" in spec and spec["unit"] not in ("m2", "share"):
        raise ConfigError(f"inputs.{name}.unit",
                          f"must be 'm2' or 'share', got {spec['unit']!r}", file)


def _check_typology_keys(name: str, typ: dict, inputs: dict, file: str) -> None:
    """Refuse typology keys that the chosen typology would ignore."""
    if name == "nordic7":
        for k in ("level", "rules", "workflow", "dissolve_by", "buffer_m"):
            if k in typ:
                raise ConfigError(f"typology.{k}", "applies to DEGURBA only, not to nordic7",
                                  file)
    for k in ("rules", "workflow"):
        if k in typ and "units" not in inputs:
            raise ConfigError(f"typology.{k}", "classifies units: it needs inputs.units",
                              file)
    if "buffer_m" in typ and typ["buffer_m"] < 0:
        raise ConfigError("typology.buffer_m", f"must not be negative, got {typ['buffer_m']}",
                          file)


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

    def name(key: str) -> str:
        return f"{prefix}{key.replace('_', '-') if prefix == '--' else key}"

    def err(key: str, problem: str) -> _ConfigError:
        return _ConfigError(name(key), problem, file, what=what)

    if not isinstance(section, dict):
        raise err("", "must be a table")
    for k, v in section.items():
        if k not in _EXECUTION_KEYS:
            raise err(k, f"unknown key (allowed: {', '.join(sorted(_EXECUTION_KEYS))})")
        ok = isinstance(v, _EXECUTION_KEYS[k]) and not isinstance(v, bool)
        if not ok:
            raise err(k, f"must be {_type_name(_EXECUTION_KEYS[k])}, got {v!r}")
    out: dict[str, Any] = {}
    engine = section.get("engine")
    if engine is not None:
        if engine not in ENGINES:
            raise err("engine", f"must be one of {ENGINES}, got {engine!r}")
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


def _validate_clusters(section: Any, inputs: dict[str, LayerInput], file: str) -> dict | None:
    """The optional ``[clusters]`` section (micro-cluster detection of ``pari-geo run``)."""
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError("clusters", "must be a table", file)
    _unknown("clusters", section, _CLUSTER_KEYS, file)
    for k, v in section.items():
        _check_type(f"clusters.{k}", v, _CLUSTER_KEYS[k], file)
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


def _validate_parameters(name: str, preset: str | None, params: dict, file: str) -> None:
    """Validate typology parameters now, so that a bad value fails before any work."""
    if name == "degurba":
        from .config import DegurbaParams

        base = DegurbaParams.from_preset(preset) if preset else DegurbaParams()
        base.replace(_source=file, **{k: _tuple_values(v) for k, v in params.items()})
    else:
        from .typology.nordic7 import Nordic7Params

        try:
            Nordic7Params.from_mapping(params)
        except _ConfigError as err:
            raise ConfigError(f"typology.parameters.{err.key}", err.problem, file) from None


def _tuple_values(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v
