"""Benchmark pari_geo's exact DBSCAN against its peers, all in one run.

Usage (from the repository root, in the project's virtualenv)::

    python benchmarks/dbscan/run.py --sizes 1e4 1e5 1e6 1e7 --repeats 3 \\
        --out benchmarks/dbscan/results.json

Every (peer, size) runs in its own subprocess (``--worker``): it loads the points from a
``.npy`` file written once per size by :mod:`datagen`, runs one warm-up call (numba's
cached compilation for pari_geo), then times ``--repeats`` calls with
``time.perf_counter`` and reports the median. Peak memory is the kernel's ``VmHWM``
(peak resident set) of the worker, reset just before the timed calls, so it covers the
timed calls only; ``base_rss_mib`` is the resident set just before them (interpreter,
libraries and the points).

Peers:

* ``pari_geo``: :func:`pari_geo.clustering.dbscan` (numba threads: all).
* ``dbscan``: PyPI ``dbscan`` (Wang, Gu & Shun's parallel exact grid DBSCAN, C++).
* ``sklearn``: ``sklearn.cluster.DBSCAN(eps, min_samples, n_jobs=-1)``; too slow and
  memory-hungry at 1e7 (materialised neighbourhoods), so it runs up to 1e6
  (``--sklearn-max``), and at 1e6 once, without warm-up (``--sklearn-big-repeats``).
* ``fast_hdbscan``: has no DBSCAN; ``fast_hdbscan.HDBSCAN(min_samples=5,
  min_cluster_size=5, cluster_selection_epsilon=eps)`` is timed as a reference point
  for a numba density clusterer (a different, more expensive computation); up to 1e6
  (``--hdbscan-max``), once at 1e6 after a warm-up on 2000 points (numba compilation).

Labels of pari_geo are compared with sklearn's (``labels_`` and core indices must be
equal) wherever sklearn ran, and core masks with ``dbscan``'s everywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from datagen import actor_points  # noqa: E402

EPS = 500.0
MIN_SAMPLES = 5
PEERS = ["pari_geo", "dbscan", "sklearn", "fast_hdbscan"]


# --------------------------------------------------------------------------------------
# worker side
# --------------------------------------------------------------------------------------
def _rss_mib(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> None:
    # writing 5 to clear_refs resets VmHWM (Linux >= 4.0)
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _make_runner(peer: str):
    if peer == "pari_geo":
        from pari_geo.clustering import dbscan_labels

        def run(X):
            return dbscan_labels(X, EPS, MIN_SAMPLES, n_jobs=-1)

    elif peer == "dbscan":
        import dbscan as wgs

        def run(X):
            labels, core = wgs.DBSCAN(X, eps=EPS, min_samples=MIN_SAMPLES)
            return np.asarray(labels), np.asarray(core)

    elif peer == "sklearn":
        from sklearn.cluster import DBSCAN

        def run(X):
            m = DBSCAN(eps=EPS, min_samples=MIN_SAMPLES, n_jobs=-1).fit(X)
            core = np.zeros(X.shape[0], bool)
            core[m.core_sample_indices_] = True
            return m.labels_, core

    elif peer == "fast_hdbscan":
        import fast_hdbscan

        def run(X):
            m = fast_hdbscan.HDBSCAN(
                min_samples=MIN_SAMPLES,
                min_cluster_size=MIN_SAMPLES,
                cluster_selection_epsilon=EPS,
            ).fit(X)
            return m.labels_, None

    else:
        raise SystemExit(f"unknown peer {peer}")
    return run


def worker(peer: str, data: str, repeats: int, warmup: bool, out: str) -> None:
    X = np.load(data)
    t0 = time.perf_counter()
    run = _make_runner(peer)
    if peer in ("pari_geo", "fast_hdbscan"):
        run(X[:2000].copy())  # loads (or compiles) the numba kernels
    if warmup:
        run(X)
    warm_s = time.perf_counter() - t0
    base = _rss_mib("VmRSS")
    _reset_peak()
    times = []
    labels = core = None
    for _ in range(repeats):
        labels = core = None
        t = time.perf_counter()
        labels, core = run(X)
        times.append(time.perf_counter() - t)
    peak = _rss_mib("VmHWM")
    np.save(out + ".labels.npy", np.asarray(labels, dtype=np.int64))
    if core is not None:
        np.save(out + ".core.npy", np.asarray(core, dtype=bool))
    res = {
        "peer": peer,
        "n": int(X.shape[0]),
        "times_s": times,
        "median_s": statistics.median(times),
        "warmup_s": warm_s,
        "base_rss_mib": base,
        "peak_rss_mib": peak,
        "peak_over_base_mib": peak - base,
        "n_clusters": int(np.max(labels)) + 1,
        "noise_share": float(np.mean(np.asarray(labels) < 0)),
    }
    with open(out + ".json", "w") as fh:
        json.dump(res, fh)


# --------------------------------------------------------------------------------------
# driver side
# --------------------------------------------------------------------------------------
def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    if not np.array_equal(a < 0, b < 0):
        return False
    m = a >= 0
    pairs = np.unique(np.stack([a[m], b[m]]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", default=["1e4", "1e5", "1e6", "1e7"])
    p.add_argument("--peers", nargs="+", default=PEERS)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sklearn-max", type=float, default=1e6)
    p.add_argument(
        "--sklearn-big-repeats",
        type=int,
        default=1,
        help="repeats for sklearn and fast_hdbscan at sizes >= 1e6 (no full-size warm-up there)",
    )
    p.add_argument("--hdbscan-max", type=float, default=1e6)
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--out", default=str(HERE / "results.json"))
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--no-warmup", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        worker(a.worker, a.data, a.repeats, not a.no_warmup, a.result)
        return

    import numba

    meta = {
        "command": "python " + " ".join([os.path.relpath(__file__), *sys.argv[1:]]),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "eps": EPS,
        "min_samples": MIN_SAMPLES,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    results = []
    with tempfile.TemporaryDirectory(prefix="pari_geo_bench_") as tmp:
        for size in a.sizes:
            n = int(float(size))
            data = os.path.join(tmp, f"X_{n}.npy")
            np.save(data, actor_points(n))
            for peer in a.peers:
                reps, warm = a.repeats, True
                if peer == "sklearn":
                    if n > a.sklearn_max:
                        continue
                    if n >= 1e6:
                        reps, warm = a.sklearn_big_repeats, False
                if peer == "fast_hdbscan":
                    if n > a.hdbscan_max:
                        continue
                    if n >= 1e6:
                        reps, warm = a.sklearn_big_repeats, False
                out = os.path.join(tmp, f"{peer}_{n}")
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    peer,
                    "--data",
                    data,
                    "--repeats",
                    str(reps),
                    "--result",
                    out,
                ]
                if not warm:
                    cmd.append("--no-warmup")
                print(f"[{time.strftime('%H:%M:%S')}] {peer} n={n} ...", flush=True)
                try:
                    subprocess.run(cmd, check=True, timeout=a.timeout)
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                    results.append({"peer": peer, "n": n, "error": str(exc)})
                    print("   failed:", exc, flush=True)
                    continue
                with open(out + ".json") as fh:
                    r = json.load(fh)
                r["warmup_runs"] = int(warm)
                results.append(r)
                print(
                    f"   median {r['median_s']:.3f} s  peak RSS {r['peak_rss_mib']:.0f} MiB "
                    f"(+{r['peak_over_base_mib']:.0f} over base)",
                    flush=True,
                )
            # label checks for this size
            pg = os.path.join(tmp, f"pari_geo_{n}")
            if os.path.exists(pg + ".labels.npy"):
                lab = np.load(pg + ".labels.npy")
                core = np.load(pg + ".core.npy")
                chk = {"n": n}
                sk = os.path.join(tmp, f"sklearn_{n}")
                if os.path.exists(sk + ".labels.npy"):
                    chk["labels_equal_sklearn"] = bool(
                        np.array_equal(lab, np.load(sk + ".labels.npy"))
                    )
                    chk["core_equal_sklearn"] = bool(
                        np.array_equal(core, np.load(sk + ".core.npy"))
                    )
                wg = os.path.join(tmp, f"dbscan_{n}")
                if os.path.exists(wg + ".core.npy"):
                    chk["core_equal_dbscan"] = bool(np.array_equal(core, np.load(wg + ".core.npy")))
                    chk["core_partition_equal_dbscan"] = _same_partition(
                        np.where(core, lab, -1),
                        np.where(core, np.load(wg + ".labels.npy"), -1),
                    )
                print("   checks:", chk, flush=True)
                results.append({"peer": "check", **chk})
            os.remove(data)
    Path(a.out).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print("wrote", a.out)


if __name__ == "__main__":
    main()
