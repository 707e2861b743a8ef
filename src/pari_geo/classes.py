"""Class codes, names and colours of the typologies pari_geo produces.

Level 1 and level 2 of the Degree of Urbanisation use the GHSL SMOD codes and colours;
the seven Nordic place types use the codes and colours of ``place-types.md``.

Examples
--------
>>> from pari_geo.classes import DEGURBA_L2
>>> DEGURBA_L2.names[30]
'Urban centre'
>>> DEGURBA_L2.colours[22]
'#A87000'
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = [
    "ClassScheme",
    "DEGURBA_L1",
    "DEGURBA_L2",
    "DEGURBA_UNITS_L1",
    "DEGURBA_UNITS_L2",
    "NORDIC7",
    "SCHEME_TITLES",
    "hex_to_rgba",
    "scheme_for",
    "unit_scheme",
]


#: Map and summary title of each scheme (``da.pari.summary()``, ``plot_classes``).
SCHEME_TITLES = {
    "degurba_l1": "Degree of Urbanisation, level 1",
    "degurba_l2": "Degree of Urbanisation, level 2",
    "nordic7": "Place types (nordic7)",
}


def hex_to_rgba(colour: str) -> tuple[int, int, int, int]:
    """Opaque ``(r, g, b, 255)`` of a ``#RRGGBB`` colour, as GeoTIFF colour tables take.

    Examples
    --------
    >>> hex_to_rgba("#FFAA00")
    (255, 170, 0, 255)
    """
    h = colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255


@dataclass(frozen=True)
class ClassScheme:
    """Codes of a classification with their names, short names and colours.

    Attributes
    ----------
    name : str
        Identifier of the scheme (``degurba_l1``, ``degurba_l2``, ``nordic7``).
    codes : tuple of int
        Codes in class order (most urban first, water last).
    names : dict
        Human-readable name per code.
    short : dict
        Snake-case short name per code (used for table columns).
    colours : dict
        ``#RRGGBB`` colour per code.
    nodata : int or None
        Code of cells without a class, if the scheme has one.
    """

    name: str
    codes: tuple[int, ...]
    names: dict[int, str]
    short: dict[int, str]
    colours: dict[int, str]
    nodata: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def rgba_colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """GeoTIFF colour table: each code's colour, the nodata code transparent.

        Examples
        --------
        >>> DEGURBA_L1.rgba_colormap()[3]
        (255, 0, 0, 255)
        >>> NORDIC7.rgba_colormap()[255]
        (0, 0, 0, 0)
        """
        colormap = {code: hex_to_rgba(self.colours[code]) for code in self.codes}
        if self.nodata is not None:
            colormap[self.nodata] = (0, 0, 0, 0)
        return colormap

    def with_nodata(self, nodata: int | None) -> ClassScheme:
        """Return the same classes with ``nodata`` as the code of cells without a class
        (None: unchanged).

        Examples
        --------
        >>> DEGURBA_L2.with_nodata(255).nodata
        255
        >>> DEGURBA_L2.with_nodata(None).nodata is None
        True
        """
        if nodata is None or nodata == self.nodata:
            return self
        if int(nodata) in self.codes:
            raise ValueError(f"{self.name}: {nodata} is a class code, not a no-data code")
        return replace(self, nodata=int(nodata))

    def with_codes(self, codes: tuple[int, ...]) -> ClassScheme:
        """Return the same classes under custom output codes (same order).

        Examples
        --------
        >>> DEGURBA_L1.with_codes((13, 12, 11, 10)).codes
        (13, 12, 11, 10)
        """
        if len(codes) != len(self.codes):
            raise ValueError(f"{self.name} has {len(self.codes)} classes, got {len(codes)} codes")
        remap = dict(zip(self.codes, codes, strict=True))
        return ClassScheme(
            self.name,
            tuple(codes),
            {remap[k]: v for k, v in self.names.items() if k in remap},
            {remap[k]: v for k, v in self.short.items() if k in remap},
            {remap[k]: v for k, v in self.colours.items() if k in remap},
            self.nodata,
        )


DEGURBA_L1 = ClassScheme(
    name="degurba_l1",
    codes=(3, 2, 1, 0),
    names={3: "Urban centre", 2: "Urban cluster", 1: "Rural grid cell", 0: "Water"},
    short={3: "urban_centre", 2: "urban_cluster", 1: "rural", 0: "water"},
    colours={3: "#FF0000", 2: "#FFAA00", 1: "#73B273", 0: "#7AB6F5"},
)

DEGURBA_L2 = ClassScheme(
    name="degurba_l2",
    codes=(30, 23, 22, 21, 13, 12, 11, 10),
    names={
        30: "Urban centre",
        23: "Dense urban cluster",
        22: "Semi-dense urban cluster",
        21: "Suburban or peri-urban",
        13: "Rural cluster",
        12: "Low density rural",
        11: "Very low density rural",
        10: "Water",
    },
    short={
        30: "urban_centre",
        23: "dense_urban_cluster",
        22: "semi_dense_urban_cluster",
        21: "suburban",
        13: "rural_cluster",
        12: "low_density_rural",
        11: "very_low_density_rural",
        10: "water",
    },
    colours={
        30: "#FF0000",
        23: "#732600",
        22: "#A87000",
        21: "#FFFF00",
        13: "#375623",
        12: "#ABCD66",
        11: "#CDF57A",
        10: "#7AB6F5",
    },
)

NORDIC7 = ClassScheme(
    name="nordic7",
    codes=(1, 2, 3, 4, 5, 6, 7, 0),
    names={
        1: "Inner urban area",
        2: "Outer urban area",
        3: "Peri-urban area",
        4: "Local centre in rural area",
        5: "Rural area close to urban",
        6: "Rural heartland",
        7: "Sparsely populated rural area",
        0: "Water / no land",
    },
    short={
        1: "inner_urban",
        2: "outer_urban",
        3: "peri_urban",
        4: "local_centre",
        5: "rural_close",
        6: "rural_heartland",
        7: "rural_sparse",
        0: "water",
    },
    colours={
        1: "#7F0000",
        2: "#D7301F",
        3: "#FC8D59",
        4: "#8C510A",
        5: "#FDD49E",
        6: "#78C679",
        7: "#238443",
        0: "#7AB6F5",
    },
    nodata=255,
)


DEGURBA_UNITS_L1 = ClassScheme(
    name="degurba_units_l1",
    codes=(3, 2, 1),
    names={3: "City", 2: "Town or semi-dense area", 1: "Rural area"},
    short={3: "city", 2: "town_semi_dense", 1: "rural_area"},
    colours={3: "#FF0000", 2: "#FFAA00", 1: "#73B273"},
)
"""Classes of spatial units (municipalities) at DEGURBA level 1 (``classify_units``)."""

DEGURBA_UNITS_L2 = ClassScheme(
    name="degurba_units_l2",
    codes=(30, 23, 22, 21, 13, 12, 11),
    names={
        30: "City",
        23: "Dense town",
        22: "Semi-dense town",
        21: "Suburb or peri-urban area",
        13: "Village",
        12: "Dispersed rural area",
        11: "Mostly uninhabited area",
    },
    short={
        30: "city",
        23: "dense_town",
        22: "semi_dense_town",
        21: "suburb",
        13: "village",
        12: "dispersed_rural",
        11: "mostly_uninhabited",
    },
    colours={30: "#FF0000", 23: "#732600", 22: "#A87000", 21: "#FFFF00", 13: "#375623",
             12: "#ABCD66", 11: "#CDF57A"},
)
"""Classes of spatial units at DEGURBA level 2 (``classify_units(level=2)``)."""


def unit_scheme(scheme: ClassScheme) -> ClassScheme:
    """The spatial-unit classes that go with a DEGURBA grid scheme (others unchanged).

    Units are classified into cities, towns and rural areas, not into grid-cell classes;
    custom output codes carry over.

    Examples
    --------
    >>> unit_scheme(DEGURBA_L1).names[1]
    'Rural area'
    >>> unit_scheme(DEGURBA_L2.with_codes((8, 7, 6, 5, 4, 3, 2, 1))).names[8]
    'City'
    """
    base = {DEGURBA_L1.name: (DEGURBA_L1, DEGURBA_UNITS_L1),
            DEGURBA_L2.name: (DEGURBA_L2, DEGURBA_UNITS_L2)}.get(scheme.name)
    if base is None:
        return scheme
    grid, units = base
    units_codes = tuple(c for c, g in zip(scheme.codes, grid.codes, strict=True)
                        if g in units.codes)
    if units_codes == units.codes:
        return units
    return units.with_codes(units_codes)


def degurba_scheme(level: int, codes: tuple[int, ...] | None = None,
                   nodata: int | None = None) -> ClassScheme:
    """The DEGURBA grid classes of ``level`` under output ``codes`` (default: the standard
    ones), with ``nodata`` as the code of cells without population, if given.

    Examples
    --------
    >>> degurba_scheme(1, (13, 12, 11, 10), 255).names[13], degurba_scheme(2).nodata
    ('Urban centre', None)
    """
    scheme = DEGURBA_L1 if level == 1 else DEGURBA_L2
    if codes is not None and tuple(codes) != scheme.codes:
        scheme = scheme.with_codes(tuple(codes))
    return scheme.with_nodata(nodata)


def check_nodata(nodata: object, codes: tuple[int, ...], key: str = "nodata",
                 file: str | None = None, *, what: str = "parameter") -> int | None:
    """A no-data code checked against the class codes: an integer 0..255 that is not a
    class code, or None.

    Raises
    ------
    ConfigError
        Naming ``key`` (and ``file``).

    Examples
    --------
    >>> check_nodata(255, DEGURBA_L1.codes)
    255
    >>> check_nodata(None, DEGURBA_L1.codes) is None
    True
    >>> check_nodata(3, DEGURBA_L1.codes)
    Traceback (most recent call last):
    ...
    pari_geo.errors.ConfigError: parameter 'nodata': 3 is a class code (3, 2, 1, 0)
    """
    from numbers import Integral

    from .errors import ConfigError

    if nodata is None:
        return None
    if isinstance(nodata, bool) or not isinstance(nodata, Integral) \
            or not 0 <= int(nodata) <= 255:
        raise ConfigError(key, f"must be an integer code 0..255, got {nodata!r}", file,
                          what=what)
    if int(nodata) in codes:
        raise ConfigError(key, f"{int(nodata)} is a class code {tuple(codes)}", file,
                          what=what)
    return int(nodata)


def scheme_for(name: str) -> ClassScheme:
    """Look a scheme up by name.

    Examples
    --------
    >>> scheme_for("nordic7").nodata
    255
    """
    schemes = {s.name: s for s in (DEGURBA_L1, DEGURBA_L2, NORDIC7, DEGURBA_UNITS_L1,
                                   DEGURBA_UNITS_L2)}
    try:
        return schemes[name]
    except KeyError:
        raise ValueError(f"unknown class scheme {name!r}; known: {sorted(schemes)}") from None
