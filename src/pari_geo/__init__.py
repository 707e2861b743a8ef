"""pari_geo: place typologies and micro-cluster detection for rural regions.

The public API is grouped by pipeline stage (ingest → align → typology → clustering →
report). Names are imported lazily, so ``import pari_geo`` does not load numba, rasterio or
matplotlib until a function that needs them is used.

Examples
--------
>>> import pari_geo
>>> pari_geo.__version__
'0.1.0'
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

# public name -> module that defines it
_LAZY: dict[str, str] = {
    # errors
    "PariGeoError": "pari_geo.errors",
    "InputError": "pari_geo.errors",
    "ConfigError": "pari_geo.errors",
    "OutputError": "pari_geo.errors",
    "SchedulerError": "pari_geo.errors",
    # ingest / grid / align
    "open_raster": "pari_geo.ingest",
    "open_units": "pari_geo.ingest",
    "open_actors": "pari_geo.ingest",
    "GridSpec": "pari_geo.grid",
    "align_to_grid": "pari_geo.align",
    # prepare (downloaded files -> a run folder)
    "prepare": "pari_geo.preparation",
    # typology
    "DegurbaParams": "pari_geo.config",
    "classify_grid": "pari_geo.typology.degurba",
    "optimal_built_threshold": "pari_geo.typology.degurba",
    "classify_units": "pari_geo.typology.units",
    "classify_nordic7": "pari_geo.typology.classify",
    "Nordic7Params": "pari_geo.typology.nordic7",
    "minutes_to": "pari_geo.typology.travel_time",
    # out of core (grids and point sets larger than memory)
    "classify_grid_chunked": "pari_geo.outofcore.degurba",
    "ChunkedResult": "pari_geo.outofcore.degurba",
    "classify_nordic7_tiled": "pari_geo.outofcore.nordic7",
    "Nordic7TiledResult": "pari_geo.outofcore.nordic7",
    "minutes_to_tiled": "pari_geo.outofcore.travel_time",
    "label_tiled": "pari_geo.outofcore.components",
    "TiledComponents": "pari_geo.outofcore.components",
    # clustering
    "DBSCAN": "pari_geo.clustering",
    "dbscan": "pari_geo.clustering",
    "find_microclusters": "pari_geo.clustering.actors",
    "label_actors": "pari_geo.clustering.actors",
    "ladder": "pari_geo.clustering.ladder",
    "dbscan_partitioned": "pari_geo.clustering.partitioned",
    "dbscan_partitioned_dask": "pari_geo.clustering.partitioned",
    # output
    "write_class_raster": "pari_geo.io_write",
    "write_table": "pari_geo.io_write",
    "plot_classes": "pari_geo.plot",
    "plot_place_types": "pari_geo.plot",
    "plot_units": "pari_geo.plot",
    "explore": "pari_geo.plot",
    "population_by_class": "pari_geo.report",
    "residents_by_unit_and_class": "pari_geo.report",
    # sample data
    "belgium_paths": "pari_geo.datasets",
    "make_ostergotland": "pari_geo.datasets.ostergotland",
    "make_actors": "pari_geo.datasets.actors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'pari_geo' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
