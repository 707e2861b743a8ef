"""Union-find (disjoint sets) over an int64 ``parent`` array, as numba kernels.

One implementation for every stage that joins things: DBSCAN core points
(:mod:`pari_geo.clustering`), components across tile seams and connected cells.

``parent[i] == i`` marks a root. Two ways to join, both deterministic:

* **by index** (:func:`union`, :func:`union_pairs`): the smaller root becomes the root,
  so a set's root is always its smallest member, whatever the order of the unions and
  however paths were compressed. Results that number sets by their root are then
  reproducible by construction.
* **by size** (:func:`union_by_size`): the root of the larger set becomes the root (ties:
  the smaller index), with a ``size`` array kept at the roots; shallower trees when the
  root's identity does not matter.

Finding a root: :func:`find` halves the path on the way (each visited entry is pointed at
its grandparent: one pass, near-constant amortised cost); :func:`find_compress` points
every visited entry straight at the root (two passes); :func:`root` only reads ``parent``,
so several threads may call it at once while no thread writes. All three return the same
root. No object mode and no warm-up at import; ``PARI_GEO_NUMBA_CACHE=0`` turns caching
off (:mod:`pari_geo._numba`). The pure-Python twin is in ``tests/test_unionfind.py``.

Examples
--------
>>> import numpy as np
>>> parent = np.arange(6, dtype=np.int64)
>>> union_pairs(parent, np.array([4, 1, 5]), np.array([2, 2, 3]))
>>> [int(find(parent, i)) for i in range(6)]
[0, 1, 1, 3, 1, 3]
>>> int(flatten(parent))
3
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._numba import CACHE

__all__ = [
    "new_parent",
    "root",
    "find",
    "find_compress",
    "union",
    "union_by_size",
    "union_pairs",
    "flatten",
]


def new_parent(n: int) -> np.ndarray:
    """``n`` singleton sets: ``parent = [0, 1, ..., n - 1]`` (int64).

    Examples
    --------
    >>> new_parent(3).tolist()
    [0, 1, 2]
    """
    return np.arange(n, dtype=np.int64)


@njit(cache=CACHE, nogil=True)
def root(parent, i):
    """Root of ``i``, reading ``parent`` only (safe in parallel code while no one writes)."""
    while parent[i] != i:
        i = parent[i]
    return i


@njit(cache=CACHE, nogil=True)
def find(parent, i):
    """Root of ``i``, halving the path on the way (each entry jumps to its grandparent)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=CACHE, nogil=True)
def find_compress(parent, i):
    """Root of ``i``; every entry on the path is then pointed straight at the root."""
    r = i
    while parent[r] != r:
        r = parent[r]
    while parent[i] != r:
        nxt = parent[i]
        parent[i] = r
        i = nxt
    return r


@njit(cache=CACHE, nogil=True)
def union(parent, a, b):
    """Join the sets of ``a`` and ``b`` by index: the smaller root becomes the root.

    Returns True when they were two sets.
    """
    ra = find_compress(parent, a)
    rb = find_compress(parent, b)
    if ra == rb:
        return False
    if ra < rb:
        parent[rb] = ra
    else:
        parent[ra] = rb
    return True


@njit(cache=CACHE, nogil=True)
def union_by_size(parent, size, a, b):
    """Join the sets of ``a`` and ``b`` by size: the larger set's root stays the root
    (ties: the smaller root); ``size`` holds each set's size at its root.

    Returns True when they were two sets.
    """
    ra = find(parent, a)
    rb = find(parent, b)
    if ra == rb:
        return False
    if size[ra] < size[rb] or (size[ra] == size[rb] and rb < ra):
        ra, rb = rb, ra
    parent[rb] = ra
    size[ra] += size[rb]
    return True


@njit(cache=CACHE, nogil=True)
def union_pairs(parent, a, b):
    """:func:`union` of ``a[k]`` with ``b[k]`` for every ``k`` (paths halved)."""
    for k in range(a.shape[0]):
        ra = find(parent, a[k])
        rb = find(parent, b[k])
        if ra < rb:
            parent[rb] = ra
        elif rb < ra:
            parent[ra] = rb


@njit(cache=CACHE, nogil=True)
def flatten(parent):
    """Point every entry at its root, in place; returns the number of sets.

    In one pass when the sets were joined by index (each root is then the smallest
    member, so ``parent[i] <= i`` and ``parent[parent[i]]`` is already a root); the
    general case takes a :func:`find_compress` per entry.
    """
    n_roots = 0
    for i in range(parent.shape[0]):
        p = parent[i]
        if p == i:
            n_roots += 1
        elif p < i:
            parent[i] = parent[p]
        else:
            parent[i] = find_compress(parent, i)
    return n_roots
