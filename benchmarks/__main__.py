"""``python -m benchmarks <suite> [--quick]``: see ``benchmarks.harness.cli``."""

import sys

from benchmarks.harness.cli import main

if __name__ == "__main__":
    sys.exit(main())
