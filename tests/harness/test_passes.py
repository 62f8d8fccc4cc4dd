"""The pass schedule builds every point anew in each pass (model, inputs, graph), so that
where its tensors lie in memory varies between passes, and calibrates each point's block
sizes once, at its first pass."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import targets_for_tests as T
from fake_instruments import measure_with
from torch import Tensor

import trainbench
from trainbench.measure import timing as measure

pytestmark = pytest.mark.slow  # real sweeps or real processes

SIZES = [2, 4, 8]


def test_each_pass_builds_the_point_anew_and_calibrates_it_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: Counter[int] = Counter()
    calibrated: list[float] = []

    def factory(n: int) -> Callable[[], Tensor]:
        built[n] += 1
        return T.chain(n)

    calibrate = measure._VisitTimer.calibrate

    def counting(self: measure._VisitTimer, visit_s: float) -> None:
        calibrated.append(visit_s)
        calibrate(self, visit_s)

    monkeypatch.setattr(measure._VisitTimer, "calibrate", counting)
    result = trainbench.sweep(
        factory, SIZES, repeats=4, max_passes=4, min_time=0.001, threads=1, reference="64"
    )
    passes = result.summary["schedule"]["passes"]
    assert passes == 4
    # one build for the counts, one per pass (the first size is also built once to check
    # the target before anything is measured)
    assert [built[n] for n in SIZES[1:]] == [1 + passes] * (len(SIZES) - 1)
    assert built[SIZES[0]] in (1 + passes, 2 + passes)
    assert len(calibrated) == 2 * len(SIZES)  # forward and backward of each point, once
    assert result.samples.groupby("size")["round"].nunique().tolist() == [passes] * len(SIZES)


def test_a_later_probe_reuses_the_block_sizes_and_warms_the_gradients() -> None:
    chain = T.chain(4)

    def forward() -> list[Tensor]:
        return [chain()]

    first = measure.Probe(forward, threads=1, visit_s=0.002)
    again = measure.Probe(forward, threads=1, visit_s=0.5, plan=first.plan)
    assert again.plan == first.plan  # not calibrated for 0.5 s
    f, b = again.visit()
    assert len(f.samples) == first.fwd.blocks and len(b.samples) == first.bwd.blocks


def test_a_forward_no_claim_is_on_is_timed_in_the_first_repeats_passes_only(
    tmp_path: Path,
) -> None:
    # (a precision no interval reaches, so that all four passes run: at 0.001 two passes
    # that agree by chance could end the run after two)
    common = {"repeats": 2, "max_passes": 4, "precision": 1e-9, "min_time": 0.001,
              "threads": 1, "reference": "64"}  # fmt: skip
    result = trainbench.sweep(T.chain, SIZES, out=tmp_path, **common)  # type: ignore[arg-type]
    rounds = result.samples.groupby(["size", "phase"])["round"].nunique().unstack()
    assert rounds["bwd"].tolist() == [4] * len(SIZES)
    assert rounds["fwd"].tolist() == [2] * len(SIZES)
    assert (result.points["rounds"] == 4).all()
    assert any("forward time (no claim of the run is on it)" in n for n in result.run.notes)
    # a claim on the forward time: timed in every pass
    on_fwd = trainbench.sweep(T.chain, SIZES, claim="O(n)", metric="fwd_s",
                              **common)  # type: ignore[arg-type]  # fmt: skip
    assert set(on_fwd.samples.groupby(["size", "phase"])["round"].nunique()) == {4}

    # --resume reads the passes back from the backward's samples: nothing is timed again
    folder = tmp_path / "chain"
    summary_file = folder / "summary.json"
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    summary["complete"] = False
    summary_file.write_text(json.dumps(summary), encoding="utf-8")
    samples = (folder / "samples.csv").read_text(encoding="utf-8")
    again = trainbench.sweep(T.chain, SIZES, out=tmp_path, resume=True,
                             **common)  # type: ignore[arg-type]  # fmt: skip
    assert (folder / "samples.csv").read_text(encoding="utf-8") == samples
    assert (again.points["rounds"] == 4).all()


def test_a_resumed_run_reads_back_the_efficiencies_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference rate is measured twice and the faster kept: a resumed run, which reads
    the rate back from its GFLOP/s, gives every efficiency to the last digit."""
    # the second the faster, and one that GFLOP/s do not give back exactly (x / 1e9 * 1e9 != x)
    rates = iter([1.2345678901234567e9, 2076337582.9803824])
    measure_with(monkeypatch, matmul_rate=lambda *a, **k: next(rates))
    common = {"repeats": 2, "max_passes": 2, "min_time": 0.001, "threads": 1}
    trainbench.sweep(T.chain, SIZES, out=tmp_path, **common)  # type: ignore[arg-type]
    table = (tmp_path / "chain" / "measurements.csv").read_text(encoding="utf-8")

    def measured(*args: object, **kwargs: object) -> None:
        raise AssertionError("a measurement started")

    measure_with(monkeypatch, matmul_rate=measured)
    trainbench.sweep(T.chain, SIZES, out=tmp_path, resume=True, **common)  # type: ignore[arg-type]
    assert (tmp_path / "chain" / "measurements.csv").read_text(encoding="utf-8") == table


def test_max_passes_below_repeats_says_the_repeats_won() -> None:
    result = trainbench.sweep(
        T.chain, SIZES, repeats=3, max_passes=1, min_time=0.001, threads=1, reference="64"
    )
    assert result.summary["schedule"]["passes"] == 3
    (note,) = [n for n in result.summary["notes"] if n.startswith("timed in ")]
    assert "at least 3, so --max-passes 1 could not end them sooner" in note
    again = trainbench.sweep(
        T.chain, SIZES, repeats=1, max_passes=1, min_time=0.001, threads=1, reference="64"
    )
    assert "could not end them sooner" not in " ".join(again.summary["notes"])
