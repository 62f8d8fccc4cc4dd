"""The sweep's clock for tests of ``--time-budget``: it advances only when a point is
counted or timed, so that what a budget stops does not depend on the machine's load."""

from __future__ import annotations

from typing import Any

import pytest
from fake_instruments import measure_with

from trainbench.harness.instruments import Instruments


class FakeClock:
    """The sweep's clock: it advances only when a point is counted or timed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, count_s: float, time_s: float) -> None:
        self.now = 0.0
        real = Instruments()

        def count(*args: Any) -> Any:
            self.now += count_s
            return real.count(*args)

        def timed(*args: Any) -> Any:
            self.now += time_s
            return real.time(*args)

        measure_with(monkeypatch, now=lambda: self.now, count=count, time=timed)
