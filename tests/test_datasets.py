"""Sample data and examples from any folder, as an installed wheel finds them (issue 16)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import pari_geo.datasets as ds
from pari_geo.cli import main
from pari_geo.errors import ConfigError, OutputError
from pari_geo.runconfig import load_run

ROOT = Path(__file__).resolve().parents[1]


def _fake_bundle(tmp_path):
    """A folder laid out like ``pari_geo/sample_data`` of a wheel, with one marker file."""
    bundle = tmp_path / "sample_data"
    (bundle / "sample_grids" / "belgium").mkdir(parents=True)
    (bundle / "sample_grids" / "belgium" / "POP.tif").write_bytes(b"marker")
    return bundle


def test_bundled_copy_is_found_before_the_repository(tmp_path, monkeypatch):
    bundle = _fake_bundle(tmp_path)
    monkeypatch.delenv("PARI_GEO_DATA", raising=False)
    monkeypatch.setattr(ds, "_BUNDLED", bundle)
    assert ds.sample_data_dir() == bundle
    assert ds.belgium_paths()["population"].read_bytes() == b"marker"


def test_environment_variable_comes_first(tmp_path, monkeypatch):
    bundle = _fake_bundle(tmp_path)
    monkeypatch.setenv("PARI_GEO_DATA", str(bundle))
    monkeypatch.setattr(ds, "_BUNDLED", tmp_path / "nothing")
    assert ds.sample_data_dir() == bundle


def test_outside_the_repository_without_data_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("PARI_GEO_DATA", raising=False)
    monkeypatch.setattr(ds, "_BUNDLED", tmp_path / "a")
    monkeypatch.setattr(ds, "_REPOSITORY", tmp_path / "b")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="reinstall pari_geo"):
        ds.sample_data_dir()


def test_ostergotland_paths_are_the_shipped_files():
    paths = ds.ostergotland_paths()
    assert paths["population"] == ROOT / "data/sample_grids/ostergotland/population.tif"
    assert all(p.is_file() for p in paths.values())


def test_every_bundled_folder_keeps_its_licence_or_synthetic_note():
    # only data whose licence allows it are bundled, each with its attribution or the
    # statement that it is synthetic
    folders = {f for _, f, _ in ds.EXAMPLES.values()}
    for f in folders:
        d = ROOT / "data" / "sample_grids" / f
        notes = " ".join(p.read_text() for p in d.glob("*.md"))
        assert "CC BY 4.0" in notes or "SYNTHETIC" in notes.upper()


@pytest.mark.parametrize("name", sorted(ds.EXAMPLES))
def test_copied_example_is_self_contained(name, tmp_path):
    dest = tmp_path / "ex"
    run_file = ds.copy_example(name, dest)
    runs, folder, _ = ds.EXAMPLES[name]
    assert sorted(p.name for p in (dest / "examples").iterdir()) == sorted(runs)
    for r in runs:
        # the run files are the repository's, byte for byte, and read only the copy
        assert (dest / "examples" / r).read_bytes() == (ROOT / "examples" / r).read_bytes()
        cfg = load_run(dest / "examples" / r)
        for layer in cfg.inputs.values():
            assert layer.path.is_file()
            assert dest.resolve() in layer.path.resolve().parents
        assert cfg.out_dir.resolve() == (dest / "out" / Path(r).stem).resolve()
    assert run_file == dest / "examples" / runs[0]


def test_copy_refuses_a_non_empty_folder_unless_overwrite(tmp_path):
    dest = tmp_path / "ex"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep")
    with pytest.raises(OutputError, match="is not empty"):
        ds.copy_example("belgium", dest)
    ds.copy_example("belgium", dest, overwrite=True)
    assert (dest / "mine.txt").read_text() == "keep"
    assert (dest / "data/sample_grids/belgium/POP.tif").is_file()


def test_unknown_example_names_the_choices(tmp_path):
    with pytest.raises(ConfigError, match="unknown example 'mars'; choose one of belgium"):
        ds.copy_example("mars", tmp_path / "x")


def test_cli_example_list_and_copy(tmp_path, capsys):
    assert main(["example", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("belgium ")
    assert "ostergotland" in out
    dest = tmp_path / "demo"
    assert main(["example", "ostergotland", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "pari-geo run examples/ostergotland_run.toml --overwrite" in out
    assert (dest / "examples" / "ostergotland_run.toml").is_file()
    # a second copy into the same folder: one line, exit 2
    assert main(["example", "ostergotland", str(dest)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not empty" in err


def test_cli_example_runs_from_the_copy(tmp_path, capsys, monkeypatch):
    dest = tmp_path / "demo"
    assert main(["example", "ostergotland", str(dest)]) == 0
    monkeypatch.chdir(dest)
    code = main(["classify", "examples/ostergotland_nordic7.toml", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert (dest / "out" / "ostergotland_nordic7" / "place_types.tif").is_file()


def test_build_hook_bundles_what_exists():
    # setup.py copies these folders into pari_geo/sample_data of the wheel; the sdist
    # (MANIFEST.in) carries them and the tests
    text = (ROOT / "setup.py").read_text()
    assert '("data/sample_grids", "sample_data/sample_grids", "*/*")' in text
    assert '("examples", "sample_data/examples", "*.toml")' in text
    manifest = (ROOT / "MANIFEST.in").read_text().split()
    for folder in ("data", "examples", "tests", "notebooks"):
        assert folder in manifest
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["pari-geo"] == "pari_geo.cli:main"
