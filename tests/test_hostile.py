"""Hostile input, second round (issue 11): one regression test per finding of the outside
review, each on real files, real folders and real processes.

Patches that ``make`` itself would refuse are written by ``unchecked_folder_patch``: the same
encoder and patch-file codec, without make's checks, as an attacker's tool would produce them.
"""
from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from fuzz import base
from pyzpatch.delta import codes
from pyzpatch.delta.engine import Encoder
from pyzpatch.delta.wire import Writer
from pyzpatch.formats import carchive, pyz
from pyzpatch.patch.foldernode import MAX_PATH_DEPTH, FolderContents, node_hash
from pyzpatch.patchfile import codec as patchfile
from pyzpatch.patchfile.codec import Body, Header

from .conftest import REPO, run_cli


def unchecked_folder_patch(old_dir: Path, new_dir: Path, out: Path) -> Path:
    """A folder patch from ``old_dir`` to ``new_dir`` made without any of make's checks."""
    with FolderContents(str(old_dir)) as old, FolderContents(str(new_dir)) as new:
        old_node, new_node = old.node(), new.node()
        old_size, old_hash = node_hash(old_node)
        new_size, new_hash = node_hash(new_node)
        encoder = Encoder()
        encoder.node_delta(old_node, new_node, "")
        s = encoder.out
        body = Body(s.ops.getvalue(), bytes(s.diff), bytes(s.lit))
    header = Header(old_size=old_size, old_sha256=old_hash, new_size=new_size, new_sha256=new_hash,
                    flags=patchfile.FOLDER)
    out.write_bytes(patchfile.encode(header, body))
    return out


def leftovers(folder: Path) -> list:
    """What an apply left beside ``folder`` (hidden siblings of its name)."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith("." + folder.name + "."))


def remove_deep(root: Path) -> None:
    """Remove a tree of nested folders of any depth: by descriptors, so no path grows past
    PATH_MAX, and without recursion (``shutil.rmtree`` recurses)."""
    fds = [os.open(root, os.O_RDONLY)]
    names = []
    while fds:
        fd = fds[-1]
        folders = []
        for name in os.listdir(fd):
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                folders.append(name)
            else:
                os.unlink(name, dir_fd=fd)
        if folders:
            fds.append(os.open(folders[0], os.O_RDONLY, dir_fd=fd))
            names.append(folders[0])
            continue
        os.close(fds.pop())
        if names:
            os.rmdir(names.pop(), dir_fd=fds[-1])
    os.rmdir(root)


def make_deep(root: Path, depth: int) -> None:
    """``root/d/d/...`` ``depth`` folders deep, made by descriptors."""
    fd = os.open(root, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        below = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = below
    os.close(fd)


def two_folders(tmp_path: Path):
    old, new = tmp_path / "old", tmp_path / "new"
    for d in (old, new):
        d.mkdir()
        (d / "app").write_text("program\n")
    return old, new


# -- finding 1: a link that leaves the folder through other links ---------------------------


@pytest.mark.parametrize("links", [
    {"l": ".", "esc": "l/l/l/l/../../../../etc"},          # the review's example
    {"a": "b/c", "b": ".", "c": ".", "esc": "a/../.."},    # through a chain of two links
    {"d/up": "..", "esc": "d/up/d/up/.."},                  # a link inside a subfolder
    {"esc": "esc/../.."},                                   # through a loop (the folder fuzzer's)
    {"a": "b", "b": "a"},                                   # a loop of two
])
def test_links_resolved_through_links_are_refused(tmp_path, links):
    old, new = two_folders(tmp_path)
    (new / "d").mkdir()
    for name, target in links.items():
        os.symlink(target, new / name)
    made = run_cli("make", old, new, "-o", tmp_path / "made.patch")
    assert made.returncode != 0 and ("outside the folder" in made.stderr or "loop" in made.stderr), made.stderr
    assert len(made.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "made.patch").exists()

    patch = unchecked_folder_patch(old, new, tmp_path / "evil.patch")
    target = tmp_path / "t"
    os.rename(old, target)
    applied = run_cli("apply", target, patch)
    assert applied.returncode != 0 and ("outside the folder" in applied.stderr or "loop" in applied.stderr)
    assert sorted(os.listdir(target)) == ["app"] and leftovers(target) == []


def test_links_that_stay_inside_through_links_are_kept(tmp_path):
    old, new = two_folders(tmp_path)
    (new / "lib").mkdir()
    (new / "lib" / "x.so.1").write_bytes(b"x")
    os.symlink(".", new / "here")
    os.symlink("lib", new / "libdir")
    os.symlink("here/libdir/../libdir/x.so.1", new / "x.so")  # ends inside: lib/x.so.1
    os.symlink("missing/file", new / "dangling")  # leads to nothing yet, inside
    made = run_cli("make", old, new, "-o", tmp_path / "p")
    assert made.returncode == 0, made.stderr
    applied = run_cli("apply", old, tmp_path / "p")
    assert applied.returncode == 0, applied.stderr
    assert (old / "x.so").read_bytes() == b"x"
    assert os.path.realpath(old / "x.so") == str((old / "lib" / "x.so.1").resolve())


# -- finding 6: a deep path --------------------------------------------------------------------


def test_deep_paths_are_refused_at_make_and_apply(tmp_path):
    old, new = two_folders(tmp_path)
    deep = new.joinpath(*["d"] * (MAX_PATH_DEPTH + 1))
    deep.mkdir(parents=True)
    made = run_cli("make", old, new, "-o", tmp_path / "made.patch")
    assert made.returncode != 0 and f"more than {MAX_PATH_DEPTH} folders deep" in made.stderr, made.stderr

    # Like the review's patch (2,000 components), deep enough to overflow Python's recursion
    # limit; 1,500 keeps the absolute path of the folder it is made from within PATH_MAX.
    deeper = tmp_path / "deeper"
    deeper.mkdir()
    (deeper / "app").write_text("program\n")
    make_deep(deeper, 1500)
    patch = unchecked_folder_patch(old, deeper, tmp_path / "evil.patch")
    remove_deep(deeper)  # pytest's own clean-up of tmp_path would recurse 1,500 deep
    applied = run_cli("apply", old, patch)
    assert applied.returncode != 0 and "folders deep" in applied.stderr, applied.stderr
    assert "Traceback" not in applied.stderr and leftovers(old) == []
    assert sorted(os.listdir(old)) == ["app"]


def test_a_build_at_the_depth_limit_round_trips(tmp_path):
    old, new = two_folders(tmp_path)
    deep = new.joinpath(*["d"] * (MAX_PATH_DEPTH - 1))
    deep.mkdir(parents=True)
    (deep / "f").write_text("deep\n")
    assert run_cli("make", old, new, "-o", tmp_path / "p").returncode == 0
    assert run_cli("apply", old, tmp_path / "p").returncode == 0
    assert (old.joinpath(*["d"] * (MAX_PATH_DEPTH - 1)) / "f").read_text() == "deep\n"



# -- finding 2: memory bounded by one budget ------------------------------------------------------


def peak_of(code: str) -> tuple:
    """Run ``code`` in a fresh interpreter; (its output lines, its peak RSS in MiB). VmHWM, not
    ru_maxrss: Linux carries ru_maxrss over from the forking pytest process."""
    code += ("\nprint(next(int(l.split()[1]) for l in open('/proc/self/status') "
             "if l.startswith('VmHWM:')) // 1024)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    return lines[:-1], int(lines[-1])


def apply_in_a_fresh_process(target: Path, patch: Path, folder: bool = False) -> tuple:
    """Apply ``patch`` to ``target`` (a file, or a folder) through the API in a fresh
    interpreter: (the refusal's problem, if any, as output lines; peak RSS in MiB)."""
    call = "apply_folder_patch" if folder else "apply_patch"
    module = "folder" if folder else "file"
    return peak_of(f"""
from pyzpatch import PyzpatchError
from pyzpatch.patch.{module} import {call}
try:
    {call}({str(target)!r}, {str(patch)!r})
except PyzpatchError as exc:
    print(exc.problem)
""")


def deflated_patch(path: Path, header: Header, payload_size: int, body_size=None) -> Path:
    """A patch whose body is ``payload_size`` zero bytes, deflated (about 1,000 to one), written
    without ever holding the body in memory; ``body_size`` is what the header declares."""
    w = Writer()
    w.raw(patchfile.MAGIC + bytes([patchfile.VERSION]))
    w.uint(patchfile.DEFLATE_BODY | (header.flags & patchfile.FOLDER))
    w.uint(header.old_size); w.raw(header.old_sha256)
    w.sint(header.new_size - header.old_size); w.raw(header.new_sha256)
    w.uint(payload_size if body_size is None else body_size)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = bytearray(w.getvalue())
    block = bytes(1 << 20)
    for _ in range(payload_size >> 20):
        out += deflater.compress(block)
    out += deflater.flush()
    out += zlib.crc32(out).to_bytes(4, "little")
    path.write_bytes(out)
    return path


def test_show_has_a_default_bound(tmp_path):
    """The review's ``show`` of a 625 KB patch declaring a 4 GiB body reached 8.5 GB."""
    header = Header(1 << 20, bytes(32), 2 << 30, bytes(32))
    patch = deflated_patch(tmp_path / "p", header, 0, body_size=(4 << 30) - 1)
    shown = run_cli("show", patch)
    assert shown.returncode != 0 and "--max-memory" in shown.stderr, shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1


def test_apply_checks_the_target_before_the_body(tmp_path):
    """The review's 176 KB patch made apply reach 2.46 GB before the target's hash was checked."""
    target = tmp_path / "t"
    target.write_bytes(os.urandom(1 << 20))
    header = Header(1 << 20, bytes(32), 200 << 20, bytes(32))  # not this file's hash
    patch = deflated_patch(tmp_path / "p", header, 768 << 20)
    assert patch.stat().st_size < 1 << 20
    out, peak = apply_in_a_fresh_process(target, patch)
    assert "SHA-256 differs" in out[0]
    assert peak < 100, peak


def test_the_body_is_charged_to_the_budget(tmp_path):
    """With the right target, a body as large as the whole budget leaves nothing to decode with:
    refused, and the body is held once (no copy of it)."""
    target = tmp_path / "t"
    target.write_bytes(base.OLD)
    header = Header(len(base.OLD), patchfile.sha256_of(base.OLD), len(base.NEW), patchfile.sha256_of(base.NEW))
    budget = patchfile.memory_budget(header.new_size)
    patch = deflated_patch(tmp_path / "p", header, budget >> 20 << 20)
    out, peak = apply_in_a_fresh_process(target, patch)
    assert out and out[0], "refused"  # zero bytes are no plan
    assert peak < (budget >> 20) + 120, peak  # the body once, not twice (split_body copied it)


def many_entries_patch(path: Path, old_dir: Path, count: int) -> Path:
    """A folder patch adding ``count`` empty files to ``old_dir``, written op by op (the encoder
    would need gigabytes to make it)."""
    with FolderContents(str(old_dir)) as old:
        old_size, old_hash = node_hash(old.node())
        n_old = len(old.entries)
    w = Writer()
    w.value_delta((0o755,), (0o755,))  # root mode unchanged
    w.uint(0)  # nothing removed
    w.uint(codes.ORDER_SAME)
    w.uint(count)
    attrs = Writer()
    attrs.value(("f", 0o644, ""))
    for i in range(count):
        w.uint(n_old if i == 0 else 1)
        key = b"f%07d" % i
        w.uint(2 * len(key) + 1); w.raw(key)
        w.raw(attrs.getvalue())
        w.uint(codes.COMPRESSIONS.index(None)); w.uint(codes.LITERAL); w.uint(0)
    w.uint(0)  # nothing changed
    header = Header(old_size, old_hash, 0, bytes(32), flags=patchfile.FOLDER)
    path.write_bytes(patchfile.encode(header, Body(w.getvalue(), b"", b"")))
    return path


def test_folder_entries_are_charged_to_the_budget(tmp_path):
    """The review's 1.28 MB folder patch declaring 6 million empty files took 4.24 GB and 132 s.
    Each entry is charged its memory: this many cannot fit in a 256 MiB budget."""
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "app").write_text("program\n")
    patch = many_entries_patch(tmp_path / "p", folder, 400_000)
    assert patch.stat().st_size < 2 << 20
    out, peak = apply_in_a_fresh_process(folder, patch, folder=True)
    assert "more children than" in out[0], out
    assert peak < 300, peak
    assert sorted(os.listdir(folder)) == ["app"] and leftovers(folder) == []


def pyz_bomb_pkg(tmp_path: Path) -> Path:
    """A 6 MB .pkg holding eight compressed PYZ entries of 64 MB each."""
    blob = zlib.compress(os.urandom(20_000), 9)  # one module's stored bytes, repeated
    model = pyz.Pyz(pymagic=b"\xa7\r\r\n",
                    entries=[pyz.PyzEntry(f"m{i:05d}", pyz.MODULE, blob) for i in range(3200)])
    pyz_bytes = pyz.build(model)
    packed = zlib.compress(pyz_bytes, 9)
    entries = [carchive.CEntry(f"PYZ-{i:02d}.pyz", "z", True, len(pyz_bytes), packed) for i in range(8)]
    pkg = tmp_path / "bomb.pkg"
    pkg.write_bytes(carchive.build(carchive.CArchive(entries=entries, python_version=311,
                                                     pylib_name=b"libpython3.11.so.1.0".ljust(64, b"\0"))))
    assert pkg.stat().st_size < 8 << 20 and len(pyz_bytes) > 60 << 20
    return pkg


def test_ls_holds_one_inflated_pyz_at_a_time(tmp_path):
    """The review's 2 MB .pkg whose PYZ entries are compressed took 4.2 GB to list: every
    inflated PYZ was kept. Eight PYZ entries of 64 MB each, inflated from under 1 MB: 600 MiB
    at the peak before, under 250 MiB now, however many entries there are (inflating one holds
    it twice for a moment: zlib joins its output blocks)."""
    pkg = pyz_bomb_pkg(tmp_path)
    out, peak = peak_of(f"""
import contextlib, io, sys
sys.argv = ["pyzpatch", "ls", "--json", {str(pkg)!r}]
from pyzpatch.cli import main
with contextlib.redirect_stdout(io.StringIO()) as listing:
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, exc.code
print(listing.getvalue().count('"name": "m'))
""")
    assert out == [str(8 * 3200)]
    assert peak < 300, peak  # one inflated PYZ (and its modules' rows), not eight


def test_extract_holds_one_inflated_pyz_at_a_time(tmp_path):
    pkg = pyz_bomb_pkg(tmp_path)
    out, peak = peak_of(f"""
import sys
sys.argv = ["pyzpatch", "extract", {str(pkg)!r}, "m00007", "-o", {str(tmp_path / "out")!r}]
from pyzpatch.cli import main
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
""")
    assert out[-1].startswith("extracted 8 items")
    assert peak < 300, peak  # one inflated PYZ at a time, not eight


# -- finding 3: the content-digest fallback ------------------------------------------------------


def nested_zip_bomb(levels: int = 2, copies: int = 8) -> bytes:
    """A zip holding ``copies`` stored copies of a zip ... down to a member that inflates from
    a quarter megabyte to 256 MiB: gigabytes once every member is inflated."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("zeros", "w", force_zip64=True) as fp:
            block = bytes(1 << 20)
            for _ in range(256):
                fp.write(block)
    data = buf.getvalue()
    for _ in range(levels - 1):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for i in range(copies):
                zf.writestr(f"z{i}.zip", data)
        data = buf.getvalue()
    return data


def test_the_content_digest_is_bounded_by_the_new_size(tmp_path):
    bomb = tmp_path / "bomb"
    bomb.write_bytes(nested_zip_bomb())
    out, peak = peak_of(f"""
from pyzpatch.delta.digest import content_digest
from pyzpatch.patchfile.codec import memory_budget
data = open({str(bomb)!r}, "rb").read()
print(content_digest(data, budget=memory_budget(len(data))))
""")
    assert out == ["None"]  # over the budget: no digest, so no match
    assert peak < 400, peak


def test_a_wrong_hash_does_not_start_the_content_digest(tmp_path):
    """The review's 807-byte patch: HAS_CONTENT_DIGEST and a wrong new_sha256 made apply walk
    what the patch wrote, inflating every member. Nothing was re-compressed, so a result that is
    not the declared file is refused at once."""
    bomb = nested_zip_bomb()
    target = tmp_path / "t"
    target.write_bytes(b"old contents\n")
    w = Writer()
    w.uint(codes.LITERAL); w.uint(len(bomb))
    header = Header(len(target.read_bytes()), patchfile.sha256_of(target.read_bytes()), len(bomb), bytes(32),
                    content_digest=bytes(8))
    patch = tmp_path / "p"
    patch.write_bytes(patchfile.encode(header, Body(w.getvalue(), b"", bomb)))
    for args in (["apply", target, patch], ["verify", target, patch]):
        done = run_cli(*args, timeout=60)  # the review's variant ran past 120 s
        assert done.returncode != 0 and "different file" in done.stderr, done.stderr
    assert target.read_bytes() == b"old contents\n"
    assert sorted(os.listdir(tmp_path)) == ["p", "t"]


# -- findings 4 and 5: modes, owners, read-only folders ------------------------------------------


def unprivileged(*args, timeout=120) -> subprocess.CompletedProcess:
    """``python -m pyzpatch ARGS`` as a user without privileges. Tests run as root here, so this
    is root with every capability dropped (setpriv): the permission bits then bind it as they
    bind a file's ordinary owner, and it may not give files away (no CAP_CHOWN)."""
    cmd = [sys.executable, "-m", "pyzpatch", *map(str, args)]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root and setpriv is missing: cannot drop privileges")
        cmd = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))


def three_versions_with_a_read_only_folder(tmp_path: Path, name: str):
    """Folders old, new (app v2) and newer (app v3), each with a read-only folder ``name``
    holding a file, and the patches p1 (old to new) and p2 (new to newer) beside them."""
    old, new = two_folders(tmp_path)
    for d in (old, new):
        (d / name).mkdir()
        (d / name / "x.txt").write_text("data\n")
        os.chmod(d / name, 0o555)
    (new / "app").write_text("program v2\n")
    newer = tmp_path / "newer"
    shutil.copytree(new, newer, symlinks=True)
    (newer / "app").write_text("program v3\n")
    assert run_cli("make", old, new, "-o", tmp_path / "p1").returncode == 0
    assert run_cli("make", new, newer, "-o", tmp_path / "p2").returncode == 0
    return old, new


def test_a_read_only_subfolder_does_not_block_updates(tmp_path):
    """The review: a build with a 0555 subfolder, applied by its non-root owner, got its new
    folder, then a traceback, and the old folder stayed as .NAME.pyzpatch-new for good."""
    old, new = three_versions_with_a_read_only_folder(tmp_path, "data")
    first = unprivileged("apply", old, tmp_path / "p1")
    assert first.returncode == 0, first.stderr
    assert (old / "app").read_text() == "program v2\n" and leftovers(old) == []
    second = unprivileged("apply", old, tmp_path / "p2")
    assert second.returncode == 0, second.stderr
    assert (old / "app").read_text() == "program v3\n" and leftovers(old) == []
    assert stat.S_IMODE(os.stat(old / "data").st_mode) == 0o555


def test_a_patch_that_adds_a_mode_000_folder(tmp_path):
    old, new = two_folders(tmp_path)
    (new / "locked").mkdir()
    (new / "locked" / "secret").write_text("s\n")
    os.chmod(new / "locked", 0)
    assert run_cli("make", old, new, "-o", tmp_path / "p").returncode == 0
    done = unprivileged("apply", old, tmp_path / "p")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(os.stat(old / "locked").st_mode) == 0 and leftovers(old) == []
    assert unprivileged("apply", old, tmp_path / "p").returncode != 0  # already applied, said so
    os.chmod(new / "locked", 0o700)
    os.chmod(old / "locked", 0o700)


def test_what_cannot_be_removed_is_moved_out_of_the_way(tmp_path):
    """A folder inside the old build owned by someone else and read-only: the unprivileged
    applier cannot empty it. The update still lands, the rest goes under a trash name, and the
    next apply is not blocked by it."""
    old, new = three_versions_with_a_read_only_folder(tmp_path, "theirs")
    os.chown(old / "theirs", 65534, 65534)  # owners are not part of a folder's hash
    os.chown(old / "theirs" / "x.txt", 65534, 65534)
    try:
        first = unprivileged("apply", old, tmp_path / "p1")
        assert first.returncode == 0, first.stderr
        assert (old / "app").read_text() == "program v2\n"
        assert leftovers(old) == [".old.pyzpatch-old"]
        second = unprivileged("apply", old, tmp_path / "p2")
        assert second.returncode == 0, second.stderr
        assert (old / "app").read_text() == "program v3\n"
    finally:
        for p in tmp_path.glob(".old.pyzpatch-old*"):
            shutil.rmtree(p)


def test_a_setuid_file_keeps_its_owner_when_root_patches_it(tmp_path):
    """The review: a 4750 file owned by another user, patched by root, came out setuid root."""
    if os.geteuid() != 0:
        pytest.skip("needs root to own files as another user")
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(os.urandom(4096))
    new.write_bytes(old.read_bytes() + b"more")
    assert run_cli("make", old, new, "-o", tmp_path / "p").returncode == 0
    os.chown(old, 1000, 1000)
    os.chmod(old, 0o4750)
    assert run_cli("apply", old, tmp_path / "p").returncode == 0
    st = os.stat(old)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o4750)


def test_a_setuid_file_loses_the_bit_when_its_owner_cannot_be_kept(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(os.urandom(4096))
    new.write_bytes(old.read_bytes() + b"more")
    assert run_cli("make", old, new, "-o", tmp_path / "p").returncode == 0
    if os.geteuid() != 0:
        pytest.skip("needs root to own files as another user")
    os.chown(old, 65534, 65534)
    os.chmod(old, 0o4755)
    done = unprivileged("apply", old, tmp_path / "p")
    assert done.returncode == 0, done.stderr
    st = os.stat(old)
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o755  # written by the applier, not setuid


def test_folder_patches_keep_owners_and_set_id_bits(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to own files as another user")
    old, new = two_folders(tmp_path)
    (new / "app").write_text("program v2\n")
    os.chmod(new / "app", 0o4750)
    (new / "added").write_text("new file\n")
    assert run_cli("make", old, new, "-o", tmp_path / "p").returncode == 0
    os.chown(old, 1000, 1000)  # owners are not part of a folder's hash: the patch still applies
    os.chown(old / "app", 1001, 1001)
    assert run_cli("apply", old, tmp_path / "p").returncode == 0
    app, added = os.stat(old / "app"), os.stat(old / "added")
    assert (app.st_uid, app.st_gid, stat.S_IMODE(app.st_mode)) == (1001, 1001, 0o4750)
    assert (added.st_uid, added.st_gid) == (1000, 1000)  # the folder's owner
    assert (os.stat(old).st_uid, os.stat(old).st_gid) == (1000, 1000)


# -- finding 9: concurrent applies ------------------------------------------------------------------


def test_concurrent_applies_of_one_patch(tmp_path):
    """The review: four applies at once; two failed on their own temporary file, which another
    apply's start had deleted as stale."""
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(os.urandom(8 << 20))
    new.write_bytes(old.read_bytes()[: 4 << 20] + os.urandom(64) + old.read_bytes()[4 << 20:])
    assert run_cli("make", old, new, "-o", tmp_path / "p").returncode == 0
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-m", "pyzpatch", "apply", str(old), str(tmp_path / "p")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(4)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close(); p.stderr.close()
    assert sorted(code for code, _ in results)[0] == 0
    assert sum(code == 0 for code, _ in results) == 1, results
    for code, err in results:
        assert code == 0 or "already" in err, err
    assert old.read_bytes() == new.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["new", "old", "p"]
