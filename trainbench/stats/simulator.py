"""A simulator of timing noise on a shared CPU, for calibrating the fit's verdicts
(:mod:`trainbench.stats.noise` runs the calibration on it).

No torch in here. :class:`NoiseModel` describes how a machine's speed moves and
how single timed blocks scatter; :func:`simulate_passes` replays the harness's
schedule on such a machine and returns samples in the input format of
:func:`trainbench.stats.fit.fit_order` (a list of samples per size and the pass that
took each sample).

The parameters come from ``benchmarks/noise_probe.py``, which times a fixed
small workload (four 256×256 float32 products, one thread) in 2 ms blocks
back to back for 40 s and describes the series. What it found on the 2-core
shared machine this project is measured on (see the Calibration section of
``docs/method.md``):

* The machine's speed does not wander smoothly: it sits on a level for a
  fraction of a second to a few seconds and then shifts, abruptly, by 5–25%
  (the levels' log times have a standard deviation of about 0.1). Modelled as
  a level that is redrawn from N(0, ``drift_sd``²) in log time at the events of
  a Poisson process with mean spacing ``drift_time_s``; its autocorrelation is
  exp(-lag / ``drift_time_s``), as an Ornstein–Uhlenbeck process's would be,
  but the shifts are steps, which is the harder case for an estimator (a shift
  in the middle of a pass makes some of its sizes slow and the rest not).
* Inside a level, a small fast wander (tens of ms), modelled as an
  Ornstein–Uhlenbeck process in log time (``wander_sd``, ``wander_time_s``).
* Jitter between consecutive blocks, ``white_sd`` (about 1.8%) in log time;
  it does not average out in longer blocks (the probe's blocks of 2 to 64 ms
  show the same spread), so it is applied per block whatever its length.
* Interruptions: some blocks take 1.5× to 10× their neighbours' time (another
  process given the core for a time slice). An interruption steals time, so
  it is modelled in the clock, not per block: interruptions arrive at rate
  ``-log(1 - spike_prob) / spike_ref_s`` and each steals ``x · spike_ref_s``,
  where ``spike_prob`` is the fraction of the probe's blocks of
  ``spike_ref_s`` that were interrupted and ``x`` (the probe's excess ratio - 1)
  follows a Pareto tail from 0.5 (a quiet machine: rare, heavy-tailed) or a
  lognormal (a loaded one: the stolen time is about one time slice), capped at
  ``spike_cap``. A block much shorter than a time slice is usually not
  interrupted at all, so its median is clean; a block longer than the
  spacing of interruptions is always interrupted, so it reads slow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

SPIKE_MIN = 0.5  # the smallest excess (ratio - 1) counted as an interruption by the probe


@dataclass(frozen=True)
class NoiseModel:
    """How a machine's speed moves (in its own clock) and how timed blocks scatter.

    All spreads are standard deviations of the natural log of time. Defaults: the
    quiet 2-core machine, as measured by ``benchmarks/noise_probe.py`` (its
    ``"model"`` object holds these fields).
    """

    drift_sd: float = 0.107  # level shifts: spread of the levels
    drift_time_s: float = 0.92  # mean time between shifts (= the drift's correlation time)
    wander_sd: float = 0.026  # fast wander inside a level (Ornstein–Uhlenbeck)
    wander_time_s: float = 0.044
    white_sd: float = 0.018  # jitter of every block
    spike_prob: float = 0.0075  # fraction of blocks of spike_ref_s that are interrupted
    spike_ref_s: float = 0.0019  # the probe's block length
    spike_dist: str = "pareto"  # "pareto" (spike_shape) or "lognormal" (spike_log_mu, _sd)
    spike_shape: float = 1.82  # Pareto tail index of the excess, from SPIKE_MIN
    spike_log_mu: float = -0.14  # lognormal of the excess: mean and sd of its log
    spike_log_sd: float = 0.46
    spike_cap: float = 11.8  # the largest excess (ratio - 1) the probe saw
    # Stolen time per interruption = spike_scale · excess · spike_ref_s; the probe sets it so
    # that the simulator steals as much time in all as the probe's blocks lost.
    spike_scale: float = 0.94

    def __post_init__(self) -> None:
        if self.spike_dist not in ("pareto", "lognormal"):
            raise ValueError(f"spike_dist must be 'pareto' or 'lognormal', not {self.spike_dist!r}")
        if not 0.0 <= self.spike_prob < 1.0:
            raise ValueError("spike_prob must lie in [0, 1)")
        for name in ("drift_time_s", "wander_time_s", "spike_ref_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

    @property
    def spike_rate_hz(self) -> float:
        """Interruptions per second of the machine's clock."""
        return -math.log1p(-self.spike_prob) / self.spike_ref_s

    def scaled(self, factor: float) -> NoiseModel:
        """The same machine with every spread (drift, wander, jitter) times ``factor``."""
        return replace(
            self,
            drift_sd=self.drift_sd * factor,
            wander_sd=self.wander_sd * factor,
            white_sd=self.white_sd * factor,
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


QUIET = NoiseModel()
# One process spinning on one of the two cores besides the other work on the machine (the
# worst of three such probes). The levels move less than on the quiet machine, but 41% of
# the 2 ms blocks lose a time slice (about 4.4 ms) to another process.
LOADED = NoiseModel(
    drift_sd=0.058,
    drift_time_s=0.35,
    wander_sd=0.032,
    wander_time_s=0.035,
    white_sd=0.018,
    spike_prob=0.41,
    spike_ref_s=0.0019,
    spike_dist="lognormal",
    spike_shape=0.64,
    spike_log_mu=0.88,
    spike_log_sd=0.32,
    spike_cap=8.3,
    spike_scale=0.78,
)
# No noise at all: every sample is the true time (for tests of the simulator itself).
SILENT = NoiseModel(drift_sd=0.0, wander_sd=0.0, white_sd=0.0, spike_prob=0.0)
PRESETS = {"quiet": QUIET, "loaded": LOADED, "silent": SILENT}


def _spike_excess(model: NoiseModel, rng: np.random.Generator, size: int) -> np.ndarray:
    if model.spike_dist == "pareto":
        x = SPIKE_MIN * (1.0 - rng.random(size)) ** (-1.0 / model.spike_shape)
    else:
        x = np.exp(model.spike_log_mu + model.spike_log_sd * rng.standard_normal(size))
    return np.minimum(x, model.spike_cap) * model.spike_scale


def visit_plan(
    t: np.ndarray, blocks_per_visit: int, block_s: float, visit_s: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Blocks per visit and runs per block for statements of true times ``t``.

    Without ``visit_s``: ``blocks_per_visit`` blocks of ``max(1, round(block_s / t))`` runs.
    With it, the harness's rule (``trainbench.measure.timing``): a visit of about ``visit_s`` in up
    to ``blocks_per_visit`` blocks, as many as fit, of ``round(visit_s / blocks / t)`` runs.
    """
    if visit_s is None:
        blocks = np.full(t.shape, blocks_per_visit)
        number = np.maximum(1, np.round(block_s / t))
    else:
        blocks = np.clip((visit_s / t).astype(int), 1, blocks_per_visit)
        number = np.maximum(1, np.round(visit_s / blocks / t))
    return blocks.astype(int), number.astype(int)


def simulate_passes(
    sizes: Sequence[float],
    true_time: Callable[[np.ndarray], np.ndarray],
    passes: int,
    model: NoiseModel = QUIET,
    rng: np.random.Generator | None = None,
    blocks_per_visit: int = 1,
    block_s: float = 0.002,
    *,
    visit_s: float | None = None,
    gap_s: float = 0.0,
) -> tuple[list[list[float]], list[list[int]]]:
    """Time ``true_time(sizes)`` on the machine ``model`` the way the harness does.

    Every pass visits every size once, in a freshly shuffled order, and times
    ``blocks_per_visit`` blocks there; a block runs the statement ``number =
    max(1, round(block_s / t))`` times and its sample is the block's time over
    ``number`` (with ``visit_s``, the harness's own rule: see :func:`visit_plan`).
    The machine's clock advances by every block's simulated duration, and by
    ``gap_s`` between visits (untimed work: the other phase's blocks, say); the
    machine's slowness (level shifts, wander) follows that clock, so a pass that
    takes longer sees more of the drift. Interruptions arrive in the clock too,
    so a long block is interrupted more often than a short one.

    Returns ``(values, labels)``: ``values[i]`` the samples at ``sizes[i]``, in the
    order taken, and ``labels[i]`` the pass (0, 1, ...) of each: the input of
    ``fit_order(sizes, values, rounds=labels)``.
    """
    if passes < 1 or blocks_per_visit < 1:
        raise ValueError("need at least one pass and one block per visit")
    rng = np.random.default_rng() if rng is None else rng
    n = np.asarray(sizes, dtype=float)
    t_true = np.asarray(true_time(n), dtype=float)
    if t_true.shape != n.shape or not np.all(np.isfinite(t_true) & (t_true > 0)):
        raise ValueError("true_time must give a positive finite time for every size")
    blocks_arr, number_arr = visit_plan(t_true, blocks_per_visit, block_s, visit_s)
    nominal = (number_arr * t_true).tolist()
    numbers = number_arr.tolist()
    blocks = blocks_arr.tolist()

    m = len(n)
    n_steps = passes * int(blocks_arr.sum())
    orders = [rng.permutation(m).tolist() for _ in range(passes)]
    u_shift = rng.random(n_steps).tolist()
    z_level = (model.drift_sd * rng.standard_normal(n_steps)).tolist()
    z_wander = rng.standard_normal(n_steps).tolist()
    z_white = (model.white_sd * rng.standard_normal(n_steps)).tolist()
    rate = model.spike_rate_hz
    poisson = rng.poisson

    level = model.drift_sd * float(rng.standard_normal())
    wander = model.wander_sd * float(rng.standard_normal())
    exp, sqrt = math.exp, math.sqrt
    values: list[list[float]] = [[] for _ in range(m)]
    labels: list[list[int]] = [[] for _ in range(m)]
    elapsed = 0.0  # clock time since the machine's state was last advanced
    b = 0
    for p, order in enumerate(orders):
        for j in order:
            elapsed += gap_s
            for _ in range(blocks[j]):
                # The machine's state at the start of this block.
                if elapsed > 0:
                    if u_shift[b] < 1.0 - exp(-elapsed / model.drift_time_s):
                        level = z_level[b]
                    decay = exp(-elapsed / model.wander_time_s)
                    wander = (
                        wander * decay + model.wander_sd * sqrt(1 - decay * decay) * z_wander[b]
                    )
                dur = nominal[j] * exp(level + wander + z_white[b])
                if rate > 0:
                    k = int(poisson(rate * dur))
                    if k:
                        dur += float(_spike_excess(model, rng, k).sum()) * model.spike_ref_s
                values[j].append(dur / numbers[j])
                labels[j].append(p)
                elapsed = dur
                b += 1
    return values, labels


def slowness_series(
    model: NoiseModel, duration_s: float, step_s: float, rng: np.random.Generator
) -> np.ndarray:
    """The machine's log slowness (level + wander) sampled every ``step_s`` for
    ``duration_s``: to check the drift's statistics against the probe's."""
    steps = int(duration_s / step_s)
    level = model.drift_sd * float(rng.standard_normal())
    wander = model.wander_sd * float(rng.standard_normal())
    p_shift = 1.0 - math.exp(-step_s / model.drift_time_s)
    decay = math.exp(-step_s / model.wander_time_s)
    shifts = rng.random(steps) < p_shift
    z_level = model.drift_sd * rng.standard_normal(steps)
    z_wander = model.wander_sd * math.sqrt(1 - decay * decay) * rng.standard_normal(steps)
    out = np.empty(steps)
    for i in range(steps):
        if shifts[i]:
            level = float(z_level[i])
        wander = wander * decay + float(z_wander[i])
        out[i] = level + wander
    return out
