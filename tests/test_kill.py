"""Issue 8: a CLI run killed with SIGKILL while writing never leaves a partial output that a
later run would take for a finished one.

The run folder is written into a hidden ``.NAME.part-PID-*`` staging folder and renamed into
place; so after a kill the output folder either does not exist or is complete. A later run
removes the stale staging folders of dead processes (``io_write.clean_stale_parts``).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = {
    "degurba_l2.tif",
    "degurba_l2.qml",
    "degurba_l2.png",
    "degurba_l2_population_by_class.csv",
    "degurba_l2_by_unit.csv",
    "degurba_l2_by_unit.gpkg",
    "degurba_l2_units.csv",
    "degurba_l2_units.gpkg",
    "provenance.json",
}

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def _run_file(tmp_path: Path) -> Path:
    text = (ROOT / "examples" / "belgium_degurba.toml").read_text()
    text = text.replace("../data/", f"{ROOT / 'data'}/").replace(
        'dir = "../out/belgium_degurba"', f'dir = "{tmp_path / "out"}"'
    )
    f = tmp_path / "run.toml"
    f.write_text(text)
    return f


def _cli(run_file: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pari_geo.cli", "classify", str(run_file), "--quiet", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_when_writing(proc: subprocess.Popen, parent: Path, delay: float) -> bool:
    """SIGKILL ``proc`` ``delay`` s after its staging folder appears; True if killed then."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.name.startswith(".out.part-") for p in parent.iterdir()):
            time.sleep(delay)
            break
        time.sleep(0.005)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return True


def _check_complete_or_absent(out: Path) -> None:
    if out.exists():
        assert {p.name for p in out.iterdir()} == EXPECTED


def test_sigkill_during_writing_never_leaves_a_partial_output(tmp_path):
    run_file = _run_file(tmp_path)
    out = tmp_path / "out"
    rng = random.Random(8)
    killed_while_writing = 0
    for delay in sorted(rng.uniform(0.0, 1.2) for _ in range(3)):
        proc = _cli(run_file, "--overwrite")
        if _kill_when_writing(proc, tmp_path, delay):
            killed_while_writing += 1
        _check_complete_or_absent(out)
    assert killed_while_writing >= 1
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert leftovers, "the kills should have left hidden staging folders"
    # a later run succeeds, and removes the stale staging folders of the killed runs
    proc = _cli(run_file, "--overwrite")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    _check_complete_or_absent(out)
    assert out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []


def test_stale_parts_of_live_processes_are_kept(tmp_path):
    from pari_geo.io_write import clean_stale_parts

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.part-{dead.pid}-abc"
    stale.mkdir()
    (stale / "half.tif").write_bytes(b"II*")
    live = tmp_path / f".out.part-{os.getpid()}-xyz"
    live.mkdir()
    other = tmp_path / ".other.part-1-x"
    other.mkdir()
    assert clean_stale_parts(tmp_path / "out") == [stale]
    assert live.exists() and other.exists()
