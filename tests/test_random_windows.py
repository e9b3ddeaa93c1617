"""Random training windows over token shards (nextlat.data.shards.RandomWindows): sample i is
the window starting at token i, batches are drawn per (step, seed), and a resumed run
continues the exact sequence of windows of an uninterrupted one."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from _tiny_run import tiny_cfg, with_changes

from nextlat.data.dataset import TokenDataset, step_indices
from nextlat.data.shards import RandomWindows, ShardDataset, read_shard, write_shard, write_stream
from nextlat.training import train_run

N_TOKENS, SHARD, T = 530, 100, 16  # 6 shards (5 x 100 + 30): many windows cross a boundary


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    """Tiny models: one intra-op thread (conftest.one_thread_module)."""


@pytest.fixture(scope="module")
def arange_shards(tmp_path_factory):
    """The stream 0, 1, ..., N_TOKENS - 1 cut into SHARD-token shards, given in uneven chunks."""
    out = tmp_path_factory.mktemp("arange")
    stream = np.arange(N_TOKENS)
    cuts = [0, 7, 150, 151, 333, 420, N_TOKENS]
    paths = write_stream(out, (stream[a:b] for a, b in zip(cuts, cuts[1:])), SHARD, vocab_size=1000, prefix="train")
    assert [len(read_shard(p)) for p in paths] == [100, 100, 100, 100, 100, 30]
    return paths


def test_sample_i_is_the_window_starting_at_token_i(arange_shards):
    ds = RandomWindows(arange_shards, block_size=T, eos_id=0, vocab_size=1000)
    assert len(ds) == N_TOKENS - T == ds.n_tokens - T
    assert ds.seq_len == T + 1
    idx = np.arange(len(ds))
    batch = ds.batch(idx)
    want = idx[:, None] + np.arange(T + 1)[None]  # stream[i : i + T + 1] of the arange stream
    assert batch.tokens.dtype == torch.long and batch.tokens.shape == (len(ds), T + 1)
    assert np.array_equal(batch.tokens.numpy(), want)
    assert batch.loss_mask.all() and batch.packed
    # windows that cross each shard boundary, one by one, and in an arbitrary order
    crossing = [SHARD * k - j for k in range(1, 6) for j in (1, 5, T)]
    assert np.array_equal(ds.batch(crossing[::-1]).tokens.numpy(), np.array(crossing[::-1])[:, None] + np.arange(T + 1))
    last = ds.batch([len(ds) - 1]).tokens[0].tolist()
    assert last == list(range(N_TOKENS - T - 1, N_TOKENS))  # the last window ends on the last token
    for bad in ([len(ds)], [-1], [0, len(ds) + 3]):
        with pytest.raises(IndexError, match="out of range"):
            ds.batch(bad)


def test_a_plain_shard_dataset_over_the_same_shards_cuts_blocks_instead(arange_shards):
    windows = RandomWindows(arange_shards, block_size=T, eos_id=0)
    blocks = ShardDataset(arange_shards, block_size=T, eos_id=0)
    assert len(blocks) == (N_TOKENS - 1) // T
    assert blocks.batch([2]).tokens[0].tolist() == list(range(2 * T, 3 * T + 1))
    assert windows.batch([2]).tokens[0].tolist() == list(range(2, 2 + T + 1))
    # same files, block and eos, but other samples: the run identity must differ
    assert windows.fingerprint() != blocks.fingerprint()
    assert windows.fingerprint() == RandomWindows(arange_shards, block_size=T, eos_id=0).fingerprint()
    assert RandomWindows(arange_shards, block_size=T - 1, eos_id=0).fingerprint() != windows.fingerprint()


def test_sample_indices_are_a_pure_function_of_step_and_seed(arange_shards):
    ds = RandomWindows(arange_shards, block_size=T, eos_id=0)
    other = RandomWindows(list(arange_shards), block_size=T, eos_id=0)  # a fresh object: no hidden state
    B, steps = 8, 2000
    forward = [ds.sample_indices(s, B, seed=5) for s in range(steps)]
    backward = [other.sample_indices(s, B, seed=5) for s in reversed(range(steps))][::-1]
    for a, b in zip(forward, backward):
        assert a.shape == (B,) and np.issubdtype(a.dtype, np.integer)
        assert np.array_equal(a, b)
    # differs across steps and across seeds
    assert len({tuple(a.tolist()) for a in forward}) == steps
    assert not np.array_equal(ds.sample_indices(3, B, seed=5), ds.sample_indices(3, B, seed=6))
    assert not np.array_equal(ds.sample_indices(3, B, seed=5), ds.sample_indices(4, B, seed=5))
    # stays in range, and reaches both ends (no start offset is left out)
    starts = np.concatenate(forward)
    assert starts.min() >= 0 and starts.max() <= len(ds) - 1
    assert set(starts.tolist()) == set(range(len(ds)))  # 16000 draws over 514 offsets: each is drawn
    ds.batch(starts)  # every drawn index is a valid window


def test_step_indices_uses_the_sampler_or_seeded_epochs(arange_shards):
    ds = RandomWindows(arange_shards, block_size=T, eos_id=0)
    for step in (0, 1, 17):
        assert np.array_equal(step_indices(ds, step, 4, 9), ds.sample_indices(step, 4, 9))

    # a dataset without a sampler: epochs are seeded permutations of 0..n-1, batches never straddle them
    n, B, seed = 10, 4, 3
    rows = torch.arange(n * 3).reshape(n, 3)
    mem = TokenDataset(rows, torch.ones_like(rows, dtype=torch.bool))
    assert not hasattr(mem, "sample_indices")
    per_epoch = n // B  # 2 batches, the 2 leftover rows of each permutation unused
    for step in range(7):
        epoch, k = divmod(step, per_epoch)
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        assert np.array_equal(step_indices(mem, step, B, seed), perm[k * B:(k + 1) * B])
    epoch0 = np.concatenate([step_indices(mem, s, B, seed) for s in range(per_epoch)])
    assert len(set(epoch0.tolist())) == per_epoch * B  # no row twice within an epoch
    blocks = ShardDataset(arange_shards, block_size=T, eos_id=0)
    perm = np.random.default_rng([seed, 0]).permutation(len(blocks))
    assert np.array_equal(step_indices(blocks, 1, B, seed), perm[B:2 * B])


# --- resuming a run on random windows --------------------------------------------------------
VOCAB, EOS, BLOCK, STEPS, STOP, BS, SEED = 50, 0, 16, 6, 2, 4, 7


class LoggedWindows(RandomWindows):
    """RandomWindows that records the window starts of every batch it serves."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[list[int]] = []

    def batch(self, idx):
        self.calls.append(np.atleast_1d(np.asarray(idx)).tolist())
        return super().batch(idx)


def _doc_stream(n_docs: int, seed: int) -> np.ndarray:
    """EOS-started arithmetic progressions over 1..VOCAB-1 (learnable, so losses move)."""
    rng = np.random.default_rng(seed)
    docs = [[EOS, *((rng.integers(0, VOCAB - 1) + rng.integers(1, 4) * np.arange(rng.integers(4, 14)))
                    % (VOCAB - 1) + 1)] for _ in range(n_docs)]
    return np.concatenate(docs)


def _train_losses(out_dir) -> list[tuple[int, float]]:
    with open(out_dir / "metrics.csv", newline="") as f:
        return [(int(r["step"]), float(r["train/loss"])) for r in csv.DictReader(f) if r["train/loss"]]


@pytest.fixture(scope="module")
def window_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("windows_data")
    train = write_stream(d / "train", [_doc_stream(120, seed=0)], 300, vocab_size=VOCAB, prefix="train")
    assert len(train) >= 3  # windows cross shard boundaries
    val = ShardDataset(write_shard(d / "val.bin", _doc_stream(40, seed=1), VOCAB), BLOCK, EOS, VOCAB)
    return train, val


def test_resumed_run_continues_the_same_windows_bit_identically(tmp_path, window_data):
    train_paths, val = window_data
    cfg = with_changes(tiny_cfg("gpt", steps=STEPS, batch_size=BS, eval_every=3, eval_batches=1, ckpt_every=4,
                                schedule={"name": "wsd", "warmup_steps": 1, "decay_steps": 2, "min_lr_ratio": 0.1}),
                       **{"model.vocab_size": VOCAB, "model.n_layer": 1, "model.n_head": 2, "model.n_embd": 16,
                          "model.block_size": BLOCK, "model.eos_id": EOS})  # dropout 0.1: the RNG is restored too
    assert cfg["seed"] == SEED

    full_data = LoggedWindows(train_paths, BLOCK, EOS, VOCAB)
    full = train_run(cfg, full_data, val, tmp_path / "full")
    assert len(full_data.calls) == STEPS  # one batch per step (no micro-batching)

    out = tmp_path / "interrupted"
    first = LoggedWindows(train_paths, BLOCK, EOS, VOCAB)
    assert train_run(cfg, first, val, out, stop_after=STOP) is None  # STOP=2: not on a ckpt_every/eval_every boundary
    second = LoggedWindows(train_paths, BLOCK, EOS, VOCAB)
    resumed = train_run(cfg, second, val, out)
    assert resumed == out / "model.pt"

    # the windows: step s draws from (seed, s), whether or not the run was interrupted
    assert first.calls == full_data.calls[:STOP]
    assert second.calls == full_data.calls[STOP:]
    assert len({tuple(c) for c in full_data.calls}) == STEPS  # a new draw every step
    for s, starts in enumerate(full_data.calls):
        assert len(starts) == BS and all(0 <= i < len(full_data) for i in starts)
        assert starts == full_data.sample_indices(s, BS, SEED).tolist()

    a, b = (torch.load(p, map_location="cpu", weights_only=True)["model"] for p in (full, resumed))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resuming"
    losses = _train_losses(tmp_path / "full")
    assert [s for s, _ in losses] == list(range(1, STEPS + 1))
    assert _train_losses(out) == losses
    assert len({loss for _, loss in losses}) > 1
