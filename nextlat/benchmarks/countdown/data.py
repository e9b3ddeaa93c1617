"""Countdown (4 input numbers, 3 equations): generation, tokenisation and the on-disk dataset.

A problem gives four numbers and a target; the answer is three equations, each combining two
available numbers (the inputs, then earlier results; each used once) into a new one, the last
of which equals the target. Text format (Stream-of-Search's, Gandhi et al. 2024)::

    14,83,88,91,23|83-14=69,91-88=3,69/3=23

Tokens: integer ``k`` -> id ``k`` for ``0 <= k < M`` (``M = max_number``, 10000 by default),
then ``|`` = M, ``*`` = M+1, ``/`` = M+2, ``+`` = M+3, ``-`` = M+4, ``=`` = M+5, ``,`` = M+6,
EOS = M+7; vocab = M+8. Commas before the ``|`` are dropped, commas after it are tokens, and
the single ``|`` becomes ``n_pause`` (8) pause ``|`` tokens. A row is therefore::

    n1 n2 n3 n4 T | | | | | | | |  a op b = c , a op b = c , a op b = c  EOS
    \\____ 5 + n_pause = 13 ____/  \\____________ 17 tokens ____________/  1   -> 31 tokens

and the loss covers the 17 solution tokens and EOS (prompt_len = 5 + n_pause).

Generation follows Stream-of-Search's ``countdown_generate.py`` (re-implemented here):

1. Targets are ``10..max_target``; they are shuffled with Python's ``random.Random(seed)`` and
   the first ``len // 10`` are held out (seed 4 gives SoS's ``val_target`` set
   {14,39,41,57,62,81,87,89,96}). Train problems use the other targets.
2. Per problem: a target drawn uniformly from its split's targets, then four numbers i.i.d.
   uniform in ``1..max_target-1``, all four redrawn until the search below succeeds.
3. Search (depth-first, first solution wins; :func:`solve_dfs`): index pairs ``i < j`` in
   ``itertools.combinations`` order; per pair ``a+b``, ``a*b``, then larger-minus-smaller and
   larger/smaller (the latter only if the smaller is non-zero and divides the larger); the
   result is appended at the end of the remaining numbers. ``+``/``*`` equations keep list
   order, ``-``/``/`` put the larger operand first.

Where this differs from the paper / SoS (documented choices):

* The random numbers come from NumPy, not Python's ``random``, so individual problems differ
  from the SoS files for the same seed (the held-out targets do match). Generation is done in
  fixed-size shards (:data:`SHARD_SIZE`), shard ``k`` of split ``s`` drawing from
  ``np.random.default_rng([seed, s, k])``; shards run in parallel processes and are
  concatenated in order, so the data depend on (seed, sizes) only, never on the worker count.
  Within a shard all pending problems are solved in one vectorised pass per redraw round
  (:func:`solve_batch` enumerates the whole 1152-leaf search tree in DFS order and takes the
  first hit, which is exactly what :func:`solve_dfs` returns; a test checks they agree).
* The test split is ``n_test`` problems (paper: 10k; SoS default 1000) all on the held-out
  targets, i.e. the paper's out-of-distribution test. There is no in-distribution ``val``
  split, and neither split is de-duplicated (SoS does not de-duplicate train either). Since
  their targets are disjoint, no test problem can occur in train.
* NextLat ran a modified SoS script with seed 444 that we have not seen; the config default
  seed is 4 (SoS's ``gen_task.sh``), whose held-out targets are known.
"""
from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...data import store
from ...data.parallel import run_shards
from ...data.store import META_FILE, SPLITS  # noqa: F401  (re-exported)

TASKS = ("cd4",)
N_INPUTS = 4
N_EQUATIONS = N_INPUTS - 1
EQ_TOKENS = 5                                       # a op b = c
SOLUTION_TOKENS = N_EQUATIONS * EQ_TOKENS + N_EQUATIONS - 1   # 17: equations and commas
OPS = ("+", "*", "-", "/")                          # search order of the operations
SHARD_SIZE = 2048                                   # problems per seeded shard (part of the data's identity)
_SPLIT_STREAM = {"train": 0, "test": 1}
_PAIRS = {n: list(itertools.combinations(range(n), 2)) for n in range(2, N_INPUTS + 1)}


# --- task names and sizes (needed by the workflow before any data exists) ------------------
def parse_task(name: str) -> int:
    """``"cd4"`` -> number of input numbers (4); the only variant built here."""
    if name not in TASKS:
        raise ValueError(f"bad Countdown task name {name!r}; expected one of {TASKS}")
    return int(name[2:])


def prompt_len(n_pause: int = 8) -> int:
    """Four inputs, the target and the pause tokens."""
    return N_INPUTS + 1 + n_pause


def seq_len(n_pause: int = 8) -> int:
    """Full row length: prompt, 17 solution tokens and EOS (31 with 8 pauses)."""
    return prompt_len(n_pause) + SOLUTION_TOKENS + 1


def vocab_size(max_number: int = 10000) -> int:
    return max_number + 8


def eos_id(max_number: int = 10000) -> int:
    return max_number + 7


def split_targets(max_target: int, seed: int) -> tuple[list[int], list[int]]:
    """(train targets, held-out test targets): SoS's shuffle of ``10..max_target``, first 10% held out."""
    if max_target < 19:
        raise ValueError(f"max_target must be >= 19 so that at least one target is held out, got {max_target}")
    targets = list(range(10, max_target + 1))
    random.Random(seed).shuffle(targets)
    k = len(targets) // 10
    return targets[k:], targets[:k]


# --- the search ----------------------------------------------------------------------------
def combine(a: int, b: int) -> list[tuple[int, str, int, int]]:
    """The equations the search tries for the pair (a, b), in order, as (x, op, y, result)."""
    out = [(a, "+", b, a + b), (a, "*", b, a * b)]
    hi, lo = max(a, b), min(a, b)
    out.append((hi, "-", lo, hi - lo))
    if lo != 0 and hi % lo == 0:
        out.append((hi, "/", lo, hi // lo))
    return out


def solve_dfs(nums: list[int], target: int) -> list[tuple[int, str, int, int]] | None:
    """Plain-Python depth-first search (the SoS algorithm): the first solution, or None."""
    if len(nums) == 1:
        return [] if nums[0] == target else None
    for i, j in itertools.combinations(range(len(nums)), 2):
        rest = [nums[k] for k in range(len(nums)) if k != i and k != j]
        for eq in combine(nums[i], nums[j]):
            sol = solve_dfs(rest + [eq[3]], target)
            if sol is not None:
                return [eq] + sol
    return None


def _expand(state: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All children of (N, S, n) number lists: (N, S*P*4, n-1), in DFS order (state, pair, op)."""
    N, S, n = state.shape
    kids, kid_ok = [], []
    for i, j in _PAIRS[n]:
        a, b = state[..., i], state[..., j]
        hi, lo = np.maximum(a, b), np.minimum(a, b)
        safe = np.where(lo == 0, 1, lo)
        div_ok = (lo != 0) & (hi % safe == 0)
        vals = np.stack([a + b, a * b, hi - lo, np.where(div_ok, hi // safe, 0)], axis=-1)  # (N,S,4)
        valid = np.stack([ok, ok, ok, ok & div_ok], axis=-1)
        rest = state[..., [k for k in range(n) if k not in (i, j)]]                       # (N,S,n-2)
        rest = np.broadcast_to(rest[:, :, None, :], (N, S, 4, n - 2))
        kids.append(np.concatenate([rest, vals[..., None]], axis=-1))                      # (N,S,4,n-1)
        kid_ok.append(valid)
    P = len(_PAIRS[n])
    return (np.stack(kids, axis=2).reshape(N, S * P * 4, n - 1),
            np.stack(kid_ok, axis=2).reshape(N, S * P * 4))


def solve_batch(nums: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`solve_dfs` for (N, 4) inputs and (N,) targets.

    Enumerates every leaf of the search tree in DFS order and picks the first that hits the
    target. Returns ``solved`` (N,) bool and ``eqs`` (N, 3, 4) int64 rows ``(x, op, y, result)``
    with ``op`` an index into :data:`OPS` (rows of unsolved problems are zero).
    """
    nums = np.asarray(nums, dtype=np.int64)
    target = np.asarray(target, dtype=np.int64)
    N = len(nums)
    states, oks = [nums[:, None, :]], [np.ones((N, 1), dtype=bool)]
    for _ in range(N_EQUATIONS - 1):
        s, o = _expand(states[-1], oks[-1])
        states.append(s)
        oks.append(o)
    # The last equation only has to hit the target: test the four operations without building
    # the leaves ('/' hits iff lo != 0 and hi == target * lo). Leaf index = state * 4 + op.
    a, b, t = states[-1][..., 0], states[-1][..., 1], target[:, None]
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    hit = np.stack([a + b == t, a * b == t, hi - lo == t, (lo != 0) & (hi == t * lo)], axis=-1)
    hit = (hit & oks[-1][..., None]).reshape(N, -1)
    solved = hit.any(axis=1)
    eqs = np.zeros((N, N_EQUATIONS, 4), dtype=np.int64)
    rows = np.flatnonzero(solved)
    idx = hit[rows].argmax(axis=1)
    for level in range(N_EQUATIONS, 0, -1):          # walk from the leaf back to the root
        parent = states[level - 1]
        n = parent.shape[-1]
        P = len(_PAIRS[n])
        op, pair, pidx = idx % 4, (idx // 4) % P, idx // (4 * P)
        pairs = np.array(_PAIRS[n])[pair]
        a = parent[rows, pidx, pairs[:, 0]]
        b = parent[rows, pidx, pairs[:, 1]]
        keep = op < 2                                 # '+' and '*' keep list order
        x = np.where(keep, a, np.maximum(a, b))
        y = np.where(keep, b, np.minimum(a, b))
        res = target[rows] if level == N_EQUATIONS else states[level][rows, idx, -1]
        eqs[rows, level - 1] = np.stack([x, op, y, res], axis=1)
        idx = pidx
    return solved, eqs


@dataclass
class Problems:
    """n problems as arrays: nums (n, 4), target (n,), eqs (n, 3, 4) rows (x, op index, y, result)."""

    nums: np.ndarray
    target: np.ndarray
    eqs: np.ndarray

    def __len__(self) -> int:
        return len(self.target)

    @staticmethod
    def concat(parts: list["Problems"]) -> "Problems":
        return Problems(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("nums", "target", "eqs")))


def _generate_shard(args: tuple) -> Problems:
    n, targets, max_target, seed_key = args
    rng = np.random.default_rng(seed_key)
    target = rng.choice(np.asarray(targets, dtype=np.int64), size=n)
    nums = np.zeros((n, N_INPUTS), dtype=np.int64)
    eqs = np.zeros((n, N_EQUATIONS, 4), dtype=np.int64)
    pending = np.arange(n)
    while len(pending):                               # redraw all four numbers of unsolved problems
        cand = rng.integers(1, max_target, size=(len(pending), N_INPUTS))
        solved, sol = solve_batch(cand, target[pending])
        done = pending[solved]
        nums[done], eqs[done] = cand[solved], sol[solved]
        pending = pending[~solved]
    return Problems(nums, target, eqs)


def generate_problems(n: int, targets: list[int], seed: int, stream: int = 0, max_target: int = 100,
                      workers: int | None = None) -> Problems:
    """n problems on ``targets``, generated in seeded shards (in parallel when workers > 1).

    Shard ``k`` draws from ``default_rng([seed, stream, k])``; the result depends only on
    (n, targets, seed, stream, max_target), never on ``workers``.
    """
    if n < 1:
        raise ValueError(f"need at least one problem, got n={n}")
    if not targets or min(targets) < 0:
        raise ValueError(f"targets must be a non-empty list of non-negative integers, got {targets}")
    if max_target < 2:
        raise ValueError(f"max_target must be >= 2, got {max_target}")
    jobs = [(min(SHARD_SIZE, n - start), list(targets), max_target, [seed, stream, k])
            for k, start in enumerate(range(0, n, SHARD_SIZE))]
    # The workers only use numpy; torch is not imported on this path.
    return Problems.concat(run_shards(_generate_shard, jobs, workers))


# --- tokenizer ---------------------------------------------------------------------------
@dataclass
class CountdownProblem:
    """One decoded row; ``equations`` is empty when the row holds only the prompt."""

    nums: list[int]
    target: int
    equations: list[tuple[int, str, int, int]]


_LINE_RE = re.compile(r"(\d+(?:,\d+)*)\|(.*)")
_EQ_RE = re.compile(r"(\d+)([-+*/])(\d+)=(\d+)")


class CountdownTokenizer:
    def __init__(self, max_number: int = 10000, n_pause: int = 8):
        if max_number < 2:
            raise ValueError(f"max_number must be >= 2, got {max_number}")
        if n_pause < 1:
            raise ValueError(f"n_pause must be >= 1, got {n_pause}")
        self.max_number, self.n_pause = max_number, n_pause
        M = max_number
        self.pipe, self.mul, self.div, self.add, self.sub, self.eq, self.comma = range(M, M + 7)
        self.eos = eos_id(M)
        self.vocab_size = vocab_size(M)
        self.prompt_len = prompt_len(n_pause)
        self.seq_len = seq_len(n_pause)
        self.op_ids = {"+": self.add, "*": self.mul, "-": self.sub, "/": self.div}
        self._op_of_id = {v: k for k, v in self.op_ids.items()}
        self._symbols = {self.pipe: "|", self.eq: "=", self.comma: ",", self.eos: "<eos>", **self._op_of_id}

    def _check_numbers(self, *arrays) -> None:
        for a in arrays:
            a = np.asarray(a)
            if a.size and (a.min() < 0 or a.max() >= self.max_number):
                raise ValueError(f"numbers must lie in 0..{self.max_number - 1} (max_number={self.max_number}); "
                                 f"got {int(a.min())}..{int(a.max())}: use a larger max_number")

    # encoding
    def encode_rows(self, nums: np.ndarray, target: np.ndarray, eqs: np.ndarray | None = None) -> np.ndarray:
        """Vectorised: nums (n, 4), target (n,), eqs (n, 3, 4) ``(x, op index, y, result)`` -> (n, L) int64.

        Without ``eqs`` only the prompt (numbers, target, pauses) is returned.
        """
        nums = np.asarray(nums, dtype=np.int64)
        target = np.asarray(target, dtype=np.int64).reshape(-1, 1)
        n = len(nums)
        self._check_numbers(nums, target)
        parts = [nums, target, np.full((n, self.n_pause), self.pipe, dtype=np.int64)]
        if eqs is not None:
            eqs = np.asarray(eqs, dtype=np.int64)
            self._check_numbers(eqs[..., [0, 2, 3]])
            op_tok = np.array([self.op_ids[o] for o in OPS], dtype=np.int64)[eqs[..., 1]]
            block = np.stack([eqs[..., 0], op_tok, eqs[..., 2], np.full(eqs.shape[:2], self.eq),
                              eqs[..., 3], np.full(eqs.shape[:2], self.comma)], axis=2)   # (n, 3, 6)
            parts += [block.reshape(n, -1)[:, :-1], np.full((n, 1), self.eos, dtype=np.int64)]
        return np.concatenate(parts, axis=1)

    def encode(self, nums, target: int, equations=None) -> tuple[list[int], int]:
        """One problem (equations as ``(x, op, y, result)`` with op a string) -> (token row, prompt_len)."""
        eqs = None
        if equations is not None:
            if len(equations) != N_EQUATIONS:
                raise ValueError(f"a solution has {N_EQUATIONS} equations, got {len(equations)}")
            eqs = np.array([[x, OPS.index(op), y, r] for x, op, y, r in equations], dtype=np.int64)[None]
        if len(nums) != N_INPUTS:
            raise ValueError(f"a problem has {N_INPUTS} input numbers, got {len(nums)}")
        row = self.encode_rows(np.asarray([nums]), np.array([target]), eqs)[0]
        return row.tolist(), self.prompt_len

    def encode_text(self, line: str) -> tuple[list[int], int]:
        """Parse ``n1,n2,n3,n4,T|x op y=r,...`` (the solution may be empty) -> (row, prompt_len)."""
        m = _LINE_RE.fullmatch(line.strip())
        numbers = [int(x) for x in m.group(1).split(",")] if m else []
        if m is None or len(numbers) != N_INPUTS + 1:
            raise ValueError(f"not a Countdown line: {line!r}; expected 'n1,n2,n3,n4,T|eq1,eq2,eq3'")
        equations = None
        if m.group(2):
            equations = []
            for part in m.group(2).split(","):
                e = _EQ_RE.fullmatch(part)
                if e is None:
                    raise ValueError(f"not a Countdown equation: {part!r} in {line!r}")
                equations.append((int(e.group(1)), e.group(2), int(e.group(3)), int(e.group(4))))
        return self.encode(numbers[:-1], numbers[-1], equations)

    # decoding
    def decode(self, row) -> CountdownProblem:
        """A well-formed token row (prompt, optionally the solution and EOS) -> :class:`CountdownProblem`."""
        row = [int(t) for t in row]
        p = self.prompt_len
        if len(row) < p or any(t >= self.max_number for t in row[:N_INPUTS + 1]) \
                or any(t != self.pipe for t in row[N_INPUTS + 1:p]):
            raise ValueError(f"row does not start with {N_INPUTS + 1} numbers and {self.n_pause} pauses")
        prob = CountdownProblem(row[:N_INPUTS], row[N_INPUTS], [])
        sol = row[p:]
        if not sol:
            return prob
        if len(sol) != SOLUTION_TOKENS + 1 or sol[-1] != self.eos:
            raise ValueError(f"solution must be {SOLUTION_TOKENS} tokens and EOS, got {len(sol)} tokens")
        eqs = parse_equation_tokens(sol[:-1], self)
        if eqs is None or len(eqs) != N_EQUATIONS or None in eqs:
            raise ValueError(f"malformed solution tokens: {self.tokens_to_text(sol)!r}")
        prob.equations = eqs
        return prob

    def to_text(self, row) -> str:
        """``n1,n2,n3,n4,T|eq1,eq2,eq3`` (pauses shown as one ``|``, EOS dropped)."""
        p = self.decode(row)
        eqs = ",".join(f"{x}{op}{y}={r}" for x, op, y, r in p.equations)
        return ",".join(str(x) for x in p.nums + [p.target]) + "|" + eqs

    def token_str(self, t: int) -> str:
        t = int(t)
        if 0 <= t < self.max_number:
            return str(t)
        return self._symbols.get(t, "<unk>")

    def tokens_to_text(self, tokens, stop_at_eos: bool = True) -> str:
        """Concatenate token strings (the paper's decoding); stops before the first EOS."""
        out = []
        for t in tokens:
            if stop_at_eos and int(t) == self.eos:
                break
            out.append(self.token_str(t))
        return "".join(out)


def parse_equation_tokens(tokens, tok: CountdownTokenizer) -> list[tuple[int, str, int, int] | None] | None:
    """Split solution tokens (no EOS) on commas; each part must be ``num op num = num``.

    Returns one ``(x, op, y, result)`` per part, ``None`` for a malformed part. Structural,
    so two adjacent number tokens are never read as one number.
    """
    parts, cur = [], []
    for t in (int(t) for t in tokens):
        if t == tok.comma:
            parts.append(cur)
            cur = []
        else:
            cur.append(t)
    parts.append(cur)
    out = []
    for p in parts:
        ok = (len(p) == EQ_TOKENS and p[1] in tok._op_of_id and p[3] == tok.eq
              and all(0 <= p[k] < tok.max_number for k in (0, 2, 4)))
        out.append((p[0], tok._op_of_id[p[1]], p[2], p[4]) if ok else None)
    return out


# --- dataset on disk ---------------------------------------------------------------------
def write_dataset(out_dir: str | Path, n_train: int, n_test: int, seed: int, max_target: int = 100,
                  max_number: int = 10000, n_pause: int = 8, workers: int | None = None) -> dict:
    """Write ``train.parquet``, ``test.parquet`` and (last, atomically) ``meta.json``.

    Train problems use the training targets, test problems only the held-out targets (OOD).
    Returns the meta dict. ``workers`` (None = all cores) does not change the data.
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be >= 1, got {n_train} and {n_test}")
    tok = CountdownTokenizer(max_number, n_pause)
    if max_target > max_number:
        raise ValueError(f"max_target {max_target} needs max_number >= {max_target}")
    train_targets, test_targets = split_targets(max_target, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / META_FILE).unlink(missing_ok=True)  # a dataset is complete only once meta.json is back

    problems = {split: generate_problems(n, targets, seed, _SPLIT_STREAM[split], max_target, workers)
                for split, n, targets in (("train", n_train, train_targets), ("test", n_test, test_targets))}
    max_seen = 0
    for split, pr in problems.items():
        rows = tok.encode_rows(pr.nums, pr.target, pr.eqs).astype(np.int32)  # checks numbers < max_number
        max_seen = max(max_seen, int(pr.eqs[..., [0, 2, 3]].max()))
        store.write_token_table(out / f"{split}.parquet", list(rows), [tok.prompt_len] * len(pr),
                                extra={"target": pr.target.astype(np.int32)})

    meta = {"task": "cd4", "vocab_size": tok.vocab_size, "eos_id": tok.eos, "seq_len": tok.seq_len,
            "prompt_len": tok.prompt_len, "n_train": n_train, "n_test": n_test, "seed": seed,
            "max_target": max_target, "max_number": max_number, "n_pause": n_pause,
            "train_targets": sorted(train_targets), "held_out_targets": sorted(test_targets),
            "max_intermediate": max_seen, "shard_size": SHARD_SIZE,
            "token_ids": {"|": tok.pipe, "*": tok.mul, "/": tok.div, "+": tok.add, "-": tok.sub,
                          "=": tok.eq, ",": tok.comma, "eos": tok.eos}}
    return store.write_meta(out, meta)


def load_meta(data_dir: str | Path) -> dict:
    return store.load_meta(data_dir, "Countdown")


def load_split(data_dir: str | Path, split: str):
    """The split as a :class:`~nextlat.data.dataset.TokenDataset`, checked against meta.json."""
    return store.load_split(data_dir, split, "Countdown")


# --- pipeline stage -----------------------------------------------------------------------
def make_data(task: str, data: dict, out_dir: Path, workers: int | None = None) -> dict:
    """The data stage: train/test problems from the ``data`` config block."""
    parse_task(task)
    return write_dataset(out_dir, data["n_train"], data["n_test"], data["seed"], max_target=data["max_target"],
                         max_number=data["max_number"], n_pause=data["n_pause"],
                         workers=data.get("workers") or workers)
