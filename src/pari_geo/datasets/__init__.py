"""Sample data: the bundled real Belgium grids and synthetic generated regions.

The Belgium grids (GHSL, CC BY 4.0, EC JRC) and municipalities (Statbel, CC BY 4.0) live in
``data/sample_grids/belgium/`` of the repository; see its ``ATTRIBUTION.md``.

Examples
--------
>>> sorted(belgium_paths())
['built', 'land', 'population', 'population_100m', 'units']
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["sample_data_dir", "belgium_paths"]

_FILES = {
    "population": "POP.tif",
    "built": "BUILT_S.tif",
    "land": "LAND.tif",
    "population_100m": "westflanders_pop_100m.tif",
    "units": "units_belgium_statbel2024.gpkg",
}


def sample_data_dir() -> Path:
    """Folder holding ``sample_grids/``.

    Looked up in order: the ``PARI_GEO_DATA`` environment variable, the repository this
    package was installed from (editable installs), and ``./data`` under the working
    directory.
    """
    candidates = []
    if os.environ.get("PARI_GEO_DATA"):
        candidates.append(Path(os.environ["PARI_GEO_DATA"]))
    candidates.append(Path(__file__).resolve().parents[3] / "data")
    candidates.append(Path.cwd() / "data")
    for c in candidates:
        if (c / "sample_grids").is_dir():
            return c
    raise FileNotFoundError(
        "pari_geo sample data not found: set PARI_GEO_DATA to the repository's data/ folder "
        f"(looked in {', '.join(str(c) for c in candidates)})"
    )


def belgium_paths() -> dict[str, Path]:
    """Paths of the bundled Belgium sample files (1 km GHSL grids, 100 m West Flanders
    population, 581 Statbel municipalities), keyed by layer.
    """
    folder = sample_data_dir() / "sample_grids" / "belgium"
    return {k: folder / v for k, v in _FILES.items()}
