"""The faster simulation steps give the bits of the former ones (issue 11).

Twins in plain numpy of the former code, compared bit for bit:

- ``footprint_expected`` (numba) against the order-true twin of its running sum: every
  square of the footprint is added when first reached, occupied squares in the order of
  their first member, the disc stencil row by row; on both lattice paths, non-square
  cells, members over the grid's edges, repeated members and stencils wider than 64
  squares (several bit words per row);
- the grouping of members in ``footprint_counts`` (radix sort on 16 bits, counts) against
  the former stable argsort and binary search, also beyond 2**15 clusters;
- ``NullModel.sample`` and the simulation's places against the former formulas;
- ``simulate_llrs`` against the former simulation loop built from those twins.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from affine import Affine

from pari_geo.clustering import significance as sig
from pari_geo.clustering._footprint_kernels import footprint_expected
from pari_geo.clustering.driver import dbscan_xy


def _bits(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64)).view(np.uint64)


def _expected_twin(xs, ys, starts, eps, lat):
    """The former kernel's result, in numpy, with its order of summation."""
    rows, cols = lat.base.shape[0] * lat.suby, lat.base.shape[1] * lat.subx
    rx, ry = int(math.floor(eps / lat.hx)), int(math.floor(eps / lat.hy))
    st = [
        (di, dj)
        for di in range(-ry, ry + 1)
        for dj in range(-rx, rx + 1)
        if (di * lat.hy) * (di * lat.hy) + (dj * lat.hx) * (dj * lat.hx) <= eps * eps
    ]
    st_i = np.array([d[0] for d in st], dtype=np.int64)
    st_j = np.array([d[1] for d in st], dtype=np.int64)
    k = len(starts) - 1
    e, area = np.zeros(k), np.zeros(k)
    for c in range(k):
        s0, s1 = starts[c], starts[c + 1]
        if s1 <= s0:
            continue
        j = np.floor((xs[s0:s1] - lat.x0) / lat.hx).astype(np.int64)
        i = np.floor((lat.y0 - ys[s0:s1]) / lat.hy).astype(np.int64)
        big = 1 << 30
        _, first = np.unique((i + big) * (2 * big) + (j + big), return_index=True)
        first = np.sort(first)  # occupied squares, in the order of their first member
        ci = (i[first][:, None] + st_i[None, :]).ravel()
        cj = (j[first][:, None] + st_j[None, :]).ravel()
        _, reached = np.unique((ci + big) * (2 * big) + (cj + big), return_index=True)
        reached = np.sort(reached)  # squares in the order they are first marked
        gi, gj = ci[reached], cj[reached]
        inside = (gi >= 0) & (gi < rows) & (gj >= 0) & (gj < cols)
        vals = lat.base[gi[inside] // lat.suby, gj[inside] // lat.subx]
        e[c] = np.cumsum(np.concatenate([[0.0], vals]))[-1] * (1.0 / (lat.subx * lat.suby))
        area[c] = float(inside.sum())
    return e, area


def _model(cell_w, cell_h, shape=(40, 30), seed=0, n=400):
    rng = np.random.default_rng(seed)
    rows, cols = shape
    t = Affine(cell_w, 0, 1000.0, 0, -cell_h, 5000.0 + rows * cell_h)
    pop = rng.gamma(0.6, 15.0, shape)
    pop[rng.random(shape) < 0.2] = 0.0
    xy = np.column_stack([rng.uniform(1000.0, 1000.0 + cols * cell_w, n),
                          rng.uniform(5000.0, 5000.0 + rows * cell_h, n)])  # fmt: skip
    return sig.build_null_model(xy, np.zeros(n, dtype=np.int64), None, population=pop,
                                transform=t)  # fmt: skip


LATTICES = [(1000.0, 1000.0, 300.0, 4.0), (1000.0, 1000.0, 5000.0, 4.0),
            (250.0, 100.0, 700.0, 4.0), (100.0, 250.0, 3000.0, 4.0),
            (1000.0, 1000.0, 2000.0, 40.0), (250.0, 250.0, 20000.0, 4.0),
            (333.3, 1000.0, 1234.5, 7.0)]  # fmt: skip


@pytest.mark.parametrize("cell_w,cell_h,eps,per_eps", LATTICES)
def test_footprint_kernel_is_the_order_true_twin(cell_w, cell_h, eps, per_eps):
    model = _model(cell_w, cell_h, seed=int(eps))
    lat = sig.footprint_lattice(model, eps, squares_per_eps=per_eps)
    rng = np.random.default_rng(int(eps * per_eps))
    w, h = 30 * cell_w, 40 * cell_h
    parts = [
        rng.normal((1000 + 0.5 * w, 5000 + 0.5 * h), 0.4 * eps, (30, 2)),
        rng.uniform((1000, 5000), (1000 + w, 5000 + h), (200, 2)),  # spread: wide
        rng.normal((1000, 5000 + h), eps, (15, 2)),  # over the grid's corner
        np.repeat([[1000 + 0.3 * w, 5000 + 0.7 * h]], 5, axis=0),  # one place
        np.array([[1000 + 0.9 * w, 5000 + 0.1 * h]]),  # one member
        np.zeros((0, 2)),  # an empty cluster
        rng.uniform((1000 - w, 5000 - h), (1000 + 2 * w, 5000 + 2 * h), (60, 2)),
    ]
    xy = np.vstack(parts)
    starts = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    xs, ys = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    e, area = footprint_expected(xs, ys, starts, float(eps), lat)
    want_e, want_area = _expected_twin(xs, ys, starts, float(eps), lat)
    np.testing.assert_array_equal(_bits(e), _bits(want_e))
    np.testing.assert_array_equal(area, want_area)
    assert area[0] > 0 and area[5] == 0


def _counts_twin(labels, xy, free, lattice, eps):
    """The former footprint_counts."""
    k = int(labels.max()) + 1 if len(labels) else 0
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    members = np.flatnonzero(labels >= 0)
    order = members[np.argsort(labels[members], kind="stable")]
    starts = np.searchsorted(labels[order], np.arange(k + 1)).astype(np.int64)
    xs = np.ascontiguousarray(xy[order, 0], dtype=np.float64)
    ys = np.ascontiguousarray(xy[order, 1], dtype=np.float64)
    e, _ = _expected_twin(xs, ys, starts, float(eps), lattice)
    n = np.bincount(labels[free & (labels >= 0)].astype(np.int64), minlength=k)
    return n.astype(np.int64), e


@pytest.mark.parametrize("n_labels", [1, 7, 40_000])
def test_footprint_counts_groups_members_as_before(n_labels):
    model = _model(250.0, 250.0, shape=(60, 60))
    lat = sig.footprint_lattice(model, 600.0)
    rng = np.random.default_rng(n_labels)
    n = max(3 * n_labels, 600)
    xy = rng.uniform((1000.0, 5000.0), (16_000.0, 20_000.0), (n, 2))
    labels = rng.integers(-1, n_labels, n)
    labels[rng.integers(0, n, 5)] = n_labels - 1  # the last label is used
    free = rng.random(n) < 0.8
    got = sig.footprint_counts(labels, xy, free, lat, 600.0)
    want = _counts_twin(labels, xy, free, lat, 600.0)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(_bits(got[1]), _bits(want[1]))


def _sample_twin(m, u):
    """The former NullModel.sample."""
    v = np.sort(m.actor_seg + u[:, 0])
    pos = np.searchsorted(m.samp_cum, v, side="right")
    pos = np.clip(pos, m.seg_start[m.actor_seg], m.seg_end[m.actor_seg] - 1)
    cells = m.samp_cells[pos]
    rows, cols = np.divmod(cells, m.shape[1])
    x = m.x0 + (cols + u[:, 1]) * m.cell_w
    y = m.y0 - (rows + u[:, 2]) * m.cell_h
    return cells, x, y


@pytest.mark.parametrize("cell_w,cell_h", [(1000.0, 1000.0), (250.0, 100.0), (333.3, 77.7)])
def test_sample_is_the_former_formula(cell_w, cell_h):
    model = _model(cell_w, cell_h)
    for seed in range(5):
        u = np.random.default_rng(seed).random((int(model.free.sum()), 3))
        got, want = model.sample(u), _sample_twin(model, u)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(_bits(got[1]), _bits(want[1]))
        np.testing.assert_array_equal(_bits(got[2]), _bits(want[2]))


def test_simulated_llrs_are_those_of_the_former_loop():
    shapely = pytest.importorskip("shapely")
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(11)
    t = Affine(250.0, 0, 0.0, 0, -250.0, 20_000.0)
    pop = rng.gamma(0.4, 30.0, (80, 80))
    centres = rng.uniform(0, 20_000, (25, 2))
    xy = np.clip(np.vstack([centres[rng.integers(0, 25, 1500)] + rng.normal(0, 300, (1500, 2)),
                            rng.uniform(0, 20_000, (500, 2))]), 1.0, 19_999.0)  # fmt: skip
    # two units; a few actors outside both stay fixed in the simulations
    geoms = [shapely.box(0, 0, 10_000, 20_000), shapely.box(10_000, 0, 20_000, 20_000)]
    unit = (xy[:, 0] > 10_000).astype(np.int64)
    unit[:7] = -1
    model = sig.build_null_model(xy, unit, geoms, population=pop, transform=t)
    assert model is not None and (~model.free).sum() >= 7 and len(model.seg_start) == 2
    for eps in (300.0, 1200.0):
        lat = sig.footprint_lattice(model, eps)
        seeds = sig.simulation_seeds(3, 12)
        got = list(sig.simulate_llrs(xy, model, eps_m=eps, min_actors=5, seeds=seeds,
                                     n_jobs=2, lattice=lat))  # fmt: skip
        sim_xy = np.array(xy, copy=True)
        for seed, llr in zip(seeds, got, strict=True):
            u = np.random.default_rng(seed).random((len(model.free_order), 3))
            _, x, y = _sample_twin(model, u)
            sim_xy[model.free_order, 0] = x
            sim_xy[model.free_order, 1] = y
            labels, _ = dbscan_xy(np.ascontiguousarray(sim_xy[:, 0]),
                                  np.ascontiguousarray(sim_xy[:, 1]), None, eps, 5,
                                  serial=True)  # fmt: skip
            want = (sig.poisson_llr(*_counts_twin(labels, sim_xy, model.free, lat, eps))
                    if labels.max() >= 0 else np.zeros(0))  # fmt: skip
            np.testing.assert_array_equal(_bits(llr), _bits(want))


def test_sorted_search_is_numpys_search_and_clip():
    """The merge walk of the null model's sampling against its numpy twin: ties with the
    table, values beyond both ends, bounds that cross, empty inputs."""
    from pari_geo.clustering._null_kernels import sorted_search_clipped

    rng = np.random.default_rng(3)
    for m, n in [(0, 5), (5, 0), (1, 1), (50, 400), (2000, 300)]:
        table = np.sort(rng.integers(0, 30, m).astype(np.float64) / 3.0)
        v = np.sort(np.concatenate([rng.uniform(-1.0, 11.0, n), table[: n // 4]]))[:n]
        lo = rng.integers(0, max(m, 1), len(v))
        hi = lo + rng.integers(-2, 6, len(v))  # some bounds cross (lo > hi)
        want = np.clip(np.searchsorted(table, v, side="right"), lo, hi)
        got = sorted_search_clipped(table, v, lo.astype(np.int64), hi.astype(np.int64))
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)


def test_sorted_draws_by_segment_is_numpys_sort():
    """The null model's linear-time sort of its draws against ``np.sort(seg + u)``: one
    segment, many, segments of one draw, large segment values, ties and draws near 1."""
    from pari_geo.clustering._null_kernels import sorted_draws_by_segment

    rng = np.random.default_rng(5)
    for n, k, base in [(0, 1, 0), (1, 1, 0), (7, 7, 0), (400, 1, 0), (5000, 40, 0),
                       (3000, 12, 2**40)]:  # fmt: skip
        seg = np.sort(rng.integers(0, k, n)).astype(np.int64) + base
        u = rng.random(n)
        if n > 10:
            u[:5] = u[5]  # ties
            u[6] = np.nextafter(1.0, 0.0)
        got = sorted_draws_by_segment(seg, u)
        np.testing.assert_array_equal(got, np.sort(seg + u))
    # clumped draws (not uniform) still sort, more slowly
    seg = np.zeros(300, np.int64)
    u = rng.random(300) ** 8
    np.testing.assert_array_equal(sorted_draws_by_segment(seg, u), np.sort(u))


def test_group_members_is_a_stable_argsort_and_bincount():
    """The footprint's grouping kernel against its numpy twin (the former code)."""
    from pari_geo.clustering._footprint_kernels import group_members

    rng = np.random.default_rng(11)
    for n, k in [(1, 1), (50, 3), (5000, 40), (3000, 1)]:
        labels = rng.integers(-1, k, n).astype(np.int64)
        labels[0] = k - 1
        x, y = rng.normal(size=n), rng.normal(size=n)
        free = rng.random(n) < 0.7
        xs, ys, starts, cnt = group_members(labels, x, y, free, k)
        per = np.bincount(labels + 1, minlength=k + 1)
        order = np.argsort(labels, kind="stable")[per[0] :]
        np.testing.assert_array_equal(xs, x[order])
        np.testing.assert_array_equal(ys, y[order])
        np.testing.assert_array_equal(starts, np.r_[0, np.cumsum(per[1:])])
        np.testing.assert_array_equal(cnt, np.bincount(labels[free & (labels >= 0)],
                                                       minlength=k))  # fmt: skip
