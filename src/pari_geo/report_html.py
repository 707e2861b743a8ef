"""``report.html``: the planner's report of ``pari-geo run``, one self-contained page.

Everything a planner needs to open in a browser or mail on: the place-type map and the
cluster map (inlined PNGs), residents per place type, clusters per scale and rung, the hidden
rural micro-clusters with their municipalities, and one row per municipality. The page
loads nothing from elsewhere (no scripts, fonts or remote images) and has no timestamp, so
the same run gives the same bytes.

Examples
--------
>>> import pandas as pd
>>> page = planner_html(title="Demo", meta=["run file demo.toml"], synthetic={},
...                     sections=[("Residents", pd.DataFrame({"a": [1]}))], images={})
>>> page.startswith("<!DOCTYPE html>") and "<script" not in page
True
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import pandas as pd

from .io_write import TEXT_MARKER

__all__ = ["planner_html", "write_planner_report"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;
border-bottom:1px solid #ccc}
.meta{color:#555;font-size:.9em}
.synthetic{background:#fff3cd;border:1px solid #e0c36a;padding:.6em 1em;margin:1em 0}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border-bottom:1px solid #ddd;padding:2px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
img{max-width:100%;height:auto;border:1px solid #ddd}
"""


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, border=0, na_rep="", float_format=lambda v: f"{v:,.2f}",
                      escape=True)


def planner_html(
    *,
    title: str,
    meta: list[str],
    synthetic: dict[str, str],
    sections: list[tuple[str, Any]],
    images: dict[str, bytes],
) -> str:
    """The page: a title, meta lines, a synthetic-data banner and sections.

    Parameters
    ----------
    title : str
    meta : list of str
        One line each under the title (run file, version, parameters).
    synthetic : dict
        Synthetic inputs (``pipeline.synthetic_inputs``); a banner when not empty.
    sections : list of (heading, content)
        Content is a DataFrame (a table), a str (a paragraph, escaped) or the key of
        ``images`` prefixed with ``"image:"``.
    images : dict of str to bytes
        PNG bytes, inlined as ``data:`` URLs.

    Returns
    -------
    str
        The HTML document.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="{TEXT_MARKER}">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        *[f'<div class="meta">{html.escape(m)}</div>' for m in meta],
    ]
    if synthetic:
        parts.append(
            '<div class="synthetic"><b>Synthetic data.</b> This report was made from '
            f"synthetic inputs ({html.escape(', '.join(sorted(synthetic)))}): places, actors "
            "and clusters are invented, not observed.</div>"
        )
    for heading, content in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(content, pd.DataFrame):
            parts.append(_table(content) if len(content) else "<p>None.</p>")
        elif isinstance(content, str) and content.startswith("image:"):
            key = content[len("image:"):]
            data = base64.b64encode(images[key]).decode("ascii")
            parts.append(f'<img alt="{html.escape(heading)}" src="data:image/png;base64,'
                         f'{data}">')
        else:
            parts.append(f"<p>{html.escape(str(content))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _place_type_name(scheme: Any, code: Any) -> str:
    """The class name of a dominant place type, empty when there is none (NA)."""
    try:
        return str(scheme.names.get(int(code), ""))
    except (TypeError, ValueError):
        return ""


def write_planner_report(
    path: Path,
    cfg: Any,
    *,
    table: pd.DataFrame,
    munis: pd.DataFrame,
    clusters: pd.DataFrame,
    id_col: str,
    scheme: Any,
    stage: Path,
    synthetic: dict[str, str],
    rural_codes: tuple[int, ...] = (),
) -> Path:
    """Write ``report.html`` of a full run from the tables and maps already in ``stage``.

    ``synthetic`` names the inputs marked as synthetic data (a banner when not empty);
    ``rural_codes`` are the classes whose hidden clusters are listed (empty: every hidden
    cluster).
    """
    from ._version import __version__

    c = cfg.clusters
    scales = ", ".join(f"{e:g} m" for e in c["eps_m"])
    meta = [
        f"Run file {cfg.source.name} · pari_geo {__version__} · typology {cfg.typology}",
        f"Micro-clusters at {scales} · min_actors {c['min_actors']} · n_sim {c['n_sim']} · "
        f"alpha {c['alpha']} · seed {c['random_state']}",
    ]
    names = (dict(zip(munis[id_col].astype(str), munis["name"], strict=True))
             if "name" in munis.columns else {})
    per_class = table[[k for k in ("code", "name", "cells", "area_km2", "population")
                       if k in table.columns]]
    rows = []
    for eps in sorted(clusters["scale_eps_m"].unique()) if len(clusters) else []:
        at = clusters[clusters["scale_eps_m"] == eps]
        rc = at["rung"].value_counts()
        rows.append({"scale": f"{eps:g} m", "clusters": len(at),
                     "hidden": int(at["hidden"].sum()),
                     **{r: int(rc.get(r, 0)) for r in ("micro", "municipal", "inter-municipal",
                                                       "national", "multinational")}})
    hidden = clusters[clusters["hidden"]] if len(clusters) else clusters
    if rural_codes and len(hidden):
        hidden = hidden[hidden["dominant_place_type"].isin(rural_codes)]
    hidden_rows = [
        {"scale": f"{r.scale_eps_m:g} m", "cluster": r.cluster_id,
         "municipalities": ", ".join(names.get(k, k) for k in str(r.unit_ids).split(";") if k),
         "rung": r.rung, "actors": r.n_actors,
         "sectors": str(r.sectors).replace(";", ", "),
         "place type": _place_type_name(scheme, r.dominant_place_type),
         "expected": r.expected, "ratio": r.ratio, "q": r.q_value}
        for r in hidden.sort_values(["scale_eps_m", "q_value", "cluster_id"]).itertuples()
    ] if len(hidden) else []
    keep = [k for k in (id_col, "name", "residents", "actors", "actors_per_1000_residents")
            if k in munis.columns]
    keep += [k for k in munis.columns if k.startswith("hidden_")]
    images = {k: (stage / f).read_bytes() for k, f in
              (("place_types", "place_types.png"), ("clusters", "clusters_map.png"))
              if (stage / f).is_file()}
    sections: list[tuple[str, Any]] = []
    if "place_types" in images:
        sections.append(("Place types", "image:place_types"))
    sections += [
        ("Residents per place type", per_class),
        ("Micro-clusters per scale and Cluster Ladder rung", pd.DataFrame(rows)),
        ("Hidden rural micro-clusters: candidate clusters of social and ecological innovation",
         "Clusters of actors that stand out against their municipality (Monte Carlo test "
         "against actors spread in proportion to residents, Benjamini–Hochberg "
         f"q ≤ {c['alpha']}) in municipalities whose overall actor rate is ordinary, so "
         "that municipal statistics do not show them."),
        ("Hidden rural micro-clusters", pd.DataFrame(hidden_rows)),
    ]
    if "clusters" in images:
        sections.append(("Micro-clusters on the place types (hidden in black)",
                         "image:clusters"))
    sections.append(("Municipalities", munis[keep]))
    page = planner_html(title="Place types and hidden micro-clusters", meta=meta,
                        synthetic=synthetic, sections=sections, images=images)
    path.write_text(page, encoding="utf-8")
    return path
