"""Print the declared minimum versions of pari_geo's dependencies as pip pins.

``python .ci/min_versions.py [EXTRA ...] > pins.txt`` turns every ``name>=X`` of
``[project] dependencies`` (and of the named optional extras) into ``name==X``, so that
``pip install -c pins.txt -e .[test]`` installs exactly the floors the package declares.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pins(extras: list[str]) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    out = []
    for req in reqs:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([^,;\s]+)\s*", req)
        if m:
            out.append(f"{m.group(1)}=={m.group(3)}")
    return out


if __name__ == "__main__":
    print("\n".join(pins(sys.argv[1:])))
