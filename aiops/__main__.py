"""``python -m aiops``: the same as the ``aiops`` console script (``aiops.cli``)."""
import sys

from aiops.cli import main

if __name__ == "__main__":
    sys.exit(main())
