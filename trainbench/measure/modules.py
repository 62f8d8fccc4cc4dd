"""Where the work is: FLOPs and saved bytes per module of the model's ``nn.Module`` tree.

``--by-module DEPTH`` (``trainbench.sweep(..., by_module=DEPTH)``). Each point is counted
once more with the modules tracked (``torch.utils.module_tracker.ModuleTracker``, the
tracker torch's FLOP counter uses), to DEPTH levels below the root ("Global"):

* a forward call's FLOPs go to every module running when it is made;
* a backward node's FLOPs go to the modules whose forward made the node: each forward call
  names the owners of the node autograd made for it (by the node's sequence number), and
  the backward's recording
  (:func:`trainbench.measure.span.record_backward`) charges each node's FLOPs to them. (torch's
  counter attributes the backward by the module hooks that fire during it; a module that
  passes its input through, a dropout with p = 0, then takes the FLOPs of what runs
  before it. Here the backward of an op belongs to the module that ran the op.)
* a tensor saved for the backward goes to the modules running when it is saved (each
  storage once per module).

Nested modules are each charged in full: a parent's FLOPs are its children's and its own.
A tensor that two modules save (a ReLU's output, saved by the ReLU and by the Linear after
it) counts in each of them, once in their parent. A container that does not run itself
(``nn.ModuleList``) is not tracked: its children are named one level deeper
(``Net.blocks.0``).
Work outside every module (the loss, say) is the difference between the total and the
top-level modules. Time per module is not measured: the autograd profiler's per-op
records cost more than the backward they time at these sizes, and would be charged to
modules by the same rule as the FLOPs, which these counts already give exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.module_tracker import ModuleTracker

from trainbench.measure import span
from trainbench.measure.counting import CHARGES_NODES, totals_counter
from trainbench.measure.graph import leaf_tensors

GLOBAL = "Global"


def depth_of(name: str) -> int:
    """``Encoder.layers.0.attn`` is at depth 4: its dots plus one (the root class is 1)."""
    return name.count(".") + 1


def next_sequence_nr() -> int:
    """The sequence number autograd gives the next node it makes in this thread."""
    return int(torch._C._autograd._get_sequence_nr())


class ModuleCharges:
    """The FLOPs and saved bytes of one point's forward and backward, per module."""

    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError("by_module: the depth is 1 (the model itself) or more")
        self.depth = depth
        self.tracker = ModuleTracker()
        self.fwd: dict[str, int] = {}
        self.bwd: dict[str, int] = {}
        self.saved: dict[str, int] = {}
        self._owners: dict[int, tuple[str, ...]] = {}  # a node's sequence number -> modules
        self._stored: dict[str, set[int]] = {}

    def current(self) -> tuple[str, ...]:
        """The modules running now, to the depth asked for."""
        return tuple(sorted(n for n in self.tracker.parents
                            if n != GLOBAL and depth_of(n) <= self.depth))  # fmt: skip

    def forward_call(self, flops: int, out: Any) -> None:
        """One forward call (inside the dispatch, below autograd): its FLOPs, and the owners
        of its backward node. Autograd makes an op's node before it hands the call down, so
        the node is the last one made (the sequence number before the next); the first call
        to see it is its own op's (later calls that make no node see it too, and leave it)."""
        owners = self.current()
        for name in owners:
            self.fwd[name] = self.fwd.get(name, 0) + flops
        self._owners.setdefault(next_sequence_nr() - 1, owners)

    def saved_tensor(self, storage: int, nbytes: int, owners: tuple[str, ...]) -> None:
        """A tensor saved for the backward while ``owners`` ran (each storage once)."""
        for name in owners:
            seen = self._stored.setdefault(name, set())
            if storage not in seen:
                seen.add(storage)
                self.saved[name] = self.saved.get(name, 0) + nbytes

    def backward_costs(self, costs: dict[Any, list[int]]) -> None:
        """The recorded backward: FLOPs per node, charged to the node's owners."""
        for node, (flops, _) in costs.items():
            for name in self._owners.get(node._sequence_nr(), ()):
                self.bwd[name] = self.bwd.get(name, 0) + flops

    def record(self) -> dict[str, list[int]]:
        """Per module: [forward FLOPs, backward FLOPs, saved bytes]."""
        names = sorted(set(self.fwd) | set(self.bwd) | set(self.saved))
        return {n: [self.fwd.get(n, 0), self.bwd.get(n, 0), self.saved.get(n, 0)] for n in names}


def count_modules(forward: Any, depth: int) -> dict[str, list[int]]:
    """One forward and backward of ``forward`` (the harness's contract: ``() -> roots``),
    counted per module to ``depth``: {module: [forward FLOPs, backward FLOPs, saved bytes]}
    (saved bytes leave the parameters out, as ``saved_bytes`` does)."""
    charges = ModuleCharges(depth)
    pending: list[tuple[int, int, tuple[str, ...]]] = []

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        pending.append((storage.data_ptr(), storage.nbytes(), charges.current()))
        return t.detach()

    counter: Any = totals_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), charges.tracker:
        with counter:
            counter.modules = charges
            try:
                roots = list(forward())
            finally:
                counter.modules = None
    params = {p.untyped_storage().data_ptr() for p in leaf_tensors(roots)}
    for ptr, nbytes, owners in pending:
        if ptr not in params:
            charges.saved_tensor(ptr, nbytes, owners)
    if CHARGES_NODES:
        with totals_counter() as back:
            span.record_backward(roots, back, on_costs=charges.backward_costs)
    for p in leaf_tensors(roots):
        p.grad = None
    return charges.record()
