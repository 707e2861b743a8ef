"""Wall time of the full ``pari-geo run`` on the bundled Östergötland-shaped sample.

Issue 5 asks that the whole run (seven place types -> micro-clusters at four scales ->
ladder, Monte Carlo significance with ``n_sim=999``, tables, GeoPackage/GeoParquet, PNG
maps, summary) finishes in under 60 s on the project machine (2 cores).

Each run is a fresh subprocess. A first run on an empty numba cache (reported apart, with
its ratio to the warm median; ``--cold N`` times N of them, each on its own empty cache,
and reports their median) fills the cache, so compile time stays out of the timings.
With ``--baseline`` another checkout (for example a git worktree of the previous commit)
runs its own example in the same session, alternating with this one, and the ratios are
taken pair by pair.

Usage::

    git worktree add /tmp/base <commit>
    python benchmarks/pipeline/run.py --repeat 5 --baseline /tmp/base \
        --json benchmarks/pipeline/results.json
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


def _run_file(tmp: Path, root: Path, tag: str) -> Path:
    """The example run file of checkout ``root``, with absolute inputs and its own output."""
    example = root / "examples" / "ostergotland_run.toml"
    text = example.read_text(encoding="utf-8")
    text = text.replace('"../', f'"{root.as_posix()}/')
    out = tmp / f"out_{tag}"
    old = f'dir = "{root.as_posix()}/out/ostergotland_run"'
    text = text.replace(old, f'dir = "{out.as_posix()}"')
    path = tmp / f"run_{tag}.toml"
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
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout (e.g. a git worktree of the previous release) to "
                         "time in the same run, alternating with this one")  # fmt: skip
    ap.add_argument("--cold", type=int, default=1,
                    help="first runs, each on its own empty numba cache (median reported)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": os.getloadavg()},
        "runs": {},
    }
    roots = {"this": ROOT}
    if args.baseline is not None:
        roots["baseline"] = args.baseline.resolve()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        plan = {}
        for tag, root in roots.items():
            env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp / f"numba_cache_{tag}"),
                       PYTHONPATH=str(root / "src"))  # fmt: skip
            env.pop("PARI_GEO_NUMBA_CACHE", None)
            run_toml = _run_file(tmp, root, tag)
            colds = []
            for i in range(max(args.cold, 1)):  # numba compiles into an empty cache here
                cold_env = dict(env, NUMBA_CACHE_DIR=str(tmp / f"numba_cache_{tag}_cold{i}"))
                colds.append(_time_once(run_toml, cold_env if i else env)["wall_s"])
            first = {"wall_s": statistics.median(colds), "all": colds}
            plan[tag] = (run_toml, env, first, [])
        for _ in range(args.repeat):  # alternate, so that drifts of the machine hit both
            for _tag, (run_toml, env, _first, times) in plan.items():
                times.append(_time_once(run_toml, env))
        for tag, (_toml, _env, first, times) in plan.items():
            walls = [t["wall_s"] for t in times]
            results["runs"][tag] = {
                "root": str(roots[tag]),
                "first_run_empty_cache_s": round(first["wall_s"], 2),
                "first_runs_empty_cache_s": [round(w, 2) for w in first["all"]],
                "wall_s": [round(w, 2) for w in walls],
                "median_wall_s": round(statistics.median(walls), 2),
                "median_cpu_s": round(statistics.median(t["cpu_s"] for t in times), 2),
                "peak_rss_mib": round(max(t["peak_rss_mib"] for t in times), 1),
            }
            results["runs"][tag]["cold_over_warm"] = round(
                first["wall_s"] / statistics.median(walls), 2
            )
            print(tag, json.dumps(results["runs"][tag]), flush=True)
        if "baseline" in plan:
            a = [t["wall_s"] for t in plan["this"][3]]
            b = [t["wall_s"] for t in plan["baseline"][3]]
            ratios = [x / y for x, y in zip(a, b, strict=True)]
            results["this_over_baseline_wall"] = {
                "pairs": [round(r, 3) for r in ratios],
                "median": round(statistics.median(ratios), 3),
            }
            print("this / baseline:", results["this_over_baseline_wall"], flush=True)
    results["machine"]["load_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
