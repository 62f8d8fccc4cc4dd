"""One row per claim, for the verdict tables of `trainbench verify` and `trainbench report`.

Plain dicts in (the ``claims`` of run summaries), plain dicts out; no torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from trainbench.core.vocabulary import METRIC_LABELS

# a trainability claim's training loss, in words
LOSS_WORDS = {"final_loss": "top prediction's loss", "deep_head_loss": "deep heads' best loss"}
LEARNER = {"final_loss": "top prediction", "deep_head_loss": "best head at depth ≥ L/2"}
ROW_KEYS = (
    "id", "problem", "statement", "run", "expected", "measured", "class", "verdict", "expect",
    "as_expected", "control", "reason", "partial",
)  # fmt: skip


def _measured(claim: Mapping[str, Any]) -> str:
    """The measured order: "k = 1.01 [0.97, 1.05]", "degree 1 (exact)", or a trainability
    claim's gradient ratio against its baseline's."""
    if claim.get("ratio") is not None:
        baseline = claim.get("baseline", "baseline")
        text = f"ratio {claim['ratio']:.2g} ({baseline}: {claim.get('baseline_ratio') or 0:.2g})"
        if claim.get("depth") is not None:
            text += f" at L = {claim['depth']}"
        if claim.get("loss_metric") and claim.get("final_loss") is not None:
            # per seed, as fractions of the targets' variance where the record has it
            var = claim.get("target_variance") or 1.0
            text += (f"; {LOSS_WORDS.get(claim['loss_metric'], 'loss')} "
                     f"{_losses(claim['final_loss'], var)} ({baseline}: "
                     f"{_losses(claim.get('baseline_final_loss'), var)})")  # fmt: skip
            if claim.get("train_depth") is not None:
                text += f" at L = {claim['train_depth']}"
        return text
    if claim.get("exponent") is None:
        return "—"
    if claim.get("by_degree"):
        return f"degree {claim['poly_degree']} (exact; k = {claim['exponent']:.2f})"
    lo, hi = claim.get("ci_low"), claim.get("ci_high")
    interval = f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else ""
    return f"k = {claim['exponent']:.2f}{interval}"


def _losses(values: Any, variance: float) -> str:
    """Losses per seed (a list; one number in older records) as "0.04, 0.03" (None: diverged)."""
    if values is None:
        return "—"
    items = values if isinstance(values, list) else [values]
    return ", ".join("diverged" if v is None else f"{v / variance:.2g}" for v in items)


def _control(claim: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]) -> str:
    control_id = claim.get("control")
    if not control_id:
        return ""
    control = by_id.get(control_id)
    if control is None or control.get("exponent") is None:
        return f"{control_id}: not measured"
    return f"{control_id}: {_measured(control)}"


def _expected(claim: Mapping[str, Any]) -> str:
    if claim.get("expected"):
        metric = METRIC_LABELS.get(claim.get("metric", ""), claim.get("metric", ""))
        return f"{claim['expected']} {metric}".strip()
    if claim.get("baseline"):
        trains = [LEARNER[m] for m in claim.get("metrics", ()) if m in LEARNER]
        return f"gradient kept vs {claim['baseline']}" + "".join(
            f"; {what} trains where {claim['baseline']}'s does not" for what in trains
        )
    return "—"


def verdict_rows(summaries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A row per claim of every summary, in the order the summaries list them.

    ``run`` names the run (``summary["run"]`` where set, else the experiment);
    ``expect`` is the verdict the claims file expects (``confirmed`` unless it says
    otherwise) and ``as_expected`` whether the measured verdict is that one.
    """
    rows = []
    for summary in summaries:
        claims = summary.get("claims") or []
        by_id = {c["id"]: c for c in claims}
        run = summary.get("run") or summary.get("experiment", "")
        for c in claims:
            expect = c.get("expect") or "confirmed"
            rows.append(
                {
                    "id": c["id"],
                    "problem": str(c.get("problem", "")),
                    "statement": c.get("statement", ""),
                    "run": run,
                    "expected": _expected(c),
                    "measured": _measured(c),
                    "class": c.get("best_class") or "",
                    "verdict": c.get("verdict", "inconclusive"),
                    "expect": expect,
                    "as_expected": c.get("verdict") == expect,
                    "control": _control(c, by_id),
                    "reason": c.get("reason", ""),
                    "partial": bool(c.get("partial")),
                }
            )
    return rows
