"""Rich tables and verdict lines for a run summary (plain dicts in, renderables out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from trainbench.core.vocabulary import METRIC_LABELS
from trainbench.stats.exact import crossover_text, polynomial_text

VERDICT_STYLE = {"confirmed": "green", "refuted": "red", "inconclusive": "yellow"}


def _si(x: float | None) -> str:
    if x is None:
        return "—"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _ms(median: float | None, iqr: float | None, rounds: int | None = None) -> str:
    if median is None:
        return "—"
    if rounds is not None and rounds <= 1:  # one pass: its spread is not measured
        return f"{median * 1e3:.3g} (1 pass: no spread measured)"
    return f"{median * 1e3:.3g} ±{(iqr or 0) * 1e3:.2g}"


# The columns a narrow terminal loses first (all of them are in measurements.csv).
DROPPED_FIRST = ("eff", "GFLOP/s", "depth", "nodes", "span FLOPs", "× eager", "compile s",
                 "peak MB", "fwd FLOPs", "saved MB", "fwd ms")  # fmt: skip


def points_table(
    summary: Mapping[str, Any], size_name: str, width: int | None = None
) -> Table:
    """One row per size and variant, sorted by variant then size. Where ``width`` (the
    terminal's columns) cannot hold every column whole, the least needed go first
    (:data:`DROPPED_FIRST`), said in the caption; the size, variant and backward time
    always stay."""
    cuda = any(p.get("peak_bytes") for p in summary["points"])
    compiled = any("compiled" in p for p in summary["points"])  # --compile
    spans = any(p.get("span_flops") for p in summary["points"])  # (not in older runs)
    names = [size_name, "variant", "fwd ms", "bwd ms", "fwd FLOPs", "bwd FLOPs", "nodes",
             "depth", *(("span FLOPs",) if spans else ()), "saved MB",
             *(("peak MB",) if cuda else ()), "GFLOP/s", "eff",
             *(("compile s", "× eager") if compiled else ())]  # fmt: skip
    rows = []
    for p in sorted(summary["points"], key=lambda p: (p["variant"], p["size"])):
        eff = p.get("efficiency")
        rows.append([
            str(p["size"]),
            p["variant"] + (" (noisy)" if p.get("noisy") else ""),
            _ms(p["fwd_s"], p["fwd_iqr_s"], p.get("rounds")),
            _ms(p["bwd_s"], p["bwd_iqr_s"], p.get("rounds")),
            _flops_cell(p, "fwd_flops"),
            _flops_cell(p, "bwd_flops"),
            str(p["graph_nodes"]),
            str(p["graph_depth"]),
            *((_si(p["span_flops"]) if p.get("span_flops") else "—",) if spans else ()),
            f"{p['saved_bytes'] / 1e6:.3g}",
            *((f"{(p.get('peak_bytes') or 0) / 1e6:.3g}",) if cuda else ()),
            f"{p['gflops']:.3g}" if p.get("gflops") is not None else "—",
            f"{eff:.0%}" if eff is not None else "—",
            *(_compile_cells(p) if compiled else ()),
        ])  # fmt: skip
    keep = list(range(len(names)))
    dropped: list[str] = []
    if width is not None:
        widths = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]

        def needed() -> int:  # cells, their padding (two each), the rules between and around
            return sum(widths[i] + 2 for i in keep) + len(keep) + 1

        for name in DROPPED_FIRST:
            if needed() <= width:
                break
            if name in names and names.index(name) in keep:
                keep.remove(names.index(name))
                dropped.append(name)
    table = Table(
        title=f"{summary['experiment']}: measurements (median ± IQR)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        caption=(f"left out to fit {width} columns: {', '.join(dropped)} (all in "
                 "measurements.csv)") if dropped else None,
        caption_justify="left",
    )  # fmt: skip
    for i in keep:
        table.add_column(names[i], justify="left" if i == 1 else "right", no_wrap=True)
    for r in rows:
        table.add_row(*(r[i] for i in keep))
    return table


def _flops_cell(p: Mapping[str, Any], metric: str) -> str:
    """A point's FLOPs; marked "≥" (a lower bound) where ops that do arithmetic ran with no
    FLOP formula (the run's notes name them)."""
    if p.get("undercounted"):
        return f"≥ {_si(p[metric])}" if p[metric] else "≥ 0 (undercounted)"
    return _si(p[metric]) if p[metric] else "not counted"


def _compile_cells(p: Mapping[str, Any]) -> tuple[str, str]:
    """--compile: the compile time and the speed-up over eager (or that it ran eagerly)."""
    if not p.get("compiled"):
        return ("not compiled" if "compiled" in p else "—", "—")
    speedup = p.get("speedup")
    return (f"{p['compile_s']:.3g}", f"{speedup:.2f}" if speedup else "—")


def fits_table(summary: Mapping[str, Any]) -> Table:
    table = Table(
        title="growth order: metric ≈ a + b·n^k", title_justify="left", box=box.SIMPLE_HEAD
    )
    for name in ("variant", "metric", "k", "95% interval", "class", "verdict"):
        table.add_column(name, no_wrap=True)
    for f in summary["fits"]:
        verdict = f.get("verdict")
        table.add_row(
            f["variant"],
            METRIC_LABELS.get(f["metric"], f["metric"]),
            f"{f['exponent']:.3f}",
            (f"exact (degree {f['poly_degree']})" if f.get("poly_degree") is not None
             else "exact" if f.get("exact") else f"[{f['ci_low']:.3f}, {f['ci_high']:.3f}]")
            + (" (undercounted: a lower bound)" if f.get("undercounted") else ""),
            f["best_class"],
            Text(verdict, style=VERDICT_STYLE.get(verdict, "")) if verdict else "",
        )
    return table


def _over(claim: Mapping[str, Any], size_name: str) -> str:
    lo, hi = claim.get("fit_sizes") or (None, None)
    return f" over {size_name} = {lo:g}..{hi:g}" if lo is not None else ""


def _degree(claim: Mapping[str, Any], size_name: str) -> str:
    """The words "exactly a polynomial of degree d in n; " for a count judged on its degree."""
    if not claim.get("by_degree"):
        return ""
    terms = claim.get("poly_coefficients")
    if not terms:
        return f"exactly a polynomial of degree {claim['poly_degree']} in {size_name}; "
    cross = crossover_text(terms, size_name)
    return (f"exactly {polynomial_text(terms, size_name)} (degree {claim['poly_degree']}"
            + (f"; {cross}" if cross else "") + "); ")


def verdict_lines(
    summary: Mapping[str, Any], descriptions: Mapping[str, str], size_name: str = "n"
) -> list[Text]:
    """One line per claim that is not itself a control, naming its control's exponent."""
    by_id = {c["id"]: c for c in summary["claims"]}
    lines = []
    for c in summary["claims"]:
        if c.get("is_control"):
            continue
        where = f"Problem {c['problem']}: " if c.get("problem") else ""
        text = Text(f"{where}{c['statement']} — ")
        text.append(c["verdict"], style=VERDICT_STYLE.get(c["verdict"], ""))
        expect = c.get("expect") or "confirmed"
        if expect != "confirmed":  # a negative check: say whether it came out as it must
            text.append(" (as expected)" if c["verdict"] == expect else f" (expected {expect})")
        if c["verdict"] == "confirmed" and c.get("exponent") is not None:
            interval = f"[{c['ci_low']:.2f}, {c['ci_high']:.2f}]"
            text.append(
                f" ({_degree(c, size_name)}k = {c['exponent']:.2f} {interval}{_over(c, size_name)})"
            )
        else:
            text.append(f" ({c['reason']})")
        control = by_id.get(c.get("control") or "")
        if control is not None and control.get("exponent") is not None:
            what = descriptions.get(control["variant"], control["variant"])
            text.append(
                f"; control ({what}) is {control['expected']}: "
                f"{_degree(control, size_name)}k = {control['exponent']:.2f}"
                f"{_over(control, size_name)} ({control['verdict']})"
            )
        if c.get("judged_on") and c["verdict"] == "confirmed":
            text.append(f" [judged on {METRIC_LABELS.get(c['judged_on'], c['judged_on'])}: "
                        "no allocator peak on a CPU]")  # fmt: skip
        if c.get("partial"):
            text.append(" [partial run]")
        lines.append(text)
    return lines


def _g(x: float | None) -> str:
    return "—" if x is None else f"{x:.3g}"


def _table(title: str, columns: Sequence[str]) -> Table:
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i < 2 else "right")
    return t


def trainability_tables(summary: Mapping[str, Any]) -> list[Table]:
    """The gradient ratio per activation, variant and depth; the final losses (every
    optimizer), the sanity gates, deep supervision's checks."""
    from trainbench.trainability.files import ratios
    from trainbench.trainability.judge import median

    signal, training = summary["gradient_signal"], summary["training"]
    depths = sorted({r["depth"] for r in signal})
    keys = list(dict.fromkeys((r["activation"], r["variant"]) for r in signal))
    t1 = _table(
        "gradient signal at initialisation: ‖∂Loss/∂W_1‖ / ‖∂Loss/∂W_L‖ (median of seeds)",
        ["activation", "variant", *(f"L = {d}" for d in depths)],
    )
    for act, v in keys:
        t1.add_row(act, v, *(_g(median(r) if r else None)
                             for r in (ratios(signal, act, v, d) for d in depths)))  # fmt: skip
    tables = [t1]
    if not training:
        return tables
    trained = sorted({r["depth"] for r in training})
    t2 = _table(
        "training: the top prediction's held-out MSE / var(y) after the last step, median "
        "(range) of seeds, and the learning rate chosen",
        ["activation", "variant", "optimizer", *(f"L = {d}" for d in trained)],
    )
    t2.columns[2].justify = "left"
    for act, v in keys:
        for opt in dict.fromkeys(r["optimizer"] for r in training):
            cells = []
            for d in trained:
                r = next((r for r in training if (r["activation"], r["variant"], r["optimizer"],
                          r["depth"]) == (act, v, opt, d)), None)  # fmt: skip
                if r is None:
                    cells.append("")
                else:
                    cells.append(f"{_seeds(r['final_loss'], r['target_variance'])} ({r['lr']:g})")
            if any(cells):
                t2.add_row(act, v, opt, *cells)
    tables.append(t2)
    gates = summary.get("gates") or []
    if gates:
        t3 = _table(
            "sanity gate: the baseline trains at the smallest depth",
            ["family", "activation", "optimizer", "baseline", "reached", "gate"],
        )
        for g in gates:
            mark = {True: "passed", False: "FAILED", None: "not trained"}[g["passed"]]
            reached = f"L = {g['depth']}: {_g(g.get('loss'))}" if "depth" in g else ""
            t3.add_row(g["family"], g["activation"], g["optimizer"], g["baseline"], reached,
                       f"≤ {g['limit']:g}: {mark}")  # fmt: skip
        tables.append(t3)
    tuned = [r for r in training if r.get("finetune")]
    if tuned:
        t4 = _table(
            "deep supervision at the deepest trained depth: the top head's loss / var(y) after "
            "the heads are dropped and training goes on on the top head alone, against the "
            "plain net trained as many steps; the first/last gradient ratio of the top head's "
            "loss after training",
            ["activation", "variant", "steps", "top head after", "top-loss ratio"],
        )
        for r in tuned:
            ft = r["finetune"]
            t4.add_row(r["activation"], r["variant"], f"{r['steps']} + {ft['steps']}",
                       _seeds(ft["final_loss"], r["target_variance"]),
                       " ".join(_g(x) for x in r["trained_ratio"]))  # fmt: skip
        tables.append(t4)
    return tables


def _seeds(values: Sequence[float | None], variance: float) -> str:
    """The median [min–max] of a loss over seeds, as a fraction of the variance."""
    from trainbench.trainability.judge import median

    rel = [None if v is None else v / variance for v in values]
    if len(rel) == 1:
        return "diverged" if rel[0] is None else _g(rel[0])
    fin = [v for v in rel if v is not None]
    med = median(rel)
    head = "diverged" if med == float("inf") else _g(med)
    span = f"{_g(min(fin))}–{_g(max(fin))}" if fin else "diverged"
    lost = len(rel) - len(fin)
    return f"{head} ({span}{f', {lost} diverged' if lost else ''})"


def verdict_table(rows: Sequence[Mapping[str, Any]], title: str = "verdicts") -> Table:
    """`trainbench verify`'s table: one row per claim (rows of trainbench.results.verdicts)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("claim", "problem", "expected", "measured", "class", "verdict", "control"):
        table.add_column(name, no_wrap=name != "expected")
    for r in rows:
        verdict = Text(r["verdict"], style=VERDICT_STYLE.get(r["verdict"], ""))
        if not r["as_expected"]:
            verdict.append(f" (expected {r['expect']})", style="bold")
        elif r["expect"] != "confirmed":
            verdict.append(" (as expected)")
        if r.get("partial"):
            verdict.append(" [partial]")
        table.add_row(
            r["id"], r["problem"], r["expected"], r["measured"], r["class"], verdict, r["control"]
        )
    return table


COMPARE_STYLE = {"regression": "bold red", "improvement": "green", "slower": "yellow",
                 "faster": "cyan"}  # fmt: skip


def compare_table(changes: Sequence[Any], title: str) -> Table:
    """``trainbench compare``: one row per variant, metric and what was compared."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("variant", "metric", "compared", "old", "new", "change"):
        table.add_column(name, no_wrap=True)
    for c in changes:
        table.add_row(c.variant, METRIC_LABELS.get(c.metric, c.metric), c.what, c.old, c.new,
                      Text(c.status, style=COMPARE_STYLE.get(c.status, "")))  # fmt: skip
    return table


def _share(m: Mapping[str, Any]) -> str:
    return f"{m['share']:.0%}" if m.get("share") is not None else "—"


def modules_table(summary: Mapping[str, Any], size_name: str = "n") -> Table:
    """--by-module: per variant and module, its backward FLOPs, forward FLOPs and saved
    bytes at the largest size, each with its share of the total and its order."""
    mods = summary.get("modules") or []
    top = max((m["at_size"] for m in mods), default=0)
    table = Table(title=f"per module ({size_name} = {top}: value, share of the total, order)",
                  title_justify="left", box=box.SIMPLE_HEAD)  # fmt: skip
    for name in ("variant", "module", "bwd FLOPs", "fwd FLOPs", "saved MB"):
        table.add_column(name, no_wrap=True)
    by = {(m["variant"], m["module"], m["metric"]): m for m in mods}
    for variant, module in sorted({(m["variant"], m["module"]) for m in mods}):
        cells = []
        for metric in ("bwd_flops", "fwd_flops", "saved_bytes"):
            m = by.get((variant, module, metric))
            if m is None:
                cells.append("—")
                continue
            value = f"{m['value'] / 1e6:.3g}" if metric == "saved_bytes" else _si(m["value"])
            cells.append(f"{value} ({_share(m)}) {m.get('order') or '—'}")
        table.add_row(variant, "  " * module.count(".") + module, *cells)
    return table


def modules_lines(summary: Mapping[str, Any], size_name: str = "n") -> list[str]:
    """Per variant, the module whose backward FLOPs grow fastest, with its share."""
    from trainbench.harness.breakdown import fastest_module

    mods = summary.get("modules") or []
    lines = []
    for variant in sorted({m["variant"] for m in mods}):
        m = fastest_module(mods, variant)
        if m is not None:
            lines.append(f"{variant}: backward FLOPs grow fastest in {m['module']}: "
                         f"{m['order']} ({_share(m)} of them at {size_name} = {m['at_size']})")
    return lines

