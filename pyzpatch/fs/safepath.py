"""Turning names found inside archives into paths that cannot leave a chosen folder.

Names in an archive are data from whoever built it. Before one becomes a path it must be
relative, free of ``..`` and empty parts, and every folder on the way must be a real folder,
not a symbolic link that points elsewhere.
"""
from __future__ import annotations

import os
import re
from typing import List

from ..errors import FileAccessError, PyzpatchError
from . import siblings
from .durable import remove_quietly

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

    Folders on the way are created; an existing link anywhere on the way is refused. The bytes go
    to a new file beside the target, which is then renamed over it: an existing file is replaced,
    never written through, so a hard link to it elsewhere keeps its bytes.
    """
    target = os.path.join(make_folder_inside(root, parts[:-1]), parts[-1])
    if os.path.islink(target) or (os.path.lexists(target) and not os.path.isfile(target)):
        raise FileAccessError("exists and is not a regular file; refusing to replace it", source=target)
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
             | getattr(os, "O_CLOEXEC", 0))
    # The temporary's name keeps only the start of the target's: a name near the system's limit
    # (255 bytes) plus the suffixes would be too long. 32 characters are at most 128 bytes.
    prefix = f".{parts[-1][:32]}."
    for _ in range(100):
        tmp = os.path.join(os.path.dirname(target), prefix + os.urandom(4).hex() + siblings.TMP)
        try:
            fd = os.open(tmp, flags, 0o644)  # O_EXCL: a new file, never one that was there
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise FileAccessError(f"cannot write beside it: {exc.strerror}", source=target) from None
    else:
        raise FileAccessError("cannot find a free temporary name beside it", source=target)
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
        os.replace(tmp, target)
    except OSError as exc:
        remove_quietly(tmp)
        raise FileAccessError(f"cannot write: {exc.strerror}", source=target) from None
    except BaseException:
        remove_quietly(tmp)
        raise
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
