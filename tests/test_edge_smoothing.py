"""The numba edge-smoothing kernel against a pure numpy twin (degurba.md 2.2 and 2.3).

The twin does what the specification says literally: full-grid passes, each one a
simultaneous update computed with shifted copies of the label grid, repeated until a pass
adds no cell. The kernel only visits cells next to a centre and re-queues neighbours of
cells that joined; both must give the same labels on any input.
"""

from __future__ import annotations

import numpy as np
import pytest

from pari_geo.outofcore._grid_kernels import RULE_R2022A, RULE_R2023A, smooth_centre_edges

# the 8 queen offsets
OFFSETS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]


def _shift(padded: np.ndarray, dr: int, dc: int, shape: tuple[int, int]) -> np.ndarray:
    """Value of the neighbour at offset (dr, dc) for every cell (padded by 1)."""
    rows, cols = shape
    return padded[1 + dr : 1 + dr + rows, 1 + dc : 1 + dc + cols]


def smooth_numpy(labels, excluded, blocked, rule, max_passes=10_000):
    """Numpy twin of ``smooth_centre_edges``.

    R2022A: a non-centre, non-blocked cell joins centre k when >= 5 of its 8 neighbours
    are in k (off-grid neighbours are not in a centre).
    R2023A: valid neighbours = centre cells, off-grid positions and non-centre cells not
    ``excluded``; the cell joins k when 2 * n_k > N. ``blocked`` cells never join.
    """
    lab = np.asarray(labels, dtype=np.int64).copy()
    excluded = np.asarray(excluded, dtype=bool)
    blocked = np.asarray(blocked, dtype=bool)
    shape = lab.shape
    # off-grid: label 0 and *not* excluded -> valid non-centre
    excl_pad = np.pad(excluded, 1, constant_values=False)
    for _ in range(max_passes):
        lab_pad = np.pad(lab, 1, constant_values=0)
        nbs = [_shift(lab_pad, dr, dc, shape) for dr, dc in OFFSETS]
        nb_excl = [_shift(excl_pad, dr, dc, shape) for dr, dc in OFFSETS]
        n_valid = sum(
            ((nb > 0) | ~ex).astype(np.int64) for nb, ex in zip(nbs, nb_excl, strict=True)
        )
        best_n = np.zeros(shape, dtype=np.int64)
        best_k = np.zeros(shape, dtype=np.int64)
        for nb_j in nbs:
            # how many of the 8 neighbours carry the same centre id as neighbour j
            count_j = sum(((nb_i == nb_j) & (nb_j > 0)).astype(np.int64) for nb_i in nbs)
            better = count_j > best_n
            best_n = np.where(better, count_j, best_n)
            best_k = np.where(better, nb_j, best_k)
        ok = best_n >= 5 if rule == RULE_R2022A else 2 * best_n > n_valid
        join = (lab == 0) & ~blocked & ok & (best_k > 0)
        if not join.any():
            return lab
        lab = np.where(join, best_k, lab)
    raise AssertionError("no fixed point")


def run_kernel(labels, excluded, blocked, rule):
    return np.asarray(
        smooth_centre_edges(
            np.ascontiguousarray(labels, dtype=np.int32),
            np.ascontiguousarray(excluded, dtype=bool),
            np.ascontiguousarray(blocked, dtype=bool),
            rule,
        )
    )


def grid(text: str) -> np.ndarray:
    """Digits are centre ids, '.' is 0."""
    return np.array(
        [[0 if ch == "." else int(ch) for ch in line.split()] for line in text.strip().splitlines()]
    )


def cells(text: str, char: str) -> np.ndarray:
    return np.array([[ch == char for ch in line.split()] for line in text.strip().splitlines()])


# ----------------------------------------------------------------------------------------
# equivalence on random grids
# ----------------------------------------------------------------------------------------
def _random_case(rng: np.random.Generator):
    rows = int(rng.integers(1, 16))
    cols = int(rng.integers(1, 16))
    n_ids = int(rng.integers(1, 5))
    p_centre = rng.uniform(0.1, 0.7)
    # blobby labels: random centre cells with random ids
    lab = np.where(rng.random((rows, cols)) < p_centre, rng.integers(1, n_ids + 1, (rows, cols)), 0)
    excluded = rng.random((rows, cols)) < rng.uniform(0, 0.5)
    blocked = excluded & (rng.random((rows, cols)) < rng.uniform(0, 1))
    return lab.astype(np.int32), excluded, blocked


@pytest.mark.parametrize("rule", [RULE_R2022A, RULE_R2023A])
def test_kernel_matches_numpy_twin_on_random_grids(rule):
    rng = np.random.default_rng(20240715 + rule)
    n_changed = 0
    for _ in range(400):
        lab, excluded, blocked = _random_case(rng)
        if rule == RULE_R2022A and rng.random() < 0.5:
            excluded = np.zeros_like(excluded)
            blocked = np.zeros_like(blocked)
        want = smooth_numpy(lab, excluded, blocked, rule)
        got = run_kernel(lab, excluded, blocked, rule)
        np.testing.assert_array_equal(got, want)
        n_changed += int((want != lab).any())
        # never removes or relabels a centre cell, never adds a blocked cell
        assert (got[lab > 0] == lab[lab > 0]).all()
        assert (got[blocked & (lab == 0)] == 0).all()
    assert n_changed > 50  # the random cases really exercise the rule


@pytest.mark.parametrize("rule", [RULE_R2022A, RULE_R2023A])
def test_kernel_matches_numpy_twin_on_large_blobs(rule):
    # larger, spatially correlated grids: many passes, merges between centres
    from scipy import ndimage

    rng = np.random.default_rng(7 + rule)
    for _ in range(12):
        shape = (int(rng.integers(20, 60)), int(rng.integers(20, 60)))
        field = ndimage.uniform_filter(rng.random(shape), size=5)
        dense = field > np.quantile(field, rng.uniform(0.4, 0.8))
        lab, _ = ndimage.label(dense)
        excluded = ndimage.uniform_filter(rng.random(shape), size=3) > 0.55
        blocked = excluded & (rng.random(shape) < 0.5)
        want = smooth_numpy(lab, excluded, blocked, rule)
        got = run_kernel(lab, excluded, blocked, rule)
        np.testing.assert_array_equal(got, want)


def test_kernel_does_not_modify_its_input():
    lab = grid(
        """
        1 1 1
        1 . 1
        1 1 1
        """
    ).astype(np.int32)
    before = lab.copy()
    none = np.zeros(lab.shape, bool)
    out = run_kernel(lab, none, none, RULE_R2023A)
    np.testing.assert_array_equal(lab, before)
    assert (out == 1).all()


# ----------------------------------------------------------------------------------------
# hand-built cases (expected labels written by hand)
# ----------------------------------------------------------------------------------------
def test_r2022a_needs_five_of_the_same_centre():
    # X = (2,2): 3 neighbours in centre 1, 2 in centre 2 -> stays 0
    lab = grid(
        """
        . . . . .
        . 1 1 1 .
        . . . . .
        . 2 2 . .
        . . . . .
        """
    )
    none = np.zeros(lab.shape, bool)
    for fn in (run_kernel, smooth_numpy):
        np.testing.assert_array_equal(fn(lab, none, none, RULE_R2022A), lab)
    # with 5 of centre 1 (a 1-deep notch) the cell joins centre 1
    lab = grid(
        """
        . . . . .
        . 1 . 1 .
        . 1 1 1 .
        . . . . .
        """
    )
    want = grid(
        """
        . . . . .
        . 1 1 1 .
        . 1 1 1 .
        . . . . .
        """
    )
    none = np.zeros(lab.shape, bool)
    for fn in (run_kernel, smooth_numpy):
        np.testing.assert_array_equal(fn(lab, none, none, RULE_R2022A), want)


def test_r2022a_off_grid_is_not_a_centre():
    # corner (0,0) has only 3 on-grid neighbours: it can never reach 5 under R2022A
    lab = grid(
        """
        . 1 1
        1 1 1
        1 1 1
        """
    )
    none = np.zeros(lab.shape, bool)
    np.testing.assert_array_equal(run_kernel(lab, none, none, RULE_R2022A), lab)
    # R2023A: 3 centre of 8 valid (5 off-grid) -> no either
    np.testing.assert_array_equal(run_kernel(lab, none, none, RULE_R2023A), lab)


def test_r2023a_strict_majority_and_exclusion():
    lab = grid(
        """
        1 1 1
        1 . .
        . . .
        """
    )
    none = np.zeros(lab.shape, bool)
    # (1,1): 4 of 8 -> not added
    np.testing.assert_array_equal(run_kernel(lab, none, none, RULE_R2023A), lab)
    # exclude (2,2): 4 of 7 -> added; then (1,2): 3 of 7, (2,1): 2 of 7 -> stop
    excluded = cells(
        """
        . . .
        . . .
        . . x
        """,
        "x",
    )
    want = lab.copy()
    want[1, 1] = 1
    np.testing.assert_array_equal(run_kernel(lab, excluded, none, RULE_R2023A), want)
    # blocked (1,1) never joins even with a majority
    blocked = cells(
        """
        . . .
        . x .
        . . .
        """,
        "x",
    )
    np.testing.assert_array_equal(run_kernel(lab, excluded, blocked, RULE_R2023A), lab)
    # N = 0 never adds: a lone non-centre cell whose 8 neighbours are all excluded
    lone = np.zeros((3, 3), np.int32)
    all_excl = np.ones((3, 3), bool)
    np.testing.assert_array_equal(run_kernel(lone, all_excl, none, RULE_R2023A), lone)


def test_r2023a_iterates_until_stable_and_keeps_ids():
    # slot 2 deep at the top of centre 1: (2,2) joins in pass 1 (7/8), (1,2) in pass 2
    # (5/8). Centre 2 is far away and unchanged.
    lab = grid(
        """
        . . . . . . . .
        . 1 . 1 . . . .
        . 1 . 1 . . 2 .
        . 1 1 1 . . . .
        . . . . . . . .
        """
    )
    want = grid(
        """
        . . . . . . . .
        . 1 1 1 . . . .
        . 1 1 1 . . 2 .
        . 1 1 1 . . . .
        . . . . . . . .
        """
    )
    none = np.zeros(lab.shape, bool)
    for rule in (RULE_R2022A, RULE_R2023A):
        np.testing.assert_array_equal(run_kernel(lab, none, none, rule), want)
        np.testing.assert_array_equal(smooth_numpy(lab, none, none, rule), want)


def test_simultaneous_update_within_a_pass():
    # a 1-wide gap column between two halves of centre 1 on a 3-row grid:
    # (1,2) sees 6 centre cells of 8 -> joins in pass 1. (0,2) and (2,2) see 4 of 8 in
    # pass 1 (their off-grid neighbours count as valid non-centre) and 5 of 8 once (1,2)
    # has joined -> they join in pass 2, not in pass 1.
    lab = grid(
        """
        1 1 . 1 1
        1 1 . 1 1
        1 1 . 1 1
        """
    )
    none = np.zeros(lab.shape, bool)
    np.testing.assert_array_equal(run_kernel(lab, none, none, RULE_R2023A), np.ones((3, 5)))
    # R2022A: (0,2) and (2,2) have 5 on-grid neighbours; after (1,2) joins all 5 are in
    # centre 1 -> they join too
    np.testing.assert_array_equal(run_kernel(lab, none, none, RULE_R2022A), np.ones((3, 5)))


def test_degenerate_shapes():
    none1 = np.zeros((1, 1), bool)
    for rule in (RULE_R2022A, RULE_R2023A):
        for lab in (np.zeros((1, 1), np.int32), np.ones((1, 1), np.int32)):
            np.testing.assert_array_equal(run_kernel(lab, none1, none1, rule), lab)
    row = np.array([[1, 0, 1]], np.int32)
    none = np.zeros(row.shape, bool)
    # middle cell: 2 centre neighbours of 8 (6 off-grid) -> never joins
    for rule in (RULE_R2022A, RULE_R2023A):
        np.testing.assert_array_equal(run_kernel(row, none, none, rule), row)
    # ... unless the off-grid positions were ignored: not the rule (2 > 2/2 would add it)
