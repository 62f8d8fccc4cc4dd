"""The claims under test, read from a TOML file (default: ``seeds/claims.toml``).

Each ``[[claim]]`` says which experiment (and options) measures it, which
variant and metric, the order it expects and how far the measured exponent may
stray, and whether it is a control. ``[runs.<experiment>]`` tables give the
sizes ``trainbench verify`` runs, thorough and ``quick``; ``[runs.<run folder>]`` (for
example ``rnn-lm-none``) those of one of its runs, over the experiment's. What a claim is:
:mod:`trainbench.claims.claim`. No torch in here.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainbench.claims.claim import Claim, ClaimsError, ClaimSet, parse_order_class
from trainbench.core.settings import BOUNDS, WHOLE, bound_words
from trainbench.core.vocabulary import (
    SWEEP_METRICS,
    TRAINABILITY_ACTIVATIONS,
    TRAINABILITY_METRICS,
    TRAINABILITY_VARIANTS,
    VERDICTS,
)
from trainbench.experiments.builtin import EXPERIMENTS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The file beside the package (a link to seeds/claims.toml in the source tree).
DEFAULT_CLAIMS = Path(__file__).with_name("claims.toml")

RUN_KEYS = {
    "sweep": {
        "min_size", "max_size", "control_max_size", "repeats", "min_time", "threads", "seed",
        "dtype", "device", "time_tolerance", "precision", "max_passes", "until",
    },
    "trainability": {
        "depths", "steps", "seed", "threads", "lr_sgd", "lr_adam", "trained", "seeds",
        "train_depths", "finetune_steps", "jobs", "activations",
    },
}  # fmt: skip


def _fail(where: str, message: str) -> ClaimsError:
    return ClaimsError(f"{where}: {message}")


def _str(raw: Mapping[str, Any], key: str, where: str, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise _fail(where, f"missing {key!r}")
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"{key!r} must be a non-empty string, got {value!r}")
    return value


def _bool(raw: Mapping[str, Any], key: str, where: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise _fail(where, f"{key!r} must be true or false, got {value!r}")
    return value


def _order(value: Any) -> tuple[float, str | None]:
    """An order given as text ("O(L^2)", "O(L log L)") or as its exponent (a number from 0
    to 4): the exponent and the logarithmic class it names (None: a power)."""
    if isinstance(value, str):
        return parse_order_class(value)
    if type(value) not in (int, float) or not 0 <= value <= 4:  # not bool, nan or inf
        raise ValueError(f"not an order like \"O(L)\" or an exponent from 0 to 4: {value!r}")
    return float(value), None


SETTING_WORDS = {
    "time_tolerance": "a number between 0 and 5",
    "lr_sgd": "a list of positive numbers",
    "lr_adam": "a list of positive numbers",
    "activations": f"a list of {', '.join(TRAINABILITY_ACTIVATIONS)}",
    "train_depths": "a list of whole numbers from 1 to 4096",
    "dtype": "float32 or float64",
    "device": "auto, cpu or cuda",
    "until": "narrow or confirmed",
    "trained": "all or claimed",
    "depths": "a list of whole numbers from 1 to 4096",
}


def _whole_words(key: str) -> str:
    return bound_words(key) if key in BOUNDS else "a whole number of at least 1"


def _setting_ok(key: str, value: Any) -> bool:
    """Whether a [runs] setting has a sensible type and range: the command line's bounds
    (trainbench.core.settings.BOUNDS) where it has the same option (the run checks the rest)."""
    if key in BOUNDS:
        low, high = BOUNDS[key]
        kinds = (int,) if key in WHOLE else (int, float)
        return type(value) in kinds and low <= value <= high
    if key == "time_tolerance":
        return type(value) in (int, float) and 0 < value < 5
    if key in ("lr_sgd", "lr_adam"):
        return (
            isinstance(value, list)
            and bool(value)
            and all(type(v) in (int, float) and 0 < v < 1e3 for v in value)
        )
    if key == "activations":
        known = set(TRAINABILITY_ACTIVATIONS)
        return isinstance(value, list) and bool(value) and set(value) <= known
    if key == "dtype":
        return value in ("float32", "float64")
    if key == "device":
        return value in ("auto", "cpu", "cuda")
    if key == "until":
        return value in ("narrow", "confirmed")
    if key == "trained":
        return value in ("all", "claimed")
    if key in ("depths", "train_depths"):
        return (
            isinstance(value, list)
            and bool(value)
            and all(type(d) is int and 1 <= d <= 4096 for d in value)
        )
    low = 0 if key in ("threads", "seed", "steps", "finetune_steps") else 1
    return type(value) is int and low <= value <= 2**32 - 1


def _filter(raw: Mapping[str, Any], key: str, where: str) -> dict[str, tuple[Any, ...]]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise _fail(where, f"{key!r} must be a table of option = [values]")
    out = {}
    for name, values in value.items():
        values = values if isinstance(values, list) else [values]
        out[name] = tuple(values)
    return out


def _claim(raw: Any, index: int, path: str, experiments: Mapping[str, Any]) -> Claim:
    where = f"{path}: claim {index + 1}"
    if not isinstance(raw, Mapping):
        raise _fail(where, "must be a table")
    cid = _str(raw, "id", where)
    assert cid is not None
    where = f"{path}: claim {cid!r}"
    known = {
        "id", "problem", "statement", "experiment", "variant", "metric", "expected",
        "tolerance", "control", "is_control", "work_metric", "options", "when", "unless",
        "expect", "baseline",
    }  # fmt: skip
    extra = sorted(set(raw) - known)
    if extra:
        raise _fail(where, f"unknown field {extra[0]!r}")
    experiment = _str(raw, "experiment", where)
    if experiment not in experiments:
        raise _fail(
            where, f"unknown experiment {experiment!r} (known: {', '.join(experiments)})"
        )
    metric_raw = raw.get("metric")
    metrics = tuple(metric_raw) if isinstance(metric_raw, list) else (metric_raw,)
    if not metrics or not all(isinstance(m, str) for m in metrics):
        raise _fail(where, "'metric' must be a metric name or a list of them")
    variants, allowed = experiments[experiment]
    for m in metrics:
        if m not in allowed:
            raise _fail(where, f"unknown metric {m!r} (known: {', '.join(allowed)})")
    variant = _str(raw, "variant", where)
    if variant not in variants:
        raise _fail(where, f"unknown variant {variant!r} (known: {', '.join(variants)})")
    expect = raw.get("expect", "confirmed")
    if expect not in VERDICTS:
        raise _fail(where, f"'expect' must be one of {', '.join(VERDICTS)}, got {expect!r}")
    options = raw.get("options", {})
    if not isinstance(options, Mapping):
        raise _fail(where, "'options' must be a table")
    common: dict[str, Any] = dict(
        id=cid,
        problem=str(raw.get("problem") or _str(raw, "problem", where)),
        statement=_str(raw, "statement", where),
        experiment=experiment,
        variant=variant,
        metric=metrics[0],
        metrics=metrics,
        options=dict(options),
        when=_filter(raw, "when", where),
        unless=_filter(raw, "unless", where),
        expect=expect,
        is_control=_bool(raw, "is_control", where),
    )
    if experiment == "trainability":
        baseline = _str(raw, "baseline", where)
        if baseline not in variants:
            raise _fail(where, f"unknown baseline {baseline!r} (known: {', '.join(variants)})")
        if metrics[0] != "gradient_ratio":
            raise _fail(where, "a trainability claim's first metric must be 'gradient_ratio'")
        unknown = sorted(set(options) - {"activation"})
        if unknown:
            raise _fail(where, f"unknown option {unknown[0]!r} (a trainability claim has "
                               "'activation' only)")  # fmt: skip
        if options.get("activation", "sigmoid") not in TRAINABILITY_ACTIVATIONS:
            raise _fail(where, f"'activation' must be one of {', '.join(TRAINABILITY_ACTIVATIONS)}")
        return Claim(**common, baseline=baseline)
    if len(metrics) != 1:
        raise _fail(where, "a growth claim names one metric")
    try:
        expected, order_class = _order(raw["expected"])
    except KeyError:
        raise _fail(where, "missing 'expected' (an order such as \"O(L)\")") from None
    except (TypeError, ValueError) as err:
        raise _fail(where, f"'expected': {err}") from None
    tolerance = raw.get("tolerance")
    if type(tolerance) not in (int, float) or not 0 < tolerance < 5:  # not bool, not nan
        raise _fail(where, f"'tolerance' must be a number between 0 and 5, got {tolerance!r}")
    work = raw.get("work_metric")
    if work is not None and work not in allowed:
        raise _fail(where, f"unknown work_metric {work!r}")
    return Claim(
        **common,
        expected=expected,
        order_class=order_class,
        tolerance=float(tolerance),
        control=_str(raw, "control", where, required=False),
        work_metric=work,
    )


def parse_claims(text: str, path: str, experiments: Mapping[str, Any]) -> ClaimSet:
    """Parse and check a claims file's text. ``experiments`` maps each experiment's name
    to (its variant names, its metric names)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ClaimsError(f"{path}: not valid TOML ({err})") from None
    raw_claims = data.get("claim")
    if not isinstance(raw_claims, list) or not raw_claims:
        raise ClaimsError(f"{path}: no claims (expected [[claim]] tables)")
    claims = tuple(_claim(raw, i, path, experiments) for i, raw in enumerate(raw_claims))
    ids = [c.id for c in claims]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ClaimsError(f"{path}: claim {dupes[0]!r} is defined twice")
    by_id = {c.id: c for c in claims}
    for c in claims:
        if c.control is not None:
            if c.control == c.id:
                raise ClaimsError(f"{path}: claim {c.id!r} names itself as its control")
            control = by_id.get(c.control)
            if control is None:
                raise ClaimsError(f"{path}: claim {c.id!r}: unknown control {c.control!r}")
            if control.experiment != c.experiment:
                raise ClaimsError(
                    f"{path}: claim {c.id!r}: its control {c.control!r} is another experiment's"
                )
        if not c.applies(c.options):
            raise ClaimsError(
                f"{path}: claim {c.id!r}: its own options do not meet its 'when'/'unless'"
            )
    runs = data.get("runs", {})
    if not isinstance(runs, Mapping):
        raise ClaimsError(f"{path}: [runs] must be a table of experiments")
    for name, modes in runs.items():
        # an experiment, or one of its runs by folder name (rnn-lm-none): that run's own sizes
        if name not in experiments and not any(name.startswith(f"{e}-") for e in experiments):
            raise ClaimsError(f"{path}: [runs.{name}]: unknown experiment")
        if not isinstance(modes, Mapping) or set(modes) - {"thorough", "quick"}:
            raise ClaimsError(f"{path}: [runs.{name}]: expected tables 'thorough' and 'quick'")
        allowed = RUN_KEYS["trainability" if name == "trainability" else "sweep"]
        for mode, cfg in modes.items():
            if not isinstance(cfg, Mapping):
                raise ClaimsError(f"{path}: [runs.{name}.{mode}] must be a table")
            extra = sorted(set(cfg) - allowed)
            if extra:
                raise ClaimsError(f"{path}: [runs.{name}.{mode}]: unknown setting {extra[0]!r}")
            for key, value in cfg.items():
                if not _setting_ok(key, value):
                    raise ClaimsError(
                        f"{path}: [runs.{name}.{mode}]: {key} = {value!r} is not "
                        f"{SETTING_WORDS.get(key, _whole_words(key))}"
                    )
    return ClaimSet(claims, runs, Path(path))


def experiment_vocabulary() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Each experiment's variants and metrics (what a claim may name)."""
    vocab = {
        name: (tuple(v.name for v in exp.variants), SWEEP_METRICS)
        for name, exp in EXPERIMENTS.items()
    }
    vocab["trainability"] = (TRAINABILITY_VARIANTS, TRAINABILITY_METRICS)
    return vocab


def load_claims(path: Path | str | None = None) -> ClaimSet:
    """Read a claims file (default: the one shipped with trainbench)."""
    p = Path(path) if path is not None else DEFAULT_CLAIMS
    try:
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ClaimsError(f"{p}: no such claims file") from None
    except IsADirectoryError:
        raise ClaimsError(f"{p}: is a folder, not a claims file") from None
    except UnicodeDecodeError:
        raise ClaimsError(f"{p}: not UTF-8 text") from None
    except OSError as err:
        raise ClaimsError(f"{p}: cannot read ({err.strerror or err})") from None
    return parse_claims(text, str(p), experiment_vocabulary())


@functools.cache
def default_claims() -> ClaimSet:
    return load_claims(None)


def shipped_claims(experiment: str) -> tuple[Claim, ...]:
    """An experiment's claims in the claims file shipped with trainbench."""
    return default_claims().for_experiment(experiment)


def run_claims(
    experiment: str, options: Mapping[str, Any], claims: Sequence[Claim] | None = None
) -> tuple[Claim, ...]:
    """The claims (default: the shipped ones) that a run of ``experiment`` with these
    options tests."""
    pool = shipped_claims(experiment) if claims is None else claims
    return tuple(c for c in pool if c.experiment == experiment and c.applies(options))
