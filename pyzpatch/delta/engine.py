"""The diff engine's entry points.

``make`` encodes with ``Encoder`` (encoder.py). A patch body, whatever it is used for, is first
read into a plan without the old file (reader.py, which checks every bound that needs no old
file); the plan is then applied to the old file (applier.py) or explained (explainer.py), so
``apply`` and ``show`` read a body the same way and refuse the same malformed ones.

``body`` is anything with the three streams as ``ops``, ``diff`` and ``lit`` (a
``patchfile.codec.Body``); ``limit`` is the most one piece may take, and also the one memory
budget for everything applying allocates (``patchfile.codec.piece_limit``): the decompressed
body itself is charged first, then the plan's entries, then what the applier builds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from ..formats.node import Node
from .applier import Applier, Deferred
from .changes import STRUCT, Change
from .explainer import explain_bytes, explain_node
from .reader import PlanReader, read_bytes_plan, read_node_plan

__all__ = ["Change", "Decoded", "Deferred", "Explanation", "decode_file", "decode_folder", "explain"]


def __getattr__(name: str):
    """``Encoder`` and ``Streams``, imported on first use: only ``make`` encodes, and a frozen
    program that only applies patches leaves the encoder out (pyzpatch's PyInstaller hook)."""
    if name in ("Encoder", "Streams"):
        from . import encoder
        return getattr(encoder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class Decoded:
    """A file patch applied: the new bytes (bytes-like, or a LazyBlob built as it is read), and
    how many decompressed bytes this machine compressed again to make them."""

    result: object
    recompressed: int


@dataclass
class Explanation:
    """What a patch body does, without its old file: the root operation's name (``struct`` for
    a patch that opens the file or folder as a container) and the changes, in patch order."""

    root: str
    changes: List[Change]

    @property
    def structural(self) -> bool:
        return self.root == STRUCT


def body_size(body) -> int:
    """The bytes a decompressed body holds, charged to the budget before anything else."""
    return len(body.ops) + len(body.diff) + len(body.lit)


def decode_file(body, old, limit: int, reproduced: Optional[dict] = None) -> Decoded:
    """The new file that ``body`` makes of the old file's bytes ``old``. ``reproduced``: make's
    own check passes what its encoder re-compressed already (``Encoder.reproduced``)."""
    reader = PlanReader(body.ops, body.diff, body.lit, limit, limit - body_size(body))
    plan = reader.bytes_plan()
    reader.finish()
    applier = Applier(limit, reader.budget_left, reproduced)
    result = applier.bytes(plan, old, "")
    return Decoded(result, applier.recompressed)


def decode_folder(body, old: Node, limit: int, defer: bool = False) -> Node:
    """The new node that ``body`` (whose root is a node delta, as a folder patch's is) makes of
    the old node ``old``. With ``defer``, each added or changed file is made only when its
    ``Deferred`` data is resolved (applier.py): a folder's apply holds one at a time."""
    reader = PlanReader(body.ops, body.diff, body.lit, limit, limit - body_size(body))
    plan = reader.node_plan(old.kind)
    reader.finish()
    return Applier(limit, reader.budget_left).node(plan, old, "", defer=defer)


def explain(body, limit: int, node_kind: Optional[str] = None) -> Explanation:
    """What ``body`` does, for ``show``. ``node_kind``: the kind of node its root changes (a
    folder patch's ``folder``), or None for a file patch."""
    budget = limit - body_size(body)
    if node_kind is not None:
        return Explanation(STRUCT, explain_node(read_node_plan(body.ops, body.diff, body.lit, limit, node_kind,
                                                               budget)))
    plan = read_bytes_plan(body.ops, body.diff, body.lit, limit, budget)
    return Explanation(plan.name, explain_bytes(plan))
