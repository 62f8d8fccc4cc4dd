"""The verdict on a claim "metric grows as n**k" from its fitted order (:func:`judge`), and
how an order reads (``k = 1.02 [0.97, 1.08]``, ``O(n²)``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from trainbench.core.vocabulary import CONFIRMED, INCONCLUSIVE, REFUTED
from trainbench.stats.classes import BIC_MARGIN, CLASS_FOR_EXPONENT
from trainbench.stats.exact import crossover_text, polynomial_text
from trainbench.stats.fit import OrderFit
from trainbench.stats.power import K_MAX, TOP_RANGE

MIN_SIZES = 4
MIN_RANGE = 8.0
# How far above its power a claimed logarithmic class (log n, n log n) may read.
LOG_BAND = 0.5


@dataclass(frozen=True)
class Verdict:
    verdict: str  # confirmed | refuted | inconclusive
    reason: str
    by_degree: bool = False  # judged on an exact count's polynomial degree


def _sizes_that_would_do(fit: OrderFit, min_range: float) -> str:
    """Sizes that would span ``min_range`` with the same largest or smallest size."""
    top = fit.fit_from * fit.size_range
    low = max(1, math.floor(top / min_range))
    return (f"for example {MIN_SIZES}+ sizes from {low:g} to {top:g}, or from "
            f"{fit.fit_from:g} to {math.ceil(fit.fit_from * min_range):g}")  # fmt: skip


def exponent_text(fit: OrderFit) -> str:
    """``k = 1.02 [0.97, 1.08]``; an end of the interval at the fitter's bound reads "≥ 4.5"
    (a bound, not a measurement), and a power pinned there gives its slope at the top."""
    bound = not fit.pinned and fit.ci_high >= K_MAX - 1e-9  # (a top slope has no bound)
    hi = f"≥ {K_MAX:g}" if bound else f"{fit.ci_high:.2f}"
    text = f"k = {fit.exponent:.2f} [{fit.ci_low:.2f}, {hi}]"
    if fit.pinned:
        text += (f" (the log-log slope over the top {TOP_RANGE:g}x: a + b·n^k reached the "
                 f"fitter's bound k = {K_MAX:g})")  # fmt: skip
    return text


def order_label(exponent: float, symbol: str = "n", order_class: str | None = None) -> str:
    """``O(n)``, ``O(n²)`` ... for a claimed exponent; ``O(log n)``, ``O(n log n)`` for a
    logarithmic class."""
    if order_class is not None:
        return f"O({order_class.replace('n', symbol)})"
    if exponent == 0:
        return "O(1)"
    if exponent == 1:
        return f"O({symbol})"
    sup = str(exponent if exponent != int(exponent) else int(exponent))
    sup = sup.translate(str.maketrans("0123456789.", "⁰¹²³⁴⁵⁶⁷⁸⁹·"))
    return f"O({symbol}{sup})"


def _band(expected: float, low: float, high: float) -> str:
    """``1 ± 0.15``, or ``[0.85, 1.5]`` where the band is not symmetric."""
    if math.isclose(expected - low, high - expected):
        return f"{expected:g} ± {high - expected:g}"
    return f"[{low:g}, {high:g}]"


def judge(
    fit: OrderFit,
    expected: float,
    tolerance: float,
    *,
    control: OrderFit | None = None,
    needs_control: bool = False,
    work: OrderFit | None = None,
    work_label: str = "work",
    order_class: str | None = None,
    check_class: bool = True,
    min_range: float = MIN_RANGE,
    beyond: OrderFit | None = None,
    beyond_text: str = "",
    step_at: str | None = None,
) -> Verdict:
    """Judge the claim "metric grows as n**expected" (or, with ``order_class``, as the
    logarithmic class it names: "log n" with expected 0, "n log n" with expected 1).

    * inconclusive when the fitted range is too short to speak of growth;
    * refuted: the interval lies wholly outside ``expected ± tolerance``
      (but inconclusive when ``work``, the exact work count of the same run,
      grows as claimed and the time's log-log slope over the top of the range
      meets the band: the time per unit of work is still settling; or when the work
      grows as claimed, the time grows faster and ``step_at`` names the cache
      crossings at which the time per unit of work steps up);
    * caches: where the working set passes a cache inside the window, ``beyond`` is
      the fit over the sizes beyond the last crossing (``beyond_text`` names them; at
      least MIN_SIZES spanning TOP_RANGE, so it is judged with that minimum range):
      a claim not confirmed over the whole window whose work grows as claimed is
      judged on it instead. A work that does not grow as claimed is never rescued;
    * confirmed: the interval lies wholly inside it, the chosen class has the
      expected degree, and (when ``needs_control``) the control measured in the
      same run was detected as growing faster (its interval lies above ours);
    * an exact count that follows a polynomial in n (``fit.poly_degree``) is
      judged on that degree instead of the fitted exponent: confirmed when it is
      the expected one (control permitting), refuted when it is not;
    * never refuted where the fit and the log-log slope over the top of the range lie on
      opposite sides of the band (no power describes the range): inconclusive;
    * a logarithmic class: a power fitted to log n or n log n reads a little above the
      power (the local slope of n log n is 1 + 1/ln n), so the band is
      [expected - tolerance, expected + LOG_BAND] and the chosen class must be the claimed
      one; an exact count that is a polynomial in n refutes it;
    * inconclusive otherwise, with the reason.
    """
    band_lo, band_hi = expected - tolerance, expected + tolerance
    if order_class is not None:
        band_hi = expected + max(tolerance, LOG_BAND)
    ci = exponent_text(fit)
    short = fit.n_sizes < MIN_SIZES or fit.size_range < min_range
    # An exact count that follows a polynomial in n: its degree is its order,
    # whatever a pure power fitted over a short range reads.
    by_degree = fit.poly_degree is not None and not short
    if order_class is not None and by_degree:
        return Verdict(
            REFUTED,
            f"an exact count, a polynomial of degree {fit.poly_degree} in n ({ci}), "
            f"not {order_class}",
        )
    # A logarithmic class must explain the data about as well as the best power a + b·n^k
    # (which has a parameter more): n^1.5 lies between n log n and n² and would otherwise
    # pass for n log n.
    power_wins = (
        order_class is not None
        and not short
        and fit.class_bic is not None
        and fit.power_bic is not None
        and fit.class_bic.get(order_class, math.inf) > fit.power_bic + BIC_MARGIN
    )
    if power_wins and fit.exact:
        return Verdict(
            REFUTED, f"an exact count that a power n^k fits better than {order_class} ({ci})"
        )
    degree_text = (
        f"an exact count, a polynomial of degree {fit.poly_degree} in n ({ci} over the range)"
    )
    if by_degree and fit.poly_coefficients is not None:
        degree_text += f": {polynomial_text(fit.poly_coefficients)}"
        cross = crossover_text(fit.poly_coefficients)
        degree_text += f"; {cross}" if cross else ""
    if by_degree and fit.poly_degree != expected:
        return Verdict(REFUTED, degree_text, by_degree=True)
    work_grows_as_claimed = work is not None and (
        work.poly_degree == expected or (band_lo <= work.ci_low and work.ci_high <= band_hi)
    )
    if short:
        # Too short a range says nothing about the asymptotic order, either way.
        return Verdict(
            INCONCLUSIVE,
            f"range too short ({ci} from {fit.n_sizes} sizes spanning {fit.size_range:g}x; "
            f"need {MIN_SIZES} sizes spanning {min_range:g}x: "
            f"{_sizes_that_would_do(fit, min_range)})",
        )
    if beyond is not None:

        def again(f: OrderFit, least: float, at: str | None) -> Verdict:
            return judge(f, expected, tolerance, control=control, needs_control=needs_control,
                         work=work, work_label=work_label, order_class=order_class,
                         check_class=check_class, min_range=least, step_at=at)  # fmt: skip

        whole = again(fit, min_range, None)  # step_at only matters where there is no beyond
        if whole.verdict == CONFIRMED or not work_grows_as_claimed:
            return whole
        # The work grows as claimed and the working set outgrew a cache inside the window:
        # the asymptote the claim is about lies beyond the last crossing; judge it there.
        there = again(beyond, TOP_RANGE, None)
        return Verdict(
            there.verdict,
            f"beyond the last cache crossing ({beyond_text or 'the top of the window'}): "
            f"{there.reason}; over the whole window: {whole.reason}",
            by_degree=there.by_degree,
        )
    # A time that tracks its exact work: the work (counted in the same run) is exactly a
    # polynomial of the claimed degree, and the time's interval lies within ± tolerance of
    # the work's own exponent over the same window. Over a finite range an exact count such
    # as αT + βT² reads below its degree (here k_work); the time, work × a time per unit of
    # work that stays flat, reads the same. A time growing faster or slower than its work
    # does not track it, and a work of another degree refutes the claim by itself.
    tracks = (
        not by_degree
        and order_class is None
        and work is not None
        and work.poly_degree is not None
        and float(expected).is_integer()
        and work.poly_degree == int(expected)
        and work.exponent - tolerance <= fit.ci_low
        and fit.ci_high <= work.exponent + tolerance
    )
    if tracks and not (band_lo <= fit.ci_low and fit.ci_high <= band_hi) and work is not None:
        band_lo, band_hi = work.exponent - tolerance, work.exponent + tolerance
    if not by_degree and (fit.ci_high < band_lo or fit.ci_low > band_hi):
        settling = (
            work_grows_as_claimed
            and fit.top_ci_low is not None
            and fit.top_ci_high is not None
            and fit.top_ci_low <= band_hi
            and fit.top_ci_high >= band_lo
        )
        if step_at is not None and work_grows_as_claimed and fit.ci_low > band_hi:
            # The time grows faster than its work, and the time per unit of work steps up
            # where the working set outgrows a cache: the memory hierarchy, with too few
            # sizes beyond the last cache to judge the asymptote there.
            return Verdict(
                INCONCLUSIVE,
                f"{ci} lies outside {expected:g} ± {tolerance:g}, but the work ({work_label}) "
                f"grows as claimed and the time per unit of work steps up where {step_at}; "
                f"too few sizes beyond it ({MIN_SIZES} spanning {TOP_RANGE:g}x needed) to "
                "judge the regime there",
            )
        if settling and work is not None:
            # The work grows as claimed and, at the top of the range, so does the
            # time: the time per unit of work was still changing lower down (a
            # working set outgrowing a cache, an overhead fading).
            return Verdict(
                INCONCLUSIVE,
                f"{ci} lies outside {expected:g} ± {tolerance:g}, but the work ({work_label}) "
                f"grows as k = {work.exponent:.2f} and the time's slope at the top of the range "
                f"is {fit.top_slope:.2f} [{fit.top_ci_low:.2f}, {fit.top_ci_high:.2f}]: the time "
                "per unit of work is still settling (caches, overheads); a longer range would "
                "tell",
            )
        if (
            fit.ci_high < band_lo
            and work is not None
            and work.poly_degree is not None
            and float(expected).is_integer()
            and work.poly_degree == int(expected)
        ):
            # Slower than claimed, while the work counted in the same run is exactly of the
            # claimed degree. A time is at least its work over the machine's peak rate, so
            # it cannot stay below the work's order: the time per unit of work still falls
            # over this range (overheads and small operands amortised). No refutation.
            return Verdict(
                INCONCLUSIVE,
                f"{ci} lies below {_band(expected, band_lo, band_hi)}, but the work "
                f"({work_label}) is exactly a polynomial of degree {work.poly_degree} in n "
                f"(k = {work.exponent:.2f} over the same window): the time per unit of work "
                "still falls over this range, and a time cannot grow more slowly than its "
                "work for long (a machine has a peak rate); larger sizes would tell",
            )
        top_low, top_high = fit.top_ci_low, fit.top_ci_high
        if not fit.exact and top_low is not None and top_high is not None and (
            (fit.ci_low > band_hi and top_high < band_lo)
            or (fit.ci_high < band_lo and top_low > band_hi)
        ):
            # The two estimates of the growth contradict each other: a + b·n^k over the
            # window says faster than claimed, the log-log slope at its top slower (or the
            # reverse). No power describes this range, so neither refutes the claim.
            side, other = ("above", "below") if fit.ci_low > band_hi else ("below", "above")
            return Verdict(
                INCONCLUSIVE,
                f"{ci} lies {side} {_band(expected, band_lo, band_hi)}, but the slope at the "
                f"top of the range, {fit.top_slope:.2f} [{top_low:.2f}, {top_high:.2f}], lies "
                f"{other} it: no power a + b·n^k describes this range (the time per unit of "
                "work changes inside it: overheads fading, caches filling); a range where it "
                "has settled would tell",
            )
        return Verdict(REFUTED, f"{ci} lies outside {_band(expected, band_lo, band_hi)}")
    problems: list[str] = []
    if not by_degree and not (band_lo <= fit.ci_low and fit.ci_high <= band_hi):
        width = fit.ci_high - fit.ci_low
        if width > 2 * tolerance:
            spread = f"; worst IQR/median {fit.rel_spread:.0%}" if fit.rel_spread > 0 else ""
            problems.append(
                f"interval too wide ({ci}{spread}): "
                "more repeats, fewer threads or a longer range may help"
            )
        else:
            problems.append(f"{ci} straddles the edge of {_band(expected, band_lo, band_hi)}")
    if power_wins:
        problems.append(f"a power n^k ({ci}) fits better than {order_class}")
    want_class = order_class or CLASS_FOR_EXPONENT.get(float(expected))
    if (
        check_class
        and not by_degree
        and want_class is not None
        and fit.best_class != want_class
        and not (tracks and work is not None
                 and fit.best_class in (work.best_class, work.bic_class))
    ):
        problems.append(f"best class is {fit.best_class}, not {want_class}")
    if needs_control:
        if control is None:
            problems.append("its control was not measured in this run")
        elif control.n_sizes < MIN_SIZES or control.size_range < MIN_RANGE:
            problems.append(
                f"its control's range is too short ({control.n_sizes} sizes spanning "
                f"{control.size_range:g}x)"
            )
        elif not (
            control.ci_low > fit.ci_high
            or (by_degree and (control.poly_degree or 0) > (fit.poly_degree or 0))
        ):
            problems.append(
                f"the control (k = {control.exponent:.2f} [{control.ci_low:.2f}, "
                f"{control.ci_high:.2f}]) was not detected as growing faster"
            )
    if problems:
        return Verdict(INCONCLUSIVE, "; ".join(problems), by_degree=by_degree)
    reason = degree_text if by_degree else ci + (" (exact count)" if fit.exact else "")
    if tracks and work is not None and not math.isclose(band_lo, expected - tolerance):
        reason += (
            f", within ±{tolerance:g} of its work ({work_label}: exactly degree "
            f"{work.poly_degree}, k = {work.exponent:.2f} over the same window)"
        )
    if needs_control and control is not None:
        reason += f"; control grows faster: k = {control.exponent:.2f}"
    return Verdict(CONFIRMED, reason, by_degree=by_degree)
