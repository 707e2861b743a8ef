"""The engine operations the nordic7 rules add: travel minutes, window means, component
tables; in memory and by tiles they give the same bits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pari_geo.outofcore.component_tables import (
    counts_memory,
    counts_tiled,
    first_values_memory,
    first_values_tiled,
    on_edge_memory,
    on_edge_tiled,
)
from pari_geo.outofcore.components import label_tiled
from pari_geo.outofcore.ops import ArrayLayer
from pari_geo.outofcore.tiled import TiledComponentsView
from pari_geo.outofcore.travel_time import minutes_layer, minutes_layer_tiled, minutes_to
from pari_geo.outofcore.windows import window_mean, window_mean_reader


class _Labels:
    """The in-memory components' face these functions read."""

    def __init__(self, labels: np.ndarray, n: int) -> None:
        self.labels, self.n = labels, n


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("seed", range(4))
def test_component_tables_memory_equal_tiled_and_numpy_twin(seed, connectivity):
    rng = np.random.default_rng(seed)
    mask = rng.random((17, 23)) < 0.45
    values = rng.integers(0, 1000, mask.shape).astype(np.int32)
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    lab, n = ndimage.label(mask, structure=structure)
    mem = _Labels(lab.astype(np.int32), n)
    tiled = TiledComponentsView(label_tiled(mask, connectivity, tile_shape=(4, 5)))
    # numpy twins: explicit loops over the components
    want_counts = np.array([int((lab == k).sum()) for k in range(n + 1)])
    want_first = np.zeros(n + 1, np.int32)
    want_edge = np.zeros(n + 1, bool)
    for k in range(1, n + 1):
        rr, cc = np.nonzero(lab == k)
        want_first[k] = values[rr[0], cc[0]]  # np.nonzero is in raster order
        want_edge[k] = bool((rr == 0).any() or (rr == lab.shape[0] - 1).any()
                            or (cc == 0).any() or (cc == lab.shape[1] - 1).any())
    layer = ArrayLayer(values)
    for counts, first, edge in (
        (counts_memory(mem), first_values_memory(mem, layer), on_edge_memory(mem)),
        (counts_tiled(tiled), first_values_tiled(tiled, layer, 7), on_edge_tiled(tiled)),
    ):
        np.testing.assert_array_equal(counts[1:], want_counts[1:])
        np.testing.assert_array_equal(first, want_first)
        np.testing.assert_array_equal(edge, want_edge)
    tiled.close()


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_window_mean_reader_is_bit_identical_on_any_window(size):
    rng = np.random.default_rng(size)
    v = rng.random((19, 13)) * 100
    v[rng.random(v.shape) < 0.1] = np.nan
    whole = window_mean(v, size)
    read = window_mean_reader(lambda r0, r1, c0, c1: v[r0:r1, c0:c1], size, v.shape)
    for r0, r1, c0, c1 in ((0, 19, 0, 13), (0, 5, 0, 4), (7, 12, 3, 13), (18, 19, 12, 13)):
        np.testing.assert_array_equal(read(r0, r1, c0, c1), whole[r0:r1, c0:c1])


def test_minutes_layers_equal_minutes_to(tmp_path):
    rng = np.random.default_rng(5)
    src = rng.random((21, 17)) < 0.02
    src[3, 4] = True
    passable = rng.random(src.shape) > 0.2
    speed = rng.uniform(10, 90, src.shape)
    want = minutes_to(src, cell_size_m=250, speed_kmh=speed, passable=passable,
                      max_minutes=9.0)
    kw = {"cell_size_m": 250, "speed_kmh": ArrayLayer(speed),
          "passable": ArrayLayer(passable), "max_minutes": 9.0}
    mem = minutes_layer(ArrayLayer(src), **kw)
    np.testing.assert_array_equal(mem.values, want)
    tiled = minutes_layer_tiled(ArrayLayer(src), tile_shape=(5, 4), workdir=tmp_path, **kw)
    np.testing.assert_array_equal(tiled.read(0, 21, 0, 17), want)
    scalar = minutes_layer(ArrayLayer(src), cell_size_m=250, speed_kmh=30.0)
    np.testing.assert_array_equal(scalar.values, minutes_to(src, cell_size_m=250,
                                                             speed_kmh=30.0))
