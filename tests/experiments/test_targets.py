"""Targets that try to end the tool or measure nothing: a failed point with the reason,
never a silent exit 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import targets_for_tests as T
from cli_helpers import ctrl_c_heard, invoke

pytestmark = pytest.mark.slow  # real sweeps or real processes

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
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "trainbench: error: claim 'claim' on bwd_s could not be judged on what was measured"
        )
    )


@pytest.mark.parametrize(("sizes", "metric", "why"), [
    ("4", "bwd_s", "(measured at 1 size; a fit needs 3)"),
    ("2,4", "bwd_flops", "(measured at 2 sizes; a fit needs 3)"),
])  # fmt: skip
def test_a_claim_that_could_not_be_judged_says_why(
    sizes: str, metric: str, why: str, tmp_path: Path
) -> None:
    done = _sweep("linear", tmp_path, "--sizes", sizes, "--claim", "O(n)", "--metric", metric)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"trainbench: error: claim 'claim' on {metric} could not be judged on what was "
        f"measured {why}; see the notes in "
    )
    summary = json.loads((tmp_path / "linear" / "summary.json").read_text())
    (claim,) = [c for c in summary["claims"] if c["id"] == "claim"]
    assert claim["verdict"] == "inconclusive"
    assert claim["reason"] == f"the metric could not be fitted {why}"


def test_a_plain_sweep_still_prints_its_tables(tmp_path: Path) -> None:
    done = _sweep("linear", tmp_path, "--sizes", "1:16")
    assert done.returncode == 0, done.stderr
    assert "measurements (median ± IQR)" in done.stdout and "growth order" in done.stdout
    assert f"results: {tmp_path / 'linear'}" in done.stdout


@pytest.mark.parametrize(("target", "phase"), [("sleeps_from_8", "count"),
                                               ("loops_from_8", "count")])  # fmt: skip
def test_a_point_that_never_returns_fails_after_point_timeout(
    target: str, phase: str, tmp_path: Path
) -> None:
    """Built (sleeps_from_8) or run (loops_from_8) at n = 8 it never returns: that point
    fails after --point-timeout, the sweep goes on with the smaller sizes, exit 0."""
    done = _sweep(target, tmp_path, "--sizes", "1:32", "--point-timeout", "0.3")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / target / "summary.json").read_text())
    assert [(f["size"], f["phase"], f["reason"]) for f in summary["failed_points"]] == [
        (8, phase, "did not return within 0.3 s (--point-timeout)")
    ]
    assert sorted(p["size"] for p in summary["points"]) == [1, 2, 4]
    assert summary["complete"] is True and "Traceback" not in done.stderr


@pytest.mark.parametrize(("target", "raised"), [
    ("interrupts_from_8", "interrupts_from_8(8) raised KeyboardInterrupt"),
    ("forward_interrupts", "forward_interrupts(8)() raised KeyboardInterrupt"),
])  # fmt: skip
def test_a_keyboard_interrupt_the_target_raises_is_a_failed_point(
    target: str, raised: str, tmp_path: Path
) -> None:
    """Not Ctrl-C (no signal came): the run goes on, exit 0, the point failed with why."""
    done = _sweep(target, tmp_path, "--sizes", "1:32")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / target / "summary.json").read_text())
    assert [(f["size"], f["reason"]) for f in summary["failed_points"]] == [(8, raised)]
    assert summary["complete"] is True and sorted(p["size"] for p in summary["points"]) == [1, 2, 4]


def _trainbench(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "trainbench", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ | (env or {}), preexec_fn=ctrl_c_heard)  # fmt: skip


def test_a_point_that_swallows_its_timeout_ends_the_run_saved(tmp_path: Path) -> None:
    """spins_from_8 catches every interrupt and goes on: after the timeout and five more
    alarms the run records the point as failed, saves what it counted and exits 1 with one
    line; --resume then finishes the run without that size."""
    args = ["sweep", T.spec("spins_from_8"), *QUICK, "--sizes", "1:32", "--out", tmp_path]
    out, err = (p := _trainbench(*args, "--point-timeout", "0.2")).communicate(timeout=120)
    assert p.returncode == 1, out + err
    assert err.strip() == ("trainbench: error: model at n = 8 did not return within 0.2 s "
                           "(--point-timeout) and did not stop when interrupted; the run is "
                           "saved (incomplete): --resume goes on without it")  # fmt: skip
    summary = json.loads((tmp_path / "spins_from_8" / "summary.json").read_text())
    assert summary["complete"] is False and [f["size"] for f in summary["failed_points"]] == [8]
    # stopped in the counting pass: the sizes counted before it are kept, not yet timed
    assert [(p["size"], p["rounds"]) for p in summary["points"]] == [(1, 0), (2, 0), (4, 0)]
    done = _sweep("spins_from_8", tmp_path, "--sizes", "1:32", "--resume")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "spins_from_8" / "summary.json").read_text())
    assert summary["complete"] is True and all(p["rounds"] >= 2 for p in summary["points"])
    assert [f["size"] for f in summary["failed_points"]] == [8]


def test_ctrl_c_in_the_counting_pass_keeps_and_fits_the_sizes_counted(tmp_path: Path) -> None:
    """SIGINT while n = 8 is being built (the gated target waits there): the sizes counted
    so far are saved with their counts and fitted; `report` reads them."""
    waiting = tmp_path / "waiting"
    env = {"TRAINBENCH_TEST_GATE": str(tmp_path / "never"), "TRAINBENCH_TEST_WAITING": str(waiting)}
    p = _trainbench("sweep", T.spec("gated"), *QUICK, "--sizes", "1:32:1.5", "--out", tmp_path,
                    env=env)  # fmt: skip
    deadline = time.monotonic() + 120
    while not waiting.exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and err.startswith("trainbench: error: interrupted;"), out + err
    summary = json.loads((tmp_path / "gated" / "summary.json").read_text())
    counted = [p["size"] for p in summary["points"]]
    assert counted == [1, 2, 3, 5] and all(p["rounds"] == 0 for p in summary["points"])
    fits = {f["metric"]: f for f in summary["fits"]}
    assert fits["bwd_flops"]["exponent"] == pytest.approx(1.0, abs=0.02)
    assert "bwd_s" not in fits and summary["complete"] is False
    done = invoke("report", tmp_path / "gated", "--out", tmp_path / "report")
    assert done.exit_code == 0, done.stdout + done.stderr
