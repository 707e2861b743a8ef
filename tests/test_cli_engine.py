"""``pari-geo degurba grid --engine/--max-memory/--tile``: the tiled engine writes the same
outputs as the in-memory one, auto picks it from the memory budget, bad options fail clean."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio

from pari_geo.cli import main
from pari_geo.memory import choose_engine, parse_size, parse_tile


def _args(b, out, *extra):
    return ["degurba", "grid", "--population", str(b["population"]), "--built",
            str(b["built"]), "--land", str(b["land"]), "--out", str(out), *extra]


def _run(args, capsys):
    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize("level", ["1", "2"])
def test_tiled_engine_writes_the_same_raster_and_table(belgium, tmp_path, capsys, level):
    outs = {}
    for engine in ("memory", "tiled"):
        d = tmp_path / engine
        d.mkdir()
        code, stdout, err = _run(_args(belgium, d / "c.tif", "--level", level, "--engine",
                                       engine, "--tile", "37x41", "--table", str(d / "t.csv"),
                                       "--map", str(d / "m.png"), "--set", "UC_max_gap=7"),
                                 capsys)
        assert code == 0, err
        with rasterio.open(d / "c.tif") as src:
            outs[engine] = (src.read(1), src.transform, src.crs, src.tags())
        assert (d / "m.png").stat().st_size > 10_000
    (a, ta, ca, tags_a), (b, tb, cb, tags_b) = outs["memory"], outs["tiled"]
    np.testing.assert_array_equal(a, b)
    assert ta == tb and ca == cb
    assert "OUT_OF_CORE" in tags_b and "OUT_OF_CORE" not in tags_a
    assert {k: v for k, v in tags_b.items() if k != "OUT_OF_CORE"} == tags_a
    ta_, tb_ = (pd.read_csv(tmp_path / e / "t.csv") for e in ("memory", "tiled"))
    pd.testing.assert_frame_equal(ta_, tb_, check_exact=False, rtol=1e-12)
    assert "tiled, 37x41" in stdout


def test_auto_engine_follows_the_budget(belgium, tmp_path, capsys):
    code, _, err = _run(_args(belgium, tmp_path / "small.tif", "--max-memory", "1MiB"), capsys)
    assert code == 0, err
    with rasterio.open(tmp_path / "small.tif") as src:
        assert "OUT_OF_CORE" in src.tags()  # 66,357 cells x 48 B > 1 MiB
    code, _, err = _run(_args(belgium, tmp_path / "big.tif", "--max-memory", "1GiB"), capsys)
    assert code == 0, err
    with rasterio.open(tmp_path / "big.tif") as src:
        assert "OUT_OF_CORE" not in src.tags()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--max-memory", "lots"], "option '--max-memory': expected a size"),
        (["--max-memory", "0"], "option '--max-memory': must be a positive size"),
        (["--tile", "0x5"], "option '--tile': expected ROWSxCOLS"),
        (["--tile", "axb"], "option '--tile': expected ROWSxCOLS"),
    ],
)
def test_bad_engine_options_one_line_nothing_written(belgium, tmp_path, capsys, extra, match):
    code, _, err = _run(_args(belgium, tmp_path / "c.tif", *extra), capsys)
    assert code == 2
    assert match in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_tiled_engine_bad_input_one_line_nothing_written(belgium, tmp_path, capsys):
    b = dict(belgium, built=tmp_path / "missing.tif")
    out = tmp_path / "o"
    out.mkdir()
    code, _, err = _run(_args(b, out / "c.tif", "--engine", "tiled", "--table",
                              str(out / "t.csv")), capsys)
    assert code == 2, err
    assert "missing.tif" in err and len(err.strip().splitlines()) == 1
    assert list(out.iterdir()) == []


def test_memory_helpers():
    assert parse_size("1.5KiB") == 1536 and parse_size("2g") == 2 * 10**9
    assert parse_tile("12X7") == (12, 7) and parse_tile((3, 4)) == (3, 4)
    assert choose_engine(1000, budget=48_000) == "memory"
    assert choose_engine(1001, budget=48_000) == "tiled"
