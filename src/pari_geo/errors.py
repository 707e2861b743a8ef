"""Exceptions raised by pari_geo.

Every error a user can cause carries *where* (file, layer or configuration key) and *what*
is wrong, so that the command line can print it as one line.
"""

from __future__ import annotations

__all__ = ["PariGeoError", "InputError", "ConfigError", "OutputError", "SchedulerError"]


class PariGeoError(Exception):
    """Base class of every error pari_geo raises on purpose."""


class InputError(PariGeoError, ValueError):
    """An input file or layer cannot be used.

    Parameters
    ----------
    file : str or None
        Path of the offending file (``None`` for in-memory data).
    layer : str or None
        Name of the layer (``population``, ``built``, ``units`` ...).
    problem : str
        What is wrong, in one sentence.

    Examples
    --------
    >>> str(InputError("POP.tif", "population", "has no CRS"))
    'POP.tif [population]: has no CRS'
    >>> str(InputError(None, "built", "has no CRS"))
    'in-memory data [built]: has no CRS'
    """

    def __init__(self, file: str | None, layer: str | None, problem: str) -> None:
        self.file = None if file is None else str(file)
        self.layer = layer
        self.problem = problem
        super().__init__(f"{where(self.file, layer)}: {problem}")


def where(file: str | None, layer: str | None) -> str:
    """How messages name an input: ``FILE [layer]``, or the layer of in-memory data (never
    a made-up file name).

    Examples
    --------
    >>> where("U.gpkg", "units"), where(None, "units"), where(None, None)
    ('U.gpkg [units]', 'in-memory data [units]', 'in-memory data')
    """
    if file:
        return f"{file} [{layer}]" if layer else str(file)
    return f"in-memory data [{layer}]" if layer else "in-memory data"


class ConfigError(PariGeoError, ValueError):
    """A configuration key or parameter value is invalid.

    Examples
    --------
    >>> str(ConfigError("UC_max_gap", "must be an integer, got 'x'"))
    "parameter 'UC_max_gap': must be an integer, got 'x'"
    """

    def __init__(
        self, key: str, problem: str, file: str | None = None, *, what: str = "parameter"
    ) -> None:
        self.key = key
        self.problem = problem
        self.file = file
        self.what = what
        prefix = f"{file}: " if file else ""
        super().__init__(f"{prefix}{what} '{key}': {problem}")


class OutputError(PariGeoError, OSError):
    """An output cannot be written (exists, directory missing, not writable ...).

    Examples
    --------
    >>> str(OutputError("out.tif", "exists; pass overwrite=True (--overwrite) to replace it"))
    'out.tif: exists; pass overwrite=True (--overwrite) to replace it'
    """

    def __init__(self, file: str, problem: str) -> None:
        self.file = str(file)
        self.problem = problem
        super().__init__(f"{self.file}: {problem}")


class SchedulerError(PariGeoError, RuntimeError):
    """A dask scheduler cannot be reached, or its workers failed a task for good.

    Examples
    --------
    >>> str(SchedulerError("tcp://10.0.0.1:8786", "cannot connect (timed out)"))
    'dask scheduler tcp://10.0.0.1:8786: cannot connect (timed out)'
    """

    def __init__(self, address: str, problem: str) -> None:
        self.address = str(address)
        self.problem = problem
        super().__init__(f"dask scheduler {self.address}: {problem}")
