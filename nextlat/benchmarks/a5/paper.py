"""What the paper reports for A5 (Figure 10 gives curves, not a table)."""

# Outcome per curve, keyed by (method, mode, trained at the test length?).
PAPER_A5 = {
    ("gpt", "transformer", False): "fits the training length (12), fails beyond it",
    ("nextlat", "transformer", False): "fits the training length (12), fails beyond it",
    ("nextlat", "rnn", False): "> 95% at the test length (36)",
    ("gpt", "transformer", True): "fails at the test length (36) though trained on it",
}
# Parameters the paper quotes: the dynamics model run as an RNN vs the transformer (Table 5
# setting: 2 layers, width 512, dynamics MLP 1024). They match the RNN cell p_psi and the
# transformer blocks with their norms, embedding and output head left out.
PAPER_PARAMS = {"rnn_cell": 2_620_000, "transformer_body": 6_430_000}
PAPER_TRAIN_LENGTH, PAPER_TEST_LENGTH = 12, 36
