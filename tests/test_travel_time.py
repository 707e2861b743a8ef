"""Travel time over the grid: the numba Dijkstra against explicit-graph references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from pari_geo.typology.travel_time import minutes_per_metre, minutes_to

# each test runs with the numba kernels and with their exact numpy/scipy twins
pytestmark = pytest.mark.usefixtures("both_grid_paths")

SQ2 = math.sqrt(2.0)


def reference_minutes(sources, cell_size_m, mpm):
    """Twin of ``minutes_to``: scipy's Dijkstra on the explicit 8-neighbour grid graph."""
    nr, nc = mpm.shape
    rows, cols, weights = [], [], []
    for r in range(nr):
        for c in range(nc):
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    if dr == dc == 0:
                        continue
                    r2, c2 = r + dr, c + dc
                    if not (0 <= r2 < nr and 0 <= c2 < nc):
                        continue
                    if not (np.isfinite(mpm[r, c]) and np.isfinite(mpm[r2, c2])):
                        continue
                    length = cell_size_m * (SQ2 if dr and dc else 1.0)
                    rows.append(r * nc + c)
                    cols.append(r2 * nc + c2)
                    weights.append(length * 0.5 * (mpm[r, c] + mpm[r2, c2]))
    n = nr * nc
    graph = coo_matrix((weights, (rows, cols)), shape=(n, n)).tocsr()
    idx = np.flatnonzero(sources.ravel())
    if idx.size == 0:
        return np.full(mpm.shape, np.inf)
    dist = dijkstra(graph, directed=True, indices=idx, min_only=True)
    return dist.reshape(mpm.shape)


@pytest.mark.parametrize("seed", range(12))
def test_matches_scipy_dijkstra_on_random_grids(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(3, 14, size=2))
    cell = float(rng.choice([100.0, 250.0, 1000.0, 5000.0]))
    passable = rng.random(shape) > 0.25
    speed = np.where(rng.random(shape) < 0.7, rng.uniform(5, 120, shape), np.nan)
    speed[rng.random(shape) < 0.05] = 0.0  # explicitly impassable
    sources = rng.random(shape) < 0.08
    sources.flat[rng.integers(sources.size)] = True
    got = minutes_to(
        sources, cell_size_m=cell, speed_kmh=speed, default_speed_kmh=45.0, passable=passable
    )
    mpm = minutes_per_metre(shape, speed_kmh=speed, default_speed_kmh=45.0, passable=passable)
    want = reference_minutes(sources, cell, mpm)
    assert np.array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_allclose(got[np.isfinite(got)], want[np.isfinite(want)], rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_matches_skimage_mcp_geometric(seed):
    from skimage.graph import MCP_Geometric

    rng = np.random.default_rng(100 + seed)
    shape = (40, 55)
    speed = rng.uniform(20, 90, shape)
    passable = rng.random(shape) > 0.2
    sources = rng.random(shape) < 0.01
    sources[0, 0] = True
    got = minutes_to(sources, cell_size_m=250, speed_kmh=np.where(passable, speed, np.nan),
                     passable=passable)  # fmt: skip
    cost = 60.0 / (1000.0 * speed) * 250.0
    cost[~passable] = np.inf
    want, _ = MCP_Geometric(cost, fully_connected=True).find_costs(np.argwhere(sources))
    assert np.array_equal(np.isinf(got), np.isinf(want))
    np.testing.assert_allclose(got[np.isfinite(got)], want[np.isfinite(want)], rtol=1e-9)


def test_zero_at_sources_and_default_speed():
    src = np.zeros((5, 7), bool)
    src[2, 3] = True
    src[0, 0] = True
    t = minutes_to(src, cell_size_m=1000)
    assert np.all(t[src] == 0)
    # 60 km/h = 1 min/km: rook 1, diagonal sqrt(2)
    assert t[2, 4] == pytest.approx(1.0)
    assert t[3, 4] == pytest.approx(SQ2)
    assert t[4, 6] == pytest.approx(1 + 2 * SQ2)
    # speed scales time inversely; cell size linearly
    np.testing.assert_allclose(minutes_to(src, cell_size_m=1000, speed_kmh=30.0), 2 * t)
    np.testing.assert_allclose(minutes_to(src, cell_size_m=250), t / 4)


@pytest.mark.parametrize("seed", range(4))
def test_neighbour_consistency(seed):
    """|t(a) - t(b)| <= cost of the step a-b for passable neighbours (triangle inequality)."""
    rng = np.random.default_rng(7 + seed)
    shape = (30, 30)
    speed = rng.uniform(10, 100, shape)
    src = rng.random(shape) < 0.02
    src[5, 5] = True
    t = minutes_to(src, cell_size_m=500, speed_kmh=speed)
    mpm = 60 / (1000 * speed)
    for r in range(shape[0]):
        for c in range(shape[1]):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                r2, c2 = r + dr, c + dc
                if 0 <= r2 < shape[0] and 0 <= c2 < shape[1]:
                    step = 500 * (SQ2 if dr and dc else 1.0) * 0.5 * (mpm[r, c] + mpm[r2, c2])
                    assert abs(t[r, c] - t[r2, c2]) <= step + 1e-9
    assert np.all(t >= 0)


def test_water_is_impassable_unless_a_speed_is_given():
    src = np.zeros((3, 5), bool)
    src[:, 0] = True
    passable = np.ones((3, 5), bool)
    passable[:, 2] = False  # a river across the grid
    t = minutes_to(src, cell_size_m=1000, passable=passable)
    assert np.all(np.isinf(t[:, 2:]))
    speed = np.full((3, 5), np.nan)
    speed[1, 2] = 6.0  # a ferry: 10 min per km
    t2 = minutes_to(src, cell_size_m=1000, speed_kmh=speed, passable=passable)
    # step 1->2 costs (1 + 10) / 2 = 5.5, 2->3 another 5.5
    assert t2[1, 2] == pytest.approx(1 + 5.5)
    assert t2[1, 3] == pytest.approx(1 + 11.0)
    assert t2[0, 3] == pytest.approx(1 + 11.0 + 1)  # via (1, 3); the diagonal is dearer
    assert np.isinf(t2[0, 2]) and np.isinf(t2[2, 2])


def test_speed_zero_blocks_and_sources_on_water_do_not_spread():
    src = np.zeros((1, 4), bool)
    src[0, 0] = True
    speed = np.array([[60.0, 0.0, 60.0, 60.0]])
    t = minutes_to(src, cell_size_m=1000, speed_kmh=speed)
    assert t[0, 0] == 0 and np.all(np.isinf(t[0, 1:]))
    passable = np.array([[False, True, True, True]])
    t = minutes_to(src, cell_size_m=1000, passable=passable)
    assert t[0, 0] == 0 and np.all(np.isinf(t[0, 1:]))


def test_unreachable_and_no_sources():
    assert np.all(np.isinf(minutes_to(np.zeros((4, 4), bool), cell_size_m=100)))


def test_max_minutes_cuts_off_exactly():
    rng = np.random.default_rng(3)
    src = rng.random((50, 50)) < 0.005
    src[0, 0] = True
    speed = rng.uniform(20, 80, (50, 50))
    full = minutes_to(src, cell_size_m=1000, speed_kmh=speed)
    cut = minutes_to(src, cell_size_m=1000, speed_kmh=speed, max_minutes=10.0)
    near = full <= 10.0
    np.testing.assert_array_equal(cut[near], full[near])
    assert np.all(np.isinf(cut[~near]))


def test_bad_arguments():
    src = np.zeros((2, 2), bool)
    with pytest.raises(ValueError, match="cell_size_m"):
        minutes_to(src, cell_size_m=0)
    with pytest.raises(ValueError, match="passable"):
        minutes_to(src, cell_size_m=100, passable=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="speed_kmh"):
        minutes_to(src, cell_size_m=100, speed_kmh=np.ones((3, 3)))
    with pytest.raises(ValueError, match="default_speed_kmh"):
        minutes_to(src, cell_size_m=100, default_speed_kmh=0)
    with pytest.raises(ValueError, match="2-D"):
        minutes_to(np.zeros(4, bool), cell_size_m=100)
