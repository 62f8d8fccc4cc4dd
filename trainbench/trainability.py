"""Problems 1a, 1c and 2: does the gradient reach the first layer, and does the net train?

Two measurements per variant and depth, both seeded:

1. Gradient signal at initialisation: ‖∂Loss/∂W_ℓ‖ (Frobenius, in float64 so
   that a vanishing signal reads as a small number, not as zero) for every
   layer ℓ, and the ratio of the first layer's to the last layer's.
2. Training: a fixed number of steps of SGD and of Adam on a generated
   regression task with a known teacher (a fresh batch each step), the top
   prediction's mean squared error on a fixed held-out batch along the way, its
   final value and the first step at which it falls to ``threshold`` of the
   held-out targets' variance.

Variants: ``plain`` (Problem 1's MLP with only its top head), ``heads`` (a head
on every layer, Problem 1), ``residual`` (Problem 1c), and the CNNs of Problem 2:
``cnn`` (plain) and ``ugcnn`` (gated), both with one head at the top. Every
variant is trained on its own loss (``heads``: the sum of its heads' losses)
and judged on its top prediction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from trainbench.claims import Claim, default_claims
from trainbench.models.mlp_heads import MLPHeads, MLPHeadsConfig
from trainbench.models.residual_mlp import PlainMLP, ResidualMLP
from trainbench.models.ugcnn import CNNStack, convolve
from trainbench.threads import keeps_torch_threads

MLP_VARIANTS = ("plain", "heads", "residual")
CNN_VARIANTS = ("cnn", "ugcnn")
VARIANTS = MLP_VARIANTS + CNN_VARIANTS
OPTIMIZERS = ("sgd", "adam")
JUDGED_OPTIMIZER = "sgd"  # the training a claim's loss is judged on
KEPT = 1e-3  # a first/last gradient ratio at or above this has kept the signal
LOST = 1e-6  # at or below this it has lost it
# the training losses a claim may name, and what they are in words
TRAINING_LOSSES = {"final_loss": "top prediction", "best_head_loss": "best head"}
MARGIN = 0.25  # "a lower loss": lower by at least this fraction of the targets' variance


class TrainabilityError(ValueError):
    """A configuration that cannot run; the message is for the user."""


@dataclass(frozen=True)
class TrainabilityConfig:
    depths: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
    variants: tuple[str, ...] = VARIANTS
    optimizers: tuple[str, ...] = OPTIMIZERS
    steps: int = 300
    eval_every: int = 10
    lr_sgd: float = 0.1
    lr_adam: float = 1e-3
    width: int = 64  # MLP width
    in_dim: int = 16
    batch: int = 64
    image_size: int = 8  # CNN images are image_size × image_size
    channels: int = 4
    cnn_batch: int = 16
    activation: str = "sigmoid"
    gate_bias: float = 2.0
    threshold: float = 0.5  # of the held-out targets' variance
    clip: float = 1.0  # gradient-norm clipping for both optimisers (0: none)
    seed: int = 0
    threads: int = 0
    trained: tuple[str, ...] | None = None  # the variants trained (None: every one measured)

    def validate(self) -> None:
        if not self.depths or min(self.depths) < 1:
            raise TrainabilityError("--depths: every depth must be at least 1")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise TrainabilityError(
                f"--variants: unknown variant {unknown[0]!r} (choose from {', '.join(VARIANTS)})"
            )
        if not self.variants:
            raise TrainabilityError("--variants: name at least one variant")
        if not self.optimizers or any(o not in OPTIMIZERS for o in self.optimizers):
            raise TrainabilityError(
                f"--optimizers: choose from {', '.join(OPTIMIZERS)}, got "
                f"{','.join(self.optimizers) or 'none'}"
            )
        untested = [v for v in self.trained or () if v not in self.variants]
        if untested:
            raise TrainabilityError(
                f"--trained: {untested[0]!r} is not one of --variants ({', '.join(self.variants)})"
            )
        if self.steps < 0:
            raise TrainabilityError(f"--steps must be at least 0, got {self.steps}")
        if self.eval_every < 1:
            raise TrainabilityError("--eval-every must be at least 1")
        for name in ("lr_sgd", "lr_adam", "threshold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise TrainabilityError(f"--{name.replace('_', '-')} must be a positive number")


@dataclass
class Task:
    """A variant at a depth: its model, how to draw a training batch, a held-out batch."""

    model: nn.Module
    batch: Callable[[torch.Generator], tuple[Tensor, Tensor]]
    held_out: tuple[Tensor, Tensor]


def build(variant: str, depth: int, cfg: TrainabilityConfig, dtype: torch.dtype) -> Task:
    torch.manual_seed(cfg.seed)
    model: nn.Module
    if variant in MLP_VARIANTS:
        if variant == "heads":
            model = MLPHeads(MLPHeadsConfig(depth, cfg.width, cfg.in_dim, cfg.activation))
        elif variant == "plain":
            model = PlainMLP(depth, cfg.width, cfg.in_dim, cfg.activation)
        else:
            model = ResidualMLP(depth, cfg.width, cfg.in_dim, cfg.activation)
        # the teacher y = tanh(v·x), fixed by the seed: every batch shares it
        v = torch.randn(cfg.in_dim, generator=torch.Generator().manual_seed(cfg.seed + 2))
        v = v / math.sqrt(cfg.in_dim)

        def mlp_batch(g: torch.Generator, n: int = cfg.batch) -> tuple[Tensor, Tensor]:
            x = torch.randn(n, cfg.in_dim, generator=g)
            return x.to(dtype), torch.tanh(x @ v).to(dtype)

        held = mlp_batch(torch.Generator().manual_seed(cfg.seed + 3), 512)
        return Task(model.to(dtype), mlp_batch, held)
    model = CNNStack(
        depth,
        cfg.channels,
        gated=variant == "ugcnn",
        heads="top",
        impl="conv",
        activation=cfg.activation,
        gate_bias=cfg.gate_bias,
    )
    # the teacher, a random 3 × 3 filter, tanh, and the mean over pixels (scaled to
    # about unit variance): translation invariant, so a pooled CNN can learn it
    k = torch.randn(3, 3, 1, cfg.channels, generator=torch.Generator().manual_seed(cfg.seed + 2))
    k = k / math.sqrt(k.numel())

    def cnn_batch(g: torch.Generator, n: int = cfg.cnn_batch) -> tuple[Tensor, Tensor]:
        images = torch.randn(n, cfg.image_size, cfg.image_size, cfg.channels, generator=g)
        features = torch.tanh(convolve(images, k, "conv"))
        y = features.mean(dim=(1, 2, 3)) * cfg.image_size
        return images.to(dtype), y.to(dtype)

    held = cnn_batch(torch.Generator().manual_seed(cfg.seed + 3), 256)
    return Task(model.to(dtype), cnn_batch, held)


def training_loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """The variant's own loss, Σ over its heads of the batch-mean squared error.

    For ``heads`` this is Problem 1's loss (the heads' losses summed). The sum's
    gradient at the lower layers grows with L; the gradient clipping of
    :func:`train` keeps one learning rate safe at every depth.
    """
    return torch.stack(model(x, y)).sum() / len(y)


def layer_grad_norms(model: nn.Module, loss: Tensor) -> list[float]:
    """‖∂loss/∂W_ℓ‖ for every layer ℓ, bottom to top (a UGCNN layer's two filters together)."""
    layers = [w if isinstance(w, list) else [w] for w in model.layer_weights()]  # type: ignore[operator]
    grads = torch.autograd.grad(loss, [w for ws in layers for w in ws])
    norms, i = [], 0
    for ws in layers:
        norms.append(math.sqrt(sum(float((g * g).sum()) for g in grads[i : i + len(ws)])))
        i += len(ws)
    return norms


def gradient_signal(variant: str, depth: int, cfg: TrainabilityConfig) -> dict[str, Any]:
    """The per-layer gradient norms at initialisation, in float64, on the held-out batch."""
    task = build(variant, depth, cfg, torch.float64)
    x, y = task.held_out
    norms = layer_grad_norms(task.model, training_loss(task.model, x, y))
    first, last = norms[0], norms[-1]
    return {
        "variant": variant,
        "depth": depth,
        "first_layer_grad_norm": first,
        "last_layer_grad_norm": last,
        "ratio": first / last if last > 0 else None,
        "layer_grad_norms": norms,
    }


def top_mse(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float(((model.predict(x) - y) ** 2).mean())  # type: ignore[operator]


def train(variant: str, depth: int, optimizer: str, cfg: TrainabilityConfig) -> dict[str, Any]:
    """Train for ``cfg.steps`` steps; the top prediction's held-out loss along the way."""
    task = build(variant, depth, cfg, torch.float32)
    model = task.model
    params = list(model.parameters())
    opt: torch.optim.Optimizer
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr_sgd)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr_adam)
    xh, yh = task.held_out
    threshold = cfg.threshold * float(yh.var())
    data = torch.Generator().manual_seed(cfg.seed + 4)
    curve = [(0, top_mse(model, xh, yh))]
    diverged = False
    for step in range(1, cfg.steps + 1):
        x, y = task.batch(data)
        opt.zero_grad(set_to_none=True)
        loss = training_loss(model, x, y)
        if not torch.isfinite(loss):
            diverged = True
            break
        loss.backward()
        if cfg.clip > 0:
            nn.utils.clip_grad_norm_(params, cfg.clip)
        opt.step()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            curve.append((step, top_mse(model, xh, yh)))
    reached = None if diverged else next((s for s, value in curve if value <= threshold), None)
    final = curve[-1][1]
    heads = getattr(model, "predictions", None) or getattr(model, "_predictions", None)
    best_head = None
    if heads is not None and not diverged:
        with torch.no_grad():
            best_head = min(float(((p - yh) ** 2).mean()) for p in heads(xh))
    return {
        "variant": variant,
        "depth": depth,
        "optimizer": optimizer,
        "final_loss": final if math.isfinite(final) and not diverged else None,
        "initial_loss": curve[0][1],
        "best_head_loss": best_head,  # the best of a heads model's predictions
        "steps_to_threshold": reached,
        "threshold": threshold,
        "target_variance": float(yh.var()),
        "diverged": diverged,
        "curve": [{"step": s, "loss": value} for s, value in curve],
    }


# --------------------------------------------------------------------------- claims

def claim_records(claims: Sequence[Claim] | None = None) -> list[dict[str, Any]]:
    """The trainability claims (default: the claims file's) as the dicts :func:`judge` reads."""
    pool = default_claims().claims if claims is None else claims
    return [
        c.as_record() | {"baseline": c.baseline, "metrics": list(c.metrics)}
        for c in pool
        if c.experiment == "trainability"
    ]


def _at(records: Sequence[dict[str, Any]], variant: str, depth: int, **kw: Any) -> dict | None:
    for r in records:
        if (r["variant"], r["depth"]) == (variant, depth) and all(r[k] == kw[k] for k in kw):
            return r
    return None


def judge(claim: dict[str, Any], signal: list[dict], training: list[dict]) -> dict[str, Any]:
    """Verdict of one claim at the largest depth measured (rules in docs/trainability.md)."""
    variant, baseline = claim["variant"], claim["baseline"]
    record = dict(claim) | {"is_control": False}
    depths = sorted({r["depth"] for r in signal if r["variant"] in (variant, baseline)})
    if (
        not depths
        or _at(signal, variant, depths[-1]) is None
        or _at(signal, baseline, depths[-1]) is None
    ):
        return record | {"verdict": "inconclusive", "reason": f"needs {variant} and {baseline}"}
    L = depths[-1]
    ours = _at(signal, variant, L)["ratio"] or 0.0  # type: ignore[index]
    base = _at(signal, baseline, L)["ratio"] or 0.0  # type: ignore[index]
    record |= {"depth": L, "ratio": ours, "baseline_ratio": base}
    reasons = [f"at L = {L} the first/last gradient ratio is {ours:.2g} ({baseline}: {base:.2g})"]
    if ours < KEPT:
        verdict = "refuted" if ours <= LOST or ours <= base else "inconclusive"
        reasons.append(f"{variant}'s signal fell below {KEPT:g}")
        return record | {"verdict": verdict, "reason": "; ".join(reasons)}
    if base > LOST:
        reasons.append(
            f"the {baseline} baseline did not lose its signal (ratio > {LOST:g}): this run does "
            "not show the problem the claim is about (try deeper nets)"
        )
        return record | {"verdict": "inconclusive", "reason": "; ".join(reasons)}
    problems = []
    loss = next((m for m in claim.get("metrics", ()) if m in TRAINING_LOSSES), None)
    if loss is not None:
        mine = _at(training, variant, L, optimizer=JUDGED_OPTIMIZER)
        theirs = _at(training, baseline, L, optimizer=JUDGED_OPTIMIZER)
        if mine is None or theirs is None:
            problems.append("SGD training was not measured at this depth")
        else:
            # the baseline has one prediction: its final loss is also its best head's
            a, b = mine.get(loss), theirs.get(loss, theirs["final_loss"])
            if b is None:
                b = theirs["final_loss"]
            margin = MARGIN * mine["target_variance"]
            record |= {"final_loss": a, "baseline_final_loss": b, "loss_metric": loss}
            reasons.append(
                f"SGD final loss of the top prediction {_num(mine['final_loss'])} "
                f"({baseline}: {_num(theirs['final_loss'])}; "
                f"targets' variance {mine['target_variance']:.3g})"
            )
            if mine.get("best_head_loss") is not None:
                reasons.append(f"best head's loss {mine['best_head_loss']:.3g}")
            # lower than the baseline, and lower than predicting the mean (the variance)
            if (
                a is None
                or (b is not None and a > b - margin)
                or a > (1 - MARGIN) * mine["target_variance"]
            ):
                return record | {
                    "verdict": "refuted",
                    "reason": "; ".join(
                        [
                            *reasons,
                            f"the {variant} net's {TRAINING_LOSSES[loss]} did not beat both "
                            f"the baseline and the variance by {MARGIN:g} of the variance",
                        ]
                    ),
                }
    if problems:
        return record | {"verdict": "inconclusive", "reason": "; ".join(reasons + problems)}
    return record | {"verdict": "confirmed", "reason": "; ".join(reasons)}


def _num(x: float | None) -> str:
    return "diverged" if x is None else f"{x:.3g}"


# --------------------------------------------------------------------------- run


@dataclass
class TrainabilityResult:
    config: dict[str, Any]
    environment: dict[str, Any]
    gradient_signal: list[dict[str, Any]] = field(default_factory=list)
    training: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False

    def summary(self) -> dict[str, Any]:
        from trainbench.results import FORMAT_VERSION

        return {
            "format_version": FORMAT_VERSION,
            "experiment": "trainability",
            "run": "trainability",
            "complete": self.complete,
            "config": self.config,
            "environment": self.environment,
            "gradient_signal": self.gradient_signal,
            "training": self.training,
            "claims": self.claims,
        }


@keeps_torch_threads
def run_trainability(
    cfg: TrainabilityConfig,
    on_progress: Callable[[str, int, int], None] | None = None,
    save: Callable[[TrainabilityResult], None] | None = None,
    claims: Sequence[Claim] | None = None,
    earlier: Mapping[str, Any] | None = None,
) -> TrainabilityResult:
    """Measure the gradient signal and train every variant at every depth.

    ``save`` is called with the result so far after every record, and once more
    at the end. On KeyboardInterrupt the claims are judged over what was
    measured, the result is saved with ``complete`` false, and the interrupt is
    raised again. ``earlier``: the summary of a run to continue (``--resume``): its
    configuration must be this one, and its records are kept, not measured again.
    """
    from trainbench import __version__
    from trainbench.results import environment

    cfg.validate()
    # One thread unless told otherwise, as for the sweeps: on a shared CPU a parallel
    # region waits for its slowest thread (docs/method.md, "Threads").
    torch.set_num_threads(cfg.threads if cfg.threads > 0 else 1)
    result = TrainabilityResult(
        config=asdict(cfg),
        environment=environment(
            device="cpu",
            dtype="float32",
            threads=torch.get_num_threads(),
            seed=cfg.seed,
            version=__version__,
        )
        | {"gradient_signal_dtype": "float64"},  # training runs in float32
    )
    jobs: list[tuple[str, int, str | None]] = [
        (v, d, None) for v in cfg.variants for d in cfg.depths
    ]
    if cfg.steps > 0:
        jobs += [(v, d, o) for v in cfg.variants for d in cfg.depths for o in cfg.optimizers
                 if cfg.trained is None or v in cfg.trained]  # fmt: skip
    if earlier is not None:
        jobs = _continue(result, earlier, jobs)
    try:
        for i, (variant, depth, opt) in enumerate(jobs):
            if on_progress:
                on_progress(f"{variant} L = {depth}" + (f" {opt}" if opt else ""), i, len(jobs))
            if opt is None:
                result.gradient_signal.append(gradient_signal(variant, depth, cfg))
            else:
                result.training.append(train(variant, depth, opt, cfg))
            if save:
                save(result)
    except KeyboardInterrupt:
        _judge_all(result, cfg, claims)
        if save:
            save(result)
        raise
    result.complete = True
    _judge_all(result, cfg, claims)
    if save:
        save(result)
    return result


def _continue(
    result: TrainabilityResult,
    earlier: Mapping[str, Any],
    jobs: list[tuple[str, int, str | None]],
) -> list[tuple[str, int, str | None]]:
    """Take over an earlier run's records (same configuration); return the jobs left."""
    old = dict(earlier.get("config") or {})
    new = json.loads(json.dumps(result.config))  # tuples as lists, as the file has them
    for key in new:
        if key != "threads" and old.get(key) != new[key]:
            raise TrainabilityError(
                f"--resume: the earlier run has {key} = {json.dumps(old.get(key))}, this run "
                f"asks for {key} = {json.dumps(new[key])}"
            )
    try:
        signal = [dict(r) for r in earlier.get("gradient_signal") or []]
        training = [dict(r) for r in earlier.get("training") or []]
        done = {(r["variant"], int(r["depth"]), None) for r in signal}
        done |= {(r["variant"], int(r["depth"]), r["optimizer"]) for r in training}
    except (KeyError, TypeError, ValueError):
        raise TrainabilityError("--resume: the earlier run's records are malformed") from None
    result.gradient_signal, result.training = signal, training
    return [job for job in jobs if job not in done]


def _judge_all(
    result: TrainabilityResult, cfg: TrainabilityConfig, claims: Sequence[Claim] | None
) -> None:
    result.claims = [
        judge(c, result.gradient_signal, result.training) | {"partial": not result.complete}
        for c in claim_records(claims)
        if c["variant"] in cfg.variants and c["baseline"] in cfg.variants
    ]
