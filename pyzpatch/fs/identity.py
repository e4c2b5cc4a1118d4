"""Has a file been replaced or modified since it was checked? Its identity says: the inode and
device it lives on, its size and its modification time. One definition, used wherever an update
checks a file and acts on it later."""
from __future__ import annotations

import os
from typing import Optional, Tuple

Identity = Tuple[int, int, int, int]


def of_stat(st: os.stat_result) -> Identity:
    return st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns


def identity(path: str) -> Optional[Identity]:
    """The identity of what ``path`` names now (links followed), or None if nothing is there."""
    try:
        return of_stat(os.stat(path))
    except OSError:
        return None
