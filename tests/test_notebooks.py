"""The notebooks run top to bottom and show their figures inline (issue 16).

Each notebook is executed in a fresh Jupyter kernel (nbclient), as a user runs it; the test
fails on any error and when a notebook shows fewer than two inline images (``image/png``
outputs), i.e. when its figures would not reach the executed notebook or its HTML. The
notebooks themselves check each figure's size, that it is not blank and that no legend or
title is cut at the figure edge.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def inline_images(nb) -> int:
    return sum(
        "image/png" in out.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )


def test_there_are_four_notebooks():
    assert [p.name for p in NOTEBOOKS] == [
        "01_degurba_belgium.ipynb",
        "02_place_types_ostergotland.ipynb",
        "03_hidden_microclusters.ipynb",
        "04_new_region.ipynb",
    ]


def test_notebooks_do_not_switch_the_backend():
    for path in NOTEBOOKS:
        text = path.read_text()
        assert "matplotlib.use(" not in text and "tempfile" not in text, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_shows_figures_inline(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    env_backend = os.environ.pop("MPLBACKEND", None)  # the user's default: inline
    try:
        NotebookClient(
            nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        if env_backend is not None:
            os.environ["MPLBACKEND"] = env_backend
    n = inline_images(nb)
    assert n >= 2, f"{path.name}: {n} inline image(s)"
    if os.environ.get("PARI_GEO_NOTEBOOK_OUT"):  # CI keeps the executed notebooks
        out = Path(os.environ["PARI_GEO_NOTEBOOK_OUT"])
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / path.name)
