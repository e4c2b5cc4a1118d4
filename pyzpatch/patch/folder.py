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
from ..formats.node import Node, flatten
from ..fs.durable import fsync_path, remove_quietly, remove_tree
from ..fs.faults import checkpoint
from ..fs.siblings import NEW, OLD, READY, hidden, parent_and_name
from ..install import moveaside
from ..patchfile import codec as patchfile
from ..patchfile.codec import Body, Header, piece_limit
from ..patchfile.reader import read_patch_file
from .foldernode import DIR, LINK, FolderContents, check_new_node, node_hash, total_size
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
        if os.path.lexists(old_aside):
            remove_tree(old_aside)
        return "finished swapping in the new folder an interrupted apply had prepared"
    note = finished
    # Old files may still be in use (a program on Windows that waits for its new version):
    # what cannot be removed yet stays for a later run, and a swap moves aside around it.
    if os.path.lexists(old_aside) and os.path.isdir(target) and remove_quietly(old_aside):
        note = "removed the old folder an interrupted apply had left beside the folder"
    if os.path.lexists(staging):
        remove_tree(staging)
        note = "removed what an interrupted apply had left beside the folder"
    if os.path.exists(ready):
        os.unlink(ready)
    return note


def _build_staging(staging: str, old_root: str, old_node: Node, new_node: Node) -> tuple:
    """Write the new folder into ``staging``; return (files written, files linked)."""
    old_children = {c.key: c for c in old_node.children}
    written = linked = 0
    os.mkdir(staging, 0o700)
    dirs = []
    for child in sorted(new_node.children, key=lambda c: c.key):
        kind, mode, target = child.attrs
        path = os.path.join(staging, *child.key.split("/"))
        _checkpoint()
        if kind == DIR:
            os.makedirs(path, exist_ok=True)
            dirs.append((path, mode))
        elif kind == LINK:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.symlink(target, path)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            before = old_children.get(child.key)
            # Same bytes and same mode: share the old file's inode (a mode lives on the inode).
            if before is not None and child.data is before.data and child.attrs == before.attrs:
                try:
                    os.link(os.path.join(old_root, *child.key.split("/")), path, follow_symlinks=False)
                    linked += 1
                    continue
                except OSError:
                    pass  # another file system or no hard links: copy instead
            with open(path, "wb") as fp:
                for chunk in flatten([child.data]):
                    fp.write(chunk)
                _checkpoint()  # a file written but not yet flushed
                fp.flush()
                os.fsync(fp.fileno())
            os.chmod(path, mode)
            written += 1
    for path, mode in sorted(dirs, reverse=True):
        _checkpoint()
        os.chmod(path, mode)
        _fsync_strict(path)
    os.chmod(staging, new_node.meta[0])
    _fsync_strict(staging)
    return written, linked


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
    header, body = patch.header, patch.body(base_size=total_size(target))
    recovered = "" if dry_run else _recover(target)
    staging, written, linked = _stage(target, header, body, patch.path, dry_run, recovered)
    if staging is None:
        return FolderApplyResult(target, False, recovered)
    if swap == SWAP_PER_FILE:
        _checkpoint()
        moveaside.move_in_folder(target, staging)
    else:
        _swap_folders(target, staging, exchange=swap == SWAP_FOLDER)
    return FolderApplyResult(target, True, recovered, written, linked)


def _stage(target: str, header: Header, body: Body, patch_name: str, dry_run: bool, recovered: str):
    """Check the target, then build and check the new folder beside it: (staging folder, files
    written, files linked), or (None, 0, 0) when there is nothing to write."""
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
        try:
            new_node = _decode(header, body, old_node)
            check_new_node(new_node)
        except PyzpatchError as exc:
            raise exc.with_source(patch_name)
        if node_hash(new_node, _piece_hash) != (header.new_size, header.new_sha256):
            raise PyzpatchError("applying it gives a different folder than the one it was made from",
                                source=patch_name)
        if dry_run:
            return None, 0, 0
        staging = hidden(target, NEW)
        try:
            written, linked = _build_staging(staging, old.root, old_node, new_node)
        except OSError as exc:
            remove_tree(staging)
            raise PyzpatchError(f"cannot build the new folder: {exc.strerror or exc}", source=staging) from None
    # The staging folder is complete and flushed. Check it as it is on disk before any swap.
    with FolderContents(staging) as staged:
        if node_hash(staged.node())[1] != header.new_sha256:
            remove_tree(staging)
            raise PyzpatchError("the new folder written to disk does not match the patch", source=staging)
    return staging, written, linked


def _swap_folders(target: str, staging: str, exchange: bool) -> None:
    parent = os.path.dirname(target)
    _checkpoint()
    if exchange and _exchange(staging, target):
        _checkpoint()
        _fsync_strict(parent)
        _checkpoint()
        remove_tree(staging)  # now the old folder
    else:
        ready = hidden(target, READY)
        old_aside = hidden(target, OLD)
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
        remove_tree(old_aside)
    _fsync_strict(parent)
