"""The performance building blocks of the DEGURBA grid classification against plain twins.

Every numba kernel and every shortcut taken for speed or memory is checked here against a
straightforward numpy/scipy version that does what the specification says literally:

* ``label_sums`` (numba) against ``np.bincount`` (bit-identical sums, same order);
* ``smooth_centre_edges_inplace`` (numba) against a full-grid numpy majority rule;
* the gap-filling candidate filter against per-part hole search on the whole grid;
* the separable queen buffer against ``scipy.ndimage.maximum_filter``;
* the banded R rounding test against ``round_half_even_3(x) >= t``;
* the 2-byte per-cell tests (``_CellCodes``) against the float64 layers;
* the lean file reader against the general ingest path.

No test here measures time.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pari_geo.outofcore._grid_kernels import (
    RULE_R2022A,
    RULE_R2023A,
    label_sums,
    smooth_centre_edges,
    smooth_centre_edges_inplace,
)
from pari_geo.outofcore.contiguity import (
    cluster_labels,
    fill_holes_by_part,
    queen_buffer,
    remap_labels,
)
from pari_geo.typology import degurba as dg

ROOK = ndimage.generate_binary_structure(2, 1)


# ---------------------------------------------------------------- cluster sums (numba)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32])
@pytest.mark.parametrize("seed", range(5))
def test_label_sums_is_bincount(dtype, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 60, 2))
    labels = rng.integers(0, 12, shape).astype(np.int32)
    w = (rng.gamma(0.3, 500, shape) * rng.choice([1, -1e-3], shape)).astype(dtype)
    if w.dtype.kind == "f":
        w[rng.random(shape) < 0.1] = np.nan
    twin = np.bincount(
        labels.ravel(),
        weights=np.where(np.isnan(w.astype(np.float64)), 0.0, w.astype(np.float64)).ravel(),
        minlength=labels.max() + 1,
    )
    got = label_sums(labels, w, int(labels.max()))
    np.testing.assert_array_equal(got[1:], twin[1:])  # bit-identical, not approximately
    assert got[0] == 0.0  # the background is not summed


def test_cluster_labels_sizes():
    dense = np.array([[1, 1, 0, 1], [0, 0, 0, 1]], bool)
    pop = np.array([[1.5, np.nan, 7.0, 2.0], [9.0, 9.0, 9.0, 0.25]])
    labels, sizes = cluster_labels(dense, pop, 4)
    assert labels.tolist() == [[1, 1, 0, 2], [0, 0, 0, 2]]
    assert sizes.tolist() == [0.0, 1.5, 2.25]


def test_remap_labels_in_place():
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 50, (700, 900)).astype(np.int32)
    table = rng.permutation(50).astype(np.int32)
    expected = table[lab]
    out = remap_labels(lab, table)
    assert out is lab
    np.testing.assert_array_equal(lab, expected)


# ---------------------------------------------------------------- edge smoothing (numba)
def _smooth_twin(labels, excluded, blocked, rule):
    """Spec 2.2 / 2.3 literally: full-grid simultaneous passes until nothing changes."""
    lab = labels.copy()
    rows, cols = lab.shape
    offs = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]
    while True:
        pad = np.pad(lab, 1, constant_values=-1)  # -1 = off grid
        exc = np.pad(excluded, 1, constant_values=False)
        new = lab.copy()
        ids = np.unique(lab[lab > 0])
        n_valid = np.zeros(lab.shape, int)
        counts = {k: np.zeros(lab.shape, int) for k in ids}
        for dr, dc in offs:
            nb = pad[1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols]
            nb_exc = exc[1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols]
            n_valid += (nb == -1) | (nb > 0) | ((nb == 0) & ~nb_exc)
            for k in ids:
                counts[k] += nb == k
        cand = (lab == 0) & ~blocked
        for k in ids:
            if rule == RULE_R2022A:
                join = cand & (counts[k] >= 5)
            else:
                join = cand & (2 * counts[k] > n_valid)
            new[join] = k
        if np.array_equal(new, lab):
            return lab
        lab = new


@pytest.mark.parametrize("rule", [RULE_R2022A, RULE_R2023A])
@pytest.mark.parametrize("seed", range(12))
def test_smooth_inplace_matches_twin(rule, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(3, 30, 2))
    dense = rng.random(shape) < rng.uniform(0.3, 0.7)
    labels = ndimage.label(dense, ROOK)[0].astype(np.int32)
    labels[labels > 4] = 0  # a few centres with gaps around them
    excluded = rng.random(shape) < 0.2
    blocked = excluded & (rng.random(shape) < 0.5)
    if rule == RULE_R2022A:
        excluded = blocked = np.zeros(shape, bool)
    twin = _smooth_twin(labels, excluded, blocked, rule)
    lab = labels.copy()
    smooth_centre_edges_inplace(lab, excluded, blocked, rule)
    np.testing.assert_array_equal(lab, twin)
    np.testing.assert_array_equal(smooth_centre_edges(labels, excluded, blocked, rule), twin)


# ---------------------------------------------------------------- gap filling shortcut
def _holes_twin(centre_labels, max_hole_cells):
    """Spec 2.4 literally: every rook part of every centre, holes on the whole grid."""
    fill = np.zeros(centre_labels.shape, bool)
    for k in np.unique(centre_labels[centre_labels > 0]):
        parts, n = ndimage.label(centre_labels == k, ROOK)
        for p in range(1, n + 1):
            outside, m = ndimage.label(parts != p, ROOK)
            border = np.unique(np.concatenate([outside[0], outside[-1], outside[:, 0],
                                               outside[:, -1]]))
            for h in range(1, m + 1):
                if h in border:
                    continue
                cells = outside == h
                if max_hole_cells is None or cells.sum() <= max_hole_cells:
                    fill |= cells
    return fill


def _ring_grid(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(4, 35, 2)
    lab = np.zeros((h, w), np.int32)
    for k in range(1, int(rng.integers(2, 6))):
        r0, c0 = rng.integers(0, h), rng.integers(0, w)
        r1, c1 = min(h, r0 + rng.integers(3, 14)), min(w, c0 + rng.integers(3, 14))
        lab[r0:r1, c0:c1] = k
        if r1 - r0 > 2 and c1 - c0 > 2:  # ring, sometimes around another centre
            lab[r0 + 1:r1 - 1, c0 + 1:c1 - 1] = 0 if rng.random() < 0.6 else k % 3
    lab[rng.random((h, w)) < rng.random() * 0.25] = 0
    return lab


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("max_hole", [None, 0, 1, 4, 14])
def test_fill_holes_matches_per_part_twin(seed, max_hole):
    lab = _ring_grid(seed)
    np.testing.assert_array_equal(fill_holes_by_part(lab, max_hole), _holes_twin(lab, max_hole))


def test_fill_holes_nested_centre_without_pocket():
    # centre 2 fills the whole inside of ring 1: no non-centre pocket, still a hole of 1
    lab = np.zeros((7, 7), np.int32)
    lab[1:6, 1:6] = 1
    lab[2:5, 2:5] = 2
    fill = fill_holes_by_part(lab, 14)
    assert fill[2:5, 2:5].all() and fill.sum() == 9
    assert not fill_holes_by_part(lab, 8).any()  # the hole has 9 cells


# ---------------------------------------------------------------- queen buffer
@pytest.mark.parametrize("steps", [1, 2, 3, 7])
@pytest.mark.parametrize("seed", range(6))
def test_queen_buffer_is_maximum_filter(steps, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 40, 2))
    m = rng.random(shape) < 0.04
    m.flat[rng.integers(0, m.size)] = True
    twin = ndimage.maximum_filter(m.astype(np.uint8), size=2 * steps + 1, mode="constant",
                                  cval=0).astype(bool)
    np.testing.assert_array_equal(queen_buffer(m, steps), twin)


# ---------------------------------------------------------------- R rounding shortcut
@pytest.mark.parametrize("t", [0.0, 0.2, 0.25, 0.5, 0.123, 1.0])
def test_round3_band_matches_full_rounding(t):
    rng = np.random.default_rng(1)
    grid = np.arange(-2000, 2001) / 1000.0 * 0.02 + t  # every 3-decimal point near t
    halves = np.round(t * 1000) / 1000 + (np.arange(-30, 31) + 0.5) / 1000  # ties
    x = np.concatenate([grid, np.nextafter(grid, np.inf), np.nextafter(grid, -np.inf),
                        halves, np.nextafter(halves, np.inf), np.nextafter(halves, -np.inf),
                        rng.uniform(-5, 5, 20000), [np.nan, np.inf, -np.inf, 1e300, -1e300,
                                                    1e13, 0.1995, 0.19949999]])
    with np.errstate(invalid="ignore"):
        expected = dg.round_half_even_3(x) >= t
    np.testing.assert_array_equal(dg._round3_at_least(x, t), expected)


# ---------------------------------------------------------------- 2-byte cell tests
def _synthetic_layers(seed, shape=(60, 80)):
    rng = np.random.default_rng(seed)
    pop = rng.gamma(0.5, 900, shape)
    pop[rng.random(shape) < 0.08] = np.nan
    pop[rng.random(shape) < 0.1] = 0.0
    land = rng.choice([0, 1e6, 5e5, 4.99e5, 7e5, 200199.0], size=shape).astype(np.uint32)
    built = (rng.random(shape) * 3e5).astype(np.uint32)
    built[rng.random(shape) < 0.3] = 0
    return pop, built, land


@pytest.mark.parametrize("seed", range(4))
def test_cell_codes_match_float_layers(seed):
    pop, built, land = _synthetic_layers(seed)
    lay = dg.degurba_layers(pop, built, land, 1000)
    dthr = [50, 300, 900, 1500]
    water = (0.6, 3.0, 0.01)
    codes = dg._CellCodes(lay, dthr, [0.2, 0.31], water=water, permanent_water=True)
    d, bpl = lay.density, lay.built_per_land
    with np.errstate(invalid="ignore"):
        for t in dthr:
            np.testing.assert_array_equal(codes.dense(t), d >= t)
            np.testing.assert_array_equal(codes.dense(t, 0.31), (d >= t) | (bpl >= 0.31))
        np.testing.assert_array_equal(codes.flag(dg._WATER), dg.water_mask(lay, *water))
        np.testing.assert_array_equal(codes.flag(dg._PWATER), dg.water_mask(lay))
        np.testing.assert_array_equal(codes.flag(dg._IGNORE), (lay.land < 0.5) & (lay.pop == 0))


def test_layers_keep_native_inputs():
    pop, built, land = _synthetic_layers(0)
    lay = dg.degurba_layers(pop, built, land, 1000)
    assert lay.pop_raw is pop and lay._built is built and lay._land is land
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_array_equal(lay.land, land.astype(np.float64) / 1000 / 1000)
        np.testing.assert_array_equal(lay.density, pop / (land.astype(np.float64) / 1000 / 1000))


@pytest.mark.parametrize("seed", range(3))
def test_native_and_float64_inputs_classify_identically(seed):
    pop, built, land = _synthetic_layers(seed, (90, 110))
    pop = pop * 6  # enough density for centres and clusters
    native = dg.degurba_layers(pop.astype(np.float32), built, land, 1000)
    as_f64 = dg.degurba_layers(pop.astype(np.float32).astype(np.float64),
                               built.astype(np.float64), land.astype(np.float64), 1000)
    for fn in (dg.classify_level1_array, dg.classify_level2_array):
        np.testing.assert_array_equal(fn(native)[0], fn(as_f64)[0])


# ---------------------------------------------------------------- lean file reader
def test_lean_reader_matches_general_path(belgium, tmp_path):
    import rasterio

    lean = dg._load_lean(belgium["population"], belgium["built"], belgium["land"], "m2", "m2")
    assert lean is not None
    assert lean[1]._built.dtype == np.uint32  # no float64 copy of the m² layers
    # a LAND copy with integer no-data cells: they become NaN (float64), as ingest does
    with rasterio.open(belgium["land"]) as src:
        a = src.read(1)
        prof = src.profile
    a[:20, :30] = prof["nodata"]
    land_nd = tmp_path / "LAND_nodata.tif"
    with rasterio.open(land_nd, "w", **prof) as dst:
        dst.write(a, 1)
    lean_nd = dg._load_lean(belgium["population"], belgium["built"], land_nd, "m2", "m2")
    assert np.isnan(lean_nd[1].land[:20, :30]).all()
    for paths in ((belgium["population"], belgium["built"], belgium["land"]),
                  (belgium["population"], belgium["built"], str(land_nd))):
        fast = dg.classify_grid(*paths, level=2)
        general = dg.classify_level2_array(_general_layers(*paths))[0]
        np.testing.assert_array_equal(fast.values, general)


def _general_layers(pop, built, land):
    """The layers as the general (ingest) path builds them: float64, NaN for no-data."""
    from pari_geo.ingest import open_raster

    arrays = [open_raster(p).values for p in (pop, built, land)]
    return dg.degurba_layers(*arrays, 1000)


def test_lean_reader_declines_other_grids(belgium, tmp_path):
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(belgium["land"]) as src:
        prof = src.profile
        a = src.read(1, window=Window(0, 0, 300, 200))
        prof.update(width=300, height=200)
    cropped = tmp_path / "LAND_crop.tif"
    with rasterio.open(cropped, "w", **prof) as dst:
        dst.write(a, 1)
    assert dg._load_lean(belgium["population"], belgium["built"], cropped, "m2", "m2") is None
    assert dg._load_lean(belgium["population"], belgium["built"], tmp_path / "missing.tif",
                         "m2", "m2") is None
