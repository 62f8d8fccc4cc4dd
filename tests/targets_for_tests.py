"""Tiny TARGET functions for the tests of ``trainbench sweep`` and ``trainbench.sweep``.

Each takes the size n and returns a zero-argument function that runs one forward pass and
returns a scalar loss (the contract of :mod:`trainbench.experiments.target`); some break the
contract on purpose. TARGET strings name them through this file: ``spec("linear")``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

WIDTH = 4
FILE = Path(__file__).resolve()


def spec(name: str) -> str:
    """The TARGET string (file form, absolute path) of the function ``name`` in this file."""
    return f"{FILE}:{name}"


def linear(n: int) -> Callable[[], Tensor]:
    """x @ W with n rows: every count grows as n."""
    w = torch.randn(WIDTH, WIDTH, requires_grad=True)
    x = torch.randn(n, WIDTH)
    return lambda: torch.tanh(x @ w).sum()


def chain(n: int) -> Callable[[], Tensor]:
    """A chain of n fixed-width layers: FLOPs, graph nodes and depth grow as n."""
    weights = [torch.randn(WIDTH, WIDTH, requires_grad=True) for _ in range(n)]
    x = torch.randn(2, WIDTH)

    def forward() -> Tensor:
        h = x
        for w in weights:
            h = torch.tanh(h @ w)
        return h.sum()

    return forward


def attention(n: int) -> Callable[[], Tensor]:
    """Self-attention over n tokens: the n x n scores make the FLOPs grow as n^2."""
    q = torch.randn(n, WIDTH, requires_grad=True)
    return lambda: torch.softmax(q @ q.T, dim=-1).matmul(q).sum()


def raises(n: int) -> Callable[[], Tensor]:
    raise ValueError(f"cannot build size {n}")


def forward_raises(n: int) -> Callable[[], Tensor]:
    def forward() -> Tensor:
        raise KeyError("forward broke")

    return forward


def not_callable(n: int) -> int:
    return n


def vector(n: int) -> Callable[[], Tensor]:
    w = torch.randn(n, requires_grad=True)
    return lambda: w * 2


def no_grad(n: int) -> Callable[[], Tensor]:
    x = torch.randn(n)
    return lambda: x.sum()


def integer(n: int) -> Callable[[], Tensor]:
    return lambda: torch.tensor(n)


def not_a_tensor(n: int) -> Callable[[], float]:
    return lambda: 1.0


def raises_from_8(n: int) -> Callable[[], Tensor]:
    """Works below n = 8, raises from there on (a target that cannot be built that large)."""
    if n >= 8:
        raise RuntimeError(f"size {n} is not supported")
    return linear(n)


NOT_A_FUNCTION = 42


def _sigmoid_chain(n: int, breaks: bool) -> Callable[[], Tensor]:
    w = torch.randn(WIDTH, WIDTH, requires_grad=True)
    x = torch.randn(n, WIDTH)

    def loss() -> Tensor:
        y = torch.sigmoid(x @ w)
        if breaks:
            y.add_(1)  # in place on an output sigmoid saved for backward: backward fails
        return y.sum()

    return loss


def bad_backward(n: int) -> Callable[[], Tensor]:
    """A forward pass whose backward fails (at every size)."""
    return _sigmoid_chain(n, breaks=True)


def bad_backward_from_8(n: int) -> Callable[[], Tensor]:
    """Keeps the contract below n = 8; its backward fails from n = 8 on."""
    return _sigmoid_chain(n, breaks=n >= 8)


def exits_from_8(n: int) -> Callable[[], Tensor]:
    """Calls sys.exit(0) when built at n = 8 or more (a script's habit)."""
    if n >= 8:
        import sys

        sys.exit(0)
    return linear(n)


def _forward_raising_from_8(n: int, error: BaseException) -> Callable[[], Tensor]:
    """linear(n), whose forward raises ``error`` from n = 8 on."""
    inner = linear(n)

    def forward() -> Tensor:
        if n >= 8:
            raise error
        return inner()

    return forward


def forward_exits(n: int) -> Callable[[], Tensor]:
    """Its forward calls sys.exit(3) from n = 8 on."""
    return _forward_raising_from_8(n, SystemExit(3))


def always_raises(n: int) -> Callable[[], Tensor]:
    """Fails at every size: nothing can be measured."""
    raise RuntimeError("no size works")


def prints(n: int) -> Callable[[], Tensor]:
    """Prints from Python and writes to file descriptor 1 directly, as chatty code does."""
    import os

    print(f"building n = {n}")
    os.write(1, b"raw write to fd 1\n")
    inner = linear(n)

    def forward() -> Tensor:
        print("forward")
        return inner()

    return forward


_BUILDS = {"count": 0}


def works_once(n: int) -> Callable[[], Tensor]:
    """Builds once (the check before a run), then fails at every size: nothing is measured."""
    _BUILDS["count"] += 1
    if _BUILDS["count"] > 1:
        raise RuntimeError("no size works")
    return linear(n)


def gated(n: int) -> Callable[[], Tensor]:
    """chain(n); from n = 8 on it is built only once the file named by the environment's
    TRAINBENCH_TEST_GATE exists (waiting up to two minutes, having made the file named by
    TRAINBENCH_TEST_WAITING where given): a run a test holds open."""
    import os
    import time

    gate = os.environ.get("TRAINBENCH_TEST_GATE")
    if gate and n >= 8:
        waiting = os.environ.get("TRAINBENCH_TEST_WAITING")  # (a file it makes as it waits)
        if waiting:
            open(waiting, "w").close()
        deadline = time.monotonic() + 120
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.02)
    return chain(n)


def sleeps_from_8(n: int) -> Callable[[], Tensor]:
    """Never returns when built at n = 8 or more (it waits for something that never comes)."""
    import time

    while n >= 8:
        time.sleep(3600)
    return linear(n)


def loops_from_8(n: int) -> Callable[[], Tensor]:
    """Its forward loops for ever from n = 8 on."""
    inner = linear(n)

    def forward() -> Tensor:
        while n >= 8:
            pass
        return inner()

    return forward


def spins_from_8(n: int) -> Callable[[], Tensor]:
    """Its forward loops for ever from n = 8 on, catching every exception it meets (the
    timeout too) and going on."""
    inner = linear(n)

    def forward() -> Tensor:
        while n >= 8:
            try:
                while True:
                    pass
            except BaseException:  # noqa: S110  (a target that swallows what stops it)
                continue
        return inner()

    return forward


def interrupts_from_8(n: int) -> Callable[[], Tensor]:
    """Raises KeyboardInterrupt itself (no signal) when built at n = 8 or more."""
    if n >= 8:
        raise KeyboardInterrupt
    return linear(n)


def forward_interrupts(n: int) -> Callable[[], Tensor]:
    """Its forward raises KeyboardInterrupt itself from n = 8 on."""
    return _forward_raising_from_8(n, KeyboardInterrupt())


def sdpa(n: int) -> Callable[[], Tensor]:
    """Attention over n tokens through F.scaled_dot_product_attention (on CPU: the fused
    flash kernel, for which torch's counter has no formula)."""
    q = torch.randn(1, 2, n, 8, requires_grad=True)
    return lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q).sum()


def eager_attention(n: int) -> Callable[[], Tensor]:
    """The same attention as :func:`sdpa`, written out: softmax(q·kᵀ/√d)·v."""
    q = torch.randn(1, 2, n, 8, requires_grad=True)
    return lambda: (torch.softmax(q @ q.transpose(-2, -1) / 8**0.5, -1) @ q).sum()
