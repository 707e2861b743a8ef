"""Planted-truth calibration and power of the hidden-cluster test (issue 11).

For each cell size (100 m, 250 m, 1 km) it generates regions with
:func:`pari_geo.datasets.planted.planted_region` and runs ``find_microclusters`` with every
option at its default but ``eps_m``:

- planted regions (16 "low" clusters of 6-30 actors within 100-400 m of their centre, a
  quarter straddling a border of two low-rate units, 3 "high" clusters): recall and FDR of
  ``hidden``, and how many "high" clusters are significant and how many hidden;
- pure-null regions: the p-values of every cluster (mean, share <= 0.05), the share of
  regions with any hidden cluster, and observed/expected by cluster size;
- the power curve (250 m cells): recall against planted size 5-30 and radius 200-800 m;
- the ladder (300 m and 1 km at 250 m cells): recall and FDR over candidates grouped
  across scales.

Usage::

    python benchmarks/hidden_clusters/run.py --json benchmarks/hidden_clusters/results.json \
        --plot benchmarks/hidden_clusters/power_curve.png
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

from pari_geo.clustering.actors import find_microclusters, label_actors
from pari_geo.clustering.ladder import ladder
from pari_geo.datasets.planted import detection_scores, planted_region

EPS = 500.0


def _fit(region, eps=EPS, **extra):
    kw = dict(eps_m=eps, min_actors=5, units=region.units, unit_id="unit_id",
              population=region.population)  # fmt: skip
    out = find_microclusters(region.actors, **kw, **extra)
    labels = label_actors(region.actors, **kw).to_numpy()
    return out, labels


def planted(cell, seeds):
    rows = [detection_scores(*_fit(r := planted_region(cell, seed=s)), r) for s in seeds]
    tot = {k: float(sum(r[k] for r in rows)) for k in rows[0]}
    return {
        "regions": len(rows),
        "planted_low": tot["n_low"] + tot["tipped"],
        "tipped": tot["tipped"],
        "recall": tot["found_low"] / tot["n_low"],
        "hidden": tot["n_hidden"],
        "false": tot["n_false"],
        "fdr": tot["n_false"] / tot["n_hidden"] if tot["n_hidden"] else 0.0,
        "high_planted": 3.0 * len(rows),
        "high_significant": tot["high_significant"],
        "high_hidden": tot["high_hidden"],
    }


def null(cell, seeds):
    p, sizes, ratios, any_hidden = [], [], [], 0
    for s in seeds:
        r = planted_region(cell, seed=10_000 + s, null=True)
        out, _ = _fit(r)
        p += out["p_value"].tolist()
        sizes += out["n_actors"].tolist()
        ratios += out["ratio"].tolist()
        any_hidden += bool(out["hidden"].any())
    p, sizes, ratios = np.array(p), np.array(sizes), np.array(ratios)
    by_size = {}
    for lo, hi, name in ((5, 10, "5-9"), (10, 50, "10-49"), (50, 10**9, ">=50")):
        m = (sizes >= lo) & (sizes < hi)
        by_size[name] = {"clusters": int(m.sum()),
                         "median_ratio": float(np.median(ratios[m])) if m.any() else None,
                         "mean_ratio": float(np.mean(ratios[m])) if m.any() else None}  # fmt: skip
    return {
        "regions": len(seeds),
        "clusters": int(len(p)),
        "mean_p": float(p.mean()),
        "share_p_le_005": float((p <= 0.05).mean()),
        "regions_with_hidden": any_hidden,
        "share_regions_with_hidden": any_hidden / len(seeds),
        "ratio_by_size": by_size,
    }


def power(seeds, sizes=(5, 8, 12, 18, 24, 30), radii=(200, 400, 600, 800)):
    grid = {}
    for n in sizes:
        for rad in radii:
            found = tot = 0
            for s in seeds:
                r = planted_region(250.0, seed=500 + s, n_high=0, sizes=(n, n),
                                   radii_m=(rad, rad))  # fmt: skip
                sc = detection_scores(*_fit(r), r)
                found += sc["found_low"]
                tot += sc["n_low"]
            grid[f"{n},{rad}"] = found / tot
    return {"sizes": list(sizes), "radii_m": list(radii), "recall": grid}


def ladder_scores(seeds, scales=(300.0, 1000.0)):
    found = n_low = hidden = false = 0
    for s in seeds:
        r = planted_region(250.0, seed=s)
        out = ladder(r.actors, eps_m=scales, min_actors=5, units=r.units, unit_id="unit_id",
                     population=r.population)  # fmt: skip
        planted_ids = r.actors["planted"].to_numpy()
        kinds = r.actors["kind"].to_numpy()
        low_ids = set(r.truth.loc[r.truth["kind"] == "low", "planted"])
        cand_true: dict[int, bool] = {}
        got: set[int] = set()
        for eps in scales:
            at = out[out["scale_eps_m"] == eps]
            lab = label_actors(r.actors, eps_m=eps, min_actors=5, units=r.units,
                               unit_id="unit_id", population=r.population).to_numpy()  # fmt: skip
            for row in at[at["hidden"]].itertuples():
                mem = lab == row.cluster_id
                ok = (kinds[mem] == "low").mean() >= 0.5
                for pid in low_ids:
                    share = (mem & (planted_ids == pid)).sum() / (planted_ids == pid).sum()
                    if share >= 0.5:
                        ok = True
                        got.add(pid)
                cand_true[int(row.candidate_id)] = cand_true.get(int(row.candidate_id), False) or ok
        found += len(got)
        n_low += len(low_ids)
        hidden += len(cand_true)
        false += sum(not v for v in cand_true.values())
    return {"scales_m": list(scales), "recall": found / n_low, "candidates": hidden,
            "false": false, "fdr": false / hidden if hidden else 0.0}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--planted", type=int, default=10, help="planted regions per cell size")
    ap.add_argument("--nulls", type=int, default=40, help="null regions per cell size")
    ap.add_argument("--power-seeds", type=int, default=2)
    ap.add_argument("--cells", type=float, nargs="+", default=[100.0, 250.0, 1000.0])
    ap.add_argument("--json")
    ap.add_argument("--plot")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    res: dict = {"eps_m": EPS, "by_cell": {}}
    planted_region(1000.0, seed=0)  # warm the numba cache out of the timings
    _fit(planted_region(1000.0, seed=0))
    for cell in args.cells:
        t = time.perf_counter()
        pl = planted(cell, range(args.planted))
        nl = null(cell, range(args.nulls))
        res["by_cell"][f"{cell:g}"] = {"planted": pl, "null": nl,
                                       "seconds": time.perf_counter() - t}  # fmt: skip
        print(f"{cell:g} m:", json.dumps(res["by_cell"][f"{cell:g}"]), flush=True)
    res["ladder_250m"] = ladder_scores(range(args.planted // 2 or 1))
    print("ladder:", json.dumps(res["ladder_250m"]), flush=True)
    if args.power_seeds:
        res["power_250m"] = power(range(args.power_seeds))
        print("power:", json.dumps(res["power_250m"]), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=2)
    if args.plot and "power_250m" in res:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        pw = res["power_250m"]
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for rad in pw["radii_m"]:
            ax.plot(pw["sizes"], [pw["recall"][f"{n},{rad}"] for n in pw["sizes"]],
                    marker="o", label=f"radius {rad} m")  # fmt: skip
        ax.axhline(0.95, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("actors in the planted cluster")
        ax.set_ylabel("recall (hidden at eps 500 m)")
        ax.set_ylim(0, 1.02)
        ax.set_title("Power of the hidden-cluster test, 250 m cells, defaults")
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)


if __name__ == "__main__":
    main()
