"""`python -m intake.shell.cli`, as the console script `intake`."""

from __future__ import annotations

import sys

from intake.shell.cli import main

sys.exit(main())
