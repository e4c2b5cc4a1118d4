"""The bounded TOC reader reads what marshal writes; the writer reproduces PyInstaller's bytes."""
from __future__ import annotations

import marshal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyzpatch.errors import FormatError
from pyzpatch.formats import marshal_toc

names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300)
rows = st.lists(st.tuples(names, st.integers(0, 3), st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1)),
                max_size=40, unique_by=lambda r: r[0])


def fresh_int(value: int) -> int:
    return int.from_bytes(value.to_bytes(8, "little"), "little")


def pyinstaller_style_dumps(rows_):
    """Build and marshal a TOC the way PyInstaller's ZlibArchiveWriter does (shared names,
    a live loop variable holding the last row)."""
    code_dict = {name: object() for name, *_ in rows_}
    toc = []
    toc_entry = None
    for name in code_dict:
        typecode, offset, length = next(r[1:] for r in rows_ if r[0] == name)
        # PyInstaller's offsets and lengths are fresh objects (fp.tell(), len()), not shared.
        toc_entry = (name, (typecode, fresh_int(offset), fresh_int(length)))
        toc.append(toc_entry)
    data = marshal.dumps(toc)
    del toc_entry
    return data


@given(rows)
def test_reader_agrees_with_marshal(rows_):
    toc = [(n, (t, o, length)) for n, t, o, length in rows_]
    raw = marshal.dumps(toc)
    parsed, used = marshal_toc.read_toc(raw)
    assert used == len(raw)
    assert parsed == [(n, t, o, length) for n, (t, o, length) in marshal.loads(raw)]


@given(rows)
def test_writer_reproduces_pyinstaller_style(rows_):
    raw = pyinstaller_style_dumps(rows_)
    parsed, _ = marshal_toc.read_toc(raw)
    style = marshal_toc.detect_style(raw)
    assert style is not None
    assert marshal_toc.write_toc(parsed, style) == raw


@pytest.mark.parametrize("raw", [
    b"",  # nothing
    b"[",  # count missing
    b"[\xff\xff\xff\x7f",  # count far beyond the bytes present
    b")\x02",  # a tuple, not a list
    b"[\x01\x00\x00\x00r\x05\x00\x00\x00",  # back-reference to nothing
    b"[\x01\x00\x00\x00c",  # code object: not in the subset
    b"[\x01\x00\x00\x00)\x02z\x09abc",  # string longer than the data
])
def test_reader_refuses_garbage(raw):
    with pytest.raises(FormatError):
        marshal_toc.read_toc(raw)


def test_deep_nesting_is_refused():
    raw = b"[\x01\x00\x00\x00" * 50 + b"N"
    with pytest.raises(FormatError):
        marshal_toc.read_toc(raw)
