"""Every input the fuzzers once crashed on (fuzz/regressions/) stays harmless."""
from __future__ import annotations

from pathlib import Path

import pytest

from fuzz import targets

from .conftest import REPO

CASES = sorted((REPO / "fuzz" / "regressions").glob("*"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_saved_fuzz_input(case: Path):
    if case.name.startswith("folders-"):  # a folder-patch case (fuzz/folders.py)
        from fuzz import folders
        folders.folder_target(case.read_bytes())
        return
    target = targets.decoder_target if case.name.startswith("decoder-") else targets.formats_target
    target(case.read_bytes())  # raises on anything but PyzpatchError


def test_seeds_run_clean():
    targets.decoder_target(targets.base.seed_body())
    targets.formats_target(targets.base.OLD)
