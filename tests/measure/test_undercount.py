"""No silent undercount: the ops that do arithmetic with no FLOP formula are recorded per
point (a census of every op the counter has no formula for), the FLOP metrics of such a run
say "undercounted" in the points, the fits and the notes, and a FLOP claim on them is
inconclusive, never confirmed or refuted. Where the time grows faster than the counted
FLOPs, the reasons say so."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import trainbench
import trainbench.measure.counting as counting
from trainbench.claims.claim import Claim
from trainbench.harness.analysis import _disagreement, undercounted
from trainbench.measure.point import count_point, undercounted_text
from trainbench.stats.fit import fit_order

pytestmark = pytest.mark.slow  # real sweeps or real processes

aten = torch.ops.aten
FAST = {"repeats": 1, "max_passes": 1, "min_time": 0.002, "reference": "64", "threads": 1}
SIZES = [8, 16, 32, 64, 128]
HEADS, DIM = 2, 8


def sdpa(n: int):
    """The README's attention over n tokens, through F.scaled_dot_product_attention."""
    torch.manual_seed(0)
    q = torch.randn(1, HEADS, n, DIM, requires_grad=True)
    k = torch.randn(1, HEADS, n, DIM, requires_grad=True)
    v = torch.randn(1, HEADS, n, DIM, requires_grad=True)
    return lambda: F.scaled_dot_product_attention(q, k, v).sum()


def encoder(n: int):
    """A torch.nn.TransformerEncoder layer over n tokens (its attention through SDPA)."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
    x = torch.randn(1, n, 16)
    return lambda: layer(x).sum()


@pytest.fixture
def no_attention_formula(monkeypatch: pytest.MonkeyPatch) -> None:
    """The counter as torch 2.13 ships it: no formula for the fused CPU attention."""
    kept = {op: f for op, f in counting.EXTRA_FLOP_FORMULAS.items() if "attention" not in str(op)}
    monkeypatch.setattr(counting, "EXTRA_FLOP_FORMULAS", kept)


@pytest.mark.parametrize(
    "op, arithmetic",
    [
        (aten.mm, True), (aten.bmm, True), (aten.addmm, True), (aten.convolution, True),
        (aten.convolution_backward, True),
        (aten._scaled_dot_product_flash_attention_for_cpu, True),
        (aten.mkldnn_rnn_layer, True), (aten._fft_r2c, True), (aten.linalg_solve_ex, True),
        (aten.add, False), (aten.relu, False), (aten.tanh_backward, False), (aten.sum, False),
        (aten.clamp_min, False), (aten.native_layer_norm, False), (aten.embedding, False),
        (aten._thnn_fused_lstm_cell, False), (aten.copy_, False), (aten.lu_unpack, True),
    ],
)  # fmt: skip
def test_ops_doing_arithmetic_are_told_from_elementwise_ones(op: object, arithmetic: bool) -> None:
    packet = getattr(op, "_overloadpacket", op)
    assert counting.does_arithmetic(packet) is arithmetic


def test_a_counted_point_has_no_undercount_and_a_census_of_what_has_no_formula() -> None:
    counts = count_point(lambda: [sdpa(16)()], torch.device("cpu"))
    assert counts["undercounted"] is None
    assert counts["bwd_flops"] == 2 * counts["fwd_flops"] == 2 * (4 * HEADS * 16 * 16 * DIM)
    census = counts["census"]
    assert "aten._scaled_dot_product_flash_attention_for_cpu" not in census  # it has one
    assert census["aten.sum"][0] == 1 and census["aten.sum"][1] == 0  # (bytes: arithmetic only)


def test_fused_attention_without_its_formula_is_named_as_undercounted(
    no_attention_formula: None,
) -> None:
    counts = count_point(lambda: [sdpa(16)()], torch.device("cpu"))
    assert counts["fwd_flops"] == counts["bwd_flops"] == 0
    assert counts["undercounted"] == (
        "aten._scaled_dot_product_flash_attention_for_cpu × 1, "
        "aten._scaled_dot_product_flash_attention_for_cpu_backward × 1"
    )
    calls, nbytes = counts["census"]["aten._scaled_dot_product_flash_attention_for_cpu"]
    # in: q, k, v; out: the output and the log-sum-exp kept for the backward
    assert calls == 1 and nbytes == 4 * (4 * HEADS * 16 * DIM + HEADS * 16)


def test_undercounted_calls_add_up_over_a_variants_points() -> None:
    points = [
        {"variant": "full", "size": 4, "undercounted": "aten.a × 2, aten.b × 1"},
        {"variant": "full", "size": 8, "undercounted": "aten.b × 5"},
        {"variant": "full", "size": 16, "undercounted": None},
        {"variant": "other", "size": 8, "undercounted": "aten.c × 9"},
    ]
    assert undercounted(points, "full") == "aten.b × 6, aten.a × 2"
    assert undercounted(points, "full", from_size=8) == "aten.b × 5"
    assert undercounted(points, "full", from_size=16) is None
    assert undercounted_text({}) is None


def test_sdpa_backward_flops_confirmed_exactly_quadratic() -> None:
    result = trainbench.sweep(sdpa, SIZES, claim="O(n^2)", metric="bwd_flops", **FAST)
    claim = result.run.claims[0]
    assert claim["verdict"] == "confirmed" and claim["poly_degree"] == 2
    assert "undercounted" not in claim
    assert all(p["undercounted"] is None for p in result.run.points)


def test_transformer_encoder_backward_flops_confirmed_exactly_quadratic() -> None:
    result = trainbench.sweep(encoder, SIZES, claim="O(n^2)", metric="bwd_flops", **FAST)
    claim = result.run.claims[0]
    assert claim["verdict"] == "confirmed" and claim["poly_degree"] == 2


@pytest.mark.parametrize("claim", ["O(n)", "O(n^2)", "O(n^3)"])
def test_sdpa_without_its_formula_is_inconclusive_whatever_is_claimed(
    no_attention_formula: None, claim: str, tmp_path
) -> None:
    result = trainbench.sweep(sdpa, SIZES, claim=claim, metric="bwd_flops", out=tmp_path, **FAST)
    judged = result.run.claims[0]
    assert judged["verdict"] == "inconclusive"
    assert judged["reason"].startswith("undercounted: aten._scaled_dot_product_flash_attention")
    assert any("FLOPs undercounted" in note for note in result.run.notes)
    table = (tmp_path / result.name / "measurements.csv").read_text(encoding="utf-8")
    assert "undercounted" in table.splitlines()[0]


def test_encoder_without_the_attention_formula_is_inconclusive_not_refuted(
    no_attention_formula: None,
) -> None:
    """Its projections and feed-forward are counted (linear in n), its attention is not: the
    counted FLOPs read degree 1, which would refute O(n^2) were they taken as the count."""
    result = trainbench.sweep(encoder, SIZES, claim="O(n^2)", metric="bwd_flops", **FAST)
    judged = result.run.claims[0]
    assert judged["verdict"] == "inconclusive"
    assert judged["poly_degree"] == 1  # what the lower bound alone would have said
    fits = {f["metric"]: f for f in result.run.fits}
    assert fits["bwd_flops"]["undercounted"].startswith("aten._scaled_dot_product")
    assert "undercounted" not in fits["graph_nodes"]


def _claim(metric: str) -> Claim:
    return Claim(id="c", problem="", statement="", experiment="e", variant="full",
                 metric=metric, metrics=(metric,), expected=1.0)  # fmt: skip


def _power(k: float) -> object:
    sizes = [8, 16, 32, 64, 128, 256]
    return fit_order(sizes, [float(n) ** k + 3.0 for n in sizes], n_boot=0)


def test_time_growing_faster_than_its_flops_is_said_in_both_reasons() -> None:
    fits = {("full", "bwd_s"): _power(2.75), ("full", "bwd_flops"): _power(1.0)}
    on_time = _disagreement(_claim("bwd_s"), fits[("full", "bwd_s")], fits, None)
    on_flops = _disagreement(_claim("bwd_flops"), fits[("full", "bwd_flops")], fits, "aten.x × 2")
    assert "time and work disagree" in on_time and "k = 2.75" in on_time
    assert "the FLOPs miss aten.x × 2" in on_flops
    close = {("full", "bwd_s"): _power(1.3), ("full", "bwd_flops"): _power(1.0)}
    assert _disagreement(_claim("bwd_s"), close[("full", "bwd_s")], close, None) == ""


def test_the_cli_says_undercounted_in_the_fits_notes_and_verdict(
    no_attention_formula: None, tmp_path
) -> None:
    import targets_for_tests as T
    from cli_helpers import invoke

    sizes = ",".join(str(n) for n in SIZES)
    result = invoke(
        "sweep", T.spec("sdpa"), "--sizes", sizes, "--claim", "O(n^2)", "--metric", "bwd_flops",
        "--repeats", "1", "--max-passes", "1", "--out", tmp_path,
    )  # fmt: skip
    out = " ".join(result.stdout.split())
    assert "Traceback" not in out + result.stderr
    assert "≥ 0 (undercounted)" in out  # the points table
    assert "note: model: FLOPs undercounted: aten._scaled_dot_product_flash_attention" in out
    assert "inconclusive (undercounted: aten._scaled_dot_product_flash_attention" in out
    assert "refuted" not in out
