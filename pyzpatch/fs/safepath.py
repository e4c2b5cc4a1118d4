"""Turning names found inside archives into paths that cannot leave a chosen folder.

Names in an archive are data from whoever built it. Before one becomes a path it must be
relative, free of ``..`` and empty parts, and every folder on the way must be a real folder,
not a symbolic link that points elsewhere.
"""
from __future__ import annotations

import os
import re
from typing import List

from ..errors import PyzpatchError

_SEPARATORS = re.compile(r"[\\/]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def split_archive_name(name: str) -> List[str]:
    """The parts of an archive name as a relative path, or PyzpatchError if it could escape.

    Both ``/`` and ``\\`` separate parts: Windows builds store names with backslashes.
    """
    if not name:
        raise PyzpatchError("an empty name cannot become a file name")
    if "\0" in name:
        raise PyzpatchError(f"name {name!r} holds a NUL byte")
    if name[0] in "/\\" or _DRIVE.match(name):
        raise PyzpatchError(f"name {name!r} is an absolute path")
    parts = _SEPARATORS.split(name)
    for part in parts:
        if part in ("", ".", ".."):
            raise PyzpatchError(f"name {name!r} has an empty, '.' or '..' part")
    return parts


def write_inside(root: str, parts: List[str], data) -> str:
    """Write ``data`` to ``root/parts...`` without following any symbolic link; return the path.

    Folders on the way are created; an existing link anywhere on the way is refused.
    """
    target = os.path.join(make_folder_inside(root, parts[:-1]), parts[-1])
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(target, flags, 0o644)
    except OSError as exc:
        raise PyzpatchError(f"cannot write: {exc.strerror}", source=target) from None
    with os.fdopen(fd, "wb") as fp:
        fp.write(data)
    return target


def make_folder_inside(root: str, parts: List[str]) -> str:
    """Create ``root/parts...`` folder by folder, refusing links and non-folders on the way."""
    current = root
    for part in parts:
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise PyzpatchError("is a symbolic link; refusing to write through it", source=current)
        if not os.path.exists(current):
            os.mkdir(current)
        elif not os.path.isdir(current):
            raise PyzpatchError("exists and is not a folder", source=current)
    return current
