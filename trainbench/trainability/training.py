"""Training one variant at one depth (:func:`train`): the learning rate chosen on a
validation batch over a grid, every seed trained at it side by side
(:mod:`trainbench.trainability.ensemble`), and the record of what the test batch gave.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from trainbench.trainability import ensemble
from trainbench.trainability.config import TrainabilityConfig
from trainbench.trainability.gradients import top_only_ratio
from trainbench.trainability.tasks import build


def _deepest(losses: Sequence[float | None], threshold: float, depth: int) -> int | None:
    """The depth of the deepest head at or below ``threshold``; 0 for none; None diverged.
    (A net with one head has it at its top, depth L.)"""
    if not losses or losses[0] is None:
        return None
    at = range(1, depth + 1) if len(losses) == depth else [depth] * len(losses)
    return max((d for d, v in zip(at, losses, strict=True) if v is not None and v <= threshold),
               default=0)  # fmt: skip


def train(
    variant: str, depth: int, optimizer: str, cfg: TrainabilityConfig,
    activation: str = "sigmoid", finetune: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Train for ``cfg.steps`` steps: the first seed with every rate of the grid, the rate
    its validation loss (top prediction) chose, then the other seeds with that rate. The
    record holds every seed's numbers at the chosen rate, and the first seed's
    validation score for every rate."""
    task = build(variant, depth, cfg, torch.float32, activation)
    lrs = cfg.lrs(optimizer)
    seeds = cfg.seed_list
    batches = {"test": task.held_out, "val": task.validation}
    tune = ensemble.members(task.make, seeds[:1], lrs)
    tuned = ensemble.train(tune, task.batch, cfg.steps, optimizer, "sum", batches, cfg.eval_every)
    yh = task.held_out[1]
    variance = float(yh.var())
    threshold = cfg.threshold * variance
    scores = [math.inf if v[-1] is None else v[-1] for v in tuned[-1]["val"]]  # type: ignore[union-attr]
    chosen = min(range(len(lrs)), key=lambda j: scores[j])
    ms = ensemble.select(tune, [chosen])
    curve = [{"step": p["step"], "test": [p["test"][chosen]]} for p in tuned]  # type: ignore[index]
    if len(seeds) > 1:
        rest = ensemble.members(task.make, seeds[1:], (lrs[chosen],))
        more = ensemble.train(rest, task.batch, cfg.steps, optimizer, "sum",
                              {"test": task.held_out}, cfg.eval_every)  # fmt: skip
        ms = ensemble.join(ms, rest)
        curve = [{"step": a["step"], "test": a["test"] + b["test"]}  # type: ignore[operator]
                 for a, b in zip(curve, more, strict=True)]  # fmt: skip
    last = curve[-1]
    picked = list(range(ms.size))

    def tops(point: Mapping[str, Any]) -> list[float | None]:
        return [point["test"][m][-1] for m in picked]

    final = [last["test"][m] for m in picked]  # type: ignore[index]
    half = math.ceil(depth / 2)
    record: dict[str, Any] = {
        "variant": variant,
        "activation": activation,
        "depth": depth,
        "optimizer": optimizer,
        "steps": cfg.steps,
        "seeds": list(cfg.seed_list),
        "lr_grid": list(lrs),
        "lr": lrs[chosen],
        # the first seed's validation loss at every rate (None: diverged)
        "lr_scores": [None if math.isinf(v) else v for v in scores],
        # the rate chosen is the grid's smallest or largest: a wider grid might do better
        "lr_at_edge": len(lrs) > 1 and chosen in (0, len(lrs) - 1)
        and any(math.isfinite(v) for v in scores),
        "target_variance": variance,
        "threshold": threshold,
        "initial_loss": tops(curve[0]),
        "final_loss": [h[-1] for h in final],  # the top prediction's, per seed
        "head_losses": final,
        "deepest_head": [_deepest(h, threshold, depth) for h in final],
        # the best head at depth ≥ L/2 (deep heads only: head 1 is a one-layer regression)
        "deep_head_loss": [
            None if h[0] is None else min(h[half - 1 :] if len(h) == depth else h[-1:])
            for h in final
        ],
        "steps_to_threshold": [
            next((p["step"] for p in curve
                  if p["test"][m][-1] is not None and p["test"][m][-1] <= threshold), None)
            for m in picked
        ],  # fmt: skip
        # diverged in training, or left weights whose test loss is not finite
        "diverged": [bool(ms.diverged[m]) or final[i][0] is None for i, m in enumerate(picked)],
        "trained_ratio": [
            None if ms.diverged[m] else top_only_ratio(ms.member(m), *_double(task.held_out))
            for m in picked
        ],
        "curve": [{"step": p["step"], "loss": tops(p)} for p in curve],
        "profile": [
            {"step": p["step"],
             "deepest_head": [_deepest(p["test"][m], threshold, depth) for m in picked]}
            for p in curve
        ],
        "finetune": None,
    }
    if finetune and cfg.finetune_steps > 0:
        # the lower heads dropped: the top head's loss alone, every weight, more steps
        more = ensemble.train(ms, task.batch, cfg.finetune_steps, optimizer, "top",
                              {"test": task.held_out}, cfg.eval_every)  # fmt: skip
        record["finetune"] = {
            "steps": cfg.finetune_steps,
            "final_loss": [more[-1]["test"][m][-1] for m in picked],  # type: ignore[index]
        }
    return record


def _double(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    return batch[0].double(), batch[1].double()

