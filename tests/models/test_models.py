"""Problem 1's MLP with a loss head per layer: shapes, equations, gradients."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from trainbench.models.mlp_heads import MLPHeads, MLPHeadsConfig, make_data


def _model(depth: int, impl: str = "einsum", activation: str = "sigmoid") -> MLPHeads:
    torch.manual_seed(0)
    cfg = MLPHeadsConfig(depth=depth, width=6, in_dim=4, activation=activation, impl=impl)
    return MLPHeads(cfg).double()


def _data(batch: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = make_data(batch, 4, generator=torch.Generator().manual_seed(1))
    return x.double(), y.double()


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_one_head_per_layer_and_parameter_shapes(depth: int) -> None:
    model = _model(depth)
    x, y = _data()
    losses = model(x, y)
    assert len(losses) == depth
    assert all(loss.shape == () for loss in losses)
    assert [tuple(w.shape) for w in model.W_hh] == [(6, 4)] + [(6, 6)] * (depth - 1)
    assert [tuple(b.shape) for b in model.B_hh] == [(6,)] * depth
    assert [tuple(w.shape) for w in model.W_hp] == [(6,)] * depth
    assert [tuple(b.shape) for b in model.B_hy] == [()] * depth


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_follows_the_equations(activation: str) -> None:
    """h_{l+1} = σ(W h_l − B), ŷ = W^p h − B^y, loss head = Σ_b (y − ŷ)², by hand."""
    model = _model(3, activation=activation)
    # Non-zero biases so the sign convention (− B) is tested.
    with torch.no_grad():
        for p in (*model.B_hh, *model.B_hy):
            p.uniform_(-1, 1)
    x, y = _data()
    sigma = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]
    h = x
    want = []
    for W, B, Wp, By in zip(model.W_hh, model.B_hh, model.W_hp, model.B_hy, strict=True):
        h = sigma(torch.stack([W @ h[b] for b in range(len(h))]) - B)
        y_hat = torch.stack([Wp @ h[b] for b in range(len(h))]) - By
        want.append(((y - y_hat) ** 2).sum())
    got = model(x, y)
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g, w, atol=1e-12, rtol=0)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_fused_computes_the_same_function(activation: str) -> None:
    ein = _model(4, "einsum", activation)
    fused = _model(4, "fused", activation)
    fused.load_state_dict(ein.state_dict())
    with torch.no_grad():
        for p in (*ein.B_hh, *ein.B_hy):
            p.uniform_(-1, 1)
        fused.load_state_dict(ein.state_dict())
    x, y = _data()
    for a, b in zip(ein(x, y), fused(x, y), strict=True):
        assert torch.allclose(a, b, atol=1e-12, rtol=0)
    # and the same gradients
    sum(ein(x, y)).backward()
    sum(fused(x, y)).backward()
    for pa, pb in zip(ein.parameters(), fused.parameters(), strict=True):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-10, rtol=0)


@pytest.mark.parametrize("impl", ["einsum", "fused"])
def test_gradcheck(impl: str) -> None:
    """Backward of the summed loss against finite differences (float64, tiny instance)."""
    model = _model(3, impl)
    x, y = _data(3)
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in model.parameters())

    def loss(*ps: torch.Tensor) -> torch.Tensor:
        return torch.stack(functional_call(model, dict(zip(names, ps, strict=True)), (x, y))).sum()

    assert torch.autograd.gradcheck(loss, params, eps=1e-6, atol=1e-5)


def test_each_head_only_depends_on_layers_below_it() -> None:
    model = _model(4)
    x, y = _data()
    losses = model(x, y)
    losses[1].backward()
    assert model.W_hh[0].grad is not None and model.W_hh[1].grad is not None
    assert model.W_hh[2].grad is None and model.W_hp[3].grad is None


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="activation"):
        MLPHeads(MLPHeadsConfig(depth=2, activation="swish"))
    with pytest.raises(ValueError, match="implementation"):
        MLPHeads(MLPHeadsConfig(depth=2, impl="cuda-graph"))


def test_generated_data_is_seeded() -> None:
    a = make_data(4, 3, generator=torch.Generator().manual_seed(5))
    b = make_data(4, 3, generator=torch.Generator().manual_seed(5))
    c = make_data(4, 3, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
