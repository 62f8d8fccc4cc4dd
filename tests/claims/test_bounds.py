"""The claims file's [runs] settings obey the command line's bounds
(trainbench.core.settings.BOUNDS): a value just outside them is refused by both, one line
naming the setting."""

from __future__ import annotations

import re

import pytest
from cli_helpers import invoke

from trainbench.claims.claim import ClaimsError
from trainbench.claims.parse import DEFAULT_CLAIMS, experiment_vocabulary, parse_claims
from trainbench.core.settings import BOUNDS, WHOLE, bound_words

# the option of mlp-heads (trainability for steps) that each bounded setting is
FLAGS = {"repeats": "--repeats", "max_passes": "--max-passes", "threads": "--threads",
         "seed": "--seed", "max_size": "--max-depth", "min_time": "--min-time",
         "precision": "--precision", "steps": "--steps"}  # fmt: skip


def _outside(key: str) -> list[float]:
    low, high = BOUNDS[key]
    step = 1 if key in WHOLE else (high - low) / 1000
    return [low - step, high + step]


def _claims_with(table: str, key: str, value: float) -> str:
    text = DEFAULT_CLAIMS.read_text(encoding="utf-8")
    shown = str(int(value)) if key in WHOLE else repr(float(value))
    # the table's quick settings, with this one set (replaced where it is there already)
    line = re.search(rf"^\[runs\.{table}\]\nthorough = .*\nquick = \{{(.*)\}}$", text, re.M)
    assert line is not None
    settings = [s for s in line.group(1).split(",") if s.split("=")[0].strip() != key]
    quick = "quick = {" + ", ".join([*(s.strip() for s in settings if s.strip()),
                                      f"{key} = {shown}"]) + " }"  # fmt: skip
    start, end = line.span(1)
    head = text[: line.start()] + text[line.start(): start].rsplit("quick = {", 1)[0]
    return head + quick + text[end + 1:]


@pytest.mark.parametrize("key", sorted(BOUNDS))
def test_a_setting_outside_the_bounds_is_refused_by_the_claims_file(key: str) -> None:
    table = "trainability" if key == "steps" else "mlp-heads"
    vocabulary = experiment_vocabulary()
    low, high = BOUNDS[key]
    for value in _outside(key):
        with pytest.raises(ClaimsError, match=re.escape(f"{key} = ")
                           + r".* is not " + re.escape(bound_words(key))):  # fmt: skip
            parse_claims(_claims_with(table, key, value), "claims.toml", vocabulary)
    for value in (low, high):  # the bounds themselves are accepted
        if key == "min_size" or key == "max_size" and value < 64:
            continue  # (min above max, or below the control's: refused for that, not bounds)
        parse_claims(_claims_with(table, key, value), "claims.toml", vocabulary)


@pytest.mark.parametrize("key", sorted(FLAGS))
def test_the_same_values_are_refused_on_the_command_line(key: str) -> None:
    command = "trainability" if key == "steps" else "mlp-heads"
    for value in _outside(key):
        shown = str(int(value)) if key in WHOLE else repr(float(value))
        r = invoke(command, FLAGS[key], shown, "--out", "/nonexistent/never-written")
        assert r.exit_code == 2, (key, value, r.stdout, r.stderr)
        assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
