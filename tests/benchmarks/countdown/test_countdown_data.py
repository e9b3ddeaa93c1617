"""Countdown data: the search, generation, token format, lengths, splits and the on-disk dataset."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from nextlat.benchmarks.countdown import data as cd
from nextlat.benchmarks.countdown.evaluate import check_solution

PAPER_LINE = "14,83,88,91,23|83-14=69,91-88=3,69/3=23"
SOS_LINE = "58,11,80,83,81|80-58=22,22/11=2,83-2=81"


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("cd4")
    meta = cd.write_dataset(out, n_train=3000, n_test=500, seed=4, workers=1)
    return out, meta


# --- names, sizes, token ids ---------------------------------------------------------------
def test_sizes_and_ids():
    assert cd.parse_task("cd4") == 4
    with pytest.raises(ValueError):
        cd.parse_task("cd5")
    assert (cd.prompt_len(), cd.seq_len(), cd.vocab_size(), cd.eos_id()) == (13, 31, 10008, 10007)
    assert (cd.prompt_len(2), cd.seq_len(2), cd.vocab_size(500), cd.eos_id(500)) == (7, 25, 508, 507)
    tok = cd.CountdownTokenizer()
    assert (tok.pipe, tok.mul, tok.div, tok.add, tok.sub, tok.eq, tok.comma, tok.eos) == tuple(range(10000, 10008))
    assert tok.vocab_size == 10008 and tok.prompt_len == 13 and tok.seq_len == 31


def test_held_out_targets_match_sos_seed_4():
    train, test = cd.split_targets(100, 4)
    assert sorted(test) == [14, 39, 41, 57, 62, 81, 87, 89, 96]
    assert len(train) == 82 and not set(train) & set(test)
    assert sorted(train + test) == list(range(10, 101))


# --- the search ----------------------------------------------------------------------------
def test_dfs_reproduces_documented_solutions():
    assert cd.solve_dfs([14, 83, 88, 91], 23) == [(83, "-", 14, 69), (91, "-", 88, 3), (69, "/", 3, 23)]
    assert cd.solve_dfs([58, 11, 80, 83], 81) == [(80, "-", 58, 22), (22, "/", 11, 2), (83, "-", 2, 81)]
    tok = cd.CountdownTokenizer()
    for line in (PAPER_LINE, SOS_LINE):
        nums = [int(x) for x in line.split("|")[0].split(",")]
        solved, eqs = cd.solve_batch(np.array([nums[:4]]), np.array([nums[4]]))
        assert solved[0]
        row = tok.encode_rows(np.array([nums[:4]]), np.array([nums[4]]), eqs)[0]
        assert tok.to_text(row) == line


def test_dfs_order_and_operand_order():
    # pair (0,1) first, '+' before '*': 3+4=7 is tried first and leads to 7*2=14 ... first hit wins
    assert cd.solve_dfs([3, 4, 2, 1], 14)[0] == (3, "+", 4, 7)
    # '-' and '/' put the larger operand first; '+' and '*' keep list order
    assert cd.combine(3, 12) == [(3, "+", 12, 15), (3, "*", 12, 36), (12, "-", 3, 9), (12, "/", 3, 4)]
    assert cd.combine(12, 5) == [(12, "+", 5, 17), (12, "*", 5, 60), (12, "-", 5, 7)]
    assert cd.combine(0, 5)[-1] == (5, "-", 0, 5)  # no division by zero
    assert cd.solve_dfs([1, 1, 1, 1], 50) is None


def test_vectorised_search_equals_plain_dfs():
    rng = np.random.default_rng(0)
    nums = rng.integers(1, 100, size=(600, 4))
    target = rng.integers(10, 101, size=600)
    nums[:200] = rng.integers(0, 7, size=(200, 4))  # small numbers: zeros, ties, many solutions
    target[:200] = rng.integers(0, 40, size=200)
    solved, eqs = cd.solve_batch(nums, target)
    assert 0.1 < solved.mean() < 0.9
    for i in range(len(nums)):
        ref = cd.solve_dfs(nums[i].tolist(), int(target[i]))
        assert (ref is not None) == solved[i]
        if ref is not None:
            assert [(int(x), cd.OPS[o], int(y), int(r)) for x, o, y, r in eqs[i]] == ref


# --- generation ----------------------------------------------------------------------------
def test_generated_solutions_are_dfs_solutions_and_check():
    train, _ = cd.split_targets(100, 4)
    pr = cd.generate_problems(300, train, seed=1, workers=1)
    assert pr.nums.min() >= 1 and pr.nums.max() <= 99
    assert set(pr.target.tolist()) <= set(train)
    for nums, t, eqs in zip(pr.nums.tolist(), pr.target.tolist(), pr.eqs.tolist()):
        sol = [(x, cd.OPS[o], y, r) for x, o, y, r in eqs]
        assert sol == cd.solve_dfs(nums, t)
        text = ",".join(f"{x}{op}{y}={r}" for x, op, y, r in sol)
        assert check_solution(nums, t, text)["solved_strict"]


def test_generation_is_seeded_and_independent_of_workers():
    train, _ = cd.split_targets(100, 4)
    n = cd.SHARD_SIZE + 300  # two shards
    a = cd.generate_problems(n, train, seed=3, workers=1)
    b = cd.generate_problems(n, train, seed=3, workers=2)
    c = cd.generate_problems(n, train, seed=5, workers=1)
    d = cd.generate_problems(n, train, seed=3, stream=1, workers=1)
    for f in ("nums", "target", "eqs"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.nums, c.nums) and not np.array_equal(a.nums, d.nums)


def test_targets_are_spread_over_the_pool():
    train, _ = cd.split_targets(100, 4)
    pr = cd.generate_problems(4000, train, seed=0, workers=1)
    counts = np.bincount(pr.target, minlength=101)[train]
    assert counts.min() > 15 and counts.max() < 90  # ~49 each


# --- tokenizer ---------------------------------------------------------------------------
def test_text_token_round_trip_and_layout():
    tok = cd.CountdownTokenizer()
    row, p_len = tok.encode_text(PAPER_LINE)
    P = tok.pipe
    assert p_len == 13 and len(row) == 31
    assert row[:13] == [14, 83, 88, 91, 23] + [P] * 8
    assert row[13:] == [83, tok.sub, 14, tok.eq, 69, tok.comma, 91, tok.sub, 88, tok.eq, 3, tok.comma,
                        69, tok.div, 3, tok.eq, 23, tok.eos]
    assert tok.to_text(row) == PAPER_LINE
    assert tok.tokens_to_text(row[13:]) == "83-14=69,91-88=3,69/3=23"
    prompt, _ = tok.encode_text(PAPER_LINE.split("|")[0] + "|")
    assert prompt == row[:13] and tok.decode(prompt).equations == []
    p = tok.decode(row)
    assert (p.nums, p.target) == ([14, 83, 88, 91], 23)
    assert tok.encode(p.nums, p.target, p.equations) == (row, 13)
    # fewer pauses, other max_number
    tok2 = cd.CountdownTokenizer(max_number=200, n_pause=2)
    row2, p2 = tok2.encode_text(SOS_LINE)
    assert p2 == 7 and len(row2) == 25 and row2[5:7] == [200, 200] and row2[-1] == 207
    assert tok2.to_text(row2) == SOS_LINE


def test_generated_rows_round_trip():
    tok = cd.CountdownTokenizer()
    train, _ = cd.split_targets(100, 4)
    pr = cd.generate_problems(200, train, seed=2, workers=1)
    rows = tok.encode_rows(pr.nums, pr.target, pr.eqs)
    assert rows.shape == (200, 31) and (rows[:, -1] == tok.eos).all() and (rows[:, 5:13] == tok.pipe).all()
    for row in rows.tolist():
        assert tok.encode_text(tok.to_text(row)) == (row, 13)


def test_tokenizer_rejects_garbage():
    tok = cd.CountdownTokenizer(max_number=100)
    for bad in ("1,2,3,4|1+2=3", "1,2,3,4,5", "1,2,3,4,5|1+2=3,3+3", "1,2,3,4,5|1 + 2=3,3+3=6,6-1=5"):
        with pytest.raises(ValueError):
            tok.encode_text(bad)
    with pytest.raises(ValueError, match="max_number"):
        tok.encode_text("1,2,3,99,50|99*2=198,198-3=195,195/1=195")
    with pytest.raises(ValueError):
        tok.decode([1, 2, 3])
    row, _ = tok.encode_text("1,2,3,4,10|1+2=3,3+3=6,6+4=10")
    with pytest.raises(ValueError):
        tok.decode(row[:-1] + [5])  # no EOS


# --- dataset on disk -----------------------------------------------------------------------
def test_meta_and_splits(small_dataset):
    out, meta = small_dataset
    assert json.loads((out / "meta.json").read_text()) == meta == cd.load_meta(out)
    assert {k: meta[k] for k in ("vocab_size", "eos_id", "seq_len", "prompt_len", "n_train", "n_test", "seed",
                                 "max_target", "max_number", "n_pause")} == {
        "vocab_size": 10008, "eos_id": 10007, "seq_len": 31, "prompt_len": 13, "n_train": 3000, "n_test": 500,
        "seed": 4, "max_target": 100, "max_number": 10000, "n_pause": 8}
    assert meta["held_out_targets"] == [14, 39, 41, 57, 62, 81, 87, 89, 96]
    assert meta["max_intermediate"] < 10000
    assert not list(out.glob("*.tmp"))
    train, test = cd.load_split(out, "train"), cd.load_split(out, "test")
    assert train.tokens.shape == (3000, 31) and test.tokens.shape == (500, 31)
    assert train.loss_mask.sum(1).eq(18).all()
    assert train.loss_mask[:, 13:].all() and not train.loss_mask[:, :13].any()
    targets = {s: pq.read_table(out / f"{s}.parquet").column("target").to_pylist() for s in cd.SPLITS}
    assert targets["test"] == test.tokens[:, 4].tolist()


def test_saved_problems_are_solved_and_test_is_held_out(small_dataset):
    out, meta = small_dataset
    tok = cd.CountdownTokenizer()
    seen = {}
    for split in cd.SPLITS:
        rows = cd.load_split(out, split).tokens.tolist()
        seen[split] = {r[4] for r in rows}
        for row in rows:
            res = check_solution(row[:4], row[4], row[13:], tok)
            assert res["solved_strict"] and res["solved_paper"]
    assert seen["test"] <= set(meta["held_out_targets"])
    assert not seen["test"] & seen["train"]
    assert seen["train"] <= set(meta["train_targets"]) and len(seen["train"]) == 82


def test_dataset_is_deterministic(tmp_path):
    kw = dict(n_train=50, n_test=20)
    cd.write_dataset(tmp_path / "a", seed=1, workers=1, **kw)
    cd.write_dataset(tmp_path / "b", seed=1, workers=2, **kw)
    cd.write_dataset(tmp_path / "c", seed=2, workers=1, **kw)
    for split in cd.SPLITS:
        a, b, c = (cd.load_split(tmp_path / x, split).tokens for x in "abc")
        assert a.equal(b)
        assert not a.equal(c)


def test_meta_is_written_last(tmp_path, monkeypatch):
    from nextlat.data import store
    cd.write_dataset(tmp_path, n_train=10, n_test=5, seed=0, workers=1)
    assert (tmp_path / "meta.json").exists()
    write = store.write_token_table

    def broken(path, *a, **k):
        if path.name == "test.parquet":
            raise OSError("disk full")
        return write(path, *a, **k)

    monkeypatch.setattr(store, "write_token_table", broken)
    with pytest.raises(OSError):
        cd.write_dataset(tmp_path, n_train=10, n_test=5, seed=1, workers=1)
    assert not (tmp_path / "meta.json").exists()
    with pytest.raises(FileNotFoundError, match="meta.json"):
        cd.load_split(tmp_path, "train")


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="n_train"):
        cd.write_dataset(tmp_path, n_train=0, n_test=5, seed=0)
    with pytest.raises(ValueError, match="max_number"):  # 99*98 = 9702 does not fit 1000 tokens
        cd.write_dataset(tmp_path, n_train=500, n_test=5, seed=0, max_number=1000, workers=1)
    assert not (tmp_path / "meta.json").exists()
    with pytest.raises(ValueError, match="split"):
        cd.load_split(tmp_path, "val")
