"""The hidden-cluster footprint and the simulation machinery (issue 11).

- the numba footprint kernel against its numpy/scipy twin (``helpers.footprint_expected_twin``)
  on both lattice paths (cells split, cells grouped);
- the expected count does not depend on where members fell or on the cell size: a fixed
  region on a uniform field has the same expected count at 100 m, 250 m and 1 km;
- under the null, observed/expected is about 1 for large clusters at every cell size;
- the serial DBSCAN path equals the parallel one and scikit-learn's;
- simulations are identical whatever the thread count.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from affine import Affine
from helpers import footprint_expected_twin

from pari_geo.clustering import significance as sig
from pari_geo.clustering.actors import find_microclusters
from pari_geo.datasets.planted import planted_region


def _model(pop, cell):
    """A one-unit null model on a grid with ``pop`` residents, one actor per 10 residents."""
    rows, cols = pop.shape
    t = Affine(cell, 0, 0, 0, -cell, rows * cell)
    n = int(pop.sum() // 10)
    xy = np.column_stack([np.full(n, cell / 2), np.full(n, rows * cell - cell / 2)])
    return sig.build_null_model(xy, np.zeros(n, dtype=np.int64), None, population=pop, transform=t)


CASES = [(1000.0, 300.0), (1000.0, 1000.0), (250.0, 500.0), (100.0, 300.0), (100.0, 5000.0),
         (250.0, 20000.0)]  # fmt: skip


@pytest.mark.parametrize("cell,eps", CASES)
def test_kernel_equals_numpy_twin(cell, eps):
    rng = np.random.default_rng(int(cell + eps))
    rows, cols = 60, 50
    pop = rng.gamma(0.5, 20.0, (rows, cols))
    model = _model(pop, cell)
    lat = sig.footprint_lattice(model, eps)
    ce = model.cell_expected.reshape(model.shape)
    # three clusters: compact, spread, and one hanging over the grid's edge
    w, h = cols * cell, rows * cell
    clusters = [
        rng.normal((0.5 * w, 0.5 * h), 0.3 * eps, (12, 2)),
        rng.uniform((0.1 * w, 0.1 * h), (0.4 * w, 0.3 * h), (40, 2)),
        rng.normal((0.02 * w, 0.98 * h), 0.5 * eps, (6, 2)),
    ]
    xy = np.vstack(clusters)
    labels = np.repeat(np.arange(3), [len(c) for c in clusters])
    n, e = sig.footprint_counts(labels, xy, np.ones(len(xy), bool), lat, eps)
    np.testing.assert_array_equal(n, [12, 40, 6])
    for c, got in zip(clusters, e, strict=True):
        want, squares = footprint_expected_twin(c, eps, ce, cell)
        assert squares > 0
        assert got == pytest.approx(want, rel=1e-9)


def test_footprint_is_the_reach_of_the_cluster_not_its_cells():
    # uniform field, 1 expected actor per km²: the expected count is the footprint's area
    for cell in (100.0, 250.0, 1000.0):
        rows = int(20000 / cell)
        model = _model(np.full((rows, rows), 10.0 * (cell / 1000.0) ** 2), cell)
        np.testing.assert_allclose(model.cell_expected, (cell / 1000.0) ** 2)
        lat = sig.footprint_lattice(model, 500.0)
        members = np.array([[10_000.0, 10_000.0], [10_300.0, 10_000.0], [10_150.0, 10_400.0]])
        _, e = sig.footprint_counts(np.zeros(3, dtype=np.int64), members, np.ones(3, bool),
                                    lat, 500.0)  # fmt: skip
        # the union of three 500 m discs is about 1.5 km²; the lattice resolves it to a few %
        assert e[0] == pytest.approx(1.47, rel=0.08), cell
    # only free members count in n; fixed ones still shape the footprint
    n, _ = sig.footprint_counts(np.array([0, 0, 0, -1]), np.vstack([members, [[0.0, 0.0]]]),
                                np.array([True, False, True, True]), lat, 500.0)  # fmt: skip
    assert n.tolist() == [2]


@pytest.mark.parametrize("cell", [100.0, 250.0, 1000.0])
def test_observed_over_expected_is_one_for_large_null_clusters(cell):
    warnings.simplefilter("ignore")
    ratios = []
    for seed in range(4):
        r = planted_region(cell, seed=300 + seed, null=True, size_km=(40.0, 30.0))
        out = find_microclusters(r.actors, eps_m=500, min_actors=5, units=r.units,
                                 unit_id="unit_id", population=r.population, n_sim=0)  # fmt: skip
        ratios += out.loc[out["n_actors"] >= 50, "ratio"].tolist()
    assert len(ratios) >= 5
    assert np.median(ratios) == pytest.approx(1.0, abs=0.12)


def test_serial_dbscan_equals_parallel_and_sklearn():
    from sklearn.cluster import DBSCAN

    from pari_geo.clustering.driver import dbscan_xy

    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(0, 1, (800, 2)), rng.uniform(-8, 8, (1200, 2))])
    for eps, ms in ((0.3, 5), (0.8, 12), (2.0, 3)):
        a = dbscan_xy(X[:, 0].copy(), X[:, 1].copy(), None, eps, ms, serial=True)
        b = dbscan_xy(X[:, 0].copy(), X[:, 1].copy(), None, eps, ms, serial=False)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[0], DBSCAN(eps=eps, min_samples=ms).fit(X).labels_)


def test_simulations_do_not_depend_on_threads_or_batches():
    warnings.simplefilter("ignore")
    r = planted_region(1000.0, seed=5, size_km=(30.0, 24.0), n_low=3, n_high=1)
    kw = dict(eps_m=500, min_actors=5, units=r.units, unit_id="unit_id",
              population=r.population, n_sim=60, random_state=11)  # fmt: skip
    a = find_microclusters(r.actors, **kw, n_jobs=1)
    b = find_microclusters(r.actors, **kw, n_jobs=2)
    np.testing.assert_array_equal(a["p_value"], b["p_value"])
    np.testing.assert_array_equal(a["hidden"], b["hidden"])
    # a longer run extends a shorter one: simulation s always draws from the same stream
    from pari_geo.clustering.actors import prepare_actors

    prep = prepare_actors(r.actors, units=r.units, unit_id="unit_id", population=r.population)
    model = sig.build_null_model(prep.xy, prep.actor_unit, prep.unit_geoms,
                                 population=prep.pop, transform=prep.pop_transform)  # fmt: skip
    seeds = sig.simulation_seeds(11, 12)
    one = list(sig.simulate_llrs(prep.xy, model, eps_m=500, min_actors=5, seeds=seeds, n_jobs=1))
    two = list(sig.simulate_llrs(prep.xy, model, eps_m=500, min_actors=5, seeds=seeds[:7],
                                 n_jobs=2, batch=2))  # fmt: skip
    for x, y in zip(one[:7], two, strict=True):
        np.testing.assert_array_equal(x, y)


def test_residents_under_large_geometries_use_sub_cells_within_a_percent():
    import shapely

    from pari_geo.clustering.actors import _footprint_residents

    cell = 100.0
    pop = np.full((120, 120), 7.0)  # 7 residents per 100 m cell = 700 per km²
    t = Affine(cell, 0, 0, 0, -cell, 120 * cell)
    big = shapely.Point(6000, 6000).buffer(5000, quad_segs=64)  # ~7,850 cells in its window
    got = _footprint_residents(big, pop, t)
    assert got == pytest.approx(700 * big.area / 1e6, rel=0.01)
    small = shapely.Point(6030, 6010).buffer(230, quad_segs=64)  # 64 x 64 sub-cells
    assert _footprint_residents(small, pop, t) == pytest.approx(700 * small.area / 1e6, rel=2e-3)
