"""``python -m fastpool``: the same as the ``fastpool`` command."""

import sys

from fastpool._cli import main

if __name__ == "__main__":
    sys.exit(main())
