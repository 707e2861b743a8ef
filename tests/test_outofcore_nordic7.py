"""The tiled (out-of-core) nordic7 path is identical, cell for cell, to the in-memory path.

Tile shapes cut settlements, cores and window halos at edges and corners (7x5, 13x17,
3x4 on small grids), and the chunk-invariant window-mean kernel is checked against a
pure numpy twin.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from pari_geo.classes import NORDIC7
from pari_geo.datasets.ostergotland import make_ostergotland
from pari_geo.errors import ConfigError, InputError
from pari_geo.io_write import write_class_raster
from pari_geo.outofcore._window_kernels import window_mean_direct
from pari_geo.typology.classify import classify_nordic7
from pari_geo.typology.nordic7 import Nordic7Params, classify_nordic7_array, window_mean
from pari_geo.typology.nordic7_tiled import classify_nordic7_tiled

# each test runs with the numba kernels and with their exact numpy/scipy twins
pytestmark = pytest.mark.usefixtures("both_grid_paths")

ROOT = Path(__file__).resolve().parents[1]
OST = ROOT / "data" / "sample_grids" / "ostergotland"
LAYERS = {  # array-API name -> tiled-API name
    "built_share": "built",
    "land_share": "land",
    "agri_share": "agri",
    "commuting_share": "commuting",
    "service_minutes": "service_minutes",
}


# ---------------------------------------------------------------------------------------
# the window-mean kernel
# ---------------------------------------------------------------------------------------
def window_mean_twin(values: np.ndarray, size: int) -> np.ndarray:
    """Pure numpy: direct sums along rows left to right, then down columns, from 0."""
    v = np.asarray(values, dtype=np.float64)
    if size <= 1:
        return v.copy()
    before = size // 2
    after = size - 1 - before
    rows, cols = v.shape
    finite = np.isfinite(v)
    vals = np.where(finite, v, 0.0)
    pinf = np.isposinf(v)

    def shifted(a: np.ndarray, d: int, axis: int, fill) -> np.ndarray:
        out = np.full_like(a, fill)
        n = a.shape[axis]
        if abs(d) >= n:
            return out
        src = [slice(None)] * 2
        dst = [slice(None)] * 2
        if d >= 0:
            src[axis], dst[axis] = slice(d, n), slice(0, n - d)
        else:
            src[axis], dst[axis] = slice(0, n + d), slice(-d, n)
        out[tuple(dst)] = a[tuple(src)]
        return out

    row_s = np.zeros((rows, cols))
    row_n = np.zeros((rows, cols), np.int64)
    row_inf = np.zeros((rows, cols), bool)
    for d in range(-before, after + 1):  # left to right
        row_s = row_s + shifted(vals, d, 1, 0.0)
        row_n += shifted(finite.astype(np.int64), d, 1, 0)
        row_inf |= shifted(pinf, d, 1, False)
    row_s = np.where(row_inf, 0.0, row_s)  # rows holding +inf are skipped by the kernel
    row_n = np.where(row_inf, 0, row_n)
    s = np.zeros((rows, cols))
    n = np.zeros((rows, cols), np.int64)
    inf = np.zeros((rows, cols), bool)
    for d in range(-before, after + 1):  # top to bottom
        s = s + shifted(row_s, d, 0, 0.0)
        n += shifted(row_n, d, 0, 0)
        inf |= shifted(row_inf, d, 0, False)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    mean[inf] = np.inf
    return mean


def _random_values(rng, shape):
    v = rng.random(shape) * 1000.0 * rng.random(shape) ** 3
    u = rng.random(shape)
    v[u < 0.15] = np.nan
    v[(u >= 0.15) & (u < 0.16)] = np.inf
    v[(u >= 0.16) & (u < 0.17)] = -np.inf
    return v


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 9, 21])
def test_window_mean_kernel_equals_numpy_twin(size):
    rng = np.random.default_rng(size)
    for shape in ((1, 1), (1, 13), (17, 1), (23, 31), (5, 40)):
        v = _random_values(rng, shape)
        got = window_mean(v, size)
        np.testing.assert_array_equal(got, window_mean_twin(v, size))
    big = _random_values(rng, (12, 12))
    big[:] = np.nan
    assert np.isnan(window_mean(big, size)).all()


@pytest.mark.parametrize("size", [3, 7, 9])
def test_window_mean_on_tiles_with_halo_is_bit_identical(size):
    rng = np.random.default_rng(100 + size)
    v = _random_values(rng, (41, 37))
    v[~np.isfinite(v)] = np.nan
    v[5, 5] = np.inf
    whole = window_mean(v, size)
    h = size // 2
    for tr, tc in ((7, 5), (3, 11), (41, 1)):
        tiled = np.empty_like(whole)
        for r0 in range(0, v.shape[0], tr):
            for c0 in range(0, v.shape[1], tc):
                r1, c1 = min(v.shape[0], r0 + tr), min(v.shape[1], c0 + tc)
                R0, C0 = max(0, r0 - h), max(0, c0 - h)
                R1, C1 = min(v.shape[0], r1 + h), min(v.shape[1], c1 + h)
                part = window_mean_direct(np.ascontiguousarray(v[R0:R1, C0:C1]), h, h)
                tiled[r0:r1, c0:c1] = part[r0 - R0:r1 - R0, c0 - C0:c1 - C0]
        np.testing.assert_array_equal(tiled, whole)


def test_window_mean_keeps_the_old_semantics():
    from scipy import ndimage

    rng = np.random.default_rng(7)
    v = _random_values(rng, (30, 20))
    v[np.isneginf(v)] = np.nan  # the old function treated -inf as missing too
    for size in (3, 7):
        finite = np.isfinite(v)
        s = ndimage.uniform_filter(np.where(finite, v, 0.0), size=size, mode="constant")
        n = ndimage.uniform_filter(finite.astype(float), size=size, mode="constant")
        with np.errstate(invalid="ignore", divide="ignore"):
            old = np.where(n > 0.5 / size**2, s / np.where(n > 0, n, 1.0), np.nan)
        old[ndimage.maximum_filter(np.isposinf(v), size=size, mode="constant")] = np.inf
        np.testing.assert_allclose(window_mean(v, size), old, rtol=1e-12, atol=1e-9)


# ---------------------------------------------------------------------------------------
# identity on the Östergötland-shaped sample
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ost():
    return make_ostergotland(1000)


def _tiled_codes(pop, cell_size_m, layers, tile_shape, **kw):
    args = {LAYERS[k]: v for k, v in layers.items()}
    res = classify_nordic7_tiled(pop, cell_size_m=cell_size_m, tile_shape=tile_shape,
                                 **args, **kw)
    return res


@pytest.mark.parametrize(
    ("tile_shape", "layers"),
    [
        ((7, 5), tuple(LAYERS)),
        ((13, 17), tuple(LAYERS)),
        ((64, 64), tuple(LAYERS)),
        ((13, 17), ()),
        ((64, 64), ()),
        ((7, 5), ("land_share",)),
        ((64, 64), ("built_share", "land_share")),
        ((31, 8), ("agri_share", "commuting_share")),
    ],
)
def test_ostergotland_identity(ost, tile_shape, layers):
    L = ost.layers
    given = {k: L[k] for k in layers}
    ref, info = classify_nordic7_array(L["population"], cell_size_m=1000, **given)
    res = _tiled_codes(L["population"], 1000, given, tile_shape)
    np.testing.assert_array_equal(res.codes, ref)
    assert res.class_cells == info["class_cells"]
    meta = {k: v for k, v in info["metadata"].items() if k != "class_residents"}
    assert {k: v for k, v in res.metadata.items() if k != "class_residents"} == meta
    for c, v in info["class_residents"].items():
        assert res.metadata["class_residents"][c] == pytest.approx(v, rel=1e-12)


def test_ostergotland_parameters_and_speed(ost):
    """Lower core threshold (more cores, holes, linked settlements), array speed."""
    L = ost.layers
    rng = np.random.default_rng(3)
    speed = np.full(L["population"].shape, np.nan)
    speed[rng.random(speed.shape) < 0.2] = 90.0
    speed[rng.random(speed.shape) < 0.02] = 0.0
    params = Nordic7Params(urban_core_min_pop=4000, local_centre_min_pop=1000,
                           core_max_gap_km2=40, inner_radius_m=2000)
    given = {k: L[k] for k in ("built_share", "land_share", "agri_share")}
    ref, info = classify_nordic7_array(L["population"], cell_size_m=1000, speed_kmh=speed,
                                       params=params, **given)
    assert info["n_cores"] > 3
    res = _tiled_codes(L["population"], 1000, given, (11, 9), speed_kmh=speed, params=params)
    np.testing.assert_array_equal(res.codes, ref)
    res = _tiled_codes(L["population"], 1000, given, (40, 40), speed_kmh=80.0, params=params)
    ref, _ = classify_nordic7_array(L["population"], cell_size_m=1000, speed_kmh=80.0,
                                    params=params, **given)
    np.testing.assert_array_equal(res.codes, ref)


def test_ostergotland_250m(ost):
    sample = make_ostergotland(250)
    L = sample.layers
    given = {k: L[k] for k in ("built_share", "land_share", "agri_share")}
    ref, _ = classify_nordic7_array(L["population"], cell_size_m=250, **given)
    res = _tiled_codes(L["population"], 250, given, (100, 130))
    np.testing.assert_array_equal(res.codes, ref)


def test_ostergotland_files_same_raster_and_tags(tmp_path):
    kw = {
        "built": OST / "built_share.tif",
        "land": OST / "land_share.tif",
        "agri": OST / "agri_share.tif",
        "commuting": OST / "commuting_share.tif",
        "service_minutes": OST / "service_minutes.tif",
    }
    da = classify_nordic7(OST / "population.tif", **kw)
    write_class_raster(da, tmp_path / "mem.tif", NORDIC7)
    res = classify_nordic7_tiled(OST / "population.tif", **kw, out_path=tmp_path / "t.tif",
                                 tile_shape=(13, 17))
    assert res.codes is None and res.path == tmp_path / "t.tif"
    with rasterio.open(tmp_path / "mem.tif") as a, rasterio.open(res.path) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
        assert a.profile == b.profile
        assert a.colormap(1) == b.colormap(1)
        tags = b.tags()
        assert json.loads(tags.pop("OUT_OF_CORE")) == {
            "module": "pari_geo.outofcore.nordic7", "tile_shape": [13, 17]}
        assert a.tags() == tags
    with pytest.raises(Exception, match="exists"):
        classify_nordic7_tiled(OST / "population.tif", out_path=res.path)


# ---------------------------------------------------------------------------------------
# the real Belgium grids
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("tile_shape", [(13, 17), (64, 64)])
def test_belgium_identity(belgium, tile_shape, tmp_path):
    kw = {"built": belgium["built"], "land": belgium["land"], "built_unit": "m2",
          "land_unit": "m2"}
    ref = classify_nordic7(belgium["population"], **kw)
    res = classify_nordic7_tiled(belgium["population"], tile_shape=tile_shape,
                                 workdir=tmp_path, **kw)
    np.testing.assert_array_equal(res.codes, ref.values)
    assert set(np.unique(ref.values).tolist()) >= {1, 2, 3, 5, 6}
    assert list(tmp_path.iterdir()) == []  # the temporary folder is gone


# ---------------------------------------------------------------------------------------
# hand-made random grids
# ---------------------------------------------------------------------------------------
def _random_grid(seed: int, shape=(37, 43)):
    rng = np.random.default_rng(seed)
    rows, cols = shape
    pop = np.zeros(shape)
    for _ in range(6):  # towns of random size: settlements cut by tile edges
        r, c = rng.integers(0, rows), rng.integers(0, cols)
        h, w = rng.integers(1, 8), rng.integers(1, 8)
        pop[r:r + h, c:c + w] += rng.choice([200.0, 800.0, 2500.0])
    pop += np.round(rng.random(shape) ** 6 * 400)
    pop[rng.random(shape) < 0.03] = np.nan
    land = np.clip(1.2 - rng.random(shape) * 1.1, 0, 1)
    land[rng.random(shape) < 0.05] = np.nan
    land[rng.random(shape) < 0.03] = 0.0
    built = np.clip(rng.random(shape) ** 4, 0, 1)
    built[rng.random(shape) < 0.05] = np.nan
    agri = rng.random(shape)
    agri[rng.random(shape) < 0.05] = np.nan
    comm = rng.random(shape) * 0.4
    svc = rng.random(shape) * 60
    svc[rng.random(shape) < 0.05] = np.nan
    return pop, {"built_share": built, "land_share": land, "agri_share": agri,
                 "commuting_share": comm, "service_minutes": svc}


@pytest.mark.parametrize("seed", range(6))
def test_random_grids_identity(seed):
    pop, layers = _random_grid(seed)
    rng = np.random.default_rng(1000 + seed)
    keep = [k for k in layers if rng.random() < 0.6]
    given = {k: layers[k] for k in keep}
    cell = float(rng.choice([250.0, 500.0, 1000.0]))
    params = Nordic7Params(urban_core_min_pop=float(rng.choice([2000, 5000, 15000])),
                           local_centre_min_pop=1000, core_max_gap_km2=float(
                               rng.choice([0.5, 2.0, 15.0])), settlement_density=200.0)
    ref, info = classify_nordic7_array(pop, cell_size_m=cell, params=params, **given)
    for tile_shape in ((3, 4), (7, 5), (37, 43)):
        res = _tiled_codes(pop, cell, given, tile_shape, params=params)
        np.testing.assert_array_equal(res.codes, ref, err_msg=f"{seed} {tile_shape} {keep}")
    assert res.metadata["n_cores"] == info["n_cores"]


def test_hole_touching_the_grid_edge_and_hole_in_a_corner_tile():
    pop = np.zeros((12, 12))
    pop[1:10, 1:10] = 600.0  # 81 x 600 residents: a core
    pop[4:6, 4:6] = 0.0  # a 4-cell hole, filled
    pop[7:10, 0] = 0.0  # open to the grid edge: not a hole
    pop[8, 8] = np.nan  # a missing cell inside the core
    ref, info = classify_nordic7_array(pop, cell_size_m=1000)
    assert info["filled_holes"].sum() == 5  # the 2x2 pocket and the missing cell
    for tile_shape in ((5, 5), (2, 3), (12, 1)):
        res = classify_nordic7_tiled(pop, cell_size_m=1000, tile_shape=tile_shape)
        np.testing.assert_array_equal(res.codes, ref)


def test_tied_inner_patches_first_in_raster_order():
    pop = np.zeros((9, 15))
    pop[2:7, 1:14] = 400.0  # a long settlement, one core with the patches below
    pop[3:6, 2:5] = 3000.0  # two equal dense patches: the first one is inner
    pop[3:6, 10:13] = 3000.0
    params = Nordic7Params(urban_core_min_pop=15000, inner_radius_m=0)
    ref, _ = classify_nordic7_array(pop, cell_size_m=1000, params=params)
    assert (ref == 1).sum() == 9 and ref[4, 3] == 1 and ref[4, 11] == 2
    for tile_shape in ((4, 6), (9, 8), (1, 15)):
        res = classify_nordic7_tiled(pop, cell_size_m=1000, tile_shape=tile_shape,
                                     params=params)
        np.testing.assert_array_equal(res.codes, ref)


# ---------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------
def test_bad_inputs(tmp_path, belgium):
    pop = np.ones((5, 6))
    with pytest.raises(InputError, match="give cell_size_m"):
        classify_nordic7_tiled(pop)
    with pytest.raises(InputError, match="outside the 100 m"):
        classify_nordic7_tiled(pop, cell_size_m=50)
    with pytest.raises(InputError, match=r"has shape \(5, 5\), population has \(5, 6\)"):
        classify_nordic7_tiled(pop, cell_size_m=1000, land=np.ones((5, 5)))
    with pytest.raises(InputError, match="share outside 0..1 in 1 cells"):
        land = np.ones((5, 6))
        land[2, 2] = 3.0
        classify_nordic7_tiled(pop, cell_size_m=1000, land=land)
    with pytest.raises(InputError, match="negative residents"):
        classify_nordic7_tiled(-pop, cell_size_m=1000)
    with pytest.raises(InputError, match="needs a georeferenced population"):
        classify_nordic7_tiled(pop, cell_size_m=1000, out_path=tmp_path / "x.tif")
    with pytest.raises(ConfigError, match="tile_shape"):
        classify_nordic7_tiled(pop, cell_size_m=1000, tile_shape=(0, 3))
    with pytest.raises(ConfigError, match="built_unit"):
        classify_nordic7_tiled(pop, cell_size_m=1000, built_unit="km2")
    with pytest.raises(ConfigError, match="unknown nordic7 parameter"):
        classify_nordic7_tiled(pop, cell_size_m=1000, urban_core_min_popp=1)
    with pytest.raises(InputError, match="population's grid"):
        classify_nordic7_tiled(belgium["population"], land=OST / "land_share.tif")
    with pytest.raises(InputError, match="file not found"):
        classify_nordic7_tiled(tmp_path / "missing.tif")
    with pytest.raises(InputError, match="declared a share but has values up to"):
        classify_nordic7_tiled(belgium["population"], built=belgium["built"])


def test_landcover_and_dataarrays_as_the_file_level_api(tmp_path):
    from pari_geo.ingest import open_raster
    from pari_geo.typology.nordic7 import CORINE_AGRICULTURAL

    agri = open_raster(OST / "agri_share.tif", "agri")
    rng = np.random.default_rng(5)
    classes = np.where(agri.values > 0.4, 211.0, 311.0)
    classes[rng.random(classes.shape) < 0.1] = 112.0
    classes[rng.random(classes.shape) < 0.05] = np.nan
    lc = agri.copy(data=classes)
    pop = open_raster(OST / "population.tif", "population")
    land = open_raster(OST / "land_share.tif", "land")
    mapping = {**CORINE_AGRICULTURAL, 311: 0.5}
    ref = classify_nordic7(pop, land=land, landcover=lc, landcover_mapping=mapping)
    res = classify_nordic7_tiled(pop, land=land, landcover=lc, landcover_mapping=mapping,
                                 tile_shape=(13, 17))
    np.testing.assert_array_equal(res.codes, ref.values)
    assert "agri_share" in res.metadata["layers_used"]
    bad = lc.copy(data=np.where(np.isnan(classes), 999.0, classes))
    with pytest.raises(InputError, match=r"missing from the agricultural mapping: \[999\]"):
        classify_nordic7_tiled(pop, landcover=bad, tile_shape=(13, 17))


def test_dataarray_population_with_file_layers(belgium):
    from pari_geo.ingest import open_raster

    pop = open_raster(belgium["population"], "population")
    kw = {"built": belgium["built"], "land": belgium["land"], "built_unit": "m2",
          "land_unit": "m2", "speed_kmh": 45.0, "close_to_urban_minutes": 15}
    ref = classify_nordic7(pop, **kw)
    res = classify_nordic7_tiled(pop, tile_shape=(50, 70), **kw)
    np.testing.assert_array_equal(res.codes, ref.values)
