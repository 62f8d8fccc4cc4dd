"""The backward's work and span, weighted by what each node computes, and a simulated
machine of P processors running it.

``graph_depth`` counts the nodes on the longest path of the backward graph, each weighing
1: a 64×64 product and a bias addition count the same. Here every node weighs what it
does. :func:`record_backward` runs the backward under the FLOP counter, which charges
every aten call to the backward node the engine is running as it makes it
(``torch._C._current_autograd_node()``, what ``torch.autograd.graph`` reads for its own
hooks): its FLOPs by the counter's formulas, its bytes moved (the bytes of its tensor
inputs and outputs; views move none). The engine adds a node's outputs into its
consumers' input buffers while that node is still the one running, so those additions
are charged to the node that produced them: they start only when it has finished, and
its consumers only after them. The root's seed gradient (made before any node runs) is
the root's. (The engine's own record rather than a pre-hook on every node or the
profiler's sequence numbers: it names the node exactly, in the backward's own thread,
for the cost of one call per aten call; hooks cost a Python handle per node, a third
of the recording's time on a graph of 100,000 nodes, and the profiler records every
call with timestamps, to be matched back to nodes afterwards.)

A :class:`Dag` holds, per node executed, its FLOPs, its bytes and the nodes it hands
gradients to. Several backward calls (one per loss term: the controls) give one
disjoint part per call, as ``graph_depth`` counts them: work sums over the calls, the
span is the largest of theirs.

* work ``W``: the sum of every node's cost (its FLOPs: the backward's FLOPs);
* span ``S``: the largest sum of costs along any path from a root to a leaf, the run time
  of a machine with as many processors as it can use;
* :func:`schedule`: greedy list scheduling on P identical processors (a node may start
  once every node that hands it a gradient has finished; a free processor takes the
  ready node with the longest path below it). Its finish time T_P obeys Brent's bounds
  ``max(W/P, S) <= T_P <= (W - S)/P + S``; T_1 = W and T_∞ = S.

Costs are FLOPs (or bytes): T_P is in FLOPs, the time of a machine on which only the
counted products take time, at one FLOP per unit. No torch in the arithmetic below
:func:`record_backward`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainbench.core.vocabulary import PROCESSORS, SCHEDULE_COLUMNS


@dataclass
class Dag:
    """Nodes 0..n-1 of one or more backward calls: costs and the nodes each hands to."""

    flops: list[int] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)
    children: list[list[int]] = field(default_factory=list)
    roots: list[int] = field(default_factory=list)  # the first node of each call

    def __len__(self) -> int:
        return len(self.flops)

    def add(self, flops: int, nbytes: int, children: Sequence[int] = ()) -> int:
        """A new node; its index."""
        self.flops.append(int(flops))
        self.bytes.append(int(nbytes))
        self.children.append(list(children))
        return len(self.flops) - 1


def heights(dag: Dag, costs: Sequence[int]) -> list[int]:
    """Per node, the largest sum of ``costs`` along a path from it down to a leaf (itself
    included), without recursion."""
    n = len(dag)
    height = [-1] * n
    for start in range(n):
        if height[start] >= 0:
            continue
        stack: list[tuple[int, bool]] = [(start, False)]
        while stack:
            node, expanded = stack.pop()
            if height[node] >= 0:
                continue
            kids = dag.children[node]
            if expanded:
                height[node] = costs[node] + max((height[k] for k in kids), default=0)
                continue
            stack.append((node, True))
            stack.extend((k, False) for k in kids if height[k] < 0)
    return height


def span(dag: Dag, costs: Sequence[int]) -> int:
    """The costliest path: the run time with unboundedly many processors."""
    return max(heights(dag, costs), default=0)


def schedule(dag: Dag, costs: Sequence[int], processors: int,
             height: Sequence[int] | None = None) -> int:  # fmt: skip
    """The finish time of greedy list scheduling on ``processors`` identical processors.

    A node is ready once every node that hands it a gradient has finished; whenever a
    processor is free it takes the ready node with the costliest path below it (then the
    lowest index). A node that costs nothing takes no processor: it finishes as soon as
    it is ready (most of a backward's nodes are views and elementwise work, 0 FLOPs).
    Integer costs give an exact integer time.
    """
    if processors < 1:
        raise ValueError("a machine needs at least one processor")
    n = len(dag)
    if n == 0:
        return 0
    height = heights(dag, costs) if height is None else height
    children = dag.children
    waiting = [0] * n
    for kids in children:
        for k in kids:
            waiting[k] += 1
    push, pop = heapq.heappush, heapq.heappop
    ready: list[tuple[int, int]] = []  # (-height, node): ready, and needing a processor
    free: list[int] = []  # ready, costing nothing: done as soon as they are ready

    def enter(k: int) -> None:
        if costs[k]:
            push(ready, (-height[k], k))
        else:
            free.append(k)

    def done(i: int) -> None:
        for k in children[i]:
            waiting[k] -= 1
            if waiting[k] == 0:
                enter(k)

    for i in range(n):
        if waiting[i] == 0:
            enter(i)
    running: list[tuple[int, int]] = []  # (finish time, node)
    now = 0
    while True:
        while free:
            done(free.pop())
        while ready and len(running) < processors:
            _, i = pop(ready)
            push(running, (now + costs[i], i))
        if not running:
            return now
        now, i = pop(running)
        done(i)


def levels(dag: Dag) -> list[int]:
    """Per node, its level: 0 for a node no other hands a gradient to, else one more than
    the deepest of those that do (every path into it is shorter than its level + 1)."""
    n = len(dag)
    waiting = [0] * n
    for kids in dag.children:
        for k in kids:
            waiting[k] += 1
    level = [0] * n
    todo = [i for i in range(n) if waiting[i] == 0]
    done = 0
    while todo:
        i = todo.pop()
        done += 1
        for k in dag.children[i]:
            level[k] = max(level[k], level[i] + 1)
            waiting[k] -= 1
            if waiting[k] == 0:
                todo.append(k)
    if done != n:  # a backward graph has none; a hand-made one might
        raise ValueError("the graph has a cycle: its nodes have no levels")
    return level


def split_schedule(dag: Dag, costs: Sequence[int], processors: int | None) -> int:
    """The finish time on ``processors`` processors (None: as many as any step can use)
    when a node's work divides over them, as a vectorised op's elements do: the nodes run
    level by level (:func:`levels`), each level once the one before has finished, a level
    of cost c taking ⌈c / P⌉. A valid schedule, so an upper bound on the best one:
    T_1 = W, and T_∞ is the number of levels that cost anything (at most the graph's
    depth in nodes). Where :func:`schedule` keeps a node on one processor (a product's
    FLOPs), this is the machine on which elementwise work, weighed in bytes, runs."""
    if processors is not None and processors < 1:
        raise ValueError("a machine needs at least one processor")
    per_level: dict[int, int] = {}
    for node, lv in enumerate(levels(dag)):
        per_level[lv] = per_level.get(lv, 0) + costs[node]
    if processors is None:
        return sum(1 for c in per_level.values() if c)
    return sum(-(-c // processors) for c in per_level.values())


def summary(dag: Dag) -> dict[str, int]:
    """Work and span in bytes, span in FLOPs, and T_P in FLOPs for each of ``PROCESSORS``."""
    height = heights(dag, dag.flops)
    out = {
        "bwd_bytes": sum(dag.bytes),
        "span_flops": max(height, default=0),
        "span_bytes": span(dag, dag.bytes),
    }
    for p, column in zip(PROCESSORS, SCHEDULE_COLUMNS, strict=True):
        out[column] = schedule(dag, dag.flops, p, height)
    return out


# --------------------------------------------------------------------------- recording


def _reached(fn: Any) -> tuple[list[Any], list[list[int]]]:
    """The nodes a backward call from ``fn`` reaches, ``fn`` first, and per node the
    indices of the nodes it hands gradients to (one walk of ``next_functions``)."""
    index, nodes, kids = {fn: 0}, [fn], []
    for node in nodes:  # (grows as it goes: breadth first)
        mine = set()
        for child, _ in node.next_functions:
            if child is None:
                continue
            j = index.get(child)
            if j is None:
                j = index[child] = len(nodes)
                nodes.append(child)
            mine.add(j)
        kids.append(sorted(mine))
    return nodes, kids


class Recorder:
    """Each backward node's FLOPs and bytes, as the counter charges its calls. A call made
    by a node outside ``known`` (the graph of the call being recorded) is charged to the
    known node that ran last: a backward run from inside a node (reentrant checkpointing
    recomputes its forward and back-propagates it within its node) is that node's work.
    Calls before any node ran are charged to None."""

    def __init__(self, known: Collection[Any] = ()) -> None:
        self.costs: dict[Any, list[int]] = {}
        self.known = set(known)
        self.last: Any = None

    def charge(self, node: Any, flops: int, nbytes: int) -> None:
        if node in self.known:
            self.last = node
        else:
            node = self.last
        cost = self.costs.get(node)
        if cost is None:
            cost = self.costs[node] = [0, 0]
        cost[0] += flops
        cost[1] += nbytes


def record_backward(
    roots: Sequence[Any], counter: Any, *, retain_graph: bool = True,
    on_costs: Callable[[dict[Any, list[int]]], None] | None = None,
) -> Dag:  # fmt: skip
    """Run one backward call per root inside ``counter`` (an entered
    :func:`trainbench.measure.counting.totals_counter`, which charges every aten call to
    ``counter.recorder``) and return the nodes each call executed, with their costs.
    ``on_costs``: given each call's costs by backward node ([FLOPs, bytes])."""
    dag = Dag()
    for root in roots:
        nodes, kids = _reached(root.grad_fn)
        recorder = Recorder(nodes)
        counter.recorder = recorder
        try:
            root.backward(retain_graph=retain_graph)
        finally:
            counter.recorder = None
        before = recorder.costs.pop(None, [0, 0])  # the root's seed gradient
        if on_costs is not None:
            on_costs(recorder.costs)
        offset = len(dag)
        dag.roots.append(offset)
        for i, node in enumerate(nodes):
            flops, nbytes = recorder.costs.get(node, (0, 0))
            if i == 0:
                flops, nbytes = flops + before[0], nbytes + before[1]
            dag.add(flops, nbytes, [offset + k for k in kids[i]])
    return dag
