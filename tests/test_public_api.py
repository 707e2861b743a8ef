"""The public API: every name in ``__all__`` resolves, and importing is light."""

from __future__ import annotations

import subprocess
import sys

import pari_geo


def test_every_public_name_resolves():
    for name in pari_geo.__all__:
        assert getattr(pari_geo, name) is not None, name


def test_import_does_not_load_heavy_dependencies():
    """``import pari_geo`` adds none of the heavy packages to what xarray itself loads.

    The package face imports pandas and xarray to register the ``.pari`` accessors; some
    xarray releases (the declared minimum among them) import dask themselves when it is
    installed, so the check is against a bare ``import pandas, xarray`` in a fresh
    interpreter, not against an empty list.
    """
    heavy = "('numba', 'matplotlib', 'rasterio', 'geopandas', 'dask')"
    probe = "import sys, {mods}; print(','.join(m for m in " + heavy + " if m in sys.modules))"

    def loaded(mods: str) -> set[str]:
        out = subprocess.run([sys.executable, "-c", probe.format(mods=mods)],
                             capture_output=True, text=True, check=True)
        return set(filter(None, out.stdout.strip().split(",")))

    assert loaded("pari_geo") <= loaded("pandas, xarray")
    assert {"numba", "matplotlib", "rasterio", "geopandas"}.isdisjoint(loaded("pari_geo"))


def test_unknown_attribute():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pari_geo.nope  # noqa: B018


def test_cluster_tables_have_the_summary_accessor_without_extra_imports():
    """``clusters.pari`` works straight after ``find_microclusters`` (fresh interpreter)."""
    code = (
        "import numpy as np, geopandas as gpd, pari_geo\n"
        "xy = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [5, 5], [5000, 5000]], float)\n"
        "a = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=3006)\n"
        "c = pari_geo.find_microclusters(a, eps_m=50, min_actors=5, n_sim=9)\n"
        "print(len(c), int(c.pari.summary()['clusters'].sum()), '<table' in c.pari._repr_html_())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1", "True"]


def test_type_checkers_see_every_lazy_export():
    # the TYPE_CHECKING block re-exports exactly the lazy names, each as ``name as name``
    import ast
    from pathlib import Path

    tree = ast.parse(Path(pari_geo.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If)
                 and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        for alias in node.names:
            assert alias.asname == alias.name
            seen[alias.name] = "pari_geo." + node.module
    assert seen == pari_geo._LAZY
    assert (Path(pari_geo.__file__).parent / "py.typed").is_file()
