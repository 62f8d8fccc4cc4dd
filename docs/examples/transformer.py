"""A transformer block over sequence length n, with its attention two ways.

``eager``: ``nn.MultiheadAttention`` asked for its attention weights (need_weights=True),
so it computes softmax(q·kᵀ/√d) explicitly and keeps the n×n weights for the backward.
``sdpa``: the same module with need_weights=False, which runs
``F.scaled_dot_product_attention`` (on CPU the fused flash kernel). The same weights and
inputs in both. Only torch.nn: no third-party library needed.

    trainbench sweep docs/examples/transformer.py:eager docs/examples/transformer.py:sdpa \\
        --sizes 32:512 --claim 'O(n^2)' --metric bwd_flops --by-module 2
"""

import torch
from torch import nn

WIDTH, HEADS, BATCH = 64, 4, 4


class Block(nn.Module):
    def __init__(self, need_weights: bool) -> None:
        super().__init__()
        self.need_weights = need_weights
        self.norm1, self.norm2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        self.attn = nn.MultiheadAttention(WIDTH, HEADS, batch_first=True)
        self.mlp = nn.Sequential(
            nn.Linear(WIDTH, 4 * WIDTH), nn.GELU(), nn.Linear(4 * WIDTH, WIDTH)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=self.need_weights)[0]
        return x + self.mlp(self.norm2(x))


def _make(n: int, need_weights: bool):
    torch.manual_seed(0)
    block = Block(need_weights)
    x = torch.randn(BATCH, n, WIDTH)
    return lambda: block(x).pow(2).mean()


def eager(n: int):
    return _make(n, need_weights=True)


def sdpa(n: int):
    return _make(n, need_weights=False)
