"""The sweep's clock for tests of ``--time-budget``: it advances only when a point is
counted or timed, so that what a budget stops does not depend on the machine's load."""

from __future__ import annotations

from typing import Any

import pytest

import trainbench.harness.runner as sweep


class FakeClock:
    """The sweep's clock: it advances only when a point is counted or timed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, count_s: float, time_s: float) -> None:
        self.now = 0.0
        real_count, real_time = sweep._count, sweep._time

        def count(*args: Any) -> Any:
            self.now += count_s
            return real_count(*args)

        def timed(*args: Any) -> Any:
            self.now += time_s
            return real_time(*args)

        monkeypatch.setattr(sweep, "_now", lambda: self.now)
        monkeypatch.setattr(sweep, "_count", count)
        monkeypatch.setattr(sweep, "_time", timed)
