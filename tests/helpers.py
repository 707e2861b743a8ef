"""Small builders for hand-made rasters used across tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine


def write_tif(
    path: Path, values: np.ndarray, *, crs="ESRI:54009", transform=None, nodata=None, dtype=None
) -> Path:
    """Write a single-band GeoTIFF and return its path."""
    values = np.asarray(values)
    transform = transform or Affine(1000, 0, 0, 0, -1000, values.shape[0] * 1000)
    profile = {
        "driver": "GTiff",
        "height": values.shape[0],
        "width": values.shape[1],
        "count": 1,
        "dtype": dtype or values.dtype,
        "transform": transform,
    }
    if crs is not None:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(profile["dtype"]), 1)
    return Path(path)


def assert_grid_contract(out, ref) -> None:
    """The output keeps the reference grid: dims, coords, CRS and transform."""
    assert out.dims == ("y", "x")
    assert out.shape == ref.shape
    np.testing.assert_allclose(out["x"].values, ref["x"].values)
    np.testing.assert_allclose(out["y"].values, ref["y"].values)
    assert out.rio.crs == ref.rio.crs
    assert out.rio.transform().almost_equals(ref.rio.transform())


def footprint_expected_twin(members, eps, cell_expected, cell, x0=0.0, y0=None, per_eps=4.0):
    """Numpy/scipy twin of the footprint kernel: expected actors within ``eps`` of members.

    Builds the lattice of squares of about ``eps / per_eps`` (cells split into ``sub x sub``
    or grouped into ``agg x agg`` blocks), marks the squares holding a member and dilates
    them with a disc of radius ``eps`` (``scipy.ndimage.binary_dilation``), then sums the
    expected actors of the marked squares inside the grid. Returns (expected, squares).
    """
    from scipy import ndimage

    ce = np.asarray(cell_expected, dtype=np.float64)
    y0 = ce.shape[0] * cell if y0 is None else y0
    target = eps / per_eps
    if cell >= target:
        sub = max(1, int(round(cell / target)))
        h = cell / sub
        lat = np.kron(ce, np.ones((sub, sub))) / (sub * sub)
    else:
        agg = max(1, int(round(target / cell)))
        h = cell * agg
        pr, pc = -ce.shape[0] % agg, -ce.shape[1] % agg
        p = np.pad(ce, ((0, pr), (0, pc)))
        lat = p.reshape(p.shape[0] // agg, agg, p.shape[1] // agg, agg).sum(axis=(1, 3))
    r = int(np.floor(eps / h))
    pad = r + 1
    occ = np.zeros((lat.shape[0] + 2 * pad, lat.shape[1] + 2 * pad), bool)
    m = np.asarray(members, dtype=np.float64).reshape(-1, 2)
    rows = np.floor((y0 - m[:, 1]) / h).astype(int) + pad
    occ[rows, np.floor((m[:, 0] - x0) / h).astype(int) + pad] = True
    di, dj = np.mgrid[-r : r + 1, -r : r + 1]
    disc = (di * h) ** 2 + (dj * h) ** 2 <= eps**2
    mark = ndimage.binary_dilation(occ, structure=disc)[pad:-pad, pad:-pad]
    return float(lat[mark].sum()), int(mark.sum())


# --- a tiny full run (issue 12): every input layer, units and actors on a 24 x 24 grid ---------
TINY_N = 24
TINY_X0, TINY_Y0 = 500_000.0, 6_500_000.0
TINY_CRS = "EPSG:3006"


def write_tiny_inputs(d: Path) -> dict[str, Path]:
    """Every input of a run file, tiny and deterministic, written into ``d``.

    A 24 x 24 km grid (1 km, SWEREF99 TM) with a town and a village; built-up and land in m²
    (``built``, ``land``) and as shares (``*_share``); agricultural, commuting, service
    minutes, speed and CORINE land-cover layers; 4 square municipalities (columns ``code``,
    ``code2``, ``name``, ``county``, ``county2``, ``country``, ``country2``; a second layer
    ``half`` with 2 units); 260 actors (columns ``sector``, ``social``, ``sector2``,
    ``social2``; a second layer ``few`` with the first 120) with a planted cluster across
    the border of municipalities 1 and 2 and one inside municipality 4.
    """
    import geopandas as gpd
    from shapely.geometry import Point, box

    n = TINY_N
    t = Affine(1000, 0, TINY_X0, 0, -1000, TINY_Y0 + n * 1000)
    yy, xx = np.mgrid[0:n, 0:n]
    rng = np.random.default_rng(12)
    pop = (9000 * np.exp(-((yy - 8) ** 2 + (xx - 9) ** 2) / 10)
           + 900 * np.exp(-((yy - 18) ** 2 + (xx - 17) ** 2) / 3) + rng.gamma(1, 20, (n, n)))
    built = np.clip(pop * 55, 0, 6e5)
    land = np.full((n, n), 1e6)
    land[-2:, :4] = 2e5
    agri = np.clip(0.9 - pop / 9000, 0, 1)
    commuting = np.clip(0.6 * np.exp(-((yy - 8) ** 2 + (xx - 9) ** 2) / 40), 0, 1)
    minutes = np.hypot(yy - 8, xx - 9) * 1.5
    speed = np.full((n, n), 50.0)
    landcover = np.where(agri > 0.5, 211, np.where(pop > 2000, 111, 311)).astype(np.int16)
    paths = {}
    for name, arr in (("population", pop), ("built", built), ("land", land),
                      ("built_share", built / 1e6), ("land_share", land / 1e6),
                      ("agri", agri), ("commuting", commuting), ("service_minutes", minutes),
                      ("speed", speed), ("landcover", landcover)):
        paths[name] = write_tif(d / f"{name}.tif", arr, crs=TINY_CRS, transform=t,
                                dtype="int16" if name == "landcover" else "float32")
    half = n * 500
    x0, y0 = TINY_X0, TINY_Y0
    boxes = [box(x0, y0 + half, x0 + half, y0 + 2 * half),
             box(x0 + half, y0 + half, x0 + 2 * half, y0 + 2 * half),
             box(x0, y0, x0 + half, y0 + half), box(x0 + half, y0, x0 + 2 * half, y0 + half)]
    units = gpd.GeoDataFrame(
        {"code": ["01", "02", "03", "04"], "code2": ["u1", "u2", "u3", "u4"],
         "name": list("abcd"), "county": ["A", "A", "B", "B"],
         "county2": ["A", "B", "A", "B"], "country": ["SE"] * 4,
         "country2": ["SE", "NO", "SE", "NO"]},
        geometry=boxes, crs=TINY_CRS)
    paths["units"] = d / "units.gpkg"
    units.to_file(paths["units"], layer="units", driver="GPKG")
    gpd.GeoDataFrame({"code": ["N", "S"], "code2": ["n", "s"], "name": ["north", "south"],
                      "county": ["A", "B"], "county2": ["A", "B"], "country": ["SE", "SE"],
                      "country2": ["SE", "NO"]},
                     geometry=[box(x0, y0 + half, x0 + 2 * half, y0 + 2 * half),
                               box(x0, y0, x0 + 2 * half, y0 + half)],
                     crs=TINY_CRS).to_file(paths["units"], layer="half", driver="GPKG")
    pts = []
    cx, cy = x0 + half, y0 + 18_000  # on the border of municipalities 1 and 2
    pts += [(cx + rng.normal(0, 120), cy + rng.normal(0, 120)) for _ in range(40)]
    pts += [(x0 + 17_500 + rng.normal(0, 90), y0 + 5_500 + rng.normal(0, 90))
            for _ in range(20)]
    pts += [(x0 + rng.uniform(0, 2 * half), y0 + rng.uniform(0, 2 * half)) for _ in range(200)]
    # a loose group in the town, where many actors are expected: a p-value far from the
    # smallest, so that seeds and early stopping show
    pts += [(x0 + 9_500 + rng.normal(0, 100), y0 + 15_500 + rng.normal(0, 100))
            for _ in range(7)]
    m = len(pts)
    actors = gpd.GeoDataFrame(
        {"sector": [("food", "craft", "care")[i % 3] for i in range(m)],
         "sector2": [("x", "y")[i % 2] for i in range(m)],
         "social": [(i % 4 == 0) for i in range(m)],
         "social2": [(i % 2 == 0) for i in range(m)]},
        geometry=[Point(p) for p in pts], crs=TINY_CRS)
    paths["actors"] = d / "actors.gpkg"
    actors.to_file(paths["actors"], layer="actors", driver="GPKG")
    actors.iloc[:120].to_file(paths["actors"], layer="few", driver="GPKG")
    paths["mapping"] = d / "mapping.toml"
    paths["mapping"].write_text("[classes]\n111 = 0.0\n211 = 0.0\n311 = 1.0\n")
    _write_tiny_place_type_inputs(d, paths, pop, t)
    return paths


def _write_tiny_place_type_inputs(d: Path, paths: dict, pop: np.ndarray, t) -> None:
    """Issue 14's layers of the tiny region: floor area, built volume, jobs by sector,
    roads (two layers, class and speed columns) and a speed table."""
    import geopandas as gpd
    import rasterio
    from shapely.geometry import LineString

    n = TINY_N
    yy, xx = np.mgrid[0:n, 0:n]
    floor = pop * 40.0 * (1 + 2 * np.exp(-((yy - 8) ** 2 + (xx - 9) ** 2) / 4))
    for name, arr in (("floor_area", floor), ("floor_area_low", floor * 0.2),
                      ("built_volume", floor * 3.0), ("jobs_total", pop * 0.3)):
        paths[name] = write_tif(d / f"{name}.tif", arr, crs=TINY_CRS, transform=t)
    jobs = np.stack([pop * 0.02 + 1.0, pop * 0.25])  # farming, services
    paths["jobs"] = d / "jobs.tif"
    with rasterio.open(paths["jobs"], "w", driver="GTiff", width=n, height=n, count=2,
                       dtype="float32", crs=TINY_CRS, transform=t) as dst:
        dst.write(jobs.astype(np.float32))
        dst.set_band_description(1, "farming")
        dst.set_band_description(2, "services")
    x0, y0 = TINY_X0, TINY_Y0
    ty, tx = y0 + (n - 8.5) * 1000, x0 + 9.5 * 1000  # the town's centre cell
    lines = [LineString([(x0 + 500, ty), (x0 + n * 1000 - 500, ty)]),
             LineString([(tx, y0 + 500), (tx, y0 + n * 1000 - 500)])]
    roads = gpd.GeoDataFrame({"highway": ["motorway", "tertiary"],
                              "kind": ["residential", "residential"],
                              "kmh": [20.0, 20.0]}, geometry=lines, crs=TINY_CRS)
    paths["roads"] = d / "roads.gpkg"
    roads.to_file(paths["roads"], layer="roads", driver="GPKG")
    roads.iloc[1:].to_file(paths["roads"], layer="roads2", driver="GPKG")
    paths["commuting_od"] = d / "commuting_od.csv"  # units 01..04; the town lies in 01
    paths["commuting_od"].write_text("origin,destination,share\n01,01,0.9\n02,01,0.6\n"
                                     "02,02,0.4\n03,01,0.5\n03,03,0.5\n04,04,1.0\n")
    paths["speeds"] = d / "speeds.toml"
    paths["speeds"].write_text("[speeds]\nmotorway = 15\ntertiary = 15\n")


def tiny_run_text(p: dict[str, Path], out: Path, typology: str = "nordic7",
                  n_sim: int = 19) -> str:
    """The text of a run file over :func:`write_tiny_inputs` (``pari-geo run``)."""
    if typology == "nordic7":
        layers = (f'built = {{ path = "{p["built_share"]}", unit = "share" }}\n'
                  f'land = {{ path = "{p["land_share"]}", unit = "share" }}\n'
                  f'agri = "{p["agri"]}"\ncommuting = "{p["commuting"]}"\n'
                  f'speed = "{p["speed"]}"\n')
        # rules that let every layer matter on a 24 km region (by default every cell is
        # within 25 minutes of the town, which overrides heartland and sparse)
        typ = ('name = "nordic7"\n[typology.parameters]\nclose_to_urban_minutes = 3\n'
               "heartland_density = 1e6\nsparse_service_minutes = 12\n")
    else:
        layers = (f'built = {{ path = "{p["built"]}", unit = "m2" }}\n'
                  f'land = {{ path = "{p["land"]}", unit = "m2" }}\n')
        typ = 'name = "degurba"\nlevel = 2\n'
    return (
        f'[inputs]\npopulation = "{p["population"]}"\n{layers}'
        f'units = {{ path = "{p["units"]}", id = "code", layer = "units", region = "county", '
        f'country = "country" }}\n'
        f'actors = {{ path = "{p["actors"]}", layer = "actors", sector = "sector", '
        f'social = "social" }}\n'
        f"[typology]\n{typ}"
        f"[clusters]\neps_m = [300, 1000]\nmin_actors = 5\nn_sim = {n_sim}\nalpha = 0.2\n"
        f"random_state = 0\nearly_stop = 0\n"
        f'[outputs]\ndir = "{out}"\nmap = false\n'
    )
