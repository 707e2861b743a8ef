"""Align layers to one :class:`~pari_geo.grid.GridSpec`.

* ``kind="count"`` (population, built-up m², land m²): totals are preserved. Aligned grids
  of the same or an integer-multiple cell size are cropped, padded or block-summed exactly;
  anything else is reprojected with GDAL's ``sum`` resampling, which weights each source
  cell by the fraction of it inside the target cell (totals preserved both ways).
* ``kind="share"`` (0..1 shares): area-weighted mean of the non-missing values.
* ``kind="class"`` (land-cover codes): the most frequent class (mode), or the identical
  class when only cropping.

Cells of the target grid that the layer does not cover are NaN.

Examples
--------
>>> import numpy as np
>>> from affine import Affine
>>> from pari_geo.grid import GridSpec
>>> fine = GridSpec("EPSG:3035", Affine(100, 0, 0, 0, -100, 200), (2, 2))
>>> coarse = GridSpec("EPSG:3035", Affine(200, 0, 0, 0, -200, 200), (1, 1))
>>> da = fine.to_dataarray(np.array([[1.0, 2.0], [3.0, 4.0]]))
>>> float(align_to_grid(da, coarse, "count")[0, 0])
10.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError
from .grid import GridSpec, require_projected

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["align_to_grid", "common_extent", "check_layer_fits", "unit_index_raster"]

KINDS = ("count", "share", "class")


def _offset_cells(
    src: GridSpec, dst_origin: tuple[float, float], size: float
) -> tuple[float, float]:
    return ((src.transform.c - dst_origin[0]) / size, (dst_origin[1] - src.transform.f) / size)


def _is_int(v: float, tol: float = 1e-6) -> bool:
    return abs(v - round(v)) < tol


def align_to_grid(da: Any, grid: GridSpec, kind: str, *, layer: str | None = None) -> xr.DataArray:
    """Put a raster layer on ``grid``.

    Parameters
    ----------
    da : xarray.DataArray
        2-D layer with a CRS (rioxarray), NaN = missing.
    grid : GridSpec
        Target grid (usually the population grid).
    kind : {"count", "share", "class"}
        How values combine (see module docstring).
    layer : str, optional
        Layer name for messages.

    Returns
    -------
    xarray.DataArray
        float64 on ``grid`` with its CRS and transform.

    Raises
    ------
    InputError
        When the layer does not overlap the grid at all, or its CRS is unusable.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    file = da.attrs.get("source")
    layer = layer or da.name
    src = GridSpec.from_dataarray(da, file=file, layer=layer)
    values = np.asarray(da.values, dtype=np.float64)
    if src.same_as(grid):
        return grid.to_dataarray(values, name=layer, attrs=da.attrs)
    _check_overlap(src, grid, file, layer)
    if src.crs == grid.crs:
        ratio = grid.cell_size_m / src.cell_size_m
        off_c, off_r = _offset_cells(src, (grid.transform.c, grid.transform.f), src.cell_size_m)
        if _is_int(ratio) and round(ratio) >= 1 and _is_int(off_c) and _is_int(off_r):
            out = _block_aggregate(
                values, int(round(ratio)), int(round(off_r)), int(round(off_c)), grid.shape, kind
            )
            return grid.to_dataarray(out, name=layer, attrs=da.attrs)
    return grid.to_dataarray(_reproject(values, src, grid, kind), name=layer, attrs=da.attrs)


def check_layer_fits(da: Any, grid: GridSpec, *, layer: str | None = None) -> None:
    """Refuse a layer that would silently change the classification's grid or invent detail.

    The typologies classify on the population grid. A layer that covers only part of it
    would crop the result (or leave cells missing), and a layer coarser than it would be
    spread over the finer cells by resampling, so both are refused with a message naming
    the layer and what to do. Finer layers are aggregated (exactly for integer ratios) and
    accepted.

    Raises
    ------
    InputError
        The layer does not cover the population grid, or its cells are coarser.
    """
    from rasterio.warp import transform_bounds

    file = da.attrs.get("source")
    layer = layer or da.name
    src = GridSpec.from_dataarray(da, file=file, layer=layer)
    if src.same_as(grid):
        return
    _check_overlap(src, grid, file, layer)
    if src.crs == grid.crs:
        size = src.cell_size_m
        bounds = src.bounds
    else:
        bounds = transform_bounds(src.crs, grid.crs, *src.bounds, densify_pts=21)
        size = max(bounds[2] - bounds[0], 0) / max(src.shape[1], 1)
    if size > grid.cell_size_m * (1 + 1e-6):
        raise InputError(
            file, layer,
            f"has {size:g} m cells, coarser than the population grid's {grid.cell_size_m:g} m; "
            "pari_geo does not spread coarse values over finer cells: resample it to the "
            f"population grid yourself (e.g. gdalwarp -tr {grid.cell_size_m:g} "
            f"{grid.cell_size_m:g} -r average) or aggregate the population to {size:g} m")
    g = grid.bounds
    tol = 1e-6 * grid.cell_size_m
    if (bounds[0] > g[0] + tol or bounds[1] > g[1] + tol or bounds[2] < g[2] - tol
            or bounds[3] < g[3] - tol):
        raise InputError(
            file, layer,
            f"covers only part of the population grid (layer bounds "
            f"{tuple(round(v) for v in bounds)}, grid bounds {tuple(round(v) for v in g)}); "
            "the result would be cropped or have missing cells: clip the population to "
            "the layer (gdal_translate -projwin) or give a layer covering the whole grid")


def _check_overlap(src: GridSpec, grid: GridSpec, file: str | None, layer: str | None) -> None:
    from rasterio.warp import transform_bounds

    require_projected(src.crs, file, layer, src.bounds)
    left, bottom, right, top = transform_bounds(src.crs, grid.crs, *src.bounds, densify_pts=21)
    g = grid.bounds
    if left >= g[2] or right <= g[0] or bottom >= g[3] or top <= g[1]:
        raise InputError(
            file,
            layer,
            f"does not overlap the population grid (layer bounds "
            f"{tuple(round(v) for v in (left, bottom, right, top))}, grid bounds "
            f"{tuple(round(v) for v in g)})",
        )


def _block_aggregate(
    values: np.ndarray, k: int, off_r: int, off_c: int, shape: tuple[int, int], kind: str
) -> np.ndarray:
    """Crop/pad the source so that it covers the target exactly, then reduce k x k blocks."""
    rows, cols = shape
    canvas = np.full((rows * k, cols * k), np.nan)
    # source cell (i, j) lands at canvas (i + off_r, j + off_c)
    r0, c0 = max(0, off_r), max(0, off_c)
    r1 = min(rows * k, off_r + values.shape[0])
    c1 = min(cols * k, off_c + values.shape[1])
    if r1 > r0 and c1 > c0:
        canvas[r0:r1, c0:c1] = values[r0 - off_r : r1 - off_r, c0 - off_c : c1 - off_c]
    if k == 1:
        return canvas
    blocks = canvas.reshape(rows, k, cols, k).transpose(0, 2, 1, 3).reshape(rows, cols, k * k)
    present = ~np.isnan(blocks)
    n = present.sum(axis=2)
    if kind == "count":
        out = np.where(present, blocks, 0.0).sum(axis=2)
        return np.where(n > 0, out, np.nan)
    if kind == "share":
        total = np.where(present, blocks, 0.0).sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return _block_mode(blocks, present, n)


def _block_mode(blocks: np.ndarray, present: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Most frequent non-missing value of each block (ties: the smallest value)."""
    from scipy import stats

    mode = stats.mode(blocks, axis=2, nan_policy="omit", keepdims=False).mode
    return np.where(n > 0, np.asarray(mode, dtype=np.float64), np.nan)


def _reproject(values: np.ndarray, src: GridSpec, grid: GridSpec, kind: str) -> np.ndarray:
    from rasterio.warp import Resampling, reproject

    # GDAL's "sum" weights each source cell by the fraction of it inside the target cell,
    # so totals are preserved whether cells are split (finer target) or merged (coarser).
    resampling = {"count": Resampling.sum, "share": Resampling.average, "class": Resampling.mode}[
        kind
    ]
    out = np.full(grid.shape, np.nan)
    reproject(
        source=values,
        destination=out,
        src_transform=src.transform,
        src_crs=src.crs,
        src_nodata=np.nan,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        dst_nodata=np.nan,
        resampling=resampling,
    )
    return out


def common_extent(grids: list[GridSpec]) -> tuple[float, float, float, float] | None:
    """Intersection of the grids' bounds (same CRS assumed), or None when empty."""
    left = max(g.bounds[0] for g in grids)
    bottom = max(g.bounds[1] for g in grids)
    right = min(g.bounds[2] for g in grids)
    top = min(g.bounds[3] for g in grids)
    if left >= right or bottom >= top:
        return None
    return left, bottom, right, top


def unit_index_raster(units: Any, grid: Any) -> np.ndarray:
    """The position (1..k, in the units' order) of the unit holding each cell's centre;
    0 outside every unit.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from affine import Affine
    >>> from shapely.geometry import box
    >>> from pari_geo.grid import GridSpec
    >>> g = GridSpec("EPSG:3006", Affine(1000, 0, 0, 0, -1000, 1000), (1, 3))
    >>> u = gpd.GeoDataFrame(geometry=[box(0, 0, 1400, 1000), box(1600, 0, 3000, 1000)],
    ...                      crs="EPSG:3006")
    >>> unit_index_raster(u, g).tolist()
    [[1, 0, 2]]
    """
    from rasterio import features

    u = units.to_crs(grid.crs) if units.crs != grid.crs else units
    if len(u) == 0:
        return np.zeros(grid.shape, np.int32)
    return features.rasterize(
        ((geom, i + 1) for i, geom in enumerate(u.geometry)), out_shape=grid.shape,
        transform=grid.transform, fill=0, dtype="int32", all_touched=False)
