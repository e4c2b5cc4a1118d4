"""Whole folders (one-folder builds): scanning, hashing, and turning a folder into a Node.

A folder is a node of kind ``folder`` whose children are its files, symbolic links and
folders, keyed by their relative path (``/``-separated), with attrs ``(kind, mode, link
target)`` and, for files, their bytes. The diff engine pairs and encodes them like any other
container's children; a changed file gets whatever encoding suits it best (an executable or a
zip by its parts, other bytes by bsdiff).

The folder hash that names a folder in a patch covers every entry's path, kind, mode, link
target and content hash, in path order.
"""
from __future__ import annotations

import bisect
import hashlib
import os
import stat
from dataclasses import dataclass
from typing import Dict, List

from ..errors import FileAccessError, PyzpatchError
from ..formats.node import Child, LazyBlob, Node, flatten
from ..fs.filebytes import FileBytes
from ..fs.regular import open_regular
from ..fs.safepath import split_archive_name
from ..fs.walk import walk

NODE_KIND = "folder"
FILE, LINK, DIR = "f", "l", "d"
# Files up to this size are read into memory; larger ones are mapped (one descriptor each).
_READ_LIMIT = 1024 * 1024
# A folder opened for applying reads its files in pieces of this size, when they are used.
_CHUNK = 1024 * 1024
# The longest relative path a folder patch may create (Linux's PATH_MAX).
MAX_PATH_LENGTH = 4096
# The most folders a path may pass through: deep enough for any real build (the deepest in a
# large data-science build is 15), shallow enough that nothing that walks a tree, here or in
# the standard library, comes near Python's recursion limit.
MAX_PATH_DEPTH = 256
# The most symbolic links one path may pass through (Linux's MAXSYMLINKS).
MAX_LINK_HOPS = 40


@dataclass
class Entry:
    path: str  # relative, "/"-separated
    kind: str  # FILE, LINK or DIR
    mode: int  # permission bits
    target: str = ""  # link target
    owner: tuple = (-1, -1)  # (uid, gid) where it was scanned; not part of the folder's hash
    size: int = 0  # a file's size when it was scanned


def scan(root: str) -> List[Entry]:
    """Every file, link and folder below ``root`` (links are not followed), in path order."""
    if not os.path.isdir(root):
        raise PyzpatchError("is not a folder", source=root)
    try:
        entries = _scan_entries(root)
    except OSError as exc:  # a folder that cannot be listed, a path too long for the system
        raise FileAccessError(exc.strerror or str(exc), source=exc.filename or root) from None
    entries.sort(key=lambda e: e.path)
    return entries


def _scan_entries(root: str) -> List[Entry]:
    entries: List[Entry] = []
    for found in walk(root):
        st = found.st
        mode = stat.S_IMODE(st.st_mode)
        owner = (st.st_uid, st.st_gid)
        if stat.S_ISLNK(st.st_mode):
            entries.append(Entry(found.path, LINK, 0, os.readlink(found.full), owner))
        elif stat.S_ISDIR(st.st_mode):
            entries.append(Entry(found.path, DIR, mode, "", owner))
        elif stat.S_ISREG(st.st_mode):
            entries.append(Entry(found.path, FILE, mode, "", owner, st.st_size))
        else:
            raise PyzpatchError("is neither a file, a folder nor a symbolic link", source=found.full)
    return entries


class FolderContents:
    """A scanned folder with its files' bytes, kept open until ``close``.

    ``make`` compares every file with its counterpart, so by default small files are read and
    large ones mapped. ``lazy`` (apply, and its read-back check) holds no file: each file's bytes
    are a LazyBlob read from disk in pieces whenever they are used (hashed, linked, patched), so
    memory follows the change, not the size of the folder."""

    def __init__(self, root: str, lazy: bool = False):
        self.root = os.path.abspath(root)
        self.entries = scan(self.root)
        self.root_mode = stat.S_IMODE(os.stat(self.root).st_mode)
        self._maps: List[FileBytes] = []
        self.data: Dict[str, object] = {}
        for entry in self.entries:
            if entry.kind == FILE:
                path = os.path.join(self.root, *entry.path.split("/"))
                self.data[entry.path] = file_blob(path, entry.size) if lazy else self._read(path)

    def _read(self, path: str):
        if os.path.getsize(path) <= _READ_LIMIT:
            try:
                with open(path, "rb") as fp:
                    return fp.read()
            except OSError as exc:
                raise FileAccessError(exc.strerror or str(exc), source=path) from None
        fb = FileBytes(path)
        self._maps.append(fb)
        return fb.data

    def node(self) -> Node:
        children = [Child(e.path, (e.kind, e.mode, e.target), self.data.get(e.path, b""))
                    for e in self.entries]
        return Node(NODE_KIND, (self.root_mode,), children)

    def close(self) -> None:
        self.data = {}
        for fb in self._maps:
            fb.close()
        self._maps = []

    def __enter__(self) -> "FolderContents":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def file_blob(path: str, size: int) -> LazyBlob:
    """The ``size`` bytes of the regular file ``path``, read in pieces each time they are used;
    a file whose size is no longer ``size`` is refused, naming it, when it is read."""

    def pieces():
        fd = open_regular(path)  # a name swapped for a FIFO or a device is refused
        try:
            left = size
            while left > 0:
                piece = os.read(fd, min(_CHUNK, left))
                if not piece:
                    raise FileAccessError("became shorter while pyzpatch was using it", source=path)
                left -= len(piece)
                yield piece
            if os.read(fd, 1):
                raise FileAccessError("grew while pyzpatch was using it", source=path)
        except OSError as exc:
            raise FileAccessError(exc.strerror or str(exc), source=path) from None
        finally:
            os.close(fd)

    return LazyBlob(size, pieces)


def sha256_of(data) -> bytes:
    """The SHA-256 of bytes, or of a LazyBlob read piece by piece."""
    h = hashlib.sha256()
    for chunk in flatten([data]):
        h.update(chunk)
    return h.digest()


def node_hash(node: Node, content_hash=None, size_of=None) -> tuple:
    """(total file bytes, SHA-256) naming a folder node's exact contents. ``content_hash`` maps
    a child to the SHA-256 of its bytes (default: hash its data), ``size_of`` to their length
    (default: the data's)."""
    h = hashlib.sha256(b"pyzpatch folder 1\0" + b"%o\0" % node.meta[0])
    total = 0
    for child in sorted(node.children, key=lambda c: c.key):
        kind, mode, target = child.attrs
        digest = content_hash(child) if content_hash else sha256_of(child.data)
        total += size_of(child) if size_of else len(child.data)
        key = child.key.encode("utf-8", "surrogateescape")
        h.update(b"%d:%s%s\0%o\0" % (len(key), key, kind.encode(), mode))
        h.update(target.encode("utf-8", "surrogateescape") + b"\0" + digest)
    return total, h.digest()


def check_new_node(node: Node) -> None:
    """Refuse a folder a patch describes if any entry could land or point outside it."""
    if not (isinstance(node.meta, tuple) and len(node.meta) >= 1 and isinstance(node.meta[0], int)
            and 0 <= node.meta[0] <= 0o7777):
        raise PyzpatchError("the folder's own mode is malformed")
    paths = set()
    for child in node.children:
        if len(child.key) > MAX_PATH_LENGTH:
            raise PyzpatchError(f"entry {child.key[:60]!r}... has a path longer than {MAX_PATH_LENGTH}")
        if not (isinstance(child.attrs, tuple) and len(child.attrs) == 3 and child.attrs[0] in (FILE, LINK, DIR)
                and isinstance(child.attrs[1], int) and isinstance(child.attrs[2], str)):
            raise PyzpatchError(f"entry {child.key!r} has malformed attributes")
        parts = split_archive_name(child.key)
        if "\\" in child.key:
            raise PyzpatchError(f"entry {child.key!r} has a backslash in its path")
        if len(parts) > MAX_PATH_DEPTH:
            raise PyzpatchError(f"entry {child.key[:60]!r}... is more than {MAX_PATH_DEPTH} folders deep")
        paths.add(child.key)
        kind, mode, target = child.attrs
        if mode & ~0o7777:
            raise PyzpatchError(f"entry {child.key!r} has invalid mode {mode:o}")
        if kind == LINK:
            if not target or len(target) > MAX_PATH_LENGTH or os.path.isabs(target) or target.startswith("\\"):
                raise PyzpatchError(f"link {child.key!r} points to {target!r}, outside the folder")
    _check_links_stay_inside(node)
    # No entry may lie inside a file or a link: for each such X, no path may start with "X/".
    # In sorted order, the first path at or after "X/" is the only candidate to look at.
    ordered = sorted(paths)
    for child in node.children:
        if child.attrs[0] != DIR:
            prefix = child.key + "/"
            i = bisect.bisect_left(ordered, prefix)
            if i < len(ordered) and ordered[i].startswith(prefix):
                raise PyzpatchError(f"entry {ordered[i]!r} lies inside {child.key!r}, which is not a folder")


def _check_links_stay_inside(node: Node) -> None:
    """Refuse a link that, resolved the way the operating system will once the folder is on
    disk, leads outside it: through the folder's other links (``l -> .`` then
    ``esc -> l/l/../../etc``), not only by its own text.

    A name the folder does not hold is taken for a plain folder: a program may create it later,
    and walking it as text is the most a later folder could allow. A file in the middle of a
    path ends the lookup with an error on any system, so it cannot lead outside either; it is
    walked as text too (stricter than needed). A link through a loop, or through more than
    ``MAX_LINK_HOPS`` links, is refused: the system would not follow it, and tools disagree on
    where it leads.
    """
    links = {c.key: c.attrs[2] for c in node.children if c.attrs[0] == LINK}
    resolved: Dict[str, List[str]] = {}  # link path -> the folder parts it leads to
    pending = set()

    def resolve(link: str, hops: int) -> List[str]:
        if link in resolved:
            return resolved[link]
        if hops > MAX_LINK_HOPS or link in pending:
            # The system would refuse it (ELOOP), but tools disagree on where such a link
            # leads (os.path.realpath: outside; coreutils: never returns): refused.
            raise PyzpatchError(f"link {link!r} leads into a loop of links (or through more than "
                                f"{MAX_LINK_HOPS})")
        pending.add(link)
        where = link.split("/")[:-1]
        for part in links[link].split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not where:
                    raise PyzpatchError(f"link {link!r} points to {links[link]!r}, outside the folder")
                where.pop()
                continue
            where.append(part)
            if len(where) > MAX_PATH_DEPTH:
                raise PyzpatchError(f"link {link!r} leads more than {MAX_PATH_DEPTH} folders deep")
            through = "/".join(where)
            if through in links:
                # Each link is resolved once and remembered, so a long chain costs its length.
                where = list(resolve(through, hops + 1))
        pending.discard(link)
        resolved[link] = where
        return where

    for link in links:
        resolve(link, 0)
