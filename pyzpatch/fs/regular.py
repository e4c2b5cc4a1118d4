"""Opening a file a user named on the command line or in the API: a regular file only.

A name can point at a FIFO (opening it for reading waits for a writer, forever), a device
(``/dev/zero`` never ends; opening some devices has effects of its own), a socket or a folder.
Every file pyzpatch reads whole or maps (patches, keys, executables, archives) is opened here:
checked with ``stat`` before it is opened, opened without blocking, and checked again with
``fstat`` on the open descriptor, so a name swapped for a FIFO in between is refused too. A
patch or key is then read up to a cap, so not even a regular file can make the read unbounded.
"""
from __future__ import annotations

import os
import stat

from ..errors import FileAccessError, PyzpatchError

# O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer (the fstat check
# then refuses it). It changes nothing for a regular file. Windows has neither FIFOs nor the flag.
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


def _refuse_unless_regular(st: os.stat_result, path: str) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise FileAccessError("is a folder, expected a file", source=path)
    if not stat.S_ISREG(st.st_mode):
        raise FileAccessError("is not a regular file (a FIFO, device or socket); refusing to read it",
                            source=path)


def open_regular(path) -> int:
    """A read-only descriptor of the regular file ``path`` (links followed); PyzpatchError naming
    the file if it is missing, unreadable or anything but a regular file."""
    name = os.fspath(path)
    try:
        _refuse_unless_regular(os.stat(name), name)  # a device is never even opened
        fd = os.open(name, _FLAGS)
    except OSError as exc:
        raise FileAccessError(exc.strerror or str(exc), source=name) from None
    try:
        _refuse_unless_regular(os.fstat(fd), name)  # replaced between stat and open
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them: a larger file (or one
    that grows while it is read) is refused, naming ``what`` it should have been."""
    name = os.fspath(path)
    fd = open_regular(name)
    try:
        with os.fdopen(fd, "rb") as fp:
            size = os.fstat(fp.fileno()).st_size
            if size > limit:
                raise PyzpatchError(f"is {size:,} bytes, more than a {what} may be ({limit:,})", source=name)
            # One read of the size fstat gave, plus a byte: the buffer is allocated once, and a
            # file that grew since is noticed instead of read on without end.
            data = fp.read(size + 1)
    except OSError as exc:
        raise FileAccessError(exc.strerror or str(exc), source=name) from None
    if len(data) > size:
        raise FileAccessError("grew while it was read; read it again once it is complete", source=name)
    return data
