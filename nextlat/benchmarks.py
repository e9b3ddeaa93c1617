"""Everything the pipeline needs to know about each benchmark, in one place.

An :class:`Adapter` answers the plan-time questions (a task's variables for horizon
expressions; the model fields fixed by the data: vocabulary, EOS id, sequence length)
without reading any generated file, so Snakemake can plan the whole DAG before data
exists, and names the stage functions (generate data, load training data, evaluate).
Adding a benchmark = one adapter here + its data/evaluation modules + its rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class Adapter:
    task_vars: Callable[[str], dict[str, int]]
    model_extras: Callable[[dict, str], dict]
    make_data: Callable[[str, dict, Path, Any], Any]  # (task, data config, out_dir, workers)
    load_train: Callable[[Path], tuple]  # data_dir -> (train, val) TokenDatasets
    evaluate: Callable[..., dict]  # (objective, data_dir, eval config, seed, device, out_dir) -> metrics
    # What make_data receives from the benchmark's config block (default: its `data`).
    data_config: Callable[[dict], dict] = field(default=lambda bench: bench["data"])


# --- Path-Star (Figure 6) ------------------------------------------------------------------
def _pathstar_vars(task: str) -> dict[str, int]:
    from .data import pathstar

    d, l = pathstar.parse_task(task)
    return {"d": d, "l": l}


def _pathstar_model(bench: dict, task: str) -> dict:
    from .data import pathstar

    d, l = pathstar.parse_task(task)
    n = bench["data"]["n_nodes"]
    return {"vocab_size": pathstar.vocab_size(n), "eos_id": pathstar.eos_id(n),
            "block_size": pathstar.seq_len(d, l)}


def _pathstar_data(task: str, data: dict, out_dir: Path, workers=None):
    from .data import pathstar

    d, l = pathstar.parse_task(task)
    return pathstar.write_dataset(out_dir, d, l, data["n_nodes"], data["n_train"], data["n_test"],
                                  data.get("seed", 0))


def _stored_splits(name: str) -> Callable[[Path], tuple]:
    """(train, test) loader for a benchmark in the shared store layout. The held-out test
    split serves as validation loss only; reported results always come from the final
    weights, never from a validation-selected checkpoint."""
    from .data import store

    return lambda data_dir: (store.load_split(data_dir, "train", name), store.load_split(data_dir, "test", name))


def _pathstar_eval(objective, data_dir: Path, cfg: dict, seed: int, device: str, out_dir=None) -> dict:
    from .evaluation.pathstar import evaluate_pathstar

    return evaluate_pathstar(objective, data_dir, cfg["decodings"], batch_size=cfg["batch_size"],
                             max_graphs=cfg.get("max_graphs"), seed=seed, device=device)


# --- Countdown (Figures 4 and 5) -----------------------------------------------------------
def _countdown_vars(task: str) -> dict[str, int]:
    return {}  # horizons are plain integers (1, 4, 8)


def _countdown_model(bench: dict, task: str) -> dict:
    from .data import countdown

    data = bench["data"]
    return {"vocab_size": countdown.vocab_size(data["max_number"]), "eos_id": countdown.eos_id(data["max_number"]),
            "block_size": countdown.seq_len(data["n_pause"])}


def _countdown_data(task: str, data: dict, out_dir: Path, workers=None):
    from .data import countdown

    return countdown.write_dataset(out_dir, data["n_train"], data["n_test"], data["seed"],
                                   max_target=data["max_target"], max_number=data["max_number"],
                                   n_pause=data["n_pause"], workers=data.get("workers") or workers)


def _countdown_eval(objective, data_dir: Path, cfg: dict, seed: int, device: str, out_dir=None) -> dict:
    from .evaluation.countdown import evaluate_countdown

    return evaluate_countdown(objective, data_dir, cfg["decodings"], batch_size=cfg["batch_size"],
                              max_problems=cfg.get("max_problems"), seed=seed, device=device)


# --- Manhattan (Table 1, Figure 3) --------------------------------------------------------
def _manhattan_vars(task: str) -> dict[str, int]:
    return {}  # horizons are plain integers (paper: 8)


def manhattan_max_nodes(graph_cfg: dict) -> int:
    """Node bound that sizes the vocabulary before the graph exists: exact for the
    synthetic city (avenues x streets), ``max_nodes`` for OpenStreetMap and the pickles."""
    if graph_cfg["source"] == "synthetic":
        from .data.streets import synthetic_n_nodes

        return synthetic_n_nodes(graph_cfg.get("synthetic", {}))
    return graph_cfg.get("max_nodes", 5000)


def manhattan_has_coords(graph_cfg: dict) -> bool:
    """Whether the graph will carry coordinates (needed by reconstruction and maps)."""
    return graph_cfg["source"] != "pickle" or bool(graph_cfg.get("pickle", {}).get("coords"))


def _manhattan_model(bench: dict, task: str) -> dict:
    from .data import manhattan

    return {"vocab_size": manhattan.vocab_size(manhattan_max_nodes(bench["graph"])),
            "eos_id": manhattan.eos_id(), "block_size": bench["data"]["pack_len"]}


def _manhattan_data(task: str, data: dict, out_dir: Path, workers=None):
    from .data import manhattan, streets

    data = dict(data)
    graph_cfg = data.pop("graph")
    graph = streets.load_street_graph(graph_cfg)
    vocab = manhattan.vocab_size(manhattan_max_nodes(graph_cfg))
    return manhattan.write_dataset(out_dir, graph, data, vocab, workers=data.get("workers") or workers)


def _manhattan_train(data_dir: Path):
    # Held-out traversals (pairs never seen in training) give the validation loss.
    from .data import manhattan

    return manhattan.load_train(data_dir)


def _manhattan_eval(objective, data_dir: Path, cfg: dict, seed: int, device: str, out_dir=None) -> dict:
    from .evaluation.manhattan import evaluate_manhattan

    return evaluate_manhattan(objective, data_dir, cfg, seed, device, out_dir=out_dir)


ADAPTERS = {
    "manhattan": Adapter(_manhattan_vars, _manhattan_model, _manhattan_data, _manhattan_train, _manhattan_eval,
                         data_config=lambda bench: {"graph": bench["graph"], **bench["data"]}),
    "countdown": Adapter(_countdown_vars, _countdown_model, _countdown_data, _stored_splits("Countdown"),
                         _countdown_eval),
    "pathstar": Adapter(_pathstar_vars, _pathstar_model, _pathstar_data, _stored_splits("Path-Star"), _pathstar_eval),
}


def get(name: str) -> Adapter:
    if name not in ADAPTERS:
        raise KeyError(f"unknown benchmark {name!r}; known: {sorted(ADAPTERS)}")
    return ADAPTERS[name]
