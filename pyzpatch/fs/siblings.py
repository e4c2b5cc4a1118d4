"""Every name an update puts beside its target, in one table.

Hidden names (``.NAME<suffix>``) are an update's working state beside a file or folder; the
Windows-style one-file swap uses visible ones (``NAME<suffix>``), which a user of a program that
cannot replace its running executable will see until the next start removes them. Only names
built here are ever removed by clean-up code, so nothing else beside a target is touched.
"""
from __future__ import annotations

import os

NEW = ".pyzpatch-new"          # the verified new version, staged: a folder, or a file (move-aside)
OLD = ".pyzpatch-old"          # the old version moved aside (a trash folder, or NAME.pyzpatch-old[-N])
READY = ".pyzpatch-ready"      # marker: the staged folder is complete (two-rename folder swap)
JOURNAL = ".pyzpatch-journal"  # the file-by-file swap's journal (roll forward while it exists)
TMP = ".pyzpatch-tmp"          # a file being written: .NAME.XXXXXXXX.pyzpatch-tmp


def hidden(target: str, suffix: str) -> str:
    """``.NAME<suffix>`` beside ``target`` (a file or folder)."""
    parent, name = os.path.split(target.rstrip(os.sep))
    return os.path.join(parent, f".{name}{suffix}")


def visible(path: str, suffix: str) -> str:
    """``NAME<suffix>`` beside ``path``."""
    return path + suffix


def temporary_prefix(path: str) -> str:
    """The start of a temporary file's name while ``path`` is written (``mkstemp`` adds the
    random middle and ``TMP``)."""
    return f".{os.path.basename(path)}."


def is_temporary_of(entry: str, path: str) -> bool:
    """Is ``entry`` (a name in ``path``'s folder) a temporary an interrupted write of ``path`` left?"""
    return entry.startswith(temporary_prefix(path)) and entry.endswith(TMP)
