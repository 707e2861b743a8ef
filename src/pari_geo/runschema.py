"""The run-file schema: every key with its type, default, allowed values and meaning.

This table is the one definition of a run file. :func:`pari_geo.runconfig.load_run`
validates against it (unknown keys, types, choices), ``pari-geo schema`` prints it and
``docs/run-file.md`` is generated from it (:func:`reference_markdown`; ``tests/test_docs.py``
checks the page is current). The ``[clusters]`` defaults and ranges are those of the Python
API (:mod:`pari_geo.clustering.options`), the typologies and their presets those of the
registry (:mod:`pari_geo.typology.registry`).

Examples
--------
>>> SECTIONS["typology"]["level"].default
2
>>> type_name(SECTIONS["clusters"]["eps_m"].type)
'a number or a list of numbers'
>>> "| `eps_m` |" in reference_markdown()
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .clustering.options import CLUSTER_DEFAULTS, EPS_M_RANGE, MAX_SIMULATIONS
from .errors import ConfigError
from .typology import registry

__all__ = ["Key", "Layer", "LAYERS", "LAYER_KEYS", "SECTIONS", "REQUIRED_SECTIONS",
           "REQUIRED", "type_name", "choice_problem", "reference_markdown"]


class _Required:
    """The default of a key that must be given."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Key:
    """One run-file key.

    Attributes
    ----------
    type : type or tuple of types
        What the TOML value must be (``bool`` is never an ``int``).
    doc : str
        Its meaning (one line of the reference).
    default : Any
        Its value when absent (:data:`REQUIRED`: must be given; ``None``: none).
    default_text : str
        The default as the reference shows it, when ``default`` alone says too little.
    choices : tuple
        The accepted values (empty: any value of the type, see ``allowed``).
    allowed : str
        The accepted range in words, for the reference, when not ``choices``.
    """

    type: Any
    doc: str
    default: Any = None
    default_text: str = ""
    choices: tuple = ()
    allowed: str = ""

    def check_type(self, key: str, value: Any, file: str | None) -> None:
        """Refuse a value of the wrong type, naming ``key``."""
        expected = self.type
        ok = isinstance(value, expected)
        if expected is int or (isinstance(expected, tuple) and int in expected):
            ok = ok and not isinstance(value, bool)
        if not ok:
            raise ConfigError(key, f"must be {type_name(expected)}, got {value!r}", file,
                              what="key")

    def check_choice(self, key: str, value: Any, file: str | None) -> None:
        """Refuse a value outside :attr:`choices`, naming ``key``."""
        if self.choices and value not in self.choices:
            raise ConfigError(key, choice_problem(self.choices, value), file, what="key")


@dataclass(frozen=True)
class Layer:
    """One input layer of ``[inputs]``: its meaning and the layer keys it honours."""

    doc: str
    keys: tuple[str, ...]


def type_name(t: Any) -> str:
    """A type as messages and the reference name it.

    Examples
    --------
    >>> type_name(str), type_name((int, float))
    ('a string', 'int or float')
    """
    if t == (int, float, list):
        return "a number or a list of numbers"
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return {str: "a string", int: "an integer", bool: "true/false", dict: "a table"}.get(
        t, t.__name__
    )


def choice_problem(choices: tuple, value: Any) -> str:
    """The problem of a value outside ``choices``.

    Examples
    --------
    >>> choice_problem(("m2", "share"), "km2")
    "must be 'm2' or 'share', got 'km2'"
    >>> choice_problem(("auto", "memory", "tiled"), "fast")
    "must be one of ('auto', 'memory', 'tiled'), got 'fast'"
    """
    if len(choices) == 2:
        return f"must be {choices[0]!r} or {choices[1]!r}, got {value!r}"
    return f"must be one of {tuple(choices)}, got {value!r}"


def _frozen(d: dict) -> Mapping:
    return MappingProxyType(d)


_UNITS = ("m2", "share")

#: keys of a layer table (``population = { path = "...", band = 1 }``)
LAYER_KEYS: Mapping[str, Key] = _frozen({
    "path": Key(str, "File path, relative to the run file's folder.", REQUIRED),
    "unit": Key(str, "`m2` (per cell) or `share` (0..1) for `built` and `land`.",
                default_text="`m2` (degurba), `share` (nordic7)", choices=_UNITS),
    "id": Key(str, "Id column of `units` (default `UID`).", "UID"),
    "mapping": Key(str, "`corine` or a TOML file mapping land-cover codes to shares.",
                   "corine"),
    "band": Key(int, "Raster band to read (default 1).", 1, choices=(1,),
                allowed="`1` (extract other bands first)"),
    "layer": Key(str, "Layer of a multi-layer vector file (GeoPackage).",
                 default_text="the first layer"),
    "sector": Key(str, "Sector column of `actors`."),
    "social": Key(str, "Social-economy flag column of `actors`."),
    "region": Key(str, "Region column of `units` (rungs of the Cluster Ladder)."),
    "country": Key(str, "Country column of `units` (national / multinational rungs)."),
    "class_column": Key(str, "Road class column of `roads`, mapped to km/h by `speeds`.",
                        "highway"),
    "speed_column": Key(str, "Column of `roads` with speeds in km/h (instead of classes)."),
    "speeds": Key(str, "`osm_speeds` or a TOML file `[speeds]` of road class -> km/h "
                  "(relative to the run file).", "osm_speeds"),
    "offroad_kmh": Key((int, float), "Speed of land cells without a road (km/h).", 5.0,
                       allowed="> 0"),
})

#: the input layers and the layer keys each honours (``path`` always); any other is refused
LAYERS: Mapping[str, Layer] = _frozen({
    "population": Layer("Residents per cell (GeoTIFF); defines the grid of the run.",
                        ("band",)),
    "built": Layer("Built-up surface (m² per cell, or a share with `unit = \"share\"`).",
                   ("unit", "band")),
    "land": Layer("Permanent land (m² per cell, or a share with `unit = \"share\"`).",
                  ("unit", "band")),
    "units": Layer("Spatial units (municipalities): polygons; `id` names the id column.",
                   ("id", "layer", "region", "country")),
    "agri": Layer("Agricultural share of each cell (0..1), for `nordic7`.", ("band",)),
    "landcover": Layer("Land-cover classes turned into an agricultural share (`mapping`).",
                       ("mapping", "band")),
    "commuting": Layer("Share of employed residents commuting into an urban core (0..1).",
                       ("band",)),
    "service_minutes": Layer("Minutes to the nearest service centre (computed if absent).",
                             ("band",)),
    "speed": Layer("Travel speed per cell (km/h) for the computed travel times.", ("band",)),
    "roads": Layer("Road lines (`.osm.pbf` or a line layer) burned into the travel speed, "
                   "for `nordic7` (instead of `speed`).",
                   ("layer", "class_column", "speed_column", "speeds", "offroad_kmh")),
    "floor_area": Layer("Building floor area (m² per cell), for `nordic7`: SYKE's inner and "
                        "outer urban rules.", ("band",)),
    "built_volume": Layer("Building volume (m³ per cell, GHS-BUILT-V), for `nordic7`: floor "
                          "area = volume / `storey_height_m`.", ("band",)),
    "commuting_od": Layer("Commuting between units (CSV: origin, destination, share or "
                          "commuters; the ids of `units`), for `nordic7` (instead of "
                          "`commuting`).", ()),
    "jobs": Layer("Workplaces per cell, for `nordic7`'s rural heartland; one band per sector "
                  "(band descriptions name them).", ()),
    "actors": Layer("Actor points for the micro-clusters (`pari-geo run`).",
                    ("layer", "sector", "social")),
})

_PRESETS = tuple(p for name in registry.names() for p in registry.get(name).presets)

TYPOLOGY: Mapping[str, Key] = _frozen({
    "name": Key(str, "`degurba` or `nordic7`.", "degurba", choices=registry.names()),
    "level": Key(int, "DEGURBA level, 1 or 2.", 2, choices=(1, 2)),
    "preset": Key(str, "Parameter preset: `degurba`, `degurba_2023` (degurba); `nordregio` "
                  "(alias `nordic7`) or `syke` (nordic7).",
                  default_text="the typology's first (`degurba`, `nordregio`)",
                  choices=_PRESETS),
    "parameters": Key(dict, "Parameter overrides by name (docs/methods/degurba.md section 5, "
                      "docs/methods/place-types.md).", default_text="{}"),
    "rules": Key(str, "Unit rules `2024` or `2021` (DEGURBA units).", "2024",
                 choices=("2024", "2021")),
    "workflow": Key(str, "Unit workflow `official` or `alternative`.", "official",
                    choices=("official", "alternative")),
    "dissolve_by": Key(str, "Merge units by this column before classifying them."),
    "buffer_m": Key((int, float), "Crop this many metres from every side of the result.", 0,
                    allowed=">= 0"),
    "nodata": Key(int, "Class code of the cells without population (e.g. 255), the class "
                  "raster's no-data; by default they are classed as 0 residents (usually "
                  "water), as the reference does.", allowed="0..255, not a class code"),
})

OUTPUTS: Mapping[str, Key] = _frozen({
    "dir": Key(str, "Output folder (replaced as a whole, only with `--overwrite`).",
               REQUIRED, allowed="a folder name"),
    "map": Key(bool, "Write the PNG map (default true).", True),
    "table": Key(bool, "Write residents per class (default true).", True),
    "units_table": Key(bool, "Write the per-unit tables (default true).", True),
})

_LO, _HI = EPS_M_RANGE
CLUSTERS: Mapping[str, Key] = _frozen({
    "eps_m": Key((int, float, list), "DBSCAN radius in metres; a list gives the scales of "
                 "the ladder.", allowed=f"{_LO:g} … {_HI:g}, strictly increasing"),
    "min_actors": Key(int, "DBSCAN `min_samples`: actors within `eps_m`, itself included.",
                      allowed=">= 1"),
    "n_sim": Key(int, "Largest number of Monte Carlo simulations of the null model "
                 "(0: no test; at most 99,999).", allowed=f"0 … {MAX_SIMULATIONS}"),
    "alpha": Key((int, float), "False discovery rate of `hidden` (Benjamini–Hochberg over "
                 "all scales), in (0, 1).", allowed="(0, 1)"),
    "random_state": Key(int, "Seed of the simulations (0 … 2³² − 1); the result never "
                        "depends on `n_jobs`.", allowed="0 … 2³² − 1"),
    "micro_max_extent_m": Key((int, float), "Largest extent of a `micro` cluster (metres).",
                              allowed="> 0"),
    "micro_max_actors": Key(int, "Most actors of a `micro` cluster.", allowed=">= 1"),
    "footprint": Key(str, "Cluster geometry: `discs` or `hull`.", choices=("discs", "hull")),
    "early_stop": Key(int, "Besag–Clifford stop: once every cluster has been reached this "
                      "many times by simulated values (0: off).", allowed=">= 0"),
    "p_method": Key(str, "`pooled` (calibrated per cluster; BH controls the FDR) or `max` "
                    "(family-wise); see docs/methods/hidden-clusters.md.",
                    choices=("pooled", "max")),
    "pool_size": Key(int, "`pooled`: stop once this many simulated clusters are drawn "
                     "(0: off).", allowed=">= 0"),
    "n_jobs": Key(int, "Threads for the simulations (-1: all cores); never changes the "
                  "result.", allowed=">= 1 or -1"),
})
# the defaults are the Python API's, one definition (clustering/options.py)
CLUSTERS = _frozen({
    k: Key(v.type, v.doc, list(CLUSTER_DEFAULTS[k]) if k == "eps_m" else CLUSTER_DEFAULTS[k],
           v.default_text, v.choices, v.allowed)
    for k, v in CLUSTERS.items()
})

EXECUTION: Mapping[str, Key] = _frozen({
    "engine": Key(str, "`auto`, `memory` or `tiled` (never changes the results).", "auto",
                  choices=("auto", "memory", "tiled")),
    "max_memory": Key((str, int), "Memory budget of `auto`, e.g. `8GiB` (default half the "
                      "RAM).", default_text="half the RAM", allowed="a positive size"),
    "tile": Key((str, list), "Tile of the tiled engine, `ROWSxCOLS`.", "1024x1024",
                allowed="`ROWSxCOLS` or `[rows, cols]`, positive"),
    "scheduler": Key(str, "dask scheduler address for the tiled engine.",
                     allowed="an address such as `tcp://host:8786`"),
})

#: the sections of a run file (``inputs`` holds :data:`LAYERS`, each with :data:`LAYER_KEYS`)
SECTIONS: Mapping[str, Mapping[str, Any]] = _frozen({
    "inputs": LAYERS,
    "typology": TYPOLOGY,
    "outputs": OUTPUTS,
    "clusters": CLUSTERS,
    "execution": EXECUTION,
})
REQUIRED_SECTIONS = ("inputs", "typology", "outputs")


# --- the reference page -----------------------------------------------------------------
def _default(key: Key) -> str:
    if key.default_text:
        return key.default_text
    if key.default is REQUIRED:
        return "required"
    if key.default is None:
        return "none"
    if isinstance(key.default, bool):
        return f"`{str(key.default).lower()}`"
    return f"`{key.default!r}`".replace("'", '"')


def _allowed(key: Key) -> str:
    if key.allowed:
        return key.allowed
    if key.choices:
        return ", ".join(f"`{c!r}`".replace("'", '"') for c in key.choices)
    return ""


def _table(keys: Mapping[str, Key]) -> list[str]:
    rows = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for k, key in keys.items():
        rows.append(f"| `{k}` | {type_name(key.type)} | {_default(key)} | {_allowed(key)} | "
                    f"{key.doc} |")
    return rows


def reference_markdown() -> str:
    """The Markdown page listing every run-file key (``docs/run-file.md``)."""
    lines = [
        "# Run-file reference",
        "",
        "<!-- generated from pari_geo/runschema.py by `pari-geo schema`; "
        "tests/test_docs.py checks it is up to date -->",
        "",
        "A run file is TOML; relative paths are resolved against its folder; unknown keys "
        "and wrong types are refused with one line naming the key. `pari-geo validate "
        "RUN.toml` checks a run file and its inputs without computing. The sections "
        f"{', '.join(f'`[{s}]`' for s in REQUIRED_SECTIONS)} are required.",
        "",
        "## `[inputs]`",
        "",
        "Each layer is a path, or a table with `path` and the keys below. `population` is "
        "required; "
        + "; ".join(f"`{t}` needs {', '.join(f'`{n}`' for n in registry.get(t).needs)}"
                    for t in registry.names() if registry.get(t).needs)
        + ".",
        "",
        "| layer | keys besides `path` | meaning |",
        "|---|---|---|",
        *[f"| `{k}` | {', '.join(f'`{x}`' for x in layer.keys)} | {layer.doc} |"
          for k, layer in LAYERS.items()],
        "",
        "Keys of a layer table:",
        "",
        *_table(LAYER_KEYS),
        "",
        "## `[typology]`",
        "",
        "Keys that a typology does not use are refused: "
        + "; ".join(f"`{t}` uses {', '.join(f'`{k}`' for k in registry.get(t).keys)}"
                    for t in registry.names() if registry.get(t).keys)
        + "; every typology uses `name`, `preset` and `parameters`.",
        "",
        *_table(TYPOLOGY),
        "",
        "## `[outputs]`",
        "",
        *_table(OUTPUTS),
        "",
        "## `[clusters]` (`pari-geo run`)",
        "",
        "Defaults and ranges are those of the Python API "
        "(`pari_geo.clustering.options.CLUSTER_DEFAULTS`).",
        "",
        *_table(CLUSTERS),
        "",
        "## `[execution]`",
        "",
        "How a run is computed, never what comes out; command-line options override it.",
        "",
        *_table(EXECUTION),
        "",
    ]
    return "\n".join(lines)
