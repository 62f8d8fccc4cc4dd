"""Exact counts explained: an exact polynomial count reports its coefficients and where its
top term takes over; its class, exact marker and verdict agree; a claim of any O(n^k) on it,
integer or not, is judged on its true degree."""

from __future__ import annotations

import numpy as np
import pytest

from trainbench.cli.render import fits_table, verdict_lines
from trainbench.core.vocabulary import CONFIRMED, REFUTED
from trainbench.stats.exact import crossover_text, exact_polynomial, polynomial_text
from trainbench.stats.fit import fit_order
from trainbench.stats.judge import judge

# GPT-2 (two layers, eager attention): its backward FLOPs over the sequence length n
SIZES = np.array([64, 128, 256, 512, 1024, 2048], dtype=float)
GPT2 = 1_298_432 * SIZES + 2_048 * SIZES**2


def test_the_coefficients_of_an_exact_count_are_its_own() -> None:
    degree, terms = exact_polynomial(SIZES, GPT2)
    assert degree == 2 and terms == (0.0, 1_298_432.0, 2_048.0)
    assert exact_polynomial(SIZES, SIZES * (SIZES + 1) / 2) == (2, (0.0, 0.5, 0.5))
    assert exact_polynomial(SIZES, 7 + 3 * SIZES**3) == (3, (7.0, 0.0, 0.0, 3.0))
    assert exact_polynomial(SIZES, SIZES * np.log(SIZES)) is None


def test_the_top_term_and_where_it_takes_over_are_written_out() -> None:
    assert polynomial_text((0.0, 1_298_432.0, 2_048.0)) == "2,048·n² + 1,298,432·n"
    assert polynomial_text((7.0, 0.0, 0.0, 3.0), "T") == "3·T³ + 7"
    assert polynomial_text((-45.0, 72.0)) == "72·n - 45"
    assert polynomial_text((0.0, 1.0)) == "n"
    assert crossover_text((0.0, 1_298_432.0, 2_048.0)) == (
        "2,048·n² overtakes 1,298,432·n at n ≈ 634"
    )
    assert crossover_text((0.0, 1.0)) is None  # one term: nothing to overtake
    assert crossover_text((-45.0, 72.0)) is None  # a negative term is no rival


def test_class_and_exact_marker_follow_the_degree() -> None:
    fit = fit_order(SIZES, GPT2)
    assert fit.poly_degree == 2 and fit.poly_coefficients == (0.0, 1_298_432.0, 2_048.0)
    # BIC over this range prefers n log n (the n² term leads only from n ≈ 634 on); the
    # class of an exact polynomial is its degree's
    assert fit.best_class == "n^2"
    verdict = judge(fit, 2.0, 0.15)
    assert verdict.verdict == CONFIRMED and verdict.by_degree
    assert "2,048·n² + 1,298,432·n; 2,048·n² overtakes 1,298,432·n at n ≈ 634" in verdict.reason


@pytest.mark.parametrize("expected", [1.0, 1.5, 2.5, 3.0])
def test_any_other_order_claimed_on_an_exact_count_is_refuted_by_its_degree(
    expected: float,
) -> None:
    verdict = judge(fit_order(SIZES, GPT2), expected, 0.15)
    assert verdict.verdict == REFUTED and verdict.by_degree
    assert verdict.reason.startswith("an exact count, a polynomial of degree 2 in n")


def test_tables_and_verdict_lines_agree_with_the_verdict() -> None:
    fit = fit_order(SIZES, GPT2)
    judged = judge(fit, 2.0, 0.15)
    claim = {
        "id": "c", "statement": "backward FLOPs: O(n^2)", "variant": "model",
        "metric": "bwd_flops", "verdict": judged.verdict, "reason": judged.reason,
        "by_degree": judged.by_degree, "poly_degree": fit.poly_degree,
        "poly_coefficients": list(fit.poly_coefficients), "exponent": fit.exponent,
        "ci_low": fit.ci_low, "ci_high": fit.ci_high, "fit_sizes": [64, 2048],
    }  # fmt: skip
    summary = {"claims": [claim],
               "fits": [{"variant": "model", "metric": "bwd_flops", **fit.to_dict(),
                         "verdict": judged.verdict}]}  # fmt: skip
    [line] = verdict_lines(summary, {})
    assert "confirmed (exactly 2,048·n² + 1,298,432·n (degree 2; 2,048·n² overtakes" in line.plain
    row = [c._cells[0] for c in fits_table(summary).columns]
    assert row[3:6] == ["exact (degree 2)", "n^2", row[5]] and str(row[5]) == "confirmed"
