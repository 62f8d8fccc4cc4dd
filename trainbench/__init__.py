"""trainbench: tests textbook answers about the cost of backpropagation against measurement.

Public Python API (imported lazily, so ``trainbench --help`` does not load torch)::

    from trainbench import EXPERIMENTS, SweepConfig, run_sweep, fit_order, judge

    result = run_sweep(EXPERIMENTS["mlp-heads"], SweepConfig(1, 64, {...}))
    fit = fit_order([1, 2, 4, 8], [[...], [...], [...], [...]])
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "EXPERIMENTS": "trainbench.experiments",
    "Claim": "trainbench.experiments",
    "Experiment": "trainbench.experiments",
    "Variant": "trainbench.experiments",
    "OrderFit": "trainbench.fit",
    "Verdict": "trainbench.fit",
    "fit_order": "trainbench.fit",
    "judge": "trainbench.fit",
    "RunResult": "trainbench.sweep",
    "SweepConfig": "trainbench.sweep",
    "run_sweep": "trainbench.sweep",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trainbench' has no attribute {name!r}")
