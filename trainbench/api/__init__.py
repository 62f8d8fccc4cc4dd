"""The Python API: sweep any model's size and read how its backward cost grows.

::

    import torch
    import trainbench

    def attention(n):                       # the TARGET contract: n -> (() -> scalar loss)
        q = torch.randn(8, n, 64, requires_grad=True)
        return lambda: torch.softmax(q @ q.transpose(1, 2), -1).matmul(q).sum()

    result = trainbench.sweep(attention, "16:512", claim="O(n^2)", metric="bwd_flops")
    result.points            # DataFrame: one row per (variant, size)
    result.fits              # DataFrame: one row per (variant, metric)
    result.verdict("O(n^2)", metric="bwd_flops")
    result.plot("flops")     # a matplotlib Figure
    result.save("results")   # results/attention/, readable by `trainbench report`

The built-in experiments run through the same function (``trainbench.sweep("mlp-heads",
"1:64")``) and the command line calls it too: one implementation. trainbench.api.run resolves,
checks and sweeps a target; trainbench.api.result holds what a sweep returns and reads a saved
one back. Their public names are importable from here.
"""

from trainbench.api.result import ClaimVerdict as ClaimVerdict
from trainbench.api.result import SweepResult as SweepResult
from trainbench.api.result import load as load
from trainbench.api.result import user_claim as user_claim
from trainbench.api.run import OrderAssertionError as OrderAssertionError
from trainbench.api.run import assert_order as assert_order
from trainbench.api.run import claims_for as claims_for
from trainbench.api.run import make_config as make_config
from trainbench.api.run import measure as measure
from trainbench.api.run import preflight as preflight
from trainbench.api.run import resolve as resolve
from trainbench.api.run import several_targets as several_targets
from trainbench.api.run import sweep as sweep
from trainbench.harness.prepare import Prepared as Prepared
from trainbench.harness.prepare import prepare as prepare

__all__ = [
    "result",
    "run",
]
