"""FLOP formulas that ``torch.utils.flop_counter.FlopCounterMode`` lacks.

torch's counter knows matrix-matrix products, convolutions and the CUDA
attention kernels. It counts nothing for matrix-vector products, nothing for the
fused attention that ``F.scaled_dot_product_attention`` runs on CPU
(``aten._scaled_dot_product_flash_attention_for_cpu`` and its backward: every
``nn.MultiheadAttention`` would read 0 attention FLOPs), and nothing inside the fused
recurrent kernels: ``nn.LSTM`` on CPU runs one ``aten.mkldnn_rnn_layer`` per
layer and direction (oneDNN), and ``nn.RNN``/``nn.GRU``/``nn.LSTM`` on CUDA run
``aten._cudnn_rnn`` (ROCm: ``aten.miopen_rnn``), each with a backward op of its
own. ``EXTRA_FLOP_FORMULAS`` fills those gaps; it is passed to the counter as its
``custom_mapping``.

Convention: the counter's. A product of an (m x k) by a (k x n) matrix is
``2 m k n`` FLOPs; additions of biases and all elementwise work (gate
nonlinearities, the cell update) count nothing. The fused recurrent kernels' formulas,
and how their backward ops are counted, are in :mod:`trainbench.measure.recurrent`.

Formulas take what ``FlopCounterMode`` passes to a ``custom_mapping`` entry: the
op's arguments with every tensor (also inside a tensor list) replaced by its
shape, other arguments as they are, and the keyword ``out_shape``.

Not registered, on purpose: ``aten._thnn_fused_lstm_cell``,
``aten._thnn_fused_gru_cell`` and their ``_backward`` variants (what
``nn.LSTMCell``/``nn.GRUCell`` use on CUDA). They do only the elementwise part of
a cell; the cell's matrix products run as separate ``mm``/``addmm`` calls that
the counter already counts. They count 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from trainbench.measure.recurrent import (
    Shape,
    cudnn_rnn_backward_flop,
    cudnn_rnn_flop,
    miopen_rnn_backward_flop,
    miopen_rnn_flop,
    mkldnn_rnn_layer_backward_flop,
    mkldnn_rnn_layer_flop,
)

# --------------------------------------------------------------------------- products


def mv_flop(a_shape: Shape, x_shape: Shape, *args: Any, **kwargs: Any) -> int:
    """``aten.mv``: A (m x n) times x (n): ``2 m n``."""
    return 2 * a_shape[0] * a_shape[1]


def addmv_flop(self_shape: Shape, a_shape: Shape, x_shape: Shape, *args: Any, **kwargs: Any) -> int:
    """``aten.addmv``: beta y + alpha A x with A (m x n): ``2 m n`` (the addition is free)."""
    return 2 * a_shape[0] * a_shape[1]


# --------------------------------------------------------------------------- attention


def _attention_shapes(q: Shape, k: Shape, v: Shape) -> tuple[int, int, int, int, int]:
    """(batch x query heads, query length, key length, query/key dim, value dim) of a
    fused attention's [b, h, s, d] operands; keys and values may have fewer heads (grouped
    queries), which the kernel broadcasts to the query's, as the unfused form expands them."""
    *lead, s_q, d_q = q
    s_k, d_v = k[-2], v[-1]
    return math.prod(lead), s_q, s_k, d_q, d_v


def attention_flop(q: Shape, k: Shape, v: Shape, *args: Any, **kwargs: Any) -> int:
    """A fused scaled-dot-product attention forward: the two products of its unfused form,
    scores = q·kᵀ and out = softmax(scores)·v (torch's ``sdpa_flop_count``)."""
    bh, s_q, s_k, d_q, d_v = _attention_shapes(q, k, v)
    return 2 * bh * s_q * s_k * d_q + 2 * bh * s_q * s_k * d_v


def attention_backward_flop(
    grad_out: Shape, q: Shape, k: Shape, v: Shape, *args: Any, **kwargs: Any
) -> int:
    """Its backward, as autograd of the unfused form counts it: two products per forward
    product (grad of the weights·v product: grad_weights and grad_v; grad of q·kᵀ: grad_q
    and grad_k). torch's own formula for the CUDA kernels adds a fifth, the kernels'
    recomputation of the scores; left out here, so that fused and unfused attention count
    the same, as the recurrent kernels do (:mod:`trainbench.measure.recurrent`)."""
    bh, s_q, s_k, d_q, d_v = _attention_shapes(q, k, v)
    return 2 * (2 * bh * s_q * s_k * d_v) + 2 * (2 * bh * s_q * s_k * d_q)


# --------------------------------------------------------------------------- mapping

_FORMULAS: dict[str, Callable[..., int]] = {
    "mv": mv_flop,
    "addmv": addmv_flop,
    "mkldnn_rnn_layer": mkldnn_rnn_layer_flop,
    "mkldnn_rnn_layer_backward": mkldnn_rnn_layer_backward_flop,
    "_cudnn_rnn": cudnn_rnn_flop,
    "_cudnn_rnn_backward": cudnn_rnn_backward_flop,
    "miopen_rnn": miopen_rnn_flop,
    "miopen_rnn_backward": miopen_rnn_backward_flop,
    # what F.scaled_dot_product_attention (nn.MultiheadAttention, nn.TransformerEncoder,
    # transformers' default attention) runs on CPU, and on XPU and other backends
    "_scaled_dot_product_flash_attention_for_cpu": attention_flop,
    "_scaled_dot_product_flash_attention_for_cpu_backward": attention_backward_flop,
    "_scaled_dot_product_fused_attention_overrideable": attention_flop,
    "_scaled_dot_product_fused_attention_overrideable_backward": attention_backward_flop,
    # torch's CUDA formulas count the backward's recomputation of the scores too: counted
    # like the CPU kernel instead, so that a model counts the same on every device
    "_scaled_dot_product_flash_attention_backward": attention_backward_flop,
    "_scaled_dot_product_efficient_attention_backward": attention_backward_flop,
    "_scaled_dot_product_cudnn_attention_backward": attention_backward_flop,
}

# custom_mapping for FlopCounterMode: only the ops this torch build has.
EXTRA_FLOP_FORMULAS: dict[Any, Callable[..., int]] = {
    getattr(torch.ops.aten, name): formula
    for name, formula in _FORMULAS.items()
    if hasattr(torch.ops.aten, name)
}
