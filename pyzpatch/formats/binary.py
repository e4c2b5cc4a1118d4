"""Which executable format surrounds a CArchive, how the archive sits in it, and whether it is signed.

Just enough ELF, PE and Mach-O header structure for ``pyzpatch ls`` to say, for example,
"PE (Windows), archive appended, Authenticode-signed":

- ELF (Linux): PyInstaller adds the archive as the section ``pydata`` (``objcopy --add-section``),
  so the section-name table and the section header table follow it. ELF files are not signed.
- PE (Windows): the archive is appended after the last section's raw data (the "overlay"). An
  Authenticode signature is a certificate table the security data directory points at; signing
  after the build puts it after the archive.
- Mach-O (macOS), thin or universal ("fat"): the archive is appended to the (last) slice and
  PyInstaller extends ``__LINKEDIT`` (and the ``LC_SYMTAB`` string table) over it, so that the
  code signature ``codesign`` then adds (``LC_CODE_SIGNATURE``) follows the archive.

``inspect`` reads headers only, with ``struct.unpack_from`` at offsets checked against the size
of the buffer (or of the Mach-O slice) first, so a huge mmap costs no more than a small file. It
is total: a malformed or truncated header yields ``placement="unknown"`` and a note saying what
was malformed, never an exception. Every loop is bounded by what fits in the file and by a cap.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import List, Optional, Tuple

from ..errors import FormatError

ELF = "elf"
PE = "pe"
MACHO = "macho"
UNKNOWN = "unknown"

ELF_SECTION = "elf-section"
APPENDED = "appended"
BARE = "bare"
SIDELOADED = "side-loaded"  # set by the caller: the archive is in NAME.pkg beside the file

PYDATA_SECTION = b"pydata"

# Caps on the counts a header may claim (each is also bounded by what fits in the file).
MAX_SECTIONS = 65536
MAX_SEGMENTS = 65536
MAX_LOAD_COMMANDS = 4096
MAX_FAT_ARCHES = 64

# Notes that the title also reads, so they are spelled once.
NOTE_LINKEDIT = "archive covered by __LINKEDIT"
NOTE_ELF_HEADERS_FOLLOW = "ELF section headers follow the archive"
NOTE_CERT_FOLLOWS = "certificate table follows the archive"
NOTE_CODESIG_FOLLOWS = "code signature follows the archive"

ELF_MACHINES = {
    0x03: "x86", 0x08: "mips", 0x14: "ppc", 0x15: "ppc64", 0x16: "s390", 0x28: "arm",
    0x3E: "x86-64", 0xB7: "aarch64", 0xF3: "riscv", 0x102: "loongarch",
}
PE_MACHINES = {0x14C: "x86", 0x8664: "x86-64", 0xAA64: "arm64", 0x1C4: "arm", 0x200: "ia64"}
MACHO_CPUS = {
    7: "i386", 0x01000007: "x86_64", 12: "arm", 0x0100000C: "arm64", 0x0200000C: "arm64_32",
    18: "ppc", 0x01000012: "ppc64",
}
MACHO_ARM64E_SUBTYPE = 2

_SHT_NOBITS = 8
_SHN_XINDEX = 0xFFFF

_LC_SEGMENT = 0x1
_LC_SYMTAB = 0x2
_LC_SEGMENT_64 = 0x19
_LC_CODE_SIGNATURE = 0x1D

_PE_SECURITY_DIRECTORY = 4

FAT_MAGIC = 0xCAFEBABE
FAT_MAGIC_64 = 0xCAFEBABF
_MACHO_MAGICS = {  # the first four bytes, read little-endian: (byte order, 64-bit)
    0xFEEDFACE: ("<", False), 0xFEEDFACF: ("<", True),
    0xCEFAEDFE: (">", False), 0xCFFAEDFE: (">", True),
}


@dataclass(frozen=True)
class BinaryLayout:
    system: str  # ELF, PE, MACHO or UNKNOWN
    placement: str  # ELF_SECTION, APPENDED, BARE or UNKNOWN
    arches: tuple = ()  # ("x86-64",) for ELF and PE, ("x86_64", "arm64") for a fat Mach-O; () if unknown
    fat: bool = False  # a Mach-O universal file
    signed: bool = False  # PE: a certificate table; Mach-O: LC_CODE_SIGNATURE in any slice
    signature: str = ""  # a short description of the signature, or ""
    notes: tuple = ()  # facts worth telling, malformed headers among them

    @property
    def title(self) -> str:
        """One line for a person: the format, where the archive sits, whether it is signed."""
        arches = ", ".join(self.arches)
        if self.system == ELF:
            name = "ELF"
        elif self.system == PE:
            name = "PE (Windows)"
        elif self.system == MACHO:
            name = "Mach-O universal" if self.fat else "Mach-O"
            if arches:
                name += f" ({arches})"
        else:
            name = "unknown executable format"
        if self.placement == ELF_SECTION:
            where = "archive in section pydata"
        elif self.placement == APPENDED:
            where = "archive appended inside __LINKEDIT" if NOTE_LINKEDIT in self.notes else "archive appended"
        elif self.placement == SIDELOADED:
            where = "archive side-loaded from the .pkg beside it"
        elif self.placement == BARE:
            where = "bare archive (no executable around it)"
            return where
        else:
            where = "archive placement unknown"
        parts = [name, where]
        if self.system == PE:
            parts.append("Authenticode-signed" if self.signed else "not signed")
        elif self.system == MACHO:
            parts.append("code-signed" if self.signed else "not signed")
        return ", ".join(parts)


class _Found:
    """What ``inspect`` has learnt so far; kept when a later header turns out malformed."""

    def __init__(self, system: str):
        self.system = system
        self.placement = UNKNOWN
        self.arches: List[str] = []
        self.fat = False
        self.signed = False
        self.signature = ""
        self.notes: List[str] = []

    def malformed(self, error: FormatError) -> None:
        self.notes.append(f"malformed {error.field}: {error.detail}")

    def layout(self) -> BinaryLayout:
        return BinaryLayout(system=self.system, placement=self.placement, arches=tuple(self.arches),
                            fat=self.fat, signed=self.signed, signature=self.signature,
                            notes=tuple(self.notes))


class _Reader:
    """Bounded reads from ``view[base:limit]``; offsets given are relative to ``base``."""

    def __init__(self, view, base: int, limit: int, what: str):
        self.view = view
        self.base = base
        self.size = limit - base
        self.what = what

    def unpack(self, fmt: str, offset: int, field: str) -> tuple:
        size = struct.calcsize(fmt)
        if offset < 0 or offset > self.size or size > self.size - offset:
            raise FormatError(field, f"{size} bytes at offset {offset} run past the end of the "
                                     f"{self.what} ({self.size} bytes)")
        return struct.unpack_from(fmt, self.view, self.base + offset)

    def raw(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (fewer at the end, none past it): for names only."""
        if offset < 0 or offset >= self.size:
            return b""
        end = self.base + offset + min(length, self.size - offset)
        return bytes(self.view[self.base + offset:end])

    def table(self, offset: int, count: int, entry_size: int, cap: int, field: str) -> None:
        """Check that ``count`` entries of ``entry_size`` bytes at ``offset`` fit (and are at most ``cap``)."""
        if count > cap:
            raise FormatError(field, f"{count} entries, more than the {cap} allowed")
        if offset < 0 or offset > self.size or count * entry_size > self.size - offset:
            raise FormatError(field, f"{count} entries of {entry_size} bytes at offset {offset} run past "
                                     f"the end of the {self.what} ({self.size} bytes)")


def inspect(buf, archive_start: int, archive_end: int) -> BinaryLayout:
    """The layout of the executable ``buf`` (bytes, memoryview or mmap: the whole file) whose
    CArchive occupies ``buf[archive_start:archive_end]``. Never raises on malformed headers."""
    with memoryview(buf) as outer, outer.cast("B") as view:
        return _inspect(view, archive_start, archive_end).layout()


def _inspect(view, start: int, end: int) -> _Found:
    size = len(view)
    if not 0 <= start <= end <= size:
        found = _Found(UNKNOWN)
        found.notes.append(f"archive region {start}..{end} does not lie within the file ({size} bytes)")
        return found
    if start == 0:
        found = _Found(UNKNOWN)  # nothing precedes the archive: whatever its first bytes look like
        found.placement = BARE
        return found
    head = bytes(view[:4])
    if head == b"\x7fELF":
        return _guard(_Found(ELF), _elf, view, start, end)
    if head[:2] == b"MZ":
        return _guard(_Found(PE), _pe, view, start, end)
    if len(head) == 4:
        (magic_le,) = struct.unpack("<I", head)
        (magic_be,) = struct.unpack(">I", head)
        if magic_le in _MACHO_MAGICS:
            return _guard(_Found(MACHO), _macho_thin, view, start, end)
        if magic_be in (FAT_MAGIC, FAT_MAGIC_64):
            return _fat(view, start, end, magic_be)
    found = _Found(UNKNOWN)
    found.placement = APPENDED
    return found


def _guard(found: _Found, reader, view, start: int, end: int) -> _Found:
    try:
        reader(found, view, start, end)
    except FormatError as error:
        found.placement = UNKNOWN
        found.malformed(error)
    return found


def _placed_after(found: _Found, image_end: int, start: int, what: str) -> None:
    if start >= image_end:
        found.placement = APPENDED
    else:
        found.placement = UNKNOWN
        found.notes.append(f"archive at offset {start} lies inside the {what}, which ends at offset {image_end}")


# --- ELF -----------------------------------------------------------------------------------

def _elf(found: _Found, view, start: int, end: int) -> None:
    r = _Reader(view, 0, len(view), "file")
    ei_class, ei_data = r.unpack("BB", 4, "ELF identification")
    if ei_class not in (1, 2):
        raise FormatError("ELF identification", f"class {ei_class}, expected 1 (32-bit) or 2 (64-bit)")
    if ei_data not in (1, 2):
        raise FormatError("ELF identification", f"data encoding {ei_data}, expected 1 (LSB) or 2 (MSB)")
    e = "<" if ei_data == 1 else ">"
    is64 = ei_class == 2
    addr = "Q" if is64 else "I"
    (_type, machine, _version, _entry, phoff, shoff, _flags, ehsize, phentsize, phnum, shentsize, shnum,
     shstrndx) = r.unpack(f"{e}HHI{addr}{addr}{addr}IHHHHHH", 16, "ELF header")
    found.arches.append(ELF_MACHINES.get(machine, f"0x{machine:x}"))

    sh_fmt = f"{e}IIQQQQIIQQ" if is64 else f"{e}IIIIIIIIII"
    sh_size_min = struct.calcsize(sh_fmt)

    def section(index: int) -> tuple:
        """(name, type, offset, size, link, info) of section ``index``."""
        field = f"ELF section header {index}"
        # The same field order in both classes; only the widths differ.
        name, stype, _flags, _addr, offset, length, link, info = r.unpack(sh_fmt, shoff + index * shentsize,
                                                                          field)[:8]
        return name, stype, offset, length, link, info

    sections = []
    if shoff:
        if shentsize < sh_size_min:
            raise FormatError("ELF header", f"section header size {shentsize}, at least {sh_size_min} expected")
        count = shnum
        if count == 0:  # extended numbering: the count is section 0's size
            count = section(0)[3]
        r.table(shoff, count, shentsize, MAX_SECTIONS, "ELF section header table")
        if shstrndx == _SHN_XINDEX:
            shstrndx = section(0)[4]
        sections = [section(i) for i in range(count)]
        image_end = shoff + count * shentsize
    else:
        image_end = 0
    image_end = max(image_end, ehsize)

    if phoff and phnum:
        ph_fmt = f"{e}IIQQQQQQ" if is64 else f"{e}IIIIIIII"
        ph_size_min = struct.calcsize(ph_fmt)
        if phentsize < ph_size_min:
            raise FormatError("ELF header", f"program header size {phentsize}, at least {ph_size_min} expected")
        r.table(phoff, phnum, phentsize, MAX_SEGMENTS, "ELF program header table")
        image_end = max(image_end, phoff + phnum * phentsize)
        for i in range(phnum):
            fields = r.unpack(ph_fmt, phoff + i * phentsize, f"ELF program header {i}")
            p_offset, p_filesz = (fields[2], fields[5]) if is64 else (fields[1], fields[4])
            if p_offset <= len(view) and p_filesz <= len(view) - p_offset:
                image_end = max(image_end, p_offset + p_filesz)
            # (a segment claiming more than the file holds adds nothing a reader could find)

    pydata = None
    if sections and shstrndx != 0:  # (index 0: the file names no section-name table)
        if shstrndx >= len(sections):
            raise FormatError("ELF header", f"section-name table index {shstrndx} is not among the "
                                            f"{len(sections)} sections")
        _n, _t, str_off, str_len, _l, _i = sections[shstrndx]
        if str_off > len(view) or str_len > len(view) - str_off:
            raise FormatError("ELF section-name table", f"{str_len} bytes at offset {str_off} run past the "
                                                        f"end of the file ({len(view)} bytes)")
        names = _Reader(view, str_off, str_off + str_len, "section-name table")
        wanted = PYDATA_SECTION + b"\0"
        for name, _t, offset, length, _l, _i in sections:
            if names.raw(name, len(wanted)) == wanted:
                pydata = (offset, length)
                break
    for _n, stype, offset, length, _l, _i in sections:
        if stype != _SHT_NOBITS and offset <= len(view) and length <= len(view) - offset:
            image_end = max(image_end, offset + length)
        # (a section claiming more than the file holds adds nothing a reader could find)

    if sections and shoff >= end:
        found.notes.append(NOTE_ELF_HEADERS_FOLLOW)
    if pydata is not None:
        offset, length = pydata
        if offset == start and length == end - start:
            found.placement = ELF_SECTION
            return
        found.notes.append(f"section pydata ({length} bytes at offset {offset}) is not the archive "
                           f"({end - start} bytes at offset {start})")
    elif sections:
        found.notes.append("no section named pydata")
    _placed_after(found, image_end, start, "ELF image")


# --- PE ------------------------------------------------------------------------------------

def _pe(found: _Found, view, start: int, end: int) -> None:
    size = len(view)
    r = _Reader(view, 0, size, "file")
    (lfanew,) = r.unpack("<I", 0x3C, "MZ header")
    (signature,) = r.unpack("4s", lfanew, "PE signature")
    if signature != b"PE\0\0":
        raise FormatError("PE signature", f"{signature!r} at offset {lfanew}, expected b'PE\\0\\0'")
    machine, nsections, _stamp, symtab, nsymbols, opt_size, _chars = r.unpack("<HHIIIHH", lfanew + 4,
                                                                              "COFF header")
    found.arches.append(PE_MACHINES.get(machine, f"0x{machine:x}"))
    opt = lfanew + 24
    if opt + opt_size > size:
        raise FormatError("PE optional header", f"{opt_size} bytes at offset {opt} run past the end of the "
                                                f"file ({size} bytes)")
    opt_r = _Reader(view, opt, opt + opt_size, "optional header")
    (magic,) = opt_r.unpack("<H", 0, "PE optional header")
    if magic == 0x10B:
        count_at, dirs_at = 92, 96
    elif magic == 0x20B:
        count_at, dirs_at = 108, 112
    else:
        raise FormatError("PE optional header", f"magic 0x{magic:x}, expected 0x10b (PE32) or 0x20b (PE32+)")
    (ndirs,) = opt_r.unpack("<I", count_at, "PE optional header")
    if ndirs > _PE_SECURITY_DIRECTORY:
        cert_off, cert_len = opt_r.unpack("<II", dirs_at + 8 * _PE_SECURITY_DIRECTORY,
                                          "PE security data directory")
        if cert_len:
            found.signed = True
            found.signature = f"Authenticode certificate table ({cert_len} bytes at offset {cert_off})"
            if cert_off > size or cert_len > size - cert_off:
                found.notes.append("certificate table runs past the end of the file")
            if cert_off >= end:
                found.notes.append(NOTE_CERT_FOLLOWS)
            elif cert_off + cert_len <= start:
                found.notes.append("certificate table lies before the archive")
            else:
                found.notes.append("certificate table overlaps the archive")

    table = opt + opt_size
    r.table(table, nsections, 40, MAX_SECTIONS, "PE section table")
    image_end = table + 40 * nsections
    for i in range(nsections):
        name, _vsize, _vaddr, raw_size, raw_ptr = r.unpack("<8sIIII", table + 40 * i, f"PE section {i}")
        if raw_size:
            if raw_ptr > size or raw_size > size - raw_ptr:
                label = name.rstrip(b"\0").decode("ascii", "replace")
                raise FormatError(f"PE section {i} ({label})", f"{raw_size} bytes of raw data at offset {raw_ptr} "
                                                               f"run past the end of the file ({size} bytes)")
            image_end = max(image_end, raw_ptr + raw_size)
    if symtab:  # a COFF symbol table (MinGW builds keep one) and the string table after it
        strings = symtab + 18 * nsymbols
        if strings <= size - 4:
            (strings_len,) = r.unpack("<I", strings, "COFF string table")
            if strings_len <= size - strings:
                image_end = max(image_end, strings + max(strings_len, 4))
            else:
                found.notes.append("COFF string table runs past the end of the file")
        else:
            found.notes.append("COFF symbol table runs past the end of the file")
    _placed_after(found, image_end, start, "PE image")


# --- Mach-O --------------------------------------------------------------------------------

@dataclass
class _Slice:
    """One Mach-O image's header facts; offsets absolute in the file."""
    base: int
    limit: int
    arch: str
    image_end: int
    linkedit: Optional[Tuple[int, int]] = None  # (start, end)
    strings: Optional[Tuple[int, int]] = None  # LC_SYMTAB string table (start, end)
    codesig: Optional[Tuple[int, int]] = None  # LC_CODE_SIGNATURE (start, end)
    overruns: tuple = ()  # names of regions that run past the slice


def _macho_arch(cputype: int, cpusubtype: int) -> str:
    if cputype == 0x0100000C and cpusubtype & 0xFF == MACHO_ARM64E_SUBTYPE:
        return "arm64e"
    return MACHO_CPUS.get(cputype, f"0x{cputype & 0xFFFFFFFF:x}")


def _macho_slice(view, base: int, limit: int, label: str) -> _Slice:
    r = _Reader(view, base, limit, label)
    (magic,) = r.unpack("<I", 0, f"{label} header")
    if magic not in _MACHO_MAGICS:
        raise FormatError(f"{label} header", f"magic 0x{magic:08x} is not a Mach-O magic")
    e, is64 = _MACHO_MAGICS[magic]
    cputype, cpusubtype, _filetype, ncmds, sizeofcmds, _flags = r.unpack(f"{e}iiIIII", 4, f"{label} header")
    header_size = 32 if is64 else 28
    if ncmds > MAX_LOAD_COMMANDS:
        raise FormatError(f"{label} header", f"{ncmds} load commands, more than the {MAX_LOAD_COMMANDS} allowed")
    if header_size > r.size or sizeofcmds > r.size - header_size:
        raise FormatError(f"{label} header", f"{sizeofcmds} bytes of load commands run past the end of the "
                                             f"{label} ({r.size} bytes)")
    found = _Slice(base=base, limit=limit, arch=_macho_arch(cputype, cpusubtype),
                   image_end=base + header_size + sizeofcmds)
    overruns = []

    def region(offset: int, length: int, what: str) -> Tuple[int, int]:
        if length and (offset > r.size or length > r.size - offset):
            overruns.append(what)
        return base + offset, base + offset + length

    pos = header_size
    cmds_end = header_size + sizeofcmds
    for i in range(ncmds):
        field = f"{label} load command {i}"
        if cmds_end - pos < 8:
            raise FormatError(field, f"at offset {pos}, past the {sizeofcmds} bytes of load commands")
        cmd, cmdsize = r.unpack(f"{e}II", pos, field)
        if cmdsize < 8 or cmdsize > cmds_end - pos:
            raise FormatError(field, f"size {cmdsize} does not fit the {cmds_end - pos} bytes of load commands left")
        body = _Reader(view, base + pos, base + pos + cmdsize, f"load command ({cmdsize} bytes)")
        if cmd in (_LC_SEGMENT_64, _LC_SEGMENT):
            fmt = f"{e}16sQQQQ" if cmd == _LC_SEGMENT_64 else f"{e}16sIIII"
            segname, _vmaddr, _vmsize, fileoff, filesize = body.unpack(fmt, 8, field)
            name = segname.split(b"\0", 1)[0]
            seg = region(fileoff, filesize, name.decode("ascii", "replace") or "segment")
            if filesize:
                found.image_end = max(found.image_end, min(seg[1], limit))
            if name == b"__LINKEDIT" and found.linkedit is None:
                found.linkedit = seg
        elif cmd == _LC_SYMTAB:
            _symoff, _nsyms, stroff, strsize = body.unpack(f"{e}IIII", 8, field)
            found.strings = region(stroff, strsize, "string table")
        elif cmd == _LC_CODE_SIGNATURE:
            dataoff, datasize = body.unpack(f"{e}II", 8, field)
            found.codesig = region(dataoff, datasize, "code signature")
            found.image_end = max(found.image_end, min(found.codesig[1], limit))
        pos += cmdsize
    found.overruns = tuple(overruns)
    return found


def _macho_place(found: _Found, sl: _Slice, start: int, end: int) -> None:
    """Placement and notes for the archive ``[start, end)`` inside (or after) slice ``sl``."""
    for what in sl.overruns:
        found.notes.append(f"{what} runs past the end of the {sl.arch} image")
    if sl.linkedit is not None and sl.linkedit[0] <= start and end <= sl.linkedit[1]:
        found.placement = APPENDED
        found.notes.append(NOTE_LINKEDIT)
        if sl.strings is not None and sl.strings[0] <= start and end <= sl.strings[1]:
            found.notes.append("archive covered by the LC_SYMTAB string table")
    elif start >= sl.image_end:
        found.placement = APPENDED
        found.notes.append("archive appended after the Mach-O image, not covered by __LINKEDIT")
    else:
        found.placement = UNKNOWN
        found.notes.append(f"archive at offset {start} lies inside the Mach-O image, outside __LINKEDIT")
    if sl.codesig is not None:
        if sl.codesig[0] >= end:
            found.notes.append(NOTE_CODESIG_FOLLOWS)
        elif sl.codesig[1] <= start:
            found.notes.append("code signature lies before the archive (it predates the archive)")
        else:
            found.notes.append("code signature overlaps the archive")


def _macho_thin(found: _Found, view, start: int, end: int) -> None:
    sl = _macho_slice(view, 0, len(view), "Mach-O")
    found.arches.append(sl.arch)
    if sl.codesig is not None:
        found.signed = True
        found.signature = f"Mach-O code signature ({sl.codesig[1] - sl.codesig[0]} bytes)"
    _macho_place(found, sl, start, end)


def _fat(view, start: int, end: int, magic: int) -> _Found:
    found = _Found(MACHO)
    found.fat = True
    size = len(view)
    r = _Reader(view, 0, size, "file")
    try:
        (nfat,) = r.unpack(">I", 4, "Mach-O fat header")
        if nfat > MAX_FAT_ARCHES:
            # 0xcafebabe is also a Java class file's magic, followed by its version (45 and up).
            other = _Found(UNKNOWN)
            other.placement = APPENDED
            other.notes.append(f"magic 0x{magic:08x} with {nfat} architectures: not a Mach-O universal file")
            return other
        fmt, entry_size = (">iiQQII", 32) if magic == FAT_MAGIC_64 else (">iiIII", 20)
        r.table(8, nfat, entry_size, MAX_FAT_ARCHES, "Mach-O fat architecture table")
        arches = []
        for i in range(nfat):
            cputype, cpusubtype, offset, length = r.unpack(fmt, 8 + entry_size * i,
                                                           f"Mach-O fat architecture {i}")[:4]
            arches.append((_macho_arch(cputype, cpusubtype), offset, length))
    except FormatError as error:
        found.malformed(error)
        return found
    found.arches = [a for a, _o, _l in arches]

    slices: List[Optional[_Slice]] = []
    for i, (arch, offset, length) in enumerate(arches):
        label = f"Mach-O slice {i} ({arch})"
        try:
            if offset > size or length > size - offset:
                raise FormatError(label, f"{length} bytes at offset {offset} run past the end of the file "
                                         f"({size} bytes)")
            slices.append(_macho_slice(view, offset, offset + length, label))
        except FormatError as error:
            found.malformed(error)
            slices.append(None)
    if arches and all(s is None for s in slices) and not any(
            offset <= size - 4 and bytes(view[offset:offset + 4]) in _MAGIC_BYTES for _a, offset, _l in arches):
        # No slice even starts like a Mach-O image: a Java class file, most likely.
        other = _Found(UNKNOWN)
        other.placement = APPENDED
        other.notes.append(f"magic 0x{magic:08x}, but no Mach-O image in its {nfat} architectures: "
                           f"not a Mach-O universal file")
        return other

    signed = [(s.arch, s.codesig[1] - s.codesig[0]) for s in slices if s is not None and s.codesig is not None]
    if signed:
        found.signed = True
        sizes = ", ".join(f"{arch}: {n} bytes" for arch, n in signed)
        found.signature = f"Mach-O code signature{'s' if len(signed) > 1 else ''} ({sizes})"

    holder = None
    for i, (arch, offset, length) in enumerate(arches):
        if offset <= start and end - offset <= length:
            holder = i
            break
    if holder is None:
        ends = [offset + length for _a, offset, length in arches]
        if start >= max(ends, default=8 + entry_size * nfat):
            found.placement = APPENDED
            found.notes.append("archive appended after the last slice, inside none")
        else:
            found.notes.append(f"archive at offset {start} is inside no slice")
        return found
    if holder != len(arches) - 1:
        found.notes.append(f"archive lies in slice {holder} ({arches[holder][0]}), not the last slice")
    if slices[holder] is None:
        found.notes.append(f"the slice holding the archive ({arches[holder][0]}) is malformed")
        return found
    _macho_place(found, slices[holder], start, end)
    return found


_MAGIC_BYTES = {struct.pack("<I", m) for m in _MACHO_MAGICS}
