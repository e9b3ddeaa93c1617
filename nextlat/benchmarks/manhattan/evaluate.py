"""Manhattan world-model evaluation (Table 1): the five metrics and the true world model.

* next-token test     - teacher-forced top-1 predictions that are legal moves (or ``end`` at DEST)
* valid trajectories  - greedy traversals from ``end SRC DEST`` that are legal and stop at DEST
* sequence compression - two different prefixes reaching the same (state, destination) must
  admit the same continuations (Vafa et al. 2024, in the NextLat paper's variant)
* effective latent rank - exp(entropy of normalised singular values) of hidden states
* detour robustness   - greedy traversals where the argmax move is replaced by a random
  allowed turn with probability p

Every metric takes a ``model`` with ``.logits(tokens (B, T) long) -> (B, T, V)``. Rows of
unequal length are right-padded: a causal model never reads a position after the one it
predicts from, so padding needs no attention mask. The "true world model" row of Table 1
is :class:`~nextlat.evaluation.manhattan_oracle.OracleModel`, scored by the same functions.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from .data import ManhattanTokenizer
from .streets import DIRECTIONS, NO_EDGE, UNREACHABLE, StreetGraph
from ...decoding import generate
from ...evaluation.rank import latent_rank
from ...progress import progress

DETOUR_KINDS = ("random_valid", "second_most_likely")
N_DIRS = len(DIRECTIONS)


# =====================================================================================
# Reading traversals
# =====================================================================================
def _lookup(table: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """``table[tokens]``, with -1 for ids outside the table (a model may have a bigger vocab)."""
    inside = (tokens >= 0) & (tokens < len(table))
    return np.where(inside, table[np.clip(tokens, 0, len(table) - 1)], -1)


def traversal_state(graph: StreetGraph, tok: ManhattanTokenizer, src, tokens) -> np.ndarray:
    """Node index reached after each prefix of a continuation: (B, T) tokens -> (B, T + 1).

    ``nodes[:, t]`` is the node before reading ``tokens[:, t]`` (``nodes[:, 0] = src``). It
    becomes -1 for good once a token is not a legal move (an illegal turn, a node, pad or
    ``end``), so a walk read past its ``end`` is -1 from there on.
    """
    tokens = np.atleast_2d(np.asarray(tokens, dtype=np.int64))
    dirs = _lookup(tok.token_dir, tokens)
    nodes = np.full((tokens.shape[0], tokens.shape[1] + 1), -1, dtype=np.int64)
    nodes[:, 0] = np.asarray(src, dtype=np.int64)
    for t in range(tokens.shape[1]):
        cur, d = nodes[:, t], dirs[:, t]
        ok = (cur >= 0) & (d >= 0)
        nodes[:, t + 1] = np.where(ok, graph.succ[np.maximum(cur, 0), np.maximum(d, 0)], -1)
    return nodes


def _pad_rows(rows: list, pad: int = 0) -> np.ndarray:
    """Right-pad token lists into a (B, max_len) int64 array (at least one column)."""
    width = max([len(r) for r in rows] + [1])
    out = np.full((len(rows), width), pad, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def valid_traversals(graph: StreetGraph, tok: ManhattanTokenizer, src, dst, continuations) -> np.ndarray:
    """(B,) bool: legal moves up to the first ``end``, which comes exactly at DEST."""
    tokens = _pad_rows(list(continuations), tok.pad)
    nodes = traversal_state(graph, tok, src, tokens)
    is_end = tokens == tok.eos
    first = is_end.argmax(axis=1)
    reached = nodes[np.arange(len(tokens)), first]  # node when the first `end` was read
    return is_end.any(axis=1) & (reached == np.asarray(dst))


def is_valid_traversal(graph: StreetGraph, tok: ManhattanTokenizer, src: int, dst: int, continuation) -> bool:
    """One traversal: every token before the first ``end`` is a legal move and that ``end``
    is read at ``dst`` (no ``end``, a node or a pad token make it invalid)."""
    return bool(valid_traversals(graph, tok, [src], [dst], [list(continuation)])[0])


def prompt(tok: ManhattanTokenizer, src: int, dst: int) -> list[int]:
    """Generation prompt ``end SRC DEST`` (documents are read after an ``end``, as in training)."""
    return [tok.eos, int(tok.node_token[src]), int(tok.node_token[dst])]


def _take(src, dst, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` pairs, cycling when there are fewer."""
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    if len(src) == 0 or len(src) != len(dst):
        raise ValueError(f"need matching, non-empty src/dst arrays; got {len(src)} and {len(dst)}")
    idx = np.arange(n) % len(src)
    return src[idx], dst[idx]


# =====================================================================================
# Batched decoding of right-padded rows
# =====================================================================================
@torch.no_grad()
def _decode(model, prompts: list[list[int]], budgets, pick, eos: int, device, pad: int = 0) -> list[list[int]]:
    """Extend every prompt by at most ``budgets[r]`` tokens; a row stops after its first ``end``.

    ``pick(rows, last_logits, step)`` chooses the next token of the still-active ``rows``
    (CPU long tensor) from their (b, V) logits; see :func:`nextlat.decoding.generate`.
    Returns the continuations (``end`` included).
    """
    return generate(model, prompts, budgets, pick=pick, eos_id=eos, pad_id=pad, device=torch.device(device)).tolist()


def _greedy(rows, logits, step):
    return logits.argmax(-1)


def _chunks(n: int, size: int, desc: str | None = None):
    """Slices of ``size`` over ``range(n)``; with ``desc``, progress goes to the log."""
    slices = [slice(a, min(a + size, n)) for a in range(0, n, size)]
    return progress(slices, len(slices), desc) if desc else iter(slices)


@torch.no_grad()
def _token_probs(model, rows: list[list[int]], starts: list[int], batch_size: int, device) -> list[np.ndarray]:
    """Teacher-forced probability of every token ``rows[r][starts[r]:]`` given what precedes it."""
    device = torch.device(device)
    out = []
    for sl in _chunks(len(rows), batch_size):
        tokens = torch.from_numpy(_pad_rows(rows[sl])).to(device)
        probs = torch.softmax(model.logits(tokens[:, :-1]).float(), dim=-1)
        got = probs.gather(-1, tokens[:, 1:, None]).squeeze(-1).cpu().numpy()
        for i, r in enumerate(range(sl.start, sl.stop)):
            out.append(got[i, starts[r] - 1: len(rows[r]) - 1])  # logits at t predict token t+1
    return out


# =====================================================================================
# 1. Next-token test
# =====================================================================================
@torch.no_grad()
def next_token_test(model, graph: StreetGraph, tok: ManhattanTokenizer, documents, batch_size: int = 256,
                    device="cpu") -> dict:
    """Teacher-forced top-1 validity on held-out documents ``SRC DEST d1..dk end``.

    Fed as ``end SRC DEST d1..dk``; the k+1 predictions made after DEST (targets d1..dk and
    the final ``end``) count. One is valid iff it is a legal move from the true current node,
    or ``end`` when that node is DEST. Returns the fraction and the number of predictions.
    """
    device = torch.device(device)
    docs = [np.asarray(d, dtype=np.int64) for d in documents]
    if not docs:
        raise ValueError("no documents to evaluate")
    n_valid = n_total = 0
    for sl in _chunks(len(docs), batch_size, "next-token test"):
        batch = docs[sl]
        src = _lookup(tok.token_node, np.array([d[0] for d in batch]))
        dst = _lookup(tok.token_node, np.array([d[1] for d in batch]))
        moves = [d[2:-1] for d in batch]
        nodes = traversal_state(graph, tok, src, _pad_rows(moves, tok.pad))
        n_moves = np.array([len(m) for m in moves])
        if (src < 0).any() or (dst < 0).any() or (nodes[np.arange(len(batch)), n_moves] < 0).any() \
                or any(d[-1] != tok.eos for d in batch):
            raise ValueError("held-out documents must be legal traversals SRC DEST d.. end")
        inputs = torch.from_numpy(_pad_rows([np.concatenate([[tok.eos], d[:-1]]) for d in batch], tok.pad))
        preds = model.logits(inputs.to(device)).argmax(-1).cpu().numpy()[:, 2:]  # from the DEST position on
        preds = preds[:, : nodes.shape[1]]
        counted = np.arange(preds.shape[1])[None] <= n_moves[:, None]  # predictions after DEST, d1..dk
        cur = nodes[:, : preds.shape[1]]
        d = _lookup(tok.token_dir, preds)
        legal = (d >= 0) & (cur >= 0) & (graph.succ[np.maximum(cur, 0), np.maximum(d, 0)] != NO_EDGE)
        stop = (preds == tok.eos) & (cur == dst[:, None])
        n_valid += int(((legal | stop) & counted).sum())
        n_total += int(counted.sum())
    return {"next_token_valid": n_valid / n_total, "n_predictions": n_total, "n_sequences": len(docs)}


# =====================================================================================
# 2. Valid trajectories
# =====================================================================================
@torch.no_grad()
def valid_trajectories(model, graph: StreetGraph, tok: ManhattanTokenizer, src, dst, max_new_tokens: int = 100,
                       batch_size: int = 256, device="cpu") -> tuple[float, list[list[int]]]:
    """Greedy traversals from ``end SRC DEST``: (fraction valid, continuations up to the first ``end``)."""
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    gens: list[list[int]] = []
    for sl in _chunks(len(src), batch_size, "valid trajectories"):
        prompts = [prompt(tok, s, e) for s, e in zip(src[sl], dst[sl])]
        gens += _decode(model, prompts, max_new_tokens, _greedy, tok.eos, device, tok.pad)
    valid = valid_traversals(graph, tok, src, dst, gens)
    return float(valid.mean()), gens


# =====================================================================================
# 3. Sequence compression
# =====================================================================================
def predecessors(graph: StreetGraph) -> list[list[tuple[int, np.ndarray]]]:
    """Per node, its incoming edges grouped by direction: [(direction, predecessor indices)]."""
    src, k, dst = graph.edges()
    order = np.lexsort((src, k, dst))
    groups: list[dict] = [{} for _ in range(graph.n_nodes)]
    for u, d, v in zip(src[order].tolist(), k[order].tolist(), dst[order].tolist()):
        groups[v].setdefault(d, []).append(u)
    return [[(d, np.array(us)) for d, us in sorted(g.items())] for g in groups]


def reverse_walk(preds, s: int, k: int, rng: np.random.Generator) -> tuple[int, list[int]] | None:
    """A k-move walk ending at ``s``, drawn backwards: at each node a uniform incoming direction,
    then a uniform predecessor along it. Returns (origin, forward directions), or None when
    the walk reaches a node nobody drives into."""
    cur, dirs = int(s), []
    for _ in range(k):
        options = preds[cur]
        if not options:
            return None
        d, us = options[rng.integers(len(options))]
        dirs.append(d)
        cur = int(us[rng.integers(len(us))])
    return cur, dirs[::-1]


def reverse_walk_prefixes(graph: StreetGraph, tok: ManhattanTokenizer, s: int, e: int, k: int,
                          rng: np.random.Generator, preds=None, tries: int = 20) -> tuple[list[int], list[int]] | None:
    """Two *different* prefixes ``end origin e d1..dk`` whose walks end at ``s`` (None if
    ``tries`` draws do not give two)."""
    preds = predecessors(graph) if preds is None else preds
    first = None
    for _ in range(tries):
        walk = reverse_walk(preds, s, k, rng)
        if walk is None:
            continue
        origin, dirs = walk
        tokens = prompt(tok, origin, e) + tok.dir_token[dirs].tolist()
        if first is None:
            first = tokens
        elif tokens != first:
            return first, tokens
    return None


def _draw_trials(graph, tok, src, dst, n_trials: int, max_len: int, rng) -> list[tuple[list[int], list[int]]]:
    """Prefix pairs for ``n_trials`` trials, walking through the pairs in order; a pair whose
    prefixes cannot be drawn is skipped (the next pair takes the trial)."""
    hops, preds = graph.hop_distances(), predecessors(graph)
    trials, i = [], 0
    max_attempts = 20 * n_trials + len(src)
    while len(trials) < n_trials and i < max_attempts:
        s, e = int(src[i % len(src)]), int(dst[i % len(src)])
        i += 1
        hi = max_len - int(hops[s, e]) - 3  # k uniform in [1, hi): the walk can still reach e
        if hops[s, e] == UNREACHABLE or hi <= 1:
            continue
        pair = reverse_walk_prefixes(graph, tok, s, e, int(rng.integers(1, hi)), rng, preds)
        if pair is not None:
            trials.append(pair)
    if not trials:
        raise RuntimeError("could not build any pair of distinct prefixes for the compression test")
    return trials


@torch.no_grad()
def compression_test(model, graph: StreetGraph, tok: ManhattanTokenizer, src, dst, n_trials: int = 100,
                     n_suffixes: int = 30, epsilon: float = 0.01, max_len: int = 100, seed: int = 0,
                     batch_size: int = 256, device="cpu") -> dict:
    """Sequence compression, NextLat's variant of Vafa et al.'s test.

    Per trial (state s, destination e from the next pair): two different length-k prefixes
    reaching s; ``n_suffixes`` continuations sampled after prefix 1 (temperature 1, no
    epsilon cutoff, at most ``max_len - (k + 2)`` tokens, cut after the first ``end``). The
    trial scores 1 iff every suffix token has probability > epsilon after prefix 2.
    Returns ``{"compression", "compression_se", "n_trials"}``.
    """
    device = torch.device(device)
    rng = np.random.default_rng(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    trials = _draw_trials(graph, tok, *_take(src, dst, len(src)), n_trials, max_len, rng)

    def sample(rows, logits, step):
        return torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=gen).squeeze(-1)

    # The prefix [end, origin, e, d1..dk] has k + 3 tokens; the document part [origin, e, d..] k + 2.
    firsts = [p1 for p1, _ in trials for _ in range(n_suffixes)]
    budgets = [max_len - (len(p1) - 1) for p1 in firsts]
    suffixes = []
    for sl in _chunks(len(firsts), batch_size, "compression"):
        suffixes += _decode(model, firsts[sl], budgets[sl], sample, tok.eos, device, tok.pad)
    seconds = [p2 for _, p2 in trials for _ in range(n_suffixes)]
    probs = _token_probs(model, [p2 + s for p2, s in zip(seconds, suffixes)], [len(p) for p in seconds],
                         batch_size, device)
    ok = np.array([bool((p > epsilon).all()) for p in probs]).reshape(len(trials), n_suffixes)
    scores = ok.all(axis=1).astype(float)
    se = float(scores.std(ddof=1) / np.sqrt(len(scores))) if len(scores) > 1 else 0.0
    return {"compression": float(scores.mean()), "compression_se": se, "n_trials": len(scores)}


# =====================================================================================
# 5. Detour robustness
# =====================================================================================
class _Detours:
    """The ``pick`` of a detour run: greedy, but at a node other than DEST the argmax is
    replaced with probability p. Tracks each row's node (-1 once the walk is illegal)."""

    def __init__(self, graph, tok, src, dst, p: float, kind: str, max_len: int, rng):
        self.graph, self.tok, self.hops = graph, tok, graph.hop_distances()
        self.node, self.dst = np.array(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
        self.p, self.kind, self.max_len, self.rng = p, kind, max_len, rng

    def allowed(self, node, dst, step: int) -> np.ndarray:
        """(b, 8): legal moves after which DEST is still reachable in time. The `end` must fit
        in the max_len - 2 generated tokens: after move `step` (0-based) at most
        max_len - 4 - step further moves remain, i.e. max_len - 3 - step counting this one."""
        nxt = self.graph.succ[node]
        dist = self.hops[np.maximum(nxt, 0), dst[:, None]].astype(np.int64)
        return (nxt != NO_EDGE) & (dist <= self.max_len - 4 - step)

    def __call__(self, rows, logits, step):
        rows = rows.numpy()
        node, dst = self.node[rows], self.dst[rows]
        # argmax, not topk: ties must break as in plain greedy decoding (first index)
        logits = logits.float()
        best = logits.argmax(-1)
        choice = best.cpu().numpy()
        flip = (self.rng.random(len(rows)) < self.p) & (node >= 0) & (node != dst)
        if self.kind == "second_most_likely":
            second = logits.scatter(-1, best[:, None], float("-inf")).argmax(-1).cpu().numpy()
            choice[flip] = second[flip]
        else:
            ok = self.allowed(np.maximum(node, 0), dst, step)
            ok &= np.arange(N_DIRS)[None] != _lookup(self.tok.token_dir, choice)[:, None]
            for r in np.flatnonzero(flip & ok.any(axis=1)):
                choice[r] = self.tok.dir_token[self.rng.choice(np.flatnonzero(ok[r]))]
        # advance the walks; an illegal token (or `end`) sends the row's node to -1
        self.node[rows] = traversal_state(self.graph, self.tok, node, choice[:, None])[:, 1]
        return torch.from_numpy(choice)


@torch.no_grad()
def detour_generations(model, graph: StreetGraph, tok: ManhattanTokenizer, src, dst, p: float = 0.75,
                       max_len: int = 100, seed: int = 0, kind: str = "random_valid", batch_size: int = 256,
                       device="cpu") -> list[list[int]]:
    """Greedy decoding from ``end SRC DEST`` (at most max_len - 2 tokens, one row per pair)
    pushed off course: with probability p, at a node other than DEST, the argmax becomes a
    uniform random *allowed* turn other than it (``random_valid``; the argmax is kept when
    there is none) or the second most likely token (``second_most_likely``)."""
    if kind not in DETOUR_KINDS:
        raise ValueError(f"unknown detour kind {kind!r}; expected one of {DETOUR_KINDS}")
    rng = np.random.default_rng(seed)
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    gens: list[list[int]] = []
    for sl in _chunks(len(src), batch_size, "detour robustness"):
        pick = _Detours(graph, tok, src[sl], dst[sl], p, kind, max_len, rng)
        prompts = [prompt(tok, s, e) for s, e in zip(src[sl], dst[sl])]
        gens += _decode(model, prompts, max_len - 2, pick, tok.eos, device, tok.pad)
    return gens


def detour_robustness(model, graph: StreetGraph, tok: ManhattanTokenizer, src, dst, p: float = 0.75,
                      n_trials: int = 100, max_len: int = 100, seed: int = 0, kind: str = "random_valid",
                      batch_size: int = 256, device="cpu") -> dict:
    """Fraction of valid :func:`detour_generations` over ``n_trials`` trials, one pair per
    trial (the first ``n_trials`` pairs, cycled). Returns ``{"detour_robustness",
    "n_trials", "mean_tokens"}``; detours make trips longer, so ``mean_tokens`` shows they
    took place."""
    src, dst = _take(src, dst, n_trials)
    gens = detour_generations(model, graph, tok, src, dst, p, max_len, seed, kind, batch_size, device)
    valid = valid_traversals(graph, tok, src, dst, gens)
    return {"detour_robustness": float(valid.mean()), "n_trials": n_trials,
            "mean_tokens": float(np.mean([len(g) for g in gens]))}


# =====================================================================================
# Pipeline glue
# =====================================================================================
def _config(cfg: dict) -> dict:
    """``cfg`` checked against the config schema (benchmarks.manhattan.eval), its defaults
    (the paper's settings) filled in."""
    from ...config import sub_schema, validate

    return validate(copy.deepcopy(dict(cfg or {})), sub_schema("manhattan/properties/eval"))


def _write_samples(path: Path, src, dst, gens: list[list[int]]) -> None:
    """``samples.parquet`` (src, dst node indices, generated tokens), written atomically."""
    import pyarrow as pa

    from ...data.store import write_parquet

    write_parquet(path, pa.table({"src": pa.array(np.asarray(src, dtype=np.int64)),
                                  "dst": pa.array(np.asarray(dst, dtype=np.int64)),
                                  "tokens": pa.array(gens, type=pa.list_(pa.int32()))}))


def _rank_or_none(objective, data_dir, rcfg: dict, eos_id: int, batch_size: int, device) -> tuple[float | None, int]:
    """Effective latent rank on held-out packed rows; None for a model without hidden states."""
    from . import data

    # every document has >= 4 tokens, so n_rows * row_len documents fill the rows asked for
    need = rcfg["n_rows"] * rcfg["row_len"]
    rows = data.packed_split(data_dir, "test", pack_len=rcfg["row_len"], limit=need).tokens[: rcfg["n_rows"]]
    try:
        return latent_rank(objective, rows, eos_id, batch_size, rcfg["tol"], device), rows.size(0)
    except NotImplementedError:
        return None, 0


@torch.no_grad()
def evaluate_manhattan(objective, data_dir, cfg: dict, seed: int, device="cpu", out_dir=None) -> dict:
    """All Table 1 metrics of one model on a generated Manhattan dataset (flat, JSON-ready).

    Next-token test and rank rows use held-out (test split) documents; the other metrics use
    the evaluation pairs (cycled when fewer than asked for). With ``out_dir``, the greedy
    traversals of the valid-trajectories test go to ``out_dir/samples.parquet`` (for map
    reconstruction).
    """
    from . import data

    cfg, device = _config(cfg), torch.device(device)
    bs = cfg["batch_size"]
    graph = data.load_graph(data_dir)
    tok = data.load_tokenizer(data_dir, graph)
    src, dst, _ = data.load_eval_pairs(data_dir, graph)

    was_training = objective.training
    objective.eval()
    try:
        flat, lengths = data.load_documents(data_dir, "test", limit=cfg["next_token"]["n_sequences"])
        docs = np.split(flat, np.cumsum(lengths)[:-1])
        nt = next_token_test(objective, graph, tok, docs, bs, device)

        vsrc, vdst = _take(src, dst, cfg["valid"]["n_pairs"])
        valid, gens = valid_trajectories(objective, graph, tok, vsrc, vdst, cfg["valid"]["max_new_tokens"], bs, device)

        c = cfg["compression"]
        comp = compression_test(objective, graph, tok, src, dst, c["n_trials"], c["n_suffixes"], c["epsilon"],
                                c["max_len"], seed, bs, device)
        rank, n_rank_rows = _rank_or_none(objective, data_dir, cfg["rank"], tok.eos, bs, device)

        d = cfg["detour"]
        detour = detour_robustness(objective, graph, tok, src, dst, d["p"], d["n_trials"], d["max_len"], seed,
                                   d["kind"], bs, device)
    finally:
        objective.train(was_training)

    if out_dir is not None:
        _write_samples(Path(out_dir) / "samples.parquet", vsrc, vdst, gens)
    return {
        "next_token_valid": nt["next_token_valid"],
        "valid_trajectories": valid,
        "compression": comp["compression"],
        "compression_se": comp["compression_se"],
        "effective_rank": rank,
        "detour_robustness": detour["detour_robustness"],
        "n_next_token_sequences": nt["n_sequences"],
        "n_next_token_predictions": nt["n_predictions"],
        "n_valid_pairs": len(vsrc),
        "n_compression_trials": comp["n_trials"],
        "n_rank_rows": n_rank_rows,
        "n_detour_trials": detour["n_trials"],
        "n_eval_pairs": len(src),
    }


def evaluate(objective, data_dir: Path, cfg: dict, seed: int, device, out_dir=None) -> dict:
    """The evaluation stage: Table 1's metrics, and the greedy traversals in ``samples.parquet``."""
    return evaluate_manhattan(objective, data_dir, cfg, seed, device, out_dir=out_dir)
