"""File-system steps that make updates crash-safe: flushing names to disk, and removing what an
update leaves over."""
from __future__ import annotations

import os
import shutil
import stat


def fsync_path(path: str, strict: bool = False) -> None:
    """Flush a file or folder (a folder: the names in it) to disk. Where a system cannot open a
    folder for this (Windows, whose renames NTFS journals itself), nothing happens, unless
    ``strict``, which lets every failure through as ``OSError``."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if os.path.isdir(path) else 0))
    except OSError:
        if strict:
            raise
        return
    try:
        os.fsync(fd)
    except OSError:
        if strict:
            raise
    finally:
        os.close(fd)


def remove_tree(path: str) -> None:
    """Remove a file, link or folder tree if it exists; failures raise ``OSError``. Folders of
    ours that forbid it (a build's read-only ``0555`` folder, a patch's mode-000 one) are made
    writable first: they are ours to remove, and left behind they would block the next apply."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        try:
            shutil.rmtree(path)
        except PermissionError:
            _open_up(path)
            shutil.rmtree(path)


def _open_up(root: str) -> None:
    """Give the owner rwx on every folder below ``root`` (links not followed) that this
    process may change; others are left as they are."""
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            st = os.lstat(folder)
            if stat.S_IMODE(st.st_mode) & 0o700 != 0o700:
                os.chmod(folder, stat.S_IMODE(st.st_mode) | 0o700)
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            full = os.path.join(folder, name)
            try:
                if stat.S_ISDIR(os.lstat(full).st_mode):
                    pending.append(full)
            except OSError:
                pass


def remove_quietly(path: str) -> bool:
    """Remove a file, link or folder tree; False if (part of) it could not be removed yet."""
    try:
        remove_tree(path)
    except OSError:
        return False
    return True
