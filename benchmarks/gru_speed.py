"""Per-token forward+backward time of the GRU language models, side by side.

    python benchmarks/gru_speed.py [--hidden 256] [--batch 16] [--length 128] [--vocab 1000]

Times one training step's forward and backward (the summed loss) of the RNN LM
with the explicit-loop ``gru-torch`` cell, its fused-products form
``gru-torch-fast``, and the fused ``torch.nn.GRU`` module (``torch-gru``), in
interleaved rounds in one process, and prints each one's time per token and
its ratio to ``torch-gru``.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch.utils.benchmark import Timer

from trainbench.models.rnn_lm import RNNLM, RNNLMConfig, make_words

CELLS = ("gru-torch", "gru-torch-fast", "torch-gru")


def step_fn(cell: str, length: int, vocab: int, hidden: int, batch: int):
    torch.manual_seed(0)
    model = RNNLM(RNNLMConfig(length=length, vocab=vocab, hidden=hidden, cell=cell))
    words = make_words(batch, length, vocab, generator=torch.Generator().manual_seed(1))

    def step() -> None:
        torch.stack(model(words)).sum().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.5)
    args = parser.parse_args()
    threads = torch.get_num_threads()
    steps = {c: step_fn(c, args.length, args.vocab, args.hidden, args.batch) for c in CELLS}
    times: dict[str, list[float]] = {c: [] for c in CELLS}
    for _ in range(args.rounds):
        for cell, fn in steps.items():
            m = Timer("fn()", globals={"fn": fn}, num_threads=threads).blocked_autorange(
                min_run_time=args.min_time
            )
            times[cell].append(m.median)
    tokens = args.batch * args.length
    ref = statistics.median(times["torch-gru"])
    print(
        f"hidden {args.hidden}, batch {args.batch}, T {args.length}, vocab {args.vocab}, "
        f"{threads} threads, torch {torch.__version__}"
    )
    print(f"{'cell':<16}{'fwd+bwd ms':>12}{'µs/token':>10}{'vs torch-gru':>14}")
    for cell in CELLS:
        t = statistics.median(times[cell])
        print(f"{cell:<16}{t * 1e3:>12.2f}{t / tokens * 1e6:>10.2f}{t / ref:>13.2f}x")


if __name__ == "__main__":
    main()
