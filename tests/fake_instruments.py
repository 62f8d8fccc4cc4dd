"""Fakes for what a sweep measures with, handed to every sweep that an entry point starts
(``trainbench.sweep``, the CLI, verify): they call ``trainbench.harness.runner.run_sweep``,
which :func:`measure_with` replaces by one that passes ``instruments=`` with the fakes in
place of the real ones."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

import trainbench.harness.runner
from trainbench.harness.instruments import Instruments


def measure_with(monkeypatch: pytest.MonkeyPatch, **fakes: Any) -> None:
    """Every sweep run from now on (until ``monkeypatch`` undoes it) measures with ``fakes``
    (fields of :class:`Instruments`: count, probe, time, now, matmul_rate); a later call's
    fakes win over an earlier one's."""
    current = trainbench.harness.runner.run_sweep
    real = getattr(current, "real", current)
    merged = {**getattr(current, "fakes", {}), **fakes}

    def run_sweep(*args: Any, instruments: Instruments | None = None, **kwargs: Any) -> Any:
        base = instruments if instruments is not None else Instruments()
        return real(*args, instruments=replace(base, **merged), **kwargs)

    run_sweep.real, run_sweep.fakes = real, merged  # type: ignore[attr-defined]
    monkeypatch.setattr(trainbench.harness.runner, "run_sweep", run_sweep)
