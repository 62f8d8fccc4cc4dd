"""The claims file mutated: 200 seeded mutations of the shipped file (a field set to a value of
the wrong type or out of range, removed, or an unknown one added), each taken through what
`trainbench verify` does before it measures (parse, check the [runs] tables, plan the quick
and the thorough runs, check every run's configuration). Each is refused with one line
(ClaimsError, PlanError) or accepted; an accepted file's settings lie within the command
line's bounds. No other exception."""

from __future__ import annotations

import json
import math
import random
import re
from typing import Any

import pytest
import tomllib

from trainbench.claims.claim import ClaimsError
from trainbench.claims.parse import DEFAULT_CLAIMS, experiment_vocabulary, parse_claims
from trainbench.core.settings import BOUNDS
from trainbench.verify.run import PlanError, check_plans, check_run_tables, plan_runs

MUTATIONS = 200
WRONG: list[Any] = ["x", "", "O(n)", -1, 0, 1, 2**40, 1e300, -0.5, 0.5, math.inf, math.nan,
                    True, [], [1, "a"], {}, {"a": 1}]  # fmt: skip
_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(
            value) else repr(value)  # fmt: skip
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else json.dumps(key)


def to_toml(data: dict[str, Any]) -> str:
    """The claims file's shape as TOML: [[claim]] tables, then [runs.<name>] tables."""
    out = []
    for claim in data.get("claim", []):
        out.append("[[claim]]")
        out += [f"{_key(k)} = {_toml_value(v)}" for k, v in claim.items()]
        out.append("")
    for name, modes in (data.get("runs") or {}).items():
        out.append(f"[runs.{_key(name)}]")
        out += [f"{_key(k)} = {_toml_value(v)}" for k, v in modes.items()]
        out.append("")
    return "\n".join(out)


def _places(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every field a mutation may touch: a claim's fields (and those of its tables), and
    each setting of each [runs] table."""
    places: list[tuple[Any, ...]] = []
    for i, claim in enumerate(data["claim"]):
        for k, v in claim.items():
            places.append(("claim", i, k))
            if isinstance(v, dict):
                places += [("claim", i, k, kk) for kk in v]
    for name, modes in data["runs"].items():
        for mode, settings in modes.items():
            places += [("runs", name, mode, k) for k in settings]
    return places


def _mutate(data: dict[str, Any], rng: random.Random) -> str:
    place = rng.choice(_places(data))
    *parents, last = place
    holder: Any = data
    for step in parents:
        holder = holder[step]
    kind = rng.random()
    if kind < 0.15:
        del holder[last]
        return f"removed {place}"
    if kind < 0.25:
        holder[f"unknown_{rng.randrange(100)}"] = 1
        return f"added a field beside {place}"
    holder[last] = rng.choice(WRONG)
    return f"{place} = {holder[last]!r}"


def _as_verify_does(text: str) -> None:
    claim_set = parse_claims(text, "claims.toml", experiment_vocabulary())
    check_run_tables(claim_set)
    for quick in (True, False):
        plans = plan_runs(claim_set, quick)
        check_plans(plans)
        for plan in plans:
            for key, value in plan.settings.items():
                if key in BOUNDS:
                    low, high = BOUNDS[key]
                    assert low <= value <= high, (plan.folder, key, value)


@pytest.mark.parametrize("seed", range(MUTATIONS))
def test_a_mutated_claims_file_is_one_line_or_accepted(seed: int) -> None:
    data = tomllib.loads(DEFAULT_CLAIMS.read_text(encoding="utf-8"))
    what = _mutate(data, random.Random(seed))
    try:
        _as_verify_does(to_toml(data))
    except (ClaimsError, PlanError) as err:
        message = str(err)
        assert message and "\n" not in message, (what, message)
        assert "Traceback" not in message and "object at 0x" not in message, (what, message)


def test_the_file_written_back_unmutated_is_the_same_claims() -> None:
    """(The TOML writer of the mutations loses nothing: the shipped file written back plans
    the same runs.)"""
    text = DEFAULT_CLAIMS.read_text(encoding="utf-8")
    again = to_toml(tomllib.loads(text))
    vocabulary = experiment_vocabulary()
    a, b = parse_claims(text, "a", vocabulary), parse_claims(again, "b", vocabulary)
    assert a.claims == b.claims and a.runs == b.runs
