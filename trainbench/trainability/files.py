"""Files and plots of a trainability run: DIR/trainability/.

summary.json          config, environment, gradient_signal, training, gates, claims
gradient_signal.csv   variant, activation, depth, seed: first/last layer gradient norms, ratios
training.csv          variant, activation, depth, optimizer, seed: the chosen rate, losses
activations.csv       per activation and variant: the median gradient ratio at every depth and
                      the median final loss (of the variance) at every trained depth
grad_norms.png        gradient norm per layer at the largest depth, per activation
grad_ratio.png        first/last gradient ratio against depth, per activation
profile.png           the deepest head below the threshold against training steps (heads),
                      beside the deepest plain net that learned (plain), per activation
loss_curves.png       the top prediction's held-out loss during training, deepest trained depth
final_loss.png        the final loss against depth, per activation
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from trainbench.core.vocabulary import CNN_VARIANTS, MLP_VARIANTS
from trainbench.plots.drawing import log_scale, pyplot
from trainbench.results.files import atomic_write_text, to_json
from trainbench.trainability.judge import median

FILES = (
    "summary.json",
    "gradient_signal.csv",
    "training.csv",
    "activations.csv",
    "grad_norms.png",
    "grad_ratio.png",
    "profile.png",
    "loss_curves.png",
    "final_loss.png",
)
RELATIVE = "top prediction's held-out MSE / var(y)\n(1: no better than the mean)"
COLORS = {"plain": "C0", "heads": "C1", "residual": "C2", "cnn": "C3", "rescnn": "C5",
          "ugcnn": "C4"}  # fmt: skip
SIGNAL_COLUMNS = (
    "variant", "activation", "depth", "seed", "first_layer_grad_norm", "last_layer_grad_norm",
    "ratio", "top_only_ratio",
)  # fmt: skip
PER_SEED = (
    "final_loss", "deep_head_loss", "deepest_head", "steps_to_threshold", "diverged",
    "trained_ratio",
)  # fmt: skip
TRAINING_COLUMNS = (
    "variant", "activation", "depth", "optimizer", "seed", "steps", "lr", *PER_SEED,
    "finetune_loss", "target_variance", "threshold",
)  # fmt: skip


def training_rows(training: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per record and seed (the chosen learning rate's member)."""
    rows = []
    for r in training:
        ft = r.get("finetune") or {}
        for i, seed in enumerate(r["seeds"]):
            row = {k: r[k] for k in ("variant", "activation", "depth", "optimizer", "steps", "lr")}
            row |= {"seed": seed} | {k: r[k][i] for k in PER_SEED}
            row["finetune_loss"] = ft["final_loss"][i] if ft else None
            row |= {"target_variance": r["target_variance"], "threshold": r["threshold"]}
            rows.append(row)
    return rows


def ratios(signal: Sequence[Mapping[str, Any]], act: str, variant: str, depth: int) -> list[float]:
    """Every seed's first/last ratio of a variant at a depth (0: the last layer's was 0)."""
    return [r["ratio"] or 0.0 for r in signal
            if (r["activation"], r["variant"], r["depth"]) == (act, variant, depth)]  # fmt: skip


def activation_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per (activation, variant): the median ratio at every depth, the median final loss
    (a fraction of the targets' variance; None: diverged in most seeds) at every trained
    depth, SGD."""
    signal, training = summary["gradient_signal"], summary["training"]
    keys = list(dict.fromkeys((r["activation"], r["variant"]) for r in signal))
    depths = sorted({r["depth"] for r in signal})
    trained = sorted({r["depth"] for r in training})
    rows = []
    for act, variant in keys:
        row: dict[str, Any] = {"activation": act, "variant": variant}
        for d in depths:
            seeds = ratios(signal, act, variant, d)
            row[f"ratio_L{d}"] = median(seeds) if seeds else None
        for d in trained:
            rec = next((r for r in training
                        if (r["activation"], r["variant"], r["depth"], r["optimizer"])
                        == (act, variant, d, "sgd")), None)  # fmt: skip
            value = median(rec["final_loss"]) / rec["target_variance"] if rec else None
            row[f"loss_L{d}"] = None if value is None or math.isinf(value) else value
        rows.append(row)
    return rows


def write_files(folder: Path, summary: Mapping[str, Any], plots: bool = True) -> list[Path]:
    """Write the summary, the tables and (with ``plots``) the figures; remove files of an
    earlier run in the folder that this one does not write (no stale plot stays beside
    new numbers)."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "summary.json", to_json(summary))
    signal = pd.DataFrame(list(summary["gradient_signal"]), columns=list(SIGNAL_COLUMNS))
    atomic_write_text(folder / "gradient_signal.csv", signal.to_csv(index=False))
    training = pd.DataFrame(training_rows(summary["training"]), columns=list(TRAINING_COLUMNS))
    atomic_write_text(folder / "training.csv", training.to_csv(index=False))
    table = pd.DataFrame(activation_rows(summary))
    atomic_write_text(folder / "activations.csv", table.to_csv(index=False))
    written = [folder / n for n in FILES[:4]]
    if plots and summary["gradient_signal"]:
        written += plot_all(folder, summary)
    for name in FILES:
        if folder / name not in written and (folder / name).is_file():
            (folder / name).unlink()
    return written


def _panels(summary: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """(activation, variants) per panel: one per MLP activation, one for the CNNs."""
    signal = summary["gradient_signal"]
    out = []
    for act in dict.fromkeys(r["activation"] for r in signal):
        variants = tuple(dict.fromkeys(r["variant"] for r in signal if r["activation"] == act))
        mlp = tuple(v for v in variants if v in MLP_VARIANTS)
        cnn = tuple(v for v in variants if v not in mlp)
        out += [(act, group) for group in (mlp, cnn) if group]
    return out


def _title(act: str, variants: Sequence[str]) -> str:
    return f"{act} ({'CNNs' if variants[0] in CNN_VARIANTS else 'MLPs'})"


def _figure(plt: Any, n: int, sharey: bool = True) -> tuple[Any, list[Any]]:
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.6), sharey=sharey, squeeze=False)
    return fig, list(axes[0])


def plot_all(folder: Path, summary: Mapping[str, Any]) -> list[Path]:
    plt = pyplot()
    out = []
    signal, training = summary["gradient_signal"], summary["training"]
    panels = _panels(summary)
    depths = sorted({r["depth"] for r in signal})

    fig, axes = _figure(plt, len(panels))
    for ax, (act, variants) in zip(axes, panels, strict=True):
        for v in variants:
            recs = [r for r in signal if (r["activation"], r["variant"], r["depth"])
                    == (act, v, depths[-1])]  # fmt: skip
            for i, rec in enumerate(recs):
                norms = [max(n, 1e-300) for n in rec["layer_grad_norms"]]
                ax.plot(range(1, len(norms) + 1), norms, color=COLORS.get(v), alpha=0.7,
                        label=v if i == 0 else None)  # fmt: skip
        log_scale(ax)
        ax.set_title(_title(act, variants), fontsize=9)
        ax.set_xlabel("layer ℓ")
        _legend(ax)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel(f"‖∂Loss/∂W_ℓ‖ at initialisation, L = {depths[-1]}")
    fig.suptitle("Gradient norm per layer (every seed): does the signal reach layer 1?")
    fig.tight_layout()
    out.append(_save(fig, folder / "grad_norms.png"))

    fig, axes = _figure(plt, len(panels))
    for ax, (act, variants) in zip(axes, panels, strict=True):
        for v in variants:
            meds = []
            for d in depths:
                seeds = ratios(signal, act, v, d)
                meds.append(max(median(seeds), 1e-300) if seeds else math.nan)
            ax.plot(depths, meds, "o-", color=COLORS.get(v), label=v)
        log_scale(ax, "x", base=2)
        log_scale(ax)
        ax.set_title(_title(act, variants), fontsize=9)
        ax.set_xlabel("depth L")
        ax.grid(True, alpha=0.3)
        _legend(ax)
    axes[0].set_ylabel("first / last layer gradient norm (median of seeds)")
    fig.suptitle("Gradient ratio at initialisation against depth")
    fig.tight_layout()
    out.append(_save(fig, folder / "grad_ratio.png"))
    sgd = [r for r in training if r["optimizer"] == "sgd"]
    if sgd:
        out += _training_plots(plt, log_scale, folder, summary, sgd)
    return out


def _band(ax: Any, steps: Sequence[int], per_seed: Sequence[Sequence[float]], **kw: Any) -> None:
    """The median over seeds as a line, their range as a band."""
    meds = [median(vals) for vals in per_seed]
    meds = [math.nan if math.isinf(m) else m for m in meds]
    ax.plot(steps, meds, **kw)
    if per_seed and len(per_seed[0]) > 1:
        lo = [min(v) for v in per_seed]
        hi = [max(v) for v in per_seed]
        ax.fill_between(steps, lo, hi, color=kw.get("color"), alpha=0.15, linewidth=0)


def _training_plots(
    plt: Any, log_scale: Any, folder: Path, summary: Mapping[str, Any],
    sgd: Sequence[Mapping[str, Any]],
) -> list[Path]:  # fmt: skip
    out = []
    keys = list(dict.fromkeys(r["activation"] for r in sgd))
    steps_total = summary["config"]["steps"]

    # the profile: how deep the learning reaches, against steps
    mlp = [r for r in sgd if r["variant"] in ("plain", "heads")]
    acts = list(dict.fromkeys(r["activation"] for r in mlp))
    if acts:
        fig, axes = _figure(plt, len(acts))
        for ax, act in zip(axes, acts, strict=True):
            heads = sorted((r for r in mlp if r["activation"] == act and r["variant"] == "heads"),
                           key=lambda r: r["depth"])  # fmt: skip
            for i, r in enumerate(heads):
                steps = [p["step"] for p in r["profile"]]
                reach = [[-1 if d is None else d for d in p["deepest_head"]] for p in r["profile"]]
                _band(ax, steps, reach, color="C1", alpha=0.4 + 0.6 * (i + 1) / len(heads),
                      label=f"heads, L = {r['depth']}")  # fmt: skip
            plain = sorted((r for r in mlp if r["activation"] == act and r["variant"] == "plain"),
                           key=lambda r: r["depth"])  # fmt: skip
            if plain:
                steps = [p["step"] for p in plain[0]["profile"] if p["step"] <= steps_total]
                reach = []
                for k in range(len(steps)):
                    seeds = len(plain[0]["seeds"])
                    reach.append([max((r["depth"] for r in plain
                                       if (r["profile"][k]["deepest_head"][s] or 0) > 0),
                                      default=0) for s in range(seeds)])  # fmt: skip
                _band(ax, steps, reach, color="C0", label="plain: deepest net that learned")
            ax.set_title(act, fontsize=9)
            ax.set_xlabel(f"SGD step (of {steps_total})")
            ax.grid(True, alpha=0.3)
            _legend(ax)
        axes[0].set_ylabel("deepest layer whose prediction is\nbelow half the variance")
        fig.suptitle("How deep the learning reaches (median of seeds; band: their range)")
        fig.tight_layout()
        out.append(_save(fig, folder / "profile.png"))

    deepest = max(r["depth"] for r in sgd)
    fig, axes = _figure(plt, len(keys))
    for ax, act in zip(axes, keys, strict=True):
        for r in sgd:
            if r["activation"] == act and r["depth"] == deepest:
                steps = [c["step"] for c in r["curve"]]
                rel = [[math.inf if v is None else v / r["target_variance"] for v in c["loss"]]
                       for c in r["curve"]]  # fmt: skip
                _band(ax, steps, rel, color=COLORS.get(r["variant"]),
                      label=f"{r['variant']} (lr {r['lr']:g})")  # fmt: skip
        _relative_axes(ax, log_scale, f"{act}, L = {deepest}", "SGD step")
    axes[0].set_ylabel(RELATIVE)
    fig.tight_layout()
    out.append(_save(fig, folder / "loss_curves.png"))

    fig, axes = _figure(plt, len(keys))
    for ax, act in zip(axes, keys, strict=True):
        for v in dict.fromkeys(r["variant"] for r in sgd if r["activation"] == act):
            rows = sorted((r for r in sgd if (r["activation"], r["variant"]) == (act, v)),
                          key=lambda r: r["depth"])  # fmt: skip
            rel = [[math.inf if x is None else x / r["target_variance"] for x in r["final_loss"]]
                   for r in rows]  # fmt: skip
            _band(ax, [r["depth"] for r in rows], rel, color=COLORS.get(v), marker="o", label=v)
        log_scale(ax, "x", base=2)
        _relative_axes(ax, log_scale, f"{act}, after {steps_total} SGD steps", "depth L")
    axes[0].set_ylabel(RELATIVE)
    fig.tight_layout()
    out.append(_save(fig, folder / "final_loss.png"))
    return out


def _relative_axes(ax: Any, log_scale: Any, title: str, xlabel: str) -> None:
    """A panel of losses relative to the variance: log y, the variance's line at 1."""
    log_scale(ax)
    ax.axhline(1.0, color="0.5", linestyle="--", linewidth=1)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.grid(True, alpha=0.3)
    _legend(ax)


def _save(fig: Any, path: Path) -> Path:
    plt = pyplot()
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path


def _legend(ax: Any) -> None:
    """A legend, where something was drawn (matplotlib warns on an empty one)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
