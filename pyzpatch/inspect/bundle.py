"""Open whatever a user names, the way PyInstaller's bootloader would find the archive in it.

A path can be a one-file executable, a one-folder build (its folder or its executable), a
side-loaded executable (archive in ``NAME.pkg`` beside it), a bare ``.pkg`` CArchive, or a bare
``.pyz``. ``open_bundle`` works out which, parses what is there, and keeps the mapped files open
until ``close``.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field, replace
from typing import Iterator, List, Optional, Tuple

from ..errors import FileAccessError, FormatError, PyzpatchError
from ..formats import binary, carchive, executable, pyz, registry, tar, ziparchive
from ..formats.binary import BinaryLayout
from ..formats.carchive import CArchive
from ..formats.executable import Executable
from ..formats.pyz import Pyz
from ..formats.tar import TarArchive
from ..formats.ziparchive import ZipArchive
from ..fs.filebytes import FileBytes

ONEFILE, ONEDIR, SIDELOAD, PKG, PYZ, ZIP, TAR = "onefile", "onedir", "sideload", "pkg", "pyz", "zip", "tar"
KIND_TITLES = {
    ONEFILE: "one-file executable",
    ONEDIR: "one-folder build",
    SIDELOAD: "side-loaded executable",
    PKG: "CArchive (PKG)",
    PYZ: "PYZ archive",
    ZIP: "zip archive",
    TAR: "tar archive",
}


@dataclass
class Bundle:
    path: str  # what the user named
    kind: str
    archive_file: str  # the file that holds the CArchive (or the PYZ)
    executable_path: Optional[str] = None  # the program file, when there is one
    folder: Optional[str] = None  # root of a one-folder build
    executable: Optional[Executable] = None  # its model, when the archive is embedded in it
    archive: Optional[CArchive] = None
    pyzs: "PyzArchives" = field(default_factory=lambda: PyzArchives())  # (CArchive entry name, model), lazily
    zip: Optional[ZipArchive] = None  # a zip file, zipapp, or interpreter with a zip appended
    tar: Optional[TarArchive] = None  # a tar (a tufup bundle: a one-folder build as one file)
    archive_start: int = 0  # offset of the CArchive in archive_file
    # How the executable around the archive is laid out (ELF, PE, Mach-O; signed or not).
    layout: Optional[BinaryLayout] = None
    _files: List[FileBytes] = field(default_factory=list, repr=False)

    def close(self) -> None:
        self.executable = self.archive = self.zip = self.tar = None
        self.pyzs = PyzArchives()
        for f in self._files:
            f.close()
        self._files = []

    def __enter__(self) -> "Bundle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PyzArchives:
    """A bundle's PYZ archives as ``(name of the CArchive entry, model)`` pairs, each parsed
    (and inflated, if its entry is compressed) only while it is being looked at: an archive can
    hold many compressed PYZ entries, and ``ls``/``extract`` hold at most one inflated at a time.
    Iterating twice parses twice."""

    def __init__(self, entries=(), models=(), source: Optional[str] = None):
        self._entries = list(entries)  # CArchive entries of type PYZ, opened on demand
        self._models = list(models)  # already parsed (a bare .pyz file)
        self.source = source  # the file holding them, named in errors

    def __len__(self) -> int:
        return len(self._entries) + len(self._models)

    def __iter__(self) -> Iterator[Tuple[str, Pyz]]:
        yield from self._models
        for entry in self._entries:
            yield entry.name, _open_pyz(entry, self.source)

    def __getitem__(self, index: int) -> Tuple[str, Pyz]:
        if index < len(self._models):
            return self._models[index]
        entry = self._entries[index - len(self._models)]
        return entry.name, _open_pyz(entry, self.source)


def _open_pyz(entry, source: Optional[str]) -> Pyz:
    try:
        # PyInstaller stores the PYZ uncompressed: parse it in place, without a copy.
        payload = carchive.entry_content(entry) if entry.compressed else entry.data
        return pyz.parse(payload)
    except FormatError as exc:
        exc = exc.within(f"CArchive entry {entry.name!r}")
        raise (exc.with_source(source) if source else exc) from None


def _load_pyzs(archive: CArchive, source: str) -> PyzArchives:
    return PyzArchives(entries=archive.entries_of_type(carchive.PYZ_TYPECODE), source=source)


def sideload_pkg_path(exe_path: str) -> str:
    """Where a side-loaded executable keeps its archive: ``NAME.pkg`` beside it (``.exe`` dropped)."""
    base = exe_path[:-4] if exe_path.lower().endswith(".exe") else exe_path
    return base + ".pkg"


def _open_file(path: str, bundle_path: str) -> Bundle:
    fb = FileBytes(path)
    try:
        data = fb.data
        if not len(data):
            raise PyzpatchError("file is empty", source=path)
        found = registry.recognize(data)
        if found.kind == pyz.NODE_KIND:
            return Bundle(bundle_path, PYZ, path, pyzs=PyzArchives(models=[(os.path.basename(path), found.value)]),
                          _files=[fb])
        if found.kind == ziparchive.NODE_KIND:
            # Bytes before the zip (an interpreter, a shebang) are its prefix.
            return Bundle(bundle_path, ZIP, path, zip=found.value, _files=[fb])
        if found.kind == tar.NODE_KIND:
            return Bundle(bundle_path, TAR, path, tar=found.value, _files=[fb])
        if found.kind == carchive.NODE_KIND:
            bundle = Bundle(bundle_path, PKG, path, archive=found.value, _files=[fb])
        elif found.kind == executable.NODE_KIND:
            exe = found.value
            kind = ONEFILE if carchive.embeds_python_library(exe.archive) else ONEDIR
            start, end = len(exe.head), len(data) - len(exe.tail)
            bundle = Bundle(bundle_path, kind, path, executable_path=path, executable=exe, archive=exe.archive,
                            archive_start=start, layout=binary.inspect(data, start, end), _files=[fb])
            if kind == ONEDIR:
                bundle.folder = os.path.dirname(os.path.abspath(path))
        elif executable.has_sideload_magic(data):
            pkg_path = sideload_pkg_path(path)
            if not os.path.isfile(pkg_path):
                raise PyzpatchError(f"side-loaded executable, but its archive {os.path.basename(pkg_path)} "
                                    f"is not beside it", source=path)
            inner = _open_file(pkg_path, bundle_path)
            inner.kind, inner.executable_path = SIDELOAD, path
            inner.layout = replace(binary.inspect(data, len(data), len(data)), placement=binary.SIDELOADED)
            inner._files.append(fb)
            return inner
        elif found.rejected:
            raise found.rejected[0][1]  # the most specific format whose magic it has
        else:
            raise FormatError("executable", "no PyInstaller archive cookie found; not a PyInstaller executable")
        bundle.pyzs = _load_pyzs(bundle.archive, path)
        return bundle
    except PyzpatchError as exc:
        fb.close()
        raise exc.with_source(path)
    except BaseException:
        fb.close()
        raise


def _looks_like_executable(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and (bool(st.st_mode & 0o111) or path.lower().endswith(".exe"))


def find_folder_executable(folder: str) -> str:
    """The PyInstaller executable at the top of a one-folder build."""
    name = os.path.basename(os.path.normpath(folder))
    preferred = [os.path.join(folder, name), os.path.join(folder, name + ".exe")]
    for candidate in preferred:
        if _looks_like_executable(candidate):
            return candidate
    found = []
    for entry in sorted(os.listdir(folder)):
        candidate = os.path.join(folder, entry)
        if not _looks_like_executable(candidate):
            continue
        with FileBytes(candidate) as fb:
            if executable.find_cookie(fb.data) != -1 or executable.has_sideload_magic(fb.data):
                found.append(candidate)
    if len(found) == 1:
        return found[0]
    if not found:
        raise PyzpatchError("no PyInstaller executable found at the top of this folder", source=folder)
    raise PyzpatchError("several PyInstaller executables in this folder: "
                        + ", ".join(os.path.basename(f) for f in found) + "; name one", source=folder)


def open_bundle(path) -> Bundle:
    """Open ``path`` and parse every archive in it. Raises PyzpatchError naming the file."""
    path = os.fspath(path)
    if os.path.isdir(path):
        bundle = _open_file(find_folder_executable(path), path)
        bundle.folder = os.path.abspath(path)
        if bundle.kind == ONEFILE:
            bundle.kind = ONEDIR  # an unusual one-folder build that also embeds its libraries
        return bundle
    if not os.path.exists(path):
        raise FileAccessError("no such file or folder", source=path)
    return _open_file(path, path)
