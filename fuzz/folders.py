"""Folder patches under hostile input: the cases and the properties that fuzz/fuzz_folders.py
runs under libFuzzer and tests/test_folder_fuzz.py runs from fixed seeds (importable without
atheris).

Every case is driven by a byte string (``Source``): the same bytes make the same case, so an
input the fuzzer saves replays exactly. A case builds real folders in a temporary folder of its
own and removes them itself, whatever their depth or modes (no recursion, no path longer than
the system allows: everything is reached through folder descriptors).

The kinds of case (chosen by the first byte):

- ``ROUNDTRIP``: an old and a new folder on disk (link chains and loops, ``..`` through links,
  links into subfolders, deep paths, odd modes, set-id bits); ``make`` must refuse in one line
  (a ``PyzpatchError``) or make a patch whose apply gives exactly the new folder, after which a
  second apply says it is already applied.
- ``UNCHECKED``: the same folders, but the patch is written without make's checks (the encoder
  and the patch-file codec directly, as an attacker's tool would), so links that leave the
  folder and paths past ``MAX_PATH_DEPTH`` reach ``apply``.
- ``CRAFTED``: the new folder exists only in memory, so it may hold what no disk can: names with
  ``..``, empty parts, NULs and backslashes, absolute link targets, entries inside files, modes
  past 0o7777, paths thousands of folders deep.
- ``MUTATED``: a patch from one of the above, its streams mutated; where the decoder still
  reads it, the header is made to name what it decodes to, so the mutant reaches the disk.
- ``MANY``: a patch adding many entries (up to millions declared, a few bytes each), applied in
  a forked child whose peak memory (VmHWM) is checked against the budget.

Properties, for every apply (as root, or in a forked child with every capability dropped,
where permission bits bind it as they bind an ordinary owner):

- it returns, or raises ``PyzpatchError`` with a one-line message: never another exception
  (``RecursionError``, ``OSError``, ``MemoryError`` ...);
- refused: the target folder is exactly as it was (names, kinds, modes, link targets, bytes),
  and beside it there is nothing new but a ``.NAME.pyzpatch-old*`` trash folder;
- applied: the folder is exactly the one the patch names, every link in it, resolved with
  ``os.path.realpath``, stays inside it, nothing beside it is left but such trash, and nothing
  outside it (a canary folder beside it) changed.

A few findings the fuzzer made are known and reported (``KNOWN``); unless ``PYZPATCH_FUZZ_STRICT``
is set they are counted and the case goes on, so one run can find more than one thing.
"""
from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import traceback
import zlib
from typing import Dict, List, Optional, Tuple

from pyzpatch.delta import codes
from pyzpatch.delta.engine import Encoder, decode_folder
from pyzpatch.delta.wire import Writer
from pyzpatch.errors import AlreadyAppliedError, PyzpatchError
from pyzpatch.formats.node import Child, Node, flatten
from pyzpatch.patch.folder import apply_folder_patch, make_folder_patch
from pyzpatch.patch.foldernode import MAX_PATH_DEPTH, NODE_KIND, FolderContents, check_new_node, node_hash
from pyzpatch.patchfile import codec as patchfile
from pyzpatch.patchfile.codec import Body, Header, memory_budget, piece_limit

ROUNDTRIP, UNCHECKED, CRAFTED, MUTATED, MANY = range(5)
KINDS = ("roundtrip", "unchecked", "crafted", "mutated", "many")
STRICT = bool(os.environ.get("PYZPATCH_FUZZ_STRICT"))
# One apply in CLI_SHARE goes through the command line (a process: slow); 0: never.
CLI_SHARE = 40
# What every case counted, for the run's figures (fuzz_folders.py prints them at exit).
STATS: Dict[str, int] = {}
# The first example of each known finding met (its traceback), for the report.
KNOWN_SEEN: Dict[str, str] = {}

try:  # a deep tree needs a descriptor for every folder on its way
    _soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if _soft < min(_hard, 8192):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(_hard, 8192), _hard))
except (ValueError, OSError):
    pass


def count(what: str, n: int = 1) -> None:
    STATS[what] = STATS.get(what, 0) + n


class Source:
    """Choices read from a byte string; past its end every choice is 0 (the simplest)."""

    def __init__(self, data: bytes):
        self.data = bytes(data)
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def below(self, n: int) -> int:
        if n <= 1:
            return 0
        value = 0
        for _ in range(((n - 1).bit_length() + 7) // 8):
            value = value << 8 | self.byte()
        return value % n

    def chance(self, one_in: int) -> bool:
        return self.below(one_in) == 0

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def blob(self, limit: int) -> bytes:
        n = self.below(limit + 1)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out


# -- trees in memory: {path: (kind, mode, link target, bytes)} -----------------------------------

FILE, LINK, DIR = "f", "l", "d"
Tree = Dict[str, tuple]
NAMES = ["a", "b", "c", "d", "lib", "x.so", "x.so.1", ".hidden", "\u00e9t\u00e9", "sp ace", "-", "...",
         "n" * 200, ".t.pyzpatch-new", "t", "canary", "a.pyc", "UPPER", "up"]
FILE_MODES = [0o644, 0o644, 0o755, 0o600, 0, 0o400, 0o200, 0o111, 0o4755, 0o2755, 0o6711, 0o1644, 0o777,
              0o4000, 0o7777]
DIR_MODES = [0o755, 0o755, 0o700, 0o555, 0, 0o500, 0o311, 0o2775, 0o1777, 0o3755, 0o100, 0o7777]
DEPTHS = [MAX_PATH_DEPTH - 1, MAX_PATH_DEPTH, MAX_PATH_DEPTH + 1, MAX_PATH_DEPTH + 7, 40, 300, 1300]


def _data(src: Source) -> bytes:
    style = src.below(6)
    if style == 0:
        return b""
    if style == 1:
        return bytes([src.byte()]) * src.below(5000)
    if style == 2:
        return hashlib.sha256(src.blob(8)).digest() * (1 + src.below(200))
    return src.blob(64)


def _link_target(src: Source, link: str, tree: Tree, hostile: bool = True) -> str:
    """A relative target built of ``.``, ``..``, names in the tree and links, with now and then an
    absolute one or one aimed at the canary folder beside the target; not ``hostile``: the way
    a build points at one of its entries."""
    style = src.below(16) if hostile else 15
    if style == 0:
        return src.pick(["/etc", "/tmp", "/", "//etc"])
    if style == 1:
        return "../" * (1 + link.count("/")) + src.pick(["canary", "canary/f", "../etc", ".."])
    paths = sorted(tree)
    if (style < 13 or not hostile) and paths:  # an entry of the tree, by the way a build would point at it
        target = _relative(src.pick(paths), link.rpartition("/")[0])
    else:
        target = _soup(src, link, paths)
    return target if len(target.encode("utf-8", "surrogateescape")) < 4000 else "."


def _relative(path: str, start: str) -> str:
    """``path`` seen from the folder ``start`` (both relative to the root, "/"-separated)."""
    a, b = path.split("/"), start.split("/") if start else []
    common = 0
    while common < min(len(a), len(b)) and a[common] == b[common]:
        common += 1
    return "/".join([".."] * (len(b) - common) + a[common:]) or "."


def _soup(src: Source, link: str, paths: List[str]) -> str:
    """``.``, ``..``, names and links of the tree, mixed."""
    parts: List[str] = []
    for _ in range(1 + src.below(7)):
        choice = src.below(10)
        if choice < 2:
            parts.append(".")
        elif choice < 5:
            parts.append("..")
        elif choice < 9 and paths:
            path = src.pick(paths)  # a name in the tree, relative to the root: up first
            if src.chance(2):
                parts.extend([".."] * link.count("/"))
            parts.append(path)
        else:
            parts.append(src.pick(["missing", "canary", "t", "d"]))
    target = "/".join(parts)
    if src.chance(8):
        target += "/"
    if src.chance(16):
        target = target.replace("/", "//", 1)
    return target or "."


def gen_tree(src: Source, many: int = 0) -> Tuple[int, Tree]:
    """(root mode, tree): a small folder, now and then with a deep chain or many entries."""
    tree: Tree = {}
    folders = [""]
    links = []
    hostile = src.chance(3)
    n = 1 + src.below(14) + (many if many else 0)
    for i in range(n):
        parent = src.pick(folders) if i < 64 or src.chance(4) else ""
        name = src.pick(NAMES)
        if many or src.chance(3):
            name += str(i)
        path = f"{parent}/{name}" if parent else name
        if path in tree or len(path) > 3000:
            continue
        kind = src.pick([FILE, FILE, FILE, DIR, DIR, LINK, LINK])
        if kind == DIR:
            tree[path] = (DIR, src.pick(DIR_MODES) if src.chance(3) else 0o755, "", b"")
            folders.append(path)
        elif kind == FILE:
            tree[path] = (FILE, src.pick(FILE_MODES) if src.chance(3) else 0o644, "", _data(src))
        else:
            tree[path] = (LINK, 0, "", b"")
            links.append(path)
    if src.chance(5):  # a deep chain, with a file at its end and links climbing out of it
        depth = src.pick(DEPTHS)
        base = src.pick(folders)
        name = src.pick(["d", "dd", "\u00e9"])
        path = base
        for _ in range(depth):
            path = f"{path}/{name}" if path else name
            if path in tree and tree[path][0] != DIR:
                break
            tree[path] = (DIR, 0o755, "", b"")
        tree[path + "/f"] = (FILE, 0o644, "", b"deep\n")
        for _ in range(src.below(3)):
            up = src.pick([depth, depth + 1, depth + 2, depth // 2])
            tree[path + "/up" + str(up)] = (LINK, 0, "", b"")
            links.append((path + "/up" + str(up), "/".join([".."] * up) or "."))
    for link in links:
        if isinstance(link, tuple):
            tree[link[0]] = (LINK, 0, link[1], b"")
        else:
            tree[link] = (LINK, 0, _link_target(src, link, tree, hostile), b"")
    _drop_orphans(tree)
    root_mode = src.pick(DIR_MODES) if src.chance(6) else 0o755
    return root_mode, tree


def _drop_orphans(tree: Tree) -> None:
    """Remove entries whose parent is missing or not a folder (a disk cannot hold them)."""
    for path in sorted(tree):
        parent = path.rpartition("/")[0]
        if parent and (parent not in tree or tree[parent][0] != DIR):
            del tree[path]


def mutate_tree(src: Source, tree: Tree) -> Tree:
    """A changed copy: bytes edited, modes changed, entries added, removed or of another kind,
    links retargeted."""
    new = dict(tree)
    hostile = src.chance(3)
    for _ in range(1 + src.below(6)):
        paths = sorted(new)
        op = src.below(7)
        if not paths or op == 0:
            parents = [""] + [p for p in paths if new[p][0] == DIR]
            parent = src.pick(parents)
            name = src.pick(NAMES) + str(src.below(100))
            path = f"{parent}/{name}" if parent else name
            kind = src.pick([FILE, DIR, LINK])
            new[path] = (kind, 0o755 if kind == DIR else 0 if kind == LINK else 0o644,
                         _link_target(src, path, new, hostile) if kind == LINK else "",
                         _data(src) if kind == FILE else b"")
            continue
        path = src.pick(paths)
        kind, mode, target, data = new[path]
        if op == 1 and kind == FILE:
            data = bytearray(data) or bytearray(b"x")
            for _ in range(1 + src.below(4)):
                data[src.below(len(data))] = src.byte()
            new[path] = (kind, mode, target, bytes(data) + src.blob(16))
        elif op == 2 and kind != LINK:
            new[path] = (kind, src.pick(DIR_MODES if kind == DIR else FILE_MODES), target, data)
        elif op == 3:
            for p in paths:
                if p == path or p.startswith(path + "/"):
                    del new[p]
        elif op == 4 and kind == LINK:
            new[path] = (LINK, 0, _link_target(src, path, new, hostile), b"")
        elif op == 5:  # another kind under the same name
            for p in paths:
                if p.startswith(path + "/"):
                    del new[p]
            kind = src.pick([FILE, DIR, LINK])
            new[path] = (kind, 0o755 if kind == DIR else 0 if kind == LINK else 0o600,
                         _link_target(src, path, new, hostile) if kind == LINK else "",
                         _data(src) if kind == FILE else b"")
        else:
            new[path] = (kind, mode, target, data + b"+" if kind == FILE else data)
    _drop_orphans(new)
    return new


# -- trees on disk, reached through descriptors (any depth) -------------------------------------


_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _nofollow_dir(name: str, dir_fd: int) -> int:
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)


def write_tree(root: str, root_mode: int, tree: Tree) -> None:
    """Create ``root`` holding ``tree``, then give every entry its mode (files, then folders
    deepest first, then the root), so a folder of mode 000 is filled before it is locked."""
    os.mkdir(root, 0o700)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    stack: List[Tuple[str, int]] = [("", root_fd)]  # the open folders down to the current one
    modes = []  # (depth, parent fd path, name, mode)
    try:
        for path in sorted(tree):
            parent, _, name = path.rpartition("/")
            while stack[-1][0] != parent:
                if parent.startswith(stack[-1][0] + "/") or stack[-1][0] == "":
                    rest = parent[len(stack[-1][0]):].lstrip("/").split("/")
                    for part in rest:
                        below = stack[-1][0] + "/" + part if stack[-1][0] else part
                        stack.append((below, _nofollow_dir(part, stack[-1][1])))
                else:
                    os.close(stack.pop()[1])
            fd = stack[-1][1]
            kind, mode, target, data = tree[path]
            if kind == DIR:
                os.mkdir(name, 0o700, dir_fd=fd)
                if _ROOT:  # root may fill a folder whatever its mode: no second walk needed
                    os.chmod(name, mode, dir_fd=fd)
                else:
                    modes.append((path.count("/"), path, mode))
            elif kind == LINK:
                os.symlink(target, name, dir_fd=fd)
            else:
                out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=fd)
                try:
                    os.write(out, data)
                    os.fchmod(out, mode)
                finally:
                    os.close(out)
        while len(stack) > 1:
            os.close(stack.pop()[1])
        for _, path, mode in sorted(modes, key=lambda m: -m[0]):
            _chmod_at(root_fd, path, mode)
        os.fchmod(root_fd, root_mode)
    finally:
        for _, fd in stack:
            os.close(fd)


def _chmod_at(root_fd: int, path: str, mode: int) -> None:
    """chmod ``path`` below the folder ``root_fd``, walking to its parent by descriptors."""
    parts = path.split("/")
    fds = [root_fd]
    try:
        for part in parts[:-1]:
            fds.append(_nofollow_dir(part, fds[-1]))
        os.chmod(parts[-1], mode, dir_fd=fds[-1])
    finally:
        for fd in fds[1:]:
            os.close(fd)


def read_tree(root: str) -> Tuple[int, Dict[str, tuple]]:
    """(root mode, {path: (kind, mode, link target, SHA-256 of bytes)}) of a folder on disk, as
    this process (root) sees it: an independent reading, not pyzpatch's."""
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    root_mode = stat.S_IMODE(os.fstat(root_fd).st_mode)
    found: Dict[str, tuple] = {}
    pending = [("", root_fd)]
    try:
        while pending:
            rel, fd = pending.pop()
            try:
                for name in sorted(os.listdir(fd)):
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    path = f"{rel}/{name}" if rel else name
                    if stat.S_ISLNK(st.st_mode):
                        found[path] = (LINK, 0, os.readlink(name, dir_fd=fd), b"")
                    elif stat.S_ISDIR(st.st_mode):
                        found[path] = (DIR, stat.S_IMODE(st.st_mode), "", b"")
                        pending.append((path, _nofollow_dir(name, fd)))
                    else:
                        h = hashlib.sha256()
                        f = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
                        try:
                            while True:
                                chunk = os.read(f, 1 << 20)
                                if not chunk:
                                    break
                                h.update(chunk)
                        finally:
                            os.close(f)
                        found[path] = ("f" if stat.S_ISREG(st.st_mode) else "?", stat.S_IMODE(st.st_mode), "",
                                       h.digest())
            finally:
                os.close(fd)
    finally:
        for _, fd in pending:
            os.close(fd)
    return root_mode, found


def remove_all(path: str) -> None:
    """Remove a file, link or folder tree of any depth and any modes: no recursion, no long
    paths (everything by descriptors), every folder opened up first."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    os.chmod(path, 0o700)
    parent_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    stack = [(os.path.basename(path), parent_fd, _nofollow_dir(os.path.basename(path), parent_fd))]
    try:
        while stack:
            name, up, fd = stack[-1]
            below = None
            for entry in os.listdir(fd):
                st = os.stat(entry, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    os.chmod(entry, 0o700, dir_fd=fd)
                    below = entry
                    break
                os.unlink(entry, dir_fd=fd)
            if below is not None:
                stack.append((below, fd, _nofollow_dir(below, fd)))
                continue
            os.close(fd)
            stack.pop()
            os.rmdir(name, dir_fd=up)
    finally:
        for _, _, fd in stack:
            os.close(fd)
        os.close(parent_fd)


# -- patches written without make's checks --------------------------------------------------------


def tree_node(root_mode: int, tree: Tree) -> Node:
    return Node(NODE_KIND, (root_mode,), [Child(p, (k, m, t), d) for p, (k, m, t, d) in sorted(tree.items())])


def unchecked_patch(old_node: Node, new_node: Node) -> bytes:
    """A folder patch from ``old_node`` to ``new_node`` with none of make's checks."""
    old_size, old_hash = node_hash(old_node)
    new_size, new_hash = node_hash(new_node)
    encoder = Encoder()
    encoder.node_delta(old_node, new_node, "")
    s = encoder.out
    header = Header(old_size=old_size, old_sha256=old_hash, new_size=new_size, new_sha256=new_hash,
                    flags=patchfile.FOLDER)
    return patchfile.encode(header, Body(s.ops.getvalue(), bytes(s.diff), bytes(s.lit)))


def crafted_node(src: Source, old_root_mode: int, old: Tree) -> Node:
    """A new folder no disk can hold: hostile names, link targets, modes and depths."""
    children = {p: (k, m, t, d) for p, (k, m, t, d) in old.items() if src.chance(2)}
    for _ in range(1 + src.below(8)):
        style = src.below(12)
        depth = src.pick([1, 2, MAX_PATH_DEPTH, MAX_PATH_DEPTH + 1, 1000, 2100, 3000])
        if style == 0:
            key = "/".join(["d"] * depth)
        elif style == 1:
            key = src.pick(["..", "../x", "a/../../x", "/abs", "a//b", "./a", "a/.", "a\\..\\b", "a\0b", "",
                            "C:x", "\\x", "a/", "x" * 5000, "\udcff"])
        elif style == 2:
            key = src.pick(sorted(children) or ["a"]) + "/" + src.pick(["in", "in/deeper"])  # inside a file
        else:
            key = src.pick(NAMES) + ("/" + src.pick(NAMES)) * src.below(3)
        kind = src.pick([FILE, DIR, LINK, LINK])
        mode = src.pick(FILE_MODES + DIR_MODES + [0o10000, 0o170755, -1, 1 << 40])
        if kind == LINK:
            target = src.pick(["/etc", "..", "../..", "a/../..", "\\x", "", "x" * 5000, "d/" * 300 + "../" * 302,
                               "../t/x", "../canary", ".", "a", "l/l/l/../../../..",
                               _link_target(src, key, children)])
            mode = 0
        else:
            target = ""
        data = src.blob(32) if kind == FILE else b""
        children[key] = (kind, mode, target, data)
        if style == 3 and src.chance(2):  # the review's example: a loop link and a way up through it
            children["l"] = (LINK, 0, ".", b"")
            children["esc"] = (LINK, 0, "l/" * src.below(6) + "../" * (1 + src.below(6)) + "canary", b"")
    root_mode = src.pick([old_root_mode, 0o755, 0, 0o10000, -5])
    return Node(NODE_KIND, (root_mode,), [Child(p, (k, m, t), d) for p, (k, m, t, d) in sorted(children.items())])


def mutate_patch(src: Source, blob: bytes, old_node: Node) -> bytes:
    """``blob`` with its streams mutated; where the decoder still reads the mutant, its header
    names what it decodes to, so that the mutant reaches the disk. Now and then the patch's own
    bytes are mutated instead, with the checksum made right again."""
    header, body = patchfile.decode(blob)
    if src.chance(6):
        raw = bytearray(blob[:-4])
        for _ in range(1 + src.below(4)):
            if raw:
                raw[src.below(len(raw))] ^= 1 << src.below(8)
        return bytes(raw) + zlib.crc32(raw).to_bytes(4, "little")
    streams = [bytearray(body.ops), bytearray(body.diff), bytearray(body.lit)]
    for _ in range(1 if src.below(4) else 2 + src.below(5)):
        s = streams[src.pick([0, 0, 0, 0, 1, 2])]
        op = src.below(7)
        at = src.below(len(s) + 1)
        if op == 0 and s:
            s[min(at, len(s) - 1)] ^= 1 << src.below(8)
        elif op == 1 and s:
            s[min(at, len(s) - 1)] = src.pick([0, 1, 0x7F, 0x80, 0xFF, src.byte()])
        elif op == 2:
            s[at:at] = bytes([src.byte()])
        elif op == 3:
            del s[at:at + 1 + src.below(8)]
        elif op == 4:
            n = 1 + src.below(16)
            s[at:at] = s[at:at + n] * (1 + src.below(3))
        elif op == 5:
            del s[at:]
        else:
            s[at:at] = b"\xff\xff\xff\xff\x0f"  # a huge varint
    body = Body(bytes(streams[0]), bytes(streams[1]), bytes(streams[2]))
    try:
        # The decoder, under the same rule as apply: only PyzpatchError may come out of it.
        new_node = decode_folder(body, old_node, piece_limit(header))
        check_new_node(new_node)  # as apply does before it hashes the node
        new_size, new_hash = node_hash(new_node, _piece_hash)
        if new_size <= patchfile.max_new_size(header.old_size) and not src.chance(8):
            header = Header(header.old_size, header.old_sha256, new_size, new_hash, flags=header.flags)
            count("mutant decodes")
    except PyzpatchError:
        count("mutant refused by the decoder")
    return patchfile.encode(header, body)


def _piece_hash(child) -> bytes:
    h = hashlib.sha256()
    for chunk in flatten([child.data]):
        h.update(chunk)
    return h.digest()


def many_entries_patch(old_node: Node, count_: int, src: Source) -> bytes:
    """A folder patch adding ``count_`` entries (files, folders and links, a few bytes each),
    written op by op: the encoder would need gigabytes for a million."""
    old_size, old_hash = node_hash(old_node)
    w = Writer()
    w.value_delta(old_node.meta, old_node.meta)
    w.uint(0)  # nothing removed
    w.uint(codes.ORDER_SAME)
    w.uint(count_)
    kinds_attrs = [(FILE, src.pick([0o644, 0o4755, 0]), ""), (DIR, src.pick([0o755, 0, 0o555]), ""),
                   (LINK, 0, src.pick(["z", "..", "../../canary", "k0000000"]))]
    kinds = [Writer(), Writer(), Writer()]
    for writer, attrs in zip(kinds, kinds_attrs):
        writer.value(attrs)
    mix = src.below(4)
    width = src.pick([7, 7, 40, 200])
    tail = Writer()
    tail.uint(codes.COMPRESSIONS.index(None))
    tail.uint(codes.LITERAL)
    tail.uint(0)
    key_len = Writer()
    key_len.uint(2 * (1 + width) + 1)
    first, rest = Writer(), Writer()
    first.uint(len(old_node.children))
    rest.uint(1)
    ends = [k.getvalue() + tail.getvalue() for k in kinds]
    w.raw(b"".join((first if i == 0 else rest).getvalue() + key_len.getvalue() + b"k%0*d" % (width, i)
                   + ends[_kind(mix, i)] for i in range(count_)))
    w.uint(0)  # nothing changed
    # Up to KNOWN_HASH entries the header names the folder they make, so the patch can be
    # applied; past that it names none (the hash would need the million entries built here),
    # and a patch that gets past the entry budget is refused at the hash, after the plan.
    new_size, new_hash = 0, bytes(32)
    if count_ <= KNOWN_HASH:
        added = [Child((b"k%0*d" % (width, i)).decode(), kinds_attrs[_kind(mix, i)], b"") for i in range(count_)]
        new_size, new_hash = node_hash(Node(NODE_KIND, old_node.meta, list(old_node.children) + added))
    header = Header(old_size, old_hash, new_size, new_hash, flags=patchfile.FOLDER)
    return patchfile.encode(header, Body(w.getvalue(), b"", b""))


KNOWN_HASH = 5000


def _kind(mix: int, i: int) -> int:
    return 0 if mix == 0 else (i % 3 if mix == 1 else (i % 2) * 2 if mix == 2 else 1)


# -- running apply, as root or without privileges, and checking what it did --------------------


def _drop_capabilities() -> None:
    """Drop every capability of this (forked) process: root then has the rights of an ordinary
    owner of root's files, as ``setpriv --inh-caps=-all --bounding-set=-all`` gives it."""
    libc = ctypes.CDLL(None, use_errno=True)

    class Head(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    for cap in range(64):  # the bounding set, as setpriv --bounding-set=-all
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP
    head = Head(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    if libc.capset(ctypes.byref(head), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def _vm(field: str) -> int:
    with open("/proc/self/status") as fp:
        for line in fp:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def run_forked(func, unprivileged: bool, measure: bool = False) -> dict:
    """Run ``func()`` in a forked child (without capabilities if ``unprivileged``); its outcome:
    {"error": exception type or None, "message", "trace", "peak": bytes its work added to the
    child's peak resident memory}."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(read_end)
            out = {"error": None, "message": "", "trace": "", "peak": 0}
            try:
                if unprivileged:
                    _drop_capabilities()
                if measure:
                    with open("/proc/self/clear_refs", "w") as fp:
                        fp.write("5")  # reset VmHWM to the current size
                start = _vm("VmRSS")
                try:
                    func()
                finally:
                    out["peak"] = max(0, _vm("VmHWM") - start)
            except BaseException as exc:  # noqa: BLE001 -- reported to the parent, judged there
                out.update(error=type(exc).__name__, message=str(exc), trace=traceback.format_exc(),
                           pyzpatch=isinstance(exc, PyzpatchError), already=isinstance(exc, AlreadyAppliedError))
            os.write(write_end, json.dumps(out).encode())
        except BaseException:  # noqa: BLE001
            code = 3
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while True:
        chunk = os.read(read_end, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        raise AssertionError(f"the forked apply died without a word (status {status:#x})")
    return json.loads(b"".join(chunks))


def run_here(func) -> dict:
    try:
        func()
    except PyzpatchError as exc:
        return {"error": type(exc).__name__, "message": str(exc), "trace": traceback.format_exc(),
                "pyzpatch": True, "already": isinstance(exc, AlreadyAppliedError)}
    except Exception as exc:  # judged by judge(): only PyzpatchError is allowed
        return {"error": type(exc).__name__, "message": str(exc), "trace": traceback.format_exc(),
                "pyzpatch": False, "already": False}
    return {"error": None, "message": "", "trace": ""}


# Findings this fuzzer made and that are reported, not fixed here: (name, test on an outcome).
KNOWN: list = []  # (what, test) of findings reported but not fixed yet; none open now


def judge(out: dict, what: str) -> bool:
    """Check an outcome: None (it worked) or a one-line PyzpatchError. Returns whether it was
    refused. A known finding is counted (and raised under PYZPATCH_FUZZ_STRICT)."""
    if out["error"] is None:
        return False
    if not out.get("pyzpatch"):
        for name, test in KNOWN:
            if test(out) and not STRICT:
                count("known: " + name.split(":")[0])
                KNOWN_SEEN.setdefault(name, out["trace"])
                return True
        raise AssertionError(f"{what} raised {out['error']}, not PyzpatchError:\n{out['trace']}")
    if "\n" in out["message"] or not out["message"].strip():
        raise AssertionError(f"{what}: a PyzpatchError that is not one line: {out['message']!r}")
    return True


REASONS = ["outside the folder", "folders deep", "longer than", "is not the folder the patch",
           "gives a different folder", "not a folder", "malformed", "invalid mode", "backslash",
           "Permission denied", "File name too long", "already", "patch structure", "unsafe", "memory",
           "checksum", "single file", "lies inside"]


def reason(message: str) -> str:
    """A refusal's kind, for the figures."""
    return next((r for r in REASONS if r in message), "other")


LEFTOVER_OK = re.compile(r"\.t\.pyzpatch-old(-\d+)?$")


class Case:
    """A case's own temporary folder: ``t`` (the target), ``canary`` (must never change)."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="pyzpatch-folderfuzz-")
        self.target = os.path.join(self.root, "t")
        canary = os.path.join(self.root, "canary")
        os.mkdir(canary)
        with open(os.path.join(canary, "f"), "wb") as fp:
            fp.write(b"canary\n")
        self.canary = read_tree(canary)

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def names(self) -> List[str]:
        return sorted(os.listdir(self.root))

    def clear_trash(self) -> None:
        for name in self.names():
            if LEFTOVER_OK.match(name):
                remove_all(self.path(name))

    def __enter__(self) -> "Case":
        return self

    def __exit__(self, *exc) -> None:
        remove_all(self.root)


REALPATH_LOOP = ("a link through a loop: make and apply accept a link whose path runs through a "
                 "looping link and then up (L -> L/../..); the system refuses it (ELOOP), but "
                 "os.path.realpath goes on by text after a loop and lands outside the folder "
                 "(foldernode._check_links_stay_inside takes a loop for 'nowhere')")


def links_inside(root: str, tree: Dict[str, tuple]) -> None:
    """Every link of ``tree`` (read from ``root``), resolved with os.path.realpath, stays inside.
    Where realpath says outside but the system itself cannot follow the link (a loop), that is
    the known finding REALPATH_LOOP; the system following it outside is always a failure."""
    real_root = os.path.realpath(root)

    def inside(p: str) -> bool:
        return p == real_root or p.startswith(real_root + os.sep)

    for path, (kind, _, target, _) in tree.items():
        if kind != LINK:
            continue
        full = os.path.join(root, *path.split("/"))
        real = os.path.realpath(full)
        if inside(real):
            continue
        problem = f"applied link {path!r} -> {target!r} resolves to {real!r}, outside {real_root!r}"
        try:
            fd = os.open(full, os.O_PATH)
        except OSError as exc:
            if exc.errno == errno.ELOOP and not STRICT:
                count("known: " + REALPATH_LOOP.split(":")[0])
                KNOWN_SEEN.setdefault(REALPATH_LOOP, problem)
                continue
            raise AssertionError(problem + f" (the system: {exc.strerror})") from None
        try:
            by_system = os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        raise AssertionError(problem + f" (the system follows it to {by_system!r})")


def run_cli(case: Case, unprivileged: bool) -> dict:
    """``pyzpatch apply t p`` as a process (with every capability dropped by setpriv if
    ``unprivileged``): it must end in success, or in one line and exit status 1."""
    cmd = [sys.executable, "-m", "pyzpatch", "apply", case.target, case.path("p")]
    if unprivileged:
        cmd = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"] + cmd
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=repo))
    err = done.stderr.strip()
    if done.returncode == 0:
        return {"error": None, "message": "", "trace": ""}
    # cli.py EXIT_CODES: 1 other, 3 already applied, 4 wrong base, 5 corrupt, 6 signature, 7 I/O
    if done.returncode not in (1, 3, 4, 5, 6, 7) or "Traceback" in err or len(err.splitlines()) != 1:
        raise AssertionError(f"the command line's apply ended with {done.returncode}: {done.stderr!r}")
    return {"error": "exit 1", "message": err, "trace": "", "pyzpatch": True,
            "already": done.returncode == 3}


def apply_and_check(case: Case, patch: bytes, src: Source, expected=None, what="apply") -> Tuple[bool, bool]:
    """Apply ``patch`` to the case's target (as root, or without privileges; now and then by
    the command line) and check the properties; (whether it was applied, without privileges)."""
    patch_path = case.path("p")
    with open(patch_path, "wb") as fp:
        fp.write(patch)
    before = read_tree(case.target)
    names_before = case.names()
    unprivileged = src.chance(3)
    count("applies without privileges" if unprivileged else "applies as root")
    if CLI_SHARE and src.chance(CLI_SHARE) and shutil.which("setpriv"):
        count("applies by the command line")
        out = run_cli(case, unprivileged)
    elif unprivileged:
        out = run_forked(lambda: apply_folder_patch(case.target, patch_path), True)
    else:
        out = run_here(lambda: apply_folder_patch(case.target, patch_path))
    refused = judge(out, what + (" without privileges" if unprivileged else ""))
    extra = set(case.names()) - set(names_before)
    missing = set(names_before) - set(case.names())
    bad = sorted(n for n in extra if not LEFTOVER_OK.match(n))
    if bad or missing:
        raise AssertionError(f"{what}: beside the target it left {bad} and took away {sorted(missing)} "
                             f"({'refused: ' + out['message'] if refused else 'applied'})")
    if read_tree(case.path("canary")) != case.canary:
        raise AssertionError(f"{what}: the canary folder beside the target changed")
    after = read_tree(case.target)
    if refused:
        count("refused: " + reason(out["message"]))
        if after != before:
            raise AssertionError(f"{what} refused ({out['message']}) but changed the target folder")
        case.clear_trash()
        return False, unprivileged
    count("applied")
    links_inside(case.target, after[1])
    if expected is not None and after != expected:
        diff = sorted(set(after[1].items()) ^ set(expected[1].items()))[:6]
        raise AssertionError(f"{what} applied but the folder differs from the new one: root "
                             f"{after[0]:o}/{expected[0]:o}, {diff}")
    with FolderContents(case.target) as got:
        header, _ = patchfile.decode(patch)
        if node_hash(got.node()) != (header.new_size, header.new_sha256):
            raise AssertionError(f"{what} applied but the folder is not the one the patch names")
    case.clear_trash()
    return True, unprivileged


# -- the cases ------------------------------------------------------------------------------------


def _write(path: str, data: bytes) -> str:
    with open(path, "wb") as fp:
        fp.write(data)
    return path


def _old_and_new(src: Source, case: Case, many: int = 0):
    root_mode, old = gen_tree(src, many)
    new = mutate_tree(src, old)
    new_root_mode = src.pick(DIR_MODES) if src.chance(8) else root_mode
    write_tree(case.target, root_mode, old)
    write_tree(case.path("new"), new_root_mode, new)
    return (root_mode, old), (new_root_mode, new)


def case_roundtrip(src: Source, case: Case) -> Optional[bytes]:
    (_, _), (new_mode, new) = _old_and_new(src, case, many=src.pick([0] * 8 + [300, 1000]))
    out = {}

    def make():
        out["patch"] = make_folder_patch(case.target, case.path("new")).data

    result = run_here(make)
    if judge(result, "make"):
        count("make refused: " + reason(result["message"]))
        return None
    count("make made a patch")
    expected = read_tree(case.path("new"))
    header, _ = patchfile.decode(out["patch"])
    if header.old_sha256 == header.new_sha256:  # the same folder twice: nothing to apply
        again = run_here(lambda: apply_folder_patch(case.target, _write(case.path("p"), out["patch"])))
        if not again.get("already"):
            raise AssertionError(f"a patch between two equal folders did not say it was applied: {again}")
        count("make: the two folders are equal")
        return out["patch"]
    applied, unprivileged = apply_and_check(case, out["patch"], src, expected, "apply of make's patch")
    if applied:
        again = run_here(lambda: apply_folder_patch(case.target, case.path("p")))
        if not again.get("already"):
            raise AssertionError(f"a second apply of the same patch did not say it was applied: {again}")
    elif unprivileged:
        count("make's patch refused without privileges")  # the modes forbid it
    else:
        raise AssertionError("root could not apply a patch make made")
    return out["patch"]


def case_unchecked(src: Source, case: Case) -> bytes:
    (old_mode, old), (new_mode, new) = _old_and_new(src, case)
    patch = unchecked_patch(tree_node(old_mode, old), tree_node(new_mode, new))
    apply_and_check(case, patch, src, read_tree(case.path("new")), "apply of an unchecked patch")
    return patch


def case_crafted(src: Source, case: Case) -> bytes:
    root_mode, old = gen_tree(src)
    write_tree(case.target, root_mode, old)
    node = crafted_node(src, root_mode, old)
    try:
        patch = unchecked_patch(tree_node(root_mode, old), node)
    except PyzpatchError:
        count("crafted: the encoder refused")
        return b""
    except (TypeError, ValueError, UnicodeError, OverflowError):
        count("crafted: the encoder cannot write it")  # the attacker's tool, not pyzpatch's apply
        return b""
    apply_and_check(case, patch, src, None, "apply of a crafted patch")
    return patch


def case_mutated(src: Source, case: Case) -> None:
    which = src.below(3)
    root_mode, old = gen_tree(src)
    if which == 0:
        new_mode, new = root_mode, mutate_tree(src, old)
        patch = unchecked_patch(tree_node(root_mode, old), tree_node(new_mode, new))
    else:
        try:
            patch = unchecked_patch(tree_node(root_mode, old), crafted_node(src, root_mode, old))
        except (PyzpatchError, TypeError, ValueError, UnicodeError, OverflowError):
            return
    write_tree(case.target, root_mode, old)
    mutant = mutate_patch(src, patch, tree_node(root_mode, old))
    apply_and_check(case, mutant, src, None, "apply of a mutated patch")


MANY_COUNTS = [1000, 2000, 5000, 131_000, 140_000, 400_000]


def case_many(src: Source, case: Case, counts=MANY_COUNTS) -> None:
    root_mode, old = gen_tree(src)
    write_tree(case.target, root_mode, old)
    n = src.pick(counts) if src.below(40) != 39 else 2_000_000  # the review's 6 million, in part
    patch = many_entries_patch(tree_node(root_mode, old), n, src)
    patch_path = case.path("p")
    with open(patch_path, "wb") as fp:
        fp.write(patch)
    before = read_tree(case.target)
    out = run_forked(lambda: apply_folder_patch(case.target, patch_path), src.chance(2), measure=True)
    refused = judge(out, f"apply of a patch adding {n} entries")
    if any(not LEFTOVER_OK.match(x) for x in case.names() if x not in ("t", "canary", "p")):
        raise AssertionError(f"apply of {n} entries left {case.names()} beside the target")
    after = read_tree(case.target)
    if refused:
        count("many: refused")
        if after != before:
            raise AssertionError(f"apply of {n} entries refused ({out['message']}) but changed the target")
    else:
        if n > KNOWN_HASH:
            raise AssertionError(f"a patch naming no folder was applied ({n} entries)")
        count("many: applied")
        links_inside(case.target, after[1])
        if len(after[1]) != len(before[1]) + n:
            raise AssertionError(f"apply of {n} entries gave {len(after[1]) - len(before[1])}")
    # Everything apply allocates is charged to one budget (the body included); the rest is
    # the interpreter's own overhead for the work, which the slack covers.
    bound = memory_budget(0) + 96 * 1024 * 1024
    count("many: entries declared", n)
    STATS["many: peak MiB"] = max(STATS.get("many: peak MiB", 0), out["peak"] >> 20)
    if out["peak"] > bound:
        raise AssertionError(f"apply of a patch adding {n} entries took {out['peak'] >> 20} MiB "
                             f"(bound {bound >> 20} MiB): {out['message']}")


CASES = [case_roundtrip, case_unchecked, case_crafted, case_mutated, case_many]


# The first byte chooses the kind: MANY (seconds a case) gets 16 values of 256, the others 60.
FIRST_BYTE = [0, 60, 120, 180, 240]


def folder_target(data: bytes) -> None:
    """One case from ``data``: its first byte chooses the kind (see FIRST_BYTE)."""
    src = Source(data)
    first = src.byte()
    kind = max(k for k, start in enumerate(FIRST_BYTE) if first >= start)
    count("cases: " + KINDS[kind])
    with Case() as case:
        CASES[kind](src, case)


def case_input(kind: int, seed: int, size: int = 800) -> bytes:
    """The input of a case of ``kind`` made from ``seed`` (tests/test_folder_fuzz.py)."""
    import random
    return bytes([FIRST_BYTE[kind]]) + random.Random(seed * 8 + kind).randbytes(size)
