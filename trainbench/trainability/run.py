"""Problems 1a, 1c and 2: does the gradient reach the first layer, and does the net train?

Two measurements per variant, activation and depth, each for several seeds:

1. Gradient signal at initialisation: ‖∂Loss/∂W_ℓ‖ (Frobenius, in float64 so that a
   vanishing signal reads as a small number, not as zero) for every layer ℓ, the
   ratio of the first layer's to the last layer's, and for ``heads`` the same ratio
   for the top head's loss alone.
2. Training (:mod:`trainbench.trainability.ensemble`): ``steps`` steps of SGD (or Adam) on a
   generated regression task with a known teacher, a fresh batch each step, for every
   learning rate of a small grid at once for the first seed. The rate is chosen on a
   validation batch (the first seed's top prediction's loss) and the other seeds are
   trained at it; the test
   batch, another one, gives every number reported: each head's loss, the top
   prediction's, the deepest head below ``threshold`` of the targets' variance (the
   profile, along the way), and the first/last gradient ratio after training. At the
   deepest trained depth the ``heads`` net then drops its lower heads and trains
   ``finetune_steps`` more on the top head's loss alone, and the plain net trains as
   many more steps: deep supervision's own check.

Variants: ``plain`` (Problem 1's MLP with only its top head), ``heads`` (a head on
every layer, Problem 1), ``residual`` (Problem 1c), each under every activation and
initialisation of ``activations``; and the CNNs of Problem 2, ``cnn`` (plain),
``rescnn`` (its residual form) and ``ugcnn`` (gated), one head at the top, all three
with tanh, the UGCNN's update nonlinearity. Every variant trains on its own loss
(``heads``: Problem 1's, the sum of its heads' batch-mean losses), without gradient
clipping: each variant gets its own learning rate from the grid instead, so the
summed loss's larger gradient is not cut by a clip the others do not feel.
The verdicts are in :mod:`trainbench.trainability.judge`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from trainbench.claims.parse import Claim
from trainbench.measure.threads import keeps_torch_threads
from trainbench.models.mlp_heads import MLPHeads, MLPHeadsConfig
from trainbench.models.residual_mlp import PlainMLP, ResidualMLP
from trainbench.models.ugcnn import CNNStack, convolve
from trainbench.trainability import ensemble
from trainbench.trainability.judge import CNN_ACTIVATION, CNN_VARIANTS, MLP_VARIANTS

VARIANTS = MLP_VARIANTS + CNN_VARIANTS
OPTIMIZERS = ensemble.OPTIMIZERS
JUDGED_OPTIMIZER = "sgd"  # the training a claim's loss is judged on (Problem 1 says SGD)
# an activation and its initialisation: (σ, gain); W ~ N(0, gain²/fan_in)
ACTIVATIONS: dict[str, tuple[str, float]] = {  # (the names: claims.TRAINABILITY_ACTIVATIONS)
    "sigmoid": ("sigmoid", 1.0),  # unit gain: the slope σ' ≤ ¼ shrinks the signal 4× a layer
    "sigmoid-glorot": ("sigmoid", 4.0),  # gain 1/σ'(0) = 4, Glorot & Bengio's sigmoid scaling
    "tanh": ("tanh", 1.0),  # unit gain (tanh'(0) = 1)
    "relu": ("relu", math.sqrt(2.0)),  # He's gain √2
}


class TrainabilityError(ValueError):
    """A configuration that cannot run; the message is for the user."""


@dataclass(frozen=True)
class TrainabilityConfig:
    depths: tuple[int, ...] = (2, 4, 8, 16, 32, 64)  # gradient signal
    variants: tuple[str, ...] = VARIANTS
    optimizers: tuple[str, ...] = (JUDGED_OPTIMIZER,)
    steps: int = 3000
    eval_every: int = 100
    lr_sgd: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3)  # the grid a variant's rate is chosen from
    lr_adam: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    width: int = 32  # MLP width
    in_dim: int = 16
    batch: int = 64
    image_size: int = 6  # CNN images are image_size × image_size
    channels: int = 4
    cnn_batch: int = 8
    activations: tuple[str, ...] = tuple(ACTIVATIONS)  # the MLPs'; the CNNs use tanh
    gate_bias: float = 2.0
    threshold: float = 0.5  # of the held-out targets' variance: "learned"
    seed: int = 0
    seeds: int = 3  # seeds seed .. seed + seeds - 1
    threads: int = 0
    jobs: int = 1  # worker processes
    trained: tuple[str, ...] | None = None  # the variants trained (None: every one measured)
    # the depths trained, of ``depths`` (None: every one; the command's default: 2, 16)
    train_depths: tuple[int, ...] | None = None
    finetune_steps: int = 500  # at the deepest trained depth (0: none)

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
        bad = [a for a in self.activations if a not in ACTIVATIONS]
        if bad or not self.activations:
            raise TrainabilityError(
                f"--activations: choose from {', '.join(ACTIVATIONS)}, got "
                f"{(bad or ['none'])[0]}"
            )
        untested = [v for v in self.trained or () if v not in self.variants]
        if untested:
            raise TrainabilityError(
                f"--trained: {untested[0]!r} is not one of --variants ({', '.join(self.variants)})"
            )
        outside = [d for d in self.train_depths or () if d not in self.depths]
        if outside:
            raise TrainabilityError(
                f"--train-depths: {outside[0]} is not one of --depths "
                f"({', '.join(map(str, self.depths))})"
            )
        if self.steps < 0:
            raise TrainabilityError(f"--steps must be at least 0, got {self.steps}")
        if self.finetune_steps < 0:
            raise TrainabilityError(
                f"--finetune-steps must be at least 0, got {self.finetune_steps}"
            )
        if self.eval_every < 1:
            raise TrainabilityError("--eval-every must be at least 1")
        if self.seeds < 1:
            raise TrainabilityError(f"--seeds must be at least 1, got {self.seeds}")
        if self.jobs < 1:
            raise TrainabilityError(f"--jobs must be at least 1, got {self.jobs}")
        for name in ("lr_sgd", "lr_adam"):
            grid = getattr(self, name)
            if not grid or not all(math.isfinite(v) and v > 0 for v in grid):
                raise TrainabilityError(
                    f"--{name.replace('_', '-')}: every rate must be a positive number"
                )
        if not (math.isfinite(self.threshold) and self.threshold > 0):
            raise TrainabilityError("--threshold must be a positive number")

    @property
    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.seed, self.seed + self.seeds))

    @property
    def trained_depths(self) -> tuple[int, ...]:
        return tuple(self.depths if self.train_depths is None else self.train_depths)

    def activations_of(self, variant: str) -> tuple[str, ...]:
        return self.activations if variant in MLP_VARIANTS else (CNN_ACTIVATION,)

    def lrs(self, optimizer: str) -> tuple[float, ...]:
        return self.lr_sgd if optimizer == "sgd" else self.lr_adam


@dataclass
class Task:
    """A variant at a depth: its network for a seed, the training batches, the test and
    validation batches (both held out, drawn apart)."""

    make: Callable[[int], nn.Module]
    batch: Callable[[torch.Generator], tuple[Tensor, Tensor]]
    held_out: tuple[Tensor, Tensor]  # the test batch: every number reported
    validation: tuple[Tensor, Tensor]  # the batch the learning rate is chosen on


def build(
    variant: str, depth: int, cfg: TrainabilityConfig, dtype: torch.dtype,
    activation: str = "sigmoid",
) -> Task:  # fmt: skip
    """The task; the teacher is fixed by ``cfg.seed``, the network's weights by the seed
    given to ``make``."""
    if variant in MLP_VARIANTS:
        sigma, gain = ACTIVATIONS[activation]

        def make_mlp(seed: int) -> nn.Module:
            torch.manual_seed(seed)
            model: nn.Module
            if variant == "heads":
                cfg_heads = MLPHeadsConfig(depth, cfg.width, cfg.in_dim, sigma, gain=gain)
                model = MLPHeads(cfg_heads)
            elif variant == "plain":
                model = PlainMLP(depth, cfg.width, cfg.in_dim, sigma, gain)
            else:
                model = ResidualMLP(depth, cfg.width, cfg.in_dim, sigma, gain)
            return model.to(dtype)

        # the teacher y = tanh(v·x), fixed by the seed: every batch shares it
        v = torch.randn(cfg.in_dim, generator=torch.Generator().manual_seed(cfg.seed + 2))
        v = v / math.sqrt(cfg.in_dim)

        def mlp_batch(g: torch.Generator, n: int = cfg.batch) -> tuple[Tensor, Tensor]:
            x = torch.randn(n, cfg.in_dim, generator=g)
            return x.to(dtype), torch.tanh(x @ v).to(dtype)

        held = mlp_batch(torch.Generator().manual_seed(cfg.seed + 3), 512)
        val = mlp_batch(torch.Generator().manual_seed(cfg.seed + 5), 512)
        return Task(make_mlp, mlp_batch, held, val)

    def make_cnn(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        model = CNNStack(
            depth,
            cfg.channels,
            gated=variant == "ugcnn",
            heads="top",
            impl="conv",
            activation=ACTIVATIONS[activation][0],
            gate_bias=cfg.gate_bias,
            residual=variant == "rescnn",
        )
        return model.to(dtype)

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
    val = cnn_batch(torch.Generator().manual_seed(cfg.seed + 5), 256)
    return Task(make_cnn, cnn_batch, held, val)


def training_loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """The variant's own loss, Σ over its heads of the batch-mean squared error.

    For ``heads`` this is Problem 1's loss (the heads' losses summed); it is what
    :func:`trainbench.trainability.ensemble.train` minimises (``loss="sum"``).
    """
    return torch.stack(model(x, y)).sum() / len(y)


def layer_grad_norms(model: nn.Module, loss: Tensor) -> list[float]:
    """‖∂loss/∂W_ℓ‖ for every layer ℓ, bottom to top (a UGCNN layer's two filters together)."""
    layers = [w if isinstance(w, list) else [w] for w in model.layer_weights()]  # type: ignore[operator]
    grads = torch.autograd.grad(loss, [w for ws in layers for w in ws], allow_unused=True)
    norms, i = [], 0
    for ws in layers:
        norms.append(
            math.sqrt(sum(float((g * g).sum()) for g in grads[i : i + len(ws)] if g is not None))
        )
        i += len(ws)
    return norms


def _ratio(norms: Sequence[float]) -> float | None:
    return norms[0] / norms[-1] if norms[-1] > 0 else None


def top_only_ratio(model: nn.Module, x: Tensor, y: Tensor) -> float | None:
    """First/last gradient ratio of the top prediction's loss alone."""
    loss = ((model.predict(x) - y) ** 2).mean()  # type: ignore[operator]
    return _ratio(layer_grad_norms(model, loss))


def gradient_signal(
    variant: str, depth: int, cfg: TrainabilityConfig, activation: str = "sigmoid",
    seed: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The per-layer gradient norms at initialisation, in float64, on the test batch."""
    task = build(variant, depth, cfg, torch.float64, activation)
    seed = cfg.seed if seed is None else seed
    model = task.make(seed)
    x, y = task.held_out
    norms = layer_grad_norms(model, training_loss(model, x, y))
    return {
        "variant": variant,
        "activation": activation,
        "depth": depth,
        "seed": seed,
        "first_layer_grad_norm": norms[0],
        "last_layer_grad_norm": norms[-1],
        "ratio": _ratio(norms),
        # the top head's loss alone (heads: deep supervision's check; else the same)
        "top_only_ratio": top_only_ratio(model, x, y),
        "layer_grad_norms": norms,
    }


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


# --------------------------------------------------------------------------- run


@dataclass
class TrainabilityResult:
    config: dict[str, Any]
    environment: dict[str, Any]
    gradient_signal: list[dict[str, Any]] = field(default_factory=list)
    training: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False

    def summary(self) -> dict[str, Any]:
        from trainbench.results.schema import FORMAT_VERSION

        return {
            "format_version": FORMAT_VERSION,
            "experiment": "trainability",
            "run": "trainability",
            "complete": self.complete,
            "config": self.config,
            "environment": self.environment,
            "gradient_signal": self.gradient_signal,
            "training": self.training,
            "gates": self.gates,
            "claims": self.claims,
        }


# (variant, activation, depth, what): one worker's share, "signal" (every seed's gradient
# signal at initialisation) or "train" (the training records, every optimizer)
Unit = tuple[str, str, int, str]


def units(cfg: TrainabilityConfig) -> list[Unit]:
    """The gradient signals first (seconds: an interrupted run keeps them), then the
    trainings, deepest first (the longest go first, so the workers finish together)."""
    signal = [(v, a, d, "signal") for v in cfg.variants for a in cfg.activations_of(v)
              for d in cfg.depths]  # fmt: skip
    if cfg.steps == 0:
        return signal
    trained = [
        (v, a, d, "train")
        for v in cfg.variants if cfg.trained is None or v in cfg.trained
        for a in cfg.activations_of(v) for d in cfg.trained_depths
    ]  # fmt: skip
    return signal + sorted(trained, key=lambda u: -u[2])


def measure_unit(unit: Unit, cfg: TrainabilityConfig) -> dict[str, list[dict[str, Any]]]:
    """A unit's records: {"gradient_signal": [...], "training": [...]} (one of them empty)."""
    # a vanishing gradient is a stream of subnormal floats, five times slower on a CPU:
    # flushed to zero while the unit runs (then back to torch's default, not flushed)
    torch.set_flush_denormal(True)
    try:
        return _measure_unit(unit, cfg)
    finally:
        torch.set_flush_denormal(False)


def _measure_unit(unit: Unit, cfg: TrainabilityConfig) -> dict[str, list[dict[str, Any]]]:
    variant, activation, depth, what = unit
    torch.set_num_threads(cfg.threads if cfg.threads > 0 else 1)
    if what == "signal":
        signal = [gradient_signal(variant, depth, cfg, activation, s) for s in cfg.seed_list]
        return {"gradient_signal": signal, "training": []}
    deepest = depth == max(cfg.trained_depths) and variant in ("plain", "heads")
    training = [
        train(variant, depth, opt, cfg, activation, finetune=deepest) for opt in cfg.optimizers
    ]
    return {"gradient_signal": [], "training": training}


@keeps_torch_threads
def run_trainability(
    cfg: TrainabilityConfig,
    on_progress: Callable[[str, int, int], None] | None = None,
    save: Callable[[TrainabilityResult], None] | None = None,
    claims: Sequence[Claim] | None = None,
    earlier: Mapping[str, Any] | None = None,
) -> TrainabilityResult:
    """Measure the gradient signal and train every variant at every (trained) depth.

    The units of work run in ``cfg.jobs`` worker processes (1: in this one). ``save``
    is called with the result so far after every unit, and once more at the end. On
    KeyboardInterrupt the claims are judged over what was measured, the result is saved
    with ``complete`` false, and the interrupt is raised again. ``earlier``: the summary
    of a run to continue (``--resume``): its configuration must be this one, and its
    records are kept, not measured again.
    """
    from trainbench.core.version import __version__
    from trainbench.results.environment import environment

    cfg.validate()
    # One thread a worker unless told otherwise, as for the sweeps: on a shared CPU a
    # parallel region waits for its slowest thread (docs/method.md, "Threads").
    threads = cfg.threads if cfg.threads > 0 else 1
    result = TrainabilityResult(
        config=asdict(cfg),
        environment=environment(
            device="cpu", dtype="float32", threads=threads, seed=cfg.seed, version=__version__
        )
        | {"gradient_signal_dtype": "float64", "jobs": cfg.jobs},  # training runs in float32
    )
    jobs = units(cfg)
    if earlier is not None:
        jobs = _continue(result, earlier, jobs)
    total = len(jobs)

    def take(unit: Unit, records: Mapping[str, list[dict[str, Any]]], done: int) -> None:
        result.gradient_signal.extend(records["gradient_signal"])
        result.training.extend(records["training"])
        result.gradient_signal.sort(key=_order)
        result.training.sort(key=_order)
        if on_progress:
            on_progress(_label(unit), done, total)
        if save:
            save(result)

    try:
        import multiprocessing

        # (a daemonic process, a job of `verify --jobs`, may not start workers of its own)
        if cfg.jobs == 1 or len(jobs) <= 1 or multiprocessing.current_process().daemon:
            for i, unit in enumerate(jobs):
                if on_progress:
                    on_progress(_label(unit), i, total)
                take(unit, measure_unit(unit, cfg), i + 1)
        else:
            _in_workers(jobs, cfg, take)
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


def _label(unit: Unit) -> str:
    return f"{unit[3]} {unit[0]} {unit[1]} L = {unit[2]}"


def _in_workers(
    jobs: Sequence[Unit], cfg: TrainabilityConfig,
    take: Callable[[Unit, Mapping[str, list[dict[str, Any]]], int], None],
) -> None:  # fmt: skip
    """Run the units in ``cfg.jobs`` fresh processes; hand each result over as it comes.
    The workers ignore SIGINT: an interrupt reaches this process, which stops them."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    pool = context.Pool(min(cfg.jobs, len(jobs)), initializer=_ignore_interrupts)
    try:
        done = 0
        for unit, records in pool.imap_unordered(_measure, [(u, cfg) for u in jobs]):
            done += 1
            take(unit, records, done)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _ignore_interrupts() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _measure(job: tuple[Unit, TrainabilityConfig]) -> tuple[Unit, dict[str, list[dict[str, Any]]]]:
    return job[0], measure_unit(*job)


def _order(r: Mapping[str, Any]) -> tuple[int, int, int, str, int]:
    acts = list(ACTIVATIONS)
    return (VARIANTS.index(r["variant"]), acts.index(r["activation"]), r["depth"],
            r.get("optimizer", ""), r.get("seed", 0))  # fmt: skip


def _continue(
    result: TrainabilityResult, earlier: Mapping[str, Any], jobs: list[Unit]
) -> list[Unit]:
    """Take over an earlier run's records (same configuration); return the units left."""
    old = dict(earlier.get("config") or {})
    new = json.loads(json.dumps(result.config))  # tuples as lists, as the file has them
    for key in new:
        if key not in ("threads", "jobs") and old.get(key) != new[key]:
            raise TrainabilityError(
                f"--resume: the earlier run has {key} = {json.dumps(old.get(key))}, this run "
                f"asks for {key} = {json.dumps(new[key])}"
            )
    try:
        signal = [dict(r) for r in earlier.get("gradient_signal") or []]
        training = [dict(r) for r in earlier.get("training") or []]
        done = {(r["variant"], r["activation"], int(r["depth"]), "signal") for r in signal}
        done |= {(r["variant"], r["activation"], int(r["depth"]), "train") for r in training}
    except (KeyError, TypeError, ValueError):
        raise TrainabilityError("--resume: the earlier run's records are malformed") from None
    result.gradient_signal, result.training = signal, training
    return [job for job in jobs if job not in done]


def _judge_all(
    result: TrainabilityResult, cfg: TrainabilityConfig, claims: Sequence[Claim] | None
) -> None:
    from trainbench.trainability.judge import claim_records, gates, judge

    result.gates = gates(result.training)
    result.claims = [
        judge(c, result.gradient_signal, result.training, result.gates)
        | {"partial": not result.complete}
        for c in claim_records(claims)
        if c["variant"] in cfg.variants and c["baseline"] in cfg.variants
        and c["activation"] in cfg.activations_of(c["variant"])
    ]
