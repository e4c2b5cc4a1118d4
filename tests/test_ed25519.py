"""pyzpatch's own Ed25519 verifier: RFC 8032 vectors, and agreement with cryptography."""
from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pyzpatch.patchfile import ed25519

from .conftest import REPO, run_cli

# RFC 8032, section 7.1, tests 1, 2, 3 and SHA(abc): (public key, message, signature).
RFC_VECTORS = [
    ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b4"
     "6bd25bf5f0595bbe24655141438e7a100b"),
    ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c"
     "387b2eaeb4302aeeb00d291612bb0c00"),
    ("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc659"
     "4a7c15e9716ed28dc027beceea1ec40a"),
    ("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd"
     "454d4423643ce80e2a9ac94fa54ca49f",
     "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e030"
     "3dca179c138ac17ad9bef1177331a704"),
]


def raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def reference(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
        return True
    except Exception:
        return False


@pytest.mark.parametrize("public,message,signature", RFC_VECTORS)
def test_rfc8032_vectors(public, message, signature):
    public, message, signature = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert ed25519.verify(public, message, signature)
    assert not ed25519.verify(public, message + b"\0", signature)
    assert not ed25519.verify(public, message, signature[:-1] + bytes([signature[-1] ^ 1]))


def test_agrees_with_cryptography_on_valid_altered_and_random_signatures():
    rng = random.Random(8032)
    for i in range(60):  # 420 cases; the fuzzers and tests below cover more shapes
        key = Ed25519PrivateKey.generate()
        public = raw(key.public_key())
        message = rng.randbytes(rng.randrange(0, 300))
        signature = key.sign(message)
        assert ed25519.verify(public, message, signature), i
        altered = bytearray(signature)
        altered[rng.randrange(64)] ^= 1 << rng.randrange(8)
        cases = [
            (public, message, bytes(altered)),
            (public, message + b"x", signature),
            (bytes([public[0] ^ 1]) + public[1:], message, signature),
            (public, message, rng.randbytes(64)),
            (rng.randbytes(32), message, signature),
            (public, message, signature[:32] + (int.from_bytes(signature[32:], "little")
                                                 + ed25519.L).to_bytes(32, "little")),  # S + L
        ]
        for case in cases:
            assert ed25519.verify(*case) == reference(*case), (i, case)


def test_non_canonical_and_invalid_encodings_are_refused():
    key = Ed25519PrivateKey.generate()
    message = b"m"
    signature = key.sign(message)
    public = raw(key.public_key())
    non_canonical_y = (ed25519.P + 1).to_bytes(32, "little")  # y >= p
    assert not ed25519.verify(non_canonical_y, message, signature)
    assert not ed25519.verify(public, message, non_canonical_y + signature[32:])
    assert not ed25519.verify(public[:31], message, signature)
    assert not ed25519.verify(public, message, signature[:63])


def test_pem_keys_are_read_without_cryptography(tmp_path):
    assert run_cli("keygen", tmp_path / "k").returncode == 0
    pem = (tmp_path / "k.pub").read_bytes()
    loaded = serialization.load_pem_public_key(pem)
    assert ed25519.public_key_from_pem(pem) == raw(loaded)
    assert ed25519.public_key_from_pem(pem.replace(b"PUBLIC", b"PRIVATE")) is None
    assert ed25519.public_key_from_pem((tmp_path / "k").read_bytes()) is None
    assert ed25519.public_key_from_pem(b"-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----\n") is None


def test_signed_apply_works_without_cryptography(hello_onefile, hello_v2_onefile, tmp_path):
    """A device without cryptography: trusted keys still checked, bad signatures still refused."""
    assert run_cli("keygen", tmp_path / "release").returncode == 0
    assert run_cli("keygen", tmp_path / "other").returncode == 0
    patch = tmp_path / "fix.patch"
    assert run_cli("make", hello_onefile, hello_v2_onefile, "-o", patch, "--sign", tmp_path / "release").returncode == 0
    tampered = tmp_path / "tampered.patch"
    data = bytearray(patch.read_bytes())
    data[20] ^= 1
    tampered.write_bytes(bytes(data))
    code = f"""
import sys
sys.modules['cryptography'] = None  # as if not installed
from pyzpatch import PyzpatchError
from pyzpatch.patch.file import apply_patch
from pyzpatch.patchfile.signing import load_public_key
release, other = load_public_key({str(tmp_path / 'release.pub')!r}), load_public_key({str(tmp_path / 'other.pub')!r})
for patch, keys in (({str(tampered)!r}, [release]), ({str(patch)!r}, [other])):
    try:
        apply_patch({str(hello_onefile)!r}, patch, {str(tmp_path / 'out')!r}, trusted_keys=keys)
        print('ACCEPTED')
    except PyzpatchError as exc:
        print('refused:', exc.problem)
apply_patch({str(hello_onefile)!r}, {str(patch)!r}, {str(tmp_path / 'out')!r}, trusted_keys=[release])
print('applied', 'cryptography' in sys.modules and sys.modules['cryptography'] is not None)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "refused: bad signature: the patch was altered after signing"
    assert lines[1].startswith("refused: is signed by key ") and lines[1].endswith("not among the trusted keys")
    assert lines[2:] == ["applied False"]
