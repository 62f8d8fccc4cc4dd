"""Named experiments: size -> (model, inputs, loss terms) and their variants.

Their claims are data: `seeds/claims.toml` (read by :mod:`trainbench.claims.parse`).

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
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from trainbench.core.options import MODEL, OptionSpec
from trainbench.experiments.specs import BUILT_IN_SPECS
from trainbench.models.mlp_heads import MLPHeads, MLPHeadsConfig, make_data
from trainbench.models.mlp_heads import memory_bytes as mlp_heads_bytes
from trainbench.models.rnn_lm import RNNLM, RNNLMConfig, make_words
from trainbench.models.rnn_lm import memory_bytes as rnn_lm_bytes
from trainbench.models.ugcnn import CNNStack, make_images

Terms = Callable[[], list[Tensor]]
Builder = Callable[[int, Mapping[str, Any], torch.device, torch.dtype], Terms]


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    split: bool  # back-propagate each loss term on its own (a control)
    # Sum the terms before the one backward (stack, then one sum). False: the terms are
    # the roots as they come (a model that returns its one loss: nothing is added).
    stack: bool = True
    # Its own model (several TARGETs in one sweep: one variant each); None: the experiment's.
    build: Any = field(default=None, compare=False, repr=False)

    def roots(self, terms: Sequence[Tensor]) -> list[Tensor]:
        if self.split or not self.stack:
            return list(terms)
        # Always stack, then one sum (also for a single term), so the graph of
        # the summation is the same two nodes at every size.
        return [torch.stack(list(terms)).sum()]


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    size_name: str  # the problem's letter for the size: L, T
    size_option: str  # what the size is called on the command line
    variants: tuple[Variant, ...]
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
    # what every run of it notes
    notes: tuple[str, ...] = ()
    # it runs code from outside trainbench (a TARGET): any error at a point, not only
    # running out of memory, makes that point a failed one instead of ending the run
    foreign: bool = False
    # the values a text model option may take (the others are refused up front)
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # A built-in experiment's own options, each declared once: its sizes (--max-depth, ...)
    # and its model's options. Its command line, defaults, choices, the checks of a
    # configuration and a report's reproduce command all come from them.
    options: tuple[OptionSpec, ...] = ()
    # the one-line help of its command
    summary: str = ""

    def __post_init__(self) -> None:
        model = [o for o in self.options if o.where == MODEL]
        if model:  # (the defaults and choices follow from the options declared)
            object.__setattr__(self, "defaults", {o.name: o.default for o in model})
            object.__setattr__(self, "choices", {o.name: o.choices for o in model if o.choices})

    def option(self, name: str) -> OptionSpec | None:
        """The option declared under ``name`` (a model option or a size), if any."""
        return next((o for o in self.options if o.name == name), None)

    def folder(self, options: Mapping[str, Any]) -> str:
        return self.folder_name(options) if self.folder_name else self.name

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
        v = self.variant(variant)
        terms = (v.build or self.build)(size, options, device, dtype)
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
    size_name=BUILT_IN_SPECS["mlp-heads"].size_name,
    size_option=BUILT_IN_SPECS["mlp-heads"].size_option,
    summary=BUILT_IN_SPECS["mlp-heads"].summary,
    options=BUILT_IN_SPECS["mlp-heads"].options,
    variants=(FULL, PER_HEAD),
    build=_build_mlp_heads,
    reference_matmul=lambda o: (int(o["batch"]), int(o["width"]), int(o["width"])),
    estimate_bytes=lambda depth, o, itemsize: mlp_heads_bytes(
        depth, int(o["width"]), int(o["batch"]), int(o["in_dim"]), itemsize
    ),
)


PER_STEP = Variant("per-step", "one backward per time step's loss", split=True)


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


RNN_LM = Experiment(
    name="rnn-lm",
    title="Problem 4: the RNN language model, against the sentence length T",
    size_name=BUILT_IN_SPECS["rnn-lm"].size_name,
    size_option=BUILT_IN_SPECS["rnn-lm"].size_option,
    summary=BUILT_IN_SPECS["rnn-lm"].summary,
    options=BUILT_IN_SPECS["rnn-lm"].options,
    variants=(FULL, PER_STEP),
    build=_build_rnn_lm,
    reference_matmul=lambda o: (int(o["batch"]), int(o["hidden"]), int(o["vocab"])),
    estimate_bytes=lambda length, o, itemsize: rnn_lm_bytes(
        length, int(o["vocab"]), int(o["hidden"]), int(o["batch"]), str(o["cell"]), itemsize
    ),
    min_fit_size=2,
    min_fit_reason="a one-word sentence reads no word, so it runs no cell step",
    folder_name=lambda o: f"rnn-lm-{o.get('cell', 'ugrnn')}",
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
    size_name=BUILT_IN_SPECS["ugcnn"].size_name,
    size_option=BUILT_IN_SPECS["ugcnn"].size_option,
    summary=BUILT_IN_SPECS["ugcnn"].summary,
    options=BUILT_IN_SPECS["ugcnn"].options,
    variants=(FULL, PER_HEAD),
    build=_build_ugcnn,
    reference_matmul=lambda o: (
        int(o["batch"]) * int(o["image_size"]) ** 2,
        int(o.get("kernel", 3)) ** 2 * int(o["channels"]),
        int(o["channels"]),
    ),
    estimate_bytes=_ugcnn_bytes,
)

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (MLP_HEADS, RNN_LM, UGCNN)}
# The experiments every new process has (others are registered at run time).
BUILT_IN: Mapping[str, Experiment] = MappingProxyType(dict(EXPERIMENTS))
