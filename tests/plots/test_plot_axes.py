"""The report's log axes: tick labels as plain text with superscripts (no mathtext), the
labels matplotlib chooses, and no minor ticks on the size axis."""

from __future__ import annotations

import pytest

from trainbench.plots.drawing import log_scale, plain_text, pyplot, size_axis


@pytest.mark.parametrize(
    ("mathtext", "plain"),
    [
        (r"$\mathdefault{10^{-3}}$", "10⁻³"),
        (r"$\mathdefault{10^{0}}$", "10⁰"),
        (r"$\mathdefault{10^{12}}$", "10¹²"),
        (r"$\mathdefault{2\times10^{-10}}$", "2×10⁻¹⁰"),
        (r"$\mathdefault{2^{5}}$", "2⁵"),
        ("", ""),
        ("5", "5"),
    ],
)
def test_log_labels_becomeplain_text(mathtext: str, plain: str) -> None:
    assert plain_text(mathtext) == plain


def _labels(ax, which: str) -> list[str]:  # type: ignore[no-untyped-def]
    ax.figure.canvas.draw()
    axis = getattr(ax, f"{which}axis")
    ticks = axis.get_majorticklabels() + axis.get_minorticklabels()
    return [t.get_text() for t in ticks if t.get_text()]


def test_log_axis_labels_decades_and_narrow_ranges_without_mathtext() -> None:
    plt = pyplot()
    fig, (wide, narrow) = plt.subplots(1, 2)
    wide.plot([1, 2, 3], [1e-4, 1e-2, 1.0])
    log_scale(wide)
    narrow.plot([1, 2, 3], [1.8e-10, 2.0e-10, 2.4e-10])  # less than a decade: minor labels
    log_scale(narrow)
    try:
        w, n = _labels(wide, "y"), _labels(narrow, "y")
        assert {"10⁻⁴", "10⁻³", "10⁻²", "10⁻¹", "10⁰"} <= set(w)
        assert n and all("$" not in t for t in w + n)
        assert any("×10⁻¹⁰" in t for t in n)
    finally:
        plt.close(fig)


def test_base_two_axis_and_thesize_axis() -> None:
    plt = pyplot()
    fig, (two, size) = plt.subplots(1, 2)
    two.plot([2, 8, 32], [1, 2, 3])
    log_scale(two, "x", base=2)
    size.plot([1, 512], [1, 2])
    size_axis(size)
    try:
        assert {"2¹", "2³", "2⁵"} <= set(_labels(two, "x"))
        assert {"1", "2", "5", "10", "20", "50", "100", "200", "500"} <= set(_labels(size, "x"))
        assert len(size.xaxis.get_minor_locator()()) == 0
    finally:
        plt.close(fig)
