"""`pari_geo.prepare` on a 10M-cell region from 100 m GHSL-like tiles: time and peak memory.

Writes four adjacent synthetic 100 m tiles per layer (GHS-POP float32, GHS-BUILT-S and
GHS-LAND uint16 m², World Mollweide, deflate-compressed, named like the GHSL downloads),
each 4,000 x 4,000 cells (400 km a side, as the region's corner of real 1,000 km tiles),
and a region polygon (a disc of ~10M 100 m cells across the four tiles' corner). Then runs
``prepare`` in a fresh process per case and repeat:

* ``native``: 100 m cells in the tiles' own CRS (ESRI:54009: copy inside the region);
* ``laea100``: 100 m cells in EPSG:3035 (every cell reprojected with sum resampling);
* ``laea1km``: 1 km cells in EPSG:3035 (aggregated and reprojected).

    python benchmarks/prepare/run.py --repeats 3 --json benchmarks/prepare/results.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WORK = Path("/tmp/pari_prepare_bench")
TILE = 4000
ORIGIN = (1_000_000.0, 6_200_000.0)  # Mollweide metres, central Europe-ish


def tiles() -> dict[str, list[str]]:
    import rasterio
    from affine import Affine

    WORK.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[str]] = {"population": [], "built": [], "land": []}
    rng = np.random.default_rng(0)
    for r in range(2):
        for c in range(2):
            t = Affine(100, 0, ORIGIN[0] + c * TILE * 100, 0, -100, ORIGIN[1] - r * TILE * 100)
            for layer, prod, dtype in (("population", "POP_E2020", "float32"),
                                       ("built", "BUILT_S_E2020", "uint16"),
                                       ("land", "LAND_E2018", "uint16")):
                rel = "R2022A" if layer == "land" else "R2023A"
                p = WORK / f"GHS_{prod}_GLOBE_{rel}_54009_100_V1_0_R{r + 1}_C{c + 1}.tif"
                out[layer].append(str(p))
                if p.exists():
                    continue
                prof = dict(driver="GTiff", width=TILE, height=TILE, count=1, dtype=dtype,
                            crs="ESRI:54009", transform=t, compress="deflate", tiled=True,
                            blockxsize=512, blockysize=512,
                            nodata=-200 if dtype == "float32" else 65535)
                with rasterio.open(p, "w", **prof) as dst:
                    for row in range(0, TILE, 500):
                        if layer == "population":
                            v = rng.gamma(0.3, 20, (500, TILE)).astype(np.float32)
                        elif layer == "built":
                            v = rng.integers(0, 3000, (500, TILE)).astype(np.uint16)
                        else:
                            v = np.full((500, TILE), 10000, np.uint16)
                        dst.write(v, 1, window=((row, row + 500), (0, TILE)))
    return out


def region() -> str:
    import geopandas as gpd
    from shapely.geometry import Point

    p = WORK / "region.gpkg"
    if not p.exists():
        cx, cy = ORIGIN[0] + TILE * 100, ORIGIN[1] - TILE * 100  # the four tiles' corner
        r = np.sqrt(10e6 / np.pi) * 100  # a disc of 10M 100 m cells
        gpd.GeoDataFrame({"id": [1]}, geometry=[Point(cx, cy).buffer(r, 256)],
                         crs="ESRI:54009").to_file(p)
    return str(p)


def one(case: str, out: str) -> None:
    """One timed prepare in this process; prints JSON."""
    import pari_geo  # noqa: F401  (imports outside the timing)
    from pari_geo.preparation import prepare

    crs, cell = {"native": ("auto", 100), "laea100": ("EPSG:3035", 100),
                 "laea1km": ("EPSG:3035", 1000)}[case]
    cfg = {"region": {"path": region(), "id": "id"}, "grid": {"crs": crs, "cell_size_m": cell},
           "ghsl": tiles(), "run": {"typology": "degurba"}, "outputs": {"dir": out}}
    t0 = time.perf_counter()
    res = prepare(cfg, overwrite=True)
    dt = time.perf_counter() - t0
    print(json.dumps({"case": case, "seconds": dt, "cells": res["grid"].shape[0] *
                      res["grid"].shape[1], "region_cells": res["region_cells"],
                      "population": res["population_total"],
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", nargs="+", default=["native", "laea100", "laea1km"])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--one", nargs=2, metavar=("CASE", "OUT"))
    a = ap.parse_args()
    if a.one:
        one(*a.one)
        return
    t = tiles()
    region()
    import rasterio

    src_total = 0.0
    for p in t["population"]:
        with rasterio.open(p) as s:
            src_total += float(s.read(1, masked=True).sum())
    results = []
    for case in a.cases:
        runs = []
        for _ in range(a.repeats):
            o = subprocess.run(["nice", sys.executable, __file__, "--one", case,
                                str(WORK / f"run_{case}")], capture_output=True, text=True)
            if o.returncode:
                sys.exit(o.stderr)
            runs.append(json.loads(o.stdout.strip().splitlines()[-1]))
        row = {"case": case, "runs": runs,
               "median_s": statistics.median(r["seconds"] for r in runs),
               "peak_mib": max(r["peak_rss_mib"] for r in runs),
               "region_cells": runs[0]["region_cells"], "cells": runs[0]["cells"],
               "population": runs[0]["population"]}
        results.append(row)
        print(f"{case:>8}: {row['median_s']:7.1f} s  {row['peak_mib']:7.0f} MiB  "
              f"{row['region_cells']:>11,} region cells of {row['cells']:>11,}  "
              f"{row['population']:,.0f} residents", flush=True)
    if a.json:
        a.json.write_text(json.dumps({"tiles_population_total": src_total,
                                      "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
