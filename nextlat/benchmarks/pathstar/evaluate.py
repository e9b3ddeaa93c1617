"""Path-Star evaluation: exact-match solve rate of the generated path, and per-position accuracy.

The model is prompted with everything up to and including ``=`` and generates the ``l``
path tokens (source copy included). Position 0 (the source copy) is trivial; position 1 is
the branch decision, which a Clever-Hans model gets right only 1/d of the time.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ...data.dataset import TokenDataset
from .data import load_meta, load_split
from ...decoding import TEACHER_FORCED, generate
from ...decoding import check_decodings as _check_decodings
from ...objectives.base import Objective
from ...progress import progress



def _shape_of(ds: TokenDataset) -> tuple[int, int, int]:
    """(prompt_len, length, degree) read off a Path-Star dataset's loss mask.

    Every Path-Star row has the same layout: 3·d·(l-1)+3 prompt tokens, l path tokens, EOS.
    """
    first = ds.loss_mask.float().argmax(1)
    n_sup = ds.loss_mask.sum(1)
    if not (bool((first == first[0]).all()) and bool((n_sup == n_sup[0]).all())):
        raise ValueError("rows have different prompt or target lengths; not a Path-Star dataset")
    p_len, length = int(first[0]), int(n_sup[0]) - 1  # the last supervised token is EOS
    edge_tokens = p_len - 3
    if length < 2 or edge_tokens < 3 or edge_tokens % 3 or (edge_tokens // 3) % (length - 1):
        raise ValueError(f"prompt length {p_len} and path length {length} do not fit a G(d,l) row")
    return p_len, length, edge_tokens // 3 // (length - 1)


@torch.no_grad()
def _teacher_forced_correct(objective: Objective, tokens: torch.Tensor, p_len: int, length: int) -> torch.Tensor:
    """(B, l) bool: argmax of the teacher-forced logits equals the gold path token."""
    logits = objective.logits(tokens[:, : p_len + length - 1])
    preds = logits[:, p_len - 1:].argmax(-1)  # logits at t predict token t+1
    return preds == tokens[:, p_len: p_len + length]


@torch.no_grad()
def evaluate_pathstar(objective: Objective, data: str | Path | TokenDataset, decodings: list[dict],
                      batch_size: int = 256, max_graphs: int | None = None, seed: int = 0,
                      device: str | torch.device = "cpu") -> dict:
    """Score an objective on Path-Star test graphs (a dataset dir -> its ``test`` split).

    ``decodings``: e.g. ``[{"name": "greedy", "temperature": 0.0},
    {"name": "sample", "temperature": 1.0, "top_k": None}]``. Returns a flat JSON-ready
    dict with ``solve_rate/<name>``, ``position_acc/<name>`` (one value per path position),
    ``position_acc/teacher_forced``, ``chance_solve_rate`` (1/d) and ``n_graphs``.
    """
    decodings = _check_decodings(decodings)
    if isinstance(data, TokenDataset):
        ds = data
        p_len, length, degree = _shape_of(ds)
    else:
        meta, ds = load_meta(data), load_split(data, "test")
        p_len, length, degree = _shape_of(ds)
        if (p_len, length, degree) != (meta["prompt_len"], meta["length"], meta["degree"]):
            raise ValueError(f"test rows of {data} do not match its meta.json G({meta['degree']},{meta['length']})")
    n = len(ds) if max_graphs is None else min(max_graphs, len(ds))
    if n < 1:
        raise ValueError("no graphs to evaluate")

    device = torch.device(device)
    # One generator per decoding, so each decoding's result does not depend on the others.
    gens = {d["name"]: torch.Generator(device=device).manual_seed(seed) for d in decodings}
    correct = {d["name"]: torch.zeros(length, dtype=torch.long) for d in decodings}
    solved = {d["name"]: 0 for d in decodings}
    tf_correct = torch.zeros(length, dtype=torch.long)

    was_training = objective.training
    objective.eval()
    try:
        starts = range(0, n, batch_size)
        for start in progress(starts, len(starts), f"Path-Star graphs ({n}, {len(decodings)} decodings)"):
            tokens = ds.tokens[start: min(start + batch_size, n)].to(device)
            gold = tokens[:, p_len: p_len + length]
            for d in decodings:
                out = generate(objective, tokens[:, :p_len], length, temperature=d["temperature"],
                               top_k=d["top_k"], generator=gens[d["name"]]).tokens
                hit = out == gold
                correct[d["name"]] += hit.sum(0).cpu()
                solved[d["name"]] += int(hit.all(1).sum())
            tf_correct += _teacher_forced_correct(objective, tokens, p_len, length).sum(0).cpu()
    finally:
        objective.train(was_training)

    result: dict = {}
    for d in decodings:
        result[f"solve_rate/{d['name']}"] = solved[d["name"]] / n
        result[f"position_acc/{d['name']}"] = (correct[d["name"]].double() / n).tolist()
    result[f"position_acc/{TEACHER_FORCED}"] = (tf_correct.double() / n).tolist()
    result["chance_solve_rate"] = 1.0 / degree
    result["n_graphs"] = n
    result["degree"], result["length"] = degree, length
    return result


def evaluate(objective: Objective, data_dir: Path, cfg: dict, seed: int, device, out_dir=None) -> dict:
    """The evaluation stage (config block ``eval``)."""
    return evaluate_pathstar(objective, data_dir, cfg["decodings"], batch_size=cfg["batch_size"],
                             max_graphs=cfg.get("max_graphs"), seed=seed, device=device)
