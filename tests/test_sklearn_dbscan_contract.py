"""``pari_geo.dbscan`` / ``DBSCAN`` keep scikit-learn's contract for the same names.

The cases are those of scikit-learn's own DBSCAN tests that use 1-D or 2-D Euclidean data
(``sklearn/cluster/tests/test_dbscan.py``), written here against pari_geo, each also
compared with scikit-learn's answer on the same data.
"""

from __future__ import annotations

import pickle

import numba
import numpy as np
import pytest
import sklearn.cluster
from joblib import parallel_config
from scipy import sparse

import pari_geo
import pari_geo.clustering.threads as threads_mod
from pari_geo.clustering import DBSCAN, dbscan, dbscan_labels


def clustered(seed=0, n_per_cluster=20, std=0.1):
    """Three tight 2-D Gaussian clusters around (11, 11), (9, 9) and (11, 9)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]]) + 10.0
    return np.vstack([c + std * rng.standard_normal((n_per_cluster, 2)) for c in centres])


X3 = clustered()
EPS, MIN_SAMPLES = 0.15, 10


def n_clusters(labels):
    return len(set(labels.tolist()) - {-1})


def assert_like_sklearn(X, **kw):
    core, labels = dbscan(X, **kw)
    sk_core, sk_labels = sklearn.cluster.dbscan(X, **kw)
    np.testing.assert_array_equal(core, sk_core)
    np.testing.assert_array_equal(labels, sk_labels)
    return core, labels


def test_top_level_name_is_the_sklearn_contract():
    assert pari_geo.dbscan is dbscan
    core, labels = dbscan([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [10.0, 10.0]], eps=1.0,
                          min_samples=3)
    assert core.tolist() == [0] and labels.tolist() == [0, 0, 0, -1]


def test_min_samples_is_keyword_only_as_in_sklearn():
    # a call in the old (labels, core_mask) style fails loudly instead of unpacking wrong
    with pytest.raises(TypeError):
        dbscan(X3, 0.15, 10)


def test_similarity_three_clusters():
    core, labels = assert_like_sklearn(X3, eps=EPS, min_samples=MIN_SAMPLES)
    assert n_clusters(labels) == 3
    model = DBSCAN(eps=EPS, min_samples=MIN_SAMPLES).fit(X3)
    assert n_clusters(model.labels_) == 3
    np.testing.assert_array_equal(model.core_sample_indices_, core)


@pytest.mark.parametrize("metric", ["euclidean", "minkowski"])
def test_feature_metrics(metric):
    _, labels = assert_like_sklearn(X3, eps=EPS, min_samples=MIN_SAMPLES, metric=metric)
    assert n_clusters(labels) == 3


def test_sparse_input_gives_the_dense_result():
    core_d, labels_d = dbscan(X3, eps=0.8, min_samples=10)
    core_s, labels_s = dbscan(sparse.csr_matrix(X3), eps=0.8, min_samples=10)
    np.testing.assert_array_equal(core_d, core_s)
    np.testing.assert_array_equal(labels_d, labels_s)
    model = DBSCAN(eps=0.8, min_samples=10).fit(sparse.csr_matrix(X3))
    np.testing.assert_array_equal(model.labels_, labels_d)


def test_input_not_modified():
    X = np.random.default_rng(0).random((10, 2))
    before = X.copy()
    dbscan(X)
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("as_sparse", [False, True])
def test_no_core_samples(as_sparse):
    X = np.random.default_rng(0).random((40, 2))
    X[X < 0.8] = 0
    X = sparse.csr_matrix(X) if as_sparse else X
    model = DBSCAN(min_samples=41).fit(X)
    assert model.core_sample_indices_.shape == (0,)
    np.testing.assert_array_equal(model.labels_, np.full(40, -1))
    assert model.components_.shape == (0, 2)


@pytest.mark.parametrize(
    "kw",
    [{"algorithm": "ball_tree"}, {"algorithm": "kd_tree"}, {"algorithm": "brute"},
     {"algorithm": "auto", "leaf_size": 1}, {"algorithm": "kd_tree", "leaf_size": 5},
     {"metric": "minkowski", "p": 2}],
)
def test_algorithms_and_leaf_sizes_give_the_same_clusters(kw):
    _, labels = assert_like_sklearn(X3, eps=EPS, min_samples=MIN_SAMPLES, **kw)
    assert n_clusters(labels) == 3
    assert n_clusters(DBSCAN(eps=EPS, min_samples=MIN_SAMPLES, **kw).fit(X3).labels_) == 3


def test_input_validation_accepts_lists():
    DBSCAN().fit([[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize(
    "kw",
    [{"eps": -1.0}, {"eps": 0.0}, {"min_samples": 0}, {"min_samples": 1.5},
     {"algorithm": "blah"}, {"metric": "blah"}, {"leaf_size": -1}, {"leaf_size": 0},
     {"p": -1}, {"metric": "minkowski", "p": 1}, {"metric_params": {"p": 2}}],
)
def test_bad_arguments_raise_value_error(kw):
    with pytest.raises(ValueError):
        dbscan(X3, **kw)
    with pytest.raises(ValueError):
        DBSCAN(**kw).fit(X3)


def test_pickle_round_trip():
    model = DBSCAN(eps=EPS, min_samples=MIN_SAMPLES).fit(X3)
    again = pickle.loads(pickle.dumps(model))
    assert type(again) is DBSCAN
    np.testing.assert_array_equal(again.labels_, model.labels_)
    assert again.get_params() == model.get_params()


def test_same_parameters_as_sklearn_estimator():
    assert set(DBSCAN().get_params()) == set(sklearn.cluster.DBSCAN().get_params())
    assert DBSCAN().get_params() == sklearn.cluster.DBSCAN().get_params()


def test_boundaries_are_inclusive():
    core, _ = dbscan([[0.0], [1.0]], eps=2, min_samples=2)
    assert 0 in core
    core, _ = dbscan([[0.0], [1.0]], eps=1, min_samples=2)
    assert 0 in core
    core, _ = dbscan([[0.0], [1.0]], eps=0.99, min_samples=2)
    assert 0 not in core


def test_weighted_core_points():
    X = [[0.0], [1.0]]
    assert dbscan(X, sample_weight=None, min_samples=6)[0].tolist() == []
    assert dbscan(X, sample_weight=[3, 3], min_samples=6)[0].tolist() == []
    assert dbscan(X, sample_weight=[6, 5], min_samples=6)[0].tolist() == [0]
    assert dbscan(X, sample_weight=[6, 6], min_samples=6)[0].tolist() == [0, 1]
    # points within eps add their weights
    assert dbscan(X, eps=1.5, sample_weight=[5, 1], min_samples=6)[0].tolist() == [0, 1]
    assert dbscan(X, eps=1.5, sample_weight=[6, 0], min_samples=6)[0].tolist() == [0, 1]
    # a weight mismatch is refused
    with pytest.raises(ValueError):
        dbscan(X, sample_weight=[1], min_samples=6)


def test_weights_equal_repeated_points():
    rng = np.random.default_rng(42)
    X = rng.standard_normal((150, 2))
    w = rng.integers(0, 5, 150)
    core_w, labels_w = dbscan(X, sample_weight=w)
    core_r, labels_r = dbscan(np.repeat(X, w, axis=0))
    # a point repeated w times is core like the weighted point
    first = np.concatenate([[0], np.cumsum(w)[:-1]])[w > 0]
    core_mask_r = np.zeros(len(labels_r), bool)
    core_mask_r[core_r] = True
    np.testing.assert_array_equal(np.flatnonzero(w > 0)[core_mask_r[first]],
                                  np.intersect1d(core_w, np.flatnonzero(w > 0)))
    # the estimator, fit and fit_predict, agree with the function
    model = DBSCAN()
    np.testing.assert_array_equal(model.fit(X, sample_weight=w).labels_, labels_w)
    np.testing.assert_array_equal(model.fit_predict(X, sample_weight=w), labels_w)
    np.testing.assert_array_equal(model.core_sample_indices_, core_w)
    sk_core, sk_labels = sklearn.cluster.dbscan(X, sample_weight=w)
    np.testing.assert_array_equal(core_w, sk_core)
    np.testing.assert_array_equal(labels_w, sk_labels)


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree", "ball_tree"])
def test_core_samples_toy(algorithm):
    X = [[0.0], [2.0], [3.0], [4.0], [6.0], [8.0], [10.0]]
    expected = {
        1: (list(range(7)), [0, 1, 1, 1, 2, 3, 4]),
        2: ([1, 2, 3], [-1, 0, 0, 0, -1, -1, -1]),
        3: ([2], [-1, 0, 0, 0, -1, -1, -1]),
        4: ([], [-1] * 7),
    }
    for min_samples, (core_ref, labels_ref) in expected.items():
        core, labels = assert_like_sklearn(X, eps=1, min_samples=min_samples,
                                           algorithm=algorithm)
        assert core.tolist() == core_ref
        assert labels.tolist() == labels_ref


def test_dbscan_labels_is_the_same_clustering():
    labels, core_mask = dbscan_labels(X3, EPS, MIN_SAMPLES)
    core, sk_labels = dbscan(X3, eps=EPS, min_samples=MIN_SAMPLES)
    np.testing.assert_array_equal(labels, sk_labels)
    np.testing.assert_array_equal(np.flatnonzero(core_mask), core)


def _threads_used(monkeypatch, call):
    monkeypatch.setattr(threads_mod, "POINTS_PER_THREAD", 1)
    seen = []
    from pari_geo.clustering import _kernels as kern

    core_flags = kern.core_flags

    def spy(*args):
        seen.append(numba.get_num_threads())
        return core_flags(*args)

    monkeypatch.setattr(kern, "core_flags", spy)
    call()
    return seen[-1]


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_n_jobs_counts_as_in_sklearn(monkeypatch):
    # None is one thread (sklearn: 1 unless a joblib context says otherwise), -1 all
    assert _threads_used(monkeypatch, lambda: dbscan(X3)) == 1
    assert _threads_used(monkeypatch, lambda: dbscan(X3, n_jobs=2)) == 2
    assert _threads_used(monkeypatch, lambda: dbscan(X3, n_jobs=-1)) == min(
        numba.config.NUMBA_NUM_THREADS, __import__("joblib").cpu_count()
    )
    assert _threads_used(monkeypatch, lambda: DBSCAN(n_jobs=None).fit(X3)) == 1
    with parallel_config(n_jobs=2):
        assert _threads_used(monkeypatch, lambda: dbscan(X3)) == 2
