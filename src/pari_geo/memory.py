"""Memory budgets: parse ``--max-memory`` and choose between in-memory and tiled paths.

The in-memory DEGURBA classification peaks at 30–40 bytes per cell, inputs included
(``benchmarks/degurba/README.md``); :data:`DEGURBA_BYTES_PER_CELL` adds a margin. A grid
whose estimate exceeds the budget runs through the tiled path
(:func:`pari_geo.classify_grid_chunked`), whose memory is bounded by the tile.

Examples
--------
>>> parse_size("8GiB"), parse_size("512 MB"), parse_size(1024)
(8589934592, 512000000, 1024)
>>> choose_engine(10_000, budget=1 << 30)
'memory'
>>> choose_engine(10**9, budget=8 << 30)
'tiled'
"""

from __future__ import annotations

import os
import re

import numpy as np

from .errors import ConfigError

__all__ = [
    "DEGURBA_BYTES_PER_CELL",
    "NORDIC7_BYTES_PER_CELL",
    "choose_engine",
    "pick_engine",
    "default_budget",
    "parse_size",
    "parse_tile",
]

#: Planning figure for the in-memory DEGURBA path (measured 29.8–39.8 B/cell, peak).
DEGURBA_BYTES_PER_CELL = 48

#: Planning figure for the in-memory place types (``nordic7``): measured about 110 bytes
#: per cell on the 250 m sample region (360,000 cells, service minutes computed), with a
#: margin. The typology registry and ``classify_nordic7`` both plan with it.
NORDIC7_BYTES_PER_CELL = 160

_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1 << 10,
    "m": 1000**2, "mb": 1000**2, "mib": 1 << 20,
    "g": 1000**3, "gb": 1000**3, "gib": 1 << 30,
    "t": 1000**4, "tb": 1000**4, "tib": 1 << 40,
}


def parse_size(value: str | int | float, key: str = "max_memory", what: str = "parameter"
               ) -> int:
    """Bytes of a size such as ``"8GiB"``, ``"500MB"``, ``"2g"`` or a plain number.

    Raises
    ------
    pari_geo.errors.ConfigError
        Naming ``key`` when the text is not a positive size.
    """
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a size such as '8GiB', got {value!r}", what=what)
    if isinstance(value, int | float):
        n = float(value)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
        if not m or m.group(2).lower() not in _UNITS:
            raise ConfigError(key, f"expected a size such as '8GiB' or '500MB', got {value!r}",
                              what=what)
        n = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not n >= 1:
        raise ConfigError(key, f"must be a positive size, got {value!r}", what=what)
    return int(n)


def parse_tile(value: str | tuple[int, int] | list[int], key: str = "tile",
               what: str = "parameter") -> tuple[int, int]:
    """``(rows, cols)`` of a tile given as ``"1024x512"``, ``"1024"`` or a pair.

    Examples
    --------
    >>> parse_tile("1024x512"), parse_tile("256"), parse_tile([7, 5])
    ((1024, 512), (256, 256), (7, 5))
    """
    try:
        if isinstance(value, str):
            parts = [int(p) for p in value.lower().replace("×", "x").split("x")]
        else:
            if any(isinstance(p, bool) or not isinstance(p, int | np.integer)
                   for p in value):
                raise ValueError
            parts = [int(p) for p in value]
        if len(parts) == 1:
            parts = parts * 2
        rows, cols = parts
        if rows < 1 or cols < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(key, f"expected ROWSxCOLS of positive integers, got {value!r}",
                          what=what) from None
    return rows, cols


def default_budget() -> int:
    """Half of the machine's physical memory (or 4 GiB when it cannot be read)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 4 << 30
    return int(total) // 2 if total > 0 else 4 << 30


def choose_engine(cells: int, *, budget: int | None = None,
                  bytes_per_cell: int = DEGURBA_BYTES_PER_CELL) -> str:
    """``"memory"`` when ``cells * bytes_per_cell`` fits the budget, else ``"tiled"``."""
    budget = default_budget() if budget is None else int(budget)
    return "memory" if int(cells) * int(bytes_per_cell) <= budget else "tiled"


def pick_engine(engine: str, scheduler: object, population: object, *,
                bytes_per_cell: int = DEGURBA_BYTES_PER_CELL) -> str:
    """``"memory"`` or ``"tiled"`` for a public ``classify_*`` function's ``engine``.

    ``"auto"`` is ``"tiled"`` with a ``scheduler``, for a dask-backed population
    DataArray (streamed, never computed whole), or when a population file's in-memory
    estimate (``bytes_per_cell``) exceeds :func:`default_budget`; else ``"memory"``.

    Examples
    --------
    >>> pick_engine("auto", None, None), pick_engine("auto", "tcp://h:8786", None)
    ('memory', 'tiled')
    >>> pick_engine("fast", None, None)
    Traceback (most recent call last):
    ...
    pari_geo.errors.ConfigError: parameter 'engine': must be 'auto', 'memory' or 'tiled', got 'fast'
    """
    if engine not in ("auto", "memory", "tiled"):
        raise ConfigError("engine", f"must be 'auto', 'memory' or 'tiled', got {engine!r}")
    if engine == "memory" and scheduler is not None:
        raise ConfigError("scheduler", "runs the tiled engine; it needs engine='tiled' or "
                          "'auto'")
    if engine != "auto":
        return engine
    if scheduler is not None:
        return "tiled"
    from .errors import InputError
    from .ingest import RasterWindows, is_lazy

    if is_lazy(population):
        return "tiled"
    if not isinstance(population, str | os.PathLike):
        return "memory"
    try:
        with RasterWindows(population, "population") as src:
            rows, cols = src.shape
    except InputError:
        return "memory"  # the in-memory reader reports the problem
    return choose_engine(rows * cols, bytes_per_cell=bytes_per_cell)
