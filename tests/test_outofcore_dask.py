"""The tiled DEGURBA on a dask cluster: identical bytes, worker deaths, clear failures.

A 2-process ``LocalCluster`` stands in for a real cluster (the workers read the inputs and
write the scratch files from the same file system, as they would from shared storage).
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from helpers import write_tif

from pari_geo import classify_grid_chunked
from pari_geo.errors import ConfigError, SchedulerError
from pari_geo.scheduler import task_runner

distributed = pytest.importorskip("distributed")


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _cluster(**config):
    import dask

    with dask.config.set(config):
        return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                        dashboard_address=":0")


@pytest.fixture(scope="module")
def cluster():
    with _cluster() as c:
        yield c


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A 1200 x 1200 grid of towns on land with a lake: many cell-pass tasks."""
    d = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(3)
    n = 1200
    yy, xx = np.mgrid[0:n, 0:n]
    pop = rng.gamma(0.3, 20.0, size=(n, n))
    for cy, cx, s, h in zip(rng.integers(0, n, 40), rng.integers(0, n, 40),
                            rng.uniform(2, 12, 40), rng.uniform(500, 6000, 40), strict=True):
        pop += h * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    land = np.full((n, n), 1e6)
    land[500:560, 100:700] = 0.0
    pop[500:560, 100:700] = 0.0
    built = np.minimum(pop * 40.0, 1e6)
    t = Affine(1000, 0, 3_000_000, 0, -1000, 3_000_000)
    return {k: write_tif(d / f"{k}.tif", np.round(v).astype(np.float32), crs="EPSG:3035",
                         transform=t)
            for k, v in (("population", pop), ("built", built), ("land", land))}


def _classify(paths, out, **kw):
    return classify_grid_chunked(paths["population"], paths["built"], paths["land"],
                                 out_path=out, **kw)


# --------------------------------------------------------------------------------------
# the task runner
# --------------------------------------------------------------------------------------
def test_in_process_runner_keeps_order():
    with task_runner(None) as run:
        assert run(divmod, [(7, 2), (9, 4), (1, 1)]) == [(3, 1), (2, 1), (1, 0)]
        assert run(divmod, []) == []


def test_runner_on_cluster_keeps_order(cluster):
    with task_runner(cluster.scheduler_address) as run:
        assert run(divmod, [(i, 3) for i in range(20)]) == [divmod(i, 3) for i in range(20)]


def test_unreachable_scheduler_is_a_clear_error(belgium, tmp_path, monkeypatch):
    monkeypatch.setenv("PARI_GEO_SCHEDULER_TIMEOUT", "1s")
    out = tmp_path / "out.tif"
    with pytest.raises(SchedulerError, match=r"tcp://127\.0\.0\.1:9: cannot connect"):
        _classify(belgium, out, scheduler="tcp://127.0.0.1:9")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [42, "", "   "])
def test_scheduler_of_the_wrong_kind(belgium, tmp_path, bad):
    with pytest.raises(ConfigError, match="scheduler"):
        _classify(belgium, tmp_path / "out.tif", scheduler=bad)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------
# identical results
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("level", "tile", "kw"),
    [
        (2, (7, 5), {}),
        (1, (37, 23), {}),
        (2, (64, 64), {"UC_built_threshold": "optimal", "DUC_built_threshold": "optimal"}),
        (1, (50, 41), {"UC_smooth_pop": True, "UCL_smooth_pop": True}),
        (2, (41, 37), {"preset": "degurba_2023"}),
    ],
)
def test_belgium_byte_identical_on_a_cluster(belgium, tmp_path, cluster, level, tile, kw):
    kw = dict(kw)
    params = kw.pop("preset", None)
    here = _classify(belgium, tmp_path / "here.tif", level=level, tile_shape=tile,
                     params=params, **kw)
    there = _classify(belgium, tmp_path / "there.tif", level=level, tile_shape=tile,
                      params=params, scheduler=cluster.scheduler_address, **kw)
    assert _sha(here.path) == _sha(there.path)
    assert here.counts == there.counts
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here.tif", "there.tif"]


def test_lazy_dataarrays_on_a_cluster(belgium, tmp_path, cluster):
    """Dask-backed inputs (issue 16 item 9): the workers compute their own windows."""
    import rioxarray

    lazy = {k: rioxarray.open_rasterio(belgium[k], chunks={"x": 64, "y": 64})
            for k in ("population", "built", "land")}
    there = _classify(lazy, tmp_path / "there.tif", tile_shape=(50, 60),
                      scheduler=cluster.scheduler_address)
    here = _classify(belgium, tmp_path / "here.tif", tile_shape=(50, 60))
    assert there.counts == here.counts
    with rasterio.open(there.path) as a, rasterio.open(here.path) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_client_object_is_accepted(belgium, tmp_path, cluster):
    with distributed.Client(cluster, set_as_default=False) as client:
        res = _classify(belgium, tmp_path / "a.tif", tile_shape=(90, 80), scheduler=client)
        assert client.status == "running"  # a caller's client is left open
    ref = _classify(belgium, tmp_path / "b.tif", tile_shape=(90, 80))
    assert _sha(res.path) == _sha(ref.path)


# --------------------------------------------------------------------------------------
# worker deaths
# --------------------------------------------------------------------------------------
def _kill_workers_while_running(address: str, future, *, max_kills: int) -> int:
    """SIGKILL workers that are processing cell-pass tasks until the run ends."""
    kills = 0
    killed: set[str] = set()
    with distributed.Client(address, set_as_default=False) as spy:
        while not future.done() and kills < max_kills:
            busy = [w for w, keys in spy.processing().items()
                    if w not in killed and any("_cell_tiles" in str(k) for k in keys)]
            if busy:
                try:
                    pids = spy.run(os.getpid, workers=busy[:1])
                except (OSError, distributed.comm.CommClosedError):
                    continue  # the worker went away meanwhile
                for worker, pid in pids.items():
                    os.kill(pid, signal.SIGKILL)
                    killed.add(worker)
                    kills += 1
            time.sleep(0.005)
    return kills


def test_killed_worker_run_completes_identical(synthetic, tmp_path):
    ref = _classify(synthetic, tmp_path / "ref.tif", tile_shape=(8, 1200))
    with _cluster() as cl, ThreadPoolExecutor(1) as pool:
        fut = pool.submit(_classify, synthetic, tmp_path / "dask.tif", tile_shape=(8, 1200),
                          scheduler=cl.scheduler_address)
        kills = _kill_workers_while_running(cl.scheduler_address, fut, max_kills=1)
        res = fut.result(timeout=300)
    assert kills == 1
    assert _sha(res.path) == _sha(ref.path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dask.tif", "ref.tif"]


def test_worker_deaths_beyond_retries_fail_cleanly(synthetic, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "classes.tif"
    with _cluster(**{"distributed.scheduler.allowed-failures": 0}) as cl, \
            ThreadPoolExecutor(1) as pool:
        fut = pool.submit(_classify, synthetic, out, tile_shape=(8, 1200),
                          scheduler=cl.scheduler_address)
        kills = _kill_workers_while_running(cl.scheduler_address, fut, max_kills=5)
        with pytest.raises(SchedulerError, match="worker died.*no output was written"):
            fut.result(timeout=300)
    assert kills >= 1
    assert list(out_dir.iterdir()) == []  # neither the output nor the scratch folder


# --------------------------------------------------------------------------------------
# the seven place types
# --------------------------------------------------------------------------------------
def _ostergotland_layers():
    root = Path(__file__).resolve().parents[1] / "data" / "sample_grids" / "ostergotland"
    return root / "population.tif", {
        "built": root / "built_share.tif", "land": root / "land_share.tif",
        "agri": root / "agri_share.tif", "commuting": root / "commuting_share.tif"}


@pytest.mark.parametrize("tile", [(7, 5), (61, 40)])
def test_place_types_byte_identical_on_a_cluster(tmp_path, cluster, tile):
    from pari_geo import classify_nordic7_tiled

    pop, layers = _ostergotland_layers()
    here = classify_nordic7_tiled(pop, **layers, out_path=tmp_path / "here.tif",
                                  tile_shape=tile)
    there = classify_nordic7_tiled(pop, **layers, out_path=tmp_path / "there.tif",
                                   tile_shape=tile, scheduler=cluster.scheduler_address)
    assert _sha(here.path) == _sha(there.path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here.tif", "there.tif"]


def test_place_types_bad_values_found_by_workers(tmp_path, cluster):
    """A share outside 0..1 read by a worker is reported as in the in-process run."""
    from pari_geo import classify_nordic7_tiled
    from pari_geo.errors import InputError

    pop, layers = _ostergotland_layers()
    import rasterio

    with rasterio.open(layers["built"]) as src:
        a = src.read(1)
        profile = src.profile
    a[10, 10] = 7.0
    bad = tmp_path / "built.tif"
    with rasterio.open(bad, "w", **profile) as dst:
        dst.write(a, 1)
    out = tmp_path / "out.tif"
    with pytest.raises(InputError, match="built") as here:
        classify_nordic7_tiled(pop, **{**layers, "built": bad}, out_path=out,
                               tile_shape=(40, 40))
    with pytest.raises(InputError, match="built") as there:
        classify_nordic7_tiled(pop, **{**layers, "built": bad}, out_path=out,
                               tile_shape=(40, 40), scheduler=cluster.scheduler_address)
    assert str(here.value) == str(there.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built.tif"]


def test_place_types_in_memory_layer_with_a_scheduler_is_refused(tmp_path, cluster):
    from pari_geo import classify_nordic7_tiled

    pop, layers = _ostergotland_layers()
    import rasterio

    with rasterio.open(layers["built"]) as src:
        built = src.read(1)
    with pytest.raises(ConfigError, match="scheduler.*built.*in memory"):
        classify_nordic7_tiled(pop, **{**layers, "built": built}, out_path=tmp_path / "o.tif",
                               scheduler=cluster.scheduler_address)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------
# review findings: relative paths, empty clusters, other protocols
# --------------------------------------------------------------------------------------
def test_relative_output_path_on_a_cluster(belgium, tmp_path, cluster, monkeypatch):
    """Workers run in another folder: scratch paths must not be relative."""
    ref = _classify(belgium, tmp_path / "ref.tif", tile_shape=(64, 64))
    work = tmp_path / "here"
    work.mkdir()
    monkeypatch.chdir(work)
    res = _classify(belgium, "rel.tif", tile_shape=(64, 64),
                    scheduler=cluster.scheduler_address)
    assert _sha(work / "rel.tif") == _sha(ref.path)
    assert res.counts == ref.counts
    assert sorted(p.name for p in work.iterdir()) == ["rel.tif"]


def test_scheduler_without_workers_is_a_clear_error(belgium, tmp_path, monkeypatch):
    monkeypatch.setenv("PARI_GEO_SCHEDULER_TIMEOUT", "1s")
    with (
        distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=":0") as cl,
        pytest.raises(SchedulerError, match="has no workers"),
    ):
        _classify(belgium, tmp_path / "o.tif", scheduler=cl.scheduler_address)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_protocol_is_a_clear_error(belgium, tmp_path, monkeypatch):
    monkeypatch.setenv("PARI_GEO_SCHEDULER_TIMEOUT", "1s")
    with pytest.raises(SchedulerError, match=r"tls://127\.0\.0\.1:9: cannot connect"):
        _classify(belgium, tmp_path / "o.tif", scheduler="tls://127.0.0.1:9")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------
# tiled labelling as tasks
# --------------------------------------------------------------------------------------
def _pickling_runner_in_reverse(fn, calls):
    """Run tasks as a cluster would see them: arguments pickled, any order."""
    import cloudpickle

    out = [fn(*cloudpickle.loads(cloudpickle.dumps(args))) for args in reversed(calls)]
    return out[::-1]


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("tile", [(1, 1), (7, 5), (3, 11), (40, 40)])
def test_label_tiled_by_tasks_equals_sequential(tmp_path, connectivity, tile):
    from scipy import ndimage

    from pari_geo.outofcore.components import RawGrid, label_tiled

    rng = np.random.default_rng(sum(tile) + connectivity)
    m = rng.random((23, 31)) < 0.45
    mask = RawGrid(tmp_path / "m.u1", m.shape, np.uint8)
    mask.write(0, 0, m.astype(np.uint8))
    w = rng.random(m.shape)
    seq = label_tiled(m, connectivity, tile_shape=tile, weights=w)
    par = label_tiled(mask, connectivity, tile_shape=tile, weights=w, workdir=tmp_path,
                      run=_pickling_runner_in_reverse)
    np.testing.assert_array_equal(par.labels(), seq.labels())
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    np.testing.assert_array_equal(par.labels(), ndimage.label(m, structure)[0])
    np.testing.assert_array_equal(par.sums, seq.sums)
    np.testing.assert_array_equal(par.counts, seq.counts)
    np.testing.assert_array_equal(par.bbox, seq.bbox)
