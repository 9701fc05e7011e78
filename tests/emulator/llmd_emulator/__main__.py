"""`python -m llmd_emulator start|stop|run --state-dir DIR ...`."""

import sys

from .cli import main

sys.exit(main())
