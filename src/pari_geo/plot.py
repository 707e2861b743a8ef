"""Maps of class rasters with a legend, a scale bar and optional boundaries on top.

matplotlib is imported only when a function here is called, and pari_geo never selects or
changes the matplotlib backend: the maps it writes to files are drawn on figures made by
:func:`new_figure` (not attached to pyplot), and figures drawn without ``ax`` use pyplot
with whatever backend the user has (inline in Jupyter).

Examples
--------
>>> import pari_geo
>>> p = pari_geo.belgium_paths()
>>> l2 = pari_geo.classify_grid(p["population"], p["built"], p["land"])
>>> ax = plot_classes(l2)
>>> ax.get_title()
'Degree of Urbanisation, level 2'
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .classes import SCHEME_TITLES, ClassScheme, unit_scheme

if TYPE_CHECKING:
    import folium
    from matplotlib.axes import Axes

__all__ = [
    "plot_classes",
    "PngWriter",
    "plot_place_types",
    "plot_units",
    "explore",
    "save_figure",
    "new_figure",
]

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
    figsize: tuple[float, float] = (9, 7),
) -> Axes:
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
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    from .report import as_class_raster, scheme_from_attrs

    da = as_class_raster(da)
    if scheme is None:
        scheme = scheme_from_attrs(da)
    if ax is None:  # a new pyplot figure, with the user's backend (inline in Jupyter)
        import matplotlib.pyplot as plt

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
    ax.set_title(title or SCHEME_TITLES.get(scheme.name, scheme.name))
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
    figsize: tuple[float, float] = (9, 7),
) -> Axes:
    """Choropleth of unit classes (e.g. the ``L2`` column of ``classify_units``).

    Units whose class is missing are drawn grey. A DEGURBA grid scheme (``DEGURBA_L1``,
    ``DEGURBA_L2``) is shown with the names of the unit classes (city, town or semi-dense
    area, rural area ...; :func:`pari_geo.classes.unit_scheme`), not those of grid cells.

    Examples
    --------
    >>> import pari_geo
    >>> from pari_geo.classes import DEGURBA_L1
    >>> p = pari_geo.belgium_paths()
    >>> l1 = pari_geo.classify_grid(p["population"], p["built"], p["land"], level=1)
    >>> t = pari_geo.classify_units(p["units"], l1, p["population"], level=1)
    >>> ax = plot_units(t, "L1", DEGURBA_L1)
    >>> len(ax.collections) >= 1
    True
    >>> [x.get_text() for x in ax.get_legend().get_texts()]
    ['3 City', '2 Town or semi-dense area', '1 Rural area']
    """
    from matplotlib.patches import Patch

    scheme = unit_scheme(scheme)
    if ax is None:
        import matplotlib.pyplot as plt

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


def new_figure(figsize: tuple[float, float] = (10, 7.5)) -> tuple[Any, Any]:
    """A figure and axes for writing to a file, outside pyplot.

    The figure is a plain :class:`matplotlib.figure.Figure`: it never opens a window, never
    touches the pyplot state or backend, and is freed with its last reference (no
    ``plt.close`` needed).

    Parameters
    ----------
    figsize : (float, float), default (10, 7.5)
        Width and height in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
    ax : matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> backend = matplotlib.get_backend()
    >>> fig, ax = new_figure((4, 3))
    >>> fig.get_size_inches().tolist(), matplotlib.get_backend() == backend
    ([4.0, 3.0], True)
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot()


def save_figure(
    fig: Any, path: str | os.PathLike, *, overwrite: bool = False, dpi: int = 150
) -> None:
    """Save a matplotlib figure as PNG atomically (no timestamp metadata).

    The PNG's ``Software`` text chunk is ``pari_geo`` (no version, so the same figure
    gives the same bytes): the marker by which ``--overwrite`` recognises pari_geo's maps.
    A path that does not end in ``.png`` is refused.
    """
    from .errors import OutputError
    from .io_write import PNG_SOFTWARE, atomic_path

    if Path(path).suffix.lower() != ".png":
        raise OutputError(str(path), "maps are written as PNG; give a file name ending "
                          "in .png")
    bbox = _tight_bbox_inches(fig, dpi)
    with atomic_path(path, overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches=bbox,
                    metadata={"Software": PNG_SOFTWARE})


class PngWriter:
    """Save figures as :func:`save_figure` does, the same bytes, but encode and write each
    PNG in a background thread while the caller draws the next figure.

    The figure is drawn in the calling thread (matplotlib is not thread-safe); only the
    compression of its pixels (Pillow, GIL released) and the atomic write run in the
    thread. Use as a context manager: leaving it waits for every file and raises the
    first error of a write.
    """

    def __init__(self, *, overwrite: bool = False, dpi: int = 150):
        from concurrent.futures import ThreadPoolExecutor

        self._overwrite, self._dpi = overwrite, dpi
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: list = []

    def save(self, fig: Any, path: str | os.PathLike) -> None:
        """Draw ``fig`` now and write it to ``path`` (a ``.png``) in the background."""
        import io

        from .errors import OutputError
        from .io_write import PNG_SOFTWARE

        if Path(path).suffix.lower() != ".png":
            raise OutputError(str(path), "maps are written as PNG; give a file name ending "
                              "in .png")  # fmt: skip
        bbox = _tight_bbox_inches(fig, self._dpi)
        old = fig.canvas
        canvas = _rgba_canvas_class()(fig)
        try:
            fig.savefig(io.BytesIO(), format="png", dpi=self._dpi, bbox_inches=bbox,
                        metadata={"Software": PNG_SOFTWARE})  # fmt: skip
        finally:
            fig.set_canvas(old)
        self._pending.append(self._pool.submit(_write_png, path, self._overwrite,
                                               *canvas.captured))  # fmt: skip

    def __enter__(self) -> PngWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            for f in self._pending:
                f.result()
        finally:
            self._pool.shutdown(wait=True)


@functools.lru_cache(maxsize=1)
def _rgba_canvas_class() -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    class RgbaCanvas(FigureCanvasAgg):
        """An Agg canvas whose ``print_png`` draws as Agg's does and keeps the pixels and
        the arguments of its ``matplotlib.image.imsave`` call instead of encoding them."""

        captured: tuple = ()

        def print_png(self, filename_or_obj, *, metadata=None, pil_kwargs=None, **_):
            FigureCanvasAgg.draw(self)  # what FigureCanvasAgg._print_pil does, then imsave
            rgba = np.array(self.buffer_rgba(), dtype=np.uint8, copy=True)
            self.captured = (rgba, self.figure.dpi, metadata, pil_kwargs)

    return RgbaCanvas


def _write_png(path, overwrite: bool, rgba: np.ndarray, dpi: float, metadata, pil_kwargs):
    """The ``matplotlib.image.imsave`` call of Agg's ``print_png``, into ``path`` atomically."""
    import matplotlib.image

    from .io_write import atomic_path

    with atomic_path(path, overwrite) as tmp:
        matplotlib.image.imsave(tmp, rgba.data, format="png", origin="upper", dpi=dpi,
                                metadata=metadata, pil_kwargs=pil_kwargs)  # fmt: skip


def _tight_bbox_inches(fig: Any, dpi: int) -> Any:
    """The bounding box ``bbox_inches="tight"`` gives, found without drawing the artists
    clipped to their axes (the class raster, boundaries, clusters).

    ``savefig(bbox_inches="tight")`` draws the whole figure once more (draw methods
    disabled, but the raster is still resampled and every boundary transformed) only to
    measure it, and its measure leaves out whatever is clipped to the axes. Measuring here
    with those artists hidden gives the same box (so the same bytes) for half the drawing.
    """
    from matplotlib import rcParams
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    # the test by which matplotlib's own tight box leaves an artist out
    clipped = [a for ax in fig.axes for a in (*ax.images, *ax.collections, *ax.lines)
               if a.get_visible() and a._fully_clipped_to_axes()]
    canvas, old_dpi = fig.canvas, fig.dpi
    try:
        for a in clipped:
            a.set_visible(False)
        fig.dpi = dpi
        renderer = FigureCanvasAgg(fig).get_renderer()
        with renderer._draw_disabled():  # as savefig measures (matplotlib's own advice)
            fig.draw(renderer)
        box = fig.get_tightbbox(renderer)
    finally:
        for a in clipped:
            a.set_visible(True)
        fig.dpi = old_dpi
        fig.set_canvas(canvas)
    pad = rcParams["savefig.pad_inches"]
    return box.padded(pad)  # one argument: the form matplotlib 3.7 and later all accept


def _rgba_image(da: Any, scheme: ClassScheme):
    """The class raster reprojected to Web Mercator as an RGBA array and its lat/lon bounds."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

    src_crs = da.rio.crs
    rows, cols = da.shape
    left, bottom, right, top = da.rio.bounds()
    dst_t, w, h = calculate_default_transform(
        src_crs, "EPSG:3857", cols, rows, left, bottom, right, top
    )
    fill = 255 if scheme.nodata is None else scheme.nodata
    out = np.full((h, w), fill, dtype=np.uint8)
    reproject(
        np.asarray(da.values, dtype=np.uint8),
        out,
        src_transform=da.rio.transform(),
        src_crs=src_crs,
        dst_transform=dst_t,
        dst_crs="EPSG:3857",
        resampling=Resampling.nearest,
        src_nodata=fill,
        dst_nodata=fill,
    )
    lut = np.zeros((256, 4), dtype=np.uint8)
    for code in scheme.codes:
        h_ = scheme.colours[code].lstrip("#")
        lut[code] = (int(h_[0:2], 16), int(h_[2:4], 16), int(h_[4:6], 16), 200)
    rgba = lut[out]
    x0, y0 = dst_t.c, dst_t.f
    x1, y1 = x0 + w * dst_t.a, y0 + h * dst_t.e
    west, south, east, north = transform_bounds("EPSG:3857", "EPSG:4326", x0, y1, x1, y0)
    return rgba, [[south, west], [north, east]]


def explore(
    da: Any,
    *,
    clusters: Any = None,
    units: Any = None,
    scheme: ClassScheme | None = None,
    m: Any = None,
    tiles: str | None = "OpenStreetMap",
    name: str | None = None,
) -> folium.Map:
    """Interactive web map (folium/Leaflet) of a class raster with units and clusters on top.

    Needs the optional ``folium`` package (``pip install "pari_geo[maps]"``).

    Parameters
    ----------
    da : xarray.DataArray
        Class raster (place types or DEGURBA).
    clusters : GeoDataFrame, optional
        Micro-clusters (e.g. from ``find_microclusters``); hidden ones are drawn in black,
        with a tooltip of their statistics.
    units : GeoDataFrame, optional
        Boundaries with a tooltip of every column except geometry.
    scheme : ClassScheme, optional
        Defaults to the scheme recorded on ``da``.
    m : folium.Map, optional
        Add to an existing map.
    tiles : str or None
        Base map; ``None`` for none (offline use).
    name : str, optional
        Layer name of the raster.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> import pari_geo
    >>> p = pari_geo.belgium_paths()
    >>> l2 = pari_geo.classify_grid(p["population"], p["built"], p["land"])
    >>> m = explore(l2, tiles=None)
    >>> "Degree of Urbanisation" in m.get_root().render()
    True
    """
    try:
        import folium
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "explore() needs folium: pip install folium (or pari_geo[maps])"
        ) from None
    from .report import as_class_raster, scheme_from_attrs

    da = as_class_raster(da)
    if scheme is None:
        scheme = scheme_from_attrs(da)
    rgba, bounds = _rgba_image(da, scheme)
    if m is None:
        m = folium.Map(tiles=tiles, control_scale=True)
        m.fit_bounds(bounds)
    title = name or SCHEME_TITLES.get(scheme.name, scheme.name)
    folium.raster_layers.ImageOverlay(
        rgba, bounds=bounds, name=title, opacity=0.8, mercator_project=False
    ).add_to(m)
    if units is not None:
        u = units.to_crs("EPSG:4326")
        fields = [c for c in u.columns if c != u.geometry.name][:8]
        folium.GeoJson(
            u,
            name="units",
            style_function=lambda _: {"color": "#333333", "weight": 1, "fillOpacity": 0},
            tooltip=folium.GeoJsonTooltip(fields=fields) if fields else None,
        ).add_to(m)
    if clusters is not None and len(clusters):
        c = clusters.to_crs("EPSG:4326")
        keep = [
            k
            for k in (
                "scale_eps_m",
                "cluster_id",
                "n_actors",
                "sectors",
                "unit_ids",
                "rung",
                "expected",
                "ratio",
                "q_value",
                "hidden",
            )
            if k in c.columns
        ]
        c = c[[*keep, c.geometry.name]].copy()
        if "hidden" in c.columns:
            c["hidden"] = c["hidden"].astype(bool)
        folium.GeoJson(
            c,
            name="micro-clusters",
            style_function=lambda f: {
                "color": "black" if f["properties"].get("hidden") else "#666666",
                "weight": 2 if f["properties"].get("hidden") else 1,
                "fillOpacity": 0.1,
            },
            tooltip=folium.GeoJsonTooltip(fields=keep) if keep else None,
        ).add_to(m)
    legend = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;'
        f'background:{scheme.colours[k]}"></span> {k} {scheme.names[k]}</div>'
        for k in scheme.codes
    )
    m.get_root().html.add_child(
        folium.Element(
            '<div style="position:fixed;bottom:20px;left:20px;z-index:9999;background:white;'
            f'padding:6px;font:12px sans-serif;border:1px solid #999"><b>{title}</b>{legend}</div>'
        )
    )
    folium.LayerControl().add_to(m)
    return m
