"""``python -m fastfield``: the same command as the ``fastfield`` console script."""
import sys

from .cli import main

sys.exit(main())
