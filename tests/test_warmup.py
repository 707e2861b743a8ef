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
    monkeypatch.setattr(_warmup, "cache_is_filled", lambda: False)
    with _warmup.kernel_warmup() as warm:
        assert not warm.started


def test_a_child_is_started_on_an_empty_cache_and_ended_on_the_way_out(monkeypatch):
    started = []

    class _Popen(subprocess.Popen):
        def __init__(self, args, **kw):
            started.append((args, kw["env"]["PYTHONPATH"]))
            super().__init__([sys.executable, "-c", "import time; time.sleep(60)"], **kw)

    monkeypatch.setattr(_warmup, "CACHE", True)
    monkeypatch.setattr(_warmup, "cache_is_filled", lambda: False)
    monkeypatch.setattr(_warmup.subprocess, "Popen", _Popen)
    with _warmup.kernel_warmup() as warm:
        assert warm.started
        proc = warm._proc
    assert proc is not None and proc.poll() is not None  # killed, not left running
    (args, path), = started
    assert args[1:] == ["-m", "pari_geo._warmup"]
    assert path.split(os.pathsep)[0] == str(Path(_warmup.__file__).resolve().parents[1])


def test_wait_gives_up_after_the_timeout(monkeypatch):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    warm = _warmup.KernelWarmup(proc)
    warm.wait(timeout=0.1)
    assert proc.poll() is not None and not warm.started
