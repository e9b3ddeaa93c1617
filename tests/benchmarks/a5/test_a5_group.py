"""A5 group: the 60 element ids, the Cayley table and running products, checked against
permutations written out and composed in plain Python."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from nextlat.benchmarks.a5 import group


def n_cycles(perm) -> int:
    """Cycles of a 0-based one-line permutation (fixed points count as cycles)."""
    seen, count = set(), 0
    for start in range(len(perm)):
        if start in seen:
            continue
        count += 1
        i = start
        while i not in seen:
            seen.add(i)
            i = perm[i]
    return count


def is_even(perm) -> bool:
    """Parity from the cycle count (n - cycles transpositions), not from inversions."""
    return (len(perm) - n_cycles(perm)) % 2 == 0


def compose(a, b):
    """a * b in 1-based one-line notation, b applied first: c[i] = a[b[i]]."""
    return tuple(a[b[i] - 1] for i in range(len(b)))


def one_based(el) -> tuple[int, ...]:
    return tuple(int(v) + 1 for v in el)


def id_of(perm_1based) -> int:
    """Element id of a 1-based one-line permutation, found by searching elements()."""
    rows = [one_based(e) for e in group.elements()]
    assert rows.count(tuple(perm_1based)) == 1
    return rows.index(tuple(perm_1based))


def perms_1based():
    return [one_based(e) for e in group.elements()]


# --- elements ---------------------------------------------------------------------------------
def test_elements_are_the_60_even_permutations_in_lexicographic_order():
    """A wrong parity rule, a missing/duplicated element or a different order all fail here."""
    els = group.elements()
    assert els.shape == (group.ORDER, 5) == (60, 5)
    rows = [tuple(int(v) for v in r) for r in els]
    assert all(sorted(r) == [0, 1, 2, 3, 4] for r in rows)
    assert len(set(rows)) == 60
    assert all(is_even(r) for r in rows)
    assert rows == sorted(rows)
    # exactly the even permutations: none of S5's even ones is missing
    assert set(rows) == {p for p in itertools.permutations(range(5)) if is_even(p)}


def test_named_ids_follow_the_illusion_of_state_convention():
    """Ids a model's data shares with Merrill et al.: off-by-one or 0/1-based slips fail here."""
    p = perms_1based()
    assert group.IDENTITY == 0 and p[0] == (1, 2, 3, 4, 5)
    assert p[1] == (1, 2, 4, 5, 3)
    assert p[2] == (1, 2, 5, 3, 4)
    assert p[3] == (1, 3, 2, 5, 4)
    assert p[59] == (5, 4, 3, 2, 1)


def test_elements_are_read_only():
    with pytest.raises(ValueError):
        group.elements()[0, 0] = 1


# --- group axioms on the table ------------------------------------------------------------------
def test_table_is_closed_and_latin():
    """Each row and column a permutation of the ids (a Latin square), as in any group table."""
    tab = group.table()
    assert tab.shape == (60, 60)
    assert tab.min() >= 0 and tab.max() <= 59
    everything = list(range(60))
    assert all(sorted(row) == everything for row in tab.tolist())
    assert all(sorted(col) == everything for col in tab.T.tolist())


def test_identity_and_inverses():
    tab = group.table()
    ids = np.arange(60)
    assert (tab[0, :] == ids).all() and (tab[:, 0] == ids).all()
    for a in range(60):
        right = np.flatnonzero(tab[a] == 0)
        assert len(right) == 1
        b = int(right[0])
        assert tab[a, b] == 0 and tab[b, a] == 0


def test_associative_on_random_triples():
    tab = group.table()
    rng = np.random.default_rng(0)
    a, b, c = rng.integers(0, 60, size=(3, 5000))
    assert (tab[tab[a, b], c] == tab[a, tab[b, c]]).all()


def test_non_abelian():
    """A5 is not commutative; a table built with a symmetric rule would be."""
    tab = group.table()
    assert (tab != tab.T).any()
    assert tab[1, 3] != tab[3, 1]


# --- product convention -----------------------------------------------------------------------
def test_product_is_b_applied_first():
    """c[i] = a[b[i]]: the reversed convention (a first) swaps these results."""
    a, b = (1, 2, 4, 5, 3), (1, 3, 2, 5, 4)
    assert compose(a, b) == (1, 4, 2, 3, 5)  # by hand: a[1], a[3], a[2], a[5], a[4]
    assert group.table()[id_of(a), id_of(b)] == id_of(compose(a, b))
    assert group.multiply(id_of(a), id_of(b)) == id_of((1, 4, 2, 3, 5))
    # the documented pair (ids 1 and 3 are the permutations above)
    assert group.multiply(1, 3) == 6
    assert group.multiply(3, 1) == 5
    assert perms_1based()[6] == (1, 4, 2, 3, 5) and perms_1based()[5] == (1, 3, 5, 4, 2)


@pytest.mark.parametrize("a,b", [
    ((2, 1, 4, 3, 5), (3, 1, 2, 4, 5)),  # double transposition * 3-cycle
    ((2, 3, 4, 5, 1), (1, 2, 4, 5, 3)),  # 5-cycle * 3-cycle
    ((5, 4, 3, 2, 1), (2, 3, 4, 5, 1)),
    ((1, 5, 4, 3, 2), (3, 4, 5, 1, 2)),
])
def test_products_match_hand_composition(a, b):
    tab = group.table()
    assert tab[id_of(a), id_of(b)] == id_of(compose(a, b))
    assert tab[id_of(b), id_of(a)] == id_of(compose(b, a))


def test_multiply_is_elementwise_on_arrays():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 60, size=(2, 200))
    p = perms_1based()
    want = [id_of(compose(p[x], p[y])) for x, y in zip(a.tolist(), b.tolist())]
    assert group.multiply(a, b).tolist() == want


# --- running products ------------------------------------------------------------------------
def naive_running_products(word) -> list[int]:
    """Left to right on the permutations themselves: p_t = p_{t-1} * x_t (no table())."""
    p = perms_1based()
    index = {perm: i for i, perm in enumerate(p)}
    state, out = (1, 2, 3, 4, 5), []
    for x in word:
        state = compose(state, p[x])
        out.append(index[state])
    return out


@pytest.mark.parametrize("length", [1, 2, 7, 100])
def test_running_products_match_naive_loop(length):
    rng = np.random.default_rng(length)
    words = rng.integers(0, 60, size=(20, length))
    got = group.running_products(words)
    assert got.shape == words.shape
    assert got.tolist() == [naive_running_products(w) for w in words.tolist()]


def test_running_products_of_uint8_and_a_single_element():
    """uint8 words (how data.py stores them) give the same states; one element is its own state."""
    words = np.arange(60, dtype=np.uint8)[:, None]
    assert group.running_products(words)[:, 0].tolist() == list(range(60))
    rng = np.random.default_rng(3)
    w = rng.integers(0, 60, size=(5, 30))
    assert np.array_equal(group.running_products(w.astype(np.uint8)), group.running_products(w))


def test_running_products_order_matters():
    """x_1 * x_2 differs from x_2 * x_1 for ids 1 and 3 (a right-to-left product fails)."""
    assert group.running_products(np.array([[1, 3]]))[0].tolist() == [1, 6]
    assert group.running_products(np.array([[3, 1]]))[0].tolist() == [3, 5]
