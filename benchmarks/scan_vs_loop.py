"""Beyond Problem 4: the x-only UGRNN as a time loop and as a prefix scan, side by side.

    python benchmarks/scan_vs_loop.py [--out results/beyond-p4] [--max-len 1024]
                                      [--time-lens 16,64,256,1024] [--rounds 15]

For the RNN LM with each recurrence (``ugrnn``: Problem 4's, through a nonlinearity;
``ugrnn-x``: gates and update from x alone, a time loop; ``ugrnn-x-scan``: the same by a
Hillis–Steele scan; ``none``: no recurrence) it records the backward graph at each T and
writes, per cell and T (``schedule.csv``):

* ``graph_depth``: the critical path in nodes, T_∞ of a machine with a processor for
  every element of every op (a vectorised op takes one step);
* ``span_flops``: the critical path weighed in counted FLOPs (products only);
* ``bwd_elements`` and ``split_p{P}``: the backward's elements moved (its bytes moved
  over 4, float32: the cost of elementwise work, which moves memory) and its finish time
  on P processors each moving one element per step, when each op's elements divide
  over them, level by level (``trainbench.measure.span.split_schedule``); P = 1 is the work.

From those it prints, per P, the lengths at which the scan finishes before the loop
(``crossover.csv``), draws ``depth.png`` (T_∞ of every cell against T) and
``schedule.png`` (the scan's and the loop's T_P against T), and times one forward and
backward of each x-only form at ``--time-lens`` on one thread, alternating the two
forms round by round (``time.csv``: median ms of each, and the median and range of the
scan's time over the loop's within a round).
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path
from typing import Any

import torch
from torch.utils.benchmark import Timer

from trainbench.experiments.builtin import EXPERIMENTS
from trainbench.measure import span
from trainbench.measure.point import flop_counter

CELLS = ("ugrnn", "ugrnn-x", "ugrnn-x-scan", "none")
# processors that each move one element per step; None: as many as any level can use
PROCESSORS = (1, 2**10, 2**14, 2**16, 2**18, 2**20, 2**22, None)
OPTIONS = {"vocab": 8, "hidden": 128, "batch": 16}  # the claims file's runs of these cells
CPU = torch.device("cpu")


def lengths(top: int) -> list[int]:
    out, t = [], 2
    while t <= top:
        out += [t] if t * 3 // 2 > top or t < 4 else [t, t * 3 // 2]
        t *= 2
    return sorted({x for x in out if x <= top})


def record(cell: str, length: int) -> dict[str, int | str]:
    roots = EXPERIMENTS["rnn-lm"].forward("full", length, OPTIONS | {"cell": cell}, CPU,
                                          torch.float32)()  # fmt: skip
    with flop_counter() as counter:
        dag = span.record_backward(roots, counter, retain_graph=False)
    row: dict[str, int | str] = {
        "cell": cell, "T": length, "graph_depth": max(span.levels(dag)) + 1,
        "span_flops": span.span(dag, dag.flops),
    }  # fmt: skip
    elements = [b // 4 for b in dag.bytes]  # float32: one element is 4 bytes
    row["bwd_elements"] = sum(elements)
    for p in PROCESSORS:
        row[f"split_p{p or 'inf'}"] = span.split_schedule(dag, elements, p)
    return row


def crossovers(rows: list[dict[str, int | str]]) -> list[dict[str, int | str]]:
    """Per P, the lengths T at which the scan finishes before the loop: with P fixed the
    scan's O(T log T) work overtakes the loop's 2 levels per step at large T, so where
    it wins at all it wins over a window of T (its top: the largest T measured if it
    still wins there)."""
    by = {(r["cell"], r["T"]): r for r in rows}
    ts = sorted({int(r["T"]) for r in rows})
    out = []
    for p in PROCESSORS:
        col = f"split_p{p or 'inf'}"
        wins = [t for t in ts if by["ugrnn-x-scan", t][col] < by["ugrnn-x", t][col]]
        out.append({
            "P": _power(p), "scan_faster_from_T": min(wins, default=""),
            "scan_faster_up_to_T": max(wins, default=""),
            f"scan_over_loop_at_T{ts[-1]}": round(
                int(by["ugrnn-x-scan", ts[-1]][col]) / int(by["ugrnn-x", ts[-1]][col]), 3),
        })  # fmt: skip
    return out


def _block(timer: Timer, number: int) -> float:
    timer.timeit(1)  # untimed: the other form's data has left the caches
    return timer.timeit(number).median


def time_forms(lens: list[int], rounds: int) -> list[dict[str, float | int]]:
    """Per T, the two forms timed in alternation, a block of each per round (the block
    sized to about 0.2 s of the loop, after one untimed run), and the scan's time over
    the loop's taken within each round, so that what the machine's speed does to both
    cancels: the medians over the rounds, and the ratios' range."""
    rows = []
    for length in lens:
        timers = {}
        for cell in ("ugrnn-x", "ugrnn-x-scan"):
            fwd = EXPERIMENTS["rnn-lm"].forward("full", length, OPTIONS | {"cell": cell}, CPU,
                                                torch.float32)  # fmt: skip
            timers[cell] = Timer("torch.autograd.backward(f())", globals={"f": fwd, "torch": torch},
                                 num_threads=1)  # fmt: skip
        once = timers["ugrnn-x"].timeit(3).median  # warm-up, and the block's size
        number = max(1, round(0.2 / once))
        for t in timers.values():
            t.timeit(number)
        loop, scan, ratio = [], [], []
        for _ in range(rounds):
            a, b = (_block(timers[c], number) for c in ("ugrnn-x", "ugrnn-x-scan"))
            loop.append(a)
            scan.append(b)
            ratio.append(b / a)
        rows.append({
            "T": length, "rounds": rounds, "runs_per_block": number,
            "loop_ms": round(statistics.median(loop) * 1e3, 3),
            "scan_ms": round(statistics.median(scan) * 1e3, 3),
            "scan_over_loop": round(statistics.median(ratio), 3),
            "ratio_min": round(min(ratio), 3), "ratio_max": round(max(ratio), 3),
        })  # fmt: skip
    return rows


def write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _finish(fig: Any, ax: Any, path: Path, ylabel: str, title: str, y_base: int) -> None:
    """Both figures' axes (log T against a log y), legend and file."""
    import matplotlib.pyplot as plt

    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=y_base)
    ax.set_xlabel("sentence length T")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(rows: list[dict[str, int | str]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {
        "ugrnn": "ugrnn (Problem 4: h[t-1] through tanh)", "ugrnn-x": "ugrnn-x (time loop)",
        "ugrnn-x-scan": "ugrnn-x-scan (prefix scan)", "none": "none (no recurrence)",
    }  # fmt: skip
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for cell in CELLS:
        mine = [r for r in rows if r["cell"] == cell]
        ax.plot([r["T"] for r in mine], [r["graph_depth"] for r in mine], "o-", ms=3,
                label=labels[cell])  # fmt: skip
    _finish(fig, ax, out / "depth.png", "critical path T_∞ (backward graph depth, nodes)",
            "Parallel run time of the RNN LM's backward", y_base=2)  # fmt: skip

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for p, colour in zip(PROCESSORS, plt.rcParams["axes.prop_cycle"].by_key()["color"],
                         strict=False):  # fmt: skip
        col = f"split_p{p or 'inf'}"
        for cell, style in (("ugrnn-x", "--"), ("ugrnn-x-scan", "-")):
            mine = [r for r in rows if r["cell"] == cell]
            ax.plot([r["T"] for r in mine], [r[col] for r in mine], style, color=colour,
                    label=f"P = {_power(p)}" if cell == "ugrnn-x-scan" else None)  # fmt: skip
    _finish(fig, ax, out / "schedule.png", "T_P (elements moved per processor; ∞: levels)",
            "x-only UGRNN backward on P processors: scan (solid), loop (dashed)",
            y_base=10)  # fmt: skip


def _power(p: int | None) -> str:
    return "∞" if p is None else "1" if p == 1 else f"2^{p.bit_length() - 1}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/beyond-p4"))
    parser.add_argument("--max-len", type=int, default=1024)
    parser.add_argument("--time-lens", default="16,64,256,1024")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    rows = [record(cell, t) for cell in CELLS for t in lengths(args.max_len)]
    write(args.out / "schedule.csv", rows)
    cross = crossovers(rows)
    write(args.out / "crossover.csv", cross)
    plot(rows, args.out)
    for r in cross:
        print(r)
    lens = [int(x) for x in args.time_lens.split(",") if x]
    if lens:
        timed = time_forms(lens, args.rounds)
        write(args.out / "time.csv", timed)
        for r in timed:
            print(r)


if __name__ == "__main__":
    main()
