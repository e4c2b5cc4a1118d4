"""What a bundle holds, as plain data (for ``--json``) and as a readable text tree."""
from __future__ import annotations

import fnmatch
import os
import stat
from typing import Dict, Iterable, List, Optional, Sequence

from ..errors import FormatError
from ..formats import carchive, pyz, tar
from ..formats.pyz import Pyz
from ..fs.walk import walk
from .bundle import KIND_TITLES, Bundle


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def python_version_text(code: int) -> str:
    return f"{code // 100}.{code % 100}"


def _in_pyz(pyz_name: str, func, *args):
    try:
        return func(*args)
    except FormatError as exc:
        raise exc.within(f"CArchive entry {pyz_name!r}") from None


def _row(entry, offset: int, uncompressed_length: int, **more) -> dict:
    """One line of a table of contents (a CArchive entry or a PYZ module), as ``--json`` has it."""
    return {"name": entry.name, "typecode": entry.typecode, "kind": entry.kind, "offset": offset,
            "stored_length": len(entry.data), "uncompressed_length": uncompressed_length, **more}


def _describe_pyz(name: str, model: Pyz, patterns: Sequence[str]) -> dict:
    modules = []
    for entry, offset in zip(model.entries, pyz.entry_offsets(model)):
        if not _matches(entry.name, patterns):
            continue
        modules.append(_row(entry, offset, len(_in_pyz(name, pyz.module_content, entry))))
    return {
        "entry": name,
        "python_magic": model.pymagic.hex(),
        "module_count": len(model.entries),
        "modules": modules,
        "totals": _totals(modules),
    }


def _totals(rows: Iterable[dict]) -> dict:
    rows = list(rows)
    return {
        "count": len(rows),
        "stored_length": sum(r["stored_length"] for r in rows),
        "uncompressed_length": sum(r["uncompressed_length"] for r in rows),
    }


ZIP_METHODS = {0: "stored", 8: "deflated", 12: "bzip2", 14: "lzma"}


def _describe_zip(model, patterns: Sequence[str]) -> dict:
    members = [{
        "name": m.name,
        "method": ZIP_METHODS.get(m.method, f"method {m.method}"),
        "stored_length": len(m.data),
        "uncompressed_length": m.size,
        "crc32": f"{m.crc32:08x}",
    } for m in model.members if _matches(m.name, patterns)]
    return {"prefix_length": len(model.prefix), "member_count": len(model.members),
            "comment": model.comment.decode("utf-8", "replace"), "members": members, "totals": _totals(members)}


def _describe_tar(model, patterns: Sequence[str]) -> dict:
    members = []
    for member, offset in zip(model.members, tar.member_offsets(model)):
        if not _matches(member.name, patterns):
            continue
        row = {"name": member.name, "kind": member.kind, "mode": oct(member.mode), "offset": offset,
               "size": len(member.data)}
        if member.typeflag in (b"1", b"2"):
            row["link"] = member.linkname
        members.append(row)
    return {"member_count": len(model.members), "members": members,
            "total_size": sum(m["size"] for m in members)}


def _folder_files(folder: str, patterns: Sequence[str]) -> List[dict]:
    files = []
    for found in walk(folder):
        st = found.st
        if stat.S_ISDIR(st.st_mode) or not _matches(found.path, patterns):
            continue
        row = {"name": found.path, "size": st.st_size, "mode": oct(st.st_mode & 0o7777)}
        if stat.S_ISLNK(st.st_mode):
            row["link"] = os.readlink(found.full)
            row["size"] = 0
        files.append(row)
    return files


def describe(bundle: Bundle, patterns: Sequence[str] = ()) -> dict:
    """Every fact ``ls`` shows, as JSON-ready data. ``patterns`` are shell globs on names."""
    out: Dict[str, object] = {
        "path": bundle.path,
        "kind": bundle.kind,
        "executable": bundle.executable_path,
        "archive_file": bundle.archive_file,
    }
    if bundle.layout is not None:
        lay = bundle.layout
        out["layout"] = {"title": lay.title, "system": lay.system, "placement": lay.placement,
                         "arches": list(lay.arches), "fat": lay.fat, "signed": lay.signed,
                         "signature": lay.signature, "notes": list(lay.notes)}
    if bundle.archive is not None:
        archive = bundle.archive
        entries = []
        for entry, offset in zip(archive.entries, carchive.entry_offsets(archive)):
            if not _matches(entry.name, patterns):
                continue
            entries.append(_row(entry, offset, entry.uncompressed_length, compressed=entry.compressed))
        exe = bundle.executable
        out["archive"] = {
            "start": bundle.archive_start,
            "length": _archive_length(bundle),
            "head_length": len(exe.head) if exe else 0,
            "tail_length": len(exe.tail) if exe else 0,
            "python_version": python_version_text(archive.python_version),
            "python_library": archive.pylib,
            "entry_count": len(archive.entries),
            "entries": entries,
            "totals": _totals(entries),
        }
    out["pyz"] = [_describe_pyz(name, model, patterns) for name, model in bundle.pyzs]
    if bundle.zip is not None:
        out["zip"] = _describe_zip(bundle.zip, patterns)
    if bundle.tar is not None:
        out["tar"] = _describe_tar(bundle.tar, patterns)
    if bundle.folder:
        files = _folder_files(bundle.folder, patterns)
        out["folder"] = {"path": bundle.folder, "files": files, "file_count": len(files),
                         "total_size": sum(f["size"] for f in files)}
    return out


def _archive_length(bundle: Bundle) -> int:
    exe = bundle.executable
    size = os.path.getsize(bundle.archive_file)
    return size - (len(exe.head) + len(exe.tail) if exe else 0)


def _n(value: int) -> str:
    return f"{value:,}"


def _table(headers: List[str], rows: List[List[str]], right: Sequence[int], indent: str) -> List[str]:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: List[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            last = i == len(cells) - 1
            parts.append(cell if last else (cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])))
        return (indent + "  ".join(parts)).rstrip()

    return [line(headers)] + [line(r) for r in rows]


def render_text(desc: dict) -> str:
    """The listing as an aligned text tree for people."""
    return "\n".join(render_lines(desc))


def render_lines(desc: dict) -> List[str]:
    """The listing's lines (names raw: whoever prints them escapes them, see terminal.py)."""
    lines = [f"{desc['path']}: {KIND_TITLES[desc['kind']]}"]
    layout = desc.get("layout")
    if layout:
        lines.append(f"  layout: {layout['title']}")  # type: ignore[index]
        if layout["signature"]:  # type: ignore[index]
            lines.append(f"  signature: {layout['signature']}")  # type: ignore[index]
    archive: Optional[dict] = desc.get("archive")  # type: ignore[assignment]
    if archive:
        lines.append(
            f"  CArchive in {archive_file_label(desc)}: {_n(archive['length'])} bytes at offset "
            f"{_n(archive['start'])} (head {_n(archive['head_length'])}, tail {_n(archive['tail_length'])}); "
            f"Python {archive['python_version']} ({archive['python_library']})")
        rows = [[e["typecode"], e["kind"], _n(e["stored_length"]), _n(e["uncompressed_length"]),
                 "zlib" if e["compressed"] else "-", e["name"]] for e in archive["entries"]]
        lines += _table(["type", "kind", "stored", "size", "comp", "name"], rows, (2, 3), "    ")
        t = archive["totals"]
        lines.append(f"    {t['count']} of {archive['entry_count']} entries: {_n(t['stored_length'])} bytes "
                     f"stored, {_n(t['uncompressed_length'])} uncompressed")
    for p in desc["pyz"]:  # type: ignore[union-attr]
        lines.append(f"  PYZ {p['entry']} (Python magic {p['python_magic']}):")
        rows = [[m["kind"], _n(m["stored_length"]), _n(m["uncompressed_length"]), m["name"]] for m in p["modules"]]
        lines += _table(["kind", "stored", "size", "name"], rows, (1, 2), "    ")
        t = p["totals"]
        lines.append(f"    {t['count']} of {p['module_count']} modules: {_n(t['stored_length'])} bytes "
                     f"stored, {_n(t['uncompressed_length'])} uncompressed")
    zipped = desc.get("zip")
    if zipped:
        prefix = f" after {_n(zipped['prefix_length'])} bytes of something else" if zipped["prefix_length"] else ""
        lines.append(f"  zip archive{prefix}:")  # type: ignore[index]
        rows = [[m["method"], _n(m["stored_length"]), _n(m["uncompressed_length"]), m["name"]]
                for m in zipped["members"]]  # type: ignore[index]
        lines += _table(["method", "stored", "size", "name"], rows, (1, 2), "    ")
        t = zipped["totals"]  # type: ignore[index]
        lines.append(f"    {t['count']} of {zipped['member_count']} members: {_n(t['stored_length'])} bytes "
                     f"stored, {_n(t['uncompressed_length'])} uncompressed")
    tarred = desc.get("tar")
    if tarred:
        lines.append("  tar archive:")
        rows = [[m["kind"], m["mode"], _n(m["size"]), m["name"] + (f" -> {m['link']}" if "link" in m else "")]
                for m in tarred["members"]]  # type: ignore[index]
        lines += _table(["kind", "mode", "size", "name"], rows, (2,), "    ")
        lines.append(f"    {len(tarred['members'])} of {tarred['member_count']} members, "  # type: ignore[index]
                     f"{_n(tarred['total_size'])} bytes")  # type: ignore[index]
    folder = desc.get("folder")
    if folder:
        lines.append(f"  Folder {folder['path']}:")  # type: ignore[index]
        rows = [[_n(f["size"]), f["name"] + (f" -> {f['link']}" if "link" in f else "")]
                for f in folder["files"]]  # type: ignore[index]
        lines += _table(["size", "name"], rows, (0,), "    ")
        lines.append(f"    {folder['file_count']} files, {_n(folder['total_size'])} bytes")  # type: ignore[index]
    return lines


def archive_file_label(desc: dict) -> str:
    return os.path.basename(str(desc["archive_file"]))
