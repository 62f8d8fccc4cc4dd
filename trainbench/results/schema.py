"""The results format's schema: its version, the columns of its two tables, the type of
every field of summary.json that a reader uses (:data:`FIELDS`, :func:`check_fields`), and
the error a folder that is not a run is refused with (:class:`ResultsError`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainbench.core.vocabulary import SCHEDULE_COLUMNS, SPAN_METRICS

FORMAT_VERSION = 1

POINT_COLUMNS = (
    "variant",
    "size",
    "fwd_s",
    "fwd_iqr_s",
    "bwd_s",
    "bwd_iqr_s",
    "fwd_flops",
    "bwd_flops",
    "graph_nodes",
    "graph_depth",
    "saved_bytes",
    "param_bytes",
    "working_set_bytes",
    "peak_bytes",
    *SPAN_METRICS,
    *SCHEDULE_COLUMNS,
    "gflops",
    "efficiency",
    "noisy",
    "rounds",
    "fwd_runs_per_sample",
    "bwd_runs_per_sample",
    "format_version",
)



class ResultsError(ValueError):
    """A results folder that cannot be read back; the message (one line) names the file."""


# --compile runs add these (after the others): whether the point compiled, its compile
# time (first forward and backward), its eager forward+backward time and the speed-up.
# A column written only where some point has it: the ops that did arithmetic with no FLOP
# formula ("aten._foo × 4"), which leave that point's FLOPs a lower bound.
COUNT_NOTES = ("undercounted",)
COMPILE_COLUMNS = ("compiled", "compile_s", "eager_s", "speedup", "compile_note")
SAMPLE_COLUMNS = ("variant", "size", "phase", "round", "sample_s")
# columns that must hold a number >= 0 in every row ...


# The type of every field of summary.json that a reader uses, by section: "num" (a number,
# not a boolean), "str", "bool", "list", "obj"; "?" after it: null allowed. Fields not
# named here are not checked (a newer writer may add some).
_NUM, _STR, _BOOL, _LIST, _OBJ = "num", "str", "bool", "list", "obj"
FIELDS: dict[str, dict[str, str]] = {
    "top": {"experiment": _STR, "run": _STR + "?", "complete": _BOOL + "?", "notes": _LIST + "?",
            "failed_points": _LIST + "?", "schedule": _OBJ + "?", "baseline": _OBJ + "?",
            "points": _LIST + "?", "gradient_signal": _LIST + "?", "training": _LIST + "?",
            "files": _OBJ + "?", "modules": _LIST + "?", "gates": _LIST + "?"},
    "claims": {"id": _STR, "problem": _STR + "?", "statement": _STR + "?", "variant": _STR + "?",
               "metric": _STR + "?", "metrics": _LIST + "?", "expected": _STR + "?",
               "expected_exponent": _NUM + "?", "expected_class": _STR + "?",
               "tolerance": _NUM + "?", "control": _STR + "?", "is_control": _BOOL + "?",
               "expect": _STR + "?", "verdict": _STR, "reason": _STR + "?",
               "partial": _BOOL + "?", "exponent": _NUM + "?", "ci_low": _NUM + "?",
               "ci_high": _NUM + "?", "best_class": _STR + "?", "by_degree": _BOOL + "?",
               "poly_degree": _NUM + "?", "control_exponent": _NUM + "?",
               "poly_coefficients": _LIST + "?",
               "crossings": _LIST + "?", "fit_sizes": _LIST + "?", "noisy_points": _NUM + "?",
               "baseline": _STR + "?", "ratio": _NUM + "?", "baseline_ratio": _NUM + "?",
               "final_loss": _LIST + "?", "baseline_final_loss": _LIST + "?",
               "loss_metric": _STR + "?", "depth": _NUM + "?", "judged_on": _STR + "?",
               "activation": _STR + "?", "train_depth": _NUM + "?", "gate": _OBJ + "?"},
    "fits": {"variant": _STR, "metric": _STR, "exponent": _NUM + "?", "ci_low": _NUM + "?",
             "ci_high": _NUM + "?", "best_class": _STR + "?", "n_sizes": _NUM + "?",
             "size_range": _NUM + "?", "fit_from": _NUM + "?", "exact": _BOOL + "?",
             "rel_spread": _NUM + "?", "top_slope": _NUM + "?", "top_ci_low": _NUM + "?",
             "top_ci_high": _NUM + "?", "poly_degree": _NUM + "?", "class_bic": _OBJ + "?",
             "poly_coefficients": _LIST + "?",
             "power_bic": _NUM + "?", "verdict": _STR + "?", "partial": _BOOL + "?",
             "pinned": _BOOL + "?", "bic_class": _STR + "?"},
    "config": {"sizes": _LIST + "?", "variants": _LIST + "?", "min_size": _NUM + "?",
               "max_size": _NUM + "?", "repeats": _NUM + "?", "min_time": _NUM + "?",
               "seed": _NUM + "?", "steps": _NUM + "?", "depths": _LIST + "?",
               "options": _OBJ + "?", "time_budget": _NUM + "?", "control": _BOOL + "?"},
    "environment": {"device": _STR + "?", "device_name": _STR + "?", "cpu_model": _STR + "?",
                    "torch_version": _STR + "?", "threads": _NUM + "?", "dtype": _STR + "?",
                    "timestamp": _STR + "?", "caches": _LIST + "?"},
    "failed_points": {"variant": _STR, "size": _NUM, "phase": _STR + "?", "reason": _STR + "?"},
    "gates": {"family": _STR, "baseline": _STR, "activation": _STR, "optimizer": _STR,
              "passed": _BOOL + "?", "loss": _NUM + "?", "depth": _NUM + "?"},
    "gradient_signal": {"variant": _STR, "activation": _STR, "depth": _NUM, "seed": _NUM,
                        "ratio": _NUM + "?", "top_only_ratio": _NUM + "?",
                        "layer_grad_norms": _LIST + "?", "first_layer_grad_norm": _NUM + "?",
                        "last_layer_grad_norm": _NUM + "?"},
    # per seed: the lists; "finetune" an object or null
    "training": {"variant": _STR, "activation": _STR, "depth": _NUM, "optimizer": _STR,
                 "steps": _NUM, "seeds": _LIST, "lr": _NUM, "lr_grid": _LIST,
                 "lr_scores": _LIST, "final_loss": _LIST, "initial_loss": _LIST,
                 "head_losses": _LIST, "deepest_head": _LIST, "deep_head_loss": _LIST,
                 "target_variance": _NUM, "threshold": _NUM, "steps_to_threshold": _LIST,
                 "diverged": _LIST, "trained_ratio": _LIST, "curve": _LIST, "profile": _LIST,
                 "finetune": _OBJ + "?"},
}  # fmt: skip
_KINDS = {_NUM: "a number", _STR: "text", _BOOL: "true or false", _LIST: "a list",
          _OBJ: "an object"}  # fmt: skip


def _is(value: Any, kind: str) -> bool:
    if kind == _NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {_STR: str, _BOOL: bool, _LIST: list, _OBJ: dict}[kind])


def _field_error(path: Path, where: str, value: Any, spec: str) -> ResultsError:
    shown = json.dumps(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    expected = _KINDS[spec.rstrip("?")] + (" or null" if spec.endswith("?") else "")
    return ResultsError(f"{path}: {where} is {shown} (expected {expected})")


def check_fields(path: Path, summary: Mapping[str, Any]) -> None:
    """ResultsError naming the file and the first field of :data:`FIELDS` whose value is of
    the wrong type (an entry of a list section that is not an object, too); also every note
    must be text."""

    def check(entry: Mapping[str, Any], section: str, where: str) -> None:
        for key, spec in FIELDS[section].items():
            if key not in entry:
                continue
            value = entry[key]
            if value is None and spec.endswith("?"):
                continue
            if not _is(value, spec.rstrip("?")):
                raise _field_error(path, f"{where}{key}", value, spec)

    check(summary, "top", "")
    for section in ("config", "environment"):
        if isinstance(summary.get(section), dict):
            check(summary[section], section, f"{section}.")
    for section in ("claims", "fits", "failed_points", "gradient_signal", "training", "gates"):
        for i, entry in enumerate(summary.get(section) or []):
            if not isinstance(entry, dict):
                raise _field_error(path, f"{section}[{i}]", entry, _OBJ)
            check(entry, section, f"{section}[{i}].")
    for i, note in enumerate(summary.get("notes") or []):
        if not isinstance(note, str):
            raise _field_error(path, f"notes[{i}]", note, _STR)
