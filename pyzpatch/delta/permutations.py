"""Orders of children as numbers: Lehmer ranks of permutations, and runs of consecutive values.

A rebuild that reorders children (PyInstaller 6 writes base_library.zip in module-graph order,
which changes between builds) is written as the rank of its permutation, the fewest bits any
encoding can spend on a random order, or of the permutation of its runs when whole runs moved.
"""
from __future__ import annotations

import math
from typing import Tuple

from ..errors import FormatError


def rank_permutation(perm) -> Tuple[int, int]:
    """Lehmer rank of a permutation of ``range(n)``: ``(rank, n)``; ``0 <= rank < n!``.

    A random order of n items costs log2(n!) bits this way, the least any encoding can spend.
    """
    n = len(perm)
    # Fenwick tree over the still-unused values, so each step is O(log n).
    tree = [0] * (n + 1)
    for i in range(1, n + 1):
        tree[i] += 1
        j = i + (i & -i)
        if j <= n:
            tree[j] += tree[i]

    def count_below(value: int) -> int:  # unused values < value
        total, i = 0, value
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    def remove(value: int) -> None:
        i = value + 1
        while i <= n:
            tree[i] -= 1
            i += i & -i

    rank = 0
    for position, value in enumerate(perm):
        rank = rank * (n - position) + count_below(value)
        remove(value)
    return rank, n


def unrank_permutation(rank: int, n: int) -> list:
    digits = []
    for base in range(1, n + 1):
        rank, digit = divmod(rank, base)
        digits.append(digit)
    if rank:
        raise FormatError("patch body", "permutation rank out of range")
    digits.reverse()
    unused = list(range(n))
    return [unused.pop(d) for d in digits]


def permutation_bytes(n: int) -> int:
    """Bytes needed to store a rank below n!."""
    return (math.factorial(n) - 1).bit_length() // 8 + 1 if n > 1 else 0


def order_runs(perm) -> list:
    """Split a permutation into maximal runs of consecutive values: ``[(start, length), ...]``."""
    runs = []
    for value in perm:
        if runs and runs[-1][0] + runs[-1][1] == value:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((value, 1))
    return runs
