"""Writing entries and modules of a bundle out as files.

CArchive entries are written decompressed under their own names; code entries (scripts and
bootstrap modules) and PYZ modules become ``.pyc`` files with a header carrying the archive's
Python magic, so ``python -m dis`` and decompilers read them. PYZ modules go under
``<PYZ entry name>_extracted/`` as ``pkg/mod.pyc`` and ``pkg/__init__.pyc``.
"""
from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Sequence

from ..errors import NotFoundError, PyzpatchError
from ..formats import carchive
from ..formats.carchive import PYZ_TYPECODE, CEntry, entry_content
from ..formats.pyz import NAMESPACE, PACKAGE, PyzEntry, module_content
from ..fs.clashes import check_writes
from ..fs.safepath import make_folder_inside, split_archive_name, write_inside
from .bundle import Bundle

CODE_TYPECODES = {carchive.PKG_ITEM_PYSOURCE, carchive.PKG_ITEM_PYMODULE, carchive.PKG_ITEM_PYPACKAGE}
NO_DATA_TYPECODES = {carchive.PKG_ITEM_RUNTIME_OPTION, carchive.PKG_ITEM_DEPENDENCY}  # they carry no bytes


@dataclass
class Extracted:
    name: str  # entry or module name
    where: str  # "carchive" or the PYZ entry's name
    path: Optional[str]  # file or folder written, relative to the output folder
    note: str = ""


def pyc_header(pymagic: bytes) -> bytes:
    """A PEP 552 header: magic, flags 0 (timestamp-based), mtime 0, source size 0."""
    return pymagic + b"\0" * 12


def _module_parts(name: str, typecode: int) -> List[str]:
    parts = name.split(".")
    for part in parts:
        # Each dotted part must be one safe path part on its own (no separator, NUL or drive).
        try:
            ok = bool(part) and split_archive_name(part) == [part]
        except PyzpatchError:
            ok = False
        if not ok:
            raise PyzpatchError(f"module name {name!r} cannot become a file name")
    if typecode == PACKAGE:
        return parts + ["__init__.pyc"]
    if typecode == NAMESPACE:
        return parts
    return parts[:-1] + [parts[-1] + ".pyc"]


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


class _Module(NamedTuple):
    """A PYZ module named for writing, without its bytes: a bundle's PYZ archives are opened one
    at a time (inspect/bundle.py), so a plan must not keep one alive through its entries."""
    pyz_index: int
    name: str
    typecode: int


class _Plan:
    """What to write, decided (and checked for unsafe names) before anything is written."""

    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        self.pymagic = bundle.pyzs[0][1].pymagic if bundle.pyzs else None
        self.carchive: List[CEntry] = []
        self.modules: List[tuple] = []  # (pyz name, _Module)

    def select(self, names: Sequence[str], everything: bool) -> None:
        entries = self.bundle.archive.entries if self.bundle.archive else []
        pyz_modules = [(pname, _Module(i, e.name, e.typecode))
                       for i, (pname, model) in enumerate(self.bundle.pyzs) for e in model.entries]
        if everything:
            self.carchive = list(entries)
            self.modules = pyz_modules
            return
        for pattern in names:
            hit_entries = [e for e in entries if self._match(e.name, pattern)]
            hit_modules = [(p, m) for p, m in pyz_modules if self._match(m.name, pattern)]
            if not hit_entries and not hit_modules:
                raise NotFoundError(f"no CArchive entry or PYZ module named {pattern!r}")
            self.carchive += [e for e in hit_entries if e not in self.carchive]
            self.modules += [pm for pm in hit_modules if pm not in self.modules]

    @staticmethod
    def _match(name: str, pattern: str) -> bool:
        return fnmatch.fnmatchcase(name, pattern) if _is_glob(pattern) else name == pattern

    def entry_target(self, entry: CEntry) -> Optional[List[str]]:
        if entry.typecode in NO_DATA_TYPECODES or entry.typecode == carchive.PKG_ITEM_SYMLINK:
            return None
        parts = split_archive_name(entry.name)
        if entry.typecode in CODE_TYPECODES and self.pymagic:
            parts[-1] += ".pyc"
        return parts

    def module_target(self, pyz_name: str, module: _Module) -> List[str]:
        return split_archive_name(pyz_name + "_extracted") + _module_parts(module.name, module.typecode)


def extract(bundle: Bundle, out_dir: str, names: Sequence[str] = (), everything: bool = False) -> List[Extracted]:
    """Write the named entries and modules (globs allowed), or all of them, into ``out_dir``.

    Every name is checked before the first byte is written; nothing lands outside ``out_dir``.
    """
    try:
        return _extract(bundle, out_dir, names, everything)
    except PyzpatchError as exc:
        raise exc.with_source(bundle.archive_file)


def _extract(bundle: Bundle, out_dir: str, names: Sequence[str], everything: bool) -> List[Extracted]:
    if not names and not everything:
        raise PyzpatchError("name at least one entry or module, or ask for all of them")
    plan = _Plan(bundle)
    plan.select(names, everything)
    targets = []
    for entry in plan.carchive:
        try:
            targets.append(("entry", entry, None, plan.entry_target(entry)))
        except PyzpatchError as exc:
            raise PyzpatchError(f"CArchive entry {entry.name!r}: {exc.problem}") from None
    for pyz_name, module in plan.modules:
        try:
            targets.append(("module", module, pyz_name, plan.module_target(pyz_name, module)))
        except PyzpatchError as exc:
            raise PyzpatchError(f"PYZ {pyz_name!r}: {exc.problem}") from None

    check_writes(out_dir, _claims(targets))  # every clash found before anything is written
    os.makedirs(out_dir, exist_ok=True)
    root = os.path.realpath(out_dir)
    done: List[Optional[Extracted]] = [None] * len(targets)
    wanted = {}  # PYZ index -> positions in targets of its modules
    for n, (what, item, pyz_name, parts) in enumerate(targets):
        if what == "entry":
            done[n] = _write_entry(root, item, parts, plan.pymagic)
        else:
            wanted.setdefault(item.pyz_index, []).append(n)
    # Each PYZ is opened (inflated, if its entry is compressed) once, and let go before the next.
    for index, (pyz_name, model) in enumerate(bundle.pyzs):
        if index not in wanted:
            continue
        by_name = {e.name: e for e in model.entries}
        for n in wanted[index]:
            _, item, _, parts = targets[n]
            done[n] = _write_module(root, by_name[item.name], pyz_name, parts, plan.pymagic)
        del by_name, model
    return [d for d in done if d is not None]


def _claims(targets):
    """(label, parts, is a folder) of every file and folder the targets will write."""
    for what, item, pyz_name, parts in targets:
        if parts is None:
            continue
        if what == "entry":
            yield f"CArchive entry {item.name!r}", parts, False
        else:
            yield f"module {item.name!r} of {pyz_name!r}", parts, item.typecode == NAMESPACE


def _write_entry(root: str, entry: CEntry, parts, pymagic) -> Extracted:
    if parts is None:
        note = "symbolic link, not created" if entry.typecode == carchive.PKG_ITEM_SYMLINK else "no data"
        return Extracted(entry.name, "carchive", None, note)
    data = entry_content(entry)
    if entry.typecode in CODE_TYPECODES and pymagic:
        data = pyc_header(pymagic) + data
    write_inside(root, parts, data)
    if entry.typecode == PYZ_TYPECODE:
        return Extracted(entry.name, "carchive", "/".join(parts), "PYZ archive, written as stored")
    return Extracted(entry.name, "carchive", "/".join(parts))


def _write_module(root: str, module: PyzEntry, pyz_name: str, parts, pymagic) -> Extracted:
    if module.typecode == NAMESPACE:
        make_folder_inside(root, parts)
        return Extracted(module.name, pyz_name, "/".join(parts), "namespace package")
    write_inside(root, parts, pyc_header(pymagic) + module_content(module))
    return Extracted(module.name, pyz_name, "/".join(parts))
