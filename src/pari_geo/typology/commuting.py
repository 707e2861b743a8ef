"""Commuting towards the urban cores from an origin-destination table per unit.

SYKE links nearby localities to a city, and marks rural areas close to urban areas, by the
share of employed residents commuting to it; national statistics publish it as commuting
between municipalities (or other units). :func:`od_on_grid` reads such a table and the
units it names and puts them on the population's grid; the rules then sum, per cell, its
unit's shares towards the units that hold an urban core
(:class:`~pari_geo.typology.nordic7.CommutingOD`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from .nordic7 import CommutingOD

__all__ = ["od_on_grid"]


def od_on_grid(od: Any, units: Any, units_id: str | None, grid: Any, has_share: bool = False
               ) -> tuple[CommutingOD, np.ndarray]:
    """The OD table over the units' order and the unit index of each cell.

    Parameters
    ----------
    od : path, DataFrame or CommutingOD
        The table (:func:`~pari_geo.ingest.open_commuting_od`).
    units : path or GeoDataFrame
        The units it names.
    units_id : str or None
        Their id column (the table's codes).
    grid : GridSpec
    has_share : bool
        A commuting share layer is given too (refused).

    Returns
    -------
    CommutingOD, ndarray of float
        The table, and each cell's unit (1..k, 0 outside).
    """
    from ..align import unit_index_raster
    from ..ingest import open_commuting_od, open_units

    if has_share:
        raise InputError(None, "commuting_od", "give commuting or commuting_od, not both")
    if isinstance(od, CommutingOD):  # already over the units' order
        if units is None:
            raise InputError(None, "commuting_od", "needs the units its codes name (units=)")
        u = open_units(units, id_col=units_id)
        ids = [str(v) for v in (u[units_id] if units_id else u.index)]
        if list(od.codes) != ids:
            raise InputError(None, "commuting_od", "names its units in another order than "
                             "units= (CommutingOD.from_table(..., codes=units' ids))")
        return od, unit_index_raster(u, grid).astype(np.float64)
    if units is None:
        raise InputError(None, "commuting_od", "needs the units the table's origins and "
                         "destinations name (units=, and units_id= their id column)")
    table = open_commuting_od(od)
    u = open_units(units, id_col=units_id)
    ids = [str(v) for v in (u[units_id] if units_id else u.index)]
    unknown = sorted((set(table["origin"]) | set(table["destination"])) - set(ids))
    if unknown:
        raise InputError(None, "commuting_od", f"names units not among the units' "
                         f"{units_id or 'index'}: {unknown[:8]}")
    return (CommutingOD.from_table(table["origin"], table["destination"], table["share"],
                                   codes=ids), unit_index_raster(u, grid).astype(np.float64))
