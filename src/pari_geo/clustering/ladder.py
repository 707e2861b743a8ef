"""The Cluster Ladder: the rung of a cluster, and clusters at several scales as a tree.

The rung of each cluster comes from :func:`~pari_geo.clustering.rungs.rung_of` (re-exported
here), from the administrative units its members span.

:func:`ladder` runs :func:`pari_geo.clustering.actors.find_microclusters` at several ``eps_m``
(300 m, 1 km, 5 km, 20 km by default) and links each cluster to its parent at the next
larger scale: the cluster there holding most of its members (ties: the lowest id). With the
same ``min_actors`` at every scale the clusters nest exactly (a core point stays core when
``eps`` grows, so a cluster's members stay together), which is the ladder drawn as a tree.

Examples
--------
>>> import numpy as np
>>> parents(np.array([0, 0, 1]), np.array([3, 3, 3]))
{0: 3, 1: 3}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .actors import describe_scale, finish_scale, prepare_actors, start_scale
from .options import CLUSTER_DEFAULTS, check_cluster_options
from .rungs import RUNGS, rung_of
from .significance import benjamini_hochberg
from .threads import resolve_threads

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["RUNGS", "rung_of", "parents", "ladder", "hidden_candidates"]

def parents(child: np.ndarray, parent: np.ndarray) -> dict[int, int]:
    """Parent of each child cluster: the parent cluster holding most of its members.

    Parameters
    ----------
    child, parent : ndarray of int, shape (n_actors,)
        Cluster labels of the same actors at a scale and at the next larger scale
        (``-1`` = noise).

    Returns
    -------
    dict
        ``{child_id: parent_id}``; children none of whose members is clustered at the
        larger scale are absent. Ties go to the lowest parent id.

    Examples
    --------
    >>> parents(np.array([0, 0, 0, 1, 1, -1]), np.array([2, 2, 1, 1, 2, 0]))
    {0: 2, 1: 1}
    """
    child = np.asarray(child, dtype=np.int64)
    parent = np.asarray(parent, dtype=np.int64)
    m = (child >= 0) & (parent >= 0)
    if not m.any():
        return {}
    pairs, counts = np.unique(np.stack([child[m], parent[m]], axis=1), axis=0, return_counts=True)
    order = np.lexsort((pairs[:, 1], -counts, pairs[:, 0]))
    pairs = pairs[order]
    first = np.r_[True, pairs[1:, 0] != pairs[:-1, 0]]
    return {int(c): int(p) for c, p in pairs[first]}


def ladder(
    actors: Any,
    *,
    eps_m: Sequence[float] = (300.0, 1000.0, 5000.0, 20000.0),
    min_actors: int | Sequence[int] = 5,
    on_scale: Any = None,
    meanwhile: Any = None,
    **options: Any,
) -> gpd.GeoDataFrame:
    """Micro-clusters at several scales, each linked to its parent at the next scale.

    Parameters
    ----------
    actors : geopandas.GeoDataFrame
        As for :func:`~pari_geo.clustering.actors.find_microclusters`.
    eps_m : sequence of float, default=(300, 1000, 5000, 20000)
        Scales (DBSCAN radius in metres), strictly increasing after sorting.
    min_actors : int or sequence of int, default=5
        DBSCAN ``min_samples`` at every scale, or one value per scale (in the order of
        ``eps_m`` as given).
    on_scale : callable, optional
        Called with each scale's ``eps_m`` once it is done (for progress bars).
    meanwhile : callable, optional
        Called without arguments, in the calling thread, once every scale's clusters are
        described and while their simulations may still run: other work of the caller
        (the pipeline writes the place-type outputs) then overlaps the simulations.
    **options
        Every other keyword of ``find_microclusters`` (units, population, n_sim ...).
        Each scale runs its own Monte Carlo with the same ``random_state``, so a scale's
        p-values equal a standalone ``find_microclusters`` call at that ``eps_m``. The
        Benjamini-Hochberg q-values (and so ``hidden``) are computed once over the clusters
        of *all* scales, so that the false discovery rate holds for the whole table.

    Returns
    -------
    geopandas.GeoDataFrame
        The clusters of all scales, smallest scale first: a ``scale_eps_m`` column
        (float64), the columns of ``find_microclusters``, and ``parent_cluster`` (Int64):
        the ``cluster_id`` at the next larger scale holding most of the cluster's members
        (ties: lowest id), ``<NA>`` at the largest scale or when none of its members is
        clustered there; ``candidate_id`` (Int64): hidden clusters linked through their
        parents are one place found at several scales and share an id (numbered from the
        smallest scale), ``<NA>`` for clusters that are not hidden. See
        :func:`hidden_candidates` for one row per candidate.

    Raises
    ------
    ConfigError
        For an empty or repeated ``eps_m`` or a ``min_actors`` sequence of another length.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> pts = [Point(x, 0) for x in (0, 100, 200, 1000, 1100, 1200)]
    >>> actors = gpd.GeoDataFrame(geometry=pts, crs="EPSG:3006")
    >>> out = ladder(actors, eps_m=(150, 1000), min_actors=3, n_sim=0)
    >>> out[["scale_eps_m", "cluster_id", "n_actors", "parent_cluster"]]
       scale_eps_m  cluster_id  n_actors  parent_cluster
    0        150.0           0         3               0
    1        150.0           1         3               0
    2       1000.0           0         6            <NA>
    >>> bool(out["candidate_id"].isna().all())     # no simulations, nothing is hidden
    True
    """
    import geopandas as gpd

    eps = [float(e) for e in np.atleast_1d(np.asarray(eps_m, dtype=np.float64))]
    if not eps:
        raise ConfigError("eps_m", "needs at least one scale")
    if isinstance(min_actors, int | np.integer):
        mins = [int(min_actors)] * len(eps)
    else:
        mins = [int(m) for m in min_actors]
        if len(mins) != len(eps):
            raise ConfigError(
                "min_actors", f"has {len(mins)} values for {len(eps)} scales in eps_m"
            )
    order = np.argsort(eps, kind="stable")
    eps = [eps[i] for i in order]
    mins = [mins[i] for i in order]
    if len(set(eps)) != len(eps):
        raise ConfigError("eps_m", f"has repeated scales: {sorted(eps)}")
    prep = prepare_actors(actors, **_prepare_kwargs(options))
    run_opts = {k: v for k, v in options.items() if k not in _PREPARE_KEYS}
    tables, labels = [], []
    for gdf, lab in _scale_tables(prep, eps, mins, run_opts, on_scale, meanwhile):
        tables.append(gdf)
        labels.append(lab)
    for i, gdf in enumerate(tables):
        gdf.insert(0, "scale_eps_m", np.float64(eps[i]))
        par = pd.array([pd.NA] * len(gdf), dtype="Int64")
        if i + 1 < len(tables) and len(gdf):
            link = parents(labels[i], labels[i + 1])
            par = pd.array([link.get(int(c), pd.NA) for c in gdf["cluster_id"]], dtype="Int64")
        gdf["parent_cluster"] = par
    out = pd.concat(tables, ignore_index=True)
    alpha = float(run_opts.get("alpha", CLUSTER_DEFAULTS["alpha"]))
    q = benjamini_hochberg(out["p_value"].to_numpy(dtype=np.float64))
    out["q_value"] = q
    out["hidden"] = out["ordinary_unit"].to_numpy(bool) & np.isfinite(q) & (q <= alpha)
    out["candidate_id"] = _candidate_ids(out)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=prep.crs)


def _scale_tables(prep, eps: list[float], mins: list[int], run_opts: dict, on_scale,
                  meanwhile) -> list[tuple]:
    """``(clusters, labels)`` of every scale, in order.

    On one thread the scales run one after the other. With more, every scale's Monte
    Carlo test starts as soon as its DBSCAN is done, the simulations of all scales share
    one pool of ``n_jobs`` threads, and this thread describes the clusters (and calls
    ``meanwhile``) while they run; each scale's p-values are those of its own seeds in
    their order, so the tables are the same either way. (A simulation takes the GIL a few
    dozen times between its kernels, so while this thread runs Python code they advance
    more slowly; they take the whole pool once it waits.)
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    # validated as start_scale validates it, so that a bad value is the same ConfigError
    n_jobs = resolve_threads(check_cluster_options(
        {"n_jobs": run_opts.get("n_jobs", CLUSTER_DEFAULTS["n_jobs"])})["n_jobs"])
    done = []
    if n_jobs <= 1:
        for e, m in zip(eps, mins, strict=True):
            run = start_scale(prep, eps_m=e, min_actors=m, stacklevel=4, **run_opts)
            done.append(finish_scale(describe_scale(run)))
            if on_scale is not None:
                on_scale(e)
        if meanwhile is not None:
            meanwhile()
        return done
    cancel = threading.Event()
    with ThreadPoolExecutor(n_jobs, thread_name_prefix="pari_geo-simulation") as sims, \
            ThreadPoolExecutor(len(eps), thread_name_prefix="pari_geo-test") as drivers:
        try:
            runs = [start_scale(prep, eps_m=e, min_actors=m, executor=sims, drivers=drivers,
                                cancel=cancel, stacklevel=4, **run_opts)
                    for e, m in zip(eps, mins, strict=True)]  # fmt: skip

            def stop_all(test) -> None:  # a test that fails stops the others at once
                if not test.cancelled() and test.exception() is not None:
                    cancel.set()

            tests = [run.test for run in runs if run.test is not None]
            for test in tests:
                test.add_done_callback(stop_all)
            for run in runs:
                describe_scale(run)
                if cancel.is_set():
                    break
            if meanwhile is not None and not cancel.is_set():
                meanwhile()
            if cancel.is_set():  # the failed test's error, before any more work
                next(t for t in tests if t.done() and t.exception() is not None).result()
            for e, run in zip(eps, runs, strict=True):
                done.append(finish_scale(run))
                if on_scale is not None:
                    on_scale(e)
        except BaseException:
            cancel.set()  # the tests still running give up at their next simulation
            raise
    return done


def _candidate_ids(table: pd.DataFrame) -> pd.arrays.IntegerArray:
    """Candidate of each hidden row: hidden clusters joined through parent links."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(table)
    ids = pd.array([pd.NA] * n, dtype="Int64")
    hidden = table["hidden"].to_numpy(bool)
    if not hidden.any():
        return ids
    scales = np.sort(table["scale_eps_m"].unique())
    nxt = {float(a): float(b) for a, b in zip(scales[:-1], scales[1:], strict=True)}
    row_of = {
        (float(e), int(c)): i
        for i, (e, c) in enumerate(zip(table["scale_eps_m"], table["cluster_id"], strict=True))
    }
    a, b = [], []
    for i in np.flatnonzero(hidden):
        par = table["parent_cluster"].iloc[i]
        e = float(table["scale_eps_m"].iloc[i])
        if par is pd.NA or e not in nxt:
            continue
        j = row_of.get((nxt[e], int(par)))
        if j is not None and hidden[j]:
            a.append(i)
            b.append(j)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    # number the candidates in table order (smallest scale first) of their first row
    hid_rows = np.flatnonzero(hidden)
    first: dict[int, int] = {}
    for i in hid_rows:
        first.setdefault(int(comp[i]), len(first))
    ids[hid_rows] = [first[int(comp[i])] for i in hid_rows]
    return ids


def hidden_candidates(table: pd.DataFrame, unit_names: dict | None = None) -> pd.DataFrame:
    """One row per hidden candidate: a place hidden at one or more scales.

    Parameters
    ----------
    table : DataFrame
        The output of :func:`ladder`.
    unit_names : dict, optional
        Unit id -> name, for a ``municipalities`` column of names.

    Returns
    -------
    pandas.DataFrame
        ``candidate_id``; ``hidden_at_m`` (the scales where it is hidden, ``;``-joined,
        smallest first); ``n_scales``; ``scale_eps_m``, ``cluster_id``, ``n_actors``,
        ``sectors``, ``rung``, ``dominant_place_type``, ``expected`` and ``ratio`` of its
        row at the smallest scale where it is hidden; ``unit_ids`` (every unit of its
        hidden rows); ``municipalities`` (their names, with ``unit_names``); ``q_value``
        (the smallest). Empty (with these columns) when nothing is hidden.

    Examples
    --------
    >>> t = pd.DataFrame({"scale_eps_m": [300.0, 1000.0], "cluster_id": [4, 2],
    ...     "candidate_id": pd.array([0, 0], dtype="Int64"), "hidden": [True, True],
    ...     "n_actors": [7, 9], "sectors": ["a;b", "a;b;c"], "rung": ["micro", "micro"],
    ...     "dominant_place_type": pd.array([6, 6], dtype="Int64"), "expected": [0.1, 0.3],
    ...     "ratio": [70.0, 30.0], "unit_ids": ["0580", "0580"], "q_value": [0.01, 0.002]})
    >>> hidden_candidates(t)[["candidate_id", "hidden_at_m", "n_actors", "q_value"]]
       candidate_id hidden_at_m  n_actors  q_value
    0             0    300;1000         7    0.002
    """
    cols = [
        "candidate_id", "hidden_at_m", "n_scales", "scale_eps_m", "cluster_id", "n_actors",
        "sectors", "rung", "dominant_place_type", "expected", "ratio", "unit_ids",
        "municipalities", "q_value",
    ]  # fmt: skip
    hid = table[table["hidden"]] if len(table) else table
    if not len(hid):
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    rows = []
    for cid, grp in hid.sort_values(["scale_eps_m", "cluster_id"]).groupby(
        "candidate_id", sort=True
    ):
        first = grp.iloc[0]
        units = sorted({u for s in grp["unit_ids"] for u in str(s).split(";") if u})
        names = unit_names or {}
        rows.append(
            {
                "candidate_id": int(cid),  # type: ignore[arg-type]
                "hidden_at_m": ";".join(f"{e:g}" for e in sorted(grp["scale_eps_m"].unique())),
                "n_scales": int(grp["scale_eps_m"].nunique()),
                "scale_eps_m": float(first["scale_eps_m"]),
                "cluster_id": int(first["cluster_id"]),
                "n_actors": int(first["n_actors"]),
                "sectors": first["sectors"],
                "rung": first["rung"],
                "dominant_place_type": first["dominant_place_type"],
                "expected": float(first["expected"]),
                "ratio": float(first["ratio"]),
                "unit_ids": ";".join(units),
                "municipalities": "; ".join(str(names.get(u, u)) for u in units),
                "q_value": float(grp["q_value"].min()),
            }
        )
    return pd.DataFrame(rows, columns=cols)


_PREPARE_KEYS = (
    "units",
    "unit_id",
    "region_col",
    "country_col",
    "population",
    "place_types",
    "sector_col",
    "social_col",
)


def _prepare_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    return {k: options[k] for k in _PREPARE_KEYS if k in options}
