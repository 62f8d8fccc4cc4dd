"""What the harness counts at one point: FLOPs, graph nodes and depth, saved bytes."""

from __future__ import annotations

import pytest
import torch

from trainbench.experiments.builtin import EXPERIMENTS
from trainbench.measure.graph import graph_stats
from trainbench.measure.point import count_point, flop_counter, measure_point
from trainbench.measure.timing import matmul_rate
from trainbench.models import mlp_heads

CPU = torch.device("cpu")
EXP = EXPERIMENTS["mlp-heads"]
SHAPES = [(1, 8, 4, 3), (2, 16, 5, 7), (5, 32, 2, 4), (9, 12, 3, 12)]  # (L, width, batch, in_dim)


def _counts(
    variant: str,
    depth: int,
    width: int,
    batch: int,
    in_dim: int,
    impl: str = "einsum",
    dtype: torch.dtype = torch.float32,
) -> dict:
    options = {"width": width, "batch": batch, "in_dim": in_dim, "impl": impl}
    counts = count_point(EXP.forward(variant, depth, options, CPU, dtype), CPU)
    return counts


@pytest.mark.parametrize("impl", ["einsum", "fused"])
@pytest.mark.parametrize(("depth", "width", "batch", "in_dim"), SHAPES)
def test_flops_equal_the_hand_derived_formula(impl, depth, width, batch, in_dim) -> None:
    full = _counts("full", depth, width, batch, in_dim, impl)
    per_head = _counts("per-head", depth, width, batch, in_dim, impl)
    assert full["fwd_flops"] == mlp_heads.flops_forward(depth, width, batch, in_dim)
    assert full["bwd_flops"] == mlp_heads.flops_backward(depth, width, batch, in_dim)
    assert per_head["fwd_flops"] == mlp_heads.flops_forward(depth, width, batch, in_dim)
    assert per_head["bwd_flops"] == mlp_heads.flops_backward_per_head(depth, width, batch, in_dim)


@pytest.mark.parametrize("impl", ["einsum", "fused"])
@pytest.mark.parametrize("depth", [1, 2, 3, 6, 17])
def test_graph_nodes_and_depth_equal_their_closed_forms(impl: str, depth: int) -> None:
    full = _counts("full", depth, 8, 2, 3, impl)
    per_head = _counts("per-head", depth, 8, 2, 3, impl)
    assert full["graph_nodes"] == mlp_heads.graph_nodes(depth, impl)
    assert full["graph_depth"] == mlp_heads.graph_depth(depth, impl)
    assert per_head["graph_nodes"] == mlp_heads.graph_nodes(depth, impl, per_head=True)
    assert per_head["graph_depth"] == mlp_heads.graph_depth(depth, impl, per_head=True)


@pytest.mark.parametrize(("dtype", "itemsize"), [(torch.float32, 4), (torch.float64, 8)])
def test_saved_bytes_grow_exactly_linearly(dtype: torch.dtype, itemsize: int) -> None:
    saved = [_counts("full", L, 16, 4, 5, dtype=dtype)["saved_bytes"] for L in range(1, 8)]
    steps = {b - a for a, b in zip(saved[:-1], saved[1:], strict=True)}
    assert steps == {itemsize * (4 * 16 + 4)}  # one h_l and one residual per layer
    assert saved == [mlp_heads.saved_bytes(L, 16, 4, 5, itemsize) for L in range(1, 8)]
    # the control keeps the same activations: it does more work, not more memory
    assert _counts("per-head", 7, 16, 4, 5, dtype=dtype)["saved_bytes"] == saved[-1]


def test_graph_walk_survives_a_10000_deep_graph() -> None:
    w = torch.ones((), requires_grad=True)
    x = w
    for _ in range(10_000):
        x = x * 1.0001
    stats = graph_stats([x])
    assert stats.depth == 10_001  # 10,000 MulBackward0 and the AccumulateGrad of w
    assert stats.nodes == 10_001
    assert len(stats.leaves) == 1 and stats.leaves[0] is w


def test_graph_of_several_roots_counts_each_call() -> None:
    """Nodes are summed over backward calls; depth is the longest single call."""
    w = torch.ones((), requires_grad=True)
    a = w * 2  # Mul, Acc
    b = a * 3  # Mul
    stats = graph_stats([a, b])
    assert stats.nodes == 2 + 3
    assert stats.depth == 3


def test_a_loss_without_grad_is_refused() -> None:
    with pytest.raises(ValueError, match="grad_fn"):
        graph_stats([torch.ones(())])


def test_matrix_vector_products_are_counted() -> None:
    a, x = torch.randn(5, 7), torch.randn(7)
    with flop_counter() as counter:
        torch.mv(a, x)
        torch.addmv(torch.zeros(5), a, x)
    assert counter.get_total_flops() == 2 * (2 * 5 * 7)


def test_counts_are_identical_across_runs_with_the_same_seed() -> None:
    a = _counts("per-head", 6, 16, 4, 5)
    b = _counts("per-head", 6, 16, 4, 5)
    assert a == b


def test_per_head_backward_takes_longer_than_full() -> None:
    """A ratio with a generous bound, never an absolute time: at L = 24 the per-head
    control does (L+1)/2 ≈ 12x the backward matrix FLOPs of the full backward."""
    options = {"width": 64, "batch": 16, "in_dim": 8}
    times = {}
    for variant in ("full", "per-head"):
        m = measure_point(
            EXP.forward(variant, 24, options, CPU, torch.float32),
            device=CPU,
            threads=1,
            rounds=3,
            min_time=0.02,
        )
        assert len(m.bwd.samples) >= 3 and min(m.bwd.samples) > 0
        times[variant] = m.bwd.median
    assert times["per-head"] > 3 * times["full"]


def test_matmul_rate_is_a_plausible_flop_rate() -> None:
    rate = matmul_rate(32, 64, 64, device=CPU, dtype=torch.float32, threads=1)
    assert 1e6 < rate < 1e14
