"""Any objective as a language model of the LM Evaluation Harness (``lm_eval``).

:class:`ObjectiveLM` answers the harness's three request kinds through the objective's
``logits`` and :func:`nextlat.decoding.generate` only, so every method (GPT, MTP, JTP,
NextLat, BST) is scored the same way. Text becomes ids through two callables
(``encode(str) -> list[int]``, ``decode(list[int]) -> str``) and an EOS id; no benchmark
is named here.

Conventions, as the harness's own Hugging Face model (``lm_eval.models.huggingface``) except the first:

* EOS *starts* every document in training, so every context is prefixed by EOS, an empty
  context included (the harness's own model adds its prefix token to empty contexts only;
  our models never saw a document that does not follow an EOS);
* trailing spaces of a context move onto the continuation, and context + continuation are
  encoded whole and split after the context's own ids, so a merge across the boundary is
  scored the way the harness scores it;
* a too-long input is cut on the left (the EOS first), always keeping the continuation; a
  continuation longer than ``max_length`` is scored in disjoint pieces of ``max_length``
  tokens, each conditioned on the tokens before it (the harness's model would refuse it);
* ``loglikelihood_rolling`` uses disjoint windows of ``max_length`` tokens
  (``lm_eval.utils.get_rolling_token_windows`` + ``make_disjoint_window``), the first one
  conditioned on EOS.

:func:`run_tasks` runs task names through ``lm_eval.simple_evaluate`` with this model.
"""
from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from lm_eval.api.model import LM
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from ..decoding import generate

log = logging.getLogger(__name__)

Pair = tuple[tuple[int, ...], tuple[int, ...]]  # (context ids incl. the EOS prefix, continuation ids)


class ObjectiveLM(LM):
    """An objective as an ``lm_eval`` model.

    ``batch_size``: rows per forward pass (and per generation batch); ``max_length``:
    longest input, at most (and by default) the model's ``block_size``; ``max_gen_toks``:
    generation budget when a request does not give one; ``seed``: of sampled generation.
    ``requests`` counts the requests served by kind, ``seconds`` the time spent on each.
    """

    def __init__(self, objective, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str],
                 eos_id: int, device="cpu", batch_size: int = 16, max_length: int | None = None,
                 max_gen_toks: int = 256, seed: int = 0):
        super().__init__()
        block = objective.model_cfg.block_size
        self.max_length = int(max_length or block)
        if not 1 <= self.max_length <= block:
            raise ValueError(f"max_length {self.max_length} must be in 1..{block} (the model's block_size)")
        if batch_size < 1 or max_gen_toks < 1:
            raise ValueError(f"batch_size ({batch_size}) and max_gen_toks ({max_gen_toks}) must be >= 1")
        self.objective = objective.eval()  # dropout off: scores must not depend on the call
        self.encode, self.decode, self.eos_id = encode, decode, int(eos_id)
        self._device = torch.device(device)
        self.batch_size, self.max_gen_toks, self.seed = int(batch_size), int(max_gen_toks), int(seed)
        self.requests: Counter = Counter()
        self.seconds: Counter = Counter()

    # --- scoring ---------------------------------------------------------------------------
    def _encode_pair(self, context: str, continuation: str) -> Pair:
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:  # " word" is one BPE token: the space belongs to the continuation
            context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
        ctx = self.encode(context) if context else []
        whole = self.encode(context + continuation)
        return (self.eos_id, *ctx), tuple(whole[len(ctx):])

    @torch.no_grad()
    def _score(self, pairs: Sequence[Pair]) -> list[tuple[float, bool]]:
        """(log-probability, is_greedy) of each continuation after its context. Identical pairs
        are scored once; rows go longest first (a batch is as wide as its first row)."""
        scores: dict[Pair, tuple[float, bool]] = {}
        todo = []
        for ctx, cont in dict.fromkeys(pairs):
            if not cont:  # nothing to predict (a merge swallowed it): probability 1
                scores[(ctx, cont)] = (0.0, True)
            elif len(cont) > self.max_length:  # longer than a window: disjoint pieces, each after what precedes it
                pieces = [(ctx + cont[:k], cont[k:k + self.max_length]) for k in range(0, len(cont), self.max_length)]
                parts = self._score(pieces)
                scores[(ctx, cont)] = (sum(p[0] for p in parts), all(p[1] for p in parts))
            else:
                todo.append((ctx, cont))
        todo.sort(key=lambda p: len(p[0]) + len(p[1]), reverse=True)
        for s in range(0, len(todo), self.batch_size):
            chunk = todo[s:s + self.batch_size]
            # The model reads all but the last token; cut on the left to max_length inputs.
            rows = [(ctx + cont)[-(self.max_length + 1):-1] for ctx, cont in chunk]
            # Right padding: a causal model never reads it for the positions scored.
            inputs = torch.full((len(rows), len(rows[0])), self.eos_id, dtype=torch.long)
            for i, row in enumerate(rows):
                inputs[i, :len(row)] = torch.tensor(row)
            logits = self.objective.logits(inputs.to(self._device))
            for i, ((ctx, cont), row) in enumerate(zip(chunk, rows)):
                # Position t predicts token t + 1: the last len(cont) inputs predict the continuation.
                # log_softmax on these positions only (a whole (B, T, V) copy is gigabytes at V = 50k).
                at = logits[i, len(row) - len(cont):len(row)].float()
                target = torch.tensor(cont, device=at.device)
                logp = F.log_softmax(at, dim=-1).gather(-1, target[:, None]).sum()
                scores[(ctx, cont)] = (float(logp), bool((at.argmax(-1) == target).all()))
        return [scores[p] for p in pairs]

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        start = time.perf_counter()
        out = self._score([self._encode_pair(*req.args) for req in requests])
        self._count("loglikelihood", len(requests), start)
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        start = time.perf_counter()
        pairs, owner = [], []
        for r, req in enumerate(requests):
            ids = self.encode(req.args[0])
            # Windows of max_length inputs; each token is predicted once, the first from EOS.
            for ctx, cont in map(make_disjoint_window,
                                 get_rolling_token_windows(ids, self.eos_id, self.max_length, 1)):
                pairs.append((tuple(ctx), tuple(cont)))
                owner.append(r)
        totals = [0.0] * len(requests)
        for r, (logp, _) in zip(owner, self._score(pairs)):
            totals[r] += logp
        self._count("loglikelihood_rolling", len(requests), start)
        return totals

    # --- generation ------------------------------------------------------------------------
    @torch.no_grad()
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Continuations decoded with ``nextlat.decoding.generate`` (KV-cached where the objective
        has a cache), cut at the first of the request's ``until`` strings. Greedy unless the
        request asks ``do_sample`` (then ``temperature``, default 1). A row stops at EOS or
        its budget; the budget is capped so prompt + continuation fit ``max_length``, and a
        longer prompt loses its beginning."""
        start = time.perf_counter()
        out: list[str | None] = [None] * len(requests)
        groups = defaultdict(list)  # one decoding setting per batch
        for r, req in enumerate(requests):
            groups[json.dumps(req.args[1], sort_keys=True, default=str)].append(r)
        gen = torch.Generator(device=self._device).manual_seed(self.seed)
        for members in groups.values():
            kwargs = dict(requests[members[0]].args[1])
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            budget = min(int(kwargs.get("max_gen_toks") or self.max_gen_toks), self.max_length - 1)
            temperature = float(kwargs.get("temperature", 1.0)) if kwargs.get("do_sample") else 0.0
            prompts = {r: ([self.eos_id] + self.encode(requests[r].args[0]))[-(self.max_length - budget):]
                       for r in members}
            order = sorted(members, key=lambda r: len(prompts[r]), reverse=True)
            for s in range(0, len(order), self.batch_size):
                rows = order[s:s + self.batch_size]
                result = generate(self.objective, [prompts[r] for r in rows], budget, temperature=temperature,
                                  generator=gen if temperature > 0 else None, eos_id=self.eos_id,
                                  pad_id=self.eos_id, device=self._device)
                for r, ids in zip(rows, result.tolist()):
                    if self.eos_id in ids:  # the document ended: the EOS is not text
                        ids = ids[:ids.index(self.eos_id)]
                    out[r] = _cut(self.decode(ids), until)
        self._count("generate_until", len(requests), start)
        return out

    def _count(self, kind: str, n: int, start: float) -> None:
        self.requests[kind] += n
        self.seconds[kind] += time.perf_counter() - start


def _cut(text: str, until: Sequence[str]) -> str:
    """``text`` up to the earliest occurrence of any non-empty ``until`` string."""
    ends = [text.find(u) for u in until if u and u in text]
    return text[:min(ends)] if ends else text


def run_tasks(lm: LM, tasks: list[str], include_path: str | None, limit: int | None) -> dict:
    """Run harness ``tasks`` with ``lm`` (0-shot unless a task sets otherwise, no stderr
    bootstrap). ``include_path``: a folder of task YAMLs, read *instead of* the harness's
    own tasks (None: the harness's own). ``limit``: the first ``limit`` docs of each task.

    Returns the JSON-safe part of ``simple_evaluate``'s output: ``results`` (per task,
    ``"<metric>,<filter>"`` -> value), ``n-samples`` (per task ``original``/``effective``
    doc counts), ``configs``, ``versions`` and ``n-shot``. Note that ``simple_evaluate``
    seeds Python's, NumPy's and torch's global RNGs (its defaults, kept for comparability).
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=include_path, include_defaults=include_path is None)
    out = lm_eval.simple_evaluate(model=lm, tasks=list(tasks), task_manager=manager, limit=limit,
                                  log_samples=False, bootstrap_iters=0)
    keep = {k: out.get(k, {}) for k in ("results", "n-samples", "configs", "versions", "n-shot")}
    # numpy scalars -> Python numbers, anything else unusual -> its string, so it can be saved as JSON
    return json.loads(json.dumps(keep, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
