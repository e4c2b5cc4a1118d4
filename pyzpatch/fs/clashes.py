"""Finding, before the first byte is written, every place where a set of files and folders to
write below one folder would collide, with each other or with what is already there.

Names come from archives, so they can collide on purpose or by accident: a script ``s`` is
written as ``s.pyc`` beside an entry called ``s.pyc``; an entry ``a`` is a file where another,
``a/b``, needs a folder; a PYZ's ``NAME_extracted/`` folder meets an entry of that name. Found
while writing, such a clash overwrites silently or stops half-way. Found here, it is refused with
both names before anything is written.

On disk, a file may be replaced (extract writes beside it and renames, so whatever else links to
it keeps its bytes), and a folder may be written into; a symbolic link, a file where a folder is
needed, a folder where a file is needed, or anything that is not a regular file is refused.
"""
from __future__ import annotations

import os
import stat
import sys
from typing import Dict, Iterable, List, Tuple

from ..errors import FileAccessError, PyzpatchError

# Where the usual file system ignores case, two names that differ only in case are one file:
# compare them folded there. (macOS also ignores Unicode normalisation; comparing normalised
# names would need unicodedata, 1.2 MB in every frozen program that imports pyzpatch, so such a
# pair is left to the rename, which then keeps the later one.)
_FOLDS = sys.platform in ("win32", "darwin", "cygwin")

Key = Tuple[str, ...]


def _key(parts: List[str]) -> Key:
    if not _FOLDS:
        return tuple(parts)
    return tuple(p.casefold() for p in parts)


class _Claims:
    """Which item wants each path, as a file or as a folder."""

    def __init__(self) -> None:
        self.files: Dict[Key, Tuple[str, List[str]]] = {}
        self.folders: Dict[Key, Tuple[str, List[str]]] = {}

    def folder(self, parts: List[str], label: str) -> None:
        key = _key(parts)
        if key in self.files:
            other = self.files[key][0]
            raise PyzpatchError(f"{other} would be written as the file {'/'.join(parts)!r}, where {label} "
                                "needs a folder; extract them one at a time into different folders")
        self.folders.setdefault(key, (label, parts))

    def file(self, parts: List[str], label: str) -> None:
        key = _key(parts)
        if key in self.files:
            other = self.files[key][0]
            raise PyzpatchError(f"{other} and {label} would both be written as {'/'.join(parts)!r}; extract "
                                "them one at a time into different folders")
        if key in self.folders:
            other = self.folders[key][0]
            raise PyzpatchError(f"{label} would be written as the file {'/'.join(parts)!r}, where {other} "
                                "needs a folder; extract them one at a time into different folders")
        self.files[key] = (label, parts)


def check_writes(root: str, items: Iterable[Tuple[str, List[str], bool]]) -> None:
    """Refuse (PyzpatchError) a set of writes below ``root`` that collide. ``items`` are
    (label naming the item, its path as parts, True for a folder); parents are implied folders."""
    claims = _Claims()
    for label, parts, is_folder in items:
        for depth in range(1, len(parts)):
            claims.folder(parts[:depth], label)
        if is_folder:
            claims.folder(parts, label)
        else:
            claims.file(parts, label)
    _check_disk(root, claims)


def _check_disk(root: str, claims: _Claims) -> None:
    try:
        st = os.stat(root)  # the folder the user named may itself be a link to a folder
    except FileNotFoundError:
        return  # nothing below it exists yet
    except OSError as exc:
        raise FileAccessError(exc.strerror or str(exc), source=root) from None
    if not stat.S_ISDIR(st.st_mode):
        raise FileAccessError("exists and is not a folder", source=root)
    for _, parts in claims.folders.values():
        mode = _lstat_mode(root, parts)
        if mode is None or stat.S_ISDIR(mode):
            continue
        what = "a symbolic link; refusing to write through it" if stat.S_ISLNK(mode) else "not a folder"
        raise FileAccessError(f"exists and is {what}", source=os.path.join(root, *parts))
    for label, parts in claims.files.values():
        mode = _lstat_mode(root, parts)
        if mode is None or stat.S_ISREG(mode):
            continue  # a regular file is replaced by a rename, never written through
        if stat.S_ISDIR(mode):
            what = f"a folder, where {label} would be written as a file"
        elif stat.S_ISLNK(mode):
            what = "a symbolic link; refusing to replace it"
        else:
            what = "not a regular file; refusing to replace it"
        raise FileAccessError(f"exists and is {what}", source=os.path.join(root, *parts))


def _lstat_mode(root: str, parts: List[str]):
    try:
        return os.lstat(os.path.join(root, *parts)).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None  # an earlier part is missing (or a file: refused as a folder above)
    except OSError as exc:
        raise FileAccessError(exc.strerror or str(exc), source=os.path.join(root, *parts)) from None
