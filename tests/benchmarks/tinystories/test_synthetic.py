"""The synthetic story grammar: determinism, vocabulary, lengths and story structure."""
from __future__ import annotations

import collections

import numpy as np
import pytest

from nextlat.benchmarks.tinystories import synthetic

MANDATORY = {"intro", "object", "goal", "depart", "obstacle", "reaction", "fix", "arrival", "activity", "ending"}


@pytest.fixture(scope="module")
def stories() -> list[synthetic.Story]:
    return list(synthetic.iter_story_parts(0, 1500, seed=7, split="train"))


def _tokens(text: str) -> list[str]:
    """Case-kept words (names stay capitalised, so "Will" the name is not "will" the verb)."""
    return [w for w in (t.strip(synthetic._STRIP) for t in text.split()) if w]


# --- determinism -------------------------------------------------------------------------------

def test_same_seed_same_stories_and_other_seeds_differ():
    a = synthetic.generate_stories(30, seed=3)
    assert a == synthetic.generate_stories(30, seed=3)
    b = synthetic.generate_stories(30, seed=4)
    assert sum(x != y for x, y in zip(a, b)) >= 28
    assert len(set(a)) == 30  # the stories of one split differ from each other


def test_splits_differ():
    train = synthetic.generate_stories(30, seed=3, split="train")
    val = synthetic.generate_stories(30, seed=3, split="validation")
    assert sum(x != y for x, y in zip(train, val)) >= 28
    assert not set(train) & set(val)


def test_story_i_does_not_depend_on_n_or_range():
    long = synthetic.generate_stories(300, seed=11)
    assert synthetic.generate_stories(5, seed=11) == long[:5]
    assert synthetic.generate_stories(50, seed=11)[:5] == long[:5]
    # a range crossing a random block (BLOCK = 256) and single stories agree with the full list
    assert list(synthetic.iter_stories(250, 262, seed=11, split="train")) == long[250:262]
    assert synthetic.generate_story(257, seed=11).text == long[257]


def test_overflow_draws_are_deterministic(monkeypatch):
    """A story needing more uniforms than its row continues from its own generator."""
    full = synthetic.generate_stories(8, seed=5)
    monkeypatch.setattr(synthetic, "_ROW", 5)
    short = synthetic.generate_stories(8, seed=5)
    assert short == synthetic.generate_stories(8, seed=5)
    assert len(set(short)) == 8
    assert list(synthetic.iter_stories(3, 8, seed=5, split="train")) == short[3:]
    assert short != full


def test_generate_story_parts_from_a_generator():
    one = synthetic.generate_story_parts(np.random.default_rng(42))
    two = synthetic.generate_story_parts(np.random.default_rng(42))
    assert one == two and one.text == two.text
    assert synthetic.generate_story_parts(np.random.default_rng(43)).text != one.text


def test_bad_arguments():
    with pytest.raises(ValueError, match="'test'"):
        synthetic.generate_stories(3, seed=0, split="test")
    with pytest.raises(ValueError, match="'valid'"):
        synthetic.iter_stories(0, 3, seed=0, split="valid")
    with pytest.raises(ValueError):
        synthetic.generate_stories(-1, seed=0)
    with pytest.raises(ValueError):
        synthetic.iter_stories(5, 3, seed=0, split="train")
    assert synthetic.generate_stories(0, seed=0) == []


def test_negative_seed_works():
    assert synthetic.generate_stories(3, seed=-1) == synthetic.generate_stories(3, seed=-1)


# --- vocabulary and lengths -------------------------------------------------------------------

def test_every_word_is_in_the_vocabulary():
    vocab = synthetic.vocabulary()
    seen: set[str] = set()
    for text in synthetic.generate_stories(2000, seed=1):
        seen.update(synthetic.words(text))
    assert seen <= vocab, sorted(seen - vocab)[:20]


def test_vocabulary_size_and_not_padded():
    vocab = synthetic.vocabulary()
    assert 600 <= len(vocab) <= 2000
    distinct = synthetic.corpus_stats(synthetic.generate_stories(5000, seed=2))["distinct_words"]
    assert 500 <= distinct <= 2000
    assert distinct >= 0.9 * len(vocab)  # the vocabulary lists words the grammar really emits
    assert all(w == w.lower() and w.strip(synthetic._STRIP) == w for w in vocab)


def test_lengths():
    counts = np.array([len(synthetic.words(t)) for t in synthetic.generate_stories(5000, seed=3)])
    assert counts.max() <= synthetic.MAX_WORDS
    inside = (counts >= synthetic.MIN_WORDS) & (counts <= synthetic.MAX_WORDS)
    assert inside.mean() >= 0.99
    assert 90 <= counts.mean() <= 140
    assert counts.std() > 8  # lengths vary


def test_cap_drops_only_optional_parts(monkeypatch):
    monkeypatch.setattr(synthetic, "MAX_WORDS", 100)
    optional = set(synthetic._DROP_ORDER)
    for story in synthetic.iter_story_parts(0, 300, seed=4, split="train"):
        labels = {label for label, _ in story.parts}
        assert MANDATORY <= labels
        n = len(synthetic.words(story.text))
        assert n <= 100 or labels & optional <= {"extra"}  # (an "extra" that holds the fix stays)


def test_ascii_only(stories):
    assert all(s.text.isascii() for s in stories)


# --- structure --------------------------------------------------------------------------------

def test_hero_is_named_in_setup_and_resolution(stories):
    for s in stories:
        hero = s.plan.hero
        assert _tokens(s.text).count(hero) >= 2
        parts = dict(s.parts)
        assert hero in _tokens(parts["intro"])
        assert hero in _tokens(parts["activity"])


def _before_after(story: synthetic.Story) -> tuple[list[str], list[str]]:
    labels = [label for label, _ in story.parts]
    assert labels.count("obstacle") == 1
    k = labels.index("obstacle")
    before = [w for _, t in story.parts[:k] for w in _tokens(t)]
    after = [w for _, t in story.parts[k + 1:] for w in _tokens(t)]
    return before, after


def test_fix_is_a_setup_entity_named_before_and_after_the_obstacle(stories):
    for s in stories:
        p = s.plan
        assert p.fix in p.entities()
        assert (p.fix == p.helper) == (p.fix_kind == "helper")
        assert synthetic.solves(p, p.fix)
        # the distractors cannot solve the obstacle: the fix is determined by the setup
        assert not any(synthetic.solves(p, e) for e in p.entities() if e != p.fix)
        before, after = _before_after(s)
        assert p.fix in before, (p, s.text)
        assert p.fix in after, (p, s.text)


def test_resolution_refers_back_to_goal_and_place(stories):
    for s in stories:
        parts = dict(s.parts)
        assert s.plan.goal in parts["goal"] and s.plan.place in parts["goal"]
        ending = " ".join(t for label, t in s.parts if label in {"arrival", "activity", "ending"})
        assert s.plan.place in ending, s.text
        assert parts["obstacle"]  # and the problem sits between setup and resolution
        labels = [label for label, _ in s.parts]
        assert labels.index("goal") < labels.index("obstacle") < labels.index("fix") < labels.index("arrival")


def test_pronouns_follow_gender(stories):
    checked = 0
    for s in stories:
        genders = {s.plan.hero_gender} | ({s.plan.helper_gender} if s.plan.helper else set())
        if len(genders) != 1:
            continue
        ws = set(synthetic.words(s.text))
        wrong = {"he", "him", "his"} if genders == {"f"} else {"she", "her", "hers"}
        assert not ws & wrong, s.text
        assert ws & ({"she", "her"} if genders == {"f"} else {"he", "him", "his"}), s.text
        checked += 1
    assert checked > 300


def test_helper_stories_use_they(stories):
    with_helper = [s for s in stories if s.plan.helper]
    assert len(with_helper) > 300
    share = np.mean(["they" in synthetic.words(s.text) for s in with_helper])
    assert share > 0.8


def test_all_obstacles_fixes_and_distractors_occur(stories):
    obstacles = collections.Counter(s.plan.obstacle for s in stories)
    assert set(obstacles) == {o.key for o in synthetic.OBSTACLES}
    assert min(obstacles.values()) > 50
    kinds = collections.Counter(s.plan.fix_kind for s in stories)
    assert kinds["helper"] > 300 and kinds["object"] > 300
    assert any(len(s.plan.objects) == 2 for s in stories)
    assert any(s.plan.helper and s.plan.fix_kind == "object" for s in stories)  # a helper that cannot help
    # the same obstacle gets different fixes, chosen by the setup
    fixes = collections.defaultdict(set)
    for s in stories:
        fixes[s.plan.obstacle].add(s.plan.fix if s.plan.fix_kind == "object" else s.plan.helper_kind)
    assert sum(len(v) >= 2 for v in fixes.values()) >= 9


def test_locked_gate_only_at_places_with_a_gate(stories):
    gated = {p.np for p in synthetic.PLACES if p.gate}
    gates = [s for s in stories if s.plan.obstacle == "gate"]
    assert gates and all(s.plan.place in gated for s in gates)


# --- stats --------------------------------------------------------------------------------------

def test_words():
    assert synthetic.words('"Hello," said Lily. "It\'s mine!"') == ["hello", "said", "lily", "it's", "mine"]


def test_corpus_stats_by_hand():
    stats = synthetic.corpus_stats(["The cat sat.", "A dog, a CAT!"])
    assert stats == {"stories": 2, "words": 7, "distinct_words": 5, "mean_words": 3.5, "max_words": 4,
                     "chars": 25}
    assert synthetic.corpus_stats([]) == {"stories": 0, "words": 0, "distinct_words": 0, "mean_words": 0.0,
                                          "max_words": 0, "chars": 0}
