"""A sweep run from Python: a target resolved as an experiment (:func:`resolve`: a built-in
name, a function of the size, a TARGET text, several targets), checked on its smallest point
(:func:`preflight`), swept (:func:`sweep`, with :func:`make_config` and :func:`claims_for`),
and asserted in a test suite (:func:`assert_order`). The command line calls the same
functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from trainbench.api.result import DEFAULT_TOLERANCE, ClaimVerdict, SweepResult, user_claim
from trainbench.claims.claim import Claim
from trainbench.claims.parse import shipped_claims
from trainbench.core.settings import SweepConfig, SweepError, bytes_of, first_line
from trainbench.core.vocabulary import METRIC_LABELS, TIME_METRICS
from trainbench.experiments.builtin import EXPERIMENTS, Experiment
from trainbench.experiments.target import (
    DEFAULT_REFERENCE,
    MAX_SIZES,
    MAX_TARGET_SIZE,
    Factory,
    TargetError,
    check_name,
    default_name,
    load_target,
    parse_sizes,
    target_experiment,
    targets_experiment,
)
from trainbench.harness import runner  # runner.run_sweep read when called (tests replace it)
from trainbench.harness.prepare import DTYPES, Prepared, prepare, resolve_device
from trainbench.measure.memory import is_out_of_memory
from trainbench.measure.watchdog import DEFAULT_POINT_TIMEOUT, PointTimeout, deadline


def resolve(
    target: Factory | Experiment | str | Mapping[str, Factory | str] | Sequence[str],
    *,
    name: str | None = None,
    reference: str = DEFAULT_REFERENCE,
) -> Experiment:
    """The experiment for a built-in name, an Experiment, a TARGET text or a factory; for
    several targets (a dict of name -> factory or TARGET text, or a list of TARGET texts),
    one experiment with a variant each, measured in the same passes."""
    if isinstance(target, Experiment):
        return target
    if isinstance(target, Mapping) or (isinstance(target, (list, tuple)) and len(target) > 1):
        return _several(target, name=name, reference=reference)
    if isinstance(target, (list, tuple)):
        target = target[0]
    if isinstance(target, str):
        if target in EXPERIMENTS:
            return EXPERIMENTS[target]
        factory = load_target(target)
        return target_experiment(
            factory, check_name(name or default_name(factory, target)), spec=target,
            reference=reference,
        )  # fmt: skip
    if not callable(target):
        raise TargetError(
            f"target: a {type(target).__name__} is neither a function of the size n nor an "
            "experiment"
        )
    return target_experiment(
        target, check_name(name or default_name(target)), spec=_spec_of(target),
        reference=reference,
    )  # fmt: skip


def _several(
    targets: Mapping[str, Factory | str] | Sequence[str], *, name: str | None, reference: str
) -> Experiment:
    """Several targets as one experiment
    (:func:`trainbench.experiments.target.targets_experiment`)."""
    pairs = list(targets.items()) if isinstance(targets, Mapping) else [(None, t) for t in targets]
    factories: dict[str, Factory] = {}
    specs: dict[str, str | None] = {}
    for key, target in pairs:
        if isinstance(target, str):
            if target in EXPERIMENTS:
                raise TargetError(f"{target}: a built-in experiment cannot be swept beside "
                                  "other targets")  # fmt: skip
            factory, spec = load_target(target), target
        elif callable(target):
            factory, spec = target, _spec_of(target)
        else:
            raise TargetError(f"target: a {type(target).__name__} is not a function of the "
                              "size n")  # fmt: skip
        label = check_name(str(key) if key is not None else default_name(factory, spec))
        if label in factories:
            raise TargetError(f"two targets are both named {label!r}: give one function "
                              "another name (in Python: name them, a dict)")  # fmt: skip
        factories[label], specs[label] = factory, spec
    run_name = check_name(name or "-vs-".join(factories))
    return targets_experiment(factories, run_name, specs=specs, reference=reference)


def several_targets(exp: Experiment) -> bool:
    """Whether ``exp`` is several targets swept together (a variant each)."""
    return exp.foreign and len(exp.variants) > 1


def _spec_of(factory: Factory) -> str | None:
    """``module:qualname`` where the function can be imported by that name (so that a run
    of it can be repeated from the command line); None for a lambda, a closure or a
    function of ``__main__``."""
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def preflight(exp: Experiment, cfg: SweepConfig | Prepared) -> None:
    """Build a target's smallest point and run its forward and backward pass once, so that
    a target that breaks the contract fails before any folder is made."""
    cfg = (cfg if isinstance(cfg, Prepared) else prepare(exp, cfg)).cfg
    label = str(cfg.options.get("target", exp.name)).rpartition(":")[2]
    try:
        with deadline(cfg.point_timeout):
            _first_backward(exp, cfg, label)
    except PointTimeout as err:
        raise TargetError(f"{label}({cfg.min_size}), its first point: {err}") from None


def _first_backward(exp: Experiment, cfg: SweepConfig, label: str) -> None:
    device = resolve_device(cfg.device)
    for variant in exp.variants if several_targets(exp) else exp.variants[:1]:
        name = variant.name if several_targets(exp) else label
        forward = exp.forward(variant.name, cfg.min_size, cfg.options | {"seed": cfg.seed},
                              device, DTYPES[cfg.dtype])  # fmt: skip
        for root in forward():
            try:
                root.backward()
            except Exception as err:
                if is_out_of_memory(err):
                    raise
                raise TargetError(
                    f"backward of {name}({cfg.min_size})() raised {type(err).__name__}: "
                    f"{first_line(err)}"
                ) from None


def sweep(
    target: Factory | Experiment | str | Mapping[str, Factory | str] | Sequence[str],
    sizes: Sequence[int] | str,
    *,
    claim: str | None = None,
    metric: str = "bwd_s",
    tolerance: float = DEFAULT_TOLERANCE,
    name: str | None = None,
    options: Mapping[str, Any] | None = None,
    repeats: int = 6,
    min_time: float = 0.01,
    threads: int = 0,
    precision: float = 0.05,
    max_passes: int = 40,
    until: str = "narrow",
    device: str = "auto",
    dtype: str = "float32",
    seed: int = 0,
    out: str | Path | None = None,
    resume: bool = False,
    time_budget: float | None = None,
    max_memory: int | str | None = None,
    compile: bool = False,
    control: bool = True,
    control_max_size: int = 256,
    reference: str = DEFAULT_REFERENCE,
    point_timeout: float | None = DEFAULT_POINT_TIMEOUT,
    by_module: int | None = None,
    on_progress: Callable[[Any], None] | None = None,
) -> SweepResult:
    """Sweep ``target`` over ``sizes`` and fit how every metric grows.

    ``target``: a function ``n -> (() -> scalar loss)`` (see :mod:`trainbench.experiments.target`),
    a TARGET text (``pkg.mod:fn``, ``file.py:fn``), or a built-in experiment (its name or
    object; ``options`` are its model options). ``sizes``: a list or ``"16:1024"``
    (doubling), ``"16:1024:1.5"``. ``claim``: an order (``"O(n)"``, ``"O(n log n)"``,
    ``"O(n^2)"``) that ``metric`` of the first variant is judged against (built-in
    experiments also judge their claims from the claims file). ``out``: write the run
    to ``out/<name>/`` as it is measured (else keep it in memory; :meth:`SweepResult.save`).
    ``point_timeout``: seconds one count or one timed visit of a point may take before the
    point fails and the sweep goes on without it (None: no limit; see trainbench.measure.watchdog).
    ``by_module``: also count FLOPs and saved bytes per module of the model, to this depth
    of its module tree (:mod:`trainbench.measure.modules`; ``SweepResult.modules``).
    """
    if isinstance(max_memory, str):  # "8GiB", as the CLI takes it
        max_memory = bytes_of(max_memory, "max_memory")
    exp = resolve(target, name=name, reference=reference)
    cfg = make_config(
        sizes, options=options, repeats=repeats, min_time=min_time, threads=threads,
        device=device, dtype=dtype, seed=seed, time_budget=time_budget,
        max_memory=max_memory, compile=compile, control=control,
        control_max_size=control_max_size, precision=precision, max_passes=max_passes,
        until=until, point_timeout=point_timeout, by_module=by_module,
    )  # fmt: skip
    claims = claims_for(exp, claim, metric=metric, tolerance=tolerance)
    ready = prepare(exp, cfg)  # (the one check of the configuration)
    if exp.name not in EXPERIMENTS:
        preflight(exp, ready)
    folder_root = Path(out) if out is not None else None
    result = measure(exp, ready, out=folder_root, on_progress=on_progress, claims=claims,
                     resume=resume)  # fmt: skip
    folder = folder_root / exp.folder(ready.cfg.options) if folder_root is not None else None
    return SweepResult(result, exp, folder)


def make_config(sizes: Sequence[int] | str, *, options: Mapping[str, Any] | None = None,
                **settings: Any) -> SweepConfig:  # fmt: skip
    """The configuration of a sweep over ``sizes`` (a list, or text such as ``16:1024``)."""
    size_list = parse_sizes(sizes) if isinstance(sizes, str) else _size_list(sizes)
    return SweepConfig(
        min_size=size_list[0],
        max_size=size_list[-1],
        options=dict(options or {}),
        size_list=tuple(size_list),
        **settings,
    )


def claims_for(
    exp: Experiment, claim: str | None, *, metric: str = "bwd_s",
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[Claim] | None:  # fmt: skip
    """The claims a sweep judges: ``claim`` on ``metric`` of the first variant, and for a
    built-in experiment its claims from the claims file (None: those alone)."""
    if claim is None:
        user_claim("O(n)", exp.name, metric=metric, tolerance=tolerance)  # the settings' checks
        return None
    if several_targets(exp):  # the claim judged for every target
        return [replace(user_claim(claim, exp.name, metric=metric, variant=v.name,
                                   tolerance=tolerance), id=f"claim:{v.name}")
                for v in exp.variants]  # fmt: skip
    own = user_claim(claim, exp.name, metric=metric, variant=exp.variants[0].name,
                     tolerance=tolerance)  # fmt: skip
    return [own, *shipped_claims(exp.name)] if exp.name in EXPERIMENTS else [own]


def _size_list(sizes: Sequence[int]) -> list[int]:
    try:
        values = sorted({int(s) for s in sizes})
    except (TypeError, ValueError):
        raise SweepError(f"sizes: expected whole numbers, got {sizes!r}") from None
    if not values or values[0] < 1 or any(int(s) != s for s in sizes):
        raise SweepError(f"sizes: expected whole numbers of at least 1, got {list(sizes)!r}")
    if len(values) > MAX_SIZES or values[-1] > MAX_TARGET_SIZE:
        raise SweepError(
            f"sizes: at most {MAX_SIZES} sizes, each at most {MAX_TARGET_SIZE}, got "
            f"{len(values)} up to {values[-1]}"
        )
    return values


class OrderAssertionError(AssertionError):
    """:func:`assert_order`'s failure: the claim was not confirmed; the message is the
    verdict and its reason."""

    def __init__(self, verdict: ClaimVerdict) -> None:
        super().__init__(
            f"{METRIC_LABELS.get(verdict.metric, verdict.metric)} is not shown to grow as "
            f"{verdict.claim}: {verdict.verdict} ({verdict.reason})"
        )
        self.verdict = verdict


def assert_order(
    target: Factory | Experiment | str,
    sizes: Sequence[int] | str,
    claim: str,
    *,
    metric: str = "bwd_flops",
    tolerance: float = DEFAULT_TOLERANCE,
    time: bool = False,
    **sweep_options: Any,
) -> ClaimVerdict:
    """Assert, in a test suite, that ``metric`` of ``target`` grows as ``claim`` over
    ``sizes``: the verdict when it is confirmed; else :class:`OrderAssertionError` (an
    AssertionError) with the verdict's reason. Counts are exact, so a count claim times
    each point once only (one pass, the shortest blocks) unless ``sweep_options`` say
    otherwise; a time claim needs ``time=True`` and runs the sweep's full schedule (``until
    = "confirmed"``), so that a suite does not time by accident."""
    if metric in TIME_METRICS and not time:
        raise ValueError(
            f"assert_order: {metric} is a time; pass time=True to time it (counts such as "
            "bwd_flops are exact and fast)"
        )
    quick = {} if time else {"repeats": 1, "max_passes": 1, "min_time": 0.0}
    settings = (quick | {"until": "confirmed"} if time else quick) | dict(sweep_options)
    result = sweep(target, sizes, claim=claim, metric=metric, tolerance=tolerance, **settings)
    judged = result.verdict(claim, metric, tolerance=tolerance)
    if judged.verdict != "confirmed":
        raise OrderAssertionError(judged)
    return judged


def measure(
    exp: Experiment,
    cfg: SweepConfig | Prepared,
    *,
    out: Path | None,
    on_progress: Callable[[Any], None] | None = None,
    resume: bool = False,
    claims: Sequence[Claim] | None = None,
) -> Any:
    """Measure one sweep of ``exp`` (written to ``out/<folder>/`` as it goes) and judge it;
    the harness's RunResult."""
    return runner.run_sweep(exp, cfg, out_dir=out, on_progress=on_progress, resume=resume,
                            claims=claims)  # fmt: skip
