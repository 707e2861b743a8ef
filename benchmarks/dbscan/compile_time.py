"""First-use cost of pari_geo's DBSCAN: numba compilation, uncached and cached.

Usage (repository root, project virtualenv)::

    python benchmarks/dbscan/compile_time.py

Each measurement runs in a fresh interpreter. ``uncached`` points ``NUMBA_CACHE_DIR`` at
an empty temporary directory (so every kernel is compiled), ``cached`` reuses that
directory in a second interpreter (kernels are loaded from disk), and
``PARI_GEO_NUMBA_CACHE=0`` turns caching off (always compiled). Reported: the import
time of ``pari_geo.clustering``, the first call on 5000 points (compile or load + run)
and a second call (run only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

SNIPPET = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
from pari_geo.clustering import dbscan_labels
t1 = time.perf_counter()
X = np.random.default_rng(0).uniform(0, 1e4, size=(5000, 2))
t = time.perf_counter(); dbscan_labels(X, 100.0, 5); first = time.perf_counter() - t
t = time.perf_counter(); dbscan_labels(X, 100.0, 5); second = time.perf_counter() - t
print(json.dumps({"import_s": t1 - t0, "first_call_s": first, "second_call_s": second}))
"""


def _run(env_extra: dict[str, str]) -> dict:
    env = {**os.environ, **env_extra}
    out = subprocess.run(
        [sys.executable, "-c", SNIPPET], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pari_geo_numba_cache_") as cache:
        res = {
            "uncached (empty cache dir)": _run({"NUMBA_CACHE_DIR": cache}),
            "cached (second interpreter)": _run({"NUMBA_CACHE_DIR": cache}),
            "PARI_GEO_NUMBA_CACHE=0": _run({"NUMBA_CACHE_DIR": cache, "PARI_GEO_NUMBA_CACHE": "0"}),
        }
    for k, v in res.items():
        print(
            f"{k:30s} import {v['import_s']:.2f} s  first call {v['first_call_s']:.2f} s  "
            f"second call {v['second_call_s'] * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
