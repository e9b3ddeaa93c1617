"""The paper's claims, checked on our results with one stated rule.

A claim is a sentence of the paper (``Claim.statement``) and a check that can be evaluated on a
*values frame*: one row per run (seed) with the run keys (``task``, ``method``, ``horizon``,
``seed``, any extra keys a slice adds) and one column per metric, as
:func:`nextlat.report.tables.records_frame` makes from evaluation records. Each benchmark's
``paper.py`` lists its claims (``CLAIMS``); this module knows no benchmark.

The verdict rule (:data:`RULE`), for a setting's values over seeds (mean m, sample standard
deviation s, n seeds):

* *A > B* holds when m_A - m_B > s_A + s_B, fails when m_B - m_A > s_A + s_B, and is
  inconclusive otherwise (the seed spreads overlap).
* *A >= v* (a threshold) holds when m_A - s_A >= v, fails when m_A + s_A < v, else inconclusive;
  *A <= v* likewise mirrored.
* *A ~ B* (within noise) holds when |m_A - m_B| <= s_A + s_B and fails otherwise.
* *A >= B* (no worse: the paper's "matches or beats") fails when m_B - m_A > s_A + s_B and
  holds otherwise.
* A setting with fewer than two seeds gives *inconclusive* (no spread to judge by); a setting
  with no values gives *not run* (not run wins when both happen in one comparison).
  Non-finite values count as missing.
* *all of* holds when every part holds; it fails when one part fails; else not run if one part
  was not run, else inconclusive. *any of* holds when one part holds; else inconclusive if one
  part is inconclusive, else not run if one part was not run, else fails.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "fails", "inconclusive", "not run"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, NOT_RUN)
MIN_SEEDS = 2
RULE = ("A > B holds when mean(A) - mean(B) exceeds std(A) + std(B) over seeds and fails when the "
        "reverse difference does; a threshold holds when mean - std clears it and fails when mean + std "
        "misses it; 'within noise' holds when |mean(A) - mean(B)| <= std(A) + std(B); 'A >= B' (no worse) "
        "fails only when B exceeds A by more than std(A) + std(B); anything else is "
        f"inconclusive, and so is a setting with fewer than {MIN_SEEDS} seeds; no results: not run.")


@dataclass(frozen=True)
class Outcome:
    verdict: str
    reason: str
    numbers: str = ""  # the values involved, "label mean ± std (n)"; parts joined by "; "
    leaf: str = ""  # for a combination: the deciding comparison's own reason


# --- what a check reads -------------------------------------------------------------------
@dataclass(frozen=True)
class Sel:
    """One setting's values of one metric over seeds.

    ``horizon``: an int, None (methods without one) or "any" (whatever horizon the method
    has in the selected rows; refused if that is more than one). ``where``: equalities on other
    columns (``task``, a mode, a domain). ``label``: how the setting is named in the table.
    """

    method: str
    metric: str
    horizon: int | None | str = "any"
    where: tuple[tuple[str, object], ...] = ()
    label: str = ""

    def at(self, **where) -> "Sel":
        """The same selection restricted further (e.g. ``.at(task="2,4")``)."""
        return Sel(self.method, self.metric, self.horizon, self.where + tuple(where.items()), self.label)

    def name(self) -> str:
        if self.label:
            return self.label
        h = "" if self.horizon in (None, "any") else f" d={self.horizon}"
        extra = "".join(f" {v}" for k, v in self.where)
        return f"{self.method}{h}{extra} {self.metric}"

    def values(self, df: pd.DataFrame) -> np.ndarray:
        """One value per seed. Non-finite values count as missing. Rows of several settings
        (two horizons, tasks or training lengths per seed) are refused, not pooled as seeds."""
        if df.empty or self.metric not in df.columns:  # e.g. no speculative records: not run
            return np.array([])
        rows = df[df["method"] == self.method]
        if self.horizon is None:
            rows = rows[rows["horizon"].isna()]
        elif self.horizon != "any":
            rows = rows[rows["horizon"] == self.horizon]
        for key, value in self.where:
            rows = rows[rows[key] == value] if key in rows.columns else rows.iloc[0:0]
        values = pd.to_numeric(rows[self.metric], errors="coerce").astype(float)
        rows = rows[np.isfinite(values)]
        if self.horizon == "any" and rows["horizon"].nunique(dropna=False) > 1:
            raise ValueError(f"{self.name()}: several horizons {rows['horizon'].unique().tolist()}; name one")
        if "seed" in rows.columns and rows["seed"].duplicated().any():
            raise ValueError(f"{self.name()}: several results per seed (settings that differ in "
                             f"{self._differing(rows)}); select one")
        return values[rows.index].to_numpy(dtype=float)

    @staticmethod
    def _differing(rows: pd.DataFrame) -> list[str]:
        keys = [c for c in rows.columns if c not in ("seed", "run_id") and rows[c].map(repr).nunique() > 1]
        return keys[:5]


@dataclass(frozen=True)
class Stats:
    label: str
    values: np.ndarray

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(self.values.mean()) if self.n else math.nan

    @property
    def std(self) -> float:
        return float(self.values.std(ddof=1)) if self.n >= 2 else math.nan

    def text(self) -> str:
        if not self.n:
            return f"{self.label}: —"
        spread = "" if self.n < 2 else f" ± {self.std:.3g}"
        return f"{self.label} {self.mean:.3g}{spread} (n={self.n})"


def _stats(sel: Sel, df: pd.DataFrame) -> Stats:
    return Stats(sel.name(), sel.values(df))


def _missing_or_few(*stats: Stats) -> Outcome | None:
    numbers = "; ".join(s.text() for s in stats)
    empty = [s.label for s in stats if not s.n]
    if empty:
        return Outcome(NOT_RUN, f"no results for {', '.join(empty)}", numbers)
    few = [s.label for s in stats if s.n < MIN_SEEDS]
    if few:
        return Outcome(INCONCLUSIVE, f"fewer than {MIN_SEEDS} seeds for {', '.join(few)}", numbers)
    return None


# --- checks -------------------------------------------------------------------------------
class Check:
    def __call__(self, df: pd.DataFrame) -> Outcome:
        raise NotImplementedError


@dataclass(frozen=True)
class _Pairwise(Check):
    """A comparison of two settings: the missing/few-seeds verdicts, then ``judge`` on the
    difference of the means and the summed seed spread."""

    a: Sel
    b: Sel

    def judge(self, A: Stats, B: Stats, diff: float, spread: float) -> tuple[str, str]:
        raise NotImplementedError

    def __call__(self, df):
        A, B = _stats(self.a, df), _stats(self.b, df)
        early = _missing_or_few(A, B)
        if early:
            return early
        verdict, reason = self.judge(A, B, A.mean - B.mean, A.std + B.std)
        return Outcome(verdict, reason, f"{A.text()}; {B.text()}")


def _exceeds(X: Stats, Y: Stats, by: float, spread: float) -> str:
    return f"{X.label} exceeds {Y.label} by {by:.3g} > spread {spread:.3g}"


class Greater(_Pairwise):
    """A > B: ``a`` larger than ``b`` by more than their combined seed spread."""

    def judge(self, A, B, diff, spread):
        if diff > spread:
            return HOLDS, _exceeds(A, B, diff, spread)
        if -diff > spread:
            return FAILS, _exceeds(B, A, -diff, spread)
        return INCONCLUSIVE, f"difference {diff:+.3g} within spread {spread:.3g}"


class AtLeastAs(_Pairwise):
    """A >= B ("no worse"): holds unless B exceeds A by more than the combined seed spread
    (then it fails). For the paper's "matches or beats" claims, where a tie is the claim."""

    def judge(self, A, B, diff, spread):
        if -diff > spread:
            return FAILS, _exceeds(B, A, -diff, spread)
        return HOLDS, f"{A.label} - {B.label} = {diff:+.3g}, not below -spread {spread:.3g}"


class Within(_Pairwise):
    """A ~ B: the means differ by no more than the combined seed spread."""

    def judge(self, A, B, diff, spread):
        if abs(diff) <= spread:
            return HOLDS, f"difference {diff:+.3g} within spread {spread:.3g}"
        return FAILS, f"difference {diff:+.3g} beyond spread {spread:.3g}"


def Less(a: Sel, b: Sel) -> Check:
    """A < B (e.g. a lower loss): B > A."""
    return Greater(b, a)


def AtMostAs(a: Sel, b: Sel) -> Check:
    """A <= B, no worse where lower is better (a loss): B >= A."""
    return AtLeastAs(b, a)


@dataclass(frozen=True)
class AtLeast(Check):
    """A >= v (``at_most=True``: A <= v). ``value`` is a number or the name of a column whose
    mean over the selected rows is the threshold (say, a chance level stored per record)."""

    a: Sel
    value: float | str
    at_most: bool = False
    margin: float = 0.0  # added to the threshold (e.g. "at chance": <= chance + margin)

    def threshold(self, df: pd.DataFrame) -> float:
        if isinstance(self.value, str):
            col = Sel(self.a.method, self.value, self.a.horizon, self.a.where).values(df)
            return float(col.mean()) + self.margin if len(col) else math.nan
        return float(self.value) + self.margin

    def __call__(self, df):
        A = _stats(self.a, df)
        early = _missing_or_few(A)
        v = self.threshold(df)
        op = "<=" if self.at_most else ">="
        numbers = f"{A.text()} vs {op} {v:.3g}"
        if early:
            return Outcome(early.verdict, early.reason, numbers)
        if not math.isfinite(v):
            return Outcome(NOT_RUN, f"no threshold: {self.value!r} has no values for {A.label}", numbers)
        lo, hi = A.mean - A.std, A.mean + A.std
        clear, miss = (hi <= v, lo > v) if self.at_most else (lo >= v, hi < v)
        if clear:
            return Outcome(HOLDS, f"{A.label} {op} {v:.3g} across its seed spread", numbers)
        if miss:
            return Outcome(FAILS, f"{A.label} misses {op} {v:.3g} across its seed spread", numbers)
        return Outcome(INCONCLUSIVE, f"{v:.3g} lies inside {A.label}'s seed spread", numbers)


def AtMost(a: Sel, value: float | str, margin: float = 0.0) -> Check:
    return AtLeast(a, value, at_most=True, margin=margin)


MAX_NUMBERS = 8  # settings listed per claim in the table; the rest are counted


def _numbers(outcomes: list[Outcome]) -> str:
    """The settings involved, each once, in order of first use."""
    parts = list(dict.fromkeys(p for o in outcomes for p in o.numbers.split("; ") if p))
    more = f"; … {len(parts) - MAX_NUMBERS} more" if len(parts) > MAX_NUMBERS else ""
    return "; ".join(parts[:MAX_NUMBERS]) + more


def _combine(outcomes: list[Outcome], every: bool) -> Outcome:
    """all of (``every``) / any of, with the precedence stated in the module docstring. The
    reason counts the parts and quotes the first deciding comparison (not the nesting)."""
    verdicts = [o.verdict for o in outcomes]
    order = (FAILS, NOT_RUN, INCONCLUSIVE, HOLDS) if every else (HOLDS, INCONCLUSIVE, NOT_RUN, FAILS)
    if not outcomes:
        return Outcome(NOT_RUN, "nothing to check")
    verdict = next(v for v in order if v in verdicts)
    first = next(o for o in outcomes if o.verdict == verdict)
    leaf = first.leaf or first.reason
    count = f"{verdicts.count(verdict)} of {len(outcomes)} parts {verdict}"
    reason = leaf if len(outcomes) == 1 else f"{count}; e.g. {leaf}"
    return Outcome(verdict, reason, _numbers(outcomes), leaf=leaf)


@dataclass(frozen=True)
class All(Check):
    parts: tuple[Check, ...]

    def __call__(self, df):
        return _combine([p(df) for p in self.parts], every=True)


@dataclass(frozen=True)
class Any_(Check):
    parts: tuple[Check, ...]

    def __call__(self, df):
        return _combine([p(df) for p in self.parts], every=False)


@dataclass(frozen=True)
class ForEach(Check):
    """The check made by ``make(value)`` for every value of ``column`` present in the rows of
    ``method`` (every graph, every horizon, every offset); ``every=False``: for at least one."""

    column: str
    make: Callable[[object], Check]
    method: str | None = None
    every: bool = True
    keep: Callable[[object], bool] | None = None  # which values count (e.g. offsets >= 2)

    def __call__(self, df):
        rows = df if self.method is None or df.empty else df[df["method"] == self.method]
        if df.empty or self.column not in df.columns or rows.empty:
            return Outcome(NOT_RUN, f"no results with a {self.column}")
        values = sorted(rows[self.column].dropna().unique(), key=lambda v: (str(type(v)), v))
        values = [v for v in values if self.keep is None or self.keep(v)]
        return _combine([self.make(v)(df) for v in values], every=self.every)


# --- claims -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """One qualitative claim of the paper. ``id`` is unique within its benchmark; ``paper``
    gives the paper's own numbers where it has them; ``note`` says what the check reads."""

    id: str
    statement: str
    check: Check
    paper: str = ""
    note: str = ""
    extra: dict = field(default_factory=dict)
    # Why the claim is not expected to hold below the paper scale, from measurements (the study
    # behind README's "What the default scale shows"); "" when nothing stands in its way.
    below_paper: str = ""


CLAIM_COLUMNS = ["benchmark", "claim", "statement", "paper", "verdict", "reason", "scale_note", "ours", "note"]
PAPER_SCALE = "paper"


def scale_note(claim: Claim, verdict: str, scale: str | None) -> str:
    """What the table says beside a verdict that does not hold below the paper scale."""
    if not claim.below_paper or verdict == HOLDS or scale in (None, PAPER_SCALE):
        return ""
    return f"not expected below the paper scale: {claim.below_paper}"


def evaluate_claims(benchmark: str, claims: Sequence[Claim], df: pd.DataFrame, scale: str | None = None) -> pd.DataFrame:
    """One row per claim: the verdict, a one-line reason, what stands in the way at this
    scale (``scale_note``) and our numbers."""
    rows = []
    for c in claims:
        try:
            out = c.check(df)
        except (ValueError, KeyError) as err:  # a claim that selects pooled or absent settings: a bug
            raise ValueError(f"{benchmark} claim {c.id!r} cannot be evaluated on these results: {err}") from err
        rows.append({"benchmark": benchmark, "claim": c.id, "statement": c.statement, "paper": c.paper,
                     "verdict": out.verdict, "reason": out.reason, "scale_note": scale_note(c, out.verdict, scale),
                     "ours": out.numbers, "note": c.note})
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def not_run(benchmark: str, claims: Sequence[Claim], why: str) -> pd.DataFrame:
    """Rows for the claims of a benchmark that this scale does not run."""
    return pd.DataFrame([{"benchmark": benchmark, "claim": c.id, "statement": c.statement, "paper": c.paper,
                          "verdict": NOT_RUN, "reason": why, "scale_note": "", "ours": "", "note": c.note}
                         for c in claims], columns=CLAIM_COLUMNS)


def summary_line(table: pd.DataFrame) -> str:
    counts = table["verdict"].value_counts()
    return ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS)


__all__ = ["All", "AtLeast", "AtLeastAs", "AtMost", "AtMostAs", "Any_", "CLAIM_COLUMNS", "Check", "Claim", "FAILS", "ForEach", "Greater",
           "HOLDS", "INCONCLUSIVE", "Less", "MIN_SEEDS", "NOT_RUN", "Outcome", "RULE", "Sel", "VERDICTS", "Within",
           "evaluate_claims", "not_run", "scale_note", "summary_line"]
