"""Degree of Urbanisation (DEGURBA) grid classification, levels 1 and 2: the rules, once.

Implements ``degurba.md`` sections 1–6, which reproduce the R package flexurba cell for
cell. The class ladder of each level (:func:`classify_layers`) is written here once,
against the grid operations of :mod:`pari_geo.outofcore.ops` (per-cell tests, connected
components with sums, a queen buffer, edge smoothing and gap filling, a masked mean, a
painted canvas), so the same rules run in memory
(:class:`~pari_geo.outofcore.memory.MemoryEngine`) and by tiles, larger than memory or on a
dask cluster (:class:`~pari_geo.outofcore.tiled.TiledEngine`). The per-cell tests are in
:mod:`._degurba_cells`.

The faces import this module and never the other way round: :mod:`.degurba` (in memory,
and the ``engine`` choice of ``classify_grid``) and :mod:`.degurba_tiled` (by tiles).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np

from ..classes import DEGURBA_L1, DEGURBA_L2
from ..config import DegurbaParams
from ..errors import ConfigError, InputError
from ..outofcore.ops import (
    EDGE_RULE_R2022A,
    EDGE_RULE_R2023A,
    ArrayLayer,
    GridEngine,
    MappedLayer,
    bit_mask,
)
from ._degurba_cells import (
    BIT_EXCL,
    BIT_NOPOP,
    BIT_PWATER,
    BIT_WATER,
    CellPlan,
    DegurbaLayers,
    cell_tests,
    mask_key,
)

__all__ = [
    "classify_layers",
    "CellTests",
    "OptimalFn",
    "RangeCheck",
    "edge_rule",
    "is_r2023a",
    "memory_inputs",
    "memory_optimal",
    "output_codes",
]

_INPUTS = ("population", "built", "land")

#: ``check(ranges)``: the value checks of streamed inputs, on their ``[min, max]``
RangeCheck = Callable[[Mapping[str, np.ndarray]], None]


def is_r2023a(params: DegurbaParams) -> bool:
    return bool(params.UC_smooth_edge) and params.UC_smooth_edge_fun != "majority_rule_R2022A"


def edge_rule(params: DegurbaParams) -> int | None:
    if not params.UC_smooth_edge:
        return None
    if params.UC_smooth_edge_fun == "majority_rule_R2022A":
        return EDGE_RULE_R2022A
    return EDGE_RULE_R2023A


def _finish(canvas: Any, cells: CellTests, rest: int, water: int,
            nodata: int | None) -> Any:
    """The last step of both levels: the unpainted cells get ``rest``, water over ``rest``
    only, and with ``nodata`` every cell without population that code."""
    recode: list[tuple[Any, int | None, int]] = [(cells.flag(BIT_WATER), rest, water)]
    if nodata is not None:
        recode.append((cells.flag(BIT_NOPOP), None, nodata))
    return canvas.finish(rest, recode=recode)


def output_codes(params: DegurbaParams, level: int) -> tuple[int, ...]:
    default = DEGURBA_L1.codes if level == 1 else DEGURBA_L2.codes
    if params.values is None:
        return default
    if len(params.values) != len(default):
        raise ConfigError(
            "values", f"level {level} needs {len(default)} codes, got {len(params.values)}"
        )
    return params.values


# ---------------------------------------------------------------------------------------
# building blocks on an engine
# ---------------------------------------------------------------------------------------
class CellTests:
    """The per-cell pass of one classification: the ``uint16`` tests and the size layers."""

    def __init__(self, engine: GridEngine, inputs: Mapping[str, Any], plan: CellPlan,
                 check: RangeCheck | None) -> None:
        res = engine.cell_map(partial(cell_tests, plan=plan), inputs, plan.outputs(),
                              halo=plan.halo, keep=("population",),
                              ranges=_INPUTS if check is not None else ())
        if check is not None:
            check(res.ranges)
        self.plan = plan
        self.bits = res.layers["bits"]
        self.sizes: dict[int | None, Any] = {None: res.layers["population"]}
        for w in plan.size_windows:
            self.sizes[w] = res.layers[f"pop_w{w}"]

    def mask(self, key) -> Any:
        return bit_mask(self.bits, self.plan.bit(key))

    def flag(self, bit: int) -> Any:
        return bit_mask(self.bits, bit)


class _Searches:
    """Cluster searches (2.1) of one classification; a search asked twice in a row is
    labelled once (e.g. suburban and rural clusters with the default parameters)."""

    def __init__(self, engine: GridEngine, cells: CellTests) -> None:
        self.engine, self.cells = engine, cells
        self.last: tuple[Any, Any] | None = None

    def get(self, key, contiguity: int) -> Any:
        k = (key, int(contiguity))
        if self.last is not None and self.last[0] == k:
            return self.last[1]
        self.close()
        comp = self.engine.components(self.cells.mask(key), int(contiguity),
                                      self.cells.sizes[key[2]])
        self.last = (k, comp)
        return comp

    def take(self, key, contiguity: int) -> Any:
        """The search, handed over to the caller (who consumes or closes it)."""
        comp = self.get(key, contiguity)
        self.last = None
        return comp

    def close(self) -> None:
        if self.last is not None:
            self.last[1].close()
            self.last = None


def _selected(comp: Any, threshold: float) -> Any:
    """Bool layer of the cells of the components whose size is ``>= threshold``."""
    return comp.select(comp.keep(threshold))


def _urban_centres(engine: GridEngine, comp: Any, params: DegurbaParams,
                   cells: CellTests) -> Any:
    """Kept centres after edge smoothing (2.2 / 2.3) and gap filling (2.4); consumes comp."""
    rule = edge_rule(params)
    r2023a = rule == EDGE_RULE_R2023A
    limit = params.UC_max_gap - 1
    return engine.smooth_and_fill(
        comp, comp.keep(params.UC_size_threshold), rule=rule,
        excluded=cells.flag(BIT_EXCL) if r2023a else None,
        blocked=cells.flag(BIT_PWATER) if r2023a else None,
        gap_fill=bool(params.UC_gap_fill), max_hole_cells=None if limit <= 0 else limit)


def _built_share(a: np.ndarray, *, unit: str, r: float) -> np.ndarray:
    v = np.asarray(a, dtype=np.float64)
    return v / r / r if unit == "m2" else v  # two divisions, as the reference does


def _optimal(engine: GridEngine, inputs: Mapping[str, Any], cell_size_m: float,
             units: tuple[str, str], density: float, size: float, contiguity: int,
             check: RangeCheck | None = None) -> tuple[float, float]:
    """The "optimal" built-up threshold (2.8) of the given layers, on an engine."""
    key = mask_key(density, None, None)
    cells = CellTests(engine, inputs, CellPlan(masks=(key,), cell_size_m=cell_size_m,
                                                units=units), check)
    comp = engine.components(cells.mask(key), int(contiguity), cells.sizes[None])
    sel = _selected(comp, size)
    comp.close()
    built = MappedLayer(inputs["built"], partial(_built_share, unit=units[0],
                                                 r=float(cell_size_m)), np.float64)
    mean, n = engine.masked_mean(built, sel)
    if n == 0:
        raise InputError(
            None,
            "built_optimal_data",
            "no dense cluster found, so the 'optimal' built-up threshold is undefined",
        )
    return mean, float(np.ceil(mean * 100.0) / 100.0)


#: ``optimal(density, size, contiguity) -> (mean, threshold)``
OptimalFn = Callable[[float, float, int], tuple[float, float]]


def _resolve_built_thresholds(params: DegurbaParams, level: int, optimal: OptimalFn,
                              given: bool) -> tuple[float, float, dict[str, Any]]:
    info: dict[str, Any] = {}
    uc, duc = params.UC_built_threshold, params.DUC_built_threshold
    wants = (uc == "optimal" and params.UC_built_criterium) or (
        level == 2 and duc == "optimal" and params.DUC_built_criterium
    )
    value = float("nan")
    if wants:
        if level == 1:
            mean, value = optimal(params.UC_density_threshold, params.UCL_size_threshold,
                                  params.UC_contiguity_rule)
        else:
            mean, value = optimal(params.DUC_density_threshold, params.DUC_size_threshold,
                                  params.DUC_contiguity_rule)
        info = {"optimal_built_mean": mean, "optimal_built_threshold": value,
                "optimal_built_data": "given" if given else "input grids"}
    uc_v = value if uc == "optimal" else float(uc)
    duc_v = value if duc == "optimal" else float(duc)
    return uc_v, duc_v, info


# ---------------------------------------------------------------------------------------
# the class ladders
# ---------------------------------------------------------------------------------------
def _water(p: DegurbaParams) -> tuple[float, float, float]:
    return (p.water_land_threshold, p.water_pop_threshold, p.water_built_threshold)


def _level1(engine: GridEngine, inputs, p: DegurbaParams, uc_built: float, cell_size_m,
            units, check, nodata: int | None = None) -> Any:
    """Level 1 (section 3): 3 centre, 2 cluster, 1 rural, 0 water (or ``values``)."""
    v_centre, v_cluster, v_rural, v_water = output_codes(p, 1)
    uc_w = p.UC_smooth_pop_window if p.UC_smooth_pop else None
    ucl_w = p.UCL_smooth_pop_window if p.UCL_smooth_pop else None
    uc_key = mask_key(p.UC_density_threshold, uc_built if p.UC_built_criterium else None,
                      uc_w)
    ucl_key = mask_key(p.UCL_density_threshold, None, ucl_w)
    r2023a = is_r2023a(p)
    plan = CellPlan(masks=tuple(dict.fromkeys([uc_key, ucl_key])), cell_size_m=cell_size_m,
                    units=units, water=_water(p), r2023a=r2023a,
                    excl_window=uc_w if r2023a else None,
                    size_windows=tuple(sorted({w for w in (uc_w, ucl_w) if w is not None})),
                    missing_population=nodata is not None)
    cells = CellTests(engine, inputs, plan, check)
    searches = _Searches(engine, cells)
    canvas = engine.canvas()
    # 3: urban centres (population smoothed when UC_smooth_pop)
    centres = _urban_centres(engine, searches.take(uc_key, p.UC_contiguity_rule), p, cells)
    canvas.paint(centres, v_centre)
    del centres
    # 2: urban clusters, searched on the whole grid
    ucl = searches.get(ucl_key, p.UCL_contiguity_rule)
    canvas.paint(_selected(ucl, p.UCL_size_threshold), v_cluster)
    searches.close()
    # 1: the rest; 0: water over rural only
    return _finish(canvas, cells, v_rural, v_water, nodata)


def _level2(engine: GridEngine, inputs, p: DegurbaParams, uc_built: float, duc_built: float,
            cell_size_m, units, check, nodata: int | None = None) -> Any:
    """Level 2 (section 4): 30, 23, 22, 21, 13, 12, 11, 10 (or ``values``)."""
    c30, c23, c22, c21, c13, c12, c11, c10 = output_codes(p, 2)
    keys = {
        "uc": mask_key(p.UC_density_threshold, uc_built if p.UC_built_criterium else None,
                       None),
        "duc": mask_key(p.DUC_density_threshold,
                        duc_built if p.DUC_built_criterium else None, None),
        "sduc": mask_key(p.SDUC_density_threshold, None, None),
        "surb": mask_key(p.SUrb_density_threshold, None, None),
        "rc": mask_key(p.RC_density_threshold, None, None),
        "ldr": mask_key(p.LDR_density_threshold, None, None),
    }
    plan = CellPlan(masks=tuple(dict.fromkeys(keys.values())), cell_size_m=cell_size_m,
                    units=units, water=_water(p), r2023a=is_r2023a(p),
                    missing_population=nodata is not None)
    cells = CellTests(engine, inputs, plan, check)
    searches = _Searches(engine, cells)
    canvas = engine.canvas()
    # 30: urban centres (population smoothing never applies at level 2); with the same
    # dense mask as the centres (the default) the dense urban clusters are selected first
    uc = searches.take(keys["uc"], p.UC_contiguity_rule)
    duc_cells = None
    if (keys["duc"], int(p.DUC_contiguity_rule)) == (keys["uc"], int(p.UC_contiguity_rule)):
        duc_cells = _selected(uc, p.DUC_size_threshold)
    canvas.paint(_urban_centres(engine, uc, p, cells), c30)
    del uc
    # 23: dense urban clusters
    if duc_cells is None:
        duc_cells = _selected(searches.get(keys["duc"], p.DUC_contiguity_rule),
                              p.DUC_size_threshold)
    canvas.paint(duc_cells, c23)
    del duc_cells
    # 22: semi-dense urban clusters, rejected whole when touching the buffer of 30/23
    n = p.SDUC_buffer_size
    steps = n if n >= 1 else 2 - n
    buffer = engine.queen_buffer(canvas.painted(), steps)
    sduc = searches.get(keys["sduc"], p.SDUC_contiguity_rule)
    keep = sduc.keep(p.SDUC_size_threshold)
    if keep.any():
        keep &= ~engine.touching(sduc, buffer)
        canvas.paint(sduc.select(keep), c22)
    del buffer, keep
    # 21: suburban / peri-urban; 13: rural clusters
    canvas.paint(_selected(searches.get(keys["surb"], p.SUrb_contiguity_rule),
                           p.SUrb_size_threshold), c21)
    canvas.paint(_selected(searches.get(keys["rc"], p.RC_contiguity_rule),
                           p.RC_size_threshold), c13)
    searches.close()
    # 12: low-density rural; 11: the rest; 10: water over very-low-density rural only
    canvas.paint(cells.mask(keys["ldr"]), c12)
    return _finish(canvas, cells, c11, c10, nodata)


def classify_layers(
    engine: GridEngine,
    inputs: Mapping[str, Any],
    params: DegurbaParams,
    level: int,
    *,
    cell_size_m: float,
    units: tuple[str, str] = ("m2", "m2"),
    optimal: OptimalFn | None = None,
    check: RangeCheck | None = None,
    nodata: int | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The DEGURBA grid classification of three layers on an engine (sections 3 and 4).

    Parameters
    ----------
    engine : GridEngine
        Where the operations run (``MemoryEngine``, ``TiledEngine``).
    inputs : mapping
        ``population``, ``built`` and ``land`` layers of the engine's grid (native
        dtypes; NaN = missing).
    params : DegurbaParams
    level : {1, 2}
    cell_size_m : float
    units : (built unit, land unit), each "m2" or "share"
    optimal : callable, optional
        ``(density, size, contiguity) -> (mean, threshold)`` for a "optimal" built-up
        threshold from other data; by default computed on ``inputs`` with ``engine``.
    check : callable, optional
        Value checks of the inputs from their ``[min, max]`` (for inputs streamed from
        files, checked during the per-cell pass).
    nodata : int, optional
        Code of the cells whose population is missing (NaN), painted over their class as
        the last step; the rules themselves count them as 0 residents (as the reference
        does), so every other cell keeps its class. None (default): no such class.

    Returns
    -------
    codes : layer
        ``uint8`` class codes.
    info : dict
        Resolved values (built-up thresholds, optimal threshold).
    """
    units = (str(units[0]), str(units[1]))
    given = optimal is not None
    if optimal is None:
        optimal = partial(_optimal, engine, inputs, cell_size_m, units, check=check)
    uc_built, duc_built, info = _resolve_built_thresholds(params, level, optimal, given)
    if level == 1:
        codes = _level1(engine, inputs, params, uc_built, cell_size_m, units, check, nodata)
        info["urban_centre_built_threshold"] = uc_built
    else:
        codes = _level2(engine, inputs, params, uc_built, duc_built, cell_size_m, units,
                        check, nodata)
        info["urban_centre_built_threshold"] = uc_built
        info["dense_cluster_built_threshold"] = duc_built
    return codes, info


# ---------------------------------------------------------------------------------------
# in-memory inputs of the rules
# ---------------------------------------------------------------------------------------
def memory_inputs(lay: DegurbaLayers) -> dict[str, ArrayLayer]:
    return {"population": ArrayLayer(lay.pop_raw), "built": ArrayLayer(lay._built),
            "land": ArrayLayer(lay._land)}


def memory_optimal(lay: DegurbaLayers) -> OptimalFn:
    from ..outofcore.memory import MemoryEngine

    return partial(_optimal, MemoryEngine(lay.shape), memory_inputs(lay), lay.cell_size_m,
                   (lay.built_unit, lay.land_unit))
