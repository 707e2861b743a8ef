"""DEGURBA's three input layers onto the population grid, for the in-memory engine.

A lean path reads three rasters on one identical grid in their own dtypes (no float64
copies); anything else goes through ingest (``as_dataarray``, alignment, checks).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..outofcore.contiguity import row_blocks
from ._degurba_cells import DegurbaLayers, degurba_layers


def _crop_to(da, bounds):
    left, bottom, right, top = bounds
    x, y = da["x"].values, da["y"].values
    xs = (x > left) & (x < right)
    ys = (y > bottom) & (y < top)
    return da.isel(x=np.flatnonzero(xs), y=np.flatnonzero(ys))


def _value_summary(a: np.ndarray) -> np.ndarray:
    """``[min, max]`` of the non-NaN values (float64), or ``[nan]`` when there are none."""
    lo, hi, seen = np.inf, -np.inf, False
    for sl in row_blocks(a.shape):
        b = a[sl]
        if b.size == 0:
            continue
        if b.dtype.kind == "f":
            b_lo, b_hi = np.fmin.reduce(b, axis=None), np.fmax.reduce(b, axis=None)
            if np.isnan(b_lo):
                continue  # every value of the block is NaN
        else:
            b_lo, b_hi = b.min(), b.max()
        lo, hi, seen = min(lo, float(b_lo)), max(hi, float(b_hi)), True
    return np.array([lo, hi]) if seen else np.array([np.nan])


def _load_lean(population, built, land, built_unit, land_unit):
    """Fast path: three raster files on one identical grid, read in their own dtypes.

    Avoids the float64 copies (and xarray/rioxarray deep copies) of the general path, so
    the inputs cost their file dtypes (16 bytes per cell for GHSL's float64 POP and uint32
    BUILT_S/LAND). Returns None whenever anything is unusual (other grids, a problem with
    a file, a failed check): the general path then runs and raises the usual errors.
    """
    import os

    if not all(isinstance(x, str | os.PathLike) for x in (population, built, land)):
        return None
    try:
        from ..grid import GridSpec, check_transform, require_projected
        from ..ingest import RasterWindows, check_counts, check_share

        names = ("population", "built", "land")
        paths = [str(x) for x in (population, built, land)]
        readers = []
        try:
            for path, name in zip(paths, names, strict=True):
                if not os.path.isfile(path) or not os.access(path, os.R_OK):
                    return None
                readers.append(RasterWindows(path, name))
            meta = [(s.crs, s.transform, s.shape, s.bounds) for s in readers]
            if any(m[0] is None for m in meta):
                return None
            crs, transform, shape, bounds = meta[0]
            if any(m[0] != crs or m[1] != transform or m[2] != shape for m in meta[1:]):
                return None
            for path, name in zip(paths, names, strict=True):
                check_transform(transform, path, name)
            grid = GridSpec(require_projected(crs, paths[0], "population", tuple(bounds)),
                            transform, shape)
            r = grid.cell_size_m
            pop, built_v, land_v = (s.read_all() for s in readers)
        finally:
            for s in readers:
                s.close()
        # The value checks of the general path (ingest's reader checks, check_counts,
        # check_share) only look at: no data at all, infinite or negative values and the
        # maximum. Run those very functions on a [min, max] summary computed block by
        # block (no float64 copy); if one of them objects, the general path reruns on
        # the full layers and raises its exact message.
        from ..ingest import check_layer_values

        for a, path, name in zip((pop, built_v, land_v), paths, names, strict=True):
            summary = _value_summary(a)
            probe = GridSpec(crs, transform, (1, summary.size)).to_dataarray(
                summary.reshape(1, -1), name=name)
            check_layer_values(probe, path, name)
            if name == "population":
                check_counts(summary, path, name)
            else:
                check_share(summary, path, name, built_unit if name == "built" else land_unit,
                            r * r)
    except Exception:
        return None
    lay = degurba_layers(pop, built_v, land_v, r, built_unit=built_unit, land_unit=land_unit)
    return grid, lay, dict(zip(names, paths, strict=True))


def _warn_built_over_land(lay: DegurbaLayers, file: Any) -> None:
    """Warn once, naming the built-up file, when built-up exceeds land (block by block)."""
    import warnings

    from ..ingest import built_over_land_message, count_built_over_land

    n = sum(count_built_over_land(lay.built_block(sl), lay.land_block(sl))
            for sl in row_blocks(lay.shape))
    if n:
        warnings.warn(built_over_land_message(n, None if file is None else str(file)),
                      UserWarning, stacklevel=3)


def _load_inputs(population, built, land, built_unit, land_unit):
    loaded = _load_grid_layers(population, built, land, built_unit, land_unit)
    _warn_built_over_land(loaded[1], loaded[2].get("built"))
    return loaded


def _load_grid_layers(population, built, land, built_unit, land_unit):
    lean = _load_lean(population, built, land, built_unit, land_unit)
    if lean is not None:
        return lean
    from ..align import align_to_grid, check_layer_fits, common_extent
    from ..grid import GridSpec
    from ..ingest import as_dataarray, check_counts, check_share

    pop_da = as_dataarray(population, "population")
    built_da = as_dataarray(built, "built")
    land_da = as_dataarray(land, "land")
    src = {"population": pop_da, "built": built_da, "land": land_da}
    specs = {k: GridSpec.from_dataarray(v, file=v.attrs.get("source"), layer=k)
             for k, v in src.items()}
    base = specs["population"]
    for k in ("built", "land"):  # no silent cropping or up-sampling (issue 12)
        check_layer_fits(src[k], base, layer=k)
    same_lattice = all(
        s.crs == base.crs and np.isclose(s.cell_size_m, base.cell_size_m)
        and np.isclose(((s.transform.c - base.transform.c) / base.cell_size_m) % 1, 0)
        and np.isclose(((s.transform.f - base.transform.f) / base.cell_size_m) % 1, 0)
        for s in specs.values()
    )
    if same_lattice:
        ext = common_extent(list(specs.values()))
        if ext is None:
            for k in ("built", "land"):
                other = common_extent([base, specs[k]])
                if other is None:
                    raise InputError(src[k].attrs.get("source"), k,
                                     "does not overlap the population grid")
            raise InputError(None, "built/land", "the three layers have no common extent")
        if ext != base.bounds:
            pop_da = _crop_to(pop_da, ext)
            base = GridSpec.from_dataarray(pop_da, file=pop_da.attrs.get("source"),
                                           layer="population")
    r = base.cell_size_m
    built_al = align_to_grid(built_da, base, "count" if built_unit == "m2" else "share",
                             layer="built")
    land_al = align_to_grid(land_da, base, "count" if land_unit == "m2" else "share",
                            layer="land")
    pop_v = np.asarray(pop_da.values, dtype=np.float64)
    check_counts(pop_v, pop_da.attrs.get("source"), "population")
    check_share(built_al.values, built_da.attrs.get("source"), "built", built_unit, r * r)
    check_share(land_al.values, land_da.attrs.get("source"), "land", land_unit, r * r)
    lay = degurba_layers(pop_v, built_al.values, land_al.values, r,
                         built_unit=built_unit, land_unit=land_unit)
    sources = {k: v.attrs.get("source") for k, v in src.items()}
    return base, lay, sources
