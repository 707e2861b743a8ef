"""pari_geo never selects or changes the user's matplotlib backend (issue 16)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_writing_maps_keeps_the_backend_and_opens_no_figure(tmp_path):
    # the command line and the pipeline draw their PNGs on plain Figures (the old code
    # called matplotlib.use("Agg"), switching a notebook's inline backend off)
    code = f"""
    import matplotlib
    matplotlib.use("svg")
    from pari_geo.cli import main
    from pari_geo.datasets import belgium_paths
    p = belgium_paths()
    code = main(["degurba", "grid", "--population", str(p["population"]), "--built",
                 str(p["built"]), "--land", str(p["land"]), "--out", r"{tmp_path}/l2.tif",
                 "--map", r"{tmp_path}/l2.png"])
    assert code == 0
    import matplotlib.pyplot as plt
    print(matplotlib.get_backend(), plt.get_fignums())
    """
    assert run_python(code).splitlines()[-1] == "svg []"
    assert (tmp_path / "l2.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_keep_the_backend_the_user_chose():
    code = """
    import matplotlib
    matplotlib.use("svg")
    import pari_geo
    p = pari_geo.belgium_paths()
    l1 = pari_geo.classify_grid(p["population"], p["built"], p["land"], level=1)
    pari_geo.plot_classes(l1)
    fig, ax = pari_geo.plot.new_figure()
    pari_geo.plot_classes(l1, ax=ax)
    print(matplotlib.get_backend())
    """
    assert run_python(code) == "svg"
