"""binary.inspect on real PyInstaller bootloaders (ELF, PE, fat Mach-O) with a fake archive put where
PyInstaller puts it, and on thousands of mutations of their headers (it must never raise).

The Windows and macOS bootloaders come from PyInstaller's platform wheels; the Linux one is the
installed package's. No PyInstaller build runs here: every input is made in memory (or with
``objcopy``, as PyInstaller itself does on Linux)."""
from __future__ import annotations

import importlib.util
import mmap
import random
import shutil
import struct
import subprocess
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from pyzpatch.formats import binary
from pyzpatch.formats.binary import BinaryLayout, inspect

REPO = Path(__file__).resolve().parent.parent
PYINSTALLER_VERSION = "6.22.3"
WHEEL_DIRS = (REPO / ".cache" / "wheels", Path("/tmp/wheels"))
WIN_WHEEL = f"pyinstaller-{PYINSTALLER_VERSION}-py3-none-win_amd64.whl"
MAC_WHEEL = f"pyinstaller-{PYINSTALLER_VERSION}-py3-none-macosx_10_13_universal2.whl"

# A stand-in for a CArchive: distinctive bytes, found again after objcopy by searching for them.
ARCHIVE = random.Random(20240611).randbytes(5000) + b"MEI\014\013\012\013\016" + bytes(80)

PLACEMENTS = {binary.ELF_SECTION, binary.APPENDED, binary.BARE, binary.UNKNOWN}
SYSTEMS = {binary.ELF, binary.PE, binary.MACHO, binary.UNKNOWN}


def wheel_member(wheel: str, member: str) -> bytes:
    for folder in WHEEL_DIRS:
        path = folder / wheel
        if path.is_file():
            with zipfile.ZipFile(path) as zf:
                return zf.read(member)
    pytest.skip(f"{wheel} is in none of {', '.join(map(str, WHEEL_DIRS))} (the install step downloads it "
                f"into {WHEEL_DIRS[0]})")


@pytest.fixture(scope="module")
def linux_run() -> bytes:
    spec = importlib.util.find_spec("PyInstaller")  # finds the package without importing it
    if spec is None or spec.origin is None:
        pytest.skip("PyInstaller is not installed: no Linux bootloader to read")
    path = Path(spec.origin).parent / "bootloader" / "Linux-64bit-intel" / "run"
    if not path.is_file():
        pytest.skip(f"no Linux x86-64 bootloader at {path}")
    return path.read_bytes()


@pytest.fixture(scope="module")
def win_run() -> bytes:
    return wheel_member(WIN_WHEEL, "PyInstaller/bootloader/Windows-64bit-intel/run.exe")


@pytest.fixture(scope="module")
def mac_run() -> bytes:
    return wheel_member(MAC_WHEEL, "PyInstaller/bootloader/Darwin-64bit/run")


def objcopy(*args, cwd: Path) -> None:
    if shutil.which("objcopy") is None:
        pytest.skip("objcopy (binutils) is not installed")
    subprocess.run(["objcopy", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def region(buf: bytes) -> tuple:
    """Where ARCHIVE lies in ``buf``."""
    start = buf.find(ARCHIVE)
    assert start > 0 and buf.find(ARCHIVE, start + 1) == -1
    return start, start + len(ARCHIVE)


def check(layout: BinaryLayout) -> BinaryLayout:
    """The invariants every answer keeps, whatever the input."""
    assert isinstance(layout, BinaryLayout)
    assert layout.system in SYSTEMS and layout.placement in PLACEMENTS
    assert isinstance(layout.arches, tuple) and all(isinstance(a, str) for a in layout.arches)
    assert isinstance(layout.notes, tuple) and all(isinstance(n, str) for n in layout.notes)
    assert layout.signed == bool(layout.signature)
    assert isinstance(layout.title, str) and "\n" not in layout.title
    return layout


# --- ELF -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def elf_with_pydata(linux_run, tmp_path_factory) -> bytes:
    """What PyInstaller makes on Linux: ``objcopy --add-section pydata=PKG`` on the bootloader."""
    folder = tmp_path_factory.mktemp("elf")
    (folder / "run").write_bytes(linux_run)
    (folder / "pkg").write_bytes(ARCHIVE)
    objcopy("--add-section", "pydata=pkg", "run", cwd=folder)
    return (folder / "run").read_bytes()


def test_elf_archive_in_section_pydata(elf_with_pydata):
    start, end = region(elf_with_pydata)
    layout = check(inspect(elf_with_pydata, start, end))
    assert layout == BinaryLayout(system="elf", placement="elf-section", arches=("x86-64",), fat=False,
                                  signed=False, signature="", notes=(binary.NOTE_ELF_HEADERS_FOLLOW,))
    assert layout.title == "ELF, archive in section pydata"


def test_elf_section_that_is_not_exactly_the_archive(elf_with_pydata):
    start, end = region(elf_with_pydata)
    for s, e in ((start + 1, end), (start, end - 1)):
        layout = check(inspect(elf_with_pydata, s, e))
        assert layout.system == "elf" and layout.placement == "unknown"
        assert any(n.startswith("section pydata (") for n in layout.notes), layout.notes
        # The section headers objcopy wrote after the archive make it part of the image.
        assert any("lies inside the ELF image" in n for n in layout.notes), layout.notes


def test_elf_plain_appended(linux_run):
    buf = linux_run + ARCHIVE
    layout = check(inspect(buf, len(linux_run), len(buf)))
    assert (layout.system, layout.placement, layout.arches) == ("elf", "appended", ("x86-64",))
    assert layout.notes == ("no section named pydata",)
    assert layout.title == "ELF, archive appended"
    # The image ends where the bootloader file does: one byte earlier is inside it.
    inside = check(inspect(buf, len(linux_run) - 1, len(buf)))
    assert inside.placement == "unknown"
    assert f"which ends at offset {len(linux_run)}" in inside.notes[-1]


@pytest.mark.parametrize("target", ["elf32-i386", "elf32-big", "elf64-big"])
def test_elf_other_classes_and_byte_orders(tmp_path, target):
    """32-bit and big-endian ELF files (relocatable objects objcopy can make from any bytes)."""
    (tmp_path / "blob").write_bytes(b"some code")
    (tmp_path / "pkg").write_bytes(ARCHIVE)
    objcopy("-I", "binary", "-O", target, "blob", "obj", cwd=tmp_path)
    objcopy("-I", target, "--add-section", "pydata=pkg", "obj", cwd=tmp_path)
    buf = (tmp_path / "obj").read_bytes()
    assert buf[4] == (1 if "32" in target else 2) and buf[5] == (2 if "big" in target else 1)
    layout = check(inspect(buf, *region(buf)))
    assert (layout.system, layout.placement) == ("elf", "elf-section")
    assert layout.arches == (("x86",) if target == "elf32-i386" else ("0x0",))  # EM_NONE for the generic ones


# --- PE ------------------------------------------------------------------------------------

def pe_security_directory_offset(pe: bytes) -> int:
    """File offset of the security data directory entry (independently of the code under test)."""
    (lfanew,) = struct.unpack_from("<I", pe, 0x3C)
    assert pe[lfanew:lfanew + 4] == b"PE\0\0"
    opt = lfanew + 24
    (magic,) = struct.unpack_from("<H", pe, opt)
    dirs = opt + {0x10B: 96, 0x20B: 112}[magic]
    return dirs + 4 * 8


def test_pe_archive_appended(win_run):
    assert win_run[:2] == b"MZ"
    buf = win_run + ARCHIVE
    layout = check(inspect(buf, len(win_run), len(buf)))
    assert layout == BinaryLayout(system="pe", placement="appended", arches=("x86-64",), fat=False,
                                  signed=False, signature="", notes=())
    assert layout.title == "PE (Windows), archive appended, not signed"
    # The image (the last section's raw data) ends exactly where run.exe does.
    inside = check(inspect(buf, len(win_run) - 1, len(buf)))
    assert inside.placement == "unknown"
    assert inside.notes == (f"archive at offset {len(win_run) - 1} lies inside the PE image, "
                            f"which ends at offset {len(win_run)}",)


def test_pe_signed_after_the_archive(win_run):
    """signtool/osslsigncode after the build: a certificate table after the archive, pointed at by
    the security data directory."""
    cert_at = len(win_run) + len(ARCHIVE)
    cert = struct.pack("<IHH", 8 + 1000, 0x0200, 0x0002) + bytes(1000)  # a WIN_CERTIFICATE, PKCS#7 type
    buf = bytearray(win_run + ARCHIVE + cert)
    struct.pack_into("<II", buf, pe_security_directory_offset(win_run), cert_at, len(cert))
    layout = check(inspect(bytes(buf), len(win_run), cert_at))
    assert (layout.system, layout.placement, layout.arches) == ("pe", "appended", ("x86-64",))
    assert layout.signed
    assert layout.signature == f"Authenticode certificate table ({len(cert)} bytes at offset {cert_at})"
    assert layout.notes == (binary.NOTE_CERT_FOLLOWS,)
    assert layout.title == "PE (Windows), archive appended, Authenticode-signed"


def test_pe_certificate_table_elsewhere(win_run):
    buf = bytearray(win_run + ARCHIVE)
    where = pe_security_directory_offset(win_run)
    start, end = len(win_run), len(buf)
    struct.pack_into("<II", buf, where, 0x400, 16)  # before the archive
    assert "certificate table lies before the archive" in inspect(buf, start, end).notes
    struct.pack_into("<II", buf, where, end - 8, 16)  # over the archive's end, and past the file's
    notes = inspect(buf, start, end).notes
    assert "certificate table overlaps the archive" in notes
    assert "certificate table runs past the end of the file" in notes


# --- Mach-O --------------------------------------------------------------------------------
# What PyInstaller does on macOS (building/api.py, utils/osx.py): remove the signatures, append the
# archive to the last slice, extend LC_SYMTAB's string table and the __LINKEDIT segment to the end
# of the file (and the last slice's size in the fat header), then sign (codesign puts the
# signature after the archive, inside __LINKEDIT). The helpers below do the same to bytes.

LC_SEGMENT_64, LC_SYMTAB, LC_CODE_SIGNATURE = 0x19, 0x2, 0x1D


def fat_slices(fat: bytes) -> list:
    assert struct.unpack_from(">I", fat, 0)[0] == 0xCAFEBABE
    (n,) = struct.unpack_from(">I", fat, 4)
    return [struct.unpack_from(">iiIII", fat, 8 + 20 * i) for i in range(n)]


def load_commands(image: bytes) -> dict:
    """{cmd: [offset of the command]} of a thin little-endian 64-bit Mach-O image."""
    assert struct.unpack_from("<I", image, 0)[0] == 0xFEEDFACF
    ncmds, _sizeofcmds = struct.unpack_from("<II", image, 16)
    found, pos = {}, 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", image, pos)
        found.setdefault(cmd, []).append(pos)
        pos += size
    return found


def linkedit_command(image: bytes) -> int:
    for pos in load_commands(image)[LC_SEGMENT_64]:
        if image[pos + 8:pos + 24].rstrip(b"\0") == b"__LINKEDIT":
            return pos
    raise AssertionError("no __LINKEDIT")


def strip_signature(image: bytes) -> bytes:
    """``codesign --remove-signature`` for an image whose signature is its last load command and its
    last bytes (the linker's ad hoc signature on arm64)."""
    image = bytearray(image)
    (pos,) = load_commands(image)[LC_CODE_SIGNATURE]
    dataoff, _datasize = struct.unpack_from("<II", image, pos + 8)
    ncmds, sizeofcmds = struct.unpack_from("<II", image, 16)
    assert pos + 16 == 32 + sizeofcmds and dataoff + _datasize == len(image)
    struct.pack_into("<II", image, 16, ncmds - 1, sizeofcmds - 16)
    image[pos:pos + 16] = bytes(16)
    seg = linkedit_command(image)
    (fileoff,) = struct.unpack_from("<Q", image, seg + 40)
    struct.pack_into("<Q", image, seg + 48, dataoff - fileoff)
    return bytes(image[:dataoff])


def extend_linkedit(image: bytearray, new_size: int) -> None:
    """``osxutils.fix_exe_for_code_signing``: string table and __LINKEDIT reach ``new_size``."""
    (symtab,) = load_commands(image)[LC_SYMTAB]
    (stroff,) = struct.unpack_from("<I", image, symtab + 16)
    struct.pack_into("<I", image, symtab + 20, new_size - stroff)
    seg = linkedit_command(image)
    (fileoff,) = struct.unpack_from("<Q", image, seg + 40)
    struct.pack_into("<Q", image, seg + 32, -(-(new_size - fileoff) // 0x4000) * 0x4000)  # vmsize
    struct.pack_into("<Q", image, seg + 48, new_size - fileoff)  # filesize


def append_archive(image: bytes, archive: bytes = ARCHIVE) -> bytes:
    out = bytearray(image + archive)
    extend_linkedit(out, len(out))
    return bytes(out)


def add_signature(image: bytes, blob_size: int = 1234) -> bytes:
    """Ad hoc signing in outline: an LC_CODE_SIGNATURE after the other load commands (in the header
    padding), its blob at the end of the file, inside __LINKEDIT."""
    out = bytearray(image)
    ncmds, sizeofcmds = struct.unpack_from("<II", out, 16)
    pos = 32 + sizeofcmds
    assert out[pos:pos + 16] == bytes(16), "no header padding for another load command"
    struct.pack_into("<IIII", out, pos, LC_CODE_SIGNATURE, 16, len(out), blob_size)
    struct.pack_into("<II", out, 16, ncmds + 1, sizeofcmds + 16)
    out += b"\xfa\xde\x0c\xc0" + bytes(blob_size - 4)
    seg = linkedit_command(out)
    (fileoff,) = struct.unpack_from("<Q", out, seg + 40)
    struct.pack_into("<Q", out, seg + 48, len(out) - fileoff)
    return bytes(out)


def rebuild_fat(fat: bytes, last_slice: bytes) -> bytes:
    """``fat`` with its last slice replaced (same offset) and the fat header's size for it updated."""
    slices = fat_slices(fat)
    cputype, cpusubtype, offset, _size, align = slices[-1]
    out = bytearray(fat[:offset] + last_slice)
    struct.pack_into(">iiIII", out, 8 + 20 * (len(slices) - 1), cputype, cpusubtype, offset, len(last_slice),
                     align)
    return bytes(out)


def last_slice(fat: bytes) -> bytes:
    _c, _s, offset, size, _a = fat_slices(fat)[-1]
    return fat[offset:offset + size]


def first_slice(fat: bytes) -> bytes:
    _c, _s, offset, size, _a = fat_slices(fat)[0]
    return fat[offset:offset + size]


def test_wheel_bootloader_is_fat_with_an_ad_hoc_signed_arm64_slice(mac_run):
    """As shipped (checked with ``llvm-objdump --macho --private-headers``): x86_64 at 8192 (59744
    bytes, no LC_CODE_SIGNATURE), arm64 at 81920 (89216 bytes, the linker's 816-byte signature)."""
    assert [(c, o, s) for c, _sub, o, s, _a in fat_slices(mac_run)] == [(0x01000007, 8192, 59744),
                                                                       (0x0100000C, 81920, 89216)]
    buf = mac_run + ARCHIVE
    layout = check(inspect(buf, len(mac_run), len(buf)))
    assert (layout.system, layout.fat, layout.arches) == ("macho", True, ("x86_64", "arm64"))
    assert layout.signed and layout.signature == "Mach-O code signature (arm64: 816 bytes)"
    # Appended without PyInstaller's header fix: after the last slice, in none.
    assert layout.placement == "appended"
    assert layout.notes == ("archive appended after the last slice, inside none",)
    assert layout.title == "Mach-O universal (x86_64, arm64), archive appended, code-signed"


@pytest.mark.skipif(shutil.which("llvm-objdump") is None, reason="llvm-objdump is not installed")
def test_wheel_signatures_agree_with_llvm_objdump(mac_run, tmp_path):
    (tmp_path / "run").write_bytes(mac_run)
    for arch, signed in (("x86_64", False), ("arm64", True)):
        out = subprocess.run(["llvm-objdump", "--macho", "--private-headers", f"--arch={arch}", "run"],
                             cwd=tmp_path, capture_output=True, text=True, check=True).stdout
        assert ("LC_CODE_SIGNATURE" in out) == signed
    assert "datasize 816" in out


def test_fat_as_pyinstaller_leaves_it_before_signing(mac_run):
    image = append_archive(strip_signature(last_slice(mac_run)))
    buf = rebuild_fat(mac_run, image)
    start = len(buf) - len(ARCHIVE)
    layout = check(inspect(buf, start, len(buf)))
    assert layout == BinaryLayout(system="macho", placement="appended", arches=("x86_64", "arm64"), fat=True,
                                  signed=False, signature="",
                                  notes=(binary.NOTE_LINKEDIT, "archive covered by the LC_SYMTAB string table"))
    assert layout.title == "Mach-O universal (x86_64, arm64), archive appended inside __LINKEDIT, not signed"


def test_fat_signed_after_the_archive(mac_run):
    x86 = add_signature(first_slice(mac_run), 500)
    assert len(x86) <= 81920 - 8192  # still fits before the arm64 slice
    fat = bytearray(mac_run)
    fat[8192:8192 + len(x86)] = x86
    struct.pack_into(">I", fat, 8 + 12, len(x86))
    image = add_signature(append_archive(strip_signature(last_slice(mac_run))), 2000)
    buf = rebuild_fat(bytes(fat), image)
    start = buf.find(ARCHIVE)
    layout = check(inspect(buf, start, start + len(ARCHIVE)))
    assert (layout.placement, layout.signed) == ("appended", True)
    assert layout.signature == "Mach-O code signatures (x86_64: 500 bytes, arm64: 2000 bytes)"
    assert layout.notes == (binary.NOTE_LINKEDIT, "archive covered by the LC_SYMTAB string table",
                            binary.NOTE_CODESIG_FOLLOWS)
    assert layout.title == "Mach-O universal (x86_64, arm64), archive appended inside __LINKEDIT, code-signed"


def test_fat_archive_in_a_slice_that_is_not_the_last(mac_run):
    _c, _s, offset, size, _a = fat_slices(mac_run)[0]
    layout = check(inspect(mac_run, offset + size - 100, offset + size - 10))
    assert "archive lies in slice 0 (x86_64), not the last slice" in layout.notes
    assert layout.placement == "appended"  # inside the x86_64 slice's __LINKEDIT, as it happens
    assert binary.NOTE_LINKEDIT in layout.notes


def test_fat64_header(mac_run):
    """The same file with a 64-bit fat header (0xcafebabf, fat_arch_64 entries)."""
    buf = bytearray(mac_run + ARCHIVE)
    slices = fat_slices(mac_run)
    struct.pack_into(">II", buf, 0, 0xCAFEBABF, len(slices))
    for i, (cputype, cpusubtype, offset, size, align) in enumerate(slices):
        struct.pack_into(">iiQQII", buf, 8 + 32 * i, cputype, cpusubtype, offset, size, align, 0)
    layout = check(inspect(bytes(buf), len(mac_run), len(buf)))
    assert (layout.system, layout.fat, layout.arches, layout.placement) == ("macho", True, ("x86_64", "arm64"),
                                                                            "appended")


def test_thin_x86_64(mac_run):
    thin = first_slice(mac_run)
    buf = append_archive(thin)
    layout = check(inspect(buf, len(thin), len(buf)))
    assert (layout.system, layout.fat, layout.arches, layout.signed) == ("macho", False, ("x86_64",), False)
    assert layout.title == "Mach-O (x86_64), archive appended inside __LINKEDIT, not signed"
    signed = add_signature(buf, 777)
    layout = check(inspect(signed, len(thin), len(buf)))
    assert layout.signature == "Mach-O code signature (777 bytes)"
    assert layout.notes[-1] == binary.NOTE_CODESIG_FOLLOWS
    assert layout.title == "Mach-O (x86_64), archive appended inside __LINKEDIT, code-signed"
    plain = thin + ARCHIVE  # appended without extending __LINKEDIT
    layout = check(inspect(plain, len(thin), len(plain)))
    assert layout.placement == "appended"
    assert layout.notes == ("archive appended after the Mach-O image, not covered by __LINKEDIT",)
    layout = check(inspect(plain, 100, 200))  # inside the load commands
    assert layout.placement == "unknown"


def test_thin_arm64_with_its_linker_signature(mac_run):
    image = last_slice(mac_run)
    buf = image + ARCHIVE
    layout = check(inspect(buf, len(image), len(buf)))
    assert (layout.arches, layout.signed, layout.signature) == (("arm64",), True, "Mach-O code signature (816 bytes)")
    assert "code signature lies before the archive (it predates the archive)" in layout.notes


@pytest.mark.parametrize("order", [">", "<"])
def test_32_bit_mach_o_in_either_byte_order(order):
    """A minimal 32-bit image (feedface as written by a big-endian ppc or, byte-swapped, a
    little-endian i386 linker): an LC_SEGMENT __LINKEDIT over the archive."""
    cputype, arch = (18, "ppc") if order == ">" else (7, "i386")
    archive_at, linkedit_at = 4096, 1024
    header = struct.pack(f"{order}IiiIIII", 0xFEEDFACE, cputype, 0, 2, 1, 56, 0)
    segment = struct.pack(f"{order}II16sIIIIiiII", 0x1, 56, b"__LINKEDIT", 0x1000, 0x2000, linkedit_at,
                          archive_at + len(ARCHIVE) - linkedit_at, 1, 1, 0, 0)
    buf = (header + segment).ljust(archive_at, b"\0") + ARCHIVE
    assert buf[:4] == (b"\xfe\xed\xfa\xce" if order == ">" else b"\xce\xfa\xed\xfe")
    layout = check(inspect(buf, archive_at, len(buf)))
    assert (layout.system, layout.arches, layout.placement) == ("macho", (arch,), "appended")
    assert layout.notes == (binary.NOTE_LINKEDIT,)
    layout = check(inspect(buf + b"more", archive_at, len(buf) + 4))  # the archive runs out of __LINKEDIT
    assert layout.placement == "unknown"


def test_java_class_is_not_a_fat_file():
    for version in (0x00000041, 0x00000034):  # Java 21, Java 8 (52 is within 64: needs the slice check)
        buf = struct.pack(">II", 0xCAFEBABE, version) + random.Random(version).randbytes(3000) + ARCHIVE
        layout = check(inspect(buf, len(buf) - len(ARCHIVE), len(buf)))
        assert (layout.system, layout.placement, layout.fat) == ("unknown", "appended", False), layout


# --- anything else, and the archive region -------------------------------------------------

def test_unknown_and_bare_and_bad_region(linux_run):
    buf = b"#!/bin/sh\nexec something\n" + ARCHIVE
    layout = check(inspect(buf, 25, len(buf)))
    assert (layout.system, layout.placement) == ("unknown", "appended")
    assert layout.title == "unknown executable format, archive appended"
    # A bare CArchive starts at 0, whatever its first bytes look like (a first entry may be an ELF).
    for head in (b"", linux_run[:4096]):
        bare = check(inspect(head + ARCHIVE, 0, len(head) + len(ARCHIVE)))
        assert (bare.system, bare.placement) == ("unknown", "bare")
        assert bare.title == "bare archive (no executable around it)"
    for start, end in ((-1, 10), (10, 5), (0, len(buf) + 1)):
        layout = check(inspect(buf, start, end))
        assert layout.placement == "unknown" and "does not lie within the file" in layout.notes[0]


def test_every_bytes_like_gives_the_same_answer(elf_with_pydata, tmp_path):
    start, end = region(elf_with_pydata)
    expected = inspect(elf_with_pydata, start, end)
    path = tmp_path / "exe"
    path.write_bytes(elf_with_pydata)
    with open(path, "rb") as fp, mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        assert inspect(mm, start, end) == expected
        # (inspect released its view: the mmap can close, as the with-block does)
    assert inspect(bytearray(elf_with_pydata), start, end) == expected
    assert inspect(memoryview(elf_with_pydata), start, end) == expected
    words = elf_with_pydata + bytes(-len(elf_with_pydata) % 4)
    assert inspect(memoryview(words).cast("I"), start, end) == expected  # any item format: read as bytes


# --- hostile input: mutations of real headers ----------------------------------------------

def mutation_cases(elf_with_pydata, win_run, mac_run):
    """(name, file bytes, archive start, archive end, header regions to mutate)."""
    cases = []
    start, end = region(elf_with_pydata)
    cases.append(("elf", elf_with_pydata, start, end, [(0, 4096), (end, len(elf_with_pydata))]))
    cert_at = len(win_run) + len(ARCHIVE)
    pe = bytearray(win_run + ARCHIVE + bytes(64))
    struct.pack_into("<II", pe, pe_security_directory_offset(win_run), cert_at, 64)
    cases.append(("pe", bytes(pe), len(win_run), cert_at, [(0, 0x400)]))
    fat = rebuild_fat(mac_run, add_signature(append_archive(strip_signature(last_slice(mac_run)))))
    start = fat.find(ARCHIVE)
    cases.append(("fat", fat, start, start + len(ARCHIVE), [(0, 64), (8192, 8192 + 2048), (81920, 81920 + 2048)]))
    thin = append_archive(first_slice(mac_run))
    cases.append(("thin", thin, len(thin) - len(ARCHIVE), len(thin), [(0, 2048)]))
    return cases


INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF)


def test_mutated_headers_never_raise(elf_with_pydata, win_run, mac_run):
    rng = random.Random(1234)
    for name, original, start, end, regions in mutation_cases(elf_with_pydata, win_run, mac_run):
        assert inspect(original, start, end).placement != "unknown", name  # the unmutated file reads well
        buf = bytearray(original)
        view = memoryview(buf)
        outcomes = set()
        for i in range(3000):
            lo, hi = rng.choice(regions)
            pos = rng.randrange(lo, min(hi, len(buf)))
            kind = rng.random()
            if kind < 0.6:  # one byte
                width, new = 1, bytes([rng.choice(INTERESTING) if rng.random() < 0.3 else rng.randrange(256)])
            elif kind < 0.8:  # a word: counts, sizes and offsets at their extremes
                width = rng.choice((2, 4, 8))
                new = rng.choice((b"\xff" * width, b"\x00" * width, rng.randbytes(width),
                                  (len(buf) - rng.randrange(64)).to_bytes(8, "little")[:width]))
            else:  # truncation, inside a header region or anywhere
                cut = pos if rng.random() < 0.7 else rng.randrange(len(buf))
                layout = check(inspect(view[:cut], min(start, cut), min(end, cut)))
                outcomes.add(layout.placement)
                continue
            pos = min(pos, len(buf) - width)
            old = bytes(buf[pos:pos + width])
            buf[pos:pos + width] = new
            try:
                layout = check(inspect(view, start, end))
            except Exception as error:  # report the input that broke it
                raise AssertionError(f"{name}: inspect raised {error!r} with {new!r} at offset {pos}") from None
            outcomes.add(layout.placement)
            buf[pos:pos + width] = old
        view.release()
        assert bytes(buf) == original
        assert "unknown" in outcomes, name  # the mutations did reach the malformed-header paths


# --- a huge file costs what its headers do -------------------------------------------------

def sparse_file(path: Path, head: bytes, size: int) -> Path:
    with open(path, "wb") as fp:
        fp.write(head)
        fp.truncate(size)
    return path


def test_huge_sparse_file_reads_only_headers(win_run, mac_run, tmp_path):
    """A 200 MB file that is a hole but for its headers, read through an mmap: inspect copies
    nothing big (traced allocations) and touches few pages (minor page faults, against those of
    reading an equal file whole)."""
    resource = pytest.importorskip("resource")
    size = 200 * 1024 * 1024

    def minor_faults(action) -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        action()
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    with open(sparse_file(tmp_path / "calibration", b"", size), "rb") as fp, \
            mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        whole = minor_faults(lambda: zlib.crc32(mm))
    # PE: headers, then a hole; the archive from the image's end to the file's.
    pe_path = sparse_file(tmp_path / "huge.exe", win_run, size)
    # fat Mach-O: the arm64 slice's __LINKEDIT (and the fat header's size of it) extended over the hole.
    image = bytearray(strip_signature(last_slice(mac_run)))
    _c, _s, offset, _size, _a = fat_slices(mac_run)[-1]
    extend_linkedit(image, size - offset)
    head = bytearray(rebuild_fat(mac_run, bytes(image)))
    struct.pack_into(">I", head, 8 + 20 + 12, size - offset)
    macho_path = sparse_file(tmp_path / "huge-macho", head, size)
    for path, start, expected in ((pe_path, len(win_run), "PE (Windows), archive appended, not signed"),
                                  (macho_path, len(head),
                                   "Mach-O universal (x86_64, arm64), archive appended inside __LINKEDIT, "
                                   "not signed")):
        with open(path, "rb") as fp, mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            results = []
            tracemalloc.start()
            try:
                faults = minor_faults(lambda: results.append(inspect(mm, start, size)))
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        assert results[0].title == expected
        assert peak < 1 << 20, f"inspect allocated {peak} bytes at its peak for {path.name}"
        assert faults <= max(4, whole // 10), f"{faults} page faults for {path.name}, {whole} to read it whole"
