"""Shared numba settings: one switch turns on-disk kernel caching off.

Set the environment variable ``PARI_GEO_NUMBA_CACHE=0`` to compile kernels without
writing numba's cache (read-only installs, debugging).
"""

from __future__ import annotations

import os

CACHE: bool = os.environ.get("PARI_GEO_NUMBA_CACHE", "1").strip().lower() not in {
    "0",
    "false",
    "no",
    "off",
}
