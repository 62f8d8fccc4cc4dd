"""The built-in experiments' own options, each declared once: their sizes (``--max-depth``,
...) and their models' options, with the one-line help of their commands.

No torch here: ``trainbench --help`` builds the commands from these. The experiments that
run them (:mod:`trainbench.experiments.builtin`) take their defaults and choices from here,
the harness checks a configuration against them and a report's reproduce command turns a
run's settings back into these flags. To add an option to a built-in experiment, declare
it here; its builder reads it from the options it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainbench.core.options import MAX_DIM, OptionSpec, choice, dimension, size_options
from trainbench.core.vocabulary import RNN_CELLS


@dataclass(frozen=True)
class Declared:
    """A built-in experiment's command: its one-line help, its size (the problem's letter
    and the word of its flags) and its options."""

    summary: str
    size_name: str  # L, T
    size_option: str  # depth, len: --max-depth, --min-depth, --control-max-depth
    size_words: str  # "depth", "sentence length": the help of --max-depth
    max_size: int  # the default of --max-depth
    control_max_size: int  # the default of --control-max-depth
    control_help: str
    model: tuple[OptionSpec, ...]  # the model's options

    @property
    def options(self) -> tuple[OptionSpec, ...]:
        """Its sizes (--max-UNIT, --min-UNIT, --control-max-UNIT), then its model's options."""
        sizes = size_options(self.size_option, self.size_words, self.size_name, self.max_size,
                             self.control_max_size, self.control_help)  # fmt: skip
        return (*sizes, *self.model)


MLP_HEADS = Declared(
    summary="Problem 1b: backprop time of the L-layer MLP with a loss head per layer, against L.",
    size_name="L",
    size_option="depth",
    size_words="depth",
    max_size=64,
    control_max_size=32,
    control_help="Largest depth for the per-head control (it is O(L²)).",
    model=(
        dimension("width", 256, "Hidden width (size of I)."),
        dimension("batch", 64, "Batch size (size of b)."),
        dimension("in_dim", 32, "Input dimension (size of K)."),
        choice("activation", "sigmoid", ("sigmoid", "tanh", "relu"), "σ of the hidden layers."),
        choice("impl", "einsum", ("einsum", "fused"),
               "einsum: reads like the problem; fused: addmm, faster."),
    ),  # fmt: skip
)

RNN_LM = Declared(
    summary="Problem 4: backprop time of the RNN language model against the sentence length T.",
    size_name="T",
    size_option="len",
    size_words="sentence length",
    max_size=256,
    control_max_size=64,
    control_help="Largest T for the per-step control (it is O(T²)).",
    model=(
        choice("cell", "ugrnn", RNN_CELLS,
               "ugrnn, ugrnn2 (Problem 3), gru (Problem 5), gru-torch (nn.GRUCell's "
               "convention), gru-torch-fast (the same, fused products), torch-gru (nn.GRU), "
               "none (no recurrence), ugrnn-x (gate and update from x alone, a time loop), "
               "ugrnn-x-scan (the same by a parallel prefix scan)."),
        dimension("vocab", 1000, "Vocabulary size (words w).", low=2),
        dimension("hidden", 128, "Hidden size (size of I, J and K)."),
        dimension("batch", 16, "Sentences per batch."),
    ),  # fmt: skip
)

UGCNN = Declared(
    summary="Problem 2: backprop time of a stack of L UGCNN layers (a head on each), against L.",
    size_name="L",
    size_option="depth",
    size_words="depth",
    max_size=32,
    control_max_size=32,
    control_help="Largest depth for the per-head control (it is O(L²)).",
    model=(
        dimension("channels", 8, "Channels of every box (size of j).", high=4096),
        dimension("image_size", 16, "Images are SIZE × SIZE pixels (x, y).", high=4096),
        dimension("batch", 8, "Images per batch (b)."),
        # k = 3 throughout the problem: not a flag; odd, so that a box keeps its size
        OptionSpec("kernel", int, 3, "The convolution's size k.", flags=(), low=1,
                   high=MAX_DIM, rule=(lambda k: k % 2 == 1, "odd")),
        choice("impl", "einsum", ("einsum", "conv"),
               "einsum: shifted views, the problem's letters; conv: conv2d."),
    ),  # fmt: skip
)

BUILT_IN_SPECS = {"mlp-heads": MLP_HEADS, "rnn-lm": RNN_LM, "ugcnn": UGCNN}
