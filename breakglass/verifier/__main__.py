"""`python -m breakglass.verifier ...` is the same as the `breakglass` console script."""

import sys

from breakglass.verifier.cli import main

sys.exit(main())
