"""``python -m olsjax``: the same as the ``olsjax`` command."""

import sys

from .cli import main

sys.exit(main())
