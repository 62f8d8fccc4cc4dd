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

The parts: the configuration (:mod:`trainbench.trainability.config`), the networks and
their tasks (:mod:`trainbench.trainability.tasks`), measurement 1
(:mod:`trainbench.trainability.gradients`) and 2 (:mod:`trainbench.trainability.training`).
This module runs them, as units of work, in worker processes or in this one.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from trainbench.claims.claim import Claim
from trainbench.core.version import __version__
from trainbench.measure.threads import keeps_torch_threads
from trainbench.results.environment import environment
from trainbench.results.schema import FORMAT_VERSION
from trainbench.trainability.config import (
    ACTIVATIONS,
    VARIANTS,
    TrainabilityConfig,
    TrainabilityError,
)
from trainbench.trainability.gradients import gradient_signal
from trainbench.trainability.judge import claim_records, gates, judge
from trainbench.trainability.training import train


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
    result.gates = gates(result.training)
    result.claims = [
        judge(c, result.gradient_signal, result.training, result.gates)
        | {"partial": not result.complete}
        for c in claim_records(claims)
        if c["variant"] in cfg.variants and c["baseline"] in cfg.variants
        and c["activation"] in cfg.activations_of(c["variant"])
    ]
