"""Ed25519 signatures on patches.

Making keys and signing need the ``cryptography`` package (``pip install 'pyzpatch[sign]'``).
Checking a signature does not: it uses ``cryptography`` when it is installed and pyzpatch's own
verifier (ed25519.py, imported here as pure_ed25519) otherwise, so a frozen program can check
patches without carrying ``cryptography``. Public keys are read from PEM without it too.

A signed patch is the unsigned patch followed by a trailer:

    signature (64 bytes) | key id (8 bytes) | "PZS1"

The signature covers every byte before the trailer: the whole patch, header, body and checksum,
which is everything the applier reads. The key id is the first 8 bytes of the SHA-256 of the
signing key's public key (raw 32 bytes); it names the key, it does not make it trusted. With
trusted keys given, a patch without a valid signature from one of them is refused before its body
is decompressed or parsed.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

from ..errors import PyzpatchError, SignatureError
from ..fs.regular import read_regular
from . import ed25519 as pure_ed25519

TRAILER_MAGIC = b"PZS1"
SIGNATURE_SIZE = 64
KEY_ID_SIZE = 8
TRAILER_SIZE = SIGNATURE_SIZE + KEY_ID_SIZE + len(TRAILER_MAGIC)
# A PEM key file is about 120 bytes; this leaves room for comments and other text around it.
MAX_KEY_FILE_SIZE = 64 * 1024


def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise PyzpatchError("signatures need the 'cryptography' package: pip install 'pyzpatch[sign]'") from None
    return ed25519, serialization, InvalidSignature


@dataclass
class Signature:
    signature: bytes
    key_id: bytes


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key as its raw 32 bytes (what ``load_public_key`` returns)."""
    raw: bytes


def raw_public_key(public_key) -> bytes:
    """The raw 32 bytes of a ``PublicKey`` or of a ``cryptography`` Ed25519 public key."""
    if isinstance(public_key, PublicKey):
        return public_key.raw
    _, serialization, _ = _crypto()
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key) -> bytes:
    return hashlib.sha256(raw_public_key(public_key)).digest()[:KEY_ID_SIZE]


def generate_keys(private_path, public_path=None) -> Tuple[str, str]:
    """Write a new private key (PEM, PKCS#8, owner-only permissions) and its public key (PEM)."""
    ed25519, serialization, _ = _crypto()
    private_path = os.fspath(private_path)
    public_path = os.fspath(public_path) if public_path else private_path + ".pub"
    for path in (private_path, public_path):
        if os.path.lexists(path):
            raise PyzpatchError("already exists; refusing to overwrite a key", source=path)
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fp:
        fp.write(private_pem)
    os.chmod(private_path, 0o600)
    with open(public_path, "xb") as fp:
        fp.write(public_pem)
    return private_path, public_path


def _read(path) -> bytes:
    return read_regular(path, MAX_KEY_FILE_SIZE, "key file")


def load_private_key(path):
    ed25519, serialization, _ = _crypto()
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"not a usable private key ({exc})", source=os.fspath(path)) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignatureError("not an Ed25519 private key", source=os.fspath(path))
    return key


def load_public_key(path):
    try:
        return public_key_from_pem(_read(path))
    except PyzpatchError as exc:
        raise exc.with_source(os.fspath(path))


def public_key_from_pem(pem: bytes) -> PublicKey:
    """An Ed25519 public key from its PEM text (as ``keygen`` writes it, or embedded in a program)."""
    raw = pure_ed25519.public_key_from_pem(bytes(pem))
    if raw is None:
        raise SignatureError("not an Ed25519 public key in PEM form (-----BEGIN PUBLIC KEY-----)")
    return PublicKey(raw)


def _signature_valid(public_key, signature: bytes, payload: bytes) -> bool:
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        return pure_ed25519.verify(raw_public_key(public_key), payload, signature)
    key = Ed25519PublicKey.from_public_bytes(raw_public_key(public_key))
    try:
        key.verify(signature, payload)
    except InvalidSignature:
        return False
    return True


def sign(patch: bytes, private_key) -> bytes:
    """The patch with a signature trailer appended."""
    signature = private_key.sign(bytes(patch))
    return bytes(patch) + signature + key_id(private_key.public_key()) + TRAILER_MAGIC


def split(blob) -> Tuple[bytes, Optional[Signature]]:
    """(the patch without its trailer, the signature) or (the blob, None) if it is unsigned."""
    if len(blob) > TRAILER_SIZE and bytes(blob[-len(TRAILER_MAGIC):]) == TRAILER_MAGIC:
        body = bytes(blob[:-TRAILER_SIZE])
        sig = bytes(blob[-TRAILER_SIZE:-TRAILER_SIZE + SIGNATURE_SIZE])
        kid = bytes(blob[-KEY_ID_SIZE - len(TRAILER_MAGIC):-len(TRAILER_MAGIC)])
        return body, Signature(sig, kid)
    return bytes(blob), None


def verified_payload(blob, trusted_keys: Iterable) -> bytes:
    """The unsigned patch inside ``blob``, if a trusted key signed it; else PyzpatchError. Nothing
    in the patch is parsed before this check."""
    trusted: List = list(trusted_keys)
    payload, signature = split(blob)
    if signature is None:
        raise SignatureError("is not signed, and a signature from a trusted key is required")
    for key in trusted:
        if key_id(key) == signature.key_id:
            if not _signature_valid(key, signature.signature, payload):
                raise SignatureError("bad signature: the patch was altered after signing")
            return payload
    raise SignatureError(f"is signed by key {signature.key_id.hex()}, which is not among the trusted keys")
