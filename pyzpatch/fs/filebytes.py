"""Read-only access to a file's bytes without loading it: an mmap, or bytes for tiny files.

Codecs take any bytes-like object and hand out zero-copy slices of it, so an executable of
hundreds of megabytes is parsed without reading more than its TOCs.
"""
from __future__ import annotations

import mmap
import os
from typing import Union

from ..errors import FileAccessError
from .regular import open_regular

Buffer = Union[bytes, mmap.mmap]


class FileBytes:
    """The bytes of one file, mapped read-only. Use as a context manager or call ``close``."""

    def __init__(self, path: Union[str, os.PathLike]):
        self.path = os.fspath(path)
        fd = open_regular(self.path)  # a FIFO or device is refused, never waited on
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                self.data: Buffer = b""
            else:
                self.data = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise FileAccessError(exc.strerror or str(exc), source=self.path) from None
        finally:
            os.close(fd)

    def __len__(self) -> int:
        return len(self.data)

    def close(self) -> None:
        data, self.data = self.data, b""
        if isinstance(data, mmap.mmap):
            try:
                data.close()
            except BufferError:
                # A slice handed out by a codec is still alive; the map closes when it goes.
                pass

    def __enter__(self) -> "FileBytes":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
