"""How many numba threads a clustering call uses, counted as scikit-learn counts jobs.

Used by the DBSCAN entry points (:mod:`~pari_geo.clustering.estimator`,
:mod:`~pari_geo.clustering.partitioned`) and by the Monte Carlo simulations of
:mod:`~pari_geo.clustering.actors`. The result of a clustering never depends on it.

Examples
--------
>>> resolve_threads(1)
1
>>> with numba_threads(-1, n_samples=10):   # small inputs run on one thread
...     pass
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["POINTS_PER_THREAD", "resolve_threads", "numba_threads"]

#: At most one numba thread per this many points: starting a parallel region costs more
#: than it saves on small inputs (and much more on a busy machine).
POINTS_PER_THREAD = 200_000


def resolve_threads(n_jobs: int | None) -> int:
    """Number of numba threads for ``n_jobs``, as scikit-learn counts jobs.

    ``None`` is one thread (unless inside a ``joblib.parallel_config(n_jobs=...)``
    context, as in scikit-learn), ``-1`` all threads, ``-2`` all but one; capped at
    ``numba.config.NUMBA_NUM_THREADS``.

    Raises
    ------
    ValueError
        For ``0``, a bool or a non-integer.
    """
    import numba
    from joblib import effective_n_jobs

    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0
    ):
        raise ValueError(f"n_jobs must be None, a positive integer or -1, -2, ...; got {n_jobs!r}")
    maxt = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    k = effective_n_jobs(None if n_jobs is None else int(n_jobs))
    return max(1, min(int(k), maxt))


@contextmanager
def numba_threads(n_jobs: int | None, n_samples: int) -> Iterator[None]:
    """Run the block with :func:`resolve_threads` numba threads, but never more than one
    thread per :data:`POINTS_PER_THREAD` points; the previous count is restored after."""
    import numba

    k = resolve_threads(n_jobs)
    cur = numba.get_num_threads()
    k = max(1, min(k, n_samples // POINTS_PER_THREAD))
    if k == cur:
        yield
        return
    numba.set_num_threads(k)
    try:
        yield
    finally:
        numba.set_num_threads(cur)
