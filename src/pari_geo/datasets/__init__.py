"""Sample data: the bundled real Belgium grids, the synthetic Östergötland region, examples.

The Belgium grids (GHSL, CC BY 4.0, EC JRC) and municipalities (Statbel, CC BY 4.0) and the
SYNTHETIC Östergötland-shaped region ship with the package (``pari_geo/sample_data/`` of an
installed wheel; ``data/sample_grids/`` of the repository); see their ``ATTRIBUTION.md`` and
``README.md``. They work from any folder, without the network.

Examples
--------
>>> sorted(belgium_paths())
['built', 'land', 'population', 'population_100m', 'units']
>>> all(p.is_file() for p in ostergotland_paths().values())
True
>>> sorted(EXAMPLES)
['belgium', 'ostergotland']
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import ConfigError, InputError, OutputError

__all__ = [
    "sample_data_dir",
    "belgium_paths",
    "ostergotland_paths",
    "EXAMPLES",
    "copy_example",
]

_FILES = {
    "population": "POP.tif",
    "built": "BUILT_S.tif",
    "land": "LAND.tif",
    "population_100m": "westflanders_pop_100m.tif",
    "units": "units_belgium_statbel2024.gpkg",
}

_OST_FILES = {
    "population": "population.tif",
    "built_share": "built_share.tif",
    "land_share": "land_share.tif",
    "agri_share": "agri_share.tif",
    "commuting_share": "commuting_share.tif",
    "service_minutes": "service_minutes.tif",
    "municipality": "municipality.tif",
    "floor_area": "floor_area.tif",
    "jobs": "jobs.tif",
    "roads": "roads.gpkg",
    "commuting_od": "commuting_od.csv",
    "municipalities": "municipalities.gpkg",
    "actors": "actors.gpkg",
    "planted_clusters": "planted_clusters.csv",
}

EXAMPLES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "ostergotland": (
        ("ostergotland_run.toml", "ostergotland_nordic7.toml", "ostergotland_syke.toml"),
        "ostergotland",
        "SYNTHETIC Östergötland-shaped region: seven place types, then micro-clusters of "
        "20,000 actors (pari-geo run examples/ostergotland_run.toml)",
    ),
    "belgium": (
        ("belgium_degurba.toml",),
        "belgium",
        "real GHSL 1 km grids of Belgium, DEGURBA level 2 of the grid and 581 "
        "municipalities (pari-geo classify examples/belgium_degurba.toml)",
    ),
}
"""The runnable examples: name -> (run files, sample folder, description)."""

_PACKAGE = Path(__file__).resolve().parents[1]  # .../pari_geo
_BUNDLED = _PACKAGE / "sample_data"  # present in an installed wheel
_REPOSITORY = _PACKAGE.parents[1]  # the clone, for editable installs


def _data_candidates() -> list[Path]:
    candidates = []
    if os.environ.get("PARI_GEO_DATA"):
        candidates.append(Path(os.environ["PARI_GEO_DATA"]))
    candidates += [_BUNDLED, _REPOSITORY / "data", Path.cwd() / "data"]
    return candidates


def sample_data_dir() -> Path:
    """Folder holding ``sample_grids/``.

    Looked up in order: the ``PARI_GEO_DATA`` environment variable, the copy inside the
    installed package (``pari_geo/sample_data``), the repository this package was installed
    from (editable installs), and ``./data`` under the working directory.

    Returns
    -------
    pathlib.Path
        The first of these folders that holds ``sample_grids/``.

    Raises
    ------
    FileNotFoundError
        When none does (a package built without its data).

    Examples
    --------
    >>> (sample_data_dir() / "sample_grids" / "belgium" / "ATTRIBUTION.md").is_file()
    True
    """
    candidates = _data_candidates()
    for c in candidates:
        if (c / "sample_grids").is_dir():
            return c
    raise FileNotFoundError(
        "pari_geo sample data not found: reinstall pari_geo from a wheel or sdist, or set "
        f"PARI_GEO_DATA to the repository's data/ folder "
        f"(looked in {', '.join(str(c) for c in candidates)})"
    )


def _examples_dir() -> Path:
    for c in (_BUNDLED / "examples", _REPOSITORY / "examples"):
        if all((c / f).is_file() for runs, _, _ in EXAMPLES.values() for f in runs):
            return c
    raise FileNotFoundError(
        "pari_geo example run files not found: reinstall pari_geo from a wheel or sdist "
        f"(looked in {_BUNDLED / 'examples'} and {_REPOSITORY / 'examples'})"
    )


def belgium_paths() -> dict[str, Path]:
    """Paths of the bundled Belgium sample files (1 km GHSL grids, 100 m West Flanders
    population, 581 Statbel municipalities), keyed by layer.

    Returns
    -------
    dict of str to pathlib.Path
        ``population``, ``built``, ``land``, ``population_100m`` and ``units``.

    Examples
    --------
    >>> belgium_paths()["population"].name
    'POP.tif'
    """
    folder = sample_data_dir() / "sample_grids" / "belgium"
    return {k: folder / v for k, v in _FILES.items()}


def ostergotland_paths() -> dict[str, Path]:
    """Paths of the bundled SYNTHETIC Östergötland-shaped sample files, keyed by layer.

    The layers written by :func:`pari_geo.datasets.ostergotland.write_ostergotland`
    (``population``, ``built_share``, ``land_share``, ``agri_share``, ``commuting_share``,
    ``service_minutes``, ``municipality``), the activity layers of
    :mod:`pari_geo.datasets.ostergotland_activity` (``floor_area``, ``jobs`` with one band
    per sector, ``roads``, ``commuting_od``), the ``municipalities`` polygons, the 20,000
    synthetic ``actors`` and the ``planted_clusters`` table.

    Returns
    -------
    dict of str to pathlib.Path

    Examples
    --------
    >>> ostergotland_paths()["actors"].name
    'actors.gpkg'
    """
    folder = sample_data_dir() / "sample_grids" / "ostergotland"
    return {k: folder / v for k, v in _OST_FILES.items()}


def copy_example(name: str, dest: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Copy a runnable example (run files and its sample data) into a folder.

    The copy has the repository's layout, ``DEST/examples/*.toml`` reading
    ``DEST/data/sample_grids/NAME/``, so the README's commands run unchanged inside it, and
    its outputs go to ``DEST/out/``.

    Parameters
    ----------
    name : str
        One of :data:`EXAMPLES` (``ostergotland``, ``belgium``).
    dest : path-like
        Folder to create (or to fill, when empty).
    overwrite : bool, default False
        Replace the example's files in a non-empty ``dest`` (other files are left alone).

    Returns
    -------
    pathlib.Path
        The example's main run file.

    Raises
    ------
    ConfigError
        Unknown example name.
    OutputError
        ``dest`` is a file, or a non-empty folder without ``overwrite``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "ex"
    >>> run_file = copy_example("ostergotland", d)
    >>> run_file.relative_to(d).as_posix()
    'examples/ostergotland_run.toml'
    >>> (d / "data/sample_grids/ostergotland/population.tif").is_file()
    True
    """
    if name not in EXAMPLES:
        raise ConfigError(
            "example", f"unknown example {name!r}; choose one of {', '.join(sorted(EXAMPLES))}",
            what="argument",
        )
    runs, folder, _ = EXAMPLES[name]
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise OutputError(str(dest), "exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not overwrite:
        raise OutputError(str(dest), "is not empty; pass overwrite=True (--overwrite) to "
                          "copy the example into it anyway")
    source = sample_data_dir() / "sample_grids" / folder
    if not source.is_dir():
        raise InputError(str(source), None, "sample data folder missing from this install")
    examples = _examples_dir()
    try:
        (dest / "examples").mkdir(parents=True, exist_ok=True)
        for f in runs:
            shutil.copyfile(examples / f, dest / "examples" / f)
        shutil.copytree(source, dest / "data" / "sample_grids" / folder, dirs_exist_ok=True)
    except OSError as e:
        raise OutputError(str(dest), f"cannot copy the example: {e.strerror or e}") from None
    return dest / "examples" / runs[0]
