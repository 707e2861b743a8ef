"""Class rasters written block by block: a plain tiled GeoTIFF, then one atomic COG copy.

Shared by the tiled DEGURBA and ``nordic7`` paths. The final file has the layout, colour
table, tags and band description that :func:`pari_geo.io_write.write_class_raster` gives
the in-memory result, and it appears at its path only once complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine


class ClassRasterWriter:
    """Blocks of class codes into ``tmp/name``, then a COG at ``path`` (atomic).

    Parameters
    ----------
    path : Path
        Final output path.
    tmp : Path
        Work folder for the uncompressed intermediate file.
    grid : GridSpec-like
        ``crs``, ``transform`` and ``shape`` of the grid the blocks come from.
    scheme : ClassScheme
        Codes, colours, names and nodata of the classes.
    tags : dict of str to str
        GeoTIFF tags of the output.
    name : str
        File name of the intermediate file.
    crop : int, default 0
        Cells dropped on every side of the grid (a padding frame) before writing.
    """

    def __init__(self, path: Path, tmp: Path, grid: Any, scheme: Any, tags: dict[str, str],
                 name: str, crop: int = 0) -> None:
        import rasterio

        from ..grid import GridSpec

        self.path, self.crop, self.scheme, self.tags = path, crop, scheme, tags
        rows, cols = grid.shape
        self.out_shape = (rows - 2 * crop, cols - 2 * crop)
        transform = grid.transform @ Affine.translation(crop, crop) if crop else grid.transform
        # the CRS exactly as the in-memory path writes it (through rioxarray)
        probe = GridSpec(grid.crs, grid.transform, (1, 1)).to_dataarray(
            np.zeros((1, 1), dtype=np.uint8))
        profile = {"driver": "GTiff", "height": self.out_shape[0], "width": self.out_shape[1],
                   "count": 1, "dtype": "uint8", "crs": probe.rio.crs, "transform": transform,
                   # tiled like the COG: building its overviews from a striped source
                   # is 4x slower with a small GDAL cache
                   "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "NONE",
                   "BIGTIFF": "IF_SAFER"}
        if scheme.nodata is not None:
            profile["nodata"] = scheme.nodata
        self.tmp_path = tmp / name
        self.dst = rasterio.open(self.tmp_path, "w", **profile)
        self.counts = np.zeros(256, dtype=np.int64)

    def write(self, r0: int, c0: int, values: np.ndarray) -> None:
        """Write the block whose top-left grid cell is ``(r0, c0)`` (crop applied)."""
        from rasterio.windows import Window

        n = self.crop
        rows, cols = values.shape
        r_lo, r_hi = max(r0, n), min(r0 + rows, n + self.out_shape[0])
        c_lo, c_hi = max(c0, n), min(c0 + cols, n + self.out_shape[1])
        if r_hi <= r_lo or c_hi <= c_lo:
            return
        part = values[r_lo - r0:r_hi - r0, c_lo - c0:c_hi - c0]
        self.counts += np.bincount(part.ravel(), minlength=256)
        self.dst.write(part, 1, window=Window(c_lo - n, r_lo - n, part.shape[1], part.shape[0]))

    def finish(self, overwrite: bool) -> Path:
        """Colour table and tags, then the COG copy moved into place; returns the path."""
        import rasterio
        from rasterio.shutil import copy as rio_copy

        from ..errors import OutputError
        from ..io_write import atomic_path

        scheme = self.scheme
        self.dst.write_colormap(1, scheme.rgba_colormap())
        self.dst.update_tags(**self.tags)
        self.dst.set_band_description(1, scheme.name)
        self.dst.close()
        with atomic_path(self.path, overwrite) as tmp, rasterio.open(self.tmp_path) as src:
            rio_copy(src, str(tmp), driver="COG", compress="DEFLATE", blocksize=256,
                     overview_resampling="NEAREST", overviews="AUTO")
            with rasterio.open(tmp) as chk:
                if chk.count != 1:
                    raise OutputError(str(self.path), "COG writer produced an unexpected layout")
        return self.path

    def close(self) -> None:
        """Close the intermediate file (idempotent)."""
        if not self.dst.closed:
            self.dst.close()
