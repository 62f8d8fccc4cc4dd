"""A claim and a set of them, and the orders they name (``O(n)``, ``O(L^2)``, ``O(T log T)``).

:class:`Claim` is one statement about one metric of one experiment, :class:`ClaimSet`
the claims of a file with the sizes ``trainbench verify`` runs them at; reading and
checking a claims file is :mod:`trainbench.claims.parse`. No torch in here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ORDER = re.compile(r"O\((?:1|(?P<sym>[A-Za-z])(?:(?:\^|\*\*)?(?P<exp>[0-9]+(?:\.[0-9]+)?))?)\)")
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")


class ClaimsError(ValueError):
    """A claims file that cannot be used; the message is one line for the user."""


def parse_order(text: str) -> float:
    """The exponent of ``O(1)``, ``O(n)``, ``O(L^2)``, ``O(T²)``, ``O(n**1.5)``."""
    m = _ORDER.fullmatch(str(text).translate(_SUPERSCRIPTS).replace(" ", ""))
    if m is None:
        raise ValueError(f"not an order like O(1), O(n) or O(n^2): {text!r}")
    return 0.0 if m.group("sym") is None else float(m.group("exp") or 1)


# O(log n) and O(n log n) (any one-letter symbol; "n log n", "n*log(n)", "nlogn", ...)
_LOG_ORDER = re.compile(r"O\((?P<lin>(?P<sym>[A-Za-z])\*?)?log\(?(?P<arg>[A-Za-z])\)?\)")


def parse_order_class(text: str) -> tuple[float, str | None]:
    """An order with the growth class it names, where that is a logarithmic one:
    ``O(log n)`` is (0, "log n"), ``O(n log n)`` (1, "n log n"); the powers of
    :func:`parse_order` give (their exponent, None)."""
    squeezed = str(text).translate(_SUPERSCRIPTS).replace(" ", "")
    m = _LOG_ORDER.fullmatch(squeezed)
    if m is not None and (m.group("sym") in (None, m.group("arg"))):
        return (1.0, "n log n") if m.group("lin") else (0.0, "log n")
    try:
        return parse_order(text), None
    except ValueError:
        raise ValueError(
            f"not an order like O(1), O(log n), O(n), O(n log n), O(n^2) or O(n^1.5): {text!r}"
        ) from None


@dataclass(frozen=True)
class Claim:
    """A statement about one metric of one experiment, to be tested.

    Sweep claims: "``metric`` of ``variant`` grows as size**``expected``".
    Trainability claims: "``variant`` keeps the gradient signal that ``baseline``
    loses" (``metrics`` name the gradient ratio and, optionally, a training loss).
    """

    id: str
    problem: str
    statement: str
    experiment: str
    variant: str
    metric: str  # the first of ``metrics``
    expected: float = math.nan  # the claimed exponent (sweep claims)
    tolerance: float = 0.0
    control: str | None = None  # id of the claim whose growth must come out faster
    is_control: bool = False
    work_metric: str | None = None  # the exact count of the work behind a time metric
    options: Mapping[str, Any] = field(default_factory=dict)  # what `verify` runs
    # the claim holds for runs whose options take one of these values / none of these
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    unless: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    expect: str = "confirmed"  # the verdict `verify` expects
    baseline: str | None = None  # trainability: the variant that loses the signal
    metrics: tuple[str, ...] = ()
    # the growth class the order names where it is a logarithmic one ("log n", "n log n")
    order_class: str | None = None
    # False: judged on the band alone, not on the best class too (a time claim in a run
    # whose [runs] settings widen its band: `time_tolerance`)
    check_class: bool = True

    def applies(self, options: Mapping[str, Any]) -> bool:
        return all(options.get(k) in values for k, values in self.when.items()) and not any(
            options.get(k) in values for k, values in self.unless.items()
        )

    def as_record(self) -> dict[str, Any]:
        """The claim's fields as the run summaries record them."""
        return {
            "id": self.id,
            "problem": self.problem,
            "statement": self.statement,
            "variant": self.variant,
            "expect": self.expect,
        }


@dataclass(frozen=True)
class ClaimSet:
    """The claims of a file and the sizes ``verify`` runs each experiment at."""

    claims: tuple[Claim, ...]
    runs: Mapping[str, Mapping[str, Mapping[str, Any]]]  # experiment -> thorough|quick -> cfg
    path: Path | None = None

    def for_experiment(self, experiment: str) -> tuple[Claim, ...]:
        return tuple(c for c in self.claims if c.experiment == experiment)

    def by_id(self) -> dict[str, Claim]:
        return {c.id: c for c in self.claims}

    def select(self, ids: Sequence[str]) -> ClaimSet:
        """Only the claims named (and the controls they are checked against)."""
        known = self.by_id()
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ClaimsError(
                f"--only: unknown claim {unknown[0]!r} (known: {', '.join(known)})"
            )
        keep = set(ids)
        keep |= {known[i].control for i in ids if known[i].control}  # type: ignore[misc]
        return ClaimSet(tuple(c for c in self.claims if c.id in keep), self.runs, self.path)
