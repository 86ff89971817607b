"""`python -m cvae.cli`: the `cvae` command (as `torchrun -m cvae.cli train ...` runs it)."""

import sys

from cvae.cli import main

sys.exit(main())
