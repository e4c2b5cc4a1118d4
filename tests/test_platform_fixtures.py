"""The Windows and macOS fixtures of fixtures/platforms.py: assembled as PyInstaller's
EXE.assemble does on those systems, from the bootloaders of PyInstaller's own wheels and the PKG
of a real Linux build."""
from __future__ import annotations

import struct
import time
import zipfile
from pathlib import Path

import pytest

from fixtures import platforms

PyInstaller_readers = pytest.importorskip("PyInstaller.archive.readers")
pefile = pytest.importorskip("pefile")
MachO = pytest.importorskip("macholib.MachO").MachO
mach_o = pytest.importorskip("macholib.mach_o")

VERSIONS = ("6.22.3", "5.13.2")
WIN_LAYOUTS = ("win-onefile", "win-onefile-signed", "win-onedir")
MAC_LAYOUTS = ("mac-onefile-x86_64", "mac-onefile-universal2")
CASES = [(layout, version) for version in VERSIONS for layout in platforms.LAYOUTS]


def _pair(request, layout, version):
    pairs = request.getfixturevalue("platform_pairs_pyi6" if version.startswith("6.") else "platform_pairs_pyi5")
    return pairs[layout]


def _exe(result: Path) -> Path:
    """The executable of a result (the folder's NAME.exe for win-onedir)."""
    return result / (result.name + ".exe") if result.is_dir() else result


def _linux_exe(result: Path) -> Path:
    source = Path(platforms.read_meta(result)["source"])
    return source / source.name if source.is_dir() else source


def _toc_names(path) -> list:
    return sorted(PyInstaller_readers.CArchiveReader(str(path)).toc)


# ---------------------------------------------------------------------------
# Pieces, on the wheels' bootloaders (no PyInstaller build needed)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_wheels_hold_the_bootloaders(platform_wheels, version):
    run_exe = platforms.read_bootloader(version, "win")
    assert run_exe[:2] == b"MZ"
    pe = pefile.PE(data=run_exe, fast_load=True)
    assert pe.FILE_HEADER.Machine == 0x8664  # AMD64
    fat = platforms.read_bootloader(version, "mac")
    assert fat[:4] == b"\xca\xfe\xba\xbe"
    assert [platforms._arch_name(s[0], s[1]) for s in platforms._fat_slices(fat)] == ["x86_64", "arm64"]


@pytest.mark.parametrize("version", VERSIONS)
def test_pe_checksum_matches_pefile(platform_wheels, version):
    run_exe = platforms.read_bootloader(version, "win")
    for data in (run_exe, run_exe + b"\x01", run_exe + bytes(range(256)) * 3 + b"xyz"):
        pe = pefile.PE(data=data, fast_load=True)
        assert platforms.pe_checksum(data) == pe.generate_checksum()


@pytest.mark.parametrize("version", VERSIONS)
def test_remove_macho_signature(platform_wheels, version):
    fat = platforms.read_bootloader(version, "mac")
    slices = platforms._fat_slices(fat)
    arm64 = platforms.thin_macho(fat, "arm64")
    x86_64 = platforms.thin_macho(fat, "x86_64")
    assert arm64 == fat[slices[1][2]:slices[1][2] + slices[1][3]]

    def linkedit_and_sig(data):
        _hdr, cmds = platforms._load_commands(data)
        seg = [struct.unpack_from("<II16sQQQQ", data, pos) for cmd, pos, _ in cmds
               if cmd == platforms.LC_SEGMENT_64
               and struct.unpack_from("<16s", data, pos + 8)[0].rstrip(b"\0") == b"__LINKEDIT"][0]
        sig = [struct.unpack_from("<IIII", data, pos) for cmd, pos, _ in cmds if cmd == platforms.LC_CODE_SIGNATURE]
        return _hdr, seg, sig

    hdr, seg, sig = linkedit_and_sig(arm64)
    assert sig, "the wheel's arm64 slice carries a (linker) signature"
    _cmd, cmdsize, dataoff, datasize = sig[0]
    assert dataoff + datasize == len(arm64)
    _hdr, cmds = platforms._load_commands(arm64)
    stroff, strsize = [struct.unpack_from("<II", arm64, pos + 16) for cmd, pos, _ in cmds
                       if cmd == platforms.LC_SYMTAB][0]
    strings_end = stroff + strsize  # the string table is the last linkedit data before the signature
    assert 0 <= dataoff - strings_end < 16 and arm64[strings_end:dataoff] == bytes(dataoff - strings_end)
    unsigned = platforms.remove_macho_signature(arm64)
    hdr2, seg2, sig2 = linkedit_and_sig(unsigned)
    assert not sig2
    assert len(unsigned) == strings_end  # the signature and the alignment padding before it are cut
    assert hdr2[4] == hdr[4] - 1 and hdr2[5] == hdr[5] - cmdsize  # ncmds, sizeofcmds
    assert seg2[6] == seg[6] - (len(arm64) - strings_end)  # filesize
    assert seg2[4] == seg[4]  # vmsize: codesign_allocate never shrinks it
    assert seg2[5] + seg2[6] == len(unsigned)
    # The freed load command bytes are zero, everything else before the signature unchanged.
    end_cmds = 32 + hdr2[5]
    assert unsigned[end_cmds:end_cmds + cmdsize] == bytes(cmdsize)
    assert unsigned[end_cmds + cmdsize:] == arm64[end_cmds + cmdsize:strings_end]
    assert platforms.remove_macho_signature(unsigned) == unsigned
    assert platforms.remove_macho_signature(x86_64) == x86_64  # the x86_64 slice is unsigned

    fat_unsigned = platforms.remove_macho_signature(fat)
    new_slices = platforms._fat_slices(fat_unsigned)
    assert [s[2] for s in new_slices] == [s[2] for s in slices]  # offsets kept (only the last shrank)
    assert new_slices[1][3] == len(unsigned) and len(fat_unsigned) == new_slices[1][2] + len(unsigned)
    assert fat_unsigned[new_slices[1][2]:] == unsigned
    assert fat_unsigned[:slices[1][2]][48:] == fat[:slices[1][2]][48:]  # x86_64 slice untouched


def test_find_pkg_takes_the_last_cookie():
    def pkg(body):
        length = len(body) + platforms.COOKIE.size
        return body + platforms.COOKIE.pack(platforms.COOKIE_MAGIC, length, 0, 0, 311, b"libpython3.11.so")

    first, second = pkg(b"first"), pkg(b"second one")
    data = b"head" + first + b"middle" + second + b"tail"
    start, end = platforms.find_pkg(data)
    assert data[start:end] == second
    with pytest.raises(platforms.FixtureBuildError):
        platforms.find_pkg(b"no cookie here")


def test_missing_wheel_names_the_install_step(tmp_path):
    dummy = tmp_path / "hello"
    dummy.write_bytes(b"not built")
    with pytest.raises(platforms.MissingWheelError, match="--platform-wheels"):
        platforms.build_platform(dummy, "win-onefile", wheels_dir=tmp_path / "no-wheels", cache_dir=tmp_path)
    assert platforms.missing_wheels(("6.22.3",), tmp_path) == [("6.22.3", "win_amd64"),
                                                               ("6.22.3", "macosx_10_13_universal2")]


def test_download_wheels_skips_cached_wheels(platform_wheels, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("download_wheels ran a command although the wheels are cached")

    monkeypatch.setattr(platforms.subprocess, "run", no_download)
    wheels = platforms.download_wheels()
    assert set(wheels) == {(v, s) for v in VERSIONS for s in ("win", "mac")}
    for (version, system), path in wheels.items():
        assert path.parent == platform_wheels and version in path.name
        with zipfile.ZipFile(path) as zf:
            assert platforms._BOOTLOADERS[system] in zf.namelist()


def test_signing_needs_osslsigncode(platform_wheels, monkeypatch, tmp_path):
    dummy = tmp_path / "hello"
    dummy.write_bytes(b"not built")
    monkeypatch.setattr(platforms.shutil, "which", lambda name: None)
    with pytest.raises(platforms.FixtureBuildError, match="apt-get install osslsigncode"):
        platforms.build_platform(dummy, "win-onefile-signed", cache_dir=tmp_path)


def test_build_timestamp_is_deterministic_and_spread():
    stamps = {platforms.build_timestamp(b"pkg %d" % i) for i in range(50)}
    assert len(stamps) == 50
    assert platforms.build_timestamp(b"pkg 1") == platforms.build_timestamp(b"pkg 1")
    assert all(1_700_000_000 <= s < 1_700_000_000 + (1 << 24) for s in stamps)


# ---------------------------------------------------------------------------
# Real results, for every layout and version
# ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("layout,version", CASES)
def test_toc_matches_linux_source(request, layout, version):
    for result in _pair(request, layout, version):
        meta = platforms.read_meta(result)
        assert (meta["layout"], meta["pyinstaller_version"]) == (layout, version)
        exe = _exe(result)
        assert exe.is_file()
        names = _toc_names(exe)
        assert names and names == _toc_names(_linux_exe(result))
        # The PKG bytes are the Linux build's, and the last cookie points at them.
        pkg = platforms.extract_pkg(_linux_exe(result))
        data = exe.read_bytes()
        start, end = platforms.find_pkg(data)
        assert data[start:end] == pkg
        assert (meta["head"], meta["pkg"], meta["tail"]) == (start, len(pkg), len(data) - end)


@pytest.mark.slow
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("layout", ("win-onefile", "win-onedir"))
def test_windows_unsigned(request, layout, version):
    pair = _pair(request, layout, version)  # first: it skips or fails when wheels are missing
    stamps = []
    run_exe = platforms.read_bootloader(version, "win")
    for result in pair:
        data = _exe(result).read_bytes()
        start, end = platforms.find_pkg(data)
        assert end == len(data)  # the cookie ends the file
        assert start == len(run_exe)
        pe = pefile.PE(data=data, fast_load=True)
        assert pe.OPTIONAL_HEADER.CheckSum == platforms.pe_checksum(data) != 0
        assert platforms._pe_security_dir(data) == (0, 0)
        stamp = pe.FILE_HEADER.TimeDateStamp
        assert stamp == platforms.build_timestamp(data[start:end])
        pe.full_load()
        for entry in getattr(pe, "DIRECTORY_ENTRY_DEBUG", []):
            if entry.struct.TimeDateStamp:
                assert entry.struct.TimeDateStamp == stamp
        stamps.append(stamp)
        # Apart from the timestamps and the checksum, the head is the bootloader's bytes.
        head = bytearray(data[:start])
        changed = [i for i in range(len(run_exe)) if head[i] != run_exe[i]]
        assert changed and len(changed) <= 4 * (2 + len(getattr(pe, "DIRECTORY_ENTRY_DEBUG", [])))
    assert stamps[0] != stamps[1]
    if layout == "win-onedir":
        v1, _v2 = pair
        source = Path(platforms.read_meta(v1)["source"])
        assert sorted(p.name for p in v1.iterdir()) == sorted(
            (v1.name + ".exe") if p.name == source.name else p.name for p in source.iterdir())
        if version.startswith("6."):
            assert (v1 / "_internal").is_dir()


@pytest.mark.slow
def test_pefile_verifies_the_checksum(platform_pairs_pyi6):
    # pefile's pure-Python checksum is slow: once on the small one-folder executable (every
    # build also ran it before it was cached).
    v1, _v2 = platform_pairs_pyi6["win-onedir"]
    assert pefile.PE(str(_exe(v1)), fast_load=True).verify_checksum()


@pytest.mark.slow
@pytest.mark.parametrize("version", VERSIONS)
def test_windows_signed(request, version):
    signed_pair = _pair(request, "win-onefile-signed", version)
    unsigned_pair = _pair(request, "win-onefile", version)
    for signed, unsigned in zip(signed_pair, unsigned_pair):
        data = signed.read_bytes()
        plain = unsigned.read_bytes()
        start, end = platforms.find_pkg(data)
        assert end == len(plain) < len(data)  # the certificate table follows the PKG
        sec_off, sec_size = platforms._pe_security_dir(data)
        assert sec_off >= end and sec_off % 8 == 0 and sec_off + sec_size == len(data)
        assert data[end:sec_off] == bytes(sec_off - end)  # osslsigncode's alignment padding
        ok, out = platforms.osslsigncode_verify(signed)
        assert ok, out
        pe = pefile.PE(data=data, fast_load=True)
        assert pe.OPTIONAL_HEADER.CheckSum == platforms.pe_checksum(data)
        # Signing changed only the checksum and the security directory entry of the unsigned file.
        checksum_off = platforms._pe_checksum_offset(plain)
        sec_entry = pe.OPTIONAL_HEADER.DATA_DIRECTORY[4].get_file_offset()
        diff = [i for i in range(len(plain)) if i < 4096 and data[i] != plain[i]]
        assert all(checksum_off <= i < checksum_off + 4 or sec_entry <= i < sec_entry + 8 for i in diff)
        assert data[4096:end] == plain[4096:]


@pytest.mark.slow
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("layout", MAC_LAYOUTS)
def test_macos(request, layout, version):
    pair = _pair(request, layout, version)  # first: it skips or fails when wheels are missing
    fat_bootloader = platforms.read_bootloader(version, "mac")
    uuids = []
    for result in pair:
        data = result.read_bytes()
        start, end = platforms.find_pkg(data)
        assert end == len(data)
        macho = MachO(str(result))
        arches = [platforms._arch_name(h.header.cputype, h.header.cpusubtype) for h in macho.headers]
        if layout == "mac-onefile-universal2":
            assert macho.fat and arches == ["x86_64", "arm64"]
            slices = platforms._fat_slices(data)
            assert slices[-1][2] + slices[-1][3] == len(data)  # fat header grew the last slice
            sizes = [s[3] for s in slices]
        else:
            assert not macho.fat and arches == ["x86_64"]
            sizes = [len(data)]
        for header, size in zip(macho.headers, sizes):
            assert not [c for c in header.commands if c[0].cmd == mach_o.LC_CODE_SIGNATURE]
            seg = [c[1] for c in header.commands
                   if c[0].cmd == mach_o.LC_SEGMENT_64 and c[1].segname.rstrip(b"\0") == b"__LINKEDIT"][0]
            assert seg.fileoff + seg.filesize == size  # __LINKEDIT ends at the end of the slice/file
            assert seg.vmsize >= seg.filesize
        last = macho.headers[-1]
        symtab = [c[1] for c in last.commands if c[0].cmd == mach_o.LC_SYMTAB][0]
        assert last.offset + symtab.stroff + symtab.strsize == len(data)
        assert last.offset + symtab.stroff <= start  # the string table covers the PKG
        uuids.append([bytes(c[1].uuid) for h in macho.headers for c in h.commands
                      if c[0].cmd == mach_o.LC_UUID])
    # The bootloader's own UUIDs.
    original = []
    slices = platforms._fat_slices(fat_bootloader)
    wanted = ["x86_64", "arm64"] if layout == "mac-onefile-universal2" else ["x86_64"]
    for cputype, cpusubtype, off, size, _al in slices:
        if platforms._arch_name(cputype, cpusubtype) in wanted:
            sl = fat_bootloader[off:off + size]
            _hdr, cmds = platforms._load_commands(sl)
            original += [sl[pos + 8:pos + 24] for cmd, pos, _ in cmds if cmd == 0x1B]  # LC_UUID
    assert len(original) == len(wanted)
    if version.startswith("6."):  # update_exe_identifier: a UUID per PKG
        assert uuids[0] != uuids[1] and not set(uuids[0]) & set(original)
    else:  # PyInstaller 5.13 keeps the bootloader's UUID
        assert uuids[0] == uuids[1] == original


@pytest.mark.slow
def test_platform_builds_are_cached(platform_build, platform_pairs_pyi6, hello_onefile, hello_onedir):
    for layout in platforms.LAYOUTS:
        source = hello_onedir if layout == "win-onedir" else hello_onefile
        first = platform_pairs_pyi6[layout][0]
        built_at = platforms.read_meta(first)["built_at"]
        mtime = first.stat().st_mtime_ns
        started = time.monotonic()
        again = platform_build(source, layout)
        assert time.monotonic() - started < 5
        assert again == first
        assert platforms.read_meta(again)["built_at"] == built_at and again.stat().st_mtime_ns == mtime
        assert platforms.platform_cache_key(source, layout) == again.parent.name


@pytest.mark.slow
def test_cli_prints_the_cached_path(platform_pairs_pyi6, hello_onefile):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(Path(platforms.__file__)), str(hello_onefile), "mac-onefile-x86_64"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == platform_pairs_pyi6["mac-onefile-x86_64"][0]
