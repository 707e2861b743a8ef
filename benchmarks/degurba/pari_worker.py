"""Time pari_geo's DEGURBA level 2 in a fresh process and measure its peak memory.

Prints one JSON line. Modes:

* ``arrays``: inputs are numpy arrays in memory (the Belgium grids, or an ``np.tile``
  mosaic of them built block by block in this process, i.e. ``out[i*h:(i+1)*h,
  j*w:(j+1)*w] = a``, which is what ``np.tile`` returns without its temporaries); the
  timed call is ``degurba_layers(pop, built, land, 1000)`` + ``classify_level2_array``.
  ``--inputs native`` keeps the GHSL file dtypes (POP float64 with NaN no-data,
  BUILT_S and LAND uint32 m², which have no no-data cells here); ``--inputs float64``
  converts BUILT_S and LAND to float64 first (what a caller holding float layers passes).
* ``files``: end to end from GeoTIFFs, ``classify_grid(POP, BUILT_S, LAND, level=2)``
  (read with GDAL, checks, alignment, classification, result DataArray; no output file).

Memory: ``baseline`` = RSS (psutil) after imports and after one warm-up classification of
the Belgium grids (numba kernels loaded from the cache or compiled), before the inputs are
created or read; ``peak`` = ``ru_maxrss`` of the process at the end (its lifetime
high-water mark: input creation/reading, the warm-up and the timed runs at full size).
``peak - baseline`` therefore includes the inputs, every temporary and the result.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import time

import numpy as np


def _read_native(path):
    import rasterio

    with rasterio.open(path) as src:
        a = src.read(1)
        nodata = src.nodata
    if a.dtype.kind == "f" and nodata is not None and not np.isnan(nodata):
        a[a == nodata] = np.nan
    return a


def _tile(a: np.ndarray, ty: int, tx: int) -> np.ndarray:
    h, w = a.shape
    out = np.empty((h * ty, w * tx), dtype=a.dtype)
    for i in range(ty):
        for j in range(tx):
            out[i * h:(i + 1) * h, j * w:(j + 1) * w] = a
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("arrays", "files"), required=True)
    ap.add_argument("--tiles", type=int, nargs=2, default=(1, 1), metavar=("TY", "TX"))
    ap.add_argument("--inputs", choices=("native", "float64"), default="native")
    ap.add_argument("--files", nargs=3, metavar=("POP", "BUILT_S", "LAND"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()

    import psutil

    from pari_geo.datasets import belgium_paths
    from pari_geo.typology.degurba import classify_grid, classify_level2_array, degurba_layers

    bp = belgium_paths()
    pop0, built0, land0 = (_read_native(bp[k]) for k in ("population", "built", "land"))
    # warm-up on Belgium: imports, numba cache load / compile (excluded from everything)
    classify_level2_array(degurba_layers(pop0, built0, land0, 1000))
    classify_grid(bp["population"], bp["built"], bp["land"], level=2)
    proc = psutil.Process()
    baseline = proc.memory_info().rss

    ty, tx = args.tiles
    if args.mode == "arrays":
        pop, built, land = (_tile(a, ty, tx) for a in (pop0, built0, land0))
        if args.inputs == "float64":
            built, land = built.astype(np.float64), land.astype(np.float64)
        del pop0, built0, land0
        cells = pop.size
        input_bytes = pop.nbytes + built.nbytes + land.nbytes

        def run():
            return classify_level2_array(degurba_layers(pop, built, land, 1000))[0]
    else:
        del pop0, built0, land0
        paths = args.files or (bp["population"], bp["built"], bp["land"])
        input_bytes = None
        cells = None

        def run():
            return classify_grid(*paths, level=2).values

    times = []
    out = None
    for i in range(args.warmup + args.repeats):
        out = None
        t0 = time.perf_counter()
        out = run()
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(dt)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    cells = out.size
    vals, counts = np.unique(out, return_counts=True)
    print(json.dumps({
        "tool": "pari_geo",
        "mode": args.mode,
        "inputs": args.inputs if args.mode == "arrays" else "files",
        "tiles": [ty, tx],
        "shape": list(out.shape),
        "cells": int(cells),
        "times_s": times,
        "baseline_rss_mib": baseline / 2**20,
        "peak_rss_mib": peak / 2**20,
        "delta_mib": (peak - baseline) / 2**20,
        "bytes_per_cell": (peak - baseline) / cells,
        "input_bytes_per_cell": None if input_bytes is None else input_bytes / cells,
        "counts": {str(int(v)): int(c) for v, c in zip(vals, counts, strict=True)},
        "sha1": hashlib.sha1(np.ascontiguousarray(out).tobytes()).hexdigest(),
    }))


if __name__ == "__main__":
    main()
