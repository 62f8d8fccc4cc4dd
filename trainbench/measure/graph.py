"""The backward graph of a point: the nodes a backward executes, its critical path, the
tensors it accumulates gradients into, and running it.

The graph is walked iteratively over ``grad_fn.next_functions`` from every root, so a deep
graph (an RNN over a long sequence) needs no recursion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

# A point's forward: runs a forward pass and returns the scalar tensors ("roots") that the
# variant back-propagates, one backward call per root.
Forward = Callable[[], Sequence[Tensor]]


@dataclass
class GraphStats:
    nodes: int
    depth: int
    leaves: list[Tensor] = field(repr=False)



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



def run_backward(roots: Sequence[Tensor], retain_graph: bool) -> None:
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
