"""The x-only UGRNN (beyond Problem 4): its equations, and the time loop and the prefix
scan computing the same function with the counts of their closed forms."""

import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from trainbench.experiments.builtin import EXPERIMENTS
from trainbench.measure.graph import graph_stats
from trainbench.measure.point import count_point
from trainbench.models import rnn_lm
from trainbench.models.rnn_cells import UGRNNX, UGRNNXScan

H, B = 4, 3
CPU = torch.device("cpu")


def test_a_step_is_the_ugrnn_without_h_in_the_gate_and_the_update() -> None:
    torch.manual_seed(0)
    cell = UGRNNX(H).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_()
    h, x = torch.randn(B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    R = torch.tanh(x @ cell.W_xR.T - cell.B_R)
    G = torch.sigmoid(x @ cell.W_xG.T - cell.B_G)
    torch.testing.assert_close(cell.step(h, x), G * h + (1 - G) * R, rtol=1e-12, atol=1e-12)
    assert {n for n, _ in cell.named_parameters()} == {"W_xR", "B_R", "W_xG", "B_G"}


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 9, 17, 63])
def test_scan_equals_the_loop_in_values_and_gradients(n: int) -> None:
    torch.manual_seed(n)
    loop = UGRNNX(H).double()
    scan = UGRNNXScan(H).double()
    scan.load_state_dict(loop.state_dict())
    h0 = torch.randn(B, H, dtype=torch.float64)
    x = torch.randn(B, n, H, dtype=torch.float64)
    inputs = {}
    outputs = {}
    for name, cell in (("loop", loop), ("scan", scan)):
        inputs[name] = (h0.clone().requires_grad_(True), x.clone().requires_grad_(True))
        outputs[name] = cell.sequence(*inputs[name])
    assert len(outputs["loop"]) == len(outputs["scan"]) == n
    if n == 0:
        return
    weights = torch.randn(n, B, H, dtype=torch.float64)
    for name in ("loop", "scan"):
        (torch.stack(outputs[name]) * weights).sum().backward()
    for a, b in zip(outputs["loop"], outputs["scan"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    for (name, p), q in zip(loop.named_parameters(), scan.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-10, msg=name)
    for a, b in zip(inputs["loop"], inputs["scan"], strict=True):  # dL/dh0 and dL/dx
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-10)


def test_scan_gradcheck() -> None:
    torch.manual_seed(0)
    scan = UGRNNXScan(H).double()
    h0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    x = torch.randn(B, 6, H, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h, x: torch.stack(scan.sequence(h, x)), (h0, x))


def test_the_rounds_are_the_ceiling_of_log2_of_the_steps() -> None:
    assert [rnn_lm.scan_rounds(T) for T in (1, 2)] == [0, 0]
    for T in range(3, 1025):
        assert rnn_lm.scan_rounds(T) == math.ceil(math.log2(T - 1)), T


def _counts(cell: str, T: int, variant: str = "full") -> dict:
    options = {"cell": cell, "vocab": 5, "hidden": H, "batch": B}
    forward = EXPERIMENTS["rnn-lm"].forward(variant, T, options, CPU, torch.float32)
    return count_point(forward, CPU)


# the scan at every length 1..64 (its depth steps at each power of two); the loop, whose
# closed form is a line, at the lengths that pin a line and its ends
LENGTHS = {"ugrnn-x-scan": list(range(1, 65)), "ugrnn-x": [*range(1, 10), 16, 33, 64]}
# the whole count (FLOP span included: the span's recording is the costly part) where a
# round is added or a line is pinned; the graph walk alone at every other length
COUNTED = {1, 2, 3, 4, 5, 6, 9, 10, 16, 17, 33, 64}


def _graph(cell: str, T: int) -> tuple[int, int]:
    options = {"cell": cell, "vocab": 5, "hidden": H, "batch": B}
    stats = graph_stats(EXPERIMENTS["rnn-lm"].forward("full", T, options, CPU, torch.float32)())
    return stats.nodes, stats.depth


@pytest.mark.parametrize("cell", sorted(LENGTHS))
def test_depth_and_span_follow_their_closed_forms_for_lengths_1_to_64(cell: str) -> None:
    """The scan's critical path: 30 + 4·⌈log₂(T-1)⌉ nodes from T = 2 on; the loop's
    26 + 2·(T-1). The FLOP span is the same for both (the recurrence weighs no FLOPs)."""
    for T in LENGTHS[cell]:
        if T in COUNTED:
            c = _counts(cell, T)
            nodes, depth = c["graph_nodes"], c["graph_depth"]
            assert c["span_flops"] == rnn_lm.span_flops(T, 5, H, B, cell), (cell, T)
        else:
            nodes, depth = _graph(cell, T)
        assert depth == rnn_lm.graph_depth(T, cell), (cell, T)
        assert nodes == rnn_lm.graph_nodes(T, cell), (cell, T)
        if T >= 2:
            rounds = math.ceil(math.log2(T - 1)) if T > 2 else 0
            expected = 30 + 4 * rounds if cell == "ugrnn-x-scan" else 26 + 2 * (T - 1)
            assert rnn_lm.graph_depth(T, cell) == expected, (cell, T)


@pytest.mark.parametrize("T", [1, 2, 3, 6, 9])
def test_per_step_graphs_follow_their_closed_forms(T: int) -> None:
    for cell in ("ugrnn-x", "ugrnn-x-scan"):
        c = _counts(cell, T, "per-step")
        assert c["graph_nodes"] == rnn_lm.graph_nodes(T, cell, per_step=True), (cell, T)
        assert c["graph_depth"] == rnn_lm.graph_depth(T, cell, per_step=True), (cell, T)


def test_the_scan_saves_two_boxes_per_step_per_round_more_than_the_loop() -> None:
    """Its extra work, O(T log T): every round keeps its (a, v) for the backward, B·H
    floats per step each, besides one more box per step (the stacked v)."""
    box = B * H * 4  # float32
    for T in (1, 2, 3, 4, 5, 9, 17, 33, 64):
        loop, scan = _counts("ugrnn-x", T)["saved_bytes"], _counts("ugrnn-x-scan", T)["saved_bytes"]
        assert scan - loop == box * (T - 1) * (1 + 2 * rnn_lm.scan_rounds(T)), T


def test_the_memory_estimate_covers_what_the_scan_saves() -> None:
    for T in (2, 17, 64):
        saved = _counts("ugrnn-x-scan", T)["saved_bytes"]
        assert rnn_lm.memory_bytes(T, 5, H, B, "ugrnn-x-scan") > 2 * saved


def _bench() -> Any:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "scan_vs_loop.py"
    spec = importlib.util.spec_from_file_location("scan_vs_loop", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_scan_against_loop_benchmark_reads_the_graph_it_records() -> None:
    """Its depth is the closed form's, T_1 is the work, T_∞ at most the depth; and the scan
    does more work but, of the lengths 2, 12 and 33, has fewer levels at 12 and 33."""
    bench = _bench()
    rows = [bench.record(cell, T) for cell in ("ugrnn-x", "ugrnn-x-scan") for T in (2, 12, 33)]
    for r in rows:
        assert r["graph_depth"] == rnn_lm.graph_depth(int(r["T"]), str(r["cell"])), r
        assert r["split_p1"] == r["bwd_elements"]
        assert r["split_pinf"] <= r["graph_depth"]
    by = {(r["cell"], r["T"]): r for r in rows}
    assert by["ugrnn-x-scan", 33]["bwd_elements"] > 2 * by["ugrnn-x", 33]["bwd_elements"]
    assert by["ugrnn-x-scan", 33]["split_pinf"] < by["ugrnn-x", 33]["split_pinf"]
    cross = {c["P"]: c for c in bench.crossovers(rows)}
    assert cross["1"]["scan_faster_from_T"] == ""  # never, on one processor
    assert cross["∞"]["scan_faster_from_T"] == 12 and cross["∞"]["scan_faster_up_to_T"] == 33
