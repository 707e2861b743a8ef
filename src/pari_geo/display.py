"""Compact notebook display of pari_geo results: the ``.pari`` accessors.

Class rasters (``classify_grid``, ``classify_nordic7``) get ``da.pari``, cluster tables
(``find_microclusters``, ``ladder``) get ``gdf.pari``; in Jupyter both show a short HTML
summary of what was computed, with which parameters, and the counts, instead of a wall of
numbers.

Examples
--------
>>> import pari_geo
>>> p = pari_geo.belgium_paths()
>>> l1 = pari_geo.classify_grid(p["population"], p["built"], p["land"], level=1)
>>> print(l1.pari.summary()["title"])
Degree of Urbanisation, level 1
>>> "<table" in l1.pari._repr_html_()
True
"""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .classes import SCHEME_TITLES

__all__ = ["ClassRasterAccessor", "ClusterTableAccessor"]

_CSS = "font-family:sans-serif;font-size:12px;border-collapse:collapse;margin:2px 0 6px 0"
_TD = "padding:1px 8px;border-bottom:1px solid #ddd;text-align:left"


def _swatch(colour: str) -> str:
    return (
        f'<span style="display:inline-block;width:12px;height:12px;background:{colour};'
        'border:1px solid #999;vertical-align:middle"></span>'
    )


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f'<th style="{_TD}">{html.escape(h)}</th>' for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_TD}">{c}</td>' for c in r) + "</tr>" for r in rows
    )
    return f'<table style="{_CSS}"><tr>{head}</tr>{body}</table>'


@xr.register_dataarray_accessor("pari")
class ClassRasterAccessor:
    """``da.pari``: summary, class counts, map and HTML display of a class raster."""

    def __init__(self, da: xr.DataArray) -> None:
        self._da = da

    def summary(self) -> dict[str, Any]:
        """What the raster is: title, grid, classes with cell counts, provenance."""
        from .report import as_class_raster, class_attrs, scheme_from_attrs

        da = as_class_raster(self._da)
        scheme = scheme_from_attrs(da)
        attrs = class_attrs(da)
        values, counts = np.unique(np.asarray(da.values), return_counts=True)
        cells = dict(zip(values.tolist(), counts.tolist(), strict=True))
        total = int(np.prod(da.shape))
        t = da.rio.transform()
        fallback = json.loads(attrs.get("layers_fallback", "{}") or "{}")
        return {
            "title": SCHEME_TITLES.get(scheme.name, scheme.name),
            "shape": tuple(int(n) for n in da.shape),
            "cell_size_m": float(abs(t.a)),
            "crs": str(da.rio.crs),
            "classes": [
                (c, scheme.names[c], scheme.colours[c], int(cells.get(c, 0))) for c in scheme.codes
            ],
            "nodata_cells": int(cells.get(scheme.nodata, 0)) if scheme.nodata is not None else 0,
            "total_cells": total,
            "parameters_hash": attrs.get("parameters_hash"),
            "layers_fallback": fallback,
            "version": attrs.get("pari_geo_version"),
        }

    def counts(self) -> pd.Series:
        """Cells per class code (all declared classes, zeros included)."""
        s = self.summary()
        return pd.Series({c: n for c, _, _, n in s["classes"]}, name="cells")

    def plot(self, **kwargs: Any):
        """Map with legend and scale bar (see :func:`pari_geo.plot.plot_classes`)."""
        from .plot import plot_classes

        return plot_classes(self._da, **kwargs)

    def explore(self, **kwargs: Any):
        """Interactive web map (see :func:`pari_geo.plot.explore`)."""
        from .plot import explore

        return explore(self._da, **kwargs)

    def _repr_html_(self) -> str:
        s = self.summary()
        rows = [
            [
                _swatch(col),
                str(code),
                html.escape(name),
                f"{n:,}",
                f"{100 * n / s['total_cells']:.1f}%",
            ]
            for code, name, col, n in s["classes"]
        ]
        if s["nodata_cells"]:
            rows.append(
                [
                    "",
                    "",
                    "no data",
                    f"{s['nodata_cells']:,}",
                    f"{100 * s['nodata_cells'] / s['total_cells']:.1f}%",
                ]
            )
        info = (
            f"{s['shape'][0]} × {s['shape'][1]} cells of {s['cell_size_m']:g} m · "
            f"{html.escape(s['crs'])} · parameters {s['parameters_hash']} · "
            f"pari_geo {s['version']}"
        )
        extra = ""
        if s["layers_fallback"]:
            extra = (
                "<div>fallbacks: "
                + "; ".join(
                    f"<b>{html.escape(k)}</b>: {html.escape(str(v))}"
                    for k, v in s["layers_fallback"].items()
                )
                + "</div>"
            )
        return (
            f"<div><b>{html.escape(s['title'])}</b><div>{info}</div>{extra}"
            + _table(["", "code", "class", "cells", "share"], rows)
            + "</div>"
        )


def _scale(eps: Any) -> str:
    """``300 m``, or a dash when the scale is unknown (never ``nan m``)."""
    try:
        value = float(eps)
    except (TypeError, ValueError):
        return "—"
    return f"{value:g} m" if np.isfinite(value) else "—"


@pd.api.extensions.register_dataframe_accessor("pari")
class ClusterTableAccessor:
    """``clusters.pari``: summary and HTML display of a micro-cluster table."""

    def __init__(self, df: pd.DataFrame) -> None:
        self._df = df

    def summary(self) -> pd.DataFrame:
        """Clusters, hidden clusters and rungs per scale."""
        df = self._df
        groups: Any
        if "scale_eps_m" in df.columns:
            groups = df.groupby("scale_eps_m", sort=True)
        else:  # one scale (find_microclusters), recorded in the table's attrs
            groups = [(float(df.attrs.get("eps_m", np.nan)), df)]
        rows = []
        for eps, g in groups:
            rung = g["rung"].value_counts() if "rung" in g else pd.Series(dtype=int)
            rows.append(
                {
                    "scale_eps_m": eps,
                    "clusters": len(g),
                    "hidden": int(g["hidden"].sum()) if "hidden" in g else 0,
                    "actors_in_clusters": int(g["n_actors"].sum()) if "n_actors" in g else 0,
                    **{
                        r: int(rung.get(r, 0))
                        for r in (
                            "micro",
                            "municipal",
                            "inter-municipal",
                            "national",
                            "multinational",
                        )
                    },
                }
            )
        return pd.DataFrame(rows)

    def _repr_html_(self) -> str:
        summ = self.summary()
        rows = [
            [
                _scale(r["scale_eps_m"]),
                str(r["clusters"]),
                str(r["hidden"]),
                str(r["actors_in_clusters"]),
                str(r["micro"]),
                str(r["municipal"]),
                str(r["inter-municipal"]),
            ]
            for r in summ.to_dict("records")
        ]
        top = ""
        df = self._df
        if "hidden" in df and df["hidden"].any():
            h = df[df["hidden"]].sort_values("q_value").head(5)
            trows = [
                [
                    _scale(r.get("scale_eps_m", df.attrs.get("eps_m"))),
                    str(r["cluster_id"]),
                    html.escape(str(r.get("unit_ids", ""))),
                    str(r["n_actors"]),
                    html.escape(str(r.get("sectors", "")).replace(";", ", ")),
                    f"{r['ratio']:.1f}",
                    f"{r['q_value']:.3g}",
                ]
                for _, r in h.iterrows()
            ]
            top = "<div>most significant hidden clusters</div>" + _table(
                ["scale", "cluster", "units", "actors", "sectors", "ratio", "q"], trows
            )
        return (
            "<div><b>Micro-clusters</b>"
            + _table(
                ["scale", "clusters", "hidden", "actors", "micro", "municipal", "inter-municipal"],
                rows,
            )
            + top
            + "</div>"
        )
