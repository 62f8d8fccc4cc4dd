"""A variant at a depth, ready to train: its network for a seed, and the generated
regression task it learns (a teacher fixed by the seed; training, test and validation
batches).

The MLPs (``plain``, ``heads``, ``residual``, Problems 1 and 1c) learn y = tanh(v·x); the
CNNs (``cnn``, ``rescnn``, ``ugcnn``, Problem 2) the mean over pixels of a random 3 × 3
filter's tanh.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from trainbench.core.vocabulary import MLP_VARIANTS
from trainbench.models.mlp_heads import MLPHeads, MLPHeadsConfig
from trainbench.models.residual_mlp import PlainMLP, ResidualMLP
from trainbench.models.ugcnn import CNNStack, convolve
from trainbench.trainability.config import ACTIVATIONS, TrainabilityConfig


@dataclass
class Task:
    """A variant at a depth: its network for a seed, the training batches, the test and
    validation batches (both held out, drawn apart)."""

    make: Callable[[int], nn.Module]
    batch: Callable[[torch.Generator], tuple[Tensor, Tensor]]
    held_out: tuple[Tensor, Tensor]  # the test batch: every number reported
    validation: tuple[Tensor, Tensor]  # the batch the learning rate is chosen on


def build(
    variant: str, depth: int, cfg: TrainabilityConfig, dtype: torch.dtype,
    activation: str = "sigmoid",
) -> Task:  # fmt: skip
    """The task; the teacher is fixed by ``cfg.seed``, the network's weights by the seed
    given to ``make``."""
    if variant in MLP_VARIANTS:
        sigma, gain = ACTIVATIONS[activation]

        def make_mlp(seed: int) -> nn.Module:
            torch.manual_seed(seed)
            model: nn.Module
            if variant == "heads":
                cfg_heads = MLPHeadsConfig(depth, cfg.width, cfg.in_dim, sigma, gain=gain)
                model = MLPHeads(cfg_heads)
            elif variant == "plain":
                model = PlainMLP(depth, cfg.width, cfg.in_dim, sigma, gain)
            else:
                model = ResidualMLP(depth, cfg.width, cfg.in_dim, sigma, gain)
            return model.to(dtype)

        # the teacher y = tanh(v·x), fixed by the seed: every batch shares it
        v = torch.randn(cfg.in_dim, generator=torch.Generator().manual_seed(cfg.seed + 2))
        v = v / math.sqrt(cfg.in_dim)

        def mlp_batch(g: torch.Generator, n: int = cfg.batch) -> tuple[Tensor, Tensor]:
            x = torch.randn(n, cfg.in_dim, generator=g)
            return x.to(dtype), torch.tanh(x @ v).to(dtype)

        held = mlp_batch(torch.Generator().manual_seed(cfg.seed + 3), 512)
        val = mlp_batch(torch.Generator().manual_seed(cfg.seed + 5), 512)
        return Task(make_mlp, mlp_batch, held, val)

    def make_cnn(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        model = CNNStack(
            depth,
            cfg.channels,
            gated=variant == "ugcnn",
            heads="top",
            impl="conv",
            activation=ACTIVATIONS[activation][0],
            gate_bias=cfg.gate_bias,
            residual=variant == "rescnn",
        )
        return model.to(dtype)

    # the teacher, a random 3 × 3 filter, tanh, and the mean over pixels (scaled to
    # about unit variance): translation invariant, so a pooled CNN can learn it
    k = torch.randn(3, 3, 1, cfg.channels, generator=torch.Generator().manual_seed(cfg.seed + 2))
    k = k / math.sqrt(k.numel())

    def cnn_batch(g: torch.Generator, n: int = cfg.cnn_batch) -> tuple[Tensor, Tensor]:
        images = torch.randn(n, cfg.image_size, cfg.image_size, cfg.channels, generator=g)
        features = torch.tanh(convolve(images, k, "conv"))
        y = features.mean(dim=(1, 2, 3)) * cfg.image_size
        return images.to(dtype), y.to(dtype)

    held = cnn_batch(torch.Generator().manual_seed(cfg.seed + 3), 256)
    val = cnn_batch(torch.Generator().manual_seed(cfg.seed + 5), 256)
    return Task(make_cnn, cnn_batch, held, val)

