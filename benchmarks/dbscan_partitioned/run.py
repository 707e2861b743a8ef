"""Benchmark: exact DBSCAN by spatial partitions (``dbscan_partitioned``) at 1e7 and 1e8.

Generates clustered points straight to a ``.npy`` file in chunks (the generator never
holds the whole set), then clusters them in a child process per run and records wall
time and the child's peak resident set (``os.wait4`` rusage ``ru_maxrss``, and the
child's own ``VmHWM``). At the sizes listed in ``--compare`` the in-memory
``pari_geo.clustering.dbscan`` also runs (in its own child) on the same file and the
labels and core masks are compared array for array.

Usage (see README.md)::

    nice -n 10 python benchmarks/dbscan_partitioned/run.py --sizes 1e7 1e8 \
        --compare 1e7 --data-dir /tmp/pari_dbscan_part \
        --out benchmarks/dbscan_partitioned/results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

EPS = 500.0
MIN_SAMPLES = 5
DENSITY_PER_KM2 = 10.0  # mean density; the square grows with n
SEED = 0


# ---------------------------------------------------------------------------------------
# data: streamed generation
# ---------------------------------------------------------------------------------------
def _centres(n: int, rng: np.random.Generator, side: float):
    """Town and micro-cluster centres and spreads (sizes proportional to n)."""
    n_towns = max(1, n // 20_000)
    towns = rng.uniform(0, side, size=(n_towns, 2))
    town_sd = rng.uniform(500.0, 4000.0, n_towns)
    # Zipf-like town weights
    town_w = 1.0 / np.arange(1, n_towns + 1) ** 0.8
    town_w /= town_w.sum()
    n_micro = max(1, int(0.3 * n / 25))
    micro = rng.uniform(0, side, size=(n_micro, 2))
    micro_sd = rng.uniform(50.0, 400.0, n_micro)
    return towns, town_sd, np.cumsum(town_w), micro, micro_sd


def generate(path: Path, n: int, chunk: int = 5_000_000, seed: int = SEED) -> float:
    """Write ``n`` clustered points (metres, rounded to 1 m) to the .npy file ``path``.

    60 % in Gaussian towns, 30 % in rural micro-clusters of ~25 points (spreads
    50-400 m), 10 % uniform, on a square with mean density ``DENSITY_PER_KM2``, false
    origin (4e6, 3e6). Returns the seconds taken.
    """
    t0 = time.perf_counter()
    side = 1000.0 * np.sqrt(n / DENSITY_PER_KM2)
    rng = np.random.default_rng(seed)
    towns, town_sd, town_cdf, micro, micro_sd = _centres(n, rng, side)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (n, 2)}
        )
        for k, start in enumerate(range(0, n, chunk)):
            m = min(n, start + chunk) - start
            r = np.random.default_rng([seed, k])
            kind = r.random(m)
            out = np.empty((m, 2))
            t = kind < 0.6
            ti = np.searchsorted(town_cdf, r.random(t.sum()) * town_cdf[-1])
            ti = np.minimum(ti, towns.shape[0] - 1)
            out[t] = towns[ti] + r.normal(size=(t.sum(), 2)) * town_sd[ti, None]
            mi_mask = (kind >= 0.6) & (kind < 0.9)
            mi = r.integers(0, micro.shape[0], mi_mask.sum())
            out[mi_mask] = micro[mi] + r.normal(size=(mi_mask.sum(), 2)) * micro_sd[mi, None]
            u = kind >= 0.9
            out[u] = r.uniform(0, side, size=(u.sum(), 2))
            out += (4.0e6, 3.0e6)
            np.round(out, out=out)
            out.tofile(f)
    os.replace(tmp, path)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------
# child process: one clustering run
# ---------------------------------------------------------------------------------------
def _vm_hwm_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def _self_maxrss_kib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def worker(args) -> None:
    import numba

    from pari_geo.clustering import dbscan_labels
    from pari_geo.clustering.partitioned import dbscan_partitioned, dbscan_partitioned_dask

    numba.set_num_threads(args.threads)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    warm = np.round(rng.uniform(0, 5000, size=(20_000, 2)))
    client = None
    if args.mode == "dask":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None
        )
        client = Client(cluster)
    t0 = time.perf_counter()
    if args.mode == "inmemory":
        dbscan_labels(warm, EPS, MIN_SAMPLES, n_jobs=args.threads)
    elif args.mode == "dask":
        dbscan_partitioned_dask(warm, EPS, MIN_SAMPLES, n_partitions=4, client=client)
    else:
        dbscan_partitioned(warm, EPS, MIN_SAMPLES, n_partitions=4, n_jobs=args.threads)
    warm_s = time.perf_counter() - t0
    del warm
    hwm_before = _vm_hwm_kib()
    t0 = time.perf_counter()
    if args.mode == "inmemory":
        X = np.load(args.path)
        t_load = time.perf_counter() - t0
        labels, core = dbscan_labels(X, EPS, MIN_SAMPLES, n_jobs=args.threads)
        del X
        np.save(out_dir / "labels.npy", labels)
        np.save(out_dir / "core_mask.npy", core)
        n_clusters = int(labels.max()) + 1
        secs = time.perf_counter() - t0
    else:
        t_load = 0.0
        kw = {"client": client} if client is not None else {"n_jobs": args.threads}
        if args.partition_size:
            kw["partition_size"] = int(float(args.partition_size))
        if args.max_memory:
            kw["max_memory"] = args.max_memory
        run = dbscan_partitioned_dask if client is not None else dbscan_partitioned
        labels, core = run(args.path, EPS, MIN_SAMPLES, workdir=args.workdir, out_dir=out_dir, **kw)
        n_clusters = int(np.max(labels)) + 1  # streamed over the memmap
        secs = time.perf_counter() - t0
    worker_rss = None
    if client is not None:
        worker_rss = list(client.run(_self_maxrss_kib).values())
        client.close()
        cluster.close()
    print(
        json.dumps(
            {
                "seconds": secs,
                "load_seconds": t_load,
                "warmup_seconds": warm_s,
                "vmhwm_before_kib": hwm_before,
                "vmhwm_kib": _vm_hwm_kib(),
                "n_clusters": n_clusters,
                "dask_worker_maxrss_kib": worker_rss,
            }
        )
    )


def _spawn(cmd: list[str]) -> dict:
    """Run ``cmd``; return its JSON line plus its own peak RSS from ``os.wait4``."""
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"child failed ({p.returncode}): {err[-3000:]}")
    res = json.loads(out.strip().splitlines()[-1])
    res["child_wall_seconds"] = wall
    res["ru_maxrss_kib"] = ru.ru_maxrss
    res["loadavg_1min_before"] = load_before
    res["loadavg_1min_after"] = os.getloadavg()[0]
    res["log"] = [ln for ln in err.splitlines() if "dbscan_partitioned" in ln]
    return res


def _equal_npy(a: Path, b: Path, chunk: int = 10_000_000) -> bool:
    x = np.load(a, mmap_mode="r")
    y = np.load(b, mmap_mode="r")
    if x.shape != y.shape:
        return False
    return all(
        np.array_equal(x[s : s + chunk], y[s : s + chunk]) for s in range(0, x.shape[0], chunk)
    )


def _save(path: Path, results: dict) -> None:
    """Write ``results``, merged with the runs of other sizes already in ``path``."""
    old = json.loads(path.read_text()) if path.exists() else {"invocations": []}
    inv = [i for i in old.get("invocations", []) if i["command"] != results["command"]]
    inv.append(results)
    path.write_text(json.dumps({"invocations": inv}, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    del sub
    ap.add_argument("--mode", default="partitioned", choices=["partitioned", "inmemory", "dask"])
    ap.add_argument(
        "--dask", nargs="*", default=[], help="sizes also run with dbscan_partitioned_dask"
    )
    ap.add_argument("--path")
    ap.add_argument("--out-dir")
    ap.add_argument("--sizes", nargs="+", default=["1e7", "1e8"])
    ap.add_argument("--compare", nargs="*", default=["1e7"], help="sizes also run in memory")
    ap.add_argument("--data-dir", default="/tmp/pari_dbscan_part")
    ap.add_argument("--workdir", default=None, help="scratch for tile files")
    ap.add_argument("--partition-size", default=None)
    ap.add_argument("--max-memory", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="results JSON")
    args = ap.parse_args()
    if args.worker:
        import logging

        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
        worker(args)
        return

    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or str(data / "scratch")
    results = {
        "command": "python " + " ".join(sys.argv),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "eps": EPS,
        "min_samples": MIN_SAMPLES,
        "density_per_km2": DENSITY_PER_KM2,
        "runs": [],
    }
    compare = {int(float(s)) for s in args.compare}
    for s in args.sizes:
        n = int(float(s))
        path = data / f"points_{n}.npy"
        gen = None
        if not path.exists():
            gen = generate(path, n)
            print(f"generated {n} points in {gen:.1f} s -> {path}", flush=True)
        base = [sys.executable, __file__, "--worker", "--path", str(path)]
        base += ["--threads", str(args.threads)]
        cmd = base + ["--mode", "partitioned", "--out-dir", str(data / f"part_{n}")]
        cmd += ["--workdir", workdir]
        if args.partition_size:
            cmd += ["--partition-size", args.partition_size]
        if args.max_memory:
            cmd += ["--max-memory", args.max_memory]
        part = _spawn(cmd)
        run = {"n": n, "generate_seconds": gen, "file_bytes": path.stat().st_size}
        run["partitioned"] = part
        print(f"n={n:.0e} partitioned: {json.dumps(part)}", flush=True)
        if n in compare:
            cmd = base + ["--mode", "inmemory", "--out-dir", str(data / f"mem_{n}")]
            mem = _spawn(cmd)
            run["inmemory"] = mem
            run["labels_equal"] = _equal_npy(
                data / f"part_{n}" / "labels.npy", data / f"mem_{n}" / "labels.npy"
            )
            run["core_equal"] = _equal_npy(
                data / f"part_{n}" / "core_mask.npy", data / f"mem_{n}" / "core_mask.npy"
            )
            run["time_ratio_partitioned_over_inmemory"] = part["seconds"] / mem["seconds"]
            print(
                f"n={n:.0e} in memory: {json.dumps(mem)}; equal labels "
                f"{run['labels_equal']}, core {run['core_equal']}",
                flush=True,
            )
        if n in {int(float(s)) for s in args.dask}:
            cmd = base + ["--mode", "dask", "--out-dir", str(data / f"dask_{n}")]
            cmd += ["--workdir", workdir]
            if args.partition_size:
                cmd += ["--partition-size", args.partition_size]
            if args.max_memory:
                cmd += ["--max-memory", args.max_memory]
            dk = _spawn(cmd)
            run["dask"] = dk
            run["dask_labels_equal"] = _equal_npy(
                data / f"part_{n}" / "labels.npy", data / f"dask_{n}" / "labels.npy"
            )
            run["dask_core_equal"] = _equal_npy(
                data / f"part_{n}" / "core_mask.npy", data / f"dask_{n}" / "core_mask.npy"
            )
            print(f"n={n:.0e} dask: {json.dumps(dk)}; equal {run['dask_labels_equal']}")
        results["runs"].append(run)
        if args.out:
            _save(Path(args.out), results)


if __name__ == "__main__":
    main()
