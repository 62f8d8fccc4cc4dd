"""The breakdown of a sweep's points: per module (--by-module; :func:`module_fits`, the
growth order of each module's counts, and :func:`fastest_module`) and, for several
targets in one sweep, each target's metrics over the first's (:func:`ratios`,
:func:`ratio_lines`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from trainbench.core.vocabulary import TIME_METRICS
from trainbench.stats.fit import OrderFit, fit_order

MODULE_METRICS = ("bwd_flops", "fwd_flops", "saved_bytes")  # in trainbench.measure.modules' order
MODULE_INDEX = {"fwd_flops": 0, "bwd_flops": 1, "saved_bytes": 2}


def module_fits(
    points: Sequence[Mapping[str, Any]], min_fit_size: int = 1, size_name: str = "n"
) -> list[dict[str, Any]]:
    """Per variant, module and metric (--by-module): the growth order of the module's
    counts over the sizes it was counted at, and its share of the point's total at the
    largest. Empty where no point was counted per module."""
    out: list[dict[str, Any]] = []
    for v in sorted({p["variant"] for p in points}):
        rows = sorted(
            (p for p in points if p["variant"] == v and p["size"] >= min_fit_size
             and isinstance(p.get("modules"), dict)),
            key=lambda p: p["size"],
        )  # fmt: skip
        if len(rows) < 3:
            continue
        names = sorted({n for p in rows for n in p["modules"]})
        top = rows[-1]
        for name in names:
            for metric in MODULE_METRICS:
                i = MODULE_INDEX[metric]
                values = [float((p["modules"].get(name) or [0, 0, 0])[i]) for p in rows]
                if not any(values):
                    continue
                total = top.get(metric) or 0
                record: dict[str, Any] = {
                    "variant": v, "module": name, "metric": metric, "at_size": top["size"],
                    "value": int(values[-1]),
                    "share": values[-1] / total if total else None,
                }  # fmt: skip
                try:
                    fit = fit_order([p["size"] for p in rows], values, n_boot=0)
                except ValueError as err:  # zero at some sizes: not a growth to fit
                    record.update(order=None, note=str(err))
                else:
                    record.update(exponent=fit.exponent, poly_degree=fit.poly_degree,
                                  best_class=fit.best_class,
                                  order=module_order(fit, size_name))  # fmt: skip
                out.append(record)
    return out


def module_order(fit: OrderFit, size_name: str = "n") -> str:
    """``n²`` (an exact polynomial's degree), else ``k = 1.52``."""
    if fit.poly_degree is not None:
        return {0: "1", 1: size_name}.get(fit.poly_degree, f"{size_name}^{fit.poly_degree}")
    return f"k = {fit.exponent:.2f}"


def fastest_module(modules: Sequence[Mapping[str, Any]], variant: str,
                   metric: str = "bwd_flops") -> Mapping[str, Any] | None:  # fmt: skip
    """The module whose ``metric`` grows fastest (the deepest of equals: the most precise
    place), None where none was fitted."""
    mine = [m for m in modules if m["variant"] == variant and m["metric"] == metric
            and m.get("exponent") is not None]  # fmt: skip
    if not mine:
        return None
    order = lambda m: (m.get("poly_degree") if m.get("poly_degree") is not None  # noqa: E731
                       else m["exponent"], m["module"].count("."))  # fmt: skip
    return max(mine, key=order)


RATIO_METRICS = ("bwd_s", "fwd_s", "bwd_flops", "saved_bytes")


def ratios(points: Sequence[Mapping[str, Any]], variants: Sequence[str]) -> list[dict[str, Any]]:
    """Several targets in one sweep: at every size both measured, each target's value of
    each metric over the first target's (``variants[0]``)."""
    if len(variants) < 2:
        return []
    by = {(p["variant"], p["size"]): p for p in points}
    first, out = variants[0], []
    for v in variants[1:]:
        for size in sorted(s for (w, s) in by if w == v and (first, s) in by):
            a, b = by[(first, size)], by[(v, size)]
            for metric in RATIO_METRICS:
                x, y = a.get(metric), b.get(metric)
                timed = metric not in TIME_METRICS or (a.get("rounds") and b.get("rounds"))
                if timed and isinstance(x, (int, float)) and isinstance(y, (int, float)) and x:
                    if not (math.isnan(x) or math.isnan(y)):
                        out.append({"variant": v, "over": first, "metric": metric,
                                    "size": size, "ratio": y / x})  # fmt: skip
    return out


RATIO_LABELS = {"bwd_s": "backward time", "fwd_s": "forward time", "bwd_flops": "backward FLOPs",
                "saved_bytes": "saved bytes"}  # fmt: skip


def ratio_lines(
    points: Sequence[Mapping[str, Any]], variants: Sequence[str], size_name: str = "n"
) -> list[str]:
    """Several targets: each one's metrics over the first's at the largest size both have
    ("sdpa / eager at n = 1024: backward time 0.31×, ...")."""
    rows = ratios(points, variants)
    lines = []
    for v in variants[1:]:
        mine = [r for r in rows if r["variant"] == v]
        if not mine:
            continue
        top = max(r["size"] for r in mine)
        parts = [f"{RATIO_LABELS[r['metric']]} {r['ratio']:.3g}×" for r in mine
                 if r["size"] == top]  # fmt: skip
        lines.append(f"{v} / {variants[0]} at {size_name} = {top}: {', '.join(parts)}")
    return lines
