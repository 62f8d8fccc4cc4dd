"""The words every layer shares: the verdicts, the metrics of a point (their names, their
labels, which of them are fitted and which a claim may name), and the variants and activations
of the trainability experiments. Declared once, here."""

from __future__ import annotations

CONFIRMED, REFUTED, INCONCLUSIVE = "confirmed", "refuted", "inconclusive"
VERDICTS = (CONFIRMED, REFUTED, INCONCLUSIVE)

# Metrics of a point, in table order. Counts are exact; times are medians.
TIME_METRICS = ("fwd_s", "bwd_s")
COUNT_METRICS = ("fwd_flops", "bwd_flops", "graph_nodes", "graph_depth", "saved_bytes")
# the backward weighted by what each node computes (trainbench.measure.span): bytes moved,
# its critical path (span) in FLOPs and in bytes ...
SPAN_METRICS = ("bwd_bytes", "span_flops", "span_bytes")
# ... and T_P, its simulated P-processor schedule, in FLOPs: one column per machine
PROCESSORS = (2, 4, 8, 16)  # the simulated machines besides P = 1 (work) and P = ∞ (span)
SCHEDULE_COLUMNS = tuple(f"sched_p{p}_flops" for p in PROCESSORS)
# The metrics a sweep fits an order to (every run, in this order), any of which a sweep's
# --metric may name.
FIT_METRICS = TIME_METRICS + COUNT_METRICS + ("peak_bytes", "working_set_bytes", *SPAN_METRICS)
# The fitted metrics that a claim of a claims file may not name. The working set (parameters,
# their gradients, the saved activations) is fitted for every run to set a time against the
# caches, and stands in for peak_bytes where no allocator peak is read (a CPU): a claim
# about the peak names peak_bytes and is judged on the working set there.
UNCLAIMED_METRICS = ("working_set_bytes",)
# The metrics a claim on a sweep may name: the fitted ones, less UNCLAIMED_METRICS, in the
# same order.
SWEEP_METRICS = tuple(m for m in FIT_METRICS if m not in UNCLAIMED_METRICS)
METRIC_LABELS = {
    "fwd_s": "forward time",
    "bwd_s": "backward time",
    "fwd_flops": "forward FLOPs",
    "bwd_flops": "backward FLOPs",
    "graph_nodes": "graph nodes",
    "graph_depth": "graph depth",
    "saved_bytes": "saved bytes",
    "peak_bytes": "peak bytes",
    "working_set_bytes": "working set (parameters, gradients, saved activations)",
    "bwd_bytes": "backward bytes moved",
    "span_flops": "span FLOPs",
    "span_bytes": "span bytes",
}

# the metrics a trainability claim may name
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
