"""Build hook: bundle the repository's sample data and example run files into the package.

The sample data live once, in ``data/sample_grids/`` (where the examples, tests and
notebooks find them in a clone); a wheel carries a copy under ``pari_geo/sample_data/`` so
that :func:`pari_geo.datasets.sample_data_dir` and ``pari-geo example`` work from an
installed package. Editable installs read the repository's ``data/`` directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# (source folder in the repository, destination inside the package, files)
BUNDLED = (
    ("data/sample_grids", "sample_data/sample_grids", "*/*"),
    ("examples", "sample_data/examples", "*.toml"),
)


class BuildPyWithData(build_py):
    """``build_py`` that also copies the sample data and the example run files."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install finds the repository's data/ itself
        package = Path(self.build_lib) / "pari_geo"
        for src, dest, pattern in BUNDLED:
            files = sorted(p for p in (ROOT / src).glob(pattern) if p.is_file())
            if not files:
                raise SystemExit(f"setup.py: no files matching {src}/{pattern} to bundle")
            for f in files:
                target = package / dest / f.relative_to(ROOT / src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)


setup(cmdclass={"build_py": BuildPyWithData})
