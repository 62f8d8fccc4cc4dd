"""Tests of Problem 4's RNN language model and its cells (:mod:`trainbench.models.rnn_lm`,
:mod:`trainbench.models.rnn_cells`).

Counts are exact: FLOPs, graph nodes and depth are compared with the closed forms.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainbench.measure.point import count_point
from trainbench.models import rnn_lm
from trainbench.models.rnn_cells import GRU, UGRNN, UGRNN2, GRUTorch, GRUTorchFast, NoRecurrence
from trainbench.models.rnn_lm import CELLS, RNNLM, RNNLMConfig, make_words

CPU = torch.device("cpu")
B, V, H = 2, 11, 8
LOOP_CELLS = ("ugrnn", "ugrnn2", "gru", "gru-torch", "none", "ugrnn-x")  # a loop over cell steps
SCAN = "ugrnn-x-scan"  # depth O(log T), saved bytes O(T log T): tests/test_ugrnn_x.py
CLOSED_FORM_CELLS = tuple(rnn_lm.GRAPH_SHAPE)  # every cell but torch-gru


def lm(length: int, cell: str, dtype: torch.dtype = torch.float32) -> tuple[RNNLM, torch.Tensor]:
    torch.manual_seed(0)
    model = RNNLM(RNNLMConfig(length=length, vocab=V, hidden=H, cell=cell)).to(dtype)
    words = make_words(B, length, V, generator=torch.Generator().manual_seed(1))
    return model, words


def counts(length: int, cell: str, per_step: bool) -> dict[str, int | None]:
    model, words = lm(length, cell)
    if per_step:
        return count_point(lambda: model(words), CPU)
    return count_point(lambda: [torch.stack(model(words)).sum()], CPU)


# --------------------------------------------------------------------------- the model


def test_loss_is_the_negative_log_likelihood_of_each_word() -> None:
    """The loss of w_t is Σ_b -ln softmax(e h[t-1])[w_t], with h[0] = h0 and x_t = e[w_t]."""
    T = 4
    model, words = lm(T, "ugrnn", torch.float64)
    with torch.no_grad():
        model.h0.normal_()
    losses = model(words)
    assert len(losses) == T
    h = model.h0.expand(B, H)
    for t in range(T):
        logp = torch.log_softmax(h @ model.e.t(), dim=1)
        want = -logp[torch.arange(B), words[:, t]].sum()
        torch.testing.assert_close(losses[t], want, rtol=1e-12, atol=1e-12)
        h = model.cell.step(h, model.e[words[:, t]])


def test_e_is_shared_between_input_and_output() -> None:
    model, words = lm(3, "ugrnn")
    names = {n for n, _ in model.named_parameters()}
    assert {"e", "h0"} <= names
    assert not any("embed" in n or "out" in n for n in names)
    torch.stack(model(words)).sum().backward()
    assert model.e.grad is not None and model.h0.grad is not None


def test_a_length_one_sentence_reads_no_word() -> None:
    model, words = lm(1, "ugrnn")
    (loss,) = model(words)
    loss.backward()
    assert all(p.grad is None for p in model.cell.parameters())
    torch.testing.assert_close(loss, torch.tensor(B * torch.log(torch.tensor(float(V))).item()))


def test_unknown_cell() -> None:
    with pytest.raises(ValueError, match="unknown cell"):
        RNNLM(RNNLMConfig(length=2, cell="lstm"))


# --------------------------------------------------------------------------- the cells


def ugrnn_by_hand(c: UGRNN, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    G = torch.sigmoid(h @ c.W_hG.T + x @ c.W_xG.T - c.B_G)
    R = torch.tanh(h @ c.W_hR.T + x @ c.W_xR.T - c.B_R)
    return G * h + (1 - G) * R


def ugrnn2_by_hand(c: UGRNN2, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    GR = torch.sigmoid(h @ c.W_hGR.T + x @ c.W_xGR.T - c.B_GR)
    R = torch.tanh(GR * (h @ c.W_hR.T - c.B_hR) + (1 - GR) * (x @ c.W_xR.T - c.B_xR))
    G = torch.sigmoid(h @ c.W_hG.T + x @ c.W_xG.T - c.B_G)
    return G * h + (1 - G) * R


def gru_by_hand(c: GRU, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Olah's diagram: r, z gates; h~ = tanh(W [r*h, x]); h = (1 - z) h + z h~, z = 1 - G^h."""
    r = torch.sigmoid(h @ c.W_hGR.T + x @ c.W_xGR.T - c.B_GR)
    z = 1 - torch.sigmoid(h @ c.W_hG.T + x @ c.W_xG.T - c.B_G)
    h_tilde = torch.tanh((r * h) @ c.W_hR.T + x @ c.W_xR.T - c.B_R)
    return (1 - z) * h + z * h_tilde


@pytest.mark.parametrize(
    ("cls", "by_hand"), [(UGRNN, ugrnn_by_hand), (UGRNN2, ugrnn2_by_hand), (GRU, gru_by_hand)]
)
def test_cell_matches_its_equations(cls: type, by_hand: object) -> None:
    torch.manual_seed(3)
    cell = cls(H).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_()
    h, x = torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    torch.testing.assert_close(cell.step(h, x), by_hand(cell, h, x), rtol=1e-12, atol=1e-12)


def test_gru_differs_from_gru_torch_only_in_where_the_reset_gate_acts() -> None:
    """With the same weights and zero biases the two conventions differ (r·(W h) ≠ W (r·h))."""
    torch.manual_seed(4)
    a, b = GRU(H).double(), GRUTorch(H).double()
    with torch.no_grad():
        for name, p in a.named_parameters():
            p.normal_()
            getattr(b, name if name != "B_R" else "B_xR").copy_(p)
    h, x = torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    assert (a.step(h, x) - b.step(h, x)).abs().max() > 1e-3
    # With the reset gate open (G^R = 1) the place where it acts no longer matters, and
    # the cells agree once gru-torch's two biases of R add up to gru's one.
    with torch.no_grad():
        a.B_GR.fill_(-1e3)
        b.B_GR.fill_(-1e3)
        b.B_hR.zero_()
    torch.testing.assert_close(a.step(h, x), b.step(h, x), rtol=1e-12, atol=1e-12)


def test_no_recurrence_ignores_the_state() -> None:
    cell = NoRecurrence(H)
    x = torch.randn(B, H)
    torch.testing.assert_close(cell.step(torch.randn(B, H), x), cell.step(torch.zeros(B, H), x))


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("cls", [GRUTorch, GRUTorchFast])
def test_gru_torch_agrees_with_nn_grucell(cls: type, dtype: torch.dtype, tol: float) -> None:
    """Weights copied from torch.nn.GRUCell; random inputs, states, several steps."""
    torch.manual_seed(5)
    hidden, steps = 16, 7
    ref = nn.GRUCell(hidden, hidden).to(dtype)
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0.0, 0.5)
    ours = cls(hidden).to(dtype).copy_from(ref)
    for _ in range(3):
        x = torch.randn(3, steps, hidden, dtype=dtype)
        h = torch.randn(3, hidden, dtype=dtype)
        want, h_ref = [], h
        for t in range(steps):
            h_ref = ref(x[:, t], h_ref)
            want.append(h_ref)
        got = ours.sequence(h, x)
        assert len(got) == steps
        err = max((g - w).abs().max().item() for g, w in zip(got, want, strict=True))
        assert err <= tol, err


def test_gru_torch_fast_computes_gru_torch_with_the_same_gradients() -> None:
    torch.manual_seed(6)
    slow = GRUTorch(H).double()
    with torch.no_grad():
        for p in slow.parameters():
            p.normal_(0.0, 0.5)
    fast = GRUTorchFast(H).double()
    fast.load_state_dict(slow.state_dict())
    x = torch.randn(B, 5, H, dtype=torch.float64)
    h0 = torch.randn(B, H, dtype=torch.float64)
    out_slow, out_fast = slow.sequence(h0, x), fast.sequence(h0, x)
    for a, b in zip(out_slow, out_fast, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.stack(out_slow).pow(2).sum().backward()
    torch.stack(out_fast).pow(2).sum().backward()
    for (name, p), q in zip(slow.named_parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_copy_from_refuses_a_mismatched_cell() -> None:
    with pytest.raises(ValueError, match="GRUCell"):
        GRUTorch(H).copy_from(nn.GRUCell(H + 1, H + 1))


@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck(cell: str) -> None:
    """Every parameter's gradient through the whole LM, against finite differences."""
    model, words = lm(3, cell, torch.float64)
    names, params = zip(*model.named_parameters(), strict=True)

    def loss(*values: torch.Tensor) -> torch.Tensor:
        state = dict(zip(names, values, strict=True))
        return torch.stack(torch.func.functional_call(model, state, (words,))).sum()

    inputs = tuple(p.detach().clone().requires_grad_(True) for p in params)
    # fast mode: the analytic and numerical Jacobians compared along random directions
    # (v^T J u), one finite difference per direction instead of one per parameter
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-5, fast_mode=True)


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("length", [1, 2, 3, 5, 8])
def test_flops_equal_the_formulas(cell: str, length: int) -> None:
    c = counts(length, cell, per_step=False)
    assert c["fwd_flops"] == rnn_lm.flops_forward(length, V, H, B, cell)
    assert c["bwd_flops"] == rnn_lm.flops_backward(length, V, H, B, cell)


@pytest.mark.parametrize("cell", [*LOOP_CELLS, SCAN])
@pytest.mark.parametrize("length", [1, 2, 3, 6])
def test_per_step_flops_equal_the_formula(cell: str, length: int) -> None:
    c = counts(length, cell, per_step=True)
    assert c["bwd_flops"] == rnn_lm.flops_backward_per_step(length, V, H, B, cell)


def test_flop_formulas_by_hand() -> None:
    """The formulas' numbers for one case, worked out by hand (B=2, V=11, H=8, T=3)."""
    head, ugrnn_step = 2 * 2 * 11 * 8, 4 * 2 * 2 * 8 * 8  # 352 and 1024
    assert rnn_lm.flops_forward(3, V, H, B, "ugrnn") == 3 * head + 2 * ugrnn_step
    assert rnn_lm.flops_backward(3, V, H, B, "ugrnn") == 2 * (3 * head + 2 * ugrnn_step)
    # per step: the losses of w_1, w_2, w_3 reach 0, 1 and 2 cell steps
    assert rnn_lm.flops_backward_per_step(3, V, H, B, "ugrnn") == 2 * (3 * head + 3 * ugrnn_step)


@pytest.mark.parametrize("cell", CLOSED_FORM_CELLS)
@pytest.mark.parametrize("length", [1, 2, 3, 4, 7, 16])
def test_graph_follows_its_closed_form(cell: str, length: int) -> None:
    full = counts(length, cell, per_step=False)
    assert full["graph_nodes"] == rnn_lm.graph_nodes(length, cell)
    assert full["graph_depth"] == rnn_lm.graph_depth(length, cell)
    split = counts(length, cell, per_step=True)
    assert split["graph_nodes"] == rnn_lm.graph_nodes(length, cell, per_step=True)
    assert split["graph_depth"] == rnn_lm.graph_depth(length, cell, per_step=True)


@pytest.mark.parametrize("cell", [c for c in CELLS if c not in ("none", SCAN)])
def test_recurrence_makes_the_critical_path_grow_by_a_fixed_amount_per_step(cell: str) -> None:
    depths = [counts(T, cell, per_step=False)["graph_depth"] for T in (4, 8, 12)]
    assert depths[2] - depths[1] == depths[1] - depths[0] > 0


def test_without_recurrence_the_depth_is_constant() -> None:
    depths = {counts(T, "none", per_step=False)["graph_depth"] for T in (2, 5, 17, 40)}
    assert depths == {rnn_lm.graph_depth(2, "none")}


def test_torch_gru_on_cpu_counts_the_same_flops_as_gru_torch() -> None:
    """On CPU nn.GRU runs as separate products, which the counter sees."""
    assert counts(5, "torch-gru", False)["fwd_flops"] == counts(5, "gru-torch", False)["fwd_flops"]
    assert counts(5, "torch-gru", False)["bwd_flops"] == counts(5, "gru-torch", False)["bwd_flops"]


@pytest.mark.parametrize("cell", [c for c in CELLS if c != SCAN])
def test_saved_bytes_grow_by_a_fixed_amount_per_step(cell: str) -> None:
    saved = [counts(T, cell, per_step=False)["saved_bytes"] for T in (3, 4, 5, 9)]
    step = saved[1] - saved[0]
    assert step > 0
    assert saved[2] - saved[1] == step
    assert saved[3] - saved[2] == 4 * step


def test_memory_estimate_covers_what_is_saved() -> None:
    for cell in CELLS:
        c = counts(16, cell, per_step=False)
        assert rnn_lm.memory_bytes(16, V, H, B, cell) > 2 * (c["saved_bytes"] or 0)
