"""``python -m usecases.gate``: see ``usecases.gate.cli``."""

import sys

from usecases.gate.cli import main

sys.exit(main())
