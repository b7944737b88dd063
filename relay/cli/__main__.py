"""`python -m relay.cli` is the `relay` command."""

import sys

from relay.cli import main

sys.exit(main())
