"""Benchmark ``pari_geo.typology.travel_time.minutes_to`` against skimage's MCP_Geometric.

Usage::

    python benchmarks/travel_time/bench.py [--sizes 1000000 10000000] [--repeat 3] [--no-mcp]

A square grid of ``n`` cells (1 km cells), speeds uniform in 30..90 km/h, 5 % impassable
water cells, sources at 1 cell in 100,000 (at least one). Times are wall-clock seconds of the
best of ``--repeat`` runs, after one warm-up call that compiles (or loads) the numba kernel.
Results are written as JSON next to this script (``results.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np


def grid(n_cells: int, seed: int = 0):
    side = int(round(math.sqrt(n_cells)))
    rng = np.random.default_rng(seed)
    passable = rng.random((side, side)) >= 0.05
    speed = np.where(passable, rng.uniform(30, 90, (side, side)), np.nan)
    sources = rng.random((side, side)) < 1e-5
    sources[side // 2, side // 2] = True
    return side, passable, speed, sources


def best_of(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-mcp", action="store_true", help="skip skimage MCP_Geometric")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"),
                    help="where the JSON goes (default: results.json beside this script)")
    args = ap.parse_args()

    from pari_geo.typology.travel_time import minutes_per_metre, minutes_to

    warm = np.zeros((8, 8), bool)
    warm[0, 0] = True
    minutes_to(warm, cell_size_m=1000)  # compile / load the cached kernel

    rows = []
    for n in args.sizes:
        side, passable, speed, sources = grid(n)
        kw = {"cell_size_m": 1000.0, "speed_kmh": speed, "passable": passable}
        t_full, full = best_of(lambda kw=kw, s=sources: minutes_to(s, **kw), args.repeat)
        t_cut, _ = best_of(
            lambda kw=kw, s=sources: minutes_to(s, max_minutes=45.0, **kw), args.repeat
        )
        row = {
            "cells": side * side,
            "side": side,
            "sources": int(sources.sum()),
            "minutes_to_s": round(t_full, 3),
            "minutes_to_max45_s": round(t_cut, 3),
        }
        if not args.no_mcp:
            from skimage.graph import MCP_Geometric

            mpm = minutes_per_metre(sources.shape, speed_kmh=speed, passable=passable) * 1000.0
            starts = np.argwhere(sources)

            def mcp(mpm=mpm, starts=starts):
                return MCP_Geometric(mpm, fully_connected=True).find_costs(starts)[0]

            t_mcp, ref = best_of(mcp, args.repeat)
            finite = np.isfinite(full)
            assert np.array_equal(finite, np.isfinite(ref))
            row["mcp_geometric_s"] = round(t_mcp, 3)
            row["max_abs_diff_min"] = float(np.max(np.abs(full[finite] - ref[finite])))
        rows.append(row)
        print(json.dumps(row))

    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "repeat": args.repeat,
    }
    out = args.out
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
