"""Problem 2: the update-gate CNN (UGCNN) and a plain CNN of the same size.

Glossary of index letters (capital letters are summed, as in the problem set):

    b        image in the batch
    x, y     pixel position (X × Y images; stride 1, "same" zero padding)
    Δx, Δy   offset inside the k × k filter, -(k-1)/2 .. (k-1)/2 (u, v in code: Δ + (k-1)/2)
    j, J     channel (the same number C in every layer, since L_ℓ and L_{ℓ+1} are mixed)

A UGCNN layer, the UGRNN's equations with the time step replaced by the layer
and the recurrent product by a convolution:

    R_{ℓ+1}[b,x,y,j] = tanh(W^{L,R}_{ℓ+1}[Δx,Δy,j,J] L_ℓ[b,x+Δx,y+Δy,J] - B^R_{ℓ+1}[j])
    G_{ℓ+1}[b,x,y,j] = σ(W^{L,G}_{ℓ+1}[Δx,Δy,j,J] L_ℓ[b,x+Δx,y+Δy,J] - B^G_{ℓ+1}[j])
    L_{ℓ+1}[b,x,y,j] = G_{ℓ+1}[b,x,y,j] L_ℓ[b,x,y,j] + (1 - G_{ℓ+1}[b,x,y,j]) R_{ℓ+1}[b,x,y,j]

(Δx and Δy are summed as well.) The plain CNN layer of the same size:

    L_{ℓ+1}[b,x,y,j] = σ(W_{ℓ+1}[Δx,Δy,j,J] L_ℓ[b,x+Δx,y+Δy,J] - B_{ℓ+1}[j])

and its residual form (``residual=True``; Problem 1c's skip connection, a baseline for
the gate):

    L_{ℓ+1}[b,x,y,j] = L_ℓ[b,x,y,j] + σ(W_{ℓ+1}[Δx,Δy,j,J] L_ℓ[b,x+Δx,y+Δy,J] - B_{ℓ+1}[j]) - σ(0)

A regression head reads a layer through the mean over pixels:

    ŷ_ℓ[b] = W^p_ℓ[J] (1/XY) Σ_{x,y} L_ℓ[b,x,y,J] - B^y_ℓ

With ``heads="every"`` each layer has one (the form of Problem 1, which gives the
backprop sweep its one-backward-per-head control); with ``heads="top"`` only
the last layer has one (the form whose gradient signal Problem 2 is about).

Two implementations of the sum over Δx, Δy, J: ``einsum`` stacks the k² shifted
views of the padded box and contracts them with the problem's letters;
``conv`` calls ``torch.nn.functional.conv2d``. A test checks they agree.

The gate bias starts at B^G = -``gate_bias`` (G ≈ σ(gate_bias), about 0.88 for
2): each layer starts by mostly carrying its input, as highway networks and
LSTMs initialise their carry gates. With G ≈ 0.5 a deep stack halves the signal
at every layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainbench.models.mlp_heads import ACTIVATIONS

IMPLEMENTATIONS = ("einsum", "conv")
HEADS = ("every", "top")


def _filter(k: int, channels: int) -> nn.Parameter:
    # W[Δx,Δy,j,J], stored in the problem's index order
    return nn.Parameter(torch.randn(k, k, channels, channels) / math.sqrt(k * k * channels))


def convolve(box: Tensor, W: Tensor, impl: str = "einsum") -> Tensor:
    """Σ_{Δx,Δy,J} W[Δx,Δy,j,J] box[b,x+Δx,y+Δy,J], zero padded to the same X × Y."""
    k = W.shape[0]
    p = (k - 1) // 2
    if impl == "conv":
        out = F.conv2d(box.permute(0, 3, 1, 2), W.permute(2, 3, 0, 1), padding=p)
        return out.permute(0, 2, 3, 1)
    b, X, Y, C = box.shape
    padded = F.pad(box, (0, 0, p, p, p, p))  # pad y, then x; channels last
    # views[b,x,y,u,v,J] = box[b, x+u-p, y+v-p, J]
    views = torch.stack(
        [padded[:, u : u + X, v : v + Y, :] for u in range(k) for v in range(k)], dim=3
    ).view(b, X, Y, k, k, C)
    return torch.einsum("bxyuvJ,uvjJ->bxyj", views, W)


class CNNStack(nn.Module):
    """L layers of the UGCNN (``gated=True``) or of the plain CNN, with loss heads."""

    def __init__(
        self,
        depth: int,
        channels: int = 4,
        kernel: int = 3,
        *,
        gated: bool = True,
        heads: str = "every",
        impl: str = "einsum",
        activation: str = "sigmoid",
        gate_bias: float = 2.0,
        residual: bool = False,
    ) -> None:
        super().__init__()
        if residual and gated:
            raise ValueError("the residual form is of the plain CNN")
        if impl not in IMPLEMENTATIONS:
            raise ValueError(f"unknown implementation {impl!r}")
        if heads not in HEADS:
            raise ValueError(f"unknown heads {heads!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}")
        if kernel % 2 != 1:
            raise ValueError("the filter size must be odd (same padding)")
        self.gated, self.heads, self.impl, self.residual = gated, heads, impl, residual
        self.sigma = ACTIVATIONS[activation]
        C, n_heads = channels, depth if heads == "every" else 1
        if gated:
            # W^{L,R}_ℓ, B^R_ℓ, W^{L,G}_ℓ, B^G_ℓ
            self.W_LR = nn.ParameterList(_filter(kernel, C) for _ in range(depth))
            self.B_R = nn.ParameterList(nn.Parameter(torch.zeros(C)) for _ in range(depth))
            self.W_LG = nn.ParameterList(_filter(kernel, C) for _ in range(depth))
            self.B_G = nn.ParameterList(
                nn.Parameter(torch.full((C,), -gate_bias)) for _ in range(depth)
            )
        else:
            # W_ℓ, B_ℓ
            self.W = nn.ParameterList(_filter(kernel, C) for _ in range(depth))
            self.B = nn.ParameterList(nn.Parameter(torch.zeros(C)) for _ in range(depth))
        # W^p_ℓ[J], B^y_ℓ
        self.W_p = nn.ParameterList(
            nn.Parameter(torch.randn(C) / math.sqrt(C)) for _ in range(n_heads)
        )
        self.B_y = nn.ParameterList(nn.Parameter(torch.zeros(())) for _ in range(n_heads))
        self.depth = depth

    def layer_weights(self) -> list[list[Tensor]]:
        """The filters of each layer (two for the UGCNN, one for the plain CNN)."""
        if self.gated:
            return [[r, g] for r, g in zip(self.W_LR, self.W_LG, strict=True)]
        return [[w] for w in self.W]

    def layer(self, i: int, box: Tensor) -> Tensor:
        if self.residual:
            centre = float(self.sigma(torch.zeros(())))  # σ(0)
            # L_{ℓ+1} = L_ℓ + σ(W_{ℓ+1}[Δx,Δy,j,J] L_ℓ[b,x+Δx,y+Δy,J] - B_{ℓ+1}[j]) - σ(0)
            return box + (self.sigma(convolve(box, self.W[i], self.impl) - self.B[i]) - centre)
        if not self.gated:
            # L_{ℓ+1}[b,x,y,j] = σ(W_{ℓ+1}[Δx,Δy,j,J] L_ℓ[b,x+Δx,y+Δy,J] - B_{ℓ+1}[j])
            return self.sigma(convolve(box, self.W[i], self.impl) - self.B[i])
        # R_{ℓ+1}[b,x,y,j] = tanh(W^{L,R}_{ℓ+1}[Δx,Δy,j,J] L_ℓ[b,x+Δx,y+Δy,J] - B^R_{ℓ+1}[j])
        R = torch.tanh(convolve(box, self.W_LR[i], self.impl) - self.B_R[i])
        # G_{ℓ+1}[b,x,y,j] = σ(W^{L,G}_{ℓ+1}[Δx,Δy,j,J] L_ℓ[b,x+Δx,y+Δy,J] - B^G_{ℓ+1}[j])
        G = torch.sigmoid(convolve(box, self.W_LG[i], self.impl) - self.B_G[i])
        # L_{ℓ+1}[b,x,y,j] = G_{ℓ+1}[b,x,y,j] L_ℓ[b,x,y,j] + (1 - G_{ℓ+1}[b,x,y,j]) R_{ℓ+1}[b,x,y,j]
        return G * box + (1 - G) * R

    def head(self, i: int, box: Tensor) -> Tensor:
        # ŷ_ℓ[b] = W^p_ℓ[J] (1/XY) Σ_{x,y} L_ℓ[b,x,y,J] - B^y_ℓ
        return torch.einsum("J,bJ->b", self.W_p[i], box.mean(dim=(1, 2))) - self.B_y[i]

    def predictions(self, images: Tensor) -> list[Tensor]:
        """images[b,x,y,j] -> ŷ of every head, bottom to top."""
        box, out = images, []
        for i in range(self.depth):
            box = self.layer(i, box)
            if self.heads == "every":
                out.append(self.head(i, box))
        if self.heads == "top":
            out.append(self.head(0, box))
        return out

    def predict(self, images: Tensor) -> Tensor:
        return self.predictions(images)[-1]

    def forward(self, images: Tensor, y: Tensor) -> list[Tensor]:
        """The loss terms Σ_b (y[b] - ŷ_ℓ[b])², one per head."""
        return [((y - y_hat) ** 2).sum() for y_hat in self.predictions(images)]


def make_images(
    batch: int, size: int, channels: int, *, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Generated images[b,x,y,j] ~ N(0,1) and a teacher's target y = tanh(v·images)."""
    images = torch.randn(batch, size, size, channels, generator=generator)
    v = torch.randn(size, size, channels, generator=generator) / math.sqrt(size * size * channels)
    return images, torch.tanh(torch.einsum("bxyj,xyj->b", images, v))


def flops_forward(depth: int, channels: int, kernel: int, size: int, batch: int, gated: bool,
                  heads: str = "every") -> int:  # fmt: skip
    """Matrix-product FLOPs of one forward pass (the convolutions and the heads).

    A convolution costs 2·b·X·Y·k²·C² (the counter's formula for conv2d and for
    the einsum alike); the UGCNN has two per layer, the plain CNN one. A head is
    a b × C by C product: 2·b·C.

        F_fwd(L) = L·n_conv·2·b·X·Y·k²·C² + n_heads·2·b·C
    """
    n_conv = 2 if gated else 1
    n_heads = depth if heads == "every" else 1
    conv = 2 * batch * size * size * kernel * kernel * channels * channels
    return depth * n_conv * conv + n_heads * 2 * batch * channels


def span_flops(depth: int, channels: int, kernel: int, size: int, batch: int) -> int:
    """The UGCNN's backward's costliest path in FLOPs (trainbench.measure.span), in closed form.

    A convolution's backward node computes the gradients of its input and of its filter,
    two convolutions' worth (2·conv, conv = 2·b·X·Y·k²·C²); the first layer's input (the
    images) needs none, so its node costs one. Per layer the path takes one of the two
    convolutions (R's and G's run side by side), after the deepest head's 4·b·C:

        S(L) = 4·b·C + 2·conv·(L-1) + conv    — O(L), for the full loss and per head
    """
    conv = 2 * batch * size * size * kernel * kernel * channels * channels
    return 4 * batch * channels + 2 * conv * (depth - 1) + conv
