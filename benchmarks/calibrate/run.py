"""Calibration speed (issue 14 item 7): 3 free parameters on a grid of a million cells.

The synthetic Östergötland-shaped region at 125 m cells (1160 x 1240 = 1.44 M cells, every
layer of the sample) gets a reference made with known non-default parameters; the
calibration starts from the ``nordregio`` preset and fits the three of them. Target: under
2 minutes on this 2-core machine. Reported: the wall time of the calibration (inputs
already in memory; the numba kernels compiled by a small warm-up run first, whose time is
reported apart), the evaluations of the rules, the agreement before and after, and the
time of one uncached run of the rules for comparison.

Usage::

    python benchmarks/calibrate/run.py --repeat 3 --json benchmarks/calibrate/results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

KNOWN = {"close_to_urban_minutes": 18.0, "heartland_density": 16.0,
         "heartland_agri_share": 0.4}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--resolution", type=int, default=125)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from pari_geo.datasets.ostergotland import make_ostergotland
    from pari_geo.typology.calibrate import calibrate_arrays
    from pari_geo.typology.nordic7 import Nordic7Params, classify_nordic7_array

    t = time.perf_counter()
    tiny = make_ostergotland(1000)
    lay = tiny.layers
    kw = {k: lay[k] for k in ("built_share", "land_share", "agri_share", "commuting_share")}
    truth, _ = classify_nordic7_array(lay["population"], cell_size_m=1000, **kw)
    calibrate_arrays(lay["population"], truth, cell_size_m=1000, fit=list(KNOWN), **kw)
    warmup = time.perf_counter() - t

    sample = make_ostergotland(args.resolution)
    lay = sample.layers
    pop = lay["population"]
    kw = {k: lay[k] for k in ("built_share", "land_share", "agri_share", "commuting_share")}
    truth, _ = classify_nordic7_array(pop, cell_size_m=args.resolution,
                                      params=Nordic7Params(**KNOWN), **kw)
    t = time.perf_counter()
    classify_nordic7_array(pop, cell_size_m=args.resolution, **kw)
    one_run = time.perf_counter() - t
    walls, fit = [], None
    for _ in range(args.repeat):
        t = time.perf_counter()
        fit = calibrate_arrays(pop, truth, cell_size_m=args.resolution, fit=list(KNOWN), **kw)
        walls.append(time.perf_counter() - t)
        print(f"calibration: {walls[-1]:.1f} s, {fit.evaluations} evaluations, agreement "
              f"{fit.start.agreement:.4f} -> {fit.agreement:.4f}", flush=True)
    assert fit is not None
    out = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": os.getloadavg()},
        "cells": int(pop.size), "shape": list(pop.shape), "cell_size_m": args.resolution,
        "known": KNOWN, "fitted": fit.params, "evaluations": fit.evaluations,
        "agreement_start": fit.start.agreement, "agreement": fit.agreement,
        "kappa": fit.kappa, "wall_s": walls, "median_wall_s": statistics.median(walls),
        "one_uncached_run_s": one_run, "warmup_compile_s": warmup,
    }
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
