"""Models from torch.nn, as `trainbench sweep` targets: the harness on code it did not write.

    trainbench sweep benchmarks/nn_models.py:attention --sizes 32:512:1.4142 --claim 'O(n^2)'
    trainbench sweep benchmarks/nn_models.py:attention --sizes 32:512:1.4142 --claim 'O(n)'
    trainbench sweep benchmarks/nn_models.py:lstm --sizes 8:256:1.4142 --claim 'O(n)'
    trainbench sweep benchmarks/nn_models.py:conv --sizes 8:128:1.4142 --claim 'O(n^2)'

* ``attention(n)``: ``nn.MultiheadAttention`` over n tokens (self-attention, 4 heads of 16):
  its score matrix is n × n, so the work is O(n²) in the sequence length (on CPU the
  product runs in a fused kernel that torch 2.13's counter has no formula for;
  trainbench.measure.flops counts it as its unfused form).
* ``lstm(n)``: ``nn.LSTM`` (one fused layer) over n steps: O(n).
* ``conv(n)``: three ``nn.Conv2d`` layers on an n × n image: O(n²) in the side length.
"""

from __future__ import annotations

import torch
from torch import nn


def attention(n: int, device: str = "cpu") -> object:
    torch.manual_seed(0)
    layer = nn.MultiheadAttention(64, 4, batch_first=True).to(device)
    x = torch.randn(4, n, 64, device=device)

    def loss() -> torch.Tensor:
        out, _ = layer(x, x, x, need_weights=False)
        return out.pow(2).mean()

    return loss


def lstm(n: int, device: str = "cpu") -> object:
    torch.manual_seed(0)
    layer = nn.LSTM(32, 64, batch_first=True).to(device)
    x = torch.randn(8, n, 32, device=device)

    def loss() -> torch.Tensor:
        out, _ = layer(x)
        return out.pow(2).mean()

    return loss


def conv(n: int, device: str = "cpu") -> object:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 8, 3, padding=1),
    ).to(device)  # fmt: skip
    x = torch.randn(2, 3, n, n, device=device)

    def loss() -> torch.Tensor:
        return net(x).pow(2).mean()

    return loss
