"""A5 word-problem data: unique random words of element ids, tagged with their running products.

A task ``len<L>`` trains on words of length L. Every task of a config shares one test set:
``n_test`` unique words of ``test_length`` ids (the paper: about 100k of length 36), each
extended with random ids to ``eval_length`` so evaluation can run past the test length. Test
words depend only on (seed, test_length, eval_length, n_test), never on the task. (The
eval_length is still part of the data and of the model's block_size: changing it retrains.)

Training words: ``train_samples`` unique words of length L (the paper: 1M of length 12),
split ``train_fraction`` / rest into training and a held-out validation set at the
training length (the paper's 400k steps x 1024 / "512 epochs" = 800k suggests an 80/20
split of the 1M). No training or validation word begins with the first min(L, test_length)
ids of a test word, so test words are new at every prefix the model trained on.

Files (one folder per task): ``train.parquet``, ``val.parquet``, ``test.parquet`` with
fixed-size ``inputs``/``targets`` list columns (uint8 ids), and ``meta.json`` last.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from . import group

VOCAB_SIZE = group.ORDER + 1  # the 60 elements and one reserved id that never occurs
EOS_ID = group.ORDER  # the models' "end of document" id: never in the data (rows are not packed)
SPLITS = ("train", "val", "test")  # one parquet file each
_TASK = re.compile(r"^len([0-9]+)$")


def parse_task(task: str) -> int:
    """``len12`` -> 12 (the training length)."""
    m = _TASK.match(task)
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"A5 task {task!r}: expected len<L> with L >= 1 (the training length), e.g. len12")
    return int(m.group(1))


def words_space(length: int) -> int:
    return group.ORDER ** length


def _row_keys(words: np.ndarray) -> np.ndarray:
    """One hashable void scalar per row (so numpy can sort, dedupe and look rows up)."""
    words = np.ascontiguousarray(words, dtype=np.uint8)
    return words.view(np.dtype((np.void, words.shape[1]))).ravel()


def unique_words(rng: np.random.Generator, n: int, length: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """(n, length) uint8: ``n`` distinct uniformly random words, none beginning with a row of
    ``exclude`` (rows of at most ``length`` ids).

    Drawn in vectorised rounds (draw, keep first occurrences in draw order, drop the
    excluded) until n are found; words are in random order. A small space is sampled
    without replacement from its enumeration instead.
    """
    space = words_space(length)
    excl, width = None, 0
    if exclude is not None and len(exclude):
        width = exclude.shape[1]
        if width > length:
            raise ValueError(f"excluded prefixes of {width} ids are longer than the words ({length})")
        excl = np.unique(_row_keys(exclude))
    n_excl = 0 if excl is None else len(excl) * words_space(length - width)
    if n > space - n_excl:
        raise ValueError(f"{n} unique words of length {length} were asked for, but only {space - n_excl} "
                         f"exist (60^{length}{f' minus {n_excl} held out' if n_excl else ''})")

    def allowed(words: np.ndarray) -> np.ndarray:
        return words if excl is None else words[~np.isin(_row_keys(words[:, :width]), excl)]

    if space <= 4 * (n + n_excl):  # dense: enumerate the candidates, shuffle
        ids = rng.permutation(space)
        digits = (ids[:, None] // group.ORDER ** np.arange(length - 1, -1, -1)[None]) % group.ORDER
        return allowed(digits.astype(np.uint8))[:n]
    have = np.zeros((0, length), dtype=np.uint8)
    while len(have) < n:
        need = n - len(have)
        draw = rng.integers(0, group.ORDER, size=(need + need // 8 + 16, length), dtype=np.uint8)
        pool = np.concatenate([have, draw])
        _, first = np.unique(_row_keys(pool), return_index=True)
        have = allowed(pool[np.sort(first)])[:n]  # first occurrences, in draw order
    return have


def test_words(data_cfg: dict) -> np.ndarray:
    """(n_test, eval_length) uint8: the shared test set, unique on its first test_length ids.
    The heads depend on (seed, test_length, n_test) only, so a longer evaluation extends the
    same test words."""
    L, E, n = int(data_cfg["test_length"]), int(data_cfg["eval_length"]), int(data_cfg["n_test"])
    seed = int(data_cfg.get("seed", 0))
    head = unique_words(np.random.default_rng([seed, 1, L]), n, L)
    tail = np.random.default_rng([seed, 3, L, E]).integers(0, group.ORDER, size=(n, E - L), dtype=np.uint8)
    return np.concatenate([head, tail], axis=1)


def held_out_prefixes(data_cfg: dict, test: np.ndarray, length: int) -> np.ndarray:
    """What no training word of ``length`` may begin with: the test words' first
    min(length, test_length) ids (a longer training word that begins with a test word's
    head would have trained on every position the test scores)."""
    return test[:, :min(length, int(data_cfg["test_length"]))]


def train_words(data_cfg: dict, length: int, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) uint8 words of ``length``, none beginning with a held-out test prefix."""
    rng = np.random.default_rng([int(data_cfg.get("seed", 0)), 2, length])
    words = unique_words(rng, int(data_cfg["train_samples"]), length,
                         exclude=held_out_prefixes(data_cfg, test, length))
    n_train, _ = split_sizes(data_cfg)
    return words[:n_train], words[n_train:]


def free_words(data_cfg: dict, length: int) -> int:
    """How many words of ``length`` do not begin with a held-out test prefix."""
    space = words_space(length)
    width = min(length, int(data_cfg["test_length"]))
    per_prefix = words_space(length - width)
    at_least = space - min(int(data_cfg["n_test"]), words_space(width)) * per_prefix  # if every prefix differed
    if at_least >= int(data_cfg["train_samples"]):
        return at_least
    prefixes = held_out_prefixes(data_cfg, test_words(data_cfg), length)  # small spaces: count them exactly
    return space - len(np.unique(_row_keys(prefixes))) * per_prefix


def split_sizes(data_cfg: dict) -> tuple[int, int]:
    n = int(data_cfg["train_samples"])
    k = int(round(float(data_cfg["train_fraction"]) * n))
    return k, n - k


def _write_split(path: Path, words: np.ndarray) -> None:
    import pyarrow as pa

    from ...data import store

    n, T = words.shape
    states = group.running_products(words).astype(np.uint8)
    col = lambda a: pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1), type=pa.uint8()), T)  # noqa: E731
    store.write_parquet(path, pa.table({"inputs": col(words), "targets": col(states)}))


def make_data(task: str, data_cfg: dict, out_dir: Path, workers: int | None = None) -> dict:
    from ...data import store

    t0 = time.time()
    length = parse_task(task)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    test = test_words(data_cfg)
    train, val = train_words(data_cfg, length, test)
    for split, words in zip(SPLITS, (train, val, test)):
        _write_split(out_dir / f"{split}.parquet", words)
    meta = {"task": task, "train_length": length, "test_length": int(data_cfg["test_length"]),
            "eval_length": int(data_cfg["eval_length"]), "vocab_size": VOCAB_SIZE, "eos_id": EOS_ID,
            "seq_len": max(length, int(data_cfg["eval_length"])),  # the longest rows here (the model's block_size)
            "n_train": len(train), "n_val": len(val), "n_test": len(test),
            "seconds": round(time.time() - t0, 2)}
    return store.write_meta(out_dir, meta)


def read_meta(data_dir: str | Path) -> dict:
    from ...data import store

    return store.load_meta(data_dir, "A5")


def read_split(data_dir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), each (N, T) int64, checked against meta.json and the group."""
    from ...data import store

    data_dir = Path(data_dir)
    meta = read_meta(data_dir)
    path = data_dir / f"{split}.parquet"
    table = store.read_parquet(path, columns=["inputs", "targets"])
    want_len = meta["train_length"] if split in ("train", "val") else meta["eval_length"]
    out = []
    for name in ("inputs", "targets"):
        col = table.column(name).combine_chunks()
        flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
        n = len(col)
        if n != meta[f"n_{split}"] or flat.size != n * want_len:
            raise store.DataError(f"{path}: column {name} holds {n} rows / {flat.size} ids, but meta.json says "
                                  f"{meta[f'n_{split}']} rows of {want_len}; {store.REGENERATE}")
        store.check_tokens(path, flat, group.ORDER)
        out.append(flat.reshape(n, want_len))
    inputs, targets = out
    bad = np.flatnonzero((group.running_products(inputs) != targets).any(axis=1))
    if bad.size:
        raise store.DataError(f"{path}: targets of {bad.size} row(s) (first: row {bad[0]}) are not the running "
                              f"products of the inputs; {store.REGENERATE}")
    return inputs, targets


def tagged_dataset(inputs: np.ndarray, targets: np.ndarray):
    """Tagged rows: position t reads x_1..x_{t+1} and predicts the state after them."""
    import torch

    from ...data.dataset import TokenDataset

    tokens = torch.from_numpy(inputs)
    return TokenDataset(tokens, torch.ones_like(tokens, dtype=torch.bool), labels=torch.from_numpy(targets))


def load_train(data_dir: Path) -> tuple:
    """(train, validation) tagged datasets at the training length."""
    return tuple(tagged_dataset(*read_split(data_dir, s)) for s in ("train", "val"))
