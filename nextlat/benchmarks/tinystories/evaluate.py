"""TinyStories evaluation of one run: held-out next-token loss and a few generated stories.

The loss is the mean cross-entropy over every token of the first ``val_blocks`` validation
blocks (packed, document-restricted attention, as in training). Stories are sampled from an
EOS (the start of a story) with the configured temperature and top-k, seeded by the run's
seed, and decoded with the corpus's tokenizer. The probes are their own stage (``probe.py``).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ...decoding import generate
from ...evaluation.heldout import heldout_loss
from ...io import write_json
from ...objectives.base import Objective
from . import tokenizer as bpe
from .data import load_split


def sample_stories(objective: Objective, tokenizer_file, cfg: dict, seed: int, device) -> list[str]:
    tok = bpe.load(tokenizer_file)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    prompts = [[bpe.EOS_ID]] * int(cfg["n"])
    budget = min(int(cfg["max_new_tokens"]), objective.model_cfg.block_size - 1)
    out = generate(objective, prompts, budget, temperature=cfg["temperature"], top_k=cfg.get("top_k"),
                   generator=gen, eos_id=bpe.EOS_ID, pad_id=bpe.PAD_ID, device=device)
    stories = []
    for row, n in zip(out.tokens.cpu().tolist(), out.lengths.tolist()):
        ids = [t for t in row[:n] if t != bpe.EOS_ID]
        stories.append(bpe.decode(tok, ids))
    return stories


def evaluate(objective: Objective, data_dir: Path, eval_cfg: dict, seed: int, device, out_dir: Path) -> dict:
    val = load_split(data_dir, "validation")
    metrics = heldout_loss(objective, val, eval_cfg["val_blocks"], eval_cfg["batch_size"], device)
    stories = sample_stories(objective, Path(data_dir) / "tokenizer.json", eval_cfg["stories"], seed, device)
    write_json(Path(out_dir) / "stories.json", {"seed": seed, "settings": eval_cfg["stories"],
                                                 "stories": stories})
    return metrics
