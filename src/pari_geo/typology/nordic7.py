"""The seven Nordic place types (``nordic7``) on arrays.

Implements steps 1–11 of ``place-types.md``: water, settlements, urban cores (with hole
filling), inner and outer urban areas, peri-urban areas, local centres, rural areas close to
urban areas, rural heartland and sparsely populated rural areas. Every threshold is a field of
:class:`Nordic7Params` (presets ``nordregio``, alias ``nordic7``, and ``syke``, files in
``pari_geo/presets/``).

The rules are written once, in :func:`run_rules`, against the grid operations of
:mod:`pari_geo.outofcore.ops` (per-cell block functions, connected components with sums,
tables over components, window means with a halo, travel minutes), one small function per
step (``_cells``, ``_settlements``, ``_cores``, ``_inner_urban``, ``_peri_urban``,
``_local_centres``, ``_service_minutes``, ``_ladder``); a new rule is a change to one of
them. :func:`classify_nordic7_array` runs them with the in-memory engine.

Codes: 1 inner urban, 2 outer urban, 3 peri-urban, 4 local centre, 5 rural close to urban,
6 rural heartland, 7 sparsely populated rural, 0 water, 255 no data (see
:data:`pari_geo.classes.NORDIC7`).

Conversions from metres and km² to cells (cell side ``r`` metres, 100 m ≤ r ≤ 5 km):

* cell area ``a = (r / 1000)²`` km²; density = population / (land_share · a) residents/km²;
* a radius ``R`` becomes the centred square window of ``w = 2·⌊R/r + ½⌋ + 1`` cells a side
  (``inner_radius_m = 1000``: 3 cells at 1 km, 9 at 250 m, 21 at 100 m, 1 at 5 km;
  ``rural_radius_m = 2500``: 7 at 1 km, 21 at 250 m, 51 at 100 m, 3 at 5 km);
* a core hole of ``n`` cells is filled when ``n · a ≤ core_max_gap_km2`` (15 cells at 1 km,
  240 at 250 m, 1500 at 100 m, 0 at 5 km);
* travel times are minutes from :func:`pari_geo.outofcore.travel_time.minutes_to`, whose step
  lengths are ``r`` and ``r·√2`` metres, so minutes thresholds need no conversion.

Window means leave out cells outside the grid and cells without a value (NaN: missing data,
or density of a cell without land and without residents); a window containing a cell of
infinite density (residents on no land) has infinite mean density. Comparisons of window
means with a threshold allow a relative tolerance of 1e-9 (summation rounding). Window sums
are direct (not running) sums in a fixed order, so they do not depend on where a grid or a
tile starts (see :func:`pari_geo.outofcore.windows.window_mean`).

Examples
--------
>>> import numpy as np
>>> pop = np.zeros((5, 9)); pop[2, 2] = 6000.0   # a town of 6,000: local centre
>>> codes, info = classify_nordic7_array(pop, cell_size_m=1000)
>>> codes[2].tolist()   # heartland within 3 cells (7x7 window mean >= 10/km2), then sparse
[6, 6, 4, 6, 6, 6, 7, 7, 7]
>>> info["layers_fallback"]["agri_share"]
'rural heartland decided by density only'
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from importlib import resources
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from ..outofcore.ops import ArrayLayer, MappedLayer, bit_mask, read_all
from ..outofcore.windows import window_mean

__all__ = [
    "Nordic7Params",
    "classify_nordic7_array",
    "agri_share_from_landcover",
    "window_cells",
    "window_mean",
    "CORINE_AGRICULTURAL",
    "CORINE_LEVEL3_CODES",
    "corine_agri_mapping",
    "check_floor_area",
    "rules_applied",
    "check_unit_ids",
    "PARAMETER_SOURCES",
    "parameter_table_markdown",
    "CommutingOD",
    "PRESETS",
    "SECTOR_PREFIX",
    "LAYERS",
    "FALLBACKS",
]

WATER_LAND_SHARE = 0.5
"""A cell with land share below this, no residents and no built-up surface is water."""

MIN_CELL_SIZE_M = 100.0
MAX_CELL_SIZE_M = 5000.0
_REL_TOL = 1e-9

LAYERS = (
    "population",
    "built_share",
    "land_share",
    "agri_share",
    "commuting_share",
    "service_minutes",
    "speed_kmh",
    "floor_area",
    "jobs",
)
"""Input layers of ``nordic7`` (``population`` required, the others optional).

``floor_area`` is m² of building floor per cell (a ``built_volume`` layer in m³ is divided
by ``storey_height_m`` instead); ``jobs`` is workplaces per cell, optionally with one layer
per sector named ``jobs_sector:<name>`` beside it (:data:`SECTOR_PREFIX`)."""

SECTOR_PREFIX = "jobs_sector:"
"""Layer-name prefix of the jobs of one sector (``jobs_sector:services``)."""

FALLBACKS = {
    "built_share": "settlements and inner/outer split use density only",
    "land_share": "1 everywhere (every cell is land)",
    "agri_share": "rural heartland decided by density only",
    "commuting_share": "close-to-urban decided by travel time only",
    "service_minutes": "computed: travel time to the nearest settlement of at least "
    "service_centre_min_pop residents",
    "speed_kmh": "constant default_speed_kmh on land, water impassable",
    "floor_area": "inner urban from the built_share/density proxies "
    "(inner_built_share, inner_density); outer urban = the other core cells",
    "jobs": "rural heartland without an economic test",
}
"""What ``nordic7`` does when an optional layer is absent (spec table 'when absent')."""

CORINE_LEVEL3_CODES = (
    111, 112, 121, 122, 123, 124, 131, 132, 133, 141, 142,
    211, 212, 213, 221, 222, 223, 231, 241, 242, 243, 244,
    311, 312, 313, 321, 322, 323, 324, 331, 332, 333, 334, 335,
    411, 412, 421, 422, 423, 511, 512, 521, 522, 523,
)  # fmt: skip
"""The 44 CORINE Land Cover level-3 class codes."""

CORINE_AGRICULTURAL: dict[int, int] = {c: int(211 <= c <= 244) for c in CORINE_LEVEL3_CODES}
"""CORINE Land Cover level-3 code → agricultural (1) or not (0): classes 211–244 (arable
land, permanent crops, pastures, heterogeneous agricultural areas) are agricultural. Also
shipped as ``pari_geo/presets/corine_agri.toml``. Rasters coded 1..44 (``GRID_CODE``) need
the codes 12..22 mapped to 1 instead."""


def corine_agri_mapping() -> dict[int, int]:
    """The shipped CORINE mapping read from ``pari_geo/presets/corine_agri.toml``.

    Examples
    --------
    >>> m = corine_agri_mapping()
    >>> m[211], m[244], m[311], len(m)
    (1, 1, 0, 44)
    """
    path = resources.files("pari_geo") / "presets" / "corine_agri.toml"
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return {int(k): int(v) for k, v in data["classes"].items()}


# ---------------------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------------------
PRESETS: dict[str, str] = {"nordregio": "nordregio", "syke": "syke", "nordic7": "nordregio"}
"""Preset name → shipped file in ``pari_geo/presets`` (``nordic7`` is ``nordregio``)."""

@dataclass(frozen=True)
class Nordic7Params:
    """Every threshold of the ``nordic7`` typology, with the defaults of ``place-types.md``.

    Densities are residents per km² of land, populations are residents, distances are
    metres, areas km², times minutes and speeds km/h, at every cell size (converted to cells
    as described in the module docstring).

    Examples
    --------
    >>> p = Nordic7Params()
    >>> p.urban_core_min_pop, p.rural_radius_m
    (15000.0, 2500.0)
    >>> Nordic7Params.from_mapping({"close_to_urban_minutes": 30}).close_to_urban_minutes
    30.0
    >>> Nordic7Params.from_mapping({"close_to_urban_minute": 30})
    Traceback (most recent call last):
    ...
    pari_geo.errors.ConfigError: parameter 'close_to_urban_minute': unknown nordic7 parameter...
    """

    settlement_density: float = 300.0
    settlement_built_share: float = 0.10
    urban_core_min_pop: float = 15000.0
    core_max_gap_km2: float = 15.0
    inner_radius_m: float = 1000.0
    inner_built_share: float = 0.20
    inner_density: float = 1500.0
    peri_urban_core_minutes: float = 6.0
    peri_urban_settlement_minutes: float = 4.5
    local_centre_min_pop: float = 5000.0
    close_to_urban_minutes: float = 25.0
    close_to_urban_commuting_share: float = 0.30
    service_centre_min_pop: float = 3000.0
    sparse_service_minutes: float = 45.0
    rural_radius_m: float = 2500.0
    heartland_agri_share: float = 0.25
    heartland_density: float = 10.0
    default_speed_kmh: float = 60.0
    settlement_min_pop: float = 200.0
    storey_height_m: float = 3.0
    inner_area_density: float = 0.1
    outer_area_density: float = 0.02
    outer_dense_share: float = 1.0 / 3.0
    heartland_jobs_per_resident: float = 0.1
    heartland_sector_evenness: float = 0.5
    link_distance_m: float = 0.0
    link_commuting_share: float = 1.0
    link_max_distance_m: float = 40000.0

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name)))
        if self.local_centre_min_pop > self.urban_core_min_pop:
            raise ConfigError(
                "local_centre_min_pop",
                f"must not exceed urban_core_min_pop ({self.urban_core_min_pop:g}), "
                f"got {self.local_centre_min_pop:g}",
            )

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any], *, source: str | None = None) -> Nordic7Params:
        """Build from a mapping (a TOML table); unknown keys and wrong types are errors.

        Parameters
        ----------
        mapping : dict
            Parameter name → value; missing names keep their default.
        source : str, optional
            File name to mention in errors.

        Raises
        ------
        ConfigError
            Naming the key: unknown parameter, not a number, negative, share outside 0..1.

        Examples
        --------
        >>> Nordic7Params.from_mapping({"heartland_agri_share": 0.3}).heartland_agri_share
        0.3
        >>> Nordic7Params.from_mapping({"inner_density": "dense"})
        Traceback (most recent call last):
        ...
        pari_geo.errors.ConfigError: parameter 'inner_density': must be a number, got 'dense'
        """
        if not isinstance(mapping, dict):
            kind = type(mapping).__name__
            raise ConfigError("parameters", f"must be a table, got {kind}", source)
        return cls().replace(_source=source, **mapping)

    @classmethod
    def from_preset(cls, name: str = "nordregio") -> Nordic7Params:
        """Load a shipped preset: ``nordregio`` (alias ``nordic7``) or ``syke``.

        Examples
        --------
        >>> Nordic7Params.from_preset() == Nordic7Params() == Nordic7Params.from_preset("nordic7")
        True
        >>> Nordic7Params.from_preset("syke").link_distance_m
        3000.0
        """
        file = PRESETS.get(name)
        if file is None:
            raise ConfigError("preset", f"unknown nordic7 preset {name!r}; use one of "
                              f"{', '.join(repr(k) for k in PRESETS)}")
        path = resources.files("pari_geo") / "presets" / f"{file}.toml"
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        return cls.from_mapping(data.get("parameters", {}), source=f"preset {name}")

    def replace(self, _source: str | None = None, **changes: Any) -> Nordic7Params:
        """Return a copy with some parameters changed (validated).

        Examples
        --------
        >>> Nordic7Params().replace(inner_density=2000).inner_density
        2000.0
        """
        known = {f.name for f in fields(self)}
        for key in changes:
            if key not in known:
                close = [k for k in known if k.lower() == str(key).lower()]
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    key,
                    f"unknown nordic7 parameter (see docs/methods/place-types.md){hint}",
                    _source,
                )
        try:
            return replace(self, **changes)
        except ConfigError as err:
            if _source and not err.file:
                raise ConfigError(err.key, err.problem, _source) from None
            raise

    def to_dict(self) -> dict[str, float]:
        """Plain, JSON-serialisable dict of every parameter.

        Examples
        --------
        >>> Nordic7Params().to_dict()["settlement_density"]
        300.0
        """
        return asdict(self)

    def hash(self) -> str:
        """Stable short hash of the parameters (for provenance tags)."""
        from ..config import stable_hash

        return stable_hash({"typology": "nordic7", **self.to_dict()})


#: where each parameter's value comes from (docs/methods/place-types.md, "Parameters and
#: their sources"); "unanchored" values have no published source: calibrate them
PARAMETER_SOURCES: dict[str, str] = {
    "settlement_density": "unanchored — calibrate (start: DEGURBA's cluster density)",
    "settlement_built_share": "unanchored — calibrate",
    "settlement_min_pop": "SYKE: a locality has at least 200 residents",
    "urban_core_min_pop": "SYKE (more than 15,000) and Nordregio (at least 15,000)",
    "core_max_gap_km2": "unanchored — calibrate (start: DEGURBA's gap filling)",
    "inner_radius_m": "unanchored — calibrate (SYKE's \"surrounding neighbourhood\" has no "
    "published size)",
    "inner_built_share": "unanchored proxy of SYKE's area density, used without floor area "
    "— calibrate",
    "inner_density": "unanchored proxy (DEGURBA's urban centre density), used without floor "
    "area — calibrate",
    "inner_area_density": "SYKE: the neighbourhood's prevailing area density at least 0.1",
    "outer_area_density": "SYKE: area density at least 0.02 ...",
    "outer_dense_share": "SYKE: ... on at least a third of the neighbourhood",
    "storey_height_m": "our choice: 3 m a storey turns GHS-BUILT-V volume into floor area",
    "peri_urban_core_minutes": "Nordregio: 6 minutes from the edge of the outer urban area",
    "peri_urban_settlement_minutes": "Nordregio: 4.5 minutes around linked settlements",
    "link_distance_m": "SYKE: always linked within 3 km (syke); 0 = off (nordregio links "
    "through the travel-time zones only)",
    "link_commuting_share": "SYKE: more than 20 % commuting to the city (syke); 1 = off",
    "link_max_distance_m": "SYKE: and less than 40 km away (from the core's cells; SYKE "
    "measures from the centre)",
    "local_centre_min_pop": "Nordregio: local centres have 5,000–14,999 residents",
    "close_to_urban_minutes": "Nordregio: on average 20–30 minutes' drive (the middle)",
    "close_to_urban_commuting_share": "unanchored — calibrate",
    "service_centre_min_pop": "Swedish glesbygd rule (a locality of over 3,000), not "
    "SYKE's or Nordregio's",
    "sparse_service_minutes": "Swedish glesbygd rule (more than 45 minutes by car)",
    "rural_radius_m": "unanchored — calibrate",
    "heartland_agri_share": "unanchored — calibrate",
    "heartland_density": "unanchored — calibrate",
    "heartland_jobs_per_resident": "unanchored — calibrate (used only with jobs)",
    "heartland_sector_evenness": "unanchored — calibrate (used only with jobs by sector)",
    "default_speed_kmh": "unanchored fallback (without roads or a speed raster)",
}


def parameter_table_markdown() -> str:
    """The table of every parameter, its value in each preset and its source (the docs).

    Examples
    --------
    >>> parameter_table_markdown().splitlines()[0]
    '| parameter | nordregio (alias nordic7) | syke | source |'
    """
    presets = {name: Nordic7Params.from_preset(name) for name in ("nordregio", "syke")}
    lines = ["| parameter | nordregio (alias nordic7) | syke | source |",
             "|---|---:|---:|---|"]
    for f in fields(Nordic7Params):
        a, b = (getattr(presets[k], f.name) for k in ("nordregio", "syke"))
        lines.append(f"| `{f.name}` | {a:,.6g} | {b:,.6g} | {PARAMETER_SOURCES[f.name]} |")
    return "\n".join(lines) + "\n"


_SHARES = {
    "settlement_built_share",
    "inner_built_share",
    "close_to_urban_commuting_share",
    "heartland_agri_share",
    "outer_dense_share",
    "heartland_sector_evenness",
    "link_commuting_share",
}
_POSITIVE = {"default_speed_kmh", "storey_height_m"}


def _coerce(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ConfigError(name, f"must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ConfigError(name, f"must be a finite number, got {v}")
    if name in _SHARES and not 0.0 <= v <= 1.0:
        raise ConfigError(name, f"must be a share in 0..1, got {v:g}")
    if name in _POSITIVE and v <= 0:
        raise ConfigError(name, f"must be positive, got {v:g}")
    if v < 0:
        raise ConfigError(name, f"must not be negative, got {v:g}")
    return v


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def window_cells(radius_m: float, cell_size_m: float) -> int:
    """Side in cells of the centred square window for a radius in metres.

    ``2·⌊radius_m / cell_size_m + ½⌋ + 1``.

    Examples
    --------
    >>> [window_cells(1000, r) for r in (100, 250, 1000, 5000)]
    [21, 9, 3, 1]
    >>> window_cells(2500, 1000)
    7
    """
    return 2 * int(math.floor(radius_m / cell_size_m + 0.5)) + 1


def _ge(a: np.ndarray, threshold: float) -> np.ndarray:
    """``a >= threshold`` with a small relative tolerance (NaN is False)."""
    tol = _REL_TOL * max(1.0, abs(threshold))
    with np.errstate(invalid="ignore"):
        return a >= threshold - tol


def agri_share_from_landcover(
    classes: np.ndarray,
    mapping: dict[int, float] | None = None,
    *,
    factor: int = 1,
    nodata: int | None = None,
) -> np.ndarray:
    """Agricultural share per cell from a land-cover class raster.

    Parameters
    ----------
    classes : ndarray of int
        Land-cover classes, either on the grid itself (``factor=1``; any shape) or on a finer
        2-D grid whose cells nest ``factor × factor`` in each grid cell (e.g. 100 m CORINE in
        1 km cells: ``factor=10``).
    mapping : dict, optional
        Class → agricultural weight in 0..1 (usually 0/1). Default
        :data:`CORINE_AGRICULTURAL` (CORINE level-3 codes 211–244 agricultural).
    factor : int
        Aggregation factor (>= 1); the fine raster's shape must be a multiple of it.
    nodata : int, optional
        Class value meaning no data. Classes not in ``mapping`` count as no data too.

    Returns
    -------
    ndarray of float64
        Mean agricultural weight of the known fine cells in each grid cell; NaN where none is
        known.

    Examples
    --------
    >>> import numpy as np
    >>> agri_share_from_landcover(np.array([[211, 311], [112, 999]])).tolist()
    [[1.0, 0.0], [0.0, nan]]
    >>> agri_share_from_landcover(np.array([[211, 311], [231, 999]]), factor=2).tolist()
    [[0.6666666666666666]]
    """
    weights_of: dict[int, float] = dict(CORINE_AGRICULTURAL if mapping is None else mapping)
    cls = np.asarray(classes)
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor}")
    if factor > 1 and (cls.ndim != 2 or cls.shape[0] % factor or cls.shape[1] % factor):
        raise ValueError(f"shape {cls.shape} is not a 2-D multiple of factor {factor}")
    keys = np.array(sorted(weights_of), dtype=np.int64)
    weights = np.array([float(weights_of[k]) for k in keys], dtype=np.float64)
    if np.any((weights < 0) | (weights > 1)):
        raise ValueError("agricultural weights must lie in 0..1")
    if keys.size == 0:
        raise ValueError("mapping is empty")
    flat = cls.astype(np.int64, copy=False).ravel()
    pos = np.clip(np.searchsorted(keys, flat), 0, keys.size - 1)
    known = keys[pos] == flat
    if nodata is not None:
        known &= flat != int(nodata)
    share = np.where(known, weights[pos], np.nan).reshape(cls.shape)
    if factor == 1:
        return share
    rows, cols = cls.shape[0] // factor, cls.shape[1] // factor
    blocks = share.reshape(rows, factor, cols, factor)
    ok = np.isfinite(blocks)
    total = np.where(ok, blocks, 0.0).sum(axis=(1, 3))
    count = ok.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def check_floor_area(lo_hi: np.ndarray, file: str | None, layer: str, cell_area_m2: float
                     ) -> None:
    """Refuse a ``floor_area``/``built_volume`` layer in the wrong unit, from its
    ``[min, max]`` (empty: no data).

    Negative or infinite values, a layer that looks like a share or an area density
    (never above 1 although cells are ``cell_area_m2`` m²), and floor area above 50 storeys
    of the whole cell (500 m of buildings for a volume) are refused in one line.

    Examples
    --------
    >>> check_floor_area(np.array([0.0, 0.8]), "fa.tif", "floor_area", 1e6)
    Traceback (most recent call last):
    ...
    pari_geo.errors.InputError: fa.tif [floor_area]: is never above 1 on cells of 1e+06 m²: ...
    """
    a = np.asarray(lo_hi, dtype=np.float64)
    unit = "m² of floor" if layer == "floor_area" else "m³ of buildings"
    if a.size != 2 or np.isnan(a).all():
        raise InputError(file, layer, "has no data (every cell is no-data/NaN)")
    lo, hi = float(a[0]), float(a[1])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError(file, layer, "contains infinite values")
    if lo < 0:
        raise InputError(file, layer, f"contains negative values (minimum {lo:g}); give "
                         f"{unit} per cell")
    if 0 < hi <= 1.0 and cell_area_m2 > 100:
        raise InputError(file, layer, f"is never above 1 on cells of {cell_area_m2:g} m²: it "
                         f"looks like a share or an area density; give {unit} per cell")
    limit = cell_area_m2 * (50 if layer == "floor_area" else 500)
    if hi > limit:
        raise InputError(file, layer, f"has {hi:g} {unit} in one cell of {cell_area_m2:g} m² "
                         f"(more than {limit:g}); give {unit} per cell, not per km² or in "
                         "another unit")


def _layer(name: str, arr: Any, shape: tuple[int, ...], *, share: bool) -> np.ndarray | None:
    if arr is None:
        return None
    a = np.asarray(arr, dtype=np.float64)
    if a.shape != shape:
        raise InputError(None, name, f"has shape {a.shape}, population has {shape}")
    if share:
        with np.errstate(invalid="ignore"):
            bad = (a < -1e-6) | (a > 1 + 1e-6)
        if bad.any():
            raise InputError(
                None,
                name,
                f"share outside 0..1 in {int(bad.sum())} cells "
                f"(min {np.nanmin(a):g}, max {np.nanmax(a):g}); give shares, not m²",
            )
        a = np.clip(a, 0.0, 1.0)
    return a


# ---------------------------------------------------------------------------------------
# the rules, once: steps 1-11 as grid operations of an engine (pari_geo.outofcore.ops)
# ---------------------------------------------------------------------------------------
# per-cell flags (uint8 layer "flags")
MISSING = 1
WATER = 2
PASSABLE = 4
DENSE = 8
COMMUTING = 16
VALID = 32

_CODES = (1, 2, 3, 4, 5, 6, 7, 0, 255)


@dataclass
class Nordic7Run:
    """The layers and tables of one run of the rules (:func:`run_rules`).

    Layers are the engine's (``read(r0, r1, c0, c1)``); tables are numpy arrays over the
    component ids ``0..n``. ``None`` marks a layer a step did not need (no core, no
    linked settlement, ...).
    """

    shape: tuple[int, int]
    cell_size_m: float
    cell_area_km2: float
    windows: dict[str, int]
    core_max_gap_cells: int
    flags: Any = None
    pop0: Any = None
    density: Any = None
    settlements: Any = None  # components (queen) of the settlement cells
    settlement_population: Any = None
    core_table: Any = None  # settlements with urban_core_min_pop residents
    cores0: Any = None  # core settlements before hole filling
    filled: Any = None  # filled holes (None: none filled)
    cores: Any = None
    n_cores: int = 0
    core_labels: Any = None  # components (queen) of the filled cores
    inner_candidates: Any = None
    inner: Any = None
    outer: Any = None  # with floor area: SYKE's outer-urban cells (None: every core cell)
    area_density: Any = None
    commuters: Any = None  # residents x commuting share
    commuting_share: Any = None  # from an OD table: each cell's share towards the cores
    locality_table: Any = None  # settlements with settlement_min_pop residents
    settlement_commuting_share: Any = None
    minutes_to_core: Any = None
    linked_table: Any = None
    linked: Any = None
    minutes_to_linked: Any = None
    local_table: Any = None
    service_minutes: Any = None
    service_minutes_computed: bool = True
    codes: Any = None
    stats: dict[str, Any] = field(default_factory=dict)
    params: Any = None  # the Nordic7Params the rules ran with


def _cell_block(blocks: Mapping[str, np.ndarray], inner: tuple[slice, slice], *,
                p: Nordic7Params, area_km2: float) -> dict[str, np.ndarray]:
    """Steps 1 and 2 (per cell): residents, density, water, passable, settlement cells."""
    pop = blocks["population"][inner]
    land = blocks["land_share"][inner] if "land_share" in blocks else None
    built = blocks["built_share"][inner] if "built_share" in blocks else None
    comm = blocks["commuting_share"][inner] if "commuting_share" in blocks else None
    floor = None
    if "floor_area" in blocks:
        floor = blocks["floor_area"][inner]
    elif "built_volume" in blocks:
        floor = blocks["built_volume"][inner] / p.storey_height_m
    shape = pop.shape
    missing = np.isnan(pop)
    pop0 = np.where(missing, 0.0, pop)
    land_eff = np.ones(shape) if land is None else np.where(np.isnan(land), 1.0, land)
    has_built = np.zeros(shape, bool) if built is None else np.nan_to_num(built) > 0
    if floor is not None:  # buildings with floor area are built-up (never water)
        has_built |= np.nan_to_num(floor) > 0
    # density per km2 of land (inf: residents on no land, NaN: no land, nobody)
    with np.errstate(divide="ignore", invalid="ignore"):
        density = pop0 / (land_eff * area_km2)
    density[missing] = np.nan
    # 1. water: little land, nobody, nothing built
    water_like = (land_eff < WATER_LAND_SHARE) & (pop0 == 0)
    water = water_like & ~has_built
    valid = ~water & ~missing  # cells that can take classes 1..7
    # 2. settlement cells: dense, or built up
    dense = _ge(density, p.settlement_density)
    if built is not None:
        dense |= _ge(np.nan_to_num(built, nan=0.0), p.settlement_built_share)
    dense &= valid
    flags = np.zeros(shape, np.uint8)
    flags[missing] |= MISSING
    flags[water] |= WATER
    flags[~water_like] |= PASSABLE
    flags[dense] |= DENSE
    flags[valid] |= VALID
    if comm is not None:  # 8. (per cell) commuting into a core
        flags[_ge(comm, p.close_to_urban_commuting_share)] |= COMMUTING
    out = {"flags": flags, "pop0": pop0, "density": density}
    if floor is not None:  # area density: floor area / land area (SYKE's aluetehokkuus)
        with np.errstate(divide="ignore", invalid="ignore"):
            ad = floor / (land_eff * area_km2 * 1e6)
        ad[(land_eff == 0) & (np.nan_to_num(floor) == 0)] = np.nan
        out["area_density"] = ad
    if comm is not None:  # residents x commuting share (a settlement's mean share)
        out["commuters"] = pop0 * np.nan_to_num(comm, nan=0.0)
    return out


def _or_block(blocks: Mapping[str, np.ndarray], inner: tuple[slice, slice]
              ) -> dict[str, np.ndarray]:
    """``a | b`` (the cores after hole filling)."""
    return {"out": blocks["a"][inner] | blocks["b"][inner]}


def _at_most(a: np.ndarray, *, limit: float) -> np.ndarray:
    """``a <= limit`` (NaN is False)."""
    with np.errstate(invalid="ignore"):
        return a <= limit


def _inner_block(blocks: Mapping[str, np.ndarray], inner: tuple[slice, slice], *,
                 p: Nordic7Params, size: int) -> dict[str, np.ndarray]:
    """Step 4 (per cell): core cells whose neighbourhood is dense or built up."""
    f = blocks["flags"][inner]
    core_cells = blocks["cores"][inner] & (f & VALID != 0)
    if not core_cells.any():
        return {"out": np.zeros(f.shape, bool)}
    if "area_density" in blocks:  # SYKE: the neighbourhood's area density >= 0.1
        cand = _ge(window_mean(blocks["area_density"], size)[inner], p.inner_area_density)
        return {"out": cand & core_cells}
    cand = _ge(window_mean(blocks["density"], size)[inner], p.inner_density)
    if "built_share" in blocks:
        cand |= _ge(window_mean(blocks["built_share"], size)[inner], p.inner_built_share)
    return {"out": cand & core_cells}


def _outer_block(blocks: Mapping[str, np.ndarray], inner: tuple[slice, slice], *,
                 p: Nordic7Params, size: int) -> dict[str, np.ndarray]:
    """Step 5 with floor area (per cell): core cells, not inner, with at least
    ``outer_dense_share`` of the neighbourhood at area density >= ``outer_area_density``."""
    f = blocks["flags"][inner]
    core_cells = blocks["cores"][inner] & (f & VALID != 0) & ~blocks["inner"][inner]
    if not core_cells.any():
        return {"out": np.zeros(f.shape, bool)}
    ad = blocks["area_density"]
    dense = np.where(np.isnan(ad), np.nan, _ge(ad, p.outer_area_density).astype(np.float64))
    share = window_mean(dense, size)[inner]
    return {"out": _ge(share, p.outer_dense_share) & core_cells}


def _ladder_block(blocks: Mapping[str, np.ndarray], inner: tuple[slice, slice], *,
                  p: Nordic7Params, size: int) -> dict[str, np.ndarray]:
    """Steps 1, 4-11 (per cell): the class ladder, each step on cells still unset."""
    f = blocks["flags"][inner]

    def get(name: str) -> np.ndarray | None:
        return blocks[name][inner] if name in blocks else None

    water = f & WATER != 0
    valid = f & VALID != 0
    out = np.full(f.shape, 255, np.uint8)  # 11. missing population: 255 unless water
    out[water] = 0  # 1. water
    unset = ~water
    core_cells = blocks["cores"][inner] & valid
    inner_u = get("inner")
    outer_u = get("outer")  # with floor area: SYKE's outer rule; the rest falls through
    urban = core_cells
    if outer_u is not None:
        urban = core_cells & (outer_u if inner_u is None else outer_u | inner_u)
    if inner_u is not None:
        out[inner_u] = 1  # 4. inner urban
        out[urban & ~inner_u] = 2  # 5. outer urban
    else:
        out[urban] = 2
    unset &= ~urban
    tc = get("minutes_to_core")
    linked = get("linked")
    peri = np.zeros(f.shape, bool) if linked is None else linked.copy()
    if tc is not None:  # 6. peri-urban
        peri |= tc <= p.peri_urban_core_minutes
    t_set = get("minutes_to_linked")
    if t_set is not None:
        peri |= t_set <= p.peri_urban_settlement_minutes
    peri &= unset & valid
    out[peri] = 3
    unset &= ~peri
    local = get("local")
    if local is not None:  # 7. local centres
        local = local & unset & valid
        out[local] = 4
        unset &= ~local
    close = f & COMMUTING != 0  # 8. rural close to urban
    if tc is not None:
        close |= tc <= p.close_to_urban_minutes
    close &= unset & valid
    out[close] = 5
    unset &= ~close
    svc = get("service_minutes")  # 9. rural heartland
    if svc is not None:
        with np.errstate(invalid="ignore"):
            served = svc <= p.sparse_service_minutes
        cand = served & unset & valid
        if cand.any():
            rural_ok = _ge(window_mean(blocks["density"], size)[inner], p.heartland_density)
            if "agri_share" in blocks:
                rural_ok |= _ge(window_mean(blocks["agri_share"], size)[inner],
                                p.heartland_agri_share)
            if "jobs" in blocks:  # a local economic structure over the rural window
                rural_ok &= _economy(blocks, inner, p, size)
            heart = cand & rural_ok
            out[heart] = 6
            unset &= ~heart
    out[unset & valid] = 7  # 10. sparsely populated rural: every remaining land cell
    return {"codes": out}


def _economy(blocks: Mapping[str, np.ndarray], inner: tuple[slice, slice],
             p: Nordic7Params, size: int) -> np.ndarray:
    """Step 9 with jobs: a local economic structure in the rural window.

    Jobs per resident (window sums) at least ``heartland_jobs_per_resident`` and, with
    jobs by sector, the evenness of the window's jobs over the sectors (Shannon entropy
    divided by ``log(number of sectors)``, 0 = one sector, 1 = all equal) at least
    ``heartland_sector_evenness``. Missing jobs count as none.
    """
    jobs = window_mean(np.nan_to_num(blocks["jobs"], nan=0.0), size)[inner]
    pop = window_mean(blocks["pop0"], size)[inner]
    with np.errstate(divide="ignore", invalid="ignore"):
        per_resident = np.where(pop > 0, jobs / pop, np.where(jobs > 0, np.inf, 0.0))
    ok = _ge(per_resident, p.heartland_jobs_per_resident)
    sectors = sorted(k for k in blocks if k.startswith(SECTOR_PREFIX))
    if len(sectors) >= 2:
        means = [window_mean(np.nan_to_num(blocks[k], nan=0.0), size)[inner] for k in sectors]
        total = np.sum(means, axis=0)
        entropy = np.zeros(total.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            for m in means:
                q = np.where(total > 0, m / total, 0.0)
                entropy -= np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0)
        ok &= _ge(entropy / math.log(len(sectors)), p.heartland_sector_evenness)
    return ok


def rules_applied(run: Nordic7Run, layers: Mapping[str, Any]) -> dict[str, str]:
    """Which rule decided each step that has a published rule and a fallback (provenance).

    Examples
    --------
    >>> import numpy as np
    >>> _, info = classify_nordic7_array(np.zeros((3, 3)), cell_size_m=1000)
    >>> info["rules"]["inner_urban"]
    'proxy: window mean built_share >= inner_built_share or density >= inner_density'
    """
    floor = "floor_area" in layers or "built_volume" in layers
    source = "floor_area" if "floor_area" in layers else "built_volume / storey_height_m"
    return {
        "inner_urban": (f"SYKE: window mean area density ({source}) >= inner_area_density"
                        if floor else "proxy: window mean built_share >= inner_built_share "
                        "or density >= inner_density"),
        "outer_urban": ("SYKE: at least outer_dense_share of the window at area density >= "
                        "outer_area_density" if floor else "proxy: every other core cell"),
        "localities": "settlements of at least settlement_min_pop residents",
        "peri_urban_links": _links_text(run),
        "rural_heartland": ("agri_share/density and a local economy (jobs per resident"
                            + (", sector evenness)" if any(
                                k.startswith(SECTOR_PREFIX) for k in layers) else ")")
                            if "jobs" in layers else "agri_share/density only (no jobs)"),
    }


def _links_text(run: Nordic7Run) -> str:
    """Which links of localities to a core ran (provenance)."""
    p = run.params
    links = ["the peri_urban_core_minutes zone"]
    if p is not None and p.link_distance_m > 0:
        links.append("link_distance_m (SYKE)")
    if p is not None and p.link_commuting_share < 1.0:
        links.append("link_commuting_share within link_max_distance_m (SYKE)"
                     if run.commuters is not None else
                     "not link_commuting_share: no commuting layer")
    return "localities linked by " + ", ".join(links)


def check_unit_ids(ids: np.ndarray, k: int, file: str | None = None) -> None:
    """Refuse unit indexes that are not whole numbers in 0..k (0: outside every unit).

    Examples
    --------
    >>> check_unit_ids(np.array([580.0]), 13)
    Traceback (most recent call last):
    ...
    pari_geo.errors.InputError: in-memory data [unit_ids]: holds 580, but the OD table has 13 ...
    """
    v = ids[np.isfinite(ids)]
    bad = v[(v < 0) | (v > k) | (v != np.round(v))]
    if bad.size:
        raise InputError(file, "unit_ids", f"holds {bad[0]:g}, but the OD table has {k} "
                         f"units: give the position 1..{k} of each cell's unit (0 outside), "
                         "not its code")


def _sector_layers(jobs: Any, names: Sequence[str] | None, shape: tuple[int, ...]
                   ) -> dict[str, np.ndarray]:
    """``jobs`` (total) and ``jobs_sector:<name>`` layers from a 2-D or 3-D jobs array."""
    if jobs is None:
        return {}
    a = np.asarray(jobs, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1:] != shape:
        raise InputError(None, "jobs", f"has shape {np.shape(jobs)}, population has {shape} "
                         "(give rows x cols, or sectors x rows x cols)")
    with np.errstate(invalid="ignore"):
        if np.any(a < 0):
            raise InputError(None, "jobs", "has negative workplaces")
    if np.isinf(a).any():
        raise InputError(None, "jobs", "contains infinite values")
    if np.isnan(a).all():
        raise InputError(None, "jobs", "has no data (every cell is no-data/NaN)")
    if names is None:
        names = [f"sector_{i + 1}" for i in range(a.shape[0])]
    names = [str(n) for n in names]
    if len(names) != a.shape[0]:
        raise InputError(None, "jobs", f"has {a.shape[0]} sectors but job_sectors names "
                         f"{len(names)}")
    if len(set(names)) != len(names):
        raise InputError(None, "jobs", f"job_sectors names a sector twice: {names}")
    known = np.isfinite(a)
    total = np.where(known.any(axis=0), np.where(known, a, 0.0).sum(axis=0), np.nan)
    out = {"jobs": total}
    if a.shape[0] >= 2:
        out.update({SECTOR_PREFIX + n: a[i] for i, n in enumerate(names)})
    return out


def _one(engine: Any, fn: Any, inputs: dict[str, Any], dtype: Any = bool, halo: int = 0
         ) -> Any:
    """The single output ``out`` of a cell map."""
    return engine.cell_map(fn, inputs, {"out": dtype}, halo=halo).layers["out"]


@dataclass(frozen=True)
class CommutingOD:
    """Commuting between spatial units: ``share[i, j]`` of the employed residents of unit
    ``i`` work in unit ``j`` (units ``1..k`` in the order of ``codes``; index 0, no unit,
    is all zeros).

    With it and a ``unit_id`` layer (the unit index of each cell, 0 outside every unit),
    the rules turn the table into each cell's share commuting towards the urban cores:
    the sum of its unit's shares to every unit that holds a core cell (the own unit
    included), then read as ``commuting_share``.

    Examples
    --------
    >>> od = CommutingOD.from_table(["A", "A", "B"], ["A", "B", "B"], [0.7, 0.3, 1.0])
    >>> od.codes, od.share[1].tolist()
    (('A', 'B'), [0.0, 0.7, 0.3])
    """

    codes: tuple[str, ...]
    share: np.ndarray

    @classmethod
    def from_table(cls, origin: Sequence[Any], destination: Sequence[Any],
                   share: Sequence[float], codes: Sequence[Any] | None = None) -> CommutingOD:
        """From rows ``origin, destination, share`` (codes as strings); ``codes`` fixes the
        unit order (default: sorted codes of the table)."""
        o = [str(x) for x in origin]
        d = [str(x) for x in destination]
        v = np.asarray(share, dtype=np.float64)
        order = [str(c) for c in codes] if codes is not None else sorted(set(o) | set(d))
        index = {c: i + 1 for i, c in enumerate(order)}
        m = np.zeros((len(order) + 1, len(order) + 1))
        for a, b, x in zip(o, d, v, strict=True):
            if a in index and b in index:
                m[index[a], index[b]] += x
        return cls(tuple(order), m)


def run_rules(engine: Any, layers: dict[str, Any], *, cell_size_m: float,
              params: Nordic7Params, speed_kmh: Any = None,
              commuting_od: CommutingOD | None = None) -> Nordic7Run:
    """Steps 1-11 of ``place-types.md`` on an engine (in memory, by tiles, on dask).

    Parameters
    ----------
    engine : GridEngine
        :class:`~pari_geo.outofcore.memory.MemoryEngine` or the tiled engine.
    layers : dict
        Engine layers by name (:data:`LAYERS`): ``population`` (NaN = missing) and the
        optional layers given, shares already clipped to 0..1.
    cell_size_m : float
        Cell side in metres.
    params : Nordic7Params
    speed_kmh : float or layer, optional
        Travel speed (see :func:`pari_geo.outofcore.travel_time.minutes_per_metre`).
    commuting_od : CommutingOD, optional
        Commuting between units (needs the ``unit_id`` layer); gives the commuting share
        towards the cores once the cores are known (instead of ``commuting_share``).

    Returns
    -------
    Nordic7Run
        Every intermediate layer and table, and ``codes`` (uint8 layer).
    """
    p = params
    r = float(cell_size_m)
    area_km2 = (r / 1000.0) ** 2
    run = Nordic7Run(
        shape=engine.shape, cell_size_m=r, cell_area_km2=area_km2,
        windows={"inner": window_cells(p.inner_radius_m, r),
                 "rural": window_cells(p.rural_radius_m, r)},
        core_max_gap_cells=int(math.floor(p.core_max_gap_km2 / area_km2 * (1 + _REL_TOL))),
        service_minutes_computed="service_minutes" not in layers, params=p,
    )
    _cells(engine, run, layers, p)
    _settlements(engine, run, p)
    _cores(engine, run, p)
    if commuting_od is not None:
        _commuting_from_od(engine, run, layers, p, commuting_od)
    _inner_urban(engine, run, layers, p)
    _outer_urban(engine, run, p)
    travel = {"cell_size_m": r, "speed_kmh": speed_kmh, "default_speed_kmh": p.default_speed_kmh,
              "passable": bit_mask(run.flags, PASSABLE)}
    _peri_urban(engine, run, p, travel)
    _local_centres(run, p)
    _service_minutes(engine, run, layers, p, travel)
    _ladder(engine, run, layers, p)
    return run


def _cells(engine: Any, run: Nordic7Run, layers: dict[str, Any], p: Nordic7Params) -> None:
    """Steps 1-2, per cell: flags, residents (NaN as 0) and density."""
    inputs = {k: layers[k] for k in ("population", "land_share", "built_share",
                                     "commuting_share", "floor_area", "built_volume")
              if k in layers}
    outputs: dict[str, Any] = {"flags": np.uint8, "pop0": np.float64, "density": np.float64}
    if "floor_area" in layers or "built_volume" in layers:
        outputs["area_density"] = np.float64
    if "commuting_share" in layers:
        outputs["commuters"] = np.float64
    res = engine.cell_map(partial(_cell_block, p=p, area_km2=run.cell_area_km2), inputs,
                          outputs)
    run.flags, run.pop0, run.density = (res.layers[k] for k in ("flags", "pop0", "density"))
    run.area_density = res.layers.get("area_density")
    run.commuters = res.layers.get("commuters")


def _settlements(engine: Any, run: Nordic7Run, p: Nordic7Params) -> None:
    """Step 2: queen clusters of settlement cells, their residents, the localities among
    them (at least ``settlement_min_pop`` residents)."""
    run.settlements = engine.components(bit_mask(run.flags, DENSE), 8, run.pop0)
    s_pop = np.asarray(run.settlements.sums, dtype=np.float64).copy()
    s_pop[0] = 0.0
    run.settlement_population = s_pop
    run.locality_table = s_pop >= p.settlement_min_pop
    run.locality_table[0] = False
    run.stats["settlements"] = run.settlements.n
    run.stats["localities"] = int(run.locality_table.sum())


def _cores(engine: Any, run: Nordic7Run, p: Nordic7Params) -> None:
    """Step 3: urban cores; holes of at most core_max_gap_km2 not touching the edge filled."""
    core_tab = run.settlement_population >= p.urban_core_min_pop
    core_tab[0] = False
    run.core_table = core_tab
    run.cores0 = run.settlements.select(core_tab)
    run.cores = run.cores0
    if core_tab.any() and run.core_max_gap_cells > 0:
        holes = engine.components(MappedLayer(run.cores0, np.logical_not, bool), 4)
        hole_tab = (engine.component_counts(holes) <= run.core_max_gap_cells) & ~(
            engine.component_on_edge(holes))
        hole_tab[0] = False
        run.stats["non_core_components"] = holes.n
        run.stats["holes_filled"] = int(hole_tab.sum())
        run.filled = holes.select(hole_tab)
        holes.close()
        run.cores = _one(engine, _or_block, {"a": run.cores0, "b": run.filled})
    run.core_labels = engine.components(run.cores, 8)
    run.n_cores = int(run.core_labels.n)


def _inner_urban(engine: Any, run: Nordic7Run, layers: dict[str, Any], p: Nordic7Params
                 ) -> None:
    """Step 4: per core, the largest rook patch of cells with a dense neighbourhood."""
    size = run.windows["inner"]
    inputs = {"flags": run.flags, "cores": run.cores, "density": run.density}
    if run.area_density is not None:
        inputs["area_density"] = run.area_density
    elif "built_share" in layers:
        inputs["built_share"] = layers["built_share"]
    run.inner_candidates = _one(engine, partial(_inner_block, p=p, size=size), inputs,
                                halo=size // 2)
    patches = engine.components(run.inner_candidates, 4, run.pop0)
    if patches.n == 0:
        patches.close()
        return
    n_p = patches.n
    cells = engine.component_counts(patches)
    residents = patches.sums
    owner = engine.component_first_values(patches, run.core_labels.select(
        np.arange(run.n_cores + 1, dtype=np.int32)))
    ids = np.arange(1, n_p + 1)
    # best patch per core: most cells, then most residents, then first in raster order
    order = np.lexsort((ids, -residents[1:], -cells[1:], owner[1:]))
    best = np.zeros(n_p + 1, bool)
    seen: set[int] = set()
    for k in order:
        o = int(owner[k + 1])
        if o not in seen:
            seen.add(o)
            best[k + 1] = True
    run.inner = patches.select(best)
    run.stats["inner_patches"] = n_p
    patches.close()


def _od_block(blocks: Mapping[str, np.ndarray], inner: tuple[slice, slice], *,
              p: Nordic7Params, unit_share: np.ndarray) -> dict[str, np.ndarray]:
    """Step 8 (per cell) with an OD table: the unit's share towards the cores."""
    f = blocks["flags"][inner]
    ids = np.nan_to_num(np.asarray(blocks["unit_id"][inner], dtype=np.float64), nan=0.0)
    ids = np.clip(ids.astype(np.int64), 0, len(unit_share) - 1)
    share = unit_share[ids]
    flags = f.copy()
    flags[_ge(share, p.close_to_urban_commuting_share) & (ids > 0)] |= COMMUTING
    return {"flags": flags, "commuters": blocks["pop0"][inner] * share,
            "commuting_share": np.where(ids > 0, share, np.nan)}


def _commuting_from_od(engine: Any, run: Nordic7Run, layers: Mapping[str, Any],
                       p: Nordic7Params, od: CommutingOD) -> None:
    """Steps 6 and 8 with an OD table: each cell's share towards the units of the cores."""
    core_units = engine.values_under(layers["unit_id"], run.cores).astype(np.int64)
    core_units = core_units[(core_units > 0) & (core_units < od.share.shape[1])]
    # towards the *other* units holding a core: working in one's own unit says nothing of
    # commuting to its city (a municipal table cannot tell), travel time decides there
    towards = np.zeros(od.share.shape, bool)
    towards[:, core_units] = True
    np.fill_diagonal(towards, False)
    unit_share = np.where(towards, od.share, 0.0).sum(axis=1)
    unit_share[0] = 0.0
    run.stats["core_units"] = [od.codes[i - 1] for i in core_units]
    res = engine.cell_map(partial(_od_block, p=p, unit_share=unit_share),
                          {"flags": run.flags, "pop0": run.pop0, "unit_id": layers["unit_id"]},
                          {"flags": np.uint8, "commuters": np.float64,
                           "commuting_share": np.float64})
    run.flags, run.commuters = res.layers["flags"], res.layers["commuters"]
    run.commuting_share = res.layers["commuting_share"]


def _outer_urban(engine: Any, run: Nordic7Run, p: Nordic7Params) -> None:
    """Step 5 with floor area: SYKE's outer rule (the other core cells fall through)."""
    if run.area_density is None or run.n_cores == 0:
        return
    size = run.windows["inner"]
    inner = run.inner if run.inner is not None else MappedLayer(run.cores, np.zeros_like, bool)
    inputs = {"flags": run.flags, "cores": run.cores, "inner": inner,
              "area_density": run.area_density}
    run.outer = _one(engine, partial(_outer_block, p=p, size=size), inputs, halo=size // 2)


def _linked_by_distance(engine: Any, run: Nordic7Run, p: Nordic7Params) -> np.ndarray:
    """SYKE's links (step 6): settlements within ``link_distance_m`` of a core, or with
    more than ``link_commuting_share`` of residents' commuting (residents-weighted mean of
    ``commuting_share``) and within ``link_max_distance_m``.

    Distances are grid paths between cell centres over the 8 neighbours (octile metric,
    through water), from the nearest core cell.
    """
    n = run.settlements.n + 1
    by_distance = p.link_distance_m > 0
    by_commuting = run.commuters is not None and p.link_commuting_share < 1.0
    if not (by_distance or by_commuting):
        return np.zeros(n, bool)
    reach = max(p.link_distance_m if by_distance else 0.0,
                p.link_max_distance_m if by_commuting else 0.0)
    km = engine.minutes_to(run.cores, cell_size_m=run.cell_size_m, speed_kmh=60.0,
                           default_speed_kmh=60.0, passable=None, max_minutes=reach / 1000.0)
    linked = np.zeros(n, bool)
    if by_distance:
        near = MappedLayer(km, partial(_at_most, limit=p.link_distance_m / 1000.0), bool)
        linked |= engine.touching(run.settlements, near)
    if by_commuting:
        share = _settlement_commuting(engine, run)
        run.settlement_commuting_share = share
        far = MappedLayer(km, partial(_below, limit=p.link_max_distance_m / 1000.0), bool)
        linked |= (share > p.link_commuting_share) & engine.touching(run.settlements, far)
    return linked


def _settlement_commuting(engine: Any, run: Nordic7Run) -> np.ndarray:
    """Residents-weighted mean commuting share of each settlement (0 without residents)."""
    sums = engine.components(bit_mask(run.flags, DENSE), 8, run.commuters)
    commuters = np.asarray(sums.sums, dtype=np.float64)
    sums.close()
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(run.settlement_population > 0,
                         commuters / run.settlement_population, 0.0)
    share[0] = 0.0
    return share


def _below(a: np.ndarray, *, limit: float) -> np.ndarray:
    """``a < limit`` (NaN is False)."""
    with np.errstate(invalid="ignore"):
        return a < limit


def _peri_urban(engine: Any, run: Nordic7Run, p: Nordic7Params, travel: dict[str, Any]
                ) -> None:
    """Step 6: near a core, settlements reached from there, and near those settlements."""
    if not run.core_table.any():
        run.linked_table = np.zeros(run.settlements.n + 1, bool)
        return
    t_max = max(p.close_to_urban_minutes, p.peri_urban_core_minutes)
    run.minutes_to_core = engine.minutes_to(run.cores, max_minutes=t_max, **travel)
    zone = MappedLayer(run.minutes_to_core, partial(_at_most, limit=p.peri_urban_core_minutes),
                       bool)
    linked = engine.touching(run.settlements, zone) | _linked_by_distance(engine, run, p)
    linked &= run.locality_table & ~run.core_table
    linked[0] = False
    run.linked_table = linked
    run.stats["linked_settlements"] = int(linked.sum())
    if linked.any():
        run.linked = run.settlements.select(linked)
        run.minutes_to_linked = engine.minutes_to(
            run.linked, max_minutes=p.peri_urban_settlement_minutes, **travel)


def _local_centres(run: Nordic7Run, p: Nordic7Params) -> None:
    """Step 7: other settlements of local_centre_min_pop up to urban_core_min_pop residents."""
    s_pop = run.settlement_population
    local = (s_pop >= p.local_centre_min_pop) & (s_pop < p.urban_core_min_pop)
    local[0] = False
    run.local_table = local


def _service_minutes(engine: Any, run: Nordic7Run, layers: dict[str, Any], p: Nordic7Params,
                     travel: dict[str, Any]) -> None:
    """Step 9 (input): minutes to a settlement of service_centre_min_pop, unless given."""
    if "service_minutes" in layers:
        run.service_minutes = layers["service_minutes"]
        return
    centres = run.settlement_population >= p.service_centre_min_pop
    centres[0] = False
    if centres.any():
        run.service_minutes = engine.minutes_to(
            run.settlements.select(centres), max_minutes=p.sparse_service_minutes, **travel)


def _ladder(engine: Any, run: Nordic7Run, layers: dict[str, Any], p: Nordic7Params) -> None:
    """Steps 1, 4-11: the codes, cell by cell (rural window means with a halo)."""
    size = run.windows["rural"]
    inputs: dict[str, Any] = {"flags": run.flags, "cores": run.cores, "density": run.density}
    if "jobs" in layers:
        inputs["pop0"] = run.pop0
        inputs.update({k: v for k, v in layers.items()
                       if k == "jobs" or k.startswith(SECTOR_PREFIX)})
    optional = {"inner": run.inner, "outer": run.outer, "minutes_to_core": run.minutes_to_core,
                "linked": run.linked, "minutes_to_linked": run.minutes_to_linked,
                "service_minutes": run.service_minutes,
                "agri_share": layers.get("agri_share")}
    if run.local_table.any():
        optional["local"] = run.settlements.select(run.local_table)
    inputs.update({k: v for k, v in optional.items() if v is not None})
    res = engine.cell_map(partial(_ladder_block, p=p, size=size), inputs,
                          {"codes": np.uint8}, halo=size // 2)
    run.codes = res.layers["codes"]


# ---------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------
def classify_nordic7_array(
    population: np.ndarray,
    *,
    cell_size_m: float,
    built_share: np.ndarray | None = None,
    land_share: np.ndarray | None = None,
    agri_share: np.ndarray | None = None,
    commuting_share: np.ndarray | None = None,
    service_minutes: np.ndarray | None = None,
    speed_kmh: np.ndarray | float | None = None,
    floor_area: np.ndarray | None = None,
    built_volume: np.ndarray | None = None,
    jobs: np.ndarray | None = None,
    job_sectors: Sequence[str] | None = None,
    commuting_od: CommutingOD | None = None,
    unit_ids: np.ndarray | None = None,
    params: Nordic7Params = Nordic7Params(),  # noqa: B008 - frozen, immutable default
    engine: Any = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Classify a grid into the seven Nordic place types (steps 1–11 of the spec).

    Parameters
    ----------
    population : ndarray of float, shape (rows, cols)
        Residents per cell; NaN = no data (class 255 unless water).
    cell_size_m : float
        Cell side in metres of a projected grid, 100 to 5000.
    built_share, land_share, agri_share, commuting_share : ndarray of float, optional
        Shares 0..1 of the cell area (built-up, permanent land, agricultural land) and of the
        employed residents commuting into an urban core. NaN = unknown (left out of window
        means; counts as 0 built-up, as land, as not commuting). Use
        :func:`agri_share_from_landcover` for a land-cover class raster.
    service_minutes : ndarray of float, optional
        Travel minutes to the nearest service centre; NaN counts as beyond
        ``sparse_service_minutes``. Computed when absent.
    speed_kmh : float or ndarray, optional
        Travel speed for the travel-time steps (see
        :func:`~pari_geo.typology.travel_time.minutes_to`); default
        ``params.default_speed_kmh`` on land and impassable water.
    floor_area : ndarray of float, optional
        m² of building floor per cell. With it (SYKE's rules), inner urban is the
        ``inner_radius_m`` neighbourhood at mean area density (floor area ÷ land area)
        ≥ ``inner_area_density`` and outer urban the other core cells with at least
        ``outer_dense_share`` of that neighbourhood at area density ≥
        ``outer_area_density``; core cells that are neither take the later steps.
    built_volume : ndarray of float, optional
        m³ of buildings per cell (GHSL GHS-BUILT-V), used as ``floor_area`` =
        ``built_volume / storey_height_m`` when ``floor_area`` is not given.
    jobs : ndarray of float, optional
        Workplaces per cell, shape (rows, cols), or (sectors, rows, cols) by sector. With
        it, rural heartland also needs a local economic structure in the rural window:
        jobs per resident ≥ ``heartland_jobs_per_resident`` and, by sector, an evenness
        of jobs over the sectors ≥ ``heartland_sector_evenness``. NaN counts as none.
    job_sectors : sequence of str, optional
        Names of the sectors of a 3-D ``jobs`` (default ``sector_1`` ...).
    commuting_od : CommutingOD, optional
        Commuting between units, instead of ``commuting_share``: each cell's share is its
        unit's share of employed residents working in another unit that holds an urban
        core.
    unit_ids : ndarray of int, optional
        Unit index (1..k, in the order of ``commuting_od.codes``; 0 outside) of each cell;
        required with ``commuting_od``.
    params : Nordic7Params
        Thresholds (defaults of the ``nordic7`` preset).
    engine : GridEngine, optional
        The in-memory engine to run the rules on (default: a new
        :class:`~pari_geo.outofcore.memory.MemoryEngine`; calibration passes a
        :class:`~pari_geo.outofcore.memory.ReusingMemoryEngine`).

    Returns
    -------
    codes : ndarray of uint8
        1..7 place types, 0 water, 255 no data.
    info : dict
        ``layers_used`` (list of layer names given), ``layers_fallback`` (absent layer → the
        fallback applied), ``params``, ``cell_size_m``, ``cell_area_km2``, ``windows``
        (``inner``/``rural`` window sides in cells), ``core_max_gap_cells``, and arrays for
        plotting: ``density``, ``water``, ``settlement_labels`` (queen labels, 0 outside),
        ``settlement_population`` (per label, index 0 unused), ``cores`` (after hole
        filling), ``filled_holes``, ``core_labels``, ``inner_candidates``,
        ``minutes_to_core`` (``inf`` beyond ``max(close_to_urban_minutes,
        peri_urban_core_minutes)``), ``linked_settlements``, ``service_minutes`` (given, or
        computed: ``inf`` beyond ``sparse_service_minutes``), ``service_minutes_computed``
        (bool), ``class_cells`` / ``class_residents`` (per code), and ``metadata``: the
        JSON-serialisable subset of all this (no arrays) for output tags and sidecars.

    Notes
    -----
    Step by step (each step classifies only cells still unclassified; cells with missing
    population are never classified 1–7 and end as 255 unless water):

    1. water (0): ``land_share < 0.5``, no residents, no built-up surface;
    2. settlements: queen clusters of cells with density ≥ ``settlement_density`` or
       built share ≥ ``settlement_built_share``;
    3. urban cores: settlements with ≥ ``urban_core_min_pop`` residents; rook-connected
       pockets of non-core cells not touching the grid edge with area ≤ ``core_max_gap_km2``
       are filled (cores are relabelled queen-wise after filling);
    4. inner urban (1): core cells whose ``inner_radius_m`` window has mean built share ≥
       ``inner_built_share`` or mean density ≥ ``inner_density``; per core only the largest
       rook-connected patch of them (ties: more residents, then first in raster order);
    5. outer urban (2): the other core cells;
    6. peri-urban (3): cells within ``peri_urban_core_minutes`` of a core, every other
       settlement with a cell in that zone, and cells within
       ``peri_urban_settlement_minutes`` of such a settlement;
    7. local centres (4): settlements with ``local_centre_min_pop`` ≤ residents <
       ``urban_core_min_pop``;
    8. rural close to urban (5): within ``close_to_urban_minutes`` of a core, or
       ``commuting_share ≥ close_to_urban_commuting_share``;
    9. rural heartland (6): ``service_minutes ≤ sparse_service_minutes`` and, in the
       ``rural_radius_m`` window, mean agricultural share ≥ ``heartland_agri_share`` or mean
       density ≥ ``heartland_density``;
    10. sparsely populated rural (7): all other land cells;
    11. missing population: 255 unless water.

    Travel times treat water (land share < 0.5 and no residents) as impassable unless
    ``speed_kmh`` gives it a speed.

    Examples
    --------
    >>> import numpy as np
    >>> pop = np.zeros((7, 7)); pop[2:5, 2:5] = 2000.0   # 18,000 residents: an urban core
    >>> codes, info = classify_nordic7_array(pop, cell_size_m=1000)
    >>> codes[3].tolist()   # only the centre's 3x3 window averages 1,500/km2 or more
    [3, 3, 2, 1, 2, 3, 3]
    >>> sorted(info["layers_fallback"])[:2]
    ['agri_share', 'built_share']
    """
    p = params
    pop = np.asarray(population, dtype=np.float64)
    if pop.ndim != 2:
        raise InputError(None, "population", f"must be a 2-D grid, got shape {pop.shape}")
    shape = pop.shape
    r = float(cell_size_m)
    if not (MIN_CELL_SIZE_M <= r <= MAX_CELL_SIZE_M):
        raise InputError(
            None, "population", f"cell size {r:g} m outside the 100 m .. 5 km nordic7 supports"
        )
    with np.errstate(invalid="ignore"):
        if np.any(pop < 0):
            raise InputError(None, "population", "has negative residents (nodata not set to NaN?)")
    built = _layer("built_share", built_share, shape, share=True)
    land = _layer("land_share", land_share, shape, share=True)
    agri = _layer("agri_share", agri_share, shape, share=True)
    comm = _layer("commuting_share", commuting_share, shape, share=True)
    svc_in = _layer("service_minutes", service_minutes, shape, share=False)
    if svc_in is not None and np.any(svc_in < 0):
        raise InputError(None, "service_minutes", "has negative minutes")
    speed = None
    if speed_kmh is not None:
        speed = np.asarray(speed_kmh, dtype=np.float64)
        if speed.ndim and speed.shape != shape:
            raise InputError(None, "speed_kmh", f"has shape {speed.shape}, population has {shape}")
    floor_name = "floor_area" if floor_area is not None else "built_volume"
    floor = _layer(floor_name, floor_area if floor_area is not None else built_volume, shape,
                   share=False)
    if floor is not None:
        finite = floor[~np.isnan(floor)]
        check_floor_area(np.array([finite.min(), finite.max()]) if finite.size else
                         np.zeros(0), None, floor_name, r * r)
    sectors = _sector_layers(jobs, job_sectors, shape)
    if commuting_od is not None:
        if comm is not None:
            raise InputError(None, "commuting_od", "give commuting_share or an OD table, "
                             "not both")
        if unit_ids is None or np.shape(unit_ids) != shape:
            raise InputError(None, "commuting_od", "needs unit_ids, the unit index of each "
                             f"cell, of shape {shape}")
        check_unit_ids(np.asarray(unit_ids, dtype=np.float64), len(commuting_od.codes))

    given = {
        "population": pop,
        "built_share": built,
        "land_share": land,
        "agri_share": agri,
        "commuting_share": comm if commuting_od is None else commuting_od,
        "service_minutes": svc_in,
        "speed_kmh": speed,
        "floor_area": floor,
        "jobs": sectors.get("jobs"),
    }
    layers_used = [k for k in LAYERS if given[k] is not None]
    layers_fallback = {k: FALLBACKS[k] for k in LAYERS[1:] if given[k] is None}

    from ..outofcore.memory import MemoryEngine

    arrays = {"population": pop, "built_share": built, "land_share": land, "agri_share": agri,
              "commuting_share": comm, "service_minutes": svc_in}
    if floor is not None:
        arrays[floor_name] = floor
    arrays.update(sectors)
    if commuting_od is not None:
        arrays["unit_id"] = np.asarray(unit_ids, dtype=np.float64)
    layers = {k: ArrayLayer(v) for k, v in arrays.items() if v is not None}
    speed_arg: Any = speed
    if speed is not None and speed.ndim:
        speed_arg = ArrayLayer(speed)
    if engine is None:
        engine = MemoryEngine(shape)
    run = run_rules(engine, layers, cell_size_m=r, params=p, speed_kmh=speed_arg,
                    commuting_od=commuting_od)
    codes = read_all(run.codes)
    pop0 = read_all(run.pop0)
    flags = read_all(run.flags)
    cores0 = read_all(run.cores0)
    n_set = run.settlements.n

    def array(layer: Any, fill: Any) -> np.ndarray:
        return np.full(shape, fill) if layer is None else read_all(layer)

    info: dict[str, Any] = {
        "typology": "nordic7",
        "layers_used": layers_used,
        "layers_fallback": layers_fallback,
        "params": p.to_dict(),
        "cell_size_m": r,
        "cell_area_km2": run.cell_area_km2,
        "windows": dict(run.windows),
        "core_max_gap_cells": run.core_max_gap_cells,
        "density": read_all(run.density),
        "water": flags & WATER != 0,
        "settlement_labels": read_all(run.settlements.select(
            np.arange(n_set + 1, dtype=np.int32))),
        "settlement_population": run.settlement_population,
        "cores": read_all(run.cores),
        "filled_holes": array(run.filled, False) & ~cores0,
        "core_labels": read_all(run.core_labels.select(
            np.arange(run.n_cores + 1, dtype=np.int32))),
        "n_cores": run.n_cores,
        "inner_candidates": read_all(run.inner_candidates),
        "minutes_to_core": array(run.minutes_to_core, np.inf),
        "linked_settlements": array(run.linked, False),
        "service_minutes": array(run.service_minutes, np.inf),
        "service_minutes_computed": run.service_minutes_computed,
        "rules": rules_applied(run, layers),
        "job_sectors": [k[len(SECTOR_PREFIX):] for k in sectors if k != "jobs"],
        "commuting_from_od": commuting_od is not None,
        "core_units": run.stats.get("core_units", []),
        "commuting_share": array(run.commuting_share, np.nan) if commuting_od is not None
        else (np.full(shape, np.nan) if comm is None else comm),
    }
    info["class_cells"] = {int(c): int((codes == c).sum()) for c in (1, 2, 3, 4, 5, 6, 7, 0, 255)}
    info["class_residents"] = {
        int(c): float(pop0[codes == c].sum()) for c in (1, 2, 3, 4, 5, 6, 7, 0, 255)
    }
    info["metadata"] = {
        k: info[k]
        for k in (
            "typology",
            "layers_used",
            "layers_fallback",
            "params",
            "cell_size_m",
            "cell_area_km2",
            "windows",
            "core_max_gap_cells",
            "n_cores",
            "service_minutes_computed",
            "rules",
            "job_sectors",
            "commuting_from_od",
            "core_units",
            "class_cells",
            "class_residents",
        )
    }
    return codes, info
