"""TinyStories (paper Figures 8 and 16, ablations Figures 12-14): what a frozen model's hidden
state knows about the next 20 tokens, read out by linear probes.

Stages, in order: ``corpus.py`` (the stories, from the hub, local files or the offline
``synthetic.py`` grammar) -> ``tokenizer.py`` (one 1,000-id byte-level BPE per corpus) ->
``data.py`` (token shards; packed 256-token blocks) -> training (every method) ->
``evaluate.py`` (held-out loss, a few generated stories) and the shared probe stage (20
linear probes per run, :mod:`nextlat.stages.probe`) -> ``report.py`` (``fig8``, ``fig16``, ``fig12``-``fig14``, ``stories``).
"""
from __future__ import annotations

from ...config import ConfigError
from .. import register
from ..base import Benchmark, Output, Resources


@register
class TinyStories(Benchmark):
    name = "tinystories"
    title = "TinyStories"
    reports = ("fig8", "fig16", "fig12", "fig13", "fig14", "stories")
    claim_frame = "report:claim_frame"
    extra_stages = ("corpus:make_corpus", "tokenizer:make_tokenizer")
    probes = True  # the generic `probe` rule: 20 linear probes per run
    data_outputs = {"train": Output("train", directory=True), "validation": Output("validation", directory=True),
                    "tokenizer": Output("tokenizer.json"), "meta": Output("meta.json")}
    eval_outputs = {"eval": Output("eval.json"), "stories": Output("stories.json")}
    data_resources = Resources(threads=2, mem_mb=4000, runtime_min=120)

    def model_fields(self, bench_cfg: dict, task: str) -> dict:
        return {"vocab_size": self.vocab_size(bench_cfg), "eos_id": 1,
                "block_size": bench_cfg["data"]["block_size"]}

    @staticmethod
    def vocab_size(bench_cfg: dict) -> int:
        """The model's vocabulary: the configured BPE size, or a given tokenizer file's."""
        tok = bench_cfg["tokenizer"]
        if tok.get("file"):
            from .tokenizer import vocab_size_of

            return vocab_size_of(tok["file"])
        return tok["vocab_size"]

    def data_job(self, bench_cfg: dict) -> Resources:
        r = bench_cfg["data"]["resources"]  # the corpus, tokenizer and data jobs (2.7M stories at paper scale)
        return Resources(threads=r["threads"], mem_mb=r["mem_mb"], runtime_min=r["runtime_min"])

    def data_config(self, bench_cfg: dict) -> dict:
        data = {k: v for k, v in bench_cfg["data"].items() if k != "resources"}  # how, not what
        return {**data, "vocab_size": self.vocab_size(bench_cfg)}

    def data_inputs(self, bench_cfg: dict, task: str) -> dict[str, str]:
        return {"train": "corpus/train.parquet", "validation": "corpus/validation.parquet",
                "stats": "corpus/stats.json", "tokenizer": "tokenizer.json"}

    def max_rows(self, bench_cfg: dict, task: str, split: str) -> int | None:
        return None  # blocks are known once the corpus is tokenised

    def check(self, bench_cfg: dict) -> None:
        from pathlib import Path

        corpus, tok = bench_cfg["corpus"], bench_cfg["tokenizer"]
        if corpus["source"] == "files":
            for split in ("train", "validation"):
                files = corpus["files"][split]
                if not files:
                    raise ConfigError(f"benchmarks.tinystories.corpus.files.{split}: the files source needs "
                                      "at least one .txt/.jsonl/.parquet file")
                for f in files:
                    if not Path(f).is_file():
                        raise ConfigError(f"benchmarks.tinystories.corpus.files.{split}: file {f} does not exist")
        if tok.get("file"):
            if not Path(tok["file"]).is_file():
                raise ConfigError(f"benchmarks.tinystories.tokenizer.file: {tok['file']} does not exist")
            try:
                self.vocab_size(bench_cfg)
            except (ValueError, FileNotFoundError) as err:
                raise ConfigError(f"benchmarks.tinystories.tokenizer.file: {err}") from None
        offsets, block = bench_cfg["probe"]["offsets"], bench_cfg["data"]["block_size"]
        if offsets >= block:
            raise ConfigError(f"benchmarks.tinystories.probe.offsets={offsets} must be below "
                              f"data.block_size={block} (a probe reads a token that many steps ahead)")

    def data_sources(self, bench_cfg: dict) -> list[str]:
        return []  # the corpus and tokenizer files are data_inputs, made by their own rules
