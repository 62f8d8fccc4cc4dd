"""An ``nn.Sequential`` MLP over its depth n (n hidden layers of width 128).

Backprop through a chain: O(n) FLOPs, graph nodes and graph depth.

    trainbench sweep docs/examples/mlp.py:mlp --sizes 2:128 --claim 'O(n)'
"""

import torch
from torch import nn

WIDTH, BATCH = 128, 32


def mlp(n: int):
    torch.manual_seed(0)
    layers = [nn.Linear(WIDTH, WIDTH) if i % 2 == 0 else nn.Tanh() for i in range(2 * n)]
    model = nn.Sequential(*layers)
    x = torch.randn(BATCH, WIDTH)
    return lambda: model(x).pow(2).mean()
