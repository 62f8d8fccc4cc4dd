"""The words every layer shares: the verdicts, the metrics a claim may name, and the
variants and activations of the trainability experiments. Declared once, here."""

from __future__ import annotations

CONFIRMED, REFUTED, INCONCLUSIVE = "confirmed", "refuted", "inconclusive"
VERDICTS = (CONFIRMED, REFUTED, INCONCLUSIVE)

# the metrics a claim on a sweep may name
SWEEP_METRICS = (
    "fwd_s", "bwd_s", "fwd_flops", "bwd_flops", "graph_nodes", "graph_depth", "saved_bytes",
    "peak_bytes", "bwd_bytes", "span_flops", "span_bytes",
)  # fmt: skip
TRAINABILITY_METRICS = ("gradient_ratio", "final_loss", "deep_head_loss")
# the activations (and initialisations) a trainability claim may be judged under
TRAINABILITY_ACTIVATIONS = ("sigmoid", "sigmoid-glorot", "tanh", "relu")

# the trainability variants, by family, and the baseline each family is compared with
MLP_VARIANTS = ("plain", "heads", "residual")
CNN_VARIANTS = ("cnn", "rescnn", "ugcnn")
TRAINABILITY_VARIANTS = MLP_VARIANTS + CNN_VARIANTS
FAMILIES = {"mlp": MLP_VARIANTS, "cnn": CNN_VARIANTS}
BASELINES = {"mlp": "plain", "cnn": "cnn"}
CNN_ACTIVATION = "tanh"  # the UGCNN's update R is a tanh: its baselines use the same

# the cells of Problem 4's language model (trainbench.models.rnn_lm), by name
RNN_CELLS = (
    "ugrnn", "ugrnn2", "gru", "gru-torch", "gru-torch-fast", "torch-gru", "none", "ugrnn-x",
    "ugrnn-x-scan",
)  # fmt: skip
