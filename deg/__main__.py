"""``python -m deg``: see ``deg.cli``."""

import sys

from deg.cli import main

sys.exit(main())
