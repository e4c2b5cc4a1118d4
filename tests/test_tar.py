"""Tar archives: exact round trips of what ``tar`` and ``tarfile`` write, member by member patches,
and tars of the fixtures' one-folder builds (as tufup's ``make_gztar_archive`` writes them)."""
from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import zipfile

import pytest

from pyzpatch import apply_patch, make_patch
from pyzpatch.delta.encoder import rebuilds_exactly
from pyzpatch.errors import FormatError
from pyzpatch.formats import registry, tar
from pyzpatch.formats.node import Node
from pyzpatch.patch.foldernode import FolderContents

from .conftest import run_cli

TAR = shutil.which("tar")
needs_tar = pytest.mark.skipif(TAR is None, reason="no tar command on this machine")

LONG_DIR = "d" * 60 + "/" + "e" * 60
LONG_FILE = "f" * 120 + ".txt"


def sample_folder(root, text="v1", long_names=True):
    """A folder with what makes tar headers differ: long names (GNU long names, PAX paths),
    a long symlink target, a hard link, non-ASCII names, an empty file, and files of exactly one
    block and of a few blocks."""
    root.mkdir(parents=True)
    if long_names:
        (root / LONG_DIR).mkdir(parents=True)
        (root / LONG_DIR / LONG_FILE).write_text(f"deep {text}\n")
        os.symlink("../" + "t" * 120, root / "long-link")
    (root / "ünïcode.txt").write_text("ü\n")
    (root / "empty").write_bytes(b"")
    (root / "block").write_bytes(bytes(range(256)) * 2)
    (root / "blocks").write_bytes(random.Random(0).randbytes(5000))
    (root / "app.txt").write_text(f"app {text}\n")
    os.symlink("app.txt", root / "short-link")
    os.link(root / "app.txt", root / "hard")
    return root


def tarfile_bytes(folder, fmt=tarfile.PAX_FORMAT, arcname=".") -> bytes:
    """What tufup's make_gztar_archive writes (before gzip): ``tarfile``, PAX by default, the
    folder added as ``.``, recursively."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as out:
        out.add(str(folder), arcname=arcname, recursive=True)
    return buf.getvalue()


def tar_command_bytes(folder, fmt: str, tmp_path) -> bytes:
    out = tmp_path / f"{fmt}.tar"
    subprocess.run([TAR, f"--format={fmt}", "-cf", str(out), "-C", str(folder), "."], check=True,
                   capture_output=True)
    return out.read_bytes()


def assert_round_trips(data: bytes) -> tar.TarArchive:
    model = tar.parse(data)
    assert tar.build(model) == data
    assert registry.recognize(data).kind == "tar"
    assert rebuilds_exactly(tar.open_node(data), data)  # through the generic node, as the engine does
    return model


@needs_tar
@pytest.mark.parametrize("fmt", ["gnu", "oldgnu", "pax", "ustar"])
def test_tar_command_output_round_trips(tmp_path, fmt):
    # ustar cannot hold names of more than 100 characters (or 155 + 100 split at a slash).
    folder = sample_folder(tmp_path / "src", long_names=fmt != "ustar")
    data = tar_command_bytes(folder, fmt, tmp_path)
    model = assert_round_trips(data)
    names = {m.name for m in model.members}
    assert "./ünïcode.txt" in names and "./hard" in names
    if fmt != "ustar":
        assert f"./{LONG_DIR}/{LONG_FILE}" in names
        link = next(m for m in model.members if m.name == "./long-link")
        assert link.kind == "symlink" and link.linkname == "../" + "t" * 120
    # Every header here is written the usual way: sizes and checksums are derived, not kept.
    headers = [m.header for m in model.members] + [e.header for m in model.members for e in m.extensions]
    assert all(h.size is None and h.chksum is None for h in headers)


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_tarfile_output_round_trips(tmp_path, fmt):
    model = assert_round_trips(tarfile_bytes(sample_folder(tmp_path / "src"), fmt))
    assert f"./{LONG_DIR}/{LONG_FILE}" in {m.name for m in model.members}
    if fmt == tarfile.PAX_FORMAT:
        # tarfile writes each member's float mtime as a PAX record: kept as (keyword, value) pairs.
        assert all(isinstance(e.payload, tuple) for m in model.members for e in m.extensions)


def test_ustar_prefix_and_odd_headers_round_trip():
    # A ustar name split into prefix and name, a space-terminated size field, a signed-checksum
    # style byte, non-NUL padding after data, and a trailer that is not all NULs.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as out:
        info = tarfile.TarInfo("p" * 90 + "/" + "n" * 60)
        info.size = 3
        out.addfile(info, io.BytesIO(b"abc"))
    data = bytearray(buf.getvalue())
    model = assert_round_trips(bytes(data))
    assert model.members[0].name == "p" * 90 + "/" + "n" * 60
    # Size written with a trailing space instead of a NUL, checksum recomputed.
    data[124:136] = b"%011o " % 3
    data[148:156] = b" " * 8
    data[148:156] = b"%06o\0 " % sum(data[:512])
    data[512 + 3:512 + 8] = b"junk!"  # padding after the data
    data[-10:] = b"trailing!!"
    model = assert_round_trips(bytes(data))
    assert model.members[0].header.size == b"%011o " % 3
    assert model.members[0].padding.startswith(b"junk!")
    assert isinstance(model.trailer, bytes)


@pytest.mark.parametrize("damage, problem", [
    (lambda d: d[:148] + b"0000000\0" + d[156:], "checksum"),
    (lambda d: d[:700], "past the end"),
])
def test_bad_tars_raise_format_errors(tmp_path, damage, problem):
    data = tarfile_bytes(sample_folder(tmp_path / "src"))
    with pytest.raises(FormatError) as err:
        tar.parse(damage(data))
    assert problem in str(err.value)


def test_detection_needs_magic_and_checksum():
    assert not tar.detect(b"\0" * 1024)
    assert not tar.detect(b"PK\x05\x06" + bytes(1020))
    block = bytearray(tarfile.TarInfo("x").tobuf(tarfile.USTAR_FORMAT))
    assert tar.detect(bytes(block) + bytes(1024))
    block[0] ^= 1
    assert not tar.detect(bytes(block) + bytes(1024))


def test_malformed_node_is_a_format_error():
    with pytest.raises(FormatError):
        registry.build_node(Node("tar", ("not a trailer",), []))


def zip_bytes(members) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_patch_sees_through_a_tar_into_a_zip(tmp_path):
    modules = {f"pkg/m{i}.py": (f"# module {i}\n" + "x = 1\n" * 200).encode() for i in range(40)}
    for version in ("old", "new"):
        folder = sample_folder(tmp_path / version, text=version)
        if version == "new":
            modules["pkg/m7.py"] = modules["pkg/m7.py"].replace(b"x = 1", b"x = 2", 1)
        (folder / "lib.zip").write_bytes(zip_bytes(modules))
        (tmp_path / f"{version}.tar").write_bytes(tarfile_bytes(folder))
    made = make_patch(tmp_path / "old.tar", tmp_path / "new.tar")
    assert made.structural
    paths = {c.path: c.how for c in made.changes}
    assert "/./lib.zip/pkg/m7.py" in paths, paths
    assert len(made.data) < 2000
    (tmp_path / "p").write_bytes(made.data)
    apply_patch(tmp_path / "old.tar", tmp_path / "p", output=tmp_path / "out.tar")
    assert (tmp_path / "out.tar").read_bytes() == (tmp_path / "new.tar").read_bytes()


def test_member_added_and_removed(tmp_path):
    old = sample_folder(tmp_path / "old")
    new = sample_folder(tmp_path / "new")
    (new / "blocks").unlink()
    (new / "added.bin").write_bytes(b"new file\n" * 100)
    (tmp_path / "old.tar").write_bytes(tarfile_bytes(old))
    (tmp_path / "new.tar").write_bytes(tarfile_bytes(new))
    made = make_patch(tmp_path / "old.tar", tmp_path / "new.tar")
    actions = {c.path: c.action for c in made.changes}
    assert actions["/./added.bin"] == "added" and actions["/./blocks"] == "removed"
    (tmp_path / "p").write_bytes(made.data)
    apply_patch(tmp_path / "old.tar", tmp_path / "p", output=tmp_path / "out.tar")
    assert (tmp_path / "out.tar").read_bytes() == (tmp_path / "new.tar").read_bytes()


def test_one_folder_builds_as_tufup_tars_them(hello_onedir, hello_v2_onedir, bigapp_onedir, tmp_path):
    """Tars of the one-folder builds as make_gztar_archive writes them rebuild exactly, and a patch
    between two versions opens the tar, the executable, its CArchive and PYZ."""
    for build in (hello_onedir, hello_v2_onedir, bigapp_onedir):
        data = tarfile_bytes(build)
        model = assert_round_trips(data)
        with FolderContents(str(build)) as fc:
            files = {e.path for e in fc.entries}
        assert {m.name[2:].rstrip("/") for m in model.members} - {""} == files  # names are "./PATH"
    (tmp_path / "v1.tar").write_bytes(tarfile_bytes(hello_onedir))
    (tmp_path / "v2.tar").write_bytes(tarfile_bytes(hello_v2_onedir))
    made = make_patch(tmp_path / "v1.tar", tmp_path / "v2.tar")
    assert any(c.path == "/./hello/archive/z:PYZ.pyz/mod1" for c in made.changes), [c.path for c in made.changes]
    assert len(made.data) < 2000


def test_ls_lists_a_tar(tmp_path):
    (tmp_path / "a.tar").write_bytes(tarfile_bytes(sample_folder(tmp_path / "src")))
    result = run_cli("ls", "--json", tmp_path / "a.tar")
    assert result.returncode == 0, result.stderr
    desc = json.loads(result.stdout)
    assert desc["kind"] == "tar"
    members = {m["name"]: m for m in desc["tar"]["members"]}
    assert members["./blocks"]["size"] == 5000 and members["./blocks"]["kind"] == "file"
    assert members["./short-link"]["link"] == "app.txt"
    text = run_cli("ls", tmp_path / "a.tar", "--filter", "*.txt")
    assert text.returncode == 0 and "tar archive" in text.stdout and "./app.txt" in text.stdout
    assert "./blocks" not in text.stdout


def test_members_with_only_new_times_are_summed_up(tmp_path):
    """A rebuilt tar gives every member a new time: make and show say so in one line (naming a
    few), list the member whose bytes changed as usual, and --json still lists every member."""
    def tar_of(path, files, mtime):
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data), mtime
                tf.addfile(info, io.BytesIO(data))

    files = {f"pkg/m{i:02d}.py": b"x = %d\n" % i * 50 for i in range(12)}
    tar_of(tmp_path / "old.tar", files, 1_600_000_000)
    tar_of(tmp_path / "new.tar", dict(files, **{"pkg/m03.py": b"x = 'changed'\n" * 50}), 1_700_000_000)
    made = run_cli("make", tmp_path / "old.tar", tmp_path / "new.tar", "-o", tmp_path / "p.patch")
    assert made.returncode == 0, made.stderr
    for out in (made.stdout, run_cli("show", tmp_path / "p.patch").stdout):
        lines = [line for line in out.splitlines() if line.strip().startswith("changed")]
        assert "11 entries, same bytes, other attributes" in lines[0] and "pkg/m00.py" in lines[0]
        assert any("pkg/m03.py" in line and "attributes" not in line for line in lines[1:])
        assert len(lines) == 2
    listed = json.loads(run_cli("show", "--json", tmp_path / "p.patch").stdout)["changes"]
    assert sum(c["how"] == "same bytes, other attributes" for c in listed) == 11
