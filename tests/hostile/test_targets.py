"""Targets that try to end the tool or measure nothing: a failed point with the reason,
never a silent exit 0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import targets_for_tests as T
from cli_helpers import invoke

QUICK = ["--repeats", "2", "--min-time", "0.001", "--max-passes", "2"]


class _Done:
    def __init__(self, result: Any) -> None:
        self.returncode, self.stdout, self.stderr = result.exit_code, result.stdout, result.stderr


def _sweep(target: str, out: Path, *args: str) -> _Done:
    return _Done(invoke("sweep", T.spec(target), *QUICK, "--out", out, *args))


@pytest.mark.parametrize(("target", "called"), [("exits_from_8", "exits_from_8(8) called "
                         "sys.exit(0)"), ("forward_exits", "forward_exits(8)() called "
                         "sys.exit(3)")])  # fmt: skip
def test_a_target_calling_sys_exit_is_a_failed_point(
    target: str, called: str, tmp_path: Path
) -> None:
    done = _sweep(target, tmp_path, "--sizes", "1:32:1.4", "--claim", "O(n)", "--metric",
                  "bwd_flops", "--strict")  # fmt: skip
    summary = json.loads((tmp_path / target / "summary.json").read_text())
    assert [(f["size"], f["reason"]) for f in summary["failed_points"]] == [(8, called)]
    assert {p["size"] for p in summary["points"]} == {s for s in summary["config"]["sizes"]
                                                      if s < 8}  # fmt: skip
    assert "Traceback" not in done.stderr
    # four sizes of an exact count: judged, and the run is not mistaken for a success
    # it was not: the verdict decides the exit code under --strict
    verdict = next(c["verdict"] for c in summary["claims"] if c["id"] == "claim")
    assert done.returncode == (0 if verdict == "confirmed" else 1), done.stdout + done.stderr
    assert any(called in note for note in summary["notes"])


def test_nothing_measured_exits_1_saying_why(tmp_path: Path) -> None:
    done = _sweep("works_once", tmp_path, "--sizes", "1:16")
    assert done.returncode == 1, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("trainbench: error: nothing was measured (model at size 1 failed: "
                           "works_once(1) raised RuntimeError: no size works)")  # fmt: skip
    assert "Traceback" not in done.stderr
    summary = json.loads((tmp_path / "works_once" / "summary.json").read_text())
    assert summary["points"] == [] and summary["failed_points"]


def test_a_target_failing_at_its_first_size_is_one_line(tmp_path: Path) -> None:
    done = _sweep("always_raises", tmp_path, "--sizes", "1:16")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("trainbench: error: always_raises(1) raised RuntimeError: "
                           "no size works\n")  # fmt: skip


def test_a_claim_that_could_not_be_judged_exits_1(tmp_path: Path) -> None:
    # one size only: counted and timed, but no growth can be fitted from it
    done = _sweep("linear", tmp_path, "--sizes", "4", "--claim", "O(n)")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        "trainbench: error: claim 'claim' on bwd_s could not be judged on what was measured")


def test_a_plain_sweep_still_prints_its_tables(tmp_path: Path) -> None:
    done = _sweep("linear", tmp_path, "--sizes", "1:16")
    assert done.returncode == 0, done.stderr
    assert "measurements (median ± IQR)" in done.stdout and "growth order" in done.stdout
    assert f"results: {tmp_path / 'linear'}" in done.stdout
