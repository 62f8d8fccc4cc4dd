"""A trainability run's configuration: the variants, activations and optimizers it may
name, its defaults and their checks, and the error a configuration that cannot run raises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trainbench.core.vocabulary import CNN_ACTIVATION, CNN_VARIANTS, MLP_VARIANTS
from trainbench.trainability import ensemble

VARIANTS = MLP_VARIANTS + CNN_VARIANTS
OPTIMIZERS = ensemble.OPTIMIZERS
JUDGED_OPTIMIZER = "sgd"  # the training a claim's loss is judged on (Problem 1 says SGD)
# an activation and its initialisation: (σ, gain); W ~ N(0, gain²/fan_in) (the names:
# core.vocabulary.TRAINABILITY_ACTIVATIONS)
ACTIVATIONS: dict[str, tuple[str, float]] = {
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

