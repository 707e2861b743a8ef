"""Maps of class rasters with a legend, a scale bar and optional boundaries on top.

matplotlib is imported only when a function here is called.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import pari_geo
>>> p = pari_geo.belgium_paths()
>>> l2 = pari_geo.classify_grid(p["population"], p["built"], p["land"])
>>> ax = plot_classes(l2)
>>> ax.get_title()
'Degree of Urbanisation, level 2'
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .classes import ClassScheme

__all__ = ["plot_classes", "plot_place_types", "plot_units", "save_figure"]

_TITLES = {
    "degurba_l1": "Degree of Urbanisation, level 1",
    "degurba_l2": "Degree of Urbanisation, level 2",
    "nordic7": "Place types (nordic7)",
}


def _nice_length(max_m: float) -> float:
    exp = 10 ** np.floor(np.log10(max_m))
    for m in (5, 2, 1):
        if m * exp <= max_m:
            return m * exp
    return exp


def plot_classes(
    da: Any,
    scheme: ClassScheme | None = None,
    *,
    ax: Any = None,
    units: Any = None,
    points: Any = None,
    title: str | None = None,
    legend: bool = True,
    scalebar: bool = True,
    figsize=(9, 7),
):
    """Draw a class raster with its standard colours.

    Parameters
    ----------
    da : xarray.DataArray
        Class codes with a CRS and transform (e.g. from ``classify_grid``).
    scheme : ClassScheme, optional
        Defaults to the scheme recorded in ``da.attrs``.
    ax : matplotlib Axes, optional
    units : GeoDataFrame, optional
        Boundaries drawn on top (reprojected to the raster CRS).
    points : GeoDataFrame, optional
        Points (e.g. cluster members) drawn on top.
    title : str, optional
    legend, scalebar : bool

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    if scheme is None:
        from .report import scheme_from_attrs

        scheme = scheme_from_attrs(da)
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    values = np.asarray(da.values)
    codes = sorted(scheme.codes)
    lut = np.full(256, -1, dtype=int)
    lut[codes] = np.arange(len(codes))
    idx = np.ma.masked_less(lut[values.astype(np.int64)], 0)
    cmap = ListedColormap([scheme.colours[c] for c in codes])
    norm = BoundaryNorm(np.arange(len(codes) + 1) - 0.5, len(codes))
    left, bottom, right, top = da.rio.bounds()
    ax.imshow(idx, cmap=cmap, norm=norm, extent=(left, right, bottom, top), interpolation="nearest")
    if units is not None:
        units.to_crs(da.rio.crs).boundary.plot(ax=ax, color="#333333", linewidth=0.3)
    if points is not None and len(points):
        points.to_crs(da.rio.crs).plot(ax=ax, color="black", markersize=4)
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title(title or _TITLES.get(scheme.name, scheme.name))
    if legend:
        handles = [
            Patch(facecolor=scheme.colours[c], edgecolor="none", label=f"{c} {scheme.names[c]}")
            for c in scheme.codes
        ]
        ax.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False
        )
    if scalebar:
        length = _nice_length((right - left) / 4)
        x0 = left + (right - left) * 0.05
        y0 = bottom + (top - bottom) * 0.05
        ax.plot([x0, x0 + length], [y0, y0], color="black", linewidth=3, solid_capstyle="butt")
        label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
        ax.text(
            x0 + length / 2,
            y0 + (top - bottom) * 0.015,
            label,
            ha="center",
            va="bottom",
            fontsize=8,
        )
    return ax


plot_place_types = plot_classes
"""Alias of :func:`plot_classes` for place-type rasters."""


def plot_units(
    units: Any,
    column: str,
    scheme: ClassScheme,
    *,
    ax: Any = None,
    title: str | None = None,
    legend: bool = True,
    figsize=(9, 7),
):
    """Choropleth of unit classes (e.g. the ``L2`` column of ``classify_units``).

    Units whose class is missing are drawn hatched grey.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pari_geo
    >>> from pari_geo.classes import DEGURBA_L1
    >>> p = pari_geo.belgium_paths()
    >>> l1 = pari_geo.classify_grid(p["population"], p["built"], p["land"], level=1)
    >>> t = pari_geo.classify_units(p["units"], l1, p["population"], level=1)
    >>> ax = plot_units(t, "L1", DEGURBA_L1)
    >>> len(ax.collections) >= 1
    True
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    values = units[column]
    colours = values.map(
        lambda v: (
            scheme.colours.get(int(v), "#BBBBBB")
            if v == v and v is not None and str(v) != "<NA>"
            else "#DDDDDD"
        )
    )
    units.plot(ax=ax, color=list(colours), edgecolor="#555555", linewidth=0.2)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"{column} by unit")
    if legend:
        present = {int(v) for v in values.dropna()}
        handles = [
            Patch(facecolor=scheme.colours[c], label=f"{c} {scheme.names[c]}")
            for c in scheme.codes
            if c in present
        ]
        ax.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False
        )
    return ax


def save_figure(
    fig: Any, path: str | os.PathLike, *, overwrite: bool = False, dpi: int = 150
) -> None:
    """Save a matplotlib figure as PNG atomically (no timestamp metadata)."""
    from .io_write import atomic_path

    with atomic_path(path, overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
