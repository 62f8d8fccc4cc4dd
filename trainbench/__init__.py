"""trainbench: tests textbook answers about the cost of backpropagation against measurement.

Public Python API (imported lazily, so ``trainbench --help`` does not load torch)::

    import trainbench

    def make(n):                                # any model: n -> (() -> scalar loss)
        w = torch.randn(n, n, requires_grad=True)
        x = torch.randn(32, n)
        return lambda: (x @ w).tanh().sum()

    result = trainbench.sweep(make, "16:1024", claim="O(n^2)", metric="bwd_flops")
    result.points, result.fits                  # pandas DataFrames
    result.verdict("O(n^2)", metric="bwd_flops")
    result.plot("time"); result.save("results")

    trainbench.sweep("mlp-heads", "1:64")       # a built-in experiment, the same path
    trainbench.fit_order([16, 32, 64, 128], [1.0, 4.1, 15.9, 64.3])   # plain arrays
    trainbench.assert_order(make, "16:256", "O(n^2)")   # in a test: raises unless confirmed
    trainbench.load("results/make")             # a saved run, judged again without measuring
"""

from __future__ import annotations

import importlib
from typing import Any

from trainbench.core.version import __version__

_EXPORTS = {
    "EXPERIMENTS": "trainbench.experiments.builtin",
    "Claim": "trainbench.claims.claim",
    "Experiment": "trainbench.experiments.builtin",
    "Variant": "trainbench.experiments.builtin",
    "OrderFit": "trainbench.stats.fit",
    "Verdict": "trainbench.stats.judge",
    "fit_order": "trainbench.stats.fit",
    "judge": "trainbench.stats.judge",
    "RunResult": "trainbench.harness.state",
    "SweepConfig": "trainbench.core.settings",
    "run_sweep": "trainbench.harness.runner",
    "sweep": "trainbench.api",
    "SweepResult": "trainbench.api",
    "ClaimVerdict": "trainbench.api",
    "assert_order": "trainbench.api",
    "load": "trainbench.api",
    "OrderAssertionError": "trainbench.api",
    "TargetError": "trainbench.experiments.target",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trainbench' has no attribute {name!r}")
