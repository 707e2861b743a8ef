"""Out-of-core DEGURBA: tiled components and the chunked classification.

* every numba kernel of ``pari_geo.outofcore._kernels`` against a pure numpy/python twin;
* ``label_tiled`` against ``scipy.ndimage.label`` (same labels, sums equal to
  ``np.bincount``, counts, bounding boxes) on random masks, tile corners, U shapes;
* ``classify_grid_chunked`` cell for cell against ``classify_grid`` on the bundled Belgium
  grids (levels 1 and 2, the parameter sets of the foundation tests, tile shapes cutting
  clusters at edges and corners) and on random hand-built grids;
* the written file: same tags, colour table, CRS and transform as the in-memory writer.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from scipy import ndimage

from pari_geo import classify_grid_chunked
from pari_geo.errors import ConfigError, InputError
from pari_geo.outofcore import _kernels as kern
from pari_geo.outofcore import tiled as ooc
from pari_geo.outofcore._unionfind import flatten
from pari_geo.outofcore.components import RawGrid, iter_strips, iter_tiles, label_tiled
from pari_geo.typology.degurba import classify_grid

R2022A = "majority_rule_R2022A"
STRUCT = {4: ndimage.generate_binary_structure(2, 1), 8: ndimage.generate_binary_structure(2, 2)}


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
def write_tif(path, values, nodata=None, dtype=None, transform=None):
    values = np.asarray(values)
    profile = {
        "driver": "GTiff",
        "height": values.shape[0],
        "width": values.shape[1],
        "count": 1,
        "dtype": dtype or values.dtype,
        "crs": "ESRI:54009",
        "transform": transform or Affine(1000, 0, 0, 0, -1000, values.shape[0] * 1000),
    }
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(profile["dtype"]), 1)
    return path


def read1(path):
    with rasterio.open(path) as src:
        return src.read(1)


def ref_components(mask, conn, weights=None):
    lab, n = ndimage.label(mask, structure=STRUCT[conn])
    w = np.zeros(mask.shape) if weights is None else np.nan_to_num(weights, nan=0.0)
    sums = np.bincount(lab.ravel(), weights=w.ravel(), minlength=n + 1)
    sums[0] = 0.0
    counts = np.bincount(lab.ravel(), minlength=n + 1)
    counts[0] = 0
    return lab, n, sums, counts


def assert_same_components(mask, conn, tile_shape, weights=None):
    lab, n, sums, counts = ref_components(mask, conn, weights)
    got = label_tiled(mask, conn, tile_shape=tile_shape, weights=weights)
    assert got.n == n
    np.testing.assert_array_equal(got.labels(), lab)
    assert np.array_equal(got.sums, sums)  # bit-identical, raster order
    np.testing.assert_array_equal(got.counts[1:], counts[1:])
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        assert got.bbox[k].tolist() == [sl[0].start, sl[0].stop - 1, sl[1].start,
                                        sl[1].stop - 1]
    return got


# ----------------------------------------------------------------------------------------
# kernels against numpy/python twins
# ----------------------------------------------------------------------------------------
def _py_partition(n, pairs):
    parent = list(range(n + 1))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(i) for i in range(n + 1)])


def test_seam_union_and_flatten_match_python_twin():
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        la, lb = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        a = np.where(rng.random(la) < 0.6, rng.integers(1, n + 1, la), 0).astype(np.int32)
        b = np.where(rng.random(lb) < 0.6, rng.integers(1, n + 1, lb), 0).astype(np.int32)
        offset = int(rng.integers(-2, 4))
        diagonal = bool(rng.integers(0, 2))
        parent = np.arange(n + 1, dtype=np.int64)
        kern.seam_union(parent, a, b, offset, diagonal)
        n_roots = flatten(parent) - 1  # id 0 is a root too
        pairs = []
        for i in range(lb):
            for k in ([i + offset - 1, i + offset, i + offset + 1] if diagonal
                      else [i + offset]):
                if 0 <= k < la and a[k] > 0 and b[i] > 0:
                    pairs.append((int(a[k]), int(b[i])))
        want = _py_partition(n, pairs)
        np.testing.assert_array_equal(parent, want)
        assert n_roots == len(set(want[1:].tolist()))


def test_resolve_strip_matches_numpy_twin():
    rng = np.random.default_rng(5)
    for _ in range(50):
        rows, cols = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        n_prov = int(rng.integers(1, 20))
        raw = np.where(rng.random((rows, cols)) < 0.5,
                       rng.integers(1, n_prov + 1, (rows, cols)), 0).astype(np.int32)
        roots = np.minimum(np.arange(n_prov + 1), rng.integers(0, n_prov + 1, n_prov + 1))
        roots[0] = 0
        roots = np.where(roots == 0, np.arange(n_prov + 1), roots)
        roots = roots[roots]  # flat (every entry points at a root): roots of roots
        roots = np.array([r if roots[r] == r else r for r in roots], dtype=np.int64)
        for i in range(n_prov + 1):  # make it a valid flat forest
            roots[i] = roots[roots[i]]
        w = rng.random((rows, cols)) * 100
        w[rng.random((rows, cols)) < 0.2] = np.nan
        n_roots = len({int(roots[i]) for i in range(1, n_prov + 1)})
        compact = np.zeros(n_prov + 1, dtype=np.int32)
        state = np.zeros(1, dtype=np.int64)
        sums = np.zeros(n_roots + 1)
        counts = np.zeros(n_roots + 1, dtype=np.int64)
        bbox = np.zeros((n_roots + 1, 4), dtype=np.int64)
        half = rows // 2
        for r0, r1 in ((0, half), (half, rows)):  # two strips, raster order
            kern.resolve_strip(raw[r0:r1], w[r0:r1], r0, roots,
                               kern.StripTables(compact, state, sums, counts, bbox))
        # twin: ids by first appearance of the root in raster order
        root_grid = np.where(raw > 0, roots[raw], 0)
        order = [int(x) for x in root_grid.ravel() if x > 0]
        first = list(dict.fromkeys(order))
        final = np.zeros(root_grid.shape, dtype=np.int64)
        for k, r in enumerate(first, start=1):
            final[root_grid == r] = k
        m = len(first)
        assert state[0] == m
        want = np.bincount(final.ravel(), weights=np.nan_to_num(w).ravel(), minlength=m + 1)
        assert np.array_equal(sums[1:m + 1], want[1:])
        np.testing.assert_array_equal(counts[1:m + 1], np.bincount(final.ravel())[1:])
        for k in range(1, m + 1):
            rr, cc = np.nonzero(final == k)
            assert bbox[k].tolist() == [rr.min(), rr.max(), cc.min(), cc.max()]
        lut = np.zeros(n_prov + 1, dtype=np.int32)
        lut[1:] = compact[roots[1:]]
        out = kern.map_ids(raw, lut, np.empty(raw.shape, dtype=np.int32))
        np.testing.assert_array_equal(out, final)


def test_pairwise_file_sum_is_numpys_sum(tmp_path):
    rng = np.random.default_rng(3)
    for n in (0, 1, 7, 8, 9, 129, 1000, 4097, 20011):
        a = rng.random(n) * 10 ** rng.uniform(-3, 3, n)
        path = tmp_path / f"v{n}.f64"
        a.tofile(path)
        for chunk in (128, 200, 1000, 1 << 22):
            assert ooc._pairwise_sum_file(path, n, chunk) == float(np.add.reduce(a))


def test_merge_rectangles_matches_brute_force():
    rng = np.random.default_rng(8)
    for _ in range(100):
        k = int(rng.integers(1, 25))
        r0 = rng.integers(0, 60, k)
        c0 = rng.integers(0, 60, k)
        rects = np.stack([r0, r0 + rng.integers(1, 12, k), c0, c0 + rng.integers(1, 12, k)],
                         axis=1)
        groups = ooc._merge_rectangles(rects)
        members = sorted(i for _, m in groups for i in m)
        assert members == list(range(k))
        boxes = [g[0] for g in groups]
        for i, a in enumerate(boxes):  # pairwise disjoint
            for b in boxes[i + 1:]:
                assert not (a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3])
        for box, m in groups:  # each box is the union box of its members
            sub = rects[m]
            assert box == (sub[:, 0].min(), sub[:, 1].max(), sub[:, 2].min(), sub[:, 3].max())


# ----------------------------------------------------------------------------------------
# components against scipy
# ----------------------------------------------------------------------------------------
def test_raw_grid_writes_exactly_its_window(tmp_path):
    """Positioned writes: full-width blocks, partial rows, dtype conversion, bounds."""
    g = RawGrid(tmp_path / "w.raw", (4, 6), np.int16)
    g.write(1, 0, np.full((2, 6), 7))  # full width: one write, converted to int16
    g.write(0, 4, np.array([[1, 2]], np.int64))
    g.write(3, 1, np.arange(3, dtype=np.int16)[None, :])
    expect = np.zeros((4, 6), np.int16)
    expect[1:3] = 7
    expect[0, 4:6] = [1, 2]
    expect[3, 1:4] = [0, 1, 2]
    np.testing.assert_array_equal(np.fromfile(g.path, np.int16).reshape(4, 6), expect)
    for r0, c0, shape in ((3, 0, (2, 1)), (0, 5, (1, 2)), (-1, 0, (1, 1))):
        with pytest.raises(ValueError, match="outside"):
            g.write(r0, c0, np.zeros(shape, np.int16))
    g.write(0, 0, np.zeros((0, 3), np.int16))  # empty: nothing


def test_raw_grid_and_tiling(tmp_path):
    g = RawGrid(tmp_path / "g.raw", (5, 7), np.float64)
    a = np.arange(35.0).reshape(5, 7)
    for r0, r1, c0, c1 in iter_tiles((5, 7), (2, 3)):
        g.write(r0, c0, a[r0:r1, c0:c1])
    np.testing.assert_array_equal(g.read(0, 5, 0, 7), a)
    np.testing.assert_array_equal(g.read(1, 4, 2, 6), a[1:4, 2:6])
    cover = np.zeros((5, 7), int)
    for r0, r1, c0, c1 in iter_tiles((5, 7), (2, 3)):
        cover[r0:r1, c0:c1] += 1
    assert (cover == 1).all()
    assert list(iter_strips((5, 7), 1)) == [(i, i + 1) for i in range(5)]
    with pytest.raises(ValueError):
        list(iter_tiles((5, 7), (0, 3)))


@pytest.mark.parametrize("conn", [4, 8])
def test_label_tiled_random_masks(conn):
    rng = np.random.default_rng(100 + conn)
    for _ in range(60):
        shape = (int(rng.integers(1, 35)), int(rng.integers(1, 35)))
        mask = rng.random(shape) < rng.uniform(0.2, 0.75)
        w = rng.random(shape) * 1000
        w[rng.random(shape) < 0.1] = np.nan
        tile = (int(rng.integers(1, 9)), int(rng.integers(1, 9)))
        assert_same_components(mask, conn, tile, w)


@pytest.mark.parametrize("conn", [4, 8])
@pytest.mark.parametrize("tile", [(7, 5), (13, 17), (1, 1), (2, 40), (40, 1)])
def test_label_tiled_blobs_and_special_shapes(conn, tile):
    rng = np.random.default_rng(7)
    field = ndimage.uniform_filter(rng.random((40, 37)), size=5)
    mask = field > np.quantile(field, 0.55)
    assert_same_components(mask, conn, tile, field)
    # a U that closes only in a later tile row; a spiral; diagonal steps over tile corners
    u = np.zeros((20, 20), bool)
    u[0:18, 2] = u[0:18, 15] = u[17, 2:16] = True
    assert_same_components(u, conn, tile, np.ones(u.shape))
    spiral = np.zeros((21, 21), bool)
    r, c, dr, dc, length = 10, 10, 0, 1, 1
    for i in range(40):
        for _ in range(length):
            spiral[r, c] = True
            r, c = min(max(r + dr, 0), 20), min(max(c + dc, 0), 20)
        dr, dc = dc, -dr
        length += i % 2
    assert_same_components(spiral, conn, tile)
    diag = np.eye(23, dtype=bool) | np.fliplr(np.eye(23, dtype=bool))
    got = assert_same_components(diag, conn, tile)
    assert got.n == (1 if conn == 8 else 23 * 2 - 1)


def test_label_tiled_corner_only_contacts():
    # four tiles of 3x3; the cells meet only at the common corner of the four tiles
    m = np.zeros((6, 6), bool)
    m[2, 2] = m[3, 3] = m[2, 3] = False
    m[2, 2] = m[3, 3] = True  # main diagonal over the corner
    m[0, 5] = m[1, 4] = True  # anti-diagonal inside one tile row
    m[5, 0] = True
    for conn in (4, 8):
        got = assert_same_components(m, conn, (3, 3))
        assert got.n == (3 if conn == 8 else 5)
    m2 = np.zeros((6, 6), bool)
    m2[2, 3] = m2[3, 2] = True  # anti-diagonal over the corner
    assert assert_same_components(m2, 8, (3, 3)).n == 1
    assert label_tiled(np.zeros((0, 4), bool), 4, tile_shape=(3, 3)).n == 0
    assert assert_same_components(np.ones((4, 4), bool), 4, (3, 3)).n == 1


def test_label_tiled_reader_and_errors():
    m = np.array([[1, 0, 1]], bool)
    got = label_tiled(lambda r0, r1, c0, c1: m[r0:r1, c0:c1], 4, tile_shape=(1, 1),
                      shape=m.shape)
    assert got.n == 2
    with pytest.raises(ValueError, match="connectivity"):
        label_tiled(m, 6)
    with pytest.raises(ValueError, match="shape is required"):
        label_tiled(lambda *a: m, 4)


# ----------------------------------------------------------------------------------------
# the classification: Belgium
# ----------------------------------------------------------------------------------------
PARAM_SETS = [
    {},
    {"params": "degurba_2023"},
    {"UC_smooth_edge_fun": R2022A},
    {"UC_smooth_pop": True},
    {"UC_smooth_pop": True, "UC_smooth_pop_window": 3, "UC_size_threshold": 1900},
    {"UCL_smooth_pop": True, "UCL_smooth_pop_window": 7},
    {"UC_smooth_pop": True, "UCL_smooth_pop": True, "UC_smooth_edge_fun": R2022A},
    {"UC_built_threshold": "optimal"},
    {"DUC_built_threshold": "optimal", "DUC_size_threshold": 2000},
    {"UC_built_threshold": "optimal", "UCL_size_threshold": 3000, "UC_size_threshold": 1e6},
    {"UC_gap_fill": False},
    {"UC_max_gap": 1},
    {"UC_max_gap": 30},
    {"UC_smooth_edge": False, "UC_max_gap": 26},
    {"UC_density_threshold": 1000, "UC_contiguity_rule": 8, "UC_max_gap": 10},
    {"UC_size_threshold": 1000, "UC_density_threshold": 500},
    {"UC_size_threshold": 1000, "UC_density_threshold": 500, "UC_smooth_edge_fun": R2022A},
    {"water_pop_threshold": 1000, "water_built_threshold": 0.25, "water_land_threshold": 0.9},
    {"values": (8, 7, 6, 5, 4, 3, 2, 1)},
    {"SDUC_buffer_size": 0},
    {"SDUC_buffer_size": 3},
    {"DUC_density_threshold": 300, "UC_built_criterium": False},
    {"UC_built_threshold": 0.063, "LDR_density_threshold": 49.999},
    {"buffer_m": 5000},
    {"UCL_size_threshold": 500, "RC_contiguity_rule": 4, "SDUC_contiguity_rule": 8},
]


def _ids(kw):
    return ",".join(f"{k}={v}" for k, v in kw.items()) or "defaults"


@pytest.fixture(scope="module")
def reference_cache():
    return {}


def _reference(paths, level, kw, cache):
    key = (str(paths["population"]), level, json.dumps(kw, sort_keys=True, default=str))
    if key not in cache:
        cache[key] = classify_grid(paths["population"], paths["built"], paths["land"],
                                   level=level, **kw)
    return cache[key]


def _level_kw(kw, level):
    kw = dict(kw)
    if "values" in kw and level == 1:
        kw["values"] = (40, 30, 20, 10)
    return kw


@pytest.mark.parametrize("kw", PARAM_SETS, ids=_ids)
@pytest.mark.parametrize("level", [1, 2])
def test_belgium_identical_to_in_memory(belgium, tmp_path, reference_cache, kw, level):
    kw0, kw = kw, _level_kw(kw, level)
    ref = np.asarray(_reference(belgium, level, kw, reference_cache))
    if kw:  # one tiling per parameter set, in rotation (all cut clusters)
        tiles = [[(64, 64), (50, 303), (219, 60), (41, 37)][PARAM_SETS.index(kw0) % 4]]
    else:
        tiles = [(64, 64), (13, 17), (1000, 303), (219, 40)]
    for tile in tiles:
        res = classify_grid_chunked(belgium["population"], belgium["built"], belgium["land"],
                                    level=level, out_path=tmp_path / "out.tif",
                                    tile_shape=tile, overwrite=True, **kw)
        got = read1(res.path)
        assert got.shape == ref.shape
        assert int((got != ref).sum()) == 0, tile
        assert res.counts == {int(k): int(v) for k, v in zip(*np.unique(ref,
                                                                        return_counts=True),
                                                             strict=True)}


@pytest.fixture(scope="module")
def belgium_crop(tmp_path_factory):
    """A 70 x 90 crop around Brussels/Antwerp, written with the original dtypes/nodata."""
    from pari_geo.datasets import belgium_paths

    p = belgium_paths()
    out = tmp_path_factory.mktemp("crop")
    paths = {}
    for k in ("population", "built", "land"):
        with rasterio.open(p[k]) as src:
            win = rasterio.windows.Window(120, 40, 90, 70)
            a = src.read(1, window=win)
            write_tif(out / f"{k}.tif", a, nodata=src.nodata,
                      transform=src.window_transform(win))
            paths[k] = out / f"{k}.tif"
    return paths


@pytest.mark.parametrize("kw", [{}, {"UC_smooth_edge_fun": R2022A},
                                {"UC_smooth_pop": True, "UCL_smooth_pop": True},
                                {"UC_size_threshold": 1000, "UC_density_threshold": 500},
                                {"params": "degurba_2023", "SDUC_buffer_size": 3}], ids=_ids)
def test_belgium_crop_tiny_tiles(belgium_crop, tmp_path, reference_cache, kw):
    for level in (1, 2):
        ref = np.asarray(_reference(belgium_crop, level, kw, reference_cache))
        for tile in [(7, 5), (5, 7), (1, 90)]:
            res = classify_grid_chunked(belgium_crop["population"], belgium_crop["built"],
                                        belgium_crop["land"], level=level, tile_shape=tile,
                                        out_path=tmp_path / "o.tif", overwrite=True, **kw)
            assert (read1(res.path) == ref).all(), (level, tile)


def test_r2023a_window_regrowth_is_exact(tmp_path, monkeypatch):
    # R2023A grows a centre along a land corridor between permanent water, beyond the
    # centre's box: with the smallest first margin the growth reaches the window side, the
    # window is enlarged and redone, and the result stays identical
    monkeypatch.setattr(ooc, "R2023A_MARGIN", 2)
    pop = np.full((30, 30), 10.0)
    land = np.ones((30, 30))
    built = np.zeros((30, 30))
    pop[10:20, 5:15] = 3000.0
    for r, c in [(14, 15), (14, 16), (14, 17), (16, 15), (16, 16), (16, 17), (15, 17)]:
        pop[r, c], land[r, c] = 0.0, 0.0
    paths = {k: write_tif(tmp_path / f"{k}.tif", a)
             for k, a in (("population", pop), ("built", built), ("land", land))}
    kw = {"built_unit": "share", "land_unit": "share"}
    for level in (1, 2):
        ref = np.asarray(classify_grid(paths["population"], paths["built"], paths["land"],
                                       level=level, **kw))
        assert ref[15, 16] == (3 if level == 1 else 30)  # grown two cells beyond the box
        res = classify_grid_chunked(paths["population"], paths["built"], paths["land"],
                                    level=level, out_path=tmp_path / f"o{level}.tif",
                                    tile_shape=(7, 5), **kw)
        assert res.stats["centre_window_rounds"] == 2
        assert (read1(res.path) == ref).all()


def test_optimal_with_given_data(belgium, tmp_path):
    import rioxarray  # noqa: F401
    import xarray as xr

    das = [xr.open_dataarray(belgium[k], engine="rasterio").squeeze("band", drop=True)
           for k in ("population", "built", "land")]
    opt = tuple(da.isel(x=slice(5, -5), y=slice(5, -5)) for da in das)
    kw = {"UC_built_threshold": "optimal", "built_optimal_data": opt}
    ref = classify_grid(belgium["population"], belgium["built"], belgium["land"], level=1,
                        **kw)
    res = classify_grid_chunked(belgium["population"], belgium["built"], belgium["land"],
                                level=1, out_path=tmp_path / "o.tif", tile_shape=(50, 50), **kw)
    assert (read1(res.path) == np.asarray(ref)).all()
    assert res.resolved == json.loads(ref.attrs["resolved"])
    assert round(res.resolved["optimal_built_mean"], 7) == 0.2434711


def test_optimal_mean_bit_identical(belgium, tmp_path):
    ref = classify_grid(belgium["population"], belgium["built"], belgium["land"], level=2,
                        DUC_built_threshold="optimal")
    res = classify_grid_chunked(belgium["population"], belgium["built"], belgium["land"],
                                level=2, out_path=tmp_path / "o.tif", tile_shape=(13, 17),
                                DUC_built_threshold="optimal")
    assert res.resolved == json.loads(ref.attrs["resolved"])
    assert res.resolved["optimal_built_mean"] == json.loads(ref.attrs["resolved"])[
        "optimal_built_mean"]


# ----------------------------------------------------------------------------------------
# the written file
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("level", [1, 2])
def test_file_contract_same_as_in_memory_writer(belgium, tmp_path, level):
    from pari_geo.classes import DEGURBA_L1, DEGURBA_L2
    from pari_geo.io_write import write_class_raster

    kw = {"buffer_m": 3000, "values": (40, 30, 20, 10) if level == 1 else None}
    da = classify_grid(belgium["population"], belgium["built"], belgium["land"], level=level,
                       **kw)
    scheme = (DEGURBA_L1 if level == 1 else DEGURBA_L2)
    if level == 1:
        scheme = scheme.with_codes((40, 30, 20, 10))
    write_class_raster(da, tmp_path / "mem.tif", scheme)
    res = classify_grid_chunked(belgium["population"], belgium["built"], belgium["land"],
                                level=level, out_path=tmp_path / "ooc.tif",
                                tile_shape=(33, 29), **kw)
    with rasterio.open(tmp_path / "mem.tif") as a, rasterio.open(res.path) as b:
        assert (a.read(1) == b.read(1)).all()
        assert a.profile == b.profile
        assert a.crs == b.crs and a.transform == b.transform
        assert a.colormap(1) == b.colormap(1)
        assert a.descriptions == b.descriptions
        assert a.overviews(1) == b.overviews(1)
        for ov in range(len(a.overviews(1))):
            assert (a.read(1, out_shape=(a.height // a.overviews(1)[ov],
                                         a.width // a.overviews(1)[ov]))
                    == b.read(1, out_shape=(b.height // b.overviews(1)[ov],
                                            b.width // b.overviews(1)[ov]))).all()
        tags_a, tags_b = a.tags(), b.tags()
        extra = json.loads(tags_b.pop("OUT_OF_CORE"))
        assert extra["tile_shape"] == [33, 29]
        assert tags_a == tags_b
    assert res.shape == da.shape
    assert not list(tmp_path.glob(".pari_geo_ooc_*"))  # temporary folder removed


def test_bad_inputs(belgium, tmp_path):
    p = belgium
    with pytest.raises(ConfigError):
        classify_grid_chunked(p["population"], p["built"], p["land"], level=3,
                              out_path=tmp_path / "o.tif")
    with pytest.raises(ConfigError, match="tile_shape"):
        classify_grid_chunked(p["population"], p["built"], p["land"], tile_shape=(0, 5),
                              out_path=tmp_path / "o.tif")
    with pytest.raises(ConfigError):
        classify_grid_chunked(p["population"], p["built"], p["land"], UC_gapfill=False,
                              out_path=tmp_path / "o.tif")
    with pytest.raises(InputError, match="pass a path"):
        classify_grid_chunked(np.zeros((3, 3)), p["built"], p["land"],
                              out_path=tmp_path / "o.tif")
    with pytest.raises(InputError, match="not found"):
        classify_grid_chunked(tmp_path / "nope.tif", p["built"], p["land"],
                              out_path=tmp_path / "o.tif")
    other = write_tif(tmp_path / "land.tif", np.ones((4, 4)) * 1e6)
    with pytest.raises(InputError, match="identical grid"):
        classify_grid_chunked(p["population"], p["built"], other, out_path=tmp_path / "o.tif")
    neg = write_tif(tmp_path / "pop.tif", -np.ones((4, 4)))
    land = write_tif(tmp_path / "l4.tif", np.ones((4, 4)) * 1e6)
    with pytest.raises(InputError, match="negative"):
        classify_grid_chunked(neg, land, land, out_path=tmp_path / "o.tif")
    classify_grid_chunked(p["population"], p["built"], p["land"], out_path=tmp_path / "x.tif")
    from pari_geo.errors import OutputError

    with pytest.raises(OutputError):
        classify_grid_chunked(p["population"], p["built"], p["land"],
                              out_path=tmp_path / "x.tif")
    assert not list(tmp_path.glob(".pari_geo_ooc_*"))


# ----------------------------------------------------------------------------------------
# random hand-built grids
# ----------------------------------------------------------------------------------------
def _random_grid(rng, tmp_path, shape):
    rows, cols = shape
    blobs = ndimage.gaussian_filter(rng.random(shape), sigma=rng.uniform(1.0, 2.5))
    blobs = (blobs - blobs.min()) / (np.ptp(blobs) + 1e-12)
    pop = np.round(blobs ** 3 * rng.uniform(3000, 9000), 1)
    land = np.ones(shape)
    water = ndimage.gaussian_filter(rng.random(shape), 2) > np.quantile(
        ndimage.gaussian_filter(rng.random(shape), 2), 0.85)
    land[water] = rng.uniform(0, 0.45, int(water.sum()))
    pop[water & (rng.random(shape) < 0.7)] = 0.0
    pop[rng.random(shape) < 0.02] = np.nan
    built = np.clip(blobs * rng.uniform(0.1, 0.5) + rng.normal(0, 0.03, shape), 0, 1) * land
    built[water & (rng.random(shape) < 0.5)] = 0.0
    # hand-made structures: a ring centre with a hole across tile seams, a U
    r, c = rows // 2, cols // 3
    pop[r - 3:r + 4, c - 3:c + 4] = 4000.0
    pop[r - 1:r + 2, c - 1:c + 2] = 0.0
    land[r - 1:r + 2, c - 1:c + 2] = 1.0
    built[r - 1:r + 2, c - 1:c + 2] = 0.0
    u0 = 2 * cols // 3
    pop[2:rows - 3, u0] = 3500.0
    pop[2:rows - 3, min(u0 + 5, cols - 1)] = 3500.0
    pop[rows - 3, u0:min(u0 + 6, cols)] = 3500.0
    land[2:rows - 2, u0:min(u0 + 6, cols)] = 1.0
    paths = {}
    for name, a in (("population", pop), ("built", built), ("land", land)):
        paths[name] = write_tif(tmp_path / f"{name}.tif", a, nodata=np.nan)
    return paths


def test_random_grids_identical(tmp_path):
    rng = np.random.default_rng(2024)
    n_cases = 0
    for case in range(10):
        sub = tmp_path / f"c{case}"
        sub.mkdir()
        shape = (int(rng.integers(25, 45)), int(rng.integers(25, 45)))
        paths = _random_grid(rng, sub, shape)
        kw = {
            "UC_density_threshold": float(rng.choice([1000, 1500])),
            "UC_size_threshold": float(rng.choice([8000, 20000])),
            "UC_smooth_edge_fun": str(rng.choice(["majority_rule_R2023A", R2022A])),
            "UC_max_gap": int(rng.choice([1, 4, 15])),
            "UC_contiguity_rule": int(rng.choice([4, 8])),
            "DUC_size_threshold": 3000.0,
            "SDUC_size_threshold": 1500.0,
            "SUrb_size_threshold": 2000.0,
            "UCL_size_threshold": 2000.0,
            "RC_size_threshold": 300.0,
            "SDUC_buffer_size": int(rng.choice([1, 2, 3])),
            "UC_smooth_pop": bool(rng.random() < 0.3),
        }
        tile = (int(rng.integers(3, 12)), int(rng.integers(3, 12)))
        for level in (1, 2):
            ref = np.asarray(classify_grid(paths["population"], paths["built"],
                                           paths["land"], level=level, built_unit="share",
                                           land_unit="share", **kw))
            res = classify_grid_chunked(paths["population"], paths["built"], paths["land"],
                                        level=level, built_unit="share", land_unit="share",
                                        out_path=sub / f"o{level}.tif", tile_shape=tile, **kw)
            got = read1(res.path)
            assert (got == ref).all(), (case, level, tile, kw, int((got != ref).sum()))
            n_cases += int(len(np.unique(ref)) > 3)
    assert n_cases >= 10  # the grids are not trivial
