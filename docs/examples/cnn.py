"""A small convolutional network over the image side n (n×n images).

Its work grows with the pixels: O(n^2) FLOPs and saved bytes.

    trainbench sweep docs/examples/cnn.py:cnn --sizes 8:128 --claim 'O(n^2)' --metric bwd_flops
"""

import torch
from torch import nn


def cnn(n: int):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 8, 3, padding=1),
    )
    x = torch.randn(2, 3, n, n)
    return lambda: model(x).pow(2).mean()
