"""A5 state tracking (paper Figure 10): length generalisation of transformers and of
NextLat's latent dynamics model run alone as a recurrent network.

Rows are *tagged*: position t reads the group elements x_1..x_t and predicts their product
(the state), so inputs and targets are different sequences (see ``data.batch.Batch``).

Files: ``group.py`` (the 60 elements, the product), ``data.py`` (unique words, running
products, the shared test set), ``evaluate.py`` (accuracy per position and per prefix, for
the transformer and, for NextLat, the RNN mode), ``report.py`` (``fig10``, ``table_a5``),
``paper.py`` (the paper's outcome), ``schema.yaml``.
"""
from __future__ import annotations

from ...config import ConfigError
from .. import register
from ..base import Benchmark, Output


@register
class A5(Benchmark):
    name = "a5"
    title = "A5 word problem"
    reports = ("fig10", "table_a5")
    claim_frame = "report:claim_frame"
    tagged_rows = True
    data_outputs = {"train": Output("train.parquet"), "val": Output("val.parquet"),
                    "test": Output("test.parquet"), "meta": Output("meta.json")}

    def task_vars(self, task: str) -> dict[str, int]:
        from .data import parse_task

        return {"L": parse_task(task)}

    def model_fields(self, bench_cfg: dict, task: str) -> dict:
        from . import data

        # Positions up to eval_length are scored, so the transformer must accept them (RoPE
        # or learned positions beyond the training length are what Figure 10 is about).
        length = max(data.parse_task(task), int(bench_cfg["data"]["eval_length"]))
        return {"vocab_size": data.VOCAB_SIZE, "eos_id": data.EOS_ID, "block_size": length}

    def row_len(self, bench_cfg: dict, task: str, block_size: int) -> int:
        from .data import parse_task

        return parse_task(task) + 1  # L tagged inputs: L positions, as a next-token row of L + 1

    def check(self, bench_cfg: dict) -> None:
        from . import data

        d = bench_cfg["data"]
        if d["eval_length"] < d["test_length"]:
            raise ConfigError(f"benchmarks.a5.data.eval_length={d['eval_length']} must be >= "
                              f"data.test_length={d['test_length']} (evaluation runs past the test length)")
        n_train, n_val = data.split_sizes(d)
        if n_train < 1 or n_val < 1:
            raise ConfigError(f"benchmarks.a5.data: train_samples={d['train_samples']} x train_fraction="
                              f"{d['train_fraction']} leaves {n_train} training and {n_val} validation words; "
                              "both need at least one")
        if d["n_test"] > data.words_space(d["test_length"]):
            raise ConfigError(f"benchmarks.a5.data.n_test={d['n_test']} exceeds the "
                              f"60^{d['test_length']} distinct words of length {d['test_length']}")
        for task in bench_cfg["tasks"]:
            length = data.parse_task(task)
            if length > d["eval_length"]:
                raise ConfigError(f"benchmarks.a5.tasks: {task} trains on words longer than "
                                  f"data.eval_length={d['eval_length']}")
            free = data.free_words(d, length)
            if d["train_samples"] > free:
                raise ConfigError(f"benchmarks.a5.data.train_samples={d['train_samples']}: task {task} has "
                                  f"{free} distinct words of length {length} that do not begin a test word")

    def max_rows(self, bench_cfg: dict, task: str, split: str) -> int | None:
        from .data import split_sizes

        n_train, n_val = split_sizes(bench_cfg["data"])
        return n_train if split == "train" else n_val
