"""trainbench.trainability.ensemble: members trained side by side are each the network
trained alone.

Every member is checked against a plain loop (torch.optim.SGD / Adam on one copy, the same
batches) to float32 rounding; a member that diverges stops and leaves the others as they
would have been; the curve's steps and per-head losses are checked by hand.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from torch import Tensor

from trainbench.models.mlp_heads import MLPHeads, MLPHeadsConfig
from trainbench.models.residual_mlp import PlainMLP
from trainbench.trainability import ensemble


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_heads(seed: int) -> MLPHeads:
    torch.manual_seed(seed)
    return MLPHeads(MLPHeadsConfig(3, 6, 4))


def draw(g: torch.Generator) -> tuple[Tensor, Tensor]:
    x = torch.randn(8, 4, generator=g)
    return x, torch.tanh(x.sum(dim=1) / 2)


def alone(seed: int, lr: float, steps: int, optimizer: str, loss: str) -> MLPHeads:
    """The same member trained by itself with torch.optim, on the batches its seed draws."""
    model = make_heads(seed)
    opt = (torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(1_000_003 * (seed + 1))
    for _ in range(steps):
        x, y = draw(g)
        mse = torch.stack([((p - y) ** 2).mean() for p in model.predictions(x)])
        opt.zero_grad()
        (mse.sum() if loss == "sum" else mse[-1]).backward()
        opt.step()
    return model


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("loss", ["sum", "top"])
def test_every_member_is_the_network_trained_alone(optimizer: str, loss: str) -> None:
    lrs = (0.05, 0.2) if optimizer == "sgd" else (1e-3, 1e-2)
    ms = ensemble.members(make_heads, (0, 1), lrs)
    assert ms.seeds == (0, 0, 1, 1) and ms.lrs == (lrs[0], lrs[1], lrs[0], lrs[1])
    ensemble.train(ms, draw, 6, optimizer, loss)
    assert ms.steps == 6
    for m, (seed, lr) in enumerate(zip(ms.seeds, ms.lrs, strict=True)):
        want = alone(seed, lr, 6, optimizer, loss)
        got = ms.member(m, torch.float32)
        for (name, p), (_, q) in zip(want.named_parameters(), got.named_parameters(), strict=True):
            assert torch.allclose(p, q, rtol=1e-5, atol=1e-6), (m, name)


def test_a_seeds_members_start_alike_and_seeds_differ() -> None:
    ms = ensemble.members(make_heads, (0, 1), (0.1, 0.3))
    w = ms.params["model.W_hh.0"]
    assert torch.equal(w[0], w[1]) and torch.equal(w[2], w[3])
    assert not torch.equal(w[0], w[2])
    assert torch.equal(w[0], make_heads(0).W_hh[0].detach())


def test_the_curve_holds_every_heads_loss() -> None:
    ms = ensemble.members(make_heads, (0,), (0.1,))
    x, y = draw(torch.Generator().manual_seed(9))
    curve = ensemble.train(ms, draw, 7, "sgd", "sum", {"test": (x, y)}, eval_every=3)
    assert [p["step"] for p in curve] == [0, 3, 6, 7]
    model = ms.member(0, torch.float32)
    with torch.no_grad():
        want = [float(((p - y) ** 2).mean()) for p in model.predictions(x)]
    assert curve[-1]["test"][0] == pytest.approx(want, rel=1e-5)  # type: ignore[index]
    assert len(want) == 3


def test_a_diverged_member_stops_and_the_others_go_on() -> None:
    def make(seed: int) -> PlainMLP:
        torch.manual_seed(seed)
        return PlainMLP(3, 6, 4, "relu")

    ms = ensemble.members(make, (0,), (0.05, 1e6))
    x, y = draw(torch.Generator().manual_seed(9))
    curve = ensemble.train(ms, draw, 20, "sgd", "sum", {"test": (x, y)}, eval_every=10)
    assert ms.diverged.tolist() == [False, True]
    assert curve[-1]["test"][1] == [None]  # type: ignore[index]
    kept = curve[-1]["test"][0][0]  # type: ignore[index]
    assert kept is not None and math.isfinite(kept)
    fine = ensemble.members(make, (0,), (0.05,))
    ensemble.train(fine, draw, 20, "sgd")
    assert torch.allclose(fine.params["model.W_hh.0"][0], ms.params["model.W_hh.0"][0])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        ensemble.members(make_heads, (), (0.1,))
    ms = ensemble.members(make_heads, (0,), (0.1,))
    with pytest.raises(ValueError):
        ensemble.train(ms, draw, 1, "rmsprop")
    with pytest.raises(ValueError):
        ensemble.train(ms, draw, 1, "sgd", "mean")


def test_select_and_join_keep_each_member() -> None:
    ms = ensemble.members(make_heads, (0, 1), (0.05, 0.2))
    ensemble.train(ms, draw, 3, "adam")
    picked = ensemble.select(ms, [3, 0])
    assert picked.seeds == (1, 0) and picked.lrs == (0.2, 0.05) and picked.steps == 3
    assert torch.equal(picked.params["model.W_hh.0"][0], ms.params["model.W_hh.0"][3])
    assert torch.equal(picked.state["model.W_hh.0"]["m"][1], ms.state["model.W_hh.0"]["m"][0])
    both = ensemble.join(picked, ensemble.select(ms, [1]))
    assert both.seeds == (1, 0, 0) and both.size == 3
    # trained on from there, each member goes on as it would have alone
    ensemble.train(both, draw, 2, "adam")
    ensemble.train(ms, draw, 2, "adam")
    for got, want in ((0, 3), (1, 0), (2, 1)):
        assert torch.allclose(both.params["model.W_hh.1"][got], ms.params["model.W_hh.1"][want])
    with pytest.raises(ValueError):
        ensemble.join(both, ensemble.members(make_heads, (0,), (0.1,)))  # other steps taken
