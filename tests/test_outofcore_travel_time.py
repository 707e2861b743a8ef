"""Tiled travel minutes equal the in-memory ones bit for bit (and a scipy reference)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from pari_geo.outofcore.components import RawGrid
from pari_geo.outofcore.travel_time import minutes_to_tiled
from pari_geo.typology.travel_time import minutes_per_metre, minutes_to

# each test runs with the numba kernels and with their exact numpy/scipy twins
pytestmark = pytest.mark.usefixtures("both_grid_paths")

TILES = [(1, 1), (2, 3), (7, 5), (5, 7), (64, 64)]


def _grid(seed, shape=(23, 31), n_src=3, water=0.2, speeds=False):
    rng = np.random.default_rng(seed)
    src = np.zeros(shape, bool)
    src.flat[rng.choice(src.size, n_src, replace=False)] = True
    passable = rng.random(shape) > water
    speed = None
    if speeds:
        speed = rng.uniform(5, 90, shape)
        speed[rng.random(shape) < 0.1] = np.nan
        speed[rng.random(shape) < 0.05] = 0.0
    return src, passable, speed


def _scipy_minutes(src, cell, speed, passable):
    """Reference: explicit 8-neighbour graph, scipy's Dijkstra."""
    mpm = minutes_per_metre(src.shape, speed_kmh=speed, passable=passable) * cell
    rows, cols = src.shape
    idx = np.arange(src.size).reshape(src.shape)
    i, j, w = [], [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = idx[max(0, -dr):rows - max(0, dr), max(0, -dc):cols - max(0, dc)]
        b = idx[max(0, dr):, max(0, dc):][: a.shape[0], : a.shape[1]] if dc >= 0 else \
            idx[dr:, :cols + dc][: a.shape[0], : a.shape[1]]
        ca, cb = mpm.ravel()[a.ravel()], mpm.ravel()[b.ravel()]
        step = 0.5 * (ca + cb) * (np.sqrt(2.0) if dr and dc else 1.0)
        ok = np.isfinite(step)
        i += [a.ravel()[ok], b.ravel()[ok]]
        j += [b.ravel()[ok], a.ravel()[ok]]
        w += [step[ok], step[ok]]
    g = coo_matrix((np.concatenate(w), (np.concatenate(i), np.concatenate(j))),
                   shape=(src.size, src.size)).tocsr()
    d = dijkstra(g, indices=np.flatnonzero(src), min_only=True)
    return d.reshape(src.shape)


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("seed", range(4))
def test_identical_to_in_memory(seed, tile):
    src, passable, speed = _grid(seed, speeds=seed % 2 == 1)
    ref = minutes_to(src, cell_size_m=250, passable=passable, speed_kmh=speed)
    got = minutes_to_tiled(src, cell_size_m=250, passable=passable, speed_kmh=speed,
                           tile_shape=tile)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("tile", [(3, 4), (9, 9)])
def test_limit_and_scalar_speed(tile):
    src, passable, _ = _grid(7, water=0.1)
    for limit in (0.0, 3.0, 17.5):
        ref = minutes_to(src, cell_size_m=1000, passable=passable, speed_kmh=45.0,
                         max_minutes=limit)
        got = minutes_to_tiled(src, cell_size_m=1000, passable=passable, speed_kmh=45.0,
                               max_minutes=limit, tile_shape=tile)
        np.testing.assert_array_equal(got, ref)


def test_against_scipy_dijkstra():
    src, passable, speed = _grid(11, shape=(15, 12), speeds=True)
    got = minutes_to_tiled(src, cell_size_m=100, passable=passable, speed_kmh=speed,
                           tile_shape=(4, 3))
    ref = _scipy_minutes(src, 100, speed, passable)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert np.array_equal(np.isinf(got), np.isinf(ref))


def test_winding_path_through_many_tiles():
    """A serpentine corridor: the path crosses tile seams back and forth."""
    rows, cols = 21, 20
    passable = np.zeros((rows, cols), bool)
    for r in range(0, rows, 2):
        passable[r, :] = True
    for k, r in enumerate(range(1, rows, 2)):
        passable[r, -1 if k % 2 == 0 else 0] = True
    src = np.zeros((rows, cols), bool)
    src[0, 0] = True
    ref = minutes_to(src, cell_size_m=1000, passable=passable)
    got = minutes_to_tiled(src, cell_size_m=1000, passable=passable, tile_shape=(3, 4))
    np.testing.assert_array_equal(got, ref)
    assert np.isfinite(got[-1]).all()


def test_sources_on_impassable_cells_and_no_sources():
    src = np.zeros((6, 6), bool)
    src[2, 2] = True
    passable = np.ones((6, 6), bool)
    passable[2, 2] = False
    ref = minutes_to(src, cell_size_m=1000, passable=passable)
    got = minutes_to_tiled(src, cell_size_m=1000, passable=passable, tile_shape=(2, 2))
    np.testing.assert_array_equal(got, ref)
    none = minutes_to_tiled(np.zeros((4, 5), bool), cell_size_m=1000, tile_shape=(2, 2))
    assert np.isinf(none).all()


def test_readers_and_raw_output(tmp_path):
    src, passable, speed = _grid(3, speeds=True)
    ref = minutes_to(src, cell_size_m=500, passable=passable, speed_kmh=speed)
    sp = RawGrid(tmp_path / "speed.f8", src.shape, np.float64)
    sp.write(0, 0, speed)
    out = minutes_to_tiled(lambda r0, r1, c0, c1: src[r0:r1, c0:c1], shape=src.shape,
                           cell_size_m=500, passable=passable, speed_kmh=sp,
                           tile_shape=(6, 6), out=tmp_path / "min.f8", workdir=tmp_path)
    assert isinstance(out, RawGrid)
    np.testing.assert_array_equal(out.read(0, src.shape[0], 0, src.shape[1]), ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["min.f8", "speed.f8"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cell_size_m": 0}, "cell_size_m"),
        ({"cell_size_m": 100, "tile_shape": (0, 3)}, "tile_shape"),
        ({"cell_size_m": 100, "max_minutes": -1}, "max_minutes"),
        ({"cell_size_m": 100, "speed_kmh": -5.0}, "speed_kmh"),
        ({"cell_size_m": 100, "passable": np.ones((2, 2), bool)}, "passable has shape"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        minutes_to_tiled(np.zeros((3, 3), bool), **kwargs)
