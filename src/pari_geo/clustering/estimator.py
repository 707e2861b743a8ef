"""Exact DBSCAN for projected 2-D points: a scikit-learn estimator and a plain function.

The result is array-for-array the one of ``sklearn.cluster.DBSCAN(eps, min_samples)``
with the Euclidean metric: same core points, same noise, same cluster numbers (clusters
are numbered in the order of their smallest core-point index) and the same border
assignment (a border point joins the lowest-numbered cluster among the clusters of the
core points within ``eps`` of it). A point at distance exactly ``eps`` is a neighbour.

The computation runs in numba kernels (:mod:`pari_geo.clustering._kernels`, called in
order by :mod:`pari_geo.clustering.driver`) over a uniform grid of cells of side just
under ``eps / sqrt(2)``; it needs O(n) memory and never builds neighbour lists.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_array, validate_data

from .driver import dbscan_xy
from .threads import numba_threads

__all__ = ["DBSCAN", "dbscan", "dbscan_labels", "check_params"]

_SKLEARN_HINT = "use sklearn.cluster.DBSCAN for other metrics or dimensions"


def check_params(eps: Any, min_samples: Any) -> tuple[float, int]:
    """Validated ``(eps, min_samples)`` of a DBSCAN: a positive finite float and an
    integer >= 1 (``ValueError`` otherwise); shared with
    :func:`~pari_geo.clustering.partitioned.dbscan_partitioned`.

    Examples
    --------
    >>> check_params(500, 5)
    (500.0, 5)
    """
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise ValueError(f"eps must be a positive finite number; got {eps!r}")
    eps = float(eps)
    if not (math.isfinite(eps) and eps > 0.0):
        raise ValueError(f"eps must be a positive finite number; got {eps!r}")
    if isinstance(min_samples, bool) or not isinstance(min_samples, numbers.Integral):
        raise ValueError(f"min_samples must be an integer >= 1; got {min_samples!r}")
    if min_samples < 1:
        raise ValueError(f"min_samples must be an integer >= 1; got {min_samples!r}")
    return eps, int(min_samples)


def _check_points(X):
    """Validated float64 coordinates as two contiguous 1-D arrays."""
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array of shape (n_samples, 2); got shape {X.shape}")
    d = X.shape[1]
    if d == 2:
        return np.ascontiguousarray(X[:, 0]), np.ascontiguousarray(X[:, 1])
    if d == 1:
        x = np.ascontiguousarray(X[:, 0])
        return x, np.zeros_like(x)
    raise ValueError(
        f"pari_geo DBSCAN handles 2-D Euclidean points only (projected coordinates, "
        f"shape (n_samples, 2)); got {d} features: {_SKLEARN_HINT}"
    )


def _check_weights(sample_weight, X):
    if sample_weight is None:
        return None
    w = _check_sample_weight(sample_weight, X, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinite values")
    neg = np.flatnonzero(w < 0)
    if neg.size:
        raise ValueError(
            f"sample_weight must be non-negative; {neg.size} negative value(s), first at "
            f"index {neg[0]} ({w[neg[0]]!r})"
        )
    return np.ascontiguousarray(w)


def dbscan_labels(
    X: ArrayLike,
    eps: float,
    min_samples: int = 5,
    *,
    sample_weight: ArrayLike | None = None,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact DBSCAN of 2-D points as ``(labels, core_mask)``.

    The same clustering as :func:`dbscan` (scikit-learn's Euclidean DBSCAN) returned the
    way pari_geo's pipeline uses it: one label and one core flag per point.

    Parameters
    ----------
    X : array-like of shape (n_samples, 2)
        Point coordinates in a projected CRS (for example metres). A single column is
        accepted and treated as points on a line.
    eps : float
        Neighbourhood radius, in the units of ``X``. Points at distance ``<= eps`` are
        neighbours (inclusive, as in scikit-learn).
    min_samples : int, default=5
        A point is a core point when the number of points within ``eps`` of it, itself
        included, is at least ``min_samples`` (with ``sample_weight``: their total
        weight).
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weight of each point (negative weights raise ``ValueError``).
    n_jobs : int, optional
        Number of numba threads, counted as in scikit-learn: ``None`` is 1 (unless inside
        a ``joblib.parallel_config`` context), ``-1`` all threads, ``-2`` all but one. At
        most one thread per 200 000 points is used (parallel start-up costs more than it
        saves on small inputs). The result does not depend on it.

    Returns
    -------
    labels : ndarray of shape (n_samples,), dtype intp
        Cluster number of each point, ``-1`` for noise.
    core_mask : ndarray of shape (n_samples,), dtype bool
        True for core points.

    Raises
    ------
    ValueError
        For NaN or infinite coordinates, a wrong shape, more than two features,
        ``eps <= 0``, ``min_samples < 1`` or negative weights.

    See Also
    --------
    dbscan : the same with scikit-learn's return value ``(core_sample_indices, labels)``.
    DBSCAN : the scikit-learn estimator interface.
    sklearn.cluster.DBSCAN : any metric and dimension (much slower on large inputs).

    Notes
    -----
    Distances are compared as ``dx * dx + dy * dy <= eps * eps`` in float64, the quantity
    scikit-learn's KD-tree compares, so ties at exactly ``eps`` resolve as there. With
    fewer than 12 points scikit-learn switches to a brute-force distance formula
    (``|x|^2 - 2 x.y + |y|^2``) that rounds differently, so a pair within a few ulps of
    ``eps`` may then differ. Weighted sums are accumulated in a different order than
    scikit-learn's, which only matters when a sum of non-dyadic weights rounds onto
    ``min_samples``.

    Examples
    --------
    >>> import numpy as np
    >>> from pari_geo.clustering import dbscan_labels
    >>> X = np.array([[0.0, 0.0], [0.0, 100.0], [100.0, 0.0], [5000.0, 5000.0]])
    >>> labels, core = dbscan_labels(X, eps=100.0, min_samples=3)
    >>> labels
    array([ 0,  0,  0, -1])
    >>> core
    array([ True, False, False, False])
    """
    eps, min_samples = check_params(eps, min_samples)
    pts = _dense(check_array(X, accept_sparse="csr", dtype=np.float64, ensure_2d=True,
                             ensure_min_samples=1, input_name="X"))
    w = _check_weights(sample_weight, pts)
    x, y = _check_points(pts)
    with numba_threads(n_jobs, pts.shape[0]):
        return dbscan_xy(x, y, w, eps, min_samples)


def dbscan(
    X: ArrayLike,
    eps: float = 0.5,
    *,
    min_samples: int = 5,
    metric: str = "minkowski",
    metric_params: dict | None = None,
    algorithm: str = "auto",
    leaf_size: int = 30,
    p: float | None = 2,
    sample_weight: ArrayLike | None = None,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact DBSCAN of 2-D points with the contract of ``sklearn.cluster.dbscan``.

    Same signature, defaults and return value as scikit-learn's function, restricted to
    the Euclidean metric (``"euclidean"``, or ``"minkowski"`` with ``p=2``, the default)
    on one- or two-dimensional points; the result is array for array scikit-learn's.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_samples, 2)
        Point coordinates in a projected CRS (for example metres); one column is points on
        a line.
    eps : float, default=0.5
        Neighbourhood radius (inclusive: distance ``<= eps`` is a neighbour).
    min_samples : int, default=5
        Points (or total ``sample_weight``) within ``eps``, the point itself included, that
        make a core point.
    metric : {"minkowski", "euclidean"}, default="minkowski"
        Only Euclidean distances are implemented (``"minkowski"`` needs ``p=2``).
    metric_params : None
        Must be ``None`` (kept for scikit-learn's signature).
    algorithm : {"auto", "ball_tree", "kd_tree", "brute"}, default="auto"
        Accepted for scikit-learn's signature; the grid index is always used and the
        result does not depend on it (as in scikit-learn).
    leaf_size : int, default=30
        Accepted for scikit-learn's signature (must be >= 1); no effect.
    p : float, default=2
        Minkowski power; only 2 (or ``None`` with ``metric="euclidean"``).
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weight of each point.
    n_jobs : int, optional
        Numba threads as scikit-learn counts jobs: ``None`` is 1, ``-1`` all.

    Returns
    -------
    core_samples : ndarray of shape (n_core_samples,)
        Indices of the core points, increasing.
    labels : ndarray of shape (n_samples,)
        Cluster number of each point, ``-1`` for noise.

    Raises
    ------
    ValueError
        Other metrics, ``p`` or ``metric_params``, an unknown ``algorithm``,
        ``leaf_size < 1``, more than two features, NaN/infinite coordinates,
        ``eps <= 0``, ``min_samples < 1`` or negative weights.

    See Also
    --------
    dbscan_labels : the same clustering as ``(labels, core_mask)``.
    DBSCAN : the scikit-learn estimator interface.
    sklearn.cluster.dbscan : any metric and dimension.

    Examples
    --------
    >>> import numpy as np
    >>> from pari_geo.clustering import dbscan
    >>> X = np.array([[0.0, 0.0], [0.0, 100.0], [100.0, 0.0], [5000.0, 5000.0]])
    >>> core_samples, labels = dbscan(X, eps=100.0, min_samples=3)
    >>> core_samples
    array([0])
    >>> labels
    array([ 0,  0,  0, -1])
    """
    _check_sklearn_options(metric, metric_params, algorithm, leaf_size, p)
    labels, core = dbscan_labels(
        X, eps, min_samples, sample_weight=sample_weight, n_jobs=n_jobs
    )
    return np.flatnonzero(core), labels


_ALGORITHMS = ("auto", "ball_tree", "kd_tree", "brute")


def _check_sklearn_options(metric, metric_params, algorithm, leaf_size, p):
    """Refuse the options of scikit-learn's DBSCAN that pari_geo does not compute."""
    euclid = isinstance(metric, str) and (
        (metric == "euclidean" and p in (None, 2)) or (metric == "minkowski" and p == 2)
    )
    if not euclid:
        raise ValueError(
            f"pari_geo DBSCAN computes Euclidean distances only (metric='euclidean', or "
            f"'minkowski' with p=2); got metric={metric!r}, p={p!r}: {_SKLEARN_HINT}"
        )
    if metric_params is not None:
        raise ValueError(f"metric_params must be None; got {metric_params!r}: {_SKLEARN_HINT}")
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(_ALGORITHMS)}; got {algorithm!r}")
    if isinstance(leaf_size, bool) or not isinstance(leaf_size, numbers.Integral) or leaf_size < 1:
        raise ValueError(f"leaf_size must be an integer >= 1; got {leaf_size!r}")


def _dense(X: Any) -> np.ndarray:
    """A dense float64 array of validated (possibly sparse) 2-D coordinates."""
    return np.asarray(X.toarray() if hasattr(X, "toarray") else X)


class DBSCAN(ClusterMixin, BaseEstimator):
    """Exact DBSCAN of 2-D projected points, identical to ``sklearn.cluster.DBSCAN``.

    A drop-in for ``sklearn.cluster.DBSCAN(eps, min_samples)`` with the Euclidean metric
    on two-dimensional data: ``labels_`` and ``core_sample_indices_`` are equal array for
    array, computed with a grid index in numba with O(n) memory.

    Parameters
    ----------
    eps : float, default=0.5
        Neighbourhood radius in the units of ``X`` (inclusive).
    min_samples : int, default=5
        Number of points (or total weight) within ``eps``, the point itself included,
        that makes a core point.
    metric : {"euclidean", "minkowski"}, default="euclidean"
        Only Euclidean distances are implemented (``"minkowski"`` with ``p=2``); for
        others use ``sklearn.cluster.DBSCAN``.
    metric_params : None
        Must be ``None`` (scikit-learn's parameter, kept for drop-in use).
    algorithm : {"auto", "ball_tree", "kd_tree", "brute"}, default="auto"
        Accepted as in scikit-learn; the grid index is always used, with the same result.
    leaf_size : int, default=30
        Accepted as in scikit-learn; no effect.
    p : float, default=None
        Minkowski power: ``None`` or 2.
    n_jobs : int, default=None
        Number of numba threads, counted as in scikit-learn (``None``: 1, ``-1``: all).
        The result does not depend on it.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster number of each point; noise is ``-1``.
    core_sample_indices_ : ndarray of shape (n_core_samples,)
        Indices of the core points, increasing.
    components_ : ndarray of shape (n_core_samples, n_features)
        Coordinates of the core points.
    n_features_in_ : int
        Number of features seen during ``fit`` (2, or 1 for points on a line).

    See Also
    --------
    dbscan : the same as a plain function.
    sklearn.cluster.DBSCAN : any metric and dimension.

    Notes
    -----
    Equality with scikit-learn holds exactly against its KD-tree neighbour search, which
    it uses from 12 points on. Below 12 points scikit-learn switches to a brute-force
    distance formula that rounds differently, so pairs within a few ulps of ``eps`` may
    then be classified differently (pari_geo keeps the exact comparison
    ``dx * dx + dy * dy <= eps * eps``). See :func:`dbscan` for the weights caveat.

    Examples
    --------
    >>> import numpy as np
    >>> from pari_geo.clustering import DBSCAN
    >>> X = np.array([[0, 0], [0, 300], [300, 0], [2000, 2000], [2000, 2300],
    ...               [2300, 2000], [9000, 0]], dtype=float)
    >>> model = DBSCAN(eps=300, min_samples=3).fit(X)
    >>> model.labels_
    array([ 0,  0,  0,  1,  1,  1, -1])
    >>> model.core_sample_indices_
    array([0, 3])
    >>> model.components_
    array([[   0.,    0.],
           [2000., 2000.]])
    """

    _parameter_constraints: dict = {
        "eps": [Interval(numbers.Real, 0.0, None, closed="neither")],
        "min_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "metric": [str],
        "metric_params": [None],
        "algorithm": [StrOptions(set(_ALGORITHMS))],
        "leaf_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "p": [Interval(numbers.Real, 0.0, None, closed="left"), None],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(
        self,
        eps: float = 0.5,
        min_samples: int = 5,
        *,
        metric: str = "euclidean",
        metric_params: dict | None = None,
        algorithm: str = "auto",
        leaf_size: int = 30,
        p: float | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.eps = eps
        self.min_samples = min_samples
        self.metric = metric
        self.metric_params = metric_params
        self.algorithm = algorithm
        self.leaf_size = leaf_size
        self.p = p
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):  # noqa: D105 - scikit-learn's tag protocol
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # sparse 2-D coordinates are densified
        return tags

    def _check_metric(self) -> None:
        _check_sklearn_options(
            self.metric, self.metric_params, self.algorithm, self.leaf_size, self.p
        )

    def fit(self, X: ArrayLike, y: None = None, sample_weight: ArrayLike | None = None) -> DBSCAN:
        """Cluster the points ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, 2)
            Point coordinates (projected, e.g. metres).
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative point weights.

        Returns
        -------
        self : DBSCAN
            The fitted estimator.

        Examples
        --------
        >>> from pari_geo.clustering import DBSCAN
        >>> DBSCAN(eps=1.0, min_samples=2).fit([[0, 0], [0, 1], [5, 5]]).labels_
        array([ 0,  0, -1])
        """
        self._check_metric()
        self._validate_params()
        eps, min_samples = check_params(self.eps, self.min_samples)
        pts = _dense(validate_data(self, X, accept_sparse="csr", dtype=np.float64,
                                   ensure_min_samples=1))
        w = _check_weights(sample_weight, pts)
        x, yy = _check_points(pts)
        with numba_threads(self.n_jobs, pts.shape[0]):
            labels, core = dbscan_xy(x, yy, w, eps, min_samples)
        self.labels_ = labels
        self.core_sample_indices_ = np.flatnonzero(core)
        self.components_ = pts[self.core_sample_indices_].copy()
        return self

    def fit_predict(
        self, X: ArrayLike, y: None = None, sample_weight: ArrayLike | None = None
    ) -> np.ndarray:
        """Cluster ``X`` and return the labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, 2)
            Point coordinates.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative point weights.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster numbers, ``-1`` for noise.

        Examples
        --------
        >>> from pari_geo.clustering import DBSCAN
        >>> DBSCAN(eps=1.0, min_samples=1).fit_predict([[0, 0], [3, 0]])
        array([0, 1])
        """
        self.fit(X, sample_weight=sample_weight)
        return self.labels_
