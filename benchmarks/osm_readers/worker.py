"""One reader on one task, in a fresh process: prints JSON {seconds, rows, peak_rss_mib}.

    python worker.py READER TASK PATH
    READER: pyosmium | pyrosm | quackosm     TASK: actors | roads
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time

# the tag keys pari_geo's shipped actor mapping reads (pari_geo/presets/osm_actors.toml)
KEYS = ["amenity", "building", "club", "cooperative", "craft", "healthcare", "industrial",
        "leisure", "man_made", "microbrewery", "office", "operator:type", "shop", "tourism",
        "vending"]


def pyosmium(task: str, path: str) -> int:
    if task == "actors":
        from pari_geo.preparation.actors import actors_from_osm

        return len(actors_from_osm(path))
    import numpy as np
    import shapely

    from pari_geo.preparation.roads import load_speeds, osm_road_batches

    n = 0
    for geoms, _ in osm_road_batches(path, load_speeds()):
        n += len(shapely.from_wkb(np.array(geoms, dtype=object)))
    return n


def pyrosm(task: str, path: str) -> int:
    import pyrosm as pr

    osm = pr.OSM(path)
    if task == "actors":
        gdf = osm.get_pois(custom_filter={k: True for k in KEYS})
        return 0 if gdf is None else len(gdf.geometry.representative_point())
    gdf = osm.get_network(network_type="driving")
    return 0 if gdf is None else len(gdf)


def quackosm(task: str, path: str) -> int:
    import quackosm as qosm

    _offline_spatial_extension()

    tags = {k: True for k in KEYS} if task == "actors" else {"highway": True}
    with tempfile.TemporaryDirectory() as tmp:
        gdf = qosm.convert_pbf_to_geodataframe(path, tags_filter=tags, working_directory=tmp,
                                               verbosity_mode="silent", ignore_cache=True)
        if task == "actors":
            gdf.geometry.representative_point()
        return len(gdf)


def _offline_spatial_extension() -> None:
    """QuackOSM needs DuckDB's spatial extension, which DuckDB downloads on first use; on a
    machine without internet, install it from the PyPI package duckdb-extension-spatial
    (into DuckDB's extension folder under $HOME; run.py points HOME to a scratch folder)."""
    from pathlib import Path

    import duckdb

    try:
        import duckdb_extension_spatial as ext
    except ImportError:
        return
    found = sorted(Path(ext.__file__).parent.glob("extensions/*/spatial.duckdb_extension"))
    if found:
        duckdb.install_extension(str(found[-1]))


def main() -> None:
    reader, task, path = sys.argv[1:4]
    t_import = time.perf_counter()
    for mod in {"pyosmium": ["osmium", "geopandas", "shapely", "pari_geo.preparation.actors",
                             "pari_geo.preparation.roads"],
                "pyrosm": ["pyrosm", "geopandas"], "quackosm": ["quackosm", "geopandas"]}[reader]:
        __import__(mod)
    t0 = time.perf_counter()
    rows = globals()[reader](task, path)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"reader": reader, "task": task, "seconds": dt, "rows": rows,
                      "import_seconds": t0 - t_import,
                      "peak_rss_mib": peak}))


if __name__ == "__main__":
    main()
