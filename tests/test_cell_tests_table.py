"""The per-cell pass of DEGURBA sets its test bits by one table lookup; its twin here
computes every bit directly from the documented tests (degurba.md sections 2.1-2.5):
density ``D >= t`` (or built-up per land ``>= b``), on smoothed density for a window, the
water test, R2023A permanent water and "ignorable" cells, missing population."""

from __future__ import annotations

import numpy as np
import pytest

from pari_geo.typology._degurba_cells import (
    BIT_EXCL,
    BIT_NOPOP,
    BIT_PWATER,
    BIT_WATER,
    CellPlan,
    cell_tests,
    degurba_layers,
    mask_key,
    smooth_mean,
    water_mask,
)
from pari_geo.typology._degurba_cells import _round3_at_least as built_at_least


def _twin(pop, built, land, plan: CellPlan, r: float) -> np.ndarray:
    """Every bit from the tests themselves, on whole arrays."""
    lay = degurba_layers(pop, built, land, r, built_unit="m2", land_unit="m2")
    bits = np.zeros(pop.shape, dtype=np.uint16)
    with np.errstate(invalid="ignore", divide="ignore"):
        density = lay.density
        bpl = built / land
        for i, (t, b, w) in enumerate(plan.masks):
            d = density if w is None else smooth_mean(lay.density, w)
            m = d >= t
            if b is not None:
                m |= built_at_least(bpl, b)
            bits[m] |= np.uint16(1 << i)
        if plan.water is not None:
            bits[water_mask(lay, *plan.water)] |= np.uint16(BIT_WATER)
        if plan.r2023a:
            pw = water_mask(lay, 0.5, 0.0, 0.0)
            if plan.excl_window is None:
                excl = (lay.land < 0.5) & (lay.pop == 0)
            else:
                excl = (lay.land < 0.5) & (smooth_mean(lay.pop, plan.excl_window) == 0)
            bits[pw] |= np.uint16(BIT_PWATER)
            bits[pw | excl] |= np.uint16(BIT_EXCL)
        if plan.missing_population:
            bits[np.isnan(pop)] |= np.uint16(BIT_NOPOP)
    return bits


@pytest.mark.parametrize("seed", range(6))
def test_table_lookup_equals_the_tests(seed):
    rng = np.random.default_rng(seed)
    shape = (37, 53)
    r = 1000.0
    pop = rng.gamma(0.4, 900.0, shape)
    pop[rng.random(shape) < 0.1] = 0.0
    pop[rng.random(shape) < 0.05] = np.nan
    land = np.where(rng.random(shape) < 0.2, rng.uniform(0, 1e6, shape), 1e6)
    land[rng.random(shape) < 0.03] = np.nan
    built = np.minimum(rng.uniform(0, 0.6, shape) * 1e6, land)
    w = int(rng.choice([3, 5]))
    masks = [mask_key(1500, 0.5 if seed % 2 else None, None), mask_key(300, None, None),
             mask_key(float(rng.choice([50, 100])), None, None), mask_key(1500, None, w)]
    plan = CellPlan(masks=tuple(dict.fromkeys(masks)), cell_size_m=r, units=("m2", "m2"),
                    water=(0.5, float(rng.choice([0.0, 10.0])), 0.0), r2023a=True,
                    excl_window=w if seed % 3 == 0 else None, size_windows=(w,),
                    missing_population=bool(seed % 2))
    blocks = {"population": pop, "built": built, "land": land}
    got = cell_tests(blocks, (slice(0, shape[0]), slice(0, shape[1])), plan=plan)["bits"]
    np.testing.assert_array_equal(got, _twin(pop, built, land, plan, r))


def test_table_lookup_without_water_or_r2023a():
    rng = np.random.default_rng(9)
    pop = rng.gamma(0.5, 800.0, (20, 30))
    land = np.full((20, 30), 1e6)
    built = rng.uniform(0, 3e5, (20, 30))
    plan = CellPlan(masks=(mask_key(1500, 0.2, None), mask_key(300, None, None)),
                    cell_size_m=1000.0, units=("m2", "m2"))
    got = cell_tests({"population": pop, "built": built, "land": land},
                     (slice(0, 20), slice(0, 30)), plan=plan)["bits"]
    np.testing.assert_array_equal(got, _twin(pop, built, land, plan, 1000.0))


def test_table_lookup_on_an_inner_window_with_a_halo():
    """As the tiled engine calls it: blocks with a halo, bits of the inner window only."""
    rng = np.random.default_rng(4)
    pop = rng.gamma(0.5, 900.0, (30, 40))
    land = np.where(rng.random((30, 40)) < 0.2, 0.0, 1e6)
    built = np.minimum(rng.uniform(0, 0.5, (30, 40)) * 1e6, land)
    plan = CellPlan(masks=(mask_key(1500, 0.3, None), mask_key(300, None, 3)),
                    cell_size_m=1000.0, units=("m2", "m2"), water=(0.5, 0.0, 0.0),
                    r2023a=True, excl_window=3, size_windows=(3,))
    blocks = {"population": pop, "built": built, "land": land}
    whole = cell_tests(blocks, (slice(0, 30), slice(0, 40)), plan=plan)["bits"]
    inner = (slice(1, 29), slice(1, 39))
    got = cell_tests(blocks, inner, plan=plan)["bits"]
    np.testing.assert_array_equal(got, whole[inner])
