"""One update at a time beside a target: an exclusive lock on the folder that holds it.

Every apply (file or folder, command line or self-update) renames things in the folder that
holds its target and removes what an interrupted apply left there. Two applies at once would
remove each other's temporaries, so each holds this lock from its first look at the folder
until its last rename. The lock is POSIX ``flock`` on the folder itself: no lock file is left
behind, and the system drops it when the process ends, however it ends.

Within one process the lock is re-entrant (a self-update holds it and calls apply, which takes
it again): two ``flock`` calls on separate descriptors of one folder would otherwise wait for
each other. Where folders cannot be locked (Windows, or a folder that cannot be opened), the
lock is a no-op and the swap's own checks are what remain.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Dict, Optional, Tuple

from ..errors import PyzpatchError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

# (device, inode) of a folder this process holds locked -> [descriptor, holders]
_held: Dict[Tuple[int, int], list] = {}
_guard = threading.Lock()
_POLL = 0.05


class FolderLock:
    """The lock on the folder holding ``target``. ``acquire(wait)`` tries for up to ``wait``
    seconds and says whether it got it; ``with FolderLock(target, wait):`` raises a one-line
    PyzpatchError instead."""

    def __init__(self, target, wait: float = 0.0):
        self.target = os.fspath(target)
        self.folder = os.path.dirname(os.path.abspath(self.target)) or os.sep
        self.wait = wait
        self._key: Optional[Tuple[int, int]] = None

    def acquire(self, wait: Optional[float] = None) -> bool:
        if self._key is not None:
            return True
        if fcntl is None:
            return True
        try:
            fd = os.open(self.folder, os.O_RDONLY)
        except OSError:
            return True  # nothing to lock with; the swap's own checks remain
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        with _guard:
            if key in _held:
                os.close(fd)
                _held[key][1] += 1
                self._key = key
                return True
        deadline = time.monotonic() + (self.wait if wait is None else wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(_POLL)
        with _guard:
            _held[key] = [fd, 1]
        self._key = key
        return True

    def release(self) -> None:
        if self._key is None:
            return
        with _guard:
            entry = _held.get(self._key)
            if entry is not None:
                entry[1] -= 1
                if entry[1] == 0:
                    del _held[self._key]
                    os.close(entry[0])  # closing the last descriptor drops the flock
        self._key = None

    def __enter__(self) -> "FolderLock":
        if not self.acquire():
            raise PyzpatchError(f"another update in its folder is still running after {self.wait:g} s; "
                                "try again when it has finished", source=self.target)
        return self

    def __exit__(self, *exc) -> None:
        self.release()
