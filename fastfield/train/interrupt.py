"""Ctrl-C between training steps: the run stops with a consistent state to save."""
import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def interrupt_between_steps() -> Iterator[Callable[[], bool]]:
    """Within the block, a first Ctrl-C only sets a flag (polled between steps, so the run
    stops with a consistent state to save); a second one raises KeyboardInterrupt at once.
    Outside the main thread signals cannot be caught and Ctrl-C behaves as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    requested = []

    def handler(signum, frame):
        if requested:
            raise KeyboardInterrupt
        requested.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(requested)
    finally:
        signal.signal(signal.SIGINT, previous)
