"""Named experiments: size -> (model, inputs, loss terms), their variants and claims.

An experiment's ``build(size, options, device, dtype)`` returns a zero-argument
function that runs one forward pass and returns the loss terms (one scalar per
loss head). A variant turns the terms into the roots that backward is called on:

* ``full``: the terms summed into the one loss SGD minimises (stack, then one
  sum, so the summation adds a constant, not a chain, to the graph), one backward;
* a control (``per-head``): every term back-propagated on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from trainbench.models.mlp_heads import MLPHeads, MLPHeadsConfig, make_data
from trainbench.models.mlp_heads import memory_bytes as mlp_heads_bytes
from trainbench.models.rnn_lm import CELLS, RNNLM, RNNLMConfig, make_words
from trainbench.models.rnn_lm import memory_bytes as rnn_lm_bytes
from trainbench.models.ugcnn import CNNStack, make_images

Terms = Callable[[], list[Tensor]]
Builder = Callable[[int, Mapping[str, Any], torch.device, torch.dtype], Terms]


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    split: bool  # back-propagate each loss term on its own

    def roots(self, terms: Sequence[Tensor]) -> list[Tensor]:
        if self.split:
            return list(terms)
        # Always stack, then one sum (also for a single term), so the graph of
        # the summation is the same two nodes at every size.
        return [torch.stack(list(terms)).sum()]


@dataclass(frozen=True)
class Claim:
    """A statement "metric of variant grows as size**expected", to be tested."""

    id: str
    problem: str
    statement: str
    variant: str
    metric: str
    expected: float
    tolerance: float
    control: str | None = None  # id of the claim whose growth must come out faster
    is_control: bool = False
    work_metric: str | None = None  # the exact count of the work behind a time metric
    # the claim holds for runs whose options take one of these values (empty: every run)
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def applies(self, options: Mapping[str, Any]) -> bool:
        return all(options.get(key) in values for key, values in self.when.items())


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    size_name: str  # the problem's letter for the size: L, T
    size_option: str  # what the size is called on the command line
    variants: tuple[Variant, ...]
    claims: tuple[Claim, ...]
    build: Builder
    # (rows, inner, cols) of the torch.mm whose rate is the efficiency reference
    reference_matmul: Callable[[Mapping[str, Any]], tuple[int, int, int]]
    # bytes one point of this size needs (parameters, gradients, activations)
    estimate_bytes: Callable[[int, Mapping[str, Any], int], int]
    # the model options a run leaves out take these values
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # the smallest size on the curve whose order is fitted (smaller ones are measured, not fitted)
    min_fit_size: int = 1
    min_fit_reason: str = ""
    # the run's folder name under --out (default: the experiment's name)
    folder_name: Callable[[Mapping[str, Any]], str] | None = None
    # why FLOPs cannot be counted for these options on this device (None: they can)
    uncounted_flops: Callable[[Mapping[str, Any], torch.device], str | None] | None = None

    def folder(self, options: Mapping[str, Any]) -> str:
        return self.folder_name(options) if self.folder_name else self.name

    def claims_for(self, options: Mapping[str, Any]) -> tuple[Claim, ...]:
        """The claims that a run with these options tests."""
        return tuple(c for c in self.claims if c.applies(options))

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)

    def forward(
        self,
        variant: str,
        size: int,
        options: Mapping[str, Any],
        device: torch.device,
        dtype: torch.dtype,
    ) -> Callable[[], list[Tensor]]:
        """The harness's contract for one point: forward() -> roots to back-propagate."""
        terms = self.build(size, options, device, dtype)
        v = self.variant(variant)
        return lambda: v.roots(terms())


FULL = Variant("full", "one backward of the summed loss", split=False)
PER_HEAD = Variant("per-head", "one backward per loss head", split=True)


def _build_mlp_heads(
    depth: int, options: Mapping[str, Any], device: torch.device, dtype: torch.dtype
) -> Terms:
    torch.manual_seed(int(options.get("seed", 0)))
    cfg = MLPHeadsConfig(
        depth=depth,
        width=int(options["width"]),
        in_dim=int(options["in_dim"]),
        activation=str(options.get("activation", "sigmoid")),
        impl=str(options.get("impl", "einsum")),
    )
    model = MLPHeads(cfg).to(device=device, dtype=dtype)
    # The data come from their own generator: the same x and y at every depth.
    data_seed = torch.Generator().manual_seed(int(options.get("seed", 0)) + 1)
    x, y = make_data(int(options["batch"]), cfg.in_dim, generator=data_seed)
    x, y = x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)
    return lambda: model(x, y)


MLP_HEADS = Experiment(
    name="mlp-heads",
    title="Problem 1b: the L-layer MLP with a loss head on every layer",
    size_name="L",
    size_option="depth",
    variants=(FULL, PER_HEAD),
    claims=(
        Claim(
            id="P1b",
            problem="1b",
            statement="backprop time of the L-head MLP is O(L)",
            variant="full",
            metric="bwd_s",
            expected=1.0,
            tolerance=0.15,
            control="P1b-control",
            work_metric="bwd_flops",
        ),
        Claim(
            id="P1b-flops",
            problem="1b",
            statement="backprop FLOPs of the L-head MLP are O(L)",
            variant="full",
            metric="bwd_flops",
            expected=1.0,
            tolerance=0.02,
            control="P1b-control-flops",
        ),
        Claim(
            id="P1b-graph",
            problem="1b",
            statement="the backward graph of the L-head MLP has O(L) nodes",
            variant="full",
            metric="graph_nodes",
            expected=1.0,
            tolerance=0.02,
        ),
        Claim(
            id="P1b-memory",
            problem="1b",
            statement="activation memory saved for backward is O(L)",
            variant="full",
            metric="saved_bytes",
            expected=1.0,
            tolerance=0.02,
        ),
        Claim(
            id="P1b-control",
            problem="1b",
            statement="backprop time with one backward per head is O(L²)",
            variant="per-head",
            metric="bwd_s",
            expected=2.0,
            tolerance=0.25,
            is_control=True,
            work_metric="bwd_flops",
        ),
        Claim(
            id="P1b-control-flops",
            problem="1b",
            statement="backprop FLOPs with one backward per head are O(L²)",
            variant="per-head",
            metric="bwd_flops",
            expected=2.0,
            tolerance=0.1,
            is_control=True,
        ),
    ),
    build=_build_mlp_heads,
    defaults={"width": 256, "batch": 64, "in_dim": 32, "activation": "sigmoid", "impl": "einsum"},
    reference_matmul=lambda o: (int(o["batch"]), int(o["width"]), int(o["width"])),
    estimate_bytes=lambda depth, o, itemsize: mlp_heads_bytes(
        depth, int(o["width"]), int(o["batch"]), int(o["in_dim"]), itemsize
    ),
)


PER_STEP = Variant("per-step", "one backward per time step's loss", split=True)
RECURRENT = {"cell": tuple(c for c in CELLS if c != "none")}
NO_RECURRENCE = {"cell": ("none",)}


def _build_rnn_lm(
    length: int, options: Mapping[str, Any], device: torch.device, dtype: torch.dtype
) -> Terms:
    torch.manual_seed(int(options.get("seed", 0)))
    cfg = RNNLMConfig(
        length=length,
        vocab=int(options["vocab"]),
        hidden=int(options["hidden"]),
        cell=str(options.get("cell", "ugrnn")),
    )
    model = RNNLM(cfg).to(device=device, dtype=dtype)
    data_seed = torch.Generator().manual_seed(int(options.get("seed", 0)) + 1)
    words = make_words(int(options["batch"]), length, cfg.vocab, generator=data_seed)
    words = words.to(device=device)
    return lambda: model(words)


def _rnn_uncounted(options: Mapping[str, Any], device: torch.device) -> str | None:
    if options.get("cell") == "torch-gru" and device.type == "cuda":
        return (
            "FLOPs not counted: torch's FlopCounterMode sees nothing inside the fused "
            "cuDNN GRU kernel (on CPU nn.GRU runs as separate products and is counted)"
        )
    return None


RNN_LM = Experiment(
    name="rnn-lm",
    title="Problem 4: the RNN language model, against the sentence length T",
    size_name="T",
    size_option="len",
    variants=(FULL, PER_STEP),
    claims=(
        Claim(
            id="P4",
            problem="4",
            statement="backprop time of the RNN LM on the full loss is O(T)",
            variant="full",
            metric="bwd_s",
            expected=1.0,
            tolerance=0.15,
            control="P4-control",
            work_metric="bwd_flops",
            when=RECURRENT,
        ),
        Claim(
            id="P4-flops",
            problem="4",
            statement="backprop FLOPs of the RNN LM are O(T)",
            variant="full",
            metric="bwd_flops",
            expected=1.0,
            tolerance=0.02,
            control="P4-control-flops",
            when=RECURRENT,
        ),
        Claim(
            id="P4-span",
            problem="4",
            statement="the critical path of backprop (graph depth) is O(T): the recurrence "
            "is sequential, whatever the hardware",
            variant="full",
            metric="graph_depth",
            expected=1.0,
            tolerance=0.02,
            when=RECURRENT,
        ),
        Claim(
            id="P4-memory",
            problem="4",
            statement="activation memory saved for backward is O(T)",
            variant="full",
            metric="saved_bytes",
            expected=1.0,
            tolerance=0.02,
            when=RECURRENT,
        ),
        Claim(
            id="P4-control",
            problem="4",
            statement="backprop time with one backward per time step's loss is O(T²)",
            variant="per-step",
            metric="bwd_s",
            expected=2.0,
            tolerance=0.25,
            is_control=True,
            work_metric="bwd_flops",
            when=RECURRENT,
        ),
        Claim(
            id="P4-control-flops",
            problem="4",
            statement="backprop FLOPs with one backward per time step's loss are O(T²)",
            variant="per-step",
            metric="bwd_flops",
            expected=2.0,
            tolerance=0.1,  # an exact polynomial count: judged on its degree (fit.judge)
            is_control=True,
            when=RECURRENT,
        ),
        Claim(
            id="P4-none",
            problem="4",
            statement="without recurrence, backprop time is still O(T): the work is the same "
            "order",
            variant="full",
            metric="bwd_s",
            expected=1.0,
            tolerance=0.15,
            work_metric="bwd_flops",
            when=NO_RECURRENCE,
        ),
        Claim(
            id="P4-none-span",
            problem="4",
            statement="without recurrence, the critical path (graph depth) is O(1): the steps "
            "could run in parallel",
            variant="full",
            metric="graph_depth",
            expected=0.0,
            tolerance=0.02,
            when=NO_RECURRENCE,
        ),
        Claim(
            id="P4-none-per-step-flops",
            problem="4",
            statement="without recurrence, one backward per time step's loss costs O(T) FLOPs "
            "too: each step's loss reaches one cell step",
            variant="per-step",
            metric="bwd_flops",
            expected=1.0,
            tolerance=0.02,
            when=NO_RECURRENCE,
        ),
    ),
    build=_build_rnn_lm,
    defaults={"cell": "ugrnn", "vocab": 1000, "hidden": 128, "batch": 16},
    reference_matmul=lambda o: (int(o["batch"]), int(o["hidden"]), int(o["vocab"])),
    estimate_bytes=lambda length, o, itemsize: rnn_lm_bytes(
        length, int(o["vocab"]), int(o["hidden"]), int(o["batch"]), str(o["cell"]), itemsize
    ),
    min_fit_size=2,
    min_fit_reason="a one-word sentence reads no word, so it runs no cell step",
    folder_name=lambda o: f"rnn-lm-{o.get('cell', 'ugrnn')}",
    uncounted_flops=_rnn_uncounted,
)



def _build_ugcnn(
    depth: int, options: Mapping[str, Any], device: torch.device, dtype: torch.dtype
) -> Terms:
    torch.manual_seed(int(options.get("seed", 0)))
    model = CNNStack(
        depth,
        int(options["channels"]),
        int(options.get("kernel", 3)),
        gated=True,
        heads="every",
        impl=str(options.get("impl", "einsum")),
    ).to(device=device, dtype=dtype)
    data_seed = torch.Generator().manual_seed(int(options.get("seed", 0)) + 1)
    images, y = make_images(
        int(options["batch"]), int(options["image_size"]), int(options["channels"]),
        generator=data_seed,
    )  # fmt: skip
    images, y = images.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)
    return lambda: model(images, y)


def _ugcnn_bytes(depth: int, o: Mapping[str, Any], itemsize: int) -> int:
    """Parameters and gradients, and per layer a generous 16 boxes of b·X·Y·C (the k²
    shifted views of the einsum form, the gates, their products)."""
    C, k, X = int(o["channels"]), int(o.get("kernel", 3)), int(o["image_size"])
    box = int(o["batch"]) * X * X * C
    params = depth * (2 * k * k * C * C + 3 * C + 1)
    return itemsize * (2 * params + depth * (2 * k * k + 16) * box)


UGCNN = Experiment(
    name="ugcnn",
    title="Problem 2: a stack of L UGCNN layers with a loss head on every layer",
    size_name="L",
    size_option="depth",
    variants=(FULL, PER_HEAD),
    claims=(
        Claim(
            id="P2-backprop",
            problem="2",
            statement="backprop time of the L-layer UGCNN with a head per layer is O(L)",
            variant="full",
            metric="bwd_s",
            expected=1.0,
            tolerance=0.15,
            control="P2-control",
            work_metric="bwd_flops",
        ),
        Claim(
            id="P2-flops",
            problem="2",
            statement="backprop FLOPs of the UGCNN stack are O(L)",
            variant="full",
            metric="bwd_flops",
            expected=1.0,
            tolerance=0.02,
        ),
        Claim(
            id="P2-span",
            problem="2",
            statement="the critical path of the UGCNN's backprop (graph depth) is O(L)",
            variant="full",
            metric="graph_depth",
            expected=1.0,
            tolerance=0.02,
        ),
        Claim(
            id="P2-memory",
            problem="2",
            statement="activation memory saved for backward is O(L)",
            variant="full",
            metric="saved_bytes",
            expected=1.0,
            tolerance=0.02,
        ),
        Claim(
            id="P2-control",
            problem="2",
            statement="backprop time with one backward per head is O(L²)",
            variant="per-head",
            metric="bwd_s",
            expected=2.0,
            tolerance=0.25,
            is_control=True,
            work_metric="bwd_flops",
        ),
    ),
    build=_build_ugcnn,
    defaults={"channels": 8, "image_size": 16, "batch": 8, "kernel": 3, "impl": "einsum"},
    reference_matmul=lambda o: (
        int(o["batch"]) * int(o["image_size"]) ** 2,
        int(o.get("kernel", 3)) ** 2 * int(o["channels"]),
        int(o["channels"]),
    ),
    estimate_bytes=_ugcnn_bytes,
)

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (MLP_HEADS, RNN_LM, UGCNN)}
