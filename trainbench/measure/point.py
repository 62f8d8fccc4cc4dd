"""Everything measured at one point (one variant at one size): its counts
(:func:`count_point`), its times (:func:`measure_point`), its forward compiled
(:func:`compile_forward`).

The contract is small: ``forward()`` runs a forward pass and returns the list of
scalar tensors ("roots") that the variant back-propagates, one backward call per
root. One root is the ordinary backward of a summed loss; several roots is the
naive "one backward per loss term" procedure.

* time: ``torch.utils.benchmark.Timer`` (warm-up, blocked autorange, median and
  IQR, raw samples kept; :mod:`trainbench.measure.timing`). Forward is timed on its own
  (it builds a fresh graph each run). Backward is timed on one graph built in setup and
  kept with ``retain_graph=True``. Parameter gradients accumulate into their ``.grad``
  buffers, which the first (warm-up) run allocates (as after
  ``zero_grad(set_to_none=False)`` in a training step), so the timed runs
  measure the arithmetic rather than the allocator: setting them to None
  before each run made every backward allocate fresh buffers and tripled the
  spread between repeats on a 2-core machine.
* FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` around one forward and
  one backward. It counts matrix products (formulas for matrix-vector products and
  for the fused RNN kernels of oneDNN, cuDNN and MIOpen added in trainbench.measure.flops)
  and convolutions; elementwise work is not counted.
* graph: an iterative walk of ``grad_fn.next_functions`` from every root
  (:mod:`trainbench.measure.graph`).
  ``graph_nodes`` is the number of nodes the backward calls execute, summed over
  calls; ``graph_depth`` the longest chain of dependent nodes in any one call
  (the critical path, i.e. the parallel run time).
* weighted span: the counted backward charges each aten call to the node running it
  (trainbench.measure.span): ``bwd_bytes`` the bytes its calls move, ``span_flops`` and
  ``span_bytes`` the costliest path, and T_P, a simulated P-processor schedule.
* saved bytes: ``torch.autograd.graph.saved_tensors_hooks`` during the forward,
  deduplicated by storage; storages of the parameters themselves are left out,
  so this is the activation memory kept for backward.
* peak bytes: ``torch.cuda.max_memory_allocated`` over one forward and backward
  (CUDA only).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from trainbench.core.settings import first_line
from trainbench.core.vocabulary import SCHEDULE_COLUMNS, SPAN_METRICS
from trainbench.measure import span
from trainbench.measure.counting import CHARGES_NODES, does_arithmetic, op_name, totals_counter
from trainbench.measure.graph import Forward, graph_stats, run_backward
from trainbench.measure.memory import is_out_of_memory
from trainbench.measure.timing import Timing, time_round


@dataclass
class PointMetrics:
    fwd: Timing
    bwd: Timing
    fwd_flops: int | None  # None: not counted (see the run's notes)
    bwd_flops: int | None
    graph_nodes: int
    graph_depth: int
    saved_bytes: int
    peak_bytes: int | None
    param_bytes: int = 0  # the parameters' bytes (their gradients' bytes too)
    # the backward's bytes moved, its span in FLOPs and bytes (trainbench.measure.span); None: not
    # recorded (an older run, or a torch whose counter cannot charge calls to nodes)
    bwd_bytes: int | None = None
    span_flops: int | None = None
    span_bytes: int | None = None
    schedule: dict[str, int] | None = None  # T_P in FLOPs, by SCHEDULE_COLUMNS
    # the ops that did arithmetic with no FLOP formula ("aten._foo × 4"; None: none), and
    # the census of every op with no formula: name -> [calls, bytes in and out]
    undercounted: str | None = None
    census: dict[str, list[int]] | None = None
    # --by-module: per module, [forward FLOPs, backward FLOPs, saved bytes]
    modules: dict[str, list[int]] | None = None

    @property
    def working_set_bytes(self) -> int:
        """Parameters, their gradients and the saved activations: what a backward touches."""
        return 2 * self.param_bytes + self.saved_bytes

    def rate_flops(self) -> float | None:
        """Achieved forward+backward FLOP/s (None when the FLOPs were not counted)."""
        if not self.fwd_flops or not self.bwd_flops:
            return None
        return (self.fwd_flops + self.bwd_flops) / (self.fwd.median + self.bwd.median)



# --------------------------------------------------------------------------- counts


# torch's counter has no formula for matrix-vector products or the fused recurrent
# kernels (oneDNN, cuDNN, MIOpen); trainbench.measure.flops has them.
def flop_counter() -> FlopCounterMode:
    """``FlopCounterMode`` with the formulas torch lacks (see :mod:`trainbench.measure.flops`),
    counting totals only (:mod:`trainbench.measure.counting`): the same totals in a fourth to a
    half of the time."""
    return totals_counter()



def _clear(leaves: Sequence[Tensor]) -> None:
    for p in leaves:
        p.grad = None


def count_point(forward: Forward, device: torch.device) -> dict[str, Any]:
    """FLOPs, graph size and depth, saved and peak bytes, the backward's bytes and span and
    its simulated schedule (``schedule``: T_P by column) of one forward+backward."""
    saved: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        # Detached: a saved output kept with its grad_fn would form a cycle (node -> saved
        # tensor -> node) that holds every counted point's graph until the process ends.
        return t.detach()

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with flop_counter() as counter:
            roots = list(forward())
    fwd_flops = counter.get_total_flops()
    census = dict(getattr(counter, "census", {}))
    stats = graph_stats(roots)
    param_storages = {p.untyped_storage().data_ptr() for p in stats.leaves}
    saved_bytes = sum(n for ptr, n in saved.items() if ptr not in param_storages)
    storages = {p.untyped_storage().data_ptr(): p.untyped_storage() for p in stats.leaves}
    param_bytes = sum(st.nbytes() for st in storages.values())
    _clear(stats.leaves)
    with flop_counter() as counter:
        dag = span.record_backward(roots, counter) if CHARGES_NODES else None
        if dag is None:  # pragma: no cover - a torch without the private dispatch class
            run_backward(roots, retain_graph=True)
    bwd_flops = counter.get_total_flops()
    for op, (calls, nbytes) in getattr(counter, "census", {}).items():
        entry = census.get(op, [0, 0])
        census[op] = [entry[0] + calls, entry[1] + nbytes]
    # (the nodes' FLOPs add up to the counter's total, unless a call escaped the charge)
    spans = span.summary(dag) if dag is not None and sum(dag.flops) == bwd_flops else {}
    peak = None
    if cuda:
        torch.cuda.synchronize(device)
        peak = int(torch.cuda.max_memory_allocated(device))
    del roots
    counts: dict[str, Any] = {
        "fwd_flops": int(fwd_flops),
        "bwd_flops": int(bwd_flops),
        "graph_nodes": stats.nodes,
        "graph_depth": stats.depth,
        "saved_bytes": int(saved_bytes),
        "param_bytes": int(param_bytes),
        "peak_bytes": peak,
    }
    counts |= {m: spans.get(m) for m in SPAN_METRICS}
    counts["schedule"] = {c: spans[c] for c in SCHEDULE_COLUMNS} if spans else None
    counts["census"] = {op_name(op): [calls, nbytes] for op, (calls, nbytes) in census.items()}
    counts["undercounted"] = undercounted_text(
        {op_name(op): calls for op, (calls, _) in census.items() if does_arithmetic(op)}
    )
    _clear(stats.leaves)
    return counts


def undercounted_text(ops: Mapping[str, int]) -> str | None:
    """``aten._foo × 4, aten.bar × 2``: the ops that did arithmetic with no FLOP formula and
    how often they ran (most first); None where there is none."""
    if not ops:
        return None
    ranked = sorted(ops.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name} × {calls}" for name, calls in ranked)



def measure_point(
    forward: Forward,
    *,
    device: torch.device,
    threads: int,
    rounds: int = 3,
    min_time: float = 0.05,
) -> PointMetrics:
    """Count, then time forward and backward of one point in ``rounds`` rounds.

    A sweep interleaves the rounds of all its points instead (see runner.py).
    """
    counts = count_point(forward, device)
    timed = [time_round(forward, threads=threads, min_time=min_time) for _ in range(rounds)]
    return PointMetrics(
        fwd=Timing.merge([f for f, _ in timed]), bwd=Timing.merge([b for _, b in timed]), **counts
    )



# --------------------------------------------------------------------------- torch.compile


@dataclass
class Compiled:
    """A point's forward under ``torch.compile``: whether it compiled, and the seconds its
    first forward and backward took (compilation included; not part of the timed runs)."""

    forward: Forward
    compiled: bool
    compile_s: float | None
    reason: str | None = None  # why it runs eagerly instead


def _allow_recompiles() -> None:
    """Every size is a new graph to compile; torch's default stops compiling (silently,
    falling back to eager) after 8 per function. And the timing's retained graph."""
    # torch's compiler is imported here, where a point is compiled, not at the top: once
    # torch._dynamo is loaded, the FLOP counter's dispatch runs through its guard
    # (tests/test_flops.py checks that counting a point does not load it).
    import torch._dynamo

    cfg: Any = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(cfg, name):
            setattr(cfg, name, max(getattr(cfg, name), 1024))
    for name in ("accumulated_recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(cfg, name):
            setattr(cfg, name, max(getattr(cfg, name), 65536))
    # The backward is timed on one graph kept with retain_graph=True, which buffers that
    # the compiled backward donates (frees as it goes) would forbid.
    import torch._functorch.config

    functorch_cfg: Any = torch._functorch.config
    if hasattr(functorch_cfg, "donated_buffer"):
        functorch_cfg.donated_buffer = False


def compile_forward(forward: Forward, device: torch.device) -> Compiled:
    """``torch.compile(forward)``, run once forward and backward so that compiling is done
    before timing. Where it cannot compile (no compiler, an unsupported op), the eager
    forward with the reason; an out-of-memory error is raised."""
    _allow_recompiles()
    compiled = torch.compile(forward)
    start = time.perf_counter()
    try:
        roots = list(compiled())
        run_backward(roots, retain_graph=False)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    except Exception as err:
        if is_out_of_memory(err):
            raise
        return Compiled(forward, False, None, f"{type(err).__name__}: {first_line(err)}")
    return Compiled(compiled, True, time.perf_counter() - start)
