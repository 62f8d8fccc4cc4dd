"""The backward weighted by what each node computes (:mod:`trainbench.measure.span`): work, span,
the simulated P-processor schedule, and the closed forms of every built-in model."""

from __future__ import annotations

import random

import pytest
import torch

from trainbench.core import vocabulary
from trainbench.experiments.builtin import EXPERIMENTS
from trainbench.measure import span
from trainbench.measure.point import count_point
from trainbench.measure.span import Dag, heights, schedule, summary
from trainbench.models import mlp_heads, rnn_lm, ugcnn

CPU = torch.device("cpu")


def _counted(roots_of) -> tuple[Dag, int]:
    """The DAG and the counter's total of one backward of ``roots_of()``'s roots."""
    from trainbench.measure.point import flop_counter

    roots = roots_of()
    with flop_counter() as counter:
        dag = span.record_backward(roots, counter)
    return dag, counter.get_total_flops()


def _product_flops(n: int) -> int:
    return 2 * 2 * n * n * n  # a product's backward node: two products of n × n by n × n


# --------------------------------------------------------------------------- recorded graphs


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_a_chain_of_equal_products_has_span_equal_to_work(k: int) -> None:
    n = 6
    torch.manual_seed(0)
    weights = [torch.randn(n, n, requires_grad=True) for _ in range(k)]
    x = torch.randn(n, n, requires_grad=True)

    def roots() -> list[torch.Tensor]:
        h = x
        for w in weights:
            h = h @ w
        return [h.sum()]

    dag, total = _counted(roots)
    assert total == k * _product_flops(n)
    assert sum(dag.flops) == total
    assert span.span(dag, dag.flops) == total
    assert schedule(dag, dag.flops, 16) == total  # no processor can help a chain


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_independent_products_summed_have_the_span_of_one(k: int) -> None:
    n = 6
    torch.manual_seed(0)
    pairs = [(torch.randn(n, n, requires_grad=True), torch.randn(n, n, requires_grad=True))
             for _ in range(k)]  # fmt: skip

    def roots() -> list[torch.Tensor]:
        return [torch.stack([(a @ b).sum() for a, b in pairs]).sum()]

    dag, total = _counted(roots)
    assert total == k * _product_flops(n)
    assert sum(dag.flops) == total
    assert span.span(dag, dag.flops) == _product_flops(n)
    assert schedule(dag, dag.flops, k) == _product_flops(n)  # one processor each
    assert schedule(dag, dag.flops, 1) == total


def test_several_roots_give_disjoint_parts_whose_span_is_the_largest() -> None:
    n = 4
    torch.manual_seed(0)
    w = [torch.randn(n, n, requires_grad=True) for _ in range(3)]
    x = torch.randn(n, n)

    def roots() -> list[torch.Tensor]:
        h1 = x @ w[0]  # x needs no gradient: one product's worth
        h2 = h1 @ w[1]
        return [h1.sum(), (h2 @ w[2]).sum()]

    dag, total = _counted(roots)
    assert len(dag.roots) == 2
    one = 2 * n**3
    # the first call: one; the second: two full nodes and the first layer again
    assert total == one + (2 * 2 * one + one)
    assert span.span(dag, dag.flops) == 2 * 2 * one + one


def test_the_nodes_costs_add_up_to_the_counted_backward_of_every_model() -> None:
    options = {
        "mlp-heads": {"width": 4, "batch": 2, "in_dim": 3},
        "rnn-lm": {"cell": "gru-torch-fast", "vocab": 5, "hidden": 3, "batch": 2},
        "ugcnn": {"channels": 2, "image_size": 4, "batch": 2, "kernel": 3},
    }
    for name, opts in options.items():
        exp = EXPERIMENTS[name]
        for variant in exp.variants:
            c = count_point(exp.forward(variant.name, 4, opts, CPU, torch.float32), CPU)
            assert c["span_flops"] is not None and 0 < c["span_flops"] <= c["bwd_flops"]
            assert c["span_bytes"] is not None and 0 < c["span_bytes"] <= c["bwd_bytes"]
            ts = [c["schedule"][col] for col in vocabulary.SCHEDULE_COLUMNS]
            assert c["bwd_flops"] >= ts[0] and ts == sorted(ts, reverse=True)
            assert ts[-1] >= c["span_flops"]


# --------------------------------------------------------------------------- the schedule


def _random_dag(rng: random.Random) -> Dag:
    """A random DAG: node i hands to some of the nodes after it (a backward graph's order)."""
    n = rng.randint(1, 40)
    dag = Dag()
    density = rng.choice([0.05, 0.2, 0.5])
    for i in range(n):
        kids = [j for j in range(i + 1, n) if rng.random() < density]
        dag.add(rng.choice([0, 1, rng.randint(1, 1000)]), rng.randint(0, 50), kids)
    return dag


def test_simulated_machines_keep_brents_bounds_on_random_dags() -> None:
    rng = random.Random(15)
    for _ in range(400):
        dag = _random_dag(rng)
        work, depth = sum(dag.flops), span.span(dag, dag.flops)
        assert schedule(dag, dag.flops, 1) == work  # T_1 = W
        assert schedule(dag, dag.flops, len(dag)) == depth  # T_∞ = S
        for p in (2, 3, 4, 8, 16):
            t = schedule(dag, dag.flops, p)
            assert max(-(-work // p), depth) <= t  # max(W/P, S) <= T_P
            assert p * t <= (work - depth) + p * depth  # T_P <= (W - S)/P + S


def test_heights_are_the_costliest_path_below_each_node() -> None:
    dag = Dag()
    for cost, kids in [(1, [1, 2]), (5, [3]), (2, [3]), (7, [])]:
        dag.add(cost, 0, kids)
    assert heights(dag, dag.flops) == [13, 12, 9, 7]
    out = summary(dag)
    assert out["span_flops"] == 13 and out["sched_p2_flops"] == 13
    assert out["bwd_bytes"] == 0 and out["span_bytes"] == 0


def test_a_10000_deep_chain_needs_no_recursion() -> None:
    dag = Dag()
    for i in range(10_000):
        dag.add(1, 1, [i + 1] if i < 9_999 else [])
    assert span.span(dag, dag.flops) == 10_000 == schedule(dag, dag.flops, 4)


def test_a_machine_without_processors_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one processor"):
        schedule(Dag(), [], 0)


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("cell", rnn_lm.CELLS)
def test_rnn_span_flops_follow_the_closed_form_for_lengths_1_to_16(cell: str) -> None:
    B, V, H = 2, 5, 3
    options = {"cell": cell, "vocab": V, "hidden": H, "batch": B}
    exp = EXPERIMENTS["rnn-lm"]
    spans = []
    for T in range(1, 17):
        c = count_point(exp.forward("full", T, options, CPU, torch.float32), CPU)
        assert c["span_flops"] == rnn_lm.span_flops(T, V, H, B, cell), T
        spans.append(c["span_bytes"])
    if cell not in rnn_lm.SCAN_ROUNDS:
        # a step's bytes along the costliest path are the same every step from T = 4 on
        # (the scan's path changes shape with each added round: see test_ugrnn_x)
        assert len({b - a for a, b in zip(spans[3:], spans[4:], strict=False)}) == 1
    for T in (1, 2, 5):  # the per-step control's costliest call is the last step's
        c = count_point(exp.forward("per-step", T, options, CPU, torch.float32), CPU)
        assert c["span_flops"] == rnn_lm.span_flops(T, V, H, B, cell), T


def test_without_recurrence_the_span_is_flat_while_the_work_grows() -> None:
    B, V, H = 2, 5, 3
    assert {rnn_lm.span_flops(T, V, H, B, "none") for T in range(2, 40)} == {
        4 * B * V * H + 4 * B * H * H
    }
    assert rnn_lm.span_flops(9, V, H, B, "ugrnn") - rnn_lm.span_flops(8, V, H, B, "ugrnn") == (
        4 * B * H * H
    )


@pytest.mark.parametrize("variant", ["full", "per-head"])
def test_mlp_heads_span_flops_follow_the_closed_form_for_depths_1_to_16(variant: str) -> None:
    w, b, d = 3, 2, 5
    exp = EXPERIMENTS["mlp-heads"]
    for L in range(1, 17):
        c = count_point(exp.forward(variant, L, {"width": w, "batch": b, "in_dim": d}, CPU,
                                    torch.float32), CPU)  # fmt: skip
        assert c["span_flops"] == mlp_heads.span_flops(L, w, b, d), L


@pytest.mark.parametrize("impl", ["einsum", "conv"])
def test_ugcnn_span_flops_follow_the_closed_form(impl: str) -> None:
    C, X, k, b = 2, 4, 3, 2
    options = {"channels": C, "image_size": X, "batch": b, "kernel": k, "impl": impl}
    exp = EXPERIMENTS["ugcnn"]
    for L in range(1, 9):
        c = count_point(exp.forward("full", L, options, CPU, torch.float32), CPU)
        assert c["span_flops"] == ugcnn.span_flops(L, C, k, X, b), L
    c = count_point(exp.forward("per-head", 4, options, CPU, torch.float32), CPU)
    assert c["span_flops"] == ugcnn.span_flops(4, C, k, X, b)


# --------------------------------------------------------------------------- the run's files


def _rnn_run(tmp_path, cell: str = "none", **kw):
    from trainbench.harness.runner import SweepConfig, run_sweep

    cfg = SweepConfig(min_size=1, max_size=8, options={"cell": cell, "vocab": 5, "hidden": 3,
                      "batch": 2}, repeats=1, max_passes=1, min_time=0.0, threads=1,
                      control=False)  # fmt: skip
    return run_sweep(EXPERIMENTS["rnn-lm"], cfg, out_dir=tmp_path, **kw)


def test_a_run_writes_reads_back_and_resumes_its_spans(tmp_path) -> None:
    import pandas as pd

    from trainbench.results.reading import read_run

    result = _rnn_run(tmp_path)
    folder = tmp_path / "rnn-lm-none"
    table = pd.read_csv(folder / "measurements.csv")
    for _, row in table.iterrows():
        assert row["span_flops"] == rnn_lm.span_flops(int(row["size"]), 5, 3, 2, "none")
        assert row["sched_p16_flops"] <= row["sched_p2_flops"] <= row["bwd_flops"]
        assert row["span_flops"] <= row["sched_p16_flops"]
    summary, points, _ = read_run(folder)
    assert points["span_bytes"].notna().all() and points["bwd_bytes"].notna().all()
    assert {"P4-none-span-flops"} <= {c["id"] for c in result.claims}
    again = _rnn_run(tmp_path, resume=True)  # nothing left to measure: kept as it was
    assert [p["span_flops"] for p in again.points] == [p["span_flops"] for p in result.points]
    assert [p["sched_p4_flops"] for p in again.points] == table["sched_p4_flops"].tolist()


def test_a_run_without_spans_reads_back_fits_and_plots_without_them(tmp_path, monkeypatch) -> None:
    import pandas as pd

    import trainbench.measure.point
    from trainbench.harness.analysis import fit_points
    from trainbench.report.pages import render_run
    from trainbench.results.reading import read_run

    _rnn_run(tmp_path / "with")
    made = render_run(tmp_path / "with" / "rnn-lm-none", tmp_path / "report")[0]
    assert any(p.name == "rnn-lm-none-schedule.png" for p, _ in made)
    # a torch whose counter cannot charge calls to nodes: the span columns are empty
    monkeypatch.setattr(trainbench.measure.point, "CHARGES_NODES", False)
    result = _rnn_run(tmp_path / "without")
    folder = tmp_path / "without" / "rnn-lm-none"
    assert all(p["span_flops"] is None and p["sched_p2_flops"] is None for p in result.points)
    assert all(p["graph_depth"] > 0 and p["bwd_flops"] > 0 for p in result.points)
    assert not any(f["metric"] in vocabulary.SPAN_METRICS for f in result.fits)
    # one note says why, none per metric
    said = [n for n in result.notes if "span" in n or "bwd_bytes" in n]
    assert len(said) == 1 and said[0].startswith("span not recorded at full at T = 1, ")
    assert "cannot charge calls to nodes" in said[0]
    assert {c["id"]: c["verdict"] for c in result.claims}["P4-none-span-flops"] == "inconclusive"
    plots = render_run(folder, tmp_path / "report-without")[0]
    assert plots and not any(p.name.endswith("-schedule.png") for p, _ in plots)
    # a file written before the columns existed reads back with them empty
    table = pd.read_csv(folder / "measurements.csv")
    table.drop(columns=[*vocabulary.SPAN_METRICS, *vocabulary.SCHEDULE_COLUMNS]).to_csv(
        folder / "measurements.csv", index=False
    )
    _, points, samples = read_run(folder, as_set=False)
    assert points["span_flops"].isna().all() and points["sched_p16_flops"].isna().all()
    records = points.astype(object).where(points.notna(), None).to_dict("records")
    fits, notes = fit_points(records, samples.to_dict("records"))
    assert ("full", "graph_depth") in fits
    assert not any(metric in vocabulary.SPAN_METRICS for _, metric in fits)


def test_the_points_table_shows_the_span_where_a_run_has_it(tmp_path, monkeypatch) -> None:
    import trainbench.measure.point
    from trainbench.cli.render import points_table

    def headers(result) -> list[str]:
        table = points_table({"experiment": "rnn-lm", "points": result.points}, "T")
        return [str(c.header) for c in table.columns]

    assert "span FLOPs" in headers(_rnn_run(tmp_path / "with"))
    monkeypatch.setattr(trainbench.measure.point, "CHARGES_NODES", False)
    assert "span FLOPs" not in headers(_rnn_run(tmp_path / "without"))


@pytest.mark.parametrize("reentrant", [True, False])
def test_checkpointed_blocks_are_charged_to_the_node_that_recomputes_them(reentrant) -> None:
    from torch.utils.checkpoint import checkpoint

    n, k = 8, 4
    torch.manual_seed(0)
    weights = [torch.randn(n, n, requires_grad=True) for _ in range(k)]
    x = torch.randn(2, n, requires_grad=True)

    def roots() -> list[torch.Tensor]:
        h = x
        for w in weights:
            h = checkpoint(lambda a, b: torch.tanh(a @ b), h, w, use_reentrant=reentrant)
        return [h.sum()]

    dag, total = _counted(roots)
    # each block: its forward again (2·2·n·n) and its backward (2 · 2·2·n·n), in a chain
    assert total == k * 3 * 2 * 2 * n * n
    assert sum(dag.flops) == total and span.span(dag, dag.flops) == total


# --------------------------------------------------------------------------- split schedule


def test_levels_are_the_longest_path_from_a_root() -> None:
    dag = Dag()
    for kids in ([1, 2], [3], [3], [4], []):  # a diamond, then a tail: 0 -> {1, 2} -> 3 -> 4
        dag.add(1, 0, kids)
    assert span.levels(dag) == [0, 1, 1, 2, 3]
    late = Dag()  # a node found early but reached by a longer path: its level is that path's
    for kids in ([3, 1], [2], [3], []):
        late.add(1, 0, kids)
    assert span.levels(late) == [0, 1, 2, 3]
    backwards = Dag()  # indices against the edges' order, and two roots (two backward calls)
    for kids in ([], [0], [1], [0], [3, 2]):  # 4 -> {3, 2}; 2 -> 1 -> 0; 3 -> 0
        backwards.add(1, 0, kids)
    backwards.add(1, 0, [1])  # a second root, 5 -> 1
    assert span.levels(backwards) == [3, 2, 1, 1, 0, 0]
    cycle = Dag()
    for kids in ([1], [0]):
        cycle.add(1, 0, kids)
    with pytest.raises(ValueError, match="cycle"):
        span.levels(cycle)


def test_split_schedule_divides_each_level_over_the_processors() -> None:
    dag = Dag()
    for cost, kids in [(10, [1, 2]), (7, [3]), (5, [3]), (0, [4]), (3, [])]:
        dag.add(0, cost, kids)
    costs = dag.bytes
    assert span.split_schedule(dag, costs, 1) == sum(costs)  # T_1 = W
    assert span.split_schedule(dag, costs, 4) == 3 + 3 + 0 + 1  # ⌈10/4⌉ + ⌈12/4⌉ + 0 + ⌈3/4⌉
    assert span.split_schedule(dag, costs, None) == 3  # the levels that cost anything
    assert span.split_schedule(dag, costs, 10**9) == 3
    for p in (1, 2, 3, 5, 8):  # Brent: W/P <= T_P <= W/P + levels
        t = span.split_schedule(dag, costs, p)
        assert sum(costs) / p <= t <= sum(costs) / p + 4
    with pytest.raises(ValueError, match="at least one processor"):
        span.split_schedule(dag, costs, 0)
