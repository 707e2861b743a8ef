"""Time GOSTurban's DEGURBA level 2 (``urbanGriddedPop(POP).calculateDegurba()``).

Runs in GOSTurban's own virtualenv (see ``setup_gost.sh``), one fresh process per call of
``run.py``. Prints one JSON line: wall times of the timed runs, peak RSS and the class
counts. Run-time shims for current scipy / geopandas (GOSTurban 1.0.0 targets older ones):

* ``scipy.stats.mode(a)`` is called with ``keepdims=True`` (GOSTurban indexes
  ``mode.mode[0]``, which fails on the 0-d result of scipy >= 1.11);
* ``GeoDataFrame.sindex.nearest([x, y], k)``, the old rtree call, returns the positions of
  the k geometries whose bounding boxes are nearest to the point (ties at the k-th
  distance included, as rtree does); any other call goes to geopandas unchanged.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings


def _install_shims() -> None:
    import geopandas.sindex
    import numpy as np
    import scipy.stats

    orig_mode = scipy.stats.mode

    def mode(a, *args, **kwargs):
        kwargs.setdefault("keepdims", True)
        return orig_mode(a, *args, **kwargs)

    scipy.stats.mode = mode

    orig_nearest = geopandas.sindex.SpatialIndex.nearest

    def nearest(self, geometry, *args, **kwargs):
        old_style = (
            isinstance(geometry, (list, tuple))
            and len(geometry) in (2, 4)
            and all(isinstance(v, (int, float, np.floating, np.integer)) for v in geometry)
        )
        if not old_style:
            return orig_nearest(self, geometry, *args, **kwargs)
        k = int(args[0]) if args else int(kwargs.get("num_results", 1))
        x, y = float(geometry[0]), float(geometry[1])
        b = np.asarray(self.geometries.bounds if hasattr(self.geometries, "bounds") else
                       [g.bounds for g in self.geometries])
        if b.ndim != 2:
            import shapely
            b = shapely.bounds(self.geometries)
        dx = np.maximum(0.0, np.maximum(b[:, 0] - x, x - b[:, 2]))
        dy = np.maximum(0.0, np.maximum(b[:, 1] - y, y - b[:, 3]))
        dist = np.hypot(dx, dy)
        if dist.size == 0:
            return []
        order = np.argsort(dist, kind="stable")
        kth = dist[order[min(k, dist.size) - 1]]
        return [int(i) for i in order if dist[i] <= kth]

    geopandas.sindex.SpatialIndex.nearest = nearest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pop", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import numpy as np
    from GOSTurban.UrbanRaster import urbanGriddedPop

    _install_shims()
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    res = None
    for i in range(args.warmup + args.repeats):
        t0 = time.perf_counter()
        res = urbanGriddedPop(args.pop).calculateDegurba()
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(dt)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    raster = np.asarray(res["raster"], dtype=np.float64)
    vals, counts = np.unique(raster[~np.isnan(raster)], return_counts=True)
    print(json.dumps({
        "tool": "GOSTurban",
        "times_s": times,
        "peak_rss_mib": peak_kb / 1024,
        "baseline_rss_mib": base_kb / 1024,
        "counts": {str(int(v)): int(c) for v, c in zip(vals, counts, strict=True)},
        "nan_cells": int(np.isnan(raster).sum()),
    }))


if __name__ == "__main__":
    main()
