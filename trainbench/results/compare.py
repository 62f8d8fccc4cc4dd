"""Two saved runs of the same sweep compared: which metrics moved beyond what was measured.

``trainbench compare OLD NEW`` (pytest-benchmark's habit). Per variant and metric:

* the growth exponent: a **regression** where NEW's 95% interval lies wholly above OLD's
  (an exact count: its degree rose, or its exponent did), an improvement where wholly below;
  overlapping intervals are the same order. A time's exponent must clear OLD's interval by
  ``TIME_MARGIN`` (0.15, a claim's band) too: a rerun of the same code on a shared machine
  moved a small target's backward-time exponent from 0.77 [0.68, 1.00] to 1.19 [1.02, 1.62],
  and a flat forward time (18 to 21 µs over n = 8..128) from k = 0.00 to 1.70 [1.33, 1.96]:
  so its log-log slope over the top of the range must move beyond both intervals as well;
* a count's value at the largest size both runs measured (counts are exact): any rise is a
  regression, any fall an improvement;
* a time's value at that size (the drift-cancelled median and its IQR): slower or faster
  where the two IQR ranges do not overlap. Said, never a regression by itself: a machine's
  speed moves between runs more than within one (docs/method.md), and the time's exponent,
  judged above, is what a code change moves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from trainbench.core.vocabulary import FIT_METRICS, METRIC_LABELS, TIME_METRICS

REGRESSION, IMPROVEMENT, SAME = "regression", "improvement", "same"
SLOWER, FASTER = "slower", "faster"
EXACT = 1e-6  # exponents of exact counts closer than this are the same
TIME_MARGIN = 0.15  # what a time's exponent must clear both intervals by (a claim's band)


@dataclass(frozen=True)
class Change:
    """One metric of one variant in both runs."""

    variant: str
    metric: str
    what: str  # "exponent" or "value at n = N"
    old: str
    new: str
    status: str  # regression | improvement | same | slower | faster


def _exponent(fit: Mapping[str, Any]) -> str:
    if fit.get("poly_degree") is not None and not _nan(fit["poly_degree"]):
        return f"degree {int(fit['poly_degree'])} (exact)"
    if fit.get("exact"):
        return f"k = {fit['exponent']:.3f} (exact)"
    return f"k = {fit['exponent']:.2f} [{fit['ci_low']:.2f}, {fit['ci_high']:.2f}]"


def _nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _exact(fit: Mapping[str, Any]) -> bool:
    return bool(fit.get("exact")) or (
        fit.get("poly_degree") is not None and not _nan(fit["poly_degree"])
    )


def exponent_status(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """REGRESSION where NEW grows faster beyond both intervals, IMPROVEMENT where slower."""
    if _exact(old) and _exact(new):
        od, nd = old.get("poly_degree"), new.get("poly_degree")
        if od is not None and nd is not None and not _nan(od) and not _nan(nd) and od != nd:
            return REGRESSION if nd > od else IMPROVEMENT
        if abs(new["exponent"] - old["exponent"]) <= EXACT:
            return SAME
        return REGRESSION if new["exponent"] > old["exponent"] else IMPROVEMENT
    # A time's exponent must clear both intervals by a margin as well: between runs it
    # moves more than one run's interval says (a machine's mood; short runs, small sizes).
    timed = old.get("metric") in TIME_METRICS
    margin = TIME_MARGIN if timed else 0.0
    up = new["ci_low"] > old["ci_high"] + margin
    down = new["ci_high"] < old["ci_low"] - margin
    if timed and (up or down):
        # and the log-log slope over the top of the range moved the same way: a flat, noisy
        # time (dispatch overheads) gives a + b·n^k any k, its top slope stays near 0
        up, down = up and _top(new, old) > margin, down and _top(old, new) > margin
    return REGRESSION if up else IMPROVEMENT if down else SAME


def _top(high: Mapping[str, Any], low: Mapping[str, Any]) -> float:
    """How far ``high``'s top-slope interval lies above ``low``'s (negative: they overlap or
    lie the other way; -inf where either is missing)."""
    lo, hi = high.get("top_ci_low"), low.get("top_ci_high")
    if lo is None or hi is None or _nan(lo) or _nan(hi):
        return -math.inf
    return float(lo) - float(hi)


def _value(metric: str, p: Mapping[str, Any]) -> str:
    v = p.get(metric)
    if metric in TIME_METRICS:
        iqr = p.get(f"{metric[:3]}_iqr_s") or 0.0
        return f"{v * 1e3:.3g} ms ±{iqr * 1e3:.2g}"
    return f"{int(v):,}"


def value_status(metric: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """A count: any rise is a regression. A time: slower or faster where the IQR ranges do
    not overlap (one-pass points have no spread measured: the same)."""
    a, b = old.get(metric), new.get(metric)
    if metric not in TIME_METRICS:
        return SAME if a == b else REGRESSION if b > a else IMPROVEMENT
    if min(old.get("rounds") or 0, new.get("rounds") or 0) < 2:
        return SAME
    spread = f"{metric[:3]}_iqr_s"
    a_hi, b_lo = a + (old.get(spread) or 0) / 2, b - (new.get(spread) or 0) / 2
    a_lo, b_hi = a - (old.get(spread) or 0) / 2, b + (new.get(spread) or 0) / 2
    return SLOWER if b_lo > a_hi else FASTER if b_hi < a_lo else SAME


def _usable(p: Mapping[str, Any], metric: str) -> bool:
    v = p.get(metric)
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and not _nan(float(v))
    return ok and (metric not in TIME_METRICS or (p.get("rounds") or 0) > 0)


def compare(
    old: Mapping[str, Any], new: Mapping[str, Any], size_name: str = "n"
) -> list[Change]:
    """The changes from the summary ``old`` to the summary ``new`` (summary.json, each with
    its points and fits), per variant and metric both have."""
    changes: list[Change] = []
    old_fits = {(f["variant"], f["metric"]): f for f in old.get("fits") or []}
    new_fits = {(f["variant"], f["metric"]): f for f in new.get("fits") or []}
    for key in [k for k in old_fits if k in new_fits]:
        a, b = old_fits[key], new_fits[key]
        changes.append(Change(*key, "exponent", _exponent(a), _exponent(b),
                              exponent_status(a, b)))  # fmt: skip
    old_points = {(p["variant"], p["size"]): p for p in old.get("points") or []}
    new_points = {(p["variant"], p["size"]): p for p in new.get("points") or []}
    for variant in sorted({v for v, _ in old_points} & {v for v, _ in new_points}):
        for metric in FIT_METRICS:
            both = sorted(s for (v, s) in old_points if v == variant and (v, s) in new_points
                          and _usable(old_points[(v, s)], metric)
                          and _usable(new_points[(v, s)], metric))  # fmt: skip
            if not both:
                continue
            a, b = old_points[(variant, both[-1])], new_points[(variant, both[-1])]
            changes.append(Change(variant, metric, f"value at {size_name} = {both[-1]}",
                                  _value(metric, a), _value(metric, b),
                                  value_status(metric, a, b)))  # fmt: skip
    return changes


def regressions(changes: Sequence[Change]) -> list[Change]:
    return [c for c in changes if c.status == REGRESSION]


def as_records(changes: Sequence[Change]) -> list[dict[str, Any]]:
    return [asdict(c) | {"label": METRIC_LABELS.get(c.metric, c.metric)} for c in changes]
