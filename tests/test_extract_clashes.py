"""`extract` never writes through an existing file, and finds every name clash before it writes
anything (issue 11, finding 7). Real archives built in memory, real hard links and FIFOs, the
real command line."""
from __future__ import annotations

import os
import stat
import zlib

import pytest

from pyzpatch.formats import carchive, pyz

from .conftest import run_cli

PYMAGIC = b"\xa7\r\r\n"


def one_line_failure(result, *names) -> str:
    # 7 where something on disk is in the way (docs/cli.md), 1 where the archive's own names clash
    assert result.returncode in (1, 7), (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


def make_pkg(path, entries, modules=()) -> None:
    """A CArchive with entries [(name, typecode, bytes)] and, if ``modules`` are given
    ([(name, PYZ typecode)]), a PYZ holding them."""
    out = []
    for name, typecode, data in entries:
        out.append(carchive.CEntry(name, typecode, True, len(data), zlib.compress(data, 9)))
    if modules:
        code = zlib.compress(b"\xe3" + bytes(40), 6)  # never loaded: extract writes the bytes as they are
        blob = pyz.build(pyz.Pyz(pymagic=PYMAGIC, entries=[
            pyz.PyzEntry(name, typecode, b"" if typecode == pyz.NAMESPACE else code) for name, typecode in modules]))
        out.append(carchive.CEntry("PYZ.pyz", "z", False, len(blob), blob))
    model = carchive.CArchive(entries=out, python_version=311, pylib_name=b"libpython3.11.so.1.0".ljust(64, b"\0"))
    path.write_bytes(carchive.build(model))


def tree(root) -> dict:
    """Every path below ``root`` with its bytes (folders: None; links and FIFOs: their kind)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fp:
                    content = fp.read()
            else:
                content = None if stat.S_ISDIR(st.st_mode) else stat.S_IFMT(st.st_mode)
            out[os.path.relpath(path, root)] = content
    return out


def test_hard_link_inside_the_output_folder_is_replaced_not_written_through(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret"
    secret.write_bytes(b"precious")
    out = tmp_path / "out"
    out.mkdir()
    os.link(secret, out / "data.txt")
    pkg = tmp_path / "a.pkg"
    make_pkg(pkg, [("data.txt", "x", b"from the archive")])
    result = run_cli("extract", pkg, "--all", "-o", out)
    assert result.returncode == 0, result.stderr
    assert secret.read_bytes() == b"precious"  # the other name of the old file kept its bytes
    assert (out / "data.txt").read_bytes() == b"from the archive"
    assert os.stat(out / "data.txt").st_ino != os.stat(secret).st_ino
    assert sorted(os.listdir(out)) == ["data.txt"]  # no temporary left beside it


CLASHES = {
    # a script is written as NAME.pyc beside a data entry of that name
    "script-vs-pyc": ([("s", "s", b"code"), ("s.pyc", "x", b"data")], [("m", pyz.MODULE)], ["'s'", "'s.pyc'"]),
    "file-vs-folder": ([("a", "x", b"file"), ("a/b", "x", b"below")], (), ["'a'", "'a/b'"]),
    "entry-vs-pyz-folder": ([("PYZ.pyz_extracted", "x", b"x")], [("m", pyz.MODULE)], ["PYZ.pyz_extracted"]),
    "same-name-twice": ([("d.txt", "x", b"one"), ("d.txt", "x", b"two")], (), ["'d.txt'"]),
    "namespace-vs-entry": ([("PYZ.pyz_extracted/ns", "x", b"x")], [("ns", pyz.NAMESPACE)], ["'ns'"]),
}


@pytest.mark.parametrize("case", sorted(CLASHES))
def test_clashing_names_are_refused_before_anything_is_written(tmp_path, case):
    entries, modules, names = CLASHES[case]
    pkg = tmp_path / "clash.pkg"
    make_pkg(pkg, [("first.txt", "x", b"harmless"), *entries], modules)
    out = tmp_path / "out"
    line = one_line_failure(run_cli("extract", pkg, "--all", "-o", out), str(pkg))
    for name in names:
        assert name in line, line
    assert not out.exists() or tree(out) == {}  # not even the harmless entry


@pytest.mark.parametrize("existing", ["folder", "symlink", "fifo", "file-as-parent"])
def test_what_is_already_there_is_checked_before_anything_is_written(tmp_path, existing):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "b.txt"
    pkg = tmp_path / "a.pkg"
    make_pkg(pkg, [("a.txt", "x", b"first"), ("b.txt", "x", b"second"), ("sub/c.txt", "x", b"third")])
    if existing == "folder":
        target.mkdir()
    elif existing == "symlink":
        (tmp_path / "elsewhere").write_bytes(b"keep")
        target.symlink_to(tmp_path / "elsewhere")
    elif existing == "fifo":
        os.mkfifo(target)  # opening it for writing would wait for a reader forever
    else:
        target = out / "sub"
        target.write_bytes(b"a file where a folder is needed")
    before = tree(out)
    one_line_failure(run_cli("extract", pkg, "--all", "-o", out, timeout=60), str(target))
    assert tree(out) == before  # a.txt, listed first, was not written either
    if existing == "symlink":
        assert (tmp_path / "elsewhere").read_bytes() == b"keep"


def test_output_folder_that_is_a_file(tmp_path):
    pkg = tmp_path / "a.pkg"
    make_pkg(pkg, [("a.txt", "x", b"first")])
    out = tmp_path / "out"
    out.write_bytes(b"not a folder")
    one_line_failure(run_cli("extract", pkg, "--all", "-o", out), str(out))
    assert out.read_bytes() == b"not a folder"


def test_a_name_at_the_length_limit_is_written(tmp_path):
    pkg = tmp_path / "a.pkg"
    long_name = "L" * 250  # its temporary must not be longer than the system allows
    make_pkg(pkg, [(long_name, "x", b"long")])
    out = tmp_path / "out"
    for _ in range(2):
        result = run_cli("extract", pkg, "--all", "-o", out)
        assert result.returncode == 0, result.stderr
    assert tree(out) == {long_name: b"long"}


def test_extracting_again_into_the_same_folder_replaces_the_files(tmp_path):
    pkg = tmp_path / "a.pkg"
    make_pkg(pkg, [("a.txt", "x", b"first"), ("sub/c.txt", "x", b"third"), ("s", "s", b"code")],
             [("pkg", pyz.PACKAGE), ("pkg.mod", pyz.MODULE), ("ns", pyz.NAMESPACE)])
    out = tmp_path / "out"
    for _ in range(2):
        result = run_cli("extract", pkg, "--all", "-o", out)
        assert result.returncode == 0, result.stderr
    files = tree(out)
    assert files["a.txt"] == b"first" and files["sub/c.txt"] == b"third"
    assert files["s.pyc"][:4] == PYMAGIC and files["PYZ.pyz_extracted/pkg/mod.pyc"][:4] == PYMAGIC
    assert files["PYZ.pyz_extracted/ns"] is None
    assert not [p for p in files if p.endswith(".pyzpatch-tmp")]
