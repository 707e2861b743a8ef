"""Documentation that the messages and the README point to exists and is current (issue 16)."""

from __future__ import annotations

import re
from pathlib import Path

from pari_geo._reference import DESCRIPTIONS, run_file_reference

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
    assert (ROOT / "docs" / "run-file.md").read_text() == run_file_reference()


def test_every_run_file_key_is_described():
    from pari_geo import runconfig as rc

    keys = {f"inputs.{k}" for k in rc._INPUT_LAYERS}
    keys |= {f"layer.{k}" for k in rc._LAYER_KEYS}
    for section, table in (("typology", rc._TYPOLOGY_KEYS), ("outputs", rc._OUTPUT_KEYS),
                           ("clusters", rc._CLUSTER_KEYS), ("execution", rc._EXECUTION_KEYS)):
        keys |= {f"{section}.{k}" for k in table}
    assert keys == set(DESCRIPTIONS)


def test_changelog_has_an_unreleased_section():
    assert "## Unreleased" in (ROOT / "CHANGELOG.md").read_text()
