"""Small builders for hand-made rasters used across tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine


def write_tif(
    path: Path, values: np.ndarray, *, crs="ESRI:54009", transform=None, nodata=None, dtype=None
) -> Path:
    """Write a single-band GeoTIFF and return its path."""
    values = np.asarray(values)
    transform = transform or Affine(1000, 0, 0, 0, -1000, values.shape[0] * 1000)
    profile = {
        "driver": "GTiff",
        "height": values.shape[0],
        "width": values.shape[1],
        "count": 1,
        "dtype": dtype or values.dtype,
        "transform": transform,
    }
    if crs is not None:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(profile["dtype"]), 1)
    return Path(path)


def assert_grid_contract(out, ref) -> None:
    """The output keeps the reference grid: dims, coords, CRS and transform."""
    assert out.dims == ("y", "x")
    assert out.shape == ref.shape
    np.testing.assert_allclose(out["x"].values, ref["x"].values)
    np.testing.assert_allclose(out["y"].values, ref["y"].values)
    assert out.rio.crs == ref.rio.crs
    assert out.rio.transform().almost_equals(ref.rio.transform())
