"""Rule sets as data: DEGURBA parameters, validated once, immutable afterwards.

Parameter names are exactly those of the reference implementation (flexurba), section 5 of
``degurba.md``. Presets ship in ``pari_geo/presets/*.toml``:

* ``degurba`` — the current rules (DEGURBA July-2024 update, flexurba >= 0.2.0);
* ``degurba_2023`` — the semi-dense rules before the 2024 update (density 300, size 5000,
  queen contiguity).

Examples
--------
>>> p = DegurbaParams.from_preset("degurba_2023")
>>> p.SDUC_density_threshold, p.SDUC_contiguity_rule
(300.0, 8)
>>> p2 = p.replace(UC_density_threshold=1000)
>>> p2.UC_density_threshold
1000.0
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from importlib import resources
from typing import Any

from .errors import ConfigError

__all__ = ["DegurbaParams", "parse_settings", "parse_value", "stable_hash", "load_toml",
           "preset_path"]

EDGE_FUNS = ("majority_rule_R2023A", "majority_rule_R2022A")
DEGURBA_PRESETS = ("degurba", "degurba_2023")


@dataclass(frozen=True)
class DegurbaParams:
    """Every parameter of the DEGURBA grid classification, with flexurba's defaults.

    Density thresholds are residents per unit of permanent land *per cell*: residents per
    km² only at a 1 km cell size. ``UC_max_gap``, ``SDUC_buffer_size`` and the smoothing
    windows are in cells at every resolution (as in the reference implementation).

    ``values`` holds the output codes in class order: 4 codes at level 1 (centre, cluster,
    rural, water) or 8 at level 2; ``None`` means the GHSL SMOD codes.
    """

    UC_density_threshold: float = 1500.0
    UC_size_threshold: float = 50000.0
    UC_contiguity_rule: int = 4
    UC_built_criterium: bool = True
    UC_built_threshold: float | str = 0.2
    UC_smooth_pop: bool = False
    UC_smooth_pop_window: int = 5
    UC_gap_fill: bool = True
    UC_max_gap: int = 15
    UC_smooth_edge: bool = True
    UC_smooth_edge_fun: str = "majority_rule_R2023A"
    UCL_density_threshold: float = 300.0
    UCL_size_threshold: float = 5000.0
    UCL_contiguity_rule: int = 8
    UCL_smooth_pop: bool = False
    UCL_smooth_pop_window: int = 5
    DUC_density_threshold: float = 1500.0
    DUC_size_threshold: float = 5000.0
    DUC_built_criterium: bool = True
    DUC_built_threshold: float | str = 0.2
    DUC_contiguity_rule: int = 4
    SDUC_density_threshold: float = 900.0
    SDUC_size_threshold: float = 2500.0
    SDUC_contiguity_rule: int = 4
    SDUC_buffer_size: int = 2
    SUrb_density_threshold: float = 300.0
    SUrb_size_threshold: float = 5000.0
    SUrb_contiguity_rule: int = 8
    RC_density_threshold: float = 300.0
    RC_size_threshold: float = 500.0
    RC_contiguity_rule: int = 8
    LDR_density_threshold: float = 50.0
    water_land_threshold: float = 0.5
    water_pop_threshold: float = 0.0
    water_built_threshold: float = 0.0
    values: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name)))

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, mapping: dict[str, Any], *, source: str | None = None) -> DegurbaParams:
        """Build from a mapping (e.g. a TOML table); unknown keys are errors.

        Examples
        --------
        >>> DegurbaParams.from_mapping({"UC_gap_fill": False}).UC_gap_fill
        False
        >>> DegurbaParams.from_mapping({"UC_gapfill": False})
        Traceback (most recent call last):
        ...
        pari_geo.errors.ConfigError: parameter 'UC_gapfill': unknown DEGURBA parameter ...
        """
        return cls().replace(_source=source, **mapping)

    @classmethod
    def from_preset(cls, name: str = "degurba") -> DegurbaParams:
        """Load a shipped preset (``degurba`` or ``degurba_2023``)."""
        if name not in DEGURBA_PRESETS:
            raise ConfigError(
                "preset", f"unknown DEGURBA preset {name!r}; use one of {DEGURBA_PRESETS}"
            )
        data = load_toml(preset_path(name))
        return cls.from_mapping(data.get("parameters", {}), source=f"preset {name}")

    def replace(self, _source: str | None = None, **changes: Any) -> DegurbaParams:
        """Return a copy with some parameters changed (validated)."""
        known = {f.name for f in fields(self)}
        for key in changes:
            if key not in known:
                close = [k for k in known if k.lower() == key.lower()]
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    key,
                    f"unknown DEGURBA parameter (see docs/methods/degurba.md section 5){hint}",
                    _source,
                )
        try:
            return replace(self, **changes)
        except ConfigError as err:
            if _source and not err.file:
                raise ConfigError(err.key, err.problem, _source) from None
            raise

    def with_settings(self, settings: list[str] | tuple[str, ...]) -> DegurbaParams:
        """Apply command-line style ``NAME=VALUE`` strings.

        Examples
        --------
        >>> p = DegurbaParams().with_settings(["UC_gap_fill=false", "UC_max_gap=10"])
        >>> p.UC_gap_fill, p.UC_max_gap
        (False, 10)
        """
        return self.replace(**parse_settings(settings))

    # -- views --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dict of every parameter."""
        d = asdict(self)
        d["values"] = None if self.values is None else list(self.values)
        return d

    def hash(self) -> str:
        """Stable short hash of the parameters (for provenance tags)."""
        return stable_hash(self.to_dict())


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_BOOL = {
    "UC_built_criterium",
    "UC_smooth_pop",
    "UC_gap_fill",
    "UC_smooth_edge",
    "UCL_smooth_pop",
    "DUC_built_criterium",
}
_CONTIGUITY = {n for n in DegurbaParams.__dataclass_fields__ if n.endswith("_contiguity_rule")}
_INT = {"UC_smooth_pop_window", "UCL_smooth_pop_window", "UC_max_gap", "SDUC_buffer_size"}
_BUILT = {"UC_built_threshold", "DUC_built_threshold"}
_SHARE = {"water_land_threshold", "water_built_threshold"}


def _coerce(name: str, v: Any) -> Any:
    """Validate one parameter value and return it in canonical type."""
    if name in _BOOL:
        if not isinstance(v, bool):
            raise ConfigError(name, f"must be true or false, got {v!r}")
        return v
    if name in _CONTIGUITY:
        if not _is_number(v) or v not in (4, 8):
            raise ConfigError(name, f"must be 4 (rook) or 8 (queen), got {v!r}")
        return int(v)
    if name in _INT:
        if not _is_number(v) or float(v) != int(v):
            raise ConfigError(name, f"must be an integer, got {v!r}")
        v = int(v)
        if name.endswith("_window") and (v < 1 or v % 2 == 0):
            raise ConfigError(name, f"must be a positive odd number of cells, got {v}")
        return v
    if name in _BUILT:
        if v == "optimal":
            return v
        if not _is_number(v) or not 0 <= v <= 1:
            raise ConfigError(name, f'must be a share in 0..1 or "optimal", got {v!r}')
        return float(v)
    if name == "UC_smooth_edge_fun":
        if v not in EDGE_FUNS:
            raise ConfigError(name, f"must be one of {EDGE_FUNS}, got {v!r}")
        return v
    if name == "values":
        if v is None:
            return None
        if isinstance(v, str):
            v = [s for s in v.replace(" ", "").split(",") if s]
        try:
            codes = tuple(int(x) for x in v)
        except (TypeError, ValueError):
            raise ConfigError(name, f"must be a list of integer codes, got {v!r}") from None
        if len(codes) not in (4, 8):
            raise ConfigError(name, f"needs 4 codes (level 1) or 8 (level 2), got {len(codes)}")
        if len(set(codes)) != len(codes) or not all(0 <= c <= 254 for c in codes):
            raise ConfigError(name, f"codes must be distinct integers in 0..254, got {codes}")
        return codes
    # remaining: numeric thresholds
    if not _is_number(v):
        raise ConfigError(name, f"must be a number, got {v!r}")
    v = float(v)
    if v != v:
        raise ConfigError(name, "must be a number, got NaN")
    if name in _SHARE and not 0 <= v <= 1:
        raise ConfigError(name, f"must be a share in 0..1, got {v}")
    if v < 0 and name != "water_pop_threshold":
        raise ConfigError(name, f"must not be negative, got {v}")
    return v


def parse_settings(settings: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Command-line style ``NAME=VALUE`` strings as DEGURBA parameter changes (parsed, not
    yet validated; an unknown name or a malformed item is an error at once).

    Examples
    --------
    >>> parse_settings(["UC_gap_fill=false", "UC_max_gap=10"])
    {'UC_gap_fill': False, 'UC_max_gap': 10}
    """
    changes: dict[str, Any] = {}
    known = {f.name for f in fields(DegurbaParams)}
    for item in settings:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(item, "expected NAME=VALUE")
        if name not in known:
            DegurbaParams().replace(**{name: None})  # raises the unknown-parameter error
        changes[name] = parse_value(name, raw.strip())
    return changes


def parse_value(name: str, raw: str) -> Any:
    """Parse a command-line string into the type parameter ``name`` expects.

    Examples
    --------
    >>> parse_value("UC_gap_fill", "FALSE"), parse_value("UC_max_gap", "10")
    (False, 10)
    >>> parse_value("DUC_built_threshold", "optimal")
    'optimal'
    """
    low = raw.lower()
    if name in _BOOL:
        if low in {"true", "t", "yes", "1"}:
            return True
        if low in {"false", "f", "no", "0"}:
            return False
        raise ConfigError(name, f"must be true or false, got {raw!r}")
    if name in _BUILT and low == "optimal":
        return "optimal"
    if name == "UC_smooth_edge_fun":
        return raw
    if name == "values":
        return raw
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number, got {raw!r}") from None


def stable_hash(data: Any) -> str:
    """First 16 hex digits of the SHA-256 of canonical JSON (sorted keys)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def preset_path(name: str):
    """Path of a shipped preset TOML file."""
    return resources.files("pari_geo") / "presets" / f"{name}.toml"


def load_toml(path) -> dict[str, Any]:
    """Read a TOML file; syntax errors become a one-line :class:`ConfigError`."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(3)
            if head == b"\xef\xbb\xbf":
                raise ConfigError("file", "starts with a UTF-8 byte-order mark (BOM), which "
                                  "TOML does not allow; save it as UTF-8 without BOM",
                                  str(path))
            fh.seek(0)
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("file", "configuration file not found", str(path)) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError("file", f"not valid TOML: {err}", str(path)) from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            "file", f"not valid TOML: not UTF-8 text (byte {err.start})", str(path)
        ) from None
    except OSError as err:
        raise ConfigError("file", f"cannot read: {err.strerror}", str(path)) from None
