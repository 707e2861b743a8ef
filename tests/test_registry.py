"""Issue 13 item 2: a typology is one registry entry; the face never names a typology.

A toy typology registered from the test runs through the run file, ``pari-geo validate``'s
plan and the in-memory pipeline with no change anywhere else.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio

from pari_geo.classes import ClassScheme
from pari_geo.typology import registry

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "pari_geo"

TOY = ClassScheme("toy", (1, 0), {1: "Inhabited", 0: "Empty"}, {1: "inhabited", 0: "empty"},
                  {1: "#aa0000", 0: "#eeeeee"}, nodata=255)


def _toy_classify(run):
    from pari_geo.ingest import open_raster

    pop = open_raster(run.inputs["population"].path, "population")
    codes = np.where(np.nan_to_num(pop.values) >= run.params["min_residents"], 1, 0)
    da = pop.copy(data=codes.astype(np.uint8))
    da.attrs = {"typology": "toy", "parameters": json.dumps(run.params)}
    return da.rio.write_nodata(255)


def _toy_parameters(preset, overrides, file):
    from pari_geo.errors import ConfigError

    params = {"min_residents": 1.0, **overrides}
    if set(params) != {"min_residents"}:
        raise ConfigError("typology.parameters", "only min_residents", file, what="key")
    return params


def _tiled(*args, **kwargs):
    raise NotImplementedError


TOY_ENTRY = registry.Typology(
    name="toy", label="toy", presets=("toy",), needs=(), keys=(), levels=(),
    bytes_per_cell=8, rural_codes=(), place_types_for_clusters=False,
    parameters=_toy_parameters, output_name=lambda run: "toy",
    scheme=lambda run, attrs: TOY, classify=_toy_classify, classify_tiled=_tiled,
)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "toy", TOY_ENTRY)  # noqa: SLF001 - the test's entry
    return TOY_ENTRY


def _run_file(tmp_path, belgium, extra=""):
    f = tmp_path / "run.toml"
    f.write_text(f'[inputs]\npopulation = "{belgium["population"]}"\n'
                 f'[typology]\nname = "toy"\n{extra}'
                 '[typology.parameters]\nmin_residents = 10\n'
                 '[outputs]\ndir = "out"\nmap = false\n'
                 '[execution]\nengine = "memory"\n')
    return f


def test_a_registered_typology_runs_through_the_pipeline(toy, tmp_path, belgium):
    from pari_geo.pipeline import run_classification
    from pari_geo.runconfig import load_run
    from pari_geo.validate import validate_run

    cfg = load_run(_run_file(tmp_path, belgium))
    assert cfg.params == {"min_residents": 10}
    assert validate_run(cfg)["memory_estimate"] == 8 * validate_run(cfg)["grid"]["cells"]
    res = run_classification(cfg, progress=False)
    out = res["out_dir"]
    assert sorted(p.name for p in out.iterdir()) == [
        "provenance.json", "toy.qml", "toy.tif", "toy_population_by_class.csv"]
    with rasterio.open(out / "toy.tif") as src:
        assert set(np.unique(src.read(1))) <= {0, 1}
    assert set(res["table"]["code"]) == {0, 1}


def test_a_registered_typology_refuses_keys_it_does_not_use(toy, tmp_path, belgium):
    from pari_geo.errors import ConfigError
    from pari_geo.runconfig import load_run

    with pytest.raises(ConfigError, match=r"typology.level': applies to DEGURBA only, not "
                                          r"to toy"):
        load_run(_run_file(tmp_path, belgium, "level = 1\n"))


def test_entries_are_complete():
    for name in registry.names():
        entry = registry.get(name)
        assert entry.name == name and entry.presets and entry.bytes_per_cell > 0
        assert entry.parameters(None, {}, None) is not None


@pytest.mark.parametrize("module", ["pipeline.py", "validate.py", "report_html.py",
                                    "files_output.py", "runconfig.py"])
def test_the_face_never_names_a_typology(module):
    """No string constant outside docstrings is a typology's name (they look entries up)."""
    tree = ast.parse((SRC / module).read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
                  and node.body and isinstance(node.body[0], ast.Expr)}
    named = [node.value for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and id(node) not in docstrings
             and isinstance(node.value, str)
             and re.search(rf"\b({'|'.join(registry.names())})\b", node.value)]
    assert named == [], module


def test_no_import_circle_through_the_report():
    text = (SRC / "report_html.py").read_text()
    assert "from .pipeline" not in text and "import pipeline" not in text
