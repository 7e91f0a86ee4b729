"""The ``jaxrl`` command."""

from __future__ import annotations

import sys

import jaxrl


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    print(f"jaxrl {jaxrl.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
