"""Atomic file output: readers (and concurrent writers) never see a half-written file, and a
crash or power loss leaves either the previous file or the new one."""
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List


def _fsync(path: Path, directory: bool = False) -> None:
    if directory and not hasattr(os, "O_DIRECTORY"):
        return  # not POSIX: renames cannot be persisted this way
    fd = os.open(path, (os.O_RDONLY | os.O_DIRECTORY) if directory else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_TEMPORARY = ".{stem}.{tag}.tmp{suffix}"  # the temporary file beside the target


def leftover_temporaries(path) -> List[Path]:
    """The temporary files of atomic writes to ``path`` still beside it: a writer killed
    outright (SIGKILL, power loss) cannot remove its own."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(_TEMPORARY.format(stem=path.stem, tag="*",
                                                     suffix=path.suffix)))


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to. When the block finishes the file is
    fsync'ed, replaces ``path`` (os.replace) and the folder is fsync'ed so the rename persists;
    when the block raises it is deleted and ``path`` is untouched.

    The temporary file is hidden, in the same folder (so the rename cannot cross file
    systems) and keeps the suffix (writers such as ffmpeg pick the format from it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(_TEMPORARY.format(stem=path.stem, tag=f"{os.getpid()}."
                                                 f"{uuid.uuid4().hex[:8]}", suffix=path.suffix))
    try:
        yield temporary
        _fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync(path.parent, directory=True)
