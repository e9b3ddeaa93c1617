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
