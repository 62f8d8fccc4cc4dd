"""FLOP totals through ``torch.utils.flop_counter``, at a fraction of its cost.

``FlopCounterMode`` does two things per aten call: it counts the call's FLOPs (its
formulas, its decompositions of composite ops) and it attributes them to every module
the call runs under. The second costs more than the first: the module tracker hooks
every module's forward and every module output's backward, and the dispatch builds a
set of fifteen ops per call and enters the mode again for every op to try a
decomposition, though for most ops none exists. Counting the MLP heads at L = 128
took 1.6 s with the stock counter and 0.44 s without the tracker.

:func:`totals_counter` keeps torch's counting (the same registry, formulas,
decompositions, higher-order-op handling) and drops the per-module breakdown: every
FLOP is the model's ("Global"). Where torch's private dispatch class is missing (a
torch that renamed it) it falls back to the stock dispatch, still without the tracker;
the totals are the same either way (tested against the stock counter).
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch.utils import flop_counter as _fc
from torch.utils.flop_counter import FlopCounterMode

from trainbench.measure.flops import EXTRA_FLOP_FORMULAS

aten = torch.ops.aten
_COMPOSITE = torch._C.DispatchKey.CompositeImplicitAutograd

# The calls the stock dispatch hands back untouched (size and layout queries).
_PASSED_ON = frozenset({
    aten.sym_is_contiguous.default, aten.is_contiguous.default,
    aten.is_contiguous.memory_format, aten.is_strides_like_format.default,
    aten.is_non_overlapping_and_dense.default, aten.size.default, aten.sym_size.default,
    aten.stride.default, aten.sym_stride.default, aten.storage_offset.default,
    aten.sym_storage_offset.default, aten.numel.default, aten.sym_numel.default,
    aten.dim.default, torch.ops.prim.layout.default,
})  # fmt: skip


class _GlobalOnly:
    """In place of the module tracker: every FLOP is attributed to "Global" alone."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *args: object) -> None:
        return None


_decomposes: dict[Any, bool] = {}

# Tokens of an aten op's name (split at "_") that mark real arithmetic: a product, a
# convolution, attention, a recurrent kernel, a factorisation. Such an op without a FLOP
# formula leaves the count short; elementwise work counts zero by the counter's convention.
_ARITHMETIC_TOKENS = frozenset({
    "mm", "bmm", "addmm", "baddbmm", "addbmm", "mv", "addmv", "dot", "vdot", "matmul",
    "linear", "bilinear", "einsum", "tensordot", "addr", "ger", "outer", "attention", "rnn",
    "lstm", "gru", "cholesky", "svd", "qr", "lu", "solve", "inverse", "det", "eig", "eigh",
    "fft", "ifft", "rfft", "irfft", "c2c", "r2c", "c2r", "cdist",
})  # fmt: skip
# Fused cells that do only a cell's elementwise part: their products run as separate
# mm/addmm calls, which are counted (see trainbench.measure.flops).
_ELEMENTWISE_CELLS = frozenset({
    "_thnn_fused_lstm_cell", "_thnn_fused_lstm_cell_backward",
    "_thnn_fused_lstm_cell_backward_impl", "_thnn_fused_gru_cell",
    "_thnn_fused_gru_cell_backward",
})  # fmt: skip
_arithmetic: dict[Any, bool] = {}


def does_arithmetic(packet: Any) -> bool:
    """Whether the aten op (its overload packet) computes products, convolutions or the
    like: what a FLOP count must not miss (cached per op)."""
    known = _arithmetic.get(packet)
    if known is None:
        name = str(getattr(packet, "__name__", packet)).split(".")[-1]
        tokens = {t for t in name.split("_") if t}
        known = name not in _ELEMENTWISE_CELLS and bool(
            tokens & _ARITHMETIC_TOKENS or any(t.startswith("conv") for t in tokens)
        )
        _arithmetic[packet] = known
    return known


def op_name(packet: Any) -> str:
    """``aten.mm``: an op's name as the census shows it."""
    return f"aten.{getattr(packet, '__name__', packet)}"


def _bytes(*values: Any) -> int:
    """The bytes of every tensor in ``values`` (nested in lists, tuples and dicts)."""
    total, stack = 0, list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
    return total


def _has_decomposition(func: Any) -> bool:
    """Whether ``func.decompose`` can return anything but NotImplemented (what it checks,
    once per op)."""
    known = _decomposes.get(func)
    if known is None:
        known = _COMPOSITE in func.py_kernels or torch._C._dispatch_has_kernel_for_dispatch_key(
            func.name(), _COMPOSITE
        )
        _decomposes[func] = known
    return known


_Base: Any = getattr(_fc, "_FlopCounterMode", None)

if _Base is not None and hasattr(_Base, "_handle_higher_order_ops"):

    class _Dispatch(_Base):  # type: ignore[misc, valid-type]
        """The stock dispatch, with the per-call work hoisted out of the call."""

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            kwargs = kwargs if kwargs else {}
            if func in _PASSED_ON:
                return NotImplemented
            if isinstance(func, torch._ops.HigherOrderOperator):
                return self._handle_higher_order_ops(func, types, args, kwargs)
            counter = self.counter
            if (
                func not in counter.flop_registry
                and func is not torch.ops.prim.device.default
                and _has_decomposition(func)
            ):
                with self:
                    r = func.decompose(*args, **kwargs)
                    if r is not NotImplemented:
                        return r
            out = func(*args, **kwargs)
            packet, recorder = func._overloadpacket, counter.recorder
            if packet not in counter.flop_registry:  # the census of the ops with no formula
                entry = counter.census.get(packet)
                if entry is None:
                    entry = counter.census[packet] = [0, 0]
                entry[0] += 1
                if does_arithmetic(packet):
                    entry[1] += _bytes(args, kwargs, out)
            modules = counter.modules
            if recorder is None and modules is None:
                return counter._count_flops(packet, out, args, kwargs)
            totals = counter.flop_counts["Global"]
            before = totals.get(packet, 0)
            out = counter._count_flops(packet, out, args, kwargs)
            flops = int(totals.get(packet, 0) - before)
            if recorder is None:  # a forward, its calls charged to the modules running
                modules.forward_call(flops, out)
                return out
            nbytes = 0 if func.is_view else _bytes(args, kwargs, out)
            recorder.charge(_current_node(), flops, nbytes)
            return out

    class _PlainDispatch(_Dispatch):
        """The same dispatch, not wrapped in ``torch._dynamo.disable``: that wrapper imports
        torch._dynamo on the first call (about 2 s) and costs some 25 µs per call (1.4 s
        of the 5.4 s counting the UGCNN's 14 quick points). It guards compiled code run
        under the mode, so it is used only where torch._dynamo is not loaded, i.e. nothing
        in the process compiles."""

        @classmethod
        def _should_skip_dynamo(cls) -> bool:
            return False

        __torch_dispatch__ = _Dispatch.__dict__["__torch_dispatch__"].__wrapped__

else:  # pragma: no cover - a torch without the private class
    _Dispatch = _PlainDispatch = None


class _TotalsCounter(FlopCounterMode):
    def __init__(self) -> None:
        super().__init__(display=False, custom_mapping=EXTRA_FLOP_FORMULAS)
        self.mod_tracker = _GlobalOnly()  # type: ignore[assignment]
        # where set (trainbench.measure.span.record_backward), every call's FLOPs and bytes are
        # also charged to it, with the backward node running the call
        self.recorder: Any = None
        # per op the counter has no formula for: [calls, bytes in and out] (bytes of the
        # ops that do arithmetic only; trainbench.measure.counting.does_arithmetic)
        self.census: dict[Any, list[int]] = {}
        # where set (a forward of trainbench.measure.modules' per-module count), every call's FLOPs
        # are also charged to the modules running it
        self.modules: Any = None

    def __enter__(self) -> _TotalsCounter:
        if _Dispatch is None:  # pragma: no cover
            super().__enter__()
            return self
        self.flop_counts.clear()
        plain = "torch._dynamo" not in sys.modules
        self.mode = (_PlainDispatch if plain else _Dispatch)(self)
        self.mode.__enter__()
        return self

    def __exit__(self, *args: Any) -> Any:
        if _Dispatch is None:  # pragma: no cover
            return super().__exit__(*args)
        mode, self.mode = self.mode, None
        return mode.__exit__(*args)


# The backward node the engine is running in this thread (None outside one): what
# torch.autograd.graph reads for its own hooks. Whether a counter can charge its calls to
# nodes: both it and the dispatch class are there.
_current_node = getattr(torch._C, "_current_autograd_node", None)
CHARGES_NODES = _Dispatch is not None and _current_node is not None


def totals_counter() -> FlopCounterMode:
    """A ``FlopCounterMode`` (with :mod:`trainbench.measure.flops`' formulas) that counts totals:
    ``get_total_flops()`` as torch's counter gives it, ``get_flop_counts()`` with
    ``"Global"`` only."""
    return _TotalsCounter()
