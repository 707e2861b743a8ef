"""Run files: validated once, keys named in errors, and `pari-geo classify` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import rasterio

from pari_geo.cli import main
from pari_geo.errors import ConfigError
from pari_geo.runconfig import load_run

ROOT = Path(__file__).resolve().parents[1]
B = ROOT / "data" / "sample_grids" / "belgium"

BASE = f"""
[inputs]
population = "{B / "POP.tif"}"
built = {{ path = "{B / "BUILT_S.tif"}", unit = "m2" }}
land = {{ path = "{B / "LAND.tif"}", unit = "m2" }}

[typology]
name = "degurba"
level = 2

[outputs]
dir = "out"
"""


def write(tmp_path, text):
    f = tmp_path / "run.toml"
    f.write_text(text)
    return f


def test_valid_run_resolves_paths_relative_to_file(tmp_path):
    cfg = load_run(write(tmp_path, BASE))
    assert cfg.out_dir == tmp_path / "out"
    assert cfg.inputs["built"].unit == "m2"
    assert cfg.to_dict()["typology"]["level"] == 2


def test_run_is_frozen_keeps_its_parameters_and_takes_the_command_line(tmp_path):
    import dataclasses
    import pickle

    from pari_geo.config import DegurbaParams

    text = BASE.replace("level = 2", "level = 2\n[typology.parameters]\nUC_max_gap = 7")
    cfg = load_run(write(tmp_path, text + '\n[execution]\nscheduler = "tcp://h:1"\n'))
    assert cfg.params == DegurbaParams().replace(UC_max_gap=7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.level = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.parameters["UC_max_gap"] = 8  # type: ignore[index]
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    # --engine memory drops the run file's scheduler; the original is unchanged
    assert dict(cfg.with_execution({"engine": "memory"}).execution) == {"engine": "memory"}
    assert dict(cfg.execution) == {"scheduler": "tcp://h:1"}


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda t: t.replace("level = 2", "level = 2\nlevle = 1"), "typology.levle"),
        (lambda t: t.replace("level = 2", 'level = "two"'), "typology.level"),
        (lambda t: t.replace('dir = "out"', 'dir = "out"\nrasterr = "x"'), "outputs.rasterr"),
        (lambda t: t.replace('unit = "m2" }\nland', 'unit = "km2" }\nland'), "inputs.built.unit"),
        (lambda t: t + '\n[typology.parameters]\nUC_max_gap = "x"\n', "UC_max_gap"),
        (lambda t: t + "\n[typology.parameters]\nUC_foo = 1\n", "UC_foo"),
        (
            lambda t: t + "\n[typology.parameters]\nwater_land_threshold = 2\n",
            "water_land_threshold",
        ),
        (lambda t: t.replace('name = "degurba"', 'name = "urbanity"'), "typology.name"),
        (lambda t: t + "\n[extra]\n", "extra"),
        (lambda t: t.replace('[outputs]\ndir = "out"', "[outputs]"), "outputs.dir"),
    ],
)
def test_bad_keys_and_types_name_the_key(tmp_path, edit, key):
    with pytest.raises(ConfigError) as err:
        load_run(write(tmp_path, edit(BASE)))
    assert key in str(err.value)
    assert str(tmp_path / "run.toml") in str(err.value)


def test_malformed_toml(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_run(write(tmp_path, "[inputs\npopulation = 1"))


def test_classify_writes_complete_run_folder(tmp_path, capsys):
    run_file = write(tmp_path, BASE.replace("level = 2", 'level = 2\npreset = "degurba_2023"'))
    assert main(["classify", str(run_file), "--quiet"]) == 0
    out = tmp_path / "out"
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "degurba_l2.png",
        "degurba_l2.qml",
        "degurba_l2.tif",
        "degurba_l2_population_by_class.csv",
        "provenance.json",
    ]
    with rasterio.open(out / "degurba_l2.tif") as src:
        tags = src.tags()
    params = json.loads(tags["PARAMETERS"])
    assert params["SDUC_density_threshold"] == 300  # the preset was applied and recorded
    assert json.loads(tags["RUN_CONFIG"])["typology"]["preset"] == "degurba_2023"
    table = pd.read_csv(out / "degurba_l2_population_by_class.csv")
    assert table["cells"].sum() == 219 * 303
    # a second run without --overwrite refuses and leaves the folder alone
    before = (out / "degurba_l2.tif").read_bytes()
    assert main(["classify", str(run_file), "--quiet"]) != 0
    assert "exists" in capsys.readouterr().err
    assert (out / "degurba_l2.tif").read_bytes() == before


def test_failed_run_leaves_no_output_folder(tmp_path, capsys):
    run_file = write(tmp_path, BASE.replace(str(B / "LAND.tif"), str(tmp_path / "none.tif")))
    assert main(["classify", str(run_file), "--quiet"]) != 0
    assert "none.tif [land]: file not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run.toml"]


def test_example_run_file_is_valid():
    cfg = load_run(ROOT / "examples" / "belgium_degurba.toml")
    assert cfg.inputs["units"].id == "UID"
