"""Token shards of the story corpus, and the packed training data read from them.

Each story is tokenised with the corpus's BPE (``datasets.map``, batched, on ``workers``
processes). Stories longer than a block are dropped (the paper's rule: a story and the EOS
before it must fit ``block_size`` tokens) and the number dropped is reported. The kept
stories, in a seeded random order, form one stream ``EOS s_1 EOS s_2 ...`` (EOS opens each
document, the ``models.layout`` convention) cut into uint16 shards. Training reads packed
``block_size``-token windows of that stream (:class:`~nextlat.data.shards.ShardDataset`):
every token is a target, and attention and the latent terms stay inside one story.

Files of a task folder: ``train/`` and ``validation/`` (shards), ``meta.json`` (sizes and
statistics; written last), ``tokenizer.json`` (a copy of the corpus's BPE).
"""
from __future__ import annotations

import functools
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from ...data.shards import ShardDataset, read_shard, write_stream
from ...data.store import DataError, load_meta, write_meta
from . import tokenizer as bpe

log = logging.getLogger(__name__)

SPLITS = {"train": "train", "validation": "validation"}  # corpus split -> shard folder
FORMAT = 1


def _encode(batch: dict, path: str) -> dict:
    tok = _worker_tokenizer(path)
    return {"ids": [e.ids for e in tok.encode_batch(batch["text"])]}


@functools.lru_cache(maxsize=None)
def _worker_tokenizer(path: str):
    return bpe.load(path)  # once per worker process, not per batch


def tokenize_split(corpus_file: str | Path, tokenizer_file: str | Path, workers: int | None):
    """The split's stories as token-id lists (``datasets.map``, batched, ``workers`` processes)."""
    from .corpus import read_split

    ds = read_split(corpus_file)  # (read_split silences the per-batch progress bars)
    procs = workers if workers and workers > 1 and len(ds) >= 2000 else None
    return ds.map(_encode, batched=True, batch_size=1000, num_proc=procs, remove_columns=["text"],
                  fn_kwargs={"path": str(tokenizer_file)}, desc=f"tokenising {Path(corpus_file).name}")


def _token_lists(ds) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, values) of the ``ids`` column as numpy, straight from Arrow: story i is
    ``values[offsets[i]:offsets[i + 1]]`` (no Python list per story)."""
    col = ds.data.column("ids").combine_chunks()
    offsets = col.offsets.to_numpy().astype(np.int64)
    return offsets - offsets[0], col.values.to_numpy(zero_copy_only=False)


def _stream_chunks(offsets: np.ndarray, values: np.ndarray, order: np.ndarray, eos_id: int,
                   chunk: int = 100_000):
    """The EOS-prefixed stories of ``order``, ``chunk`` stories at a time (vectorised gathers)."""
    for start in range(0, len(order), chunk):
        rows = order[start:start + chunk]
        lengths = offsets[rows + 1] - offsets[rows]
        out_starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])  # each story's EOS slot
        out = np.full(int((lengths + 1).sum()), eos_id, dtype=np.int64)
        # position j of story r goes to out_starts[r] + 1 + j, from values[offsets[r] + j]
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out[np.repeat(out_starts + 1, lengths) + within] = values[np.repeat(offsets[rows], lengths) + within]
        yield out


def make_data(task: str, data_cfg: dict, out_dir: Path, workers: int | None = None,
              inputs: dict | None = None) -> dict:
    """Tokenise both corpus splits into shards; ``inputs``: ``train``/``validation`` corpus
    parquet files and ``tokenizer``."""
    if not inputs or not {"train", "validation", "tokenizer"} <= set(inputs):
        raise ValueError("the TinyStories data stage needs the corpus splits and tokenizer.json as inputs "
                         "(made by the tinystories_corpus and tinystories_tokenizer rules)")
    block, vocab = int(data_cfg["block_size"]), int(data_cfg["vocab_size"])
    tok = bpe.load(inputs["tokenizer"])
    if tok.get_vocab_size() > vocab:
        raise DataError(f"tokenizer {inputs['tokenizer']} has {tok.get_vocab_size()} ids but the model's "
                        f"vocabulary is {vocab} (tokenizer.vocab_size)")
    meta: dict = {"format": FORMAT, "task": task, "block_size": block, "seq_len": block, "vocab_size": vocab,
                  "tokenizer_ids": tok.get_vocab_size(), "eos_id": bpe.EOS_ID, "pad_id": bpe.PAD_ID}
    for split_id, (split, folder) in enumerate(SPLITS.items()):
        start = time.perf_counter()
        offsets, values = _token_lists(tokenize_split(inputs[split], inputs["tokenizer"], workers))
        lengths = np.diff(offsets)
        keep = np.flatnonzero(lengths + 1 <= block)  # the story and its opening EOS fit a block
        order = keep[np.random.default_rng([int(data_cfg["seed"]), split_id]).permutation(len(keep))]
        shards = write_stream(out_dir / folder, _stream_chunks(offsets, values, order, bpe.EOS_ID),
                              int(data_cfg["shard_tokens"]), vocab, prefix=folder)
        n_tokens = int(lengths[keep].sum() + len(keep))
        if n_tokens < block:
            raise DataError(f"the {split} split keeps {len(keep)} stories ({n_tokens} tokens), less than one "
                            f"block of {block} tokens")
        meta[split] = {"stories": int(len(lengths)), "kept": int(len(keep)),
                       "dropped_too_long": int(len(lengths) - len(keep)),
                       "tokens": n_tokens, "blocks": (n_tokens - 1) // (block - 1), "shards": len(shards),
                       "story_tokens_mean": round(float(lengths.mean()), 2) if len(lengths) else 0.0,
                       "story_tokens_max": int(lengths.max()) if len(lengths) else 0,
                       "story_tokens_total": int(lengths.sum()), "tokens_per_word": None}
        log.info("%s: %d stories, %d dropped (longer than %d tokens), %d tokens in %d shard(s), %.1f s",
                 split, len(lengths), len(lengths) - len(keep), block - 1, n_tokens, len(shards),
                 time.perf_counter() - start)
    if inputs.get("stats"):  # tokens per word, from the corpus stage's word counts
        import json

        words = json.loads(Path(inputs["stats"]).read_text())
        for split in SPLITS:
            if words.get(split, {}).get("words"):
                meta[split]["tokens_per_word"] = round(meta[split]["story_tokens_total"] / words[split]["words"], 3)
    shutil.copyfile(inputs["tokenizer"], out_dir / "tokenizer.json")  # the folder decodes on its own
    write_meta(out_dir, meta)
    return meta


def load_split(data_dir: str | Path, split: str) -> ShardDataset:
    data_dir = Path(data_dir)
    meta = load_meta(data_dir, "TinyStories")
    if meta.get("format") != FORMAT:
        raise DataError(f"{data_dir}/meta.json has format {meta.get('format')}, this code reads {FORMAT}; "
                        "regenerate the data")
    shards = sorted((data_dir / SPLITS[split]).glob("*.bin"))
    if len(shards) != meta[split]["shards"]:
        raise DataError(f"{data_dir}/{SPLITS[split]} holds {len(shards)} shards, meta.json says "
                        f"{meta[split]['shards']}: the folder is incomplete; regenerate the data")
    for path in shards:  # a damaged shard or a foreign token stops the work, naming the file
        try:
            tokens = read_shard(path)
        except ValueError as err:
            raise DataError(f"{err}; regenerate the data") from None
        if len(tokens) and int(tokens.max()) >= meta["vocab_size"]:
            raise DataError(f"{path} holds token id {int(tokens.max())}, outside the vocabulary of "
                            f"{meta['vocab_size']}; regenerate the data")
    # A row is block_size tokens (the model reads block_size - 1 and predicts as many), as the
    # original's 256-token blocks; consecutive rows share one token of the stream.
    return ShardDataset(shards, meta["block_size"] - 1, meta["eos_id"], meta["vocab_size"])


def load_train(data_dir: str | Path):
    """(train, validation) packed :class:`ShardDataset` s."""
    return load_split(data_dir, "train"), load_split(data_dir, "validation")
