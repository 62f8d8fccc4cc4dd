"""Everything measured at one point (one variant at one size).

The contract is small: ``forward()`` runs a forward pass and returns the list of
scalar tensors ("roots") that the variant back-propagates, one backward call per
root. One root is the ordinary backward of a summed loss; several roots is the
naive "one backward per loss term" procedure.

* time: ``torch.utils.benchmark.Timer`` (warm-up, blocked autorange, median and
  IQR, raw samples kept). Forward is timed on its own (it builds a fresh graph
  each run). Backward is timed on one graph built in setup and kept with
  ``retain_graph=True``. Parameter gradients accumulate into their ``.grad``
  buffers, which the first (warm-up) run allocates (as after
  ``zero_grad(set_to_none=False)`` in a training step), so the timed runs
  measure the arithmetic rather than the allocator: setting them to None
  before each run made every backward allocate fresh buffers and tripled the
  spread between repeats on a 2-core machine.
* FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` around one forward and
  one backward. It counts matrix products (formulas for matrix-vector products and
  for the fused RNN kernels of oneDNN, cuDNN and MIOpen added in trainbench.measure.flops)
  and convolutions; elementwise work is not counted.
* graph: an iterative walk of ``grad_fn.next_functions`` from every root.
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

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.benchmark import Timer
from torch.utils.benchmark.utils import common
from torch.utils.flop_counter import FlopCounterMode

from trainbench.core.settings import first_line
from trainbench.measure import span
from trainbench.measure.counting import CHARGES_NODES, does_arithmetic, op_name, totals_counter

Forward = Callable[[], Sequence[Tensor]]
NOISY_SPREAD = 0.10  # IQR/median above this marks a point as noisy


@dataclass
class Timing:
    """Raw per-run times of one statement, seconds."""

    samples: list[float]
    number_per_run: int

    @property
    def median(self) -> float:
        return float(np.median(self.samples)) if self.samples else math.nan

    @property
    def iqr(self) -> float:
        if not self.samples:
            return math.nan
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q3 - q1)

    @staticmethod
    def merge(timings: Sequence[Timing]) -> Timing:
        """All samples of several measurements of the same statement."""
        samples = [t for timing in timings for t in timing.samples]
        return Timing(samples, max((t.number_per_run for t in timings), default=0))


@dataclass
class GraphStats:
    nodes: int
    depth: int
    leaves: list[Tensor] = field(repr=False)


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
    schedule: dict[str, int] | None = None  # T_P in FLOPs, by span.SCHEDULE_COLUMNS
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


# --------------------------------------------------------------------------- graph


def _children(node: object) -> list[object]:
    return [child for child, _ in node.next_functions if child is not None]  # type: ignore[attr-defined]


def _grad_fn(root: Tensor) -> object:
    if root.grad_fn is None:
        raise ValueError("a loss tensor has no grad_fn: nothing requires a gradient")
    return root.grad_fn


def _reached(fn: object, seen: set[int] | None = None) -> list[object]:
    """Every node a backward call from ``fn`` executes, ``fn`` first (iteratively); with
    ``seen`` (ids, updated here), only the nodes not in it."""
    seen = set() if seen is None else seen
    if id(fn) in seen:
        return []
    seen.add(id(fn))
    stack, out = [fn], [fn]
    pop, push, keep, add = stack.pop, stack.append, out.append, seen.add
    while stack:
        for child, _ in pop().next_functions:  # type: ignore[attr-defined]
            if child is not None and id(child) not in seen:
                add(id(child))
                keep(child)
                push(child)
    return out


def _add_leaves(nodes: Sequence[object], leaves: dict[int, Tensor]) -> None:
    """The tensors that ``nodes``' AccumulateGrad nodes accumulate into, by id."""
    for node in nodes:
        variable = getattr(node, "variable", None)
        if isinstance(variable, Tensor):
            leaves[id(variable)] = variable


def leaf_tensors(roots: Sequence[Tensor]) -> list[Tensor]:
    """The tensors whose ``.grad`` a backward from ``roots`` accumulates into."""
    leaves: dict[int, Tensor] = {}
    seen: set[int] = set()  # one walk for all roots: the nodes they share are visited once
    nodes = [node for root in roots for node in _reached(_grad_fn(root), seen)]
    _add_leaves(nodes, leaves)  # (``nodes`` holds them alive, so no id is reused meanwhile)
    return list(leaves.values())


def graph_stats(roots: Sequence[Tensor]) -> GraphStats:
    """Size and critical path of the backward graph(s) under ``roots``, without recursion.

    Nodes are counted once per backward call that executes them; the depth of a
    node is 1 + the largest depth of its children (a leaf's AccumulateGrad is 1).
    """
    height: dict[int, int] = {}
    keep: list[object] = []  # holds every node so that no id() is reused during the walk
    leaves: dict[int, Tensor] = {}
    total_nodes = 0
    max_depth = 0
    for root in roots:
        fn = _grad_fn(root)
        # Count the nodes this call reaches.
        reached = _reached(fn)
        keep.extend(reached)
        _add_leaves(reached, leaves)
        total_nodes += len(reached)
        # Longest path: post-order over the DAG, memoised across roots.
        stack2: list[tuple[object, bool]] = [(fn, False)]
        while stack2:
            node, expanded = stack2.pop()
            key = id(node)
            if key in height:
                continue
            kids = _children(node)
            if expanded:
                height[key] = 1 + max((height[id(c)] for c in kids), default=0)
                continue
            stack2.append((node, True))
            stack2.extend((c, False) for c in kids if id(c) not in height)
        max_depth = max(max_depth, height[id(fn)])
    return GraphStats(nodes=total_nodes, depth=max_depth, leaves=list(leaves.values()))


# --------------------------------------------------------------------------- counts


# torch's counter has no formula for matrix-vector products or the fused recurrent
# kernels (oneDNN, cuDNN, MIOpen); trainbench.measure.flops has them.
def flop_counter() -> FlopCounterMode:
    """``FlopCounterMode`` with the formulas torch lacks (see :mod:`trainbench.measure.flops`),
    counting totals only (:mod:`trainbench.measure.counting`): the same totals in a fourth to a
    half of the time."""
    return totals_counter()


def _backward(roots: Sequence[Tensor], retain_graph: bool) -> None:
    for root in roots:
        root.backward(retain_graph=retain_graph)


def allocate_gradients(roots: Sequence[Tensor]) -> None:
    """Zero-filled ``.grad`` buffers for every leaf that has none, so that the first timed
    backward accumulates into them as every later one does (as after
    ``zero_grad(set_to_none=False)``). This is what a warm-up backward leaves behind, in
    a fifth of its time (the MLP heads at L = 128: 11 ms against 60 ms; their next
    backward took 55.3 ms after either)."""
    for leaf in leaf_tensors(roots):
        if leaf.grad is None:
            leaf.grad = torch.zeros_like(leaf)


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
            _backward(roots, retain_graph=True)
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
    counts |= {m: spans.get(m) for m in span.SPAN_METRICS}
    counts["schedule"] = {c: spans[c] for c in span.SCHEDULE_COLUMNS} if spans else None
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


# --------------------------------------------------------------------------- time


SAMPLES_PER_ROUND = 50  # blocks of about min_time / 50: many short samples, not a few long


class _BlockTimer(Timer):
    """``torch.utils.benchmark.Timer`` (threads, CUDA synchronization, blocked sampling),
    with blocks of about ``min_run_time / SAMPLES_PER_ROUND`` instead of the smallest
    power of ten of runs whose block exceeds ``min_run_time / 1000``. For a statement
    of 20 µs that rule gives blocks of 1000 runs, so a 0.05 s round holds three
    samples, each of which averages in every interruption of the machine; with about
    fifty 1 ms blocks the median leaves interrupted blocks out. Blocks stay at least
    1000 times the timer's own cost, so that cost is below 0.1%."""

    def _estimate_block_size(self, min_run_time: float) -> int:
        with common.set_torch_threads(self._task_spec.num_threads):
            overhead = float(np.median([self._timeit(0) for _ in range(5)]))
            self._timeit(1)  # warm-up
            one = float(np.median([self._timeit(1) for _ in range(3)]))
        target = max(min_run_time / SAMPLES_PER_ROUND, 1000 * overhead)
        return max(1, min(int(target / max(one, 1e-9)), 2**31 - 1))


def time_statement(fn: Callable[[], object], *, threads: int, min_time: float) -> Timing:
    """Samples of ``fn()`` through ``torch.utils.benchmark``'s blocked sampling: it warms
    up, picks the runs per sample (:class:`_BlockTimer`) and takes samples until
    ``min_time`` seconds are spent (at least one sample)."""
    timer_class = _BlockTimer if hasattr(Timer, "_timeit") else Timer
    timer = timer_class(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    m = timer.blocked_autorange(min_run_time=min_time)
    return Timing(samples=list(m.times), number_per_run=m.number_per_run)


VISIT_BLOCKS = 3  # samples per visit of a point in a pass, where its statement is short enough


class _VisitTimer(Timer):
    """``torch.utils.benchmark.Timer`` (its thread setting, and its clock, which synchronizes
    CUDA) timing one short visit at a time: ``blocks`` blocks of ``number`` runs, a sample
    each. :meth:`calibrate` picks both once, from a warm-up."""

    number: int = 1
    blocks: int = 1

    def calibrate(self, visit_s: float) -> None:
        with common.set_torch_threads(self._task_spec.num_threads):
            overhead = float(np.median([self._timeit(0) for _ in range(5)]))
            self._timeit(1)  # warm-up (a backward also allocates its gradient buffers here)
            runs = [self._timeit(1)]
            if runs[0] < visit_s:  # (a run longer than a visit is timed once a visit anyway)
                runs += [self._timeit(1) for _ in range(2)]
            one = float(np.median(runs))
        self.blocks = max(1, min(VISIT_BLOCKS, int(visit_s / max(one, 1e-9))))
        target = max(visit_s / self.blocks, 1000 * overhead)
        self.number = max(1, min(int(round(target / max(one, 1e-9))), 2**31 - 1))

    def visit(self) -> list[float]:
        with common.set_torch_threads(self._task_spec.num_threads):
            return [self._timeit(self.number) / self.number for _ in range(self.blocks)]


@dataclass(frozen=True)
class VisitPlan:
    """The block sizes of a point's visits, picked by its first probe's calibration."""

    fwd_number: int
    fwd_blocks: int
    bwd_number: int
    bwd_blocks: int


class Probe:
    """A point made ready to be timed in a pass: its forward, one graph kept for its
    backward (``retain_graph=True``), and the block sizes of both. While it lives it holds
    the model, the graph's saved tensors and the gradients.

    Without ``plan`` the block sizes are calibrated here; with it (a later pass's probe of
    the same point) they are reused, and the gradients are allocated zero-filled
    (:func:`allocate_gradients`), so that every pass times the same runs on a newly
    built model."""

    def __init__(
        self, forward: Forward, *, threads: int, visit_s: float, plan: VisitPlan | None = None
    ) -> None:
        self.roots = list(forward())  # (also the forward's warm-up)
        roots = self.roots
        self.fwd = _VisitTimer(stmt="fn()", globals={"fn": forward}, num_threads=threads)
        self.bwd = _VisitTimer(
            stmt="fn()",
            globals={"fn": lambda: _backward(roots, retain_graph=True)},
            num_threads=threads,
        )
        self.time_forward = True  # False: a visit times the backward alone
        if plan is None:
            self.fwd.calibrate(visit_s)
            self.bwd.calibrate(visit_s)
        else:
            self.fwd.number, self.fwd.blocks = plan.fwd_number, plan.fwd_blocks
            self.bwd.number, self.bwd.blocks = plan.bwd_number, plan.bwd_blocks
            allocate_gradients(roots)

    @property
    def plan(self) -> VisitPlan:
        return VisitPlan(self.fwd.number, self.fwd.blocks, self.bwd.number, self.bwd.blocks)

    def visit(self) -> tuple[Timing, Timing]:
        """One visit: the forward's samples (none where ``time_forward`` is off), then the
        backward's."""
        f = Timing(self.fwd.visit() if self.time_forward else [], self.fwd.number)
        return f, Timing(self.bwd.visit(), self.bwd.number)


def time_forward(forward: Forward, *, threads: int, min_time: float) -> Timing:
    """Forward alone: each run builds (and drops) a fresh graph."""
    return time_statement(forward, threads=threads, min_time=min_time)


def time_backward(forward: Forward, *, threads: int, min_time: float) -> Timing:
    """Backward alone, on one graph built here and kept with ``retain_graph=True``."""
    roots = list(forward())
    return time_statement(
        lambda: _backward(roots, retain_graph=True), threads=threads, min_time=min_time
    )


def time_round(forward: Forward, *, threads: int, min_time: float) -> tuple[Timing, Timing]:
    """One round of a point: its forward timed, then its backward."""
    fwd = time_forward(forward, threads=threads, min_time=min_time)
    bwd = time_backward(forward, threads=threads, min_time=min_time)
    return fwd, bwd


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


def matmul_rate(
    rows: int, inner: int, cols: int, *, device: torch.device, dtype: torch.dtype, threads: int
) -> float:
    """FLOP/s of ``torch.mm`` on (rows × inner) @ (inner × cols): the machine's reference rate,
    from its fastest sample (the rate the machine reaches; a sample slowed by another
    process would make every efficiency look higher than it is)."""
    a = torch.randn(rows, inner, device=device, dtype=dtype)
    b = torch.randn(inner, cols, device=device, dtype=dtype)
    timing = time_statement(lambda: torch.mm(a, b), threads=threads, min_time=0.1)
    return 2.0 * rows * inner * cols / min(timing.samples)


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
    import time

    _allow_recompiles()
    compiled = torch.compile(forward)
    start = time.perf_counter()
    try:
        roots = list(compiled())
        _backward(roots, retain_graph=False)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    except Exception as err:
        from trainbench.measure.memory import is_out_of_memory

        if is_out_of_memory(err):
            raise
        return Compiled(forward, False, None, f"{type(err).__name__}: {first_line(err)}")
    return Compiled(compiled, True, time.perf_counter() - start)
