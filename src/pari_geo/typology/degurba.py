"""Degree of Urbanisation (DEGURBA) grid classification, levels 1 and 2: the rules, once.

Implements ``degurba.md`` sections 1–6, which reproduce the R package flexurba cell for
cell. The class ladder of each level is written here once, against the grid operations
of :mod:`pari_geo.outofcore.ops` (per-cell tests, connected components with sums, a queen
buffer, edge smoothing and gap filling, a masked mean, a painted canvas), so the same
rules run in memory (:class:`~pari_geo.outofcore.memory.MemoryEngine`) and by tiles,
larger than memory or on a dask cluster (:class:`~pari_geo.outofcore.tiled.TiledEngine`).
The per-cell tests are in :mod:`._degurba_cells`, the in-memory input loading in
:mod:`._degurba_inputs`.

Faces: :func:`classify_grid` (``engine="auto" | "memory" | "tiled"``, returns a
DataArray), :func:`classify_grid_chunked` (by tiles into a COG), and the array functions
(``degurba_layers``, ``classify_level1_array``, ``urban_centre_labels``, ...) on plain
numpy arrays.

What changes with the cell size ``r``: built-up and land are converted to shares with
``/ r / r``; density is residents per *cell of permanent land* (residents per km² of land
only at r = 1000 m, as in the reference implementation), so density thresholds keep their
per-km² meaning only at 1 km; ``UC_max_gap``, ``SDUC_buffer_size`` and the smoothing
windows are counted in cells. Population size thresholds are resolution-independent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from affine import Affine

from ..classes import DEGURBA_L1, DEGURBA_L2, check_nodata
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
    _IGNORE,
    _PWATER,
    _WATER,
    BIT_EXCL,
    BIT_NOPOP,
    BIT_PWATER,
    BIT_WATER,
    CellPlan,
    DegurbaLayers,
    _CellCodes,
    _dense,
    _round3_at_least,
    cell_tests,
    degurba_layers,
    mask_key,
    round_half_even_3,
    smooth_mean,
    water_mask,
)
from ._degurba_inputs import (
    _load_grid_layers,
    _load_inputs,
    _load_lean,
    _value_summary,
)

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "DegurbaLayers",
    "degurba_layers",
    "round_half_even_3",
    "smooth_mean",
    "water_mask",
    "urban_centre_labels",
    "optimal_built_threshold",
    "classify_level1_array",
    "classify_level2_array",
    "classify_layers",
    "classify_grid",
]

# names other modules and the tests reach (kept importable from here)
_REEXPORTED = (_IGNORE, _PWATER, _WATER, _CellCodes, _dense, _round3_at_least, _load_lean,
               _load_grid_layers, _value_summary)

_INPUTS = ("population", "built", "land")

#: ``check(ranges)``: the value checks of streamed inputs, on their ``[min, max]``
RangeCheck = Callable[[Mapping[str, np.ndarray]], None]


def _is_r2023a(params: DegurbaParams) -> bool:
    return bool(params.UC_smooth_edge) and params.UC_smooth_edge_fun != "majority_rule_R2022A"


def _edge_rule(params: DegurbaParams) -> int | None:
    if not params.UC_smooth_edge:
        return None
    if params.UC_smooth_edge_fun == "majority_rule_R2022A":
        return EDGE_RULE_R2022A
    return EDGE_RULE_R2023A


def _finish(canvas: Any, cells: _CellTests, rest: int, water: int,
            nodata: int | None) -> Any:
    """The last step of both levels: the unpainted cells get ``rest``, water over ``rest``
    only, and with ``nodata`` every cell without population that code."""
    recode: list[tuple[Any, int | None, int]] = [(cells.flag(BIT_WATER), rest, water)]
    if nodata is not None:
        recode.append((cells.flag(BIT_NOPOP), None, nodata))
    return canvas.finish(rest, recode=recode)


def _codes(params: DegurbaParams, level: int) -> tuple[int, ...]:
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
class _CellTests:
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

    def __init__(self, engine: GridEngine, cells: _CellTests) -> None:
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
                   cells: _CellTests) -> Any:
    """Kept centres after edge smoothing (2.2 / 2.3) and gap filling (2.4); consumes comp."""
    rule = _edge_rule(params)
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
    cells = _CellTests(engine, inputs, CellPlan(masks=(key,), cell_size_m=cell_size_m,
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
    v_centre, v_cluster, v_rural, v_water = _codes(p, 1)
    uc_w = p.UC_smooth_pop_window if p.UC_smooth_pop else None
    ucl_w = p.UCL_smooth_pop_window if p.UCL_smooth_pop else None
    uc_key = mask_key(p.UC_density_threshold, uc_built if p.UC_built_criterium else None,
                      uc_w)
    ucl_key = mask_key(p.UCL_density_threshold, None, ucl_w)
    r2023a = _is_r2023a(p)
    plan = CellPlan(masks=tuple(dict.fromkeys([uc_key, ucl_key])), cell_size_m=cell_size_m,
                    units=units, water=_water(p), r2023a=r2023a,
                    excl_window=uc_w if r2023a else None,
                    size_windows=tuple(sorted({w for w in (uc_w, ucl_w) if w is not None})),
                    missing_population=nodata is not None)
    cells = _CellTests(engine, inputs, plan, check)
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
    c30, c23, c22, c21, c13, c12, c11, c10 = _codes(p, 2)
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
                    units=units, water=_water(p), r2023a=_is_r2023a(p),
                    missing_population=nodata is not None)
    cells = _CellTests(engine, inputs, plan, check)
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
# array faces (in memory)
# ---------------------------------------------------------------------------------------
def _memory_inputs(lay: DegurbaLayers) -> dict[str, ArrayLayer]:
    return {"population": ArrayLayer(lay.pop_raw), "built": ArrayLayer(lay._built),
            "land": ArrayLayer(lay._land)}


def _memory_optimal(lay: DegurbaLayers) -> OptimalFn:
    from ..outofcore.memory import MemoryEngine

    return partial(_optimal, MemoryEngine(lay.shape), _memory_inputs(lay), lay.cell_size_m,
                   (lay.built_unit, lay.land_unit))


def _classify_array(lay: DegurbaLayers, params: DegurbaParams | None, level: int,
                    optimal_data: DegurbaLayers | None,
                    nodata: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    from ..outofcore.memory import MemoryEngine

    params = params or DegurbaParams()
    _codes(params, level)  # a wrong number of codes fails before any work
    codes, info = classify_layers(
        MemoryEngine(lay.shape), _memory_inputs(lay), params, level,
        cell_size_m=lay.cell_size_m, units=(lay.built_unit, lay.land_unit),
        optimal=None if optimal_data is None else _memory_optimal(optimal_data),
        nodata=nodata)
    return codes.values, info


def classify_level1_array(
    lay: DegurbaLayers,
    params: DegurbaParams | None = None,
    *,
    optimal_data: DegurbaLayers | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Level-1 grid classification (section 3) on derived layers, in memory.

    Returns the uint8 class array (codes ``params.values`` or 3/2/1/0) and a dict of
    resolved values (e.g. the optimal built-up threshold).
    """
    return _classify_array(lay, params, 1, optimal_data)


def classify_level2_array(
    lay: DegurbaLayers,
    params: DegurbaParams | None = None,
    *,
    optimal_data: DegurbaLayers | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Level-2 grid classification (section 4) on derived layers, in memory.

    Returns the uint8 class array (codes ``params.values`` or 30/23/22/21/13/12/11/10)
    and a dict of resolved values.

    Memory: besides the inputs, about 15 bytes per cell at the peak (two bytes of
    per-cell tests, the uint8 result and its "unpainted" mask, int32 cluster labels, the
    int32 labels of the hole search and a few bool masks); the float64 layers are only
    ever materialised block by block (see ``benchmarks/degurba/README.md``).
    """
    return _classify_array(lay, params, 2, optimal_data)


def urban_centre_labels(
    lay: DegurbaLayers,
    params: DegurbaParams,
    built_threshold: float,
    *,
    smooth_pop: bool = False,
) -> np.ndarray:
    """Labelled urban centres after edge smoothing and gap filling (level 1/2 step 2).

    Returns int32 centre ids (0 = not a centre), ``1..k`` in raster order of the kept
    clusters; gap-filled cells outside every centre get ``k + 1`` (their id is irrelevant
    downstream).
    """
    from ..outofcore.memory import MemoryEngine

    engine = MemoryEngine(lay.shape)
    w = params.UC_smooth_pop_window if smooth_pop else None
    key = mask_key(params.UC_density_threshold,
                   built_threshold if params.UC_built_criterium else None, w)
    r2023a = _is_r2023a(params)
    plan = CellPlan(masks=(key,), cell_size_m=lay.cell_size_m,
                    units=(lay.built_unit, lay.land_unit), r2023a=r2023a,
                    excl_window=w if r2023a else None,
                    size_windows=() if w is None else (w,))
    cells = _CellTests(engine, _memory_inputs(lay), plan, None)
    comp = engine.components(cells.mask(key), params.UC_contiguity_rule, cells.sizes[w])
    rule = _edge_rule(params)
    limit = params.UC_max_gap - 1
    labels, fill = engine.smoothed_ids(
        comp, comp.keep(params.UC_size_threshold), rule=rule,
        excluded=cells.flag(BIT_EXCL) if rule == EDGE_RULE_R2023A else None,
        blocked=cells.flag(BIT_PWATER) if rule == EDGE_RULE_R2023A else None,
        gap_fill=bool(params.UC_gap_fill), max_hole_cells=None if limit <= 0 else limit)
    if fill is not None and fill.any():
        labels[fill & (labels == 0)] = labels.max() + 1
    return labels


def optimal_built_threshold(
    lay: DegurbaLayers,
    density_threshold: float,
    size_threshold: float,
    contiguity: int,
) -> tuple[float, float]:
    """GHSL 2023 "optimal" built-up threshold (section 2.8).

    Returns
    -------
    mean_built : float
        Mean built-up share of the *total* cell area over all cells of the clusters of
        cells with density >= ``density_threshold`` and population >= ``size_threshold``.
    threshold : float
        ``ceil(mean_built * 100) / 100``.

    Examples
    --------
    >>> import numpy as np
    >>> lay = degurba_layers(np.array([[2000.0, 2000.0, 0.0]]),
    ...                      np.array([[0.2434, 0.3, 0.9]]), np.ones((1, 3)), 1000,
    ...                      built_unit="share", land_unit="share")
    >>> optimal_built_threshold(lay, 1500, 3000, 4)
    (0.2717, 0.28)
    """
    return _memory_optimal(lay)(density_threshold, size_threshold, contiguity)


# ---------------------------------------------------------------------------------------
# the public face on files and DataArrays
# ---------------------------------------------------------------------------------------
def classify_grid(
    population: Any,
    built: Any,
    land: Any,
    *,
    level: int = 2,
    params: DegurbaParams | str | None = None,
    built_unit: str = "m2",
    land_unit: str = "m2",
    built_optimal_data: tuple[Any, Any, Any] | None = None,
    buffer_m: float = 0.0,
    engine: str = "auto",
    scheduler: Any = None,
    tile_shape: tuple[int, int] = (1024, 1024),
    workdir: Any = None,
    nodata: int | None = None,
    **overrides: Any,
) -> xr.DataArray:
    """Classify every grid cell with the Degree of Urbanisation (level 1 or 2).

    Follows ``degurba.md`` sections 1–6 (flexurba, cell for cell): density per permanent
    land, built-up per land rounded to 3 decimals, urban centres with R2023A (default) or
    R2022A edge smoothing and gap filling, then clusters, rural classes and water.

    Parameters
    ----------
    population, built, land : path or xarray.DataArray
        Residents per cell; built-up surface; permanent land. Built and land are m² per cell
        (GHSL) by default, or shares 0..1 with ``built_unit="share"``/``land_unit="share"``.
        Layers on another grid are aligned to the population grid (sum-preserving for
        m², area-weighted mean for shares); layers on the same lattice are cropped to their
        common extent, as the reference does.
    level : {1, 2}
        Level 1 codes 3/2/1/0; level 2 codes 30/23/22/21/13/12/11/10 (or ``values``).
    params : DegurbaParams or preset name, optional
        Defaults to the current rules (``"degurba"``); ``"degurba_2023"`` gives the
        pre-2024 semi-dense rules.
    built_unit, land_unit : {"m2", "share"}
    built_optimal_data : (population, built, land), optional
        Data for the "optimal" built-up threshold; defaults to the classified grids.
    buffer_m : float, default 0
        Crop this many metres from every side of the result (GHSL metadata buffer).
    engine : {"auto", "memory", "tiled"}, default "auto"
        Where the rules run: ``"memory"`` on whole arrays; ``"tiled"`` by tiles through
        :func:`~pari_geo.typology.degurba_tiled.classify_grid_chunked` (files on one
        identical grid; the class raster is written to a temporary COG in ``workdir``
        and read back, 1 byte per cell); ``"auto"`` is ``"tiled"`` with a
        ``scheduler`` or when the grid's in-memory estimate
        (:data:`pari_geo.memory.DEGURBA_BYTES_PER_CELL`) exceeds half the machine's
        memory or when the population is a dask-backed DataArray (streamed window by
        window, never computed whole; the built-up and land layers must then be on its
        grid), else ``"memory"``. Same classes either way.
    scheduler : str or distributed.Client, optional
        Run the tiled engine's tasks on this dask cluster (implies ``"tiled"``).
    tile_shape : (rows, cols), default (1024, 1024)
        Tiles of the tiled engine.
    workdir : path-like, optional
        Folder of the tiled engine's intermediates (default: the system's temporary
        folder).
    nodata : int, optional
        Give this code (e.g. 255) to the cells whose population is missing (NaN, or the
        population raster's no-data), instead of the class they get as 0 residents
        (usually water). The code becomes the result's no-data value (``rio.nodata``, the
        GeoTIFF's nodata, transparent in maps); every other cell keeps its class. None
        (default) is the reference behaviour.
    **overrides
        Any parameter of section 5, e.g. ``UC_density_threshold=1000``.

    Returns
    -------
    xarray.DataArray
        ``uint8`` classes on the population grid, with ``attrs``: ``typology``, ``level``,
        ``parameters`` (resolved, JSON), ``parameters_hash``, ``class_names``,
        ``class_colours``, ``pari_geo_version`` and resolved values (optimal threshold).

    Examples
    --------
    >>> import numpy as np
    >>> from pari_geo.datasets import belgium_paths
    >>> p = belgium_paths()
    >>> l2 = classify_grid(p["population"], p["built"], p["land"], level=2)
    >>> int((l2 == 30).sum()), int((l2 == 10).sum())
    (2145, 2578)
    >>> l1 = classify_grid(p["population"], p["built"], p["land"], level=1,
    ...                    UC_smooth_edge_fun="majority_rule_R2022A")
    >>> sorted(np.unique(l1).tolist())
    [0, 1, 2, 3]
    """
    import json

    from .._version import __version__

    if level not in (1, 2):
        raise ConfigError("level", f"must be 1 or 2, got {level!r}")
    from ..memory import pick_engine

    if pick_engine(engine, scheduler, population) == "tiled":
        return _classify_grid_tiled(population, built, land, level=level, params=params,
                                    built_unit=built_unit, land_unit=land_unit,
                                    built_optimal_data=built_optimal_data,
                                    buffer_m=buffer_m, scheduler=scheduler,
                                    tile_shape=tile_shape, workdir=workdir, nodata=nodata,
                                    **overrides)
    if isinstance(params, str):
        params = DegurbaParams.from_preset(params)
    params = (params or DegurbaParams()).replace(**overrides)
    for name, unit in (("built_unit", built_unit), ("land_unit", land_unit)):
        if unit not in ("m2", "share"):
            raise ConfigError(name, f"must be 'm2' or 'share', got {unit!r}")
    codes = _codes(params, level)
    nodata = check_nodata(nodata, codes)
    from ..ingest import read_env

    with read_env():
        grid, lay, sources = _load_inputs(population, built, land, built_unit, land_unit)
        opt = None
        if built_optimal_data is not None:
            _, opt, _ = _load_inputs(*built_optimal_data, built_unit, land_unit)
    out, info = _classify_array(lay, params, level, opt, nodata)
    scheme = (DEGURBA_L1 if level == 1 else DEGURBA_L2).with_codes(codes).with_nodata(nodata)
    attrs = {
        "typology": "degurba",
        "level": level,
        "parameters": json.dumps(params.to_dict(), sort_keys=True),
        "parameters_hash": params.hash(),
        "resolved": json.dumps(info, sort_keys=True),
        "class_names": json.dumps({str(k): v for k, v in scheme.names.items()}),
        "class_colours": json.dumps({str(k): v for k, v in scheme.colours.items()}),
        "inputs": json.dumps({k: (None if v is None else str(v)) for k, v in sources.items()}),
        "units": json.dumps({"built": built_unit, "land": land_unit}),
        "pari_geo_version": __version__,
    }
    da = grid.to_dataarray(out, name=f"degurba_l{level}", attrs=attrs, nodata=nodata)
    if buffer_m:
        n = int(round(buffer_m / grid.cell_size_m))
        if n > 0:
            if 2 * n >= min(grid.shape):
                raise ConfigError("buffer_m", f"{buffer_m} m crops away the whole grid")
            da = da.isel(y=slice(n, -n), x=slice(n, -n))
            da = da.rio.write_transform(grid.transform * Affine.translation(n, n))
    return da


def _classify_grid_tiled(population: Any, built: Any, land: Any, *, workdir: Any,
                         **kw: Any) -> xr.DataArray:
    """:func:`classify_grid` by tiles: a temporary COG read back as the DataArray."""
    import tempfile
    from pathlib import Path

    from ..io_write import read_class_raster
    from .degurba_tiled import classify_grid_chunked

    with tempfile.TemporaryDirectory(prefix="pari_geo_tiled_", dir=workdir) as tmp:
        res = classify_grid_chunked(population, built, land,
                                    out_path=Path(tmp) / "classes.tif", workdir=tmp, **kw)
        da = read_class_raster(res.path)
        da.load()
        for key in ("out_of_core", "source"):  # the temporary file is gone
            da.attrs.pop(key, None)
    return da
