"""``python -m horizon_lib`` is the ``horizon`` command."""

import sys

from .cli import main

sys.exit(main())
