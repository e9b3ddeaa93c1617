"""Tokenization jobs: the corpus parts, GPT-2 BPE, one token stream per part and split.

Job ``j`` of ``J`` takes the contiguous part range ``[j * P // J, (j + 1) * P // J)`` of the
``P`` corpus parts (so a cluster runs the ``J`` jobs on as many nodes) and, within the job,
encodes each part's documents on ``threads`` threads (tiktoken releases the GIL). For each
part it writes, in the uint16 shard format of :mod:`nextlat.data.shards`:

* ``part-%05d.train.bin`` and ``part-%05d.val.bin``: ``<|endoftext|> doc <|endoftext|> doc ...``
  (the separator *opens* each document, as in nanoGPT and modded-nanogpt);
* ``part-%05d.json``: documents and tokens per split, documents dropped as contaminated;

and ``done.json`` last. A document goes to validation when a draw seeded by (``seed``, part
index) falls below ``val_fraction``: held out by document, and the same documents whatever
the number of jobs. The data stage (:mod:`.data`) concatenates the parts in order into
fixed-size shards, so the shards are identical for any job count.

Decontamination: a document sharing a run of 13 tokens with a LAMBADA passage (the text the
LAMBADA task scores) is dropped from both splits, and counted.
"""
from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path

import numpy as np

from ...data.shards import write_shard
from ...io import write_json
from . import gpt2
from .corpus import read_manifest, read_part
from .packages import lambada_texts as lambada_passages  # the text the LAMBADA task scores

log = logging.getLogger(__name__)

DONE = "done.json"


def part_range(n_parts: int, job: int, jobs: int) -> range:
    """The corpus parts of job ``job`` of ``jobs`` (contiguous; empty when jobs > parts)."""
    if not 0 <= job < jobs:
        raise ValueError(f"tokenize job {job} is outside 0..{jobs - 1}")
    return range(job * n_parts // jobs, (job + 1) * n_parts // jobs)


def val_mask(n_docs: int, part: int, seed: int, fraction: float) -> np.ndarray:
    """Which of a part's documents are held out for validation (by document, by part index)."""
    return np.random.default_rng([int(seed), int(part)]).random(n_docs) < fraction


# --- decontamination -----------------------------------------------------------------------
_MULT = np.uint64(0x9E3779B97F4A7C15)  # an odd 64-bit constant: n-gram hashes wrap mod 2**64
_SCREEN_MASK = (1 << 24) - 1


def ngram_hashes(tokens: np.ndarray, n: int) -> np.ndarray:
    """A 64-bit hash of every window of ``n`` consecutive tokens (vectorised: n passes)."""
    tokens = np.asarray(tokens, dtype=np.uint64)
    if tokens.size < n:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = np.zeros(tokens.size - n + 1, dtype=np.uint64)
        for k in range(n):
            h = h * _MULT + tokens[k:tokens.size - n + 1 + k] + np.uint64(1)
    return h


class Decontaminator:
    """Flags documents that share a run of ``n`` GPT-2 tokens with any of ``passages`` (an
    exact-text overlap test, GPT-3's 13-gram rule on tokens rather than words, so that it
    runs vectorised on the ids the job computes anyway)."""

    def __init__(self, passages: list[str], n: int = 13):
        self.n = n
        enc = gpt2.encoding()
        grams = [ngram_hashes(np.array(ids), n) for ids in enc.encode_ordinary_batch(passages)]
        self.grams = np.unique(np.concatenate(grams)) if grams else np.zeros(0, dtype=np.uint64)
        # A 16M-entry table of the hashes' low 24 bits screens windows in one gather (a few
        # percent pass), so the exact sorted lookup runs on the candidates only.
        self._screen = np.zeros(1 << 24, dtype=bool)
        self._screen[(self.grams & np.uint64(_SCREEN_MASK)).astype(np.int64)] = True

    def _member(self, hashes: np.ndarray) -> np.ndarray:
        """Which ``hashes`` are passage n-grams."""
        cand = np.flatnonzero(self._screen[(hashes & np.uint64(_SCREEN_MASK)).astype(np.int64)])
        at = np.searchsorted(self.grams, hashes[cand]).clip(max=max(self.grams.size - 1, 0))
        out = np.zeros(hashes.size, dtype=bool)
        if self.grams.size:
            out[cand] = self.grams[at] == hashes[cand]
        return out

    def flags(self, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Whether each document (``lengths`` consecutive ids of ``flat``) contains an n-gram
        of a passage."""
        hits = np.flatnonzero(self._member(ngram_hashes(flat, self.n)))
        # a window is in the document where it starts; one that spans two documents cannot
        # match both, and a false positive there only drops one more document
        owner = np.searchsorted(np.cumsum(lengths), hits, side="right")
        out = np.zeros(len(lengths), dtype=bool)
        out[owner] = True
        return out


def _decontaminator(cfg: dict) -> Decontaminator | None:
    if not cfg.get("decontaminate", True):
        return None
    try:
        passages = lambada_passages()
    except FileNotFoundError as err:
        raise FileNotFoundError(f"benchmarks.fineweb.tokenize.decontaminate needs the LAMBADA passages: {err} "
                                "(or set decontaminate: false)") from None
    return Decontaminator(passages, int(cfg.get("ngram", 13)))


# --- encoding ------------------------------------------------------------------------------
def flatten(ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(all ids in order as one array, each document's length)."""
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.uint16, count=int(lengths.sum()))
    return flat, lengths


def stream(flat: np.ndarray, lengths: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``EOT doc EOT doc ...`` of the kept documents, as one uint16 array (vectorised)."""
    body = flat[np.repeat(keep, lengths)]
    starts = np.cumsum(lengths[keep]) - lengths[keep]  # where each kept document begins in ``body``
    return np.insert(body, starts, gpt2.EOT_ID).astype(np.uint16, copy=False)


def encode(texts: list[str], threads: int) -> list[list[int]]:
    """GPT-2 ids of each text; on ``threads`` > 1 threads (tiktoken releases the GIL), else a
    plain loop (a one-thread pool only adds its hand-offs)."""
    enc = gpt2.encoding()
    if threads > 1:
        return enc.encode_ordinary_batch(texts, num_threads=threads)
    return [enc.encode_ordinary(t) for t in texts]


def tokenize_part(corpus_dir: Path, part_index: int, part: dict, out_dir: Path, cfg: dict, threads: int,
                  decon: Decontaminator | None) -> dict:
    texts = read_part(corpus_dir, part)
    flat, lengths = flatten(encode(texts, threads))
    held = val_mask(len(texts), part_index, cfg["seed"], float(cfg["val_fraction"]))
    dropped = decon.flags(flat, lengths) if decon else np.zeros(len(texts), dtype=bool)
    stats: dict = {"part": part_index, "docs": len(texts), "contaminated": int(dropped.sum())}
    for split, keep in (("train", ~held & ~dropped), ("val", held & ~dropped)):
        tokens = stream(flat, lengths, keep)
        write_shard(out_dir / f"part-{part_index:05d}.{split}.bin", tokens, gpt2.VOCAB_SIZE)
        stats[f"{split}_docs"], stats[f"{split}_tokens"] = int(keep.sum()), int(tokens.size)
    write_json(out_dir / f"part-{part_index:05d}.json", stats)
    return stats


def tokenize_job(inputs: dict, outputs: dict, params: dict) -> dict:
    """One tokenization job: its range of corpus parts -> ``outputs["tokens"]`` (a folder)."""
    corpus_dir, out_dir = Path(inputs["corpus"]), Path(outputs["tokens"])
    cfg, job, jobs = params["tokenize"], int(params["job"]), int(params["jobs"])
    threads = int(params.get("threads") or 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / DONE).unlink(missing_ok=True)
    manifest = read_manifest(corpus_dir)
    parts = part_range(len(manifest["parts"]), job, jobs)
    start = time.perf_counter()
    decon = _decontaminator(cfg)
    log.info("job %d/%d: corpus parts %s of %d, %d thread(s); decontamination %s (%.1f s)", job, jobs,
             f"{parts.start}..{parts.stop - 1}" if parts else "none", len(manifest["parts"]), threads,
             f"on ({decon.grams.size} LAMBADA {decon.n}-token n-grams)" if decon else "off", time.perf_counter() - start)
    done = []
    for i in parts:
        t0 = time.perf_counter()
        s = tokenize_part(corpus_dir, i, manifest["parts"][i], out_dir, cfg, threads, decon)
        secs = time.perf_counter() - t0
        log.info("part %d: %d docs (%d held out, %d contaminated dropped), %d train + %d val tokens, "
                 "%.1f s, %.0f tokens/s", i, s["docs"], s["val_docs"], s["contaminated"], s["train_tokens"],
                 s["val_tokens"], secs, (s["train_tokens"] + s["val_tokens"]) / max(secs, 1e-9))
        done.append(s)
    result = {"job": job, "jobs": jobs, "parts": [s["part"] for s in done], "n_parts": len(manifest["parts"]),
              "seconds": round(time.perf_counter() - start, 3)}
    write_json(out_dir / DONE, result)
    return result
