"""Issue 13 item 6: the benchmark ratios before and after the redesign, in the same run.

Runs each benchmark of the issue with the code before the redesign and with this checkout,
alternating sides round by round on the same machine (``PYTHONPATH`` picks the package:
``<checkout>/src``), always with this checkout's benchmark scripts:

* DEGURBA level 2 vs GOSTurban (``benchmarks/degurba/run.py``; GOSTurban installed by
  ``benchmarks/degurba/setup_gost.sh``),
* DBSCAN vs ``dbscan`` (``benchmarks/dbscan/run.py --peers pari_geo dbscan``),
* travel time vs scikit-image ``MCP_Geometric`` (``benchmarks/travel_time/bench.py``),
* out-of-core DEGURBA: time and peak memory by tiles and in memory
  (``benchmarks/out_of_core/run.py --memory``).

Usage::

    git worktree add /tmp/before 5fa995a        # the last commit before the redesign
    python benchmarks/redesign/same_run.py --before /tmp/before --rounds 2 \\
        --json benchmarks/redesign/same_run.json

Each round writes the raw outputs of every benchmark to ``--work``; the summary (medians
over rounds of each side's figures, and after/before ratios) goes to ``--json`` and is
printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def _run(cmd: list[str], src: Path, log: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(src), PARI_GEO_NO_PROGRESS="1")
    with open(log, "w") as fh:
        p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (rc {p.returncode}); see {log}")


def degurba(src: Path, out: Path, args) -> dict[str, float]:
    _run([PY, "benchmarks/degurba/run.py", "--sizes", "1M", "--no-files", "--repeats", "7",
          "--gost-repeats", str(args.gost_repeats), "--out", str(out)], src,
         out.with_suffix(".log"))
    res = json.loads(out.read_text())
    return _degurba_figures(res)


def _degurba_figures(res: dict) -> dict[str, float]:
    """Median seconds of pari_geo from arrays on Belgium and on 1M cells, GOSTurban on
    Belgium."""
    figs: dict[str, float] = {}
    for run in res["runs"]:
        if run.get("tool") == "GOSTurban":
            figs["gosturban_belgium_s"] = float(run["median_s"])
        elif run.get("tool") == "pari_geo" and run.get("mode") == "arrays" \
                and run.get("inputs", "native") == "native":
            key = "belgium_s" if run["cells"] == 66357 else f"mosaic_{run['cells']:.0e}_s"
            figs[key] = float(run["median_s"])
    if "belgium_s" not in figs:
        raise SystemExit("unexpected benchmarks/degurba/run.py output (no Belgium run)")
    return figs


def dbscan(src: Path, out: Path, args) -> dict[str, float]:
    _run([PY, "benchmarks/dbscan/run.py", "--sizes", *args.dbscan_sizes, "--peers",
          "pari_geo", "dbscan", "--repeats", "3", "--out", str(out)], src,
         out.with_suffix(".log"))
    res = json.loads(out.read_text())
    figs = {}
    for row in res["results"]:
        if "median_s" in row:  # the "check" rows compare labels
            figs[f"{row['peer']}_{row['n']:.0e}_s"] = float(row["median_s"])
            figs[f"{row['peer']}_{row['n']:.0e}_peak_mib"] = float(row["peak_over_base_mib"])
    return figs


def travel(src: Path, out: Path, args) -> dict[str, float]:
    _run([PY, "benchmarks/travel_time/bench.py", "--sizes", *map(str, args.travel_sizes),
          "--repeat", "3", "--out", str(out)], src, out.with_suffix(".log"))
    figs = {}
    for row in json.loads(out.read_text())["results"]:
        n = f"{row['cells']:.0e}"
        figs[f"minutes_to_{n}_s"] = row["minutes_to_s"]
        figs[f"minutes_to_max45_{n}_s"] = row["minutes_to_max45_s"]
        figs[f"mcp_geometric_{n}_s"] = row["mcp_geometric_s"]
    return figs


def out_of_core(src: Path, out: Path, args) -> dict[str, float]:
    out.unlink(missing_ok=True)
    _run([PY, "benchmarks/out_of_core/run.py", "--rows", str(args.ooc_rows), "--cols",
          str(args.ooc_cols), "--memory", "--work", str(args.work / "ooc"), "--results",
          str(out)], src, out.with_suffix(".log"))
    rec = json.loads(out.read_text())[-1]
    figs = {}
    for mode in ("chunked", "memory"):
        r = rec["runs"][mode]
        figs[f"{mode}_s"] = r["seconds"]
        figs[f"{mode}_peak_gib"] = r["peak_rss_gib"]
    figs["identical"] = float(bool(rec.get("identical")))
    return figs


BENCHES = {"degurba": degurba, "dbscan": dbscan, "travel": travel, "out_of_core": out_of_core}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="checkout before the redesign")
    ap.add_argument("--after", type=Path, default=ROOT, help="checkout after (this one)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", nargs="*", choices=sorted(BENCHES))
    ap.add_argument("--gost-repeats", type=int, default=3)
    ap.add_argument("--dbscan-sizes", nargs="+", default=["1e6", "1e7"])
    ap.add_argument("--travel-sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--ooc-rows", type=int, default=3000)
    ap.add_argument("--ooc-cols", type=int, default=6000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/pari_geo_same_run"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    sides = {"before": args.before.resolve() / "src", "after": args.after.resolve() / "src"}
    figures: dict[str, dict[str, list[dict[str, float]]]] = {}
    for rnd in range(args.rounds):
        order = ["before", "after"] if rnd % 2 == 0 else ["after", "before"]
        for name in args.only or BENCHES:
            for side in order:
                out = args.work / f"{name}_{side}_{rnd}.json"
                t0 = time.perf_counter()
                figs = BENCHES[name](sides[side], out, args)
                print(f"round {rnd} {name} {side} ({time.perf_counter() - t0:.0f} s): "
                      f"{json.dumps(figs)}", flush=True)
                figures.setdefault(name, {}).setdefault(side, []).append(figs)
    summary: dict[str, dict] = {}
    for name, by_side in figures.items():
        keys = sorted(set().union(*(f.keys() for f in by_side["after"])))
        rows = {}
        for k in keys:
            b = statistics.median(f[k] for f in by_side["before"] if k in f)
            a = statistics.median(f[k] for f in by_side["after"] if k in f)
            rows[k] = {"before": b, "after": a, "after_over_before": a / b if b else None}
        summary[name] = rows
    record = {"date": time.strftime("%Y-%m-%d %H:%M"), "rounds": args.rounds,
              "load_avg_end": os.getloadavg(),
              "before": subprocess.run(["git", "-C", str(args.before), "rev-parse", "HEAD"],
                                       capture_output=True, text=True).stdout.strip(),
              "after": subprocess.run(["git", "-C", str(args.after), "rev-parse", "HEAD"],
                                      capture_output=True, text=True).stdout.strip(),
              "summary": summary, "raw": figures}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
