"""Drift cancelled: times of several sizes taken in passes, with what a pass shares removed.

A shared machine runs 10-40% slower for seconds at a time. The harness therefore times in
passes: a pass visits every size once (shuffled), so the sizes it compares are measured
close in time, and many passes follow. Whatever slowness a pass met, it met at every size.

The estimator is a two-way model in log time,

    log t[s, p] = mu[s] + delta[p] + noise,

with ``mu`` the size's own cost and ``delta`` the pass's speed, fitted by median polish
(Tukey): alternate medians over passes and over sizes, robust to a block that another
process interrupted. Cells may be missing (a point with no sample in a pass): passes that
time only two neighbouring sizes (the fall-back when a pass's points do not fit in memory
together) chain the sizes through the size they share, and the polish starts from that
chain. Bootstrap replicates draw whole passes with replacement.

No torch in here: numbers in, arrays out.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

POLISH_ITERATIONS = 8


def pass_matrix(samples: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> np.ndarray:
    """Log of the median sample of every (size, pass); NaN where a size has none in a pass.

    ``samples[i]`` are size i's raw times, ``labels[i]`` their pass ids. Shape (sizes, passes),
    passes in the order of their ids.
    """
    ids = np.unique(np.concatenate([np.asarray(lab) for lab in labels]))
    column = {int(p): j for j, p in enumerate(ids)}
    out = np.full((len(samples), len(ids)), np.nan)
    for i, (s, lab) in enumerate(zip(samples, labels, strict=True)):
        s, lab = np.asarray(s, dtype=float), np.asarray(lab)
        for p in np.unique(lab):
            values = s[lab == p]
            if len(values) and np.all(values > 0):
                out[i, column[int(p)]] = np.log(np.median(values))
    return out


def _nanmedian(x: np.ndarray, axis: int) -> np.ndarray:
    """nanmedian without the warning for an all-NaN slice (whose median is NaN); plain
    ``np.median`` where nothing is missing (the same value, several times faster)."""
    if not np.isnan(x).any():
        return np.median(x, axis=axis)
    with np.errstate(all="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(x, axis=axis)


def polish(logs: np.ndarray, iterations: int = POLISH_ITERATIONS) -> tuple[np.ndarray, np.ndarray]:
    """Median polish of ``logs`` (shape (..., sizes, passes), NaN allowed): the size effects
    ``mu`` (..., sizes) and pass effects ``delta`` (..., passes), with median(delta) = 0.

    Starts from the chain of median log ratios of neighbouring sizes over the passes that
    timed both (the ratio of two sizes measured back to back), so that passes sharing only
    one size with the next are linked; a pair that never shared a pass is linked by the
    ratio of their medians (nothing cancelled there).
    """
    L = np.asarray(logs, dtype=float)
    mu = np.empty(L.shape[:-1])
    mu[..., 0] = _nanmedian(L[..., 0, :], axis=-1)
    for s in range(1, L.shape[-2]):
        step = _nanmedian(L[..., s, :] - L[..., s - 1, :], axis=-1)
        loose = _nanmedian(L[..., s, :], axis=-1) - _nanmedian(L[..., s - 1, :], axis=-1)
        mu[..., s] = mu[..., s - 1] + np.where(np.isnan(step), loose, step)
    delta = np.zeros(L.shape[:-2] + L.shape[-1:])
    for _ in range(iterations):
        delta = _nanmedian(L - mu[..., :, None], axis=-2)
        delta = np.nan_to_num(delta - _nanmedian(delta, axis=-1)[..., None])
        new_mu = _nanmedian(L - delta[..., None, :], axis=-1)
        mu = np.where(np.isnan(new_mu), mu, new_mu)
    return mu, delta


def residual_spread(logs: np.ndarray, mu: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Per size, the IQR of the residuals (log time less size and pass effects) as a
    fraction: how much a size's time scatters once the passes' drift is taken out."""
    resid = logs - mu[:, None] - delta[None, :]
    out = np.zeros(len(logs))
    for i, row in enumerate(resid):
        row = row[np.isfinite(row)]
        if len(row) > 1:
            q1, q3 = np.percentile(row, [25, 75])
            out[i] = float(np.expm1(q3 - q1))
    return out


def drift_free(logs: np.ndarray) -> np.ndarray:
    """Each size's time with the passes' drift taken out, in the units of the samples (the
    scale of the median pass)."""
    mu, _ = polish(logs)
    return np.exp(mu)


def bootstrap(logs: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` replicates of :func:`drift_free` (shape n_boot × sizes), each over passes
    drawn with replacement."""
    passes = logs.shape[1]
    out = np.empty((n_boot, logs.shape[0]))
    for start in range(0, n_boot, 250):  # blocks keep the (B, S, P) arrays small
        b = min(250, n_boot - start)
        drawn = rng.integers(0, passes, size=(b, passes))
        replicate = np.transpose(logs[:, drawn], (1, 0, 2))  # (b, sizes, passes)
        mu, _ = polish(replicate)
        # a size no drawn pass timed: its value from the whole data
        mu = np.where(np.isnan(mu), polish(logs)[0][None, :], mu)
        out[start : start + b] = np.exp(mu)
    return out
