"""Owner, group and mode for a file an update writes in place of another.

A new file belongs to whoever wrote it. Patched by root, a program owned by another user would
become root's, and with its setuid bit kept, a setuid-root program. So the new file gets the
old one's owner and group where this process may give them (root may; a user may give a group
they belong to), and where it may not, the setuid and setgid bits are dropped: those bits only
ever mean "run as the file's owner or group", and the owner is no longer the same.
"""
from __future__ import annotations

import os
import stat

_SET_ID = stat.S_ISUID | stat.S_ISGID


def give_like(path: str, uid: int, gid: int, mode: int, fd: int = -1) -> int:
    """Give ``path`` (or the open descriptor ``fd``) owner ``uid``, group ``gid`` and ``mode``,
    as far as this process may; return the mode it now has. Set-id bits survive only with the
    owner and group they were meant for."""
    if hasattr(os, "chown"):
        st = os.fstat(fd) if fd >= 0 else os.lstat(path)
        if (st.st_uid, st.st_gid) != (uid, gid):
            want_uid = uid if st.st_uid != uid else -1
            want_gid = gid if st.st_gid != gid else -1
            try:
                _chown(path, fd, want_uid, want_gid)
            except OSError:
                try:  # a user may still give the group, if they belong to it
                    if want_gid != -1:
                        _chown(path, fd, -1, want_gid)
                except OSError:
                    pass
                mode &= ~_SET_ID
            st = os.fstat(fd) if fd >= 0 else os.lstat(path)
            if (st.st_uid, st.st_gid) != (uid, gid):
                mode &= ~_SET_ID
    # chown clears set-id bits on Linux, so the mode is set after it.
    if fd >= 0:
        os.fchmod(fd, mode)
    else:
        os.chmod(path, mode)
    return mode


def _chown(path: str, fd: int, uid: int, gid: int) -> None:
    if fd >= 0:
        os.fchown(fd, uid, gid)
    else:
        os.chown(path, uid, gid, follow_symlinks=False)
