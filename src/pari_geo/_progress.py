"""Progress of long runs: a tqdm bar on a terminal, plain lines in logs and pipes.

A carriage-return progress bar written into a redirected log file leaves one long line of
overwritten frames; when the stream is not a terminal each step is one plain line instead
(``pari-geo run: 2/7 micro-clusters``), also sent to the ``pari_geo`` logger (DEBUG).

Long steps report progress *within* the step (:meth:`PlainProgress.within_step`): a bar
moves on between two steps (redrawn at most every :data:`BAR_INTERVAL_S`), plain output
gets a line at most every :data:`PLAIN_INTERVAL_S`. The Monte Carlo simulations report
through :func:`report_simulations` to whoever listens (:func:`on_simulations`), so the
statistics code knows nothing of bars.

Examples
--------
>>> import io
>>> out = io.StringIO()
>>> with progress(True, 2, "demo", stream=out) as bar:
...     bar.set_postfix_str("first")
...     bar.update(1)
...     bar.update(1)
>>> print(out.getvalue(), end="")
demo: 1/2 first
demo: 2/2 first

>>> seen = []
>>> with on_simulations(lambda eps, done, total: seen.append((eps, done, total))):
...     report_simulations(300.0, 1, 99)
>>> report_simulations(300.0, 2, 99)  # nobody listens any more
>>> seen
[(300.0, 1, 99)]
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

__all__ = ["progress", "PlainProgress", "on_simulations", "report_simulations"]

log = logging.getLogger("pari_geo")

#: seconds between two redraws of a terminal bar inside a step
BAR_INTERVAL_S = 0.2
#: seconds between two plain lines inside a step (logs stay short)
PLAIN_INTERVAL_S = 10.0

SimulationHook = Callable[[float, int, int], None]
_ON_SIMULATION: ContextVar[SimulationHook | None] = ContextVar(
    "pari_geo_on_simulation", default=None
)


@contextmanager
def on_simulations(hook: SimulationHook) -> Iterator[None]:
    """Call ``hook(eps_m, n_done, n_sim)`` after each Monte Carlo simulation in this block.

    The hook runs in the thread that consumes a scale's simulations, in simulation order:
    the caller's, or a worker's when a ladder tests its scales at once (the hook then
    runs in a copy of the caller's context, and may be called from several threads); it
    must be quick (a bar throttles its own redraws).
    """
    token = _ON_SIMULATION.set(hook)
    try:
        yield
    finally:
        _ON_SIMULATION.reset(token)


def report_simulations(eps_m: float, n_done: int, n_sim: int) -> None:
    """Tell the listener of :func:`on_simulations`, if any, that ``n_done`` of at most
    ``n_sim`` simulations of scale ``eps_m`` are done."""
    hook = _ON_SIMULATION.get()
    if hook is not None:
        hook(float(eps_m), int(n_done), int(n_sim))


class PlainProgress:
    """tqdm's ``update`` / ``set_postfix_str`` interface printing one line per step."""

    def __init__(
        self,
        total: int,
        desc: str,
        stream: TextIO | None,
        enabled: bool = True,
        interval_s: float = PLAIN_INTERVAL_S,
    ):
        self.total = int(total)
        self.desc = desc
        self.n = 0
        self.postfix = ""
        self._stream = stream
        self._enabled = enabled
        self._interval_s = float(interval_s)
        self._last_partial = -math.inf
        # steps (the caller's thread) and progress within a step (possibly a worker's)
        self._lock = threading.Lock()

    def _print(self, line: str) -> None:
        log.debug(line)
        if self._enabled and self._stream is not None:
            print(line, file=self._stream, flush=True)

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` steps and print the new state."""
        with self._lock:
            self.n += int(n)
            self._print(f"{self.desc}: {self.n}/{self.total}"
                        + (f" {self.postfix}" if self.postfix else ""))  # fmt: skip

    def within_step(self, fraction: float, text: str) -> None:
        """Progress inside the current step: a line ``desc: n/total text``, at most one
        every ``interval_s`` seconds (``fraction`` is not shown; a bar uses it)."""
        with self._lock:
            now = time.monotonic()
            if now - self._last_partial < self._interval_s:
                return
            self._last_partial = now
            self._print(f"{self.desc}: {self.n}/{self.total} {text}")

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """The text after the counter from the next step on (``refresh`` is ignored)."""
        self.postfix = str(s)

    def close(self) -> None:
        """Nothing to clean up (kept for tqdm's interface)."""

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(enabled: bool, total: int, desc: str, *, stream: TextIO | None = None) -> Any:
    """A progress reporter for ``total`` steps.

    Parameters
    ----------
    enabled : bool
        Show progress at all (steps still go to the ``pari_geo`` logger at DEBUG).
    total : int
        Number of steps.
    desc : str
        Label of the bar or of each line.
    stream : file-like, optional
        Where to write (default ``sys.stderr``): a tqdm bar if it is a terminal, plain
        lines otherwise.

    Returns
    -------
    tqdm.tqdm or PlainProgress
    """
    out = sys.stderr if stream is None else stream
    isatty = getattr(out, "isatty", None)
    if enabled and callable(isatty) and isatty():
        return _bar(total, desc, out)
    return PlainProgress(total, desc, out, enabled=enabled)


def _bar(total: int, desc: str, out: TextIO) -> Any:
    """A tqdm bar that can also move on inside a step (``within_step``)."""
    from tqdm.auto import tqdm

    class _StepBar(tqdm):  # type: ignore[misc, valid-type]
        _last_partial = -math.inf
        # no monitor thread: the steps redraw the bar, and a run that forks a helper
        # (the municipal maps) does so only without other Python threads
        monitor_interval = 0
        # steps (the caller's thread) and progress within a step (possibly a worker's)
        # change the count one at a time
        _count_lock = threading.RLock()

        def update(self, n: float | None = 1) -> bool | None:
            with self._count_lock:
                # drop the fraction shown inside the step
                whole: float = math.floor(float(self.n) + 1e-9)  # type: ignore[has-type]
                self.n = whole
                return super().update(n)

        def within_step(self, fraction: float, text: str) -> None:
            with self._count_lock:
                now = time.monotonic()
                if now - self._last_partial < BAR_INTERVAL_S:
                    return
                self._last_partial = now
                whole: float = math.floor(float(self.n) + 1e-9)
                self.n = whole + min(max(float(fraction), 0.0), 0.999)
                self.set_postfix_str(text)  # redraws

    fmt = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"
    return _StepBar(total=total, desc=desc, leave=False, file=out, bar_format=fmt)
