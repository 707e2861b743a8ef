"""The run-file reference (``docs/run-file.md``), generated from the run-file schema.

Every key that :func:`pari_geo.runconfig.load_run` accepts is listed with its type and,
for ``[clusters]``, its default; the schema is read from :mod:`pari_geo.runconfig` itself,
so a key added there without a description here fails the test that regenerates the page.

Examples
--------
>>> text = run_file_reference()
>>> "| `eps_m` |" in text and "## `[execution]`" in text
True
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_file_reference", "DESCRIPTIONS"]

DESCRIPTIONS: dict[str, str] = {
    # [inputs]: layers
    "inputs.population": "Residents per cell (GeoTIFF); defines the grid of the run.",
    "inputs.built": "Built-up surface (m² per cell, or a share with `unit = \"share\"`).",
    "inputs.land": "Permanent land (m² per cell, or a share with `unit = \"share\"`).",
    "inputs.units": "Spatial units (municipalities): polygons; `id` names the id column.",
    "inputs.agri": "Agricultural share of each cell (0..1), for `nordic7`.",
    "inputs.landcover": "Land-cover classes turned into an agricultural share (`mapping`).",
    "inputs.commuting": "Share of employed residents commuting into an urban core (0..1).",
    "inputs.service_minutes": "Minutes to the nearest service centre (computed if absent).",
    "inputs.speed": "Travel speed per cell (km/h) for the computed travel times.",
    "inputs.actors": "Actor points for the micro-clusters (`pari-geo run`).",
    # keys of a layer table
    "layer.path": "File path, relative to the run file's folder.",
    "layer.unit": "`m2` (per cell) or `share` (0..1) for `built` and `land`.",
    "layer.id": "Id column of `units` (default `UID`).",
    "layer.mapping": "`corine` or a TOML file mapping land-cover codes to shares.",
    "layer.band": "Raster band to read (default 1).",
    "layer.layer": "Layer of a multi-layer vector file (GeoPackage).",
    "layer.sector": "Sector column of `actors`.",
    "layer.social": "Social-economy flag column of `actors`.",
    "layer.region": "Region column of `units` (rungs of the Cluster Ladder).",
    "layer.country": "Country column of `units` (national / multinational rungs).",
    # [typology]
    "typology.name": "`degurba` or `nordic7`.",
    "typology.level": "DEGURBA level, 1 or 2.",
    "typology.preset": "Parameter preset: `degurba`, `degurba_2023` or `nordic7`.",
    "typology.parameters": "Parameter overrides by name (docs/methods/degurba.md section 5, "
    "docs/methods/place-types.md).",
    "typology.rules": "Unit rules `2024` or `2021` (DEGURBA units).",
    "typology.workflow": "Unit workflow `official` or `alternative`.",
    "typology.dissolve_by": "Merge units by this column before classifying them.",
    "typology.buffer_m": "Crop this many metres from every side of the result.",
    # [outputs]
    "outputs.dir": "Output folder (replaced as a whole, only with `--overwrite`).",
    "outputs.map": "Write the PNG map (default true).",
    "outputs.table": "Write residents per class (default true).",
    "outputs.units_table": "Write the per-unit tables (default true).",
    # [clusters]
    "clusters.eps_m": "DBSCAN radius in metres; a list gives the scales of the ladder.",
    "clusters.min_actors": "DBSCAN `min_samples`: actors within `eps_m`, itself included.",
    "clusters.n_sim": "Largest number of Monte Carlo simulations of the null model "
    "(0: no test; at most 99,999).",
    "clusters.alpha": "False discovery rate of `hidden` (Benjamini–Hochberg over all scales), "
    "in (0, 1).",
    "clusters.random_state": "Seed of the simulations (0 … 2³² − 1); the result never "
    "depends on `n_jobs`.",
    "clusters.micro_max_extent_m": "Largest extent of a `micro` cluster (metres).",
    "clusters.micro_max_actors": "Most actors of a `micro` cluster.",
    "clusters.footprint": "Cluster geometry: `discs` or `hull`.",
    "clusters.early_stop": "Besag–Clifford stop: once every cluster has been reached this "
    "many times by simulated values (0: off).",
    "clusters.p_method": "`pooled` (calibrated per cluster; BH controls the FDR) or `max` "
    "(family-wise); see docs/methods/hidden-clusters.md.",
    "clusters.pool_size": "`pooled`: stop once this many simulated clusters are drawn "
    "(0: off).",
    "clusters.n_jobs": "Threads for the simulations (-1: all cores); never changes the "
    "result.",
    # [execution]
    "execution.engine": "`auto`, `memory` or `tiled` (never changes the results).",
    "execution.max_memory": "Memory budget of `auto`, e.g. `8GiB` (default half the RAM).",
    "execution.tile": "Tile of the tiled engine, `ROWSxCOLS`.",
    "execution.scheduler": "dask scheduler address for the tiled engine.",
}


def _type(t: Any) -> str:
    from .runconfig import _type_name

    return _type_name(t)


def run_file_reference() -> str:
    """The Markdown page listing every run-file key (see the module docstring)."""
    from . import runconfig as rc

    def table(prefix: str, keys: dict[str, Any], defaults: dict[str, Any] | None = None):
        head = "| key | type | meaning |" + (" default |" if defaults else "")
        rule = "|---|---|---|" + ("---|" if defaults else "")
        rows = [head, rule]
        for k, t in keys.items():
            row = f"| `{k}` | {_type(t)} | {DESCRIPTIONS[f'{prefix}.{k}']} |"
            if defaults:
                row += f" `{defaults.get(k)!r}` |".replace("'", '"')
            rows.append(row)
        return rows

    lines = [
        "# Run-file reference",
        "",
        "<!-- generated by pari_geo._reference.run_file_reference(); "
        "tests/test_docs.py checks it is up to date -->",
        "",
        "A run file is TOML; relative paths are resolved against its folder; unknown keys "
        "and wrong types are refused with one line naming the key. `pari-geo validate "
        "RUN.toml` checks a run file and its inputs without computing.",
        "",
        "## `[inputs]`",
        "",
        "Each layer is a path, or a table with `path` and the keys below.",
        "",
        "| layer | meaning |",
        "|---|---|",
        *[f"| `{k}` | {DESCRIPTIONS[f'inputs.{k}']} |" for k in rc._INPUT_LAYERS],
        "",
        "Keys of a layer table:",
        "",
        *table("layer", rc._LAYER_KEYS),
        "",
        "## `[typology]`",
        "",
        *table("typology", rc._TYPOLOGY_KEYS),
        "",
        "## `[outputs]`",
        "",
        *table("outputs", rc._OUTPUT_KEYS),
        "",
        "## `[clusters]` (`pari-geo run`)",
        "",
        *table("clusters", rc._CLUSTER_KEYS, rc.CLUSTER_DEFAULTS),
        "",
        "## `[execution]`",
        "",
        "How a run is computed, never what comes out; command-line options override it.",
        "",
        *table("execution", rc._EXECUTION_KEYS),
        "",
    ]
    return "\n".join(lines)
