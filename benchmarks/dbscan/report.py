"""Render ``results.json`` (from ``run.py``) as the Markdown tables of the README.

Usage::

    python benchmarks/dbscan/report.py [benchmarks/dbscan/results.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PEERS = ["pari_geo", "dbscan", "sklearn", "fast_hdbscan"]


def main(path: str | None = None) -> None:
    path = path or str(Path(__file__).resolve().parent / "results.json")
    data = json.loads(Path(path).read_text())
    res = [r for r in data["results"] if r["peer"] != "check" and "median_s" in r]
    checks = {r["n"]: r for r in data["results"] if r["peer"] == "check"}
    sizes = sorted({r["n"] for r in res})
    get = {(r["peer"], r["n"]): r for r in res}

    print(
        "| n | " + " | ".join(f"{p} (s)" for p in PEERS) + " | pari_geo / dbscan "
        "| dbscan / pari_geo | sklearn / pari_geo |"
    )
    print("|---|" + "---|" * (len(PEERS) + 3))
    for n in sizes:
        cells = []
        for p in PEERS:
            r = get.get((p, n))
            cells.append("—" if r is None else f"{r['median_s']:.3f}")
        pg = get.get(("pari_geo", n))
        wg = get.get(("dbscan", n))
        sk = get.get(("sklearn", n))
        r1 = f"{pg['median_s'] / wg['median_s']:.2f}×" if pg and wg else "—"
        r2 = f"{wg['median_s'] / pg['median_s']:.1f}×" if pg and wg else "—"
        r3 = f"{sk['median_s'] / pg['median_s']:.0f}×" if pg and sk else "—"
        print(f"| {n:.0e} | " + " | ".join(cells) + f" | {r1} | {r2} | {r3} |")

    print()
    print(
        "| n | peer | runs | peak RSS (MiB) | base RSS (MiB) | peak − base (MiB) | points (MiB) |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        for p in PEERS:
            r = get.get((p, n))
            if r is None:
                continue
            print(
                f"| {n:.0e} | {p} | {len(r['times_s'])} | {r['peak_rss_mib']:.0f} | "
                f"{r['base_rss_mib']:.0f} | {r['peak_over_base_mib']:.0f} | "
                f"{n * 16 / 2**20:.0f} |"
            )

    print()
    print(
        "| n | clusters | noise share | labels == sklearn | core == sklearn "
        "| core == dbscan | core partition == dbscan |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        c = checks.get(n, {})
        pg = get.get(("pari_geo", n), {})

        def f(k, c=c):
            return {True: "yes", False: "**NO**"}.get(c.get(k), "—")

        print(
            f"| {n:.0e} | {pg.get('n_clusters', '—')} | {pg.get('noise_share', 0):.3f} | "
            f"{f('labels_equal_sklearn')} | {f('core_equal_sklearn')} | "
            f"{f('core_equal_dbscan')} | {f('core_partition_equal_dbscan')} |"
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
