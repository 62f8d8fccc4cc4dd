"""A sweep's measured points fitted and its claims judged.

:func:`fit_points` fits every metric of every variant (times from their raw samples,
counts from their values), :func:`judge_claims` judges the claims that apply to the run
against those fits (a time claim also against the memory hierarchy:
:mod:`trainbench.harness.hierarchy`), and :func:`finish` does both for a run's result, also
for a partial run, with the breakdown per module and per target
(:mod:`trainbench.harness.breakdown`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trainbench.claims.claim import Claim
from trainbench.claims.parse import run_claims
from trainbench.core.vocabulary import FIT_METRICS, METRIC_LABELS, SPAN_METRICS, TIME_METRICS
from trainbench.experiments.builtin import Experiment
from trainbench.harness.breakdown import module_fits, ratio_lines
from trainbench.harness.hierarchy import cache_crossings
from trainbench.measure.point import undercounted_text
from trainbench.measure.timing import NOISY_SPREAD
from trainbench.stats.fit import OrderFit, fit_order
from trainbench.stats.judge import MIN_RANGE, MIN_SIZES, judge, order_label

if TYPE_CHECKING:
    from trainbench.harness.state import RunResult


NOT_COUNTED_FLOPS = (
    ": torch's FLOP counter has formulas for matrix products, convolutions and attention "
    "(and trainbench's for fused RNN kernels); elementwise work and other fused kernels "
    "count zero"
)

FLOP_METRICS = ("fwd_flops", "bwd_flops", "span_flops")
WORKING_SET = "working_set_bytes"
CPU_PEAK = ("judged on the working set (parameters, their gradients and the saved "
            "activations, counted exactly): the allocator's peak is measured on CUDA only")
# The time metric that a FLOP metric's work is done in, and back.
TIME_OF = {"fwd_flops": "fwd_s", "bwd_flops": "bwd_s", "span_flops": "bwd_s"}
FLOPS_OF = {"fwd_s": "fwd_flops", "bwd_s": "bwd_flops"}
# Time growing this much faster than its counted FLOPs is said in the reasons.
DISAGREEMENT = 0.5

# The reason of a claim nothing measured could judge (too few sizes, no point timed).
NOT_FITTED = "the metric could not be fitted"


def fit_points(
    points: list[dict[str, Any]],
    samples: list[dict[str, Any]],
    seed: int = 0,
    min_fit_size: int = 1,
    only: Collection[tuple[str, str]] | None = None,
) -> tuple[dict[tuple[str, str], OrderFit], list[str]]:
    """Fit every metric of every variant (``only``: these (variant, metric) pairs) over the
    sizes from ``min_fit_size`` on; return the fits and notes on what was not fitted."""
    fits: dict[tuple[str, str], OrderFit] = {}
    notes: list[str] = []
    variants = sorted({p["variant"] for p in points})
    if only is not None:
        variants = [v for v in variants if any(v == w for w, _ in only)]
    raw: dict[tuple[str, int, str], tuple[list[float], list[int]]] = {}
    for smp in samples:
        times, labels = raw.setdefault((smp["variant"], smp["size"], smp["phase"]), ([], []))
        times.append(smp["sample_s"])
        labels.append(smp.get("round", 0))
    for v in variants:
        rows = sorted(
            (p for p in points if p["variant"] == v and p["size"] >= min_fit_size),
            key=lambda p: p["size"],
        )
        sizes = [p["size"] for p in rows]
        if len(sizes) < 3:
            notes.append(f"{v}: not fitted (measured at {len(sizes)} size"
                         f"{'s' * (len(sizes) != 1)}; a fit needs 3)")  # fmt: skip
            continue
        for metric in FIT_METRICS:
            if only is not None and (v, metric) not in only:
                continue
            fitted = sizes
            if metric in TIME_METRICS:  # the sizes timed (a point may be counted only)
                fitted = [p["size"] for p in rows if p.get("rounds", 1)]
                if len(fitted) < 3:
                    notes.append(f"{v}/{metric}: not fitted (timed at {len(fitted)} size"
                                 f"{'s' * (len(fitted) != 1)}; a fit needs 3)")  # fmt: skip
                    continue
            values = [p.get(metric) for p in rows]
            if all(val is None or val == 0 for val in values):
                # no note for peak bytes off CUDA, nor for spans missing at every size (a run
                # made before them; or its notes say why)
                quiet = metric in ("peak_bytes", WORKING_SET) or (
                    metric in SPAN_METRICS and all(val is None for val in values)
                )
                if not quiet:
                    notes.append(
                        f"{v}/{metric}: not counted (zero or missing at every size)"
                        + (NOT_COUNTED_FLOPS if metric.endswith("_flops") else "")
                    )
                continue
            rounds = None
            if metric in TIME_METRICS:
                phase = metric[:3]
                empty: tuple[list[float], list[int]] = ([], [])
                data: list[Any] = [raw.get((v, size, phase), empty)[0] for size in fitted]
                rounds = [raw.get((v, size, phase), empty)[1] for size in fitted]
            else:
                data = [val if val is not None else math.nan for val in values]
            try:
                fits[(v, metric)] = fit_order(fitted, data, seed=seed, rounds=rounds)
            except ValueError as err:
                notes.append(f"{v}/{metric}: not fitted ({err})")
    return fits, notes


def not_fitted_reason(claim: Claim, fit_notes: Sequence[str]) -> str:
    """Why ``claim`` could not be judged: NOT_FITTED and, where it is known, why not."""
    if claim.metric == "peak_bytes":
        return f"{NOT_FITTED} (peak bytes are measured on CUDA only)"
    for prefix in (f"{claim.variant}/{claim.metric}: ", f"{claim.variant}: "):
        why = next((n[len(prefix):] for n in fit_notes if n.startswith(prefix)), None)
        if why is not None:
            if why.startswith("not fitted (") and why.endswith(")"):
                why = why[len("not fitted (") : -1]
            return f"{NOT_FITTED} ({why})"
    return NOT_FITTED


def judge_claims(
    exp: Experiment,
    fits: dict[tuple[str, str], OrderFit],
    measured_variants: set[str],
    options: dict[str, Any] | None = None,
    claims: Sequence[Claim] | None = None,
    *,
    points: Sequence[Mapping[str, Any]] | None = None,
    samples: Sequence[Mapping[str, Any]] | None = None,
    caches: Sequence[Mapping[str, Any]] | None = None,
    seed: int = 0,
    fit_notes: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Judge the claims (default: the claims file's) that apply to a run with ``options``.

    ``points``: the run's point records. A time claim whose fitted points include
    noisy ones (IQR/median over NOISY_SPREAD) says how many in its reason and
    carries ``noisy_points``. ``caches``: the machine's (the run environment's
    ``caches``): a time claim whose fit window holds a point where the working set
    passes a cache names it in its reason, carries ``crossings``, and is judged by the
    cache rule of :func:`trainbench.stats.fit.judge` (``samples``: the raw timings, for the
    fit beyond the last crossing; without them the points' medians are fitted).
    ``fit_notes``: :func:`fit_points`' notes, for the reason of a claim it could not fit.
    """
    claims = run_claims(exp.name, options or {}, claims)
    claims_by_id = {c.id: c for c in claims}
    out = []
    for c in claims:
        if c.variant not in measured_variants:
            continue
        fit = fits.get((c.variant, c.metric))
        # peak bytes are the CUDA allocator's: on a CPU, a claim on them is judged on the
        # working set, counted exactly (parameters, their gradients, the saved activations)
        stand_in = c.metric == "peak_bytes" and fit is None and (c.variant, WORKING_SET) in fits
        if stand_in:
            fit = fits[(c.variant, WORKING_SET)]
        record: dict[str, Any] = {
            "id": c.id,
            "problem": c.problem,
            "statement": c.statement,
            "variant": c.variant,
            "metric": c.metric,
            "expected": order_label(c.expected, exp.size_name, c.order_class),
            "expected_exponent": c.expected,
            "expected_class": c.order_class,
            "tolerance": c.tolerance,
            "control": c.control,
            "is_control": c.is_control,
            "expect": c.expect,
        }
        if fit is None:
            record.update(verdict="inconclusive", reason=not_fitted_reason(c, fit_notes))
            under = undercounted(points or (), c.variant) if c.metric in FLOP_METRICS else None
            if under:
                record.update(reason=f"undercounted: {under} ran with no FLOP formula (their "
                              f"FLOPs count 0); {record['reason']}", undercounted=under)
            out.append(record)
            continue
        control_fit = None
        if c.control is not None and c.control in claims_by_id:
            cc = claims_by_id[c.control]
            control_fit = fits.get((cc.variant, cc.metric))
        hier = (
            cache_crossings(c, fit, points, samples, caches, exp.size_name, seed)
            if c.metric in TIME_METRICS and points and caches
            else None
        )
        v = judge(
            fit,
            c.expected,
            c.tolerance,
            control=control_fit,
            needs_control=c.control is not None,
            work=fits.get((c.variant, c.work_metric)) if c.work_metric else None,
            work_label=METRIC_LABELS.get(c.work_metric or "", "work"),
            order_class=c.order_class,
            check_class=c.check_class,
            beyond=hier.beyond if hier else None,
            beyond_text=hier.beyond_text if hier else "",
            step_at=hier.step_at if hier else None,
        )
        record.update(
            verdict=v.verdict,
            reason=v.reason,
            exponent=fit.exponent,
            ci_low=fit.ci_low,
            ci_high=fit.ci_high,
            best_class=fit.best_class,
            poly_degree=fit.poly_degree,
            poly_coefficients=fit.poly_coefficients,
            by_degree=v.by_degree,
            fit_sizes=[fit.fit_from, round(fit.fit_from * fit.size_range)],
            control_exponent=control_fit.exponent if control_fit else None,
        )
        if stand_in:
            record.update(judged_on=WORKING_SET,
                          reason=f"{CPU_PEAK}; {record['reason']}")  # fmt: skip
        flops = c.metric in FLOP_METRICS
        under = undercounted(points or (), c.variant, fit.fit_from) if flops else None
        if under:
            # A lower bound, not a count: it can neither confirm nor refute an order.
            record.update(
                verdict="inconclusive",
                reason=f"undercounted: {under} ran with no FLOP formula (their FLOPs count "
                f"0, so the counted FLOPs are a lower bound; {record['reason']})",
                undercounted=under,
                by_degree=False,
            )
        record["reason"] += _disagreement(c, fit, fits, under)
        if not c.check_class:
            record["reason"] += f" (band widened to ±{c.tolerance:g}, class not checked)"
        if hier is not None:
            record["reason"] += hier.note
            record["crossings"] = hier.records
        if c.metric in TIME_METRICS and points:
            fitted = _fitted_points(points, c.variant, fit)
            noisy = sum(_is_noisy(p, c.metric) for p in fitted)
            if noisy:
                record["reason"] += (
                    f"; {noisy} of {len(fitted)} points noisy (IQR/median > {NOISY_SPREAD:.0%})"
                )
                record["noisy_points"] = noisy
        out.append(record)
    return out


def undercounted(
    points: Sequence[Mapping[str, Any]], variant: str, from_size: float = 0
) -> str | None:
    """The ops that did arithmetic with no FLOP formula at the points of ``variant`` from
    ``from_size`` on, with their calls summed ("aten._foo × 12"); None where there is none."""
    calls: dict[str, int] = {}
    for p in points:
        if p.get("variant") != variant or p.get("size", 0) < from_size:
            continue
        text = p.get("undercounted")
        for part in text.split(", ") if isinstance(text, str) and text else ():
            name, _, n = part.rpartition(" × ")
            calls[name] = calls.get(name, 0) + int(n)
    return undercounted_text(calls)


def _disagreement(
    c: Claim, fit: OrderFit, fits: Mapping[tuple[str, str], OrderFit], under: str | None
) -> str:
    """Where the time of the claim's variant grows faster than its counted FLOPs by more
    than DISAGREEMENT: the words that say so (for a time claim and a FLOP claim alike)."""
    if c.metric in FLOPS_OF:
        time_fit, flops_fit = fit, fits.get((c.variant, FLOPS_OF[c.metric]))
    elif c.metric in TIME_OF:
        time_fit, flops_fit = fits.get((c.variant, TIME_OF[c.metric])), fit
    else:
        return ""
    if time_fit is None or flops_fit is None:
        return ""
    ranged = all(f.n_sizes >= MIN_SIZES and f.size_range >= MIN_RANGE and not f.pinned
                 for f in (time_fit, flops_fit))  # fmt: skip
    # beyond both intervals: a gap the noise of a short timing cannot make
    if not ranged or time_fit.ci_low - flops_fit.ci_high <= DISAGREEMENT:
        return ""
    why = (f"the FLOPs miss {under}" if under else
           "work the FLOP counter does not see (elementwise work, memory traffic) or the "
           "memory hierarchy")  # fmt: skip
    return (f"; time and work disagree: the time grows as k = {time_fit.exponent:.2f}, the "
            f"counted FLOPs as k = {flops_fit.exponent:.2f} ({why})")


def _fitted_points(
    points: Sequence[Mapping[str, Any]], variant: str, fit: OrderFit
) -> list[Mapping[str, Any]]:
    """The points of ``variant`` inside the fit's window."""
    top = fit.fit_from * fit.size_range * (1 + 1e-9)
    return [
        p
        for p in points
        if p.get("variant") == variant and fit.fit_from * (1 - 1e-9) <= p.get("size", 0) <= top
    ]


def _is_noisy(point: Mapping[str, Any], metric: str) -> bool:
    """Whether the time ``metric`` (fwd_s, bwd_s) of a point is noisy: its own IQR/median
    where the record has both, else the point's ``noisy`` mark (forward or backward)."""
    median, iqr = point.get(metric), point.get(metric.replace("_s", "_iqr_s"))
    if isinstance(median, (int, float)) and isinstance(iqr, (int, float)):
        if math.isfinite(median) and math.isfinite(iqr) and median > 0:
            return iqr / median > NOISY_SPREAD
    return bool(point.get("noisy"))


def finish(
    result: RunResult, exp: Experiment, seed: int, claims: Sequence[Claim] | None = None
) -> None:
    """Fit the measured points and judge the claims (also for a partial run)."""
    fits, notes = fit_points(result.points, result.samples, seed, exp.min_fit_size)
    judged = judge_claims(
        exp,
        fits,
        {p["variant"] for p in result.points},
        result.config.get("options"),
        claims,
        points=result.points,
        samples=result.samples,
        caches=(result.environment or {}).get("caches"),
        seed=seed,
        fit_notes=notes,
    )
    # A fit's verdict is that of the first claim on it expected to be confirmed (a
    # negative check on the same metric, expected refuted, does not stand for the row)
    verdict_of: dict[tuple[str, str], str] = {}
    for c in sorted(judged, key=lambda c: c.get("expect", "confirmed") != "confirmed"):
        verdict_of.setdefault((c["variant"], c["metric"]), c["verdict"])
    partial = not result.complete  # fitted over an interrupted run's points
    result.fits = [
        {
            "variant": v,
            "metric": m,
            **f.to_dict(),
            "verdict": verdict_of.get((v, m)),
            "partial": partial,
        }
        | ({"undercounted": under} if m in FLOP_METRICS
           and (under := undercounted(result.points, v, f.fit_from)) else {})
        for (v, m), f in fits.items()
    ]
    for v in sorted({p["variant"] for p in result.points}):
        under = undercounted(result.points, v)
        note = (f"{v}: FLOPs undercounted: {under} ran with no FLOP formula in this torch "
                "(their FLOPs count 0): its FLOP counts are lower bounds and no FLOP claim "
                "on it is judged") if under else None  # fmt: skip
        if note and note not in notes:
            notes.append(note)
    result.modules = module_fits(result.points, exp.min_fit_size, exp.size_name)
    if exp.foreign and len(exp.variants) > 1:  # several targets: each against the first
        ratio_notes = ratio_lines(result.points, [v.name for v in exp.variants], exp.size_name)
        notes.extend(n for n in ratio_notes if n not in notes)
    result.claims = [c | {"partial": partial} for c in judged]
    result.notes.extend(n for n in notes if n not in result.notes)  # a resumed run has them
