"""numba kernels of the in-memory grid operations (arrays in, arrays out).

* :func:`smooth_centre_edges` / :func:`smooth_centre_edges_inplace`: the iterative
  majority-rule edge smoothing of labelled components (DEGURBA's urban centres), used by
  both engines (the tiled one on windows);
* :func:`label_sums`: per-component sums in raster order, i.e. exactly
  ``np.bincount(labels.ravel(), weights=np.nan_to_num(w).ravel())`` (same summation order,
  so bit-identical) without its two 8-byte-per-cell temporaries (``intp`` labels and
  ``float64`` weights).

The pure numpy twins used to check them are in ``tests/test_degurba_kernels.py``.
"""

from __future__ import annotations

import numba
import numpy as np

from .._numba import CACHE

RULE_R2022A = 0
RULE_R2023A = 1

_DR = np.array([-1, -1, -1, 0, 0, 1, 1, 1], dtype=np.int64)
_DC = np.array([-1, 0, 1, -1, 1, -1, 0, 1], dtype=np.int64)


@numba.njit(cache=CACHE, nogil=True)
def _decide(lab, excluded, r, c, rule, dr, dc, ids, counts):
    """Centre id that cell (r, c) joins in this pass, or 0 (``ids``/``counts``: scratch)."""
    rows, cols = lab.shape
    n_ids = 0
    n_valid = 0
    for j in range(8):
        rr = r + dr[j]
        cc = c + dc[j]
        if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
            n_valid += 1  # off-grid: a valid, non-centre neighbour (used by R2023A only)
            continue
        k = lab[rr, cc]
        if k > 0:
            n_valid += 1
            found = False
            for q in range(n_ids):
                if ids[q] == k:
                    counts[q] += 1
                    found = True
                    break
            if not found:
                ids[n_ids] = k
                counts[n_ids] = 1
                n_ids += 1
        elif not excluded[rr, cc]:
            n_valid += 1
    best = 0
    best_n = 0
    for q in range(n_ids):
        if counts[q] > best_n:
            best_n = counts[q]
            best = ids[q]
    if rule == RULE_R2022A:
        return best if best_n >= 5 else 0
    return best if 2 * best_n > n_valid else 0


@numba.njit(cache=CACHE, nogil=True)
def label_sums(labels, weights, n):
    """Sum ``weights`` per label ``1..n`` in raster order; NaN weights count as 0.

    ``out[1:]`` is bit-identical to ``np.bincount(labels.ravel(), weights=np.where(
    np.isnan(w), 0, w).astype(float64).ravel(), minlength=n + 1)[1:]`` (one sequential
    pass in the same order); the background ``out[0]`` is not summed and stays 0.

    Parameters
    ----------
    labels : int[:, :]
        Labels in ``0..n``.
    weights : float or int [:, :]
        Same shape as ``labels``; converted to float64 cell by cell.
    n : int
        Largest label.

    Returns
    -------
    float64[n + 1]
    """
    rows, cols = labels.shape
    out = np.zeros(n + 1, dtype=np.float64)
    for r in range(rows):
        for c in range(cols):
            k = labels[r, c]
            if k == 0:
                continue
            v = np.float64(weights[r, c])
            if v != v:
                v = 0.0
            out[k] += v
    return out


@numba.njit(cache=CACHE, nogil=True)
def smooth_centre_edges(labels, excluded, blocked, rule):
    """Majority-rule edge smoothing of labelled urban centres until nothing changes.

    Parameters
    ----------
    labels : int32[:, :]
        Centre ids (> 0), 0 elsewhere. Not modified.
    excluded : bool[:, :]
        Non-centre cells left out of the valid neighbours (R2023A: permanent water or
        ignorable). Ignored by R2022A.
    blocked : bool[:, :]
        Cells that never join (R2023A: permanent water). Pass all-False for R2022A.
    rule : int
        ``RULE_R2022A`` (5 of 8 neighbours in one centre) or ``RULE_R2023A``
        (strict majority of the valid neighbours).

    Returns
    -------
    int32[:, :]
        The smoothed labels. Each pass is a simultaneous update.
    """
    lab = labels.copy()
    smooth_centre_edges_inplace(lab, excluded, blocked, rule)
    return lab


@numba.njit(cache=CACHE, nogil=True)
def smooth_centre_edges_inplace(lab, excluded, blocked, rule):
    """:func:`smooth_centre_edges` writing into ``lab`` (int32[:, :]); returns the passes run.

    Saves the copy of the labels; the candidate de-duplication uses one byte per cell.
    """
    rows, cols = lab.shape
    dr = _DR
    dc = _DC
    queued = np.zeros((rows, cols), dtype=np.uint8)  # 1 = already in the next candidate list
    ids = np.zeros(8, dtype=np.int32)  # scratch of _decide
    counts = np.zeros(8, dtype=np.int64)
    cand = np.empty(rows * cols if rows * cols < 1024 else 1024, dtype=np.int64)
    n_cand = 0
    # first candidates: the non-centre, non-blocked neighbours of centre cells (found from
    # the centre side; the order of a list does not matter, each pass is simultaneous)
    for r in range(rows):
        for c in range(cols):
            if lab[r, c] <= 0:
                continue
            for j in range(8):
                rr = r + dr[j]
                cc = c + dc[j]
                if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
                    continue
                if lab[rr, cc] != 0 or blocked[rr, cc] or queued[rr, cc] != 0:
                    continue
                queued[rr, cc] = 1
                if n_cand == cand.shape[0]:
                    grown = np.empty(cand.shape[0] * 2, dtype=np.int64)
                    for t in range(n_cand):  # not a slice copy: see _travel_kernels._grow
                        grown[t] = cand[t]
                    cand = grown
                cand[n_cand] = rr * cols + cc
                n_cand += 1
    for i in range(n_cand):
        flat = cand[i]
        queued[flat // cols, flat - (flat // cols) * cols] = 0
    pass_no = 1
    joined_idx = np.empty(max(n_cand, 1), dtype=np.int64)
    joined_lab = np.empty(max(n_cand, 1), dtype=np.int32)
    while n_cand > 0:
        if joined_idx.shape[0] < n_cand:
            joined_idx = np.empty(n_cand, dtype=np.int64)
            joined_lab = np.empty(n_cand, dtype=np.int32)
        n_join = 0
        for i in range(n_cand):
            flat = cand[i]
            r = flat // cols
            c = flat - r * cols
            if lab[r, c] != 0:
                continue
            k = _decide(lab, excluded, r, c, rule, dr, dc, ids, counts)
            if k > 0:
                joined_idx[n_join] = flat
                joined_lab[n_join] = k
                n_join += 1
        if n_join == 0:
            break
        for i in range(n_join):
            flat = joined_idx[i]
            lab[flat // cols, flat - (flat // cols) * cols] = joined_lab[i]
        pass_no += 1
        n_cand = 0
        for i in range(n_join):
            flat = joined_idx[i]
            r = flat // cols
            c = flat - r * cols
            for j in range(8):
                rr = r + dr[j]
                cc = c + dc[j]
                if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
                    continue
                if lab[rr, cc] != 0 or blocked[rr, cc] or queued[rr, cc] != 0:
                    continue
                queued[rr, cc] = 1
                if n_cand == cand.shape[0]:
                    grown = np.empty(cand.shape[0] * 2, dtype=np.int64)
                    for t in range(n_cand):  # not a slice copy: see _travel_kernels._grow
                        grown[t] = cand[t]
                    cand = grown
                cand[n_cand] = rr * cols + cc
                n_cand += 1
        for i in range(n_cand):  # reset the marks for the next list
            flat = cand[i]
            queued[flat // cols, flat - (flat // cols) * cols] = 0
    return pass_no - 1
