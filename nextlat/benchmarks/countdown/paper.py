"""What the paper reports for Countdown."""

# Figure 4's accuracies (%), keyed by (method, horizon).
PAPER_COUNTDOWN = {("gpt", None): 33.1, ("bst", None): 42.3,
                   ("mtp", 1): 39.2, ("mtp", 4): 49.7, ("mtp", 8): 57.3,
                   ("jtp", 1): 39.0, ("jtp", 4): 49.4, ("jtp", 8): 55.0,
                   ("nextlat", 1): 54.8, ("nextlat", 4): 57.6, ("nextlat", 8): 58.7}
