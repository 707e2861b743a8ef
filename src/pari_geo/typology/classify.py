"""Place-type classification on georeferenced layers: ``nordic7`` on DataArrays or files.

This module is the xarray/file face of :mod:`pari_geo.typology.nordic7` (which works on
plain arrays): it reads the layers, aligns them to the population grid (sum-preserving for
m², area-weighted for shares, land cover turned into an agricultural share before
averaging), runs the typology and returns a ``uint8`` DataArray whose attributes record the
resolved parameters, which layers were used and which fell back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..classes import NORDIC7
from ..errors import ConfigError, InputError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["classify_nordic7", "load_nordic7_inputs", "Nordic7Inputs"]

_SHARE_LAYERS = {"agri": "agri_share", "commuting": "commuting_share"}


def _share_layer(obj, layer, grid, unit, file_layer):
    from ..align import align_to_grid, check_layer_fits
    from ..ingest import as_dataarray, check_share

    da = as_dataarray(obj, file_layer)
    if unit not in ("m2", "share"):
        raise ConfigError(f"{layer}_unit", f"must be 'm2' or 'share', got {unit!r}")
    check_layer_fits(da, grid, layer=file_layer)
    aligned = align_to_grid(da, grid, "count" if unit == "m2" else "share", layer=file_layer)
    values = np.asarray(aligned.values, dtype=np.float64)
    check_share(values, da.attrs.get("source"), file_layer, unit, grid.cell_size_m**2)
    if unit == "m2":
        values = values / grid.cell_size_m / grid.cell_size_m
    return values


def _count_layer(obj, layer, grid):
    """A count layer (m² of floor, m³, jobs) on the grid: summed when aggregated."""
    from ..align import align_to_grid, check_layer_fits
    from ..ingest import as_dataarray, check_counts

    da = as_dataarray(obj, layer)
    check_layer_fits(da, grid, layer=layer)
    values = np.asarray(align_to_grid(da, grid, "count", layer=layer).values, dtype=np.float64)
    check_counts(values, da.attrs.get("source"), layer)
    if layer in ("floor_area", "built_volume"):
        from .nordic7 import check_floor_area

        finite = values[~np.isnan(values)]
        check_floor_area(np.array([finite.min(), finite.max()]) if finite.size else
                         np.zeros(0), da.attrs.get("source"), layer, grid.cell_size_m**2)
    return values


def _jobs_layers(jobs, grid, names):
    """Jobs per cell, 2-D, or (sectors, rows, cols) from a multi-band file or a 3-D
    DataArray/array, and the sector names (None: default names)."""
    import xarray as xr

    if isinstance(jobs, str | os.PathLike):
        from ..ingest import RasterWindows

        with RasterWindows(jobs, "jobs") as lay:
            count = lay.count
            desc = list(lay.dataset.descriptions)
        if count < 2:
            return _count_layer(jobs, "jobs", grid), names
        from ..ingest import open_raster

        bands = [_count_layer(open_raster(jobs, "jobs", band=b + 1), "jobs", grid)
                 for b in range(count)]
        if names is None:
            names = [d or f"sector_{i + 1}" for i, d in enumerate(desc)]
        return np.stack(bands), names
    if isinstance(jobs, xr.DataArray) and jobs.ndim == 3:
        dim = jobs.dims[0]
        if names is None and dim in jobs.coords:
            names = [str(v) for v in jobs.coords[dim].values]
        return np.stack([_count_layer(jobs.isel({dim: i}), "jobs", grid)
                         for i in range(jobs.shape[0])]), names
    if not isinstance(jobs, xr.DataArray) and np.ndim(jobs) == 3:
        return np.asarray(jobs, dtype=np.float64), names
    return _count_layer(jobs, "jobs", grid), names


def _landcover_agri(obj, grid, mapping):
    from ..align import align_to_grid, check_layer_fits
    from ..ingest import as_dataarray
    from .nordic7 import agri_share_from_landcover, corine_agri_mapping

    da = as_dataarray(obj, "landcover")
    check_layer_fits(da, grid, layer="landcover")
    if mapping in (None, "corine"):
        mapping = corine_agri_mapping()
    elif not isinstance(mapping, dict):
        raise ConfigError("landcover.mapping", f"must be 'corine' or a dict, got {mapping!r}")
    values = np.asarray(da.values)
    present = values[~np.isnan(values)]
    unknown = sorted(set(np.unique(present).astype(int).tolist()) - set(mapping))
    if unknown:
        raise InputError(
            da.attrs.get("source"),
            "landcover",
            f"has classes missing from the agricultural mapping: {unknown[:10]}",
        )
    agri = np.full(values.shape, np.nan)
    ok = ~np.isnan(values)
    agri[ok] = agri_share_from_landcover(values[ok].astype(np.int64), mapping)
    return align_to_grid(da.copy(data=agri), grid, "share", layer="landcover").values


@dataclass(frozen=True)
class Nordic7Inputs:
    """The inputs of the place types loaded once onto the population's grid.

    ``layers`` are the keyword arguments of
    :func:`~pari_geo.typology.nordic7.classify_nordic7_array` (arrays, shares 0..1);
    ``sources`` the file of each input (provenance).
    """

    grid: Any
    population: np.ndarray
    layers: dict[str, Any]
    sources: dict[str, Any]


def load_nordic7_inputs(
    population: Any,
    *,
    built: Any = None,
    land: Any = None,
    agri: Any = None,
    landcover: Any = None,
    landcover_mapping: dict[int, float] | str | None = "corine",
    commuting: Any = None,
    service_minutes: Any = None,
    speed_kmh: Any = None,
    floor_area: Any = None,
    built_volume: Any = None,
    jobs: Any = None,
    job_sectors: Any = None,
    roads: Any = None,
    commuting_od: Any = None,
    units: Any = None,
    units_id: str | None = None,
    built_unit: str = "share",
    land_unit: str = "share",
) -> Nordic7Inputs:
    """Read, check and align the inputs of :func:`classify_nordic7` (same arguments).

    Examples
    --------
    >>> import pari_geo
    >>> p = pari_geo.belgium_paths()
    >>> inp = load_nordic7_inputs(p["population"], land=p["land"], land_unit="m2")
    >>> sorted(inp.layers), inp.grid.cell_size_m
    (['land_share'], 1000.0)
    """
    from ..grid import GridSpec
    from ..ingest import as_dataarray, check_counts

    if roads is not None and speed_kmh is not None:
        raise ConfigError("roads", "give roads or speed_kmh, not both (the roads make the "
                          "speed raster)")
    pop_da = as_dataarray(population, "population")
    grid = GridSpec.from_dataarray(pop_da, file=pop_da.attrs.get("source"), layer="population")
    pop = np.asarray(pop_da.values, dtype=np.float64)
    check_counts(pop, pop_da.attrs.get("source"), "population")
    layers: dict[str, Any] = {}
    sources = {"population": pop_da.attrs.get("source")}
    if built is not None:
        layers["built_share"] = _share_layer(built, "built", grid, built_unit, "built")
    if land is not None:
        layers["land_share"] = _share_layer(land, "land", grid, land_unit, "land")
    if agri is not None:
        layers["agri_share"] = _share_layer(agri, "agri", grid, "share", "agri")
    elif landcover is not None:
        layers["agri_share"] = _landcover_agri(landcover, grid, landcover_mapping)
    if commuting is not None:
        layers["commuting_share"] = _share_layer(commuting, "commuting", grid, "share", "commuting")
    if floor_area is not None:
        layers["floor_area"] = _count_layer(floor_area, "floor_area", grid)
    elif built_volume is not None:
        layers["built_volume"] = _count_layer(built_volume, "built_volume", grid)
    if jobs is not None:
        layers["jobs"], layers["job_sectors"] = _jobs_layers(jobs, grid, job_sectors)
    for name, obj in (("service_minutes", service_minutes), ("speed_kmh", speed_kmh)):
        if obj is None:
            continue
        if isinstance(obj, int | float):
            layers[name] = float(obj)
            continue
        from ..align import align_to_grid, check_layer_fits

        da = as_dataarray(obj, name)
        check_layer_fits(da, grid, layer=name)
        vals = align_to_grid(da, grid, "share", layer=name).values
        check_counts(vals, da.attrs.get("source"), name)
        layers[name] = vals
    if commuting_od is not None:
        from .commuting import od_on_grid

        layers["commuting_od"], layers["unit_ids"] = od_on_grid(
            commuting_od, units, units_id, grid, commuting is not None)
        sources["commuting_od"] = str(commuting_od) if isinstance(
            commuting_od, str | os.PathLike) else "<in-memory>"
    if roads is not None:
        from ..preparation.roads import roads_speed

        layers["speed_kmh"] = roads_speed(roads, grid, pop, land_share=layers.get("land_share"))
        sources["roads"] = str(getattr(roads, "path", roads))
    for name, obj in (
        ("built", built),
        ("land", land),
        ("agri", agri),
        ("landcover", landcover),
        ("commuting", commuting),
        ("service_minutes", service_minutes),
        ("speed_kmh", speed_kmh),
        ("floor_area", floor_area),
        ("built_volume", built_volume),
        ("jobs", jobs),
    ):
        if isinstance(obj, str | os.PathLike):
            sources[name] = str(obj)
        elif obj is not None and hasattr(obj, "attrs"):
            sources[name] = obj.attrs.get("source", "<in-memory>")
    return Nordic7Inputs(grid, pop, layers, sources)


def classify_nordic7(
    population: Any,
    *,
    built: Any = None,
    land: Any = None,
    agri: Any = None,
    landcover: Any = None,
    landcover_mapping: dict[int, float] | str | None = "corine",
    commuting: Any = None,
    service_minutes: Any = None,
    speed_kmh: Any = None,
    floor_area: Any = None,
    built_volume: Any = None,
    jobs: Any = None,
    job_sectors: Any = None,
    roads: Any = None,
    commuting_od: Any = None,
    units: Any = None,
    units_id: str | None = None,
    built_unit: str = "share",
    land_unit: str = "share",
    params: Any = None,
    engine: str = "auto",
    scheduler: Any = None,
    tile_shape: tuple[int, int] = (1024, 1024),
    workdir: Any = None,
    **overrides: Any,
) -> xr.DataArray:
    """Classify every cell into the seven Nordic place types (``place-types.md``).

    Parameters
    ----------
    population : path or xarray.DataArray
        Residents per cell; defines the grid (projected CRS in metres, 100 m to 5 km).
    built, land : path or DataArray, optional
        Built-up and permanent-land surface, as shares 0..1 (default) or m² per cell
        (``built_unit="m2"``/``land_unit="m2"``).
    agri : path or DataArray, optional
        Agricultural share 0..1.
    landcover : path or DataArray, optional
        Land-cover classes, turned into an agricultural share with ``landcover_mapping``
        (default: the shipped CORINE level-3 mapping). Used when ``agri`` is not given.
    commuting : path or DataArray, optional
        Share of employed residents commuting into an urban core.
    service_minutes : path or DataArray, optional
        Minutes to the nearest service centre; computed when absent.
    speed_kmh : path, DataArray or float, optional
        Travel speed per cell.
    floor_area : path or DataArray, optional
        m² of building floor per cell (SYKE's area density: inner and outer urban).
    built_volume : path or DataArray, optional
        m³ of buildings per cell (GHSL GHS-BUILT-V), floor area = volume /
        ``storey_height_m``; used when ``floor_area`` is not given.
    jobs : path or DataArray, optional
        Workplaces per cell (rural heartland's local economy); a raster file of several
        bands, or a 3-D DataArray, holds one sector per band.
    job_sectors : list of str, optional
        Sector names (default: the band descriptions or the first dimension's labels).
    roads : path or Roads, optional
        A road network (:class:`~pari_geo.preparation.roads.Roads`, or the path of an
        ``.osm.pbf`` or a line layer with a ``highway`` column) burned into the travel
        speed: the fastest road per cell, ``offroad_kmh`` on other land, water without a
        road or ferry impassable. Instead of ``speed_kmh``.
    commuting_od : path or DataFrame, optional
        Commuting between units (:func:`~pari_geo.ingest.open_commuting_od`: ``origin``,
        ``destination``, ``share`` or ``commuters``), instead of ``commuting``: each cell
        gets its unit's share working in another unit that holds an urban core.
    units : path or GeoDataFrame, optional
        The units the OD table names (cells belong to the unit holding their centre).
    units_id : str, optional
        Id column of ``units`` (the codes of the OD table).
    params : Nordic7Params or preset name, optional
    engine : {"auto", "memory", "tiled"}, default "auto"
        Where the rules run: ``"memory"`` on whole arrays; ``"tiled"`` by tiles through
        :func:`~pari_geo.typology.nordic7_tiled.classify_nordic7_tiled` (every layer on
        the population's grid; the codes are written to a temporary COG in ``workdir``
        and read back, 1 byte per cell); ``"auto"`` is ``"tiled"`` with a ``scheduler``
        or when the grid's in-memory estimate
        (:data:`pari_geo.memory.NORDIC7_BYTES_PER_CELL`) exceeds half the machine's
        memory or when the population is a dask-backed DataArray (streamed window by
        window, never computed whole; every layer must then be on its grid), else
        ``"memory"``. Same classes either way.
    scheduler : str or distributed.Client, optional
        Run the tiled engine's tasks on this dask cluster (implies ``"tiled"``).
    tile_shape : (rows, cols), default (1024, 1024)
        Tiles of the tiled engine.
    workdir : path-like, optional
        Folder of the tiled engine's intermediates (default: the system's temporary
        folder).
    **overrides
        Any parameter of the ``nordic7`` table, e.g. ``urban_core_min_pop=10000``.

    Returns
    -------
    xarray.DataArray
        ``uint8`` codes 1..7, 0 water, 255 no data, on the population grid; ``attrs`` hold
        ``parameters`` (JSON), ``parameters_hash``, ``layers_used``, ``layers_fallback``,
        class names and colours and the library version.

    Examples
    --------
    >>> import pari_geo
    >>> p = pari_geo.belgium_paths()
    >>> pt = classify_nordic7(p["population"], built=p["built"], land=p["land"],
    ...                       built_unit="m2", land_unit="m2")
    >>> sorted(json.loads(pt.attrs["layers_fallback"]))
    ['agri_share', 'commuting_share', 'floor_area', 'jobs', 'service_minutes', 'speed_kmh']
    """
    from .._version import __version__
    from ..memory import NORDIC7_BYTES_PER_CELL, pick_engine
    from .nordic7 import Nordic7Params, classify_nordic7_array

    if pick_engine(engine, scheduler, population,
                   bytes_per_cell=NORDIC7_BYTES_PER_CELL) == "tiled":
        return _classify_nordic7_tiled(
            population, built=built, land=land, agri=agri, landcover=landcover,
            landcover_mapping=landcover_mapping, commuting=commuting,
            service_minutes=service_minutes, speed_kmh=speed_kmh, floor_area=floor_area,
            built_volume=built_volume, jobs=jobs, job_sectors=job_sectors, roads=roads,
            commuting_od=commuting_od, units=units, units_id=units_id, built_unit=built_unit,
            land_unit=land_unit, params=params, scheduler=scheduler, tile_shape=tile_shape,
            workdir=workdir, **overrides)
    if params is None or isinstance(params, str):
        params = Nordic7Params.from_preset(params or "nordic7")
    params = params.replace(**overrides) if overrides else params
    loaded = load_nordic7_inputs(
        population, built=built, land=land, agri=agri, landcover=landcover,
        landcover_mapping=landcover_mapping, commuting=commuting,
        service_minutes=service_minutes, speed_kmh=speed_kmh, floor_area=floor_area,
        built_volume=built_volume, jobs=jobs, job_sectors=job_sectors, roads=roads,
        commuting_od=commuting_od, units=units, units_id=units_id,
        built_unit=built_unit, land_unit=land_unit)
    grid, pop, layers, sources = loaded.grid, loaded.population, loaded.layers, loaded.sources
    codes, info = classify_nordic7_array(pop, cell_size_m=grid.cell_size_m, params=params, **layers)
    attrs = {
        "typology": "nordic7",
        "parameters": json.dumps(params.to_dict(), sort_keys=True),
        "parameters_hash": params.hash(),
        "layers_used": json.dumps(sorted(info["layers_used"])),
        "layers_fallback": json.dumps(info["layers_fallback"], sort_keys=True),
        "service_minutes_computed": str(bool(info.get("service_minutes_computed"))),
        "rules": json.dumps(info["rules"], sort_keys=True),
        "inputs": json.dumps({k: str(v) for k, v in sources.items()}, sort_keys=True),
        "class_names": json.dumps({str(k): v for k, v in NORDIC7.names.items()}),
        "class_colours": json.dumps({str(k): v for k, v in NORDIC7.colours.items()}),
        "pari_geo_version": __version__,
    }
    da = grid.to_dataarray(
        codes.astype(np.uint8), name="place_type", attrs=attrs, nodata=NORDIC7.nodata
    )
    return da


def _classify_nordic7_tiled(population: Any, *, workdir: Any, **kw: Any) -> xr.DataArray:
    """:func:`classify_nordic7` by tiles: a temporary COG read back as the DataArray."""
    import tempfile
    from pathlib import Path

    from ..io_write import read_class_raster
    from .nordic7_tiled import classify_nordic7_tiled

    with tempfile.TemporaryDirectory(prefix="pari_geo_tiled_", dir=workdir) as tmp:
        res = classify_nordic7_tiled(population, out_path=Path(tmp) / "place_types.tif",
                                     workdir=tmp, **kw)
        assert res.path is not None  # written: out_path was given
        da = read_class_raster(res.path)
        da.load()
        for key in ("out_of_core", "source"):  # the temporary file is gone
            da.attrs.pop(key, None)
    return da
