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

from trainbench.claims import Claim, ClaimSet
from trainbench.config import first_line
from trainbench.results import FORMAT_VERSION, atomic_write_text, to_json
from trainbench.verdicts import verdict_rows

VERIFY_FILE = "verify.json"
# Used where the claims file's [runs] table does not say.
FALLBACK = {
    "thorough": {"min_size": 1, "max_size": 64},
    "quick": {"min_size": 1, "max_size": 32},
}
TRAINABILITY_FALLBACK = {
    "thorough": {"depths": [2, 4, 8, 16, 32, 64], "steps": 300},
    "quick": {"depths": [2, 8, 32], "steps": 100},
}


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
        from trainbench.experiments import EXPERIMENTS

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


def plan_runs(claim_set: ClaimSet, quick: bool) -> list[RunPlan]:
    """Group the claims by (experiment, options), in the order the file lists them."""
    mode = "quick" if quick else "thorough"
    groups: dict[tuple[str, str], list[Claim]] = {}
    for c in claim_set.claims:
        key = (c.experiment, json.dumps(dict(c.options), sort_keys=True))
        groups.setdefault(key, []).append(c)
    plans = []
    for (experiment, options), claims in groups.items():
        fallback = TRAINABILITY_FALLBACK if experiment == "trainability" else FALLBACK
        settings = dict(fallback[mode]) | dict(claim_set.runs.get(experiment, {}).get(mode, {}))
        widened = settings.pop("time_tolerance", None)
        if widened is not None:
            claims = [widen(c, widened) for c in claims]
        plans.append(RunPlan(experiment, json.loads(options), tuple(claims), settings))
    return plans


def widen(claim: Claim, tolerance: float) -> Claim:
    """A time claim judged on a band of at least ±``tolerance`` and not on its class: a
    run's ``time_tolerance`` (the quick runs': short ranges, few repeats, a shared
    machine). Counts keep their exact judgement."""
    if claim.metric not in ("fwd_s", "bwd_s"):
        return claim
    return replace(claim, tolerance=max(claim.tolerance, tolerance), check_class=False)


def sweep_config(plan: RunPlan) -> Any:
    """The SweepConfig of a sweep run."""
    from trainbench.experiments import EXPERIMENTS
    from trainbench.runner import SweepConfig

    exp = EXPERIMENTS[plan.experiment]
    control = any(exp.variant(c.variant).split for c in plan.claims)
    return SweepConfig(
        options=dict(plan.options),
        control=control,
        **{k: v for k, v in plan.settings.items()},
    )


def trainability_config(plan: RunPlan) -> Any:
    from trainbench.trainability import VARIANTS, TrainabilityConfig

    wanted = {c.variant for c in plan.claims} | {c.baseline for c in plan.claims if c.baseline}
    settings = dict(plan.settings)
    return TrainabilityConfig(
        depths=tuple(int(d) for d in settings.pop("depths")),
        variants=tuple(v for v in VARIANTS if v in wanted),
        **settings,
    )


class PlanError(ValueError):
    """A run of the claims that cannot start; the message names the claims and the problem."""


def check_plans(plans: Sequence[RunPlan]) -> None:
    """Raise PlanError for a run that cannot start (its options or settings are wrong)."""
    from trainbench.experiments import EXPERIMENTS
    from trainbench.runner import validate

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


def run_verify(
    plans: Sequence[RunPlan],
    out: Path,
    *,
    command: str,
    quick: bool,
    claims_file: str,
    on_progress: Callable[[str, int, int], None] | None = None,
    resume: bool = False,
) -> VerifyResult:
    """Run every plan in turn, write ``verify.json`` after each, and return the result.

    On KeyboardInterrupt ``verify.json`` lists what was judged (``complete``
    false) and the interrupt is raised again. With ``resume`` every run continues
    the one in its folder (a complete one is judged again, nothing measured);
    without, an earlier run in a folder is kept under a new name.
    """
    from trainbench.experiments import EXPERIMENTS
    from trainbench.results import keep_earlier_run, read_summary
    from trainbench.runner import run_sweep
    from trainbench.trainability import run_trainability
    from trainbench.trainability_report import write_files

    result = VerifyResult(command, quick, claims_file, list(plans))
    started = time.time()

    def save() -> None:
        atomic_write_text(out / VERIFY_FILE, to_json(result.summary()))

    try:
        for plan in plans:
            name = plan.folder
            if plan.experiment == "trainability":
                folder = out / name

                def save_run(r: Any, folder: Path = folder) -> None:
                    write_files(folder, r.summary(), plots=r.complete)

                def tick_t(what: str, done: int, total: int, name: str = name) -> None:
                    if on_progress:
                        on_progress(f"{name}  {what}", done, total)

                earlier = read_summary(folder, sweep=False) if resume else None
                if not resume:
                    keep_earlier_run(folder)
                run = run_trainability(
                    trainability_config(plan), on_progress=tick_t, save=save_run,
                    claims=plan.claims, earlier=earlier,
                )  # fmt: skip
            else:
                exp = EXPERIMENTS[plan.experiment]

                def tick(p: Any, name: str = name, letter: str = exp.size_name) -> None:
                    if on_progress:
                        on_progress(f"{name}  {p.variant} {letter} = {p.size}", p.done, p.total)

                run = run_sweep(
                    exp, sweep_config(plan), out_dir=out, on_progress=tick, claims=plan.claims,
                    resume=resume,
                )  # fmt: skip
            result.summaries.append(run.summary())
            save()
    except KeyboardInterrupt:
        # the run that was interrupted wrote its partial summary: list its claims too
        try:
            current = out / plans[len(result.summaries)].folder / "summary.json"
            if current.stat().st_mtime >= started:
                result.summaries.append(json.loads(current.read_text(encoding="utf-8")))
        except (OSError, ValueError, IndexError):
            pass
        save()
        raise
    result.complete = True
    save()
    return result
