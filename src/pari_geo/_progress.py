"""Progress of long runs: a tqdm bar on a terminal, plain lines in logs and pipes.

A carriage-return progress bar written into a redirected log file leaves one long line of
overwritten frames; when the stream is not a terminal each step is one plain line instead
(``pari-geo run: 2/7 micro-clusters``), also sent to the ``pari_geo`` logger (DEBUG).

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
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

__all__ = ["progress", "PlainProgress"]

log = logging.getLogger("pari_geo")


class PlainProgress:
    """tqdm's ``update`` / ``set_postfix_str`` interface printing one line per step."""

    def __init__(self, total: int, desc: str, stream: TextIO | None, enabled: bool = True):
        self.total = int(total)
        self.desc = desc
        self.n = 0
        self.postfix = ""
        self._stream = stream
        self._enabled = enabled

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` steps and print the new state."""
        self.n += int(n)
        line = f"{self.desc}: {self.n}/{self.total}" + (f" {self.postfix}" if self.postfix else "")
        log.debug(line)
        if self._enabled and self._stream is not None:
            print(line, file=self._stream, flush=True)

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
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, file=out)
    return PlainProgress(total, desc, out, enabled=enabled)
