"""Atomic writers: class rasters as Cloud-Optimised GeoTIFF, tables as CSV/GeoPackage/GeoParquet.

Every writer builds the output in a temporary file *in the target directory*, flushes it
to disk and renames it into place, so a crash never leaves a half-written file under the
final name. An existing output is only replaced with ``overwrite=True``.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> from affine import Affine
>>> from pari_geo.grid import GridSpec
>>> from pari_geo.classes import DEGURBA_L1
>>> g = GridSpec("ESRI:54009", Affine(1000, 0, 0, 0, -1000, 2000), (2, 2))
>>> da = g.to_dataarray(np.array([[3, 2], [1, 0]], np.uint8))
>>> out = pathlib.Path(tempfile.mkdtemp()) / "l1.tif"
>>> write_class_raster(da, out, DEGURBA_L1).name
'l1.tif'
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .classes import ClassScheme
from .errors import OutputError

__all__ = ["atomic_path", "atomic_dir", "write_class_raster", "write_table", "check_output"]


def check_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an existing output (unless ``overwrite``) or a missing/read-only directory."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(str(p), f"output directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(str(p), f"output directory {str(parent)!r} is not writable")
    if p.exists() and not overwrite:
        raise OutputError(str(p), "exists; pass overwrite=True (--overwrite) to replace it")
    if p.is_dir():
        raise OutputError(str(p), "is a directory")
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it into place.

    On any error the temporary file is removed and the target is left untouched.
    """
    target = check_output(path, overwrite)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".part{target.suffix}", dir=target.parent
    )
    os.close(fd)
    os.unlink(tmp)  # writers (GDAL, OGR) want to create the file themselves
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if not tmp_path.exists():
            raise OutputError(str(target), "writer produced no file")
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        if target.exists() and not overwrite:  # appeared meanwhile
            raise OutputError(str(target), "exists; pass overwrite=True to replace it")
        os.replace(tmp_path, target)
        with contextlib.suppress(OSError):  # make the rename durable where supported
            dfd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except OSError as err:
        _remove(tmp_path)
        if isinstance(err, OutputError):
            raise
        raise OutputError(str(target), f"cannot be written ({err.strerror or err})") from None
    except BaseException:
        _remove(tmp_path)
        raise


def _remove(p: Path) -> None:
    for q in (p, Path(str(p) + ".aux.xml")):
        with contextlib.suppress(OSError):
            q.unlink()


def _hex_to_rgba(h: str) -> tuple[int, int, int, int]:
    h = h.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255


def write_class_raster(
    da: Any,
    path: str | os.PathLike,
    scheme: ClassScheme,
    *,
    overwrite: bool = False,
    tags: dict[str, Any] | None = None,
) -> Path:
    """Write a class raster as a tiled, deflate-compressed COG (``uint8``) with colours.

    The file carries the scheme's colour table, the class names (``CLASS_NAMES`` tag and
    band description), and as metadata tags every string attribute of ``da`` (resolved
    parameters, parameters hash, library version) plus ``tags``. No timestamps are written,
    so the same result gives the same bytes.

    Parameters
    ----------
    da : xarray.DataArray
        2-D ``uint8`` classes with a CRS and transform.
    path : path-like
    scheme : ClassScheme
        Codes, names and colours (use ``scheme.with_codes`` for custom codes).
    overwrite : bool, default False
    tags : dict, optional
        Extra metadata tags.

    Returns
    -------
    pathlib.Path
    """
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as rio_copy

    values = np.asarray(da.values)
    if values.ndim != 2:
        raise ValueError("write_class_raster needs a 2-D array")
    data = values.astype(np.uint8)
    all_tags: dict[str, str] = {}
    for k, v in {**da.attrs, **(tags or {})}.items():
        if isinstance(v, str | int | float | bool):
            all_tags[str(k).upper()] = str(v)
        elif isinstance(v, dict | list | tuple):
            all_tags[str(k).upper()] = json.dumps(v, sort_keys=True, default=str)
    all_tags["CLASS_NAMES"] = json.dumps({str(k): scheme.names[k] for k in scheme.codes})
    all_tags["CLASS_SCHEME"] = scheme.name
    colormap = {code: _hex_to_rgba(scheme.colours[code]) for code in scheme.codes}
    if scheme.nodata is not None:
        colormap[scheme.nodata] = (0, 0, 0, 0)
    profile = {
        "driver": "GTiff",
        "height": data.shape[0],
        "width": data.shape[1],
        "count": 1,
        "dtype": "uint8",
        "crs": da.rio.crs,
        "transform": da.rio.transform(),
    }
    if scheme.nodata is not None:
        profile["nodata"] = scheme.nodata
    with atomic_path(path, overwrite) as tmp, MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data, 1)
            dst.write_colormap(1, colormap)
            dst.update_tags(**all_tags)
            dst.set_band_description(1, scheme.name)
        with mem.open() as src:
            rio_copy(
                src,
                str(tmp),
                driver="COG",
                compress="DEFLATE",
                blocksize=256,
                overview_resampling="NEAREST",
                overviews="AUTO",
            )
        with rasterio.open(tmp) as chk:  # fail loudly if GDAL dropped the palette
            if chk.count != 1:
                raise OutputError(str(path), "COG writer produced an unexpected layout")
    return Path(path)


def write_table(
    df: Any,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    layer: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a (Geo)DataFrame atomically; the format follows the suffix.

    ``.csv`` (geometry dropped), ``.gpkg`` (GeoPackage; ``metadata`` becomes layer
    metadata), ``.parquet`` (GeoParquet; ``metadata`` goes into the schema metadata).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    with atomic_path(p, overwrite) as tmp:
        if suffix == ".csv":
            frame = df.drop(columns="geometry") if "geometry" in getattr(df, "columns", []) else df
            frame.to_csv(tmp, index=False, lineterminator="\n")
        elif suffix == ".gpkg":
            kwargs = {"metadata": metadata} if metadata else {}
            df.to_file(tmp, driver="GPKG", layer=layer or p.stem, **kwargs)
        elif suffix == ".parquet":
            df.to_parquet(tmp, index=False)
            if metadata:
                import pyarrow.parquet as pq

                table = pq.read_table(tmp)
                extra = {k.encode(): str(v).encode() for k, v in metadata.items()}
                table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
                pq.write_table(table, tmp)
        else:
            raise OutputError(str(p), "unknown table format; use .csv, .gpkg or .parquet")
    return p


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging folder beside ``path``; on success it replaces ``path`` as a whole.

    Missing parent folders are created.

    A run directory therefore appears complete or not at all: on error (or a kill) only a
    hidden ``.NAME.part-*`` folder can remain, never a half-filled ``NAME``.
    """
    import shutil

    target = Path(path)
    parent = target.parent
    if not parent.exists():
        try:
            parent.mkdir(parents=True)
        except OSError as err:
            raise OutputError(
                str(target), f"cannot create parent directory ({err.strerror})"
            ) from None
    if not parent.is_dir():
        raise OutputError(str(target), f"parent {str(parent)!r} is not a directory")
    if not os.access(parent, os.W_OK):
        raise OutputError(str(target), f"parent directory {str(parent)!r} is not writable")
    if target.exists() and not overwrite:
        raise OutputError(str(target), "exists; pass overwrite=True (--overwrite) to replace it")
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.part-", dir=parent))
    try:
        yield stage
        for f in stage.iterdir():
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=parent))
            os.replace(target, old / target.name)
        os.replace(stage, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
