"""The exact numpy/scipy twins that small grids take instead of the numba kernels (issue 11).

``pari_geo._numba.SMALL_GRID_CELLS`` switches the in-memory window means, per-component
sums and travel minutes to numpy/scipy on small grids (a first run then compiles none of
those kernels). The switch must never change a bit: each twin is checked here against its
kernel on random grids with the awkward values (NaN, +-inf, -0.0, ties, zero costs,
impassable sources, limits).
"""

from __future__ import annotations

import numpy as np
import pytest

from pari_geo import _numba
from pari_geo.outofcore._grid_kernels import label_sums
from pari_geo.outofcore._travel_kernels import NO_RING, settle
from pari_geo.outofcore._window_kernels import window_mean_direct
from pari_geo.outofcore.contiguity import cluster_labels
from pari_geo.outofcore.travel_time import minutes_scipy, minutes_to
from pari_geo.outofcore.windows import window_mean, window_mean_numpy


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("seed", range(6))
def test_window_mean_numpy_has_the_kernels_bits(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        rows, cols = (int(n) for n in rng.integers(1, 25, 2))
        v = rng.normal(0, 10, (rows, cols)) * 10.0 ** rng.integers(-6, 6, (rows, cols))
        u = rng.random((rows, cols))
        v[u < 0.1] = np.nan
        v[(u >= 0.1) & (u < 0.13)] = np.inf
        v[(u >= 0.13) & (u < 0.15)] = -np.inf
        v[(u >= 0.15) & (u < 0.2)] = -0.0
        before, after = (int(n) for n in rng.integers(0, 6, 2))
        want = window_mean_direct(np.ascontiguousarray(v), before, after)
        assert _same_bits(window_mean_numpy(v, before, after), want)


@pytest.mark.parametrize("seed", range(6))
def test_minutes_scipy_has_the_kernels_bits(seed):
    rng = np.random.default_rng(100 + seed)
    for trial in range(40):
        rows, cols = (int(n) for n in rng.integers(1, 30, 2))
        cost = rng.uniform(0.01, 3.0, (rows, cols)) ** rng.uniform(0.5, 3)
        cost[rng.random((rows, cols)) < rng.uniform(0, 0.3)] = np.inf  # impassable
        if trial % 4 == 0:
            cost = np.round(cost, 1) + 0.0  # many equal path lengths
        if trial % 7 == 0:
            cost[rng.random((rows, cols)) < 0.2] = 0.0  # zero-cost steps
        sources = rng.random((rows, cols)) < rng.uniform(0.0, 0.1)
        limit = np.inf if trial % 2 else float(rng.uniform(0.5, 30))
        want = np.where(sources, 0.0, np.inf)
        settle(np.ascontiguousarray(cost), want, NO_RING, limit, False)
        got = minutes_scipy(cost, sources, limit)
        want[want > limit] = np.inf  # what both callers do with the unsettled cells
        got[got > limit] = np.inf
        assert _same_bits(got, want)


def test_minutes_scipy_without_sources_is_all_inf():
    assert np.isposinf(minutes_scipy(np.ones((3, 4)), np.zeros((3, 4), bool))).all()


@pytest.mark.parametrize("seed", range(4))
def test_the_public_functions_give_the_same_bits_on_either_side_of_the_switch(
    seed, monkeypatch
):
    rng = np.random.default_rng(200 + seed)
    v = rng.normal(5, 3, (37, 41))
    v[rng.random(v.shape) < 0.1] = np.nan
    dense = rng.random(v.shape) < 0.4
    sources = rng.random(v.shape) < 0.02
    speed = rng.uniform(5, 90, v.shape)
    speed[rng.random(v.shape) < 0.1] = 0.0

    def results():
        labels, sizes = cluster_labels(dense, v, 8)
        minutes = minutes_to(sources, cell_size_m=250.0, speed_kmh=speed)
        near = minutes_to(sources, cell_size_m=250.0, speed_kmh=speed, max_minutes=3.0)
        return [window_mean(v, 5), window_mean(v, 4), labels, sizes, minutes, near]

    monkeypatch.setattr(_numba, "SMALL_GRID_CELLS", 0)
    kernels = results()
    monkeypatch.setattr(_numba, "SMALL_GRID_CELLS", 1 << 62)
    twins = results()
    for k, t in zip(kernels, twins, strict=True):
        assert _same_bits(k, t)
    labels = kernels[2]
    assert _same_bits(kernels[3], label_sums(labels, v, int(labels.max())))


def test_the_default_switch_sends_the_sample_grid_to_the_twins_and_large_grids_to_the_kernels():
    assert 145 * 155 <= _numba.SMALL_GRID_CELLS < 2000 * 2000
