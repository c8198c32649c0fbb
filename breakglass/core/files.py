"""The one atomic file writer: readers see the old file or the new one, never half of one,
and a crash at any point leaves one of the two on disk.

Steps: 1. create a temporary file beside the target (same directory, so the rename stays
on one file system) with the requested mode; 2. write everything and fsync it; 3. rename
it over the target; 4. fsync the directory so the rename itself survives a power cut.
On any failure the temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def file_write_atomic(path: str | os.PathLike, data: bytes | Iterable[bytes], *, mode: int) -> None:
    """Replace `path` with `data` (bytes, or an iterable of chunks) atomically; mode `mode`.

    Raises `OSError` (callers turn it into their own one-line error).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    # 1. O_EXCL and O_NOFOLLOW with an unguessable name: a planted file or symlink makes
    # this fail instead of writing through it; rename() replaces a symlink, never its target.
    temporary = os.path.join(
        directory, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    )
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        try:
            os.fchmod(fd, mode)  # os.open's mode is masked by the umask
            # 2. Write and flush to disk.
            chunks = (data,) if isinstance(data, bytes | bytearray | memoryview) else data
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        # 3. Rename over the target.
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    # 4. Make the rename durable.
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
