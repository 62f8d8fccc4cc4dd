"""Exact counts as polynomials in n: the smallest degree that passes through every point,
its coefficients, and how they read (the polynomial, where its top term takes over)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def exact_polynomial(
    sizes: Sequence[float], values: Sequence[float], max_degree: int = 3
) -> tuple[int, tuple[float, ...]] | None:
    """The smallest degree d <= max_degree of a polynomial in n with a positive leading
    coefficient that passes through every (size, value) to 1e-9 relative, with at least
    one point more than it needs, and its coefficients in n (lowest power first; whole
    numbers where they are within 1e-6 of one); None if there is none.

    A pure power a + b·n^k cannot describe a count such as αn + βn² over a short
    range (its fitted k lies between 1 and 2); the polynomial's degree is its order.
    """
    n = np.asarray(sizes, dtype=float)
    y = np.asarray(values, dtype=float)
    if not (len(n) and np.all(np.isfinite(y)) and np.all(y > 0)):
        return None
    scale = n.max()
    x = n / scale  # scaled for conditioning
    for degree in range(max_degree + 1):
        if len(n) < degree + 2:
            return None
        coef = np.polynomial.polynomial.polyfit(x, y, degree)
        resid = np.polynomial.polynomial.polyval(x, coef) - y
        if np.max(np.abs(resid) / y) < 1e-9:
            if degree and coef[-1] <= 0:
                return None
            terms = []
            for j, c in enumerate(coef):
                c = float(c) / scale**j
                if np.max(np.abs(c) * n**j / y) < 1e-9:  # what rounding leaves of a zero term
                    c = 0.0
                whole = round(c)
                near = abs(c - whole) <= 1e-6 * max(abs(c), 1.0)
                terms.append(float(whole) if near else float(f"{c:.9g}"))
            return degree, tuple(terms)
    return None


def exact_polynomial_degree(
    sizes: Sequence[float], values: Sequence[float], max_degree: int = 3
) -> int | None:
    """The degree of :func:`exact_polynomial` (None where there is none)."""
    found = exact_polynomial(sizes, values, max_degree)
    return None if found is None else found[0]


_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _coefficient(c: float) -> str:
    return f"{c:,.0f}" if float(c).is_integer() else f"{c:,.6g}"


def _term(c: float, power: int, symbol: str) -> str:
    if power == 0:
        return _coefficient(c)
    base = symbol if power == 1 else f"{symbol}{str(power).translate(_SUPERSCRIPTS)}"
    return base if c == 1 else f"{_coefficient(c)}·{base}"


def polynomial_text(coefficients: Sequence[float], symbol: str = "n") -> str:
    """``2,048·n² + 1,298,432·n``: a polynomial's nonzero terms, the highest power first."""
    terms = [(c, j) for j, c in enumerate(coefficients) if c][::-1]
    text = ""
    for i, (c, j) in enumerate(terms):
        sign = ("-" if c < 0 else "") if i == 0 else (" - " if c < 0 else " + ")
        text += sign + _term(abs(c), j, symbol)
    return text or "0"


def crossover_text(coefficients: Sequence[float], symbol: str = "n") -> str | None:
    """Where the top term of a polynomial overtakes the next one down ("2,048·n² overtakes
    1,298,432·n at n ≈ 634"); None for a single term or a negative next term."""
    terms = [(c, j) for j, c in enumerate(coefficients) if c]
    if len(terms) < 2:
        return None
    (c_next, j_next), (c_top, j_top) = terms[-2], terms[-1]
    if c_next <= 0 or c_top <= 0:
        return None
    at = (c_next / c_top) ** (1.0 / (j_top - j_next))
    return (f"{_term(c_top, j_top, symbol)} overtakes {_term(c_next, j_next, symbol)} at "
            f"{symbol} ≈ {at:,.3g}")  # fmt: skip

