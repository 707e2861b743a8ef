"""Actors for the micro-clusters: from OpenStreetMap tags or a business register.

* OpenStreetMap (``.osm.pbf``): POIs (nodes) and tagged polygons (buildings, areas) become
  points (a point inside each polygon) with a sector and a social-economy flag through the
  shipped tag → sector table ``pari_geo/presets/osm_actors.toml`` (or your own, same
  format). Reading uses pyosmium (``pip install pari_geo[osm]``): a stream over the file,
  so memory grows with the actors found, not with the extract.
* A business register (CSV with coordinate columns, or any vector layer): a sector code
  column mapped to sectors by a table (CSV ``code,sector[,social]`` or TOML
  ``[codes] "01.1" = "farm_shop"``); codes missing from the table are refused (or mapped to
  ``default_sector``).

Output columns: ``sector``, ``social_economy`` (bool), ``name``, ``source`` and an id
(``osm_id`` as ``n123``/``w45``/``r6``, or the register's id column), point geometry.

Examples
--------
>>> m = load_tag_mapping()
>>> m.classify({"shop": "farm"}), m.classify({"shop": "charity"}), m.classify({"highway": "x"})
(('farm_shop', False), ('retail', True), None)
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..config import load_toml
from ..errors import ConfigError, InputError

__all__ = ["TagMapping", "load_tag_mapping", "actors_from_osm", "actors_from_register",
           "load_code_table", "require_osmium"]


def require_osmium(file: str | None = None):
    """Import pyosmium or raise one line saying how to install it."""
    try:
        import osmium
    except ImportError:
        raise InputError(file, "osm", "reading .osm.pbf needs pyosmium: pip install "
                         "'pari_geo[osm]' (or pip install osmium)") from None
    return osmium


@dataclass(frozen=True)
class TagMapping:
    """Ordered tag rules → sector, plus the tags that flag social economy."""

    name: str
    sectors: dict[str, dict[str, Any]]
    rules: tuple[tuple[tuple[tuple[str, tuple[str, ...] | None], ...], str], ...]
    social: tuple[tuple[str, tuple[str, ...] | None], ...] = ()
    source: str | None = None
    keys: tuple[str, ...] = field(default=())

    @staticmethod
    def _match(tags: dict[str, str], key: str, values: tuple[str, ...] | None) -> bool:
        v = tags.get(key)
        return v is not None and (values is None or v in values)

    def _by_key(self) -> dict[str, tuple[int, ...]]:
        """Rule indices by the keys they test (built once, cached on the instance)."""
        cached = self.__dict__.get("_index")
        if cached is None:
            index: dict[str, list[int]] = {}
            for i, (conds, _) in enumerate(self.rules):
                for k, _vs in conds:
                    index.setdefault(k, []).append(i)
            cached = {k: tuple(v) for k, v in index.items()}
            object.__setattr__(self, "_index", cached)
        return cached

    def rule_for(self, tags: dict[str, str]) -> int | None:
        """Index of the first rule matching ``tags`` (only rules on present keys are tried)."""
        by_key = self._by_key()
        candidates = sorted({i for k in tags if k in by_key for i in by_key[k]})
        for i in candidates:
            if all(self._match(tags, k, vs) for k, vs in self.rules[i][0]):
                return i
        return None

    def classify(self, tags: dict[str, str]) -> tuple[str, bool] | None:
        """``(sector, social_economy)`` of an object's tags, or None when no rule matches."""
        i = self.rule_for(tags)
        if i is None:
            return None
        sector = self.rules[i][1]
        social = bool(self.sectors[sector].get("social", False)) or any(
            self._match(tags, k, vs) for k, vs in self.social)
        return sector, social


def _values(v: Any, where: str, key: str) -> tuple[str, ...] | None:
    if v == "*":
        return None
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return tuple(v)
    raise ConfigError(key, f"tag values must be a string, a list of strings or '*', got {v!r}",
                      where, what="key")


def load_tag_mapping(path: str | os.PathLike | None = None) -> TagMapping:
    """The shipped OSM tag → sector table, or your own TOML of the same form.

    Refuses a rule naming a sector missing from ``[sectors]`` (one line naming the rule).

    Examples
    --------
    >>> m = load_tag_mapping()
    >>> len(m.sectors) >= 11, "shop" in m.keys
    (True, True)
    """
    if path is None or str(path) == "osm_actors":
        res = resources.files("pari_geo") / "presets" / "osm_actors.toml"
        with resources.as_file(res) as p:
            raw = load_toml(p)
        where = "pari_geo/presets/osm_actors.toml"
    else:
        raw = load_toml(path)
        where = str(path)
    sectors = raw.get("sectors")
    if not isinstance(sectors, dict) or not sectors:
        raise ConfigError("sectors", "missing or empty (the table of sectors)", where, what="key")
    rules = []
    keys: set[str] = set()
    for i, rule in enumerate(raw.get("rules", [])):
        key = f"rules[{i}]"
        if not isinstance(rule, dict) or "tags" not in rule or "sector" not in rule:
            raise ConfigError(key, "needs tags = {...} and sector = '...'", where, what="key")
        if rule["sector"] not in sectors:
            raise ConfigError(f"{key}.sector", f"unknown sector {rule['sector']!r} (sectors: "
                              f"{', '.join(sectors)})", where, what="key")
        conds = tuple((k, _values(v, where, f"{key}.tags.{k}")) for k, v in rule["tags"].items())
        keys.update(k for k, _ in conds)
        rules.append((conds, rule["sector"]))
    if not rules:
        raise ConfigError("rules", "no rules", where, what="key")
    social = tuple((k, _values(v, where, f"social.{k}")) for k, v in raw.get("social", {}).items())
    return TagMapping(str(raw.get("name", Path(where).stem)), dict(sectors), tuple(rules),
                      social, where, tuple(sorted(keys)))


def actors_from_osm(path: str | os.PathLike, mapping: TagMapping | None = None,
                    *, crs: Any = None):
    """Actors from an ``.osm.pbf``: POIs and tagged polygons as points with sectors.

    One pass over the file (libosmium keeps node locations for the ways; only objects
    carrying a key of the mapping reach Python): nodes become points, tagged ways a point
    inside the polygon they close (a point on the line if open), tagged multipolygon
    relations a point inside their outer ways, read in a second pass only when there are
    such relations.

    Parameters
    ----------
    path : path
        The extract (``.osm.pbf``, also ``.osm``/``.osm.bz2``: whatever libosmium reads).
    mapping : TagMapping, optional
        Default: the shipped table.
    crs : CRS, optional
        Reproject the points to this CRS (default: WGS 84 as in the file).

    Returns
    -------
    GeoDataFrame
        ``osm_id``, ``sector``, ``social_economy``, ``name``, ``source`` and point geometry.

    Raises
    ------
    InputError
        When the file cannot be read or holds none of the mapping's tags.
    """
    import geopandas as gpd
    import pandas as pd

    from ..ingest import check_file

    osmium = require_osmium(str(path))
    mapping = mapping or load_tag_mapping()
    fname = check_file(path, "actors")
    try:
        nodes, ways, rels = _scan(osmium, fname, mapping)
        rel_geoms = _relation_lines(osmium, fname, rels) if rels else {}
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - libosmium raises RuntimeError for bad files
        raise InputError(fname, "actors", f"cannot be read as OpenStreetMap data "
                         f"({str(err).splitlines()[0] if str(err) else type(err).__name__})"
                         ) from None
    cols = ["osm_id", "sector", "social_economy", "name"]
    pts = gpd.GeoDataFrame(
        [r[:4] for r in nodes], columns=cols,
        geometry=gpd.points_from_xy([r[4] for r in nodes], [r[5] for r in nodes]),
        crs="EPSG:4326")
    areas = _way_and_relation_points(ways, rels, rel_geoms, cols, pts)
    if areas is not None:
        pts = gpd.GeoDataFrame(pd.concat([pts, areas], ignore_index=True), crs="EPSG:4326")
    if not len(pts):
        raise InputError(fname, "actors", f"has no objects with the tags of the mapping "
                         f"'{mapping.name}' (keys {', '.join(mapping.keys[:8])} ...); is it the "
                         "right extract, or was it filtered?")
    pts["social_economy"] = pts["social_economy"].astype(bool)
    pts["source"] = "OpenStreetMap"
    return pts.to_crs(crs) if crs is not None else pts


def _scan(osmium, fname: str, mapping: TagMapping):
    """The mapping's objects: nodes (id, sector, social, name, lon, lat), ways (..., wkb,
    building-only) and relations (..., outer way ids, building-only)."""
    keys = tuple(sorted(set(mapping.keys) | {k for k, _ in mapping.social}))
    wkb = osmium.geom.WKBFactory()
    nodes: list[tuple] = []
    ways: list[tuple] = []
    rels: list[tuple] = []
    fp = osmium.FileProcessor(fname).with_locations().with_filter(
        osmium.filter.KeyFilter(*mapping.keys))
    for o in fp:
        ot = o.tags
        tags = {k: v for k in keys if (v := ot.get(k)) is not None}
        i = mapping.rule_for(tags)
        if i is None:
            continue
        sector = mapping.rules[i][1]
        social = bool(mapping.sectors[sector].get("social", False)) or any(
            mapping._match(tags, k, vs) for k, vs in mapping.social)
        only = all(k == "building" for k, _ in mapping.rules[i][0])
        name = ot.get("name", "")
        if o.is_node():
            loc = o.location
            if loc.valid():
                nodes.append((f"n{o.id}", sector, social, name, loc.lon, loc.lat))
        elif o.is_way():
            try:
                line = wkb.create_linestring(o)
            except Exception:  # noqa: BLE001 - ways with missing nodes (clipped extracts)
                continue
            ways.append((f"w{o.id}", sector, social, name, line, only))
        elif o.is_relation() and ot.get("type") in ("multipolygon", "boundary", "site"):
            outer = [m.ref for m in o.members if m.type == "w" and m.role in ("outer", "")]
            if outer:
                rels.append((f"r{o.id}", sector, social, name, outer, only))
    return nodes, ways, rels


def _relation_lines(osmium, fname: str, rels) -> dict[int, bytes]:
    """Second pass: the lines of the relations' outer ways, by way id."""
    need = {ref for r in rels for ref in r[4]}
    wkb = osmium.geom.WKBFactory()
    out: dict[int, bytes] = {}
    # ids checked in Python: libosmium's IdFilter keeps a bitmap over the id range
    fp = osmium.FileProcessor(fname, osmium.osm.NODE | osmium.osm.WAY).with_locations() \
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
    for o in fp:
        if o.id not in need:
            continue
        try:
            out[o.id] = wkb.create_linestring(o)
        except Exception:  # noqa: BLE001 - ways with missing nodes
            continue
    return out


def _way_and_relation_points(ways, rels, rel_lines, cols, pts):
    """Points inside the polygons of tagged ways and relations (None when there are none);
    a building-type polygon holding a POI of its sector is dropped (the POI is the actor)."""
    import geopandas as gpd
    import shapely

    rows, geoms = [], []
    if ways:
        lines = shapely.from_wkb(np.array([w[4] for w in ways], dtype=object))
        polys = shapely.build_area(lines)
        polys = np.where(shapely.is_empty(polys), lines, polys)
        rows += [w[:4] + (w[5],) for w in ways]
        geoms += list(polys)
    for r in rels:
        parts = [rel_lines[i] for i in r[4] if i in rel_lines]
        if not parts:
            continue
        lines = shapely.from_wkb(np.array(parts, dtype=object))
        poly = shapely.build_area(shapely.union_all(lines))
        rows.append(r[:4] + (r[5],))
        geoms.append(poly if not poly.is_empty else shapely.union_all(lines))
    if not rows:
        return None
    geoms = np.array(geoms, dtype=object)
    areas = gpd.GeoDataFrame([r[:4] for r in rows], columns=cols,
                             geometry=shapely.point_on_surface(geoms), crs="EPSG:4326")
    only = np.array([r[4] for r in rows], bool)
    if only.any() and len(pts):
        cand = gpd.GeoDataFrame({"sector": areas["sector"].to_numpy()[only],
                                 "index": np.flatnonzero(only)},
                                geometry=geoms[only], crs="EPSG:4326")
        j = gpd.sjoin(cand, pts[["sector", "geometry"]], predicate="contains")
        drop = set(j.loc[j["sector_left"] == j["sector_right"], "index"])
        areas = areas.drop(index=list(drop))
    return areas


def load_code_table(path: str | os.PathLike) -> dict[str, tuple[str, bool | None]]:
    """A register's sector-code table: CSV ``code,sector[,social]`` or TOML ``[codes]``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "codes.csv"
    >>> _ = p.write_text("code,sector,social\\n56.10,food,\\n94.99,association_ngo,true\\n")
    >>> load_code_table(p)
    {'56.10': ('food', None), '94.99': ('association_ngo', True)}
    """
    p = str(path)
    if p.lower().endswith(".toml"):
        raw = load_toml(path).get("codes", {})
        out: dict[str, tuple[str, bool | None]] = {}
        for k, v in raw.items():
            if isinstance(v, str):
                out[str(k)] = (v, None)
            elif isinstance(v, dict) and "sector" in v:
                out[str(k)] = (str(v["sector"]), v.get("social"))
            else:
                raise ConfigError(f"codes.{k}", "must be a sector name or {sector=, social=}",
                                  p, what="key")
        return out
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"code", "sector"} <= set(reader.fieldnames):
                raise InputError(p, "mapping", "needs columns code and sector (and optionally "
                                 f"social); found {reader.fieldnames}")
            rows: dict[str, tuple[str, bool | None]] = {}
            for row in reader:
                soc = (row.get("social") or "").strip().lower()
                rows[row["code"].strip()] = (
                    row["sector"].strip(),
                    None if soc == "" else soc in ("1", "true", "yes"))
            return rows
    except OSError as err:
        raise InputError(p, "mapping", f"cannot be read ({err.strerror})") from None


def actors_from_register(
    path: str | os.PathLike,
    *,
    sector: str,
    mapping: str | os.PathLike | dict | None = None,
    x: str | None = None,
    y: str | None = None,
    crs: Any = None,
    social: str | None = None,
    id_col: str | None = None,
    layer: str | None = None,
    default_sector: str | None = None,
    sectors: dict[str, Any] | None = None,
):
    """Actors from a business register (CSV with coordinates, or a vector layer).

    Parameters
    ----------
    path : path
        CSV (with ``x``/``y`` columns and ``crs``) or any vector layer GDAL reads.
    sector : str
        Column with the sector codes (e.g. NACE).
    mapping : path or dict, optional
        Code → sector table (:func:`load_code_table`); without it the codes are the sectors.
    x, y, crs : str, optional
        Coordinate columns and their CRS (CSV only; default ``EPSG:4326``).
    social : str, optional
        Column flagging social-economy actors (true/1/yes); otherwise the table's flag,
        else the sector's from ``sectors`` (the shipped OSM sector list by default).
    default_sector : str, optional
        Sector for codes missing from the table (default: refuse them).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "reg.csv").write_text("id,lon,lat,nace\\n1,24.94,60.17,56.10\\n"
    ...                                "2,24.95,60.17,94.99\\n")
    >>> _ = (d / "codes.csv").write_text("code,sector\\n56.10,food\\n94.99,association_ngo\\n")
    >>> a = actors_from_register(d / "reg.csv", sector="nace", mapping=d / "codes.csv",
    ...                          x="lon", y="lat")
    >>> a[["sector", "social_economy"]].values.tolist()
    [['food', False], ['association_ngo', True]]
    """
    import geopandas as gpd
    import pandas as pd

    from ..ingest import check_file, read_vector

    fname: str | None = str(path)
    if str(path).lower().endswith((".csv", ".txt")):
        fname = check_file(path, "actors")
        try:
            df = pd.read_csv(fname, dtype=str, keep_default_na=False)
        except Exception as err:  # noqa: BLE001 - parser errors of many kinds
            raise InputError(fname, "actors", f"cannot be read as CSV ({err})") from None
        if x is None or y is None:
            raise ConfigError("actors.x", "a CSV register needs x and y (coordinate columns)",
                              what="key")
        for col in (x, y):
            if col not in df.columns:
                raise InputError(fname, "actors", f"has no column {col!r} (columns: "
                                 f"{', '.join(df.columns[:12])})")
        xs = pd.to_numeric(df[x], errors="coerce")
        ys = pd.to_numeric(df[y], errors="coerce")
        bad = xs.isna() | ys.isna()
        if bad.any():
            raise InputError(fname, "actors", f"{int(bad.sum())} row(s) have no usable "
                             f"coordinates, e.g. row {int(np.flatnonzero(bad)[0]) + 2}")
        gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(xs, ys), crs=crs or "EPSG:4326")
    else:
        gdf, fname = read_vector(path, "actors", layer)
        if gdf.crs is None:
            raise InputError(fname, "actors", "has no CRS")
        geom = gdf.geometry
        if (geom.geom_type != "Point").any():
            gdf = gdf.set_geometry(geom.representative_point())
    for named in (sector, social, id_col):
        if named is not None and named not in gdf.columns:
            raise InputError(fname, "actors", f"has no column {named!r} (columns: "
                             f"{', '.join(map(str, gdf.columns[:12]))})")
    sectors = sectors if sectors is not None else load_tag_mapping().sectors
    codes = gdf[sector].astype(str).str.strip()
    table = (mapping if isinstance(mapping, dict)
             else load_code_table(mapping) if mapping is not None else None)
    if table is not None:
        unknown = sorted(set(codes) - set(table))
        if unknown and default_sector is None:
            more = " ..." if len(unknown) > 10 else ""
            raise InputError(fname, "actors", f"has sector codes missing from the mapping "
                             f"table: {', '.join(unknown[:10])}{more} (add them, or set "
                             "actors.default_sector)")
        # every code is in the table or default_sector is set (refused above otherwise)
        out_sector = [table[c][0] if c in table else str(default_sector) for c in codes]
        table_social = [table[c][1] if c in table else None for c in codes]
    else:
        out_sector = list(codes)
        table_social = [None] * len(codes)
    soc = []
    for i, s in enumerate(out_sector):
        if social is not None:
            soc.append(str(gdf[social].iloc[i]).strip().lower() in ("1", "true", "yes", "y"))
        elif table_social[i] is not None:
            soc.append(bool(table_social[i]))
        else:
            soc.append(bool(sectors.get(s, {}).get("social", False)))
    out = gpd.GeoDataFrame({
        "register_id": (gdf[id_col].astype(str).to_numpy() if id_col else np.arange(len(gdf))),
        "sector": out_sector,
        "social_economy": np.array(soc, bool),
        "name": gdf["name"].astype(str).to_numpy() if "name" in gdf.columns else "",
        "source": Path(str(path)).name,
    }, geometry=gdf.geometry.to_numpy(), crs=gdf.crs)
    return out
