"""The application layer: the ``fastfield`` command (cli.py) and what it runs -- the commands as
functions (commands.py), the demo (demo.py), videos (video.py) and run folders (runs.py). Nothing
in the library imports it."""
