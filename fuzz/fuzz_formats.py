"""atheris harness: hostile archives (executables, CArchives, PYZs, zips).

    python fuzz/fuzz_formats.py -max_total_time=600 fuzz/corpus-formats

Each input is parsed by every codec that recognises it (the way `ls` opens files), every entry
and module is decompressed, and every parsed model is rebuilt. Only PyzpatchError may escape.
"""
import os
import sys

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports():
    from pyzpatch.errors import PyzpatchError
    from pyzpatch.formats import carchive, executable, pyz, registry, ziparchive
    from pyzpatch.formats.node import child_content

import base  # noqa: E402


def one_input(data: bytes) -> None:
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
        kind = registry.sniff(data)
        if kind:
            node = registry.open_node(kind, data)
            for child in node.children:
                if len(child.data) < 1 << 20:
                    child_content(child, child.key)
    except PyzpatchError:
        pass


def main() -> None:
    corpus = [a for a in sys.argv[1:] if not a.startswith("-")]
    for folder in corpus:
        os.makedirs(folder, exist_ok=True)
        for name, blob in (("seed-exe", base.OLD), ("seed-exe-new", base.NEW)):
            path = os.path.join(folder, name)
            if not os.path.exists(path):
                with open(path, "wb") as fp:
                    fp.write(blob)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
