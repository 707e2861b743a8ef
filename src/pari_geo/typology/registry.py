"""The typologies pari_geo knows, registered in one place.

An entry (:class:`Typology`) says everything the run file, the pipeline and the command
line need to know about one typology: its name, its presets and how its parameters are
validated, the ``[typology]`` keys and input layers it uses, its class table, how it
classifies a grid in memory and by tiles, and how its outputs are named and summarised.
The pipeline and the CLI look an entry up by name and never branch on a typology's name.

Adding a typology is writing its rules module (parameters, classes, preset, the public
``classify_*`` functions) and one :func:`register` call at the end of this module.

Every function of an entry takes the validated run (a frozen
:class:`~pari_geo.runconfig.RunConfig`, typed here by the :class:`TypologyRun` protocol so
that the rules never import the command line) and imports its rules module on first use:
importing the registry compiles nothing.

Examples
--------
>>> names()
('degurba', 'nordic7')
>>> get("nordic7").needs, get("degurba").needs
((), ('built', 'land'))
>>> get("degurba").levels
(1, 2)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..memory import DEGURBA_BYTES_PER_CELL, NORDIC7_BYTES_PER_CELL

__all__ = ["Typology", "TypologyRun", "get", "names", "register", "owners_of",
           "place_type_arguments"]


class TypologyRun(Protocol):
    """What an entry reads of a validated run (:class:`~pari_geo.runconfig.RunConfig`)."""

    @property
    def source(self) -> Path | None: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...
    @property
    def level(self) -> int: ...
    @property
    def params(self) -> Any: ...
    @property
    def options(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Typology:
    """One typology, as the run file, the pipeline and the command line see it.

    Attributes
    ----------
    name : str
        ``[typology] name`` in a run file.
    label : str
        How messages name it (``DEGURBA``).
    presets : tuple of str
        Shipped parameter presets; the first is the default.
    needs : tuple of str
        Input layers it requires besides ``population``.
    keys : tuple of str
        ``[typology]`` keys it honours besides ``name``, ``preset`` and ``parameters``
        (any other is refused, not ignored).
    levels : tuple of int
        Accepted ``level`` values (empty: no levels).
    bytes_per_cell : int
        In-memory bytes per grid cell of a classification (the ``auto`` engine choice).
    rural_codes : tuple of int
        Class codes counted as rural in the summary of hidden clusters (empty: no rural
        column).
    place_types_for_clusters : bool
        Whether the clusters record the class they lie in (``dominant_place_type``).
    parameters : callable
        ``(preset, overrides, file) -> params``: the validated parameter object; errors
        are one :class:`~pari_geo.errors.ConfigError` naming the key and ``file``.
    output_name : callable
        ``(run) -> str``: stem of the class raster and its tables.
    scheme : callable
        ``(run, attrs) -> ClassScheme``: the class table, with the output codes of the
        classification's ``attrs``/tags when given.
    classify : callable
        ``(run) -> xarray.DataArray``: the classes, in memory.
    classify_tiled : callable
        ``(run, out_path, tile, scheduler, extra_tags=None, overwrite=False) -> result``:
        the classes by tiles into ``out_path`` (the tiled function's result, with
        ``path``, ``tags`` and ``counts``).
    units_table : callable or None
        ``(run, classes, population, units) -> DataFrame``: the classes of the run's
        spatial units, when the typology classifies units.
    class_codes : callable or None
        ``(params, level) -> codes``: the output class codes of validated parameters
        (checked against a ``nodata`` key); None: the scheme's codes never change.
    """

    name: str
    label: str
    presets: tuple[str, ...]
    needs: tuple[str, ...]
    keys: tuple[str, ...]
    levels: tuple[int, ...]
    bytes_per_cell: int
    rural_codes: tuple[int, ...]
    place_types_for_clusters: bool
    parameters: Callable[[str | None, Mapping[str, Any], str | None], Any]
    output_name: Callable[[TypologyRun], str]
    scheme: Callable[[TypologyRun, Mapping[str, Any] | None], Any]
    classify: Callable[[TypologyRun], Any]
    classify_tiled: Callable[..., Any]
    units_table: Callable[..., Any] | None = None
    class_codes: Callable[[Any, int], tuple[int, ...]] | None = None


_REGISTRY: dict[str, Typology] = {}


def register(entry: Typology) -> Typology:
    """Add a typology (its name must be new)."""
    if entry.name in _REGISTRY:
        raise ValueError(f"typology {entry.name!r} is registered already")
    _REGISTRY[entry.name] = entry
    return entry


def names() -> tuple[str, ...]:
    """Names of the registered typologies, in registration order."""
    return tuple(_REGISTRY)


def get(name: str) -> Typology:
    """The entry of a registered typology (``KeyError`` for an unknown name; the run file
    is validated against :func:`names` first)."""
    return _REGISTRY[name]


def owners_of(key: str) -> tuple[Typology, ...]:
    """The typologies that honour a ``[typology]`` key."""
    return tuple(t for t in _REGISTRY.values() if key in t.keys)


# --- DEGURBA --------------------------------------------------------------------------
def _degurba_parameters(preset: str | None, overrides: Mapping[str, Any], file: str | None):
    from ..config import DegurbaParams

    base = DegurbaParams.from_preset(preset) if preset else DegurbaParams()
    return base.replace(_source=file, **{k: tuple(v) if isinstance(v, list) else v
                                         for k, v in overrides.items()})


def _degurba_codes(params: Any, level: int) -> tuple[int, ...]:
    """The output codes: the parameters' ``values``, or the scheme's."""
    from .degurba_rules import output_codes

    return tuple(int(v) for v in output_codes(params, level))


def _degurba_scheme(run: TypologyRun, attrs: Mapping[str, Any] | None):
    from ..classes import degurba_scheme

    if attrs is None:
        codes = _degurba_codes(run.params, run.level)
    else:
        names_ = attrs.get("class_names", attrs.get("CLASS_NAMES"))
        codes = tuple(int(k) for k in json.loads(names_))
    return degurba_scheme(run.level, codes, run.options.get("nodata"))


def _unit(run: TypologyRun, layer: str, default: str) -> str:
    lyr = run.inputs.get(layer)
    return (lyr.unit or default) if lyr is not None else default


def _degurba_classify(run: TypologyRun):
    from .degurba import classify_grid

    inp = run.inputs
    return classify_grid(
        inp["population"].path, inp["built"].path, inp["land"].path, level=run.level,
        params=run.params, built_unit=_unit(run, "built", "m2"),
        land_unit=_unit(run, "land", "m2"), buffer_m=run.options.get("buffer_m", 0),
        nodata=run.options.get("nodata"))


def _degurba_classify_tiled(run: TypologyRun, out_path: Path, tile: tuple[int, int],
                            scheduler: str | None, extra_tags: dict[str, Any] | None = None,
                            overwrite: bool = False):
    from .degurba_tiled import classify_grid_chunked

    inp = run.inputs
    return classify_grid_chunked(
        inp["population"].path, inp["built"].path, inp["land"].path, out_path=out_path,
        level=run.level, params=run.params, tile_shape=tile,
        built_unit=_unit(run, "built", "m2"), land_unit=_unit(run, "land", "m2"),
        buffer_m=run.options.get("buffer_m", 0), scheduler=scheduler, extra_tags=extra_tags,
        overwrite=overwrite, nodata=run.options.get("nodata"))


def _degurba_units_table(run: TypologyRun, classes, population, units):
    """DEGURBA classes of the run's units (``typology.rules``, ``workflow``,
    ``dissolve_by``); the grid codes without the water code."""
    from .units import classify_units

    values = run.params.values
    return classify_units(
        units, classes, population, id=run.inputs["units"].id or "UID", level=run.level,
        values=None if values is None else tuple(values[:-1]),
        workflow=run.options.get("workflow", "official"),
        rules=run.options.get("rules", "2024"), dissolve_by=run.options.get("dissolve_by"))


register(Typology(
    name="degurba", label="DEGURBA", presets=("degurba", "degurba_2023"),
    needs=("built", "land"),
    keys=("level", "rules", "workflow", "dissolve_by", "buffer_m", "nodata"),
    levels=(1, 2),
    bytes_per_cell=DEGURBA_BYTES_PER_CELL, rural_codes=(), place_types_for_clusters=False,
    parameters=_degurba_parameters, output_name=lambda run: f"degurba_l{run.level}",
    scheme=_degurba_scheme, classify=_degurba_classify,
    classify_tiled=_degurba_classify_tiled, units_table=_degurba_units_table,
    class_codes=_degurba_codes,
))


# --- the seven Nordic place types ------------------------------------------------------
def _nordic7_parameters(preset: str | None, overrides: Mapping[str, Any], file: str | None):
    from ..errors import ConfigError
    from .nordic7 import Nordic7Params

    base = Nordic7Params.from_preset(preset or "nordic7")
    try:
        return base.replace(**overrides)
    except ConfigError as err:
        raise ConfigError(f"typology.parameters.{err.key}", err.problem, file,
                          what="key") from None


def _nordic7_scheme(run: TypologyRun, attrs: Mapping[str, Any] | None):
    from ..classes import NORDIC7

    return NORDIC7


def place_type_arguments(run: TypologyRun) -> dict[str, Any]:
    """Keyword arguments of ``classify_nordic7`` (and its tiled twin), all but the
    population."""
    from ..config import load_toml
    from ..errors import ConfigError

    inp = run.inputs

    def path(name):
        return inp[name].path if name in inp else None

    mapping: Any = "corine"
    if "landcover" in inp and inp["landcover"].mapping not in (None, "corine"):
        raw = load_toml(inp["landcover"].mapping)
        try:
            mapping = {int(k): float(v) for k, v in raw.get("classes", raw).items()}
        except (TypeError, ValueError):
            raise ConfigError("inputs.landcover.mapping", "must map class codes to 0..1",
                              str(run.source)) from None
    roads = None
    if "roads" in inp:
        from ..preparation.roads import Roads

        rd = inp["roads"]
        try:
            roads = Roads(rd.path, layer=rd.layer, class_column=rd.class_column,
                          speed_column=rd.speed_column, speeds=rd.speeds,
                          offroad_kmh=5.0 if rd.offroad_kmh is None else rd.offroad_kmh)
        except ConfigError as err:
            raise ConfigError(f"inputs.{err.key}", err.problem, str(run.source),
                              what="key") from None
    return dict(
        built=path("built"), land=path("land"), agri=path("agri"),
        landcover=path("landcover"), landcover_mapping=mapping,
        commuting=path("commuting"), service_minutes=path("service_minutes"),
        speed_kmh=path("speed"), floor_area=path("floor_area"),
        built_volume=path("built_volume"), jobs=path("jobs"), roads=roads,
        commuting_od=path("commuting_od"),
        units=path("units") if "commuting_od" in inp else None,
        units_id=inp["units"].id if "commuting_od" in inp else None,
        built_unit=_unit(run, "built", "share"),
        land_unit=_unit(run, "land", "share"), params=run.params,
    )


def _nordic7_classify(run: TypologyRun):
    from .classify import classify_nordic7

    return classify_nordic7(run.inputs["population"].path, **place_type_arguments(run))


def _nordic7_classify_tiled(run: TypologyRun, out_path: Path, tile: tuple[int, int],
                            scheduler: str | None, extra_tags: dict[str, Any] | None = None,
                            overwrite: bool = False):
    from .nordic7_tiled import classify_nordic7_tiled

    return classify_nordic7_tiled(run.inputs["population"].path, **place_type_arguments(run),
                                  out_path=out_path, tile_shape=tile, scheduler=scheduler,
                                  extra_tags=extra_tags, overwrite=overwrite)


register(Typology(
    name="nordic7", label="nordic7", presets=("nordregio", "syke", "nordic7"), needs=(),
    keys=(), levels=(),
    bytes_per_cell=NORDIC7_BYTES_PER_CELL, rural_codes=(4, 5, 6, 7), place_types_for_clusters=True,
    parameters=_nordic7_parameters, output_name=lambda run: "place_types",
    scheme=_nordic7_scheme, classify=_nordic7_classify,
    classify_tiled=_nordic7_classify_tiled,
))
