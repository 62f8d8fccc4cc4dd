"""Problem 4: an autoregressive RNN language model, with the cells of Problems 2, 3 and 5.

Glossary of index letters (capital letters are summed, as in the problem set):

    b, B   sentence in the batch
    t      time step (position in the sentence), 1..T
    j, J   unit of the hidden state h (hidden size H)
    i, I   unit of h[t-1] (summed by the recurrent products; also H)
    k, K   component of the input x (the word vector: also H, since e is shared)
    w      word of the vocabulary (size V)

The language model (Problem 4):

    x[b,t,K]              = e[w_t[b], K]                      (the word read at step t)
    h[b,0,I]              = h0[I]                             (external, learned)
    h[b,t,J]              = cell(h[b,t-1,I], x[b,t,K])        t = 1 .. T-1
    P(w_t | w_1..w_{t-1}) = softmax_w e[w, I] h[b,t-1,I]      t = 1 .. T
    Loss                  = Σ_b Σ_{t=1..T} -ln P(w_t | w_1..w_{t-1})

The word-vector matrix e[w,I] is shared between input and output: the input at
step t is the row of e of the word just read, so x and h have the same size.
h[T] is not computed (no word follows w_T). The model returns the T per-step
losses (each summed over b): the harness sums them into the one loss that SGD
minimises (one backward) or back-propagates each on its own (the O(T²) control).

The cells (``--cell``, each an explicit loop over t, and the problems they come from)
are in :mod:`trainbench.models.rnn_cells`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainbench.core.vocabulary import RNN_CELLS
from trainbench.models.rnn_cells import CELL_CLASSES

CELLS = RNN_CELLS  # (named in trainbench.core.vocabulary: --help lists them without torch)


@dataclass(frozen=True)
class RNNLMConfig:
    length: int  # T
    vocab: int = 1000  # V
    hidden: int = 128  # H: sizes of I, J and K
    cell: str = "ugrnn"


class RNNLM(nn.Module):
    """Problem 4's language model: shared word vectors e[w,I], a learned h0[I], a cell."""

    def __init__(self, cfg: RNNLMConfig) -> None:
        super().__init__()
        if cfg.cell not in CELL_CLASSES:
            raise ValueError(f"unknown cell {cfg.cell!r}")
        self.cfg = cfg
        # e[w,I]: the word vector of word w, used for inputs and outputs alike
        self.e = nn.Parameter(torch.randn(cfg.vocab, cfg.hidden) / math.sqrt(cfg.hidden))
        # h[0,I]: the externally provided (learned) initial state
        self.h0 = nn.Parameter(torch.zeros(cfg.hidden))
        self.cell = CELL_CLASSES[cfg.cell](cfg.hidden)

    def forward(self, words: Tensor) -> list[Tensor]:
        """words[b,t] (w_1..w_T at columns 0..T-1) -> the T losses Σ_b -ln P(w_t | w_<t)."""
        batch, T = words.shape
        # x[b,t,K] = e[w_t[b], K] for the words read as inputs, w_1 .. w_{T-1}
        x = F.embedding(words[:, : T - 1], self.e)
        # h[b,0,I] = h0[I]
        h0 = self.h0.expand(batch, -1)
        # h[b,t,J] = cell(h[b,t-1,I], x[b,t,K]), t = 1 .. T-1
        hs = [h0, *self.cell.sequence(h0, x)]
        losses = []
        for t in range(T):
            # logits[b,w] = e[w,I] h[b,t-1,I]   (hs[t] holds h[t-1] of the 1-based w_t)
            logits = torch.einsum("wI,bI->bw", self.e, hs[t])
            # Σ_b -ln P(w_t | w_<t) = Σ_b -ln softmax_w(logits[b,w]) at w = w_t[b]
            losses.append(F.cross_entropy(logits, words[:, t], reduction="sum"))
        return losses


def make_words(batch: int, length: int, vocab: int, *, generator: torch.Generator) -> Tensor:
    """A generated batch of sentences: words[b,t] uniform over the vocabulary."""
    return torch.randint(0, vocab, (batch, length), generator=generator)


# --------------------------------------------------------------------------- closed forms

# Matrix products per time step (each 2·B·H² FLOPs), per cell: the UGRNN has
# W^{h,R}, W^{x,R}, W^{h,G}, W^{x,G}; the two-gate cells add the second gate's two;
# the x-only UGRNN keeps W^{x,R} and W^{x,G}.
PRODUCTS_PER_STEP = {
    "ugrnn": 4,
    "ugrnn2": 6,
    "gru": 6,
    "gru-torch": 6,
    "gru-torch-fast": 6,
    "torch-gru": 6,
    "none": 1,
    "ugrnn-x": 2,
    "ugrnn-x-scan": 2,
}


def flops_forward(length: int, vocab: int, hidden: int, batch: int, cell: str) -> int:
    """Matrix-product FLOPs of one forward pass (what FlopCounterMode counts).

    Each of the T output products e[w,I] h[b,t-1,I] costs 2·B·V·H; each of the
    T-1 cell steps costs M products of 2·B·H² (M = PRODUCTS_PER_STEP[cell]).
    The embedding lookup, the gates' elementwise work and the softmax are not
    counted:

        F_fwd(T) = 2·B·V·H·T + 2·M·B·H²·(T-1)
    """
    B, V, H, T = batch, vocab, hidden, length
    return 2 * B * V * H * T + 2 * PRODUCTS_PER_STEP[cell] * B * H * H * (T - 1)


def flops_backward(length: int, vocab: int, hidden: int, batch: int, cell: str) -> int:
    """Matrix-product FLOPs of one backward pass of the summed loss.

    Every product has two operands that need a gradient (the weights, and h or
    x, which come from the learned h0 and e), so backward costs two products
    of each: F_bwd(T) = 2·F_fwd(T) = 4·B·V·H·T + 4·M·B·H²·(T-1).
    """
    return 2 * flops_forward(length, vocab, hidden, batch, cell)


def flops_backward_per_step(length: int, vocab: int, hidden: int, batch: int, cell: str) -> int:
    """Matrix-product FLOPs when each step's loss is back-propagated on its own.

    The loss of w_t reaches its output product (4·B·V·H) and the t-1 cell steps
    before it (4·M·B·H² each); summed over t = 1..T:

        F_bwd,per-step(T) = 4·B·V·H·T + 4·M·B·H²·T(T-1)/2     — O(T²)

    Without recurrence (``none``) the loss of w_t reaches one cell step only, so
    the sum is the full backward's, O(T). The scan stacks every step's gates before
    its rounds, so each step's loss (from w_2 on) reaches all T-1 steps' products:

        F_bwd,per-step(T) = 4·B·V·H·T + 4·M·B·H²·(T-1)²      (``ugrnn-x-scan``)

    (Not for ``gru-torch-fast`` and ``torch-gru``: their input products for all t are
    one product, which every step's backward runs in full.)
    """
    B, V, H, T = batch, vocab, hidden, length
    M = PRODUCTS_PER_STEP[cell]
    if cell == "none":
        return flops_backward(length, vocab, hidden, batch, cell)
    if cell == "ugrnn-x-scan":
        return 4 * B * V * H * T + 4 * M * B * H * H * (T - 1) ** 2
    return 4 * B * V * H * T + 4 * M * B * H * H * T * (T - 1) // 2


# The cell's backward nodes on the costliest path, in products of 4·B·H² FLOPs (a
# product's node computes both operands' gradients), as a + b·(T-1) from T = 2 on:
# one h-product per step for the UGRNNs and gru-torch (their gates' products of h run
# side by side); two for gru (W^{h,h̃} multiplies r ⊙ h, and r is a product of h);
# gru-torch-fast and torch-gru multiply h by the three gates' weights at once (3 per
# step, T-2 steps on the path) and every step's x in one product that waits for every
# step's gradient (3·(T-1)): 6·(T-1) - 3; none: one x-product, whatever T. The x-only
# UGRNN in both forms: one x-product too, since its recurrence is elementwise (it weighs
# no FLOPs), so the FLOP span cannot tell its loop from its scan; graph depth does.
SPAN_PRODUCTS = {  # (a, b)
    "ugrnn": (0, 1),
    "ugrnn2": (0, 1),
    "gru": (0, 2),
    "gru-torch": (0, 1),
    "gru-torch-fast": (-3, 6),
    "torch-gru": (-3, 6),
    "none": (1, 0),
    "ugrnn-x": (1, 0),
    "ugrnn-x-scan": (1, 0),
}


def span_flops(length: int, vocab: int, hidden: int, batch: int, cell: str) -> int:
    """The backward's costliest path in FLOPs (trainbench.measure.span), in closed form.

    The last step's output product (4·B·V·H), then the cell's products on the path:

        S(T) = 4·B·V·H + 4·B·H²·(a + b·(T-1))·[T >= 2]   — O(T) with a recurrence,
                                                           O(1) for none

    the same for the per-step control (its costliest call is the last step's). The
    work F_bwd(T) grows as T for every cell: ``none``'s T products run side by side.
    """
    B, V, H, T = batch, vocab, hidden, length
    a, b = SPAN_PRODUCTS[cell]
    return 4 * B * V * H + (4 * B * H * H * (a + b * (T - 1)) if T >= 2 else 0)


# The backward graph, read off torch's autograd graph. At T = 1 every cell has
# the same 19 nodes: the output product e[w,I] h[0,I] (torch lowers the einsum
# to Bmm with its Permute, View and Unsqueeze nodes), LogSoftmax and NllLoss,
# h0's Expand, the AccumulateGrad of e and h0, and the summation's Stack and
# Sum. Per cell:
#   s  nodes each further step adds (one cell step and one output head),
#   c  nodes added once from T = 2 on (the AccumulateGrad of the cell's
#      parameters, the Embedding and Unbind of x),
#   p  nodes each step adds to the longest path, q once from T = 2 on,
#   u, r  per-step control: the backward of step t >= 2 runs 17 + u + r·(t-1) nodes
#         (summed: 17·T + u·(T-1) + r·T(T-1)/2).
# ``torch-gru`` has none: its graph is torch's internal decomposition of nn.GRU.
# The scan's stacked gates make every step's backward (t >= 2) run all T-1 steps:
# 17 + 12 + 30·(T-1) nodes, written here as u = 12 - 30, r = 2·30 (since
# (T-1)·(T-1) = T(T-1) - (T-1)); its rounds are counted apart (SCAN_ROUNDS).
GRAPH_SHAPE = {  # (s, c, p, q, u, r)
    "ugrnn": (72, 8, 14, 1, 8, 58),
    "ugrnn2": (103, 12, 17, 1, 12, 89),
    "gru": (100, 11, 25, 1, 11, 86),
    "gru-torch": (101, 12, 16, 1, 12, 87),
    "gru-torch-fast": (29, 20, 11, 3, 20, 15),
    "none": (28, 4, 0, 11, 16, 0),
    "ugrnn-x": (46, 6, 2, 12, 6, 32),
    "ugrnn-x-scan": (44, 12, 0, 16, -18, 60),
}
# Per round of the scan (⌈log₂(T-1)⌉ of them from T = 3 on): (nodes, nodes on the longest
# path). A round is two products, an add, two slices per operand and two cats: 12 nodes,
# of which mul, add, cat and the slice before them (4) lie one after another; the
# per-step control runs every round in each of its T-1 backward calls.
SCAN_ROUNDS = {"ugrnn-x-scan": (12, 4)}
_HEAD_NODES = 17  # one step's own backward at T = 1: the head, h0's Expand, 2 AccumulateGrad


def scan_rounds(length: int) -> int:
    """The scan's rounds over the T-1 cell steps: ⌈log₂(T-1)⌉, 0 for T <= 2."""
    return max(length - 2, 0).bit_length()


def graph_nodes(length: int, cell: str, per_step: bool = False) -> int:
    """Backward-graph nodes executed, in closed form (summed over calls for per-step).

        full:      19 + s·(T-1) + c·[T >= 2] + k·R                    — O(T)
        per-step:  17·T + u·(T-1) + r·T(T-1)/2 + k·(T-1)·R            — O(T²), O(T) for none

    with R = ⌈log₂(T-1)⌉ rounds and k nodes per round for the scan (R = 0 otherwise).
    """
    s, c, _, _, u, r = GRAPH_SHAPE[cell]
    k, _ = SCAN_ROUNDS.get(cell, (0, 0))
    T, R = length, scan_rounds(length)
    if per_step:
        return _HEAD_NODES * T + u * (T - 1) + r * T * (T - 1) // 2 + k * (T - 1) * R
    return _HEAD_NODES + 2 + s * (T - 1) + (c if T >= 2 else 0) + k * R


def graph_depth(length: int, cell: str, per_step: bool = False) -> int:
    """Longest chain of dependent backward nodes (the critical path), in closed form.

        full:      14 + p·(T-1) + q·[T >= 2] + m·R    — O(T) with a recurrence, O(1) for
                                                         none, O(log T) for the scan
        per-step:  the same, less the summation's two nodes

    with R = ⌈log₂(T-1)⌉ rounds and m path nodes per round for the scan (R = 0 otherwise).
    """
    _, _, p, q, _, _ = GRAPH_SHAPE[cell]
    _, m = SCAN_ROUNDS.get(cell, (0, 0))
    T = length
    depth = 14 + p * (T - 1) + (q if T >= 2 else 0) + m * scan_rounds(T)
    return depth - 2 if per_step else depth


def memory_bytes(
    length: int, vocab: int, hidden: int, batch: int, cell: str, itemsize: int = 4
) -> int:
    """About the memory one forward+backward needs: parameters and their gradients, and
    per step the saved softmax (B·V) and a generous 16·B·H for the cell (and 4·B·H per
    round for the scan, which saves its pairs (a, v) in every round), twice over."""
    B, V, H, T = batch, vocab, hidden, length
    params = V * H + H + 2 * PRODUCTS_PER_STEP[cell] * H * H + 6 * H
    per_step = B * V + 16 * B * H + (4 * B * H * scan_rounds(T) if cell in SCAN_ROUNDS else 0)
    return itemsize * (2 * params + 2 * T * per_step)
