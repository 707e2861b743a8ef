"""scikit-learn's estimator checks on :class:`pari_geo.clustering.DBSCAN`.

pari_geo's DBSCAN is two-dimensional by design (projected points; anything else raises a
``ValueError`` pointing to ``sklearn.cluster.DBSCAN``). The scikit-learn checks listed in
``EXPECTED_FAILED`` generate data with 3 to 30 features, so they can only observe that
error. Each of them is re-done below on two-dimensional data (``test_2d_*``), so no
property goes untested.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import sklearn.cluster
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from pari_geo.clustering import DBSCAN

_WHY = (
    "the check fits data with {} features; pari_geo DBSCAN accepts 2-D points only "
    "(ValueError pointing to sklearn.cluster.DBSCAN); the property is tested on 2-D data "
    "in {}"
)
EXPECTED_FAILED = {
    "check_fit_score_takes_y": _WHY.format(3, "test_2d_fit_takes_y"),
    "check_dont_overwrite_parameters": _WHY.format(3, "test_2d_params_untouched"),
    "check_n_features_in_after_fitting": _WHY.format(4, "test_2d_n_features_in"),
    "check_positive_only_tag_during_fit": _WHY.format(3, "test_2d_negative_coordinates"),
    "check_estimators_dtypes": _WHY.format(5, "test_2d_dtypes"),
    "check_sample_weights_list": _WHY.format(3, "test_2d_sample_weight_list"),
    "check_sample_weight_equivalence_on_dense_data": _WHY.format(
        3, "test_2d_sample_weight_equals_repetition"
    ),
    "check_sample_weight_equivalence_on_sparse_data": _WHY.format(
        3, "test_2d_sample_weight_equals_repetition and test_sklearn_dbscan_contract.py "
        "(sparse input)"
    ),
    "check_estimator_sparse_tag": _WHY.format(
        3, "test_sklearn_dbscan_contract.py::test_sparse_input_gives_the_dense_result"
    ),
    "check_estimator_sparse_array": _WHY.format(
        3, "test_sklearn_dbscan_contract.py::test_sparse_input_gives_the_dense_result"
    ),
    "check_estimator_sparse_matrix": _WHY.format(
        3, "test_sklearn_dbscan_contract.py::test_sparse_input_gives_the_dense_result"
    ),
    "check_dtype_object": _WHY.format(10, "test_2d_dtypes"),
    "check_pipeline_consistency": _WHY.format(3, "test_2d_pipeline"),
    "check_estimators_nan_inf": _WHY.format(3, "test_2d_nan_inf"),
    "check_estimators_pickle": _WHY.format(3, "test_2d_pickle"),
    "check_f_contiguous_array_estimator": _WHY.format(3, "test_2d_layouts"),
    "check_methods_sample_order_invariance": _WHY.format(3, "test_2d_sample_order"),
    "check_methods_subset_invariance": _WHY.format(3, "test_2d_sample_order"),
    "check_fit2d_1sample": _WHY.format(10, "test_2d_one_sample"),
    "check_dict_unchanged": _WHY.format(3, "test_2d_params_untouched"),
    "check_fit2d_predict1d": _WHY.format(3, "test_2d_layouts"),
    "check_array_api_input": _WHY.format(10, "test_2d_layouts (numpy arrays only)"),
}


@parametrize_with_checks([DBSCAN()], expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_compatible(estimator, check, monkeypatch):
    # scikit-learn skips its array-API input check unless SCIPY_ARRAY_API=1; with the
    # variable set the check runs (and is an expected failure above) instead of a skip.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


# --------------------------------------------------------------------------------------
# the same properties on 2-D data
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(n_samples=300, centers=4, cluster_std=0.6, random_state=3)
    return X


def _assert_same(a, b):
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.core_sample_indices_, b.core_sample_indices_)
    np.testing.assert_array_equal(a.components_, b.components_)


def _sk(X, eps=0.5, min_samples=5, sample_weight=None):
    est = sklearn.cluster.DBSCAN(eps=eps, min_samples=min_samples)
    return est.fit(X, sample_weight=sample_weight)


def test_2d_fit_takes_y(blobs):
    y = np.arange(blobs.shape[0])
    _assert_same(DBSCAN().fit(blobs, y), DBSCAN().fit(blobs))
    np.testing.assert_array_equal(DBSCAN().fit_predict(blobs, y), _sk(blobs).labels_)


def test_2d_params_untouched(blobs):
    est = DBSCAN(eps=0.4, min_samples=4, n_jobs=1)
    before = dict(est.__dict__)
    params = est.get_params()
    est.fit(blobs)
    assert est.get_params() == params
    for k, v in before.items():
        assert est.__dict__[k] == v
    added = set(est.__dict__) - set(before)
    assert added == {"labels_", "core_sample_indices_", "components_", "n_features_in_"}


def test_2d_n_features_in(blobs):
    assert DBSCAN().fit(blobs).n_features_in_ == 2
    assert DBSCAN().fit(blobs[:, :1]).n_features_in_ == 1


def test_2d_negative_coordinates(blobs):
    X = blobs - 100.0
    _assert_same(DBSCAN().fit(X), _sk(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, object])
def test_2d_dtypes(dtype):
    X = np.random.default_rng(0).integers(0, 30, size=(200, 2)).astype(dtype)
    ref = _sk(X.astype(np.float64), eps=2.0, min_samples=4)
    got = DBSCAN(eps=2.0, min_samples=4).fit(X)
    np.testing.assert_array_equal(got.labels_, ref.labels_)
    np.testing.assert_array_equal(got.core_sample_indices_, ref.core_sample_indices_)


def test_2d_dtype_strings_rejected():
    with pytest.raises(ValueError):
        DBSCAN().fit(np.array([["a", "b"], ["c", "d"]], dtype=object))


def test_2d_sample_weight_list(blobs):
    w = [1.0] * blobs.shape[0]
    _assert_same(DBSCAN().fit(blobs, sample_weight=w), DBSCAN().fit(blobs))


def test_2d_sample_weight_equals_repetition(blobs):
    rng = np.random.default_rng(1)
    w = rng.integers(1, 4, size=blobs.shape[0])  # no zeros: a weight-0 point still links
    rep = np.repeat(blobs, w, axis=0)
    got = DBSCAN(eps=0.3).fit(blobs, sample_weight=w)
    ref = DBSCAN(eps=0.3).fit(rep)
    # a point repeated k times is core iff the weighted point is
    core_rep = np.zeros(rep.shape[0], bool)
    core_rep[ref.core_sample_indices_] = True
    core_w = np.zeros(blobs.shape[0], bool)
    core_w[got.core_sample_indices_] = True
    np.testing.assert_array_equal(np.repeat(core_w, w), core_rep)
    # same partition of the repeated points
    lab_w = np.repeat(got.labels_, w)
    pairs = {(a, b) for a, b in zip(lab_w, ref.labels_, strict=True)}
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})


def test_2d_pipeline(blobs):
    pipe = make_pipeline(StandardScaler(), DBSCAN(eps=0.3))
    a = pipe.fit_predict(blobs)
    b = clone(pipe).fit_predict(blobs)
    np.testing.assert_array_equal(a, b)
    scaled = StandardScaler().fit_transform(blobs)
    np.testing.assert_array_equal(a, _sk(scaled, eps=0.3).labels_)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_2d_nan_inf(blobs, bad):
    X = blobs.copy()
    X[7, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        DBSCAN().fit(X)


def test_2d_pickle(blobs, tmp_path):
    est = DBSCAN(eps=0.4).fit(blobs)
    est2 = pickle.loads(pickle.dumps(est))
    _assert_same(est, est2)
    path = tmp_path / "X.npy"
    np.save(path, blobs)
    mm = np.load(path, mmap_mode="r")
    _assert_same(DBSCAN(eps=0.4).fit(mm), est)


def test_2d_layouts(blobs):
    ref = DBSCAN(eps=0.4).fit(blobs)
    _assert_same(DBSCAN(eps=0.4).fit(np.asfortranarray(blobs)), ref)
    _assert_same(DBSCAN(eps=0.4).fit(blobs.tolist()), ref)
    with pytest.raises(ValueError, match="2D array"):
        DBSCAN().fit(blobs[:, 0])


def test_2d_sample_order(blobs):
    """Reordering the points permutes the partition (up to cluster renumbering)."""
    perm = np.random.default_rng(5).permutation(blobs.shape[0])
    a = DBSCAN(eps=0.4).fit(blobs)
    b = DBSCAN(eps=0.4).fit(blobs[perm])
    np.testing.assert_array_equal(b.labels_ == -1, a.labels_[perm] == -1)
    pairs = {(x, y) for x, y in zip(a.labels_[perm], b.labels_, strict=True)}
    assert len(pairs) == len({x for x, _ in pairs}) == len({y for _, y in pairs})
    # a subset of whole clusters gives the same clusters
    sub = a.labels_ <= 1
    c = DBSCAN(eps=0.4).fit(blobs[sub])
    np.testing.assert_array_equal(c.labels_, _sk(blobs[sub], eps=0.4).labels_)


def test_2d_one_sample():
    est = DBSCAN(min_samples=1).fit([[3.0, 4.0]])
    np.testing.assert_array_equal(est.labels_, [0])
    np.testing.assert_array_equal(est.core_sample_indices_, [0])
    assert DBSCAN().fit([[3.0, 4.0]]).labels_.tolist() == [-1]


@pytest.mark.parametrize("d", [3, 5])
def test_other_dimensions_point_to_sklearn(d):
    with pytest.raises(ValueError, match=r"2-D.*sklearn\.cluster\.DBSCAN"):
        DBSCAN().fit(np.zeros((10, d)))


@pytest.mark.parametrize("metric", ["manhattan", "cosine", "precomputed"])
def test_other_metrics_point_to_sklearn(blobs, metric):
    with pytest.raises(ValueError, match=r"euclidean.*sklearn\.cluster\.DBSCAN"):
        DBSCAN(metric=metric).fit(blobs)


def test_matches_sklearn_on_blobs(blobs):
    for eps, ms in [(0.2, 3), (0.5, 5), (1.0, 10), (3.0, 1)]:
        _assert_same(DBSCAN(eps=eps, min_samples=ms).fit(blobs), _sk(blobs, eps, ms))
