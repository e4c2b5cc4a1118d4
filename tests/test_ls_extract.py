"""`pyzpatch ls` and `pyzpatch extract` agree with PyInstaller's own readers."""
from __future__ import annotations

import importlib.machinery
import json
from pathlib import Path

import pytest
from PyInstaller.archive.readers import CArchiveReader
from PyInstaller.loader.pyimod01_archive import ZlibArchiveReader

from .conftest import REPO, archive_files, run_cli

BUILDS = ["hello-onefile", "hello-onedir", "hello-sideload", "bigapp-onefile", "bigapp-onedir"]


def ls_json(path) -> dict:
    result = run_cli("ls", "--json", path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def check_against_readers(desc: dict, archive_file: Path) -> None:
    reader = CArchiveReader(str(archive_file))
    assert desc["archive"]["start"] == reader._start_offset
    entries = desc["archive"]["entries"]
    options = [e["name"] for e in entries if e["typecode"] == "o"]
    assert options == reader.options
    ours = {e["name"]: (e["offset"], e["stored_length"], e["uncompressed_length"], int(e["compressed"]),
                        e["typecode"]) for e in entries if e["typecode"] != "o"}
    assert ours == reader.toc
    assert len(desc["pyz"]) == 1
    pyz_desc = desc["pyz"][0]
    pyz_offset = reader.toc[pyz_desc["entry"]][0]
    zreader = ZlibArchiveReader(str(archive_file), reader._start_offset + pyz_offset)
    ours_pyz = {m["name"]: (m["typecode"], m["offset"], m["stored_length"]) for m in pyz_desc["modules"]}
    assert ours_pyz == zreader.toc
    assert pyz_desc["module_count"] == len(zreader.toc)


@pytest.mark.parametrize("build_id", BUILDS)
def test_ls_json_agrees_with_pyinstaller(all_builds, build_id):
    path = all_builds[build_id]
    desc = ls_json(path)
    assert desc["kind"] == build_id.split("-")[1]
    check_against_readers(desc, archive_files(path)[0])


def test_ls_on_onedir_executable_and_folder_agree(hello_onedir):
    by_folder = ls_json(hello_onedir)
    by_exe = ls_json(hello_onedir / "hello")
    assert by_folder["archive"] == by_exe["archive"]
    assert by_folder["kind"] == by_exe["kind"] == "onedir"
    names = {f["name"] for f in by_folder["folder"]["files"]}
    assert "hello" in names and "_internal/base_library.zip" in names


def test_ls_bare_pkg_and_pyz(hello_sideload, tmp_path):
    pkg = hello_sideload.with_suffix(".pkg")
    desc = ls_json(pkg)
    assert desc["kind"] == "pkg"
    check_against_readers(desc, pkg)
    run_cli("extract", pkg, "PYZ.pyz", "-o", tmp_path)
    pyz_desc = ls_json(tmp_path / "PYZ.pyz")
    assert pyz_desc["kind"] == "pyz"
    assert pyz_desc["pyz"][0]["modules"] == desc["pyz"][0]["modules"]


def test_ls_text_tree_and_filter(bigapp_onefile):
    result = run_cli("ls", bigapp_onefile)
    assert result.returncode == 0
    out = result.stdout
    assert "one-file executable" in out and "PYZ PYZ.pyz" in out
    assert "namespace package" in out and "nsdemo" in out
    filtered = run_cli("ls", "--json", "--filter", "email.*", bigapp_onefile)
    modules = json.loads(filtered.stdout)["pyz"][0]["modules"]
    assert modules and all(m["name"].startswith("email.") for m in modules)
    entries = json.loads(filtered.stdout)["archive"]["entries"]
    assert entries == []


def test_bigapp_has_the_promised_shape(bigapp_onefile):
    desc = ls_json(bigapp_onefile)
    modules = desc["pyz"][0]["modules"]
    kinds = {m["kind"] for m in modules}
    assert {"module", "package", "namespace package"} <= kinds
    assert len(modules) >= 300
    scripts = [e for e in desc["archive"]["entries"] if e["typecode"] == "s"]
    assert len(scripts) >= 3  # bootstrap, runtime hooks, entry point
    assert any(e["typecode"] == "x" for e in desc["archive"]["entries"])  # the data file


@pytest.mark.parametrize("build_id", ["hello-onefile", "bigapp-onefile", "bigapp-onedir"])
def test_extract_all_matches_pyinstaller_readers(all_builds, build_id, tmp_path):
    path = all_builds[build_id]
    archive_file = archive_files(path)[0]
    result = run_cli("extract", path, "--all", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    reader = CArchiveReader(str(archive_file))
    for name, (offset, length, ulength, flag, typecode) in reader.toc.items():
        if typecode in "od" or typecode == "n":
            continue
        expected = reader.extract(name)
        written = tmp_path / name
        if typecode in "smM":
            written = tmp_path / (name + ".pyc")
            data = written.read_bytes()
            assert data[16:] == expected
        else:
            assert written.read_bytes() == expected, name
    pyz_name = next(n for n, e in reader.toc.items() if e[4] == "z")
    zreader = ZlibArchiveReader(str(archive_file), reader._start_offset + reader.toc[pyz_name][0])
    root = tmp_path / f"{pyz_name}_extracted"
    for name, (typecode, _, _) in zreader.toc.items():
        parts = name.split(".")
        if typecode == 3:
            assert (root.joinpath(*parts)).is_dir()
            continue
        pyc = root.joinpath(*parts, "__init__.pyc") if typecode == 1 else root.joinpath(*parts[:-1], parts[-1] + ".pyc")
        data = pyc.read_bytes()
        assert data[16:] == zreader.extract(name, raw=True), name
    # The .pyc files carry a header Python's own loader accepts.
    some = next(root.rglob("*.pyc"))
    code = importlib.machinery.SourcelessFileLoader("m", str(some)).get_code("m")
    assert code.co_filename.endswith(".py")


def test_extract_named_entries_and_globs(bigapp_onefile, tmp_path):
    result = run_cli("extract", bigapp_onefile, "bigapp_main", "email.*", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "bigapp_main.pyc").is_file()
    assert (tmp_path / "PYZ.pyz_extracted" / "email" / "message.pyc").is_file()
    assert not (tmp_path / "PYZ.pyz_extracted" / "email" / "__init__.pyc").exists()
    assert not (tmp_path / "PYZ.pyz").exists()
    missing = run_cli("extract", bigapp_onefile, "no.such.module", "-o", tmp_path)
    assert missing.returncode != 0
    assert "no.such.module" in missing.stderr and "Traceback" not in missing.stderr


def test_pyinstaller5_builds_list_like_pyinstaller_reads_them(hello_pyi5, hello_pyi5_onedir, tmp_path):
    desc = ls_json(hello_pyi5)
    assert desc["kind"] == "onefile"
    check_against_readers(desc, hello_pyi5)
    onedir = ls_json(hello_pyi5_onedir)  # 5.x: libraries beside the executable, no _internal
    assert onedir["kind"] == "onedir"
    check_against_readers(onedir, hello_pyi5_onedir / "hello")
    result = run_cli("extract", hello_pyi5, "mod1", "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "PYZ-00.pyz_extracted" / "mod1.pyc").is_file()


def test_readme_second_command_is_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in readme
