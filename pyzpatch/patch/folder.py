"""make and apply for whole folders, with an apply that survives being killed at any moment.

The apply scheme (see docs/folder-apply.md):

1. Check the target folder is exactly the one the patch was made from (folder hash).
2. Build the new folder in a staging folder beside it, ``.NAME.pyzpatch-new``: unchanged files
   are hard links to the old ones (copies where links are impossible), changed and added files
   are written, then every file and folder is fsynced and the staging folder's hash checked.
3. Swap the two folders in one step (``renameat2(RENAME_EXCHANGE)``): the target's name now
   holds the new folder, the staging name the old one. Then remove the old one.

At every instant the target's name holds the complete old folder or the complete new one. An
interrupted apply leaves at most a staging folder beside it; running ``apply`` again finds the
target old (it removes the stale staging folder and starts over) or already new (it removes the
old folder left in the staging name and reports that nothing is left to do).

Where the system cannot exchange two names atomically, the swap is two renames with a marker
file ``.NAME.pyzpatch-ready`` written once the staging folder is complete: a re-run that finds
the target missing and the marker present finishes the second rename.

A running program on Windows cannot rename its own folder; ``swap="per-file"`` then moves the
changed files in one by one under a journal instead (install/moveaside.py).
"""
from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass

from ..delta.engine import Encoder, decode_folder
from ..errors import AlreadyAppliedError, FormatError, PyzpatchError
from ..formats.node import Child, Node, flatten
from ..fs.durable import fsync_path, remove_quietly
from ..fs.faults import checkpoint
from ..fs.lock import FolderLock
from ..fs.owner import give_like
from ..fs.siblings import NEW, OLD, READY, hidden, parent_and_name
from ..install import moveaside
from ..patchfile import codec as patchfile
from ..patchfile.codec import Body, Header, piece_limit
from ..patchfile.reader import read_patch_file
from .file import LOCK_WAIT
from .foldernode import DIR, LINK, FolderContents, check_new_node, node_hash
from .made import MadePatch, signed

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


_checkpoint = checkpoint


def _fsync_strict(path: str) -> None:
    fsync_path(path, strict=True)


@dataclass
class FolderApplyResult:
    target: str
    written: bool
    recovered: str = ""  # what an earlier interrupted apply had left, and what was done about it
    files_written: int = 0
    files_linked: int = 0
    note: str = ""  # what the apply could not clean up (left under a trash name beside the folder)


def make_folder_patch(old_dir, new_dir, sign_key=None) -> MadePatch:
    return signed(_make_folder_patch(old_dir, new_dir), sign_key)


def _make_folder_patch(old_dir, new_dir) -> MadePatch:
    with FolderContents(old_dir) as old, FolderContents(new_dir) as new:
        old_node, new_node = old.node(), new.node()
        try:  # what apply would refuse is refused here, naming the folder
            check_new_node(new_node)
        except PyzpatchError as exc:
            raise exc.with_source(str(new_dir))
        old_size, old_hash = node_hash(old_node)
        new_size, new_hash = node_hash(new_node)
        header = Header(old_size=old_size, old_sha256=old_hash, new_size=new_size, new_sha256=new_hash,
                        flags=patchfile.FOLDER)
        encoder = Encoder()
        try:
            encoder.node_delta(old_node, new_node, "")
        except FormatError as exc:
            raise exc.with_source(str(new_dir))
        out = encoder.out
        body = Body(out.ops.getvalue(), bytes(out.diff), bytes(out.lit))
        data = patchfile.encode(header, body)
        # Verify before anything is written: decoding must rebuild the new folder exactly.
        header2, body2 = patchfile.decode(data)
        rebuilt = _decode(header2, body2, old_node)
        if node_hash(rebuilt, _piece_hash) != (new_size, new_hash):
            raise PyzpatchError("internal error: the patch does not rebuild this folder exactly; please "
                                "report it", source=str(new_dir))
        note = "the two folders are identical" if old_hash == new_hash else None
        return MadePatch(data=data, header=header, changes=encoder.changes, structural=True, note=note)


def _piece_hash(child) -> bytes:
    h = hashlib.sha256()
    for chunk in flatten([child.data]):
        h.update(chunk)
    return h.digest()


def _decode(header: Header, body: Body, old_node: Node) -> Node:
    return decode_folder(body, old_node, piece_limit(header))


def _exchange(a: str, b: str) -> bool:
    """Swap two names atomically; False if this system cannot."""
    try:  # a frozen program may leave ctypes out (pyzpatch's PyInstaller hook does): two renames then
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (ImportError, OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise PyzpatchError(f"cannot swap in the new folder: {os.strerror(err)}", source=b)


def _recover(target: str) -> str:
    """Finish or undo what an interrupted apply left beside ``target``; say what was done."""
    staging, ready = hidden(target, NEW), hidden(target, READY)
    old_aside = hidden(target, OLD)
    # An interrupted file-by-file swap is finished first (it also empties the old-files trash).
    finished = "; ".join(moveaside.finish_folder(target))
    if not os.path.exists(target) and os.path.isdir(staging) and os.path.exists(ready):
        os.rename(staging, target)  # the two-rename swap was cut between its renames
        _fsync_strict(os.path.dirname(target))
        os.unlink(ready)
        _remove_trash(target)
        return "finished swapping in the new folder an interrupted apply had prepared"
    note = finished
    # Old files may still be in use (a program on Windows that waits for its new version):
    # what cannot be removed yet stays for a later run, and a swap moves aside around it.
    if os.path.lexists(old_aside) and os.path.isdir(target) and _remove_trash(target):
        note = "removed the old folder an interrupted apply had left beside the folder"
    if os.path.lexists(staging):
        done = _discard(staging, target)
        note = "removed what an interrupted apply had left beside the folder" if done == "removed" else done
    if os.path.exists(ready):
        os.unlink(ready)
    return note


def _build_staging(staging: str, old_root: str, old_node: Node, new_node: Node) -> tuple:
    """Write the new folder's names and bytes into ``staging``, every file and folder still
    private to this process (``_finish_staging`` gives them their modes and owners once the
    contents are checked: a folder of mode 000 could be neither filled nor read back);
    return (files written, files linked, what to finish)."""
    old_children = {c.key: c for c in old_node.children}
    written = linked = 0
    os.mkdir(staging, 0o700)
    to_finish = []  # (path, key, mode, is a folder), in path order
    for child in sorted(new_node.children, key=lambda c: c.key):
        kind, mode, target = child.attrs
        path = os.path.join(staging, *child.key.split("/"))
        _checkpoint()
        if kind == DIR:
            os.makedirs(path, 0o700, exist_ok=True)
            to_finish.append((path, child.key, mode, True))
        elif kind == LINK:
            os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
            os.symlink(target, path)
        else:
            os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
            before = old_children.get(child.key)
            # Same bytes and same mode: share the old file's inode (a mode lives on the inode).
            if before is not None and child.data is before.data and child.attrs == before.attrs:
                try:
                    os.link(os.path.join(old_root, *child.key.split("/")), path, follow_symlinks=False)
                    linked += 1
                    continue
                except OSError:
                    pass  # another file system or no hard links: copy instead
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
            with os.fdopen(fd, "wb") as fp:
                for chunk in flatten([child.data]):
                    fp.write(chunk)
                _checkpoint()  # a file written but not yet flushed
                fp.flush()
                os.fsync(fp.fileno())
            to_finish.append((path, child.key, mode, False))
            written += 1
    return written, linked, to_finish


def _finish_staging(staging: str, target: str, old_owners: dict, new_node: Node, to_finish: list) -> None:
    """Give the staged files and folders their modes, and the owners and groups of the entries
    they replace (new ones: the target folder's), as far as this process may (fs/owner.py:
    set-id bits survive only with their owner); folders deepest first, each flushed through a
    descriptor opened before its mode can lock this process out."""
    root_st = os.stat(target)
    default_owner = (root_st.st_uid, root_st.st_gid)
    files = [e for e in to_finish if not e[3]]
    folders = [e for e in to_finish if e[3]]
    for path, key, mode, _ in files:
        _checkpoint()
        uid, gid = old_owners.get(key, default_owner)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            give_like(path, uid, gid, mode, fd=fd)
            os.fsync(fd)
        finally:
            os.close(fd)
    for path, key, mode, _ in sorted(folders, key=lambda e: e[0], reverse=True) + [(staging, "", new_node.meta[0], True)]:
        _checkpoint()
        uid, gid = old_owners.get(key, default_owner) if key else default_owner
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            give_like(path, uid, gid, mode, fd=fd)
            os.fsync(fd)
        finally:
            os.close(fd)


SWAP_FOLDER = "folder"      # swap the whole folder in one step (POSIX)
SWAP_TWO_RENAMES = "two-renames"  # old folder aside, new one in (where names cannot be exchanged)
SWAP_PER_FILE = "per-file"  # move changed files aside one by one (a running program on Windows)


def apply_folder_patch(target, patch, dry_run: bool = False, trusted_keys=None,
                       swap: str = SWAP_FOLDER) -> FolderApplyResult:
    """Apply a folder patch (a path, or a ``PatchFile`` already read) to the folder ``target``.
    ``swap`` says how the staged new folder takes the old one's place: ``"folder"`` exchanges the
    two folders atomically where the system can (else as ``"two-renames"``); ``"two-renames"``
    renames the old folder aside and the new one in, behind a ready marker; ``"per-file"`` (for
    a program running on Windows, see install/moveaside.py) moves changed files aside one by one under a
    journal."""
    if swap not in (SWAP_FOLDER, SWAP_TWO_RENAMES, SWAP_PER_FILE):
        raise ValueError(f"unknown swap {swap!r}")
    target = os.path.abspath(os.fspath(target))
    parent_and_name(target)  # the root has no "beside" for the staging folder: refused before anything
    target = target.rstrip(os.sep)
    patch = read_patch_file(patch, trusted_keys)
    if not patch.folder:
        raise PyzpatchError("is a patch for a single file, not for a folder", source=patch.path)
    if dry_run:
        _stage(target, patch, True, "")
        return FolderApplyResult(target, False, "")
    # One apply at a time beside the folder: each removes what dead applies left there.
    with FolderLock(target, wait=LOCK_WAIT):
        recovered = _recover(target)
        staging, written, linked = _stage(target, patch, False, recovered)
        if staging is None:
            return FolderApplyResult(target, False, recovered)
        note = ""
        if swap == SWAP_PER_FILE:
            _checkpoint()
            moveaside.move_in_folder(target, staging)
        else:
            note = _swap_folders(target, staging, exchange=swap == SWAP_FOLDER)
    return FolderApplyResult(target, True, recovered, written, linked, note)


def _stage(target: str, patch, dry_run: bool, recovered: str):
    """Check the target, then build and check the new folder beside it: (staging folder, files
    written, files linked), or (None, 0, 0) when there is nothing to write."""
    header = patch.header
    if not os.path.isdir(target):
        raise PyzpatchError("no such folder", source=target)
    with FolderContents(target) as old:
        old_node = old.node()
        size, digest = node_hash(old_node)
        if (size, digest) == (header.new_size, header.new_sha256):
            if recovered:
                return None, 0, 0
            raise AlreadyAppliedError("is already the folder this patch produces; nothing to do", source=target)
        if (size, digest) != (header.old_size, header.old_sha256):
            raise PyzpatchError("is not the folder the patch was made from (its contents, names or modes "
                                "differ)", source=target)
        # Only now, with the folder the patch names, is its body worth decompressing.
        body = patch.body(base_size=size)
        try:
            new_node = _decode(header, body, old_node)
            check_new_node(new_node)
        except PyzpatchError as exc:
            raise exc.with_source(patch.path)
        if node_hash(new_node, _piece_hash) != (header.new_size, header.new_sha256):
            raise PyzpatchError("applying it gives a different folder than the one it was made from",
                                source=patch.path)
        if dry_run:
            return None, 0, 0
        staging = hidden(target, NEW)
        old_owners = {e.path: e.owner for e in old.entries}
        try:
            written, linked, to_finish = _build_staging(staging, old.root, old_node, new_node)
            # Checked as written, with the modes it is about to get (a folder of mode 000 could
            # not be read back once it has its mode).
            with FolderContents(staging) as staged:
                if node_hash(_with_modes(staged.node(), new_node))[1] != header.new_sha256:
                    raise PyzpatchError("the new folder written to disk does not match the patch", source=staging)
            _finish_staging(staging, target, old_owners, new_node, to_finish)
        except OSError as exc:
            _discard(staging, target)
            raise PyzpatchError(f"cannot build the new folder: {exc.strerror or exc}", source=staging) from None
        except BaseException:
            _discard(staging, target)
            raise
    return staging, written, linked


def _with_modes(staged: Node, new_node: Node) -> Node:
    """``staged`` with the modes ``new_node`` gives its entries, kinds and link targets kept."""
    modes = {c.key: c.attrs[1] for c in new_node.children}
    children = [Child(c.key, (c.attrs[0], modes.get(c.key, c.attrs[1]), c.attrs[2]), c.data) for c in staged.children]
    return Node(staged.kind, (new_node.meta[0],), children)


def _discard(path: str, target: str) -> str:
    """Remove ``path`` (a staged or old folder beside ``target``); where that is not possible
    (a folder inside it owned by someone else), move it out of the way to a trash name, so that
    it never blocks the next apply. Returns what was done."""
    if not os.path.lexists(path):
        return ""
    if remove_quietly(path):
        return "removed"
    trash = _free_trash_name(target)
    try:
        os.rename(path, trash)
    except OSError as exc:
        raise PyzpatchError(f"cannot remove or move aside what an apply left: {exc.strerror or exc}",
                            source=path) from None
    return f"left what could not be removed as {os.path.basename(trash)}"


def _free_trash_name(target: str) -> str:
    """``.NAME.pyzpatch-old``, or ``-1``, ``-2``... after it while those hold something that
    could not be removed yet."""
    trash, n = hidden(target, OLD), 0
    while os.path.lexists(trash):
        n += 1
        trash = hidden(target, f"{OLD}-{n}")
    return trash


def _remove_trash(target: str) -> bool:
    """Remove every old folder earlier applies had to leave beside ``target``; True if it held
    any and all are gone."""
    parent, name = os.path.split(target)
    prefix = f".{name}{OLD}"
    found = [e for e in os.listdir(parent or ".") if e == prefix or
             (e.startswith(prefix + "-") and e[len(prefix) + 1:].isdigit())]
    return bool(found) and all([remove_quietly(os.path.join(parent, e)) for e in found])


def _swap_folders(target: str, staging: str, exchange: bool) -> str:
    """Put the staged folder in the target's place; what could not be cleaned up, if anything."""
    parent = os.path.dirname(target)
    _checkpoint()
    if exchange and _exchange(staging, target):
        _checkpoint()
        _fsync_strict(parent)
        _checkpoint()
        note = _discard(staging, target)  # now the old folder
    else:
        ready = hidden(target, READY)
        old_aside = _free_trash_name(target)
        with open(ready, "wb") as fp:
            os.fsync(fp.fileno())
        _fsync_strict(parent)
        _checkpoint()
        os.rename(target, old_aside)
        _checkpoint()
        os.rename(staging, target)
        _fsync_strict(parent)
        _checkpoint()
        os.unlink(ready)
        _checkpoint()
        note = _discard(old_aside, target)
    _fsync_strict(parent)
    return "" if note == "removed" else note
