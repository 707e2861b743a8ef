"""Open the interactive map of the sample region in headless Chromium and take a screenshot.

The map is pari_geo's ``explore()`` of the Östergötland-shaped sample region: place types,
municipalities and the 300 m micro-clusters (hidden ones in black). The machine running
this may be offline, so the page is made self-contained: base tiles are off, and Leaflet
(the only script the map needs) is taken from the npm registry package ``leaflet`` and
inlined in place of the CDN links.

Requirements: Debian's ``chromium`` (``apt-get install chromium``), ``npm`` and the
``folium`` Python package.

Usage::

    python scripts/screenshot_explore.py --out out/explore.png

It prints the paths of the HTML page and the PNG, and exits non-zero when the screenshot
is missing or blank.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OST = ROOT / "data" / "sample_grids" / "ostergotland"
LEAFLET = "1.9.3"


def leaflet_assets(work: Path) -> tuple[str, str]:
    """leaflet.js and leaflet.css from the npm registry package (``npm pack``)."""
    subprocess.run(["npm", "pack", f"leaflet@{LEAFLET}", "--silent"], cwd=work, check=True,
                   capture_output=True)
    with tarfile.open(work / f"leaflet-{LEAFLET}.tgz") as tar:
        js = tar.extractfile("package/dist/leaflet.js").read().decode()
        css = tar.extractfile("package/dist/leaflet.css").read().decode()
    return js, css


def build_page(work: Path) -> Path:
    import geopandas as gpd

    import pari_geo
    from pari_geo.plot import explore

    classes = pari_geo.classify_nordic7(
        OST / "population.tif", built=OST / "built_share.tif", land=OST / "land_share.tif",
        agri=OST / "agri_share.tif", commuting=OST / "commuting_share.tif",
        service_minutes=OST / "service_minutes.tif")
    units = gpd.read_file(OST / "municipalities.gpkg")[["code", "name", "population",
                                                        "geometry"]]
    clusters = pari_geo.find_microclusters(
        gpd.read_file(OST / "actors.gpkg"), eps_m=300, min_actors=5, units=units,
        unit_id="code", population=OST / "population.tif", sector_col="sector", n_sim=99)
    m = explore(classes, units=units, clusters=clusters, tiles=None)
    html = m.get_root().render()
    js, css = leaflet_assets(work)
    # inline Leaflet; drop the other CDN resources (not needed for this map, unreachable offline)
    html = re.sub(r'<script src="https://cdn\.jsdelivr\.net/npm/leaflet@[^"]+"></script>',
                  lambda _: f"<script>{js}</script>", html)
    html = re.sub(r'<link rel="stylesheet" href="https://cdn\.jsdelivr\.net/npm/leaflet@[^"]+"/>',
                  lambda _: f"<style>{css}</style>", html)
    html = re.sub(r'<script src="https?://[^"]+"></script>', "", html)
    html = re.sub(r'<link rel="stylesheet" href="https?://[^"]+"/>', "", html)
    page = work / "explore.html"
    page.write_text(html, encoding="utf-8")
    return page


def screenshot(page: Path, out: Path, size=(1200, 900)) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium not found: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
            f"--window-size={size[0]},{size[1]}", f"--screenshot={out}", page.as_uri(),
        ], check=True, capture_output=True, timeout=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "out" / "explore.png"))
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        page = build_page(Path(tmp))
        kept = out.with_suffix(".html")
        shutil.copy(page, kept)
        screenshot(kept, out)
    from PIL import Image

    with Image.open(out) as im:
        grey = np.asarray(im.convert("L"))
        distinct = len(np.unique(grey))
    print(f"page: {kept}\nscreenshot: {out} ({grey.shape[1]}x{grey.shape[0]}, "
          f"{distinct} grey levels)")
    return 0 if distinct > 10 else 1


if __name__ == "__main__":
    sys.exit(main())
