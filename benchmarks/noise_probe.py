"""This machine's timing noise, measured: the parameters of
``trainbench.stats.simulator.NoiseModel``.

    python benchmarks/noise_probe.py [--seconds 40] [--block-ms 2] [--size 256]
                                     [--chain 4] [--json PATH] [--series PATH]

A fixed small workload (a chain of ``--chain`` products of ``--size``² float32
matrices in torch, one thread) is timed in blocks of about ``--block-ms`` back
to back for ``--seconds``; every block gives the time per run (block time /
runs in the block) and the clock time it started at. From that series, against a
baseline, the rolling 25th percentile of the log times over ``--window`` (51)
blocks (a rolling median would follow the interruptions on a loaded machine, where
a third of the blocks or more are interrupted):

* **interruptions** ("spikes"): blocks more than 1.5× the baseline.
  ``spike_prob`` is their fraction; their excess ``x = ratio - 1`` (≥ 0.5) is fitted
  as a Pareto tail P(X > x) = (x / 0.5)^-shape and as a lognormal (mean and sd of
  log x, likelihood truncated at 0.5); ``spike_dist`` names the likelier.
  ``spike_scale`` makes the simulator, which lets interruptions arrive in time at
  rate ``-log(1 - spike_prob) / block``, steal as much time in all as the probe's
  blocks lost.
* **drift**, from the medians of the uninterrupted blocks in bins: on this kind of
  machine most of it is not a smooth wander but abrupt shifts between levels that
  last a fraction of a second to seconds. The medians of ``--step-bin-s`` (50 ms)
  bins are compared with their neighbours; a change of more than
  ``--step-threshold`` (0.05 in log time) starts a new level (consecutive changes
  are one shift). ``drift_sd`` is the time-weighted spread of the levels' log
  medians; ``drift_time_s`` the drift's correlation time: the lag past the first
  where the bins' autocorrelation has fallen to 1/e of its lag-1 value (a fast part
  only lowers the lag-1 value). ``wander_sd`` and ``wander_time_s`` describe what
  is left inside the levels (bin medians minus their level's). ``drift_sd_bins``,
  ``drift_time_bins_s`` and ``drift_acf`` describe ``--bin-s`` (0.25 s) bins.
* **white noise**: ``r``, the log time minus the baseline, apart from
  interruptions; ``white_sd`` is the robust (MAD) spread of consecutive
  differences of ``r`` over √2, so the drift does not count.
  ``white_sd_by_length`` is the same for blocks of 1, 2, 4 ... 32 consecutive
  blocks summed (interruptions replaced by the baseline): whether the jitter
  averages out in longer blocks (it would fall as 1/√k for independent blocks).

The script prints one JSON object: ``"model"`` holds the fields of ``NoiseModel``,
the rest is detail. To measure a loaded machine, run it with a second process
spinning on a core::

    python -c "while True: pass" &  PID=$!
    python benchmarks/noise_probe.py
    kill $PID
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

SPIKE_RATIO = 1.5
BASE_PERCENTILE = 25.0


def make_workload(size: int, chain: int) -> Callable[[], None]:
    torch.manual_seed(0)
    a = torch.randn(size, size) / math.sqrt(size)
    mats = [torch.randn(size, size) / math.sqrt(size) for _ in range(chain)]

    def run() -> None:
        x = a
        for m in mats:
            x = x @ m

    return run


def calibrate(run: Callable[[], None], block_s: float) -> int:
    """Runs per block so that a block takes about ``block_s`` on the machine at its
    fastest (the 20th percentile of 100 single runs: a loaded moment does not shorten the
    blocks for the whole series)."""
    for _ in range(20):  # warm up
        run()
    times = []
    for _ in range(100):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    per_run = float(np.percentile(times, 20))
    return max(1, round(block_s / per_run))


def record(run: Callable[[], None], number: int, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Back-to-back blocks for ``seconds``: (start time of each block, time per run)."""
    starts: list[float] = []
    per_run: list[float] = []
    clock = time.perf_counter
    t_begin = clock()
    while True:
        t0 = clock()
        for _ in range(number):
            run()
        t1 = clock()
        starts.append(t0 - t_begin)
        per_run.append((t1 - t0) / number)
        if t1 - t_begin >= seconds:
            break
    return np.asarray(starts), np.asarray(per_run)


def rolling_quantile(x: np.ndarray, window: int, q: float) -> np.ndarray:
    """Centred rolling ``q``-th percentile over ``window`` points (edges padded)."""
    half = window // 2
    padded = np.pad(x, half, mode="edge")
    view = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    return np.percentile(view, q, axis=1)


def bin_medians(starts: np.ndarray, logt: np.ndarray, keep: np.ndarray, bin_s: float) -> np.ndarray:
    """Median of the kept log times in every bin of ``bin_s`` (a bin with none kept
    repeats the previous bin's)."""
    bins = np.floor(starts / bin_s).astype(int)
    out = []
    for b in np.unique(bins):
        sel = (bins == b) & keep
        out.append(float(np.median(logt[sel])) if sel.any() else (out[-1] if out else np.nan))
    arr = np.asarray(out)
    return arr[np.isfinite(arr)]


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    d = x - x.mean()
    var = float((d * d).mean())
    if var == 0:
        return np.zeros(max_lag + 1)
    return np.array(
        [1.0] + [float((d[:-lag] * d[lag:]).mean()) / var for lag in range(1, max_lag + 1)]
    )


def correlation_time(acf: np.ndarray, step: float) -> float:
    """Lag (in seconds) where the autocorrelation first falls to 1/e; linear between lags.
    Where it never does within the lags computed, the last lag (a lower bound)."""
    target = math.exp(-1.0)
    for lag in range(1, len(acf)):
        if acf[lag] <= target:
            hi, lo = acf[lag - 1], acf[lag]
            frac = (hi - target) / (hi - lo) if hi != lo else 0.0
            return float((lag - 1 + frac) * step)
    return float((len(acf) - 1) * step)


def white_spread(logt: np.ndarray) -> float:
    """Robust spread of consecutive differences over √2: white noise, not drift."""
    d = np.diff(logt)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / math.sqrt(2.0))


def levels(med: np.ndarray, bin_s: float, threshold: float) -> dict[str, float]:
    """Level shifts in the bin medians ``med``: a piecewise-constant description of the
    drift (see the module doc)."""
    jump = np.abs(np.diff(med)) > threshold
    first = jump & ~np.concatenate([[False], jump[:-1]])
    seg = np.concatenate([[0], np.cumsum(first)])  # level id of every bin
    n_seg = int(seg[-1]) + 1
    level = np.array([np.median(med[seg == i]) for i in range(n_seg)])
    weight = np.bincount(seg, minlength=n_seg).astype(float)
    mean = float(np.average(level, weights=weight))
    step_sd = float(np.sqrt(np.average((level - mean) ** 2, weights=weight)))
    inside = med - level[seg]
    acf = autocorrelation(inside, max(2, min(40, len(inside) // 4)))
    return {
        "step_sd": step_sd,
        "step_time_s": float(len(med) * bin_s / n_seg),
        "levels": n_seg,
        "ou_sd": float(np.std(inside, ddof=1)),
        "ou_time_s": correlation_time(acf, bin_s),
    }


def correlation_time_from_lag1(acf: np.ndarray, step: float) -> float:
    """The time constant of the slow part of a series whose autocorrelation is
    ``A·exp(-lag / T)`` beyond lag 0 (A < 1: a fast part adds to the variance): the lag
    past the first where the autocorrelation has fallen to acf[1] / e."""
    if len(acf) < 3 or acf[1] <= 0:
        return 0.0
    scaled = acf[1:] / acf[1]
    return correlation_time(scaled, step)


def spike_fit(excess: np.ndarray, x_min: float) -> dict[str, object]:
    """The interrupted blocks' excess (ratio - 1, all >= x_min): a Pareto tail and a
    lognormal (truncated at x_min), the better of the two by likelihood, and the
    scale that makes the simulator steal as much time in all as the probe saw."""
    n = len(excess)
    logs = np.log(excess)
    shape = float(n / np.sum(np.log(excess / x_min)))
    ll_pareto = n * math.log(shape) + n * shape * math.log(x_min) - (shape + 1) * logs.sum()
    mu, sd = float(logs.mean()), float(logs.std(ddof=1)) if n > 1 else 1.0
    z = (logs - mu) / sd
    tail = 0.5 * math.erfc((math.log(x_min) - mu) / (sd * math.sqrt(2.0)))
    ll_lognormal = float(
        np.sum(-0.5 * z * z - 0.5 * math.log(2 * math.pi) - math.log(sd) - logs)
        - n * math.log(max(tail, 1e-300))
    )
    dist = "pareto" if ll_pareto >= ll_lognormal else "lognormal"
    return {
        "spike_dist": dist,
        "spike_shape": shape,
        "spike_log_mu": mu,
        "spike_log_sd": sd,
        "spike_cap": float(excess.max()),
        "loglik_pareto": float(ll_pareto),
        "loglik_lognormal": ll_lognormal,
    }


def model_mean_excess(fit: dict[str, object], x_min: float) -> float:
    """The mean excess of one interruption under the fitted distribution, capped."""
    rng = np.random.default_rng(0)
    u = 1.0 - rng.random(400_000)
    if fit["spike_dist"] == "pareto":
        x = x_min * u ** (-1.0 / float(fit["spike_shape"]))  # type: ignore[arg-type]
    else:
        mu, sd = float(fit["spike_log_mu"]), float(fit["spike_log_sd"])  # type: ignore[arg-type]
        x = np.exp(mu + sd * rng.standard_normal(len(u)))
    return float(np.minimum(x, float(fit["spike_cap"])).mean())  # type: ignore[arg-type]


def estimate(
    starts: np.ndarray,
    per_run: np.ndarray,
    window: int,
    bin_s: float,
    step_bin_s: float = 0.05,
    step_threshold: float = 0.05,
) -> dict[str, object]:
    logt = np.log(per_run)
    # The baseline is a low rolling percentile, not the median: on a loaded machine a
    # third of the blocks or more can be interrupted, and the median would follow them.
    base = rolling_quantile(logt, window, BASE_PERCENTILE)
    r = logt - base
    ratio = np.exp(r)
    spikes = ratio > SPIKE_RATIO
    calm = ~spikes

    # Drift: medians of the uninterrupted blocks in bins of bin_s.
    bin_med = bin_medians(starts, logt, calm, bin_s)
    max_lag = max(2, len(bin_med) // 4)
    acf = autocorrelation(bin_med, max_lag)
    drift_sd = float(np.std(bin_med, ddof=1))
    drift_time = correlation_time(acf, bin_s)
    lv = levels(bin_medians(starts, logt, calm, step_bin_s), step_bin_s, step_threshold)

    # White noise: consecutive differences of the residual, no spikes on either side.
    pair = calm[1:] & calm[:-1]
    dr = np.diff(r)[pair]
    white_sd = float(1.4826 * np.median(np.abs(dr - np.median(dr))) / math.sqrt(2.0))
    # Blocks of k consecutive blocks, the spikes replaced by the baseline.
    smooth = np.where(spikes, np.exp(base), per_run)
    by_length = {}
    for k in (1, 2, 4, 8, 16, 32):
        m = len(smooth) // k * k
        if m >= 4 * k:
            by_length[str(k)] = round(white_spread(np.log(smooth[:m].reshape(-1, k).sum(1))), 4)
    white_sd_plain = float(np.std(r[calm], ddof=1))

    # Spikes.
    excess = ratio[spikes] - 1.0
    x_min = SPIKE_RATIO - 1.0
    n_spk = int(spikes.sum())
    prob = n_spk / len(per_run)
    block_s = float(np.median(np.diff(starts)))
    spike: dict[str, object] = {
        "spike_dist": "pareto",
        "spike_shape": 2.0,
        "spike_log_mu": 0.0,
        "spike_log_sd": 0.5,
        "spike_cap": 10.0,
    }
    scale = 1.0
    q: dict[str, float] = {}
    if n_spk >= 3:
        spike = spike_fit(excess, x_min)
        # Interruptions arrive at rate -log(1 - p) / block in the simulator and steal
        # scale · x · block each: the scale that steals the probe's total.
        scale = prob * float(excess.mean()) / (-math.log1p(-prob) * model_mean_excess(spike, x_min))
        q = {f"q{p}": round(float(np.percentile(ratio[spikes], p)), 3) for p in (50, 90, 99)}
        q["max"] = round(float(ratio[spikes].max()), 3)
    step_med = bin_medians(starts, logt, calm, step_bin_s)
    step_acf = autocorrelation(step_med, max(2, min(int(10.0 / step_bin_s), len(step_med) // 2)))
    model = {
        "drift_sd": round(lv["step_sd"], 4),
        "drift_time_s": round(correlation_time_from_lag1(step_acf, step_bin_s), 3),
        "wander_sd": round(lv["ou_sd"], 4),
        "wander_time_s": round(lv["ou_time_s"], 3),
        "white_sd": round(white_sd, 4),
        "spike_prob": round(prob, 4),
        "spike_ref_s": round(block_s, 5),
        "spike_dist": spike["spike_dist"],
        "spike_shape": round(float(spike["spike_shape"]), 3),  # type: ignore[arg-type]
        "spike_log_mu": round(float(spike["spike_log_mu"]), 3),  # type: ignore[arg-type]
        "spike_log_sd": round(float(spike["spike_log_sd"]), 3),  # type: ignore[arg-type]
        "spike_cap": round(float(spike["spike_cap"]), 2),  # type: ignore[arg-type]
        "spike_scale": round(scale, 3),
    }
    # Runs of consecutive spikes: are they single blocks or bursts?
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], spikes.astype(int), [0]]))))[::2]

    return {
        # The fields of trainbench.stats.simulator.NoiseModel.
        "model": model,
        # More detail.
        "drift_sd_bins": round(drift_sd, 4),
        "drift_time_bins_s": round(drift_time, 3),
        "drift_lag1": round(float(acf[1]), 3),
        "drift_acf": [round(float(v), 3) for v in acf[: min(len(acf), 17)]],
        "drift_range": round(float(np.exp(bin_med.max() - bin_med.min())), 3),
        "levels": int(lv["levels"]),
        "level_time_s": round(lv["step_time_s"], 3),
        "white_sd_by_length": by_length,
        "white_sd_plain": round(white_sd_plain, 4),
        "spike_mean_excess": round(float(excess.mean()), 3) if n_spk else 0.0,
        "spike_loglik": {
            k: round(float(spike[k]), 1)  # type: ignore[arg-type]
            for k in ("loglik_pareto", "loglik_lognormal")
            if k in spike
        },
        "spike_ratio_quantiles": q,
        "spike_burst_mean": round(float(runs.mean()), 2) if len(runs) else 0.0,
        "spike_burst_max": int(runs.max()) if len(runs) else 0,
        "mean_ratio": round(float(ratio.mean()), 3),
        "blocks": len(per_run),
        "block_s": round(block_s, 5),
        "bin_s": bin_s,
        "step_bin_s": step_bin_s,
        "window_blocks": window,
        "base_percentile": BASE_PERCENTILE,
        "median_run_s": float(f"{np.median(per_run):.4g}"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--block-ms", type=float, default=2.0)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--chain", type=int, default=4)
    p.add_argument("--window", type=int, default=51, help="rolling baseline, blocks")
    p.add_argument("--bin-s", type=float, default=0.25)
    p.add_argument("--step-bin-s", type=float, default=0.05)
    p.add_argument("--step-threshold", type=float, default=0.05)
    p.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--series", type=Path, default=None, help="save the raw series (.npz)")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    run = make_workload(args.size, args.chain)
    number = calibrate(run, args.block_ms / 1000.0)
    starts, per_run = record(run, number, args.seconds)
    out = estimate(starts, per_run, args.window, args.bin_s, args.step_bin_s, args.step_threshold)
    out["number"] = number
    out["seconds"] = args.seconds
    text = json.dumps(out, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    if args.series is not None:
        np.savez(args.series, starts=starts, per_run=per_run, number=number)
    return 0


if __name__ == "__main__":
    sys.exit(main())
