"""``python -m pari_geo``: the ``pari-geo`` command line."""

import sys

from .cli import main

sys.exit(main())
