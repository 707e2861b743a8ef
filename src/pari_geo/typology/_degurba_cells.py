"""DEGURBA per-cell rules: derived layers (section 1) and the per-cell tests of a classification.

Everything here works on one block of cells and gives the same value on any block (a
window mean looks only inside its window), so every engine can apply it: the in-memory
engine on row blocks, the tiled engine tile by tile (``outofcore/ops.py``,
:meth:`~pari_geo.outofcore.ops.GridEngine.cell_map`). :func:`cell_tests` is that block
function: it packs every threshold test one classification needs into a ``uint16`` per
cell (one bit per dense mask, plus water, permanent water and "ignorable" bits) and
computes the smoothed population layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage

from ..outofcore.contiguity import row_blocks
from ..outofcore.ops import or_where

__all__ = [
    "DegurbaLayers",
    "degurba_layers",
    "round_half_even_3",
    "smooth_mean",
    "water_mask",
    "CellPlan",
    "cell_tests",
    "BIT_WATER",
    "BIT_PWATER",
    "BIT_EXCL",
    "BIT_NOPOP",
]


class DegurbaLayers:
    """Input and derived layers of the grid classification (section 1).

    The inputs are kept as given (native dtypes: e.g. ``float64``/``float32`` population,
    ``uint32`` m² of GHSL built-up and land); the derived float64 layers are computed when
    an attribute is read (each read builds a new full-size array), and the classification
    itself derives them block by block, so a grid never holds five float64 layers at once.

    Attributes
    ----------
    pop : ndarray
        Residents per cell, NaN = missing (float64).
    built : ndarray
        Built-up share of the whole cell (0..1), NaN = missing.
    land : ndarray
        Permanent-land share of the cell (0..1), NaN = missing.
    density : ndarray
        ``pop / land`` (IEEE: +inf for land 0 with residents, NaN for 0/0).
    built_per_land : ndarray
        ``round3(built / land)`` with R's rounding.
    cell_size_m : float
        Cell side ``r`` in metres (used to turn m² into shares).
    built_unit, land_unit : {"m2", "share"}
        Unit of the stored built-up and land inputs.

    Examples
    --------
    >>> import numpy as np
    >>> lay = DegurbaLayers(np.array([[4.0]]), np.array([[0.1]]), np.array([[0.5]]))
    >>> lay.density.tolist(), lay.built_per_land.tolist()
    ([[8.0]], [[0.2]])
    """

    __slots__ = ("_pop", "_built", "_land", "cell_size_m", "built_unit", "land_unit")

    def __init__(
        self,
        pop: np.ndarray,
        built: np.ndarray,
        land: np.ndarray,
        *,
        cell_size_m: float = 1000.0,
        built_unit: str = "share",
        land_unit: str = "share",
    ) -> None:
        for unit in (built_unit, land_unit):
            if unit not in ("m2", "share"):
                raise ValueError(f"unit must be 'm2' or 'share', got {unit!r}")
        pop, built, land = np.asarray(pop), np.asarray(built), np.asarray(land)
        if not (pop.shape == built.shape == land.shape) or pop.ndim != 2:
            raise ValueError(f"pop, built and land must be 2-D arrays of one shape, got "
                             f"{pop.shape}, {built.shape}, {land.shape}")
        for name, a in (("pop", pop), ("built", built), ("land", land)):
            if a.dtype.kind not in "fiub":
                raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
        self._pop, self._built, self._land = pop, built, land
        self.cell_size_m = float(cell_size_m)
        self.built_unit, self.land_unit = built_unit, land_unit

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, "land_unit"):
            raise AttributeError("DegurbaLayers is immutable")
        object.__setattr__(self, name, value)

    @property
    def shape(self) -> tuple[int, int]:
        return self._pop.shape

    # block-wise access (float64, same operations as the whole-array attributes)
    def _share(self, a: np.ndarray, unit: str, sl: Any = ...) -> np.ndarray:
        v = np.asarray(a[sl], dtype=np.float64)
        if unit == "m2":
            r = self.cell_size_m
            return v / r / r  # two divisions, as the reference does
        return v

    def pop_block(self, sl: Any = ...) -> np.ndarray:
        return np.asarray(self._pop[sl], dtype=np.float64)

    def built_block(self, sl: Any = ...) -> np.ndarray:
        return self._share(self._built, self.built_unit, sl)

    def land_block(self, sl: Any = ...) -> np.ndarray:
        return self._share(self._land, self.land_unit, sl)

    def density_block(self, sl: Any = ..., pop=None, land=None) -> np.ndarray:
        pop = self.pop_block(sl) if pop is None else pop
        land = self.land_block(sl) if land is None else land
        with np.errstate(divide="ignore", invalid="ignore"):
            return pop / land

    def bpl_block(self, sl: Any = ..., built=None, land=None) -> np.ndarray:
        built = self.built_block(sl) if built is None else built
        land = self.land_block(sl) if land is None else land
        with np.errstate(divide="ignore", invalid="ignore"):
            return round_half_even_3(built / land)

    @property
    def pop(self) -> np.ndarray:
        return self.pop_block()

    @property
    def built(self) -> np.ndarray:
        return self.built_block()

    @property
    def land(self) -> np.ndarray:
        return self.land_block()

    @property
    def density(self) -> np.ndarray:
        return self.density_block()

    @property
    def built_per_land(self) -> np.ndarray:
        return self.bpl_block()

    @property
    def pop_raw(self) -> np.ndarray:
        """Population as given (any numeric dtype; NaN = missing)."""
        return self._pop


def round_half_even_3(x: np.ndarray) -> np.ndarray:
    """Round to 3 decimals the way R (>= 4.0) does.

    Of the two 3-decimal neighbours ``floor(x*1000)/1000`` and ``ceil(x*1000)/1000`` the one
    closer to ``x`` in double arithmetic wins; an exact tie goes to the even last digit.
    NaN and inf pass through.

    Examples
    --------
    >>> import numpy as np
    >>> round_half_even_3(np.array([0.1995, 0.19949, 0.0125, np.inf])).tolist()
    [0.2, 0.199, 0.013, inf]

    (0.0125 is stored as 0.01250000000000000069..., so it is not a tie and goes up.)
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        scaled = x * 1000.0
        lo_i = np.floor(scaled)
        hi_i = np.ceil(scaled)
        lo = lo_i / 1000.0
        hi = hi_i / 1000.0
        d_lo = x - lo
        d_hi = hi - x
        even_lo = np.fmod(lo_i, 2.0) == 0
        out = np.where(d_lo < d_hi, lo, np.where(d_hi < d_lo, hi, np.where(even_lo, lo, hi)))
    finite = np.isfinite(x)
    return np.where(finite, out, x)


def _round3_at_least(x: np.ndarray, t: float) -> np.ndarray:
    """``round_half_even_3(x) >= t``, rounding only the values within 0.01 of ``t``.

    For a threshold in 0..1 the R rounding moves a value by at most 0.0005 (plus a few
    ulps; values beyond 1e12 stay far from ``t``), so outside the band ``|x - t| < 0.01``
    the rounded and the unrounded value are on the same side of ``t``. Inside the band
    the exact rounding decides. NaN fails, +inf passes, as with the full rounding.
    """
    t = float(t)
    with np.errstate(invalid="ignore"):
        if not 0.0 <= t <= 1.0:
            return round_half_even_3(x) >= t
        res = x >= t
        near = (x > t - 0.01) & (x < t + 0.01)
        if near.any():
            res[near] = round_half_even_3(x[near]) >= t
    return res


def degurba_layers(
    pop: np.ndarray,
    built: np.ndarray,
    land: np.ndarray,
    cell_size_m: float,
    *,
    built_unit: str = "m2",
    land_unit: str = "m2",
) -> DegurbaLayers:
    """Derive shares, density and built-up per land from the three inputs (section 1).

    The inputs are kept in their own dtypes (no float64 copies); the derived layers are
    computed on access (see :class:`DegurbaLayers`).

    Parameters
    ----------
    pop, built, land : ndarray
        Co-registered grids; NaN marks missing values (integer inputs have none, so pass
        no-data cells of an integer raster as NaN in a float array).
    cell_size_m : float
        Cell side ``r`` in metres.
    built_unit, land_unit : {"m2", "share"}
        Whether the layer holds m² per cell (GHSL) or a share 0..1.

    Examples
    --------
    >>> import numpy as np
    >>> lay = degurba_layers(np.array([[10.0, 5.0, 0.0]]), np.array([[2e5, 0, 0]]),
    ...                      np.array([[5e5, 0, 0]]), 1000)
    >>> lay.density.tolist(), lay.built_per_land.tolist()
    ([[20.0, inf, nan]], [[0.4, nan, nan]])
    """
    for unit in (built_unit, land_unit):
        if unit not in ("m2", "share"):
            raise ValueError(f"unit must be 'm2' or 'share', got {unit!r}")
    return DegurbaLayers(pop, built, land, cell_size_m=float(cell_size_m),
                         built_unit=built_unit, land_unit=land_unit)


def smooth_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Moving mean of the non-missing values in a ``window`` x ``window`` square (2.7).

    Positions outside the grid are absent; a cell is NaN only when its whole window is
    missing. +inf propagates.

    Examples
    --------
    >>> import numpy as np
    >>> smooth_mean(np.array([[1.0, np.nan, 3.0]]), 3).tolist()
    [[1.0, 2.0, 3.0]]
    """
    present = ~np.isnan(values)
    kernel = np.ones((window, window))
    total = ndimage.correlate(np.where(present, values, 0.0), kernel, mode="constant", cval=0.0)
    count = ndimage.correlate(present.astype(np.float64), kernel, mode="constant", cval=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)


def _water_block(pop, built, land, land_threshold, pop_threshold, built_threshold):
    with np.errstate(invalid="ignore"):
        low_land = (land < land_threshold) | np.isnan(land)
        no_pop = (pop <= pop_threshold) | np.isnan(pop)
        no_built = (built <= built_threshold) | np.isnan(built)
    low_land &= no_pop
    low_land &= no_built
    return low_land


def water_mask(
    lay: DegurbaLayers,
    land_threshold: float = 0.5,
    pop_threshold: float = 0.0,
    built_threshold: float = 0.0,
) -> np.ndarray:
    """Cells passing the water test (2.5); missing values satisfy each condition.

    Examples
    --------
    >>> import numpy as np
    >>> lay = degurba_layers(np.array([[0.0, np.nan, 1.0]]), np.zeros((1, 3)),
    ...                      np.array([[0.0, 0.0, 0.0]]), 1000)
    >>> water_mask(lay).tolist()
    [[True, True, False]]
    """
    out = np.empty(lay.shape, dtype=bool)
    for sl in row_blocks(lay.shape):
        out[sl] = _water_block(lay.pop_block(sl), lay.built_block(sl), lay.land_block(sl),
                               land_threshold, pop_threshold, built_threshold)
    return out


def _dense(x: np.ndarray, threshold: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return x >= threshold  # NaN fails, +inf passes


_WATER = 1  # water test with the user's thresholds
_PWATER = 2  # permanent water: water test with the default thresholds (R2023A)
_IGNORE = 4  # land < 0.5 and POP == 0 (R2023A "ignorable")
_BUILT0 = 8  # bits 3..7: built_per_land >= the i-th built-up threshold


class _CellCodes:
    """The per-cell tests of a classification, derived block by block in one pass.

    Instead of keeping the float64 layers (8 bytes per cell each), every threshold test the
    classification needs is precomputed into two bytes per cell:

    * ``dcode`` (uint8) = number of the sorted density thresholds ``t`` with ``D >= t``
      (NaN passes none, +inf all), so ``D >= t_i`` is ``dcode > i``;
    * ``flags`` (uint8) bits: water test, permanent water, ignorable, and
      ``built_per_land >= b`` for up to five built-up thresholds ``b``.

    The block-wise arithmetic is the same as on whole arrays (``/ r / r``, ``pop / land``,
    R rounding), so every test is bit-identical.
    """

    def __init__(self, lay, density_thresholds=(), built_thresholds=(), water=None,
                 permanent_water=False):
        self.dthr = sorted({float(t) for t in density_thresholds})
        self.bthr = list(dict.fromkeys(float(t) for t in built_thresholds))
        if len(self.dthr) > 255 or len(self.bthr) > 5:
            raise ValueError("too many distinct thresholds")
        shape = lay.shape
        self.dcode = np.zeros(shape, dtype=np.uint8)
        self.flags = np.zeros(shape, dtype=np.uint8)
        if not (self.dthr or self.bthr or water is not None or permanent_water):
            return
        for sl in row_blocks(shape):
            pop = lay.pop_block(sl)
            land = lay.land_block(sl)
            fl = self.flags[sl]
            with np.errstate(invalid="ignore"):
                if self.dthr:
                    d = lay.density_block(sl, pop, land)
                    dc = self.dcode[sl]
                    for t in self.dthr:
                        np.add(dc, d >= t, out=dc)
                    del d
                built = None
                if self.bthr:
                    built = lay.built_block(sl)
                    with np.errstate(divide="ignore"):
                        ratio = built / land
                    tests = [_round3_at_least(ratio, t) for t in self.bthr]
                    for i, test in enumerate(tests):
                        or_where(fl, test, _BUILT0 << i)
                    del tests
                if water is not None or permanent_water:
                    if built is None:
                        built = lay.built_block(sl)
                    if water is not None:
                        or_where(fl, _water_block(pop, built, land, *water), _WATER)
                    if permanent_water:
                        or_where(fl, _water_block(pop, built, land, 0.5, 0.0, 0.0), _PWATER)
                        or_where(fl, (land < 0.5) & (pop == 0), _IGNORE)

    def dense(self, density_threshold: float, built_threshold: float | None = None):
        """New bool array: ``D >= density_threshold`` (or ``BPL >= built_threshold``)."""
        m = self.dcode > self.dthr.index(float(density_threshold))
        if built_threshold is not None:
            np.logical_or(m, self.flags & self.built_bit(built_threshold), out=m)
        return m

    def built_bit(self, built_threshold: float) -> int:
        return _BUILT0 << self.bthr.index(float(built_threshold))

    def flag(self, bit: int) -> np.ndarray:
        """New bool array of the cells with flag ``bit``."""
        m = np.empty(self.flags.shape, dtype=bool)
        np.bitwise_and(self.flags, bit, out=m, casting="unsafe")
        return m


#: bits of the ``uint16`` cell tests besides the dense masks (bits 0..11)
BIT_WATER = 1 << 12  # water test with the user's thresholds
BIT_PWATER = 1 << 13  # permanent water (default thresholds): never joins a centre (R2023A)
BIT_EXCL = 1 << 14  # permanent water or ignorable: left out of the valid neighbours (R2023A)
BIT_NOPOP = 1 << 15  # population missing (NaN): the no-data class when one is asked for
MAX_MASKS = 12

#: a dense mask: (density threshold, built-up threshold or None, smoothing window or None)
MaskKey = tuple[float, float | None, int | None]


def mask_key(t: float, b: float | None, w: int | None) -> MaskKey:
    """The key of the dense mask ``D >= t`` (or ``BPL >= b``), on ``w``-smoothed D."""
    return (float(t), None if b is None else float(b), None if w is None else int(w))


@dataclass(frozen=True)
class CellPlan:
    """The per-cell tests one classification needs (frozen: it travels to dask tasks).

    Attributes
    ----------
    masks : tuple of MaskKey
        Dense masks, bit ``i`` for ``masks[i]`` (at most 12).
    cell_size_m : float
    units : (built unit, land unit)
    water : (land, pop, built) thresholds of the water test, or None
    r2023a : bool
        Compute the permanent-water and excluded bits of R2023A edge smoothing.
    excl_window : int or None
        R2023A "ignorable" on the population smoothed with this window (level 1 with
        ``UC_smooth_pop``).
    size_windows : tuple of int
        Smoothed population layers to output (``"pop_w{w}"``).
    missing_population : bool
        Mark the cells whose population is missing (NaN) with ``BIT_NOPOP``.
    """

    masks: tuple[MaskKey, ...]
    cell_size_m: float
    units: tuple[str, str]
    water: tuple[float, float, float] | None = None
    r2023a: bool = False
    excl_window: int | None = None
    size_windows: tuple[int, ...] = ()
    missing_population: bool = False

    def __post_init__(self) -> None:
        if len(self.masks) > MAX_MASKS:
            raise ValueError("too many distinct dense masks")

    def bit(self, key: MaskKey) -> int:
        return 1 << self.masks.index(key)

    @property
    def halo(self) -> int:
        windows = {k[2] for k in self.masks if k[2] is not None} | set(self.size_windows)
        if self.excl_window is not None:
            windows.add(self.excl_window)
        return max((w // 2 for w in windows), default=0)

    def outputs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bits": np.uint16}
        out.update({f"pop_w{w}": np.float64 for w in self.size_windows})
        return out


def _bits_table(plan: CellPlan, codes: _CellCodes) -> np.ndarray:
    """The ``uint16`` test bits of every ``(dcode << 8) | flags`` pair (see
    :func:`_make_bits_table`; made once per plan and thresholds)."""
    return _make_bits_table(plan, tuple(codes.dthr), tuple(codes.bthr))


@lru_cache(maxsize=64)
def _make_bits_table(plan: CellPlan, dthr: tuple[float, ...],
                     bthr: tuple[float, ...]) -> np.ndarray:
    """The ``uint16`` test bits of every ``(dcode << 8) | flags`` pair.

    The dense masks on unsmoothed density, the water test and the R2023A permanent-water
    and ignorable bits are functions of the two per-cell codes alone, so the per-cell pass
    sets them all with one lookup instead of a pass per test (the smoothed masks and the
    "ignorable" of smoothed population are added afterwards).
    """
    n_d = len(dthr) + 1
    dcode = np.arange(n_d, dtype=np.int64)[:, None]
    flags = np.arange(256, dtype=np.int64)[None, :]
    table = np.zeros((n_d, 256), dtype=np.uint16)
    for i, (t, b, w) in enumerate(plan.masks):
        if w is not None:
            continue
        m = dcode > dthr.index(float(t))
        if b is not None:
            m = m | ((flags & (_BUILT0 << bthr.index(float(b)))) != 0)
        table[np.broadcast_to(m, table.shape)] |= np.uint16(1 << i)
    if plan.water is not None:
        table[np.broadcast_to((flags & _WATER) != 0, table.shape)] |= np.uint16(BIT_WATER)
    if plan.r2023a:
        pw = np.broadcast_to((flags & _PWATER) != 0, table.shape)
        table[pw] |= np.uint16(BIT_PWATER | BIT_EXCL)
        if plan.excl_window is None:
            table[np.broadcast_to((flags & _IGNORE) != 0, table.shape)] |= np.uint16(BIT_EXCL)
    full = np.zeros((256, 256), dtype=np.uint16)  # indexable by any uint16 key
    full[:n_d] = table
    flat = full.ravel()
    flat.flags.writeable = False  # shared by every call with the same plan
    return flat


def cell_tests(blocks: Mapping[str, np.ndarray], inner: tuple[slice, slice], *,
               plan: CellPlan) -> dict[str, np.ndarray]:
    """The block function of the per-cell pass (see the module docstring).

    ``blocks`` holds ``population``, ``built`` and ``land`` windows (with a halo of
    ``plan.halo`` cells where the grid has them), ``inner`` the window without the halo.
    Returns ``bits`` (uint16) and the ``pop_w{w}`` smoothed layers of the inner window.
    """
    lay = DegurbaLayers(blocks["population"], blocks["built"], blocks["land"],
                        cell_size_m=plan.cell_size_m, built_unit=plan.units[0],
                        land_unit=plan.units[1])
    dthr = [k[0] for k in plan.masks if k[2] is None]
    bthr = list(dict.fromkeys(k[1] for k in plan.masks if k[1] is not None))
    codes = _CellCodes(lay, dthr, bthr, water=plan.water, permanent_water=plan.r2023a)
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def smoothed(w: int) -> tuple[np.ndarray, np.ndarray]:
        if w not in cache:
            cache[w] = (smooth_mean(lay.pop, w), smooth_mean(lay.density, w))
        return cache[w]

    # every bit that is a function of (dcode, flags) comes from one table lookup
    table = _bits_table(plan, codes)
    dcode, flags = codes.dcode[inner], codes.flags[inner]
    bits = np.empty(dcode.shape, dtype=np.uint16)
    for sl in row_blocks(dcode.shape):  # the uint16 keys of one block at a time
        key = dcode[sl].astype(np.uint16)
        key <<= 8
        key |= flags[sl]
        np.take(table, key, out=bits[sl])
    for i, (t, b, w) in enumerate(plan.masks):
        if w is None:
            continue  # in the table
        m = _dense(smoothed(w)[1], t)[inner]
        if b is not None:
            m |= (codes.flags[inner] & codes.built_bit(b)) != 0
        or_where(bits, m, 1 << i)
        del m
    if plan.r2023a and plan.excl_window is not None:
        with np.errstate(invalid="ignore"):
            excl = (lay.land[inner] < 0.5) & (smoothed(plan.excl_window)[0][inner] == 0)
        or_where(bits, excl, BIT_EXCL)
    if plan.missing_population:
        pop = blocks["population"][inner]
        if pop.dtype.kind == "f":
            or_where(bits, np.isnan(pop), BIT_NOPOP)
    out = {"bits": bits}
    for w in plan.size_windows:
        out[f"pop_w{w}"] = smoothed(w)[0][inner]
    return out
