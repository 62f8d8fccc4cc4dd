"""The gradient signal: ‖∂Loss/∂W_ℓ‖ for every layer ℓ and the first/last ratio, at
initialisation (in float64, so that a vanishing signal reads as a small number, not as
zero) or of a trained network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from trainbench.trainability.config import TrainabilityConfig
from trainbench.trainability.tasks import build


def training_loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """The variant's own loss, Σ over its heads of the batch-mean squared error.

    For ``heads`` this is Problem 1's loss (the heads' losses summed); it is what
    :func:`trainbench.trainability.ensemble.train` minimises (``loss="sum"``).
    """
    return torch.stack(model(x, y)).sum() / len(y)


def layer_grad_norms(model: nn.Module, loss: Tensor) -> list[float]:
    """‖∂loss/∂W_ℓ‖ for every layer ℓ, bottom to top (a UGCNN layer's two filters together)."""
    layers = [w if isinstance(w, list) else [w] for w in model.layer_weights()]  # type: ignore[operator]
    grads = torch.autograd.grad(loss, [w for ws in layers for w in ws], allow_unused=True)
    norms, i = [], 0
    for ws in layers:
        norms.append(
            math.sqrt(sum(float((g * g).sum()) for g in grads[i : i + len(ws)] if g is not None))
        )
        i += len(ws)
    return norms


def _ratio(norms: Sequence[float]) -> float | None:
    return norms[0] / norms[-1] if norms[-1] > 0 else None


def top_only_ratio(model: nn.Module, x: Tensor, y: Tensor) -> float | None:
    """First/last gradient ratio of the top prediction's loss alone."""
    loss = ((model.predict(x) - y) ** 2).mean()  # type: ignore[operator]
    return _ratio(layer_grad_norms(model, loss))


def gradient_signal(
    variant: str, depth: int, cfg: TrainabilityConfig, activation: str = "sigmoid",
    seed: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The per-layer gradient norms at initialisation, in float64, on the test batch."""
    task = build(variant, depth, cfg, torch.float64, activation)
    seed = cfg.seed if seed is None else seed
    model = task.make(seed)
    x, y = task.held_out
    norms = layer_grad_norms(model, training_loss(model, x, y))
    return {
        "variant": variant,
        "activation": activation,
        "depth": depth,
        "seed": seed,
        "first_layer_grad_norm": norms[0],
        "last_layer_grad_norm": norms[-1],
        "ratio": _ratio(norms),
        # the top head's loss alone (heads: deep supervision's check; else the same)
        "top_only_ratio": top_only_ratio(model, x, y),
        "layer_grad_norms": norms,
    }

