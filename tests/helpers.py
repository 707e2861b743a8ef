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


def footprint_expected_twin(members, eps, cell_expected, cell, x0=0.0, y0=None, per_eps=4.0):
    """Numpy/scipy twin of the footprint kernel: expected actors within ``eps`` of members.

    Builds the lattice of squares of about ``eps / per_eps`` (cells split into ``sub x sub``
    or grouped into ``agg x agg`` blocks), marks the squares holding a member and dilates
    them with a disc of radius ``eps`` (``scipy.ndimage.binary_dilation``), then sums the
    expected actors of the marked squares inside the grid. Returns (expected, squares).
    """
    from scipy import ndimage

    ce = np.asarray(cell_expected, dtype=np.float64)
    y0 = ce.shape[0] * cell if y0 is None else y0
    target = eps / per_eps
    if cell >= target:
        sub = max(1, int(round(cell / target)))
        h = cell / sub
        lat = np.kron(ce, np.ones((sub, sub))) / (sub * sub)
    else:
        agg = max(1, int(round(target / cell)))
        h = cell * agg
        pr, pc = -ce.shape[0] % agg, -ce.shape[1] % agg
        p = np.pad(ce, ((0, pr), (0, pc)))
        lat = p.reshape(p.shape[0] // agg, agg, p.shape[1] // agg, agg).sum(axis=(1, 3))
    r = int(np.floor(eps / h))
    pad = r + 1
    occ = np.zeros((lat.shape[0] + 2 * pad, lat.shape[1] + 2 * pad), bool)
    m = np.asarray(members, dtype=np.float64).reshape(-1, 2)
    rows = np.floor((y0 - m[:, 1]) / h).astype(int) + pad
    occ[rows, np.floor((m[:, 0] - x0) / h).astype(int) + pad] = True
    di, dj = np.mgrid[-r : r + 1, -r : r + 1]
    disc = (di * h) ** 2 + (dj * h) ** 2 <= eps**2
    mark = ndimage.binary_dilation(occ, structure=disc)[pad:-pad, pad:-pad]
    return float(lat[mark].sum()), int(mark.sum())
