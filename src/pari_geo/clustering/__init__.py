"""Density clustering of actors: exact DBSCAN for projected 2-D points.

:class:`DBSCAN` (a scikit-learn estimator) and :func:`dbscan` (a plain function) give
exactly the result of ``sklearn.cluster.DBSCAN`` with the Euclidean metric, computed by
numba kernels on a grid index. Importing this package does not compile anything.

:func:`dbscan` keeps the contract of ``sklearn.cluster.dbscan`` (returns
``(core_sample_indices, labels)``); :func:`dbscan_labels` returns ``(labels, core_mask)``.
``n_jobs`` counts as in scikit-learn (``None`` is one thread, ``-1`` all).

Examples
--------
>>> from pari_geo.clustering import dbscan, dbscan_labels
>>> X = [[0, 0], [0, 1], [1, 0], [10, 10]]
>>> core_samples, labels = dbscan(X, eps=1.0, min_samples=3)
>>> core_samples.tolist(), labels.tolist()
([0], [0, 0, 0, -1])
>>> labels, core = dbscan_labels(X, eps=1.0, min_samples=3)
>>> labels.tolist(), core.tolist()
([0, 0, 0, -1], [True, False, False, False])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

__all__ = ["DBSCAN", "dbscan", "dbscan_labels"]

if TYPE_CHECKING:
    from .estimator import DBSCAN, dbscan, dbscan_labels


# Lazy: the estimator imports scikit-learn (about 1.4 s), which the pipeline's own modules in
# this package (options, actors, significance) do not need.
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, ".estimator"), globals())
