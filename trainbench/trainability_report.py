"""Files and plots of a trainability run: DIR/trainability/.

summary.json          config, environment, gradient_signal, training, claims
gradient_signal.csv   variant, depth, first/last layer gradient norms, ratio
training.csv          variant, depth, optimizer, final loss, steps to threshold
grad_norms.png        gradient norm per layer (log scale), per variant, at a few depths
grad_ratio.png        first/last gradient ratio against depth
loss_curves.png       held-out loss of the top prediction during training, deepest depth
final_loss.png        final loss against depth, per optimizer
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from trainbench.results import atomic_write_text, to_json

FILES = (
    "summary.json",
    "gradient_signal.csv",
    "training.csv",
    "grad_norms.png",
    "grad_ratio.png",
    "loss_curves.png",
    "final_loss.png",
)
RELATIVE = "top prediction's held-out MSE / var(y)\n(1: no better than the mean)"
COLORS = {"plain": "C0", "heads": "C1", "residual": "C2", "cnn": "C3", "ugcnn": "C4"}


SIGNAL_COLUMNS = ("variant", "depth", "first_layer_grad_norm", "last_layer_grad_norm", "ratio")
TRAINING_COLUMNS = (
    "variant", "depth", "optimizer", "final_loss", "initial_loss", "best_head_loss",
    "steps_to_threshold", "threshold", "target_variance", "diverged",
)  # fmt: skip


def write_files(folder: Path, summary: Mapping[str, Any], plots: bool = True) -> list[Path]:
    """Write the summary, the two tables and (with ``plots``) the figures; remove files of
    an earlier run in the folder that this one does not write (no stale plot stays beside
    new numbers)."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "summary.json", to_json(summary))
    signal = pd.DataFrame(list(summary["gradient_signal"]), columns=list(SIGNAL_COLUMNS))
    atomic_write_text(folder / "gradient_signal.csv", signal.to_csv(index=False))
    training = pd.DataFrame(list(summary["training"]), columns=list(TRAINING_COLUMNS))
    atomic_write_text(folder / "training.csv", training.to_csv(index=False))
    written = [folder / n for n in ("summary.json", "gradient_signal.csv", "training.csv")]
    if plots and summary["gradient_signal"]:
        written += plot_all(folder, summary)
    for name in FILES:
        if folder / name not in written and (folder / name).is_file():
            (folder / name).unlink()
    return written


def plot_all(folder: Path, summary: Mapping[str, Any]) -> list[Path]:
    from trainbench.plots import _pyplot, log_scale

    plt = _pyplot()
    out = []
    signal = summary["gradient_signal"]
    variants = list(dict.fromkeys(r["variant"] for r in signal))
    depths = sorted({r["depth"] for r in signal})
    shown = sorted({depths[0], depths[len(depths) // 2], depths[-1]})

    fig, axes = plt.subplots(1, len(variants), figsize=(3.2 * len(variants), 3.4), sharey=True)
    axes = [axes] if len(variants) == 1 else list(axes)
    for ax, v in zip(axes, variants, strict=True):
        for i, d in enumerate(shown):
            rec = next((r for r in signal if r["variant"] == v and r["depth"] == d), None)
            if rec is None:
                continue
            norms = [max(n, 1e-300) for n in rec["layer_grad_norms"]]
            ax.plot(range(1, len(norms) + 1), norms, color=COLORS.get(v), alpha=0.4 + 0.3 * i,
                    label=f"L = {d}")  # fmt: skip
        log_scale(ax)
        ax.set_title(v)
        ax.set_xlabel("layer ℓ")
        _legend(ax)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("‖∂Loss/∂W_ℓ‖ at initialisation")
    fig.suptitle("Gradient norm per layer: does the signal reach layer 1?")
    fig.tight_layout()
    out.append(_save(fig, folder / "grad_norms.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for v in variants:
        rows = sorted((r for r in signal if r["variant"] == v), key=lambda r: r["depth"])
        ax.plot([r["depth"] for r in rows], [max(r["ratio"] or 0, 1e-300) for r in rows],
                "o-", color=COLORS.get(v), label=v)  # fmt: skip
    log_scale(ax, "x", base=2)
    log_scale(ax)
    ax.set_xlabel("depth L")
    ax.set_ylabel("first / last layer gradient norm")
    ax.set_title("Gradient ratio against depth (plain nets vanish exponentially)")
    ax.grid(True, alpha=0.3)
    _legend(ax)
    fig.tight_layout()
    out.append(_save(fig, folder / "grad_ratio.png"))

    training = summary["training"]
    if training:
        optimizers = list(dict.fromkeys(r["optimizer"] for r in training))
        deepest = max(r["depth"] for r in training)
        fig, axes = plt.subplots(1, len(optimizers), figsize=(5.5 * len(optimizers), 3.8))
        axes = [axes] if len(optimizers) == 1 else list(axes)
        for ax, opt in zip(axes, optimizers, strict=True):
            for r in training:
                if r["optimizer"] == opt and r["depth"] == deepest:
                    steps = [c["step"] for c in r["curve"]]
                    losses = [c["loss"] / r["target_variance"] for c in r["curve"]]
                    ax.plot(steps, losses, color=COLORS.get(r["variant"]), label=r["variant"])
            log_scale(ax)
            ax.axhline(1.0, color="0.5", linestyle="--", linewidth=1)
            ax.set_title(f"training at L = {deepest}, {opt}")
            ax.set_xlabel("step")
            ax.set_ylabel(RELATIVE)
            ax.grid(True, alpha=0.3)
            _legend(ax)
        fig.tight_layout()
        out.append(_save(fig, folder / "loss_curves.png"))

        fig, axes = plt.subplots(1, len(optimizers), figsize=(5.5 * len(optimizers), 3.8))
        axes = [axes] if len(optimizers) == 1 else list(axes)
        for ax, opt in zip(axes, optimizers, strict=True):
            for v in variants:
                rows = sorted(
                    (r for r in training if r["variant"] == v and r["optimizer"] == opt),
                    key=lambda r: r["depth"],
                )
                rows = [r for r in rows if r["final_loss"] is not None]
                if rows:
                    depth = [r["depth"] for r in rows]
                    relative = [r["final_loss"] / r["target_variance"] for r in rows]
                    ax.plot(depth, relative, "o-", color=COLORS.get(v), label=v)
            log_scale(ax, "x", base=2)
            log_scale(ax)
            ax.axhline(1.0, color="0.5", linestyle="--", linewidth=1)
            ax.set_title(f"after {summary['config']['steps']} steps of {opt}")
            ax.set_xlabel("depth L")
            ax.set_ylabel(RELATIVE)
            ax.grid(True, alpha=0.3)
            _legend(ax)
        fig.tight_layout()
        out.append(_save(fig, folder / "final_loss.png"))
    return out


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path


def _legend(ax: Any) -> None:
    """A legend, where something was drawn (matplotlib warns on an empty one)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
