"""What the memory hierarchy says about a time claim: the cache crossings inside its fit
window (:mod:`trainbench.measure.caches`), the step of the time per unit of work across
each, and the fit over the sizes beyond the last one (:func:`cache_crossings`), which
:func:`trainbench.harness.analysis.judge_claims` judges the claim by.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trainbench.claims.parse import Claim
from trainbench.measure import caches as cache_model
from trainbench.stats.fit import OrderFit, fit_order
from trainbench.stats.judge import MIN_SIZES
from trainbench.stats.power import TOP_RANGE


@dataclass(frozen=True)
class Hierarchy:
    """What the caches say about one time claim's fit window."""

    records: list[dict[str, Any]]  # the crossings inside the window, with their steps
    note: str  # "; the working set passes L3 (32 MiB) between L = 1024 and 2048; ..."
    beyond: OrderFit | None  # the fit beyond the last crossing, where it has enough sizes
    beyond_text: str
    step_at: str | None  # the crossings, where the time per work steps up at them


def cache_crossings(
    c: Claim,
    fit: OrderFit,
    points: Sequence[Mapping[str, Any]],
    samples: Sequence[Mapping[str, Any]] | None,
    caches: Sequence[Mapping[str, Any]],
    symbol: str,
    seed: int,
) -> Hierarchy | None:
    """The cache crossings inside the fit window of a time claim, the step of the time per
    unit of work across each, and the fit over the sizes beyond the last one (at least
    MIN_SIZES spanning TOP_RANGE); None where no crossing lies inside the window."""
    fit_to = fit.fit_from * fit.size_range
    inside = cache_model.in_window(
        cache_model.run_crossings(points, c.variant, caches), fit.fit_from, fit_to
    )
    if not inside:
        return None
    tpw = cache_model.time_per_work(points, c.variant, c.metric)
    records, texts = [], []
    for x in inside:
        ratio = tpw.ratio(x)
        records.append(x.to_dict() | {"time_per_work_ratio": ratio, "work_unit": tpw.unit})
        text = x.text(symbol)
        if ratio is not None:
            if abs(ratio - 1) < 0.05:
                moved = "stayed within 5%"
            else:
                moved = f"rose {ratio:.2f}×" if ratio >= 1 else f"fell {1 / ratio:.2f}×"
            text += f"; time per {tpw.unit} {moved} there"
        texts.append(text)
    located = cache_model.step_at_crossings(tpw, inside, fit.fit_from, fit_to, c.tolerance)
    sizes = cache_model.beyond_last(
        sorted({int(p["size"]) for p in points if p.get("variant") == c.variant}), inside, fit_to
    )
    beyond, beyond_text = None, ""
    if len(sizes) >= MIN_SIZES and sizes[-1] >= TOP_RANGE * sizes[0]:
        data, rounds = time_data(points, samples, c.variant, c.metric, sizes)
        try:
            beyond = fit_order(sizes, data, seed=seed, window=None, rounds=rounds)
            beyond_text = f"{symbol} = {sizes[0]}..{sizes[-1]}, {len(sizes)} sizes"
        except ValueError:
            beyond = None
    return Hierarchy(
        records=records,
        note="".join(f"; {t}" for t in texts),
        beyond=beyond,
        beyond_text=beyond_text,
        step_at="; ".join(x.text(symbol) for x in inside) if located else None,
    )


def time_data(
    points: Sequence[Mapping[str, Any]],
    samples: Sequence[Mapping[str, Any]] | None,
    variant: str,
    metric: str,
    sizes: Sequence[int],
) -> tuple[list[Any], list[list[int]] | None]:
    """The raw repeats and their pass labels of a time at ``sizes``, as
    :func:`trainbench.harness.analysis.fit_points` fits them; the points' medians where the
    run's samples are not at hand."""
    phase = metric[:3]
    raw: dict[int, tuple[list[float], list[int]]] = {n: ([], []) for n in sizes}
    for smp in samples or []:
        if smp["variant"] == variant and smp["phase"] == phase and smp["size"] in raw:
            raw[smp["size"]][0].append(smp["sample_s"])
            raw[smp["size"]][1].append(smp.get("round", 0))
    if all(raw[n][0] for n in sizes):
        return [raw[n][0] for n in sizes], [raw[n][1] for n in sizes]
    median = {p["size"]: p.get(metric) for p in points if p.get("variant") == variant}
    return [median.get(n) if median.get(n) is not None else math.nan for n in sizes], None
