"""Issue 8: the bad-input matrix, every case through the Python API *and* the CLI.

Each case must raise a specific :class:`~pari_geo.errors.PariGeoError` subclass in Python and,
on the command line, exit non-zero with exactly one stderr line (no traceback) naming the
file, layer or key and the problem; and no output (nor hidden ``.part`` temporary) may be left
behind. The data are tiny synthetic 1 km grids, so the whole matrix runs in seconds.

Decisions documented here (and in the final rows):

* partial overlap of built/land with the population grid is refused (issue 12: it cropped
  the result, or left missing cells, without a word);
* finer resolutions are aligned by sum (m²) and work silently; coarser layers are refused
  (issue 12: they were spread over the finer cells without a word);
* NaN population cells are missing data (accepted); an all-NaN population is refused;
* more than 1e7 residents per km² in a cell is refused (wrong unit or corrupt file);
* built-up larger than permanent land is accepted with a ``UserWarning`` (GHSL has such
  cells where buildings stand on water);
* units in another CRS are reprojected with a ``UserWarning``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from helpers import write_tif
from shapely.geometry import Point, Polygon, box

from pari_geo.classes import DEGURBA_L2
from pari_geo.cli import main
from pari_geo.errors import ConfigError, InputError, OutputError, PariGeoError
from pari_geo.io_write import write_class_raster, write_table
from pari_geo.pipeline import run_classification
from pari_geo.runconfig import load_run
from pari_geo.typology.degurba import classify_grid
from pari_geo.typology.units import classify_units

ROOT = Path(__file__).resolve().parents[1]
N = 20  # cells per side of the synthetic grids
T = Affine(1000, 0, 0, 0, -1000, N * 1000)
CRS = "ESRI:54009"


# --- synthetic data ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Tiny valid inputs: pop/built/land (m²) grids, a level-2 classification, 4 units."""
    d = tmp_path_factory.mktemp("good")
    rng = np.random.default_rng(8)
    yy, xx = np.mgrid[0:N, 0:N]
    pop = 6000 * np.exp(-((yy - 8) ** 2 + (xx - 9) ** 2) / 12) + rng.gamma(1, 30, (N, N))
    built = np.clip(pop * 60, 0, 6e5)
    land = np.full((N, N), 1e6)
    land[-2:, :] = 3e5  # some water along the bottom
    write_tif(d / "pop.tif", pop)
    write_tif(d / "built.tif", built)
    write_tif(d / "land.tif", land)
    cls = classify_grid(d / "pop.tif", d / "built.tif", d / "land.tif", level=2)
    write_class_raster(cls, d / "classes.tif", DEGURBA_L2)
    half = N * 500
    units = gpd.GeoDataFrame(
        {"UID": [1, 2, 3, 4], "name": list("abcd")},
        geometry=[
            box(0, half, half, 2 * half),
            box(half, half, 2 * half, 2 * half),
            box(0, 0, half, half),
            box(half, 0, 2 * half, half),
        ],
        crs=CRS,
    )
    units.to_file(d / "units.gpkg", driver="GPKG")
    return d


def run_toml(d: Path, w: Path, *, extra_typology: str = "", inputs: str | None = None,
             text: str | bytes | None = None, name: str = "run.toml") -> Path:
    """Write a run file into ``w`` whose outputs go to ``w/out/run``."""
    inputs = inputs if inputs is not None else (
        f'population = "{d / "pop.tif"}"\n'
        f'built = {{ path = "{d / "built.tif"}", unit = "m2" }}\n'
        f'land = {{ path = "{d / "land.tif"}", unit = "m2" }}\n'
    )
    if text is None:
        text = (
            f"[inputs]\n{inputs}\n[typology]\nname = \"degurba\"\nlevel = 2\n{extra_typology}\n"
            f'[outputs]\ndir = "{w / "out" / "run"}"\n'
        )
    f = w / name
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text)
    return f


# --- API and CLI entry points ----------------------------------------------------------------
def api_grid(pop, built, land, out, *, overwrite=False, **kw):
    da = classify_grid(pop, built, land, **kw)
    write_class_raster(da, out, DEGURBA_L2, overwrite=overwrite)


def cli_grid(pop, built, land, out, *extra):
    return ["degurba", "grid", "--population", str(pop), "--built", str(built),
            "--land", str(land), "--out", str(out), *extra]


def api_units(d, units, out, *, cls=None, pop=None, **kw):
    t = classify_units(units, cls or d / "classes.tif", pop or d / "pop.tif", id="UID",
                       level=2, **kw)
    write_table(t, out)


def cli_units(d, units, out, *, cls=None, pop=None):
    return ["degurba", "units", "--units", str(units), "--id", "UID", "--classification",
            str(cls or d / "classes.tif"), "--population", str(pop or d / "pop.tif"),
            "--level", "2", "--out", str(out)]


def api_run(toml, overwrite=False):
    run_classification(load_run(toml), overwrite=overwrite, progress=False)


def cli_run(toml, *extra):
    return ["classify", str(toml), "--quiet", *extra]


@dataclass
class Case:
    api: Callable[[], object]
    cli: list[str]
    exc: type
    where: str  # the file, layer or key the message must name
    problem: str  # the problem the message must state
    patch: Callable[[pytest.MonkeyPatch], None] | None = None
    notes: dict = field(default_factory=dict)


# --- builders of bad inputs ------------------------------------------------------------------
def tif(w: Path, name: str, values, **kw) -> Path:
    return write_tif(w / name, np.asarray(values, dtype=kw.pop("dtype", np.float64)), **kw)


def grid_case(d, w, out, exc, where, problem, *, pop=None, built=None, land=None,
              extra=(), api_kw=None, patch=None, target=None):
    pop, built, land = pop or d / "pop.tif", built or d / "built.tif", land or d / "land.tif"
    target = target or out / "l2.tif"
    api_kw = dict(api_kw or {})
    overwrite = api_kw.pop("overwrite", False)
    return Case(
        lambda: api_grid(pop, built, land, target, overwrite=overwrite, **api_kw),
        cli_grid(pop, built, land, target, *extra), exc, where, problem, patch,
    )


def units_case(d, w, out, gdf_or_path, where, problem, *, cls=None, pop=None, exc=InputError):
    if isinstance(gdf_or_path, gpd.GeoDataFrame):
        path = w / "bad_units.gpkg"
        gdf_or_path.to_file(path, driver="GPKG")
    else:
        path = gdf_or_path
    target = out / "units.csv"
    return Case(lambda: api_units(d, path, target, cls=cls, pop=pop),
                cli_units(d, path, target, cls=cls, pop=pop), exc, where, problem)


def run_case(d, w, out, exc, where, problem, *, patch=None, overwrite=False, **kw):
    toml = run_toml(d, w, **kw)
    extra = ("--overwrite",) if overwrite else ()
    return Case(lambda: api_run(toml, overwrite), cli_run(toml, *extra), exc, where, problem,
                patch)


def _units(d) -> gpd.GeoDataFrame:
    return gpd.read_file(d / "units.gpkg")


def _deny_access(path: Path, mode: int):
    """Simulate a permission bit for root, who ignores chmod (os.access is what we check)."""
    def patch(mp):
        real = os.access

        def fake(p, m, *a, **k):
            if str(p) == str(path) and m & mode:
                return False
            return real(p, m, *a, **k)

        mp.setattr(os, "access", fake)
    return patch


def _enospc_copy(mp):
    """GDAL's COG copy writes half a file, then the disk is full."""
    def fake(src, dst, **kw):
        Path(dst).write_bytes(b"II*\x00" + b"\x00" * 4096)
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    mp.setattr("rasterio.shutil.copy", fake)


def _gdal_enospc_copy(mp):
    """The same, but as GDAL reports it (a CPLE error, not an OSError)."""
    from rasterio._err import CPLE_FileIOError

    def fake(src, dst, **kw):
        Path(dst).write_bytes(b"II*\x00" + b"\x00" * 4096)
        raise CPLE_FileIOError(3, 3, f"{dst}: Free disk space available is 0 bytes")

    mp.setattr("rasterio.shutil.copy", fake)


def _enospc_csv(mp):
    import pandas as pd

    def fake(self, path, *a, **k):
        Path(path).write_text("code,name\n3")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    mp.setattr(pd.DataFrame, "to_csv", fake)


def _enospc_gpkg(mp):
    from pyogrio.errors import DataSourceError

    def fake(self, path, *a, **k):
        Path(path).write_bytes(b"SQLite format 3\x00")
        raise DataSourceError(f"{path}: sqlite3_step() failed: database or disk is full")

    mp.setattr(gpd.GeoDataFrame, "to_file", fake)


def _enospc_rename_dir(mp):
    real = os.replace

    def fake(src, dst, *a, **k):
        if ".part-" in Path(src).name and Path(src).is_dir():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *a, **k)

    mp.setattr(os, "replace", fake)


def _cases() -> dict[str, Callable]:
    """name -> builder(d, w, out) -> Case."""
    c: dict[str, Callable] = {}
    ok = np.ones((N, N))

    # -- files -------------------------------------------------------------------------------
    c["missing file"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "nope.tif [population]", "file not found", pop=w / "nope.tif")

    def unreadable(d, w, o):
        f = tif(w, "locked.tif", ok)
        f.chmod(0)
        return grid_case(d, w, o, InputError, "locked.tif [built]", "not readable", built=f,
                         patch=_deny_access(f, os.R_OK))
    c["unreadable file"] = unreadable

    def truncated(d, w, o):
        raw = (ROOT / "data/sample_grids/belgium/POP.tif").read_bytes()
        f = w / "half.tif"
        f.write_bytes(raw[: len(raw) // 2])
        return grid_case(d, w, o, InputError, "half.tif [population]",
                         "cannot be read as a raster", pop=f)
    c["truncated GeoTIFF"] = truncated

    def zero(d, w, o):
        f = w / "zero.tif"
        f.write_bytes(b"")
        return grid_case(d, w, o, InputError, "zero.tif [land]", "empty (0 bytes)", land=f)
    c["zero-byte file"] = zero

    def junk(d, w, o):
        f = w / "notes.tif"
        f.write_text("population per cell, see attached spreadsheet\n" * 30)
        return grid_case(d, w, o, InputError, "notes.tif [population]",
                         "cannot be read as a raster", pop=f)
    c["not a raster"] = junk

    c["directory instead of file"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "[built]", "is a directory", built=d)

    # -- georeferencing ----------------------------------------------------------------------
    c["no CRS"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "nocrs.tif [population]", "has no CRS",
        pop=tif(w, "nocrs.tif", ok, crs=None))
    c["geographic CRS"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "geo.tif [built]", "geographic CRS",
        built=tif(w, "geo.tif", ok, crs="EPSG:4326", transform=Affine(0.01, 0, 4, 0, -0.01, 51)))
    c["CRS not in metres"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "feet.tif [population]", "not in metres",
        pop=tif(w, "feet.tif", ok, crs="EPSG:2263"))
    c["rotated transform"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "rot.tif [population]", "rotated",
        pop=tif(w, "rot.tif", ok, transform=Affine(1000, 50, 0, 50, -1000, N * 1000)))
    c["non-square cells"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "rect.tif [land]", "non-square",
        land=tif(w, "rect.tif", ok, transform=Affine(1000, 0, 0, 0, -500, N * 1000)))
    c["layers do not overlap"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "far.tif [built]", "does not overlap",
        built=tif(w, "far.tif", ok, transform=Affine(1000, 0, 5e6, 0, -1000, 5e6)))
    c["layer on another grid does not overlap"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "far500.tif [land]", "does not overlap",
        land=tif(w, "far500.tif", np.ones((4, 4)) * 2.5e5,
                 transform=Affine(500, 0, 5e6, 0, -500, 5e6)))

    # -- values ------------------------------------------------------------------------------
    c["all-NaN population"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "nan.tif [population]", "no data",
        pop=tif(w, "nan.tif", np.full((N, N), np.nan)))
    c["+inf population"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "inf.tif [population]", "infinite",
        pop=tif(w, "inf.tif", np.where(np.eye(N) > 0, np.inf, 10.0)))
    c["-inf population"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "minf.tif [population]", "infinite",
        pop=tif(w, "minf.tif", np.where(np.eye(N) > 0, -np.inf, 10.0)))
    c["negative population"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "neg.tif [population]", "negative",
        pop=tif(w, "neg.tif", np.where(np.eye(N) > 0, -5.0, 10.0)))
    c["absurd population density"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "huge.tif [population]", "per km2",
        pop=tif(w, "huge.tif", np.where(np.eye(N) > 0, 3e7, 10.0)))
    c["absurd density on a 100 m grid"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "huge100.tif [population]", "per km2",
        pop=tif(w, "huge100.tif", np.full((N, N), 2e5),
                transform=Affine(100, 0, 0, 0, -100, N * 1000)))
    c["built share above 1"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "share.tif [built]", "outside 0..1",
        built=tif(w, "share.tif", np.full((N, N), 1.5)), extra=("--built-unit", "share"),
        api_kw={"built_unit": "share"})
    c["negative land share"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "negland.tif [land]", "negative",
        land=tif(w, "negland.tif", np.full((N, N), -0.2)), extra=("--land-unit", "share"),
        api_kw={"land_unit": "share"})
    c["built m2 above cell area"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "bigbuilt.tif [built]", "more than the cell area",
        built=tif(w, "bigbuilt.tif", np.full((N, N), 2e6)))
    c["m2 layer declared as share"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "land.tif [land]", "declared a share",
        extra=("--land-unit", "share"), api_kw={"land_unit": "share"})
    c["share layer declared as m2"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "sharel.tif [land]", "looks like a share",
        land=tif(w, "sharel.tif", np.full((N, N), 0.9)))
    c["all-NaN land"] = lambda d, w, o: grid_case(
        d, w, o, InputError, "nanland.tif [land]", "no data",
        land=tif(w, "nanland.tif", np.full((N, N), np.nan)))

    # -- parameters on the command line / in the API -----------------------------------------
    c["unknown parameter"] = lambda d, w, o: grid_case(
        d, w, o, ConfigError, "UC_density", "unknown DEGURBA parameter",
        extra=("--set", "UC_density=1000"), api_kw={"UC_density": 1000})
    c["wrong parameter type"] = lambda d, w, o: grid_case(
        d, w, o, ConfigError, "UC_max_gap", "must be",
        extra=("--set", "UC_max_gap=wide"), api_kw={"UC_max_gap": "wide"})
    c["out-of-range parameter"] = lambda d, w, o: grid_case(
        d, w, o, ConfigError, "UC_contiguity_rule", "4 (rook) or 8 (queen)",
        extra=("--set", "UC_contiguity_rule=6"), api_kw={"UC_contiguity_rule": 6})
    c["negative threshold"] = lambda d, w, o: grid_case(
        d, w, o, ConfigError, "RC_size_threshold", "must not be negative",
        extra=("--set", "RC_size_threshold=-1"), api_kw={"RC_size_threshold": -1})
    c["even smoothing window"] = lambda d, w, o: grid_case(
        d, w, o, ConfigError, "UC_smooth_pop_window", "odd",
        extra=("--set", "UC_smooth_pop_window=4"), api_kw={"UC_smooth_pop_window": 4})
    c["codes contradict level"] = lambda d, w, o: grid_case(
        d, w, o, ConfigError, "values", "level 2 needs 8 codes",
        extra=("--values", "3,2,1,0"), api_kw={"values": (3, 2, 1, 0)})
    c["buffer crops whole grid"] = lambda d, w, o: grid_case(
        d, w, o, ConfigError, "buffer_m", "crops away the whole grid",
        extra=("--buffer-m", "50000"), api_kw={"buffer_m": 50000})

    # -- units (vector) ----------------------------------------------------------------------
    c["units file missing"] = lambda d, w, o: units_case(
        d, w, o, w / "gone.gpkg", "gone.gpkg [units]", "does not exist")

    def units_zero(d, w, o):
        f = w / "zero.gpkg"
        f.write_bytes(b"")
        return units_case(d, w, o, f, "zero.gpkg [units]", "cannot be read as a vector layer")
    c["units zero-byte"] = units_zero

    def units_junk(d, w, o):
        f = w / "junk.gpkg"
        f.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 4)
        return units_case(d, w, o, f, "junk.gpkg [units]", "cannot be read as a vector layer")
    c["units not a vector file"] = units_junk

    def units_empty(d, w, o):
        f = w / "empty.geojson"
        f.write_text('{"type": "FeatureCollection", "features": []}')
        return units_case(d, w, o, f, "empty.geojson [units]", "no features")
    c["units empty file"] = units_empty

    def units_invalid(d, w, o):
        u = _units(d)
        u.loc[0, "geometry"] = Polygon([(0, 0), (5000, 5000), (5000, 0), (0, 5000)])  # bowtie
        return units_case(d, w, o, u, "[units]", "invalid geometries")
    c["units invalid geometry"] = units_invalid

    def units_empty_geom(d, w, o):
        u = _units(d)
        u.loc[1, "geometry"] = Polygon()
        return units_case(d, w, o, u, "[units]", "missing or empty geometry")
    c["units empty geometry"] = units_empty_geom

    def units_mixed(d, w, o):
        u = _units(d)
        u = gpd.GeoDataFrame(u, geometry=[*u.geometry[:3], Point(15000, 5000)], crs=u.crs)
        return units_case(d, w, o, u, "[units]", "not (multi)polygons")
    c["units mixed geometry types"] = units_mixed

    def units_dup(d, w, o):
        u = _units(d)
        u["UID"] = [1, 2, 2, 4]
        return units_case(d, w, o, u, "[units]", "duplicate ids")
    c["units duplicate ids"] = units_dup

    def units_noid(d, w, o):
        u = _units(d).rename(columns={"UID": "code"})
        return units_case(d, w, o, u, "[units]", "'UID' is missing")
    c["units missing id column"] = units_noid

    def units_nocrs(d, w, o):
        u = _units(d).set_crs(None, allow_override=True)
        return units_case(d, w, o, u, "[units]", "has no CRS")
    c["units without CRS"] = units_nocrs

    def units_far(d, w, o):
        u = _units(d)
        u["geometry"] = u.geometry.translate(5e6, 5e6)
        return units_case(d, w, o, u, "[units]", "no unit intersects")
    c["units outside the grid"] = units_far

    c["classification without CRS"] = lambda d, w, o: units_case(
        d, w, o, d / "units.gpkg", "cls_nocrs.tif [classification]", "has no CRS",
        cls=tif(w, "cls_nocrs.tif", np.full((N, N), 11.0), crs=None))
    c["population in another CRS than classification"] = lambda d, w, o: units_case(
        d, w, o, d / "units.gpkg", "pop3035.tif [population]", "differs",
        pop=tif(w, "pop3035.tif", np.full((N, N), 5.0), crs="EPSG:3035"))

    # -- run files (TOML) --------------------------------------------------------------------
    c["run file missing"] = lambda d, w, o: Case(
        lambda: api_run(w / "none.toml"), cli_run(w / "none.toml"), ConfigError,
        "none.toml", "not found")
    c["malformed TOML"] = lambda d, w, o: run_case(
        d, w, o, ConfigError, "run.toml", "not valid TOML", text="[inputs\npopulation = 1\n")
    c["TOML not UTF-8"] = lambda d, w, o: run_case(
        d, w, o, ConfigError, "run.toml", "not valid TOML", text=b"a = '\xff\xfe'\n")
    c["empty TOML"] = lambda d, w, o: run_case(
        d, w, o, ConfigError, "'inputs'", "missing section", text="")
    c["unknown key"] = lambda d, w, o: run_case(
        d, w, o, ConfigError, "typology.levle", "unknown key", extra_typology="levle = 1")
    c["wrong type"] = lambda d, w, o: run_case(
        d, w, o, ConfigError, "typology.buffer_m", "must be", extra_typology='buffer_m = "1km"')
    c["out-of-range parameter in run file"] = lambda d, w, o: run_case(
        d, w, o, ConfigError, "water_land_threshold", "share in 0..1",
        extra_typology="[typology.parameters]\nwater_land_threshold = 1.5")
    c["unknown preset"] = lambda d, w, o: run_case(
        d, w, o, ConfigError, "preset", "unknown DEGURBA preset",
        extra_typology='preset = "degurba_2030"')
    c["missing layer for typology"] = lambda d, w, o: run_case(
        d, w, o, ConfigError, "inputs.land", "missing",
        inputs=f'population = "{d / "pop.tif"}"\nbuilt = "{d / "built.tif"}"\n')
    c["bad input in run file"] = lambda d, w, o: run_case(
        d, w, o, InputError, "nan.tif [population]", "no data",
        inputs=f'population = "{tif(w, "nan.tif", np.full((N, N), np.nan))}"\n'
        f'built = "{d / "built.tif"}"\nland = "{d / "land.tif"}"\n')

    def landcover(d, w, o):
        lc = tif(w, "lc.tif", np.where(np.eye(N) > 0, 999.0, 211.0))
        inputs = (f'population = "{d / "pop.tif"}"\n'
                  f'built = {{ path = "{d / "built.tif"}", unit = "m2" }}\n'
                  f'land = {{ path = "{d / "land.tif"}", unit = "m2" }}\n'
                  f'landcover = "{lc}"\n')
        text = (f"[inputs]\n{inputs}\n[typology]\nname = \"nordic7\"\n\n"
                f'[outputs]\ndir = "{w / "out" / "run"}"\n')
        return run_case(d, w, o, InputError, "lc.tif [landcover]", "999", text=text)
    c["land cover with unknown classes"] = landcover

    # -- outputs -----------------------------------------------------------------------------
    c["output directory missing"] = lambda d, w, o: grid_case(
        d, w, o, OutputError, "nope", "does not exist", target=o / "nope" / "l2.tif")
    c["output directory read-only"] = lambda d, w, o: grid_case(
        d, w, o, OutputError, "l2.tif", "not writable", patch=_deny_access(o, os.W_OK))

    def exists(d, w, o):
        (o / "l2.tif").write_bytes(b"previous result")
        return grid_case(d, w, o, OutputError, "l2.tif", "exists")
    c["output exists without --overwrite"] = exists

    def is_dir(d, w, o):
        (o / "l2.tif").mkdir()
        return grid_case(d, w, o, OutputError, "l2.tif", "is a directory",
                         extra=("--overwrite",), api_kw={"overwrite": True})
    c["output is a directory"] = is_dir

    c["disk full writing the raster"] = lambda d, w, o: grid_case(
        d, w, o, OutputError, "l2.tif", "no space left on device", patch=_enospc_copy)
    c["disk full as GDAL reports it"] = lambda d, w, o: grid_case(
        d, w, o, OutputError, "l2.tif", "no space left on device", patch=_gdal_enospc_copy)

    def run_exists(d, w, o):
        (o / "run").mkdir()
        (o / "run" / "old.txt").write_text("old")
        return run_case(d, w, o, OutputError, "run", "exists")
    c["run folder exists without --overwrite"] = run_exists
    c["run folder parent read-only"] = lambda d, w, o: run_case(
        d, w, o, OutputError, "run", "not writable", patch=_deny_access(o, os.W_OK))
    c["disk full writing a run table"] = lambda d, w, o: run_case(
        d, w, o, OutputError, "population_by_class.csv", "no space left on device",
        patch=_enospc_csv)

    def run_gpkg(d, w, o):
        inputs = (f'population = "{d / "pop.tif"}"\n'
                  f'built = {{ path = "{d / "built.tif"}", unit = "m2" }}\n'
                  f'land = {{ path = "{d / "land.tif"}", unit = "m2" }}\n'
                  f'units = {{ path = "{d / "units.gpkg"}", id = "UID" }}\n')
        return run_case(d, w, o, OutputError, ".gpkg", "no space left on device", inputs=inputs,
                        patch=_enospc_gpkg)
    c["disk full writing a GeoPackage"] = run_gpkg

    def run_rename(d, w, o):
        (o / "run").mkdir()
        (o / "run" / "provenance.json").write_text('{"pari_geo_version": "0"}')
        (o / "run" / "summary.md").write_text("old")
        return run_case(d, w, o, OutputError, "run", "no space left on device", overwrite=True,
                        patch=_enospc_rename_dir)
    c["disk full at the final rename keeps the old run"] = run_rename

    # -- regressions of bugs found by this matrix (fixed) ---------------------------------
    def table_format(d, w, o):
        case = grid_case(d, w, o, OutputError, "t.xlsx", "unknown table format",
                         extra=("--table", str(o / "t.xlsx")))
        case.api = lambda: (_ for _ in ()).throw(OutputError(str(o / "t.xlsx"),
                                                             "unknown table format"))
        return case
    c["unknown --table format leaves the raster behind"] = table_format

    def table_enospc(d, w, o):
        case = grid_case(d, w, o, OutputError, "t.csv", "no space left on device",
                         extra=("--table", str(o / "t.csv")), patch=_enospc_csv)
        case.api = lambda: write_table(__import__("pandas").DataFrame({"a": [1]}), o / "t.csv")
        return case
    c["disk full on --table leaves the raster behind"] = table_enospc

    c["dissolve_by without units"] = lambda d, w, o: run_case(
        d, w, o, ConfigError, "typology.dissolve_by", "units", extra_typology='dissolve_by = "x"')
    return c


CASES = _cases()
XFAIL: dict[str, str] = {}


def _snapshot(root: Path) -> list[tuple[str, int, int]]:
    """Every file and folder under ``root`` (hidden ones included) with size and mtime."""
    out = []
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        if p.is_dir():  # a folder's mtime changes when a temporary comes and goes
            out.append((str(p.relative_to(root)), -1, 0))
        else:
            out.append((str(p.relative_to(root)), st.st_size, st.st_mtime_ns))
    return out


def _no_parts(root: Path) -> None:
    leftovers = [p for p in root.rglob("*") if ".part" in p.name or ".old-" in p.name]
    assert leftovers == []


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=XFAIL[n])) if n in XFAIL
     else n for n in CASES],
)
def test_bad_input(name, data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    case = CASES[name](data, tmp_path, out)
    if case.patch is not None:
        case.patch(monkeypatch)
    before = _snapshot(tmp_path)

    # Python API: a specific PariGeoError naming where and what
    with pytest.raises(case.exc) as err:
        case.api()
    assert isinstance(err.value, PariGeoError)
    msg = str(err.value)
    assert case.where in msg and case.problem in msg, msg
    assert _snapshot(tmp_path) == before
    _no_parts(tmp_path)

    # CLI: exit code != 0 and exactly one line on stderr, no traceback
    code = main(case.cli)
    err_text = capsys.readouterr().err
    assert code != 0
    lines = err_text.strip().splitlines()
    assert len(lines) == 1, err_text
    assert lines[0].startswith("pari-geo: error: "), lines[0]
    assert case.where in lines[0] and case.problem in lines[0], lines[0]
    assert "Traceback" not in err_text
    assert _snapshot(tmp_path) == before
    _no_parts(tmp_path)


def test_matrix_has_at_least_40_cases():
    assert len(CASES) - len(XFAIL) >= 40


# --- the accepted cases (decisions) ------------------------------------------------------------
def test_partial_overlap_is_refused(data, tmp_path, capsys):
    """Issue 12 (was: cropped silently): a built layer covering part of the population grid
    would crop the result; it is refused, naming the layer, through the API and the CLI."""
    built = rasterio.open(data / "built.tif").read(1)
    part = tif(tmp_path, "part.tif", built[:, 5:], transform=Affine(1000, 0, 5000, 0, -1000,
                                                                    N * 1000))
    with pytest.raises(InputError, match=r"part.tif \[built\]: covers only part of the "
                       "population grid"):
        classify_grid(data / "pop.tif", part, data / "land.tif", level=2)
    out = tmp_path / "o.tif"
    assert main(cli_grid(data / "pop.tif", part, data / "land.tif", out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "covers only part" in err[0] and not out.exists()


def test_partial_overlap_on_another_grid_is_refused(data, tmp_path):
    """A 500 m layer over half the grid (was: uncovered cells silently missing)."""
    built = rasterio.open(data / "built.tif").read(1)
    fine = np.repeat(np.repeat(built[:, :10], 2, 0), 2, 1) / 4
    f = tif(tmp_path, "fine.tif", fine, transform=Affine(500, 0, 0, 0, -500, N * 1000))
    with pytest.raises(InputError, match="covers only part"):
        classify_grid(data / "pop.tif", f, data / "land.tif", level=2)


def test_coarser_layer_is_refused(data, tmp_path):
    """Issue 12: a 2 km built layer on the 1 km population grid would be spread over the
    finer cells without a word; refused, naming both cell sizes."""
    built = rasterio.open(data / "built.tif").read(1).astype(float)
    coarse = built.reshape(N // 2, 2, N // 2, 2).sum(axis=(1, 3))
    f = tif(tmp_path, "coarse.tif", coarse, transform=Affine(2000, 0, 0, 0, -2000, N * 1000))
    with pytest.raises(InputError, match=r"coarse.tif \[built\]: has 2000 m cells, coarser "
                       "than the population grid's 1000 m"):
        classify_grid(data / "pop.tif", f, data / "land.tif", level=2)


def test_different_resolutions_are_aligned_by_sum(data, tmp_path):
    """Built-up at 500 m gives the same classes as the same built-up summed to 1 km."""
    built = rasterio.open(data / "built.tif").read(1)
    fine = np.repeat(np.repeat(built, 2, 0), 2, 1) / 4
    f = tif(tmp_path, "fine.tif", fine, transform=Affine(500, 0, 0, 0, -500, N * 1000))
    a = classify_grid(data / "pop.tif", f, data / "land.tif", level=2)
    b = classify_grid(data / "pop.tif", data / "built.tif", data / "land.tif", level=2)
    np.testing.assert_array_equal(a.values, b.values)


def test_nan_population_cells_are_missing_data(data, tmp_path):
    pop = rasterio.open(data / "pop.tif").read(1)
    pop[0, :] = np.nan
    da = classify_grid(tif(tmp_path, "p.tif", pop), data / "built.tif", data / "land.tif")
    assert set(np.unique(da.values)) <= set(DEGURBA_L2.codes)


def test_built_larger_than_land_is_accepted(data, tmp_path):
    """Decision: accepted (buildings on water exist in GHSL), with a warning (next test)."""
    land = np.full((N, N), 1e6)
    land[:3, :3] = 100.0  # less land than built-up
    f = tif(tmp_path, "lowland.tif", land)
    with pytest.warns(UserWarning, match="more built-up than permanent land"):
        da = classify_grid(data / "pop.tif", data / "built.tif", f, level=2)
    assert set(np.unique(da.values)) <= set(DEGURBA_L2.codes)


def test_built_larger_than_land_warns(data, tmp_path):
    land = np.full((N, N), 1e6)
    land[:3, :3] = 100.0
    f = tif(tmp_path, "lowland.tif", land)
    with rasterio.open(data / "built.tif") as src:
        n_over = int((src.read(1).astype(float)[:3, :3] > 100.0).sum())
    assert n_over > 0
    with pytest.warns(UserWarning, match=rf"built.tif \[built\]: {n_over} cell\(s\) have more "
                      "built-up than permanent land"):
        classify_grid(data / "pop.tif", data / "built.tif", f, level=2)


def test_units_in_another_crs_are_reprojected_with_a_warning(data, tmp_path):
    u = _units(data).to_crs("EPSG:3035")
    f = tmp_path / "u3035.gpkg"
    u.to_file(f, driver="GPKG")
    with pytest.warns(UserWarning, match="reprojected"):
        t = classify_units(f, data / "classes.tif", data / "pop.tif", id="UID", level=2)
    assert len(t) == 4


def test_open_units_refuses_mixed_geometries_and_accepts_folders(data, tmp_path):
    from pari_geo.ingest import open_units

    u = _units(data)
    mixed = gpd.GeoDataFrame(u, geometry=[*u.geometry[:3], Point(1, 1)], crs=u.crs)
    with pytest.raises(InputError, match=r"not \(multi\)polygons \(Point\)"):
        open_units(mixed, id_col="UID")
    shp = tmp_path / "shp"
    shp.mkdir()
    u.to_file(shp / "units.shp")
    assert len(open_units(shp, id_col="UID")) == 4


def test_unreadable_file_api(data, tmp_path, monkeypatch):
    """The API half of the 'unreadable file' row (the CLI half is a strict xfail above)."""
    f = tif(tmp_path, "locked.tif", np.ones((N, N)))
    f.chmod(0)
    _deny_access(f, os.R_OK)(monkeypatch)
    with pytest.raises(InputError, match=r"locked.tif \[built\]: file is not readable"):
        classify_grid(data / "pop.tif", f, data / "land.tif")
