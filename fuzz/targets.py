"""The fuzz targets, importable without atheris: the harnesses run them under libFuzzer, and
tests/test_fuzz_regressions.py replays every saved input in fuzz/regressions/ through them."""
from __future__ import annotations

from pyzpatch.delta.engine import decode_file, explain
from pyzpatch.errors import PyzpatchError
from pyzpatch.formats import carchive, executable, pyz, registry, ziparchive
from pyzpatch.formats.node import child_content, flatten
from pyzpatch.patchfile import codec as patchfile
from pyzpatch.patchfile.codec import Body, piece_limit

from . import base

HEADER = base.patch_header()


def _split(data: bytes) -> Body:
    try:
        return patchfile.split_body(data)
    except PyzpatchError:
        return Body(bytes(data), b"", b"")


def decoder_target(data: bytes) -> None:
    """A patch body against the base: encode it validly, explain it, apply it, stream it."""
    try:
        blob = patchfile.encode(HEADER, _split(data))
        header, body = patchfile.decode(blob)
        limit = piece_limit(header)
        explain(body, limit)
        piece = decode_file(body, base.OLD, limit).result
        size = 0
        for chunk in flatten([piece]):
            size += len(chunk)
            if size > 4 * len(base.NEW) + 4096:
                break
    except PyzpatchError:
        pass


def formats_target(data: bytes) -> None:
    """Raw bytes through every codec and the registry, as `ls` and `make` open files."""
    for codec in (executable, carchive, pyz, ziparchive):
        try:
            model = codec.parse(data)
            codec.build(model)
            if codec is carchive:
                for entry in model.entries:
                    carchive.entry_content(entry)
            if codec is pyz:
                for entry in model.entries:
                    pyz.module_content(entry)
        except PyzpatchError:
            pass
    try:
        node = registry.open_any_node(data).value
        if node is not None:
            for child in node.children:
                if len(child.data) < 1 << 20:
                    child_content(child, child.key)
    except PyzpatchError:
        pass
