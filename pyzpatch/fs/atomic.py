"""Writing a new file beside the one it will replace: to a hidden temporary name, hashed as it
is written, flushed to disk; the caller checks it and renames it into place (or removes it).
Temporaries an interrupted write left are ours to remove by name."""
from __future__ import annotations

import os
import tempfile
from typing import Iterable, List, Optional

from ..errors import CorruptError, FileAccessError
from . import siblings
from .durable import remove_quietly
from .faults import checkpoint
from .hashing import BackgroundHash

_WRITE_BLOCK = 1024 * 1024


def remove_stale_temporaries(path) -> int:
    """Remove temporary files an interrupted write of ``path`` left beside it (only ours)."""
    directory = os.path.dirname(os.path.abspath(path))
    removed = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for entry in names:
        if siblings.is_temporary_of(entry, path):
            remove_quietly(os.path.join(directory, entry))
            removed += 1
    return removed


def write_file_atomically(path, chunks: Iterable, mode: Optional[int] = None, limit: Optional[int] = None):
    """Write chunks to a temporary file beside ``path``, fsync it, and return its name and
    SHA-256; the caller renames it into place (or removes it) after checking."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=siblings.temporary_prefix(path), suffix=siblings.TMP, dir=directory)
    except OSError as exc:
        raise FileAccessError(f"cannot write beside it: {exc.strerror or exc}", source=os.fspath(path)) from None
    hasher = BackgroundHash()
    size = 0
    try:
        with os.fdopen(fd, "wb", buffering=0) as fp:
            pending: List = []
            pending_size = 0
            for chunk in chunks:
                checkpoint()
                size += len(chunk)
                if limit is not None and size > limit:
                    raise CorruptError(f"the patch produces more than the {limit} bytes it declares")
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= _WRITE_BLOCK:
                    block = b"".join(pending)
                    hasher.update(block)
                    fp.write(block)
                    pending, pending_size = [], 0
            if pending:
                block = b"".join(pending)
                hasher.update(block)
                fp.write(block)
            digest = hasher.digest()
            checkpoint()
            os.fsync(fp.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
    except OSError as exc:
        hasher.stop()
        remove_quietly(tmp)
        raise FileAccessError(f"cannot write the new file: {exc.strerror or exc}", source=tmp) from None
    except BaseException:
        hasher.stop()
        remove_quietly(tmp)
        raise
    return tmp, size, digest
