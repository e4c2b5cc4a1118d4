"""Ed25519 signature verification in pure Python (RFC 8032, section 5.1.7), for devices.

A self-updating program must check signatures, but the ``cryptography`` package adds several
megabytes to every frozen program (docs/bench-selfupdate.md). Verification needs no secret, so a
plain implementation has no side channel to guard; this one follows RFC 8032 and is checked
against the RFC's test vectors and, in the test suite, against ``cryptography`` on valid,
altered and random signatures. Signing and key generation stay with ``cryptography``
(signing.py); ``signing.verified_payload`` uses ``cryptography`` when it is installed and this
module otherwise.

Checks, as OpenSSL's ``ED25519_verify`` (which ``cryptography`` uses) makes them: the public
key and R must decode to curve points (y < p), S must be below the group order L, and
[S]B must equal R + [k]A with k = SHA-512(R || A || M) mod L, compared by R's encoding
(cofactorless).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Optional, Tuple

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

# Points in extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z.
Point = Tuple[int, int, int, int]
_IDENTITY: Point = (0, 1, 1, 0)


def _add(p: Point, q: Point) -> Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return e * f % P, g * h % P, f * g % P, e * h % P


def _multiply(s: int, p: Point) -> Point:
    q = _IDENTITY
    while s > 0:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _recover_x(y: int, sign: int) -> Optional[int]:
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


_BY = 4 * pow(5, P - 2, P) % P
_BX = _recover_x(_BY, 0)
BASE: Point = (_BX, _BY, 1, _BX * _BY % P)


def _decompress(s: bytes) -> Optional[Point]:
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return x, y, 1, x * y % P


def _compress(p: Point) -> bytes:
    zinv = pow(p[2], P - 2, P)
    x, y = p[0] * zinv % P, p[1] * zinv % P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` (64 bytes) is a valid Ed25519 signature of ``message`` by the raw
    32-byte ``public_key``."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decompress(public_key)
    if a is None:
        return False
    r_bytes, s = signature[:32], int.from_bytes(signature[32:], "little")
    if s >= L or _decompress(r_bytes) is None:
        return False
    k = int.from_bytes(hashlib.sha512(r_bytes + public_key + message).digest(), "little") % L
    # [S]B - [k]A must be R: compare encodings.
    ka = _multiply(k, a)
    neg_ka = ((P - ka[0]) % P, ka[1], ka[2], (P - ka[3]) % P)
    return _compress(_add(_multiply(s, BASE), neg_ka)) == r_bytes


# The DER prefix of an Ed25519 SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { OID 1.3.101.112 },
# BIT STRING (33 bytes: no unused bits, then the 32-byte key) }. PEM public keys are this plus
# the key, base64-encoded.
SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def public_key_from_pem(pem: bytes) -> Optional[bytes]:
    """The raw 32-byte key of a PEM ``PUBLIC KEY`` holding an Ed25519 key, or None."""
    lines = [line.strip() for line in bytes(pem).splitlines() if line.strip()]
    try:
        begin = lines.index(b"-----BEGIN PUBLIC KEY-----")
        end = lines.index(b"-----END PUBLIC KEY-----", begin)
        der = base64.b64decode(b"".join(lines[begin + 1:end]), validate=True)
    except (ValueError, binascii.Error):
        return None
    if len(der) != len(SPKI_PREFIX) + 32 or not der.startswith(SPKI_PREFIX):
        return None
    return der[len(SPKI_PREFIX):]
