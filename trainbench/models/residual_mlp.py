"""Problems 1a and 1c: the plain MLP (one loss head, at the top) and its residual form.

Glossary of index letters (capital letters are summed, as in the problem set):

    b, B   example in the batch
    i, I   unit of a hidden layer (width)
    k, K   component of the input x (in_dim)

Plain MLP (Problem 1's network with only its top head), for ℓ = 0 .. L-1:

    h_0[b,i]     = x[b,i]
    h_{ℓ+1}[b,i] = σ(W^{h,h}_{ℓ+1}[i,I] h_ℓ[b,I] - B^{h,h}_{ℓ+1}[i])
    ŷ[b]         = W^{h,p}[I] h_L[b,I] - B^{h,y}
    Loss         = Σ_b (y[b] - ŷ[b])²

Residual MLP (Problem 1c): the input is projected to the width once, then each
layer adds its update to the state it received, and one head reads the top:

    h_0[b,i]     = W^{x,h}[i,K] x[b,K]
    h_{ℓ+1}[b,i] = h_ℓ[b,i] + σ(W^{h,h}_{ℓ+1}[i,I] h_ℓ[b,I] - B^{h,h}_{ℓ+1}[i]) - σ(0)
    ŷ[b]         = W^{h,p}[I] h_L[b,I] - B^{h,y}
    Loss         = Σ_b (y[b] - ŷ[b])²

Why this form: the identity path h_ℓ → h_{ℓ+1} makes ∂h_{ℓ+1}/∂h_ℓ = 1 + (the
layer's Jacobian), so the gradient reaching layer 1 is the top's gradient plus
corrections, never a product of L factors below one. The layer itself is
Problem 1's layer (same σ, same "- B"), so the skip connection is the only
real difference from the plain network. Its output is centred by the constant
σ(0) (½ for the sigmoid, 0 for tanh): a sigmoid's output is positive, and
without the centring each layer would move the state by about ½ per unit, so
the top of a 64-layer net would start 32 units from where it should and SGD
diverges on the first steps. (A constant per unit, it changes nothing else:
the next layer's bias could absorb it.) The projection W^{x,h} exists because
h_0 must have the width of the states it is added to.

Both return the loss terms as a list (one term), the contract of
``trainbench.experiments.builtin``; ``layer_weights()`` lists W^{h,h}_1 .. W^{h,h}_L.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from trainbench.models.mlp_heads import ACTIVATIONS, scaled_weight


class PlainMLP(nn.Module):
    """Problem 1's MLP with one loss head, at the top: the baseline of Problem 1a."""

    def __init__(
        self,
        depth: int,
        width: int = 64,
        in_dim: int = 16,
        activation: str = "sigmoid",
        gain: float = 1.0,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}")
        self.sigma = ACTIVATIONS[activation]
        fan_in = [in_dim] + [width] * (depth - 1)
        # W^{h,h}_ℓ[i,I], B^{h,h}_ℓ[i]
        self.W_hh = nn.ParameterList(scaled_weight(width, d, gain) for d in fan_in)
        self.B_hh = nn.ParameterList(nn.Parameter(torch.zeros(width)) for _ in range(depth))
        # W^{h,p}[I], B^{h,y}
        self.W_hp = nn.Parameter(torch.randn(width) / math.sqrt(width))
        self.B_hy = nn.Parameter(torch.zeros(()))

    def layer_weights(self) -> list[Tensor]:
        return list(self.W_hh)

    def predictions(self, x: Tensor) -> list[Tensor]:
        """The one prediction, the top's (the form of MLPHeads.predictions)."""
        return [self.predict(x)]

    def predict(self, x: Tensor) -> Tensor:
        # h_0[b,i] = x[b,i]
        h = x
        for W_hh, B_hh in zip(self.W_hh, self.B_hh, strict=True):
            # h_{ℓ+1}[b,i] = σ(W^{h,h}_{ℓ+1}[i,I] h_ℓ[b,I] - B^{h,h}_{ℓ+1}[i])
            h = self.sigma(torch.einsum("iI,bI->bi", W_hh, h) - B_hh)
        # ŷ[b] = W^{h,p}[I] h_L[b,I] - B^{h,y}
        return torch.einsum("I,bI->b", self.W_hp, h) - self.B_hy

    def forward(self, x: Tensor, y: Tensor) -> list[Tensor]:
        # Loss = Σ_b (y[b] - ŷ[b])²
        return [((y - self.predict(x)) ** 2).sum()]


class ResidualMLP(PlainMLP):
    """Problem 1c: h_{ℓ+1} = h_ℓ + σ(W h_ℓ - B) - σ(0), after a projection of x to the width."""

    def __init__(
        self,
        depth: int,
        width: int = 64,
        in_dim: int = 16,
        activation: str = "sigmoid",
        gain: float = 1.0,
    ) -> None:
        super().__init__(depth, width, in_dim, activation, gain)
        # every layer maps the width to itself; the projection W^{x,h}[i,K] comes first
        self.W_hh = nn.ParameterList(scaled_weight(width, width, gain) for _ in range(depth))
        self.W_xh = scaled_weight(width, in_dim)

    def predict(self, x: Tensor) -> Tensor:
        centre = float(self.sigma(torch.zeros(())))  # σ(0)
        # h_0[b,i] = W^{x,h}[i,K] x[b,K]
        h = torch.einsum("iK,bK->bi", self.W_xh, x)
        for W_hh, B_hh in zip(self.W_hh, self.B_hh, strict=True):
            # h_{ℓ+1}[b,i] = h_ℓ[b,i] + σ(W^{h,h}_{ℓ+1}[i,I] h_ℓ[b,I] - B^{h,h}_{ℓ+1}[i]) - σ(0)
            h = h + (self.sigma(torch.einsum("iI,bI->bi", W_hh, h) - B_hh) - centre)
        # ŷ[b] = W^{h,p}[I] h_L[b,I] - B^{h,y}
        return torch.einsum("I,bI->b", self.W_hp, h) - self.B_hy
