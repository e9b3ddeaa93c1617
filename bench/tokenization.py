"""Tokenization throughput of the FineWeb-Edu stage against the raw tokenizer, per core.

On the same documents, in one process, interleaved over ``--rounds`` rounds (the order
flips every round, so load changes hit every variant alike):

* ``tiktoken``: ``encode_ordinary`` on each document: the raw tokenizer, the reference;
* ``HF tokenizers``: ``encode_batch`` of the HF tokenizer built from the same files (one thread);
* ``stage``: the tokenization job's whole per-part work on one thread
  (:func:`nextlat.benchmarks.fineweb.tokenize.tokenize_part`: read the parquet part, encode,
  decontaminate against LAMBADA, split by document, write the shards);
* ``stage, no decontamination``: the same without the LAMBADA check.

The ratio is tokens/s/core of a variant over tiktoken's (median over rounds); the goal for
the stage is >= 0.8. The documents are the offline corpus (or ``--corpus`` parts).

    .venv/bin/python bench/tokenization.py                 # ~1 min
    .venv/bin/python bench/tokenization.py --rounds 7 --json results/bench/tokenize.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # HF tokenizers: one core, as the others
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from nextlat.benchmarks.fineweb import corpus as fw_corpus  # noqa: E402
from nextlat.benchmarks.fineweb import gpt2  # noqa: E402
from nextlat.benchmarks.fineweb import tokenize as fw_tok  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", help="a corpus folder (parts + manifest.json); default: build the offline one")
    ap.add_argument("--parts", type=int, default=2, help="corpus parts timed per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-tokenize-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path) -> None:
    if args.corpus:
        corpus_dir = Path(args.corpus)
    else:
        corpus_dir = work / "corpus"
        fw_corpus.make_corpus({}, {"corpus": corpus_dir}, {"corpus": {
            "source": "offline", "offline": {"sources": list(fw_corpus.OFFLINE_SOURCES), "seed": 0},
            "max_docs": None, "min_chars": 1, "docs_per_part": 1000}})
    manifest = fw_corpus.read_manifest(corpus_dir)
    parts = list(enumerate(manifest["parts"]))[:args.parts]
    texts = [t for _, p in parts for t in fw_corpus.read_part(corpus_dir, p)]
    enc, hf = gpt2.encoding(), gpt2.hf_tokenizer()
    n_tokens = sum(map(len, enc.encode_ordinary_batch(texts, num_threads=1)))
    decon = fw_tok._decontaminator({"decontaminate": True, "ngram": 13})
    cfg = {"seed": 0, "val_fraction": 0.05}
    out = work / "tokens"
    out.mkdir()

    def stage(d):
        def tokenize_parts():
            for i, p in parts:
                fw_tok.tokenize_part(corpus_dir, i, p, out, cfg, 1, d)
        return tokenize_parts

    variants = {"tiktoken": lambda: [enc.encode_ordinary(t) for t in texts],
                "HF tokenizers": lambda: hf.encode_batch(texts),
                "stage": stage(decon), "stage, no decontamination": stage(None)}
    for fn in variants.values():  # warm up (caches, first allocations)
        fn()
    seconds: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(args.rounds):
        names = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in names:
            t0 = time.perf_counter()
            variants[name]()
            seconds[name].append(time.perf_counter() - t0)
    ref = statistics.median(seconds["tiktoken"])
    rows = []
    print(f"{len(texts)} documents, {n_tokens} tokens ({sum(map(len, texts)) / 1e6:.1f} MB), one thread, "
          f"{args.rounds} rounds, median")
    print(f"{'variant':28s} {'tokens/s/core':>14s} {'vs tiktoken':>12s}")
    for name, secs in seconds.items():
        med = statistics.median(secs)
        rows.append({"variant": name, "tokens_per_s_per_core": n_tokens / med, "ratio": ref / med, "seconds": secs})
        print(f"{name:28s} {n_tokens / med:14,.0f} {ref / med:12.2f}")
    print("goal: stage >= 0.80 x tiktoken")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"documents": len(texts), "tokens": n_tokens, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
