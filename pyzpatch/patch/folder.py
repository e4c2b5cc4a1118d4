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

A patch with a manifest (patch/manifest.py) names the old build's entries: the target may hold
more (what the program wrote beside itself), which is carried into the new folder untouched
(hard links, like unchanged files), unless the new build uses one of those paths.
"""
from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass, field
from typing import List

from ..delta.engine import Deferred, decode_folder
from ..errors import AlreadyAppliedError, CorruptError, FileAccessError, FormatError, PyzpatchError, WrongBaseError
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
from . import manifest as manifests
from .file import LOCK_WAIT
from .foldernode import DIR, LINK, FolderContents, check_new_node, node_hash, sha256_of
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
    # Entries the folder held beyond the old build, carried into the new folder untouched (with
    # any folder of the old build they lie in that the new build dropped), in path order.
    carried: List[str] = field(default_factory=list)


# How many changed build entries a refusal names (a dry run, ``verify``, names all).
NAMED_CHANGES = 10


def describe_carried(paths: List[str], names: int = 3) -> str:
    """One line for a person: how many entries were kept, and the first few outermost ones."""
    kept = set(paths)
    outer = [p for p in paths if not any(p[:i] in kept for i in range(len(p)) if p[i] == "/")]
    shown = ", ".join(outer[:names]) + (", ..." if len(outer) > names else "")
    return f"kept {len(paths)} {'entry' if len(paths) == 1 else 'entries'} not part of the build ({shown})"


class _Sums:
    """The SHA-256 of each child's bytes, computed once (by key: one folder's children only),
    reading a file on disk piece by piece."""

    def __init__(self) -> None:
        self.cache: dict = {}

    def __call__(self, child) -> bytes:
        digest = self.cache.get(child.key)
        if digest is None:
            digest = self.cache[child.key] = sha256_of(child.data)
        return digest


class _Made:
    """The new folder's files, made one at a time (``Deferred``) and let go of once written or
    hashed: what each one's SHA-256 and size came to, by key. Unchanged files are the old
    folder's, whose digests ``sums`` already has."""

    def __init__(self, sums: _Sums, most: int) -> None:
        self.sums = sums
        self.digests: dict = {}
        self.sizes: dict = {}
        # What the new folder's files hold in all (the patch header says): writing more than
        # that is refused at once, so a bad patch cannot fill the disk before its hash is checked.
        self.most = most
        self.written = 0

    def data(self, child):
        """The child's bytes: made now if they are deferred."""
        return child.data.resolve() if isinstance(child.data, Deferred) else child.data

    def record(self, child, digest: bytes, size: int) -> None:
        self.digests[child.key], self.sizes[child.key] = digest, size

    def hash_unwritten(self, child) -> None:
        """Make (if deferred) and hash a file that is not written (a dry run)."""
        if isinstance(child.data, Deferred):
            data = child.data.resolve()
            self.record(child, sha256_of(data), len(data))
        else:
            self.record(child, self.sums(child), len(child.data))

    def digest(self, child) -> bytes:
        if child.key not in self.digests:  # a folder or link (no bytes), or a file not written
            self.hash_unwritten(child)
        return self.digests[child.key]

    def size(self, child) -> int:
        if child.key not in self.sizes:
            self.hash_unwritten(child)
        return self.sizes[child.key]


def make_folder_patch(old_dir, new_dir, sign_key=None, manifest: bool = True) -> MadePatch:
    """A patch from the folder ``old_dir`` to ``new_dir``. With ``manifest`` (the default) it
    lists the old build's entries, so that it applies to a folder holding more (see
    docs/folder-apply.md); without, only to exactly the old folder."""
    return signed(_make_folder_patch(old_dir, new_dir, manifest), sign_key)


def _make_folder_patch(old_dir, new_dir, with_manifest: bool = True) -> MadePatch:
    with FolderContents(old_dir) as old, FolderContents(new_dir) as new:
        old_node, new_node = old.node(), new.node()
        try:  # what apply would refuse is refused here, naming the folder
            check_new_node(new_node)
        except PyzpatchError as exc:
            raise exc.with_source(str(new_dir))
        sums = _Sums()
        old_size, old_hash = node_hash(old_node, sums)
        new_size, new_hash = node_hash(new_node)
        header = Header(old_size=old_size, old_sha256=old_hash, new_size=new_size, new_sha256=new_hash,
                        flags=patchfile.FOLDER)
        listed = manifests.of_nodes(old_node, new_node, sums) if with_manifest else None
        from ..delta.encoder import Encoder  # make only: a frozen program may leave it out
        encoder = Encoder()
        try:
            encoder.node_delta(old_node, new_node, "")
        except FormatError as exc:
            raise exc.with_source(str(new_dir))
        out = encoder.out
        body = Body(out.ops.getvalue(), bytes(out.diff), bytes(out.lit),
                    None if listed is None else manifests.encode(listed))
        data = patchfile.encode(header, body)
        # Verify before anything is written: decoding must rebuild the new folder exactly, the way
        # apply does (the old folder read lazily, one changed file made at a time, each within
        # the budget), so that a patch make writes is one apply accepts.
        header2, body2 = patchfile.decode(data)
        with FolderContents(old_dir, lazy=True) as old_again:
            rebuilt = _decode(header2, body2, old_again.node(), defer=True)
            listed_ok = listed is None or (
                manifests.decode(body2.manifest, piece_limit(header2)) == listed
                and listed.new_paths() == sorted(c.key for c in rebuilt.children))
            made = _Made(sums, header2.new_size)
            rebuilt_hash = node_hash(rebuilt, made.digest, made.size)
        if rebuilt_hash != (new_size, new_hash) or not listed_ok:
            raise PyzpatchError("internal error: the patch does not rebuild this folder exactly; please "
                                "report it", source=str(new_dir))
        note = "the two folders are identical" if old_hash == new_hash else None
        return MadePatch(data=data, header=header, changes=encoder.changes, structural=True, note=note)


def _decode(header: Header, body: Body, old_node: Node, defer: bool = False) -> Node:
    return decode_folder(body, old_node, piece_limit(header), defer)


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
    raise FileAccessError(f"cannot swap in the new folder: {os.strerror(err)}", source=b)


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


def _build_staging(staging: str, old_root: str, old_node: Node, new_node: Node, made: _Made) -> tuple:
    """Write the new folder's names and bytes into ``staging``, every file and folder still
    private to this process (``_finish_staging`` gives them their modes and owners once the
    contents are checked: a folder of mode 000 could be neither filled nor read back); each
    changed file is made (``made``) as it is written, hashed as it goes, and let go of before
    the next. Return (files written, files linked, what to finish)."""
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
                    made.record(child, made.sums(before), len(before.data))
                    linked += 1
                    continue
                except OSError:
                    pass  # another file system or no hard links: copy instead
            _write_made(path, child, made)
            to_finish.append((path, child.key, mode, False))
            written += 1
    return written, linked, to_finish


def _write_made(path: str, child, made: _Made) -> None:
    """Make the child's bytes, write them to the new file ``path``, hashing them as they go;
    nothing of them is left referenced when it returns (the next file is made only then)."""
    h, size = hashlib.sha256(), 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    with os.fdopen(fd, "wb") as fp:
        for chunk in flatten([made.data(child)]):
            made.written += len(chunk)
            if made.written > made.most:
                raise CorruptError(f"it would write more than the {made.most:,} bytes the new folder holds")
            fp.write(chunk)
            h.update(chunk)
            size += len(chunk)
        _checkpoint()  # a file written but not yet flushed
        fp.flush()
        os.fsync(fp.fileno())
    made.record(child, h.digest(), size)


def _finish_staging(staging: str, target: str, old_owners: dict, new_node: Node, to_finish: list) -> None:
    """Give the staged files and folders their modes, and the owners and groups of the entries
    they replace (new ones: the target folder's), as far as this process may (fs/owner.py:
    set-id bits survive only with their owner); folders deepest first, each flushed through a
    descriptor opened before its mode can lock this process out."""
    root_st = os.stat(target)
    default_owner = (root_st.st_uid, root_st.st_gid)
    files = [e for e in to_finish if not e[3]]
    folders = [e for e in to_finish if e[3]]
    deepest_first = sorted(folders, key=lambda e: e[0], reverse=True) + [(staging, "", new_node.meta[0], True)]
    for path, key, mode, is_folder in files + deepest_first:
        _checkpoint()
        uid, gid = old_owners.get(key, default_owner) if key else default_owner
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY" if is_folder else "O_BINARY", 0)
        fd = os.open(path, flags)
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
        carried = _stage(target, patch, True, "")[3]
        return FolderApplyResult(target, False, "", carried=carried)
    # One apply at a time beside the folder: each removes what dead applies left there.
    with FolderLock(target, wait=LOCK_WAIT):
        recovered = _recover(target)
        staging, written, linked, carried = _stage(target, patch, False, recovered)
        if staging is None:
            return FolderApplyResult(target, False, recovered, carried=carried)
        note = ""
        if swap == SWAP_PER_FILE:
            _checkpoint()
            moveaside.move_in_folder(target, staging)
        else:
            note = _swap_folders(target, staging, exchange=swap == SWAP_FOLDER)
    return FolderApplyResult(target, True, recovered, written, linked, note, carried)


def _stage(target: str, patch, dry_run: bool, recovered: str):
    """Check the target, then build and check the new folder beside it: (staging folder, files
    written, files linked, paths carried), or (None, 0, 0, paths carried) when there is nothing
    to write."""
    header = patch.header
    if not os.path.isdir(target):
        raise FileAccessError("no such folder", source=target)
    with FolderContents(target, lazy=True) as found:
        whole = found.node()
        sums = _Sums()
        size, digest = node_hash(whole, sums)
        if (size, digest) == (header.new_size, header.new_sha256):
            if recovered:
                return None, 0, 0, []
            raise AlreadyAppliedError("is already the folder this patch produces; nothing to do", source=target)
        listed = None
        if (size, digest) == (header.old_size, header.old_sha256):
            old_node, extras = whole, []
        elif patch.has_manifest:
            listed = _read_manifest(patch, size)
            old_node, extras = _split(whole, set(listed.paths))
            if node_hash(old_node, sums) != (header.old_size, header.old_sha256):
                now, kept = _split(whole, set(listed.new_paths()))
                if node_hash(now, sums) == (header.new_size, header.new_sha256):
                    if recovered:
                        return None, 0, 0, [c.key for c in kept]
                    raise AlreadyAppliedError(f"is already the folder this patch produces (with {len(kept)} "
                                              "entries not part of the build); nothing to do", source=target)
                raise WrongBaseError(_changed(listed, whole, sums, dry_run), source=target)
            # Before the body: a path the new build uses that the program took is refused at once.
            new_paths = set(listed.new_paths())
            for child in extras:
                if child.key in new_paths:
                    raise WrongBaseError(_clash(child.key, child.key), source=target)
        else:
            raise WrongBaseError("is not the folder the patch was made from (its contents, names or modes "
                                "differ)", source=target)
        # Only now, with the folder the patch names, is its body worth decompressing. Its files
        # are made one at a time as they are written (or, in a dry run, hashed).
        body = patch.body(base_size=size)
        try:
            new_node = _decode(header, body, old_node, defer=True)
            check_new_node(new_node)
            if listed is not None and listed.new_paths() != sorted(c.key for c in new_node.children):
                raise CorruptError("its manifest does not list the entries its operations make")
        except PyzpatchError as exc:
            raise exc.with_source(patch.path)
        carried = _carried(new_node, whole, extras, target)
        carried_keys = [c.key for c in carried]
        made = _Made(sums, header.new_size)
        if dry_run:
            _check_made(new_node, made, header, patch.path)
            return None, 0, 0, carried_keys
        staging = hidden(target, NEW)
        old_owners = {e.path: e.owner for e in found.entries}
        try:
            try:
                written, linked, to_finish = _build_staging(staging, found.root, old_node, new_node, made)
            except PyzpatchError as exc:
                raise exc.with_source(patch.path)
            _check_made(new_node, made, header, patch.path)
            to_finish += _carry(staging, found.root, carried)
            # Checked as written, with the modes it is about to get (a folder of mode 000 could
            # not be read back once it has its mode); what was carried is not the patch's.
            with FolderContents(staging, lazy=True) as staged:
                if node_hash(_with_modes(_without(staged.node(), set(carried_keys)), new_node))[1] \
                        != header.new_sha256:
                    raise PyzpatchError("the new folder written to disk does not match the patch", source=staging)
            _finish_staging(staging, target, old_owners, new_node, to_finish)
        except OSError as exc:
            _discard(staging, target)
            raise FileAccessError(f"cannot build the new folder: {exc.strerror or exc}", source=staging) from None
        except BaseException:
            _discard(staging, target)
            raise
    return staging, written, linked, carried_keys


def _check_made(new_node: Node, made: _Made, header: Header, patch_path) -> None:
    """Refuse a patch whose files, as made, are not the folder its header names (files not
    written yet, in a dry run, are made and hashed here, one at a time)."""
    try:
        found = node_hash(new_node, made.digest, made.size)
    except PyzpatchError as exc:
        raise exc.with_source(patch_path)
    if found != (header.new_size, header.new_sha256):
        raise CorruptError("applying it gives a different folder than the one it was made from (or the folder "
                           "changed while it was patched)", source=patch_path)


def _read_manifest(patch, base_size: int) -> manifests.Manifest:
    try:
        data = patch.manifest(base_size=base_size)
        return manifests.decode(data, piece_limit(patch.header))
    except PyzpatchError as exc:
        raise exc.with_source(patch.path)


def _split(node: Node, keys: set) -> tuple:
    """(``node`` with only the children in ``keys``, the other children)."""
    inside = [c for c in node.children if c.key in keys]
    return Node(node.kind, node.meta, inside), [c for c in node.children if c.key not in keys]


def _without(node: Node, keys: set) -> Node:
    return Node(node.kind, node.meta, [c for c in node.children if c.key not in keys])


def _changed(listed: manifests.Manifest, whole: Node, sums, everything: bool) -> str:
    """The refusal of a folder whose build entries differ from the patch's old build, naming
    them (at most NAMED_CHANGES unless ``everything``)."""
    found = manifests.differences(listed, whole, sums)
    if not found:
        return ("is not the folder the patch was made from (its build's entries differ, in a way their "
                "short digests do not show)")
    shown = found if everything else found[:NAMED_CHANGES]
    more = f"; and {len(found) - len(shown)} more (verify names all)" if len(found) > len(shown) else ""
    return (f"is not the folder the patch was made from: {len(found)} of the build's entries "
            f"{'differs' if len(found) == 1 else 'differ'}: {'; '.join(shown)}{more}")


def _clash(key: str, used: str) -> str:
    where = "that path" if key == used else f"{used!r}"
    return (f"holds {key!r}, which is not part of the build the patch was made from, but the new "
            f"version uses {where}; move it away and apply again")


def _parents(key: str):
    """The folders a relative path lies in, outermost first."""
    parts = key.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _carried(new_node: Node, whole: Node, extras: list, target: str) -> list:
    """What is carried into the new folder: ``extras``, and every folder of the old build they
    lie in that the new build no longer has. Refused, naming the entry, if the new build uses
    one of those paths, puts anything inside one, or has a file or link where one of their
    folders is; and if a carried link, resolved with the new folder's, would lead outside."""
    if not extras:
        return []
    new_kinds = {c.key: c.attrs[0] for c in new_node.children}
    by_key = {c.key: c for c in whole.children}
    carried = {c.key: c for c in extras}
    for child in extras:
        if child.key in new_kinds:
            raise WrongBaseError(_clash(child.key, child.key), source=target)
        for parent in _parents(child.key):
            if parent in new_kinds:
                if new_kinds[parent] != DIR:
                    raise WrongBaseError(_clash(child.key, parent), source=target)
            elif parent not in carried:
                carried[parent] = by_key[parent]  # a build folder the new build drops
    for key in new_kinds:
        for parent in _parents(key):
            if parent in carried:
                raise WrongBaseError(_clash(parent, key), source=target)
    together = Node(new_node.kind, new_node.meta, list(new_node.children) + list(carried.values()))
    try:
        check_new_node(together)
    except PyzpatchError as exc:
        raise WrongBaseError(f"{exc.problem} (with what the folder holds beyond the build, which would be kept)",
                            source=target) from None
    return sorted(carried.values(), key=lambda c: c.key)


def _carry(staging: str, old_root: str, carried: list) -> list:
    """Put the carried entries into ``staging``: files as hard links to the old ones (the same
    inode: a log the program is still writing keeps growing in the new folder), copies where
    links are impossible; folders and links made anew. Returns what ``_finish_staging`` must
    give modes and owners (folders, and files copied), like ``_build_staging``."""
    to_finish = []
    for child in carried:
        kind, mode, link_target = child.attrs
        path = os.path.join(staging, *child.key.split("/"))
        _checkpoint()
        if kind == DIR:
            os.mkdir(path, 0o700)
            to_finish.append((path, child.key, mode, True))
        elif kind == LINK:
            os.symlink(link_target, path)
        else:
            try:
                os.link(os.path.join(old_root, *child.key.split("/")), path, follow_symlinks=False)
                continue
            except OSError:
                pass  # another file system or no hard links: copy instead
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
            with os.fdopen(fd, "wb") as fp:
                for chunk in flatten([child.data]):
                    fp.write(chunk)
                fp.flush()
                os.fsync(fp.fileno())
            to_finish.append((path, child.key, mode, False))
    return to_finish


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
        raise FileAccessError(f"cannot remove or move aside what an apply left: {exc.strerror or exc}",
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
