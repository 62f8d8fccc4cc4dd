"""The command line that makes a run like a saved one again, from its summary's config:
the Reproduce section of `trainbench report`'s pages (trainbench.report.pages).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from trainbench.core.options import SWEEP_OPTION, OptionSpec
from trainbench.core.settings import SweepConfig
from trainbench.experiments.specs import BUILT_IN_SPECS


def _arg(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_arg(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


_DEFAULTS = SweepConfig(min_size=1, max_size=1, options={})


def _flag(spec: OptionSpec | None, fallback: str) -> str:
    """The declared option's flag without its dashes (``fallback`` where none is declared)."""
    return spec.flag[2:] if spec is not None and spec.flag else fallback


def _shared(name: str) -> str:
    return _flag(SWEEP_OPTION[name], name.replace("_", "-"))


def _add_pass_limits(cfg: Mapping[str, Any], add: Any) -> None:
    """What ends a run's passes, where it is not the default: its precision, its cap on
    passes, its time budget."""
    for key in ("precision", "max_passes", "time_budget"):
        value = cfg.get(key)
        if value is not None and value != getattr(_DEFAULTS, key):
            add(_shared(key), value)


def reproduce_command(summary: dict[str, Any]) -> str:
    """The trainbench command line that makes a run like ``summary``'s, from its config."""
    exp, cfg = str(summary.get("experiment", "")), summary.get("config") or {}
    parts = ["trainbench", exp]

    def add(flag: str, value: Any) -> None:
        if value is not None:
            parts.extend([f"--{flag}", _arg(value)])

    options = cfg.get("options") or {}
    if exp == "trainability":
        for key in ("depths", "train_depths", "variants", "activations", "trained", "optimizers",
                    "steps", "seeds", "finetune_steps", "lr_sgd", "lr_adam"):  # fmt: skip
            add(key.replace("_", "-"), cfg.get(key))
    elif exp not in BUILT_IN_SPECS and (
            "target" in options or "targets" in options):  # sweep TARGET
        targets = options.get("targets") or [options["target"]]
        parts[1:] = ["sweep", *(str(t) for t in targets)]
        add("sizes", cfg.get("sizes"))
        add("name", summary.get("run") or exp)
        add("reference", options.get("reference"))
        for c in summary.get("claims") or []:
            if c.get("id") == "claim" or str(c.get("id")).startswith("claim:"):
                add("claim", c.get("expected"))
                add("metric", c.get("metric"))
                add("tolerance", c.get("tolerance"))
                break
        add(_shared("repeats"), cfg.get("repeats"))
        add(_shared("min_time"), cfg.get("min_time"))
        _add_pass_limits(cfg, add)
    else:
        # a built-in experiment: its declared flags (--max-depth, --width, ...)
        declared = BUILT_IN_SPECS.get(exp)
        own = {o.name: o for o in declared.options} if declared else {}
        listed = bool(cfg.get("size_list"))  # trainbench sweep EXPERIMENT --sizes ...
        unit = declared.size_option if declared and not listed else "size"
        if listed:
            parts[1:] = ["sweep", exp, "--sizes", _arg(cfg["size_list"])]
        else:
            add(_flag(own.get("min_size"), f"min-{unit}"), cfg.get("min_size"))
            add(_flag(own.get("max_size"), f"max-{unit}"), cfg.get("max_size"))
        for key, value in options.items():
            if listed:
                add("option", f"{key}={_arg(value)}")
            elif key not in own or own[key].flags != ():  # (one without a flag keeps its default)
                add(_flag(own.get(key), key.replace("_", "-")), value)
        if cfg.get("control") is False:
            parts.append("--no-control")
        else:
            control = own.get("control_max_size") if not listed else None
            add(_flag(control, f"control-max-{unit}"), cfg.get("control_max_size"))
        add(_shared("repeats"), cfg.get("repeats"))
        add(_shared("min_time"), cfg.get("min_time"))
        _add_pass_limits(cfg, add)
        if cfg.get("until", "narrow") != "narrow":
            add(_shared("until"), cfg.get("until"))
    add(_shared("threads"), cfg.get("threads") or None)
    if cfg.get("compile"):
        parts.append("--compile")
    if cfg.get("device") not in (None, "auto"):
        add(_shared("device"), cfg.get("device"))
    add(_shared("seed"), cfg.get("seed"))
    if exp != "trainability":
        add(_shared("dtype"), cfg.get("dtype"))
    return " ".join(shlex.quote(p) for p in parts)
