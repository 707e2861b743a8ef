"""Issue 12: nothing lost, nothing silently wrong.

Data loss (outputs that are, contain or lie inside an input; ``--overwrite`` only replaces
pari_geo's own outputs), concurrent runs, bounded work, clean stops (SIGTERM/SIGINT, stale
scratch after SIGKILL, a chaos test of 20 kills), messages that name the right thing and
results that would silently be wrong. Every case runs on tiny grids.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from helpers import tiny_run_text, write_tif, write_tiny_inputs

from pari_geo.cli import main
from pari_geo.errors import ConfigError, InputError, OutputError
from pari_geo.runconfig import load_run

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "pari_geo.cli"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny region's inputs (see ``helpers.write_tiny_inputs``)."""
    return write_tiny_inputs(tmp_path_factory.mktemp("tiny"))


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest()
                                         if p.is_file() else "dir")
            for p in sorted(folder.rglob("*"))}


def _grid_args(p, out, *extra):
    return ["degurba", "grid", "--population", str(p["population"]), "--built",
            str(p["built"]), "--land", str(p["land"]), "--out", str(out), *extra]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("pari-geo: error: "), err[0]
    return err[0]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}


# --- 1. data loss -------------------------------------------------------------------------
@pytest.fixture
def project(tmp_path, tiny):
    """A folder holding the run file, its inputs and an unrelated file."""
    import shutil

    for name in ("population", "built", "land"):
        shutil.copy(tiny[name], tmp_path / Path(tiny[name]).name)
    (tmp_path / "notes.txt").write_text("mine")
    return tmp_path


def _degurba_run_file(folder: Path, out_dir: str, data: Path | None = None) -> Path:
    data = data or folder
    f = folder / "run.toml"
    f.write_text(f'[inputs]\npopulation = "{data / "population.tif"}"\n'
                 f'built = "{data / "built.tif"}"\nland = "{data / "land.tif"}"\n'
                 f'[typology]\nname = "degurba"\n[outputs]\ndir = "{out_dir}"\nmap = false\n')
    return f


@pytest.mark.parametrize("out_dir", [".", "", "{here}", "{here}/..", "{here}/population.tif"])
def test_outputs_dir_holding_the_run_file_or_inputs_is_refused(project, capsys, out_dir):
    run_file = _degurba_run_file(project, out_dir.format(here=project))
    before = _snapshot(project)
    assert main(["classify", str(run_file), "--overwrite", "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "outputs.dir" in line if out_dir == "" else (
        "the input" in line and "never replaces its inputs" in line), line
    assert _snapshot(project) == before


def test_outputs_dir_of_a_hard_link_or_symlink_is_refused(project, capsys, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    (other / "link").symlink_to(project, target_is_directory=True)
    run_file = _degurba_run_file(project, str(other / "link"))
    before = _snapshot(project)
    assert main(["classify", str(run_file), "--overwrite", "--quiet"]) == 2
    assert "contains the input" in _one_error_line(capsys)
    assert _snapshot(project) == before


def test_grid_output_that_is_its_own_input_is_refused(tiny, tmp_path, capsys):
    pop = tmp_path / "POP.tif"
    pop.write_bytes(Path(tiny["population"]).read_bytes())
    os.link(pop, tmp_path / "alias.tif")
    before = pop.read_bytes()
    for out in (pop, tmp_path / "alias.tif", tmp_path / "." / "POP.tif"):
        args = ["degurba", "grid", "--population", str(pop), "--built", str(tiny["built"]),
                "--land", str(tiny["land"]), "--out", str(out), "--overwrite"]
        assert main(args) == 2
        assert "is the input" in _one_error_line(capsys)
    assert pop.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["POP.tif", "alias.tif"]


def test_overwrite_replaces_only_pari_geo_outputs(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    run_file = _degurba_run_file(tmp_path, str(out), data=Path(tiny["population"]).parent)
    out.mkdir()
    (out / "thesis.docx").write_text("years of work")
    assert main(["classify", str(run_file), "--overwrite", "--quiet"]) == 2
    assert "not a pari_geo output folder" in _one_error_line(capsys)
    assert (out / "thesis.docx").read_text() == "years of work"
    (out / "thesis.docx").unlink()
    out.rmdir()
    assert main(["classify", str(run_file), "--quiet"]) == 0
    capsys.readouterr()
    (out / "notes.txt").write_text("mine")  # a file added to a pari_geo output folder
    assert main(["classify", str(run_file), "--overwrite", "--quiet"]) == 2
    assert "notes.txt" in _one_error_line(capsys)
    (out / "notes.txt").unlink()
    assert main(["classify", str(run_file), "--overwrite", "--quiet"]) == 0
    # single files: only a file pari_geo wrote is replaced
    tif = tmp_path / "l2.tif"
    assert main(_grid_args(tiny, tif)) == 0
    assert main(_grid_args(tiny, tif, "--overwrite", "--level", "1")) == 0
    capsys.readouterr()
    png = tmp_path / "photo.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n holiday")
    assert main(_grid_args(tiny, tmp_path / "x.tif", "--map", str(png), "--overwrite")) == 2
    assert "not written by pari_geo" in _one_error_line(capsys)
    assert png.read_bytes() == b"\x89PNG\r\n\x1a\n holiday"
    assert not (tmp_path / "x.tif").exists()


# --- 2. concurrent runs ----------------------------------------------------------------------
def test_existing_output_is_refused_before_any_work(tiny, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    run_file = _degurba_run_file(tmp_path, str(out), data=Path(tiny["population"]).parent)
    out.mkdir()

    def no_work(*a, **k):
        raise AssertionError("the classification ran although the output exists")

    monkeypatch.setattr("pari_geo.typology.degurba.classify_grid", no_work)
    assert main(["classify", str(run_file), "--quiet"]) == 2
    assert "exists" in _one_error_line(capsys)
    (tmp_path / "l2.tif").write_bytes(b"x")
    assert main(_grid_args(tiny, tmp_path / "l2.tif")) == 2
    assert "exists" in _one_error_line(capsys)


SLOW_GRID = """
import sys, time
import pari_geo.typology.degurba as d
real = d.classify_grid
def slow(*a, **k):
    time.sleep(float(sys.argv[1]))
    return real(*a, **k)
d.classify_grid = slow
from pari_geo.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_two_concurrent_runs_exactly_one_wins(tiny, tmp_path):
    out = tmp_path / "l.tif"
    procs = [subprocess.Popen([sys.executable, "-c", SLOW_GRID, "4",
                               *_grid_args(tiny, out, "--level", level)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
             for level in ("1", "2")]
    results = [(p.wait(timeout=300), p.stdout.read().decode(), p.stderr.read().decode())
               for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    loser = next(r for r in results if r[0] == 2)
    lines = loser[2].strip().splitlines()
    assert len(lines) == 1 and "is being written by another pari_geo run" in lines[0], lines
    winner_level = ("1", "2")[[r[0] for r in results].index(0)]
    with rasterio.open(out) as src:
        assert src.tags()["LEVEL"] == winner_level  # the file is the winner's, whole
    # the raster and its QGIS style
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.qml", "l.tif"]


def test_a_file_appearing_meanwhile_is_never_replaced(tmp_path):
    from pari_geo.io_write import atomic_path

    target = tmp_path / "t.csv"
    with pytest.raises(OutputError, match="exists"), atomic_path(target) as tmp:
        tmp.write_text("code,name,cells\n")
        target.write_text("someone else's")
    assert target.read_text() == "someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


# --- 5. clean stops ---------------------------------------------------------------------------
def _run_cmd(run_file: Path, *extra: str) -> list[str]:
    return [*CLI, "run", str(run_file), "--quiet", "--engine", "tiled", "--tile", "8x8",
            *extra]


def _tiny_run_file(tiny, folder: Path) -> Path:
    f = folder / "run.toml"
    f.write_text(tiny_run_text(tiny, folder / "out" / "run"))
    return f


def _wait_for_hidden(parent: Path, proc: subprocess.Popen, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if parent.exists() and any(p.name.startswith(".") for p in parent.iterdir()):
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_remove_staging_and_scratch(tiny, tmp_path, sig, code):
    run_file = _tiny_run_file(tiny, tmp_path)
    parent = tmp_path / "out"
    # a shell's background job inherits SIGINT ignored (and Python then keeps ignoring it):
    # give the run the default disposition, as a terminal or a scheduler would
    proc = subprocess.Popen(_run_cmd(run_file), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert _wait_for_hidden(parent, proc), proc.communicate()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err.decode()
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "nothing was written" in lines[0], lines
    assert not parent.exists() or list(parent.iterdir()) == []


def test_stale_scratch_of_dead_processes_is_removed(tmp_path):
    from pari_geo.io_write import clean_stale_parts, scratch_dir

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".pari_geo_run_{dead.pid}-abc"
    stale.mkdir()
    (stale / "classes.tif").write_bytes(b"x" * 100)
    unlocked = tmp_path / ".pari_geo_ooc_1-xyz"  # its owner lock is free: the owner died
    unlocked.mkdir()
    (unlocked / ".owner").write_text("")
    foreign = tmp_path / ".pari_geo_notes"
    foreign.mkdir()
    with scratch_dir(".pari_geo_n7_", tmp_path) as live:  # cleans its folder first
        assert not stale.exists() and not unlocked.exists()
        assert live.exists() and foreign.exists()
        stale.mkdir()
        assert clean_stale_parts(tmp_path / "out") == [stale]  # the live one is kept
        assert live.exists() and foreign.exists()
    assert not live.exists()


def _fingerprint(out: Path) -> dict[str, str]:
    return {k: v for k, v in _snapshot(out).items()
            if not k.endswith((".gpkg", "provenance.json"))}


FORK_SERVER = r"""
import json, os, sys
os.environ["NUMBA_THREADING_LAYER"] = "workqueue"  # fork-safe (GNU OpenMP is not)
import pari_geo.cli
for line in sys.stdin:
    cmd, arg = line.split(" ", 1)
    if cmd == "run":  # fork a run, answer its pid
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)
                code = pari_geo.cli.main(json.loads(arg))
            finally:
                os._exit(code)
        print(pid, flush=True)
    elif cmd == "main":  # run in the server itself: imports and kernels for every fork
        null = os.open(os.devnull, os.O_WRONLY)
        saved = os.dup(1), os.dup(2)
        sys.stdout.flush()
        os.dup2(null, 1)
        os.dup2(null, 2)
        code = pari_geo.cli.main(json.loads(arg))
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        print(code, flush=True)
    elif cmd == "wait":  # reap a run, answer its exit code (-9 if killed)
        _, status = os.waitpid(int(arg), 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
"""


class _ForkServer:
    """A Python process that has imported pari_geo once and forks each run from itself:
    every run is a real process (killed for real), without the interpreter's start-up and
    imports, so 20 kills stay cheap."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", FORK_SERVER], env=_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _ask(self, line: str) -> int:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def start(self, args: list[str]) -> int:
        import json

        return self._ask("run " + json.dumps(args))

    def main(self, args: list[str]) -> int:
        import json

        return self._ask("main " + json.dumps(args))

    def wait(self, pid: int) -> int:
        return self._ask(f"wait {pid}")

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_chaos_twenty_kills_then_a_correct_output_with_nothing_beside_it(tiny, tmp_path):
    """SIGKILL ``pari-geo run --engine tiled --overwrite`` at 20 random moments; after
    each kill the output is absent or complete, and a rerun gives the reference output
    with nothing left beside it (no staging, scratch or lock files)."""
    run_file = _tiny_run_file(tiny, tmp_path)
    parent = tmp_path / "out"
    out = parent / "run"
    args = _run_cmd(run_file)[len(CLI):]
    server = _ForkServer()
    try:
        assert server.main(args) == 0  # the reference; loads every import and kernel
        expected = _fingerprint(out)
        t0 = time.monotonic()
        assert server.wait(server.start([*args, "--overwrite"])) == 0
        duration = time.monotonic() - t0
        assert _fingerprint(out) == expected
        rng = random.Random(12)
        killed = 0
        for _ in range(20):
            pid = server.start([*args, "--overwrite"])
            time.sleep(rng.uniform(0.0, 1.1) * duration)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed += server.wait(pid) == -signal.SIGKILL
            if out.exists():  # complete, never half-written
                assert _fingerprint(out) == expected
        assert killed >= 10
        assert server.wait(server.start([*args, "--overwrite"])) == 0
    finally:
        server.close()
    assert _fingerprint(out) == expected
    assert [p.name for p in parent.iterdir()] == ["run"]


# --- 4. units, 6. bounded work, 7. messages ------------------------------------------------------
def test_units_off_the_grid_are_refused_before_any_work(tiny, tmp_path, capsys):
    import geopandas as gpd
    from shapely.geometry import box

    far = tmp_path / "far.gpkg"
    gpd.GeoDataFrame({"code": ["x"], "county": ["A"], "country": ["SE"]},
                     geometry=[box(9e5, 7.5e6, 9.1e5, 7.51e6)],
                     crs="EPSG:3006").to_file(far, layer="units")
    f = tmp_path / "run.toml"
    f.write_text(tiny_run_text(tiny, tmp_path / "out").replace(str(tiny["units"]), str(far)))
    assert main(["run", str(f), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "far.gpkg [units]: no unit intersects the population grid" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("setting, key", [
    ("n_sim = 1000000000", "clusters.n_sim"),
    ("random_state = -1", "clusters.random_state"),
    ("eps_m = [1e-9]", "clusters.eps_m"),
    ("eps_m = [5e7]", "clusters.eps_m"),
    ("micro_max_extent_m = 0", "clusters.micro_max_extent_m"),
])
def test_absurd_cluster_settings_are_refused_up_front(tiny, tmp_path, capsys, setting, key):
    text = tiny_run_text(tiny, tmp_path / "out")
    name = setting.split(" = ")[0]
    text = "\n".join(setting if line.startswith(f"{name} =") else line
                     for line in text.splitlines())
    if f"\n{setting}" not in text:
        text = text.replace("[clusters]\n", f"[clusters]\n{setting}\n")
    f = tmp_path / "run.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=key):
        load_run(f)
    assert main(["run", str(f), "--quiet"]) == 2
    assert key in _one_error_line(capsys)


def test_long_runs_print_an_estimate(caplog):
    import logging

    from pari_geo.pipeline import _note_long_run, estimate_cluster_seconds

    c = {"n_sim": 99_999, "eps_m": [300.0, 1000.0], "early_stop": 0}
    assert estimate_cluster_seconds(1_000_000, c) > 3600
    with caplog.at_level(logging.INFO, logger="pari_geo"):
        _note_long_run(1_000_000, c)
        _note_long_run(100, c)
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 1 and "roughly" in notes[0] and "early stopping is off" in notes[0]


def test_run_file_with_a_bom_is_named(tiny, tmp_path, capsys):
    f = tmp_path / "run.toml"
    f.write_bytes(b"\xef\xbb\xbf" + tiny_run_text(tiny, tmp_path / "out").encode())
    assert main(["run", str(f), "--quiet"]) == 2
    assert "byte-order mark (BOM)" in _one_error_line(capsys)


def test_corrupt_input_under_the_tiled_engine_names_the_input(tiny, tmp_path, capsys):
    bad = tmp_path / "built.tif"
    write_tif(bad, np.random.default_rng(0).random((24, 24)) * 1e5, crs="EPSG:3006",
              transform=Affine(1000, 0, 500000, 0, -1000, 6524000))
    bad.write_bytes(bad.read_bytes()[:-600])
    args = ["degurba", "grid", "--population", str(tiny["population"]), "--built", str(bad),
            "--land", str(tiny["land"]), "--out", str(tmp_path / "o.tif"), "--engine", "tiled"]
    assert main(args) == 2
    line = _one_error_line(capsys)
    assert "built.tif [built]: cannot be read as a raster" in line, line
    assert not (tmp_path / "o.tif").exists()


def test_dependency_warnings_never_precede_the_error_line(tmp_path, capsys, monkeypatch):
    import pari_geo.runconfig as rc

    def noisy(path):
        import logging

        warnings.warn_explicit("GPKG: bad application_id", RuntimeWarning,
                               "/site-packages/pyogrio/raw.py", 200)
        # what rasterio routes from GDAL/libtiff on a full disk
        logging.getLogger("rasterio._env").error("TIFFAppendToStrip:Write error at scanline 7")
        raise ConfigError("file", "configuration file not found", str(path))

    monkeypatch.setattr(rc, "load_run", noisy)
    assert main(["run", str(tmp_path / "none.toml")]) == 2
    _one_error_line(capsys)


def test_errors_about_units_columns_name_the_file(tiny, tmp_path, capsys):
    f = tmp_path / "run.toml"
    f.write_text(tiny_run_text(tiny, tmp_path / "out").replace('region = "county"',
                                                               'region = "nope"'))
    assert main(["run", str(f), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "units.gpkg [units]: has no column 'nope'" in line and "<in-memory>" not in line


# --- 8. silent wrong results ------------------------------------------------------------------
def test_transposed_and_south_up_arrays_are_refused(tiny):
    from pari_geo.ingest import open_raster
    from pari_geo.typology.degurba import classify_grid

    pop = open_raster(tiny["population"], "population")
    built = open_raster(tiny["built"], "built")
    land = open_raster(tiny["land"], "land")
    assert classify_grid(pop, built, land).shape == (24, 24)
    with pytest.raises(InputError, match=r"\[built\]: has dims \('x', 'y'\)"):
        classify_grid(pop, built.transpose("x", "y"), land)
    with pytest.raises(InputError, match=r"\[population\]: is south-up"):
        classify_grid(pop.isel(y=slice(None, None, -1)), built, land)


def test_web_mercator_is_refused(tmp_path):
    from pari_geo.ingest import open_raster

    f = write_tif(tmp_path / "pop3857.tif", np.ones((4, 4)), crs="EPSG:3857",
                  transform=Affine(300, 0, 450000, 0, -300, 6600000))
    with pytest.raises(InputError, match=r"pop3857.tif \[population\]: is in Web Mercator"):
        from pari_geo.grid import GridSpec

        GridSpec.from_dataarray(open_raster(f, "population"), file=str(f), layer="population")


# --- 9. small -----------------------------------------------------------------------------------
def test_output_names_must_match_the_format(tiny, tmp_path, capsys):
    assert main(_grid_args(tiny, tmp_path / "x.png")) == 2
    assert "ending in .tif" in _one_error_line(capsys)
    assert main(_grid_args(tiny, tmp_path / "x.tif", "--map", str(tmp_path / "m.jpg"))) == 2
    assert "ending in .png" in _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_output_folders_follow_the_umask(tiny, tmp_path, capsys):
    out = tmp_path / "new" / "run"
    run_file = _degurba_run_file(tmp_path, str(out), data=Path(tiny["population"]).parent)
    old = os.umask(0o027)
    try:
        assert main(["classify", str(run_file), "--quiet"]) == 0
    finally:
        os.umask(old)
    assert (out.stat().st_mode & 0o777) == 0o750
    assert (out.parent.stat().st_mode & 0o777) == 0o750


def test_actors_in_web_mercator_are_refused(tiny, tmp_path):
    """Clustering in EPSG:3857 metres would use eps 1.6 times too small at 58°N."""
    import geopandas as gpd

    from pari_geo.clustering.actors import find_microclusters
    from pari_geo.ingest import open_actors

    f = tmp_path / "actors3857.gpkg"
    gpd.read_file(tiny["actors"], layer="actors").to_crs("EPSG:3857").to_file(f)
    with pytest.raises(InputError, match=r"actors3857.gpkg \[actors\]: is in Web Mercator"):
        find_microclusters(open_actors(f), eps_m=300, min_actors=5, n_sim=0)


def test_a_signal_inside_an_import_is_raised_once_the_import_is_left():
    """SIGTERM raised in importlib's code could leave the import lock held (a hang seen in
    CI): such a signal is delivered again 10 ms later, outside the import."""
    import time
    import types

    from pari_geo import cli

    if not hasattr(signal, "setitimer"):
        pytest.skip("no interval timer on this platform")
    code = types.SimpleNamespace(co_filename="<frozen importlib._bootstrap>")
    in_import = types.SimpleNamespace(f_code=code, f_back=None)
    outside = types.SimpleNamespace(f_code=types.SimpleNamespace(co_filename=__file__),
                                    f_back=in_import)  # fmt: skip
    assert cli._in_import(outside) and not cli._in_import(None)
    previous = cli._install_signal_handlers()
    try:
        with pytest.raises(cli.Stopped, match="SIGTERM"):
            cli._raise_stopped(signal.SIGTERM, in_import)  # deferred: returns
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the timer's SIGALRM raises it here
                time.sleep(0.01)
        assert cli._DEFERRED == []
        plain = types.SimpleNamespace(f_code=types.SimpleNamespace(co_filename=__file__),
                                      f_back=None)  # fmt: skip
        with pytest.raises(cli.Stopped):
            cli._raise_stopped(signal.SIGTERM, plain)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        cli._restore_signal_handlers(previous)
