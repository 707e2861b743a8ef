"""The pari-geo command line: the issue-2 contract and one-line errors that write nothing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from helpers import write_tif

from pari_geo.cli import main


def grid_args(b, out, *extra):
    return [
        "degurba",
        "grid",
        "--population",
        str(b["population"]),
        "--built",
        str(b["built"]),
        "--land",
        str(b["land"]),
        "--out",
        str(out),
        *extra,
    ]


def run(args, capsys):
    code = main(list(args))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_grid_level2_default_counts(belgium, tmp_path, capsys):
    out = tmp_path / "l2.tif"
    code, stdout, err = run(
        grid_args(
            belgium,
            out,
            "--level",
            "2",
            "--map",
            str(tmp_path / "l2.png"),
            "--table",
            str(tmp_path / "t.csv"),
        ),
        capsys,
    )
    assert code == 0, err
    with rasterio.open(out) as src:
        vals, counts = np.unique(src.read(1), return_counts=True)
    assert dict(zip(vals.tolist(), counts.tolist(), strict=True)) == {
        30: 2145,
        23: 1511,
        22: 575,
        21: 6789,
        13: 2091,
        12: 20955,
        11: 29713,
        10: 2578,
    }
    table = pd.read_csv(tmp_path / "t.csv")
    pop = rasterio.open(belgium["population"]).read(1)
    assert np.isclose(table["population"].sum(), np.nansum(pop))
    assert (tmp_path / "l2.png").stat().st_size > 10_000


def test_grid_set_and_values(belgium, tmp_path, capsys):
    out = tmp_path / "l1.tif"
    code, _, err = run(
        grid_args(
            belgium,
            out,
            "--level",
            "1",
            "--set",
            "UC_density_threshold=1000",
            "--set",
            "UC_smooth_edge_fun=majority_rule_R2022A",
            "--set",
            "UC_gap_fill=false",
            "--values",
            "13,12,11,10",
        ),
        capsys,
    )
    assert code == 0, err
    with rasterio.open(out) as src:
        assert set(np.unique(src.read(1)).tolist()) == {13, 12, 11, 10}
        assert '"UC_density_threshold": 1000.0' in src.tags()["PARAMETERS"]


def test_existing_output_is_not_overwritten(belgium, tmp_path, capsys):
    out = tmp_path / "l2.tif"
    out.write_bytes(b"old")
    code, _, err = run(grid_args(belgium, out), capsys)
    assert code != 0 and "exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"old"
    # issue 12: --overwrite replaces only a file pari_geo wrote
    code, _, err = run(grid_args(belgium, out, "--overwrite"), capsys)
    assert code == 2 and "not written by pari_geo" in err
    assert out.read_bytes() == b"old"
    out.unlink()
    code, _, _ = run(grid_args(belgium, out), capsys)
    first = out.read_bytes()
    code, _, _ = run(grid_args(belgium, out, "--overwrite", "--level", "1"), capsys)
    assert code == 0 and out.read_bytes() != first


def _bad_inputs(tmp_path, b):
    """(name, args-builder) for each bad input of the issue-2 list."""
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"GIF89a not a tiff" * 20)
    geo = write_tif(
        tmp_path / "geo.tif",
        np.ones((5, 5), np.float32),
        crs="EPSG:4326",
        transform=Affine(0.01, 0, 4.0, 0, -0.01, 51.0),
    )
    far = write_tif(
        tmp_path / "far.tif",
        np.ones((5, 5), np.float32) * 1e5,
        transform=Affine(1000, 0, 5e6, 0, -1000, 1e6),
    )
    share = write_tif(
        tmp_path / "share.tif",
        np.full((219, 303), 1.5, np.float32),
        transform=Affine(1000, 0, 187000, 0, -1000, 6035000),
    )
    p, bu, la = str(b["population"]), str(b["built"]), str(b["land"])
    return {
        "missing file": (
            ["--population", str(tmp_path / "nope.tif"), "--built", bu, "--land", la],
            "file not found",
        ),
        "empty file": (["--population", str(empty), "--built", bu, "--land", la], "empty"),
        "unreadable raster": (
            ["--population", str(junk), "--built", bu, "--land", la],
            "cannot be read as a raster",
        ),
        "geographic CRS": (
            ["--population", str(geo), "--built", bu, "--land", la],
            "geographic CRS",
        ),
        "no overlap": (["--population", p, "--built", str(far), "--land", la], "does not overlap"),
        "unknown --set": (
            ["--population", p, "--built", bu, "--land", la, "--set", "UC_density=1000"],
            "unknown DEGURBA parameter",
        ),
        "wrong value type": (
            ["--population", p, "--built", bu, "--land", la, "--set", "UC_gap_fill=maybe"],
            "true or false",
        ),
        "share outside 0..1": (
            ["--population", p, "--built", str(share), "--built-unit", "share", "--land", la],
            "outside 0..1",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "empty file",
        "unreadable raster",
        "geographic CRS",
        "no overlap",
        "unknown --set",
        "wrong value type",
        "share outside 0..1",
    ],
)
def test_bad_input_gives_one_line_and_writes_nothing(case, belgium, tmp_path, capsys):
    args, message = _bad_inputs(tmp_path, belgium)[case]
    outdir = tmp_path / "out"
    outdir.mkdir()
    code, _, err = run(["degurba", "grid", *args, "--out", str(outdir / "x.tif")], capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0]
    assert "Traceback" not in err
    assert list(outdir.iterdir()) == []


def test_units_command_contract(belgium, tmp_path, capsys):
    l2 = tmp_path / "l2.tif"
    assert run(grid_args(belgium, l2), capsys)[0] == 0
    out = tmp_path / "units.csv"
    code, _, err = run(
        [
            "degurba",
            "units",
            "--units",
            str(belgium["units"]),
            "--id",
            "UID",
            "--classification",
            str(l2),
            "--population",
            str(belgium["population"]),
            "--level",
            "2",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    df = pd.read_csv(out)
    assert len(df) == 581
    assert list(df.columns[:2]) == ["UID", "Tot_Pop"]
    assert {"L1", "L2", "UCentre_share", "SDUC_Pop"} <= set(df.columns)
    assert set(df["L2"].dropna().astype(int)) <= {30, 23, 22, 21, 13, 12, 11}


def test_console_script_debug_shows_traceback(tmp_path):
    exe = [sys.executable, "-m", "pari_geo.cli"]
    args = [
        "degurba",
        "grid",
        "--population",
        str(tmp_path / "no.tif"),
        "--built",
        "b",
        "--land",
        "l",
        "--out",
        str(tmp_path / "o.tif"),
    ]
    plain = subprocess.run([*exe, *args], capture_output=True, text=True)
    assert plain.returncode != 0 and len(plain.stderr.strip().splitlines()) == 1
    debug = subprocess.run([*exe, "--debug", *args], capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
