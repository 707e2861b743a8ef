"""``pari-geo classify``/``run`` engines: ``[execution]`` and ``--engine/--max-memory/--tile/
--scheduler``. The tiled engine writes the same classes and tables as the in-memory one; what
the full run cannot do out of core is refused before any work."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from pari_geo.cli import main
from pari_geo.errors import ConfigError
from pari_geo.runconfig import load_run, validate_execution

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _run(args, capsys):
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _run_file(tmp_path: Path, example: str, *, drop_units: bool = False, extra: str = "",
              out: str = "out") -> Path:
    """A copy of an example run file, paths made absolute, output in tmp_path."""
    text = (EXAMPLES / example).read_text()
    text = text.replace('"../', f'"{ROOT}/')
    # without units, the unit rules (rules, workflow) are refused as unused (issue 12)
    lines = [ln for ln in text.splitlines()
             if not (drop_units and ln.startswith(("units =", "rules =", "workflow =")))
             and not ln.startswith("dir =")]
    text = "\n".join(lines).replace("[outputs]", f'[outputs]\ndir = "{tmp_path / out}"')
    p = tmp_path / f"{out}.toml"
    p.write_text(text + "\n" + extra)
    return p


def _read(path: Path):
    with rasterio.open(path) as src:
        return src.read(1), src.transform, src.crs, src.tags()


@pytest.mark.parametrize(("example", "name"), [
    ("belgium_degurba.toml", "degurba_l2"),
    ("ostergotland_nordic7.toml", "place_types"),
])
def test_tiled_classify_writes_the_same_classes_and_table(tmp_path, capsys, example, name):
    outs = {}
    for engine in ("memory", "tiled"):
        run_file = _run_file(tmp_path, example, drop_units=True, out=engine)
        code, stdout, err = _run(["classify", run_file, "--engine", engine, "--tile", "23x19",
                                  "--quiet"], capsys)
        assert code == 0, err
        assert f"({engine} engine)" in stdout
        outs[engine] = tmp_path / engine
    (a, ta, ca, tags_a), (b, tb, cb, tags_b) = (_read(outs[e] / f"{name}.tif")
                                                for e in ("memory", "tiled"))
    np.testing.assert_array_equal(a, b)
    assert ta == tb and ca == cb
    for key in ("CLASS_NAMES", "CLASS_SCHEME", "PARAMETERS_HASH", "RUN_CONFIG"):
        assert tags_a[key].replace("/memory", "/X") == tags_b[key].replace("/tiled", "/X"), key
    t_mem, t_tiled = (pd.read_csv(outs[e] / f"{name}_population_by_class.csv")
                      for e in ("memory", "tiled"))
    pd.testing.assert_frame_equal(t_mem, t_tiled, check_exact=False, rtol=1e-12)
    assert (outs["tiled"] / f"{name}.png").stat().st_size > 10_000
    assert (outs["tiled"] / "provenance.json").exists()


def test_execution_section_picks_the_engine(tmp_path, capsys):
    run_file = _run_file(tmp_path, "belgium_degurba.toml", drop_units=True,
                         extra='[execution]\nmax_memory = "1MiB"\ntile = "64x64"\n')
    cfg = load_run(run_file)
    assert cfg.execution == {"max_memory": 1 << 20, "tile": (64, 64)}
    assert "execution" not in cfg.to_dict()  # how, not what: outputs stay identical
    code, stdout, err = _run(["classify", run_file, "--quiet"], capsys)
    assert code == 0, err
    assert "(tiled engine)" in stdout
    # the command line wins over the run file
    code, stdout, err = _run(["classify", run_file, "--quiet", "--overwrite",
                              "--max-memory", "4GiB"], capsys)
    assert code == 0, err
    assert "(memory engine)" in stdout


@pytest.mark.parametrize(("section", "match"), [
    ('engine = "fast"', r"execution\.engine.*must be one of"),
    ('tile = "0x5"', r"execution\.tile"),
    ('max_memory = "lots"', r"execution\.max_memory"),
    ("scheduler = 8786", r"execution\.scheduler.*must be a string"),
    ('engine = "memory"\nscheduler = "tcp://h:1"', "contradicts engine = 'memory'"),
    ('workers = 3', r"execution\.workers.*unknown key"),
])
def test_bad_execution_section(tmp_path, capsys, section, match):
    run_file = _run_file(tmp_path, "belgium_degurba.toml", extra=f"[execution]\n{section}\n")
    with pytest.raises(ConfigError, match=match):
        load_run(run_file)
    code, stdout, err = _run(["classify", run_file], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(run_file) in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("options", "match"), [
    (["--max-memory", "lots"], "--max-memory"),
    (["--tile", "3y4"], "--tile"),
    (["--engine", "memory", "--scheduler", "tcp://h:1"], "contradicts engine = 'memory'"),
])
def test_bad_execution_options(tmp_path, capsys, options, match):
    run_file = _run_file(tmp_path, "belgium_degurba.toml", drop_units=True)
    code, stdout, err = _run(["classify", run_file, *options], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert match in err
    assert not (tmp_path / "out").exists()


def test_tiled_engine_refuses_unit_tables_before_any_work(tmp_path, capsys):
    run_file = _run_file(tmp_path, "belgium_degurba.toml")
    code, stdout, err = _run(["classify", run_file, "--engine", "tiled"], capsys)
    assert code == 2 and "inputs.units" in err and "units_table = false" in err
    assert not (tmp_path / "out").exists()


def _fast_run_file(tmp_path, out):
    text = _run_file(tmp_path, "ostergotland_run.toml", out=out).read_text()
    text = text.replace("n_sim = 999", "n_sim = 19").replace(
        "eps_m = [300, 1000, 5000, 20000]", "eps_m = [1000, 5000]")
    p = tmp_path / f"{out}.toml"
    p.write_text(text)
    return p


def test_full_run_with_the_tiled_engine_gives_the_same_results(tmp_path, capsys):
    outs = {}
    for engine in ("memory", "tiled"):
        run_file = _fast_run_file(tmp_path, engine)
        code, stdout, err = _run(["run", run_file, "--quiet", "--engine", engine,
                                  "--tile", "100x77"], capsys)
        assert code == 0, err
        outs[engine] = tmp_path / engine
    for name in ("municipalities.csv", "place_types_population_by_class.csv",
                 "place_types_by_unit.csv", "clusters.parquet"):
        assert (outs["memory"] / name).read_bytes() == (outs["tiled"] / name).read_bytes(), name
    a, b = (_read(outs[e] / "place_types.tif") for e in ("memory", "tiled"))
    np.testing.assert_array_equal(a[0], b[0])
    assert {k for k in a[3] if a[3][k] != b[3].get(k)} <= {"RUN_CONFIG", "RUN_CONFIG_HASH"}


def test_full_run_refuses_a_grid_over_the_budget_before_any_work(tmp_path, capsys):
    run_file = _run_file(tmp_path, "ostergotland_run.toml")
    code, stdout, err = _run(["run", run_file, "--max-memory", "1KiB"], capsys)
    assert code == 2 and "pari-geo classify" in err and "budget" in err, err
    assert len(err.strip().splitlines()) == 1
    code, stdout, err = _run(["run", run_file, "--max-memory", "1KiB", "--scheduler",
                              "tcp://127.0.0.1:9"], capsys)
    assert code == 2 and "budget" in err, err
    assert not (tmp_path / "out").exists()


def test_validate_execution_for_the_command_line():
    assert validate_execution({"tile": "8x4"}, prefix="--", what="option") == {"tile": (8, 4)}
    with pytest.raises(ConfigError, match="option '--max-memory'"):
        validate_execution({"max_memory": "x"}, prefix="--", what="option")
    with pytest.raises(ConfigError, match="execution.tile"):
        validate_execution({"tile": [1.5, 2]})


def test_command_line_overrides_the_run_files_engine_choice(tmp_path):
    from pari_geo.pipeline import execution_plan

    cfg = load_run(_run_file(tmp_path, "belgium_degurba.toml", drop_units=True,
                             extra='[execution]\nscheduler = "tcp://h:1"\n'))
    assert execution_plan(cfg) == ("tiled", (1024, 1024), "tcp://h:1")
    assert execution_plan(cfg, {"engine": "memory"}) == ("memory", (1024, 1024), None)
    cfg = load_run(_run_file(tmp_path, "belgium_degurba.toml", drop_units=True, out="o2",
                             extra='[execution]\nengine = "memory"\n'))
    assert execution_plan(cfg, {"scheduler": "tcp://h:2"}) == ("tiled", (1024, 1024),
                                                               "tcp://h:2")
    assert execution_plan(cfg, {"tile": (8, 8)}) == ("memory", (8, 8), None)


def test_tiled_provenance_matches_the_in_memory_one(tmp_path, capsys):
    import json

    prov = {}
    for engine in ("memory", "tiled"):
        run_file = _run_file(tmp_path, "belgium_degurba.toml", drop_units=True, out=engine)
        code, stdout, err = _run(["classify", run_file, "--engine", engine, "--quiet"],
                                 capsys)
        assert code == 0, err
        prov[engine] = json.loads((tmp_path / engine / "provenance.json").read_text())
    assert prov["memory"]["classification"] == prov["tiled"]["classification"]


# --------------------------------------------------------------------------------------
# on a dask cluster
# --------------------------------------------------------------------------------------
def test_classify_and_degurba_grid_on_a_local_cluster(tmp_path, capsys, belgium):
    distributed = pytest.importorskip("distributed")
    run_file = _run_file(tmp_path, "belgium_degurba.toml", drop_units=True, out="dask")
    ref_file = _run_file(tmp_path, "belgium_degurba.toml", drop_units=True, out="here")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        address = cluster.scheduler_address
        code, stdout, err = _run(["classify", run_file, "--quiet", "--tile", "41x37",
                                  "--scheduler", address], capsys)
        assert code == 0, err
        assert "(tiled engine)" in stdout
        code, stdout, err = _run(["degurba", "grid", "--population", belgium["population"],
                                  "--built", belgium["built"], "--land", belgium["land"],
                                  "--out", tmp_path / "grid.tif", "--tile", "41x37",
                                  "--scheduler", address], capsys)
        assert code == 0, err
    code, stdout, err = _run(["classify", ref_file, "--quiet", "--tile", "41x37", "--engine",
                              "tiled"], capsys)
    assert code == 0, err
    a = (tmp_path / "dask" / "degurba_l2.tif").read_bytes()
    b = (tmp_path / "here" / "degurba_l2.tif").read_bytes()
    assert _read(tmp_path / "dask" / "degurba_l2.tif")[0].tobytes() == \
        _read(tmp_path / "grid.tif")[0].tobytes()
    # identical but for the run file's own output folder written into the tags
    assert len(a) == len(b)
    shutil.rmtree(tmp_path / "dask")


def test_place_types_on_a_local_cluster(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    outs = {}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        for where, extra in (("here", ["--engine", "tiled"]),
                             ("dask", ["--scheduler", cluster.scheduler_address])):
            run_file = _run_file(tmp_path, "ostergotland_nordic7.toml", drop_units=True,
                                 out=where)
            code, stdout, err = _run(["classify", run_file, "--quiet", "--tile", "29x31",
                                      *extra], capsys)
            assert code == 0, err
            outs[where] = _read(tmp_path / where / "place_types.tif")
    np.testing.assert_array_equal(outs["here"][0], outs["dask"][0])
    assert outs["here"][3]["LAYERS_USED"] == outs["dask"][3]["LAYERS_USED"]
