"""The public API: every name in ``__all__`` resolves, and importing is light."""

from __future__ import annotations

import subprocess
import sys

import pari_geo


def test_every_public_name_resolves():
    for name in pari_geo.__all__:
        assert getattr(pari_geo, name) is not None, name


def test_import_does_not_load_heavy_dependencies():
    code = ("import sys, pari_geo; heavy = [m for m in ('numba', 'matplotlib', 'rasterio', "
            "'geopandas', 'dask') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_unknown_attribute():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pari_geo.nope  # noqa: B018
