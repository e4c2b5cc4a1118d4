"""The folder-patch fuzzer's cases from fixed seeds (fuzz/folders.py; fuzz/fuzz_folders.py runs
them under libFuzzer): real old and new folders with link chains, loops and ``..`` through links,
deep paths, many entries and odd modes; patches by make, without its checks, crafted and
mutated; applied as root and without capabilities. Every case checks the same properties as
the fuzzer: only one-line PyzpatchErrors, a refused apply leaves the folder and its side as they
were, an applied one gives exactly the named folder with every link inside it, and the
many-entries applies stay within the memory budget. Each case makes and removes its own
temporary folder (deep trees included), outside pytest's."""
from __future__ import annotations

import os
import sys

import pytest

from fuzz import folders

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fuzzer's cases use Linux calls")

SEEDS = {"roundtrip": 10, "unchecked": 8, "crafted": 8, "mutated": 8}


@pytest.mark.parametrize("kind,seed", [(k, s) for k, n in SEEDS.items() for s in range(n)])
def test_folder_case(kind, seed):
    folders.folder_target(folders.case_input(folders.KINDS.index(kind), seed))


@pytest.mark.parametrize("entries", [1000, pytest.param(131_000, marks=pytest.mark.slow)])
def test_many_entries(entries):
    """Applied (1,000 entries written and checked) and refused by the entry budget, with the
    forked apply's peak memory checked (the fuzzer also declares 400,000 and 2 million)."""
    with folders.Case() as case:
        folders.case_many(folders.Source(bytes(64)), case, counts=[entries])


def test_cases_leave_nothing_behind():
    import tempfile
    left = [n for n in os.listdir(tempfile.gettempdir()) if n.startswith("pyzpatch-folderfuzz-")]
    folders.folder_target(folders.case_input(0, 3))
    after = [n for n in os.listdir(tempfile.gettempdir()) if n.startswith("pyzpatch-folderfuzz-")]
    assert sorted(after) == sorted(left)


# -- what the fuzzer found (fixed: a link through a loop is refused; an unlistable or too deep
# -- folder is a PyzpatchError, not an OSError)


def _folder(root: str, name: str, tree: dict, mode: int = 0o755) -> str:
    path = os.path.join(root, name)
    folders.write_tree(path, mode, tree)
    return path


APP = {"app": ("f", 0o644, "", b"program\n")}


def test_a_link_through_a_loop_is_refused_or_resolves_inside():
    with folders.Case() as case:
        folders.write_tree(case.target, 0o755, APP)
        new = _folder(case.root, "new", dict(APP, esc=("l", 0, "esc/../..", b"")))
        try:
            patch = folders.make_folder_patch(case.target, new).data
        except folders.PyzpatchError:
            return  # refused at make: fine
        folders.apply_folder_patch(case.target, folders._write(case.path("p"), patch))
        real = os.path.realpath(os.path.join(case.target, "esc"))
        assert real.startswith(os.path.realpath(case.target)), real


def test_make_of_a_folder_deeper_than_path_max_is_a_pyzpatch_error():
    with folders.Case() as case:
        folders.write_tree(case.target, 0o755, APP)
        deep = dict(APP)
        path = ""
        for _ in range(2100):
            path = f"{path}/d" if path else "d"
            deep[path] = ("d", 0o755, "", b"")
        new = _folder(case.root, "new", deep)
        with pytest.raises(folders.PyzpatchError):
            folders.make_folder_patch(case.target, new)


def test_apply_to_a_folder_its_user_may_not_list_is_a_pyzpatch_error():
    with folders.Case() as case:
        folders.write_tree(case.target, 0o755, dict(APP, locked=("d", 0, "", b"")))
        new = _folder(case.root, "new", {"app": ("f", 0o644, "", b"program v2\n"), "locked": ("d", 0, "", b"")})
        patch = folders._write(case.path("p"), folders.make_folder_patch(case.target, new).data)
        out = folders.run_forked(lambda: folders.apply_folder_patch(case.target, patch), unprivileged=True)
        assert out["error"] is None or out.get("pyzpatch"), out["trace"]
