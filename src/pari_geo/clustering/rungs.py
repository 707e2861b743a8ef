"""The rung of a cluster on the Cluster Ladder, from the units its members span.

A cluster's rung comes from the administrative hierarchy its members span (design
``clustering.md`` section 4), first match from the top:

=================  ==============================================================
rung               rule
=================  ==============================================================
multinational      members in >= 2 countries (``country_col`` of the units)
national           members in >= 2 regions (``region_col`` of the units)
inter-municipal    members in >= 2 units (municipalities)
municipal          one unit (or no units), and ``extent_m > micro_max_extent_m`` or
                   ``n_actors > micro_max_actors``
micro              one unit (or no units), small and compact
=================  ==============================================================

Members outside every unit do not count towards the units, regions or countries spanned.
Without units (or when no member lies in a unit) only the last two rungs are possible: the
rung then follows from extent and size alone. Without ``region_col``/``country_col`` the
national/multinational rules cannot fire.

Both :mod:`pari_geo.clustering.actors` (the rung of every cluster of one scale) and
:mod:`pari_geo.clustering.ladder` (clusters at several scales) use it; it depends on
neither.

Examples
--------
>>> import numpy as np
>>> rung_of(np.array([0, 1]), regions=np.array(["A", "A"]), countries=None,
...         extent_m=800.0, n_actors=6)
'inter-municipal'
>>> rung_of(np.array([0]), regions=None, countries=None, extent_m=7000.0, n_actors=6)
'municipal'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["RUNGS", "rung_of"]

#: Rungs from the top of the ladder down.
RUNGS = ("multinational", "national", "inter-municipal", "municipal", "micro")


def _n_distinct(values: np.ndarray | None, units: np.ndarray) -> int:
    if values is None or len(units) == 0:
        return 0
    # what pd.Series(...).dropna().nunique() counts, without a Series per cluster
    return len({v for v in values[units].tolist() if not pd.isna(v)})


def rung_of(
    units: np.ndarray,
    *,
    regions: np.ndarray | None,
    countries: np.ndarray | None,
    extent_m: float,
    n_actors: int,
    micro_max_extent_m: float = 5000.0,
    micro_max_actors: int = 50,
) -> str:
    """The rung of one cluster.

    Parameters
    ----------
    units : ndarray of int
        Distinct unit positions of the members (those outside every unit left out).
    regions, countries : ndarray or None
        Region / country of every unit (by position), or None when not known.
    extent_m : float
        Largest distance between two members.
    n_actors : int
        Number of members.
    micro_max_extent_m, micro_max_actors
        Largest extent and size of a micro-cluster.

    Returns
    -------
    str
        One of :data:`RUNGS`.
    """
    units = np.unique(np.asarray(units, dtype=np.int64))
    units = units[units >= 0]
    if _n_distinct(countries, units) >= 2:
        return "multinational"
    if _n_distinct(regions, units) >= 2:
        return "national"
    if len(units) >= 2:
        return "inter-municipal"
    if extent_m > micro_max_extent_m or n_actors > micro_max_actors:
        return "municipal"
    return "micro"
