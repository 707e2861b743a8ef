"""The common grid every layer is aligned to: CRS, transform, shape and cell area.

Examples
--------
>>> from affine import Affine
>>> g = GridSpec("EPSG:3035", Affine(1000, 0, 0, 0, -1000, 5000), (5, 4))
>>> g.cell_size_m, g.cell_area_km2, g.bounds
(1000.0, 1.0, (0.0, 0.0, 4000.0, 5000.0))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from pyproj import CRS

from .errors import InputError

__all__ = ["GridSpec", "suggest_projected_crs", "require_projected"]


def suggest_projected_crs(crs: Any, lon: float | None = None, lat: float | None = None) -> str:
    """Name a projected, metre-based CRS suited to a place (for error messages).

    Europe gets the LAEA equal-area grid (EPSG:3035) or, for DEGURBA, World Mollweide
    (ESRI:54009); elsewhere the UTM zone of the point.

    Examples
    --------
    >>> suggest_projected_crs("EPSG:4326", 4.4, 50.8)
    'EPSG:3035 (ETRS89-LAEA Europe, equal-area) or ESRI:54009 (World Mollweide, used by GHSL)'
    """
    if lon is not None and lat is not None:
        if -30 <= lon <= 45 and 27 <= lat <= 72:
            return (
                "EPSG:3035 (ETRS89-LAEA Europe, equal-area) or ESRI:54009 "
                "(World Mollweide, used by GHSL)"
            )
        zone = int((lon + 180) // 6) + 1
        epsg = (32600 if lat >= 0 else 32700) + min(max(zone, 1), 60)
        return f"EPSG:{epsg} (UTM zone {zone}{'N' if lat >= 0 else 'S'}) or ESRI:54009"
    return "ESRI:54009 (World Mollweide, used by GHSL) or a local equal-area CRS in metres"


def require_projected(
    crs: Any,
    file: str | None,
    layer: str | None,
    bounds: tuple[float, float, float, float] | None = None,
) -> CRS:
    """Return ``crs`` as a pyproj CRS or raise :class:`InputError` if it is unusable.

    Refuses a missing CRS, a geographic CRS (degrees; the message names a projected CRS to
    reproject to) and a projected CRS whose unit is not the metre.
    """
    if crs is None:
        raise InputError(file, layer, "has no CRS; assign one (e.g. ESRI:54009) before use")
    crs = CRS.from_user_input(crs)
    if crs.is_geographic:
        lon = lat = None
        if bounds is not None:
            lon, lat = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
        raise InputError(
            file,
            layer,
            f"is in a geographic CRS ({crs.name}, degrees); reproject it to a projected CRS "
            f"in metres, e.g. {suggest_projected_crs(crs, lon, lat)}",
        )
    units = {ax.unit_name for ax in crs.axis_info}
    if units and not units <= {"metre", "meter", "m"}:
        raise InputError(file, layer, f"CRS {crs.name} is not in metres (axis units {units})")
    if _is_web_mercator(crs):
        lon = lat = None
        if bounds is not None:
            from pyproj import Transformer

            t = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
            lon, lat = t.transform((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
        raise InputError(
            file,
            layer,
            f"is in Web Mercator ({crs.name}), whose metres are not ground metres (stretched "
            "by 1/cos(latitude): x1.6 at 51°N); reproject it to an equal-area or local CRS, "
            f"e.g. {suggest_projected_crs(CRS.from_epsg(4326), lon, lat)}",
        )
    return crs


def _is_web_mercator(crs: CRS) -> bool:
    """Whether ``crs`` is (a variant of) the spherical Web/Pseudo-Mercator projection."""
    if crs.to_epsg() in (3857, 3785, 900913, 102100, 102113):
        return True
    op = crs.coordinate_operation
    name = (op.method_name if op is not None else "") + " " + crs.name
    return "pseudo-mercator" in name.lower() or "popular visualisation" in name.lower()


@dataclass(frozen=True)
class GridSpec:
    """A north-up grid of square cells in a projected CRS.

    Parameters
    ----------
    crs : pyproj.CRS or anything pyproj accepts
    transform : affine.Affine
        Upper-left origin, positive cell width, negative cell height.
    shape : (rows, cols)
    """

    crs: Any
    transform: Affine
    shape: tuple[int, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "crs", CRS.from_user_input(self.crs))
        object.__setattr__(self, "shape", (int(self.shape[0]), int(self.shape[1])))

    @classmethod
    def from_dataarray(
        cls, da: Any, *, file: str | None = None, layer: str | None = None
    ) -> GridSpec:
        """The grid of a rioxarray-backed DataArray, validated (projected, square, north-up)."""
        transform = da.rio.transform()
        rows, cols = da.shape[-2:]
        bounds = da.rio.bounds()
        crs = require_projected(da.rio.crs, file, layer, bounds)
        check_transform(transform, file, layer)
        return cls(crs, transform, (rows, cols))

    @property
    def cell_size_m(self) -> float:
        """Cell side in metres."""
        return float(self.transform.a)

    @property
    def cell_area_km2(self) -> float:
        """Cell area in km²."""
        return self.cell_size_m**2 / 1e6

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top)."""
        rows, cols = self.shape
        left, top = self.transform.c, self.transform.f
        return (
            float(left),
            float(top + rows * self.transform.e),
            float(left + cols * self.transform.a),
            float(top),
        )

    def coords(self) -> dict[str, np.ndarray]:
        """Cell-centre coordinates ``{"y": ..., "x": ...}``."""
        rows, cols = self.shape
        t = self.transform
        x = t.c + (np.arange(cols) + 0.5) * t.a
        y = t.f + (np.arange(rows) + 0.5) * t.e
        return {"y": y, "x": x}

    def same_as(self, other: GridSpec, tol: float = 1e-6) -> bool:
        """True when both grids have the same CRS, shape and (almost) the same transform."""
        return (
            self.shape == other.shape
            and self.crs == other.crs
            and self.transform.almost_equals(other.transform, precision=tol * self.cell_size_m)
        )

    def to_dataarray(
        self,
        values: np.ndarray,
        name: str | None = None,
        attrs: dict[str, Any] | None = None,
        nodata: Any = None,
    ):
        """Wrap an array on this grid as a georeferenced ``xarray.DataArray``."""
        import rioxarray  # noqa: F401  (registers the .rio accessor)
        import xarray as xr

        da = xr.DataArray(
            values, dims=("y", "x"), coords=self.coords(), name=name, attrs=dict(attrs or {})
        )
        da = da.rio.write_crs(self.crs).rio.write_transform(self.transform)
        if nodata is not None:
            da = da.rio.write_nodata(nodata, encoded=False)
        return da

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (for provenance)."""
        return {
            "crs": self.crs.to_string(),
            "transform": list(self.transform)[:6],
            "shape": list(self.shape),
        }


def check_transform(transform: Affine, file: str | None, layer: str | None) -> None:
    """Refuse rotated/sheared, south-up or non-square grids with a clear message."""
    if transform.b != 0 or transform.d != 0:
        raise InputError(
            file,
            layer,
            "has a rotated or sheared geotransform; warp it to a north-up grid first (gdalwarp)",
        )
    if transform.a <= 0 or transform.e >= 0:
        raise InputError(
            file,
            layer,
            "is not a north-up grid (negative cell width or positive cell height); warp it first",
        )
    if not np.isclose(transform.a, -transform.e, rtol=1e-9, atol=0):
        raise InputError(
            file,
            layer,
            f"has non-square cells ({transform.a} x {-transform.e} m); resample it to square cells",
        )
