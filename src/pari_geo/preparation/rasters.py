"""Raster tiles as downloaded → one layer on the region's grid.

GHSL tiles (GHS-POP, GHS-BUILT-S, GHS-BUILT-V, GHS-LAND; any epoch, Mollweide or WGS 84,
100 m or 1 km) and land-cover tiles (CORINE, ESA WorldCover) are read block by block
(``block`` × ``block`` source cells, only the blocks that meet the region) and warped with
GDAL onto the target grid:

* counts (residents, m², m³) with ``sum`` resampling, which weights each source cell by
  the share of it inside a target cell, so totals are preserved; block results are added,
  so several tiles form one mosaic and memory is bounded by a block and the target grid;
* land-cover classes are first mapped to an agricultural weight (0..1) per source cell,
  then averaged by area over the valid source cells (GDAL ``average``; exact block means
  when the source cells nest in the target cells).

Cells outside the region are NaN. Tiles that do not cover the region are refused, naming
the uncovered part; mixed GHSL epochs or releases in one layer are warned about.

Examples
--------
>>> ghsl_name_info("GHS_POP_E2020_GLOBE_R2023A_54009_100_V1_0_R3_C19.tif")
{'product': 'POP', 'epoch': '2020', 'release': 'R2023A', 'crs': '54009', 'resolution': '100'}
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..grid import GridSpec

__all__ = ["ghsl_name_info", "check_ghsl_tiles", "warp_tiles", "tile_footprint"]

#: GDAL warper threads (the sum kernel is the costly step of a reprojection)
_THREADS = max(1, min(4, os.cpu_count() or 1))

_GHSL_RE = re.compile(
    r"GHS_(?P<product>POP|BUILT_S|BUILT_V|BUILT_H|BUILT_C|LAND|SMOD)(?:_[A-Z]+)?_E(?P<epoch>\d{4})"
    r"_GLOBE_(?P<release>R\d{4}[A-Z])_(?P<crs>\d+)_(?P<resolution>\d+)",
    re.IGNORECASE,
)


def ghsl_name_info(path: str | Path) -> dict[str, str] | None:
    """Product, epoch, release, CRS code and resolution from a GHSL file name (or None).

    Examples
    --------
    >>> ghsl_name_info("/vsizip/GHS_LAND_E2018_GLOBE_R2022A_54009_1000_V1_0.zip/x.tif")["epoch"]
    '2018'
    >>> ghsl_name_info("POP.tif") is None
    True
    """
    m = _GHSL_RE.search(str(path))
    return None if m is None else {k: v.upper() if k == "product" else v
                                   for k, v in m.groupdict().items()}


def check_ghsl_tiles(layer: str, paths: Sequence[str | Path]) -> None:
    """Warn (one line) when the tiles of one layer mix GHSL epochs, releases or
    resolutions, as read from their file names.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     check_ghsl_tiles("population", ["GHS_POP_E2020_GLOBE_R2023A_54009_100_V1_0_R3_C19.tif",
    ...                                     "GHS_POP_E2015_GLOBE_R2023A_54009_100_V1_0_R3_C20.tif"])
    >>> print(str(w[0].message).split(": ", 1)[1])
    mixes GHSL epochs 2015, 2020 in one layer; ...
    """
    infos = [(p, i) for p in paths if (i := ghsl_name_info(p)) is not None]
    for key, what in (("epoch", "epochs"), ("release", "releases"),
                      ("resolution", "resolutions")):
        values = sorted({i[key] for _, i in infos})
        if len(values) > 1:
            odd = next(p for p, i in infos if i[key] != infos[0][1][key])
            warnings.warn(
                f"{Path(str(odd)).name} [{layer}]: mixes GHSL {what} {', '.join(values)} in "
                "one layer; the mosaic combines different years or methods",
                UserWarning, stacklevel=2)


def tile_footprint(src, crs: Any):
    """The tile's extent as a polygon in ``crs`` (edges densified)."""
    from pyproj import CRS
    from shapely.geometry import box

    if CRS.from_user_input(src.crs) == CRS.from_user_input(crs):
        return box(*src.bounds)
    return _densified(src, crs)


def _densified(src, crs: Any, n: int = 50):
    from pyproj import Transformer
    from shapely.geometry import Polygon

    left, bottom, right, top = src.bounds
    t = np.linspace(0, 1, n)
    xs = np.concatenate([left + (right - left) * t, np.full(n, right),
                         right - (right - left) * t, np.full(n, left)])
    ys = np.concatenate([np.full(n, bottom), bottom + (top - bottom) * t,
                         np.full(n, top), top - (top - bottom) * t])
    tr = Transformer.from_crs(src.crs, crs, always_xy=True)
    x, y = tr.transform(xs, ys)
    ok = np.isfinite(x) & np.isfinite(y)
    return Polygon(np.column_stack([x[ok], y[ok]])).buffer(0)


def _describe_missing(missing, region, grid: GridSpec) -> str:
    """'the north-east part (x .. y .., lon/lat ..; 12 % of the region)'."""
    from pyproj import Transformer

    rl, rb, rr, rt = region.bounds
    cx, cy = missing.centroid.x, missing.centroid.y
    ns = "north" if cy > rb + 2 * (rt - rb) / 3 else "south" if cy < rb + (rt - rb) / 3 else ""
    ew = "east" if cx > rl + 2 * (rr - rl) / 3 else "west" if cx < rl + (rr - rl) / 3 else ""
    where = "-".join(p for p in (ns, ew) if p) or "central"
    left, bottom, right, top = missing.bounds
    tr = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    lon0, lat0 = tr.transform(left, bottom)
    lon1, lat1 = tr.transform(right, top)
    share = 100 * missing.area / max(region.area, 1e-9)
    return (f"the {where} part of the region (x {left:.0f}..{right:.0f}, y {bottom:.0f}.."
            f"{top:.0f} in {grid.crs.to_string()}; lon {lon0:.2f}..{lon1:.2f}, lat "
            f"{lat0:.2f}..{lat1:.2f}; {share:.1f} % of its area)")


def _open(path, layer: str):
    """The open dataset of a source raster (warping needs the dataset itself), opened by
    ingest's reader: its one-line errors and remote paths."""
    from ..ingest import RasterWindows

    reader = RasterWindows(path, layer)
    src = reader.dataset
    if src.crs is None:
        reader.close()
        raise InputError(reader.path, layer, "has no CRS; assign one (e.g. gdal_edit.py -a_srs)")
    return src


def warp_tiles(
    paths: Sequence[str | Path],
    grid: GridSpec,
    inside: np.ndarray,
    *,
    layer: str,
    kind: str = "count",
    values: Callable[[np.ndarray, str], np.ndarray] | None = None,
    region=None,
    block: int = 4096,
    nodata: Sequence[float] = (),
) -> np.ndarray:
    """Mosaic ``paths`` onto ``grid``; NaN outside ``inside`` and where no tile has data.

    Tiles sharing a CRS and cell size are joined into one virtual mosaic (a GDAL VRT), so a
    target cell on a tile seam is computed from both tiles at once, exactly as from one
    file. The target grid is processed in blocks whose source window is about
    ``block`` × ``block`` cells (plus a margin), each target cell once.

    Parameters
    ----------
    paths : sequence of path
        Tiles of one layer (any CRS GDAL knows; they should not overlap).
    grid, inside : GridSpec, ndarray of bool
        The target grid and the region's cells (:func:`~pari_geo.preparation.region.region_grid`).
    layer : str
        Layer name for messages.
    kind : {"count", "share"}
        ``count``: sum-preserving (GDAL ``sum``); ``share``: area-weighted mean of
        ``values`` over valid source cells (GDAL ``average``).
    values : callable, optional
        ``values(block, file)`` turns a source block (float64, NaN = no data) into what is
        warped (e.g. land-cover classes → agricultural weight); it may raise
        :class:`InputError`.
    region : shapely geometry, optional
        The region in the grid's CRS; when given, tiles that leave part of it uncovered are
        refused, naming the part.
    block : int
        Source cells per block side (memory: about ``24 * block**2`` bytes per block).
    nodata : sequence of float
        Source values treated as no data besides each file's own no-data value.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, rasterio
    >>> from affine import Affine
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> prof = dict(driver="GTiff", width=4, height=4, count=1, dtype="float64",
    ...             crs="ESRI:54009", transform=Affine(100, 0, 0, 0, -100, 400))
    >>> with rasterio.open(d / "t.tif", "w", **prof) as dst:
    ...     dst.write(np.ones((1, 4, 4)))
    >>> g = GridSpec("ESRI:54009", Affine(200, 0, 0, 0, -200, 400), (2, 2))
    >>> warp_tiles([d / "t.tif"], g, np.ones((2, 2), bool), layer="population").tolist()
    [[4.0, 4.0], [4.0, 4.0]]
    """
    total = np.zeros(grid.shape)
    weight = np.zeros(grid.shape) if kind == "share" else None
    covered = np.zeros(grid.shape, bool)
    footprints = []
    sources = []
    for path in paths:
        with _open(path, layer) as src:
            footprints.append(tile_footprint(src, grid.crs))
            sources.append((src.name, src.crs, src.transform, src.width, src.height,
                            src.nodata, src.dtypes[0]))
    if region is not None:
        _check_coverage(paths, footprints, region, grid, layer)
    groups: dict[tuple, list] = {}
    for s in sources:  # one mosaic per CRS and cell size
        groups.setdefault((s[1].to_wkt(), round(s[2].a, 9), round(s[2].e, 9)), []).append(s)
    for group in groups.values():
        _warp_mosaic(group, grid, inside, total, weight, covered, kind, values,
                     [v for v in nodata], layer, block)
    if weight is not None:  # kind == "share"
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(weight > 0, total / np.where(weight > 0, weight, 1), np.nan)
    else:
        out = np.where(covered, total, np.nan)
    out[~inside] = np.nan
    return out


def _vrt(group) -> str:
    """A GDAL VRT (XML text) mosaicking tiles of one CRS and cell size, as float64."""
    from xml.sax.saxutils import escape

    a, e = group[0][2].a, group[0][2].e
    left = min(t.c for _, _, t, *_ in group)
    top = max(t.f for _, _, t, *_ in group)
    right = max(t.c + w * t.a for _, _, t, w, *_ in group)
    bottom = min(t.f + h * t.e for _, _, t, _, h, *_ in group)
    width, height = round((right - left) / a), round((bottom - top) / e)
    parts = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
             f"<SRS>{escape(group[0][1].to_wkt())}</SRS>",
             f"<GeoTransform>{left!r}, {a!r}, 0, {top!r}, 0, {e!r}</GeoTransform>",
             '<VRTRasterBand dataType="Float64" band="1"><NoDataValue>nan</NoDataValue>']
    for name, _, t, w, h, nd, _ in group:
        xoff, yoff = round((t.c - left) / a), round((t.f - top) / e)
        nd_xml = "" if nd is None else f"<NODATA>{nd!r}</NODATA>"
        parts.append(
            f'<ComplexSource><SourceFilename relativeToVRT="0">{escape(str(name))}'
            f'</SourceFilename><SourceBand>1</SourceBand><SrcRect xOff="0" yOff="0" '
            f'xSize="{w}" ySize="{h}"/><DstRect xOff="{xoff}" yOff="{yoff}" xSize="{w}" '
            f'ySize="{h}"/>{nd_xml}</ComplexSource>')
    parts.append("</VRTRasterBand></VRTDataset>")
    return "".join(parts)


def _warp_mosaic(group, grid, inside, total, weight, covered, kind, values, extra, layer,
                 block) -> None:
    import rasterio
    from affine import Affine
    from rasterio.warp import Resampling, reproject, transform_bounds
    from rasterio.windows import Window, from_bounds

    from ..ingest import first_line

    names = [g[0] for g in group]
    fname = names[0] if len(names) == 1 else ", ".join(Path(str(n)).name for n in names[:3])
    src_res = abs(group[0][2].a)
    # degrees → metres, roughly, for a geographic source
    src_m = src_res * (111_000 if group[0][1].is_geographic else 1)
    step = max(8, int(block * src_m / grid.cell_size_m))
    with rasterio.open(_vrt(group) if len(group) > 1 else names[0]) as src:
        full = Window(0, 0, src.width, src.height)
        rows, cols = grid.shape
        k = _nesting(src, grid)
        for r0 in range(0, rows, step):
            for c0 in range(0, cols, step):
                r1, c1 = min(rows, r0 + step), min(cols, c0 + step)
                if not inside[r0:r1, c0:c1].any():
                    continue
                sub_t = grid.transform @ Affine.translation(c0, r0)
                if k is not None:  # source cells nest in target cells: exact block sums
                    _block_sums(src, fname, layer, sub_t, (r0, r1, c0, c1), k, total, weight,
                                covered, kind, values, extra)
                    continue
                bl, bt = sub_t.c, sub_t.f
                br, bb = bl + (c1 - c0) * sub_t.a, bt + (r1 - r0) * sub_t.e
                try:
                    sl, sb, sr, st = transform_bounds(grid.crs, src.crs, bl, bb, br, bt,
                                                      densify_pts=21)
                except Exception:  # noqa: BLE001 - outside the source CRS's domain
                    continue
                win = from_bounds(sl, sb, sr, st, transform=src.transform)
                col0, row0 = math.floor(win.col_off) - 2, math.floor(win.row_off) - 2
                win = Window(col0, row0, math.ceil(win.col_off + win.width) + 2 - col0,
                             math.ceil(win.row_off + win.height) + 2 - row0)
                try:
                    win = win.intersection(full)
                except rasterio.errors.WindowError:
                    continue
                try:
                    data = src.read(1, window=win, masked=True)
                except Exception as err:  # noqa: BLE001 - truncated tiles, codecs ...
                    raise InputError(fname, layer, f"cannot be read ({first_line(err)})"
                                     ) from None
                arr = np.ma.filled(data.astype(np.float64), np.nan)
                for v in extra:
                    arr[arr == v] = np.nan
                if values is not None:
                    arr = values(arr, fname)
                elif kind == "count":
                    finite = arr[np.isfinite(arr)]
                    if finite.size and finite.min() < 0:
                        raise InputError(fname, layer, f"contains negative values (minimum "
                                         f"{finite.min():g}); set its no-data value "
                                         "(gdal_edit.py -a_nodata)")
                valid = np.isfinite(arr)
                if not valid.any():
                    continue
                wt = src.window_transform(win)

                resampling = Resampling.sum if kind == "count" else Resampling.average
                out = np.full((r1 - r0, c1 - c0), np.nan)
                reproject(source=np.where(valid, arr, np.nan), destination=out,
                          src_transform=wt, src_crs=src.crs, src_nodata=np.nan,
                          dst_transform=sub_t, dst_crs=grid.crs, dst_nodata=np.nan,
                          resampling=resampling, num_threads=_THREADS, warp_mem_limit=256)
                got = np.isfinite(out)
                total[r0:r1, c0:c1] += np.where(got, out, 0.0)
                covered[r0:r1, c0:c1] |= got
                if weight is not None:  # means of several mosaics (CRSs) are averaged
                    weight[r0:r1, c0:c1] += got


def _nesting(src, grid: GridSpec) -> int | None:
    """``k`` when the source grid nests ``k x k`` cells in each target cell (same CRS,
    integer ratio, origins on the source grid), else None."""
    from pyproj import CRS

    t = src.transform
    if CRS.from_user_input(src.crs) != grid.crs or t.b or t.d or t.a != -t.e:
        return None
    k = grid.cell_size_m / t.a
    dx = (grid.transform.c - t.c) / t.a
    dy = (t.f - grid.transform.f) / t.a
    if all(abs(v - round(v)) < 1e-6 for v in (k, dx, dy)) and round(k) >= 1:
        return int(round(k))
    return None


def _block_sums(src, fname, layer, sub_t, bounds, k, total, weight, covered, kind, values,
                extra) -> None:
    """Read the source cells of target block ``bounds`` and sum them ``k x k``."""
    from rasterio.windows import Window

    from ..ingest import first_line

    r0, r1, c0, c1 = bounds
    t = src.transform
    col = int(round((sub_t.c - t.c) / t.a))
    row = int(round((t.f - sub_t.f) / t.a))
    win = Window(col, row, (c1 - c0) * k, (r1 - r0) * k)
    try:
        data = src.read(1, window=win, masked=True, boundless=True)
    except Exception as err:  # noqa: BLE001 - truncated tiles, codecs ...
        raise InputError(fname, layer, f"cannot be read ({first_line(err)})") from None
    arr = np.ma.filled(data.astype(np.float64), np.nan)
    for v in extra:
        arr[arr == v] = np.nan
    if values is not None:
        arr = values(arr, fname)
    elif kind == "count":
        finite = arr[np.isfinite(arr)]
        if finite.size and finite.min() < 0:
            raise InputError(fname, layer, f"contains negative values (minimum "
                             f"{finite.min():g}); set its no-data value (gdal_edit.py -a_nodata)")
    h, w = r1 - r0, c1 - c0
    blocks = arr.reshape(h, k, w, k)
    valid = np.isfinite(blocks)
    n = valid.sum(axis=(1, 3))
    total[r0:r1, c0:c1] += np.where(valid, blocks, 0.0).sum(axis=(1, 3))
    covered[r0:r1, c0:c1] |= n > 0
    if weight is not None:
        weight[r0:r1, c0:c1] += n


def _check_coverage(paths, footprints, region, grid: GridSpec, layer: str) -> None:
    """Refuse tiles that leave more than half a cell of the region uncovered."""
    from shapely import union_all

    cover = union_all(footprints) if footprints else None
    missing = region if cover is None else region.difference(cover)
    if missing.is_empty or missing.area <= 0.5 * grid.cell_size_m**2:
        return
    names = ", ".join(Path(str(p)).name for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
    raise InputError(
        str(paths[0]) if len(paths) == 1 else names, layer,
        f"the tile(s) do not cover {_describe_missing(missing, region, grid)}; download the "
        "neighbouring tile(s) and list them too",
    )
