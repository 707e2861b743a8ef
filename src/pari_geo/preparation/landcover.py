"""Land cover (CORINE, ESA WorldCover, or any class raster) → agricultural share per cell.

Each source cell's class becomes an agricultural weight through a mapping table (shipped:
``corine`` for level-3 codes 111..523, ``corine_grid_code`` for the Copernicus raster's
1..44 values, ``worldcover`` for ESA WorldCover 10..100; or a TOML file of your own with a
``[classes]`` table ``code = weight`` and an optional ``nodata = [...]`` list). The share
of a target cell is the area-weighted mean of its source cells' weights
(:func:`~pari_geo.preparation.rasters.warp_tiles` with ``kind="share"``).

A raster value that is neither in the table nor declared no data is refused, naming the
raster and the values, so a mapping for another nomenclature never passes silently.

Examples
--------
>>> m = load_mapping("worldcover")
>>> m.classes[40], m.classes[30], m.nodata
(1.0, 0.0, (0.0,))
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..config import load_toml
from ..errors import ConfigError, InputError

__all__ = ["AgriMapping", "load_mapping", "BUILTIN_MAPPINGS"]

#: shipped mapping names → preset file (``pari_geo/presets``)
BUILTIN_MAPPINGS = {
    "corine": "corine_agri.toml",
    "corine_grid_code": "corine_agri_grid_code.toml",
    "worldcover": "worldcover_agri.toml",
}
_DEFAULT_NODATA = {"corine": (999.0, 990.0)}


@dataclass(frozen=True)
class AgriMapping:
    """Land-cover class → agricultural weight (0..1), with the values meaning no data."""

    name: str
    classes: dict[int, float]
    nodata: tuple[float, ...] = ()
    source: str | None = None

    def __call__(self, block: np.ndarray, file: str | None = None) -> np.ndarray:
        """Weights of a block of classes (NaN stays NaN; no-data values become NaN)."""
        out = np.full(block.shape, np.nan)
        ok = np.isfinite(block)
        for v in self.nodata:
            ok &= block != v
        if not ok.any():
            return out
        vals = block[ok]
        keys = np.array(sorted(self.classes), dtype=np.float64)
        weights = np.array([self.classes[int(k)] for k in keys])
        pos = np.clip(np.searchsorted(keys, vals), 0, len(keys) - 1)
        known = keys[pos] == vals
        if not known.all():
            unknown = sorted({float(v) for v in np.unique(vals[~known])})
            shown = ", ".join(f"{v:g}" for v in unknown[:10])
            raise InputError(
                file, "landcover",
                f"has classes missing from the mapping '{self.name}': {shown}"
                f"{' ...' if len(unknown) > 10 else ''} (is it the right nomenclature? "
                "add them to your own mapping table or to its nodata list)")
        out[ok] = weights[pos]
        return out


def load_mapping(name_or_path: str | Path, file: str | None = None) -> AgriMapping:
    """A shipped mapping by name (``corine``, ``corine_grid_code``, ``worldcover``) or a
    TOML table of your own; refuses weights outside 0..1 and non-integer classes.

    Examples
    --------
    >>> load_mapping("corine").classes[211]
    1.0
    >>> load_mapping("clc")
    Traceback (most recent call last):
    ...
    pari_geo.errors.ConfigError: key 'landcover.mapping': unknown mapping 'clc' ...
    """
    text = str(name_or_path)
    if text in BUILTIN_MAPPINGS:
        res = resources.files("pari_geo") / "presets" / BUILTIN_MAPPINGS[text]
        with resources.as_file(res) as p:
            raw = load_toml(p)
        where = f"pari_geo/presets/{BUILTIN_MAPPINGS[text]}"
    elif "/" not in text and "." not in text:
        raise ConfigError("landcover.mapping", f"unknown mapping {text!r} (shipped: "
                          f"{', '.join(BUILTIN_MAPPINGS)}; or a path to a TOML table)",
                          file, what="key")
    else:
        raw = load_toml(name_or_path)
        where = text
    table = raw.get("classes", raw)
    classes: dict[int, float] = {}
    for k, v in table.items():
        if k in ("name", "nodata"):
            continue
        try:
            code = int(k)
            w = float(v)
        except (TypeError, ValueError):
            raise ConfigError(f"classes.{k}", f"must map an integer class to a weight 0..1, "
                              f"got {v!r}", where, what="key") from None
        if not 0 <= w <= 1:
            raise ConfigError(f"classes.{k}", f"weight must be in 0..1, got {w:g}", where,
                              what="key")
        classes[code] = w
    if not classes:
        raise ConfigError("classes", "the mapping has no classes", where, what="key")
    nodata = raw.get("nodata", _DEFAULT_NODATA.get(text, ()))
    nodata = (nodata,) if isinstance(nodata, int | float) else tuple(nodata)
    return AgriMapping(str(raw.get("name", Path(text).stem)), classes,
                       tuple(float(v) for v in nodata), where)
