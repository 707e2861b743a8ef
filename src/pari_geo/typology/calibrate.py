"""Calibration of the place types against a reference classification (issue 14 item 7).

A researcher reproducing the typology in another region or country has a reference: a
downloaded SYKE 250 m class raster, Nordregio's 1 km typology points, or the region's own
map. :func:`calibrate` fits the chosen (usually the unanchored) parameters of the ``nordic7``
rules so that the classes agree with it as well as possible, and reports the agreement
before and after.

The search
----------
Coordinate descent on the share of cells whose class equals the reference
(:attr:`Calibration.agreement`; ``objective="kappa"`` uses Cohen's kappa):

1. each fitted parameter in turn is tried at every value of its candidate grid (shares: 0
   to 1 in steps of 0.05; other parameters: the start value times ``2^(k/4)``,
   ``k = -8..8``, i.e. a quarter to four times, plus 0 where 0 is a valid setting; or the
   values given in ``grid``), the others held; the best value is kept (ties keep the
   current value, so that nothing moves without a gain); when the best value is an end of
   the grid, or nothing in the grid improves (a plateau), the search goes on beyond the
   ends, a step of ``2^(1/4)`` at a time (at most 16), while the agreement improves;
2. the interval between the best value's two neighbours is then searched at 8 more points,
   and again around the new best, up to 6 times (each time about 4.5 times narrower), so
   that a threshold between two grid values is found to about 1/10,000 of the grid step;
3. the rounds repeat until a round changes nothing (at most ``max_rounds``).

The classes are a step function of every threshold, so the search is exact on its grid,
not a gradient method; parameters whose effect depends on each other are handled by the
rounds. The inputs are read and aligned once; the rules then run on an engine that keeps
what does not depend on the parameters: travel minutes per set of sources (one Dijkstra
without a limit per distinct set, cut at each threshold) and window means per layer
(:class:`~pari_geo.outofcore.memory.ReusingMemoryEngine`,
:func:`~pari_geo.outofcore.windows.reused_window_means`), so that one evaluation on a grid
of a million cells takes a fraction of a second.

Only cells with a reference class and a class of ours are compared (no-data 255 on either
side is left out); water (0) is a class like the others.

Examples
--------
>>> import numpy as np
>>> from pari_geo.typology.nordic7 import classify_nordic7_array, Nordic7Params
>>> pop = np.zeros((25, 25)); pop[10:13, 10:13] = 2000.0; pop[3, 3] = 6000.0
>>> truth, _ = classify_nordic7_array(pop, cell_size_m=1000,
...                                   params=Nordic7Params(close_to_urban_minutes=12))
>>> fit = calibrate_arrays(pop, truth, cell_size_m=1000, fit=["close_to_urban_minutes"])
>>> fit.start.agreement < 1.0, fit.agreement
(True, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from .agreement import ClassAgreement, compare_classes
from .nordic7 import _SHARES as SHARE_PARAMETERS
from .nordic7 import Nordic7Params, classify_nordic7_array

__all__ = ["calibrate", "calibrate_arrays", "Calibration", "candidate_values"]

#: zoom levels after the grid, and points per level (each level narrows the interval
#: around the best value about 4.5 times)
_ZOOM_LEVELS = 6
_ZOOM_POINTS = 8
#: steps of 2^(1/4) beyond an end of the grid while the fit improves
_EXTEND_STEPS = 16

#: parameters for which 0 is a meaningful setting (the rule off, or no minimum)
_ZERO_OK = {"link_distance_m", "settlement_min_pop", "core_max_gap_km2", "heartland_density",
            "heartland_jobs_per_resident", "settlement_density"}


@dataclass(frozen=True)
class Calibration:
    """The result of :func:`calibrate`.

    Attributes
    ----------
    params : dict
        The fitted values, by parameter name.
    parameters : Nordic7Params
        Every parameter: the start with the fitted values.
    agreement, kappa : float
        Share of compared cells with the reference's class (0..1), and Cohen's kappa,
        with the fitted parameters.
    confusion : pandas.DataFrame
        Cells by reference class (rows) and fitted class (columns).
    start : ClassAgreement
        The same figures for the starting parameters (``.agreement``, ``.kappa``,
        ``.confusion``).
    fitted : ClassAgreement
        The figures of the fit as a :class:`ClassAgreement` (``per_class`` ...).
    classes : ndarray of uint8
        The fitted classes on the grid.
    reference : ndarray of uint8
        The reference on the grid (255: no reference).
    evaluations : int
        Runs of the rules the search made.
    history : list of dict
        Each accepted change: round, parameter, value, agreement.
    """

    params: dict[str, float]
    parameters: Nordic7Params
    fitted: ClassAgreement
    start: ClassAgreement
    classes: np.ndarray
    reference: np.ndarray
    evaluations: int
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        return self.fitted.agreement

    @property
    def kappa(self) -> float:
        return self.fitted.kappa

    @property
    def confusion(self) -> Any:
        return self.fitted.confusion

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary: ``params``, ``agreement``, ``kappa``, ``start``,
        ``confusion``, ``parameters`` (all of them), ``evaluations``, ``history``."""
        fitted = self.fitted.to_dict()
        start = self.start.to_dict()
        return {
            "params": dict(self.params),
            "agreement": self.agreement,
            "kappa": self.kappa,
            "n_cells": fitted["n_cells"],
            "confusion": fitted["confusion"],
            "start": {k: start[k] for k in ("agreement", "kappa", "n_cells", "confusion")},
            "parameters": self.parameters.to_dict(),
            "evaluations": self.evaluations,
            "history": list(self.history),
        }


def candidate_values(name: str, start: float) -> list[float]:
    """The grid a parameter is searched on (see the module docstring).

    Examples
    --------
    >>> candidate_values("heartland_agri_share", 0.25)[:3]
    [0.0, 0.05, 0.1]
    >>> [round(v) for v in candidate_values("close_to_urban_minutes", 25.0)][::4]
    [6, 12, 25, 50, 100]
    """
    if name in SHARE_PARAMETERS:
        return sorted({round(0.05 * k, 10) for k in range(21)} | {float(start)})
    base = float(start) if start > 0 else _scale_of(name)
    values = {base * 2.0 ** (k / 4.0) for k in range(-8, 9)}
    if name in _ZERO_OK:
        values.add(0.0)
    if start == 0:
        values.add(0.0)
    return sorted(values)


def _scale_of(name: str) -> float:
    """A parameter's typical size when it starts at 0 (the rule off): its largest value
    in the shipped presets, else 1."""
    from .nordic7 import PRESETS

    values = [float(getattr(Nordic7Params.from_preset(p), name)) for p in PRESETS]
    return max([v for v in values if v > 0], default=1.0)


def _check_fit(fit: Any, grid: Mapping[str, Sequence[float]] | None) -> list[str]:
    if isinstance(fit, str):
        fit = [f.strip() for f in fit.split(",") if f.strip()]
    names = [str(f) for f in fit]
    known = {f.name for f in fields(Nordic7Params)}
    for name in names:
        if name not in known:
            close = [k for k in sorted(known) if name.lower() in k or k in name.lower()]
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError("fit", f"{name!r} is not a nordic7 parameter "
                              f"(docs/methods/place-types.md){hint}")
    if not names:
        raise ConfigError("fit", "name at least one parameter to fit")
    if len(set(names)) != len(names):
        raise ConfigError("fit", f"names a parameter twice: {names}")
    for name, values in (grid or {}).items():
        if name not in names:
            raise ConfigError(f"grid.{name}", "is not among the fitted parameters")
        try:
            ok = len(values) > 0 and all(
                not isinstance(v, bool) and math.isfinite(float(v)) for v in values)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"grid.{name}", f"must be a list of numbers, got {values!r}")
    return names


def _check_reference(reference: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    ref = np.asarray(reference)
    if ref.shape != tuple(shape):
        raise InputError(None, "reference", f"has shape {ref.shape}, the grid has {shape}")
    if ref.dtype.kind == "f":
        ok = np.isfinite(ref)
        if np.any(ref[ok] != np.round(ref[ok])):
            raise InputError(None, "reference", "has fractional class codes")
        ref = np.where(ok, ref, 255)
    ref = ref.astype(np.int64)
    bad = np.unique(ref[(ref != 255) & ((ref < 0) | (ref > 7))])
    if bad.size:
        raise InputError(None, "reference", f"has classes outside 0..7: "
                         f"{bad[:10].tolist()} (the place types are 1..7, 0 water, 255 none)")
    if not np.any(ref != 255):
        raise InputError(None, "reference", "has no class on the grid")
    if not np.any((ref >= 1) & (ref <= 7)):
        raise InputError(None, "reference", "has no place type (1..7) on the grid, only "
                         "water or no data: nothing to calibrate against")
    return ref.astype(np.uint8)


def calibrate_arrays(
    population: np.ndarray,
    reference: np.ndarray,
    *,
    cell_size_m: float,
    fit: Iterable[str] | str,
    params: Nordic7Params | str | None = None,
    grid: Mapping[str, Sequence[float]] | None = None,
    objective: str = "agreement",
    max_rounds: int = 4,
    **layers: Any,
) -> Calibration:
    """:func:`calibrate` on arrays already on one grid.

    Parameters
    ----------
    population : ndarray
        Residents per cell.
    reference : ndarray of int
        Reference classes 0..7 on the same grid (255 or NaN: no reference).
    cell_size_m : float
    fit, params, grid, objective, max_rounds
        As for :func:`calibrate`.
    **layers
        The optional layers of
        :func:`~pari_geo.typology.nordic7.classify_nordic7_array` (``built_share`` ...).

    Returns
    -------
    Calibration
    """
    from ..outofcore.memory import ReusingMemoryEngine
    from ..outofcore.windows import reused_window_means

    if params is None or isinstance(params, str):
        params = Nordic7Params.from_preset(params or "nordregio")
    names = _check_fit(fit, grid)
    if objective not in ("agreement", "kappa"):
        raise ConfigError("objective", f"must be 'agreement' or 'kappa', got {objective!r}")
    pop = np.asarray(population, dtype=np.float64)
    ref = _check_reference(reference, pop.shape)
    engine = ReusingMemoryEngine(pop.shape)
    evaluations = 0
    seen: dict[tuple, tuple[float, ClassAgreement, np.ndarray]] = {}

    def score(p: Nordic7Params) -> tuple[float, ClassAgreement, np.ndarray]:
        nonlocal evaluations
        key = tuple(sorted(p.to_dict().items()))
        if key in seen:
            return seen[key]
        codes, _ = classify_nordic7_array(pop, cell_size_m=cell_size_m, params=p,
                                          engine=engine, **layers)
        evaluations += 1
        agree = compare_classes(ref, codes)
        value = agree.agreement if objective == "agreement" else agree.kappa
        if not math.isfinite(value):
            value = -1.0
        seen[key] = (value, agree, codes)
        return seen[key]

    def tried(p: Nordic7Params, name: str, v: float) -> Nordic7Params | None:
        try:
            changes: dict[str, Any] = {name: v}
            return p.replace(**changes)
        except ConfigError:  # e.g. local_centre_min_pop above urban_core_min_pop
            return None

    history: list[dict[str, Any]] = []
    with reused_window_means():
        start_value, start_agree, _ = score(params)
        best_p, best_value = params, start_value
        for rnd in range(1, int(max_rounds) + 1):
            changed = False
            for name in names:
                current = getattr(best_p, name)
                values = sorted(set(map(float, grid[name])) if grid and name in grid
                                else set(candidate_values(name, getattr(params, name))))
                best_v = current
                for v in values:
                    p = tried(best_p, name, v)
                    if p is None:
                        continue
                    value = score(p)[0]
                    if value > best_value + 1e-12:
                        best_value, best_v = value, v
                if not (grid and name in grid) and name not in SHARE_PARAMETERS:
                    # beyond an end of the grid, a step of 2^(1/4) at a time: from the end
                    # the best value is at while the fit improves, and from both ends
                    # across a plateau (nothing in the grid improved)
                    flat = best_v == current
                    ends = []
                    if best_v == max(values) or flat:
                        ends.append((max(values), 2.0 ** 0.25))
                    if (best_v == min(values) or flat) and min(values) > 0 and \
                            name not in _ZERO_OK:
                        ends.append((min(values), 2.0 ** -0.25))
                    for v, step in ends:
                        gained = False
                        for _ in range(_EXTEND_STEPS):
                            v = v * step if v > 0 else _scale_of(name)
                            values = sorted({*values, v})
                            p = tried(best_p, name, v)
                            value = -np.inf if p is None else score(p)[0]
                            if value > best_value + 1e-12:
                                best_value, best_v, gained = value, v, True
                            elif gained:
                                break
                if not (grid and name in grid):  # zoom in around the best value
                    tried_here = set(values)
                    lo = max([v for v in values if v < best_v], default=best_v)
                    hi = min([v for v in values if v > best_v], default=best_v)
                    for _ in range(_ZOOM_LEVELS):
                        if hi - lo <= 1e-9 * max(1.0, abs(best_v)) or best_value >= 1.0:
                            break
                        points = [float(v) for v in np.linspace(lo, hi, _ZOOM_POINTS + 2)]
                        for v in points[1:-1]:
                            tried_here.add(v)
                            p = tried(best_p, name, v)
                            if p is None:
                                continue
                            value = score(p)[0]
                            if value > best_value + 1e-12:
                                best_value, best_v = value, v
                        lo = max([v for v in tried_here if v < best_v], default=best_v)
                        hi = min([v for v in tried_here if v > best_v], default=best_v)
                if best_v != current:
                    best_p = tried(best_p, name, best_v) or best_p
                    changed = True
                    history.append({"round": rnd, "parameter": name, "value": best_v,
                                    objective: best_value})
            if not changed or best_value >= 1.0:
                break
    _, fitted, codes = score(best_p)
    return Calibration(
        params={n: float(getattr(best_p, n)) for n in names}, parameters=best_p,
        fitted=fitted, start=start_agree, classes=codes, reference=ref,
        evaluations=evaluations, history=history)


def calibrate(
    inputs: Mapping[str, Any],
    reference: Any,
    *,
    fit: Iterable[str] | str,
    preset: str | None = "nordregio",
    params: Nordic7Params | None = None,
    class_column: str | None = None,
    reference_nodata: float | None = None,
    grid: Mapping[str, Sequence[float]] | None = None,
    objective: str = "agreement",
    max_rounds: int = 4,
) -> Calibration:
    """Fit ``nordic7`` parameters to a reference classification.

    Parameters
    ----------
    inputs : mapping
        The inputs of :func:`~pari_geo.typology.classify.classify_nordic7` by keyword:
        ``population`` (required) and any of ``built``, ``land``, ``agri``, ``landcover``,
        ``commuting``, ``service_minutes``, ``speed_kmh``, ``floor_area``, ``built_volume``,
        ``jobs``, ``roads``, ``built_unit`` ... (paths or DataArrays).
    reference : path, DataArray, ndarray or GeoDataFrame
        A class raster (codes 0..7) on any grid in the population's CRS, resampled by
        mode (:func:`~pari_geo.typology.agreement.reference_on_grid`), or points with a
        class column (``class_column``; e.g. Nordregio's 1 km typology points), or an
        array already on the population's grid.
    fit : list of str, or "a,b,c"
        The parameters to fit (names of :class:`~pari_geo.typology.nordic7.Nordic7Params`).
    preset : str, default "nordregio"
        Starting parameters (``nordregio``, ``syke``); ``params`` overrides it.
    params : Nordic7Params, optional
        Starting parameters.
    class_column : str, optional
        Class column of a point reference.
    reference_nodata : number, optional
        A no-data code of the reference raster besides its own.
    grid : dict, optional
        Candidate values of some fitted parameters (instead of the default grids).
    objective : {"agreement", "kappa"}
    max_rounds : int, default 4

    Returns
    -------
    Calibration
        ``.params``, ``.agreement``, ``.kappa``, ``.confusion``, ``.start`` (the same for
        the starting parameters), ``.parameters``, ``.classes``.

    Raises
    ------
    ConfigError
        A fitted parameter that does not exist, an unknown preset or objective.
    InputError
        A reference on another CRS, classes outside 0..7, no overlap; bad inputs as for
        ``classify_nordic7``.

    Examples
    --------
    >>> import pari_geo
    >>> p = pari_geo.ostergotland_paths()
    >>> ref = pari_geo.classify_nordic7(p["population"], heartland_density=20)
    >>> fit = calibrate({"population": p["population"]}, ref, fit=["heartland_density"])
    >>> fit.agreement, fit.params["heartland_density"] > 10
    (1.0, True)
    """
    from ..grid import GridSpec
    from .agreement import reference_on_grid
    from .classify import load_nordic7_inputs

    if "population" not in inputs:
        raise ConfigError("inputs", "needs the population")
    import inspect

    accepted = set(inspect.signature(load_nordic7_inputs).parameters)
    unknown = sorted(set(inputs) - accepted)
    if unknown:
        raise ConfigError(f"inputs.{unknown[0]}", "is not an input of the place types "
                          f"(one of {', '.join(sorted(accepted))})")
    kw = dict(inputs)
    population = kw.pop("population")
    start = params if params is not None else Nordic7Params.from_preset(preset or "nordregio")
    loaded = load_nordic7_inputs(population, **kw)
    g: GridSpec = loaded.grid
    if isinstance(reference, np.ndarray):
        ref = reference
    else:
        ref = reference_on_grid(reference, g, class_column=class_column,
                                nodata=reference_nodata)
    return calibrate_arrays(loaded.population, ref, cell_size_m=g.cell_size_m, fit=fit,
                            params=start, grid=grid, objective=objective,
                            max_rounds=max_rounds, **loaded.layers)
