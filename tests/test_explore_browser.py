"""The interactive map opens in headless Chromium and shows the layers (issue 6).

Runs ``scripts/screenshot_explore.py`` when Chromium and npm are installed (Debian's
``chromium``; Leaflet comes from the npm registry because the page must work offline);
skipped otherwise, with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

needs_browser = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("npm")),
    reason="needs Debian's chromium and npm (apt-get install chromium npm)",
)


@needs_browser
def test_interactive_map_screenshot(tmp_path):
    from PIL import Image

    out = tmp_path / "explore.png"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshot_explore.py"),
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    with Image.open(out) as im:
        rgb = np.asarray(im.convert("RGB")).reshape(-1, 3)
    assert im.size == (1200, 900)
    # the place-type colours are on the page: sparse rural (#238443 at 0.8 opacity over the
    # grey background is a dark green) and the legend box (white)
    greens = (rgb[:, 1] > rgb[:, 0] + 40) & (rgb[:, 1] > rgb[:, 2] + 20)
    assert greens.mean() > 0.02
    html = out.with_suffix(".html").read_text(encoding="utf-8")
    assert "micro-clusters" in html and "Place types (nordic7)" in html
