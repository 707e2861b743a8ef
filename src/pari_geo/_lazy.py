"""Lazy exports of a package: names imported from their module on first use.

The package face (``pari_geo``), ``pari_geo.outofcore`` and ``pari_geo.clustering`` export
names whose modules compile numba kernels or import scikit-learn; importing the package
must stay cheap, so each name is imported when first looked up and then cached in the
package's namespace (module ``__getattr__``, PEP 562).

Examples
--------
>>> ns = {"__name__": "demo"}
>>> getattr_, dir_ = lazy_exports("demo", {"sqrt": "math"}, ns)
>>> getattr_("sqrt")(9.0), "sqrt" in ns, dir_()
(3.0, True, ['sqrt'])
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    where: Mapping[str, str],
    namespace: dict[str, Any],
    listed: list[str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package with lazily imported names.

    Parameters
    ----------
    package : str
        The package's ``__name__`` (messages, and the anchor of relative module names).
    where : mapping
        Exported name -> module (absolute, or relative such as ``".estimator"``).
    namespace : dict
        The package's ``globals()``: a name looked up once is stored there, so Python
        finds it without calling ``__getattr__`` again.
    listed : list of str, optional
        What ``dir(package)`` shows (default: the exported names).
    """
    shown = sorted(listed if listed is not None else where)

    def module_getattr(name: str) -> Any:
        try:
            module = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def module_dir() -> list[str]:
        return list(shown)

    return module_getattr, module_dir
