"""Compile the micro-cluster kernels on both cores while the run does other work.

On an empty numba cache a full run compiles two sets of kernels one after the other: the
typology's (place types, first) and the micro-clusters' (DBSCAN, the null model's sampling
and the footprint, when the ladder starts), each a matter of seconds. :func:`kernel_warmup`
starts a child process that compiles the second set into numba's on-disk cache while the
run classifies the place types on the other core. When the run reaches the ladder before
the child is done (:meth:`KernelWarmup.wait`) it compiles the rest itself: both work
through the same list of kernel calls (:func:`run_kernel_calls`) from opposite ends, the
child from the DBSCAN's first step, the run from the hidden-cluster test's last kernel,
each claiming a call (an empty file in a folder of the warm-up's own, removed at the end)
before compiling it, so that no kernel is compiled twice and both cores stay busy until
the list is done. The run then waits for the child's last kernel, and its own first calls
load every kernel from the cache.

The list holds a run's own calls with their argument types, the kernels a run calls from
Python, in a run's order. It is recorded by making the same calls as a run (the serial
DBSCAN at two scales, the null model's sampling and the footprint counts) on a small
synthetic point set with every kernel replaced by its Python function for the occasion:
nothing compiles and nothing runs compiled, in a few milliseconds, so either process can
compile any call of the list without the calls before it.

Nothing happens when the cache already holds the kernels, when caching is off
(``PARI_GEO_NUMBA_CACHE=0``, ``NUMBA_DISABLE_JIT=1``) or when the child cannot start: the
run then compiles what it needs itself, as before. The child computes nothing of the run,
so results never depend on it.

Run as ``python -m pari_geo._warmup`` it compiles every micro-cluster kernel in the
calling process.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ._numba import CACHE

__all__ = [
    "KernelCall",
    "KernelWarmup",
    "kernel_warmup",
    "run_kernel_calls",
    "compile_cluster_kernels",
    "compile_calls",
]

#: seconds the run waits at most for the child before compiling by itself
WAIT_S = 120.0

#: the modules of the micro-cluster kernels (the ones a run calls and those they call)
_KERNEL_MODULES = (
    "pari_geo.clustering._kernels",
    "pari_geo.clustering._footprint_kernels",
    "pari_geo.clustering._null_kernels",
    "pari_geo.outofcore._unionfind",
)


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

    return [nk.sorted_draws_by_segment, nk.sorted_search_clipped, fk.group_members,
            fk.footprint_expected]  # fmt: skip


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


class KernelCall(NamedTuple):
    """One kernel a run calls from Python, with the numba types of its arguments."""

    kernel: Any
    """The numba dispatcher."""
    argtypes: tuple[Any, ...]
    """The numba types of the arguments of a run's call."""

    @property
    def name(self) -> str:
        """The kernel's module and name."""
        func = self.kernel.py_func
        return f"{func.__module__}.{func.__qualname__}"

    def claim_name(self) -> str:
        """A file name for this call, the same in every process."""
        digest = hashlib.sha256(f"{self.name}{self.argtypes}".encode()).hexdigest()[:16]
        return f"{self.kernel.py_func.__name__}-{digest}"

    def is_cached(self) -> bool:
        """Whether numba's cache holds an up-to-date entry for exactly this call."""
        try:
            cache = self.kernel._cache
            key = cache._index_key(self.argtypes, self.kernel.targetctx.codegen())
            return key in cache._cache_file._load_index()
        except Exception:  # noqa: BLE001 - numba internals moved: compile to be sure
            return False

    def compile(self) -> None:
        """Compile the call (numba saves it to its cache); nothing runs."""
        self.kernel.compile(self.argtypes)


def _kernel_modules() -> list[Any]:
    import importlib

    return [importlib.import_module(name) for name in _KERNEL_MODULES]


@contextlib.contextmanager
def _python_kernels(calls: list[KernelCall]) -> Iterator[None]:
    """Within the block every kernel of :data:`_KERNEL_MODULES` is its Python function,
    and each call made from outside a kernel is appended to ``calls`` (once per kernel
    and argument types). Not thread-safe: the module globals are swapped."""
    from numba.core.dispatcher import Dispatcher

    depth = [0]
    seen: set[tuple[Any, tuple[Any, ...]]] = set()

    def python(disp: Any) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            if depth[0] == 0:
                argtypes = tuple(disp.typeof_pyval(a) for a in args)
                if (disp, argtypes) not in seen:
                    seen.add((disp, argtypes))
                    calls.append(KernelCall(disp, argtypes))
            depth[0] += 1
            try:
                return disp.py_func(*args)
            finally:
                depth[0] -= 1

        return call

    swapped: list[tuple[Any, str, Any]] = []
    try:
        for mod in _kernel_modules():
            for name, value in list(vars(mod).items()):
                if isinstance(value, Dispatcher):
                    swapped.append((mod, name, value))
                    setattr(mod, name, python(value))
        yield
    finally:
        for mod, name, value in swapped:
            setattr(mod, name, value)


def _synthetic_run(n_free: int = 240):
    """A few hundred clustered synthetic points and their null model (seeded)."""
    import numpy as np
    from affine import Affine

    from .clustering import significance as sig

    rng = np.random.default_rng(0)
    centres = rng.uniform(0.0, 20_000.0, (12, 2))
    n_clustered = 3 * n_free // 4
    xy = np.concatenate([
        centres[rng.integers(0, 12, n_clustered)] + rng.normal(0, 150, (n_clustered, 2)),
        rng.uniform(0.0, 20_000.0, (n_free - n_clustered, 2)),
    ])  # fmt: skip
    xy = np.ascontiguousarray(np.clip(xy, 1.0, 19_999.0))
    model = sig.build_null_model(xy, np.zeros(len(xy), dtype=np.int64), None,
                                 population=rng.uniform(0, 50, (40, 40)),
                                 transform=Affine(500.0, 0, 0, 0, -500.0, 20_000.0))  # fmt: skip
    assert model is not None
    return xy, model


#: the scales of the synthetic calls: one where cells are small against the points' spread
#: and one where they are large, so that every call a run makes is seen
_EPS = (300.0, 1000.0)


def _run_calls() -> None:
    """The micro-cluster stage's kernel calls, as a run makes them: the serial DBSCAN
    (``driver.dbscan_xy(serial=True)``), the null model's sampling
    (``NullModel.sample``) and :func:`~pari_geo.clustering.significance.footprint_counts`,
    on the points of :func:`_synthetic_run`."""
    import numpy as np

    from .clustering import driver
    from .clustering import significance as sig

    xy, model = _synthetic_run()
    x, y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    for eps in _EPS:
        driver.dbscan_xy(x, y, None, eps, 5, serial=True)
    model.sample(np.random.default_rng(0).random((len(model.free_order), 3)))
    labels = (np.arange(len(xy), dtype=np.int64) % 13) - 1  # 12 clusters and noise
    for eps in _EPS:
        lattice = sig.footprint_lattice(model, eps)
        sig.footprint_counts(labels, xy, model.free, lattice, eps)


def run_kernel_calls() -> list[KernelCall]:
    """Every kernel call of a run's micro-cluster stage, in a run's order.

    Recorded on the small synthetic run of :func:`_run_calls` with every kernel replaced by
    its Python function: nothing compiles and no compiled kernel runs.

    Returns
    -------
    list of KernelCall
        One per kernel and argument types, the DBSCAN's steps first, then the hidden-cluster
        test's kernels.
    """
    calls: list[KernelCall] = []
    with _python_kernels(calls):
        _run_calls()
    return calls


def _claim(folder: Path | None, call: KernelCall) -> bool:
    """Take ``call`` for this process (True), unless the other one has it."""
    if folder is None:
        return True
    try:
        os.close(os.open(folder / call.claim_name(), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    except OSError:  # the folder is gone (the run ended): nothing left to do
        return False
    return True


def compile_calls(calls: Sequence[KernelCall], claims: Path | None = None) -> int:
    """Compile each call of ``calls`` in order unless it is cached or (with ``claims``, a
    folder shared with another process) the other process claimed it first; return how
    many were compiled here."""
    done = 0
    for call in calls:
        if call.is_cached() or not _claim(claims, call):
            continue
        call.compile()
        done += 1
    return done


def compile_cluster_kernels() -> None:
    """Compile every micro-cluster kernel a run calls, with the argument types of a run
    (the calls of :func:`run_kernel_calls`), in this process."""
    compile_calls(run_kernel_calls())


class KernelWarmup:
    """A running child compiling the kernels (or nothing to wait for).

    Used as a context manager, the warm-up that owns the child makes itself the active
    one: a :func:`kernel_warmup` inside its ``with`` block (the pipeline's, when the
    command line started the child first thing) shares that child instead of starting
    another, and only the owner ends it (and removes the claims folder) on the way out.
    """

    def __init__(self, proc: subprocess.Popen | None, *, owner: bool = True,
                 claims: Path | None = None):  # fmt: skip
        self._proc = proc
        self._owner = owner
        self._claims = claims

    @property
    def started(self) -> bool:
        """Whether a child was started."""
        return self._proc is not None

    def wait(self, timeout: float = WAIT_S) -> None:
        """Compile, from the end of the list, the calls the child has not claimed yet,
        then wait for the child (the run's own calls then load from the cache)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            with contextlib.suppress(Exception):  # any failure: the run compiles instead
                compile_calls(run_kernel_calls()[::-1], self._claims)
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
        if self._claims is not None:
            shutil.rmtree(self._claims, ignore_errors=True)
            self._claims = None


#: the child's program: ``python -m pari_geo._warmup CLAIMS`` without running the package's
#: ``__init__`` (which registers the notebook accessors and so imports pandas and xarray,
#: a third of a second the child needs for compiling): the package module is created from
#: its spec, unexecuted, and the submodules import as usual
_CHILD = """\
import importlib.util, runpy, sys
spec = importlib.util.find_spec("pari_geo")
sys.modules["pari_geo"] = importlib.util.module_from_spec(spec)
runpy.run_module("pari_geo._warmup", run_name="__main__", alter_sys=True)
"""

#: the warm-up whose ``with`` block is running (see :class:`KernelWarmup`)
_ACTIVE: KernelWarmup | None = None


def kernel_warmup() -> KernelWarmup:
    """Start compiling the micro-cluster kernels in a child process, when useful.

    Returns
    -------
    KernelWarmup
        Use as a context manager (the child is ended on the way out) and call
        :meth:`KernelWarmup.wait` before the first micro-cluster kernel runs.
    """
    if _ACTIVE is not None:  # started by an enclosing ``with`` (the command line)
        return KernelWarmup(_ACTIVE._proc, owner=False, claims=_ACTIVE._claims)
    off = os.environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0")
    if not CACHE or off or cache_is_filled():
        return KernelWarmup(None)
    # the child imports this very pari_geo, whatever put it on the path
    here = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": here + (os.pathsep + path if path else "")}
    try:
        claims = Path(tempfile.mkdtemp(prefix="pari-geo-kernels-"))
    except OSError:
        return KernelWarmup(None)
    try:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(claims)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    except OSError:
        shutil.rmtree(claims, ignore_errors=True)
        return KernelWarmup(None)
    return KernelWarmup(proc, claims=claims)


if __name__ == "__main__":
    # ``python -m pari_geo._warmup [CLAIMS]``: every kernel here, or (the child of
    # kernel_warmup) from the start of the list, those the run has not claimed
    folder = Path(sys.argv[1]) if sys.argv[1:] else None
    compile_calls(run_kernel_calls(), folder)
