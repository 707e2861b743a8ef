"""Documentation that the messages and the README point to exists and is current (issue 16)."""

from __future__ import annotations

import re
from pathlib import Path

from pari_geo import runschema

ROOT = Path(__file__).resolve().parents[1]


def test_every_docs_path_mentioned_in_the_package_exists():
    mentioned = set()
    for f in (ROOT / "src" / "pari_geo").rglob("*"):
        if f.suffix in (".py", ".toml"):
            mentioned |= set(re.findall(r"docs/methods/[\w-]+\.md", f.read_text()))
    assert mentioned >= {"docs/methods/degurba.md", "docs/methods/place-types.md"}
    for m in mentioned:
        assert (ROOT / m).is_file(), m


def test_run_file_reference_is_generated_and_current():
    """docs/run-file.md is the output of ``pari-geo schema`` (regenerate it with
    ``pari-geo schema > docs/run-file.md``)."""
    assert (ROOT / "docs" / "run-file.md").read_text() == runschema.reference_markdown()


def test_schema_command_prints_the_reference(capsys):
    from pari_geo.cli import main

    assert main(["schema"]) == 0
    assert capsys.readouterr().out == runschema.reference_markdown()


def test_every_run_file_key_is_described():
    docs = [layer.doc for layer in runschema.LAYERS.values()]
    docs += [key.doc for key in runschema.LAYER_KEYS.values()]
    for section, table in runschema.SECTIONS.items():
        if section != "inputs":
            docs += [key.doc for key in table.values()]
            assert all(isinstance(k, runschema.Key) for k in table.values()), section
    assert all(d.strip() for d in docs)


def test_cluster_defaults_are_the_python_apis():
    from pari_geo.clustering.options import CLUSTER_DEFAULTS

    for k, key in runschema.CLUSTERS.items():
        assert key.default == (list(CLUSTER_DEFAULTS[k]) if k == "eps_m"
                               else CLUSTER_DEFAULTS[k]), k


def test_changelog_has_an_unreleased_section():
    assert "## Unreleased" in (ROOT / "CHANGELOG.md").read_text()


def test_place_types_parameter_table_is_generated_and_current():
    """Issue 14 item 6: every parameter's value in both presets and its source."""
    from pari_geo.typology.nordic7 import PARAMETER_SOURCES, parameter_table_markdown

    text = (ROOT / "docs" / "methods" / "place-types.md").read_text()
    table = text.split("<!-- parameter table: begin -->\n")[1].split(
        "<!-- parameter table: end -->")[0]
    assert table == parameter_table_markdown()
    from dataclasses import fields

    from pari_geo.typology.nordic7 import Nordic7Params

    assert set(PARAMETER_SOURCES) == {f.name for f in fields(Nordic7Params)}
