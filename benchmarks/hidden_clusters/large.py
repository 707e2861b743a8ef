"""The large case of issue 11: 200,000 actors on a Sweden-sized 250 m grid, 4 scales.

A planted region of 500 x 1570 km (about Sweden's bounding box; 2000 x 6280 = 12.6 M cells
of 250 m) with 290 units (Sweden's municipalities), background actors from the null model
and 100 planted "low" clusters; ``ladder`` at 300 m, 1 km, 5 km and 20 km with 999
simulations (the defaults otherwise). Reports the generation and ladder times, the peak
resident memory of the process (``ru_maxrss``) and the recall of the planted clusters.

Usage::

    python benchmarks/hidden_clusters/large.py --json benchmarks/hidden_clusters/large.json
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-km", type=float, nargs=2, default=[500.0, 1570.0])
    ap.add_argument("--cell", type=float, default=250.0)
    ap.add_argument("--units", type=int, default=290)
    ap.add_argument("--actors", type=int, default=200_000, help="approximate background")
    ap.add_argument("--n-sim", type=int, default=999)
    ap.add_argument("--json")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from pari_geo.clustering.actors import find_microclusters
    from pari_geo.clustering.ladder import ladder
    from pari_geo.datasets.planted import planted_region

    # warm the numba cache on a small region (compile time is reported apart)
    t = time.perf_counter()
    small = planted_region(1000.0, seed=0, size_km=(30.0, 24.0), n_low=2, n_high=0)
    find_microclusters(small.actors, eps_m=500, min_actors=5, units=small.units,
                       unit_id="unit_id", population=small.population, n_sim=9)  # fmt: skip
    warm = time.perf_counter() - t

    # rates chosen so the background totals about --actors
    t = time.perf_counter()
    probe = planted_region(args.cell, seed=1, size_km=tuple(args.size_km), n_units=args.units,
                           null=True, rates_per_100=(1.0, 1.0))  # fmt: skip
    per_100 = 100.0 * args.actors / float(probe.population.values.sum())
    del probe
    region = planted_region(args.cell, seed=1, size_km=tuple(args.size_km), n_units=args.units,
                            n_low=100, n_high=10,
                            rates_per_100=(0.5 * per_100, 2.0 * per_100))  # fmt: skip
    gen = time.perf_counter() - t
    n_actors = len(region.actors)
    cells = int(region.population.size)

    t = time.perf_counter()
    out = ladder(region.actors, eps_m=(300.0, 1000.0, 5000.0, 20000.0), min_actors=5,
                 units=region.units, unit_id="unit_id", population=region.population,
                 n_sim=args.n_sim)  # fmt: skip
    run = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB

    # recall at 1 km: a planted low cluster is found when a hidden 1 km cluster holds
    # half its actors
    from pari_geo.clustering.actors import label_actors

    lab = label_actors(region.actors, eps_m=1000.0, min_actors=5, units=region.units,
                       unit_id="unit_id", population=region.population).to_numpy()  # fmt: skip
    at = out[out["scale_eps_m"] == 1000.0]
    hidden = set(at.loc[at["hidden"], "cluster_id"].astype(int))
    planted = region.actors["planted"].to_numpy()
    found = 0
    low = region.truth.loc[region.truth["kind"] == "low", "planted"]
    for pid in low:
        labs = lab[planted == pid]
        labs = labs[labs >= 0]
        if len(labs):
            v, c = np.unique(labs, return_counts=True)
            found += int(v[np.argmax(c)] in hidden and c.max() >= 0.5 * (planted == pid).sum())
    res = {
        "cells": cells,
        "cell_m": args.cell,
        "units": args.units,
        "actors": n_actors,
        "n_sim": args.n_sim,
        "clusters_per_scale": {f"{e:g}": int((out["scale_eps_m"] == e).sum())
                               for e in sorted(out["scale_eps_m"].unique())},  # fmt: skip
        "hidden_per_scale": {f"{e:g}": int(out.loc[out["scale_eps_m"] == e, "hidden"].sum())
                             for e in sorted(out["scale_eps_m"].unique())},  # fmt: skip
        "planted_low_found_at_1km": f"{found}/{len(low)}",
        "warm_up_s": round(warm, 1),
        "generate_s": round(gen, 1),
        "ladder_s": round(run, 1),
        "peak_rss_gib": round(peak, 2),
    }
    print(json.dumps(res, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
