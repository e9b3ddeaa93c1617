"""A5 data: task names, unique words, the files on disk (shared test set, held-out prefixes,
running-product targets), refusal of damaged files, and the config check."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import nextlat.benchmarks as benchmarks
from nextlat.benchmarks.a5 import data as a5
from nextlat.benchmarks.a5 import group
from nextlat.config import ConfigError
from nextlat.data import store
from nextlat.data.dataset import TokenDataset

CFG = {"train_samples": 300, "train_fraction": 0.8, "n_test": 50, "test_length": 6, "eval_length": 10, "seed": 0}


def rows(words) -> list[tuple[int, ...]]:
    return [tuple(int(v) for v in w) for w in np.asarray(words)]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """len3 and len6 of one config, and len3 again into a second folder."""
    root = tmp_path_factory.mktemp("a5")
    metas = {name: a5.make_data(task, CFG, root / name)
             for name, task in (("len3", "len3"), ("len6", "len6"), ("len3_again", "len3"))}
    return root, metas


# --- task names ----------------------------------------------------------------------------------
def test_parse_task():
    assert a5.parse_task("len12") == 12
    assert a5.parse_task("len1") == 1
    assert a5.parse_task("len36") == 36
    for bad in ("len0", "len", "12", "Len12", "len12x", "len-3", "len 12", "g5x5"):
        with pytest.raises(ValueError):
            a5.parse_task(bad)


# --- unique words --------------------------------------------------------------------------------
def test_unique_words_sampled_path():
    """Sampling with replacement must dedupe: 3000 words of length 3 (216000 exist)."""
    w = a5.unique_words(np.random.default_rng(0), 3000, 3)
    assert w.shape == (3000, 3) and w.dtype == np.uint8
    assert len(set(rows(w))) == 3000
    assert w.max() < 60
    again = a5.unique_words(np.random.default_rng(0), 3000, 3)
    other = a5.unique_words(np.random.default_rng(1), 3000, 3)
    assert np.array_equal(w, again)
    assert not np.array_equal(w, other)
    # every id shows up at every position (uniform draws, not a fixed pattern)
    assert all(len(np.unique(w[:, j])) == 60 for j in range(3))


def test_unique_words_respect_exclude():
    rng = np.random.default_rng(2)
    exclude = rng.integers(0, 60, size=(4000, 2), dtype=np.uint8)  # many of the 3600 words, with repeats
    held = set(rows(exclude))
    free = 3600 - len(held)
    w = a5.unique_words(np.random.default_rng(3), free, 2, exclude=exclude)  # all that is left
    assert w.shape == (free, 2)
    got = set(rows(w))
    assert len(got) == free and not got & held
    assert got | held == {(a, b) for a in range(60) for b in range(60)}
    with pytest.raises(ValueError):
        a5.unique_words(np.random.default_rng(3), free + 1, 2, exclude=exclude)


def test_unique_words_exclude_on_sampled_path():
    """A large space with a few excluded rows: the excluded words never come back."""
    exclude = a5.unique_words(np.random.default_rng(4), 2000, 2)  # 2000 of 3600 words
    w = a5.unique_words(np.random.default_rng(5), 300, 2, exclude=exclude)
    assert len(set(rows(w))) == 300 and not set(rows(w)) & set(rows(exclude))
    big_excl = np.random.default_rng(6).integers(0, 60, size=(500, 4), dtype=np.uint8)
    w = a5.unique_words(np.random.default_rng(7), 2000, 4, exclude=big_excl)
    assert len(set(rows(w))) == 2000 and not set(rows(w)) & set(rows(big_excl))


def test_unique_words_dense_length_one():
    """60^1 words: asking for all 60 gives each id once, in a seeded random order."""
    w = a5.unique_words(np.random.default_rng(0), 60, 1)
    assert w.shape == (60, 1) and w.dtype == np.uint8
    assert sorted(w[:, 0].tolist()) == list(range(60))
    assert w[:, 0].tolist() != list(range(60))
    assert np.array_equal(w, a5.unique_words(np.random.default_rng(0), 60, 1))
    w = a5.unique_words(np.random.default_rng(1), 50, 1, exclude=np.array([[7], [9], [7]], dtype=np.uint8))
    assert len(set(w[:, 0].tolist())) == 50 and not {7, 9} & set(w[:, 0].tolist())


def test_unique_words_dense_decodes_every_word():
    """The dense path turns ids into digits: all 3600 words of length 2 appear once."""
    w = a5.unique_words(np.random.default_rng(0), 3600, 2)
    assert set(rows(w)) == {(a, b) for a in range(60) for b in range(60)}


def test_too_many_words_is_refused():
    with pytest.raises(ValueError, match="61 unique words"):
        a5.unique_words(np.random.default_rng(0), 61, 1)
    with pytest.raises(ValueError):
        a5.unique_words(np.random.default_rng(0), 59, 1, exclude=np.array([[0], [1]], dtype=np.uint8))
    a5.unique_words(np.random.default_rng(0), 58, 1, exclude=np.array([[0], [1]], dtype=np.uint8))


# --- the dataset on disk ---------------------------------------------------------------------------
def test_meta_counts(made):
    root, metas = made
    for name, L in (("len3", 3), ("len6", 6)):
        meta = json.loads((root / name / "meta.json").read_text())
        assert meta == metas[name] == a5.read_meta(root / name)
        assert {k: meta[k] for k in ("task", "train_length", "test_length", "eval_length", "vocab_size",
                                     "eos_id", "n_train", "n_val", "n_test")} == {
            "task": f"len{L}", "train_length": L, "test_length": 6, "eval_length": 10, "vocab_size": 61,
            "eos_id": 60, "n_train": 240, "n_val": 60, "n_test": 50}


def test_splits_have_running_product_targets(made):
    root, _ = made
    for split, shape in (("train", (240, 3)), ("val", (60, 3)), ("test", (50, 10))):
        x, y = a5.read_split(root / "len3", split)
        assert x.shape == y.shape == shape
        assert x.dtype == y.dtype == np.int64
        assert x.min() >= 0 and x.max() < 60
        assert np.array_equal(y, group.running_products(x))  # every row, not only the checked ones
        assert not (x == a5.EOS_ID).any()


def test_train_val_disjoint_and_held_out_from_test_prefixes(made):
    root, _ = made
    for name, L in (("len3", 3), ("len6", 6)):
        train = rows(a5.read_split(root / name, "train")[0])
        val = rows(a5.read_split(root / name, "val")[0])
        test = a5.read_split(root / name, "test")[0]
        assert len(set(train)) == len(train) and len(set(val)) == len(val)
        assert not set(train) & set(val)
        prefixes = set(rows(test[:, :L]))
        assert not (set(train) | set(val)) & prefixes


def test_test_words_unique_on_test_length(made):
    root, _ = made
    test = a5.read_split(root / "len3", "test")[0]
    assert len(set(rows(test[:, :6]))) == 50


def test_test_set_is_shared_across_tasks(made):
    """Test words depend on the config, not the task; training words do depend on the task."""
    root, _ = made
    x3, y3 = a5.read_split(root / "len3", "test")
    x6, y6 = a5.read_split(root / "len6", "test")
    assert np.array_equal(x3, x6) and np.array_equal(y3, y6)
    assert (root / "len3" / "test.parquet").read_bytes() == (root / "len6" / "test.parquet").read_bytes()
    t3, t6 = a5.read_split(root / "len3", "train")[0], a5.read_split(root / "len6", "train")[0]
    assert t3.shape[1] == 3 and t6.shape[1] == 6
    assert not np.array_equal(t3, t6[:, :3])


def test_same_config_gives_identical_files(made):
    root, _ = made
    for split in a5.SPLITS:
        assert (root / "len3" / f"{split}.parquet").read_bytes() == (root / "len3_again" / f"{split}.parquet").read_bytes()


def test_seed_changes_the_data(tmp_path):
    a5.make_data("len3", {**CFG, "seed": 1}, tmp_path)
    other = a5.read_split(tmp_path, "test")[0]
    base = a5.test_words(CFG).astype(np.int64)
    assert other.shape == base.shape and not np.array_equal(other, base)


def test_load_train_gives_tagged_datasets(made):
    root, _ = made
    train, val = a5.load_train(root / "len3")
    assert isinstance(train, TokenDataset) and isinstance(val, TokenDataset)
    assert (len(train), len(val)) == (240, 60)
    for ds, split in ((train, "train"), (val, "val")):
        x, y = a5.read_split(root / "len3", split)
        idx = [0, 5, len(x) - 1]
        b = ds.batch(idx)
        assert b.labels is not None
        assert torch.equal(b.tokens, torch.from_numpy(x[idx]))
        assert torch.equal(b.labels, torch.from_numpy(y[idx]))
        assert torch.equal(b.labels, torch.from_numpy(group.running_products(x[idx])))
        assert b.loss_mask.all() and b.loss_mask.shape == (3, 3)
        assert not b.packed


# --- damaged files ----------------------------------------------------------------------------------
def copy_dataset(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def wrong_state(path, row: int, pos: int) -> int:
    """Rewrite a split with one target state changed (still a valid id); returns the row."""
    table = pq.read_table(path)
    x = np.stack(table.column("inputs").to_pylist()).astype(np.uint8)
    y = group.running_products(x).astype(np.uint8)
    y[row, pos] = (int(y[row, pos]) + 1) % 60
    col = lambda a: pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1), type=pa.uint8()), a.shape[1])  # noqa: E731
    pq.write_table(pa.table({"inputs": col(x), "targets": col(y)}), path)
    return row % len(x)


def test_truncated_parquet_is_refused(made, tmp_path):
    d = copy_dataset(made[0] / "len3", tmp_path / "d")
    path = d / "test.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(store.DataError, match="test.parquet"):
        a5.read_split(d, "test")


def test_tampered_targets_are_refused(made, tmp_path):
    d = copy_dataset(made[0] / "len3", tmp_path / "d")
    wrong_state(d / "train.parquet", 0, -1)
    with pytest.raises(store.DataError, match="train.parquet.*running products"):
        a5.read_split(d, "train")
    with pytest.raises(store.DataError, match="train.parquet"):
        a5.load_train(d)


def test_out_of_range_ids_are_refused(made, tmp_path):
    d = copy_dataset(made[0] / "len3", tmp_path / "d")
    path = d / "val.parquet"
    table = pq.read_table(path)
    x = np.stack(table.column("inputs").to_pylist()).astype(np.uint8)
    x[3, 1] = 60  # the reserved EOS id never occurs in the data
    col = lambda a: pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1), type=pa.uint8()), a.shape[1])  # noqa: E731
    pq.write_table(pa.table({"inputs": col(x), "targets": table.column("targets").combine_chunks()}), path)
    with pytest.raises(store.DataError, match="val.parquet"):
        a5.read_split(d, "val")


def test_meta_disagreeing_with_a_file_is_refused(made, tmp_path):
    d = copy_dataset(made[0] / "len3", tmp_path / "d")
    meta = json.loads((d / "meta.json").read_text())
    (d / "meta.json").write_text(json.dumps({**meta, "n_test": 49}))
    with pytest.raises(store.DataError, match="test.parquet"):
        a5.read_split(d, "test")
    (d / "meta.json").write_text(json.dumps({**meta, "eval_length": 11}))
    with pytest.raises(store.DataError, match="test.parquet"):
        a5.read_split(d, "test")
    a5.read_split(d, "train")  # the training splits do not depend on eval_length


def test_missing_meta_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="meta.json"):
        a5.read_split(tmp_path, "train")


# --- config check --------------------------------------------------------------------------------
def bench_cfg(tasks=("len3",), **data):
    return {"data": {**CFG, **data}, "tasks": list(tasks)}


def check(cfg):
    benchmarks.get("a5").check(cfg)


def test_check_accepts_a_sound_config():
    check(bench_cfg(tasks=("len3", "len6", "len10")))
    check(bench_cfg(tasks=("len1",), train_samples=10, n_test=5))


def test_check_refuses_eval_shorter_than_test():
    with pytest.raises(ConfigError, match="eval_length"):
        check(bench_cfg(eval_length=5, test_length=6))


def test_check_refuses_task_longer_than_eval_length():
    with pytest.raises(ConfigError, match="len11"):
        check(bench_cfg(tasks=("len3", "len11")))


def test_check_refuses_more_train_words_than_exist():
    """len1 has 60 words: 100 training words cannot be distinct."""
    with pytest.raises(ConfigError, match="len1"):
        check(bench_cfg(tasks=("len1",), train_samples=100, n_test=5))
    # 60 words minus the test set's first ids: 56 fit beside 4 test words, 58 do not
    check(bench_cfg(tasks=("len1",), train_samples=56, n_test=4))
    with pytest.raises(ConfigError, match="len1"):
        check(bench_cfg(tasks=("len1",), train_samples=58, n_test=4))


def test_check_refuses_empty_splits_and_too_many_test_words():
    with pytest.raises(ConfigError, match="train_fraction"):
        check(bench_cfg(train_samples=2, train_fraction=0.1))
    with pytest.raises(ConfigError, match="n_test"):
        check(bench_cfg(test_length=1, eval_length=1, tasks=("len1",), n_test=61, train_samples=10))


def test_checked_config_builds(tmp_path):
    """A config the check accepts at its limit builds: len1 with every free word used."""
    cfg = {**CFG, "train_samples": 56, "n_test": 4, "test_length": 2, "eval_length": 3}
    check({"data": cfg, "tasks": ["len1"]})
    meta = a5.make_data("len1", cfg, tmp_path)
    assert (meta["n_train"], meta["n_val"]) == (45, 11)
    train, val = (a5.read_split(tmp_path, s)[0] for s in ("train", "val"))
    test = a5.read_split(tmp_path, "test")[0]
    assert not set(rows(np.concatenate([train, val]))) & set(rows(test[:, :1]))


def test_a_wrong_state_deep_in_a_file_is_refused(made, tmp_path):
    """Every row is checked, not a sample: one wrong state in the last row is found."""
    d = copy_dataset(made[0] / "len3", tmp_path / "d")
    last = wrong_state(d / "train.parquet", -1, 1)
    with pytest.raises(store.DataError, match=rf"train.parquet.*row {last}"):
        a5.read_split(d, "train")


def test_check_counts_the_test_prefixes_exactly_when_space_is_tight(tmp_path):
    """3600 test words of length 3 begin with fewer than 3600 distinct pairs: the free
    length-2 words are counted, not bounded, so a config that builds is accepted."""
    cfg = {**CFG, "train_samples": 1000, "n_test": 3600, "test_length": 3, "eval_length": 3}
    free = a5.free_words(cfg, 2)
    assert 1000 < free < 3600
    check({"data": cfg, "tasks": ["len2"]})
    meta = a5.make_data("len2", cfg, tmp_path)
    assert meta["n_train"] + meta["n_val"] == 1000
    with pytest.raises(ConfigError, match=f"{free} distinct words"):
        check({"data": {**cfg, "train_samples": free + 1}, "tasks": ["len2"]})
