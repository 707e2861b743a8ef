"""Out-of-core DEGURBA level 2: wall time and peak RSS on large synthetic 1 km grids.

The grid is a mosaic of the real Belgium grids (219 x 303 cells) over water: copies of
POP / BUILT_S / LAND placed every ``219 + gap`` rows and ``303 + gap`` columns, water
(population 0, built-up 0, land 0) in between and where a copy is cut by the grid edge.
The three inputs are written once as tiled (512 x 512), LZW-compressed GeoTIFFs with the
dtypes and no-data of the originals.

Each classification runs in a fresh child process under ``/usr/bin/time -v`` (niced),
which reports the wall time and the child's peak RSS; the child also reports its own
timing of the classification (after a warm-up on Belgium, so numba compilation is not
timed) and a SHA-1 of the class raster it wrote, so the chunked and in-memory results can
be compared.

Usage (from the repository root)::

    nice -n 10 .venv/bin/python benchmarks/out_of_core/run.py \\
        --rows 7100 --cols 14100 --work /tmp/ooc_bench --memory
    nice -n 10 .venv/bin/python benchmarks/out_of_core/run.py \\
        --rows 18000 --cols 36000 --work /tmp/ooc_bench

Results are appended to ``benchmarks/out_of_core/results.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NAMES = {"population": "POP.tif", "built": "BUILT_S.tif", "land": "LAND.tif"}


def make_inputs(rows: int, cols: int, out: Path, gap: int) -> dict[str, str]:
    """Write the mosaic GeoTIFFs (once; reused when present with the same shape)."""
    import rasterio
    from rasterio.windows import Window

    from pari_geo.datasets import belgium_paths

    out.mkdir(parents=True, exist_ok=True)
    src_paths = belgium_paths()
    paths = {k: str(out / v) for k, v in NAMES.items()}
    if all(Path(p).exists() for p in paths.values()):
        with rasterio.open(paths["population"]) as s:
            if s.shape == (rows, cols):
                return paths
    for key, name in NAMES.items():
        with rasterio.open(src_paths[key]) as src:
            bel = src.read(1)
            prof = src.profile.copy()
            water = 0 if bel.dtype.kind in "iu" else 0.0
        h, w = bel.shape
        pr, pc = h + gap, w + gap
        from affine import Affine

        prof.update(height=rows, width=cols, tiled=True, blockxsize=512, blockysize=512,
                    compress="lzw", BIGTIFF="YES",
                    transform=Affine(1000.0, 0.0, 0.0, 0.0, -1000.0, rows * 1000.0))
        cc = np.arange(cols)
        lc = cc % pc
        in_c = lc < w
        tmp = out / (name + ".part")
        with rasterio.open(tmp, "w", **prof) as dst:
            for r0 in range(0, rows, 512):
                r1 = min(rows, r0 + 512)
                rr = np.arange(r0, r1)
                lr = rr % pr
                in_r = lr < h
                block = np.full((r1 - r0, cols), water, dtype=bel.dtype)
                sub = bel[np.minimum(lr, h - 1)][:, np.minimum(lc, w - 1)]
                both = in_r[:, None] & in_c[None, :]
                block[both] = sub[both]
                dst.write(block, 1, window=Window(0, r0, cols, r1 - r0))
        os.replace(tmp, out / name)
    return paths


def raster_sha1(path: str) -> tuple[str, dict[int, int]]:
    """SHA-1 of the band's values in row-major order, and the class counts."""
    import rasterio
    from rasterio.windows import Window

    h = hashlib.sha1()
    counts = np.zeros(256, dtype=np.int64)
    with rasterio.open(path) as src:
        for r0 in range(0, src.height, 1024):
            r1 = min(src.height, r0 + 1024)
            a = src.read(1, window=Window(0, r0, src.width, r1 - r0))
            h.update(np.ascontiguousarray(a).tobytes())
            counts += np.bincount(a.ravel(), minlength=256)
    return h.hexdigest(), {int(k): int(counts[k]) for k in np.flatnonzero(counts)}


def worker(args: argparse.Namespace) -> None:
    """One classification in this process; prints a JSON line."""
    import resource
    import tempfile

    from pari_geo.datasets import belgium_paths

    bel = belgium_paths()
    paths = {k: str(Path(args.inputs) / v) for k, v in NAMES.items()}
    out = Path(args.out)
    for old in (out, out.with_suffix(".qml")):  # this benchmark's own earlier outputs
        old.unlink(missing_ok=True)
    t_warm = time.perf_counter()
    cluster = None
    if args.mode == "dask":
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=args.dask_workers, threads_per_worker=1,
                               processes=True, dashboard_address=":0")
    scheduler = None if cluster is None else cluster.scheduler_address
    with tempfile.TemporaryDirectory() as d:  # warm-up: numba kernels, imports
        if args.mode in ("chunked", "dask"):
            from pari_geo import classify_grid_chunked

            classify_grid_chunked(bel["population"], bel["built"], bel["land"], level=2,
                                  out_path=Path(d) / "w.tif", tile_shape=(64, 64),
                                  scheduler=scheduler)
        else:
            from pari_geo.classes import DEGURBA_L2
            from pari_geo.io_write import write_class_raster
            from pari_geo.typology.degurba import classify_grid

            da = classify_grid(bel["population"], bel["built"], bel["land"], level=2)
            write_class_raster(da, Path(d) / "w.tif", DEGURBA_L2)
            del da
    warm = time.perf_counter() - t_warm
    rss_after_warmup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    stats = {}
    workers_kib = None
    if args.mode in ("chunked", "dask"):
        res = classify_grid_chunked(paths["population"], paths["built"], paths["land"],
                                    level=2, out_path=out, tile_shape=tuple(args.tile),
                                    workdir=args.workdir, scheduler=scheduler)
        stats = res.stats
        if cluster is not None:
            from distributed import Client

            with Client(cluster) as client:
                workers_kib = list(client.run(_peak_kib).values())
            cluster.close()
    else:
        da = classify_grid(paths["population"], paths["built"], paths["land"], level=2)
        write_class_raster(da, out, DEGURBA_L2)
        del da
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sha1, counts = raster_sha1(str(out))
    print(json.dumps({"mode": args.mode, "seconds": seconds, "warmup_seconds": warm,
                      "ru_maxrss_kib_after_warmup": rss_after_warmup,
                      "ru_maxrss_kib": peak_kib, "workers_ru_maxrss_kib": workers_kib,
                      "sha1": sha1, "counts": counts,
                      "stats": stats}))


def _peak_kib() -> int:
    """Peak RSS of the calling process in KiB (run on each dask worker)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_child(cmd: list[str]) -> dict:
    """Run a worker under /usr/bin/time -v, niced; wall time and peak RSS from time."""
    full = ["nice", "-n", "10", "/usr/bin/time", "-v", *cmd]
    t0 = time.perf_counter()
    p = subprocess.run(full, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        return {"error": p.stderr[-4000:], "returncode": p.returncode, "wall_seconds": wall}
    line = [x for x in p.stdout.splitlines() if x.startswith("{")][-1]
    out = json.loads(line)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    out["time_v_max_rss_kib"] = int(m.group(1)) if m else None
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", p.stderr)
    out["time_v_elapsed"] = m.group(1) if m else None
    out["wall_seconds_incl_startup_warmup_and_hash"] = wall
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=7100)
    ap.add_argument("--cols", type=int, default=14100)
    ap.add_argument("--gap", type=int, default=20, help="water cells between copies")
    ap.add_argument("--work", default="/tmp/ooc_bench", help="inputs, outputs, temp files")
    ap.add_argument("--tile", type=int, nargs=2, default=[1024, 1024])
    ap.add_argument("--memory", action="store_true", help="also run the in-memory path")
    ap.add_argument("--no-chunked", action="store_true")
    ap.add_argument("--dask", action="store_true",
                    help="also run on a local dask cluster (per-cell pass on its workers)")
    ap.add_argument("--dask-workers", type=int, default=2)
    ap.add_argument("--keep-inputs", action="store_true")
    ap.add_argument("--results", type=Path, default=HERE / "results.json",
                    help="JSON list the record is appended to (default: results.json here)")
    # worker mode
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", choices=["chunked", "memory", "dask"], help=argparse.SUPPRESS)
    ap.add_argument("--inputs", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    work = Path(args.work)
    inputs = work / f"inputs_{args.rows}x{args.cols}"
    t0 = time.perf_counter()
    make_inputs(args.rows, args.cols, inputs, args.gap)
    make_s = time.perf_counter() - t0
    cells = args.rows * args.cols
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True, cwd=HERE).stdout.strip(),
        "rows": args.rows, "cols": args.cols, "cells": cells, "gap": args.gap,
        "tile": args.tile, "input_bytes": sum(f.stat().st_size for f in inputs.iterdir()),
        "make_inputs_seconds": make_s,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_start": os.getloadavg()},
        "runs": {},
    }
    py = sys.executable
    me = str(Path(__file__).resolve())
    modes = (([] if args.no_chunked else ["chunked"]) + (["memory"] if args.memory else [])
             + (["dask"] if args.dask else []))
    for mode in modes:
        out = work / f"out_{mode}_{args.rows}x{args.cols}.tif"
        cmd = [py, me, "--worker", "--mode", mode, "--inputs", str(inputs), "--out", str(out),
               "--tile", *map(str, args.tile), "--workdir", str(work),
               "--dask-workers", str(args.dask_workers)]
        r = run_child(cmd)
        if "time_v_max_rss_kib" in r and r["time_v_max_rss_kib"]:
            r["peak_rss_gib"] = r["time_v_max_rss_kib"] / 2**20
        record["runs"][mode] = r
        print(mode, json.dumps({k: v for k, v in r.items() if k != "stats"}), flush=True)
    if "chunked" in record["runs"] and "memory" in record["runs"]:
        a, b = record["runs"]["chunked"], record["runs"]["memory"]
        record["identical"] = a.get("sha1") is not None and a.get("sha1") == b.get("sha1")
    if "chunked" in record["runs"] and "dask" in record["runs"]:
        a, b = record["runs"]["chunked"], record["runs"]["dask"]
        record["dask_identical"] = (a.get("sha1") is not None
                                    and a.get("sha1") == b.get("sha1"))
    record["machine"]["load_avg_end"] = os.getloadavg()
    record["pythonpath"] = os.environ.get("PYTHONPATH")
    res_path = args.results
    results = json.loads(res_path.read_text()) if res_path.exists() else []
    results.append(record)
    res_path.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "runs"}))
    if not args.keep_inputs:
        pass  # inputs are kept in --work for reruns; delete the folder by hand


if __name__ == "__main__":
    main()
