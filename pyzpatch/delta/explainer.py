"""Explaining a plan (``plan.py``) without the file it applies to: ``show``'s list of changes.

Each removed, reordered, added and changed child becomes a ``Change``, in the order the patch
names them (a container's own parts before the line that says it changed). Without the old
file, sizes are known only where the patch gives the bytes whole (an added or changed child
written as a literal); the rest stay None.
"""
from __future__ import annotations

from typing import List

from . import changes as encodings
from .changes import Change
from .plan import BytesPlan, ChildBytes, ChildCopy, ChildPlan, ChildRecompress, Literal, NodePlan, Struct


def explain_bytes(plan: BytesPlan, path: str = "") -> List[Change]:
    """The changes a bytes plan makes (none, unless it opens a container)."""
    out: List[Change] = []
    _bytes(plan, path, out)
    return out


def explain_node(plan: NodePlan, path: str = "") -> List[Change]:
    """The changes a node delta makes."""
    out: List[Change] = []
    _node(plan, path, out)
    return out


def _bytes(plan: BytesPlan, path: str, out: List[Change]) -> None:
    if isinstance(plan, Struct):
        _node(plan.node, path, out)


def _child(plan: ChildPlan, path: str, action: str, patch_bytes: int, out: List[Change]) -> Change:
    """The change of an added or changed child, after those of what it contains."""
    change = Change(path, action, patch_bytes=patch_bytes)
    if isinstance(plan, ChildCopy):
        change.encoding, change.source = encodings.COPY, plan.key
    elif isinstance(plan, ChildRecompress):
        _bytes(plan.content, path, out)
        change.encoding, change.inner = encodings.RECOMPRESS, plan.content.name
    elif isinstance(plan, ChildBytes):
        _bytes(plan.data, path, out)
        change.encoding = plan.data.name
        if isinstance(plan.data, Literal):
            change.new_size = len(plan.data.data)
    else:
        change.encoding = encodings.SAME
    return change


def _node(plan: NodePlan, path: str, out: List[Change]) -> None:
    for key, _ in plan.removed:
        out.append(Change(f"{path}/{key}", "removed"))
    if plan.order is not None:
        out.append(Change(path, "reordered", children=plan.order.count))
    for entry in plan.added:
        change = _child(entry.child, f"{path}/{entry.key}", "added", entry.patch_bytes, out)
        out.append(change)
    for entry in plan.changed:
        change = _child(entry.child, f"{path}/{entry.key}", "changed", entry.patch_bytes, out)
        out.append(change)
