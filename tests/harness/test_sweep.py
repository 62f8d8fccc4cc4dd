"""The sweep: grid, visiting order, incremental files, fits and claims of a real tiny run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from trainbench.claims.parse import run_claims, shipped_claims
from trainbench.experiments.builtin import EXPERIMENTS
from trainbench.harness.prepare import plan, resolve_device, size_grid
from trainbench.harness.runner import SweepConfig, SweepError, run_sweep
from trainbench.models import mlp_heads
from trainbench.results.schema import FORMAT_VERSION, POINT_COLUMNS

pytestmark = pytest.mark.slow  # real sweeps or real processes

EXP = EXPERIMENTS["mlp-heads"]
TINY = {"width": 8, "batch": 4, "in_dim": 3, "activation": "sigmoid", "impl": "einsum"}


def _cfg(**kw) -> SweepConfig:
    base = dict(
        min_size=1, max_size=16, options=TINY, repeats=1, max_passes=1, min_time=0.0, threads=1
    )
    return SweepConfig(**(base | kw))


def test_size_grid_is_geometric_and_keeps_both_ends() -> None:
    assert size_grid(1, 128) == [1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 128]
    assert size_grid(5, 5) == [5]
    assert size_grid(3, 10, ratio=2.0) == [3, 6, 10]
    for bad in ((0, 4), (8, 4)):
        with pytest.raises(SweepError):
            size_grid(*bad)


def test_plan_is_shuffled_reproducible_and_honours_the_control_cap() -> None:
    cfg = _cfg(max_size=128, control_max_size=32)
    order = plan(EXP, cfg)
    assert order == plan(EXP, cfg)
    assert order != plan(EXP, _cfg(max_size=128, control_max_size=32, seed=1))
    assert order != sorted(order)
    assert {s for v, s in order if v == "full"} == set(size_grid(1, 128))
    # the O(n²) control gets every other size up to its cap, counting down from the cap
    assert sorted(s for v, s in order if v == "per-head") == [2, 4, 8, 16, 32]
    assert {v for v, _ in plan(EXP, _cfg(control=False))} == {"full"}


def test_device_names() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(SweepError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(SweepError, match="no CUDA"):
            resolve_device("cuda")


def test_a_tiny_run_end_to_end(tmp_path: Path) -> None:
    result = run_sweep(EXP, _cfg(), out_dir=tmp_path)
    folder = tmp_path / "mlp-heads"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary == json.loads(json.dumps(summary))  # plain JSON
    assert summary["complete"] is True and result.complete
    assert summary["format_version"] == FORMAT_VERSION
    sizes = size_grid(1, 16)
    assert summary["config"]["sizes"] == sizes
    table = pd.read_csv(folder / "measurements.csv")
    assert list(table.columns) == list(POINT_COLUMNS)
    assert len(table) == len(sizes) + 4
    control_sizes = [2, 4, 8, 16]  # every other size, counting down from the largest
    assert set(zip(table.variant, table["size"], strict=True)) == {("full", s) for s in sizes} | {
        ("per-head", s) for s in control_sizes
    }
    full = table[table.variant == "full"].set_index("size")
    for L in sizes:
        assert full.loc[L, "bwd_flops"] == mlp_heads.flops_backward(L, 8, 4, 3)
        assert full.loc[L, "graph_nodes"] == mlp_heads.graph_nodes(L)
    samples = pd.read_csv(folder / "samples.csv")
    assert set(samples.phase) == {"fwd", "bwd"} and (samples.sample_s > 0).all()
    assert set(samples["round"]) == {0}  # --repeats 1: one round
    # every metric of every variant fitted; the exact counts read exactly
    fits = {(f["variant"], f["metric"]): f for f in summary["fits"]}
    assert fits[("full", "bwd_flops")]["exponent"] == 1.0
    assert fits[("full", "bwd_flops")]["exact"] is True
    assert fits[("per-head", "bwd_flops")]["exponent"] > 1.7
    assert ("full", "peak_bytes") not in fits  # not measured on CPU: never fitted
    claims = {c["id"]: c for c in summary["claims"]}
    assert set(claims) == {c.id for c in shipped_claims(EXP.name)}
    assert claims["P1b-flops"]["verdict"] == "confirmed"
    assert claims["P1b-memory"]["verdict"] == "confirmed"
    assert claims["P1b-control-flops"]["verdict"] == "confirmed"
    assert not any(c["partial"] for c in summary["claims"])


def test_no_control_leaves_the_time_claim_unconfirmed(tmp_path: Path) -> None:
    result = run_sweep(EXP, _cfg(control=False), out_dir=tmp_path)
    claims = {c["id"]: c for c in result.claims}
    assert "P1b-control" not in claims
    assert claims["P1b-flops"]["verdict"] == "inconclusive"
    assert "control was not measured" in claims["P1b-flops"]["reason"]


def test_an_interrupt_keeps_every_finished_point(tmp_path: Path) -> None:
    seen = []

    def stop_after_three(p) -> None:
        if p.finished:
            seen.append((p.variant, p.size))
            if len(seen) == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(EXP, _cfg(), out_dir=tmp_path, on_progress=stop_after_three)
    folder = tmp_path / "mlp-heads"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["complete"] is False
    assert {(p["variant"], p["size"]) for p in summary["points"]} == set(seen)
    assert any("interrupted" in n for n in summary["notes"])
    assert len(pd.read_csv(folder / "measurements.csv")) == 3
    assert all(f["partial"] for f in summary["fits"])


RNN = EXPERIMENTS["rnn-lm"]
RNN_TINY = {"cell": "ugrnn", "vocab": 11, "hidden": 8, "batch": 2}


def test_claims_follow_the_cell() -> None:
    recurrent = {c.id for c in run_claims(RNN.name, RNN_TINY)}
    assert recurrent == {"P4", "P4-flops", "P4-span", "P4-span-flops", "P4-memory", "P4-control",
                         "P4-control-flops"}  # fmt: skip
    for cell in ("ugrnn2", "gru", "gru-torch", "gru-torch-fast", "torch-gru"):
        assert {c.id for c in run_claims(RNN.name, RNN_TINY | {"cell": cell})} == recurrent
    none = {c.id for c in run_claims(RNN.name, RNN_TINY | {"cell": "none"})}
    assert none == {"P4-none", "P4-none-span", "P4-none-span-flops", "P4-none-per-step-flops"}
    # every control a claim names is tested in the same run
    for options in (RNN_TINY, RNN_TINY | {"cell": "none"}):
        ids = {c.id for c in run_claims(RNN.name, options)}
        assert all(c.control in ids for c in run_claims(RNN.name, options) if c.control)
    assert {c.id for c in run_claims(EXP.name, TINY)} == {c.id for c in shipped_claims(EXP.name)}


def test_an_rnn_run_goes_to_its_cells_folder_and_judges_its_cells_claims(tmp_path: Path) -> None:
    options = RNN_TINY | {"cell": "none"}
    result = run_sweep(RNN, _cfg(max_size=32, options=options, control=False), out_dir=tmp_path)
    summary = json.loads((tmp_path / "rnn-lm-none" / "summary.json").read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["rnn-lm-none"]
    assert summary["experiment"] == "rnn-lm"
    assert summary["config"]["cell"] == "none" and summary["config"]["options"] == options
    claims = {c["id"]: c for c in result.claims}
    assert set(claims) == {"P4-none", "P4-none-span", "P4-none-span-flops"}
    # the depth of a graph without recurrence is an exact constant
    assert claims["P4-none-span"]["verdict"] == "confirmed"
    assert claims["P4-none-span"]["exponent"] == 0.0
    # and so is its span in FLOPs, while its work grows as T
    assert claims["P4-none-span-flops"]["verdict"] == "confirmed", claims["P4-none-span-flops"]
    assert claims["P4-none-span-flops"]["exponent"] == 0.0


def test_flops_that_cannot_be_counted_are_none_and_never_fitted(tmp_path: Path) -> None:
    reason = "FLOPs not counted: a fused kernel"
    fused = dataclasses.replace(RNN, uncounted_flops=lambda options, device: reason)
    result = run_sweep(fused, _cfg(max_size=8, options=RNN_TINY, control=False), out_dir=tmp_path)
    assert all(p["fwd_flops"] is None and p["bwd_flops"] is None for p in result.points)
    assert all(p["gflops"] is None and p["efficiency"] is None for p in result.points)
    assert all(p["graph_nodes"] > 0 for p in result.points)  # the other counts still are
    assert reason in result.notes
    assert not any(f["metric"].endswith("_flops") for f in result.fits)
    flops_claim = next(c for c in result.claims if c["id"] == "P4-flops")
    assert flops_claim["verdict"] == "inconclusive"
    table = pd.read_csv(tmp_path / "rnn-lm-ugrnn" / "measurements.csv")
    assert table["bwd_flops"].isna().all()


def test_options_left_out_take_the_experiments_defaults(tmp_path: Path) -> None:
    options = {"vocab": 11, "hidden": 8, "batch": 2}  # no cell: the default, ugrnn
    result = run_sweep(RNN, _cfg(max_size=4, options=options, control=False), out_dir=tmp_path)
    assert result.config["options"] == options | {"cell": "ugrnn"}
    assert (tmp_path / "rnn-lm-ugrnn" / "summary.json").is_file()
    assert {c["id"] for c in result.claims} == {"P4", "P4-flops", "P4-span", "P4-span-flops",
                                                "P4-memory"}  # fmt: skip
    with pytest.raises(SweepError, match="unknown option 'cels'"):
        run_sweep(RNN, _cfg(max_size=4, options=options | {"cels": "gru"}), out_dir=tmp_path)


def test_points_below_the_fit_window_stop_after_the_first_passes(tmp_path: Path) -> None:
    # L = 1..64: the window holds L = 4..64 (within 16x of the largest, at least 8 sizes)
    cfg = _cfg(max_size=64, control=False, repeats=2, max_passes=4, precision=0.001)
    result = run_sweep(EXP, cfg, out_dir=tmp_path)
    rounds = {p["size"]: p["rounds"] for p in result.points}
    assert {n for n, r in rounds.items() if r == 2} == {1, 2, 3}
    assert {n for n, r in rounds.items() if r == 4} == set(size_grid(4, 64))
    assert result.schedule["passes"] == 4
    assert result.schedule["below_window_passes"] == 2
    assert any("fit window were timed in the first 2 passes only" in n for n in result.notes)
    fit = next(f for f in result.fits if f["metric"] == "bwd_s" and f["variant"] == "full")
    assert fit["fit_from"] == 4.0


def test_the_passes_wait_only_for_the_times_a_verdict_is_about() -> None:
    from trainbench.harness.passes import watched_metrics

    rnn = EXPERIMENTS["rnn-lm"]
    none = watched_metrics(rnn, dict(rnn.defaults) | {"cell": "none"}, None)
    # the per-step variant of the `none` cell has a FLOP claim only: its times decide nothing
    assert none == {"full": ("bwd_s",), "per-step": ()}
    assert watched_metrics(EXP, dict(EXP.defaults), None) == {
        "full": ("bwd_s",), "per-head": ("bwd_s",)
    }
    assert watched_metrics(EXP, dict(EXP.defaults), []) == {}  # no claims: the default
