"""Atomic file output: readers (and concurrent writers) never see a half-written file."""
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; it replaces ``path`` (os.replace)
    when the block finishes and is deleted when the block raises.

    The temporary file is hidden, in the same folder (so the rename cannot cross file
    systems) and keeps the suffix (writers such as ffmpeg pick the format from it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
                               f"{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
