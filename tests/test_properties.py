"""Issue 8: property-based tests (hypothesis) of invariants.

* alignment (``kind="count"``) conserves the population: integer factors and offsets
  exactly, reprojection (GDAL ``sum``) to 1e-6;
* the per-class and per-unit tables conserve the population;
* class codes are always from the declared set (levels 1 and 2);
* raising a density threshold never makes a cell more urban — for ``SUrb_``, ``RC_`` and
  ``LDR_density_threshold``. It does NOT hold for ``UC_``/``DUC_density_threshold`` (nor
  provably for ``SDUC_density_threshold``): semi-dense clusters (22) are rejected whole when
  they touch the buffer around 30/23 cells, so shrinking the centres (higher UC threshold)
  shrinks the buffer and can turn a rejected cluster's cells from 21 into 22; likewise a
  higher SDUC threshold can split a rejected cluster so that a large part no longer touches
  the buffer. ``test_uc_threshold_counterexample`` shows one;
* travel time is zero at the sources and obeys the triangle inequality.
"""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pari_geo.align import align_to_grid
from pari_geo.classes import DEGURBA_L1, DEGURBA_L2
from pari_geo.config import DegurbaParams
from pari_geo.grid import GridSpec
from pari_geo.report import population_by_class, residents_by_unit_and_class
from pari_geo.typology.degurba import (
    classify_level1_array,
    classify_level2_array,
    degurba_layers,
)
from pari_geo.typology.travel_time import minutes_to

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
CRS = "EPSG:3035"


def arrays(shape, lo=0.0, hi=5000.0):
    return st.lists(st.floats(lo, hi, allow_nan=False, width=32),
                    min_size=shape[0] * shape[1], max_size=shape[0] * shape[1]).map(
        lambda v: np.asarray(v, dtype=np.float64).reshape(shape))


@st.composite
def aligned_case(draw):
    k = draw(st.integers(1, 4))
    rows, cols = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    # target grid of coarse cells; the fine source lies inside it at an integer offset
    tr, tc = draw(st.integers(rows * 1, rows + 3)), draw(st.integers(cols, cols + 3))
    src_rows = draw(st.integers(1, tr * k))
    src_cols = draw(st.integers(1, tc * k))
    off_r = draw(st.integers(0, tr * k - src_rows))
    off_c = draw(st.integers(0, tc * k - src_cols))
    values = draw(arrays((src_rows, src_cols)))
    return k, (tr, tc), (src_rows, src_cols), (off_r, off_c), values


@SETTINGS
@given(aligned_case())
def test_alignment_by_integer_factor_conserves_population(case):
    k, tshape, _, (off_r, off_c), values = case
    size = 100.0
    target = GridSpec(CRS, Affine(size * k, 0, 0, 0, -size * k, 1e6), tshape)
    src = GridSpec(CRS, Affine(size, 0, off_c * size, 0, -size, 1e6 - off_r * size),
                   values.shape)
    out = align_to_grid(src.to_dataarray(values), target, "count")
    assert np.isclose(np.nansum(out.values), values.sum(), rtol=1e-12, atol=1e-9)


@SETTINGS
@given(
    values=arrays((7, 9)),
    size=st.sampled_from([150.0, 250.0, 300.0, 400.0, 700.0]),
    dx=st.floats(0, 0.9),
    dy=st.floats(0, 0.9),
)
def test_alignment_by_reprojection_conserves_population(values, size, dx, dy):
    # source of 7x9 cells of ``size`` m strictly inside a 1 km target grid
    target = GridSpec(CRS, Affine(1000, 0, 0, 0, -1000, 10_000), (10, 10))
    x0, y0 = 1000 + dx * 1000, 9000 - dy * 1000
    src = GridSpec(CRS, Affine(size, 0, x0, 0, -size, y0), values.shape)
    out = align_to_grid(src.to_dataarray(values), target, "count")
    assert np.isclose(np.nansum(out.values), values.sum(), rtol=1e-6, atol=1e-6)


@SETTINGS
@given(
    classes=st.lists(st.sampled_from(DEGURBA_L2.codes), min_size=30, max_size=30).map(
        lambda v: np.asarray(v, np.uint8).reshape(5, 6)),
    pop=arrays((5, 6)),
    nan_at=st.integers(0, 29),
    cuts=st.tuples(st.integers(1, 5), st.integers(1, 4)),
)
def test_tables_conserve_population(classes, pop, nan_at, cuts):
    import geopandas as gpd
    from shapely.geometry import box

    pop = pop.copy()
    pop.flat[nan_at] = np.nan  # missing counts as 0
    total = np.nansum(pop)
    table = population_by_class(classes, pop, DEGURBA_L2, cell_area_km2=1.0)
    assert np.isclose(table["population"].sum(), total)
    assert table["cells"].sum() == classes.size
    # units tiling the grid: every cell centre in exactly one unit
    g = GridSpec(CRS, Affine(1000, 0, 0, 0, -1000, 5000), (5, 6))
    cx, cy = cuts[0] * 1000, cuts[1] * 1000
    units = gpd.GeoDataFrame(
        {"UID": [1, 2, 3, 4]},
        geometry=[box(0, 0, cx, cy), box(cx, 0, 6000, cy), box(0, cy, cx, 5000),
                  box(cx, cy, 6000, 5000)],
        crs=CRS,
    )
    by_unit = residents_by_unit_and_class(g.to_dataarray(classes), pop, units, "UID",
                                          DEGURBA_L2)
    assert np.isclose(by_unit["residents"].sum(), total)
    per_class = by_unit[[c for c in by_unit.columns if c.startswith("residents_")]]
    assert np.allclose(per_class.sum(axis=1), by_unit["residents"])


@st.composite
def layers(draw, shape=(10, 10)):
    pop = draw(arrays(shape, 0, 8000))
    built = draw(arrays(shape, 0, 1))
    land = draw(arrays(shape, 0, 1))
    holes = draw(st.lists(st.integers(0, shape[0] * shape[1] - 1), max_size=5))
    pop.flat[holes] = np.nan
    return pop, built, land


SMALL = DegurbaParams(UC_size_threshold=5000, DUC_size_threshold=3000,
                      SDUC_size_threshold=2000, SUrb_size_threshold=1500,
                      RC_size_threshold=500)


@SETTINGS
@given(layers(), st.sampled_from([SMALL, DegurbaParams(), DegurbaParams.from_preset(
    "degurba_2023")]))
def test_class_codes_are_from_the_declared_set(lay, params):
    lay_ = degurba_layers(*lay, 1000, built_unit="share", land_unit="share")
    l2, _ = classify_level2_array(lay_, params)
    assert set(np.unique(l2).tolist()) <= set(DEGURBA_L2.codes)
    l1, _ = classify_level1_array(lay_, params)
    assert set(np.unique(l1).tolist()) <= set(DEGURBA_L1.codes)


RANK = {30: 7, 23: 6, 22: 5, 21: 4, 13: 3, 12: 2, 11: 1, 10: 1}  # water only replaces 11


def _rank(a):
    lut = np.zeros(256, np.int8)
    for k, v in RANK.items():
        lut[k] = v
    return lut[a]


@SETTINGS
@given(layers(), st.sampled_from(["SUrb_density_threshold", "RC_density_threshold",
                                  "LDR_density_threshold"]),
       st.floats(10, 2000), st.floats(0, 2000))
def test_raising_a_density_threshold_never_makes_a_cell_more_urban(lay, name, lo, step):
    lay_ = degurba_layers(*lay, 1000, built_unit="share", land_unit="share")
    low = SMALL.replace(**{name: lo})
    high = SMALL.replace(**{name: lo + step})
    a, _ = classify_level2_array(lay_, low)
    b, _ = classify_level2_array(lay_, high)
    assert (_rank(b) <= _rank(a)).all()


def test_uc_threshold_counterexample():
    """Raising UC_density_threshold can make cells MORE urban (21 -> 22), see the docstring."""
    pop = np.zeros((9, 14))
    land = np.ones_like(pop)
    built = np.zeros_like(pop)  # no built-up criterion
    pop[3:6, 1:3] = 1600.0  # a 3x2 centre of 9600 residents
    pop[3:6, 4:10] = 1000.0  # a semi-dense cluster 1 cell away (inside the 2-cell buffer)
    p = DegurbaParams(UC_size_threshold=5000, DUC_size_threshold=5000, DUC_density_threshold=1700,
                      SDUC_size_threshold=2500, UC_gap_fill=False, UC_smooth_edge=False)
    lay = degurba_layers(pop, built, land, 1000, built_unit="share", land_unit="share")
    a, _ = classify_level2_array(lay, p)
    b, _ = classify_level2_array(lay, p.replace(UC_density_threshold=2000))
    assert a[4, 7] == 21 and b[4, 7] == 22  # the higher threshold made it more urban
    assert (_rank(b) > _rank(a)).any()


@SETTINGS
@given(
    speed=arrays((6, 7), 5, 120),
    src=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 6)), min_size=1, max_size=3),
    via=st.tuples(st.integers(0, 5), st.integers(0, 6)),
)
def test_travel_time_zero_at_sources_and_triangle_inequality(speed, src, via):
    sources = np.zeros((6, 7), bool)
    for r, c in src:
        sources[r, c] = True
    d = minutes_to(sources, cell_size_m=1000, speed_kmh=speed)
    assert (d[sources] == 0).all()
    assert np.isfinite(d).all() and (d >= 0).all()
    one = np.zeros_like(sources)
    one[via] = True
    d_via = minutes_to(one, cell_size_m=1000, speed_kmh=speed)
    assert (d <= d[via] + d_via + 1e-9).all()


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
