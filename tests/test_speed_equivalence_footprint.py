"""The footprint geometries drawn on threads are those drawn one by one (issue 11)."""

from __future__ import annotations

import numpy as np
import pytest

shapely = pytest.importorskip("shapely")

from pari_geo.clustering.actors import _footprint, _footprints  # noqa: E402


def _clusters(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = [rng.normal(rng.uniform(0, 50_000, 2), rng.uniform(100, 2_000), (int(n), 2))
           for n in rng.integers(5, 300, 12)]  # fmt: skip
    out.append(rng.uniform(0, 20_000, (900, 2)))  # above _SNAP_ABOVE: snapped members
    out.append(np.repeat([[1000.0, 1000.0]], 6, axis=0))  # one place
    out.append(np.array([[0.0, 0.0], [300.0, 0.0], [600.0, 0.0]]))  # discs touching
    return out


@pytest.mark.parametrize("kind", ["discs", "hull"])
@pytest.mark.parametrize("n_jobs", [1, 2, 3])
def test_threaded_footprints_are_the_serial_ones(kind, n_jobs):
    clusters = _clusters(7)
    want = [_footprint(p, 300.0, kind) for p in clusters]
    got = _footprints(clusters, 300.0, kind, n_jobs)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.wkb == w.wkb  # the same vertices in the same order, not only equal shapes
