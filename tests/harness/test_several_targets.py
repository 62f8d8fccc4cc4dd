"""Several models in one sweep: measured interleaved in the same passes, each judged on its
own, each compared with the first (``trainbench sweep A B``, ``trainbench.sweep({...})``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import targets_for_tests as T
from cli_helpers import assert_one_line_error, invoke

import trainbench
from trainbench.report.reproduce import reproduce_command

pytestmark = pytest.mark.slow  # real sweeps or real processes

SIZES = [8, 16, 32, 64, 128]
FAST = {"repeats": 2, "max_passes": 2, "min_time": 0.002, "reference": "64", "threads": 1}


@pytest.fixture(scope="module")
def both() -> trainbench.SweepResult:
    return trainbench.sweep({"eager": T.eager_attention, "sdpa": T.sdpa}, SIZES,
                            claim="O(n^2)", metric="bwd_flops", **FAST)  # fmt: skip


def test_each_target_is_judged_on_its_own(both: trainbench.SweepResult) -> None:
    assert [v.name for v in both.experiment.variants] == ["eager", "sdpa"]
    assert both.name == "eager-vs-sdpa"
    verdicts = {c["variant"]: (c["id"], c["verdict"], c["poly_degree"]) for c in both.run.claims}
    assert verdicts == {"eager": ("claim:eager", "confirmed", 2),
                        "sdpa": ("claim:sdpa", "confirmed", 2)}  # fmt: skip


def test_the_targets_share_their_passes(both: trainbench.SweepResult) -> None:
    samples = both.samples
    passes = {v: set(samples[samples.variant == v]["round"]) for v in ("eager", "sdpa")}
    assert passes["eager"] == passes["sdpa"] and len(passes["eager"]) == 2


def test_each_is_compared_with_the_first(both: trainbench.SweepResult) -> None:
    ratios = both.ratios
    flops = ratios[ratios.metric == "bwd_flops"]
    assert list(flops["size"]) == SIZES and set(flops["ratio"]) == {1.0}  # the same products
    saved = ratios[(ratios.metric == "saved_bytes") & (ratios["size"] == 128)]
    assert float(saved["ratio"].iloc[0]) < 0.5  # the fused kernel keeps no n×n weights
    assert any(n.startswith("sdpa / eager at n = 128: backward time ") for n in both.run.notes)


def test_the_command_line_takes_several_targets(tmp_path: Path) -> None:
    result = invoke("sweep", T.spec("eager_attention"), T.spec("sdpa"), "--sizes", "8:128",
                    "--claim", "O(n)", "--metric", "bwd_flops", "--strict", "--repeats", "1",
                    "--max-passes", "1", "--out", tmp_path)  # fmt: skip
    assert result.exit_code == 1  # --strict: O(n) is refuted for both
    out = " ".join(result.stdout.split())
    assert "note: sdpa / eager_attention at n = 128:" in out
    assert out.count("— refuted") == 2
    loaded = trainbench.load(tmp_path / "eager_attention-vs-sdpa")
    assert [v.name for v in loaded.experiment.variants] == ["eager_attention", "sdpa"]
    assert loaded.verdict("O(n^2)", "bwd_flops", variant="sdpa").verdict == "confirmed"
    command = reproduce_command(loaded.summary)
    assert command.startswith(f"trainbench sweep {T.spec('eager_attention')} {T.spec('sdpa')} ")


def test_a_loaded_run_keeps_its_targets_order(tmp_path: Path) -> None:
    """The first target is the one the others are divided by, also when its name sorts last."""
    run = trainbench.sweep({"zz": T.eager_attention, "aa": T.sdpa}, SIZES, out=tmp_path, **FAST)
    loaded = trainbench.load(run.folder)
    assert [v.name for v in loaded.experiment.variants] == ["zz", "aa"]
    assert loaded.ratios.to_dict("records") == run.ratios.to_dict("records")
    assert set(loaded.ratios["over"]) == {"zz"}


def test_two_targets_of_one_name_or_a_builtin_among_them_are_one_line_errors(
    tmp_path: Path,
) -> None:
    result = invoke("sweep", T.spec("sdpa"), T.spec("sdpa"), "--sizes", "8:64", "--out", tmp_path)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("both named 'sdpa'",))
    result = invoke("sweep", "mlp-heads", T.spec("sdpa"), "--sizes", "8:64", "--out", tmp_path)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("mlp-heads",))
