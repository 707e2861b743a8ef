"""Degree of Urbanisation (DEGURBA) grid classification, levels 1 and 2: the faces.

Implements ``degurba.md`` sections 1–6, which reproduce the R package flexurba cell for
cell. The rules are written once in :mod:`.degurba_rules` (:func:`classify_layers`, on
the grid operations of :mod:`pari_geo.outofcore.ops`), so the same rules run in memory
(:class:`~pari_geo.outofcore.memory.MemoryEngine`) and by tiles, larger than memory or on
a dask cluster (:class:`~pari_geo.outofcore.tiled.TiledEngine`, :mod:`.degurba_tiled`).
The per-cell tests are in :mod:`._degurba_cells`, the in-memory input loading in
:mod:`._degurba_inputs`.

Faces: :func:`classify_grid` (``engine="auto" | "memory" | "tiled"``, returns a
DataArray), :func:`~pari_geo.typology.degurba_tiled.classify_grid_chunked` (by tiles into
a COG), and the array functions (``degurba_layers``, ``classify_level1_array``,
``urban_centre_labels``, ...) on plain numpy arrays.

What changes with the cell size ``r``: built-up and land are converted to shares with
``/ r / r``; density is residents per *cell of permanent land* (residents per km² of land
only at r = 1000 m, as in the reference implementation), so density thresholds keep their
per-km² meaning only at 1 km; ``UC_max_gap``, ``SDUC_buffer_size`` and the smoothing
windows are counted in cells. Population size thresholds are resolution-independent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from affine import Affine

from ..classes import check_nodata, degurba_scheme
from ..config import DegurbaParams
from ..errors import ConfigError
from ..outofcore.ops import EDGE_RULE_R2023A
from ._degurba_cells import (
    _IGNORE,
    _PWATER,
    _WATER,
    BIT_EXCL,
    BIT_PWATER,
    CellPlan,
    DegurbaLayers,
    _CellCodes,
    _dense,
    _round3_at_least,
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
from .degurba_rules import (
    CellTests,
    classify_layers,
    edge_rule,
    is_r2023a,
    memory_inputs,
    memory_optimal,
    output_codes,
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

# ---------------------------------------------------------------------------------------
# array faces (in memory)
# ---------------------------------------------------------------------------------------
def _classify_array(lay: DegurbaLayers, params: DegurbaParams | None, level: int,
                    optimal_data: DegurbaLayers | None,
                    nodata: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    from ..outofcore.memory import MemoryEngine

    params = params or DegurbaParams()
    output_codes(params, level)  # a wrong number of codes fails before any work
    codes, info = classify_layers(
        MemoryEngine(lay.shape), memory_inputs(lay), params, level,
        cell_size_m=lay.cell_size_m, units=(lay.built_unit, lay.land_unit),
        optimal=None if optimal_data is None else memory_optimal(optimal_data),
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
    r2023a = is_r2023a(params)
    plan = CellPlan(masks=(key,), cell_size_m=lay.cell_size_m,
                    units=(lay.built_unit, lay.land_unit), r2023a=r2023a,
                    excl_window=w if r2023a else None,
                    size_windows=() if w is None else (w,))
    cells = CellTests(engine, memory_inputs(lay), plan, None)
    comp = engine.components(cells.mask(key), params.UC_contiguity_rule, cells.sizes[w])
    rule = edge_rule(params)
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
    return memory_optimal(lay)(density_threshold, size_threshold, contiguity)


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
    codes = output_codes(params, level)
    nodata = check_nodata(nodata, codes)
    from ..ingest import read_env

    with read_env():
        grid, lay, sources = _load_inputs(population, built, land, built_unit, land_unit)
        opt = None
        if built_optimal_data is not None:
            _, opt, _ = _load_inputs(*built_optimal_data, built_unit, land_unit)
    out, info = _classify_array(lay, params, level, opt, nodata)
    scheme = degurba_scheme(level, codes, nodata)
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
            da = da.rio.write_transform(grid.transform @ Affine.translation(n, n))
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
