"""SIGKILL trials: a sweep killed at a seeded random moment, then resumed.

    python kill_trials.py ROOT FIRST_SEED TRIALS

Each trial forks a child that runs ``trainbench sweep`` into ROOT/trial-K, kills it
with SIGKILL after a random delay, copies what the kill left on disk to
ROOT/trial-K-before, and forks a second child that runs the same command with
``--resume`` (a fresh run where nothing was written yet). One JSON line per trial on
stdout: the seed, the delay, the files the kill left and the second run's exit status.
torch and trainbench are imported once, before the first fork, so a trial costs the
sweep, not the imports (the children run with one thread). The first child waits
WRITE_PAUSE_S after each file it writes, so that a kill lands between the writes of one
save (where the three files disagree) about as often as between two saves.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path

import torch

import trainbench.cli.app
import trainbench.harness.runner  # noqa: F401  (imported before the forks)
import trainbench.results.files

TARGET = f"{Path(__file__).resolve().parents[1] / 'targets_for_tests.py'}:chain"
ARGS = ["sweep", TARGET, "--sizes", "1:32", "--repeats", "2", "--max-passes", "3",
        "--min-time", "0.002", "--reference", "64", "--quiet"]  # fmt: skip
SOONEST_S, LONGEST_S = 0.3, 1.6  # the kill lands this many seconds after the start
WRITE_PAUSE_S = 0.03


def _slow_writes() -> None:
    write = trainbench.results.files.atomic_write_text

    def paused(path: Path, text: str) -> None:
        write(path, text)
        time.sleep(WRITE_PAUSE_S)

    trainbench.results.files.atomic_write_text = paused  # type: ignore[assignment]


def _run(argv: list[str], slow: bool = False) -> int:
    """Fork a child that runs trainbench with ``argv``; its pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            if slow:
                _slow_writes()
            sys.argv = ["trainbench", *argv]
            trainbench.cli.app.main()
        except SystemExit as end:
            code = end.code if isinstance(end.code, int) else 1
        finally:
            os._exit(code)
    return pid


def main() -> None:
    root, first, trials = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    for seed in range(first, first + trials):
        out = root / f"trial-{seed}"
        args = [*ARGS, "--out", str(out), "--seed", str(seed)]
        delay = random.Random(seed).uniform(SOONEST_S, LONGEST_S)
        pid = _run(args, slow=True)
        time.sleep(delay)
        finished = os.waitpid(pid, os.WNOHANG)[0] != 0
        if not finished:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        folder = out / "chain"
        left = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        if folder.is_dir():
            shutil.copytree(folder, root / f"trial-{seed}-before")
        again = [*args, "--resume"] if (folder / "summary.json").exists() else args
        pid = _run(again)
        status = os.waitpid(pid, 0)[1]
        print(json.dumps({"seed": seed, "delay": delay, "finished_first": finished,
                          "left": left, "resumed": "--resume" in again,
                          "code": os.waitstatus_to_exitcode(status)}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
