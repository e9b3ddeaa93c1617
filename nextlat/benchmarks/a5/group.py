"""The alternating group A5: the 60 even permutations of five elements.

Element ids follow the convention of the A5 word-problem data (Merrill, Petty and Sabharwal,
"The Illusion of State"): S5 is every permutation of (1, 2, 3, 4, 5) in lexicographic order
of one-line notation, and A5 keeps the even ones in that order. So id 0 is the identity
(1 2 3 4 5), ids 1..3 are (1 2 4 5 3), (1 2 5 3 4), (1 3 2 5 4), and id 59 is (5 4 3 2 1).

The product ``a * b`` has one-line form ``c[i] = a[b[i]]``: b is applied first. A word
x_1 x_2 ... x_t has the state p_t = x_1 * x_2 * ... * x_t, computed left to right
(p_t = p_{t-1} * x_t from p_0 = identity): the target of position t.
"""
from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

ORDER = 60
IDENTITY = 0


def _parity(perm: tuple[int, ...]) -> int:
    """0 for an even permutation, 1 for an odd one (the parity of its inversions)."""
    return sum(perm[i] > perm[j] for i in range(len(perm)) for j in range(i + 1, len(perm))) % 2


@lru_cache(maxsize=1)
def elements() -> np.ndarray:
    """(60, 5) int8: the one-line form of each element, 0-based (row i is element id i)."""
    perms = [p for p in itertools.permutations(range(5)) if _parity(p) == 0]
    out = np.array(perms, dtype=np.int8)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=1)
def table() -> np.ndarray:
    """(60, 60) int64 Cayley table: ``table()[a, b]`` is the id of a * b (b applied first)."""
    els = elements().astype(np.int64)
    index = {tuple(p): i for i, p in enumerate(els.tolist())}
    composed = np.take_along_axis(els[:, None, :].repeat(ORDER, 1),
                                  els[None, :, :].repeat(ORDER, 0), axis=2)  # [a, b, i] = a[b[i]]
    out = np.array([[index[tuple(c)] for c in row] for row in composed.tolist()], dtype=np.int64)
    out.setflags(write=False)
    return out


def multiply(a, b):
    """Element-wise product of id arrays (or ids): a * b, b applied first."""
    return table()[a, b]


def running_products(words: np.ndarray) -> np.ndarray:
    """(N, T) ids -> (N, T) states: ``out[:, t] = x_1 * ... * x_{t+1}``, vectorised over rows."""
    words = np.asarray(words, dtype=np.int64)
    tab = table()
    out = np.empty_like(words)
    state = np.full(words.shape[0], IDENTITY, dtype=np.int64)
    for t in range(words.shape[1]):
        state = tab[state, words[:, t]]
        out[:, t] = state
    return out
