"""Hostile patches: mutated bodies (re-checksummed so they reach the decoder) never crash it.

Only pyzpatch's documented error type may escape, and nothing may hang: every mutant is
decoded, described, and streamed out against the real base file.
"""
from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyzpatch.delta.engine import decode_file, explain
from pyzpatch.errors import PyzpatchError
from pyzpatch.formats.node import flatten
from pyzpatch.fs.filebytes import FileBytes
from pyzpatch.patch.file import make_patch
from pyzpatch.patchfile import codec as patchfile
from pyzpatch.patchfile.codec import Body, piece_limit

from .conftest import NO_HANG


@pytest.fixture(scope="module")
def real_patch(hello_onefile, hello_v2_onefile):
    made = make_patch(hello_onefile, hello_v2_onefile)
    header, body = patchfile.decode(made.data)
    return header, body


def mutate(data: bytes, draw) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "byte", "truncate", "insert", "delete", "varint", "dup"]))
        if not out:
            out += draw(st.binary(min_size=1, max_size=8))
            continue
        pos = draw(st.integers(0, len(out) - 1))
        if action == "flip":
            out[pos] ^= 1 << draw(st.integers(0, 7))
        elif action == "byte":
            out[pos] = draw(st.integers(0, 255))
        elif action == "truncate":
            del out[pos:]
        elif action == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del out[pos:pos + draw(st.integers(1, 8))]
        elif action == "varint":  # a large number where a small one was
            out[pos:pos + 1] = draw(st.sampled_from([b"\xff\xff\xff\x7f", b"\x80\x80\x80\x80\x10", b"\x00", b"\x7f"]))
        elif action == "dup":
            end = min(len(out), pos + draw(st.integers(1, 32)))
            out[pos:pos] = out[pos:end]
    return bytes(out)


def exercise(header, body, old) -> None:
    blob = patchfile.encode(header, body)
    h2, b2 = patchfile.decode(blob)
    limit = piece_limit(h2)
    explain(b2, limit)
    piece = decode_file(b2, old, limit).result
    written = 0
    for chunk in flatten([piece]):
        written += len(chunk)
        if written > 2 * h2.new_size + 1024:
            break


@settings(max_examples=200, deadline=NO_HANG, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_patch_bodies_raise_only_pyzpatch_errors(real_patch, hello_onefile, data):
    header, body = real_patch
    which = data.draw(st.sampled_from(["ops", "diff", "lit", "ops", "ops"]))
    parts = {"ops": body.ops, "diff": body.diff, "lit": body.lit}
    parts[which] = mutate(parts[which], data.draw)
    with FileBytes(hello_onefile) as old:
        try:
            exercise(header, Body(parts["ops"], parts["diff"], parts["lit"]), old.data)
        except PyzpatchError:
            pass


@settings(max_examples=150, deadline=NO_HANG)
@given(data=st.data())
def test_mutated_patch_files_raise_only_pyzpatch_errors(real_patch, data):
    """Mutations of the whole file, header included (caught by the checksum or the header checks)."""
    header, body = real_patch
    blob = patchfile.encode(header, body)
    mutant = mutate(blob, data.draw)
    if data.draw(st.booleans()) and len(mutant) > 8:  # fix the CRC so header mutations get parsed
        mutant = mutant[:-4] + struct.pack("<I", __import__("zlib").crc32(mutant[:-4]))
    try:
        h2, b2 = patchfile.decode(mutant)
        explain(b2, piece_limit(h2))
    except PyzpatchError:
        pass
