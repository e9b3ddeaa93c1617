"""What the paper reports for Manhattan (Table 1)."""

# Table 1 of the paper: (next-token %, valid trajectories %, compression, effective rank,
# detour robustness %). MTP, JTP and NextLat use d = 8 there.
TABLE1_METRICS = [("next_token_valid", "next_token", 100), ("valid_trajectories", "valid", 100),
                  ("compression", "compression", 1), ("effective_rank", "rank", 1),
                  ("detour_robustness", "detour", 100)]
PAPER_TABLE1 = {"gpt": (100, 97.0, 0.65, 160.1, 85.0), "mtp": (100, 98.1, 0.64, 57.7, 95.0),
                "jtp": (100, 97.1, 0.32, 215.8, 87.0), "nextlat": (100, 98.7, 0.71, 52.7, 95.0),
                "true world model": (100, 100, 1.00, float("nan"), 100)}
PAPER_TABLE1_HORIZON = 8
