"""The interactive map opens in headless Chromium and shows the layers (issue 6).

Runs ``scripts/screenshot_explore.py`` when Chromium and npm are installed (Debian's
``chromium``; Leaflet comes from the npm registry because the page must work offline);
skipped otherwise, with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

_HAVE_BROWSER = bool(shutil.which("chromium") and shutil.which("npm"))
if not _HAVE_BROWSER and os.environ.get("PARI_GEO_REQUIRE_BROWSER"):  # CI installs them
    raise RuntimeError("PARI_GEO_REQUIRE_BROWSER is set but chromium or npm is missing")
needs_browser = pytest.mark.skipif(
    not _HAVE_BROWSER,
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


@needs_browser
def test_interactive_map_shows_the_legend_with_every_class_colour(tmp_path):
    # pixels, not HTML: the legend box (fixed at the bottom left, white) is drawn and each
    # place type's swatch appears in it at full opacity (the map itself is at 0.8 opacity,
    # so these exact colours occur only in the legend)
    from PIL import Image

    from pari_geo.classes import NORDIC7

    out = tmp_path / "explore.png"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshot_explore.py"),
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    with Image.open(out) as im:
        rgb = np.asarray(im.convert("RGB"))
    corner = rgb[-320:, :360].reshape(-1, 3)
    assert (corner >= 250).all(axis=1).mean() > 0.1  # the white legend box
    present = {tuple(int(v) for v in px) for px in np.unique(corner, axis=0)}
    for code in NORDIC7.codes:
        hexc = NORDIC7.colours[code].lstrip("#")
        colour = tuple(int(hexc[i:i + 2], 16) for i in (0, 2, 4))
        assert colour in present, (code, NORDIC7.names[code])


@needs_browser
def test_report_html_renders_in_the_browser(tmp_path):
    # the planner's report of `pari-geo run` opens offline and shows its maps (pixels)
    from PIL import Image

    from pari_geo.cli import main
    from pari_geo.datasets import copy_example

    run_file = copy_example("ostergotland", tmp_path / "ex")
    text = run_file.read_text().replace("n_sim = 999", "n_sim = 19").replace(
        "eps_m = [300, 1000, 5000, 20000]", "eps_m = [300]")
    run_file.write_text(text)
    assert main(["run", str(run_file), "--quiet"]) == 0
    page = tmp_path / "ex" / "out" / "ostergotland_run" / "report.html"
    shot = tmp_path / "report.png"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(shot) as im:
        rgb = np.asarray(im.convert("RGB")).reshape(-1, 3)
    # the synthetic-data banner (#fff3cd) and the place-type map's greens are drawn
    assert ((rgb == (255, 243, 205)).all(axis=1)).mean() > 0.001
    greens = (rgb[:, 1] > rgb[:, 0] + 40) & (rgb[:, 1] > rgb[:, 2] + 20)
    assert greens.mean() > 0.01
