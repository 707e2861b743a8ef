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

__all__ = [
    "atomic_path",
    "atomic_dir",
    "write_class_raster",
    "read_class_raster",
    "class_tags",
    "qml_style",
    "write_qml_style",
    "metadata_tags",
    "write_table",
    "check_output",
    "clean_stale_parts",
]

#: ``last_change`` written into GeoPackages (``gpkg_contents``) so that the same table gives
#: the same bytes; ``SOURCE_DATE_EPOCH`` (reproducible-builds convention) overrides it.
GPKG_FIXED_DATE = "2000-01-01T00:00:00.000Z"


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


def _writer_errors() -> tuple[type[BaseException], ...]:
    """Exception types that GDAL/OGR/Arrow writers raise for I/O failures (disk full ...)."""
    errs: list[type[BaseException]] = [OSError]
    try:
        from rasterio._err import CPLE_BaseError
        from rasterio.errors import RasterioError

        errs += [RasterioError, CPLE_BaseError]
    except ImportError:  # pragma: no cover
        pass
    try:
        from pyogrio.errors import DataLayerError, DataSourceError

        errs += [DataSourceError, DataLayerError]
    except ImportError:  # pragma: no cover
        pass
    try:
        from pyarrow import ArrowException

        errs.append(ArrowException)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errs)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: the process exists but belongs to someone else
        return True
    return True


def clean_stale_parts(path: str | os.PathLike) -> list[Path]:
    """Remove hidden leftovers of killed writers of ``path``; return what was removed.

    Temporaries are named ``.NAME.part-PID-*`` (files and run folders being written) and
    ``.NAME.old-PID-*`` (a replaced run folder being deleted). Those whose process no
    longer runs on this machine are removed; those of a live process (a concurrent run)
    are kept. :func:`atomic_path` and :func:`atomic_dir` call this before writing.
    """
    import shutil

    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    removed: list[Path] = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return removed
    for kind in ("part", "old"):
        prefix = f".{target.name}.{kind}-"
        for q in entries:
            if not q.name.startswith(prefix):
                continue
            pid_text = q.name[len(prefix) :].split("-", 1)[0]
            if not pid_text.isdigit() or _pid_alive(int(pid_text)):
                continue
            try:
                if q.is_dir() and not q.is_symlink():
                    shutil.rmtree(q)
                else:
                    q.unlink()
            except OSError:
                continue  # not ours to remove (permissions); hidden and harmless
            removed.append(q)
    return removed


def _fsync_dir(path: Path) -> None:
    """Make a rename in folder ``path`` durable where the platform allows it."""
    try:
        dfd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open folders; the rename itself is still atomic
    try:
        os.fsync(dfd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename itself is atomic
    finally:
        os.close(dfd)


def _one_line(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    text = text.splitlines()[0] if text else ""
    return text or type(err).__name__


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it into place.

    The temporary is a hidden ``.NAME.part-PID-*`` file in the target directory (so the
    final rename never crosses file systems). On any error the temporary file is removed
    and the target is left untouched; I/O errors of the writer (``OSError``, GDAL/OGR and
    Arrow errors, e.g. a full disk) become one :class:`OutputError` naming the target.
    """
    target = check_output(path, overwrite)
    clean_stale_parts(target)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.part-{os.getpid()}-", suffix=target.suffix, dir=target.parent
        )
    except OSError as err:
        raise OutputError(str(target), f"cannot be written ({_one_line(err)})") from None
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
        _fsync_dir(target.parent)
    except OutputError:
        _remove(tmp_path)
        raise
    except _writer_errors() as err:
        _remove(tmp_path)
        raise OutputError(str(target), f"cannot be written ({_one_line(err)})") from None
    except BaseException:
        _remove(tmp_path)
        raise


@contextlib.contextmanager
def atomic_files(
    paths: list[str | os.PathLike], overwrite: bool = False
) -> Iterator[dict[Path, Path]]:
    """Several outputs that appear together or not at all.

    Yields ``{target: temporary path}`` (temporaries are hidden files beside each target,
    not yet created). When the block succeeds every temporary is fsynced and renamed onto
    its target; when it fails every temporary is removed and no target is touched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_files([d / "a.txt", d / "b.txt"]) as tmp:
    ...     for target, t in tmp.items():
    ...         _ = t.write_text(target.name)
    >>> sorted(p.name for p in d.iterdir())
    ['a.txt', 'b.txt']
    """
    targets = [check_output(p, overwrite) for p in paths]
    if len(set(targets)) != len(targets):
        raise OutputError(str(targets[0]), "the same output path is given twice")
    token = next(tempfile._get_candidate_names())  # type: ignore[attr-defined]  # noqa: SLF001
    stage = {t: t.parent / f".{t.name}.part-{os.getpid()}-{token}{t.suffix}" for t in targets}
    try:
        yield stage
        for target, tmp in stage.items():
            if not tmp.exists():
                raise OutputError(str(target), "writer produced no file")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        for target in stage:
            if target.exists() and not overwrite:
                raise OutputError(str(target), "exists; pass overwrite=True to replace it")
        for target, tmp in stage.items():
            os.replace(tmp, target)
            _fsync_dir(target.parent)
    except OutputError:
        for tmp in stage.values():
            _remove(tmp)
        raise
    except _writer_errors() as err:
        for tmp in stage.values():
            _remove(tmp)
        raise OutputError(str(targets[0]), f"cannot be written ({_one_line(err)})") from None
    except BaseException:
        for tmp in stage.values():
            _remove(tmp)
        raise


def _remove(p: Path) -> None:
    for q in (p, Path(str(p) + ".aux.xml")):
        with contextlib.suppress(OSError):
            q.unlink()


def _hex_to_rgba(h: str) -> tuple[int, int, int, int]:
    h = h.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255


def metadata_tags(values: dict[str, Any]) -> dict[str, str]:
    """GeoTIFF tags of metadata values: keys upper-cased, numbers and strings as text,
    dicts and lists as sorted JSON; other values (arrays, None) are left out.

    Examples
    --------
    >>> metadata_tags({"run_config_hash": "ab12", "n": 3, "d": {"b": 1, "a": 2}, "x": None})
    {'RUN_CONFIG_HASH': 'ab12', 'N': '3', 'D': '{"a": 2, "b": 1}'}
    """
    tags: dict[str, str] = {}
    for k, v in values.items():
        if isinstance(v, str | int | float | bool):
            tags[str(k).upper()] = str(v)
        elif isinstance(v, dict | list | tuple):
            tags[str(k).upper()] = json.dumps(v, sort_keys=True, default=str)
    return tags


def class_tags(scheme: ClassScheme) -> dict[str, str]:
    """The tags that name a class raster's classes, the same for every writer.

    ``CLASS_NAMES`` (JSON, code -> name) and ``CLASS_SCHEME`` for pari_geo, and the CF
    conventions' ``flag_values`` / ``flag_meanings`` (space-separated codes and short
    names) for other tools.

    Examples
    --------
    >>> from pari_geo.classes import DEGURBA_L1
    >>> t = class_tags(DEGURBA_L1)
    >>> t["flag_values"], t["flag_meanings"]
    ('3 2 1 0', 'urban_centre urban_cluster rural water')
    """
    return {
        "CLASS_NAMES": json.dumps({str(k): scheme.names[k] for k in scheme.codes}),
        "CLASS_SCHEME": scheme.name,
        "flag_values": " ".join(str(k) for k in scheme.codes),
        "flag_meanings": " ".join(scheme.short[k] for k in scheme.codes),
    }


def qml_style(scheme: ClassScheme) -> str:
    """A QGIS layer style (``.qml``) showing a class raster with its names and colours.

    QGIS loads ``NAME.qml`` beside ``NAME.tif`` as the layer's default style, so the
    legend lists the class names instead of the codes.

    Examples
    --------
    >>> from pari_geo.classes import NORDIC7
    >>> text = qml_style(NORDIC7)
    >>> 'label="6 Rural heartland"' in text and 'type="paletted"' in text
    True
    """
    from xml.sax.saxutils import quoteattr

    entries = "\n".join(
        f'        <paletteEntry value="{k}" color="{scheme.colours[k]}" alpha="255" '
        f"label={quoteattr(f'{k} {scheme.names[k]}')}/>"
        for k in scheme.codes
    )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28" styleCategories="Symbology">\n'
        "  <pipe>\n"
        '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" '
        'nodataColor="">\n'
        "      <colorPalette>\n"
        f"{entries}\n"
        "      </colorPalette>\n"
        "    </rasterrenderer>\n"
        "  </pipe>\n"
        "</qgis>\n"
    )


def write_qml_style(
    path: str | os.PathLike, scheme: ClassScheme, *, overwrite: bool = False
) -> Path:
    """Write :func:`qml_style` atomically to ``path`` (usually the raster's name with ``.qml``)."""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(qml_style(scheme), encoding="utf-8")
    return Path(path)


def read_class_raster(path: str | os.PathLike) -> Any:
    """Reopen a class raster written by pari_geo as the DataArray it was written from.

    2-D ``uint8`` codes with CRS, transform and no-data, and the attributes under their
    in-memory (lower-case) names, so :func:`~pari_geo.plot.plot_classes`,
    :func:`~pari_geo.plot.explore` and the ``.pari`` accessor work as on a fresh result.

    Parameters
    ----------
    path : path-like
        A GeoTIFF written by :func:`write_class_raster` or the tiled engines.

    Returns
    -------
    xarray.DataArray

    Raises
    ------
    InputError
        The file cannot be opened or is not a pari_geo class raster.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from affine import Affine
    >>> from pari_geo.grid import GridSpec
    >>> from pari_geo.classes import DEGURBA_L1
    >>> g = GridSpec("ESRI:54009", Affine(1000, 0, 0, 0, -1000, 2000), (2, 2))
    >>> da = g.to_dataarray(np.array([[3, 2], [1, 0]], np.uint8), attrs={"typology": "degurba",
    ...                                                              "level": 1})
    >>> out = write_class_raster(da, pathlib.Path(tempfile.mkdtemp()) / "l1.tif", DEGURBA_L1)
    >>> back = read_class_raster(out)
    >>> back.values.tolist(), back.attrs["class_scheme"], back.pari.counts().tolist()
    ([[3, 2], [1, 0]], 'degurba_l1', [1, 1, 1, 1])
    """
    import rasterio
    import rioxarray
    import xarray as xr

    from . import display  # noqa: F401  (registers the .pari accessor)
    from .errors import InputError

    p = Path(path)
    try:
        with rasterio.open(p) as src:
            tags = src.tags()
            nodata = src.nodata
        opened = rioxarray.open_rasterio(p, masked=False)
        if not isinstance(opened, xr.DataArray):  # several subdatasets: not a class raster
            raise InputError(str(p), None, "not a pari_geo class raster (several datasets)")
        da = opened.squeeze("band", drop=True).load()
    except (OSError, rasterio.errors.RasterioError) as err:
        raise InputError(
            str(p), None, f"cannot be read as a raster ({_one_line(err)})"
        ) from None
    if "CLASS_NAMES" not in tags:
        raise InputError(str(p), None, "not a pari_geo class raster (no CLASS_NAMES tag)")
    attrs: dict[str, Any] = {k.lower(): v for k, v in tags.items() if k != "AREA_OR_POINT"}
    if "level" in attrs:
        with contextlib.suppress(ValueError):
            attrs["level"] = int(attrs["level"])
    attrs["source"] = str(p)
    da = da.astype(np.uint8)
    da.attrs = attrs
    da.rio.write_nodata(nodata, inplace=True)
    return da


def write_class_raster(
    da: Any,
    path: str | os.PathLike,
    scheme: ClassScheme,
    *,
    overwrite: bool = False,
    tags: dict[str, Any] | None = None,
    style: bool = True,
) -> Path:
    """Write a class raster as a tiled, deflate-compressed COG (``uint8``) with colours.

    The file carries the scheme's colour table, the class names (``CLASS_NAMES`` tag,
    CF ``flag_values``/``flag_meanings`` tags and band description), and as metadata tags
    every string attribute of ``da`` (resolved parameters, parameters hash, library version)
    plus ``tags``. No timestamps are written, so the same result gives the same bytes.
    With ``style`` a QGIS style ``NAME.qml`` beside it shows the class names in QGIS.
    :func:`read_class_raster` reopens it.

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
    style : bool, default True
        Also write the QGIS style ``path`` with suffix ``.qml``.

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
    all_tags = metadata_tags({**da.attrs, **(tags or {})})
    all_tags.update(class_tags(scheme))
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
    if style:
        write_qml_style(Path(path).with_suffix(".qml"), scheme, overwrite=overwrite)
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
            with _fixed_ogr_date():  # no clock time in gpkg_contents.last_change
                df.to_file(tmp, driver="GPKG", layer=layer or p.stem, **kwargs)
        elif suffix == ".parquet":
            try:
                import pyarrow.parquet  # noqa: F401
            except ImportError as exc:
                raise OutputError(str(p), "writing GeoParquet needs pyarrow "
                                  "(python -m pip install pyarrow)") from exc
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
def _fixed_ogr_date() -> Iterator[None]:
    """Make OGR stamp ``gpkg_contents.last_change`` with a fixed date, not the clock.

    GDAL takes this timestamp from the ``OGR_CURRENT_DATE`` config option when set; it is
    set only for the duration of the write and restored afterwards.
    """
    import pyogrio

    date = GPKG_FIXED_DATE
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        import datetime as _dt

        t = _dt.datetime.fromtimestamp(int(epoch), tz=_dt.UTC)
        date = t.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": date})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging folder beside ``path``; on success it replaces ``path`` as a whole.

    Missing parent folders are created (and removed again if the run fails).

    A run directory therefore appears complete or not at all: on error the staging folder
    is removed; after a kill only a hidden ``.NAME.part-PID-*`` folder can remain, never a
    half-filled ``NAME``, and the next write of ``NAME`` removes it (see
    :func:`clean_stale_parts`). Every file and folder is fsynced before the rename.
    """
    import shutil

    target = Path(path)
    parent = target.parent
    created: list[Path] = []  # parents made here, removed again on failure
    if not parent.exists():
        missing = [q for q in [parent, *parent.parents] if not q.exists()]
        try:
            parent.mkdir(parents=True)
        except OSError as err:
            raise OutputError(
                str(target), f"cannot create parent directory ({err.strerror})"
            ) from None
        created = sorted(missing, key=lambda q: len(q.parts), reverse=True)
    if not parent.is_dir():
        raise OutputError(str(target), f"parent {str(parent)!r} is not a directory")
    if not os.access(parent, os.W_OK):
        raise OutputError(str(target), f"parent directory {str(parent)!r} is not writable")
    if target.exists() and not overwrite:
        raise OutputError(str(target), "exists; pass overwrite=True (--overwrite) to replace it")
    if target.exists() and not target.is_dir():
        raise OutputError(str(target), "exists and is not a directory")
    clean_stale_parts(target)
    pid = os.getpid()
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.part-{pid}-", dir=parent))
    except OSError as err:
        _rmdirs(created)
        raise OutputError(str(target), f"cannot be written ({_one_line(err)})") from None
    try:
        yield stage
        for f in sorted(stage.rglob("*")):
            if f.is_file() and not f.is_symlink():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        for d in sorted((q for q in stage.rglob("*") if q.is_dir()), reverse=True):
            _fsync_dir(d)
        _fsync_dir(stage)
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{pid}-", dir=parent))
            os.replace(target, old / target.name)
        try:
            os.replace(stage, target)
        except BaseException:
            if old is not None:  # put the previous run back
                os.replace(old / target.name, target)
                old.rmdir()
            raise
        _fsync_dir(parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)  # hidden; clean_stale_parts retries
    except OutputError:
        shutil.rmtree(stage, ignore_errors=True)
        _rmdirs(created)
        raise
    except OSError as err:
        shutil.rmtree(stage, ignore_errors=True)
        _rmdirs(created)
        raise OutputError(str(target), f"cannot be written ({_one_line(err)})") from None
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        _rmdirs(created)
        raise


def _rmdirs(dirs: list[Path]) -> None:
    """Remove folders this module created (deepest first) while they are empty."""
    for d in dirs:
        with contextlib.suppress(OSError):
            d.rmdir()
