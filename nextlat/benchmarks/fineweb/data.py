"""The gather: every tokenization job's part streams, in part order, cut into fixed-size
shards, plus an index; and the training data read from them.

Files of the data folder:

* ``train/train_000000.bin``, ... and ``validation/validation_000000.bin``, ...: uint16
  token shards of ``shard_tokens`` tokens (the last one shorter) in the nanoGPT /
  modded-nanogpt format (:mod:`nextlat.data.shards`: a 256-int32 header, magic 20240520);
* ``index.json``: each shard's file, token count and sha256, per split, with the corpus
  source, the tokenizer and the decontamination counts;
* ``meta.json`` (written last): sizes, the vocabulary (50,257) and the separator (50256).

Training reads random ``block_size + 1``-token windows of the training stream
(:class:`~nextlat.data.shards.RandomWindows`: seeded by step, so resumable), validation the
consecutive blocks of the validation stream.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ...data.shards import RandomWindows, ShardDataset, read_shard, write_stream
from ...data.store import DataError, load_meta, write_meta
from ...io import sha256_file, write_json
from . import gpt2
from .corpus import read_manifest
from .tokenize import DONE

log = logging.getLogger(__name__)

FORMAT = 1
SPLITS = {"train": "train", "validation": "val"}  # shard folder -> the jobs' part suffix
INDEX = "index.json"


def _job_dirs(inputs: dict) -> list[Path]:
    jobs = sorted((k for k in inputs if k.startswith("tokens_")), key=lambda k: int(k.split("_")[1]))
    return [Path(inputs[k]) for k in jobs]


def _part_files(inputs: dict) -> tuple[dict[int, Path], dict]:
    """{part index: the job folder holding it}, after checking that the jobs together hold
    every corpus part exactly once and each finished."""
    manifest = read_manifest(inputs["corpus"])
    n_parts = len(manifest["parts"])
    where: dict[int, Path] = {}
    for job_dir in _job_dirs(inputs):
        done = job_dir / DONE
        if not done.is_file():
            raise DataError(f"{done} does not exist: tokenization job {job_dir.name} did not finish; rerun it")
        info = json.loads(done.read_text())
        if info["n_parts"] != n_parts:
            raise DataError(f"{done} covers a corpus of {info['n_parts']} parts, the corpus has {n_parts}: "
                            "rerun the tokenization jobs")
        for p in info["parts"]:
            if p in where:
                raise DataError(f"corpus part {p} was tokenized by two jobs ({where[p]} and {job_dir})")
            where[p] = job_dir
    missing = sorted(set(range(n_parts)) - set(where))
    if missing:
        raise DataError(f"corpus parts {missing[:10]} were tokenized by no job (jobs: {len(_job_dirs(inputs))})")
    return where, manifest


def make_data(task: str, data_cfg: dict, out_dir: Path, workers: int | None = None,
              inputs: dict | None = None) -> dict:
    """Gather the tokenization jobs' parts into shards; ``inputs``: ``corpus`` (the corpus
    folder) and ``tokens_<j>`` (job ``j``'s folder) for every job."""
    if not inputs or "corpus" not in inputs or not _job_dirs(inputs):
        raise ValueError("the FineWeb data stage needs the corpus folder and the tokenization jobs' folders "
                         "as inputs (made by the fineweb_corpus and fineweb_tokenize rules)")
    start = time.perf_counter()
    where, manifest = _part_files(inputs)
    block, shard_tokens = int(data_cfg["block_size"]), int(data_cfg["shard_tokens"])
    index: dict = {"format": FORMAT, "dtype": "uint16", "header": "256 x int32: magic 20240520, version 1, count",
                   "tokenizer": "gpt2", "vocab_size": gpt2.VOCAB_SIZE, "eot_id": gpt2.EOT_ID,
                   "separator": "EOT opens each document", "corpus": {k: manifest[k] for k in ("source", "docs")},
                   "splits": {}}
    stats = [json.loads((where[p] / f"part-{p:05d}.json").read_text()) for p in sorted(where)]
    meta: dict = {"format": FORMAT, "task": task, "block_size": block, "seq_len": block,
                  "vocab_size": gpt2.VOCAB_SIZE, "eos_id": gpt2.EOT_ID, "corpus_source": manifest["source"],
                  "corpus_docs": manifest["docs"], "contaminated_docs": sum(s["contaminated"] for s in stats)}
    for folder, suffix in SPLITS.items():
        parts = [where[p] / f"part-{p:05d}.{suffix}.bin" for p in sorted(where)]
        shards = write_stream(out_dir / folder, (read_shard(p) for p in parts), shard_tokens, gpt2.VOCAB_SIZE,
                              prefix=folder)
        counts = [len(read_shard(s)) for s in shards]
        n_tokens, docs = sum(counts), sum(s[f"{suffix}_docs"] for s in stats)
        if n_tokens < block + 1:
            raise DataError(f"the {folder} split holds {n_tokens} tokens, fewer than one block of {block} + 1; "
                            "use a larger corpus or a larger tokenize.val_fraction")
        index["splits"][folder] = {"tokens": n_tokens, "docs": docs,
                                   "shards": [{"file": f"{folder}/{s.name}", "tokens": c, "sha256": sha256_file(s)}
                                              for s, c in zip(shards, counts)]}
        meta[folder] = {"tokens": n_tokens, "docs": docs, "shards": len(shards),
                        "tokens_per_doc": round(n_tokens / max(docs, 1), 1)}
        log.info("%s: %d documents, %d tokens in %d shard(s) of %d", folder, docs, n_tokens, len(shards),
                 shard_tokens)
    index["decontamination"] = {"dropped_docs": meta["contaminated_docs"], "against": "LAMBADA passages"}
    write_json(out_dir / INDEX, index)
    write_meta(out_dir, meta)
    log.info("gathered %d parts from %d jobs in %.1f s (%d contaminated documents dropped)", len(where),
             len(_job_dirs(inputs)), time.perf_counter() - start, meta["contaminated_docs"])
    return meta


def _shards(data_dir: Path, split: str) -> tuple[list[Path], dict]:
    meta = load_meta(data_dir, "FineWeb")
    if meta.get("format") != FORMAT:
        raise DataError(f"{data_dir}/meta.json has format {meta.get('format')}, this code reads {FORMAT}; "
                        "regenerate the data")
    index = json.loads((data_dir / INDEX).read_text())
    listed = index["splits"][split]["shards"]
    paths = [data_dir / s["file"] for s in listed]
    for path, entry in zip(paths, listed):  # header and size checked; a damaged shard is named
        try:
            count = len(read_shard(path))
        except (ValueError, FileNotFoundError) as err:
            raise DataError(f"{err}; regenerate the data") from None
        if count != entry["tokens"]:
            raise DataError(f"{path} holds {count} tokens, {INDEX} says {entry['tokens']}; regenerate the data")
    return paths, meta


def load_split(data_dir: str | Path, split: str) -> ShardDataset:
    """Consecutive packed blocks of a split (validation loss, evaluation)."""
    paths, meta = _shards(Path(data_dir), split)
    return ShardDataset(paths, meta["block_size"] - 1, meta["eos_id"], meta["vocab_size"])


def load_train(data_dir: str | Path):
    """(random training windows, consecutive validation blocks); a row is ``block_size`` tokens."""
    paths, meta = _shards(Path(data_dir), "train")
    return (RandomWindows(paths, meta["block_size"] - 1, meta["eos_id"], meta["vocab_size"]),
            load_split(data_dir, "validation"))
