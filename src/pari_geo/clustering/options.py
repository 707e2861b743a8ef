"""The options of the micro-cluster search: one set of defaults and ranges.

The Python API (:func:`~pari_geo.clustering.find_microclusters`,
:func:`~pari_geo.clustering.ladder`), the run file's ``[clusters]`` section and the command
line all validate through :func:`check_cluster_options`, so a value accepted in one is
accepted in all, with the same default.

Examples
--------
>>> CLUSTER_DEFAULTS["p_method"], CLUSTER_DEFAULTS["early_stop"]
('pooled', 20)
>>> check_cluster_options({"alpha": 1.5})
Traceback (most recent call last):
...
pari_geo.errors.ConfigError: parameter 'alpha': must be a number in (0, 1), got 1.5
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from ..errors import ConfigError

__all__ = [
    "CLUSTER_DEFAULTS",
    "EPS_M_RANGE",
    "MAX_SIMULATIONS",
    "check_cluster_options",
]

#: Largest ``n_sim`` accepted (p-values resolve to 1e-5).
MAX_SIMULATIONS = 99_999
#: Accepted DBSCAN radii, metres.
EPS_M_RANGE = (1.0, 1_000_000.0)

#: Defaults of every option (``eps_m`` is the ladder's; ``find_microclusters`` needs one).
CLUSTER_DEFAULTS: dict[str, Any] = {
    "eps_m": (300.0, 1000.0, 5000.0, 20000.0),
    "min_actors": 5,
    "n_sim": 999,
    "alpha": 0.05,
    "random_state": 0,
    "micro_max_extent_m": 5000.0,
    "micro_max_actors": 50,
    "footprint": "discs",
    "null_cell_m": 1000.0,
    "p_method": "pooled",
    "early_stop": 20,
    "pool_size": 10_000,
    "n_jobs": -1,
}

_CHOICES = {"footprint": ("discs", "hull"), "p_method": ("pooled", "max")}


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def check_cluster_options(
    options: dict[str, Any], prefix: str = "", file: str | None = None, what: str = "parameter"
) -> dict[str, Any]:
    """Validate the options given (others keep their defaults); raise one clear ConfigError.

    Parameters
    ----------
    options : dict
        Any subset of :data:`CLUSTER_DEFAULTS`. ``early_stop`` and ``pool_size`` accept 0 or
        None for "off"; ``random_state`` an integer >= 0, None or a numpy Generator.
    prefix : str
        Prepended to the key in messages (``"clusters."`` for a run file).
    file : str, optional
        The run file, named in messages.
    what : str
        How messages call a key ("parameter" for the API, "key" for a run file).

    Returns
    -------
    dict
        The options with numbers normalised (``early_stop``/``pool_size`` 0 become None).
    """
    out = dict(options)

    def bad(key: str, problem: str):
        raise ConfigError(f"{prefix}{key}", problem, file, what=what)

    for key, value in options.items():
        if key == "eps_m":
            vals = list(value) if isinstance(value, list | tuple) else [value]
            lo, hi = EPS_M_RANGE
            if not vals or not all(_is_real(v) and lo <= float(v) <= hi for v in vals):
                bad(key, f"must be distances between {lo:g} and {hi:g} metres, got {value!r}")
        elif key in ("micro_max_extent_m", "null_cell_m"):
            if not _is_real(value) or float(value) <= 0:
                bad(key, f"must be a positive number of metres, got {value!r}")
        elif key in ("min_actors", "micro_max_actors"):
            if not _is_int(value) or int(value) < 1:
                bad(key, f"must be an integer >= 1, got {value!r}")
        elif key == "n_sim":
            if not _is_int(value) or not 0 <= int(value) <= MAX_SIMULATIONS:
                bad(key, f"must be an integer from 0 to {MAX_SIMULATIONS}, got {value!r}")
        elif key == "alpha":
            if not _is_real(value) or not 0 < float(value) < 1:
                bad(key, f"must be a number in (0, 1), got {value!r}")
        elif key in ("early_stop", "pool_size"):
            if value is not None and (not _is_int(value) or int(value) < 0):
                bad(key, f"must be 0 (off) or a positive integer, got {value!r}")
            out[key] = int(value) if value else None
        elif key == "n_jobs":
            if not _is_int(value) or int(value) == 0:
                bad(key, f"must be a positive integer or -1 (all cores), got {value!r}")
        elif key == "random_state":
            import numpy as np

            ok = value is None or isinstance(value, np.random.Generator)
            ok = ok or (_is_int(value) and 0 <= int(value) < 2**32)
            if not ok:
                bad(key, f"must be a seed in 0..{2**32 - 1} or None, got {value!r}")
        elif key in _CHOICES and value not in _CHOICES[key]:
            choices = " or ".join(repr(c) for c in _CHOICES[key])
            bad(key, f"must be {choices}, got {value!r}")
    return out
