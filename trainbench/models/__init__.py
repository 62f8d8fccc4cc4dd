"""The problem set's models, one file per family."""

__all__ = [
    "mlp_heads",
    "residual_mlp",
    "rnn_cells",
    "rnn_lm",
    "ugcnn",
]
