"""Memory-mapped uint16 token shards (the nanoGPT / modded-nanogpt ``.bin`` format) and a
dataset of packed fixed-length blocks over them.

A shard is a header of 256 little-endian int32 (``MAGIC``, ``VERSION``, the token count,
then zeros) followed by that many little-endian uint16 token ids: 1024 + 2 * count bytes.
Shards of the same stream can be listed in order; :class:`ShardDataset` reads them as one
token stream through ``np.memmap`` (nothing is loaded up front) and serves windows of
``block_size + 1`` tokens, so the model reads ``block_size`` inputs and predicts the
``block_size`` next tokens. Documents in the stream are separated by an EOS id (the
``models.layout`` convention: EOS *starts* each document), every token is a target.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from ..io import atomic_path
from .batch import Batch

MAGIC = 20240520  # as nanoGPT / llm.c / modded-nanogpt write them
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
MAX_TOKEN_ID = np.iinfo(np.uint16).max  # 65535
_HEADER_DTYPE, _TOKEN_DTYPE = np.dtype("<i4"), np.dtype("<u2")


def check_vocab(vocab_size: int, what: str = "the vocabulary") -> None:
    """Refuse a vocabulary whose ids do not fit uint16 shards."""
    if vocab_size > MAX_TOKEN_ID + 1:
        raise ValueError(f"{what} has {vocab_size} ids, but uint16 token shards hold ids 0..{MAX_TOKEN_ID} "
                         f"only (vocab_size <= {MAX_TOKEN_ID + 1}); use parquet token tables "
                         "(nextlat.data.store) for larger vocabularies")


def write_shard(path: str | Path, tokens, vocab_size: int | None = None) -> Path:
    """Write a 1-D sequence of token ids as a shard, atomically (complete or absent).

    ``vocab_size`` (optional) is checked to fit uint16 too, so a tokenizer that is too
    large fails even when the ids in this shard happen to be small.
    """
    path = Path(path)
    if vocab_size is not None:
        check_vocab(vocab_size, f"the vocabulary of shard {path}")
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise ValueError(f"shard {path}: tokens must be 1-D, got shape {tokens.shape}")
    if tokens.size and not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"shard {path}: tokens must be integer ids, got dtype {tokens.dtype}")
    if tokens.size:
        lo, hi = int(tokens.min()), int(tokens.max())
        if hi > MAX_TOKEN_ID:
            raise ValueError(f"shard {path}: token id {hi} is above {MAX_TOKEN_ID}; uint16 shards hold "
                             f"vocabularies of at most {MAX_TOKEN_ID + 1} ids (use parquet token tables)")
        if lo < 0:
            raise ValueError(f"shard {path}: negative token id {lo}")
    if tokens.size > np.iinfo(np.int32).max:
        raise ValueError(f"shard {path}: {tokens.size} tokens do not fit the header's int32 count; "
                         "split the stream into more shards")
    header = np.zeros(HEADER_INTS, dtype=_HEADER_DTYPE)
    header[:3] = MAGIC, VERSION, tokens.size
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype(_TOKEN_DTYPE, copy=False).tobytes())
    return path


def read_header(path: str | Path) -> int:
    """The token count of shard ``path``, after checking its header and its size."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token shard {path} does not exist")
    size = path.stat().st_size
    if size < HEADER_BYTES:
        raise ValueError(f"token shard {path} is {size} bytes, shorter than its {HEADER_BYTES}-byte header "
                         "(truncated, or not a shard)")
    header = np.fromfile(path, dtype=_HEADER_DTYPE, count=HEADER_INTS)
    magic, version, count = (int(x) for x in header[:3])
    if magic != MAGIC:
        raise ValueError(f"{path} is not a token shard: magic number {magic}, expected {MAGIC}")
    if version != VERSION:
        raise ValueError(f"token shard {path} has format version {version}; this code reads version {VERSION}")
    if count < 0:
        raise ValueError(f"token shard {path} has a corrupt header: token count {count}")
    expected = HEADER_BYTES + count * _TOKEN_DTYPE.itemsize
    if size != expected:
        raise ValueError(f"token shard {path} is {size} bytes, but its header says {count} tokens "
                         f"({expected} bytes): the file is truncated or corrupt; rewrite it")
    return count


def read_shard(path: str | Path) -> np.ndarray:
    """The tokens of shard ``path`` as a read-only uint16 ``np.memmap`` (header checked)."""
    count = read_header(path)
    if count == 0:  # mmap cannot map zero bytes
        return np.zeros(0, dtype=_TOKEN_DTYPE)
    return np.memmap(path, dtype=_TOKEN_DTYPE, mode="r", offset=HEADER_BYTES, shape=(count,))


class ShardDataset:
    """Packed blocks of ``block_size + 1`` tokens cut from the stream of ``shards`` (in the
    order given). Sample ``i`` is the window ``stream[i * block_size : (i + 1) * block_size + 1]``
    (consecutive windows share one token, so every token but the first is a target exactly
    once); ``len`` is the number of whole windows, the incomplete tail is dropped. A window
    may span two shards. All tokens are supervised and rows are packed (``eos_id`` separates
    the documents; it is the objective's EOS id, recorded here and checked to fit uint16).
    Implements :class:`nextlat.data.dataset.Dataset`.
    """

    packed = True

    def __init__(self, shards: str | Path | Iterable[str | Path], block_size: int, eos_id: int,
                 vocab_size: int | None = None):
        paths = [Path(shards)] if isinstance(shards, (str, Path)) else [Path(p) for p in shards]
        if not paths:
            raise ValueError("ShardDataset needs at least one shard file")
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        if vocab_size is not None:
            check_vocab(vocab_size)
            if not 0 <= eos_id < vocab_size:
                raise ValueError(f"eos_id {eos_id} is outside the vocabulary 0..{vocab_size - 1}")
        if not 0 <= eos_id <= MAX_TOKEN_ID:
            raise ValueError(f"eos_id {eos_id} does not fit a uint16 shard (0..{MAX_TOKEN_ID})")
        self.paths, self.block_size, self.eos_id = paths, int(block_size), int(eos_id)
        self._shards = [read_shard(p) for p in paths]
        counts = np.array([len(s) for s in self._shards], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(counts)])  # stream offset of each shard
        self.n_tokens = int(self._starts[-1])
        self._len = max(self.n_tokens - 1, 0) // self.block_size
        if self._len == 0:
            raise ValueError(f"shards {', '.join(map(str, paths))} hold {self.n_tokens} tokens, fewer than "
                             f"one block of block_size + 1 = {self.block_size + 1}")

    def fingerprint(self) -> str:
        """Hash of each shard's path, size, modification time and header, in order. Not of
        the tokens: a corpus of billions of tokens would be read in full at every training
        start. A rewritten shard gets a new mtime, the same change that makes Snakemake rerun."""
        h = hashlib.sha256(f"block={self.block_size} eos={self.eos_id}".encode())
        for path in self.paths:
            st = path.stat()
            h.update(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|".encode())
            with open(path, "rb") as f:
                h.update(f.read(HEADER_BYTES))
        return h.hexdigest()[:16]

    def __len__(self) -> int:
        return self._len

    @property
    def seq_len(self) -> int:
        """Tokens per row (``block_size + 1``), as :attr:`TokenDataset.seq_len`."""
        return self.block_size + 1

    def stream(self, start: int, stop: int) -> np.ndarray:
        """``stream[start:stop]`` as int64 (a copy), read across shard boundaries."""
        if not 0 <= start <= stop <= self.n_tokens:
            raise IndexError(f"tokens [{start}, {stop}) outside the stream of {self.n_tokens}")
        out = np.empty(stop - start, dtype=np.int64)
        k = int(np.searchsorted(self._starts, start, side="right")) - 1
        pos = start
        while pos < stop:
            shard, base = self._shards[k], int(self._starts[k])
            end = min(stop, base + len(shard))
            out[pos - start:end - start] = shard[pos - base:end - base]
            pos, k = end, k + 1
        return out

    def _start(self, i: int) -> int:
        """The stream offset where sample ``i`` begins."""
        return i * self.block_size

    def batch(self, idx) -> Batch:
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        if idx.size and (idx.min() < 0 or idx.max() >= self._len):
            raise IndexError(f"sample index out of range 0..{self._len - 1}: {idx.tolist()}")
        T = self.block_size
        rows = np.stack([self.stream(self._start(i), self._start(i) + T + 1) for i in idx.tolist()]) if idx.size \
            else np.zeros((0, T + 1), dtype=np.int64)
        tokens = torch.from_numpy(rows)
        return Batch(tokens, torch.ones_like(tokens, dtype=torch.bool), packed=True)

    def __repr__(self) -> str:
        return (f"ShardDataset({len(self.paths)} shards, {self.n_tokens} tokens, "
                f"{self._len} blocks of {self.block_size}+1)")


class RandomWindows(ShardDataset):
    """Windows of ``block_size + 1`` tokens starting at *any* token of the stream, drawn at
    random (nanoGPT's sampling; for corpora too large to walk in epochs). Sample ``i`` is the
    window starting at token ``i``, so ``len`` is the number of start offsets.

    :meth:`sample_indices` draws a step's batch from a generator seeded by (``seed``, step):
    the data position of a run is its step, so a run resumed from a checkpoint continues the
    exact sequence of blocks of an uninterrupted one, with nothing else to save.
    """

    def __init__(self, shards, block_size: int, eos_id: int, vocab_size: int | None = None):
        super().__init__(shards, block_size, eos_id, vocab_size)
        self._len = self.n_tokens - self.block_size  # start offsets of whole windows

    def fingerprint(self) -> str:
        return "random-windows:" + super().fingerprint()

    def sample_indices(self, step: int, batch_size: int, seed: int) -> np.ndarray:
        return np.random.default_rng([int(seed), int(step)]).integers(0, self._len, size=batch_size)

    def _start(self, i: int) -> int:
        return i  # sample i is the window starting at token i

    def __repr__(self) -> str:
        return (f"RandomWindows({len(self.paths)} shards, {self.n_tokens} tokens, "
                f"{self._len} windows of {self.block_size}+1)")


def write_stream(out_dir: str | Path, chunks: Iterable, shard_tokens: int, vocab_size: int | None = None,
                 prefix: str = "shard") -> list[Path]:
    """Cut a token stream, given as consecutive 1-D chunks, into shards of ``shard_tokens``
    tokens (the last one shorter) named ``<prefix>_000000.bin``, ... in ``out_dir``. Only one
    shard's worth of tokens is held at a time, so a corpus larger than memory streams through."""
    if shard_tokens < 1:
        raise ValueError(f"shard_tokens must be >= 1, got {shard_tokens}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    buf: list[np.ndarray] = []
    held = 0

    def flush(arr: np.ndarray) -> None:
        paths.append(write_shard(out_dir / f"{prefix}_{len(paths):06d}.bin", arr, vocab_size))

    for chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.int64).reshape(-1)
        pos = 0
        while held + chunk.size - pos >= shard_tokens:  # fill and write the current shard
            take = shard_tokens - held
            flush(np.concatenate(buf + [chunk[pos:pos + take]]))
            buf, held, pos = [], 0, pos + take
        if pos < chunk.size:
            buf.append(chunk[pos:])
            held += chunk.size - pos
    if held or not paths:
        flush(np.concatenate(buf) if buf else np.zeros(0, dtype=np.int64))
    return paths
