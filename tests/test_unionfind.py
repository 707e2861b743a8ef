"""The union-find kernels of ``pari_geo.outofcore._unionfind`` against a pure-Python twin.

The twin is the textbook disjoint-set forest (plain Python lists, no compression), checked
itself against scipy's connected components; every kernel must give the same sets and,
when joining by index, the same roots (each set's smallest member).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pari_geo.outofcore import _unionfind as uf


class TwinUnionFind:
    """Pure-Python reference: no compression, union by index (smaller root wins)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        lo, hi = min(ra, rb), max(ra, rb)
        self.parent[hi] = lo
        return True

    def roots(self) -> list[int]:
        return [self.find(i) for i in range(len(self.parent))]


def _pairs(n, m, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, m).astype(np.int64), rng.integers(0, n, m).astype(np.int64)


def _same_sets(labels_a, labels_b) -> bool:
    """True when two labellings make the same partition."""
    a, b = np.asarray(labels_a), np.asarray(labels_b)
    pairs = np.unique(np.stack([a, b]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


@pytest.mark.parametrize(("n", "m", "seed"), [(1, 3, 0), (10, 5, 1), (200, 150, 2), (500, 2000, 3)])
def test_twin_matches_scipy_components(n, m, seed):
    a, b = _pairs(n, m, seed)
    twin = TwinUnionFind(n)
    for i, j in zip(a.tolist(), b.tolist(), strict=True):
        twin.union(i, j)
    graph = coo_matrix((np.ones(m), (a, b)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    assert _same_sets(twin.roots(), comp)


@pytest.mark.parametrize(("n", "m", "seed"), [(1, 3, 0), (10, 5, 1), (200, 150, 2), (500, 2000, 3)])
def test_union_by_index_gives_the_twins_roots(n, m, seed):
    a, b = _pairs(n, m, seed)
    twin = TwinUnionFind(n)
    merged_twin = [twin.union(i, j) for i, j in zip(a.tolist(), b.tolist(), strict=True)]
    ref = twin.roots()

    parent = uf.new_parent(n)
    merged = [bool(uf.union(parent, i, j)) for i, j in zip(a, b, strict=True)]
    assert merged == merged_twin
    for find in (uf.root, uf.find, uf.find_compress):
        assert [int(find(parent.copy(), i)) for i in range(n)] == ref

    parent = uf.new_parent(n)
    uf.union_pairs(parent, a, b)
    assert [int(uf.find(parent, i)) for i in range(n)] == ref
    n_sets = uf.flatten(parent)
    assert parent.tolist() == ref
    assert n_sets == len(set(ref))


@pytest.mark.parametrize(("n", "m", "seed"), [(10, 5, 1), (200, 150, 2), (500, 2000, 3)])
def test_union_by_size_gives_the_same_sets(n, m, seed):
    a, b = _pairs(n, m, seed)
    twin = TwinUnionFind(n)
    for i, j in zip(a.tolist(), b.tolist(), strict=True):
        twin.union(i, j)
    parent = uf.new_parent(n)
    size = np.ones(n, np.int64)
    for i, j in zip(a, b, strict=True):
        uf.union_by_size(parent, size, i, j)
    roots = [int(uf.find(parent, i)) for i in range(n)]
    assert _same_sets(roots, twin.roots())
    # sizes are kept at the roots; the larger set's root stays the root
    for r in set(roots):
        assert size[r] == roots.count(r)
    n_sets = uf.flatten(parent)
    assert parent.tolist() == roots
    assert n_sets == len(set(roots))


def test_union_by_size_keeps_the_larger_root_and_breaks_ties_by_index():
    parent = uf.new_parent(5)
    size = np.ones(5, np.int64)
    assert uf.union_by_size(parent, size, 3, 4)  # tie: 3 (smaller) is the root
    assert int(uf.find(parent, 4)) == 3
    assert uf.union_by_size(parent, size, 0, 4)  # {3, 4} is larger: 3 stays the root
    assert int(uf.find(parent, 0)) == 3
    assert not uf.union_by_size(parent, size, 0, 3)
    assert size[3] == 3
