"""Issue 12, item 3: every key the run-file schema accepts is honoured or refused.

The test walks the schema itself (:mod:`pari_geo.runschema`), so a key added later without
a row here fails ``test_every_schema_key_has_a_row``. For each key a row says how it is
shown to be honoured: the result of ``pari-geo run`` on a tiny region (classes, tables,
clusters, which files are written, the engine's tag) changes when the key changes
(``"changes"``), or the value is refused with one error naming it (``"refused"``). Keys
that a layer does not use (``inputs.population.sector`` ...) must all be refused.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import tiny_run_text, write_tif, write_tiny_inputs

from pari_geo import runschema
from pari_geo.errors import ConfigError, PariGeoError
from pari_geo.pipeline import run_pipeline
from pari_geo.runconfig import load_run

Edit = Callable[[dict, dict], None]  # (run-file data, input paths) -> None, in place


@dataclass
class Row:
    base: str  # "nordic7" or "degurba"
    var: Edit
    expect: str = "changes"  # or "refused"
    ref: Edit | None = None  # the reference run's edit (default: the base unchanged)
    match: str = ""  # refused: text of the error


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def _dump(data: dict) -> str:
    lines = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        nested = {k: v for k, v in table.items() if isinstance(v, dict) and section != "inputs"}
        for k, v in table.items():
            if k not in nested:
                lines.append(f"{k} = {_toml_value(v)}")
        for k, v in nested.items():
            lines.append(f"[{section}.{k}]")
            lines += [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


# --- the rows ------------------------------------------------------------------------------
def _set(section: str, key: str, value) -> Edit:
    def edit(d: dict, p: dict) -> None:
        d.setdefault(section, {})[key] = value(p) if callable(value) else value
    return edit


def _layer(name: str, key: str, value) -> Edit:
    def edit(d: dict, p: dict) -> None:
        spec = d["inputs"].get(name, {"path": str(p[name])})
        spec = {"path": spec} if isinstance(spec, str) else dict(spec)
        spec[key] = value(p) if callable(value) else value
        d["inputs"][name] = spec
    return edit


def _drop(section: str, key: str) -> Edit:
    def edit(d: dict, p: dict) -> None:
        d[section].pop(key, None)
    return edit


def _both(*edits: Edit) -> Edit:
    def edit(d: dict, p: dict) -> None:
        for e in edits:
            e(d, p)
    return edit


def _path(name: str) -> Callable[[dict], str]:
    return lambda p: str(p[name])


NO_AGRI = _drop("inputs", "agri")
NO_SPEED = _drop("inputs", "speed")
ROADS = _both(NO_SPEED, _layer("roads", "path", _path("roads")))
TILED = _set("execution", "engine", "tiled")

ROWS: dict[str, Row] = {
    "inputs.population.path": Row("degurba", _layer("population", "path", _path("pop2"))),
    "inputs.built.path": Row("degurba", _layer("built", "path", _path("built0"))),
    "inputs.built.unit": Row("degurba", _layer("built", "unit", "share"), "refused",
                             match="declared a share"),
    "inputs.land.path": Row("degurba", _layer("land", "path", _path("land_wet"))),
    "inputs.land.unit": Row("degurba", _layer("land", "unit", "share"), "refused",
                            match="declared a share"),
    "inputs.agri.path": Row("nordic7", _layer("agri", "path", _path("agri_inv"))),
    "inputs.landcover.path": Row("nordic7", _both(NO_AGRI, _layer("landcover", "path",
                                                                  _path("landcover"))),
                                 ref=NO_AGRI),
    "inputs.landcover.mapping": Row(
        "nordic7", _both(NO_AGRI, _layer("landcover", "mapping", _path("mapping"))),
        ref=_both(NO_AGRI, _layer("landcover", "path", _path("landcover")))),
    "inputs.commuting.path": Row("nordic7", _layer("commuting", "path", _path("commuting0"))),
    "inputs.service_minutes.path": Row("nordic7", _layer("service_minutes", "path",
                                                         _path("service_minutes"))),
    "inputs.speed.path": Row("nordic7", _layer("speed", "path", _path("speed_slow"))),
    "inputs.floor_area.path": Row("nordic7", _layer("floor_area", "path",
                                                    _path("floor_area_low")),
                                  ref=_layer("floor_area", "path", _path("floor_area"))),
    "inputs.built_volume.path": Row("nordic7", _layer("built_volume", "path",
                                                      _path("built_volume"))),
    "inputs.jobs.path": Row("nordic7", _layer("jobs", "path", _path("jobs")),
                            ref=_layer("jobs", "path", _path("jobs_total"))),
    "inputs.roads.path": Row("nordic7", _both(NO_SPEED, _layer("roads", "path",
                                                               _path("roads"))),
                             ref=NO_SPEED),
    "inputs.roads.layer": Row("nordic7", _both(NO_SPEED, _layer("roads", "layer", "roads2")),
                              ref=ROADS),
    "inputs.roads.class_column": Row("nordic7", _both(NO_SPEED, _layer("roads",
                                                                       "class_column",
                                                                       "kind")), ref=ROADS),
    "inputs.roads.speed_column": Row("nordic7", _both(NO_SPEED, _layer("roads",
                                                                       "speed_column",
                                                                       "kmh")), ref=ROADS),
    "inputs.roads.speeds": Row("nordic7", _both(NO_SPEED, _layer("roads", "speeds",
                                                                 _path("speeds"))),
                               ref=ROADS),
    "inputs.roads.offroad_kmh": Row("nordic7", _both(NO_SPEED, _layer("roads",
                                                                      "offroad_kmh", 40)),
                                    ref=ROADS),
    "inputs.commuting_od.path": Row("nordic7", _both(_drop("inputs", "commuting"),
                                                     _layer("commuting_od", "path",
                                                            _path("commuting_od"))),
                                    ref=_drop("inputs", "commuting")),
    "inputs.units.path": Row("nordic7", _layer("units", "path", _path("units_shifted"))),
    "inputs.units.id": Row("nordic7", _layer("units", "id", "code2")),
    "inputs.units.layer": Row("nordic7", _layer("units", "layer", "half")),
    "inputs.units.region": Row("nordic7", _layer("units", "region", "county2")),
    "inputs.units.country": Row("nordic7", _layer("units", "country", "country2")),
    "inputs.actors.path": Row("nordic7", _layer("actors", "path", _path("actors_few"))),
    "inputs.actors.layer": Row("nordic7", _layer("actors", "layer", "few")),
    "inputs.actors.sector": Row("nordic7", _layer("actors", "sector", "sector2")),
    "inputs.actors.social": Row("nordic7", _layer("actors", "social", "social2")),
    "typology.name": Row("degurba", _both(_set("typology", "name", "nordic7"),
                                          _drop("typology", "level"))),
    "typology.level": Row("degurba", _set("typology", "level", 1)),
    "typology.preset": Row("degurba", _set("typology", "preset", "degurba_2023")),
    "typology.parameters": Row("degurba", _set("typology", "parameters",
                                               {"UC_density_threshold": 500})),
    "typology.rules": Row("degurba", _set("typology", "rules", "2021")),
    "typology.workflow": Row("degurba", _both(_layer("units", "path", _path("units_half")),
                                              _set("typology", "workflow", "alternative")),
                             ref=_layer("units", "path", _path("units_half"))),
    "typology.dissolve_by": Row("degurba", _set("typology", "dissolve_by", "county")),
    "typology.buffer_m": Row("degurba", _set("typology", "buffer_m", 2000)),
    "typology.nodata": Row("degurba", _both(_layer("population", "path", _path("pop_nan")),
                                            _set("typology", "nodata", 255)),
                           ref=_layer("population", "path", _path("pop_nan"))),
    "outputs.dir": Row("nordic7", _set("outputs", "dir", lambda p: str(p["root"] / "elsewhere"))),
    "outputs.map": Row("nordic7", _set("outputs", "map", True)),
    "outputs.table": Row("nordic7", _set("outputs", "table", False)),
    "outputs.units_table": Row("nordic7", _set("outputs", "units_table", False)),
    "clusters.eps_m": Row("nordic7", _set("clusters", "eps_m", [300])),
    "clusters.min_actors": Row("nordic7", _set("clusters", "min_actors", 25)),
    "clusters.n_sim": Row("nordic7", _set("clusters", "n_sim", 39)),
    "clusters.alpha": Row("nordic7", _set("clusters", "alpha", 0.01)),
    "clusters.random_state": Row("nordic7", _set("clusters", "random_state", 7)),
    "clusters.micro_max_extent_m": Row("nordic7", _set("clusters", "micro_max_extent_m", 10)),
    "clusters.micro_max_actors": Row("nordic7", _set("clusters", "micro_max_actors", 3)),
    "clusters.footprint": Row("nordic7", _set("clusters", "footprint", "hull")),
    "clusters.early_stop": Row("nordic7", _set("clusters", "early_stop", 1)),
    "clusters.p_method": Row("nordic7", _set("clusters", "p_method", "max")),
    "clusters.pool_size": Row("nordic7", _set("clusters", "pool_size", 1)),
    # threads never change the clusters (tests/test_footprint.py): what changes is the
    # number of simulation threads, recorded like the engine
    "clusters.n_jobs": Row("nordic7", _set("clusters", "n_jobs", 1)),
    "execution.engine": Row("nordic7", TILED),
    "execution.max_memory": Row("nordic7", _set("execution", "max_memory", "64KiB")),
    "execution.tile": Row("nordic7", _both(TILED, _set("execution", "tile", "8x8")), ref=TILED),
    "execution.scheduler": Row("nordic7", _set("execution", "scheduler", "tcp://127.0.0.1:9"),
                               "refused", match="dask scheduler tcp://127.0.0.1:9"),
}
# keys that are honoured by one typology and refused by the other: the refusal, too
EXTRA_ROWS: dict[str, Row] = {
    "nordic7 typology.level": Row("nordic7", _set("typology", "level", 1), "refused",
                                  match="typology.level"),
    "nordic7 typology.buffer_m": Row("nordic7", _set("typology", "buffer_m", 1000), "refused",
                                     match="typology.buffer_m"),
    "nordic7 typology.rules": Row("nordic7", _set("typology", "rules", "2021"), "refused",
                                  match="typology.rules"),
    "nordic7 typology.nodata": Row("nordic7", _set("typology", "nodata", 255), "refused",
                                   match="typology.nodata"),
    "degurba typology.nodata class code": Row("degurba", _set("typology", "nodata", 10),
                                              "refused", match="10 is a class code"),
}


def _schema_keys() -> list[str]:
    keys = []
    for layer in runschema.LAYERS:
        keys += [f"inputs.{layer}.{k}" for k in runschema.LAYER_KEYS]
    for section in ("typology", "outputs", "clusters", "execution"):
        keys += [f"{section}.{k}" for k in runschema.SECTIONS[section]]
    return keys


def _row(key: str) -> Row:
    """The row of a schema key; a layer key the layer does not use must be refused."""
    if key in ROWS:
        return ROWS[key]
    _, layer, k = key.split(".")
    if k == "band" and layer not in ("units", "actors", "roads", "jobs", "commuting_od"):
        return Row("nordic7", _layer(layer, "band", 2), "refused", match=f"{key}': only band 1")
    value = {"band": 1, "unit": "share", "id": "x", "mapping": "corine", "layer": "x",
             "sector": "x", "social": "x", "region": "x", "country": "x",
             "class_column": "x", "speed_column": "x", "speeds": "x", "offroad_kmh": 5}[k]
    edit = _layer(layer, k, value)
    if layer == "roads":  # roads replace the speed layer
        edit = _both(NO_SPEED, edit)
    if layer == "commuting_od":  # the OD table replaces the commuting layer
        edit = _both(_drop("inputs", "commuting"), edit)
    return Row("nordic7", edit, "refused",
               match=f"{key}': does not apply to the {layer} layer")


def test_every_schema_key_has_a_row():
    for key in _schema_keys():
        _row(key)  # raises KeyError for a key without a row
    assert {k for k in ROWS} <= set(_schema_keys())


# --- running the rows ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny12")
    p = write_tiny_inputs(d)
    p["root"] = d
    with rasterio.open(p["population"]) as src:
        pop = src.read(1)
        profile = src.profile
    variants = {
        "pop2": lambda a: np.where(np.arange(a.shape[1]) < 12, a * 3, a),
        "built0": lambda a: a * 0 + 5e5,
        "land_wet": lambda a: np.where(np.arange(a.shape[0])[:, None] < 6, 1e5, a),
        "agri_inv": lambda a: a * 0,
        "commuting0": lambda a: a * 0 + 0.9,
        "speed_slow": lambda a: a * 0 + 2.0,
        "pop_nan": lambda a: np.where(np.arange(a.shape[0])[:, None] < 3, np.nan, a),
    }
    sources = {"pop2": "population", "built0": "built", "land_wet": "land",
               "agri_inv": "agri", "commuting0": "commuting", "speed_slow": "speed",
               "pop_nan": "population"}
    for name, f in variants.items():
        with rasterio.open(p[sources[name]]) as src:
            a = src.read(1).astype(np.float64)
        p[name] = write_tif(d / f"{name}.tif", f(a), crs=profile["crs"],
                            transform=profile["transform"], dtype="float32")
    del pop
    import geopandas as gpd

    units = gpd.read_file(p["units"], layer="units")
    units["geometry"] = units.geometry.translate(3000, 0).intersection(
        units.geometry.union_all().envelope)
    p["units_shifted"] = d / "units_shifted.gpkg"
    units.to_file(p["units_shifted"], layer="units", driver="GPKG")
    units = gpd.read_file(p["units"], layer="units")
    units["geometry"] = units.geometry.translate(500, 500).intersection(
        units.geometry.union_all().envelope)
    p["units_half"] = d / "units_half.gpkg"
    units.to_file(p["units_half"], layer="units", driver="GPKG")
    p["actors_few"] = d / "actors_few.gpkg"
    gpd.read_file(p["actors"], layer="few").to_file(p["actors_few"], layer="actors",
                                                    driver="GPKG")
    return p


def _fingerprint(out: Path) -> dict[str, str]:
    """What a run produced, without the echo of the run file (provenance, summary)."""
    import geopandas as gpd

    fp = {"dir": out.name}
    for f in sorted(out.rglob("*")):
        rel = str(f.relative_to(out))
        if f.is_dir() or f.name in ("provenance.json", "summary.md"):
            continue
        if f.suffix == ".tif":
            with rasterio.open(f) as src:
                text = (src.read(1).tobytes() + str(src.transform).encode()
                        + src.tags().get("OUT_OF_CORE", "").encode())
        elif f.suffix == ".csv":
            text = f.read_bytes()
        elif f.suffix == ".parquet":
            text = gpd.read_parquet(f).to_wkt().to_csv().encode()
        else:
            text = b"present"
        fp[rel] = hashlib.sha256(text).hexdigest()
    return fp


def _run(tiny: dict, base: str, edit: Edit | None, name: str):
    root = tiny["root"] / "runs" / name
    root.mkdir(parents=True)
    data = tomllib.loads(tiny_run_text(tiny, root / "out", typology=base))
    if edit is not None:
        edit(data, tiny)
    f = root / "run.toml"
    f.write_text(_dump(data))
    from unittest import mock

    from pari_geo import pipeline

    # the execution keys never change the outputs (by design, tested elsewhere): what they
    # change is the engine and its tiles, recorded here
    from pari_geo.clustering import ladder as ladder_module

    # likewise the simulation threads (clusters.n_jobs): what reaches the ladder is recorded
    with mock.patch.object(pipeline, "_classify_tiled", wraps=pipeline._classify_tiled) as spy, \
            mock.patch.object(ladder_module, "ladder", wraps=ladder_module.ladder) as lad:
        res = run_pipeline(load_run(f), progress=False)
    fp = _fingerprint(res["out_dir"])
    fp["tiled"] = str([c.args[2] for c in spy.call_args_list])
    fp["threads"] = str([c.kwargs.get("n_jobs") for c in lad.call_args_list])
    return fp


_REFS: dict[tuple, dict] = {}


@pytest.mark.parametrize("key", [*_schema_keys(), *EXTRA_ROWS])
def test_key_is_honoured_or_refused(key, tiny, monkeypatch):
    monkeypatch.setenv("PARI_GEO_SCHEDULER_TIMEOUT", "2s")
    row = EXTRA_ROWS.get(key) or _row(key)
    slug = key.replace(" ", "_").replace(".", "_")
    if row.expect == "refused":
        with pytest.raises(PariGeoError) as err:
            _run(tiny, row.base, row.var, slug)
        assert row.match in str(err.value), str(err.value)
        assert len(str(err.value).splitlines()) == 1
        if isinstance(err.value, ConfigError) and "does not apply" in row.match:
            assert key in str(err.value)
        return
    ref_key = (row.base, id(row.ref))
    if ref_key not in _REFS:
        _REFS[ref_key] = _run(tiny, row.base, row.ref, f"{slug}_ref")
    var = _run(tiny, row.base, row.var, slug)
    assert var != _REFS[ref_key], f"{key} did not change the result"
