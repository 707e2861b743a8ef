"""save_figure measures the tight box without the clipped artists: same bytes (issue 11)."""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from pari_geo.io_write import PNG_SOFTWARE  # noqa: E402
from pari_geo.plot import new_figure, save_figure  # noqa: E402


def _figure(zoom: bool):
    fig, ax = new_figure((6, 5))
    rng = np.random.default_rng(3)
    ax.imshow(rng.integers(0, 7, (120, 90)), extent=(0, 900, 0, 1200), interpolation="nearest")
    ax.plot(rng.uniform(-500, 1500, 50), rng.uniform(-500, 1500, 50), color="k")  # past the axes
    ax.scatter([100, 800], [100, 1100], s=40)
    ax.set_title("A title wider than the axes of this small test figure, on purpose")
    ax.legend(handles=ax.lines, labels=["boundaries"], loc="upper left",
              bbox_to_anchor=(1.01, 1), frameon=False)
    if zoom:
        ax.set_xlim(200, 600)
        ax.set_ylim(300, 700)
    return fig


@pytest.mark.parametrize("zoom", [False, True])
def test_same_bytes_as_matplotlib_tight_box(tmp_path, zoom):
    path = tmp_path / "map.png"
    save_figure(_figure(zoom), path)
    ref = io.BytesIO()
    _figure(zoom).savefig(ref, format="png", dpi=150, bbox_inches="tight",
                          metadata={"Software": PNG_SOFTWARE})
    assert path.read_bytes() == ref.getvalue()
