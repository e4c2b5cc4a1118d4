"""Windows and macOS executables get structural patches, as Linux ones do.

The files are assembled the way PyInstaller assembles them on each system (fixtures/platforms.py,
from the bootloaders in PyInstaller's own wheels); they cannot run here, so every check is on
bytes: the applied file equals the new build, the patch is as small as the same change built for
Linux, ``ls --json`` lists what PyInstaller's own readers find, and self-update's swap and
verification work on ``NAME.exe`` files and ``_internal`` folders.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from pyzpatch import apply_folder_patch, apply_patch, make_folder_patch, make_patch, open_bundle, selfupdate
from pyzpatch.patch.foldernode import FolderContents, node_hash

from .conftest import run_cli, sha256_file

pytestmark = pytest.mark.slow

VERSIONS = ("6.22.3", "5.13.2")
ONEFILE_LAYOUTS = ("win-onefile", "win-onefile-signed", "mac-onefile-x86_64", "mac-onefile-universal2")
LAYOUT_TITLES = {
    "win-onefile": "PE (Windows), archive appended, not signed",
    "win-onefile-signed": "PE (Windows), archive appended, Authenticode-signed",
    "win-onedir": "PE (Windows), archive appended, not signed",
    "mac-onefile-x86_64": "Mach-O (x86_64), archive appended inside __LINKEDIT, not signed",
    "mac-onefile-universal2": "Mach-O universal (x86_64, arm64), archive appended inside __LINKEDIT, not signed",
}
# The most a platform patch may exceed the same change's patch built for Linux.
SLACK = 64


def _pairs(request, version):
    return request.getfixturevalue("platform_pairs_pyi6" if version.startswith("6.") else "platform_pairs_pyi5")


def _linux_pair(request, version, onedir=False):
    names = {("6.22.3", False): ("hello_onefile", "hello_v2_onefile"),
             ("6.22.3", True): ("hello_onedir", "hello_v2_onedir"),
             ("5.13.2", False): ("hello_pyi5", "hello_v2_pyi5"),
             ("5.13.2", True): ("hello_pyi5_onedir", "hello_v2_pyi5_onedir")}[(version, onedir)]
    return tuple(request.getfixturevalue(n) for n in names)


def _exe(result: Path) -> Path:
    return result / (result.name + ".exe") if result.is_dir() else result


def certificate_table_size(path: Path) -> int:
    """The size of a PE file's Authenticode certificate table (security data directory)."""
    data = path.read_bytes()
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    opt = pe + 24
    magic = struct.unpack_from("<H", data, opt)[0]
    directories = opt + (112 if magic == 0x20B else 96)
    return struct.unpack_from("<II", data, directories + 4 * 8)[1]


def _folder_state(path: Path) -> bytes:
    with FolderContents(str(path)) as fc:
        return node_hash(fc.node())[1]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("layout", ONEFILE_LAYOUTS)
def test_one_file_layouts_get_structural_patches_as_small_as_linux(request, tmp_path, layout, version):
    v1, v2 = _pairs(request, version)[layout]
    made = make_patch(v1, v2)
    assert made.structural, made.note
    assert made.note is None
    leaf = {c.path for c in made.changes if not c.container}
    assert "/archive/z:PYZ.pyz/mod1" in {p.replace("PYZ-00.pyz", "PYZ.pyz") for p in leaf}
    target = tmp_path / v1.name
    shutil.copy2(v1, target)
    (tmp_path / "fix.patch").write_bytes(made.data)
    result = apply_patch(target, tmp_path / "fix.patch")
    assert result.byte_identical and sha256_file(target) == sha256_file(v2)

    linux = make_patch(*_linux_pair(request, version))
    allowance = SLACK + (certificate_table_size(v2) if layout == "win-onefile-signed" else 0)
    assert len(made.data) <= len(linux.data) + allowance, (len(made.data), len(linux.data), allowance)


@pytest.mark.parametrize("version", VERSIONS)
def test_windows_one_folder_build_gets_a_structural_folder_patch(request, tmp_path, version):
    v1, v2 = _pairs(request, version)["win-onedir"]
    made = make_folder_patch(v1, v2)
    paths = {c.path for c in made.changes}
    assert "/hello.exe/archive" in paths  # the executable was diffed by its parts
    assert not any(c.how in ("bsdiff", "literal") and c.path == "/hello.exe" for c in made.changes)
    target = tmp_path / "hello"
    shutil.copytree(v1, target, symlinks=True)
    (tmp_path / "fix.patch").write_bytes(made.data)
    assert apply_folder_patch(target, tmp_path / "fix.patch").written
    assert _folder_state(target) == _folder_state(v2)
    linux = make_folder_patch(*_linux_pair(request, version, onedir=True))
    assert len(made.data) <= len(linux.data) + SLACK, (len(made.data), len(linux.data))
    # The executable alone, as a file patch, is structural too.
    exe_patch = make_patch(_exe(v1), _exe(v2))
    assert exe_patch.structural, exe_patch.note


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("layout", ONEFILE_LAYOUTS + ("win-onedir",))
def test_ls_names_the_layout_and_everything_pyinstallers_readers_find(request, layout, version):
    from PyInstaller.archive.readers import CArchiveReader

    v1, _ = _pairs(request, version)[layout]
    exe = _exe(v1)
    result = run_cli("ls", exe, "--json")
    assert result.returncode == 0, result.stderr
    desc = json.loads(result.stdout)
    assert desc["kind"] == ("onedir" if layout == "win-onedir" else "onefile")
    assert desc["layout"]["title"] == LAYOUT_TITLES[layout]
    assert desc["layout"]["signed"] == (layout == "win-onefile-signed")

    reader = CArchiveReader(str(exe))
    listed = {e["name"] for e in desc["archive"]["entries"]}
    # Every entry PyInstaller's reader finds; it keys its TOC by name and leaves out runtime
    # options ("o", no data), which ls lists too.
    assert set(reader.toc) <= listed
    assert {e["typecode"] for e in desc["archive"]["entries"] if e["name"] not in reader.toc} <= {"o"}
    pyz_names = [name for name, entry in reader.toc.items() if entry[4] == "z"]
    assert [p["entry"] for p in desc["pyz"]] == pyz_names
    for listed, name in zip(desc["pyz"], pyz_names):
        modules = reader.open_embedded_archive(name).toc
        assert sorted(m["name"] for m in listed["modules"]) == sorted(modules)

    text = run_cli("ls", exe)
    assert f"  layout: {LAYOUT_TITLES[layout]}" in text.stdout.splitlines()


def test_signed_windows_file_says_what_signs_it(platform_pairs_pyi6):
    v1, _ = platform_pairs_pyi6["win-onefile-signed"]
    with open_bundle(v1) as bundle:
        assert bundle.layout.signed
        assert bundle.layout.signature.startswith("Authenticode certificate table (")
        assert "certificate table follows the archive" in bundle.layout.notes
        assert len(bundle.executable.tail) >= certificate_table_size(v1)


def test_show_says_a_platform_patch_is_structural(platform_pairs_pyi6, tmp_path):
    v1, v2 = platform_pairs_pyi6["win-onefile"]
    result = run_cli("make", v1, v2, "-o", tmp_path / "fix.patch")
    assert result.returncode == 0, result.stderr
    assert "note:" not in result.stdout
    shown = run_cli("show", tmp_path / "fix.patch")
    assert "  structural: each changed part is named below" in shown.stdout.splitlines()


# --- self-update on Windows layouts: the swap and the verification (the files cannot run here) ---

def _installed(tmp_path, build: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    if build.is_dir():
        shutil.copytree(build, site / build.name, symlinks=True)
        return site / build.name
    shutil.copy2(build, site / build.name)
    return site / build.name


@pytest.mark.parametrize("layout", ["win-onefile", "win-onefile-signed"])
def test_self_update_swaps_a_windows_one_file_exe(platform_pairs_pyi6, tmp_path, layout):
    v1, v2 = platform_pairs_pyi6[layout]
    exe = _installed(tmp_path, v1)
    assert exe.name == "hello.exe"
    inst = selfupdate.find_installation(str(exe), str(tmp_path / "_MEI12345"))
    assert (inst.kind, inst.target) == ("onefile", str(exe))
    patch = tmp_path / "fix.patch"
    patch.write_bytes(make_patch(v1, v2).data)
    assert selfupdate.check_update(patch, installation=inst) == inst
    assert sha256_file(exe) == sha256_file(v1)  # a check writes nothing
    selfupdate.apply_update(patch, restart=False, strategy=selfupdate.WINDOWS, installation=inst)
    assert sha256_file(exe) == sha256_file(v2)
    # The running exe was renamed aside, never written: NAME.exe.pyzpatch-old until the next start.
    aside = exe.with_name("hello.exe.pyzpatch-old")
    assert sha256_file(aside) == sha256_file(v1)
    done = selfupdate.cleanup_previous_update(installation=inst, restart_if_finished=False)
    assert any("removed the old version" in line for line in done)
    assert sorted(os.listdir(exe.parent)) == ["hello.exe"]


@pytest.mark.parametrize("version", VERSIONS)
def test_self_update_swaps_a_windows_one_folder_build(request, tmp_path, version):
    v1, v2 = _pairs(request, version)["win-onedir"]
    folder = _installed(tmp_path, v1)
    exe = folder / "hello.exe"
    # PyInstaller 6 runs a one-folder program from _internal, PyInstaller 5 from the folder itself.
    bundle_dir = folder / "_internal" if (folder / "_internal").is_dir() else folder
    inst = selfupdate.find_installation(str(exe), str(bundle_dir))
    assert (inst.kind, inst.target, inst.executable) == ("onedir", str(folder), str(exe))
    patch = tmp_path / "fix.patch"
    patch.write_bytes(make_folder_patch(v1, v2).data)
    selfupdate.apply_update(patch, restart=False, strategy=selfupdate.WINDOWS, installation=inst)
    assert _folder_state(folder) == _folder_state(v2)
    assert (folder.parent / ".hello.pyzpatch-old").exists()  # the old exe, moved aside
    selfupdate.cleanup_previous_update(installation=inst, restart_if_finished=False)
    assert sorted(os.listdir(folder.parent)) == ["hello"]


def test_self_update_refuses_a_patch_for_the_other_layout(platform_pairs_pyi6, hello_onefile, hello_v2_onefile,
                                                         tmp_path):
    """A patch made from the Linux builds does not apply to the Windows file of the same program."""
    v1, _ = platform_pairs_pyi6["win-onefile"]
    exe = _installed(tmp_path, v1)
    inst = selfupdate.find_installation(str(exe), str(tmp_path / "_MEI1"))
    patch = tmp_path / "linux.patch"
    patch.write_bytes(make_patch(hello_onefile, hello_v2_onefile).data)
    with pytest.raises(selfupdate.SelfUpdateError, match="not the file the patch was made from") as info:
        selfupdate.apply_update(patch, restart=False, strategy=selfupdate.WINDOWS, installation=inst)
    assert not info.value.installed
    assert sha256_file(exe) == sha256_file(v1)
    assert sorted(os.listdir(exe.parent)) == ["hello.exe"]
