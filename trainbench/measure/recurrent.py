"""FLOP formulas for the fused recurrent kernels: oneDNN's ``aten.mkldnn_rnn_layer`` (CPU),
cuDNN's ``aten._cudnn_rnn`` and MIOpen's ``aten.miopen_rnn``, and their backward ops
(registered with torch's counter by :mod:`trainbench.measure.flops`).

The counter's convention (a product of an (m x k) by a (k x n) matrix is ``2 m k n``
FLOPs; biases and elementwise work count nothing). A fused recurrent op is given exactly
the FLOPs the counter records for the same computation written out in separate products
(as ``nn.GRU`` runs on CPU): per layer, direction and time step, one product with the
input weights and one with the recurrent weights
(and, for an LSTM with ``proj_size``, one with the projection). Its backward op
is given what autograd of that unfused version would count: for every forward
product, the product for the gradient of its data operand and the one for the
gradient of its weight, each only when that gradient is needed. So:

* the recurrent product of the first step (on ``h0``) has a data gradient only
  when ``h0`` requires a gradient;
* the input product of the first layer has one only when the input does;
* weight gradients only when the weights require them.

The kernels themselves may compute more (the oneDNN one computes every
gradient), but the numbers stay comparable with those of unfused models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

Shape = Sequence[int]

# Recurrence kinds, numbered as cuDNN's cudnnRNNMode_t; oneDNN's (ideep::rnn_kind) and
# MIOpen's (miopenRNNMode_t) use the same numbers.
RNN_RELU, RNN_TANH, LSTM, GRU = 0, 1, 2, 3
GATES = {RNN_RELU: 1, RNN_TANH: 1, LSTM: 4, GRU: 3}  # gate blocks of the weight matrices


def _layer_forward(rows: int, gate_rows: int, in_size: int, rec_size: int, proj: int) -> int:
    """One layer and direction over ``rows`` (time steps x batch) rows of input.

    ``gate_rows`` = gates x hidden (rows of W_ih and W_hh), ``in_size`` the columns of
    W_ih, ``rec_size`` those of W_hh (hidden size, or proj size with a projection),
    ``proj`` = proj_size x hidden_size (W_hr's elements, 0 without a projection).
    """
    return 2 * rows * (gate_rows * (in_size + rec_size) + proj)


def _layer_backward(
    rows: int,
    first_rows: int,
    gate_rows: int,
    in_size: int,
    rec_size: int,
    proj: int,
    *,
    grad_input: bool,
    grad_hx: bool,
    grad_weight: bool,
    grad_weight_hh: bool | None = None,
) -> int:
    """Backward of :func:`_layer_forward`'s products, as autograd of the unfused layer.

    ``first_rows`` is the batch of the first step processed (its recurrent product
    multiplies ``h0``). ``grad_weight_hh`` defaults to ``grad_weight``.
    """
    if grad_weight_hh is None:
        grad_weight_hh = grad_weight
    rec = gate_rows * rec_size
    # dL/dh[t-1] = dL/dgates[t] W_hh for every step but the first; the first only for h0
    flops = 2 * (rows - first_rows) * rec + (2 * first_rows * rec if grad_hx else 0)
    # the projection h = W_hr m: dL/dm is always needed, dL/dW_hr with the weights
    flops += 2 * rows * proj * (2 if grad_weight else 1)
    if grad_input:  # dL/dx[t] = dL/dgates[t] W_ih
        flops += 2 * rows * gate_rows * in_size
    if grad_weight:  # dL/dW_ih += dL/dgates[t]^T x[t]
        flops += 2 * rows * gate_rows * in_size
    if grad_weight_hh:  # dL/dW_hh += dL/dgates[t]^T h[t-1]
        flops += 2 * rows * rec
    return flops


def _rows(
    input_shape: Shape, batch_first: bool, batch_sizes: Sequence[int]
) -> tuple[int, int, int]:
    """(all rows, first-step batch forward, first-step batch reversed) of an RNN input.

    Unpacked input is (T, B, I), or (B, T, I) with ``batch_first``; packed input is
    (sum(batch_sizes), I), and a reversed direction starts at the last, smallest step.
    """
    if len(batch_sizes) > 0:
        sizes = [int(b) for b in batch_sizes]
        return sum(sizes), sizes[0], sizes[-1]
    batch = input_shape[0] if batch_first else input_shape[1]
    return math.prod(input_shape[:-1]), batch, batch


def _stack_flops(
    input_shape: Shape,
    mode: int,
    hidden_size: int,
    proj_size: int,
    num_layers: int,
    batch_first: bool,
    bidirectional: bool,
    batch_sizes: Sequence[int],
    output_mask: Sequence[bool] | None,
) -> int:
    """A whole cuDNN/MIOpen stack; ``output_mask`` None: forward, else backward."""
    if mode not in GATES:
        raise ValueError(f"unknown RNN mode {mode}")
    rows, first_fwd, first_rev = _rows(input_shape, batch_first, batch_sizes)
    gate_rows = GATES[mode] * hidden_size
    rec_size = proj_size if proj_size > 0 else hidden_size
    proj = proj_size * hidden_size
    directions = 2 if bidirectional else 1
    flops = 0
    for layer in range(num_layers):
        in_size = input_shape[-1] if layer == 0 else directions * rec_size
        for direction in range(directions):
            if output_mask is None:
                flops += _layer_forward(rows, gate_rows, in_size, rec_size, proj)
                continue
            flops += _layer_backward(
                rows,
                first_rev if direction else first_fwd,
                gate_rows,
                in_size,
                rec_size,
                proj,
                # the input of a higher layer is a lower layer's output: always needed
                grad_input=layer > 0 or bool(output_mask[0]),
                grad_hx=bool(output_mask[1]),
                grad_weight=bool(output_mask[3]),
            )
    return flops


def cudnn_rnn_flop(
    input_shape: Shape,
    weight: Any,
    weight_stride0: int,
    weight_buf: Any,
    hx: Any,
    cx: Any,
    mode: int,
    hidden_size: int,
    proj_size: int,
    num_layers: int,
    batch_first: bool,
    dropout: float,
    train: bool,
    bidirectional: bool,
    batch_sizes: Sequence[int],
    dropout_state: Any,
    *args: Any,
    **kwargs: Any,
) -> int:
    """``aten._cudnn_rnn``: a whole stack of RNN_RELU/RNN_TANH/LSTM/GRU layers.

    With G gates (1, 1, 4, 3 for modes 0-3), hidden size H, R = proj_size or H,
    N = T*B rows (sum(batch_sizes) when packed), D = 2 if bidirectional else 1 and
    I_l = input size for layer 0, D*R above::

        sum over layers l and directions:  2 N (G H (I_l + R) + proj_size H)

    i.e. per time step and layer a (B x I_l)(I_l x GH) and a (B x R)(R x GH) product
    (and the (B x H)(H x P) projection of an LSTM with proj_size P).
    """
    return _stack_flops(
        input_shape, int(mode), int(hidden_size), int(proj_size), int(num_layers),
        bool(batch_first), bool(bidirectional), batch_sizes, None,
    )  # fmt: skip


def cudnn_rnn_backward_flop(
    input_shape: Shape,
    weight: Any,
    weight_stride0: int,
    weight_buf: Any,
    hx: Any,
    cx: Any,
    output: Any,
    grad_output: Any,
    grad_hy: Any,
    grad_cy: Any,
    mode: int,
    hidden_size: int,
    proj_size: int,
    num_layers: int,
    batch_first: bool,
    dropout: float,
    train: bool,
    bidirectional: bool,
    batch_sizes: Sequence[int],
    dropout_state: Any,
    reserve: Any,
    output_mask: Sequence[bool],
    *args: Any,
    **kwargs: Any,
) -> int:
    """``aten._cudnn_rnn_backward``, with ``output_mask`` = (input, hx, cx, weights).

    Notation of :func:`cudnn_rnn_flop`; b = the batch of the first step a direction
    processes (B; packed: batch_sizes[0] forward, batch_sizes[-1] reversed). Per layer
    l and direction::

        2 (N - b) G H R                       dL/dh[t-1] through W_hh, steps after the first
      + 2 b G H R         if mask[1] (hx)     dL/dh0
      + 2 N G H I_l       if l > 0 or mask[0] dL/dinput
      + 2 N G H (I_l + R) if mask[3]          dL/dW_ih, dL/dW_hh
      + 2 N P H (x 2 if mask[3])              projection: dL/dm, dL/dW_hr

    (mask[2], dL/dcx, needs no product: the cell state enters elementwise.)
    """
    return _stack_flops(
        input_shape, int(mode), int(hidden_size), int(proj_size), int(num_layers),
        bool(batch_first), bool(bidirectional), batch_sizes, list(output_mask),
    )  # fmt: skip


def miopen_rnn_flop(
    input_shape: Shape,
    weight: Any,
    weight_stride0: int,
    hx: Any,
    cx: Any,
    mode: int,
    hidden_size: int,
    num_layers: int,
    batch_first: bool,
    dropout: float,
    train: bool,
    bidirectional: bool,
    batch_sizes: Sequence[int],
    dropout_state: Any,
    *args: Any,
    **kwargs: Any,
) -> int:
    """``aten.miopen_rnn`` (ROCm): :func:`cudnn_rnn_flop` without a projection."""
    return _stack_flops(
        input_shape, int(mode), int(hidden_size), 0, int(num_layers),
        bool(batch_first), bool(bidirectional), batch_sizes, None,
    )  # fmt: skip


def miopen_rnn_backward_flop(
    input_shape: Shape,
    weight: Any,
    weight_stride0: int,
    weight_buf: Any,
    hx: Any,
    cx: Any,
    output: Any,
    grad_output: Any,
    grad_hy: Any,
    grad_cy: Any,
    mode: int,
    hidden_size: int,
    num_layers: int,
    batch_first: bool,
    dropout: float,
    train: bool,
    bidirectional: bool,
    batch_sizes: Sequence[int],
    dropout_state: Any,
    reserve: Any,
    output_mask: Sequence[bool],
    *args: Any,
    **kwargs: Any,
) -> int:
    """``aten.miopen_rnn_backward`` (ROCm): :func:`cudnn_rnn_backward_flop`, no projection."""
    return _stack_flops(
        input_shape, int(mode), int(hidden_size), 0, int(num_layers),
        bool(batch_first), bool(bidirectional), batch_sizes, list(output_mask),
    )  # fmt: skip


def mkldnn_rnn_layer_flop(
    input_shape: Shape,
    weight0: Shape,
    weight1: Shape,
    *args: Any,
    **kwargs: Any,
) -> int:
    """``aten.mkldnn_rnn_layer``: one layer in one direction (what CPU ``nn.LSTM`` runs).

    With W_ih = weight0 (GH x I), W_hh = weight1 (GH x H) and N = T*B rows of input
    (the product of all but the last dimension of ``input``)::

        2 N GH (I + H)

    i.e. per time step a (B x I)(I x GH) and a (B x H)(H x GH) product.
    """
    rows = math.prod(input_shape[:-1])
    return _layer_forward(rows, weight0[0], weight0[1], weight1[1], 0)


# inputs of mkldnn_rnn_layer, in the order of its backward node's edges
_MKLDNN_INPUTS = ("input", "weight0", "weight1", "weight2", "weight3", "hx_", "cx_")


def _needed_gradients(node_name: str, inputs: Sequence[str]) -> dict[str, bool] | None:
    """Which inputs of the backward node now running need a gradient.

    Read from the autograd node the engine is executing: an input gets a gradient
    when its edge is valid (it requires one) and, where the engine can tell, the
    edge's node runs in this backward. None outside such a node (the formula
    called by hand): then every gradient is taken as needed.
    """
    current = getattr(torch._C, "_current_autograd_node", None)
    node = current() if current is not None else None
    if node is None or node_name not in node.name() or len(node.next_functions) != len(inputs):
        return None
    will_run = getattr(torch._C, "_will_engine_execute_node", None)
    needed = {}
    for name, (fn, _) in zip(inputs, node.next_functions, strict=True):
        if fn is None:
            needed[name] = False
            continue
        try:
            needed[name] = True if will_run is None else bool(will_run(fn))
        except RuntimeError:  # a leaf during torch.autograd.grad(): cannot tell, counted
            needed[name] = True
    return needed


def mkldnn_rnn_layer_backward_flop(
    input_shape: Shape,
    weight1: Shape,
    weight2: Shape,
    weight3: Any,
    weight4: Any,
    hx_: Shape,
    cx_tmp: Any,
    output: Any,
    hy_: Any,
    cy_: Any,
    grad_output: Any,
    grad_hy: Any,
    grad_cy: Any,
    reverse: bool,
    mode: int,
    hidden_size: int,
    num_layers: int,
    has_biases: bool,
    train: bool,
    bidirectional: bool,
    batch_sizes: Sequence[int],
    batch_first: bool,
    *args: Any,
    **kwargs: Any,
) -> int:
    """``aten.mkldnn_rnn_layer_backward``: one layer in one direction.

    W_ih = weight1 (GH x I), W_hh = weight2 (GH x H), N = T*B rows, b = the batch
    of the first step processed (hx_'s rows; packed: batch_sizes[0], or
    batch_sizes[-1] reversed)::

        2 (N - b) GH H                     dL/dh[t-1] through W_hh, steps after the first
      + 2 b GH H      if hx_ needs it      dL/dh0
      + 2 N GH I      if input needs it    dL/dinput
      + 2 N GH I      if W_ih needs it     dL/dW_ih
      + 2 N GH H      if W_hh needs it     dL/dW_hh

    The op has no output mask (the kernel computes every gradient), so which
    gradients are needed is read from the autograd node being executed (see
    :func:`_needed_gradients`); called outside the engine, all are counted.
    """
    needed = _needed_gradients("MkldnnRnnLayerBackward", _MKLDNN_INPUTS)
    if needed is None:
        needed = dict.fromkeys(_MKLDNN_INPUTS, True)
    rows = math.prod(input_shape[:-1])
    if len(batch_sizes) > 0:
        first_rows = int(batch_sizes[-1] if reverse else batch_sizes[0])
    else:
        first_rows = hx_[-2]
    return _layer_backward(
        rows,
        first_rows,
        weight1[0],
        weight1[1],
        weight2[1],
        0,
        grad_input=needed["input"],
        grad_hx=needed["hx_"],
        grad_weight=needed["weight0"],
        grad_weight_hh=needed["weight1"],
    )
