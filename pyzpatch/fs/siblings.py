"""Every name an update puts beside its target, in one table.

Hidden names (``.NAME<suffix>``) are an update's working state beside a file or folder; the
Windows-style one-file swap uses visible ones (``NAME<suffix>``), which a user of a program that
cannot replace its running executable will see until the next start removes them. Only names
built here are ever removed by clean-up code, so nothing else beside a target is touched.
"""
from __future__ import annotations

import os

from ..errors import PyzpatchError

NEW = ".pyzpatch-new"          # the verified new version, staged: a folder, or a file (move-aside)
OLD = ".pyzpatch-old"          # the old version moved aside (a trash folder, or NAME.pyzpatch-old[-N])
READY = ".pyzpatch-ready"      # marker: the staged folder is complete (two-rename folder swap)
JOURNAL = ".pyzpatch-journal"  # the file-by-file swap's journal (roll forward while it exists)
TMP = ".pyzpatch-tmp"          # a file being written: .NAME.XXXXXXXX.pyzpatch-tmp


def parent_and_name(path: str):
    """(parent, name) of ``path``. A path without a name of its own (the root ``/``, ``C:\\``)
    has no "beside": a sibling name built from an empty name would land in the current folder
    (``./..pyzpatch-new``), so it is refused here, for every caller."""
    trimmed = os.fspath(path).rstrip("/" + os.sep)
    parent, name = os.path.split(trimmed)
    if not name or name in (".", ".."):
        raise PyzpatchError("has no name of its own (a file system's root?); pyzpatch needs a parent folder "
                            "to work in beside it", source=os.fspath(path) or ".")
    return parent, name


def hidden(target: str, suffix: str) -> str:
    """``.NAME<suffix>`` beside ``target`` (a file or folder)."""
    parent, name = parent_and_name(target)
    return os.path.join(parent, f".{name}{suffix}")


def visible(path: str, suffix: str) -> str:
    """``NAME<suffix>`` beside ``path``."""
    parent_and_name(path)
    return path + suffix


def temporary_prefix(path: str) -> str:
    """The start of a temporary file's name while ``path`` is written (``mkstemp`` adds the
    random middle and ``TMP``)."""
    return f".{parent_and_name(path)[1]}."


def is_temporary_of(entry: str, path: str) -> bool:
    """Is ``entry`` (a name in ``path``'s folder) a temporary an interrupted write of ``path`` left?"""
    return entry.startswith(temporary_prefix(path)) and entry.endswith(TMP)
