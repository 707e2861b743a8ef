"""The cluster maps drawn faster are the same files (issue 11).

- ``plot.PngWriter`` (pixels drawn here, PNG compressed and written in a thread) writes
  the bytes of :func:`pari_geo.plot.save_figure`;
- the municipal maps of ``pipeline._cluster_maps`` draw only the units and clusters that
  reach their view: the PNGs are those of drawing everything, byte for byte, also with
  clusters just outside the view (their lines and markers reach into it) and a ring-shaped
  cluster whose centroid lies inside the view but whose outline does not.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")
gpd = pytest.importorskip("geopandas")
shapely = pytest.importorskip("shapely")

from pari_geo import pipeline  # noqa: E402
from pari_geo.classes import NORDIC7  # noqa: E402
from pari_geo.plot import PngWriter, new_figure, plot_classes, save_figure  # noqa: E402

CRS = "EPSG:3006"
X0, Y0, CELL, N = 500_000.0, 6_500_000.0, 250.0, 120  # a 30 km square grid


def _classes():
    import rioxarray  # noqa: F401
    import xarray as xr

    rng = np.random.default_rng(1)
    codes = rng.choice([1, 2, 3, 4, 5, 6, 7, 0, 255], (N, N)).astype(np.uint8)
    x = X0 + CELL * (np.arange(N) + 0.5)
    y = Y0 - CELL * (np.arange(N) + 0.5)
    da = xr.DataArray(codes, dims=("y", "x"), coords={"y": y, "x": x})
    return da.rio.write_crs(CRS)


def _units():
    b = [shapely.box(X0, Y0 - 30_000, X0 + 12_000, Y0),  # a tall unit on the left
         shapely.box(X0 + 12_000, Y0 - 9_000, X0 + 30_000, Y0),  # a wide one on the top
         shapely.box(X0 + 12_000, Y0 - 30_000, X0 + 30_000, Y0 - 9_000)]  # fmt: skip
    return gpd.GeoDataFrame({"code": ["01", "02", "03"], "name": ["A", "B", "C"]},
                            geometry=b, crs=CRS)  # fmt: skip


def _clusters():
    disc = shapely.Point(X0 + 6_000, Y0 - 15_000).buffer(400)
    # a ring around the whole view of unit 02: its outline stays out, its centroid is in
    centre = shapely.Point(X0 + 21_000, Y0 - 4_500)
    ring = centre.buffer(13_300).difference(centre.buffer(13_000))
    # just outside the view of unit 01 (pad 5 % of 30 km = 1.5 km): the line reaches in
    near = shapely.Point(X0 - 1_500 - 420, Y0 - 20_000).buffer(400)
    far = shapely.Point(X0 + 28_000, Y0 - 28_000).buffer(600)
    rows = [(300.0, False, "01", disc), (300.0, True, "01", near), (300.0, True, "02", ring),
            (300.0, False, "03", far), (1000.0, True, "03", far.buffer(300)),
            (300.0, True, "01;03", shapely.box(X0 + 11_000, Y0 - 12_000, X0 + 13_000,
                                               Y0 - 10_000))]  # fmt: skip
    return gpd.GeoDataFrame(
        {"scale_eps_m": [r[0] for r in rows], "hidden": [r[1] for r in rows],
         "unit_ids": [r[2] for r in rows]},
        geometry=[r[3] for r in rows], crs=CRS)  # fmt: skip


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*.png"))}  # fmt: skip


def test_municipal_maps_are_those_drawing_everything(tmp_path, monkeypatch):
    args = (_classes(), NORDIC7, _units(), "code", _clusters())
    (tmp_path / "fast").mkdir()
    pipeline._cluster_maps(tmp_path / "fast", *args)
    fast = _files(tmp_path / "fast")
    assert sorted(fast) == ["clusters_map.png", "maps/hidden_01.png", "maps/hidden_02.png",
                            "maps/hidden_03.png"]  # fmt: skip

    # the reference: every unit and cluster on every map, each saved by save_figure
    monkeypatch.setattr(pipeline, "_reaching", lambda gdf, box, centroids=False: gdf)

    class Serial:
        def __init__(self, *a, **k):
            """Take PngWriter's arguments; this writer saves in the calling thread."""

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def save(self, fig, path):
            save_figure(fig, path)

    import pari_geo.plot

    monkeypatch.setattr(pari_geo.plot, "PngWriter", Serial)
    (tmp_path / "ref").mkdir()
    pipeline._cluster_maps(tmp_path / "ref", *args)
    ref = _files(tmp_path / "ref")
    assert fast.keys() == ref.keys()
    for name in ref:
        assert fast[name] == ref[name], name


def test_the_filter_leaves_out_what_cannot_reach_the_view():
    fig, ax = new_figure((8, 7))
    view = (X0 + 11_100, Y0 - 9_900, X0 + 30_900, Y0 + 900)  # unit 02 and its pad
    reach = pipeline._view_reach(ax, view)
    c = _clusters()
    assert not c.geometry[2].intersects(shapely.box(*view))
    assert pipeline._reaching(c, reach).index.tolist() == [5]  # 100 m below the view
    assert pipeline._reaching(c, reach, centroids=True).index.tolist() == [2, 5]


def _figure():
    fig, ax = new_figure((6, 5))
    rng = np.random.default_rng(3)
    ax.imshow(rng.integers(0, 7, (120, 90)), extent=(0, 900, 0, 1200), interpolation="nearest")
    ax.plot(rng.uniform(-500, 1500, 50), rng.uniform(-500, 1500, 50), color="k")
    ax.scatter([100, 800], [100, 1100], s=40)
    ax.set_title("A title wider than the axes of this small test figure, on purpose")
    ax.set_xlim(200, 600)
    return fig


def _class_map():
    fig, ax = new_figure((8, 7))
    plot_classes(_classes(), NORDIC7, ax=ax, units=_units(), title="Place types")
    return fig


@pytest.mark.parametrize("make", [_figure, _class_map])
def test_png_writer_writes_the_bytes_of_save_figure(tmp_path, make):
    save_figure(make(), tmp_path / "ref.png")
    with PngWriter() as png:
        png.save(make(), tmp_path / "a.png")
        png.save(make(), tmp_path / "b.png")
    ref = (tmp_path / "ref.png").read_bytes()
    assert (tmp_path / "a.png").read_bytes() == ref
    assert (tmp_path / "b.png").read_bytes() == ref


def test_png_writer_refuses_other_suffixes_and_reports_write_errors(tmp_path):
    from pari_geo.errors import OutputError

    with PngWriter() as png, pytest.raises(OutputError, match="PNG"):
        png.save(_figure(), tmp_path / "map.jpg")
    (tmp_path / "taken.png").write_bytes(b"not ours")
    with pytest.raises(OutputError), PngWriter() as png:  # no overwrite: the write fails
        png.save(_figure(), tmp_path / "taken.png")
    assert (tmp_path / "taken.png").read_bytes() == b"not ours"


def test_a_forked_helper_draws_half_of_the_municipal_maps_into_the_same_files(tmp_path,
                                                                              monkeypatch):
    """With two threads, every other municipal map is drawn by a forked helper process:
    the files are those of drawing them all here; a helper that fails is made good."""
    import os
    import sys
    import threading

    args = (_classes(), NORDIC7, _units(), "code", _clusters())
    (tmp_path / "one").mkdir()
    pipeline._cluster_maps(tmp_path / "one", *args, n_jobs=1)
    one = _files(tmp_path / "one")

    started = []
    real = pipeline._map_helper

    def spy(municipal, uids):
        proc = real(municipal, uids)
        started.append((proc is not None, list(uids)))
        return proc

    monkeypatch.setattr(pipeline, "_map_helper", spy)
    (tmp_path / "two").mkdir()
    forks = sys.platform.startswith("linux") and threading.active_count() == 1
    pipeline._cluster_maps(tmp_path / "two", *args, n_jobs=2)
    assert _files(tmp_path / "two") == one
    assert started == [(forks, ["01", "03"])]

    # a helper that dies at once: the parent draws its maps, the same files
    monkeypatch.setattr(pipeline, "_draw_maps_and_exit", lambda municipal, uids: os._exit(3))
    (tmp_path / "dead").mkdir()
    pipeline._cluster_maps(tmp_path / "dead", *args, n_jobs=2)
    assert _files(tmp_path / "dead") == one
    assert not list((tmp_path / "dead").rglob(".*part*"))


def test_no_helper_beside_other_threads_or_when_turned_off(tmp_path, monkeypatch):
    import threading

    municipal = pipeline._MunicipalMaps(tmp_path, _classes(), NORDIC7, _units(), "code",
                                        _clusters())  # fmt: skip
    monkeypatch.setenv("PARI_GEO_MAP_HELPER", "0")
    assert pipeline._map_helper(municipal, ["01"]) is None
    monkeypatch.delenv("PARI_GEO_MAP_HELPER")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert pipeline._map_helper(municipal, ["01"]) is None
    finally:
        stop.set()
        other.join()
    assert pipeline._map_helper(municipal, []) is None
