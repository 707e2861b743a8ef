"""Compile the micro-cluster kernels in a second process while the run does other work.

On an empty numba cache a full run compiles two sets of kernels one after the other: the
typology's (place types, first) and the micro-clusters' (DBSCAN and footprint, when the
ladder starts), each a matter of seconds. :func:`kernel_warmup` starts a child process
that compiles the second set into numba's on-disk cache while the run classifies the
place types on the other core. The child compiles the first three DBSCAN steps; the
run itself, when it reaches the ladder before the child is done
(:meth:`KernelWarmup.wait`), compiles the hidden-cluster test's kernels (the null model's
sampling and the footprint) and, on the child's cached first steps, the DBSCAN's last
one, so that both cores stay busy (on the sample run the typology's kernels take about
3 s to compile, the DBSCAN's about 5 s, the test's about 1 s). The run's first calls then
load the kernels from the cache.

Nothing happens when the cache already holds the kernels, when caching is off
(``PARI_GEO_NUMBA_CACHE=0``, ``NUMBA_DISABLE_JIT=1``) or when the child cannot start: the
run then compiles what it needs itself, as before. The child computes nothing of the
run (a small synthetic point set of its own), so results never depend on it.

Run as ``python -m pari_geo._warmup`` it compiles the DBSCAN kernels in the calling
process (``python -m pari_geo._warmup all``: every micro-cluster kernel).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ._numba import CACHE

__all__ = [
    "KernelWarmup",
    "kernel_warmup",
    "compile_cluster_kernels",
    "compile_dbscan_kernels",
    "compile_significance_kernels",
]

#: seconds the run waits at most for the child before compiling by itself
WAIT_S = 120.0


def _dbscan_dispatchers() -> list[Any]:
    """The numba kernels of the serial DBSCAN a run calls from Python."""
    from .clustering import _kernels as k

    return [k.cell_keys, k.counting_sort, k.cell_boxes, k.core_flags_block,
            k.core_first, k.edge_candidates_block, k.link_masks, k.resolve_maybe_block,
            k.cluster_roots, k.core_labels, k.cell_labels, k.border_labels_block,
            k.scatter_result]  # fmt: skip


def _significance_dispatchers() -> list[Any]:
    """The numba kernels of the hidden-cluster test (besides the DBSCAN) a run calls
    from Python: the null model's sampling and the footprint counts."""
    from .clustering import _footprint_kernels as fk
    from .clustering import _null_kernels as nk

    return [fk.group_members, fk.footprint_expected, nk.sorted_draws_by_segment,
            nk.sorted_search_clipped]


def _cluster_dispatchers() -> list[Any]:
    """The numba kernels a run's micro-cluster stage calls from Python."""
    return _dbscan_dispatchers() + _significance_dispatchers()


def cache_is_filled(dispatchers: list[Any] | None = None) -> bool:
    """True when numba's cache holds an up-to-date entry for every kernel of
    ``dispatchers`` (default :func:`_cluster_dispatchers`: there is nothing to compile
    ahead)."""
    try:
        for disp in dispatchers if dispatchers is not None else _cluster_dispatchers():
            cache = getattr(disp, "_cache", None)
            index = cache._cache_file._load_index() if cache is not None else {}
            if not index:  # missing, or stale (numba checks the source's stamp)
                return False
    except Exception:  # noqa: BLE001 - numba internals moved: assume nothing is cached
        return False
    return True


def _synthetic_run(n_free: int = 4000):
    """A few thousand clustered synthetic points and their null model (seeded)."""
    import numpy as np
    from affine import Affine

    from .clustering import significance as sig

    rng = np.random.default_rng(0)
    centres = rng.uniform(0.0, 20_000.0, (40, 2))
    n_clustered = 3 * n_free // 4
    xy = np.concatenate([
        centres[rng.integers(0, 40, n_clustered)] + rng.normal(0, 250, (n_clustered, 2)),
        rng.uniform(0.0, 20_000.0, (n_free - n_clustered, 2)),
    ])  # fmt: skip
    xy = np.ascontiguousarray(np.clip(xy, 1.0, 19_999.0))
    model = sig.build_null_model(xy, np.zeros(len(xy), dtype=np.int64), None,
                                 population=rng.uniform(0, 50, (80, 80)),
                                 transform=Affine(250.0, 0, 0, 0, -250.0, 20_000.0))  # fmt: skip
    assert model is not None
    return xy, model


#: the scales of the synthetic calls: one where cells are small against the points' spread
#: and one where they are large, so that every branch a run takes is compiled
_EPS = (300.0, 1000.0)


def _synthetic_core_points():
    """Yield ``(eps2, layout, cores)`` of the first two serial DBSCAN steps on the points
    of :func:`_synthetic_run`, once per scale of :data:`_EPS`."""
    import numpy as np

    from .clustering import driver

    xy, _ = _synthetic_run()
    x, y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    for eps in _EPS:
        eps2 = eps * eps
        lay = driver.layout(x, y, None, eps, serial=True)
        lay, cores = driver.core_cells(lay, eps2, 5, serial=True)
        yield eps2, lay, cores


def _border_step(eps2, lay, cores, labels) -> None:
    """The last DBSCAN step as ``driver.dbscan_xy(serial=True)`` calls it."""
    from .clustering import _kernels as kern
    from .clustering import driver

    driver.border_labels(lay, cores, labels, eps2, serial=True)
    kern.scatter_result(labels, lay.order, lay.grid.cell_start, cores.ncore, lay.blocks)


def compile_dbscan_kernels(*, border: bool = True) -> None:
    """Call every kernel of the serial DBSCAN once, with the argument types of a run
    (the steps of ``driver.dbscan_xy(serial=True)``, on the points of
    :func:`_synthetic_run`); ``border=False`` stops before the last step (the border
    points: :func:`compile_border_kernels`)."""
    from .clustering import driver

    for eps2, lay, cores in _synthetic_core_points():
        labels, _ = driver.core_labels(lay, cores, eps2, serial=True)
        if border:
            _border_step(eps2, lay, cores, labels)


def _dbscan_head_dispatchers() -> list[Any]:
    """The kernels of the first two DBSCAN steps (layout and core points)."""
    from .clustering import _kernels as k

    return [k.cell_keys, k.counting_sort, k.cell_boxes, k.core_flags_block, k.core_first]


def _border_dispatchers() -> list[Any]:
    """The kernels of the last DBSCAN step (border points, original order)."""
    from .clustering import _kernels as k

    return [k.cell_labels, k.border_labels_block, k.scatter_result]


def compile_border_kernels() -> None:
    """Call the kernels of the last DBSCAN step once, with the argument types of a run.

    The layout and core points come from the first two steps (their kernels loaded from
    the cache or compiled); the core points' cluster numbers are set to 0 instead of
    being joined (the third step's kernels are the child's), which leaves the types the
    same.
    """
    import numpy as np

    for eps2, lay, cores in _synthetic_core_points():
        _border_step(eps2, lay, cores, np.zeros(lay.points.xs.shape[0], np.int64))


def compile_significance_kernels() -> None:
    """Call the kernels of the hidden-cluster test once, with the argument types of a
    run: the null model's sampling (``NullModel.sample``) and
    :func:`~pari_geo.clustering.significance.footprint_counts`, on the null model of
    :func:`_synthetic_run`, with clusters drawn without DBSCAN, so that nothing of the
    DBSCAN compiles here."""
    import numpy as np

    from .clustering import significance as sig

    xy, model = _synthetic_run()
    model.sample(np.random.default_rng(0).random((len(model.free_order), 3)))
    labels = (np.arange(len(xy), dtype=np.int64) % 41) - 1  # 40 clusters and noise
    for eps in _EPS:
        lattice = sig.footprint_lattice(model, eps)
        sig.footprint_counts(labels, xy, model.free, lattice, eps)


def compile_cluster_kernels() -> None:
    """Call every micro-cluster kernel once, with the argument types of a run.

    The same calls as a run's (``driver.dbscan_xy(serial=True)`` and
    :func:`~pari_geo.clustering.significance.footprint_counts` on a null model with a
    population grid), on a few thousand clustered synthetic points, so that every branch
    a run takes is compiled.
    """
    compile_dbscan_kernels()
    compile_significance_kernels()


class KernelWarmup:
    """A running child compiling the kernels (or nothing to wait for).

    Used as a context manager, the warm-up that owns the child makes itself the active
    one: a :func:`kernel_warmup` inside its ``with`` block (the pipeline's, when the
    command line started the child first thing) shares that child instead of starting
    another, and only the owner ends it on the way out.
    """

    def __init__(self, proc: subprocess.Popen | None, *, owner: bool = True):
        self._proc = proc
        self._owner = owner

    @property
    def started(self) -> bool:
        """Whether a child was started."""
        return self._proc is not None

    def wait(self, timeout: float = WAIT_S) -> None:
        """Compile the hidden-cluster test's kernels and the DBSCAN's last step here
        unless the cache holds them, then wait for the child (the run's own calls then
        load from the cache)."""
        if self._proc is None:
            return
        # while the child compiles the DBSCAN's first three steps, this process compiles
        # the test's kernels and, once the child has cached the first two steps, the
        # last one (else the run compiles it at its first call, as without a child)
        if not cache_is_filled(_significance_dispatchers()):
            compile_significance_kernels()
        if cache_is_filled(_dbscan_head_dispatchers()) and not cache_is_filled(
            _border_dispatchers()
        ):
            compile_border_kernels()
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
        self._proc = None

    def stop(self) -> None:
        """End the child if it still runs (a stopped or failed run)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> KernelWarmup:
        global _ACTIVE
        if self._owner and self._proc is not None and _ACTIVE is None:
            _ACTIVE = self
        return self

    def __exit__(self, *exc: Any) -> None:
        global _ACTIVE
        if not self._owner:
            return
        if _ACTIVE is self:
            _ACTIVE = None
        self.stop()


#: the warm-up whose ``with`` block is running (see :class:`KernelWarmup`)
_ACTIVE: KernelWarmup | None = None


def kernel_warmup() -> KernelWarmup:
    """Start compiling the DBSCAN kernels in a child process, when useful.

    Returns
    -------
    KernelWarmup
        Use as a context manager (the child is ended on the way out) and call
        :meth:`KernelWarmup.wait` before the first micro-cluster kernel runs.
    """
    if _ACTIVE is not None:  # started by an enclosing ``with`` (the command line)
        return KernelWarmup(_ACTIVE._proc, owner=False)
    off = os.environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0")
    if not CACHE or off or cache_is_filled(_dbscan_dispatchers()):
        return KernelWarmup(None)
    # the child imports this very pari_geo, whatever put it on the path
    here = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": here + (os.pathsep + path if path else "")}
    try:
        proc = subprocess.Popen([sys.executable, "-m", "pari_geo._warmup"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    except OSError:
        return KernelWarmup(None)
    return KernelWarmup(proc)


if __name__ == "__main__":
    if sys.argv[1:] == ["all"]:
        compile_cluster_kernels()
    else:  # the child of kernel_warmup: the parent compiles the rest (KernelWarmup.wait)
        compile_dbscan_kernels(border=False)
