"""Out-of-core (tiled) processing of grids too large for memory.

* :mod:`~pari_geo.outofcore.components`: connected components of a mask stored by tiles
  (union-find across tile seams), with per-component sums, counts and bounding boxes;
* :mod:`~pari_geo.outofcore.ops`: the grid operations the typologies' rules are written
  against, and their engines :mod:`~pari_geo.outofcore.memory` (whole arrays) and
  :mod:`~pari_geo.outofcore.tiled` (tiles and raw files; dask tasks with a scheduler);
  the DEGURBA rules run on them from :mod:`pari_geo.typology.degurba_rules` (by tiles:
  :func:`pari_geo.classify_grid_chunked`);
  the place-type rules from :mod:`pari_geo.typology.nordic7` (by tiles:
  :func:`pari_geo.classify_nordic7_tiled`);
* :mod:`~pari_geo.outofcore.travel_time`: least-cost travel minutes in memory and by
  tiles (one Dijkstra kernel); :mod:`~pari_geo.outofcore.windows`: window means;
  :mod:`~pari_geo.outofcore.component_tables`: tables over components.

Submodules are imported on first use (no numba compilation at import).
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__ = [
    "minutes_to_tiled",
    "label_tiled",
    "TiledComponents",
]

_WHERE = {
    "minutes_to_tiled": ".travel_time",
    "label_tiled": ".components",
    "TiledComponents": ".components",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals(),
                                    sorted(set(globals()) | set(__all__)))
