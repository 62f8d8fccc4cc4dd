"""Helpers shared by the CLI tests: run a command in-process and check one-line errors."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from trainbench.cli.app import app
from trainbench.harness.runner import RunResult, SweepConfig


def ctrl_c_heard() -> None:
    """A subprocess's preexec_fn for the tests that send it SIGINT: the signal back to its
    default in the child where this process was started with it ignored (as a background
    job is), so that the child's Python turns it into Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def invoke(*args: str | Path) -> Result:
    """``trainbench ARGS`` through typer's CliRunner (stdout and stderr kept apart)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(exit_code: int, stdout: str, stderr: str, names: tuple[str, ...]) -> None:
    """Exit 2, nothing on stdout, one ``trainbench: error:`` line naming every ``names``."""
    assert "Traceback" not in stdout + stderr, stdout + stderr
    assert exit_code == 2, (exit_code, stdout, stderr)
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].strip()
    assert lines[0].startswith("trainbench: error:"), lines[0]
    for name in names:
        assert name in lines[0], (name, lines[0])


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


class FakeSweep:
    """Stands in for :func:`trainbench.harness.runner.run_sweep` and records its arguments."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, exp: Any, cfg: SweepConfig, out_dir: Path | None = None,
                 on_progress: Any = None, claims: Any = None, *,
                 resume: bool = False) -> RunResult:  # fmt: skip
        cfg = getattr(cfg, "cfg", cfg)  # (a configuration the API prepared: the config itself)
        self.calls.append({"exp": exp, "cfg": cfg, "out_dir": out_dir, "resume": resume})
        # one point, as a run that measured something has (a run with none exits 1)
        point = {"variant": exp.variants[0].name, "size": cfg.min_size}
        return RunResult(experiment=exp.name, config={}, environment={}, baseline={},
                         complete=True, points=[point])  # fmt: skip
