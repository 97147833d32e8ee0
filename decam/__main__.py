"""``python -m decam`` runs the command line, for environments without the ``decam`` script on PATH."""

import sys

from decam.cli import main

sys.exit(main())
