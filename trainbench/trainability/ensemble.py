"""Train copies of one network side by side: one member per (seed, learning rate).

The members' parameters are stacked along a leading axis and the network runs under
``torch.func.vmap``, so M small networks cost about one kernel launch per op instead
of M (a 32-wide layer is a few µs of arithmetic: the runs here are bound by launches).
Each member is exactly the network trained alone. Its loss depends on its own
parameters only, so the gradient of the members' summed loss with respect to member
m's parameters is member m's own gradient; SGD and Adam act elementwise, each member
with its own learning rate. A member whose loss is not finite is marked diverged and
no longer updated; the others go on.

Members with the same seed start from the same initial weights and draw the same
training batches: the learning rates of a seed are compared on equal terms.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

OPTIMIZERS = ("sgd", "adam")
LOSSES = ("sum", "top")  # the sum of every head's loss (Problem 1's), or the top head's
# a batch: (inputs, targets) drawn from a generator
Draw = Callable[[torch.Generator], tuple[Tensor, Tensor]]


class _Predictions(nn.Module):
    """A model's predictions, one row per head, bottom to top: [heads, batch]."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack(self.model.predictions(x))  # type: ignore[operator]


@dataclass
class Members:
    """Stacked copies of one network; member m is (``seeds[m]``, ``lrs[m]``)."""

    params: dict[str, Tensor]
    base: nn.Module  # the network's structure (on the meta device)
    seeds: tuple[int, ...]
    lrs: tuple[float, ...]
    diverged: Tensor  # [M] bool
    steps: int = 0  # training steps taken
    state: dict[str, dict[str, Tensor]] = field(default_factory=dict)  # Adam's moments

    @property
    def size(self) -> int:
        return len(self.seeds)

    def member(self, m: int, dtype: torch.dtype = torch.float64) -> nn.Module:
        """Member m as a plain module (a copy, in ``dtype``)."""
        model = copy.deepcopy(self.base.model).to_empty(device="cpu")  # type: ignore[union-attr]
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(self.params[f"model.{name}"][m])
        return model.to(dtype)


def members(
    make: Callable[[int], nn.Module], seeds: Sequence[int], lrs: Sequence[float]
) -> Members:
    """A member for every seed and learning rate: ``make(seed)`` builds the network."""
    if not seeds or not lrs:
        raise ValueError("members: name at least one seed and one learning rate")
    by_seed = {s: _Predictions(make(s)) for s in seeds}
    order = [(s, lr) for s in seeds for lr in lrs]
    params, _ = stack_module_state([by_seed[s] for s, _ in order])
    base = copy.deepcopy(by_seed[seeds[0]]).to("meta")
    return Members(
        params={k: v.detach().clone() for k, v in params.items()},
        base=base,
        seeds=tuple(s for s, _ in order),
        lrs=tuple(float(lr) for _, lr in order),
        diverged=torch.zeros(len(order), dtype=torch.bool),
    )


def select(ms: Members, index: Sequence[int]) -> Members:
    """The members ``index`` (copies), with their optimiser state."""
    idx = torch.tensor(list(index), dtype=torch.long)
    return Members(
        params={k: v[idx].clone() for k, v in ms.params.items()},
        base=ms.base,
        seeds=tuple(ms.seeds[i] for i in index),
        lrs=tuple(ms.lrs[i] for i in index),
        diverged=ms.diverged[idx].clone(),
        steps=ms.steps,
        state={n: {k: v[idx].clone() for k, v in st.items()} for n, st in ms.state.items()},
    )


def join(first: Members, second: Members) -> Members:
    """One ensemble of both (the same network, trained as many steps)."""
    if first.steps != second.steps or set(first.params) != set(second.params):
        raise ValueError("join: the ensembles differ in network or in steps taken")
    return Members(
        params={k: torch.cat([v, second.params[k]]) for k, v in first.params.items()},
        base=first.base,
        seeds=first.seeds + second.seeds,
        lrs=first.lrs + second.lrs,
        diverged=torch.cat([first.diverged, second.diverged]),
        steps=first.steps,
        state={n: {k: torch.cat([v, second.state[n][k]]) for k, v in st.items()}
               for n, st in first.state.items()},  # fmt: skip
    )


def predictions(ms: Members, x: Tensor, per_member: bool = False) -> Tensor:
    """[M, heads, batch]: every member's heads on ``x`` (shared, or [M, ...] per member)."""

    def one(p: dict[str, Tensor], xs: Tensor) -> Tensor:
        return functional_call(ms.base, p, (xs,))

    return vmap(one, in_dims=(0, 0 if per_member else None))(ms.params, x)


def head_losses(ms: Members, x: Tensor, y: Tensor) -> list[list[float | None]]:
    """Each member's mean squared error per head on (x, y); None for a diverged member
    (or a loss that is not finite)."""
    with torch.no_grad():
        mse = ((predictions(ms, x) - y) ** 2).mean(dim=-1)
    out: list[list[float | None]] = []
    for m, row in enumerate(mse.tolist()):
        bad = bool(ms.diverged[m]) or not all(math.isfinite(v) for v in row)
        out.append([None] * len(row) if bad else row)
    return out


def train(
    ms: Members,
    draw: Draw,
    steps: int,
    optimizer: str = "sgd",
    loss: str = "sum",
    evaluate: Mapping[str, tuple[Tensor, Tensor]] | None = None,
    eval_every: int = 100,
) -> list[dict[str, object]]:
    """Take ``steps`` steps for every member; return the curve: at step 0 (of this call)
    and every ``eval_every`` steps (and the last), each member's per-head losses on each
    batch of ``evaluate`` ({"step": s, name: [M][heads]})."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}")
    names = list(ms.params)
    for p in ms.params.values():
        p.requires_grad_(True)
    lr = torch.tensor(ms.lrs)
    # one generator per seed; a seed's members see the same batches
    seeds = list(dict.fromkeys(ms.seeds))
    gens = {s: torch.Generator().manual_seed(1_000_003 * (s + 1) + ms.steps) for s in seeds}
    index = torch.tensor([seeds.index(s) for s in ms.seeds])

    def member_loss(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        mse = ((functional_call(ms.base, p, (x,)) - y) ** 2).mean(dim=-1)
        return mse.sum() if loss == "sum" else mse[-1]

    batched = vmap(member_loss)
    curve = [_evaluate(ms, evaluate or {})]
    for step in range(1, steps + 1):
        drawn = [draw(gens[s]) for s in seeds]
        x = torch.stack([d[0] for d in drawn])[index]
        y = torch.stack([d[1] for d in drawn])[index]
        losses = batched(ms.params, x, y)
        finite = torch.isfinite(losses.detach())
        ms.diverged |= ~finite
        alive = ~ms.diverged
        total = torch.where(alive, losses, torch.zeros_like(losses)).sum()
        grads = torch.autograd.grad(total, [ms.params[n] for n in names])
        with torch.no_grad():
            for n, g in zip(names, grads, strict=True):
                shape = (-1,) + (1,) * (g.dim() - 1)
                g = torch.where(alive.view(shape), g, torch.zeros_like(g))
                if optimizer == "sgd":
                    ms.params[n].sub_(lr.view(shape) * g)
                else:
                    _adam(ms, n, g, lr.view(shape), alive.view(shape))
        ms.steps += 1
        if evaluate and (step % eval_every == 0 or step == steps):
            curve.append(_evaluate(ms, evaluate))
    for p in ms.params.values():
        p.requires_grad_(False)
    return curve


def _adam(ms: Members, name: str, g: Tensor, lr: Tensor, alive: Tensor,
          betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:  # fmt: skip
    """One Adam step (torch.optim.Adam's defaults), elementwise, with each member's rate."""
    state = ms.state.setdefault(name, {})
    if not state:
        state["m"] = torch.zeros_like(g)
        state["v"] = torch.zeros_like(g)
    m, v = state["m"], state["v"]
    m.mul_(betas[0]).add_(g, alpha=1 - betas[0])
    v.mul_(betas[1]).addcmul_(g, g, value=1 - betas[1])
    t = ms.steps + 1
    m_hat = m / (1 - betas[0] ** t)
    v_hat = v / (1 - betas[1] ** t)
    step = lr * m_hat / (v_hat.sqrt() + eps)
    ms.params[name].sub_(torch.where(alive, step, torch.zeros_like(step)))


def _evaluate(ms: Members, batches: Mapping[str, tuple[Tensor, Tensor]]) -> dict[str, object]:
    return {"step": ms.steps} | {k: head_losses(ms, x, y) for k, (x, y) in batches.items()}
