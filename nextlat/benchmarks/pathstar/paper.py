"""What the paper reports for Path-Star (Figure 6 gives bars, not numbers)."""

# Keyed by method, then (degree, arm length). Graphs absent here were not run in the paper.
PAPER_PATHSTAR = {
    "nextlat": {(2, 10): "solves (~100%)", (5, 5): "solves (~100%)", (7, 7): "solves (~100%)"},
    "bst": {(2, 10): "solves", (5, 5): "solves", (7, 7): "fails"},
}
for _m in ("gpt", "mtp", "jtp"):
    PAPER_PATHSTAR[_m] = {g: "chance on >=1 graph (Fig. 6)" for g in [(2, 10), (5, 5), (7, 7)]}
# The paper trains the horizon methods at d = l - 2.
PAPER_HORIZON = "l-2"

# --- the paper's claims, checked by `snakemake claims` (nextlat.report.claims) ---------------
from ...report.claims import All, AtLeast, AtLeastAs, AtMost, Claim, ForEach, Greater, Sel  # noqa: E402

SOLVE = "solve_rate/greedy"
CHANCE_MARGIN = 0.05  # "at chance": a solve rate at most 1/degree + this


def _solve(method: str, **where) -> Sel:
    return Sel(method, SOLVE, "any", tuple(where.items()), label=f"{method} {where.get('task', '')}".strip())


def _at_chance_somewhere(method: str):
    return ForEach("task", lambda t: AtMost(_solve(method, task=t), "chance_solve_rate", CHANCE_MARGIN),
                   method=method, every=False)


CLAIMS = [
    Claim("nextlat_solves_every_graph", "NextLat solves every graph (greedy solve rate >= 90%)",
          ForEach("task", lambda t: AtLeast(_solve("nextlat", task=t), 0.9), method="nextlat"),
          paper="near 100% on G(2,10), G(5,5), G(7,7) (Fig. 6)"),
    Claim("nextlat_beats_gpt", "NextLat is no worse than GPT on every graph and better on at least one",
          All((ForEach("task", lambda t: AtLeastAs(_solve("nextlat", task=t), _solve("gpt", task=t)), method="nextlat"),
               ForEach("task", lambda t: Greater(_solve("nextlat", task=t), _solve("gpt", task=t)), method="nextlat",
                       every=False))),
          paper="Fig. 6: NextLat ~100% on all three graphs, GPT at chance on at least one"),
    Claim("next_token_methods_at_chance", "GPT, MTP and JTP fall to chance (<= 1/degree + 0.05) on at least "
          "one graph (the Clever-Hans failure)",
          All(tuple(_at_chance_somewhere(m) for m in ("gpt", "mtp", "jtp"))),
          paper="Fig. 6: each at chance level on at least one of the three graphs"),
    Claim("bst_fails_largest", "BST fails the largest graph (<= 1/degree + 0.05)",
          AtMost(Sel("bst", SOLVE, None, (("largest", True),), label="bst on the largest graph"),
                 "chance_solve_rate", CHANCE_MARGIN),
          paper="BST solves G(2,10) and G(5,5), fails G(7,7)",
          note="'largest' is the largest graph this scale runs (degree x arm length)"),
]
