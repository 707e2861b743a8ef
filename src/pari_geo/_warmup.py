"""Compile the micro-cluster kernels in a second process while the run does other work.

On an empty numba cache a full run compiles two sets of kernels one after the other: the
typology's (place types, first) and the micro-clusters' (DBSCAN and footprint, when the
ladder starts), each a matter of seconds. :func:`kernel_warmup` starts a child process
that compiles the second set into numba's on-disk cache while the run classifies the
place types on the other core; before the ladder the run waits for the child
(:meth:`KernelWarmup.wait`) and its first calls then load the kernels from the cache.

Nothing happens when the cache already holds the kernels, when caching is off
(``PARI_GEO_NUMBA_CACHE=0``, ``NUMBA_DISABLE_JIT=1``) or when the child cannot start: the
run then compiles what it needs itself, as before. The child computes nothing of the
run (a small synthetic point set of its own), so results never depend on it.

Run as ``python -m pari_geo._warmup`` it compiles the kernels in the calling process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ._numba import CACHE

__all__ = ["KernelWarmup", "kernel_warmup", "compile_cluster_kernels"]

#: seconds the run waits at most for the child before compiling by itself
WAIT_S = 120.0


def _cluster_dispatchers() -> list[Any]:
    """The numba kernels a run's micro-cluster stage calls from Python."""
    from .clustering import _footprint_kernels as fk
    from .clustering import _kernels as k

    return [k.cell_keys, k.counting_sort, k.cell_boxes, k.core_flags_block,
            k.core_first, k.edge_candidates_block, k.link_masks, k.resolve_maybe_block,
            k.cluster_roots, k.core_labels, k.cell_labels, k.border_labels_block,
            k.scatter_result, fk.footprint_expected]  # fmt: skip


def cache_is_filled() -> bool:
    """True when numba's cache holds an up-to-date entry for every kernel of
    :func:`_cluster_dispatchers` (so there is nothing to compile ahead)."""
    try:
        for disp in _cluster_dispatchers():
            cache = getattr(disp, "_cache", None)
            index = cache._cache_file._load_index() if cache is not None else {}
            if not index:  # missing, or stale (numba checks the source's stamp)
                return False
    except Exception:  # noqa: BLE001 - numba internals moved: assume nothing is cached
        return False
    return True


def compile_cluster_kernels() -> None:
    """Call every micro-cluster kernel once, with the argument types of a run.

    The same calls as a run's (``driver.dbscan_xy(serial=True)`` and
    :func:`~pari_geo.clustering.significance.footprint_counts` on a null model with a
    population grid), on a few thousand clustered synthetic points, so that every branch
    a run takes is compiled.
    """
    import numpy as np
    from affine import Affine

    from .clustering import significance as sig
    from .clustering.driver import dbscan_xy

    rng = np.random.default_rng(0)
    centres = rng.uniform(0.0, 20_000.0, (40, 2))
    xy = np.concatenate([centres[rng.integers(0, 40, 3000)] + rng.normal(0, 250, (3000, 2)),
                         rng.uniform(0.0, 20_000.0, (1000, 2))])  # fmt: skip
    xy = np.ascontiguousarray(np.clip(xy, 1.0, 19_999.0))
    model = sig.build_null_model(xy, np.zeros(len(xy), dtype=np.int64), None,
                                 population=rng.uniform(0, 50, (80, 80)),
                                 transform=Affine(250.0, 0, 0, 0, -250.0, 20_000.0))
    assert model is not None
    for eps in (300.0, 1000.0):
        labels, _ = dbscan_xy(np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1]),
                              None, eps, 5, serial=True)  # fmt: skip
        lattice = sig.footprint_lattice(model, eps)
        sig.footprint_counts(labels.astype(np.int64), xy, model.free, lattice, eps)


class KernelWarmup:
    """A running child compiling the kernels (or nothing to wait for)."""

    def __init__(self, proc: subprocess.Popen | None):
        self._proc = proc

    @property
    def started(self) -> bool:
        """Whether a child was started."""
        return self._proc is not None

    def wait(self, timeout: float = WAIT_S) -> None:
        """Wait for the child (the run's own calls then load from the cache)."""
        if self._proc is None:
            return
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
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def kernel_warmup() -> KernelWarmup:
    """Start compiling the micro-cluster kernels in a child process, when useful.

    Returns
    -------
    KernelWarmup
        Use as a context manager (the child is ended on the way out) and call
        :meth:`KernelWarmup.wait` before the first micro-cluster kernel runs.
    """
    off = os.environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0")
    if not CACHE or off or cache_is_filled():
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
    compile_cluster_kernels()
