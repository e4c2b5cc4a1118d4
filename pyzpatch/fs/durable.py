"""File-system steps that make updates crash-safe: flushing names to disk, and removing what an
update leaves over."""
from __future__ import annotations

import os
import shutil


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
    """Remove a file, link or folder tree if it exists; failures raise ``OSError``."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def remove_quietly(path: str) -> bool:
    """Remove a file, link or folder tree; False if (part of) it could not be removed yet."""
    try:
        remove_tree(path)
    except OSError:
        return False
    return True
