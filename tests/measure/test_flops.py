"""The FLOP formulas of :mod:`trainbench.measure.flops`, against unfused computations.

Exact integers: a fused recurrent op must count what the counter counts for the same
layers written as separate products (``nn.GRU``/``nn.RNN`` and ``nn.LSTM`` with
projections or packed input run that way on CPU; a plain ``nn.LSTM`` is written out
by hand below). The cuDNN formulas cannot run here; they are called with the
arguments ``aten._cudnn_rnn`` would receive.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from trainbench.measure import flops, recurrent
from trainbench.measure.flops import EXTRA_FLOP_FORMULAS
from trainbench.measure.point import count_point, flop_counter

aten = torch.ops.aten
IN, HID, T, B = 3, 5, 4, 2


# --------------------------------------------------------------------------- helpers


def reference_lstm(lstm: nn.LSTM, x: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """``lstm(x)[0]`` written with one ``F.linear`` per product and step (gates i, f, g, o)."""
    if lstm.batch_first:
        x = x.transpose(0, 1)
    steps, batch = x.shape[:2]
    dirs = 2 if lstm.bidirectional else 1
    layer_in = x
    for layer in range(lstm.num_layers):
        outs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(lstm, "weight_ih" + sfx), getattr(lstm, "weight_hh" + sfx)
            b_ih = getattr(lstm, "bias_ih" + sfx) if lstm.bias else None
            b_hh = getattr(lstm, "bias_hh" + sfx) if lstm.bias else None
            if hx is None:
                h = c = torch.zeros(batch, lstm.hidden_size)
            else:
                h, c = hx[0][layer * dirs + d], hx[1][layer * dirs + d]
            ys: list[Tensor] = [h] * steps
            for t in reversed(range(steps)) if d else range(steps):
                gates = F.linear(layer_in[t], w_ih, b_ih) + F.linear(h, w_hh, b_hh)
                i, f, g, o = gates.chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                ys[t] = h
            outs.append(torch.stack(ys))
        layer_in = torch.cat(outs, -1)
    return layer_in.transpose(0, 1) if lstm.batch_first else layer_in


def _data(y: Tensor | PackedSequence) -> Tensor:
    return y.data if isinstance(y, PackedSequence) else y


def counted(run: Any) -> tuple[int, int]:
    """(forward, backward) FLOPs of ``run()`` and of the backward of a weighted sum of it."""
    with flop_counter() as counter:
        y = _data(run())
    fwd = counter.get_total_flops()
    loss = (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum()
    with flop_counter() as counter:
        loss.backward()
    return fwd, counter.get_total_flops()


def make(cls: type[nn.RNNBase], layers: int, bidir: bool, batch_first: bool, bias: bool, **kw):
    torch.manual_seed(0)
    return cls(IN, HID, num_layers=layers, bidirectional=bidir, batch_first=batch_first,
               bias=bias, **kw)  # fmt: skip


def sequence(batch_first: bool, grad: bool) -> Tensor:
    x = torch.randn(B, T, IN) if batch_first else torch.randn(T, B, IN)
    return x.requires_grad_(grad)


def initial(rnn: nn.RNNBase, lstm: bool) -> Any:
    """An (h0, c0) / h0 that requires a gradient."""
    shape = (rnn.num_layers * (2 if rnn.bidirectional else 1), B)
    h0 = torch.randn(*shape, rnn.proj_size or HID, requires_grad=True)
    return (h0, torch.randn(*shape, HID, requires_grad=True)) if lstm else h0


LSTM_CASES = [  # (layers, bidirectional, batch_first, bias, input requires grad, h0 requires grad)
    (1, False, False, True, True, False),
    (1, False, True, False, False, False),
    (2, False, False, True, False, False),
    (2, True, False, True, True, False),
    (2, True, True, False, True, False),
    (1, True, False, True, False, True),
    (2, False, True, True, True, True),
]


# --------------------------------------------------------------------------- products


def test_matrix_vector_products_count_2mn() -> None:
    a, x = torch.randn(5, 7), torch.randn(7)
    with flop_counter() as counter:
        torch.mv(a, x)
    assert counter.get_total_flops() == 2 * 5 * 7
    with flop_counter() as counter:
        torch.addmv(torch.zeros(5), a, x)
        a @ x
    assert counter.get_total_flops() == 2 * (2 * 5 * 7)


def test_every_key_is_an_existing_aten_op() -> None:
    assert set(EXTRA_FLOP_FORMULAS) <= set(flop_counter().flop_registry)  # the counter has them
    names = set()
    for op, formula in EXTRA_FLOP_FORMULAS.items():
        assert isinstance(op, torch._ops.OpOverloadPacket)
        assert getattr(aten, op.__name__) is op
        assert op.overloads()
        assert callable(formula)
        names.add(op.__name__)
    assert {"mv", "addmv", "mkldnn_rnn_layer", "mkldnn_rnn_layer_backward"} <= names
    assert {"_cudnn_rnn", "_cudnn_rnn_backward"} <= names  # in the CPU build's registry too
    # the fused cells do elementwise work only and are left uncounted
    assert not names & {"_thnn_fused_lstm_cell", "_thnn_fused_gru_cell"}


# --------------------------------------------------------------------------- oneDNN LSTM


def test_cpu_lstm_runs_the_mkldnn_layer_op() -> None:
    lstm, x = make(nn.LSTM, 1, False, False, True), sequence(False, True)
    with flop_counter() as counter:
        y, _ = lstm(x)
    if aten.mkldnn_rnn_layer not in counter.get_flop_counts()["Global"]:
        pytest.skip("this build's nn.LSTM does not run on oneDNN")
    assert counter.get_total_flops() == 2 * T * B * 4 * HID * (IN + HID)


@pytest.mark.parametrize("layers,bidir,batch_first,bias,grad,h0_grad", LSTM_CASES)
def test_lstm_counts_as_its_unfused_reference(
    layers: int, bidir: bool, batch_first: bool, bias: bool, grad: bool, h0_grad: bool
) -> None:
    lstm = make(nn.LSTM, layers, bidir, batch_first, bias)
    x = sequence(batch_first, grad)
    hx = initial(lstm, True) if h0_grad else None
    fused = counted(lambda: lstm(x, hx)[0])
    unfused = counted(lambda: reference_lstm(lstm, x, hx))
    assert fused == unfused
    assert fused[0] > 0 and fused[1] > 0
    with torch.no_grad():  # the same math
        torch.testing.assert_close(lstm(x, hx)[0], reference_lstm(lstm, x, hx))


def test_lstm_with_frozen_weights_counts_only_the_data_gradients() -> None:
    lstm = make(nn.LSTM, 2, True, False, True).requires_grad_(False)
    x = sequence(False, True)
    assert counted(lambda: lstm(x)[0]) == counted(lambda: reference_lstm(lstm, x))


def test_lstm_counts_the_same_under_count_point() -> None:
    """count_point's saved-tensor hooks detach what the backward reads; no effect on counts."""
    lstm, x = make(nn.LSTM, 2, False, False, True), sequence(False, False)
    fused = count_point(lambda: [lstm(x)[0].sum()], torch.device("cpu"))
    unfused = count_point(lambda: [reference_lstm(lstm, x).sum()], torch.device("cpu"))
    assert (fused["fwd_flops"], fused["bwd_flops"]) == (unfused["fwd_flops"], unfused["bwd_flops"])


def test_mkldnn_backward_called_by_hand_counts_every_gradient() -> None:
    gh, rows, b = 4 * HID, T * B, B
    f = recurrent.mkldnn_rnn_layer_backward_flop(
        (T, B, IN), (gh, IN), (gh, HID), (gh,), (gh,), (B, HID), (B, HID),
        (T, B, HID), (B, HID), (B, HID), (T, B, HID), None, None,
        False, 2, HID, 1, True, True, False, [], False, (1,), out_shape=None,
    )  # fmt: skip
    assert f == 2 * (rows - b) * gh * HID + 2 * b * gh * HID + 2 * (2 * rows * gh * IN) + (
        2 * rows * gh * HID
    )


# --------------------------------------------------------------------------- cuDNN


MODES = {"RNN_RELU": 0, "RNN_TANH": 1, "LSTM": 2, "GRU": 3}


def cudnn_args(
    op: Any,
    rnn: nn.RNNBase,
    x: Tensor | PackedSequence,
    mask: Sequence[bool] = (),
) -> list[Any]:
    """The shapes and arguments ``op`` (_cudnn_rnn or its backward) would get, in schema order."""
    data, batch_sizes = (
        (x.data, x.batch_sizes.tolist()) if isinstance(x, PackedSequence) else (x, [])
    )
    batch = batch_sizes[0] if batch_sizes else data.shape[0 if rnn.batch_first else 1]
    stack = rnn.num_layers * (2 if rnn.bidirectional else 1)
    out_size = (2 if rnn.bidirectional else 1) * (rnn.proj_size or rnn.hidden_size)
    out = (*data.shape[:-1], out_size)
    lstm = rnn.mode == "LSTM"
    values = {
        "input": data.shape,
        "weight": [w.shape for w in rnn._flat_weights],
        "weight_stride0": len(rnn._flat_weights) // stack,
        "weight_buf": None,
        "hx": (stack, batch, rnn.proj_size or rnn.hidden_size),
        "cx": (stack, batch, rnn.hidden_size) if lstm else None,
        "mode": MODES[rnn.mode],
        "hidden_size": rnn.hidden_size,
        "proj_size": rnn.proj_size,
        "num_layers": rnn.num_layers,
        "batch_first": rnn.batch_first,
        "dropout": 0.0,
        "train": True,
        "bidirectional": rnn.bidirectional,
        "batch_sizes": batch_sizes,
        "dropout_state": None,
        "output": out,
        "grad_output": out,
        "grad_hy": None,
        "grad_cy": None,
        "reserve": (64,),
        "output_mask": list(mask),
    }
    return [values[arg.name] for arg in op.default._schema.arguments]


def cudnn_counts(rnn: nn.RNNBase, x: Tensor | PackedSequence, hx: Any = None) -> tuple[int, int]:
    data = x.data if isinstance(x, PackedSequence) else x
    h0 = hx[0] if isinstance(hx, tuple) else hx
    c0 = hx[1] if isinstance(hx, tuple) else None
    mask = [
        data.requires_grad,
        h0 is not None and h0.requires_grad,
        c0 is not None and c0.requires_grad,
        any(w.requires_grad for w in rnn._flat_weights),
    ]
    fwd = recurrent.cudnn_rnn_flop(*cudnn_args(aten._cudnn_rnn, rnn, x), out_shape=None)
    bwd_args = cudnn_args(aten._cudnn_rnn_backward, rnn, x, mask)
    return fwd, recurrent.cudnn_rnn_backward_flop(*bwd_args, out_shape=None)


RNN_CASES = [  # (layers, bidirectional, batch_first, bias, input requires grad, h0 requires grad)
    (1, False, True, True, False, False),
    (1, False, False, False, True, False),
    (2, True, False, True, True, False),
    (2, False, True, True, False, True),
    (3, True, True, False, True, True),
]


@pytest.mark.parametrize("cls,kw", [(nn.GRU, {}), (nn.RNN, {}), (nn.RNN, {"nonlinearity": "relu"})])
@pytest.mark.parametrize("layers,bidir,batch_first,bias,grad,h0_grad", RNN_CASES)
def test_cudnn_formula_equals_the_decomposed_cpu_gru_and_rnn(
    cls: type[nn.RNNBase],
    kw: dict[str, Any],
    layers: int,
    bidir: bool,
    batch_first: bool,
    bias: bool,
    grad: bool,
    h0_grad: bool,
) -> None:
    rnn = make(cls, layers, bidir, batch_first, bias, **kw)
    x = sequence(batch_first, grad)
    hx = initial(rnn, False) if h0_grad else None
    with flop_counter() as counter:
        rnn(x, hx)
    assert set(counter.get_flop_counts()["Global"]) <= {aten.mm, aten.addmm}  # decomposed
    assert cudnn_counts(rnn, x, hx) == counted(lambda: rnn(x, hx)[0])


@pytest.mark.parametrize("layers,bidir,batch_first,bias,grad,h0_grad", LSTM_CASES)
def test_cudnn_formula_equals_the_unfused_lstm(
    layers: int, bidir: bool, batch_first: bool, bias: bool, grad: bool, h0_grad: bool
) -> None:
    lstm = make(nn.LSTM, layers, bidir, batch_first, bias)
    x = sequence(batch_first, grad)
    hx = initial(lstm, True) if h0_grad else None
    assert cudnn_counts(lstm, x, hx) == counted(lambda: reference_lstm(lstm, x, hx))


@pytest.mark.parametrize(
    "layers,bidir,grad,h0_grad,frozen",
    [(1, False, True, False, False), (2, True, False, True, False), (2, False, True, False, True)],
)
def test_cudnn_formula_equals_the_decomposed_lstm_with_projections(
    layers: int, bidir: bool, grad: bool, h0_grad: bool, frozen: bool
) -> None:
    lstm = make(nn.LSTM, layers, bidir, False, True, proj_size=2).requires_grad_(not frozen)
    x = sequence(False, grad)
    hx = initial(lstm, True) if h0_grad else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "LSTM with projections is not supported with oneDNN"
        assert cudnn_counts(lstm, x, hx) == counted(lambda: lstm(x, hx)[0])


@pytest.mark.parametrize("cls", [nn.GRU, nn.LSTM])
@pytest.mark.parametrize("bidir", [False, True])
def test_cudnn_formula_equals_the_decomposed_packed_sequence(
    cls: type[nn.RNNBase], bidir: bool
) -> None:
    rnn = make(cls, 2, bidir, False, True)
    x = pack_padded_sequence(torch.randn(T, 3, IN, requires_grad=True), [4, 3, 1])
    assert cudnn_counts(rnn, x) == counted(lambda: rnn(x)[0])


def test_cudnn_formula_with_frozen_weights() -> None:
    gru = make(nn.GRU, 2, True, False, True).requires_grad_(False)
    x = sequence(False, True)
    assert cudnn_counts(gru, x) == counted(lambda: gru(x)[0])


def test_cudnn_formulas_through_the_counters_shape_wrapper() -> None:
    """The counter passes tensors (also in the weight list) as shapes."""
    gru = make(nn.GRU, 2, True, False, True)
    x = sequence(False, True)
    registry = flop_counter().flop_registry

    def tensors(args: list[Any]) -> list[Any]:
        def one(a: Any) -> Any:
            if isinstance(a, tuple):  # torch.Size included
                return torch.empty(a)
            if isinstance(a, list) and a and isinstance(a[0], torch.Size):
                return [torch.empty(s) for s in a]
            return a

        return [one(a) for a in args]

    fwd = registry[aten._cudnn_rnn](*tensors(cudnn_args(aten._cudnn_rnn, gru, x)), out_val=None)
    bwd_args = tensors(cudnn_args(aten._cudnn_rnn_backward, gru, x, [True, False, False, True]))
    bwd = registry[aten._cudnn_rnn_backward](*bwd_args, out_val=None)
    assert (fwd, bwd) == counted(lambda: gru(x)[0])


# --------------------------------------------------------------------------- totals only


def _both_totals(fn: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """(forward, backward) FLOPs of ``fn()`` under torch's own counter (with this module's
    formulas) and under :func:`flop_counter`, which drops the per-module breakdown."""
    out = []
    for make_counter in (
        lambda: torch.utils.flop_counter.FlopCounterMode(
            display=False, custom_mapping=EXTRA_FLOP_FORMULAS
        ),
        flop_counter,
    ):
        torch.manual_seed(0)
        with make_counter() as counter:
            loss = fn()
        fwd = counter.get_total_flops()
        with make_counter() as counter:
            loss.backward()
        out.append((fwd, counter.get_total_flops()))
    return out[0], out[1]


@pytest.mark.parametrize("name", ["mlp-heads", "rnn-lm", "ugcnn"])
def test_totals_only_counter_counts_what_torchs_counter_counts(name: str) -> None:
    from trainbench.experiments.builtin import EXPERIMENTS

    exp = EXPERIMENTS[name]
    forward = exp.forward("full", 3, exp.defaults, torch.device("cpu"), torch.float32)
    stock, lean = _both_totals(lambda: torch.stack(forward()).sum())
    assert stock == lean and stock[0] > 0 and stock[1] > 0


def test_counting_in_a_fresh_process_loads_no_dynamo_and_counts_the_same() -> None:
    """Where nothing compiles, the counter's dispatch is not wrapped in torch._dynamo's
    guard (whose first call imports torch._dynamo); the totals are those of the guarded
    dispatch, which this process uses once torch's stock counter has loaded torch._dynamo."""
    import importlib
    import json
    import subprocess
    import sys

    from trainbench.experiments.builtin import EXPERIMENTS

    script = (
        "import json, sys, torch\n"
        "from trainbench.experiments.builtin import EXPERIMENTS\n"
        "from trainbench.measure.point import count_point\n"
        "exp = EXPERIMENTS['ugcnn']\n"
        "c = count_point(exp.forward('full', 3, exp.defaults, torch.device('cpu'),"
        " torch.float32), torch.device('cpu'))\n"
        "print(json.dumps([c['fwd_flops'], c['bwd_flops'], 'torch._dynamo' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=120)  # fmt: skip
    fwd, bwd, dynamo = json.loads(out.stdout.strip().splitlines()[-1])
    assert dynamo is False
    importlib.import_module("torch._dynamo")  # (from here on the guarded dispatch counts)

    exp = EXPERIMENTS["ugcnn"]
    here = count_point(exp.forward("full", 3, exp.defaults, torch.device("cpu"), torch.float32),
                       torch.device("cpu"))  # fmt: skip
    assert (here["fwd_flops"], here["bwd_flops"]) == (fwd, bwd) and fwd > 0 and bwd > 0


def test_totals_only_counter_on_nested_modules_and_a_fused_lstm() -> None:
    model = nn.Sequential(nn.Linear(IN, HID), nn.Sequential(nn.Tanh(), nn.Linear(HID, IN)))
    lstm = make(nn.LSTM, 2, False, False, True)
    x = sequence(False, False)
    stock, lean = _both_totals(lambda: lstm(model(x))[0].sum())
    assert stock == lean and stock[1] > stock[0] > 0
    with flop_counter() as counter:
        model(torch.randn(B, IN))
    assert set(counter.get_flop_counts()) == {"Global"}  # no per-module entries


# --------------------------------------------------------------------------- attention


def unfused_attention(q: Tensor, k: Tensor, v: Tensor, causal: bool = False) -> Tensor:
    """softmax(q·kᵀ/√d)·v with explicit products (keys and values expanded to the query's
    heads), as the counter sees an eager attention."""
    reps = q.shape[-3] // k.shape[-3]
    k, v = k.repeat_interleave(reps, dim=-3), v.repeat_interleave(reps, dim=-3)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        n_q, n_k = scores.shape[-2:]
        mask = torch.ones(n_q, n_k, dtype=torch.bool).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


@pytest.mark.parametrize(
    "shape_q, shape_kv, causal",
    [
        ((2, 3, 5, 4), (2, 3, 7, 4), False),
        ((1, 4, 6, 8), (1, 2, 6, 8), True),  # grouped queries, causal
        ((3, 9, 4), (3, 9, 4), False),  # 3-D: torch takes the unfused (math) path
    ],
)
def test_fused_cpu_attention_counts_as_its_unfused_form(
    shape_q: tuple[int, ...], shape_kv: tuple[int, ...], causal: bool
) -> None:
    torch.manual_seed(0)
    q = torch.randn(*shape_q, requires_grad=True)
    k = torch.randn(*shape_kv, requires_grad=True)
    v = torch.randn(*shape_kv, requires_grad=True)
    gqa = {"enable_gqa": True} if shape_q[-3] != shape_kv[-3] else {}
    with flop_counter() as counter:
        F.scaled_dot_product_attention(q, k, v, is_causal=causal, **gqa).sum().backward()
    ops = set(counter.get_flop_counts()["Global"])
    fused_ran = aten._scaled_dot_product_flash_attention_for_cpu in ops
    assert fused_ran == (len(shape_q) == 4)
    fused = count_point(
        lambda: [F.scaled_dot_product_attention(q, k, v, is_causal=causal, **gqa).sum()],
        torch.device("cpu"),
    )
    unfused = count_point(lambda: [unfused_attention(q, k, v, causal).sum()], torch.device("cpu"))
    assert fused["fwd_flops"] == unfused["fwd_flops"] > 0
    assert fused["bwd_flops"] == unfused["bwd_flops"] == 2 * fused["fwd_flops"]


def test_multihead_attention_counts_its_attention() -> None:
    """nn.MultiheadAttention (need_weights=False: the fused path): projections plus
    attention, quadratic in the sequence length."""
    torch.manual_seed(0)
    e, heads, b = 8, 2, 3
    mha = nn.MultiheadAttention(e, heads, batch_first=True)

    def count(n: int) -> tuple[int, int]:
        x = torch.randn(b, n, e)
        c = count_point(lambda: [mha(x, x, x, need_weights=False)[0].sum()], torch.device("cpu"))
        return c["fwd_flops"], c["bwd_flops"]

    for n in (4, 16):
        projections = 2 * b * n * e * (3 * e) + 2 * b * n * e * e  # in_proj, out_proj
        attention = 2 * (2 * b * n * n * e)  # q·kᵀ and weights·v over all heads
        assert count(n)[0] == projections + attention


def test_cuda_attention_backward_formula_leaves_out_the_recomputation() -> None:
    from torch.utils.flop_counter import sdpa_backward_flop_count

    q, k, v, g = (2, 4, 5, 8), (2, 2, 7, 8), (2, 2, 7, 6), (2, 4, 5, 6)
    recompute = 2 * (2 * 4) * 5 * 8 * 7  # q·kᵀ once more
    torchs = sdpa_backward_flop_count(g, q, k, v)
    assert flops.attention_backward_flop(g, q, k, v) == torchs - recompute
    name = "_scaled_dot_product_flash_attention_backward"
    assert EXTRA_FLOP_FORMULAS[getattr(aten, name)] is flops.attention_backward_flop
