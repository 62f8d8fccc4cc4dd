"""``trainbench compare OLD NEW``: a planted regression exits 1 and names it; a rerun of the
same code exits 0; the rules on synthetic fits and points."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import targets_for_tests as T
from cli_helpers import assert_one_line_error, invoke

import trainbench
from trainbench.results.compare import (
    IMPROVEMENT,
    REGRESSION,
    SAME,
    SLOWER,
    compare,
    exponent_status,
    value_status,
)

pytestmark = pytest.mark.slow  # real sweeps or real processes

SIZES = [4, 8, 16, 32, 64]
RUNS = {"repeats": 3, "max_passes": 3, "min_time": 0.002, "reference": "64", "threads": 1}


def _run(target: object, folder: Path) -> Path:
    return trainbench.sweep(target, SIZES, name="m", out=folder, **RUNS).folder


def test_a_planted_regression_exits_1_and_a_rerun_0(tmp_path: Path) -> None:
    before = _run(T.chain, tmp_path / "before")
    again = _run(T.chain, tmp_path / "again")
    worse = _run(T.attention, tmp_path / "worse")  # the same sweep, now quadratic
    same = invoke("compare", before, again, "--json")
    assert same.exit_code == 0, same.stdout
    record = json.loads(same.stdout)
    counts = [c for c in record["changes"] if c["metric"] == "bwd_flops"]
    assert {c["status"] for c in counts} == {SAME} and len(counts) == 2  # exponent, value
    bad = invoke("compare", before, worse)
    assert bad.exit_code == 1
    text = " ".join(bad.stdout.split())
    assert "model backward FLOPs exponent degree 1 (exact) degree 2 (exact) regression" in text
    assert "regressions: " in text and "model bwd_flops (exponent)" in text


def test_runs_of_different_sweeps_or_no_run_are_one_line_errors(tmp_path: Path) -> None:
    mine = _run(T.chain, tmp_path / "a")
    other = trainbench.sweep("mlp-heads", [1, 2, 4, 8], options={"width": 8, "batch": 4,
                             "in_dim": 4}, out=tmp_path / "b", **RUNS).folder  # fmt: skip
    result = invoke("compare", mine, other)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("compare two runs",))
    result = invoke("compare", mine, tmp_path / "nothing")
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("nothing",))


def _fit(k: float, lo: float, hi: float, **extra: object) -> dict:
    return {"variant": "v", "metric": "bwd_s", "exponent": k, "ci_low": lo, "ci_high": hi,
            "exact": False, "poly_degree": None} | extra  # fmt: skip


def test_exponents_move_only_beyond_both_intervals() -> None:
    assert exponent_status(_fit(1.0, 0.9, 1.1), _fit(1.08, 1.0, 1.2)) == SAME
    assert exponent_status(_fit(1.0, 0.9, 1.1), _fit(1.3, 1.15, 1.4)) == SAME  # within 0.15
    slopes = {"top_ci_low": 0.9, "top_ci_high": 1.1}
    steeper = {"top_ci_low": 1.4, "top_ci_high": 1.6}
    assert exponent_status(_fit(1.0, 0.9, 1.1, **slopes), _fit(1.5, 1.3, 1.7, **steeper)) == (
        REGRESSION
    )
    # a flat, noisy time: a + b·n^k reads any k, its slope at the top stays near 0
    flat = {"top_ci_low": -0.1, "top_ci_high": 0.2}
    assert exponent_status(_fit(0.0, 0.0, 0.0, **flat), _fit(1.7, 1.33, 1.96, **flat)) == SAME
    counts = {"metric": "bwd_flops"}
    assert exponent_status(_fit(1.0, 0.9, 1.1, **counts), _fit(1.3, 1.15, 1.4, **counts)) == (
        REGRESSION
    )
    assert exponent_status(_fit(2.0, 1.9, 2.1, **steeper), _fit(1.0, 0.9, 1.1, **slopes)) == (
        IMPROVEMENT
    )
    exact1 = _fit(1.0, 1.0, 1.0, exact=True, poly_degree=1)
    exact2 = _fit(1.9, 1.9, 1.9, poly_degree=2)
    assert exponent_status(exact1, exact2) == REGRESSION
    assert exponent_status(exact2, exact1) == IMPROVEMENT


def test_a_rising_count_is_a_regression_a_slower_time_is_only_said() -> None:
    old = {"variant": "v", "size": 64, "bwd_flops": 100, "bwd_s": 1.0, "bwd_iqr_s": 0.1,
           "rounds": 6}  # fmt: skip
    assert value_status("bwd_flops", old, old | {"bwd_flops": 101}) == REGRESSION
    assert value_status("bwd_flops", old, old | {"bwd_flops": 99}) == IMPROVEMENT
    assert value_status("bwd_s", old, old | {"bwd_s": 1.5}) == SLOWER
    assert value_status("bwd_s", old, old | {"bwd_s": 1.05}) == SAME
    assert value_status("bwd_s", old | {"rounds": 1}, old | {"bwd_s": 1.5}) == SAME
    changes = compare({"points": [old]}, {"points": [old | {"bwd_s": 2.0}]})
    assert [(c.metric, c.status) for c in changes] == [("bwd_s", SLOWER), ("bwd_flops", SAME)]
