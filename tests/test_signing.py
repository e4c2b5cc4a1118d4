"""Signed patches: keys, signing, and refusing anything a trusted key did not sign."""
from __future__ import annotations

import os
import shutil
import stat

import pytest

from fuzz import base
from pyzpatch.errors import PyzpatchError
from pyzpatch.patch.file import apply_patch, make_patch
from pyzpatch.patchfile import signing

from .conftest import run_cli, run_program, sha256_file


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    result = run_cli("keygen", folder / "release")
    assert result.returncode == 0, result.stderr
    other = run_cli("keygen", folder / "other")
    assert other.returncode == 0
    return folder


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """An old and a new executable built in memory (fuzz/base.py): what is signed does not matter
    to signatures, so these tests need no PyInstaller build. Two tests below use real ones."""
    folder = tmp_path_factory.mktemp("pair")
    (folder / "prog-v1").write_bytes(base.OLD)
    (folder / "prog-v2").write_bytes(base.NEW)
    return folder / "prog-v1", folder / "prog-v2"


@pytest.fixture(scope="module")
def signed_patch(keys, pair, tmp_path_factory):
    patch = tmp_path_factory.mktemp("signed") / "fix.patch"
    result = run_cli("make", *pair, "-o", patch, "--sign", keys / "release")
    assert result.returncode == 0, result.stderr
    return patch


def test_keygen_writes_pem_keys_with_owner_only_private_key(keys):
    private, public = keys / "release", keys / "release.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    again = run_cli("keygen", keys / "release")
    assert again.returncode != 0 and "already exists" in again.stderr
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_signed_patch_applies_with_trusted_key(keys, hello_onefile, hello_v2_onefile, tmp_path):
    signed_patch = tmp_path / "fix.patch"
    result = run_cli("make", hello_onefile, hello_v2_onefile, "-o", signed_patch, "--sign", keys / "release")
    assert result.returncode == 0, result.stderr
    target = tmp_path / "hello"
    shutil.copy2(hello_onefile, target)
    shown = run_cli("show", signed_patch)
    assert "signed by key" in shown.stdout
    result = run_cli("apply", target, signed_patch, "--trust", keys / "other.pub", "--trust", keys / "release.pub")
    assert result.returncode == 0, result.stderr
    assert sha256_file(target) == sha256_file(hello_v2_onefile)
    assert run_program(target).strip() == "hello from mod1 v2"


def _refused(target, patch, *trust):
    before = sha256_file(target)
    args = [a for key in trust for a in ("--trust", key)]
    result = run_cli("apply", target, patch, *args)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sha256_file(target) == before
    assert not [p for p in os.listdir(target.parent) if p.endswith(".pyzpatch-tmp")]
    return result.stderr


def test_unsigned_patch_refused_when_keys_are_required(keys, pair, tmp_path):
    patch = tmp_path / "unsigned.patch"
    assert run_cli("make", *pair, "-o", patch).returncode == 0
    target = tmp_path / "prog"
    shutil.copy2(pair[0], target)
    assert "not signed" in _refused(target, patch, keys / "release.pub")
    # Without --trust the same patch applies: signatures are required only when asked for.
    assert run_cli("apply", target, patch).returncode == 0


def test_untrusted_key_refused(keys, signed_patch, pair, tmp_path):
    target = tmp_path / "prog"
    shutil.copy2(pair[0], target)
    assert "not among the trusted keys" in _refused(target, signed_patch, keys / "other.pub")


@pytest.mark.parametrize("where", [0, 10, 60, 120, -80, -70])
def test_altered_signed_patch_refused_before_parsing(keys, signed_patch, pair, tmp_path, where):
    data = bytearray(signed_patch.read_bytes())
    data[where] ^= 0x01
    patch = tmp_path / "altered.patch"
    patch.write_bytes(bytes(data))
    target = tmp_path / "prog"
    shutil.copy2(pair[0], target)
    assert "signature" in _refused(target, patch, keys / "release.pub")


def test_stripped_signature_refused(keys, signed_patch, pair, tmp_path):
    patch = tmp_path / "stripped.patch"
    patch.write_bytes(signed_patch.read_bytes()[:-signing.TRAILER_SIZE])
    target = tmp_path / "prog"
    shutil.copy2(pair[0], target)
    assert "not signed" in _refused(target, patch, keys / "release.pub")


def test_signed_folder_patch(keys, hello_onedir, hello_v2_onedir, tmp_path):
    patch = tmp_path / "folder.patch"
    assert run_cli("make", hello_onedir, hello_v2_onedir, "-o", patch, "--sign", keys / "release").returncode == 0
    target = tmp_path / "hello"
    shutil.copytree(hello_onedir, target, symlinks=True)
    assert "not among" in run_cli("apply", target, patch, "--trust", keys / "other.pub").stderr
    assert run_cli("apply", target, patch, "--trust", keys / "release.pub").returncode == 0
    assert run_program(target / "hello").strip() == "hello from mod1 v2"


def test_python_api(keys, pair, tmp_path):
    old, new = pair
    made = make_patch(old, new, sign_key=signing.load_private_key(keys / "release"))
    patch = tmp_path / "api.patch"
    patch.write_bytes(made.data)
    out = tmp_path / "out"
    with pytest.raises(PyzpatchError):
        apply_patch(old, patch, out, trusted_keys=[signing.load_public_key(keys / "other.pub")])
    assert not out.exists()
    result = apply_patch(old, patch, out, trusted_keys=[signing.load_public_key(keys / "release.pub")])
    assert result.byte_identical and sha256_file(out) == sha256_file(new)


def test_bad_key_files(tmp_path, pair):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key\n")
    result = run_cli("make", *pair, "-o", tmp_path / "p", "--sign", bad)
    assert result.returncode != 0 and "bad.pem" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("apply", pair[0], tmp_path / "p", "--trust", bad)
    assert result.returncode != 0 and "Traceback" not in result.stderr
