"""Countdown evaluation: does the generated solution reach the target with the given numbers?

The model is prompted with the four numbers, the target and the pause tokens, and generates
the 17 solution tokens and EOS. Two checkers score each generation:

* **strict** (ours, :func:`check_solution` ``solved_strict``): the generation must be exactly
  three comma-separated equations ``x op y = r`` followed by EOS, each one token per number;
  every equation's arithmetic must hold exactly (integer division only when exact); each
  left-hand number must be *available* — the inputs, then earlier results, as a multiset, so
  each is used at most once (and hence every input exactly once); and the last result must
  equal the target.
* **paper** (``solved_paper``; the NextLat authors' checker): token strings of the
  first 17 generated tokens concatenated, split on ``,``; each equation must read
  ``num op num = num``, its left-hand numbers must lie in the available *set*, which starts as
  the inputs **plus the target** and gains every valid result, and eval(LHS) must equal RHS;
  correct = every equation valid and the last RHS equal to the target.

Where strict is stricter than the paper: numbers may be reused in the paper's rule (a set, not a
multiset) and the target itself counts as available; it does not require every input to be used;
it reads concatenated strings, so adjacent number tokens ``2``,``3`` read as ``23``; and it does
not look at the token after the 17th (EOS). We report both; the strict rate is the headline.
"""
from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

import torch

from .data import (N_EQUATIONS, N_INPUTS, SOLUTION_TOKENS, CountdownTokenizer, load_meta, load_split,
                              parse_equation_tokens)
from ...data.dataset import TokenDataset
from ...decoding import generate
from ...objectives.base import Objective
from ...progress import progress
from ...decoding import check_decodings as _check_decodings

_EQ_RE = re.compile(r"(\d+)([-+*/])(\d+)=(\d+)")
_PAPER_LHS_RE = re.compile(r"(\d+)([-+*/])(\d+)")


def arithmetic_ok(x: int, op: str, y: int, r: int) -> bool:
    """Exact integer arithmetic: ``x op y == r``; division must be exact (and y != 0)."""
    if op == "+":
        return x + y == r
    if op == "*":
        return x * y == r
    if op == "-":
        return x - y == r
    if op == "/":
        return y != 0 and x % y == 0 and x // y == r
    return False


def _parse_text(text: str) -> list[tuple[int, str, int, int] | None]:
    out = []
    for part in text.split(","):
        m = _EQ_RE.fullmatch(part)
        out.append((int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))) if m else None)
    return out


def check_strict(inputs: list[int], target: int, equations: list | None) -> dict:
    """Strict rule on parsed equations (``None`` entries = malformed; ``None`` list = unparseable)."""
    equations = equations or []
    valid, available = [False] * N_EQUATIONS, [False] * N_EQUATIONS
    pool = Counter(int(x) for x in inputs)
    for j, eq in enumerate(equations[:N_EQUATIONS]):
        if eq is None:
            continue
        x, op, y, r = eq
        valid[j] = arithmetic_ok(x, op, y, r)
        need = Counter([x, y])
        available[j] = all(pool[k] >= c for k, c in need.items())
        if available[j]:
            pool -= need
        pool[r] += 1  # the claimed result becomes available (solved needs every equation valid anyway)
    well_formed = len(equations) == N_EQUATIONS and None not in equations
    solved = well_formed and all(valid) and all(available) and equations[-1][3] == int(target)
    return {"well_formed": well_formed, "eq_valid": valid, "eq_available": available, "solved_strict": solved}


def check_paper(inputs: list[int], target: int, text: str) -> dict:
    """NextLat's lenient rule on the concatenated solution text (see the module docstring)."""
    avail = {str(int(x)) for x in inputs} | {str(int(target)), "|"}
    parts = text.split(",")
    valid = []
    for part in parts:
        ok = False
        sides = part.split("=")
        if len(sides) == 2:
            m = _PAPER_LHS_RE.fullmatch(sides[0])
            if m and m.group(1) in avail and m.group(3) in avail and sides[1].isdigit():
                x, op, y = int(m.group(1)), m.group(2), int(m.group(3))
                if op == "/":
                    lhs = Fraction(x, y) if y != 0 else None
                else:
                    lhs = {"+": x + y, "-": x - y, "*": x * y}[op]
                ok = lhs is not None and lhs == int(sides[1])
        if ok:
            avail.add(sides[1])
        valid.append(ok)
    # Exactly the paper's 17-token window holds three one-token-number equations; with our
    # tokens fewer or more parts cannot be a full solution.
    solved = len(parts) == N_EQUATIONS and all(valid) and parts[-1].split("=")[-1] == str(int(target))
    return {"eq_valid_paper": (valid + [False] * N_EQUATIONS)[:N_EQUATIONS], "solved_paper": solved}


def check_solution(inputs: list[int], target: int, solution: str | list[int],
                   tokenizer: CountdownTokenizer | None = None) -> dict:
    """Score one solution, given as text (``83-14=69,91-88=3,69/3=23``) or generated token ids.

    Token ids are cut at the first EOS; the strict rule parses them structurally and requires
    that EOS, the paper rule reads the concatenated strings of the first 17 tokens. Returns
    ``eq_valid`` / ``eq_available`` (3 flags each, strict parse), ``well_formed``,
    ``solved_strict`` (also as ``solved``), ``eq_valid_paper`` and ``solved_paper``.
    Never raises on malformed solutions.
    """
    if len(inputs) != N_INPUTS:
        raise ValueError(f"a Countdown problem has {N_INPUTS} inputs, got {len(inputs)}")
    if isinstance(solution, str):
        text = solution.strip()
        strict = check_strict(inputs, target, _parse_text(text))
        paper = check_paper(inputs, target, text)
    else:
        tok = tokenizer or CountdownTokenizer()
        tokens = [int(t) for t in solution]
        has_eos = tok.eos in tokens
        body = tokens[: tokens.index(tok.eos)] if has_eos else tokens
        strict = check_strict(inputs, target, parse_equation_tokens(body, tok))
        if not has_eos:
            strict["well_formed"] = strict["solved_strict"] = False
        paper = check_paper(inputs, target, tok.tokens_to_text(tokens[:SOLUTION_TOKENS]))
    return {**strict, "solved": strict["solved_strict"], **paper}


def _layout_of(ds: TokenDataset) -> tuple[int, int]:
    """(prompt_len, max_number) read off a Countdown dataset: 5 + pauses, then 17 tokens and EOS."""
    first = ds.loss_mask.float().argmax(1)
    n_sup = ds.loss_mask.sum(1)
    if not (bool((first == first[0]).all()) and bool((n_sup == SOLUTION_TOKENS + 1).all())):
        raise ValueError(f"rows need one prompt length and {SOLUTION_TOKENS + 1} supervised tokens; "
                         f"not a Countdown dataset")
    p_len = int(first[0])
    eos = int(ds.tokens[0, -1])
    if p_len <= N_INPUTS + 1 or ds.seq_len != p_len + SOLUTION_TOKENS + 1 or not bool((ds.tokens[:, -1] == eos).all()):
        raise ValueError("rows do not fit the Countdown layout (numbers, target, pauses, 17 tokens, EOS)")
    return p_len, eos - 7


@torch.no_grad()
def evaluate_countdown(objective: Objective, data: str | Path | TokenDataset, decodings: list[dict],
                       batch_size: int = 256, max_problems: int | None = None, seed: int = 0,
                       device: str | torch.device = "cpu") -> dict:
    """Score an objective on Countdown test problems (a dataset dir -> its ``test`` split).

    ``decodings`` as in :func:`nextlat.evaluation.pathstar.evaluate_pathstar`. Returns a flat
    JSON-ready dict: ``solve_rate/<name>`` (strict), ``solve_rate_paper/<name>``,
    ``eq_valid/<name>`` (3 values: fraction whose equation j is arithmetically valid; Figure 5),
    ``eq_valid_prefix/<name>`` (equations 1..j all valid), ``eq_valid_prefix_paper/<name>``
    (the paper's ``valid_equation_j``), ``well_formed/<name>`` and ``n_problems``.
    """
    decodings = _check_decodings(decodings)
    if isinstance(data, TokenDataset):
        ds = data
        p_len, max_number = _layout_of(ds)
    else:
        meta, ds = load_meta(data), load_split(data, "test")
        p_len, max_number = _layout_of(ds)
        if (p_len, max_number) != (meta["prompt_len"], meta["max_number"]):
            raise ValueError(f"test rows of {data} do not match its meta.json layout")
    tok = CountdownTokenizer(max_number, p_len - N_INPUTS - 1)
    n = len(ds) if max_problems is None else min(max_problems, len(ds))
    if n < 1:
        raise ValueError("no problems to evaluate")
    n_new = SOLUTION_TOKENS + 1

    device = torch.device(device)
    gens = {d["name"]: torch.Generator(device=device).manual_seed(seed) for d in decodings}
    keys = ("solved_strict", "solved_paper", "well_formed")
    counts = {d["name"]: {k: 0 for k in keys} for d in decodings}
    eq_valid = {d["name"]: [0] * N_EQUATIONS for d in decodings}
    prefix = {d["name"]: [0] * N_EQUATIONS for d in decodings}
    prefix_paper = {d["name"]: [0] * N_EQUATIONS for d in decodings}

    was_training = objective.training
    objective.eval()
    try:
        starts = range(0, n, batch_size)
        for start in progress(starts, len(starts), f"Countdown problems ({n}, {len(decodings)} decodings)"):
            tokens = ds.tokens[start: min(start + batch_size, n)]
            problems = tokens[:, : N_INPUTS + 1].tolist()
            prompt = tokens[:, :p_len].to(device)
            for d in decodings:
                name = d["name"]
                out = generate(objective, prompt, n_new, temperature=d["temperature"], top_k=d["top_k"],
                               generator=gens[name]).tolist()
                for prob, gen in zip(problems, out):
                    res = check_solution(prob[:N_INPUTS], prob[N_INPUTS], gen, tok)
                    for k in keys:
                        counts[name][k] += int(res[k])
                    for j in range(N_EQUATIONS):
                        eq_valid[name][j] += int(res["eq_valid"][j])
                        prefix[name][j] += int(all(res["eq_valid"][: j + 1]))
                        prefix_paper[name][j] += int(all(res["eq_valid_paper"][: j + 1]))
    finally:
        objective.train(was_training)

    result: dict = {}
    for d in decodings:
        name = d["name"]
        result[f"solve_rate/{name}"] = counts[name]["solved_strict"] / n
        result[f"solve_rate_paper/{name}"] = counts[name]["solved_paper"] / n
        result[f"well_formed/{name}"] = counts[name]["well_formed"] / n
        result[f"eq_valid/{name}"] = [c / n for c in eq_valid[name]]
        result[f"eq_valid_prefix/{name}"] = [c / n for c in prefix[name]]
        result[f"eq_valid_prefix_paper/{name}"] = [c / n for c in prefix_paper[name]]
    result["n_problems"] = n
    return result


def evaluate(objective: Objective, data_dir: Path, cfg: dict, seed: int, device, out_dir=None) -> dict:
    """The evaluation stage (config block ``eval``)."""
    return evaluate_countdown(objective, data_dir, cfg["decodings"], batch_size=cfg["batch_size"],
                              max_problems=cfg.get("max_problems"), seed=seed, device=device)
