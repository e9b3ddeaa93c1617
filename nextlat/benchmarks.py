"""What the run matrix needs to know about each benchmark at plan time.

An adapter maps a task name to its variables (used in horizon expressions) and to the
model fields fixed by the data (vocabulary, EOS id, sequence length), without reading
any generated file, so Snakemake can plan the whole DAG before data exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .data import pathstar


@dataclass(frozen=True)
class Adapter:
    task_vars: Callable[[str], dict[str, int]]
    model_extras: Callable[[dict, str], dict]


def _pathstar_vars(task: str) -> dict[str, int]:
    d, l = pathstar.parse_task(task)
    return {"d": d, "l": l}


def _pathstar_model(bench: dict, task: str) -> dict:
    d, l = pathstar.parse_task(task)
    n = bench["data"]["n_nodes"]
    return {"vocab_size": pathstar.vocab_size(n), "eos_id": pathstar.eos_id(n),
            "block_size": pathstar.seq_len(d, l)}


ADAPTERS = {"pathstar": Adapter(_pathstar_vars, _pathstar_model)}


def get(name: str) -> Adapter:
    if name not in ADAPTERS:
        raise KeyError(f"unknown benchmark {name!r}; known: {sorted(ADAPTERS)}")
    return ADAPTERS[name]
