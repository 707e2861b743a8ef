"""Deterministic synthetic actor point sets for the DBSCAN benchmark.

A 150 km x 150 km square in metres (a projected CRS) holding three kinds of actors:

* 60 % in ~60 towns: 2-D Gaussian blobs, sizes Zipf-like, spreads 0.5-4 km;
* 30 % in many small rural micro-clusters of 5-50 actors, spreads 50-400 m;
* 10 % uniform background (isolated farms, noise).

Coordinates are rounded to 1 m (like geocoded addresses), which produces duplicates and
points exactly 500 m apart, as real data does. Output depends only on ``(n, seed)``.
"""

from __future__ import annotations

import numpy as np

EXTENT_M = 150_000.0
ORIGIN = (4_000_000.0, 3_000_000.0)  # LAEA-like false origin: large coordinates


def actor_points(n: int, seed: int = 0) -> np.ndarray:
    """Return an ``(n, 2)`` float64 array of actor coordinates in metres."""
    rng = np.random.default_rng(seed)
    n_town = int(0.60 * n)
    n_micro = int(0.30 * n)
    n_bg = n - n_town - n_micro

    # towns
    n_towns = 60
    weights = 1.0 / np.arange(1, n_towns + 1) ** 0.9
    weights /= weights.sum()
    counts = rng.multinomial(n_town, weights)
    centres = rng.uniform(10_000, EXTENT_M - 10_000, size=(n_towns, 2))
    spreads = rng.uniform(500.0, 4_000.0, size=n_towns)
    town = (
        np.repeat(centres, counts, axis=0)
        + rng.normal(size=(n_town, 2)) * np.repeat(spreads, counts)[:, None]
    )

    # rural micro-clusters of 5..50 actors
    sizes = []
    total = 0
    while total < n_micro:
        s = int(min(rng.integers(5, 51), n_micro - total))
        sizes.append(s)
        total += s
    sizes = np.array(sizes, dtype=np.int64)
    mc = rng.uniform(0, EXTENT_M, size=(sizes.size, 2))
    ms = rng.uniform(50.0, 400.0, size=sizes.size)
    micro = (
        np.repeat(mc, sizes, axis=0) + rng.normal(size=(n_micro, 2)) * np.repeat(ms, sizes)[:, None]
    )

    bg = rng.uniform(0, EXTENT_M, size=(n_bg, 2))
    pts = np.concatenate([town, micro, bg])
    pts = np.clip(pts, 0.0, EXTENT_M)
    pts = np.round(pts) + np.asarray(ORIGIN)
    pts = pts[rng.permutation(n)]
    return np.ascontiguousarray(pts)
