"""Shared test fixtures: the bundled sample data and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PARI_GEO_DATA", str(ROOT / "data"))


@pytest.fixture(scope="session")
def belgium():
    """Paths of the bundled Belgium files, keyed by layer."""
    from pari_geo.datasets import belgium_paths

    return belgium_paths()


@pytest.fixture(scope="session")
def belgium_l2(belgium):
    """Default level-2 classification of Belgium (computed once)."""
    from pari_geo.typology.degurba import classify_grid

    return classify_grid(belgium["population"], belgium["built"], belgium["land"], level=2)


@pytest.fixture(scope="session")
def belgium_l1(belgium):
    """Default level-1 classification of Belgium (computed once)."""
    from pari_geo.typology.degurba import classify_grid

    return classify_grid(belgium["population"], belgium["built"], belgium["land"], level=1)


@pytest.fixture(params=["kernel", "twin"])
def both_grid_paths(request, monkeypatch):
    """Run a test twice: with the numba kernels on every grid, and with the exact
    numpy/scipy twins on every grid (``pari_geo._numba.SMALL_GRID_CELLS``)."""
    from pari_geo import _numba

    monkeypatch.setattr(_numba, "SMALL_GRID_CELLS", 0 if request.param == "kernel" else 1 << 62)
    return request.param
