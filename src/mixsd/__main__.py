"""`python -m mixsd` is the `mixsd` command (what `accelerate launch -m mixsd` runs)."""

import sys

from mixsd.cli import main

sys.exit(main())
