"""``python -m fastfield``: the same command as the ``fastfield`` console script."""
import sys

from .app.cli import main

sys.exit(main())
