"""DEGURBA level-2 benchmark: pari_geo vs GOSTurban on Belgium, pari_geo on tiled mosaics.

Usage (from the repository root, pari_geo's virtualenv active)::

    bash benchmarks/degurba/setup_gost.sh          # once: GOSTurban in its own venv
    python benchmarks/degurba/run.py --float64-inputs   # everything (~15 min, 2 cores)
    python benchmarks/degurba/run.py --sizes 1M 10M --no-files   # a subset

Every measurement is a fresh subprocess (``pari_worker.py`` / ``gost_worker.py``): one
warm-up run, then ``--repeats`` timed runs whose median is reported; peak memory is the
subprocess's ``ru_maxrss`` minus its RSS after imports and warm-up (see pari_worker.py).
GOSTurban and pari_geo are timed in the same invocation, one after the other. Tiled
GeoTIFFs for the ``files`` mode are written once to ``benchmarks/_work/tiles`` (git-ignored).
Results go to ``benchmarks/degurba/results.json`` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORK = ROOT / "benchmarks" / "_work"
BELGIUM = ROOT / "data" / "sample_grids" / "belgium"
REFERENCE = {"30": 2145, "23": 1511, "22": 575, "21": 6789, "13": 2091, "12": 20955,
             "11": 29713, "10": 2578}
# Belgium is 219 x 303 = 66,357 cells; tiles (rows, cols) of the mosaics
SIZES = {"1M": (4, 4), "10M": (12, 13), "100M": (38, 40)}


def write_tiles(ty: int, tx: int) -> list[str]:
    """np.tile mosaics of the three Belgium GeoTIFFs (same dtypes, no-data, LZW, tiled)."""
    import numpy as np
    import rasterio
    from rasterio.windows import Window

    out_dir = WORK / "tiles" / f"{ty}x{tx}"
    paths = []
    for name in ("POP", "BUILT_S", "LAND"):
        dst_path = out_dir / f"{name}.tif"
        paths.append(str(dst_path))
        if dst_path.exists():
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        with rasterio.open(BELGIUM / f"{name}.tif") as src:
            a = src.read(1)
            prof = src.profile.copy()
        h, w = a.shape
        prof.update(height=h * ty, width=w * tx, compress="lzw", tiled=True,
                    blockxsize=512, blockysize=512, BIGTIFF="IF_SAFER")
        row = np.tile(a, (1, tx))
        tmp = dst_path.with_suffix(".tmp.tif")
        with rasterio.open(tmp, "w", **prof) as dst:
            for i in range(ty):
                dst.write(row, 1, window=Window(0, i * h, w * tx, h))
        os.replace(tmp, dst_path)
    return paths


def run_worker(cmd: list[str]) -> dict:
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        print(res.stderr[-3000:], file=sys.stderr)
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "failed",
                "cmd": cmd}
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["cmd"] = cmd
    if "times_s" in out:
        out["median_s"] = statistics.median(out["times_s"])
    print("  ->", {k: out.get(k) for k in ("median_s", "bytes_per_cell", "peak_rss_mib")},
          file=sys.stderr, flush=True)
    return out


def machine() -> dict:
    import numba
    import numpy  # noqa: E401
    import scipy

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "python": platform.python_version(),
            "numpy": numpy.__version__, "scipy": scipy.__version__, "numba": numba.__version__,
            "platform": platform.platform()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of pari_geo (median)")
    ap.add_argument("--gost-repeats", type=int, default=3, help="timed runs of GOSTurban")
    ap.add_argument("--gost-python", default=str(WORK / "gost-venv" / "bin" / "python"))
    ap.add_argument("--no-gost", action="store_true")
    ap.add_argument("--no-files", action="store_true", help="skip the end-to-end file runs")
    ap.add_argument("--float64-inputs", action="store_true",
                    help="also time arrays with BUILT_S/LAND as float64")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    args = ap.parse_args()
    py = sys.executable
    worker = str(HERE / "pari_worker.py")
    rep = ["--repeats", str(args.repeats), "--warmup", "1"]
    results: dict = {"machine": machine(), "runs": []}

    # 1. Belgium, both tools in this invocation
    if not args.no_gost:
        g = run_worker([args.gost_python, str(HERE / "gost_worker.py"), "--pop",
                        str(BELGIUM / "POP.tif"), "--repeats", str(args.gost_repeats),
                        "--warmup", "1"])
        g.update(case="belgium", mode="file (GOSTurban reads POP.tif)")
        results["runs"].append(g)
    for mode in ("arrays", "files"):
        if mode == "files" and args.no_files:
            continue
        r = run_worker([py, worker, "--mode", mode, *rep])
        r["case"] = "belgium"
        r["reference_counts_ok"] = r.get("counts") == REFERENCE
        results["runs"].append(r)

    # 2. mosaics
    for size in args.sizes:
        ty, tx = SIZES[size]
        r = run_worker([py, worker, "--mode", "arrays", "--tiles", str(ty), str(tx), *rep])
        r["case"] = size
        results["runs"].append(r)
        if args.float64_inputs:
            r = run_worker([py, worker, "--mode", "arrays", "--inputs", "float64", "--tiles",
                            str(ty), str(tx), *rep])
            r["case"] = size
            results["runs"].append(r)
        if not args.no_files:
            paths = write_tiles(ty, tx)
            r = run_worker([py, worker, "--mode", "files", "--tiles", str(ty), str(tx), "--files",
                            *paths, *rep])
            r["case"] = size
            results["runs"].append(r)

    # consistency: a mosaic's classes are those of the arrays run (same sha1 per size)
    by_case: dict = {}
    for r in results["runs"]:
        if r.get("tool") == "pari_geo":
            by_case.setdefault(r["case"], set()).add(r.get("sha1"))
    results["identical_across_modes"] = {k: len(v) == 1 for k, v in by_case.items()}
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(table(results))


def table(results: dict) -> str:
    runs = results["runs"]
    gost = next((r for r in runs if r.get("tool") == "GOSTurban" and "median_s" in r), None)
    lines = ["| case | cells | tool / input | median s (runs) | vs GOSTurban | peak RSS MiB "
             "| peak - baseline MiB | bytes/cell |",
             "|---|---:|---|---|---:|---:|---:|---:|"]
    for r in runs:
        if "median_s" not in r:
            lines.append(f"| {r.get('case')} | | {r.get('tool', '?')} | error: {r.get('error')} "
                         "| | | | |")
            continue
        cells = r.get("cells") or sum(r.get("counts", {}).values()) + r.get("nan_cells", 0)
        ratio = ""
        if gost and r.get("tool") == "pari_geo" and r.get("case") == "belgium":
            ratio = f"{gost['median_s'] / r['median_s']:,.0f}x"
        what = r["tool"] if r["tool"] == "GOSTurban" else f"pari_geo / {r['inputs']}"
        times = ", ".join(f"{t:.3g}" for t in r["times_s"])
        bpc = r.get("bytes_per_cell")
        delta = r.get("delta_mib")
        if r["tool"] == "GOSTurban":
            delta = r["peak_rss_mib"] - r["baseline_rss_mib"]
            bpc = delta * 2**20 / cells
        lines.append(
            f"| {r['case']} | {cells:,} | {what} | {r['median_s']:.3g} ({times}) | {ratio} "
            f"| {r['peak_rss_mib']:.0f} | {delta:.0f} | {bpc:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
