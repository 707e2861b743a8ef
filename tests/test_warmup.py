"""The micro-cluster kernels compile in a child process on an empty cache (issue 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pari_geo import _warmup


def test_compiling_in_process_fills_the_cache_and_then_no_child_starts():
    _warmup.compile_cluster_kernels()
    if _warmup.CACHE:  # caching on: every kernel of the stage has an entry now
        assert _warmup.cache_is_filled()
        with _warmup.kernel_warmup() as warm:
            assert not warm.started
            warm.wait()


def test_no_child_when_caching_is_off(monkeypatch):
    monkeypatch.setattr(_warmup, "CACHE", False)
    monkeypatch.setattr(_warmup, "cache_is_filled", lambda *a: False)
    with _warmup.kernel_warmup() as warm:
        assert not warm.started


def test_a_child_is_started_on_an_empty_cache_and_ended_on_the_way_out(monkeypatch):
    started = []

    class _Popen(subprocess.Popen):
        def __init__(self, args, **kw):
            started.append((args, kw["env"]["PYTHONPATH"]))
            super().__init__([sys.executable, "-c", "import time; time.sleep(60)"], **kw)

    monkeypatch.setattr(_warmup, "CACHE", True)
    monkeypatch.setattr(_warmup, "cache_is_filled", lambda *a: False)
    monkeypatch.setattr(_warmup.subprocess, "Popen", _Popen)
    with _warmup.kernel_warmup() as warm:
        assert warm.started
        proc = warm._proc
    assert proc is not None and proc.poll() is not None  # killed, not left running
    (args, path), = started
    assert args[1:3] == ["-c", _warmup._CHILD]
    claims = Path(args[3])
    assert not claims.exists()  # the claims folder went with the child
    assert path.split(os.pathsep)[0] == str(Path(_warmup.__file__).resolve().parents[1])


def test_wait_gives_up_after_the_timeout(monkeypatch):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    warm = _warmup.KernelWarmup(proc)
    warm.wait(timeout=0.1)
    assert proc.poll() is not None and not warm.started


# --- the split of the compilation between the run and its child (issue 11) -------------
_FIRST = """
import sys
from pathlib import Path
from pari_geo import _warmup
calls = _warmup.run_kernel_calls()
claims = Path(sys.argv[1])
half = len(calls) // 2
# the child's walk from the front and the run's from the back, as two processes do
assert _warmup.compile_calls(calls[:half], claims) == half
assert _warmup.compile_calls(calls[::-1], claims) == len(calls) - half  # the rest only
assert all(call.is_cached() for call in calls) and _warmup.cache_is_filled()
assert _warmup.compile_calls(calls) == 0  # all cached: nothing compiles again
import numpy as np
from pari_geo import _numba
from pari_geo.outofcore import _travel_kernels as tk
from pari_geo.outofcore.travel_time import minutes_to
_numba.SMALL_GRID_CELLS = 0  # the kernel, not scipy's twin
minutes_to(np.eye(40, dtype=bool), cell_size_m=100.0)
# a literal 0 heap size would compile the heap helpers a second time
assert len(tk.heap_push.signatures) == 1 and len(tk.heap_pop_into.signatures) == 1
"""

_SECOND = """
from numba.core import event
compiled = []
class _Seen(event.Listener):
    def on_start(self, e):
        compiled.append(e.data["dispatcher"].py_func.__qualname__)
    def on_end(self, e):
        return None  # only the starts are counted
event.register("numba:compile", _Seen())
import numpy as np
from affine import Affine
from pari_geo.clustering import significance as sig
from pari_geo.clustering.driver import dbscan_xy
rng = np.random.default_rng(5)
xy = np.ascontiguousarray(rng.uniform(0, 9000.0, (2500, 2)))
model = sig.build_null_model(xy, np.zeros(len(xy), dtype=np.int64), None,
                             population=rng.uniform(0, 9, (30, 30)),
                             transform=Affine(300.0, 0, 0, 0, -300.0, 9000.0))
model.sample(rng.random((len(model.free_order), 3)))
for eps in (250.0, 2000.0):
    labels, _ = dbscan_xy(np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1]),
                          None, eps, 5, serial=True)
    sig.footprint_counts(labels, xy, model.free, sig.footprint_lattice(model, eps), eps)
assert labels.max() >= 0
assert compiled == [], compiled
"""


def _python(code, cache_dir, *args):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), "PARI_GEO_NUMBA_CACHE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(_warmup.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
    )
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env,
                          capture_output=True, text=True)  # fmt: skip


def test_the_child_and_the_run_together_compile_everything_a_run_calls(tmp_path):
    """On an empty cache: the child's part plus the run's part, met in the middle of the
    list, leave nothing for the DBSCAN and footprint calls of a run to compile (the
    recorded argument types are a run's)."""
    (tmp_path / "claims").mkdir()
    first = _python(_FIRST, tmp_path / "cache", tmp_path / "claims")
    assert first.returncode == 0, first.stderr[-2000:]
    second = _python(_SECOND, tmp_path / "cache")
    assert second.returncode == 0, second.stderr[-2000:]


def test_a_warmup_inside_another_shares_its_child(monkeypatch):
    class _Popen(subprocess.Popen):
        def __init__(self, args, **kw):
            started.append(args)
            super().__init__([sys.executable, "-c", "import time; time.sleep(60)"], **kw)

    started: list = []
    monkeypatch.setattr(_warmup, "CACHE", True)
    monkeypatch.setattr(_warmup, "cache_is_filled", lambda *a: False)
    monkeypatch.setattr(_warmup.subprocess, "Popen", _Popen)
    with _warmup.kernel_warmup() as outer:
        with _warmup.kernel_warmup() as inner:  # the pipeline's, inside the CLI's
            assert inner.started and inner._proc is outer._proc
        assert outer._proc.poll() is None  # the inner one does not end the child
        proc = outer._proc
    assert proc.poll() is not None and len(started) == 1
    assert _warmup._ACTIVE is None


def test_the_recorded_calls_are_the_kernels_a_run_calls_and_nothing_compiles():
    before = {d: list(d.signatures) for d in _warmup._cluster_dispatchers()}
    calls = _warmup.run_kernel_calls()
    assert [c.kernel for c in calls] == _warmup._cluster_dispatchers()  # a run's order
    assert {d: list(d.signatures) for d in _warmup._cluster_dispatchers()} == before
    from pari_geo.clustering import _kernels as k

    assert k.cell_keys is calls[0].kernel  # the kernels are back in their modules
    names = [c.claim_name() for c in calls]
    assert len(set(names)) == len(names)
    assert names == [c.claim_name() for c in _warmup.run_kernel_calls()]  # stable


def test_a_call_claimed_by_the_other_process_is_left_to_it(tmp_path, monkeypatch):
    calls = _warmup.run_kernel_calls()[:2]
    compiled = []
    monkeypatch.setattr(_warmup.KernelCall, "is_cached", lambda self: False)
    monkeypatch.setattr(_warmup.KernelCall, "compile", lambda self: compiled.append(self))
    (tmp_path / calls[0].claim_name()).touch()  # the child has the first one
    assert _warmup.compile_calls(calls, tmp_path) == 1
    assert compiled == [calls[1]]
    assert _warmup.compile_calls(calls, tmp_path) == 0  # both claimed now
    assert _warmup.compile_calls(calls, tmp_path / "gone") == 0  # the run ended


def test_the_child_program_runs_the_module_without_the_package_init(tmp_path):
    code = _warmup._CHILD.replace('runpy.run_module("pari_geo._warmup", run_name="__main__", '
                                  'alter_sys=True)',
                                  'import pari_geo._warmup\nprint("pandas" in sys.modules)')
    assert code != _warmup._CHILD
    out = _python(code, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
