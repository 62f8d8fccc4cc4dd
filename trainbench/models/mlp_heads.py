"""Problem 1: the L-layer perceptron with a regression loss head on every layer.

Glossary of index letters (capital letters are summed, as in the problem set):

    b, B   example in the batch
    i, I   unit of a hidden layer (width)
    k, K   component of the input x (in_dim); h_0 = x, so layer 1 sums over K

The equations, for ℓ = 0 .. L-1:

    h_0[b,i]     = x[b,i]
    h_{ℓ+1}[b,i] = σ(W^{h,h}_{ℓ+1}[i,I] h_ℓ[b,I] - B^{h,h}_{ℓ+1}[i])
    ŷ_{ℓ+1}[b]   = W^{h,p}_{ℓ+1}[I] h_{ℓ+1}[b,I] - B^{h,y}_{ℓ+1}
    Loss         = Σ_b Σ_{ℓ=1..L} (y[b] - ŷ_ℓ[b])²

The problem writes one example; the batch index b is added and the loss summed
over it. The model returns the L head losses (y - ŷ_ℓ)² summed over b, one
scalar per head, so the harness can either add them into the one loss that SGD
minimises (Problem 1b's backward pass) or back-propagate each on its own (the
naive O(L²) control).

Two implementations of the same equations:

* ``einsum`` (default): one ``torch.einsum`` per summation with the problem's
  index letters, the equation as a comment above each line.
* ``fused``: the same sums through ``torch.addmm`` (the bias subtraction fused
  into the matrix product) and ``torch.mm``. Faster on CPU; a test checks it
  computes the same function, and it does the same matrix-product FLOPs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
}
IMPLEMENTATIONS = ("einsum", "fused")


def scaled_weight(rows: int, cols: int, gain: float = 1.0) -> nn.Parameter:
    """A [rows, cols] weight drawn from N(0, gain²/cols): ``gain`` 1 is unit gain for
    unit-variance inputs."""
    return nn.Parameter(torch.randn(rows, cols) * (gain / math.sqrt(cols)))


@dataclass(frozen=True)
class MLPHeadsConfig:
    depth: int  # L
    width: int = 256  # size of I
    in_dim: int = 32  # size of K
    activation: str = "sigmoid"  # σ
    impl: str = "einsum"
    gain: float = 1.0  # W^{h,h}_ℓ ~ N(0, gain²/fan_in)


class MLPHeads(nn.Module):
    """Problem 1's MLP: L layers, a loss head on each. Parameters named after their symbols."""

    def __init__(self, cfg: MLPHeadsConfig) -> None:
        super().__init__()
        if cfg.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {cfg.activation!r}")
        if cfg.impl not in IMPLEMENTATIONS:
            raise ValueError(f"unknown implementation {cfg.impl!r}")
        self.cfg = cfg
        self.sigma = ACTIVATIONS[cfg.activation]
        fan_in = [cfg.in_dim] + [cfg.width] * (cfg.depth - 1)
        # W^{h,h}_ℓ[i,I]: stored in the problem's index order (row i, column I).
        self.W_hh = nn.ParameterList(scaled_weight(cfg.width, d, cfg.gain) for d in fan_in)
        # B^{h,h}_ℓ[i]
        self.B_hh = nn.ParameterList(nn.Parameter(torch.zeros(cfg.width)) for _ in range(cfg.depth))
        # W^{h,p}_ℓ[I]
        self.W_hp = nn.ParameterList(
            nn.Parameter(torch.randn(cfg.width) / math.sqrt(cfg.width)) for _ in range(cfg.depth)
        )
        # B^{h,y}_ℓ (a scalar per head)
        self.B_hy = nn.ParameterList(nn.Parameter(torch.zeros(())) for _ in range(cfg.depth))

    def layer_weights(self) -> list[Tensor]:
        """W^{h,h}_1 .. W^{h,h}_L, bottom to top."""
        return list(self.W_hh)

    def predict(self, x: Tensor) -> Tensor:
        """The top head's prediction ŷ_L[b]."""
        if self.cfg.impl == "fused":
            raise NotImplementedError("predict() is the einsum form")
        return self.predictions(x)[-1]

    def predictions(self, x: Tensor) -> list[Tensor]:
        """x[b,K] -> ŷ_1[b] .. ŷ_L[b] (the einsum form)."""
        sigma = self.sigma
        # h_0[b,i] = x[b,i]
        h = x
        out = []
        for W_hh, B_hh, W_hp, B_hy in zip(self.W_hh, self.B_hh, self.W_hp, self.B_hy, strict=True):
            # h_{ℓ+1}[b,i] = σ(W^{h,h}_{ℓ+1}[i,I] h_ℓ[b,I] - B^{h,h}_{ℓ+1}[i])
            h = sigma(torch.einsum("iI,bI->bi", W_hh, h) - B_hh)
            # ŷ_{ℓ+1}[b] = W^{h,p}_{ℓ+1}[I] h_{ℓ+1}[b,I] - B^{h,y}_{ℓ+1}
            out.append(torch.einsum("I,bI->b", W_hp, h) - B_hy)
        return out

    def forward(self, x: Tensor, y: Tensor) -> list[Tensor]:
        """x[b,K], y[b] -> the L head losses Σ_b (y[b] - ŷ_ℓ[b])²."""
        if self.cfg.impl == "fused":
            return self._forward_fused(x, y)
        # loss head ℓ: Σ_b (y[b] - ŷ_ℓ[b])²
        return [((y - y_hat) ** 2).sum() for y_hat in self.predictions(x)]

    def _forward_fused(self, x: Tensor, y: Tensor) -> list[Tensor]:
        """The same equations with the bias fused into the product: addmm(-B, h, Wᵀ)."""
        sigma = self.sigma
        h = x
        losses = []
        for W_hh, B_hh, W_hp, B_hy in zip(self.W_hh, self.B_hh, self.W_hp, self.B_hy, strict=True):
            # h_{ℓ+1} = σ(-B^{h,h} + h_ℓ W^{h,h}ᵀ)
            h = sigma(torch.addmm(B_hh, h, W_hh.t(), beta=-1))
            # ŷ_{ℓ+1} = h_{ℓ+1} W^{h,p} - B^{h,y}  (as a b×1 matrix product, as einsum does)
            y_hat = torch.mm(h, W_hp.unsqueeze(1)).squeeze(1) - B_hy
            losses.append(((y - y_hat) ** 2).sum())
        return losses


def make_data(
    batch: int, in_dim: int, *, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """A generated regression batch: x[b,K] ~ N(0,1) and a target y[b] = tanh(v·x)."""
    x = torch.randn(batch, in_dim, generator=generator)
    v = torch.randn(in_dim, generator=generator) / math.sqrt(in_dim)
    y = torch.tanh(x @ v)
    return x, y


def flops_forward(depth: int, width: int, batch: int, in_dim: int) -> int:
    """Matrix-product FLOPs of one forward pass (what FlopCounterMode counts).

    Layer 1 multiplies x[b,K] by W[i,K]: 2·b·width·in_dim. Layers 2..L: 2·b·width².
    Each head is a matrix-vector product: 2·b·width. Elementwise work (σ, the
    bias, the squared error) is not counted.

        F_fwd(L) = 2·b·w·d + 2·b·w²·(L-1) + 2·b·w·L
    """
    b, w, d, L = batch, width, in_dim, depth
    return 2 * b * w * d + 2 * b * w * w * (L - 1) + 2 * b * w * L


def flops_backward(depth: int, width: int, batch: int, in_dim: int) -> int:
    """Matrix-product FLOPs of one backward pass of the summed loss.

    Each product A·B whose two operands need a gradient costs two products of
    the same size in backward (one per operand). x needs none, so layer 1 costs
    one: 2·b·w·d. Layers 2..L cost 2·(2·b·w²); each head 2·(2·b·w).

        F_bwd(L) = 2·b·w·d + 4·b·w²·(L-1) + 4·b·w·L
    """
    b, w, d, L = batch, width, in_dim, depth
    return 2 * b * w * d + 4 * b * w * w * (L - 1) + 4 * b * w * L


def flops_backward_per_head(depth: int, width: int, batch: int, in_dim: int) -> int:
    """Matrix-product FLOPs when each head's loss is back-propagated on its own.

    Head ℓ's backward runs through its own head and layers ℓ..1:
    4·b·w + 4·b·w²·(ℓ-1) + 2·b·w·d. Summed over ℓ = 1..L:

        F_bwd,per-head(L) = 2·b·w·d·L + 4·b·w²·L(L-1)/2 + 4·b·w·L   — O(L²)
    """
    b, w, d, L = batch, width, in_dim, depth
    return 2 * b * w * d * L + 2 * b * w * w * L * (L - 1) + 4 * b * w * L


def span_flops(depth: int, width: int, batch: int, in_dim: int) -> int:
    """The backward's costliest path in FLOPs (trainbench.measure.span), in closed form.

    A product's backward node computes both its operands' gradients: 4·b·w·m for a
    b × w by w × m product. The costliest path runs from the deepest head (4·b·w) down
    through layers L..2 (4·b·w² each) to layer 1 (2·b·w·d: x needs no gradient):

        S(L) = 4·b·w + 4·b·w²·(L-1) + 2·b·w·d    — O(L), for the full loss and per head

    The heads of the other layers hang off that path: the work grows by a head and a
    layer per layer, and so does the path (the per-head control: the same path, O(L²) work).
    """
    b, w, d, L = batch, width, in_dim, depth
    return 4 * b * w + 4 * b * w * w * (L - 1) + 2 * b * w * d


# The backward graph, read off torch's autograd graph, per implementation:
#   n  nodes of a hidden layer (with the views of its input h_ℓ, for ℓ >= 1),
#   c  nodes of a loss head (with the views of its input),
#   v  views of the input that layer 1 lacks (x needs no gradient),
#   p  nodes per layer on the longest path, q the longest path's other nodes.
#
# fused, layer: AddmmBackward, TBackward (Wᵀ), SigmoidBackward and the
#   AccumulateGrad of W^{h,h} and B^{h,h}: n = 5. Head: SumBackward, PowBackward,
#   SubBackward (y - ŷ), SubBackward (- B^{h,y}), SqueezeBackward, MmBackward,
#   UnsqueezeBackward and the AccumulateGrad of W^{h,p} and B^{h,y}: c = 9; v = 0.
#   Longest path: Sum, Pow, Sub, Sub, Squeeze, Mm, then Sigmoid and Addmm for
#   every layer (p = 2), then TBackward and AccumulateGrad(W^{h,h}_1): q = 8.
# einsum: each contraction is lowered to views and permutes around a bmm:
#   n = 16, c = 17, v = 4, p = 10, q = 12.
_GRAPH_SHAPE = {"fused": (5, 9, 0, 2, 8), "einsum": (16, 17, 4, 10, 12)}


def graph_nodes(depth: int, impl: str = "einsum", per_head: bool = False) -> int:
    """Backward-graph nodes executed, in closed form.

    Head ℓ's own backward reaches its head and layers 1..ℓ: c + n·ℓ - v nodes.
    One backward of the summed loss reaches every node once, plus the
    StackBackward and SumBackward of the summation:

        full:      (n + c)·L - v + 2                fused: 14L + 2, einsum: 33L - 2
        per-head:  Σ_ℓ (c + n·ℓ - v) = (c - v)·L + n·L(L+1)/2 — O(L²)
    """
    n, c, v, _, _ = _GRAPH_SHAPE[impl]
    if per_head:
        return (c - v) * depth + n * depth * (depth + 1) // 2
    return (n + c) * depth - v + 2


def graph_depth(depth: int, impl: str = "einsum", per_head: bool = False) -> int:
    """Longest chain of dependent backward nodes (the critical path), in closed form.

    The deepest head's chain runs down through every layer: p·L + q nodes, plus
    the summation's two nodes for the full loss. O(L) either way:
    the per-head control does more work, not a longer chain.
    """
    _, _, _, p, q = _GRAPH_SHAPE[impl]
    return p * depth + q + (0 if per_head else 2)


def saved_bytes(depth: int, width: int, batch: int, in_dim: int, itemsize: int = 4) -> int:
    """Activation bytes kept for backward (parameters left out), in closed form.

    Layer 1's weight gradient needs x[b,K]; every layer keeps its output h_ℓ[b,I]
    (σ's backward and the next products read the same storage); every head keeps
    its residual y - ŷ_ℓ[b] for the square's backward:

        S(L) = itemsize · (b·d + L·(b·w + b))   — O(L)
    """
    return itemsize * (batch * in_dim + depth * (batch * width + batch))


def memory_bytes(depth: int, width: int, batch: int, in_dim: int, itemsize: int = 4) -> int:
    """About the memory one forward+backward needs: parameters and their gradients, and
    twice the saved activations (the graph's other intermediates are of the same size)."""
    params = width * in_dim + (depth - 1) * width * width + depth * (2 * width + 1)
    return 2 * params * itemsize + 2 * saved_bytes(depth, width, batch, in_dim, itemsize)
