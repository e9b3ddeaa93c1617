"""Token shards: round trip, corrupt files named, packed blocks equal the stream, training on them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny_run import VOCAB, tiny_cfg, with_changes

from nextlat.data.dataset import Dataset, TokenDataset, batch_indices
from nextlat.data.shards import HEADER_BYTES, MAGIC, ShardDataset, read_header, read_shard, write_shard

EOS = 0


def doc_stream(n_docs: int, seed: int) -> np.ndarray:
    """EOS-started documents of arithmetic progressions over 1..VOCAB-1 (learnable)."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n_docs):
        start, stride, n = rng.integers(0, VOCAB - 1), rng.integers(1, 4), rng.integers(4, 12)
        docs.append([EOS, *((start + stride * np.arange(n)) % (VOCAB - 1) + 1)])
    return np.concatenate(docs).astype(np.int64)


# --- the file format -------------------------------------------------------------------

def test_round_trip_is_a_memmap_with_the_nanogpt_header(tmp_path):
    tokens = np.array([0, 1, 65535, 7, 300, 0], dtype=np.int64)
    path = write_shard(tmp_path / "s.bin", tokens)
    assert path.stat().st_size == HEADER_BYTES + 2 * len(tokens)
    header = np.fromfile(path, dtype="<i4", count=256)
    assert header[:3].tolist() == [MAGIC, 1, len(tokens)] and not header[3:].any()
    back = read_shard(path)
    assert isinstance(back, np.memmap) and back.dtype == np.uint16
    assert back.tolist() == tokens.tolist()
    assert read_shard(write_shard(tmp_path / "empty.bin", [])).size == 0
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["empty.bin", "s.bin"]  # no temp files


def test_large_vocabularies_are_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="65536 .*65535.*parquet"):
        write_shard(tmp_path / "s.bin", [1, 65536, 2])
    with pytest.raises(ValueError, match="100277 ids.*0..65535"):
        write_shard(tmp_path / "s.bin", [1, 2], vocab_size=100277)
    with pytest.raises(ValueError, match="negative"):
        write_shard(tmp_path / "s.bin", [1, -1])
    assert not (tmp_path / "s.bin").exists()
    write_shard(tmp_path / "s.bin", [1, 2], vocab_size=65536)  # exactly uint16 fits
    with pytest.raises(ValueError, match="100277 ids"):
        ShardDataset(tmp_path / "s.bin", block_size=1, eos_id=0, vocab_size=100277)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-2], "header says 20 tokens"),  # truncated tokens
    (lambda b: b + b"\0\0", "header says 20 tokens"),  # trailing bytes
    (lambda b: b[:100], "shorter than its 1024-byte header"),
    (lambda b: b"\x01\x02\x03\x04" + b[4:], "not a token shard: magic number"),
    (lambda b: b[:4] + np.int32(2).tobytes() + b[8:], "version 2"),
    (lambda b: b[:8] + np.int32(-5).tobytes() + b[12:], "token count -5"),
])
def test_corrupt_shards_are_named(tmp_path, damage, message):
    good = write_shard(tmp_path / "good.bin", np.arange(20))
    bad = tmp_path / "bad_000.bin"
    bad.write_bytes(damage(good.read_bytes()))
    with pytest.raises(ValueError, match=message) as err:
        ShardDataset([good, bad], block_size=4, eos_id=EOS)
    assert str(bad) in str(err.value)
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        read_header(tmp_path / "missing.bin")


# --- the dataset -----------------------------------------------------------------------

def test_blocks_are_windows_of_the_stream_across_shards(tmp_path):
    stream = doc_stream(40, seed=3)
    cuts = [0, 37, 37, 150, len(stream)]  # an empty shard, and windows that span shards
    paths = [write_shard(tmp_path / f"part_{k}.bin", stream[a:b]) for k, (a, b) in enumerate(zip(cuts, cuts[1:]))]
    T = 16
    ds = ShardDataset(paths, block_size=T, eos_id=EOS)
    assert isinstance(ds, Dataset) and isinstance(TokenDataset(torch.zeros(1, 2), torch.ones(1, 2)), Dataset)
    assert len(ds) == (len(stream) - 1) // T and ds.seq_len == T + 1 and ds.n_tokens == len(stream)
    b = ds.batch(np.arange(len(ds)))
    assert b.packed and b.loss_mask.all() and b.tokens.dtype == torch.long
    want = np.stack([stream[i * T:i * T + T + 1] for i in range(len(ds))])
    assert np.array_equal(b.tokens.numpy(), want)
    # inputs and targets tile the stream: every token but the first is a target exactly once
    assert np.array_equal(b.targets.reshape(-1).numpy(), stream[1:len(ds) * T + 1])
    some = ds.batch([5, 0, 5])
    assert torch.equal(some.tokens, b.tokens[[5, 0, 5]])
    with pytest.raises(IndexError):
        ds.batch([len(ds)])
    with pytest.raises(ValueError, match="fewer than one block"):
        ShardDataset(paths[0], block_size=len(stream), eos_id=EOS)
    with pytest.raises(ValueError, match="eos_id 70000"):
        ShardDataset(paths, block_size=T, eos_id=70000)


# --- training --------------------------------------------------------------------------

def test_trainer_runs_on_shards(tmp_path):
    from nextlat.training import load_model, train_run

    T = 16
    train_ds = ShardDataset([write_shard(tmp_path / f"train_{k}.bin", doc_stream(150, seed=k)) for k in (0, 1)],
                            block_size=T, eos_id=EOS, vocab_size=VOCAB)
    val_ds = ShardDataset(write_shard(tmp_path / "val.bin", doc_stream(60, seed=9)), block_size=T, eos_id=EOS)
    cfg = with_changes(tiny_cfg("nextlat", steps=6, eval_every=3, ckpt_every=3), **{"model.eos_id": EOS})
    out = tmp_path / "run"
    assert train_run(cfg, train_ds, val_ds, out, stop_after=4) is None  # resumable on shards too
    final = train_run(cfg, train_ds, val_ds, out)
    assert final == out / "model.pt" and final.exists()
    whole = train_run(cfg, train_ds, val_ds, tmp_path / "whole")
    a, b = (torch.load(p, weights_only=True)["model"] for p in (final, whole))
    assert all(torch.equal(a[k], b[k]) for k in a)  # resumed == uninterrupted
    model = load_model(final, cfg)
    with torch.no_grad():
        out_batch = model(train_ds.batch(batch_indices(0, 16, len(train_ds), 7)))
    assert torch.isfinite(out_batch.loss)


def test_shards_and_rows_give_the_same_batches(tmp_path):
    """A TokenDataset of the same packed windows serves identical batches."""
    stream = doc_stream(30, seed=5)
    ds = ShardDataset(write_shard(tmp_path / "s.bin", stream), block_size=8, eos_id=EOS)
    rows = ds.batch(np.arange(len(ds))).tokens
    mem = TokenDataset(rows, torch.ones_like(rows, dtype=torch.bool), packed=True)
    idx = batch_indices(3, 4, len(ds), seed=1)
    a, b = ds.batch(idx), mem.batch(idx)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.loss_mask, b.loss_mask) and a.packed == b.packed


def test_fingerprint_changes_when_a_shard_is_rewritten(tmp_path):
    import os

    a, b = write_shard(tmp_path / "a.bin", np.arange(50) % VOCAB), write_shard(tmp_path / "b.bin", np.arange(30))
    ds = ShardDataset([a, b], block_size=8, eos_id=0)
    assert ShardDataset([a, b], block_size=8, eos_id=0).fingerprint() == ds.fingerprint()
    assert ShardDataset([b, a], block_size=8, eos_id=0).fingerprint() != ds.fingerprint()  # order matters
    assert ShardDataset([a, b], block_size=4, eos_id=0).fingerprint() != ds.fingerprint()
    before = ds.fingerprint()
    write_shard(a, (np.arange(50) + 1) % VOCAB)  # same size, other tokens
    os.utime(a, ns=(1, 1))  # even if the clock did not move between the two writes
    assert ShardDataset([a, b], block_size=8, eos_id=0).fingerprint() != before


def test_write_stream_cuts_chunks_into_full_shards_in_order(tmp_path):
    from nextlat.data.shards import write_stream

    rng = np.random.default_rng(0)
    chunks = [rng.integers(0, 500, size=n) for n in (3, 0, 11, 5, 1)]
    paths = write_stream(tmp_path, iter(chunks), shard_tokens=7, vocab_size=500, prefix="train")
    sizes = [len(read_shard(p)) for p in paths]
    assert [p.name for p in paths] == [f"train_{i:06d}.bin" for i in range(len(paths))]
    assert sizes == [7, 7, 6]  # 20 tokens: full shards, the rest last
    assert np.array_equal(np.concatenate([read_shard(p) for p in paths]), np.concatenate(chunks))
    assert [len(read_shard(p)) for p in write_stream(tmp_path / "empty", iter([]), 7)] == [0]
