"""`trainbench verify`: run what the claims need, judge every claim, write results and a report.

Claims that share an experiment and options share one run. A sweep run judges
exactly the claims of its group (the controls they name come along); the
trainability run measures the variants its claims and their baselines name.
The run folders, ``verify.json`` (one row per claim) and the report go to OUT.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from trainbench.claims.claim import Claim, ClaimSet
from trainbench.claims.parse import default_claims
from trainbench.core.lock import hold
from trainbench.core.settings import SweepConfig, SweepError, first_line
from trainbench.core.vocabulary import MLP_VARIANTS
from trainbench.experiments.builtin import BUILT_IN, EXPERIMENTS
from trainbench.harness.prepare import available_bytes, resolve_device, validate
from trainbench.harness.runner import run_sweep
from trainbench.results.files import atomic_write_text, keep_earlier_run, to_json
from trainbench.results.reading import read_summary
from trainbench.results.schema import FORMAT_VERSION, ResultsError
from trainbench.results.verdicts import verdict_rows
from trainbench.trainability.config import (
    ACTIVATIONS,
    JUDGED_OPTIMIZER,
    VARIANTS,
    TrainabilityConfig,
    TrainabilityError,
)
from trainbench.trainability.files import write_files
from trainbench.trainability.judge import activation_of
from trainbench.trainability.run import run_trainability
from trainbench.verify.jobs import JobError, cores, run_jobs

VERIFY_FILE = "verify.json"
# Used where the claims file's [runs] table does not say.
# A quick run's variant stops timing once its time claims read confirmed (--until
# confirmed); the thorough run times until the intervals are narrow, for the reference.
FALLBACK = {
    "thorough": {"min_size": 1, "max_size": 64},
    "quick": {"min_size": 1, "max_size": 32, "until": "confirmed"},
}
# The trainability run's, under the sizes of the shipped claims file's [runs.trainability]
# (trainability_fallback). trained = "claimed": only the variants (and baselines) of
# claims judged on a training loss are trained, with the optimizer the claims are judged
# on; the others have their gradient signal measured. "all": every variant. Both train
# with the optimizer the claims are judged on (SGD).
TRAINED = {"thorough": {"trained": "all"}, "quick": {"trained": "claimed"}}


@dataclass(frozen=True)
class RunPlan:
    """One run of ``verify``: an experiment with options, and the claims it judges."""

    experiment: str
    options: Mapping[str, Any]
    claims: tuple[Claim, ...]
    settings: Mapping[str, Any]  # sizes, repeats, ... from the claims file's [runs]

    @property
    def folder(self) -> str:
        if self.experiment == "trainability":
            return "trainability"
        exp = EXPERIMENTS[self.experiment]
        return exp.folder(dict(exp.defaults) | dict(self.options))


@dataclass
class VerifyResult:
    command: str
    quick: bool
    claims_file: str
    plans: list[RunPlan]
    summaries: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False
    rendered: dict[str, Any] = field(default_factory=dict)  # run folder -> its report plots

    def rows(self) -> list[dict[str, Any]]:
        return verdict_rows(self.summaries)

    def failed(self) -> list[dict[str, Any]]:
        """The rows whose verdict is not the one the claims file expects, and the claims
        that were not judged at all."""
        rows = self.rows()
        judged = {r["id"] for r in rows}
        missing = [
            {"id": c.id, "verdict": "not judged", "expect": c.expect, "reason": "not measured"}
            for p in self.plans
            for c in p.claims
            if c.id not in judged
        ]
        return [r for r in rows if not r["as_expected"]] + missing

    def summary(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "tool": "trainbench",
            "kind": "verify",
            "command": self.command,
            "quick": self.quick,
            "claims_file": self.claims_file,
            "complete": self.complete,
            "runs": [p.folder for p in self.plans],
            "rows": self.rows(),
            "failed": [r["id"] for r in self.failed()],
        }


def trainability_fallback(mode: str) -> dict[str, Any]:
    """The trainability run's settings where the claims file's [runs] table does not say:
    the shipped claims file's ``[runs.trainability]`` for ``mode``, and :data:`TRAINED`."""
    return dict(default_claims().runs.get("trainability", {}).get(mode, {})) | TRAINED[mode]


def plan_runs(claim_set: ClaimSet, quick: bool) -> list[RunPlan]:
    """Group the claims by (experiment, options), in the order the file lists them."""
    mode = "quick" if quick else "thorough"
    groups: dict[tuple[str, str], list[Claim]] = {}
    for c in claim_set.claims:
        # one trainability run measures every activation its claims name
        options = {} if c.experiment == "trainability" else dict(c.options)
        key = (c.experiment, json.dumps(options, sort_keys=True))
        groups.setdefault(key, []).append(c)
    plans = []
    for (experiment, options), claims in groups.items():
        fallback = trainability_fallback(mode) if experiment == "trainability" else FALLBACK[mode]
        settings = dict(fallback) | dict(claim_set.runs.get(experiment, {}).get(mode, {}))
        plan = RunPlan(experiment, json.loads(options), tuple(claims), {})
        if plan.folder != experiment:  # a run's own sizes, over its experiment's
            settings |= dict(claim_set.runs.get(plan.folder, {}).get(mode, {}))
        if experiment == "trainability" and "activations" in settings:
            # a run that names its activations (the quick one) judges their claims only
            claims = [
                c for c in claims
                if c.options.get("activation", "sigmoid") in settings["activations"]
            ]
        widened = settings.pop("time_tolerance", None)
        if widened is not None:
            claims = [widen(c, widened) for c in claims]
        plans.append(replace(plan, claims=tuple(claims), settings=settings))
    return plans


def check_run_tables(claim_set: ClaimSet) -> None:
    """Raise PlanError for a ``[runs.<name>]`` that is neither an experiment nor the folder
    of a run of the file's claims (a misspelt run would be silently ignored)."""
    folders = {p.folder for p in plan_runs(claim_set, quick=False)}
    unknown = sorted(set(claim_set.runs) - folders - set(EXPERIMENTS) - {"trainability"})
    if unknown:
        raise PlanError(f"[runs.{unknown[0]}] names no run of the claims "
                        f"(their runs: {', '.join(sorted(folders))})")  # fmt: skip


def widen(claim: Claim, tolerance: float) -> Claim:
    """A time claim judged on a band of at least ±``tolerance`` and not on its class: a
    run's ``time_tolerance`` (the quick runs': short ranges, few repeats, a shared
    machine). Counts keep their exact judgement."""
    if claim.metric not in ("fwd_s", "bwd_s"):
        return claim
    return replace(claim, tolerance=max(claim.tolerance, tolerance), check_class=False)


def sweep_config(plan: RunPlan) -> SweepConfig:
    """The SweepConfig of a sweep run."""
    exp = EXPERIMENTS[plan.experiment]
    control = any(exp.variant(c.variant).split for c in plan.claims)
    return SweepConfig(
        options=dict(plan.options),
        control=control,
        **{k: v for k, v in plan.settings.items()},
    )


def trainability_config(plan: RunPlan) -> TrainabilityConfig:
    wanted = {c.variant for c in plan.claims} | {c.baseline for c in plan.claims if c.baseline}
    settings = dict(plan.settings)
    trained = None
    if settings.pop("trained", "all") == "claimed":  # what the claims are judged on only
        losses = [c for c in plan.claims if set(c.metrics) - {"gradient_ratio"}]
        named = {c.variant for c in losses} | {c.baseline for c in losses if c.baseline}
        trained = tuple(v for v in VARIANTS if v in named)
    else:  # every variant, those no claim names beside the others (the residual CNN)
        wanted = set(VARIANTS)
    # the MLPs' activations (the CNNs use tanh whatever the claim)
    acts = {activation_of(c.variant, c.options) for c in plan.claims if c.variant in MLP_VARIANTS}
    settings.pop("activations", None)
    for key in ("train_depths", "lr_sgd", "lr_adam"):
        if key in settings:
            settings[key] = tuple(settings[key])
    return TrainabilityConfig(
        depths=tuple(int(d) for d in settings.pop("depths")),
        variants=tuple(v for v in VARIANTS if v in wanted),
        trained=trained,
        optimizers=(JUDGED_OPTIMIZER,),
        activations=tuple(a for a in ACTIVATIONS if a in acts) or ("sigmoid",),
        **settings,
    )


class PlanError(ValueError):
    """A run of the claims that cannot start; the message names the claims and the problem."""


def check_plans(plans: Sequence[RunPlan]) -> None:
    """Raise PlanError for a run that cannot start (its options or settings are wrong)."""
    for plan in plans:
        try:
            if plan.experiment == "trainability":
                trainability_config(plan).validate()
            else:
                validate(EXPERIMENTS[plan.experiment], sweep_config(plan))
        except (TypeError, ValueError, KeyError) as err:
            text = first_line(err)
            ids = ", ".join(c.id for c in plan.claims)
            raise PlanError(f"claims {ids} cannot run: {text}") from None


def run_plan(
    plan: RunPlan,
    out: Path,
    resume: bool = False,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Run one plan into ``OUT/<its folder>`` and return its summary. Without ``resume`` an
    earlier run in that folder is kept under a new name; with it, it is continued."""
    name = plan.folder
    if plan.experiment == "trainability":
        folder = out / name

        def save_run(r: Any) -> None:
            write_files(folder, r.summary(), plots=r.complete)

        def tick_t(what: str, done: int, total: int) -> None:
            if on_progress:
                on_progress(f"{name}  {what}", done, total)

        with hold(folder):  # one writer per run folder (trainbench.core.lock)
            earlier = read_summary(folder, sweep=False) if resume else None
            if not resume:
                keep_earlier_run(folder)
            run: Any = run_trainability(
                trainability_config(plan), on_progress=tick_t, save=save_run, claims=plan.claims,
                earlier=earlier,
            )  # fmt: skip
            return run.summary()
    exp = EXPERIMENTS[plan.experiment]

    def tick(p: Any) -> None:
        if on_progress:
            on_progress(f"{name}  {p.variant} {exp.size_name} = {p.size}", p.done, p.total)

    run = run_sweep(
        exp, sweep_config(plan), out_dir=out, on_progress=tick, claims=plan.claims, resume=resume
    )
    return run.summary()


def default_jobs(quick: bool, plans: Sequence[RunPlan] = ()) -> int:
    """Two jobs for the quick run where there are two cores and every sweep runs on the CPU;
    one for the thorough run (and wherever a sweep would share a GPU with another)."""
    on_gpu = torch.cuda.is_available() and any(
        p.experiment != "trainability" and p.settings.get("device", "auto") != "cpu"
        for p in plans
    )
    return min(2, cores()) if quick and not on_gpu else 1


def with_memory_share(plan: RunPlan, jobs: int) -> RunPlan:
    """A sweep's plan with ``max_memory`` at its share of half the memory (what one run
    takes by default) where the claims file does not set it."""
    if plan.experiment == "trainability" or "max_memory" in plan.settings:
        return plan
    device = resolve_device(str(plan.settings.get("device", "auto")))
    share = available_bytes(device) // (2 * jobs)
    return replace(plan, settings=dict(plan.settings) | {"max_memory": share})


def run_verify(
    plans: Sequence[RunPlan],
    out: Path,
    *,
    command: str,
    quick: bool,
    claims_file: str,
    on_progress: Callable[[str, int, int], None] | None = None,
    resume: bool = False,
    jobs: int = 1,
    report: Path | None = None,
) -> VerifyResult:
    """Run every plan, write ``verify.json`` after each, and return the result.

    With ``jobs`` > 1 the plans run in that many child processes at once
    (:mod:`trainbench.verify.jobs`), the trainability run last; else one after the other, here.
    On KeyboardInterrupt ``verify.json`` lists what was judged (``complete``
    false; the runs that were interrupted with their partial summaries) and the
    interrupt is raised again. With ``resume`` every run continues the one in its
    folder (a complete one is judged again, nothing measured); without, an
    earlier run in a folder is kept under a new name. ``report``: where the report
    will go; a job draws its run's plots there as it ends (``result.rendered``).
    """
    with hold(out / VERIFY_FILE):  # one verify per results folder (trainbench.core.lock)
        return _run_verify(
            plans, out, command=command, quick=quick, claims_file=claims_file,
            on_progress=on_progress, resume=resume, jobs=jobs, report=report,
        )  # fmt: skip


def _run_verify(
    plans: Sequence[RunPlan],
    out: Path,
    *,
    command: str,
    quick: bool,
    claims_file: str,
    on_progress: Callable[[str, int, int], None] | None,
    resume: bool,
    jobs: int,
    report: Path | None,
) -> VerifyResult:
    result = VerifyResult(command, quick, claims_file, list(plans))
    started = time.time()
    done: dict[int, dict[str, Any]] = {}  # plan index -> its run's summary

    def save() -> None:
        result.summaries = [done[i] for i in sorted(done)]
        atomic_write_text(out / VERIFY_FILE, to_json(result.summary()))

    # A child process knows the built-in experiments only, and their own code only.
    if any(p.experiment != "trainability"
           and EXPERIMENTS.get(p.experiment) is not BUILT_IN.get(p.experiment)
           for p in plans):  # fmt: skip
        jobs = 1

    def finished(i: int, summary: dict[str, Any], rendered: Any) -> None:
        done[i] = summary
        if rendered is not None:
            result.rendered[plans[i].folder] = rendered
        save()

    try:
        if jobs <= 1:
            for i, plan in enumerate(plans):
                finished(i, run_plan(plan, out, resume, on_progress), None)
        else:
            # each job plans with its share of the memory (a run's default is half of it)
            shared = [with_memory_share(p, jobs) for p in plans]
            try:
                run_jobs(shared, run_plan, jobs, out, resume, report, finished, on_progress)
            except JobError as err:
                errors = {"SweepError": SweepError, "TrainabilityError": TrainabilityError,
                          "ResultsError": ResultsError, "LockError": SweepError}  # fmt: skip
                raise errors.get(err.kind, RuntimeError)(str(err)) from None
    except BaseException:
        # the runs that were interrupted wrote their partial summaries: list their claims
        for i, plan in enumerate(plans):
            if i in done:
                continue
            try:
                current = out / plan.folder / "summary.json"
                if current.stat().st_mtime >= started:
                    done[i] = json.loads(current.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pass
        save()
        raise
    result.complete = True
    save()
    return result
