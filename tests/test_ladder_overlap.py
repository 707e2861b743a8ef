"""A ladder tests its scales at once: every scale's simulations share one pool of threads
and run while the clusters are described (issue 11). The tables stay those of one scale
after the other."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine

from pari_geo._progress import on_simulations
from pari_geo.clustering import significance as sig
from pari_geo.clustering.ladder import ladder

CRS = "EPSG:3006"
EPS = (300.0, 1000.0)


def _actors_and_units():
    rng = np.random.default_rng(4)
    units = gpd.GeoDataFrame({"mid": ["a", "b"]}, geometry=[shapely.box(0, 0, 5000, 5000),
                             shapely.box(5000, 0, 10000, 5000)], crs=CRS)  # fmt: skip
    background = np.column_stack([rng.uniform(0, 10000, 300), rng.uniform(0, 5000, 300)])
    planted = rng.normal((2500.0, 2500.0), 60.0, (12, 2))  # a tight group in unit a
    xy = np.vstack([background, planted])
    actors = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=CRS)
    return actors, units


def _kw(**extra):
    return dict(eps_m=EPS, min_actors=4, unit_id="mid", n_sim=59, early_stop=5,
                null_cell_m=500, **extra)  # fmt: skip


def test_scales_tested_at_once_give_the_table_of_one_after_the_other():
    actors, units = _actors_and_units()
    one = ladder(actors, units=units, **_kw(n_jobs=1))
    two = ladder(actors, units=units, **_kw(n_jobs=2))
    pd.testing.assert_frame_equal(one, two)
    assert one["p_value"].notna().all() and (one["p_value"] < 1).any()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_meanwhile_runs_once_in_the_calling_thread(n_jobs):
    actors, units = _actors_and_units()
    calls: list[int] = []
    ladder(actors, units=units, meanwhile=lambda: calls.append(threading.get_ident()),
           **_kw(n_jobs=n_jobs))  # fmt: skip
    assert calls == [threading.get_ident()]


def test_every_scale_reports_its_simulations_to_the_callers_listener():
    actors, units = _actors_and_units()
    seen: list[tuple[float, int]] = []
    with on_simulations(lambda eps, done, total: seen.append((eps, done))):
        ladder(actors, units=units, **_kw(n_jobs=2))
    for eps in EPS:
        done = [d for e, d in seen if e == eps]
        assert done == list(range(1, len(done) + 1)) and done  # each scale in its order


def test_an_error_meanwhile_gives_up_the_tests():
    actors, units = _actors_and_units()
    seen: list[tuple[float, int]] = []

    def fail() -> None:
        for _ in range(2000):  # until the tests have begun (at most about 20 s)
            if seen:
                break
            threading.Event().wait(0.01)
        raise RuntimeError("meanwhile failed")

    kw = {**_kw(n_jobs=2), "n_sim": 999, "early_stop": None, "pool_size": None}
    with on_simulations(lambda eps, done, total: seen.append((eps, done))), \
            pytest.raises(RuntimeError, match="meanwhile failed"):  # fmt: skip
        ladder(actors, units=units, meanwhile=fail, **kw)
    assert seen
    for eps in EPS:  # without the cancel each scale would run all 999 simulations
        assert max([d for e, d in seen if e == eps], default=0) < 999


def test_a_failing_test_stops_the_other_scales_and_is_reported(monkeypatch):
    actors, units = _actors_and_units()
    real = sig.monte_carlo_test
    seen: list[tuple[float, int]] = []

    def failing_at_1000(xy, model, observed, **kw):
        if kw["eps_m"] == 1000.0:
            raise ValueError("simulations broke at 1000 m")
        return real(xy, model, observed, **kw)

    monkeypatch.setattr(sig, "monte_carlo_test", failing_at_1000)
    called: list[int] = []
    kw = {**_kw(n_jobs=2), "n_sim": 999, "early_stop": None, "pool_size": None}
    with on_simulations(lambda eps, done, total: seen.append((eps, done))), \
            pytest.raises(ValueError, match="broke at 1000 m"):  # fmt: skip
        ladder(actors, units=units, meanwhile=lambda: called.append(1), **kw)
    assert max([d for e, d in seen if e == 300.0], default=0) < 999


def test_a_generator_seeds_the_scales_in_their_order_whatever_the_threads():
    actors, units = _actors_and_units()
    one = ladder(actors, units=units, **{**_kw(n_jobs=1),
                                         "random_state": np.random.default_rng(8)})
    two = ladder(actors, units=units, **{**_kw(n_jobs=2),
                                         "random_state": np.random.default_rng(8)})
    pd.testing.assert_frame_equal(one, two)


def test_a_bad_thread_count_is_the_usual_config_error():
    from pari_geo.errors import ConfigError

    actors, units = _actors_and_units()
    with pytest.raises(ConfigError, match="n_jobs"):
        ladder(actors, units=units, **_kw(n_jobs=0))


def test_monte_carlo_test_in_a_shared_pool_and_cancelled():
    xy = np.array([[100.0, 100.0]] * 3 + [[900.0, 900.0]] + [[420.0, 610.0]] * 4)
    model = sig.build_null_model(xy, np.zeros(len(xy), dtype=np.int64), None,
                                 population=np.ones((2, 2)),
                                 transform=Affine(500, 0, 0, 0, -500, 1000))  # fmt: skip
    kw = dict(eps_m=10.0, min_actors=3, n_sim=99, early_stop=None, n_jobs=2)
    alone = sig.monte_carlo_test(xy, model, np.array([0.5, 3.0]), **kw)
    with ThreadPoolExecutor(2) as pool:
        shared = sig.monte_carlo_test(xy, model, np.array([0.5, 3.0]), executor=pool, **kw)
    np.testing.assert_array_equal(alone[0], shared[0])
    assert alone[1] == shared[1] == 99
    stop = threading.Event()
    stop.set()
    p, n_done = sig.monte_carlo_test(xy, model, np.array([0.5, 3.0]), cancel=stop, **kw)
    assert n_done == 0 and np.isfinite(p).all()
