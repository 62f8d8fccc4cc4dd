"""``trainbench.sweep``: a test-local linear and quadratic model get their classes right on the
exact counts, the result's views and files, built-ins through the same path, failures."""

from __future__ import annotations

import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest
import targets_for_tests as T
import torch
from cli_helpers import invoke
from matplotlib.figure import Figure

import trainbench
import trainbench.harness.runner
from trainbench.api import ClaimVerdict, SweepResult
from trainbench.core.settings import SweepError
from trainbench.core.vocabulary import COUNT_METRICS
from trainbench.experiments.target import TargetError
from trainbench.results.reading import read_run
from trainbench.results.schema import POINT_COLUMNS
from trainbench.stats.fit import fit_order

pytestmark = pytest.mark.slow  # real sweeps or real processes

SIZES = [4, 8, 16, 32, 64]
FAST = {"repeats": 1, "max_passes": 1, "min_time": 0.002, "reference": "64", "threads": 1}
COUNTS = ["fwd_flops", "bwd_flops", "graph_nodes", "graph_depth", "saved_bytes"]


@pytest.fixture(scope="module")
def linear() -> SweepResult:
    """A chain of n fixed-width layers: FLOPs linear in n."""
    return trainbench.sweep(T.chain, SIZES, claim="O(n)", metric="bwd_flops", **FAST)


@pytest.fixture(scope="module")
def quadratic() -> SweepResult:
    """Self-attention over n tokens: FLOPs quadratic in n."""
    return trainbench.sweep(T.attention, SIZES, claim="O(n^2)", metric="bwd_flops", **FAST)


def _fit(result: SweepResult, metric: str) -> dict:
    rows = result.fits[result.fits.metric == metric]
    assert len(rows) == 1, result.fits
    return rows.iloc[0].to_dict()


# ----------------------------------------------------------------------------- classes


@pytest.mark.parametrize("metric", ["fwd_flops", "bwd_flops"])
def test_linear_model_flops_are_linear(linear: SweepResult, metric: str) -> None:
    fit = _fit(linear, metric)
    assert fit["best_class"] == "n"
    assert fit["exponent"] == pytest.approx(1.0, abs=0.01)
    assert fit["poly_degree"] == 1 and fit["exact"]


@pytest.mark.parametrize("metric", ["fwd_flops", "bwd_flops"])
def test_quadratic_model_flops_are_quadratic(quadratic: SweepResult, metric: str) -> None:
    fit = _fit(quadratic, metric)
    assert fit["best_class"] == "n^2"
    assert fit["exponent"] == pytest.approx(2.0, abs=0.05)
    assert fit["poly_degree"] == 2


def test_verdicts_on_flops(linear: SweepResult, quadratic: SweepResult) -> None:
    for metric in ("bwd_flops", "fwd_flops"):
        assert linear.verdict("O(n)", metric=metric).verdict == "confirmed"
        assert linear.verdict("O(n^2)", metric=metric).verdict == "refuted"
        assert linear.verdict("O(n log n)", metric=metric).verdict == "refuted"
        assert quadratic.verdict("O(n^2)", metric=metric).verdict == "confirmed"
        assert quadratic.verdict("O(n)", metric=metric).verdict == "refuted"
        assert quadratic.verdict("O(n log n)", metric=metric).verdict == "refuted"
    v = quadratic.verdict("O(n^2)", metric="bwd_flops")
    assert isinstance(v, ClaimVerdict)
    assert (v.claim, v.metric, v.variant, v.best_class) == ("O(n^2)", "bwd_flops", "model", "n^2")
    assert v.exponent == pytest.approx(2.0, abs=0.05) and v.ci_low <= v.exponent <= v.ci_high
    assert "confirmed" in str(v)


def test_the_claim_of_the_sweep_is_judged(linear: SweepResult, quadratic: SweepResult) -> None:
    for result, order in ((linear, "O(n)"), (quadratic, "O(n²)")):
        claims = result.claims
        assert list(claims["id"]) == ["claim"]
        row = claims.iloc[0]
        assert row["verdict"] == "confirmed"
        assert (row["metric"], row["variant"]) == ("bwd_flops", "model")
        assert row["expected"] == order


def test_the_chain_graph_grows_with_its_depth(linear: SweepResult) -> None:
    for metric in ("graph_nodes", "graph_depth"):
        assert _fit(linear, metric)["poly_degree"] == 1
    assert _fit(linear, "saved_bytes")["best_class"] == "n"


def test_verdict_rejects_bad_claims(linear: SweepResult) -> None:
    with pytest.raises(SweepError, match="--claim"):
        linear.verdict("O(n log m)", metric="bwd_flops")
    with pytest.raises(SweepError, match="--metric"):
        linear.verdict("O(n)", metric="wall_s")
    assert linear.verdict("O(n)", metric="bwd_flops", variant="nope").verdict == "inconclusive"


# ----------------------------------------------------------------------------- points


def test_points_columns_and_efficiency(linear: SweepResult) -> None:
    points = linear.points
    assert list(points.columns) == list(POINT_COLUMNS)
    assert sorted(points["size"]) == SIZES and set(points["variant"]) == {"model"}
    for column in ("efficiency", "gflops", "fwd_s", "bwd_s"):
        values = points[column].astype(float)
        assert np.isfinite(values).all() and (values > 0).all(), (column, values)
    assert (points["rounds"] == 1).all()
    for metric in COUNT_METRICS:
        assert (points[metric] > 0).all(), metric
    samples = linear.samples
    assert set(samples["phase"]) == {"fwd", "bwd"} and (samples["sample_s"] > 0).all()


def test_counts_are_the_same_across_sweeps_with_the_same_seed(linear: SweepResult) -> None:
    again = trainbench.sweep(T.chain, SIZES, **FAST)
    a = linear.points.sort_values("size")[["size", *COUNTS]].reset_index(drop=True)
    b = again.points.sort_values("size")[["size", *COUNTS]].reset_index(drop=True)
    assert a.equals(b)


def test_fit_order_on_plain_arrays() -> None:
    n = np.array([16, 32, 64, 128, 256, 512, 1024], dtype=float)
    fit = fit_order(n, 3.0 * n**1.5)
    assert fit.exponent == pytest.approx(1.5, abs=0.01)
    rng = np.random.default_rng(0)
    noisy = [list(3.0 * s**1.5 * (1 + 0.02 * rng.standard_normal(4))) for s in n]
    fit = fit_order(n, noisy)
    assert fit.exponent == pytest.approx(1.5, abs=0.05)
    assert fit.ci_low <= 1.5 <= fit.ci_high


# ----------------------------------------------------------------------------- files


def test_save_report_round_trip(linear: SweepResult, tmp_path: Path) -> None:
    folder = linear.save(tmp_path / "runs")
    assert folder == tmp_path / "runs" / "chain" and linear.folder == folder
    assert {p.name for p in folder.iterdir()} == {"summary.json", "measurements.csv", "samples.csv"}
    result = invoke("report", folder, "--out", tmp_path / "report")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    report = (tmp_path / "report" / "report.md").read_text()
    assert "backward FLOPs of chain (model): O(n)" in report
    assert "confirmed" in report
    pngs = sorted((tmp_path / "report" / "plots").glob("*.png"))
    assert len(pngs) >= 4
    for png in pngs:
        image = matplotlib.image.imread(png)
        assert image.ndim == 3 and image.shape[0] > 10 and image.shape[1] > 10
        assert f"plots/{png.name}" in report


def test_plot(linear: SweepResult, tmp_path: Path) -> None:
    fig = linear.plot("flops")
    assert isinstance(fig, Figure)
    plt.close(fig)
    path = tmp_path / "time.png"
    fig = linear.plot("time", path)
    assert isinstance(fig, Figure) and path.is_file()
    assert matplotlib.image.imread(path).ndim == 3
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown plot"):
        linear.plot("colours")


def test_out_writes_the_run_as_it_goes(tmp_path: Path) -> None:
    result = trainbench.sweep(T.spec("linear"), [2, 4, 8], out=tmp_path, **FAST)
    assert result.name == "linear" and result.folder == tmp_path / "linear"
    assert (tmp_path / "linear" / "summary.json").is_file()
    assert result.summary["complete"] is True
    assert result.summary["config"]["options"]["target"] == T.spec("linear")


# ----------------------------------------------------------------------------- built-ins


def test_builtin_runs_through_the_same_path_and_judges_its_claims() -> None:
    result = trainbench.sweep(
        "mlp-heads", [1, 2, 4, 8], options={"width": 8, "batch": 4, "in_dim": 4}, **FAST
    )
    assert result.name == "mlp-heads" and result.experiment.name == "mlp-heads"
    assert set(result.points["variant"]) == {"full", "per-head"}
    ids = set(result.claims["id"])
    assert {"P1b", "P1b-flops", "P1b-graph", "P1b-memory"} <= ids
    verdicts = dict(zip(result.claims["id"], result.claims["verdict"], strict=True))
    # exact counts over 1..8 (4 sizes, 8x): the claims without a control are confirmed
    assert verdicts["P1b-graph"] == "confirmed"
    assert verdicts["P1b-memory"] == "confirmed"
    assert result.verdict("O(n)", metric="bwd_flops").verdict == "confirmed"
    assert result.verdict("O(n)", metric="bwd_flops", variant="full").variant == "full"


def test_builtin_with_a_claim_judges_it_beside_its_own() -> None:
    from trainbench.api import claims_for
    from trainbench.experiments.builtin import EXPERIMENTS

    claims = claims_for(EXPERIMENTS["mlp-heads"], "O(n)", metric="graph_nodes")
    assert claims is not None and claims[0].id == "claim" and len(claims) > 1
    assert claims_for(EXPERIMENTS["mlp-heads"], None) is None


# ----------------------------------------------------------------------------- contract


def test_a_factory_with_a_device_keyword_gets_a_torch_device() -> None:
    seen: list[object] = []

    def on_device(n: int, device: torch.device):
        seen.append(device)
        w = torch.randn(4, 4, device=device, requires_grad=True)
        x = torch.randn(n, 4, device=device)
        return lambda: (x @ w).sum()

    result = trainbench.sweep(on_device, [2, 4], device="cpu", **FAST)
    assert seen and all(isinstance(d, torch.device) and d.type == "cpu" for d in seen)
    assert not any("no device argument" in n for n in result.summary["notes"])


def test_a_target_that_raises_from_some_size_on() -> None:
    result = trainbench.sweep(T.raises_from_8, [2, 4, 8, 16], **FAST)
    summary = result.summary
    assert summary["complete"] is True
    assert sorted(result.points["size"]) == [2, 4]
    (failed,) = summary["failed_points"]
    assert (failed["size"], failed["oom"], failed["variant"]) == (8, False, "model")
    assert "raises_from_8(8) raised RuntimeError" in failed["reason"]
    assert any("n = 8 failed" in note and "16" in note for note in summary["notes"])


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"target": 3}, TargetError, "neither a function"),
        ({"target": "nocolon"}, TargetError, "TARGET"),
        ({"target": T.raises}, TargetError, "raises(2) raised ValueError"),
        ({"target": T.vector}, TargetError, "not a scalar"),
        ({"sizes": [0, 2]}, SweepError, "at least 1"),
        ({"sizes": [2.5]}, SweepError, "whole numbers"),
        ({"sizes": "4:2"}, TargetError, "--sizes"),
        ({"name": "rnn-lm"}, TargetError, "--name"),
        ({"claim": "O(wat)"}, SweepError, "--claim"),
        ({"claim": "O(n)", "metric": "nope"}, SweepError, "--metric"),
        ({"claim": "O(n)", "tolerance": 0}, SweepError, "--tolerance"),
        ({"options": {"width": 3}}, SweepError, "unknown option"),
        ({"device": "tpu"}, SweepError, "unknown device"),
    ],
)
def test_bad_arguments_fail_before_measuring(
    kwargs: dict, error: type, words: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def no_sweep(*args: object, **kw: object) -> None:
        raise AssertionError("measured")

    monkeypatch.setattr(trainbench.harness.runner, "run_sweep", no_sweep)
    args = {"target": T.linear, "sizes": [2, 4]} | kwargs
    with pytest.raises(error) as info:
        trainbench.sweep(args.pop("target"), args.pop("sizes"), out=tmp_path, **args)
    assert words in str(info.value)
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- --compile


@pytest.fixture(scope="module")
def compiled() -> tuple[SweepResult, float]:
    start = time.perf_counter()
    result = trainbench.sweep(T.linear, [2, 4, 8], compile=True, **FAST)
    return result, time.perf_counter() - start


def test_compile_records_the_compile_and_the_speedup(
    compiled: tuple[SweepResult, float],
) -> None:
    result, seconds = compiled
    print(f"compile sweep of 3 sizes: {seconds:.1f} s")
    points = result.summary["points"]
    assert len(points) == 3 and result.summary["config"]["compile"] is True
    for p in points:
        if p["compiled"]:
            assert p["compile_s"] > 0 and p["compile_note"] is None
        else:
            assert isinstance(p["compile_note"], str) and p["compile_note"]
        assert isinstance(p["speedup"], float) and math.isfinite(p["speedup"])
        assert p["speedup"] > 0 and p["eager_s"] > 0
    eager = trainbench.sweep(T.linear, [2, 4, 8], **FAST)
    cols = ["size", *COUNTS]
    a = result.points.sort_values("size")[cols].reset_index(drop=True)
    b = eager.points.sort_values("size")[cols].reset_index(drop=True)
    assert a.equals(b)


def test_compile_columns_reach_the_points_dataframe(compiled: tuple[SweepResult, float]) -> None:
    result, _ = compiled
    points = result.points
    for column in ("compiled", "compile_s", "eager_s", "speedup", "compile_note"):
        assert column in points.columns, column
    assert points["speedup"].astype(float).gt(0).all()


# ----------------------------------------------------------------------------- CUDA


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_sweep_measures_peak_bytes() -> None:
    def on_device(n: int, device: torch.device):
        w = torch.randn(64, 64, device=device, requires_grad=True)
        x = torch.randn(n, 64, device=device)
        return lambda: torch.tanh(x @ w).sum()

    result = trainbench.sweep(on_device, [8, 16, 32, 64], device="cuda", **FAST)
    assert result.summary["environment"]["device"] == "cuda"
    peak = result.points["peak_bytes"].astype(float)
    assert np.isfinite(peak).all() and (peak > 0).all()
    assert result.verdict("O(n)", metric="bwd_flops").verdict == "confirmed"


def test_api_input_is_checked_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="--dtype"):
        trainbench.sweep(T.linear, [2, 4, 8], dtype="float16")
    with pytest.raises(SweepError, match="at most 200 sizes"):
        trainbench.sweep(T.linear, list(range(1, 300)))
    with pytest.raises(SweepError, match="cannot be fitted"):
        trainbench.sweep(T.linear, [2, 4, 8], claim="O(n^5)")


def test_save_keeps_an_earlier_run(tmp_path: Path) -> None:
    fast = {"repeats": 1, "max_passes": 1, "min_time": 0.002, "reference": "64", "threads": 1}
    first = trainbench.sweep(T.linear, [2, 4, 8], **fast).save(tmp_path)
    trainbench.sweep(T.linear, [2, 4], **fast).save(tmp_path)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("linear.")]
    assert len(kept) == 1
    assert sorted(read_run(kept[0])[1]["size"]) == [2, 4, 8]
    assert sorted(read_run(first)[1]["size"]) == [2, 4]


def test_an_importable_factory_is_named_by_module_and_name() -> None:
    fast = {"repeats": 1, "max_passes": 1, "min_time": 0.002, "reference": "64", "threads": 1}
    result = trainbench.sweep(T.linear, [2, 4, 8], **fast)
    assert result.run.config["options"]["target"] == "targets_for_tests:linear"


def test_a_time_claim_is_judged_beside_its_flops() -> None:
    from trainbench.api import user_claim

    assert user_claim("O(n^2)", "m").work_metric == "bwd_flops"
    assert user_claim("O(n)", "m", metric="fwd_s").work_metric == "fwd_flops"
    assert user_claim("O(n)", "m", metric="bwd_flops").work_metric is None  # a count itself


def test_max_memory_takes_the_sizes_the_cli_takes() -> None:
    import targets_for_tests as T

    from trainbench.core.settings import SweepError

    result = trainbench.sweep(T.linear, [2, 4, 8], max_memory="8GiB", **FAST)
    assert result.summary["config"]["max_memory"] == 8 * 2**30
    with pytest.raises(SweepError, match="max_memory: expected a size such as 8GiB"):
        trainbench.sweep(T.linear, [2, 4, 8], max_memory="lots", **FAST)


def test_a_chains_span_is_its_work_and_is_plotted_and_judged(linear: SweepResult,
                                                             tmp_path: Path) -> None:  # fmt: skip
    points = linear.points
    assert (points["span_flops"] == points["bwd_flops"]).all()  # a chain: nothing beside it
    assert (points["sched_p16_flops"] == points["bwd_flops"]).all()
    assert linear.verdict("O(n)", metric="span_flops").verdict == "confirmed"
    path = tmp_path / "schedule.png"
    fig = linear.plot("schedule", path)
    assert isinstance(fig, Figure) and matplotlib.image.imread(path).ndim == 3
    plt.close(fig)
