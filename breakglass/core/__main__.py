"""`python -m breakglass.core ...` is the same as the `breakglass` console script."""

import sys

from breakglass.core.cli import main

sys.exit(main())
