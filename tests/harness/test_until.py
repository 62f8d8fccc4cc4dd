"""``--until confirmed``: a variant's passes end once every time claim on it reads
confirmed, judged as at the end of the run; never on a claim that the times do not bear
out; and what ``verify --quick`` runs with (the thorough run keeps ``narrow``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import targets_for_tests as T
from cli_helpers import assert_one_line_error, invoke
from fake_instruments import measure_with

import trainbench
from trainbench.claims.parse import default_claims
from trainbench.core.settings import SweepError
from trainbench.measure.timing import Timing
from trainbench.stats.noise import Trial, Workload, run_trial
from trainbench.verify.run import plan_runs, trainability_config

pytestmark = pytest.mark.slow  # real sweeps or real processes

SIZES = [2, 4, 8, 16, 32, 64]
FAST = {"repeats": 6, "max_passes": 10, "min_time": 0.001, "threads": 1, "reference": "64"}


@pytest.fixture
def times_as(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[float], Counter[int]]]:
    """Replace the timing of a visit by times that grow as n**k (2% noise, seeded): no
    model is run. Returns the visits per size."""
    visits: Counter[int] = Counter()

    def install(k: float) -> Counter[int]:
        rng = np.random.default_rng(0)

        def timed(exp: object, variant: str, size: int, probe: object) -> tuple[Timing, Timing]:
            visits[size] += 1
            t = 1e-4 * size**k
            return tuple(  # type: ignore[return-value]
                Timing(list(t * np.exp(0.02 * rng.standard_normal(3))), 1) for _ in range(2)
            )

        measure_with(monkeypatch, time=timed)
        return visits

    yield install


def _sweep(until: str, claim: str = "O(n)") -> dict:
    result = trainbench.sweep(T.linear, SIZES, claim=claim, until=until, precision=0.001,
                              **FAST)  # type: ignore[arg-type]  # fmt: skip
    return result.summary


def test_a_confirmed_claim_ends_the_passes_at_the_first_check(
    times_as: Callable[[float], Counter[int]],
) -> None:
    visits = times_as(1.0)
    summary = _sweep("confirmed")
    schedule = summary["schedule"]
    assert schedule["passes"] == FAST["repeats"]
    assert schedule["confirmed_at"] == {"model": FAST["repeats"]}
    assert schedule["until"] == "confirmed"
    assert "every time claim confirmed" in schedule["stopped"]
    assert set(visits.values()) == {FAST["repeats"]}
    claim = next(c for c in summary["claims"] if c["id"] == "claim")
    assert claim["verdict"] == "confirmed"  # the same judgement as at the stop


def test_narrow_waits_for_the_width_whatever_the_verdict(
    times_as: Callable[[float], Counter[int]],
) -> None:
    times_as(1.0)
    summary = _sweep("narrow")
    assert summary["schedule"]["passes"] == FAST["max_passes"]  # ±0.001 is never reached
    assert summary["schedule"]["confirmed_at"] == {}
    assert next(c for c in summary["claims"] if c["id"] == "claim")["verdict"] == "confirmed"


def test_a_claim_the_times_do_not_bear_out_is_timed_to_the_end(
    times_as: Callable[[float], Counter[int]],
) -> None:
    times_as(1.5)
    summary = _sweep("confirmed")
    assert summary["schedule"]["passes"] == FAST["max_passes"]
    assert summary["schedule"]["confirmed_at"] == {}
    assert next(c for c in summary["claims"] if c["id"] == "claim")["verdict"] == "refuted"


def test_until_is_checked_and_named_in_the_reproduce_command(tmp_path: Path) -> None:
    bad = invoke("sweep", T.spec("linear"), "--sizes", "2,4,8", "--until", "soon",
                 "--out", tmp_path, "-q")  # fmt: skip
    assert bad.exit_code == 2 and "--until" in bad.stderr
    with pytest.raises(SweepError, match="--until"):
        trainbench.sweep(T.linear, SIZES, until="soon", **FAST)  # type: ignore[arg-type]
    from trainbench.report.reproduce import reproduce_command

    summary = {"experiment": "mlp-heads", "config": {"min_size": 1, "max_size": 8,
                                                     "until": "confirmed"}}  # fmt: skip
    assert "--until confirmed" in reproduce_command(summary)
    summary["config"]["until"] = "narrow"
    assert "--until" not in reproduce_command(summary)


# --------------------------------------------------------------------------- verify


def test_verify_quick_stops_at_confirmed_and_trains_what_its_claims_judge() -> None:
    quick = plan_runs(default_claims(), quick=True)
    thorough = plan_runs(default_claims(), quick=False)
    for plan in quick:
        if plan.experiment != "trainability":
            assert plan.settings["until"] == "confirmed", plan.folder
    for plan in thorough:
        assert plan.settings.get("until", "narrow") == "narrow", plan.folder
    train_quick = trainability_config(next(p for p in quick if p.experiment == "trainability"))
    train_full = trainability_config(next(p for p in thorough if p.experiment == "trainability"))
    # every claim is judged on a training loss too: all of its variants are trained (the
    # residual CNN, which no claim names, is measured in the thorough run only)
    assert train_quick.variants == ("plain", "heads", "residual", "cnn", "ugcnn")
    assert train_quick.trained == train_quick.variants
    assert train_quick.optimizers == ("sgd",)
    assert train_full.trained is None and train_full.optimizers == ("sgd",)
    assert "rescnn" in train_full.variants


def test_trained_and_optimizers_choose_the_trainings(tmp_path: Path) -> None:
    result = invoke("trainability", "--depths", "2", "--variants", "plain,heads",
                    "--trained", "heads", "--optimizers", "sgd", "--steps", "2", "--seeds", "1",
                    "--out", tmp_path, "--json")  # fmt: skip
    assert result.exit_code == 0, (result.stdout, result.stderr)
    import json

    summary = json.loads(result.stdout)
    assert {r["variant"] for r in summary["gradient_signal"]} == {"plain", "heads"}
    assert {(r["variant"], r["optimizer"]) for r in summary["training"]} == {("heads", "sgd")}
    assert len(summary["training"]) == 4  # one per activation
    for args, word in (
        (["--variants", "plain", "--trained", "heads"], "--trained"),
        (["--optimizers", "lbfgs"], "--optimizers"),
    ):
        bad = invoke("trainability", "--depths", "2", *args, "--out", tmp_path / "x", "-q")
        assert_one_line_error(bad.exit_code, bad.stdout, bad.stderr, (word,))


# --------------------------------------------------------------------------- calibration


@pytest.mark.parametrize(
    ("growth", "expected", "allowed"),
    [("n", 1.0, "confirmed"), ("n^1.3", 1.0, "not confirmed"), ("n log n", 1.0, "not confirmed")],
)
def test_stopping_at_the_first_confirmation_keeps_the_verdicts_calibrated(
    growth: str, expected: float, allowed: str
) -> None:
    """Simulated sweeps on the measured quiet machine, judged after every pass from the 6th
    (up to 24): looking again after every pass does not let a false claim through, and a
    true one is confirmed, mostly at the first look."""
    trials = 30
    results = [
        run_trial(Trial(Workload(growth), expected, 0.15, seed, until="confirmed", passes=24))
        for seed in range(trials)
    ]
    verdicts = Counter(r.verdict for r in results)
    if allowed == "confirmed":
        assert verdicts["confirmed"] >= 0.95 * trials and verdicts["refuted"] == 0, verdicts
        assert np.median([r.passes for r in results]) <= 8
    else:
        assert verdicts["confirmed"] == 0, verdicts
