"""Putting a new version in place of one that is running, where the running one cannot be
overwritten or renamed as a whole (Windows): move it aside, move the new one in, clean up later.

Windows refuses to write over, delete or replace a running executable or a loaded DLL, and to
rename a folder that holds one, but it lets each such file be renamed within its volume. So:

- A single file ``NAME`` (a one-file program): the verified new file is written to
  ``NAME.pyzpatch-new``; then ``NAME`` is renamed to ``NAME.pyzpatch-old`` and
  ``NAME.pyzpatch-new`` to ``NAME``. If the second rename fails the first is undone.
- A folder (a one-folder program): the verified new folder is staged beside it (by patch/folder.py),
  a journal ``.NAME.pyzpatch-journal`` listing the new folder's entries is written and flushed,
  and then every file that changed is renamed into a trash folder ``.NAME.pyzpatch-old`` and its
  new version renamed into place, one file at a time; files the new version does not have go
  to the trash too. Unchanged files (hard links to the same inode) are not touched.

What is moved aside is removed at the next start (``finish_file`` / ``finish_folder``), when
the old program no longer holds it; removal that fails is retried at the start after that.

Both steps are idempotent, so an interrupted swap is completed by running them again: a file is
moved in only while its staged copy still exists, and a journal present means "roll forward".
The window in which a power cut leaves ``NAME`` missing (single file) is the time between two
renames; ``finish_file`` then completes the swap from ``NAME.pyzpatch-new``.

On POSIX systems none of this is needed (a rename over a running program is allowed and
atomic); the code runs the same there, which is how the test suite covers it.
"""
from __future__ import annotations

import os
import stat
from typing import List, Tuple

from ..errors import FileAccessError, PyzpatchError
from ..fs.durable import fsync_path, remove_quietly
from ..fs.faults import checkpoint
from ..fs.safepath import split_archive_name
from ..fs.siblings import JOURNAL, NEW, OLD, hidden, visible
from ..fs.walk import walk

_JOURNAL_MAGIC = "pyzpatch-journal 1"
# What finish_folder says when it completed an interrupted swap (the program must restart).
ROLLED_FORWARD = "finished moving in the new version an interrupted update had prepared"
_MAX_JOURNAL_SIZE = 64 * 1024 * 1024


# ---------------------------------------------------------------------------------------------
# Single files

def staged_file(path: str) -> str:
    return visible(path, NEW)


def _aside_name(path: str) -> str:
    """``NAME.pyzpatch-old``, or ``NAME.pyzpatch-old-N`` while an older one is still in use."""
    aside = visible(path, OLD)
    if remove_quietly(aside) and not os.path.lexists(aside):
        return aside
    for n in range(1, 1000):
        candidate = f"{aside}-{n}"
        if remove_quietly(candidate) and not os.path.lexists(candidate):
            return candidate
    raise PyzpatchError("too many old versions are still in use beside it", source=path)


def replace_file(path: str, new_path: str) -> str:
    """Move ``path`` aside and ``new_path`` into its place; return where the old one went."""
    aside = _aside_name(path)
    checkpoint()
    try:
        os.rename(path, aside)
    except OSError as exc:
        raise FileAccessError(f"cannot move the running program aside: {exc.strerror or exc}", source=path) from None
    checkpoint()
    try:
        os.rename(new_path, path)
    except OSError as exc:
        os.rename(aside, path)
        raise FileAccessError(f"cannot move the new version into place: {exc.strerror or exc}", source=path) from None
    checkpoint()
    fsync_path(os.path.dirname(os.path.abspath(path)))
    return aside


def finish_file(path: str) -> List[str]:
    """Complete an interrupted swap and remove old versions moved aside; say what was done."""
    done = []
    new = staged_file(path)
    if not os.path.lexists(path) and os.path.isfile(new):
        os.rename(new, path)
        fsync_path(os.path.dirname(os.path.abspath(path)))
        done.append(f"moved the new version into place from {new}")
    elif os.path.lexists(new) and remove_quietly(new):
        done.append(f"removed {new}, left by an interrupted update")
    directory, name = os.path.split(os.path.abspath(path))
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    for entry in sorted(names):
        if entry == name + OLD or entry.startswith(name + OLD + "-"):
            full = os.path.join(directory, entry)
            if remove_quietly(full):
                done.append(f"removed the old version {full}")
    return done


# ---------------------------------------------------------------------------------------------
# Folders

def _entries(root: str) -> List[Tuple[str, int, str]]:
    """(kind "d"/"f"/"l", mode, relative path) of everything below ``root``, parents first."""
    out = [("d", stat.S_IMODE(os.stat(root).st_mode), ".")]
    for found in walk(root):
        mode = found.st.st_mode
        kind = "l" if stat.S_ISLNK(mode) else "d" if stat.S_ISDIR(mode) else "f"
        out.append((kind, stat.S_IMODE(mode), found.native))
    return out


def _write_journal(journal: str, entries) -> None:
    tmp = journal + ".tmp"
    # Names are written as the file system gave them (surrogateescape keeps undecodable bytes),
    # and read back without newline translation, so only a tab or a line feed cannot be held.
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as fp:
        fp.write(_JOURNAL_MAGIC + "\n")
        for kind, mode, rel in entries:
            if "\n" in rel or "\t" in rel:
                raise PyzpatchError("has a name with a tab or line feed, which the journal cannot hold",
                                    source=rel)
            fp.write(f"{kind}\t{mode:o}\t{rel}\n")
        fp.write("end\n")  # a journal without it was cut short: it was never in force
        fp.flush()
        os.fsync(fp.fileno())
    os.replace(tmp, journal)
    fsync_path(os.path.dirname(journal))


def _read_journal(journal: str):
    """The journal's entries, or None if it is unreadable, cut short or malformed (then it was
    never in force: it is written in full and flushed before the first file moves)."""
    try:
        with open(journal, encoding="utf-8", errors="surrogateescape", newline="\n") as fp:
            text = fp.read(_MAX_JOURNAL_SIZE + 1)
    except (OSError, UnicodeDecodeError):
        return None
    lines = text.split("\n")
    if len(text) > _MAX_JOURNAL_SIZE or lines[0] != _JOURNAL_MAGIC or "end" not in lines:
        return None
    entries = []
    for line in lines[1:lines.index("end")]:
        fields = line.split("\t", 2)
        if len(fields) != 3 or fields[0] not in ("d", "f", "l"):
            return None
        kind, mode, rel = fields
        try:
            mode_bits = int(mode, 8)
            if rel != ".":
                split_archive_name(rel)  # relative, no "..": it cannot name anything outside
        except (ValueError, PyzpatchError):
            return None
        if not 0 <= mode_bits <= 0o7777:
            return None
        entries.append((kind, mode_bits, rel))
    return entries


def _same(a: str, b: str) -> bool:
    """Is ``b`` already what ``a`` holds: the same inode, or a link with the same target?"""
    sa, sb = os.lstat(a), os.lstat(b)
    if stat.S_ISLNK(sa.st_mode) or stat.S_ISLNK(sb.st_mode):
        return stat.S_ISLNK(sa.st_mode) and stat.S_ISLNK(sb.st_mode) and os.readlink(a) == os.readlink(b)
    return (sa.st_ino, sa.st_dev) == (sb.st_ino, sb.st_dev) and sa.st_ino != 0


def _move_aside(path: str, trash: str, rel: str) -> None:
    """Rename ``path`` into the trash, never deleting anything there (it may be in use): a name
    already taken there gets a numbered one."""
    dest = os.path.join(trash, rel)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    n = 0
    while os.path.lexists(dest):
        n += 1
        dest = f"{os.path.join(trash, rel)}.{n}"
    os.rename(path, dest)


def move_in_folder(target: str, staging: str) -> None:
    """Swap the complete, verified folder ``staging`` into ``target`` file by file."""
    journal = hidden(target, JOURNAL)
    try:
        _write_journal(journal, _entries(staging))
    except BaseException:
        remove_quietly(journal + ".tmp")
        raise
    entries = _read_journal(journal)
    if entries is None:  # nothing has moved yet: undo, leaving the old version in place
        remove_quietly(journal)
        remove_quietly(staging)
        raise PyzpatchError("the swap journal does not read back as written", source=journal)
    checkpoint()
    _roll_forward(target, staging, entries)


def _roll_forward(target: str, staging: str, entries) -> None:
    """Move every staged file that is still staged into place (the old one to the trash), then
    what the new version lacks to the trash; the trash itself is removed at the next start."""
    trash = hidden(target, OLD)
    journal = hidden(target, JOURNAL)
    wanted = {rel for _, _, rel in entries}
    try:
        for kind, mode, rel in entries:
            src, dst = os.path.join(staging, rel), os.path.normpath(os.path.join(target, rel))
            if kind == "d":
                if os.path.lexists(dst) and (os.path.islink(dst) or not os.path.isdir(dst)):
                    _move_aside(dst, trash, rel)
                os.makedirs(dst, exist_ok=True)
                continue
            if not os.path.lexists(src):
                continue  # moved in before an interruption
            if os.path.lexists(dst):
                if _same(src, dst):
                    continue  # unchanged: the staged file is a hard link to this one
                checkpoint()
                _move_aside(dst, trash, rel)
            checkpoint()
            os.rename(src, dst)
        # What the new version does not have goes to the trash, deepest first: files and links
        # one by one; a folder is empty by the time it comes up, and is simply removed.
        for kind, _, rel in reversed(_entries(target)):
            path = os.path.join(target, rel)
            if rel == "." or rel in wanted or not os.path.lexists(path):
                continue
            checkpoint()
            if kind == "d":
                os.rmdir(path)
            else:
                _move_aside(path, trash, rel)
        for kind, mode, rel in reversed(entries):
            if kind == "d":
                os.chmod(os.path.join(target, rel), mode)
                fsync_path(os.path.join(target, rel))
    except OSError as exc:
        raise FileAccessError(f"cannot move the new version into place: {exc.strerror or exc} "
                            "(the update finishes at the next start)", source=target) from None
    fsync_path(os.path.dirname(target))
    checkpoint()
    os.unlink(journal)
    fsync_path(os.path.dirname(target))
    remove_quietly(staging)


def finish_folder(target: str) -> List[str]:
    """Complete an interrupted file-by-file swap and remove what was moved aside."""
    done = []
    journal = hidden(target, JOURNAL)
    staging = hidden(target, NEW)
    if os.path.lexists(journal):
        entries = _read_journal(journal)
        if entries is not None and os.path.isdir(staging) and os.path.isdir(target):
            _roll_forward(target, staging, entries)
            done.append(ROLLED_FORWARD)
        else:
            remove_quietly(journal)
    remove_quietly(journal + ".tmp")
    trash = hidden(target, OLD)
    if os.path.lexists(trash) and os.path.isdir(target) and not os.path.lexists(journal):
        if remove_quietly(trash):
            done.append(f"removed the old files moved aside to {trash}")
    return done
