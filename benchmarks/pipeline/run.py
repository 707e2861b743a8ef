"""Wall time of the full ``pari-geo run`` on the bundled Östergötland-shaped sample.

Issue 5 asks that the whole run (seven place types -> micro-clusters at four scales ->
ladder, Monte Carlo significance with ``n_sim=999``, tables, GeoPackage/GeoParquet, PNG
maps, summary) finishes in under 60 s on the project machine (2 cores).

Each configuration runs in a fresh subprocess. One untimed warm-up run first fills the
numba cache, so compile time stays out of the timings (as a user's second run sees it);
the compile-inclusive first run is reported separately.

Usage::

    python benchmarks/pipeline/run.py [--repeat 3] [--json benchmarks/pipeline/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ostergotland_run.toml"


def _run_file(tmp: Path, early_stop: int) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace('"../', f'"{EXAMPLE.parent.parent.as_posix()}/')
    text = text.replace("early_stop = 20", f"early_stop = {early_stop}")
    out = tmp / f"out_es{early_stop}"
    text = text.replace(f'dir = "{EXAMPLE.parent.parent.as_posix()}/out/ostergotland_run"',
                        f'dir = "{out.as_posix()}"')
    path = tmp / f"run_es{early_stop}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _time_once(run_toml: Path, env: dict[str, str]) -> dict[str, float]:
    cmd = [sys.executable, "-m", "pari_geo.cli", "run", str(run_toml), "--overwrite", "--quiet"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_rss_mib": after.ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": os.getloadavg()},
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp / "numba_cache"))
        env.pop("PARI_GEO_NUMBA_CACHE", None)
        for early_stop in (20, 0):
            run_toml = _run_file(tmp, early_stop)
            first = _time_once(run_toml, env)  # numba compiles and caches here
            times = [_time_once(run_toml, env) for _ in range(args.repeat)]
            walls = [t["wall_s"] for t in times]
            label = f"n_sim=999, early_stop={early_stop}"
            results["runs"][label] = {
                "first_run_with_compile_s": round(first["wall_s"], 2),
                "wall_s": [round(w, 2) for w in walls],
                "median_wall_s": round(statistics.median(walls), 2),
                "median_cpu_s": round(statistics.median(t["cpu_s"] for t in times), 2),
                "peak_rss_mib": round(max(t["peak_rss_mib"] for t in times), 1),
            }
            print(label, json.dumps(results["runs"][label]), flush=True)
    results["machine"]["load_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
