"""The verdicts of the trainability claims (Problems 1a, 1c, 2) and the sanity gate.

A claim names a variant, the baseline it is compared with, the activation it is judged
under (``options.activation``; the CNNs use tanh) and its metrics: ``gradient_ratio``
alone, or with a training loss (``final_loss``: the top prediction ŷ_L, the one
Problem 1a asks about; ``deep_head_loss``: the best head at depth ≥ L/2). Rules in
docs/trainability.md; every number is per seed, and a verdict needs the seeds to agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from trainbench.claims.claim import Claim
from trainbench.claims.parse import default_claims
from trainbench.core.vocabulary import BASELINES, CNN_ACTIVATION, CNN_VARIANTS, FAMILIES

KEPT = 1e-3  # a first/last gradient ratio at or above this has kept the signal
LOST = 1e-6  # at or below this it has lost it
# the training losses a claim may name, and what they are in words
TRAINING_LOSSES = {"final_loss": "top prediction ŷ_L", "deep_head_loss": "best head at depth ≥ L/2"}
MARGIN = 0.25  # "a lower loss": lower by at least this fraction of the targets' variance
GATE = 0.1  # the baseline at the smallest trained depth must reach this fraction of the variance


def claim_records(claims: Sequence[Claim] | None = None) -> list[dict[str, Any]]:
    """The trainability claims (default: the claims file's) as the dicts :func:`judge` reads."""
    pool = default_claims().claims if claims is None else claims
    return [
        c.as_record()
        | {
            "baseline": c.baseline,
            "metrics": list(c.metrics),
            "activation": activation_of(c.variant, c.options),
        }
        for c in pool
        if c.experiment == "trainability"
    ]


def activation_of(variant: str, options: Mapping[str, Any]) -> str:
    if variant in CNN_VARIANTS:
        return CNN_ACTIVATION
    return str(options.get("activation", "sigmoid"))


def _rows(records: Sequence[Mapping[str, Any]], **kw: Any) -> list[Mapping[str, Any]]:
    return [r for r in records if all(r.get(k) == v for k, v in kw.items())]


def _frac(x: float | None, variance: float) -> str:
    return "diverged" if x is None else f"{x / variance:.3g}"


def _spread(values: Sequence[float | None], variance: float) -> str:
    """"0.012 [0.008, 0.03] of the variance" over seeds (one value: itself)."""
    shown = [_frac(v, variance) for v in values]
    if len(values) == 1:
        return shown[0]
    xs = sorted(math.inf if v is None else v for v in values)
    text = [_frac(None if math.isinf(x) else x, variance) for x in (median(values), xs[0], xs[-1])]
    return f"{text[0]} [{text[1]}, {text[2]}]"


def median(values: Sequence[float | None]) -> float:
    """The median, a diverged value (None) counted as infinitely bad."""
    xs = sorted(math.inf if v is None else v for v in values)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def gates(training: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The sanity gate of every family, activation and optimizer trained: its baseline at
    the smallest trained depth must reach GATE of the targets' variance (median over
    seeds), or the setup (budget, rates, task) is too weak to tell depth from it."""
    out = []
    for family, members in FAMILIES.items():
        keys = {(r["activation"], r["optimizer"]) for r in training if r["variant"] in members}
        for activation, optimizer in sorted(keys):
            base = BASELINES[family]
            rows = _rows(training, variant=base, activation=activation, optimizer=optimizer)
            gate: dict[str, Any] = {
                "family": family, "baseline": base, "activation": activation,
                "optimizer": optimizer, "limit": GATE,
            }  # fmt: skip
            if not rows:
                out.append(gate | {"passed": None, "reason": f"{base} was not trained"})
                continue
            r = min(rows, key=lambda r: r["depth"])
            med = median(r["final_loss"]) / r["target_variance"]
            passed = med <= GATE
            out.append(gate | {
                "depth": r["depth"], "loss": None if math.isinf(med) else med, "passed": passed,
                "reason": (
                    f"{base} at L = {r['depth']} reached "
                    f"{_spread(r['final_loss'], r['target_variance'])} "
                    f"of the variance after {r['steps']} {optimizer} steps (lr {r['lr']:g}); "
                    f"the gate asks ≤ {GATE:g}"
                ),
            })  # fmt: skip
    return out


def judge(
    claim: Mapping[str, Any], signal: Sequence[Mapping[str, Any]],
    training: Sequence[Mapping[str, Any]], gate_list: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Verdict of one claim: the gradient signal at the largest depth measured, then (for
    a claim on a training loss) the sanity gate and the loss at the largest trained depth.
    ``gate_list``: :func:`gates` of ``training``, where the caller has them already."""
    variant, baseline = claim["variant"], claim["baseline"]
    act = claim.get("activation") or activation_of(variant, claim.get("options") or {})
    record = dict(claim) | {"is_control": False, "activation": act}
    mine_s = _rows(signal, variant=variant, activation=act)
    base_s = _rows(signal, variant=baseline, activation=act)
    depths = sorted({r["depth"] for r in mine_s} & {r["depth"] for r in base_s})
    if not depths:
        return record | {"verdict": "inconclusive",
                         "reason": f"needs {variant} and {baseline} under {act}"}  # fmt: skip
    L = depths[-1]
    ours = [r["ratio"] or 0.0 for r in mine_s if r["depth"] == L]
    base = [r["ratio"] or 0.0 for r in base_s if r["depth"] == L]
    record |= {"depth": L, "ratio": min(ours), "baseline_ratio": max(base)}
    n = len(ours)
    seeds = f"{n} seed{'s' if n > 1 else ''}"
    reasons = [
        f"{act}, at L = {L} the first/last gradient ratio is {_range(ours)} "
        f"({baseline}: {_range(base)}; {seeds})"
    ]
    if max(ours) < KEPT:
        lost = max(ours) <= LOST or max(ours) <= min(base)
        reasons.append(f"{variant}'s signal fell below {KEPT:g} in every seed")
        return record | {"verdict": "refuted" if lost else "inconclusive",
                         "reason": "; ".join(reasons)}  # fmt: skip
    if min(ours) < KEPT:
        reasons.append(f"the seeds disagree: {variant}'s signal fell below {KEPT:g} in some")
        return record | {"verdict": "inconclusive", "reason": "; ".join(reasons)}
    loss = next((m for m in claim.get("metrics", ()) if m in TRAINING_LOSSES), None)
    if max(base) > LOST:
        if loss is None:
            reasons.append(
                f"the {baseline} baseline did not lose its signal (ratio > {LOST:g}): this run "
                "does not show the problem the claim is about"
            )
            return record | {"verdict": "inconclusive", "reason": "; ".join(reasons)}
        reasons.append(f"the {baseline} baseline kept its signal too: training alone decides")
    if loss is None:
        return record | {"verdict": "confirmed", "reason": "; ".join(reasons)}
    return _judge_training(record, reasons, claim, loss, act, training,
                           gates(training) if gate_list is None else gate_list)  # fmt: skip


def _range(values: Sequence[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.2g}" if lo == hi else f"{lo:.2g}–{hi:.2g}"


def _judge_training(
    record: dict[str, Any], reasons: list[str], claim: Mapping[str, Any], loss: str, act: str,
    training: Sequence[Mapping[str, Any]], gate_list: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    variant, baseline = claim["variant"], claim["baseline"]
    opt = claim.get("optimizer") or "sgd"
    mine = _rows(training, variant=variant, activation=act, optimizer=opt)
    theirs = _rows(training, variant=baseline, activation=act, optimizer=opt)
    depths = sorted({r["depth"] for r in mine} & {r["depth"] for r in theirs})
    if not depths:
        reasons.append(f"{opt} training of both was not measured under {act}")
        return record | {"verdict": "inconclusive", "reason": "; ".join(reasons)}
    gate = next(
        (g for g in gate_list
         if g["baseline"] == baseline and (g["activation"], g["optimizer"]) == (act, opt)),
        None,
    )  # fmt: skip
    record["gate"] = gate
    if gate is None or not gate["passed"]:
        why = gate["reason"] if gate else f"{baseline} was not trained"
        reasons.append(f"sanity gate failed ({why}): the setup is too weak, no verdict")
        return record | {"verdict": "inconclusive", "reason": "; ".join(reasons)}
    L = depths[-1]
    a = next(r for r in mine if r["depth"] == L)
    b = next(r for r in theirs if r["depth"] == L)
    var = a["target_variance"]
    ours, base = list(a[loss]), list(b["final_loss"])
    base_med = median(base)
    record |= {
        "train_depth": L, "loss_metric": loss, "final_loss": ours, "baseline_final_loss": base,
        "steps": a["steps"], "lr": a["lr"], "baseline_lr": b["lr"], "target_variance": var,
    }  # fmt: skip
    reasons.append(
        f"at L = {L} after {a['steps']} {opt} steps the {variant} net's "
        f"{TRAINING_LOSSES[loss]} reached {_spread(ours, var)} of the variance "
        f"(lr {a['lr']:g}; {baseline}: {_spread(base, var)}, lr {b['lr']:g}; "
        f"gate: {baseline} at L = {gate['depth']} reached {gate['loss']:.2g})"
    )
    for r in (a, b):
        if r.get("lr_at_edge"):
            reasons.append(f"{r['variant']}'s rate {r['lr']:g} is at an end of the grid "
                           f"({', '.join(f'{x:g}' for x in r['lr_grid'])})")  # fmt: skip
        if all(v is None for v in r.get("lr_scores") or [None]):
            reasons.append(f"{r['variant']} diverged at every rate of the grid")
    if base_med <= a["threshold"]:
        reasons.append(
            f"the {baseline} net trains at L = {L} too: there is nothing here to fix "
            "(try deeper nets)"
        )
        return record | {"verdict": "inconclusive", "reason": "; ".join(reasons)}
    limit = min(a["threshold"], base_med - MARGIN * var)
    passed = [v is not None and v <= limit for v in ours]
    record["seeds_passed"] = sum(passed)
    if all(passed):
        verdict = "confirmed"
    elif not any(passed):
        verdict = "refuted"
        reasons.append(
            f"in no seed did it reach {a['threshold'] / var:g} of the variance and beat the "
            f"{baseline} net by {MARGIN:g} of it"
        )
    else:
        verdict = "inconclusive"
        reasons.append(f"the seeds disagree: {sum(passed)} of {len(passed)} learned")
    return record | {"verdict": verdict, "reason": "; ".join(reasons)}
