"""SYNTHETIC actors with planted micro-clusters for the Östergötland-shaped sample region.

Nothing here is observed data. :func:`make_actors` places about 20,000 actors (farm shops,
microbreweries, artists, accommodation, restaurants, outdoor-activity providers,
cooperatives, associations, work-integration social enterprises, care, retail and
manufacturing) on the region of :func:`pari_geo.datasets.ostergotland.make_ostergotland`:

* **Background** actors follow exactly the null model of
  :func:`pari_geo.clustering.actors.find_microclusters`: inside each municipality they fall
  into the 1 km population cells with probabilities proportional to the cells' residents (a
  multinomial draw), then uniformly inside the cell. Clusters that DBSCAN finds among them
  are therefore chance clusters under the null.
* **Planted micro-clusters** (:data:`PLANTED`) with known membership in low-population rural
  cells (1 to 20 residents, land only, at least 5 km from every town or village centre and
  from each other): ``seed_trio`` (a farm shop, a microbrewery and an artist plus a few more
  within 140 m of a centre), ``hiking`` (accommodation, food and outdoor-activity providers
  strung along a 1-2 km trail, neighbours 70-110 m apart), ``hidden_ordinary_unit``
  (social-economy groups within 140 m) and ``inter_municipal`` (within 140 m of a point on a
  municipality boundary, members alternating between the two sides, each at least 25 m from
  the boundary). Every compact cluster's members are pairwise within 280 m, so DBSCAN with
  ``eps=300 m, min_samples=5`` finds each planted cluster as one cluster with all members.
* **Municipal totals.** The nine municipalities holding planted clusters
  (:data:`ORDINARY_MUNICIPALITIES`) get exactly the same actor rate per resident, a round
  number (``0.04`` for 20,000 actors) below the county mean, *including* their planted
  actors: their background is thinned by the planted count. Their rates tie exactly (the
  municipal resident counts are multiples of 100), so all nine sit at the median of the 13
  municipal rates and their planted clusters are invisible in a municipal table. The four
  others (Linköping, Norrköping, Motala, Mjölby) share the remaining actors in proportion to
  residents and have a higher rate.

The result is deterministic for a given ``seed`` (and sample region).

Examples
--------
>>> region = make_ostergotland()
>>> actors, truth = make_actors(region)
>>> len(actors), actors.crs.to_epsg()
(20000, 3006)
>>> t = municipal_targets(region, 20000)
>>> t["0512"], t["0580"], sum(t.values())  # Ydre: 3,700 residents x 0.04
(148, 7141, 20000)
>>> truth.groupby("kind").size().to_dict()
{'hidden_ordinary_unit': 6, 'hiking': 5, 'inter_municipal': 4, 'seed_trio': 6}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .ostergotland import CRS, make_ostergotland

__all__ = [
    "SECTORS",
    "SOCIAL_SECTORS",
    "PLANTED",
    "ORDINARY_MUNICIPALITIES",
    "ACTOR_FILES",
    "DEFAULT_ACTORS_SEED",
    "make_actors",
    "write_actors",
    "municipal_targets",
]

DEFAULT_ACTORS_SEED = 5

SECTORS: tuple[str, ...] = (
    "farm_shop",
    "microbrewery",
    "artist_crafts",
    "accommodation",
    "food_restaurant",
    "outdoor_activity",
    "cooperative",
    "association",
    "wise",
    "care",
    "retail",
    "manufacturing",
)
"""Actor sectors (``wise`` = work-integration social enterprise)."""

SOCIAL_SECTORS: tuple[str, ...] = ("cooperative", "association", "wise")
"""Sectors that always belong to the social economy."""

# background sector mix and, per sector, the chance of a social-economy flag outside
# SOCIAL_SECTORS (care providers are often non-profit; a few others are too)
_BACKGROUND_MIX = {
    "farm_shop": 0.04,
    "microbrewery": 0.01,
    "artist_crafts": 0.06,
    "accommodation": 0.05,
    "food_restaurant": 0.13,
    "outdoor_activity": 0.03,
    "cooperative": 0.04,
    "association": 0.12,
    "wise": 0.02,
    "care": 0.12,
    "retail": 0.22,
    "manufacturing": 0.16,
}
_SOCIAL_CHANCE = {"care": 0.4, "food_restaurant": 0.04, "accommodation": 0.04,
                  "farm_shop": 0.04, "retail": 0.03, "outdoor_activity": 0.05}  # fmt: skip
_OTHER_SOCIAL_CHANCE = 0.02

# kind -> (mandatory sectors, sectors the rest are drawn from, (min, max) members)
_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[int, int]]] = {
    "seed_trio": (
        ("farm_shop", "microbrewery", "artist_crafts"),
        ("food_restaurant", "accommodation", "artist_crafts", "retail", "association",
         "farm_shop", "outdoor_activity"),
        (6, 10),
    ),
    "hiking": (
        ("accommodation", "accommodation", "accommodation", "food_restaurant",
         "food_restaurant", "outdoor_activity", "outdoor_activity", "outdoor_activity"),
        ("accommodation", "food_restaurant", "outdoor_activity", "farm_shop", "retail",
         "association", "artist_crafts"),
        (14, 18),
    ),
    "hidden_ordinary_unit": (
        ("cooperative", "association", "wise", "care"),
        ("cooperative", "association", "wise", "care", "farm_shop", "manufacturing",
         "retail", "food_restaurant"),
        (8, 14),
    ),
    "inter_municipal": (
        ("accommodation", "food_restaurant", "outdoor_activity", "farm_shop"),
        ("accommodation", "food_restaurant", "outdoor_activity", "artist_crafts",
         "association", "farm_shop", "microbrewery"),
        (8, 12),
    ),
}  # fmt: skip

PLANTED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("seed_trio", ("0512",)),  # Ydre
    ("seed_trio", ("0513",)),  # Kinda
    ("seed_trio", ("0560",)),  # Boxholm
    ("seed_trio", ("0509",)),  # Ödeshög
    ("seed_trio", ("0584",)),  # Vadstena
    ("seed_trio", ("0563",)),  # Valdemarsvik
    ("hiking", ("0513",)),
    ("hiking", ("0512",)),
    ("hiking", ("0563",)),
    ("hiking", ("0562",)),  # Finspång
    ("hiking", ("0561",)),  # Åtvidaberg
    ("hidden_ordinary_unit", ("0582",)),  # Söderköping
    ("hidden_ordinary_unit", ("0561",)),
    ("hidden_ordinary_unit", ("0562",)),
    ("hidden_ordinary_unit", ("0582",)),
    ("hidden_ordinary_unit", ("0513",)),
    ("hidden_ordinary_unit", ("0509",)),
    ("inter_municipal", ("0512", "0513")),  # Ydre | Kinda
    ("inter_municipal", ("0561", "0563")),  # Åtvidaberg | Valdemarsvik
    ("inter_municipal", ("0509", "0560")),  # Ödeshög | Boxholm
    ("inter_municipal", ("0563", "0582")),  # Valdemarsvik | Söderköping
)
"""Planted clusters in order (ids ``P01``, ``P02`` ...): kind and municipality code(s)."""

ORDINARY_MUNICIPALITIES: tuple[str, ...] = tuple(sorted({c for _, ms in PLANTED for c in ms}))
"""Municipalities holding planted clusters; their actor rate per resident is thinned to a
common rate at the median of the 13 municipal rates."""

ACTOR_FILES = {"actors": "actors.gpkg", "truth": "planted_clusters.csv"}
"""File names written by :func:`write_actors`."""

TRUTH_COLUMNS = ("planted_cluster", "kind", "n_members", "municipalities", "expected_rung",
                 "centre_x", "centre_y", "radius_m", "extent_m", "sectors")  # fmt: skip
"""Columns of the ground-truth table."""

_COMPACT_RADIUS_M = 140.0  # members pairwise within 280 m < eps 300 m
_BOUNDARY_GAP_M = 25.0  # inter-municipal members keep this distance from the boundary
_TOWN_CLEARANCE_M = 5000.0
_SITE_SPACING_M = 5000.0
_MAX_CELL_RESIDENTS = 20.0
_MIN_LAND = 0.95


def municipal_targets(sample: Any, n_actors: int) -> dict[str, int]:
    """Total actors (background + planted) of each municipality.

    The :data:`ORDINARY_MUNICIPALITIES` get the common rate ``c / 100`` per resident with
    ``c = max(1, round(95 * n_actors / residents))`` (5 % below the county mean, rounded to a
    whole number per 100 residents so that their rates tie exactly); the other
    municipalities share the remaining actors in proportion to residents (largest
    remainders). Raises ``ValueError`` when ``n_actors`` is too small for that.
    """
    res = {str(r.code): int(r.population) for r in sample.municipalities.itertuples()}
    total_res = sum(res.values())
    c = max(1, int(round(95.0 * n_actors / total_res)))
    out: dict[str, int] = {}
    for code in ORDINARY_MUNICIPALITIES:
        if res[code] % 100:
            raise ValueError(f"residents of {code} are not a multiple of 100; rates cannot tie")
        out[code] = res[code] * c // 100
    others = [k for k in res if k not in out]
    left = n_actors - sum(out.values())
    w = np.array([res[k] for k in others], dtype=np.float64)
    if left <= 0 or left / w.sum() <= c / 100.0:
        raise ValueError(f"n_actors={n_actors} is too small for the planted design")
    scaled = w / w.sum() * left
    base = np.floor(scaled)
    short = int(round(left - base.sum()))
    base[np.argsort(-(scaled - base), kind="stable")[:short]] += 1
    out.update({k: int(v) for k, v in zip(others, base, strict=True)})
    return {k: out[k] for k in sorted(out)}


def _cell_xy(transform, rows, cols):
    x = transform.c + (np.asarray(cols) + 0.5) * transform.a
    y = transform.f + (np.asarray(rows) + 0.5) * transform.e
    return x, y


def _good_cells(sample) -> np.ndarray:
    """Cells fit to host a planted cluster: land, 1..20 residents, far from every town."""
    pop = sample.layers["population"]
    land = sample.layers["land_share"]
    ok = np.isfinite(pop) & (pop >= 1) & (pop <= _MAX_CELL_RESIDENTS)
    ok &= np.nan_to_num(land) >= _MIN_LAND
    rows, cols = np.indices(pop.shape)
    x, y = _cell_xy(sample.transform, rows, cols)
    for tx, ty in zip(sample.towns.x, sample.towns.y, strict=True):
        ok &= np.hypot(x - tx, y - ty) >= _TOWN_CLEARANCE_M
    return ok


def _block_ok(good: np.ndarray, muni: np.ndarray, r: int, c: int, k: int, codes) -> bool:
    r0, r1, c0, c1 = r - k, r + k + 1, c - k, c + k + 1
    if r0 < 0 or c0 < 0 or r1 > good.shape[0] or c1 > good.shape[1]:
        return False
    return bool(good[r0:r1, c0:c1].all() and np.isin(muni[r0:r1, c0:c1], codes).all())


def _far(x: float, y: float, sites: list[tuple[float, float]]) -> bool:
    return all(np.hypot(x - sx, y - sy) >= _SITE_SPACING_M for sx, sy in sites)


def _disc(rng, n: int, radius: float) -> np.ndarray:
    r = radius * np.sqrt(rng.random(n))
    a = rng.random(n) * 2 * np.pi
    return np.column_stack([r * np.cos(a), r * np.sin(a)])


def _trail(rng, n: int) -> np.ndarray:
    """``n`` points along a gently bending trail, 70-110 m apart, 0-25 m off the path."""
    heading = rng.random() * 2 * np.pi
    pts = [np.zeros(2)]
    for _ in range(n - 1):
        heading += rng.normal(0.0, 0.25)
        step = rng.uniform(70.0, 110.0)
        pts.append(pts[-1] + step * np.array([np.cos(heading), np.sin(heading)]))
    p = np.array(pts)
    p += rng.uniform(-12.5, 12.5, size=p.shape)
    return p - p.mean(axis=0)


def _sectors(rng, kind: str, n: int) -> list[str]:
    must, pool, _ = _KINDS[kind]
    extra = [pool[i] for i in rng.integers(0, len(pool), n - len(must))]
    out = list(must) + extra
    return [out[i] for i in rng.permutation(n)]


def _social(rng, sectors) -> np.ndarray:
    chance = np.array(
        [1.0 if s in SOCIAL_SECTORS else _SOCIAL_CHANCE.get(s, _OTHER_SOCIAL_CHANCE)
         for s in sectors]
    )  # fmt: skip
    return rng.random(len(chance)) < chance


def _plant(sample, rng) -> list[dict]:
    """Sites and members of the planted clusters (see the module docstring)."""
    muni = sample.layers["municipality"].astype(np.int64)
    good = _good_cells(sample)
    t = sample.transform
    res = float(t.a)
    sites: list[tuple[float, float]] = []
    out = []
    for i, (kind, codes) in enumerate(PLANTED, start=1):
        icodes = [int(c) for c in codes]
        lo, hi = _KINDS[kind][2]
        n = int(rng.integers(lo, hi + 1))
        if kind == "inter_municipal":
            a, b = icodes
            cand = []
            for dr, dc in ((0, 1), (1, 0)):
                ra, rb = muni[: muni.shape[0] - dr, : muni.shape[1] - dc], muni[dr:, dc:]
                rr, cc = np.nonzero(((ra == a) & (rb == b)) | ((ra == b) & (rb == a)))
                cand += [(int(r), int(c), dr, dc) for r, c in zip(rr, cc, strict=True)]
            cand = [
                s for s in cand
                if _block_ok(good, muni, s[0], s[1], 1, icodes)
                and _block_ok(good, muni, s[0] + s[2], s[1] + s[3], 1, icodes)
            ]  # fmt: skip
            placed = False
            for j in rng.permutation(len(cand)):
                r, c, dr, dc = cand[j]
                x0, y0 = _cell_xy(t, r, c)
                along = rng.uniform(-0.25, 0.25) * res
                if dc:  # vertical shared edge east of (r, c)
                    cx, cy = x0 + res / 2, y0 + along
                else:  # horizontal shared edge south of (r, c)
                    cx, cy = x0 + along, y0 - res / 2
                if not _far(cx, cy, sites):
                    continue
                pts: list[Any] = []
                while len(pts) < n:
                    d = _disc(rng, 1, _COMPACT_RADIUS_M)[0]
                    across = d[0] if dc else -d[1]
                    side = len(pts) % 2  # 0: first cell's side (negative), 1: the other
                    if abs(across) < _BOUNDARY_GAP_M or (across > 0) != bool(side):
                        continue
                    pts.append(d)
                xy = np.array(pts) + [cx, cy]
                placed = True
                break
        else:
            k = 2 if kind == "hiking" else 1
            rr, cc = np.nonzero(good & np.isin(muni, icodes))
            placed = False
            for j in rng.permutation(len(rr)):
                r, c = int(rr[j]), int(cc[j])
                if not _block_ok(good, muni, r, c, k, icodes):
                    continue
                cx, cy = _cell_xy(t, r, c)
                cx += rng.uniform(-0.2, 0.2) * res
                cy += rng.uniform(-0.2, 0.2) * res
                if not _far(cx, cy, sites):
                    continue
                rel = _trail(rng, n) if kind == "hiking" else _disc(rng, n, _COMPACT_RADIUS_M)
                xy = rel + [cx, cy]
                placed = True
                break
        if not placed:
            raise RuntimeError(f"no site for planted cluster {i} ({kind} in {codes})")
        sites.append((float(cx), float(cy)))
        sectors = _sectors(rng, kind, n)
        out.append(
            {
                "planted_cluster": f"P{i:02d}",
                "kind": kind,
                "codes": codes,
                "xy": xy,
                "centre": (float(cx), float(cy)),
                "sectors": sectors,
                "social": _social(rng, sectors),
            }
        )
    return out


def _municipality_of(sample, xy: np.ndarray) -> np.ndarray:
    t = sample.transform
    muni = sample.layers["municipality"]
    c = np.floor((xy[:, 0] - t.c) / t.a).astype(np.int64)
    r = np.floor((xy[:, 1] - t.f) / t.e).astype(np.int64)
    return np.array([f"{int(v):04d}" for v in muni[r, c]], dtype=object)


def make_actors(
    sample: Any = None, *, n_actors: int = 20000, seed: int = DEFAULT_ACTORS_SEED
) -> tuple[Any, Any]:
    """Generate the SYNTHETIC actors and the ground truth of the planted clusters.

    Parameters
    ----------
    sample : OstergotlandSample, optional
        The region (default: ``make_ostergotland(1000)``, the shipped 1 km region). Its
        resolution must be 1 km (the planting rules are written for 1 km cells).
    n_actors : int, default=20000
        Total number of actors (background + planted), at least about 10,000.
    seed : int
        Seed of everything random here.

    Returns
    -------
    actors : geopandas.GeoDataFrame
        Points in EPSG:3006, one row per actor, in a seeded random order: ``actor_id``
        (``"A00001"`` ...), ``sector`` (one of :data:`SECTORS`), ``social_economy`` (bool),
        ``municipality`` (code, e.g. ``"0512"``), ``planted_cluster`` (``"P01"`` ... or
        ``None`` for background actors).
    truth : pandas.DataFrame
        One row per planted cluster, columns :data:`TRUTH_COLUMNS`: ``planted_cluster``,
        ``kind``, ``n_members``, ``municipalities`` (``;``-joined codes), ``expected_rung``
        (``micro`` or ``inter-municipal``), ``centre_x``, ``centre_y`` (the site),
        ``radius_m`` (largest member distance from the site), ``extent_m`` (largest distance
        between two members), ``sectors`` (sorted distinct, ``;``-joined).
    """
    import geopandas as gpd
    import pandas as pd

    if sample is None:
        sample = make_ostergotland(1000)
    if int(sample.resolution_m) != 1000:
        raise ValueError("make_actors needs the 1 km sample region (resolution_m=1000)")
    rng = np.random.default_rng(seed)
    planted = _plant(sample, rng)
    targets = municipal_targets(sample, int(n_actors))

    pop = np.nan_to_num(sample.layers["population"]).astype(np.float64)
    muni = sample.layers["municipality"].astype(np.int64)
    t = sample.transform
    n_planted = {k: 0 for k in targets}
    for p in planted:
        for code in _municipality_of(sample, p["xy"]):
            n_planted[code] += 1
    xs, ys, codes = [], [], []
    for code, total in targets.items():
        nb = total - n_planted[code]
        if nb < 0:
            raise ValueError(f"more planted actors than the target in municipality {code}")
        rr, cc = np.nonzero((muni == int(code)) & (pop > 0))
        w = pop[rr, cc]
        counts = rng.multinomial(nb, w / w.sum())
        r = np.repeat(rr, counts)
        c = np.repeat(cc, counts)
        u = rng.random((nb, 2))
        xs.append(t.c + (c + u[:, 0]) * t.a)
        ys.append(t.f + (r + u[:, 1]) * t.e)
        codes += [code] * nb
    bx, by = np.concatenate(xs), np.concatenate(ys)
    nb_total = len(bx)
    bsec = rng.choice(
        np.array(list(_BACKGROUND_MIX), dtype=object),
        size=nb_total,
        p=np.array(list(_BACKGROUND_MIX.values())) / sum(_BACKGROUND_MIX.values()),
    )
    bsoc = _social(rng, bsec)

    pxy = np.concatenate([p["xy"] for p in planted])
    x = np.concatenate([bx, pxy[:, 0]])
    y = np.concatenate([by, pxy[:, 1]])
    sector = np.concatenate([bsec, np.concatenate([p["sectors"] for p in planted])])
    social = np.concatenate([bsoc, np.concatenate([p["social"] for p in planted])])
    municipality = np.array(codes + list(_municipality_of(sample, pxy)), dtype=object)
    label = np.array(
        [None] * nb_total + [p["planted_cluster"] for p in planted for _ in range(len(p["xy"]))],
        dtype=object,
    )
    order = rng.permutation(len(x))
    actors = gpd.GeoDataFrame(
        {
            "actor_id": [f"A{i:05d}" for i in range(1, len(x) + 1)],
            "sector": pd.Series(sector[order], dtype=object).astype(str).to_numpy(dtype=object),
            "social_economy": social[order].astype(bool),
            "municipality": municipality[order],
            "planted_cluster": label[order],
        },
        geometry=gpd.points_from_xy(x[order], y[order]),
        crs=CRS,
    )

    rows = []
    for p in planted:
        xy = p["xy"]
        d = xy[:, None, :] - xy[None, :, :]
        member_codes = sorted(set(_municipality_of(sample, xy)))
        rows.append(
            {
                "planted_cluster": p["planted_cluster"],
                "kind": p["kind"],
                "n_members": len(xy),
                "municipalities": ";".join(member_codes),
                "expected_rung": "inter-municipal" if len(member_codes) > 1 else "micro",
                "centre_x": round(p["centre"][0], 2),
                "centre_y": round(p["centre"][1], 2),
                "radius_m": round(float(np.hypot(*(xy - p["centre"]).T).max()), 2),
                "extent_m": round(float(np.sqrt((d**2).sum(-1)).max()), 2),
                "sectors": ";".join(sorted(set(p["sectors"]))),
            }
        )
    truth = pd.DataFrame(rows, columns=list(TRUTH_COLUMNS))
    return actors, truth


def write_actors(
    out_dir: str | Path,
    overwrite: bool = False,
    *,
    n_actors: int = 20000,
    seed: int = DEFAULT_ACTORS_SEED,
) -> dict[str, Path]:
    """Generate the SYNTHETIC actors and write ``actors.gpkg`` and ``planted_clusters.csv``.

    ``actors.gpkg`` holds layer ``actors`` (the points of :func:`make_actors`, EPSG:3006);
    ``planted_clusters.csv`` the ground truth. Both are written atomically and are
    byte-identical for the same inputs (the GeoPackage carries a fixed date).

    Parameters
    ----------
    out_dir : str or Path
        Folder (created if missing).
    overwrite : bool
        Replace existing files; otherwise an existing file is an error and nothing is
        written.
    n_actors, seed
        As in :func:`make_actors` (on the default 1 km region).

    Returns
    -------
    dict
        ``actors`` and ``truth`` → written path.

    Raises
    ------
    pari_geo.errors.OutputError
        If a file exists and ``overwrite`` is False.
    """
    from ..errors import OutputError
    from ..io_write import write_table

    out = Path(out_dir)
    targets = {k: out / v for k, v in ACTOR_FILES.items()}
    if not overwrite:
        for p in targets.values():
            if p.exists():
                raise OutputError(str(p), "exists; pass overwrite=True to replace it")
    actors, truth = make_actors(n_actors=n_actors, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    write_table(truth, targets["truth"], overwrite=True)
    write_table(
        actors,
        targets["actors"],
        overwrite=True,
        layer="actors",
        metadata={
            "DESCRIPTION": "SYNTHETIC actors with planted micro-clusters "
            "(pari_geo.datasets.actors); not observed data",
            "seed": str(seed),
            "n_actors": str(n_actors),
        },
    )
    return targets
