"""Least-cost travel time over a grid (``minutes_to``), for the rules.

The operation belongs to the engines: :mod:`pari_geo.outofcore.travel_time` holds the
in-memory :func:`minutes_to`, its tiled twin and the one Dijkstra kernel they share. This
module keeps the names the rules and users import (``pari_geo.minutes_to``).

Examples
--------
>>> import numpy as np
>>> src = np.zeros((1, 4), bool); src[0, 0] = True
>>> minutes_to(src, cell_size_m=1000).round(3).tolist()   # 60 km/h: 1 minute per km
[[0.0, 1.0, 2.0, 3.0]]
"""

from __future__ import annotations

from ..outofcore.travel_time import minutes_per_metre, minutes_to

__all__ = ["minutes_to", "minutes_per_metre"]
