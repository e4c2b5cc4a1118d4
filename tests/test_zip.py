"""Zip archives: exact round trips, and patches member by member (zipapps, interpreter + zip)."""
from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
import zipapp
import zipfile

import pytest

from pyzpatch.formats import ziparchive
from pyzpatch.formats.carchive import entry_content
from pyzpatch.inspect.bundle import open_bundle

from .conftest import run_cli, sha256_file


def make_zip(members, compression=zipfile.ZIP_DEFLATED, comment=b"", prefix=b"") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.comment = comment
    return prefix + buf.getvalue()


class _Unseekable(io.RawIOBase):
    """A stream zipfile cannot seek in, so it writes data descriptors after each member."""

    def __init__(self):
        self.data = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.data += b
        return len(b)


MEMBERS = {"__main__.py": "print('hi')\n", "pkg/__init__.py": "", "pkg/mod.py": "X = 1\n" * 500,
           "data/blob.bin": bytes(range(256)) * 40}


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
# A fixed prefix, not os.urandom: pytest-xdist workers must collect the same parameters.
@pytest.mark.parametrize("prefix", [b"", b"#!/usr/bin/env python3\n", random.Random(5000).randbytes(5000)])
def test_zipfile_output_round_trips(compression, prefix):
    blob = make_zip(MEMBERS, compression, comment=b"a comment", prefix=prefix)
    model = ziparchive.parse(blob)
    assert model.layout is None
    assert ziparchive.build(model) == blob
    assert len(model.prefix) == len(prefix)


def test_data_descriptors_round_trip():
    stream = _Unseekable()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in MEMBERS.items():
            with zf.open(name, "w") as fp:
                fp.write(data.encode() if isinstance(data, str) else data)
    blob = bytes(stream.data)
    model = ziparchive.parse(blob)
    assert all(m.descriptor for m in model.members)
    assert ziparchive.build(model) == blob


def test_absolute_offsets_round_trip(tmp_path):
    """`zip -A` style: the central directory's offsets count from the start of the file."""
    inner = make_zip(MEMBERS)
    prefix = b"\x7fELF" + bytes(1020)
    model = ziparchive.parse(prefix + inner)
    model.offset_shift = 0  # re-based: what `zip -A` writes
    adjusted = ziparchive.build(model)
    again = ziparchive.parse(adjusted)
    assert again.offset_shift == 0
    assert ziparchive.build(again) == adjusted
    with zipfile.ZipFile(io.BytesIO(adjusted)) as zf:
        assert zf.read("pkg/mod.py") == MEMBERS["pkg/mod.py"].encode()


def test_pyinstaller_base_library_round_trips(hello_onefile, hello_onedir):
    with open_bundle(hello_onefile) as bundle:
        entry = next(e for e in bundle.archive.entries if e.name == "base_library.zip")
        blob = entry_content(entry)
    assert ziparchive.build(ziparchive.parse(blob)) == blob
    on_disk = (hello_onedir / "_internal" / "base_library.zip").read_bytes()
    model = ziparchive.parse(on_disk)
    assert len(model.members) > 100
    assert ziparchive.build(model) == on_disk


@pytest.mark.parametrize("bad", [
    b"PK\x05\x06\0\0\0\0\x05\0\x05\0\xff\0\0\0\0\0\0\0\0\0",  # 5 entries in a directory that is not there
    b"PK\x03\x04" + bytes(60) + b"PK\x05\x06\0\0\0\0\x01\0\x01\0\x2e\0\0\0\0\0\0\0\0\0",
    b"not a zip at all" * 10,
])
def test_bad_zips_raise_format_errors(bad):
    from pyzpatch.errors import FormatError
    with pytest.raises(FormatError):
        ziparchive.parse(bad)


def test_zipapp_with_shebang_is_patched_member_by_member(tmp_path):
    def app(version):
        src = tmp_path / f"src{version}"
        src.mkdir()
        (src / "__main__.py").write_text("import helper\nhelper.run()\n")
        (src / "helper.py").write_text("def run():\n    print('zipapp v%d')\n" % version +
                                       "".join(f"def f{i}():\n    return {i}\n" for i in range(300)))
        out = tmp_path / f"app{version}.pyz"
        zipapp.create_archive(src, out, interpreter="/usr/bin/env python3", compressed=True)
        return out
    old, new = app(1), app(2)
    patch = tmp_path / "p.patch"
    assert run_cli("make", old, new, "-o", patch).returncode == 0
    desc = json.loads(run_cli("show", "--json", patch).stdout)
    assert desc["structural"]
    assert any(c["path"].endswith("helper.py") and c["how"].startswith("recompressed") for c in desc["changes"])
    assert patch.stat().st_size < 400
    assert run_cli("apply", old, patch).returncode == 0
    assert old.read_bytes() == new.read_bytes()
    assert subprocess.run([sys.executable, str(old)], capture_output=True, text=True).stdout == "zipapp v2\n"


def test_interpreter_plus_zip_executable(tmp_path):
    """`cat python3 app.zip > myexe`: runs as `./myexe myexe`, patched member by member."""
    interpreter = os.path.realpath(sys.executable)

    def build(version):
        blob = make_zip({"__main__.py": "import lib\nlib.main()\n",
                         "lib.py": "def main():\n    print('exe v%d')\n" % version + "# padding\n" * 2000})
        exe = tmp_path / f"myexe{version}"
        with open(exe, "wb") as out, open(interpreter, "rb") as python:
            shutil.copyfileobj(python, out)
            out.write(blob)
        exe.chmod(0o755)
        return exe

    old, new = build(1), build(2)

    def run(exe):
        return subprocess.run([str(exe), str(exe)], capture_output=True, text=True, timeout=60).stdout

    assert run(old) == "exe v1\n"
    patch = tmp_path / "p.patch"
    made = run_cli("make", old, new, "-o", patch)
    assert made.returncode == 0, made.stderr
    desc = json.loads(run_cli("show", "--json", patch).stdout)
    assert desc["structural"]
    assert any(c["path"].endswith("lib.py") for c in desc["changes"])
    assert patch.stat().st_size < 500
    listing = json.loads(run_cli("ls", "--json", old).stdout)
    assert {m["name"] for m in listing["zip"]["members"]} == {"__main__.py", "lib.py"}
    assert run_cli("apply", old, patch).returncode == 0
    assert sha256_file(old) == sha256_file(new)
    assert run(old) == "exe v2\n"
