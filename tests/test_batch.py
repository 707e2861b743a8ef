"""Batch habits (issue 16): logging, plain progress in logs, ``pari-geo validate``."""

from __future__ import annotations

import io
import json

import pytest

from pari_geo._progress import PlainProgress, progress
from pari_geo.cli import main
from pari_geo.datasets import copy_example


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    with progress(True, 3, "pari-geo run", stream=out) as bar:
        bar.set_postfix_str("place types")
        bar.update(1)
        bar.set_postfix_str("micro-clusters")
        bar.update(2)
    text = out.getvalue()
    assert "\r" not in text
    assert text.splitlines() == ["pari-geo run: 1/3 place types",
                                 "pari-geo run: 3/3 micro-clusters"]


def test_progress_is_a_bar_on_a_terminal_and_silent_when_disabled():
    bar = progress(True, 2, "x", stream=_Tty())
    assert not isinstance(bar, PlainProgress)
    bar.close()
    out = io.StringIO()
    with progress(False, 2, "x", stream=out) as quiet:
        quiet.update(2)
    assert out.getvalue() == ""


@pytest.fixture
def example(tmp_path):
    return copy_example("ostergotland", tmp_path / "ex").parent


def test_verbose_and_log_file(example, tmp_path, capsys):
    log = tmp_path / "run.log"
    code = main(["-v", "--log-file", str(log), "classify",
                 str(example / "ostergotland_nordic7.toml")])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "pari-geo: classify" in cap.err and "pari-geo: wrote" in cap.err
    assert "\r" not in cap.err  # stderr is captured, not a terminal: plain lines
    assert "nordic7: 3/3" in cap.err
    text = log.read_text()
    assert "DEBUG pari_geo: input population:" in text
    assert "INFO pari_geo: wrote" in text


def test_validate_prints_the_plan_and_computes_nothing(example, capsys):
    code = main(["validate", str(example / "ostergotland_run.toml")])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    lines = cap.out.splitlines()
    assert lines[0].endswith("valid (nordic7); nothing was computed")
    assert any(line.strip().startswith("engine: memory; memory estimate") for line in lines)
    assert any("20,000 features" in line for line in lines)
    assert any(line.strip().startswith("synthetic data:") for line in lines)
    assert not (example.parent / "out").exists()


def test_validate_names_a_missing_column(example, capsys):
    run = example / "ostergotland_run.toml"
    run.write_text(run.read_text().replace('sector = "sector"', 'sector = "sectr"'))
    code = main(["validate", str(run)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "[actors]: has no column 'sectr' (inputs.actors.sector" in err


def test_validate_refuses_a_layer_outside_the_grid(example, tmp_path, capsys):
    import numpy as np
    from affine import Affine
    from helpers import write_tif

    far = tmp_path / "far.tif"
    write_tif(far, np.ones((3, 3), np.float32), crs="EPSG:3006",
              transform=Affine(1000, 0, 9e6, 0, -1000, 1e6))
    run = example / "ostergotland_nordic7.toml"
    run.write_text(run.read_text().replace(
        '"../data/sample_grids/ostergotland/agri_share.tif"', json.dumps(str(far))))
    code = main(["validate", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and "[agri]: does not overlap the population grid" in err
