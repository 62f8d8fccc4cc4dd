"""Every output stream: closed stdout, a reader that goes away, an encoding without the
tables' symbols, and --json with a target that prints. Real processes throughout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # real sweeps or real processes

TARGETS = Path(__file__).resolve().parents[1] / "targets_for_tests.py"
QUICK = ["--sizes", "1:16", "--repeats", "2", "--min-time", "0.001", "--max-passes", "2"]


def _trainbench(*args: str) -> list[str]:
    return [sys.executable, "-m", "trainbench", *args]


@pytest.mark.parametrize("args", [["sweep", f"{TARGETS}:linear", *QUICK],
                                  ["report", "/no/such/run"]])  # fmt: skip
def test_closed_stdout_is_no_traceback(args: list[str], tmp_path: Path) -> None:
    args = args + (["--out", str(tmp_path)] if args[0] == "sweep" else [])
    done = subprocess.run(["bash", "-c", " ".join([*_trainbench(*args), ">&-"])],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert "Traceback" not in done.stderr and "isatty" not in done.stderr
    if args[0] == "report":  # the one-line error still reaches stderr
        assert done.returncode == 2
        assert done.stderr == "trainbench: error: /no/such/run: no such folder\n"
    else:  # the run goes on, quietly, and its files are written
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert json.loads((tmp_path / "linear" / "summary.json").read_text())["complete"]


@pytest.mark.parametrize("command", [["sweep", f"{TARGETS}:linear", *QUICK], ["verify", "--help"]])
def test_a_reader_that_goes_away_ends_the_run_quietly(
    command: list[str], tmp_path: Path
) -> None:
    args = command + (["--out", str(tmp_path)] if command[0] == "sweep" else [])
    proc = subprocess.Popen(_trainbench(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err
    if command[0] == "sweep":  # what was measured is on disk all the same
        assert json.loads((tmp_path / "linear" / "summary.json").read_text())["complete"]


def test_an_encoding_without_the_symbols_writes_ascii(tmp_path: Path) -> None:
    env = os.environ | {"PYTHONIOENCODING": "ascii"}
    done = subprocess.run(_trainbench("sweep", f"{TARGETS}:linear", *QUICK, "--claim", "O(n)",
                                      "--metric", "bwd_flops", "--out", str(tmp_path)),
                          capture_output=True, env=env, timeout=300)  # fmt: skip
    out, err = done.stdout.decode("ascii"), done.stderr.decode("ascii")  # (ASCII, or it raises)
    assert done.returncode == 0, err
    assert "Traceback" not in out + err
    assert "(model): O(n) - confirmed (" in out  # "—" written as "-"


def test_json_stays_json_when_the_target_prints(tmp_path: Path) -> None:
    done = subprocess.run(_trainbench("sweep", f"{TARGETS}:prints", *QUICK, "--json", "--out",
                                      str(tmp_path)), capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # nothing else on stdout
    assert summary["points"]
    assert "building n = 16" in done.stderr and "raw write to fd 1" in done.stderr
