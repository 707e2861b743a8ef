"""``dbscan_partitioned`` equals the in-memory ``dbscan`` (and scikit-learn), array for array.

The partitioned run clusters one spatial tile (plus an eps-wide halo) at a time and
merges clusters across the seams; these tests put clusters, ties at exactly eps,
duplicates and border points on the seams and corners, use partitions of 1 to 10 points,
very uneven ones, weights, files and memory maps, and check the input errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.cluster
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pari_geo.clustering import dbscan_labels
from pari_geo.clustering.partitioned import dbscan_partitioned


def check(X, eps, min_samples, sample_weight=None, sk=False, **kw):
    """Assert equality with ``dbscan`` (and with sklearn when ``sk``); return labels."""
    ref_l, ref_c = dbscan_labels(X, eps, min_samples, sample_weight=sample_weight)
    lab, core = dbscan_partitioned(X, eps, min_samples, sample_weight=sample_weight, **kw)
    np.testing.assert_array_equal(core, ref_c)
    np.testing.assert_array_equal(lab, ref_l)
    assert lab.dtype == np.intp and core.dtype == np.bool_
    if sk:
        m = sklearn.cluster.DBSCAN(eps=eps, min_samples=min_samples, algorithm="kd_tree")
        m.fit(np.asarray(X, float), sample_weight=sample_weight)
        np.testing.assert_array_equal(lab, m.labels_)
        np.testing.assert_array_equal(np.flatnonzero(core), m.core_sample_indices_)
    return lab, core


def blobs(rng, n, side, n_centres, spread, round_to=1.0):
    c = rng.uniform(0, side, size=(n_centres, 2))
    X = c[rng.integers(0, n_centres, n)] + rng.normal(0, spread, size=(n, 2))
    bg = rng.random(n) < 0.2
    X[bg] = rng.uniform(0, side, size=(bg.sum(), 2))
    return np.round(X / round_to) * round_to


# --------------------------------------------------------------------------------------
# seeded random sets, many partition layouts
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "layout",
    [
        {"n_partitions": 2},
        {"n_partitions": 9},
        {"n_partitions": 50},
        {"partition_size": 3},
        {"tile_size": 7.0},
        {"tile_size": 40.0},
    ],
)
def test_random_blobs(seed, layout):
    rng = np.random.default_rng(seed)
    X = blobs(rng, 600, 200.0, 12, 6.0)
    for eps, ms in ((4.0, 4), (9.0, 10), (2.0, 1)):
        check(X, eps, ms, sk=seed == 0, **layout)


@pytest.mark.parametrize("chunk_size", [1, 7, 1000])
def test_chunked_reading_and_disk_tiles(tmp_path, chunk_size):
    rng = np.random.default_rng(7)
    X = blobs(rng, 400, 100.0, 8, 4.0)
    check(X, 3.0, 4, n_partitions=12, chunk_size=chunk_size, workdir=tmp_path)
    # the scratch directory is cleaned up
    assert list(tmp_path.iterdir()) == []


def test_larger_set_default_plan_and_threads():
    rng = np.random.default_rng(3)
    X = blobs(rng, 60_000, 3000.0, 200, 10.0)
    ref = dbscan_labels(X, 6.0, 5)
    for kw in ({"partition_size": 5000, "n_jobs": 1}, {"max_memory": "2MiB", "n_jobs": 2}):
        lab, core = dbscan_partitioned(X, 6.0, 5, **kw)
        np.testing.assert_array_equal(lab, ref[0])
        np.testing.assert_array_equal(core, ref[1])


# --------------------------------------------------------------------------------------
# seams and corners
# --------------------------------------------------------------------------------------
CUTS = ([0.0], [0.0])  # four quadrant tiles meeting at the origin


def test_cluster_through_corner_and_seams():
    # a plus and a diagonal chain through the corner, spacing exactly eps
    t = np.arange(-6, 7, dtype=float)
    X = np.vstack(
        [
            np.c_[t, np.zeros_like(t)],
            np.c_[np.zeros_like(t), t],
            np.c_[t + 0.5, t + 0.5],
            [[20.0, 20.0], [-20.0, 20.0]],
        ]
    )
    rng = np.random.default_rng(0)
    X = X[rng.permutation(len(X))]
    for ms in (1, 2, 3, 4, 5):
        check(X, 1.0, ms, sk=True, cuts=CUTS)
        check(X, 1.0, ms, n_partitions=16)


def test_points_exactly_eps_from_seam():
    eps = 0.1  # not a binary fraction: ties depend on rounding
    xs = np.arange(-5, 6) * eps
    X = np.array([(x, y) for x in xs for y in (0.0, 0.05)])
    for cut in (0.0, xs[3], xs[3] + 1e-12, xs[3] - 1e-12):
        for ms in (2, 3, 4):
            check(X, eps, ms, sk=True, cuts=([cut], []))
            check(X, eps, ms, cuts=([], [cut]))


def test_border_point_between_clusters_on_seam():
    # cluster A (right of the seam, smallest indices) and cluster B (left); the border
    # point on the seam is within eps of core points of both and must take A's number.
    A = np.array([[1.0, 0.0], [1.5, 0.0], [1.5, 0.5], [2.0, 0.0]])
    B = np.array([[-1.0, 0.0], [-1.5, 0.0], [-1.5, 0.5], [-2.0, 0.0]])
    X = np.vstack([A, B, [[0.0, 0.0]]])
    lab, core = check(X, 1.0, 4, sk=True, cuts=([0.0], []))
    assert lab[-1] == lab[0] == 0 and lab[4] == 1 and not core[-1] and core[0] and core[4]
    # reversed: B first gets number 0, the border point takes it
    lab, _ = check(np.vstack([B, A, [[0.0, 0.0]]]), 1.0, 4, cuts=([0.0], []))
    assert lab[-1] == 0


def test_border_point_whose_cluster_has_no_core_point_in_its_tile():
    # the border point (left tile) touches only a core point of the right tile, whose
    # component holds no core point of the left tile; then also a left cluster
    R = np.array([[0.2, 0.0], [0.7, 0.0], [0.7, 0.5], [1.2, 0.0]])
    L = np.array([[-1.2, 0.0], [-1.7, 0.0], [-1.7, 0.5], [-2.2, 0.0]])
    p = np.array([[-0.5, 0.0]])
    for X in (np.vstack([p, R]), np.vstack([R, p]), np.vstack([L, p, R]), np.vstack([R, L, p])):
        lab, core = check(X, 1.0, 4, sk=len(X) >= 12, cuts=([0.0], []))
        i = np.flatnonzero(X[:, 0] == -0.5)[0]
        j = np.flatnonzero(X[:, 0] == 0.2)[0]
        assert not core[i] and core[j]
        assert lab[i] == (lab[j] if len(X) == 5 else min(lab[j], lab[0 if X[0, 0] < 0 else 4]))
        check(X, 1.0, 4, cuts=([0.0, -1.0], [0.0]))


def test_duplicates_on_seams():
    rng = np.random.default_rng(5)
    base = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, -1.0], [3.0, 0.0]])
    X = np.repeat(base, [4, 1, 2, 3, 6], axis=0)
    X = X[rng.permutation(len(X))]
    for ms in (1, 3, 4, 5, 7):
        for eps in (1.0, 1.5, 2.0):
            check(X, eps, ms, sk=True, cuts=CUTS)
            check(X, eps, ms, n_partitions=len(X))


def test_seam_on_a_cluster_with_merges_only_through_halos():
    # two halves that connect only through a pair of core points straddling the seam
    left = np.c_[np.linspace(-10, -0.5, 20), np.zeros(20)]
    right = np.c_[np.linspace(0.5, 10, 20), np.zeros(20)]
    X = np.vstack([right, left])
    check(X, 1.0, 2, sk=True, cuts=([0.0], []))
    check(X, 0.99, 2, sk=True, cuts=([0.0], []))


# --------------------------------------------------------------------------------------
# special cases
# --------------------------------------------------------------------------------------
def test_all_noise_and_one_cluster():
    X = np.c_[np.arange(50.0) * 10, np.zeros(50)]
    lab, core = check(X, 5.0, 2, sk=True, n_partitions=7)
    assert (lab == -1).all() and not core.any()
    lab, core = check(X, 10.0, 2, sk=True, n_partitions=7)
    assert (lab == 0).all() and core.all()
    lab, _ = check(np.zeros((30, 2)), 1.0, 5, n_partitions=4)
    assert (lab == 0).all()


def test_single_point_and_one_column():
    check(np.array([[3.0, 4.0]]), 1.0, 1, n_partitions=3)
    check(np.array([[3.0, 4.0]]), 1.0, 2, n_partitions=3)
    x = np.round(np.random.default_rng(1).uniform(0, 50, size=(80, 1)))
    check(x, 1.0, 3, n_partitions=5)


def test_many_tiny_partitions():
    rng = np.random.default_rng(11)
    X = blobs(rng, 120, 60.0, 5, 3.0)
    for p in (20, 40, 60, 120):  # 1 to 6 points per partition
        for eps, ms in ((2.0, 3), (5.0, 6), (15.0, 20)):
            check(X, eps, ms, n_partitions=p)
    check(X, 3.0, 3, partition_size=2)
    check(X, 3.0, 3, tile_size=1.0)


def test_uneven_partitions():
    rng = np.random.default_rng(2)
    X = blobs(rng, 500, 100.0, 6, 5.0)
    # one tile with almost everything, thin slivers elsewhere
    cuts = ([1.0, 2.0, 99.0], [3.0, 97.5])
    check(X, 3.0, 4, cuts=cuts)
    check(X, 3.0, 4, cuts=(np.quantile(X[:, 0], [0.01, 0.02, 0.9]), []))
    # cuts outside the data and repeated
    check(X, 3.0, 4, cuts=([-1e6, -1e6, 1e6], [50.0, 50.0]))


def test_sample_weight():
    rng = np.random.default_rng(4)
    X = blobs(rng, 400, 80.0, 6, 4.0)
    w = rng.integers(0, 5, len(X)) * 0.25  # dyadic: sums are exact in any order
    for ms in (1, 3, 6):
        check(X, 3.0, ms, sample_weight=w, sk=True, n_partitions=10)
        check(X, 3.0, ms, sample_weight=w, n_partitions=60)
    check(X, 3.0, 4, sample_weight=2.0, n_partitions=6)
    check(X, 3.0, 4, sample_weight=np.r_[np.zeros(len(X) - 1), 1.0], n_partitions=6)
    for f in (dbscan_labels, dbscan_partitioned):  # as scikit-learn: some weight must be non-zero
        with pytest.raises(ValueError, match="non-zero"):
            f(X, 3.0, 4, sample_weight=np.zeros(len(X)))


def test_memmap_path_float32_and_out_dir(tmp_path):
    rng = np.random.default_rng(8)
    X = blobs(rng, 500, 120.0, 8, 4.0).astype(np.float32)
    ref = dbscan_labels(X, 3.0, 4)
    p = tmp_path / "pts.npy"
    np.save(p, X)
    w = np.ones(len(X))
    np.save(tmp_path / "w.npy", w)
    for src in (p, str(p), np.load(p, mmap_mode="r")):
        lab, core = dbscan_partitioned(src, 3.0, 4, n_partitions=8, chunk_size=64)
        np.testing.assert_array_equal(lab, ref[0])
        np.testing.assert_array_equal(core, ref[1])
    lab, core = dbscan_partitioned(
        p,
        3.0,
        4,
        sample_weight=tmp_path / "w.npy",
        n_partitions=8,
        out_dir=tmp_path / "out",
        workdir=tmp_path / "scratch",
    )
    assert isinstance(lab, np.memmap)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "labels.npy"), ref[0])
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "core_mask.npy"), ref[1])
    # Fortran order on disk
    np.save(tmp_path / "f.npy", np.asfortranarray(X))
    lab, _ = dbscan_partitioned(tmp_path / "f.npy", 3.0, 4, n_partitions=5, chunk_size=50)
    np.testing.assert_array_equal(lab, ref[0])


def test_large_coordinates_and_small_eps():
    rng = np.random.default_rng(9)
    X = 4.0e6 + np.round(rng.uniform(0, 3, size=(300, 2)), 2)
    check(X, 0.07, 3, n_partitions=30)
    check(X, 0.1, 4, sk=True, n_partitions=30)


# --------------------------------------------------------------------------------------
# hypothesis
# --------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pts=st.lists(st.tuples(st.integers(-12, 12), st.integers(-12, 12)), min_size=1, max_size=60),
    scale=st.sampled_from([1.0, 0.1, 0.3, 2.5]),
    eps_steps=st.sampled_from([1.0, 1.5, 2.0, 3.0]),
    ms=st.integers(1, 6),
    layout=st.one_of(
        st.integers(1, 30).map(lambda p: {"n_partitions": p}),
        st.tuples(
            st.lists(st.integers(-12, 12), max_size=4), st.lists(st.integers(-12, 12), max_size=4)
        ).map(lambda c: {"cuts": c}),
    ),
    weighted=st.booleans(),
)
def test_hypothesis_equal_to_in_memory(pts, scale, eps_steps, ms, layout, weighted):
    X = np.array(pts, dtype=float) * scale
    eps = eps_steps * scale
    if "cuts" in layout:  # cut lines on lattice coordinates: points lie on the seams
        layout = {"cuts": tuple(np.array(c, float) * scale for c in layout["cuts"])}
    w = ((np.arange(len(X)) + 1) % 3) * 0.5 if weighted else None
    check(X, eps, ms, sample_weight=w, **layout)


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
X_OK = np.array([[0.0, 0.0], [1.0, 1.0]])


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((X_OK, 0.0), {}, "eps"),
        ((X_OK, -1.0), {}, "eps"),
        ((X_OK, float("nan")), {}, "eps"),
        ((X_OK, 1.0, 0), {}, "min_samples"),
        ((X_OK, 1.0, 2.5), {}, "min_samples"),
        ((np.array([[0.0, np.nan]]), 1.0), {}, "NaN"),
        ((np.array([[0.0, 1.0], [np.inf, 1.0]]), 1.0), {}, "row 1"),
        ((np.zeros((3, 3)), 1.0), {}, "2-D Euclidean"),
        ((np.zeros(3), 1.0), {}, "2-D array"),
        ((np.zeros((0, 2)), 1.0), {}, "0 samples"),
        ((np.array([["a", "b"]]), 1.0), {}, "real numbers"),
        ((X_OK, 1.0), {"sample_weight": [1.0, -1.0]}, "non-negative"),
        ((X_OK, 1.0), {"sample_weight": [1.0, np.nan]}, "NaN"),
        ((X_OK, 1.0), {"sample_weight": [1.0]}, "sample_weight.shape"),
        ((X_OK, 1.0), {"n_partitions": 0}, "n_partitions"),
        ((X_OK, 1.0), {"n_partitions": 2, "tile_size": 1.0}, "at most one"),
        ((X_OK, 1.0), {"tile_size": -1.0}, "tile_size"),
        ((X_OK, 1.0), {"tile_size": 1e-9}, "tiles"),
        ((X_OK, 1.0), {"cuts": ([np.nan], [])}, "finite"),
        ((X_OK, 1.0), {"cuts": 3}, "pair"),
        ((X_OK, 1.0), {"max_memory": "lots"}, "max_memory"),
        ((X_OK, 1.0), {"max_memory": -5}, "max_memory"),
        ((X_OK, 1.0), {"chunk_size": 0}, "chunk_size"),
        ((X_OK, 1.0), {"n_jobs": 0}, "n_jobs"),
        (("/nonexistent/points.npy", 1.0), {}, "no such"),
    ],
)
def test_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dbscan_partitioned(*args, **kwargs)


def test_bad_file(tmp_path):
    p = tmp_path / "not.npy"
    p.write_bytes(b"hello world, not numpy")
    with pytest.raises(ValueError, match="not a .npy"):
        dbscan_partitioned(p, 1.0)
    np.save(tmp_path / "three.npy", np.zeros((4, 3)))
    with pytest.raises(ValueError, match="2-D Euclidean"):
        dbscan_partitioned(tmp_path / "three.npy", 1.0)


# --------------------------------------------------------------------------------------
# dask: partitions as tasks on a 2-process local cluster
# --------------------------------------------------------------------------------------
def test_dask_local_cluster_identical(tmp_path):
    distributed = pytest.importorskip("distributed")
    from pari_geo.clustering.partitioned import dbscan_partitioned_dask

    rng = np.random.default_rng(12)
    X = blobs(rng, 4000, 400.0, 25, 6.0)
    w = rng.integers(0, 4, len(X)) * 0.5
    cases = [
        ({"n_partitions": 7}, None),
        ({"n_partitions": 60}, w),
        ({"cuts": ([100.0, 200.0, 300.0], [150.0]), "out_dir": tmp_path / "out"}, None),
    ]
    with (
        distributed.LocalCluster(
            processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        for kw, sw in cases:
            ref_l, ref_c = dbscan_labels(X, 5.0, 5, sample_weight=sw)
            lab, core = dbscan_partitioned_dask(
                X, 5.0, 5, sample_weight=sw, client=client, workdir=tmp_path / "w", **kw
            )
            np.testing.assert_array_equal(lab, ref_l)
            np.testing.assert_array_equal(core, ref_c)
    assert np.array_equal(np.load(tmp_path / "out" / "labels.npy"), dbscan_labels(X, 5.0, 5)[0])
    assert list((tmp_path / "w").iterdir()) == []


def test_dask_scheduler_address_identical(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("PARI_GEO_SCHEDULER_TIMEOUT", "1s")
    from pari_geo.clustering.partitioned import dbscan_partitioned_dask
    from pari_geo.errors import SchedulerError

    rng = np.random.default_rng(5)
    X = blobs(rng, 3000, 300.0, 20, 5.0)
    ref_l, ref_c = dbscan_labels(X, 5.0, 5)
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  dashboard_address=":0") as cluster:
        lab, core = dbscan_partitioned_dask(X, 5.0, 5, client=cluster.scheduler_address,
                                            n_partitions=9, workdir=tmp_path / "w")
    np.testing.assert_array_equal(lab, ref_l)
    np.testing.assert_array_equal(core, ref_c)
    with pytest.raises(SchedulerError, match="cannot connect"):
        dbscan_partitioned_dask(X, 5.0, 5, client="tcp://127.0.0.1:9", n_partitions=4)
