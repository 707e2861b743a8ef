"""``PREPARE.toml``: what to prepare, from which downloaded files, on which grid.

Validated once when loaded: unknown keys and wrong types are a
:class:`~pari_geo.errors.ConfigError` naming the key (``ghsl.populaton``); relative paths
are resolved against the file's folder; GDAL paths (``/vsizip/``, ``/vsicurl/``,
``s3://``, ``https://``) are kept as written.

Example::

    [region]                      # the area: municipalities or one boundary polygon
    path = "units_belgium_statbel2024.gpkg"
    id = "UID"                    # unit id column: the units go into run.toml

    [grid]
    crs = "auto"                  # or e.g. "EPSG:3035"; never geographic or Web Mercator
    cell_size_m = 1000            # 100 m .. 5 km

    [ghsl]                        # GHSL tiles as downloaded (one path or a list)
    population = ["GHS_POP_E2020_GLOBE_R2023A_54009_1000_V1_0_R3_C19.tif"]
    built = "GHS_BUILT_S_E2020_GLOBE_R2023A_54009_1000_V1_0_R3_C19.tif"
    land = "GHS_LAND_E2018_GLOBE_R2022A_54009_1000_V1_0_R3_C19.tif"

    [landcover]                   # optional: agricultural share
    path = "U2018_CLC2018_V2020_20u1.tif"
    mapping = "corine"            # corine | corine_grid_code | worldcover | own TOML

    [roads]                       # optional: speed raster
    path = "region-latest.osm.pbf"

    [actors]                      # optional: actors for the micro-clusters
    path = "region-latest.osm.pbf"

    [run]                         # the run.toml written beside the layers
    typology = "nordic7"

    [clusters]                    # optional, copied into run.toml
    eps_m = [300, 1000, 5000]

    [outputs]
    dir = "prepared/belgium"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import load_toml
from ..errors import ConfigError as _ConfigError

__all__ = ["PrepareConfig", "load_prepare", "GHSL_LAYERS"]

#: GHSL products a prepare file can name, and the layer file each becomes
GHSL_LAYERS = {
    "population": "population.tif",
    "built": "built_s.tif",
    "built_volume": "built_v.tif",
    "land": "land.tif",
}

_SECTIONS: dict[str, dict[str, Any] | None] = {
    "region": {"path": str, "layer": str, "id": str, "region": str, "country": str},
    "grid": {"crs": str, "cell_size_m": (int, float)},
    "ghsl": {k: (str, list) for k in GHSL_LAYERS} | {"block": int},
    "landcover": {"path": (str, list), "mapping": str, "nodata": (int, list)},
    "roads": {
        "path": str,
        "layer": str,
        "speeds": str,
        "class_column": str,
        "speed_column": str,
        "offroad_kmh": (int, float),
    },
    "actors": {
        "path": str,
        "layer": str,
        "mapping": str,
        "x": str,
        "y": str,
        "crs": str,
        "sector": str,
        "social": str,
        "id": str,
        "default_sector": str,
    },
    "run": {"typology": str, "level": int, "preset": str, "out_dir": str},
    "clusters": None,  # validated by the run file it is copied into
    "outputs": {"dir": str},
}
MIN_CELL_M, MAX_CELL_M = 100.0, 5000.0


def ConfigError(key: str, problem: str, file: str | None = None) -> _ConfigError:  # noqa: N802
    """A :class:`~pari_geo.errors.ConfigError` about a prepare-file key."""
    return _ConfigError(key, problem, file, what="key")


@dataclass(frozen=True)
class PrepareConfig:
    """A validated prepare file (immutable). Paths are absolute ``Path`` or GDAL strings."""

    source: Path
    region: dict[str, Any]
    grid: dict[str, Any]
    out_dir: Path
    ghsl: dict[str, list[str | Path]] = field(default_factory=dict)
    landcover: dict[str, Any] | None = None
    roads: dict[str, Any] | None = None
    actors: dict[str, Any] | None = None
    run: dict[str, Any] = field(default_factory=dict)
    clusters: dict[str, Any] | None = None


def _type_ok(value: Any, expected: Any) -> bool:
    if isinstance(value, bool) and expected is not bool:
        return False
    return isinstance(value, expected)


def _resolve(value: str, base: Path) -> str | Path:
    from ..ingest import resolve_path

    return resolve_path(value, base)


def from_dict(data: dict[str, Any], source: str | Path, base: Path | None = None) -> PrepareConfig:
    """Validate a prepare configuration given as a dict (as read from TOML).

    Examples
    --------
    >>> cfg = from_dict({"region": {"path": "/r.gpkg"}, "grid": {"cell_size_m": 1000},
    ...                  "ghsl": {"population": "/p.tif"}, "run": {"typology": "nordic7"},
    ...                  "outputs": {"dir": "/o"}},
    ...                 "PREPARE.toml")
    >>> cfg.grid, [str(p) for p in cfg.ghsl["population"]]
    ({'crs': 'auto', 'cell_size_m': 1000.0}, ['/p.tif'])
    """
    file = str(source)
    base = Path(base) if base is not None else Path(source).resolve().parent
    for section in data:
        if section not in _SECTIONS:
            raise ConfigError(section, f"unknown section (allowed: {', '.join(_SECTIONS)})", file)
    for section, keys in _SECTIONS.items():
        if section not in data or keys is None:
            continue
        if not isinstance(data[section], dict):
            raise ConfigError(section, "must be a table", file)
        for k, v in data[section].items():
            if k not in keys:
                raise ConfigError(
                    f"{section}.{k}", f"unknown key (allowed: {', '.join(sorted(keys))})", file
                )
            if not _type_ok(v, keys[k]):
                raise ConfigError(f"{section}.{k}", f"has the wrong type: {v!r}", file)
    for section in ("region", "outputs"):
        if section not in data:
            raise ConfigError(section, "missing section", file)
    if "path" not in data["region"]:
        raise ConfigError("region.path", "missing (a polygon layer of the region)", file)
    if "dir" not in data["outputs"]:
        raise ConfigError("outputs.dir", "missing (the run folder to write)", file)
    ghsl_raw = data.get("ghsl", {})
    if "population" not in ghsl_raw:
        raise ConfigError("ghsl.population", "missing (GHS-POP tiles are required)", file)
    grid = {"crs": "auto", **data.get("grid", {})}
    cell = float(grid.get("cell_size_m", 1000))
    if not MIN_CELL_M <= cell <= MAX_CELL_M:
        raise ConfigError("grid.cell_size_m", f"must be 100..5000 m, got {cell:g}", file)
    grid["cell_size_m"] = cell

    region = dict(data["region"])
    region["path"] = _resolve(region["path"], base)
    ghsl: dict[str, list[str | Path]] = {}
    for k, v in ghsl_raw.items():
        if k == "block":
            continue
        paths = [v] if isinstance(v, str) else v
        if not paths or not all(isinstance(p, str) for p in paths):
            raise ConfigError(f"ghsl.{k}", "must be a path or a non-empty list of paths", file)
        ghsl[k] = [_resolve(p, base) for p in paths]
    optional: dict[str, dict[str, Any] | None] = {}
    for section in ("landcover", "roads", "actors"):
        sec = data.get(section)
        if sec is None:
            optional[section] = None
            continue
        if "path" not in sec:
            raise ConfigError(f"{section}.path", "missing", file)
        sec = dict(sec)
        paths = sec["path"] if isinstance(sec["path"], list) else [sec["path"]]
        resolved = [_resolve(p, base) for p in paths]
        sec["path"] = resolved if section == "landcover" else resolved[0]
        for key in ("mapping", "speeds"):
            if key in sec and not _is_builtin(sec[key]):
                sec[key] = _resolve(sec[key], base)
        optional[section] = sec
    run = dict(data.get("run", {}))
    typ = run.get("typology", "degurba")
    if typ not in ("degurba", "nordic7"):
        raise ConfigError("run.typology", f"must be 'degurba' or 'nordic7', got {typ!r}", file)
    if typ == "degurba" and not {"built", "land"} <= set(ghsl):
        raise ConfigError("ghsl", "DEGURBA needs built (GHS-BUILT-S) and land (GHS-LAND)", file)
    run["typology"] = typ
    out = Path(data["outputs"]["dir"]).expanduser()
    out = (out if out.is_absolute() else base / out).resolve()
    clusters = data.get("clusters")
    if clusters is not None and not isinstance(clusters, dict):
        raise ConfigError("clusters", "must be a table", file)
    return PrepareConfig(
        source=Path(source),
        region=region,
        grid=grid,
        out_dir=out,
        ghsl=ghsl,
        landcover=optional["landcover"],
        roads=optional["roads"],
        actors=optional["actors"],
        run=run,
        clusters=clusters,
    )


def _is_builtin(name: str) -> bool:
    """Names of the shipped mapping tables (no path separator, no suffix)."""
    return "/" not in name and "\\" not in name and "." not in name


def load_prepare(path: str | Path) -> PrepareConfig:
    """Load and validate a ``PREPARE.toml`` file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "p.toml").write_text('[region]\\npath = "r.gpkg"\\n[ghsl]\\n'
    ...     'population = "s3://bucket/GHS_POP.tif"\\n[run]\\ntypology = "nordic7"\\n'
    ...     '[outputs]\\ndir = "run"\\n')
    >>> cfg = load_prepare(d / "p.toml")
    >>> cfg.ghsl["population"], cfg.out_dir.name
    (['s3://bucket/GHS_POP.tif'], 'run')
    """
    path = Path(path)
    return from_dict(load_toml(path), path)
