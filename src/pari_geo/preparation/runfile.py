"""Write the prepared layers and the ``run.toml`` that ``pari-geo classify``/``run`` read."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..grid import GridSpec

__all__ = ["write_layer", "toml_text", "run_document"]


def write_layer(path: Path, values: np.ndarray, grid: GridSpec, *, dtype: str = "float32",
                tags: dict[str, Any] | None = None) -> Path:
    """A tiled, deflate-compressed GeoTIFF (NaN = no data) of one layer on ``grid``."""
    import rasterio

    from ..io_write import metadata_tags

    rows, cols = grid.shape
    profile = {
        "driver": "GTiff", "height": rows, "width": cols, "count": 1, "dtype": dtype,
        "crs": grid.crs.to_wkt(), "transform": grid.transform, "nodata": float("nan"),
        "compress": "deflate", "zlevel": 1, "num_threads": "ALL_CPUS",
        "predictor": 3 if dtype.startswith("float") else 1,
    }
    if rows >= 256 and cols >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(dtype), 1)
        if tags:
            dst.update_tags(**metadata_tags(tags))
    return path


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else
                                                  ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def toml_text(doc: dict[str, dict[str, Any]], header: str = "") -> str:
    """TOML text of ``{section: {key: value}}`` (one level of sub-tables).

    Examples
    --------
    >>> print(toml_text({"inputs": {"population": "p.tif", "built": {"path": "b.tif"}},
    ...                  "typology": {"name": "degurba", "parameters": {"x": 1}}}))
    [inputs]
    population = "p.tif"
    built = { path = "b.tif" }
    <BLANKLINE>
    [typology]
    name = "degurba"
    <BLANKLINE>
    [typology.parameters]
    x = 1
    <BLANKLINE>
    """
    lines = [header.rstrip()] if header else []
    for section, table in doc.items():
        subs = {k: v for k, v in table.items() if isinstance(v, dict) and section != "inputs"}
        lines.append(f"[{section}]")
        lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items() if k not in subs]
        lines.append("")
        for k, v in subs.items():
            lines.append(f"[{section}.{k}]")
            lines += [f"{_key(kk)} = {_value(vv)}" for kk, vv in v.items()]
            lines.append("")
    return "\n".join(lines)


def run_document(layers: dict[str, str], run: dict[str, Any], units_id: str | None,
                 region_cols: dict[str, str], clusters: dict[str, Any] | None) -> dict:
    """The run file's sections for the prepared layers (file names relative to it)."""
    inputs: dict[str, Any] = {"population": layers["population"]}
    if "built" in layers:
        inputs["built"] = {"path": layers["built"], "unit": "m2"}
    if "land" in layers:
        inputs["land"] = {"path": layers["land"], "unit": "m2"}
    if "agri" in layers:
        inputs["agri"] = layers["agri"]
    if "speed" in layers:
        inputs["speed"] = layers["speed"]
    if "units" in layers and units_id:
        inputs["units"] = {"path": layers["units"], "id": units_id, **region_cols}
    if "actors" in layers:
        inputs["actors"] = {"path": layers["actors"], "sector": "sector",
                            "social": "social_economy"}
    typ: dict[str, Any] = {"name": run.get("typology", "degurba")}
    if typ["name"] == "degurba":
        typ["level"] = run.get("level", 2)
    if run.get("preset"):
        typ["preset"] = run["preset"]
    doc: dict[str, Any] = {"inputs": inputs, "typology": typ}
    if clusters is not None and "actors" in layers and "units" in inputs:
        doc["clusters"] = dict(clusters)
    doc["outputs"] = {"dir": run.get("out_dir", "out")}
    return doc
