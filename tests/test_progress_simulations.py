"""The progress bar of ``pari-geo run`` moves on during the simulations (issue 11)."""

from __future__ import annotations

import io

import numpy as np
from affine import Affine

from pari_geo import _progress
from pari_geo._progress import PlainProgress, on_simulations, progress, report_simulations
from pari_geo.clustering.significance import build_null_model, monte_carlo_test


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_monte_carlo_test_reports_every_simulation_in_order():
    xy = np.array([[100.0, 100.0]] * 3 + [[900.0, 900.0]])
    model = build_null_model(
        xy,
        np.zeros(4, dtype=np.int64),
        None,
        population=np.ones((2, 2)),
        transform=Affine(500, 0, 0, 0, -500, 1000),
    )
    seen: list[tuple[float, int, int]] = []
    with on_simulations(lambda eps, done, total: seen.append((eps, done, total))):
        _, n_done = monte_carlo_test(
            xy,
            model,
            np.array([0.0]),
            eps_m=10,
            min_actors=3,
            n_sim=99,
            p_method="max",
            early_stop=5,
        )
    assert seen == [(10.0, i, 99) for i in range(1, n_done + 1)]
    report_simulations(10.0, 1, 99)  # nobody listens outside the block
    assert len(seen) == n_done


def test_plain_lines_within_a_step_are_throttled():
    out = io.StringIO()
    bar = PlainProgress(3, "run", out, interval_s=3600.0)
    bar.update(1)
    for i in range(5):
        bar.within_step(i / 5, f"{i}/5 simulations")
    assert out.getvalue().splitlines() == ["run: 1/3", "run: 1/3 0/5 simulations"]
    every = PlainProgress(3, "run", io.StringIO(), interval_s=0.0)
    for i in range(3):
        every.within_step(i / 3, f"{i}/3")
    assert every._stream.getvalue().count("\n") == 3  # type: ignore[union-attr]


def test_a_terminal_bar_moves_within_a_step_and_steps_stay_whole(monkeypatch):
    monkeypatch.setattr(_progress, "BAR_INTERVAL_S", 0.0)  # no throttling here
    out = _Tty()
    with progress(True, 4, "run", stream=out) as bar:
        bar.update(1)
        bar.within_step(0.5, "half of the simulations")
        assert bar.n == 1.5
        assert "half of the simulations" in out.getvalue()
        bar.update(1)
        assert bar.n == 2
        bar.within_step(2.0, "more than all")  # never reaches the next step
        assert 2 < bar.n < 3
