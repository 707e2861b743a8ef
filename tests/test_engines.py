"""The grid engines (issue 13): one rulebook, the same bits on every engine.

The DEGURBA rules (``typology.degurba.classify_layers``) run on the in-memory and the
tiled engine; each grid operation of ``outofcore/ops.py`` is compared between the two on
random grids and tile shapes, and the engines never import a typology.
"""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import numpy as np
import pytest

from pari_geo.config import DegurbaParams
from pari_geo.errors import ConfigError
from pari_geo.outofcore.memory import MemoryEngine
from pari_geo.outofcore.ops import (
    EDGE_RULE_R2022A,
    EDGE_RULE_R2023A,
    ArrayLayer,
    bit_mask,
    read_all,
)
from pari_geo.outofcore.tiled import TiledEngine
from pari_geo.typology.degurba import classify_layers

SRC = Path(__file__).resolve().parents[1] / "src" / "pari_geo"


def _engines(shape, tmp_path, tile):
    return MemoryEngine(shape), TiledEngine(shape, tile, tmp_path)


def _random_mask(rng, shape, p=0.45):
    return rng.random(shape) < p


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("conn", [4, 8])
def test_components_touching_buffer_and_mean_agree(seed, conn, tmp_path):
    rng = np.random.default_rng(seed)
    shape = (37, 29)
    mask = ArrayLayer(_random_mask(rng, shape))
    weights = ArrayLayer(np.where(rng.random(shape) < 0.1, np.nan, rng.random(shape) * 100))
    other = ArrayLayer(_random_mask(rng, shape, 0.05))
    results = []
    for eng in _engines(shape, tmp_path, (5, 7)):
        comp = eng.components(mask, conn, weights)
        keep = comp.keep(150.0)
        sel = read_all(comp.select(keep)).copy()
        touch = eng.touching(comp, eng.queen_buffer(other, 2))
        buf = read_all(eng.queen_buffer(other, 2)).copy()
        mean = eng.masked_mean(weights, comp.select(keep))
        comp.close()
        results.append((comp.n, comp.sums.tobytes(), sel, touch, buf, mean))
    (n0, s0, sel0, t0, b0, m0), (n1, s1, sel1, t1, b1, m1) = results
    assert n0 == n1 and s0 == s1  # bit-identical sums
    np.testing.assert_array_equal(sel0, sel1)
    np.testing.assert_array_equal(t0, t1)
    np.testing.assert_array_equal(b0, b1)
    assert m0 == m1


@pytest.mark.parametrize("rule", [None, EDGE_RULE_R2022A, EDGE_RULE_R2023A])
def test_smooth_and_fill_agree(rule, tmp_path):
    rng = np.random.default_rng(7)
    shape = (40, 44)
    mask = ArrayLayer(_random_mask(rng, shape, 0.6))
    ones = ArrayLayer(np.ones(shape))
    excluded = ArrayLayer(_random_mask(rng, shape, 0.1))
    blocked = ArrayLayer(read_all(excluded) & _random_mask(rng, shape, 0.5))
    out = []
    for eng in _engines(shape, tmp_path, (6, 9)):
        comp = eng.components(mask, 4, ones)
        cells = eng.smooth_and_fill(comp, comp.keep(5), rule=rule, excluded=excluded,
                                    blocked=blocked, gap_fill=True, max_hole_cells=4)
        out.append(read_all(cells).copy())
    np.testing.assert_array_equal(out[0], out[1])


def test_canvas_ladder_agrees(tmp_path):
    rng = np.random.default_rng(3)
    shape = (12, 17)
    masks = [_random_mask(rng, shape, 0.3) for _ in range(3)]
    water = ArrayLayer(_random_mask(rng, shape, 0.3))
    out = []
    for eng in _engines(shape, tmp_path, (4, 4)):
        canvas = eng.canvas()
        for m, code in zip(masks, (30, 23, 13), strict=True):
            canvas.paint(ArrayLayer(m.copy()), code)
        painted = read_all(canvas.painted()).copy()
        codes = canvas.finish(11, recode=[(water, 11, 10)])
        out.append((painted, read_all(codes).copy()))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])
    expected = np.full(shape, 11)
    for m, code in reversed(list(zip(masks, (30, 23, 13), strict=True))):
        expected[m] = code
    expected[(expected == 11) & read_all(water)] = 10
    np.testing.assert_array_equal(out[0][1], expected)


def test_bit_mask_and_protocol():
    lay = ArrayLayer(np.array([[0, 1 << 12, (1 << 12) | 1]], np.uint16))
    assert read_all(bit_mask(lay, 1 << 12)).tolist() == [[False, True, True]]
    for cls in (MemoryEngine, TiledEngine):
        for op in ("cell_map", "components", "touching", "queen_buffer", "smooth_and_fill",
                   "masked_mean", "canvas"):
            assert callable(getattr(cls, op)), (cls, op)


def _layers(seed, shape=(48, 56)):
    rng = np.random.default_rng(seed)
    pop = rng.gamma(0.6, 900.0, shape)
    pop[rng.random(shape) < 0.02] = np.nan
    built = (rng.random(shape) * 4e5).astype(np.uint32)
    land = np.where(rng.random(shape) < 0.06, 0, 1_000_000).astype(np.uint32)
    land[rng.random(shape) < 0.05] = 300_000
    return {"population": ArrayLayer(pop), "built": ArrayLayer(built),
            "land": ArrayLayer(land)}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("level", [1, 2])
@pytest.mark.parametrize("kw", [
    {},
    {"UC_size_threshold": 20000, "UCL_size_threshold": 3000, "DUC_size_threshold": 3000},
    {"UC_smooth_edge_fun": "majority_rule_R2022A", "UC_size_threshold": 15000},
    {"UC_smooth_pop": True, "UCL_smooth_pop": True, "UC_size_threshold": 15000},
    {"UC_built_threshold": "optimal", "UC_size_threshold": 15000, "UCL_size_threshold": 3000,
     "DUC_size_threshold": 3000},
])
def test_rules_give_the_same_classes_on_both_engines(seed, level, kw, tmp_path):
    inputs = _layers(seed)
    shape = inputs["population"].shape
    params = DegurbaParams().replace(**kw)
    out = []
    for eng in _engines(shape, tmp_path, (7, 11)):
        codes, info = classify_layers(eng, inputs, params, level, cell_size_m=1000.0)
        out.append((read_all(codes).copy(), info))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    assert out[0][1] == out[1][1]


def test_classify_grid_engines(belgium):
    from pari_geo.typology.degurba import classify_grid

    args = (belgium["population"], belgium["built"], belgium["land"])
    a = classify_grid(*args, level=2, engine="memory")
    b = classify_grid(*args, level=2, engine="tiled", tile_shape=(50, 70))
    np.testing.assert_array_equal(a.values, b.values)
    assert a.attrs["resolved"] == b.attrs["resolved"]
    assert a.rio.transform() == b.rio.transform()
    with pytest.raises(ConfigError, match="engine"):
        classify_grid(*args, engine="gpu")
    with pytest.raises(ConfigError, match="scheduler"):
        classify_grid(*args, engine="memory", scheduler="tcp://127.0.0.1:1")


def test_raster_windows_is_the_one_reader(belgium):
    from pari_geo.ingest import RasterWindows, open_raster

    for name in ("population", "built", "land"):
        ref = open_raster(belgium[name], name).values
        with RasterWindows(belgium[name], name) as src:
            native = src.read_all()
            window = src.read(10, 30, 20, 50)
            again = pickle.loads(pickle.dumps(src))
        np.testing.assert_array_equal(native.astype(np.float64), ref)
        np.testing.assert_array_equal(window.astype(np.float64), ref[10:30, 20:50])
        np.testing.assert_array_equal(again.read(0, 5, 0, 5), native[:5, :5])
        again.close()
        with RasterWindows(belgium[name], name, as_float=True) as src:
            assert src.read(0, 3, 0, 3).dtype == np.float64


_ENGINE_MODULES = ["ops.py", "memory.py", "tiled.py", "contiguity.py", "_grid_kernels.py",
                   "components.py", "_kernels.py", "_writer.py"]


@pytest.mark.parametrize("name", _ENGINE_MODULES)
def test_engines_never_import_rules(name):
    tree = ast.parse((SRC / "outofcore" / name).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = ("." * node.level) + (node.module or "")
            assert "typology" not in mod, (name, mod)
        elif isinstance(node, ast.Import):
            assert not any("typology" in a.name for a in node.names), name
