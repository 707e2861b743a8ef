"""pari_geo's DBSCAN equals scikit-learn's, array for array, and a scipy reference.

scikit-learn picks its neighbour search by size: a KD-tree from 12 points on, brute force
below. The KD-tree compares ``dx*dx + dy*dy <= eps*eps`` exactly as pari_geo does; the
brute-force path uses ``|x|^2 - 2 x.y + |y|^2``, which rounds differently (with
coordinates around 1e7 it can even drop a point from its own neighbourhood). So below 12
points the tie-heavy inputs are compared with ``algorithm="kd_tree"``; everything else is
compared with the default estimator.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import sklearn.cluster
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from pari_geo.clustering import DBSCAN, dbscan_labels
from pari_geo.clustering import _kernels as kern
from pari_geo.clustering import driver as driver_mod
from pari_geo.clustering import threads as threads_mod

SK_BRUTE_BELOW = 12  # sklearn's NearestNeighbors uses brute force for n_samples < 12


# --------------------------------------------------------------------------------------
# reference implementation (numpy + scipy), one step per kernel
# --------------------------------------------------------------------------------------
def ref_neighbour_pairs(X, eps):
    """All pairs i < j with ``dx*dx + dy*dy <= eps*eps`` (the exact float64 test)."""
    tree = cKDTree(X)
    pairs = tree.query_pairs(r=eps * (1 + 1e-6), output_type="ndarray")
    if pairs.size == 0:
        return np.empty((0, 2), np.int64)
    d = X[pairs[:, 0]] - X[pairs[:, 1]]
    keep = d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] <= eps * eps
    return pairs[keep].astype(np.int64)


def ref_core(X, eps, min_samples, w=None):
    """Core flags: weight of the neighbourhood, the point itself included."""
    n = X.shape[0]
    w = np.ones(n) if w is None else np.asarray(w, float)
    pairs = ref_neighbour_pairs(X, eps)
    tot = w.copy()
    tot += np.bincount(pairs[:, 0], weights=w[pairs[:, 1]], minlength=n)
    tot += np.bincount(pairs[:, 1], weights=w[pairs[:, 0]], minlength=n)
    return tot >= min_samples, pairs


def ref_components(n, core, pairs):
    """Cluster number of each core point (-1 elsewhere), numbered by smallest index."""
    cc = pairs[core[pairs[:, 0]] & core[pairs[:, 1]]]
    g = coo_matrix((np.ones(len(cc)), (cc[:, 0], cc[:, 1])), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    labels = np.full(n, -1, np.int64)
    idx = np.flatnonzero(core)
    if idx.size:
        first = {}
        for i in idx:  # increasing index: first time a component is seen = its smallest
            first.setdefault(comp[i], len(first))
        labels[idx] = [first[comp[i]] for i in idx]
    return labels


def ref_border(labels, core, pairs):
    """Non-core points take the smallest cluster number among their core neighbours."""
    out = labels.copy()
    for a, b in ((0, 1), (1, 0)):
        i, j = pairs[:, a], pairs[:, b]
        m = ~core[i] & core[j]
        for p, lab in zip(i[m], labels[j[m]], strict=True):
            if out[p] == -1 or lab < out[p]:
                out[p] = lab
    return out


def ref_dbscan(X, eps, min_samples, w=None):
    X = np.asarray(X, float)
    core, pairs = ref_core(X, eps, min_samples, w)
    comps = ref_components(X.shape[0], core, pairs)
    return ref_border(comps, core, pairs), core


def sk_dbscan(X, eps, min_samples, w=None, algorithm="auto"):
    m = sklearn.cluster.DBSCAN(eps=eps, min_samples=min_samples, algorithm=algorithm)
    m.fit(X, sample_weight=w)
    return m.labels_, m.core_sample_indices_


def check_all(X, eps, min_samples, w=None):
    """pari_geo == reference (kernel by kernel) == sklearn (KD-tree, and default n>=12)."""
    X = np.asarray(X, float)
    if w is not None and not np.any(w):
        # scikit-learn rejects all-zero weights; so does pari_geo (same validation)
        with pytest.raises(ValueError, match="zero"):
            sk_dbscan(X, eps, min_samples, w)
        with pytest.raises(ValueError, match="zero"):
            dbscan_labels(X, eps, min_samples, sample_weight=w)
        return None
    labels, core = dbscan_labels(X, eps, min_samples, sample_weight=w)
    assert labels.dtype == np.intp and core.dtype == np.bool_
    rl, rc = ref_dbscan(X, eps, min_samples, w)
    # core_flags kernel
    np.testing.assert_array_equal(core, rc, err_msg="core flags")
    # union-find + numbering kernels
    np.testing.assert_array_equal(
        np.where(core, labels, -1), np.where(rc, rl, -1), err_msg="components"
    )
    # border kernel
    np.testing.assert_array_equal(labels, rl, err_msg="border labels")
    sl, sc = sk_dbscan(X, eps, min_samples, w, algorithm="kd_tree")
    np.testing.assert_array_equal(labels, sl)
    np.testing.assert_array_equal(np.flatnonzero(core), sc)
    if X.shape[0] >= SK_BRUTE_BELOW:
        sl, sc = sk_dbscan(X, eps, min_samples, w)
        np.testing.assert_array_equal(labels, sl)
        np.testing.assert_array_equal(np.flatnonzero(core), sc)
    return labels, core


# --------------------------------------------------------------------------------------
# hypothesis inputs: lattice points (duplicates, exact-eps pairs, grid alignment)
# --------------------------------------------------------------------------------------
UNITS = [1.0, 0.1, 0.3, 0.7, 500.0, 1e-3, 2.5]
OFFSETS = [0.0, -1e6, 4e6, 1e7, -3.7e7, 123.456]
EPS_FACTORS = [1.0, 2.0, 3.0, 5.0, 2.0**0.5, 0.5, 1.5]


@st.composite
def lattice_case(draw):
    n = draw(st.integers(1, 150))
    side = draw(st.integers(1, 25))
    unit = draw(st.sampled_from(UNITS))
    off = (draw(st.sampled_from(OFFSETS)), draw(st.sampled_from(OFFSETS)))
    ij = draw(
        st.lists(st.tuples(st.integers(0, side), st.integers(0, side)), min_size=n, max_size=n)
    )
    X = np.asarray(ij, float) * unit + np.asarray(off)
    eps = draw(st.sampled_from(EPS_FACTORS)) * unit
    min_samples = draw(st.integers(1, 8))
    wkind = draw(st.sampled_from(["none", "int", "half"]))
    w = None
    if wkind != "none":
        ints = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
        w = np.asarray(ints, float) * (0.5 if wkind == "half" else 1.0)
    return X, eps, min_samples, w


@st.composite
def float_case(draw):
    n = draw(st.integers(1, 120))
    scale = draw(st.sampled_from([1.0, 1e3, 1e-2]))
    coords = st.floats(-1e7, 1e7, allow_nan=False, allow_infinity=False)
    base = (draw(coords), draw(coords))
    pts = draw(st.lists(st.tuples(st.floats(-10, 10), st.floats(-10, 10)), min_size=n, max_size=n))
    X = np.asarray(pts, float) * scale + np.asarray(base)
    eps = draw(st.floats(0.05, 8.0)) * scale
    return X, eps, draw(st.integers(1, 6))


FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(lattice_case())
def test_lattice_points_match(case):
    X, eps, min_samples, w = case
    check_all(X, eps, min_samples, w)


@FAST
@given(float_case())
def test_float_points_match(case):
    X, eps, min_samples = case
    check_all(X, eps, min_samples)


@settings(max_examples=40, deadline=None)
@given(lattice_case())
def test_sparse_grid_path(case):
    """Grids too large for the dense key map use sorted keys + binary search."""
    X, eps, min_samples, w = case
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(driver_mod, "DENSE_EXTRA", -(10**12))
        check_all(X, eps, min_samples, w)


@settings(max_examples=40, deadline=None)
@given(lattice_case())
def test_non_tight_cells_path(case):
    """Cells wider than eps across the diagonal take the exact point-level path."""
    X, eps, min_samples, w = case
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(driver_mod, "SIDE_FACTOR", 0.97)
        check_all(X, eps, min_samples, w)


@pytest.mark.parametrize("eps", [0.7, 1.0])
@pytest.mark.parametrize("min_samples", [3, 6])
def test_non_tight_cells_many_clusters(eps, min_samples):
    rng = np.random.default_rng(int(eps * 10) + min_samples)
    X = rng.uniform(0, 30, size=(1500, 2))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(driver_mod, "SIDE_FACTOR", 0.97)
        labels, _ = check_all(X, eps, min_samples)
    assert labels.max() >= 1


# --------------------------------------------------------------------------------------
# named edge cases
# --------------------------------------------------------------------------------------
def test_one_point():
    check_all([[1.0, 2.0]], 1.0, 1)
    check_all([[1.0, 2.0]], 1.0, 2)


def test_all_noise():
    X = np.arange(40, dtype=float).reshape(20, 2) * 100
    labels, core = check_all(X, 1.0, 2)
    assert (labels == -1).all() and not core.any()


def test_one_cluster_and_duplicates():
    X = np.zeros((50, 2)) + 7.5
    labels, core = check_all(X, 0.1, 50)
    assert (labels == 0).all() and core.all()
    check_all(X, 0.1, 51)


def test_exact_eps_chain_and_non_representable():
    # points exactly eps apart along a line: a chain iff <= is inclusive
    X = np.c_[np.arange(30) * 0.3, np.zeros(30)]
    check_all(X, 0.3, 3)
    # 0.1 + 0.2 != 0.3: the pair at "0.3" is not within eps=0.3 in float64
    X = np.array([[0.1, 0], [0.4, 0]] * 8)
    check_all(X, 0.3, 2)
    # 3-4-5 triangles at large coordinates
    base = np.array([4_123_456.0, 3_000_001.0])
    X = base + np.array([[0, 0], [300, 400], [600, 800], [900, 1200]] * 4, float)
    check_all(X, 500.0, 3)


def test_border_point_takes_lowest_cluster():
    """Border point between two clusters: sklearn gives it the lower cluster number,
    whatever the index order of the cores that reach it."""
    left = [[-2.0, 0], [-2.0, 0.1], [-2.0, -0.1], [-2.1, 0]]
    right = [[2.0, 0], [2.0, 0.1], [2.0, -0.1], [2.1, 0]]
    mid = [[0.0, 0.0]]
    for pts in (mid + right + left, right + mid + left, left + right + mid, right + left + mid):
        labels, core = check_all(np.array(pts * 3), 2.0, 12)
    # the border point is reachable from both clusters and gets the smallest number
    X = np.array(right * 3 + left * 3 + mid, float)
    labels, core = check_all(X, 2.0, 12)
    assert not core[-1] and labels[-1] == 0 == labels[0]


def test_adversarial_borders():
    """Many border points, each within eps of cores of several clusters."""
    rng = np.random.default_rng(7)
    cores = rng.integers(0, 40, size=(60, 2)).astype(float) * 3.0
    X = np.repeat(cores, 5, axis=0)
    border = rng.uniform(0, 120, size=(400, 2)).round(1)
    X = np.concatenate([border[:200], X, border[200:]])
    for eps in (3.0, 4.5, 6.0):
        check_all(X, eps, 5)
        check_all(X[::-1].copy(), eps, 5)


def test_large_and_negative_coordinates():
    rng = np.random.default_rng(3)
    X = rng.integers(-300, 300, size=(400, 2)) * 0.5 + np.array([-9.8e8, 7.3e8])
    check_all(X, 1.0, 4)
    check_all(X, 1.5, 4)


def test_one_feature_is_a_line():
    x = np.array([0.0, 0.3, 0.6, 5.0, 5.2, 9.0] * 3)
    labels, core = dbscan_labels(x[:, None], 0.3, 3)
    sl, sc = sk_dbscan(x[:, None], 0.3, 3)
    np.testing.assert_array_equal(labels, sl)
    np.testing.assert_array_equal(np.flatnonzero(core), sc)


def _clustered(n, seed):
    rng = np.random.default_rng(seed)
    k = max(n // 200, 1)
    centres = rng.uniform(0, 50_000, size=(k, 2))
    sizes = rng.multinomial(int(0.8 * n), np.full(k, 1 / k))
    spread = rng.uniform(100, 2_000, size=k)
    pts = (
        np.repeat(centres, sizes, axis=0)
        + rng.normal(size=(sizes.sum(), 2)) * np.repeat(spread, sizes)[:, None]
    )
    bg = rng.uniform(0, 50_000, size=(n - sizes.sum(), 2))
    X = np.round(np.concatenate([pts, bg])) + 3.0e6
    return X[rng.permutation(n)]


@pytest.mark.parametrize("n", [1_000, 20_000, 100_000])
def test_clustered_sets_match_sklearn(n):
    X = _clustered(n, seed=n)
    labels, core = dbscan_labels(X, 250.0, 5)
    sl, sc = sk_dbscan(X, 250.0, 5)
    np.testing.assert_array_equal(labels, sl)
    np.testing.assert_array_equal(np.flatnonzero(core), sc)
    if n <= 20_000:
        rl, rc = ref_dbscan(X, 250.0, 5)
        np.testing.assert_array_equal(labels, rl)
        np.testing.assert_array_equal(core, rc)


def test_same_result_for_1_and_2_threads(monkeypatch):
    # small inputs normally run on one thread; lower the threshold so 2 threads are used
    monkeypatch.setattr(threads_mod, "POINTS_PER_THREAD", 1_000)
    X = _clustered(50_000, seed=11)
    old = numba.get_num_threads()
    seen = []
    orig = kern.core_flags

    def spy(*args):
        seen.append(numba.get_num_threads())
        return orig(*args)

    monkeypatch.setattr(kern, "core_flags", spy)
    try:
        out = []
        for k in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(k)
            out.append(dbscan_labels(X, 300.0, 6))  # n_jobs=None: one thread
            out.append(dbscan_labels(X, 300.0, 6, n_jobs=k))
            out.append(dbscan_labels(X, 300.0, 6, sample_weight=np.full(X.shape[0], 0.5), n_jobs=k))
    finally:
        numba.set_num_threads(old)
    assert max(seen) == min(2, numba.config.NUMBA_NUM_THREADS)
    for i, (labels, core) in enumerate(out):
        ref = out[0] if i % 3 < 2 else out[2]
        np.testing.assert_array_equal(labels, ref[0])
        np.testing.assert_array_equal(core, ref[1])
    assert numba.get_num_threads() == old


def test_counting_sort_kernel_is_a_stable_argsort():
    rng = np.random.default_rng(2)
    keys = rng.integers(0, 500, size=5_000).astype(np.int64)
    x, y, w = rng.normal(size=(3, 5_000))
    order, xs, ys, ws, cell_start, cell_key, dense_map = kern.counting_sort(
        keys, 500, x, y, w, True
    )
    np.testing.assert_array_equal(order, np.argsort(keys, kind="stable"))
    for a, b in ((xs, x), (ys, y), (ws, w)):
        np.testing.assert_array_equal(a, b[order])
    np.testing.assert_array_equal(cell_key, np.unique(keys))
    np.testing.assert_array_equal(np.diff(cell_start), np.bincount(keys)[cell_key])
    assert (dense_map[cell_key] == np.arange(cell_key.size)).all()
    assert (np.delete(dense_map[:500], cell_key) == -1).all()


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
GOOD = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"X": [[0.0, np.nan], [1.0, 1.0]]}, "NaN"),
        ({"X": [[0.0, np.inf], [1.0, 1.0]]}, "infinity"),
        ({"X": [[0.0, -np.inf], [1.0, 1.0]]}, "infinity"),
        ({"X": [0.0, 1.0, 2.0]}, "2D array"),
        ({"X": np.zeros((3, 2, 2))}, "dim"),
        ({"X": np.zeros((4, 3))}, "2-D Euclidean points only"),
        ({"X": np.zeros((0, 2))}, "0 sample"),
        ({"eps": 0.0}, "eps must be a positive"),
        ({"eps": -1.0}, "eps must be a positive"),
        ({"eps": np.nan}, "eps must be a positive"),
        ({"eps": np.inf}, "eps must be a positive"),
        ({"min_samples": 0}, "min_samples must be an integer >= 1"),
        ({"min_samples": 2.5}, "min_samples must be an integer >= 1"),
        ({"sample_weight": [1.0, -0.5, 1.0]}, "sample_weight must be non-negative"),
        ({"sample_weight": [1.0, np.nan, 1.0]}, "sample_weight contains NaN"),
        ({"sample_weight": [1.0, 1.0]}, "sample_weight"),
        ({"n_jobs": 0}, "n_jobs"),
    ],
)
def test_bad_input_function(kwargs, match):
    args = {"X": GOOD, "eps": 1.0, "min_samples": 2, **kwargs}
    X = args.pop("X")
    with pytest.raises(ValueError, match=match):
        dbscan_labels(X, **args)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"eps": 0.0}, "eps"),
        ({"eps": -2.0}, "eps"),
        ({"min_samples": 0}, "min_samples"),
        ({"metric": "manhattan"}, "sklearn.cluster.DBSCAN"),
    ],
)
def test_bad_input_estimator(params, match):
    with pytest.raises(ValueError, match=match):
        DBSCAN(**params).fit(GOOD)


def test_negative_weights_estimator():
    with pytest.raises(ValueError, match="non-negative.*index 1"):
        DBSCAN(eps=1.0, min_samples=2).fit(GOOD, sample_weight=[1, -1, 1])


def test_eps_too_small_for_extent():
    X = np.array([[0.0, 0.0], [1e300, 1e300]])
    with pytest.raises(ValueError, match="too small for the extent"):
        dbscan_labels(X, 1e-300, 2)
