"""``pari-geo calibrate``: fit a run file's place types to a reference, write the result.

The face of :func:`pari_geo.typology.calibrate.calibrate` for run files: the run file gives
the inputs and the starting parameters (``[typology] preset`` and ``parameters``), the
command line the reference, the parameters to fit and the output folder. The folder is
written atomically (complete or not at all) and holds:

* ``calibration.json`` -- ``params`` (the fitted values), ``agreement``, ``kappa``,
  ``start`` (the same figures for the starting parameters), the confusion matrices, every
  parameter, the evaluations and the search history;
* ``calibrated.toml`` -- the run file with the fitted values in ``[typology.parameters]``
  (inputs as absolute paths, output folder ``<its output>_calibrated``): ``pari-geo
  classify calibrated.toml`` gives the fitted classes;
* ``place_types.tif`` -- the fitted classes; ``disagreement.tif`` and ``disagreement.png``
  -- where they differ from the reference (0 same class, 1 other class, 255 not
  compared);
* ``provenance.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["run_calibration", "DISAGREEMENT_CODES"]

#: codes of ``disagreement.tif``
DISAGREEMENT_CODES = {0: "same class", 1: "other class", 255: "not compared"}


def _calibrated_run_file(cfg: Any, fitted: dict[str, float]) -> dict[str, Any]:
    """The run file's data with the fitted parameters, absolute inputs, its own output."""
    from .config import load_toml

    data = load_toml(cfg.source) if cfg.source is not None else {}
    doc = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    inputs: dict[str, Any] = {}
    for name, inp in cfg.inputs.items():
        spec = data.get("inputs", {}).get(name)
        spec = {"path": spec} if isinstance(spec, str) else dict(spec or {})
        spec["path"] = str(inp.path)
        if spec.get("speeds") not in (None, "osm_speeds") and inp.speeds:
            spec["speeds"] = str(inp.speeds)
        inputs[name] = spec
    doc["inputs"] = inputs
    typ = dict(doc.get("typology", {}))
    typ["parameters"] = {**dict(typ.get("parameters", {})), **fitted}
    doc["typology"] = typ
    outputs = dict(doc.get("outputs", {}))
    outputs["dir"] = f"{cfg.out_dir}_calibrated"
    doc["outputs"] = outputs
    return doc


def run_calibration(
    cfg: Any,
    reference: str | os.PathLike,
    *,
    fit: list[str] | str,
    out_dir: str | os.PathLike,
    class_column: str | None = None,
    objective: str = "agreement",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Calibrate the place types of a validated run (:class:`~pari_geo.runconfig.RunConfig`).

    Parameters
    ----------
    cfg : RunConfig
        A ``nordic7`` run (its inputs and starting parameters).
    reference : path
        Class raster on any grid in the population's CRS, or points with ``class_column``.
    fit : list of str or "a,b,c"
        Parameters to fit.
    out_dir : path
        The output folder (replaced as a whole only with ``overwrite`` and only if
        pari_geo wrote it).
    class_column : str, optional
        Class column of a point reference.
    objective : {"agreement", "kappa"}
    overwrite : bool

    Returns
    -------
    dict
        ``out_dir``, ``calibration`` (the :class:`~pari_geo.typology.calibrate.Calibration`)
        and ``files``.
    """
    from ._version import __version__
    from .classes import NORDIC7, ClassScheme
    from .grid import GridSpec
    from .io_write import atomic_dir, check_not_inputs, write_class_raster
    from .preparation.runfile import toml_text
    from .typology.agreement import reference_on_grid
    from .typology.calibrate import calibrate_arrays
    from .typology.classify import load_nordic7_inputs
    from .typology.registry import place_type_arguments

    if cfg.typology != "nordic7":
        raise ConfigError("typology.name", f"calibration fits the nordic7 place types, the run "
                          f"file has {cfg.typology!r}", str(cfg.source) if cfg.source else None)
    out = Path(out_dir)
    protect = [inp.path for inp in cfg.inputs.values()] + [Path(reference)]
    if cfg.source is not None:
        protect.append(cfg.source)
    check_not_inputs(out, protect)
    kw = place_type_arguments(cfg)
    start = kw.pop("params")
    if kw.get("landcover") is None:
        kw.pop("landcover_mapping", None)
    loaded = load_nordic7_inputs(cfg.inputs["population"].path,
                                 **{k: v for k, v in kw.items() if v is not None})
    grid: GridSpec = loaded.grid
    ref = reference_on_grid(reference, grid, class_column=class_column)
    result = calibrate_arrays(loaded.population, ref, cell_size_m=grid.cell_size_m, fit=fit,
                              params=start, objective=objective, **loaded.layers)
    summary = {**result.to_dict(), "reference": str(reference), "fit": list(result.params),
               "objective": objective, "run_file": str(cfg.source),
               "pari_geo_version": __version__}
    compared = (ref != 255) & (result.classes != 255)
    disagree = np.full(ref.shape, 255, np.uint8)
    disagree[compared] = (ref[compared] != result.classes[compared]).astype(np.uint8)
    scheme = ClassScheme(name="disagreement", codes=(0, 1),
                         names={0: "Same class", 1: "Other class"},
                         short={0: "same", 1: "other"},
                         colours={0: "#D9D9D9", 1: "#D7301F"}, nodata=255)
    tags = {"typology": "nordic7", "calibration": json.dumps(result.params, sort_keys=True),
            "agreement": f"{result.agreement:.6f}", "kappa": f"{result.kappa:.6f}",
            "pari_geo_version": __version__}
    with atomic_dir(out, overwrite, protect=protect) as stage:
        classes = grid.to_dataarray(result.classes, name="place_type",
                                    attrs={"typology": "nordic7",
                                           "parameters": json.dumps(
                                               result.parameters.to_dict(), sort_keys=True)},
                                    nodata=NORDIC7.nodata)
        write_class_raster(classes, stage / "place_types.tif", NORDIC7, tags=tags)
        dis = grid.to_dataarray(disagree, name="disagreement", nodata=255)
        write_class_raster(dis, stage / "disagreement.tif", scheme, tags=tags)
        _disagreement_map(disagree, grid, stage / "disagreement.png", result)
        (stage / "calibration.json").write_text(
            json.dumps(summary, indent=2, sort_keys=True, allow_nan=False) + "\n",
            encoding="utf-8")
        header = (f"# Written by pari-geo calibrate (pari_geo {__version__}): {cfg.source} "
                  f"with {', '.join(result.params)} fitted to {reference}\n"
                  f"# agreement {result.start.agreement:.4f} -> {result.agreement:.4f}, "
                  f"kappa {result.start.kappa:.4f} -> {result.kappa:.4f}\n")
        (stage / "calibrated.toml").write_text(
            toml_text(_calibrated_run_file(cfg, result.params), header=header),
            encoding="utf-8")
        (stage / "provenance.json").write_text(json.dumps(
            {"pari_geo_version": __version__, "command": "calibrate",
             "run_file": str(cfg.source), "reference": str(reference),
             "fit": list(result.params)}, indent=2) + "\n", encoding="utf-8")
        files = sorted(p.name for p in stage.iterdir())
    return {"out_dir": out, "calibration": result, "files": files}


def _disagreement_map(disagree: np.ndarray, grid: Any, path: Path, result: Any) -> None:
    """A PNG of the cells whose fitted class differs from the reference."""
    from .plot import new_figure, save_figure

    fig, ax = new_figure(figsize=(7, 7))
    from matplotlib.colors import ListedColormap

    shown = np.where(disagree == 255, np.nan, disagree.astype(float))
    left, top = grid.transform.c, grid.transform.f
    right = left + grid.transform.a * grid.shape[1]
    bottom = top + grid.transform.e * grid.shape[0]
    ax.imshow(shown, cmap=ListedColormap(["#D9D9D9", "#D7301F"]), vmin=0, vmax=1,
              extent=(left, right, bottom, top), interpolation="nearest")
    ax.set_title(f"Other class than the reference (red): {1 - result.agreement:.1%} of cells\n"
                 f"agreement {result.start.agreement:.3f} -> {result.agreement:.3f}, "
                 f"kappa {result.start.kappa:.3f} -> {result.kappa:.3f}", fontsize=9)
    ax.set_axis_off()
    save_figure(fig, path)
