"""Density clustering of actors: exact DBSCAN for projected 2-D points.

:class:`DBSCAN` (a scikit-learn estimator) and :func:`dbscan` (a plain function) give
exactly the result of ``sklearn.cluster.DBSCAN`` with the Euclidean metric, computed by
numba kernels on a grid index. Importing this package does not compile anything.

Examples
--------
>>> from pari_geo.clustering import dbscan
>>> labels, core = dbscan([[0, 0], [0, 1], [1, 0], [10, 10]], eps=1.0, min_samples=3)
>>> labels.tolist(), core.tolist()
([0, 0, 0, -1], [True, False, False, False])
"""

from .estimator import DBSCAN, dbscan

__all__ = ["DBSCAN", "dbscan"]
