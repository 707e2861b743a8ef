"""Compare OpenStreetMap readers on speed and peak memory (issue 15, part 3).

Every (reader, task, extract) case runs in a fresh process (``worker.py``), ``--repeats``
times; the table gives the median seconds (imports excluded) and the largest peak RSS.

    python benchmarks/osm_readers/run.py --extract city=PATH --extract region=PATH \\
        --repeats 3 --json benchmarks/osm_readers/results.json

Readers live in their own environments (QuackOSM pins DuckDB): ``--python pyosmium=...``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--extract", action="append", required=True, metavar="NAME=PATH")
    ap.add_argument("--python", action="append", default=[], metavar="READER=EXE")
    ap.add_argument("--readers", nargs="+", default=["pyosmium", "pyrosm", "quackosm"])
    ap.add_argument("--tasks", nargs="+", default=["actors", "roads"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    exes = {r: sys.executable for r in a.readers} | dict(x.split("=", 1) for x in a.python)
    results = []
    for spec in a.extract:
        name, path = spec.split("=", 1)
        size = Path(path).stat().st_size / 2**20
        for task in a.tasks:
            for reader in a.readers:
                runs = []
                for _ in range(a.repeats):
                    env = dict(os.environ, HOME=str(Path("/tmp/osm_bench_home")))
                    Path(env["HOME"]).mkdir(exist_ok=True)
                    out = subprocess.run(["nice", exes[reader], str(HERE / "worker.py"), reader,
                                          task, path], capture_output=True, text=True, env=env)
                    if out.returncode:
                        lines = out.stderr.strip().splitlines() or [f"exit {out.returncode}"]
                        runs.append({"error": lines[-1]})
                        break
                    runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                ok = [r for r in runs if "error" not in r]
                row = {"extract": name, "mib": round(size, 1), "task": task, "reader": reader,
                       "runs": runs}
                if ok:
                    row.update(median_s=statistics.median(r["seconds"] for r in ok),
                               peak_mib=max(r["peak_rss_mib"] for r in ok), rows=ok[0]["rows"])
                results.append(row)
                print(f"{name:>8} {size:7.1f} MiB {task:>6} {reader:>9}: "
                      + (f"{row['median_s']:8.2f} s {row['peak_mib']:8.0f} MiB "
                         f"{row['rows']:>9,} rows" if ok else runs[-1]["error"]), flush=True)
    if a.json:
        a.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
