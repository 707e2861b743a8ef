"""Spot-check a chunked result too large for the in-memory path, window by window.

The mosaic of ``run.py`` separates the Belgium copies by ``gap`` water cells (population
0, land 0: never dense, permanent water, never joins a centre). A crop whose sides run
through the middle of the water gaps is therefore classified on its own exactly as inside
the whole grid (clusters, edge smoothing, gap filling and the semi-dense buffer of 2
cells never cross 10 water cells). This script crops the inputs at such windows (one in
the interior, one at the bottom-right grid corner with cut copies), classifies each crop
with the in-memory ``classify_grid`` and compares it with the same window of the chunked
result.

Usage::

    .venv/bin/python benchmarks/out_of_core/verify_crops.py --rows 18000 --cols 36000 \\
        --work /tmp/ooc_bench
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

NAMES = {"population": "POP.tif", "built": "BUILT_S.tif", "land": "LAND.tif"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--cols", type=int, required=True)
    ap.add_argument("--gap", type=int, default=20)
    ap.add_argument("--work", default="/tmp/ooc_bench")
    args = ap.parse_args()
    from pari_geo.typology.degurba import classify_grid

    work = Path(args.work)
    inputs = work / f"inputs_{args.rows}x{args.cols}"
    result = work / f"out_chunked_{args.rows}x{args.cols}.tif"
    pr, pc = 219 + args.gap, 303 + args.gap
    half = args.gap // 2
    # (row0, col0, rows, cols): interior block of 3 x 4 copies; the bottom-right corner
    last_r = (args.rows // pr) * pr - half
    last_c = (args.cols // pc) * pc - half
    windows = [
        (pr * (args.rows // pr // 2) - half, pc * (args.cols // pc // 2) - half, 3 * pr,
         4 * pc),
        (last_r, last_c, args.rows - last_r, args.cols - last_c),
    ]
    report = []
    with tempfile.TemporaryDirectory() as d:
        for i, (r0, c0, nr, nc) in enumerate(windows):
            win = Window(c0, r0, nc, nr)
            paths = {}
            for key, name in NAMES.items():
                with rasterio.open(inputs / name) as src:
                    prof = src.profile.copy()
                    prof.update(height=nr, width=nc, transform=src.window_transform(win),
                                tiled=False, compress=None, BIGTIFF="NO")
                    prof.pop("blockxsize", None)
                    prof.pop("blockysize", None)
                    a = src.read(1, window=win)
                p = Path(d) / f"{i}_{name}"
                with rasterio.open(p, "w", **prof) as dst:
                    dst.write(a, 1)
                paths[key] = p
            ref = np.asarray(classify_grid(paths["population"], paths["built"], paths["land"],
                                           level=2))
            with rasterio.open(result) as src:
                got = src.read(1, window=win)
            n_diff = int((ref != got).sum())
            report.append({"window": [r0, c0, nr, nc], "cells": int(ref.size),
                           "differing_cells": n_diff,
                           "classes": sorted(np.unique(ref).tolist())})
            print(json.dumps(report[-1]), flush=True)
    if any(r["differing_cells"] for r in report):
        raise SystemExit("chunked result differs from the in-memory classification")


if __name__ == "__main__":
    main()
