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

#: Grids of at most this many cells take the exact numpy/scipy twin of a kernel where the
#: library has one (window means, per-component sums, travel minutes): the same bits, and
#: on grids this small about as fast as the compiled kernel, while on a first run (an
#: empty numba cache) compiling the kernel costs more than the twin's whole work. Larger
#: grids and the tiles of the tiled engine above this size run the kernels, which need no
#: temporaries per cell. Read at each call, so tests can change it.
SMALL_GRID_CELLS: int = 1 << 18
