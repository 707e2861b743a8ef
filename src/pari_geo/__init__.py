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

from typing import TYPE_CHECKING

from . import display as _display  # noqa: F401  (registers the .pari accessors, see below)
from ._lazy import lazy_exports
from ._version import __version__

# The ``.pari`` accessors of class rasters and cluster tables (``display``) are
# presentation: the stages that make those objects (grid, typology, clustering, io_write)
# never import it. Importing the package registers them, once, for every result.

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
    "Roads": "pari_geo.preparation.roads",
    # calibration against a reference classification
    "calibrate": "pari_geo.typology.calibrate",
    "Calibration": "pari_geo.typology.calibrate",
    "compare_classes": "pari_geo.typology.agreement",
    "ClassAgreement": "pari_geo.typology.agreement",
    "reference_on_grid": "pari_geo.typology.agreement",
    # out of core (grids and point sets larger than memory)
    "classify_grid_chunked": "pari_geo.typology.degurba_tiled",
    "ChunkedResult": "pari_geo.typology.degurba_tiled",
    "classify_nordic7_tiled": "pari_geo.typology.nordic7_tiled",
    "Nordic7TiledResult": "pari_geo.typology.nordic7_tiled",
    "minutes_to_tiled": "pari_geo.outofcore.travel_time",
    "label_tiled": "pari_geo.outofcore.components",
    "TiledComponents": "pari_geo.outofcore.components",
    # clustering
    "DBSCAN": "pari_geo.clustering",
    "dbscan": "pari_geo.clustering",
    "dbscan_labels": "pari_geo.clustering",
    "find_microclusters": "pari_geo.clustering.actors",
    "label_actors": "pari_geo.clustering.actors",
    "ladder": "pari_geo.clustering.ladder",
    "hidden_candidates": "pari_geo.clustering.ladder",
    "CLUSTER_DEFAULTS": "pari_geo.clustering.options",
    "dbscan_partitioned": "pari_geo.clustering.partitioned",
    "dbscan_partitioned_dask": "pari_geo.clustering.partitioned",
    # output
    "write_class_raster": "pari_geo.io_write",
    "read_class_raster": "pari_geo.io_write",
    "write_table": "pari_geo.io_write",
    "plot_classes": "pari_geo.plot",
    "plot_place_types": "pari_geo.plot",
    "plot_units": "pari_geo.plot",
    "explore": "pari_geo.plot",
    "population_by_class": "pari_geo.report",
    "residents_by_unit_and_class": "pari_geo.report",
    # sample data
    "belgium_paths": "pari_geo.datasets",
    "ostergotland_paths": "pari_geo.datasets",
    "copy_example": "pari_geo.datasets",
    "make_ostergotland": "pari_geo.datasets.ostergotland",
    "make_actors": "pari_geo.datasets.actors",
    "planted_region": "pari_geo.datasets.planted",
    "detection_scores": "pari_geo.datasets.planted",
}

if TYPE_CHECKING:  # the lazy names, as type checkers and IDEs see them
    from .align import align_to_grid as align_to_grid
    from .clustering import DBSCAN as DBSCAN, dbscan as dbscan, dbscan_labels as dbscan_labels
    from .clustering.actors import (
        find_microclusters as find_microclusters,
        label_actors as label_actors,
    )
    from .clustering.ladder import hidden_candidates as hidden_candidates, ladder as ladder
    from .clustering.options import CLUSTER_DEFAULTS as CLUSTER_DEFAULTS
    from .clustering.partitioned import (
        dbscan_partitioned as dbscan_partitioned,
        dbscan_partitioned_dask as dbscan_partitioned_dask,
    )
    from .config import DegurbaParams as DegurbaParams
    from .datasets import (
        belgium_paths as belgium_paths,
        copy_example as copy_example,
        ostergotland_paths as ostergotland_paths,
    )
    from .datasets.actors import make_actors as make_actors
    from .datasets.ostergotland import make_ostergotland as make_ostergotland
    from .preparation import prepare as prepare
    from .preparation.roads import Roads as Roads
    from .typology.agreement import (
        ClassAgreement as ClassAgreement,
        compare_classes as compare_classes,
        reference_on_grid as reference_on_grid,
    )
    from .typology.calibrate import Calibration as Calibration, calibrate as calibrate
    from .datasets.planted import (
        detection_scores as detection_scores,
        planted_region as planted_region,
    )
    from .errors import (
        ConfigError as ConfigError,
        InputError as InputError,
        OutputError as OutputError,
        PariGeoError as PariGeoError,
        SchedulerError as SchedulerError,
    )
    from .grid import GridSpec as GridSpec
    from .ingest import (
        open_actors as open_actors,
        open_raster as open_raster,
        open_units as open_units,
    )
    from .io_write import (
        read_class_raster as read_class_raster,
        write_class_raster as write_class_raster,
        write_table as write_table,
    )
    from .outofcore.components import TiledComponents as TiledComponents, label_tiled as label_tiled
    from .typology.degurba_tiled import (
        ChunkedResult as ChunkedResult,
        classify_grid_chunked as classify_grid_chunked,
    )
    from .typology.nordic7_tiled import (
        Nordic7TiledResult as Nordic7TiledResult,
        classify_nordic7_tiled as classify_nordic7_tiled,
    )
    from .outofcore.travel_time import minutes_to_tiled as minutes_to_tiled
    from .plot import (
        explore as explore,
        plot_classes as plot_classes,
        plot_place_types as plot_place_types,
        plot_units as plot_units,
    )
    from .report import (
        population_by_class as population_by_class,
        residents_by_unit_and_class as residents_by_unit_and_class,
    )
    from .typology.classify import classify_nordic7 as classify_nordic7
    from .typology.degurba import (
        classify_grid as classify_grid,
        optimal_built_threshold as optimal_built_threshold,
    )
    from .typology.nordic7 import Nordic7Params as Nordic7Params
    from .typology.travel_time import minutes_to as minutes_to
    from .typology.units import classify_units as classify_units

__all__ = ["__version__", *_LAZY]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
