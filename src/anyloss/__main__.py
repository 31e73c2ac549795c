"""``python -m anyloss``: the command line (see anyloss.cli)."""

import sys

from .cli import main

sys.exit(main())
