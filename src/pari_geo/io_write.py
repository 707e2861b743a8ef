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
import errno
import json
import os
import re
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
    "fixed_gpkg_date",
    "check_output",
    "check_not_inputs",
    "claim_output",
    "written_by_pari_geo",
    "scratch_dir",
    "clean_stale_parts",
]

#: ``last_change`` written into GeoPackages (``gpkg_contents``) so that the same table gives
#: the same bytes; ``SOURCE_DATE_EPOCH`` (reproducible-builds convention) overrides it.
GPKG_FIXED_DATE = "2000-01-01T00:00:00.000Z"


def check_output(
    path: str | os.PathLike, overwrite: bool, protect: tuple | list = ()
) -> Path:
    """Refuse an output that cannot or must not be written.

    A missing or read-only directory, an output that is, contains or lies inside one of
    ``protect`` (the inputs, the run file; see :func:`check_not_inputs`), an existing
    output without ``overwrite``, and with ``overwrite`` an existing file that pari_geo did
    not write (:func:`written_by_pari_geo`).
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(str(p), f"output directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(str(p), f"output directory {str(parent)!r} is not writable")
    check_not_inputs(p, protect)
    if p.is_dir():
        raise OutputError(str(p), "is a directory")
    if p.exists() and not overwrite:
        raise OutputError(str(p), "exists; pass overwrite=True (--overwrite) to replace it")
    if p.exists():
        why = _not_ours(p)
        if why:
            raise OutputError(str(p), f"exists and was not written by pari_geo ({why}); "
                              "--overwrite replaces only pari_geo's own outputs: move it "
                              "away or choose another output")
    return p


def _identity(p: Path) -> tuple[int, int] | None:
    try:
        st = p.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _chain(p: Path) -> list[tuple[Path, tuple[int, int] | None]]:
    """``p`` and its parents, each with its (device, inode) where it exists."""
    p = Path(os.path.abspath(p))
    return [(q, _identity(q)) for q in (p, *p.parents)]


def check_not_inputs(output: str | os.PathLike, protect: tuple | list = ()) -> None:
    """Refuse an output that is, contains or lies inside one of the ``protect`` paths.

    Paths are compared resolved (symbolic links followed) and by inode, so a hard link,
    a bind mount or another spelling of the same file or folder is recognised.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "POP.tif").write_bytes(b"x")
    >>> check_not_inputs(d / "out", [d / "POP.tif"])  # beside the input: fine
    >>> check_not_inputs(d, [d / "POP.tif"])
    Traceback (most recent call last):
    ...
    pari_geo.errors.OutputError: ...: contains the input ... (POP.tif); pari_geo never ...
    """
    out = Path(output)
    out_real = Path(os.path.realpath(out))
    out_id = _identity(out)
    out_ids = {i for _, i in _chain(out_real) if i is not None}
    out_chain = [q for q, _ in _chain(out_real)]
    for item in protect:
        if item is None:
            continue
        src = Path(item)
        src_real = Path(os.path.realpath(src))
        chain = _chain(src_real)
        if src_real == out_real or (out_id is not None and _identity(src) == out_id):
            problem = "is the input"
        elif out_real in [q for q, _ in chain[1:]] or (
                out_id is not None and out_id in {i for _, i in chain[1:]}):
            problem = "contains the input"
        elif src_real in out_chain[1:] or (
                _identity(src) is not None and _identity(src) in out_ids):
            problem = "lies inside the input"
        else:
            continue
        named = f"{str(src)!r}" if str(src) == src.name else f"{str(src)!r} ({src.name})"
        raise OutputError(str(out), f"{problem} {named}; pari_geo never replaces its inputs: "
                          "choose another output")


#: names pari_geo writes into a run folder (``pari-geo classify`` and ``run``)
_RUN_DIR_ENTRY = re.compile(
    r"(provenance\.json|summary\.md|report\.html|candidates\.csv|"
    r"calibration\.json|calibrated\.toml|disagreement\.(tif|png|qml)|"
    r"clusters(\.gpkg|\.parquet|_map\.png)|"
    r"municipalities\.(csv|gpkg)|(degurba_l[12]|place_types)(\.tif|\.png|\.qml|"
    r"_population_by_class\.csv|_by_unit\.(csv|gpkg)|_units\.(csv|gpkg)))"
    r"(\.aux\.xml)?")
#: marker of a QGIS style and an HTML report written by pari_geo (a comment / meta tag)
TEXT_MARKER = "generated by pari_geo"
_MAPS_ENTRY = re.compile(r"hidden_[^/]+\.png(\.aux\.xml)?")
#: marker of a PNG written by pari_geo (a PNG text chunk)
PNG_SOFTWARE = "pari_geo"


def _not_ours(p: Path) -> str | None:
    """Why ``p`` is not a pari_geo output, or ``None`` when pari_geo wrote it."""
    if p.is_dir():
        return _run_dir_not_ours(p)
    suffix = p.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            from .ingest import RasterWindows

            with RasterWindows(p) as src:
                tags = src.tags()
            return None if "CLASS_SCHEME" in tags else "no CLASS_SCHEME tag"
        if suffix == ".png":
            with open(p, "rb") as fh:
                head = fh.read(1 << 16)
            ok = b"tEXtSoftware\x00" + PNG_SOFTWARE.encode() in head
            return None if ok else "no pari_geo PNG text chunk"
        if suffix in (".qml", ".html"):
            with open(p, encoding="utf-8") as fh:
                text = fh.read(1 << 12)
            return None if TEXT_MARKER in text else f"no '{TEXT_MARKER}' mark"
        if suffix == ".csv":
            with open(p, encoding="utf-8") as fh:
                header = fh.readline().strip().split(",")
            ok = (header[:3] == ["code", "name", "cells"] or "Tot_Pop" in header
                  or header[:1] == ["planted_cluster"]
                  or header[:2] == ["candidate_id", "hidden_at_m"]
                  or (len(header) > 1 and header[1] == "residents"))
            return None if ok else "not a pari_geo table header"
        if suffix == ".gpkg":
            import pyogrio

            meta = pyogrio.read_info(p).get("layer_metadata") or {}
            return None if "pari_geo_version" in meta else "no pari_geo_version metadata"
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            meta = pq.read_schema(p).metadata or {}
            return None if b"pari_geo_version" in meta else "no pari_geo_version metadata"
    except Exception:  # noqa: BLE001 - unreadable: certainly not a finished pari_geo output
        return "not readable as a pari_geo output"
    return f"pari_geo does not write {suffix or 'extension-less'} files"


def _run_dir_not_ours(d: Path) -> str | None:
    """Why folder ``d`` is not a pari_geo run folder, or ``None``."""
    prov = d / "provenance.json"
    try:
        data = json.loads(prov.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "pari_geo_version" not in data:
            return "its provenance.json is not pari_geo's"
    except (OSError, ValueError):
        return "it has no pari_geo provenance.json"
    for q in sorted(d.iterdir()):
        if q.name == "maps" and q.is_dir() and not q.is_symlink():
            foreign = [m for m in sorted(q.iterdir())
                       if not (_MAPS_ENTRY.fullmatch(m.name) and m.is_file())]
            if foreign:
                return f"it holds {str(foreign[0])!r}, which pari_geo does not write"
        elif not (_RUN_DIR_ENTRY.fullmatch(q.name) and q.is_file() and not q.is_symlink()):
            return f"it holds {str(q)!r}, which pari_geo does not write"
    return None


def written_by_pari_geo(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an output pari_geo wrote (what ``--overwrite`` may replace).

    GeoTIFFs carry a ``CLASS_SCHEME`` tag, PNG maps a ``Software=pari_geo`` text chunk,
    GeoPackages and GeoParquet files ``pari_geo_version`` metadata, CSV tables pari_geo's
    header, QGIS styles and HTML reports a "generated by pari_geo" mark; a run
    folder holds pari_geo's ``provenance.json`` and only files pari_geo
    writes there.
    """
    p = Path(path)
    return p.exists() and _not_ours(p) is None


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


#: prefixes of the scratch folders of running pari_geo processes (``PREFIX<pid>-<random>``)
SCRATCH_PREFIXES = (".pari_geo_run_", ".pari_geo_ooc_", ".pari_geo_n7_")
_OWNER = ".owner"


def _remove_tree(q: Path) -> bool:
    import shutil

    try:
        if q.is_dir() and not q.is_symlink():
            shutil.rmtree(q)
        else:
            q.unlink()
    except OSError:
        return False  # not ours to remove (permissions); hidden and harmless
    return True


def _owner_dead(folder: Path, pid_text: str) -> bool:
    """Whether the process that made scratch ``folder`` is gone.

    A running owner holds a lock on ``folder/.owner`` (released by the kernel when the
    process dies, whatever kills it, and seen from every machine that shares the file
    system); a folder without that file falls back to the process id in its name.
    """
    owner = folder / _OWNER
    if owner.exists():
        try:
            held = _try_lock(owner)
        except _LocksUnsupportedError:
            held = -1  # no locks here: the process id decides
        except OSError:
            return False
        if held is None:
            return False
        if held >= 0:
            os.close(held)
            return True
    return pid_text.isdigit() and not _pid_alive(int(pid_text))


def clean_stale_parts(path: str | os.PathLike) -> list[Path]:
    """Remove hidden leftovers of killed writers beside ``path``; return what was removed.

    Temporaries are named ``.NAME.part-PID-*`` (files and run folders being written),
    ``.NAME.old-PID-*`` (a replaced run folder being deleted) and, for any output of the
    folder, the scratch folders of the tiled engine and of ``pari-geo run``
    (:data:`SCRATCH_PREFIXES`). Those whose process no longer runs are removed; those of a
    live process (a concurrent run) are kept. :func:`atomic_path`, :func:`atomic_dir`,
    :func:`claim_output` and :func:`scratch_dir` call this before writing.
    """
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
            if _remove_tree(q):
                removed.append(q)
    for q in entries:
        scratch = next((x for x in SCRATCH_PREFIXES if q.name.startswith(x)), None)
        if scratch is None or not q.is_dir() or q.is_symlink():
            continue
        pid_text = q.name[len(scratch):].split("-", 1)[0]
        if _owner_dead(q, pid_text) and _remove_tree(q):
            removed.append(q)
    return removed


def _umask() -> int:
    """The process umask (read without changing it where the platform allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mkdtemp(prefix: str, parent: Path) -> Path:
    """A new folder with the permissions of ``mkdir`` (the umask), not mkdtemp's 0700."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    with contextlib.suppress(OSError):
        os.chmod(d, 0o777 & ~_umask())
    return d


def _try_lock(path: Path) -> int | None:
    """An open descriptor of ``path`` holding an exclusive lock, or None if it is held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: msvcrt locks the first byte
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            os.close(fd)
            return None
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        if err.errno in _NO_LOCKS:
            raise _LocksUnsupportedError(err.errno, err.strerror) from None
        if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    return fd


class _LocksUnsupportedError(OSError):
    """The file system does not support ``flock`` (some FUSE and old NFS mounts)."""


#: errors of file systems that do not support ``flock``
_NO_LOCKS = {getattr(errno, n) for n in ("ENOLCK", "EOPNOTSUPP", "ENOTSUP", "ENOSYS")
             if hasattr(errno, n)}


#: claims held by this process: lock path -> [descriptor, depth]
_HELD: dict[str, list[int]] = {}


@contextlib.contextmanager
def _lock_file(lock: Path, target: Path) -> Iterator[None]:
    """Hold ``lock`` exclusively (re-entrant within the process); remove it at the end."""
    key = os.path.abspath(lock)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    while True:
        try:
            fd = _try_lock(lock)
        except _LocksUnsupportedError:  # the no-replace move still keeps runs from clobbering
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise OutputError(str(target), f"cannot be claimed ({_one_line(err)})") from None
        if fd is None:
            try:
                pid = lock.read_text().strip() or "?"
            except OSError:
                pid = "?"
            raise OutputError(str(target), f"is being written by another pari_geo run "
                              f"(process {pid}); wait for it to finish or choose another "
                              "output")
        if _same_file(fd, lock):
            break
        os.close(fd)  # the file was replaced between open and lock: take the new one
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            lock.unlink()  # while still holding it, so nobody takes a removed file
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    st = os.fstat(fd)
    return _identity(path) == (st.st_dev, st.st_ino)


@contextlib.contextmanager
def claim_output(
    path: str | os.PathLike,
    overwrite: bool = False,
    *,
    protect: tuple | list = (),
    folder: bool = False,
) -> Iterator[Path]:
    """Check an output now, before any work, and keep it for this process until the end.

    The claim is an exclusive lock on a hidden ``.NAME.lock`` file beside the output: a
    second run writing the same output (another process, possibly on another machine of
    a shared file system) stops at once with one line instead of computing and then
    overwriting or losing one of the results. The lock dies with its process (even after
    ``SIGKILL``), so a killed run never blocks the next one; the lock file is removed at
    the end. Claims are re-entrant within a process. Stale temporaries of killed runs
    beside the output are removed (:func:`clean_stale_parts`).

    Parameters
    ----------
    path : path-like
        The output file, or with ``folder=True`` the output folder (missing parents are
        created, and removed again if the block fails).
    overwrite : bool
        Whether an existing output pari_geo wrote may be replaced.
    protect : sequence of path-like
        Inputs and run file: the output may not be, contain or lie inside any of them.
    folder : bool
        Whether the output is a run folder.
    """
    target = Path(path)
    created: list[Path] = []
    if folder:
        check_not_inputs(target, protect)
        created = _make_parents(target)
    try:
        if folder:
            _check_dir_target(target, overwrite, protect)
        else:
            check_output(target, overwrite, protect)
        with _lock_file(target.parent / f".{target.name}.lock", target):
            clean_stale_parts(target)
            if folder:  # re-check under the claim: another run may have finished meanwhile
                _check_dir_target(target, overwrite, protect)
            else:
                check_output(target, overwrite, protect)
            yield target
    except BaseException:
        _rmdirs(created)
        raise


def _make_parents(target: Path) -> list[Path]:
    """Create the missing parents of ``target``; the created ones, deepest first."""
    parent = target.parent
    if parent.exists():
        return []
    missing = [q for q in [parent, *parent.parents] if not q.exists()]
    try:
        parent.mkdir(parents=True)
    except OSError as err:
        raise OutputError(
            str(target), f"cannot create parent directory ({_one_line(err)})"
        ) from None
    return sorted(missing, key=lambda q: len(q.parts), reverse=True)


def _check_dir_target(target: Path, overwrite: bool, protect: tuple | list = ()) -> None:
    """Refuse a run folder that cannot or must not be written (see :func:`atomic_dir`)."""
    parent = target.parent
    if not parent.is_dir():
        raise OutputError(str(target), f"parent {str(parent)!r} is not a directory")
    if not os.access(parent, os.W_OK):
        raise OutputError(str(target), f"parent directory {str(parent)!r} is not writable")
    check_not_inputs(target, protect)
    if target.exists() and not overwrite:
        raise OutputError(str(target), "exists; pass overwrite=True (--overwrite) to replace it")
    if target.exists() and not target.is_dir():
        raise OutputError(str(target), "exists and is not a directory")
    if target.exists():
        why = _run_dir_not_ours(target)
        if why:
            raise OutputError(str(target), f"exists and is not a pari_geo output folder "
                              f"({why}); --overwrite replaces only pari_geo's own outputs: "
                              "move it away or choose another outputs.dir")


@contextlib.contextmanager
def scratch_dir(prefix: str, parent: str | os.PathLike | None = None) -> Iterator[Path]:
    """A scratch folder ``PREFIX<pid>-<random>`` in ``parent``, removed at the end.

    While the block runs, the folder's ``.owner`` file is locked by this process, so that
    any later pari_geo run recognises the folder as stale once this process is gone (also
    after ``SIGKILL``) and removes it (:func:`clean_stale_parts`); stale scratch of dead
    processes in ``parent`` is removed first.
    """
    import shutil

    base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    clean_stale_parts(base / "_")
    d = _mkdtemp(f"{prefix}{os.getpid()}-", base)
    try:
        fd = _try_lock(d / _OWNER)
    except _LocksUnsupportedError:
        fd = None  # later runs fall back to the process id in the name
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
        if fd is not None:
            os.close(fd)


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


_NO_SPACE = re.compile(r"no space left|disk is full|disk full|not enough space|"
                       r"free disk space|ENOSPC|quota exceeded", re.IGNORECASE)


def _one_line(err: BaseException, folder: Path | None = None) -> str:
    """One short line for an I/O error: "no space left on device" whenever the error or
    the target folder's free space says so, else the error's first line (200 characters
    at most; GDAL/OGR messages can quote whole SQL statements)."""
    code = getattr(err, "errno", None)
    if code == errno.ENOSPC or _NO_SPACE.search(str(err)) or _full(folder):
        return "no space left on device"
    if code == getattr(errno, "EDQUOT", -1):
        return "disk quota exceeded"
    text = getattr(err, "strerror", None) or str(err)
    text = text.strip().splitlines()[0] if text.strip() else ""
    if len(text) > 200:
        text = text[:197] + "..."
    return text or type(err).__name__


def _full(folder: Path | None) -> bool:
    """Whether ``folder``'s file system has (almost) no space left."""
    if folder is None:
        return False
    import shutil

    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def _move_into_place(tmp: Path, target: Path, overwrite: bool) -> None:
    """Rename ``tmp`` onto ``target``; without ``overwrite`` never replace a file.

    The no-replace move is a hard link (which fails if ``target`` exists, atomically)
    followed by removing ``tmp``; on file systems without hard links, a check under the
    output's claim (:func:`claim_output`) and a rename.
    """
    if overwrite and target.exists():
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputError(str(target), "exists; pass overwrite=True (--overwrite) to "
                          "replace it") from None
    except OSError:
        if target.exists():
            raise OutputError(str(target), "exists; pass overwrite=True (--overwrite) to "
                              "replace it") from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, overwrite: bool = False, *, protect: tuple | list = ()
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and move it into place.

    The output is claimed first (:func:`claim_output`: checked, locked against concurrent
    writers, never an input in ``protect``). The temporary is a hidden
    ``.NAME.part-PID-*`` file in the target directory (so the final rename never crosses
    file systems). Without ``overwrite`` the move never replaces a file that appeared
    meanwhile. On any error the temporary file is removed and the target is left
    untouched; I/O errors of the writer (``OSError``, GDAL/OGR and Arrow errors, e.g. a
    full disk) become one :class:`OutputError` naming the target.
    """
    with claim_output(path, overwrite, protect=protect) as target:
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=f".{target.name}.part-{os.getpid()}-", suffix=target.suffix,
                dir=target.parent
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
            _move_into_place(tmp_path, target, overwrite)
            _fsync_dir(target.parent)
        except OutputError:
            _remove(tmp_path)
            raise
        except _writer_errors() as err:
            line = _one_line(err, target.parent)
            _remove(tmp_path)
            raise OutputError(str(target), f"cannot be written ({line})") from None
        except BaseException:
            _remove(tmp_path)
            raise


@contextlib.contextmanager
def atomic_files(
    paths: list[str | os.PathLike], overwrite: bool = False, *, protect: tuple | list = ()
) -> Iterator[dict[Path, Path]]:
    """Several outputs that appear together or not at all.

    Yields ``{target: temporary path}`` (temporaries are hidden files beside each target,
    not yet created). Every target is claimed first (:func:`claim_output`). When the
    block succeeds every temporary is fsynced and moved onto its target; when it fails
    every temporary is removed and no target is touched.

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
    targets = [Path(p) for p in paths]
    if len({os.path.abspath(t) for t in targets}) != len(targets):
        raise OutputError(str(targets[0]), "the same output path is given twice")
    with contextlib.ExitStack() as claims:
        for t in targets:
            claims.enter_context(claim_output(t, overwrite, protect=protect))
        token = next(tempfile._get_candidate_names())  # type: ignore[attr-defined]  # noqa: SLF001
        stage = {t: t.parent / f".{t.name}.part-{os.getpid()}-{token}{t.suffix}"
                 for t in targets}
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
                _move_into_place(tmp, target, overwrite)
                _fsync_dir(target.parent)
        except OutputError:
            for tmp in stage.values():
                _remove(tmp)
            raise
        except _writer_errors() as err:
            line = _one_line(err, targets[0].parent)
            for tmp in stage.values():
                _remove(tmp)
            raise OutputError(str(targets[0]), f"cannot be written ({line})") from None
        except BaseException:
            for tmp in stage.values():
                _remove(tmp)
            raise


def _remove(p: Path) -> None:
    for q in (p, Path(str(p) + ".aux.xml")):
        with contextlib.suppress(OSError):
            q.unlink()


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
        f"<!-- {TEXT_MARKER} -->\n"
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
    from .errors import InputError
    from .grid import GridSpec
    from .ingest import RasterWindows

    p = Path(path)
    with RasterWindows(p, None) as src:  # one-line errors of its own
        if src.count != 1:
            raise InputError(str(p), None, f"not a pari_geo class raster ({src.count} bands)")
        tags = src.tags()
        if "CLASS_NAMES" not in tags:
            raise InputError(str(p), None, "not a pari_geo class raster (no CLASS_NAMES tag)")
        if src.crs is None:
            raise InputError(str(p), None, "has no CRS; assign one (e.g. gdal_edit.py -a_srs)")
        rows, cols = src.shape
        values = src.read_raw(0, rows, 0, cols)
        grid, nodata = GridSpec(src.crs, src.transform, src.shape), src.nodata
    attrs: dict[str, Any] = {k.lower(): v for k, v in tags.items() if k != "AREA_OR_POINT"}
    if "level" in attrs:
        with contextlib.suppress(ValueError):
            attrs["level"] = int(attrs["level"])
    attrs["source"] = str(p)
    da = grid.to_dataarray(values.astype(np.uint8), attrs=attrs)
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
    colormap = scheme.rgba_colormap()
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
    A GeoPackage or GeoParquet file always records ``pari_geo_version`` in its metadata
    (the marker of a pari_geo output, see :func:`written_by_pari_geo`).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".gpkg", ".parquet") and "pari_geo_version" not in (metadata or {}):
        from ._version import __version__

        # the marker --overwrite looks for (see written_by_pari_geo)
        metadata = {**(metadata or {}), "pari_geo_version": __version__}
    with atomic_path(p, overwrite) as tmp:
        if suffix == ".csv":
            frame = df.drop(columns="geometry") if "geometry" in getattr(df, "columns", []) else df
            frame.to_csv(tmp, index=False, lineterminator="\n")
        elif suffix == ".gpkg":
            kwargs = {"metadata": metadata} if metadata else {}
            with fixed_gpkg_date():  # no clock time in gpkg_contents.last_change
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
def fixed_gpkg_date() -> Iterator[None]:
    """Make OGR stamp ``gpkg_contents.last_change`` with a fixed date, not the clock.

    GDAL takes this timestamp from the ``OGR_CURRENT_DATE`` config option when set; it is
    set only for the duration of the write and restored afterwards. The date is
    :data:`GPKG_FIXED_DATE`, or ``SOURCE_DATE_EPOCH`` when that is set, so the same inputs
    give the same GeoPackage bytes.

    Examples
    --------
    >>> import pyogrio
    >>> with fixed_gpkg_date():
    ...     pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") == GPKG_FIXED_DATE
    True
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
def atomic_dir(
    path: str | os.PathLike, overwrite: bool = False, *, protect: tuple | list = ()
) -> Iterator[Path]:
    """Yield a staging folder beside ``path``; on success it replaces ``path`` as a whole.

    The folder is claimed first (:func:`claim_output` with ``folder=True``): missing
    parent folders are created (and removed again if the run fails); a folder that is,
    contains or lies inside one of ``protect`` (inputs, run file) is refused; an existing
    folder is replaced only with ``overwrite`` and only if pari_geo wrote it (its
    ``provenance.json`` and nothing but pari_geo's files).

    A run directory therefore appears complete or not at all: on error the staging folder
    is removed; after a kill only a hidden ``.NAME.part-PID-*`` folder can remain, never a
    half-filled ``NAME``, and the next write of ``NAME`` removes it (see
    :func:`clean_stale_parts`). Every file and folder is fsynced before the rename; the
    folder gets the permissions ``mkdir`` would give it (the umask).
    """
    import shutil

    with claim_output(path, overwrite, protect=protect, folder=True) as target:
        parent = target.parent
        pid = os.getpid()
        try:
            stage = _mkdtemp(f".{target.name}.part-{pid}-", parent)
        except OSError as err:
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
            _check_dir_target(target, overwrite, protect)
            old = None
            if target.exists():
                old = _mkdtemp(f".{target.name}.old-{pid}-", parent)
                os.replace(target, old / target.name)
            try:
                os.replace(stage, target)  # the claim keeps other pari_geo runs away
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
            raise
        except OSError as err:
            line = _one_line(err, parent)
            shutil.rmtree(stage, ignore_errors=True)
            raise OutputError(str(target), f"cannot be written ({line})") from None
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise


def _rmdirs(dirs: list[Path]) -> None:
    """Remove folders this module created (deepest first) while they are empty."""
    for d in dirs:
        with contextlib.suppress(OSError):
            d.rmdir()
