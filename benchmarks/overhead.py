"""The timing harness's own overhead, and the wall time of ``trainbench verify --quick``.

    python benchmarks/overhead.py [--threads N] [--rounds 7] [--min-time 0.05]
                                  [--skip-verify] [--json PATH]

trainbench times a point with ``trainbench.measure.timing.time_round``: the forward on
its own (a fresh graph each run), then the backward on one graph kept with
``retain_graph=True``, both through ``torch.utils.benchmark.Timer``'s
``blocked_autorange``. If that machinery (the Timer's block-size estimate, its
per-block timer calls, the lambdas around the statement) cost a noticeable
fraction of a short statement, the small sizes of every sweep would read slow
and the fitted exponents would come out low. So this script times a trivial
training step of a tiny linear model, from a few µs of work to a small matrix
product, two ways:

* the harness: ``time_round(forward, threads=T, min_time=M)``, its medians;
* by hand: ``time.perf_counter()`` around a loop of N calls of ``forward()``,
  and of ``root.backward(retain_graph=True)`` on one retained graph, the same
  threads, repeated until the same time budget is spent; the median of the
  per-call times. The garbage collector is off inside the timed loop, as
  ``timeit`` (under the Timer) turns it off (``--keep-gc`` leaves it on).

The two are interleaved over ``--rounds`` rounds, the order alternating, so
that drift of a shared machine favours neither. The ratio harness / by hand is
taken per round; the table shows its median, min and max (goal ≤ 1.05×).

Then, unless ``--skip-verify``, it runs ``trainbench verify --quick --quiet``
into a temporary folder (about a minute) and reports its wall time and exit code.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from trainbench.measure.graph import Forward
from trainbench.measure.timing import time_round

GOAL = 1.05
# (batch, in features, out features): from a statement of a few µs to a small product.
SIZES = ((1, 1, 1), (1, 16, 16), (16, 64, 64), (64, 256, 256), (128, 512, 512))


def make_forward(batch: int, d_in: int, d_out: int) -> Forward:
    torch.manual_seed(0)
    model = torch.nn.Linear(d_in, d_out)
    x = torch.randn(batch, d_in)

    def forward() -> list[torch.Tensor]:
        return [model(x).sum()]

    return forward


def hand_time(fn: Callable[[], object], *, min_time: float, keep_gc: bool) -> tuple[float, int]:
    """Median per-call time of ``fn()``, and the calls per timed block.

    Warms up, picks N so that a block of N calls takes about 1 ms (at least one
    call), then times blocks until ``min_time`` seconds are spent (at least 20
    blocks). Short blocks and a median leave out the blocks another process
    interrupted; the Timer's blocks are longer (see the docs).
    """
    singles = []
    for _ in range(5):
        t0 = time.perf_counter()
        fn()
        singles.append(time.perf_counter() - t0)
    one = max(statistics.median(singles[2:]), 1e-7)  # the first two calls warm up
    number = max(1, round(1e-3 / one))
    per_call: list[float] = []
    spent = 0.0
    gc_was = gc.isenabled()
    if not keep_gc:
        gc.disable()
    try:
        while spent < min_time or len(per_call) < 20:
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            block = time.perf_counter() - t0
            spent += block
            per_call.append(block / number)
    finally:
        if gc_was:
            gc.enable()
    return statistics.median(per_call), number


def hand_round(forward: Forward, *, min_time: float, keep_gc: bool) -> tuple[float, float]:
    """Forward and backward medians by hand; backward on one retained graph."""
    fwd, _ = hand_time(forward, min_time=min_time, keep_gc=keep_gc)
    (root,) = forward()
    bwd, _ = hand_time(lambda: root.backward(retain_graph=True), min_time=min_time, keep_gc=keep_gc)
    return fwd, bwd


def harness_into(row: dict, forward: Forward, args: argparse.Namespace, threads: int) -> None:
    fwd, bwd = time_round(forward, threads=threads, min_time=args.min_time)
    row["harness_fwd"].append(fwd.median)
    row["harness_bwd"].append(bwd.median)
    row["npr"].append((fwd.number_per_run, bwd.number_per_run, len(fwd.samples), len(bwd.samples)))


def hand_into(row: dict, forward: Forward, args: argparse.Namespace, threads: int) -> None:
    fwd, bwd = hand_round(forward, min_time=args.min_time, keep_gc=args.keep_gc)
    row["hand_fwd"].append(fwd)
    row["hand_bwd"].append(bwd)


def measure_overhead(args: argparse.Namespace, threads: int) -> list[dict]:
    forwards = {size: make_forward(*size) for size in SIZES}
    rows = {
        size: {"harness_fwd": [], "harness_bwd": [], "hand_fwd": [], "hand_bwd": [], "npr": []}
        for size in SIZES
    }
    for r in range(args.rounds):
        for size, forward in forwards.items():
            methods = (harness_into, hand_into) if r % 2 == 0 else (hand_into, harness_into)
            for method in methods:
                method(rows[size], forward, args, threads)
    out = []
    for size, row in rows.items():
        rec: dict = {"batch": size[0], "in": size[1], "out": size[2]}
        for part in ("fwd", "bwd"):
            ratios = [
                h / m for h, m in zip(row[f"harness_{part}"], row[f"hand_{part}"], strict=True)
            ]
            rec[part] = {
                "harness_median_s": statistics.median(row[f"harness_{part}"]),
                "hand_median_s": statistics.median(row[f"hand_{part}"]),
                "ratio_median": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "ratios": ratios,
                "harness_s": row[f"harness_{part}"],
                "hand_s": row[f"hand_{part}"],
            }
        rec["harness_number_per_run"] = {
            "fwd": [n[0] for n in row["npr"]],
            "bwd": [n[1] for n in row["npr"]],
            "fwd_samples": [n[2] for n in row["npr"]],
            "bwd_samples": [n[3] for n in row["npr"]],
        }
        out.append(rec)
    return out


def run_verify() -> dict:
    with tempfile.TemporaryDirectory(prefix="trainbench-verify-") as tmp:
        cmd = [sys.executable, "-m", "trainbench", "verify", "--quick", "--quiet"]
        cmd += ["--out", str(Path(tmp) / "out")]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    rec = {"command": " ".join(cmd[1:]), "wall_s": wall, "exit_code": proc.returncode}
    if proc.returncode != 0:
        rec["output_tail"] = (proc.stdout + proc.stderr)[-2000:]
    return rec


def fmt_time(t: float) -> str:
    return f"{t * 1e6:.1f} µs" if t < 1e-3 else f"{t * 1e3:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.05, help="as trainbench's default")
    parser.add_argument("--keep-gc", action="store_true", help="GC on in the hand-written loop")
    parser.add_argument("--skip-verify", action="store_true", help="skip verify --quick (~70 s)")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    results = measure_overhead(args, threads)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(
        f"{threads} threads, {args.rounds} rounds, min_time {args.min_time} s, "
        f"torch {torch.__version__}, gc {'on' if args.keep_gc else 'off'} in the hand loop"
        + (f", load {load[0]:.2f}" if load else "")
    )
    print(
        f"{'batch×in→out':<16}{'part':<5}{'harness':>11}{'by hand':>11}"
        f"{'ratio':>8}{'min':>8}{'max':>8}{'N/run':>7}{'samples':>8}"
    )
    worst = 0.0
    for rec in results:
        shape = f"{rec['batch']}×{rec['in']}→{rec['out']}"
        for part in ("fwd", "bwd"):
            p = rec[part]
            runs = rec["harness_number_per_run"]
            npr = statistics.median(runs[part])
            nsamples = statistics.median(runs[f"{part}_samples"])
            worst = max(worst, p["ratio_median"])
            print(
                f"{shape:<16}{part:<5}{fmt_time(p['harness_median_s']):>11}"
                f"{fmt_time(p['hand_median_s']):>11}{p['ratio_median']:>7.3f}x"
                f"{p['ratio_min']:>8.3g}{p['ratio_max']:>8.3g}{npr:>7.0f}{nsamples:>8.0f}"
            )
            shape = ""
    met = worst <= GOAL
    print(f"largest median ratio {worst:.3f}x: goal ≤ {GOAL}x {'met' if met else 'NOT met'}")

    verify = None
    if not args.skip_verify:
        verify = run_verify()
        print(f"trainbench verify --quick: {verify['wall_s']:.1f} s, exit {verify['exit_code']}")
        if verify["exit_code"] != 0:
            print(verify["output_tail"])
    if args.json:
        payload = {
            "threads": threads,
            "rounds": args.rounds,
            "min_time": args.min_time,
            "keep_gc": args.keep_gc,
            "torch": torch.__version__,
            "loadavg": load,
            "goal": GOAL,
            "goal_met": met,
            "overhead": results,
            "verify_quick": verify,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
