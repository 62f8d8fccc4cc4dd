"""The problem set's models, one file per family."""

from trainbench.models.mlp_heads import MLPHeads, MLPHeadsConfig

__all__ = ["MLPHeads", "MLPHeadsConfig"]
