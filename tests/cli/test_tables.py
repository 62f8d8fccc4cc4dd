"""The points table in a narrow terminal: every cell whole, the size column kept, the
columns left out named."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from trainbench.cli.render import points_table

SUMMARY = Path(__file__).resolve().parents[2] / "results" / "mlp-heads" / "summary.json"


@pytest.mark.parametrize("width", [60, 80, 100, 120, 200])
def test_every_cell_whole_and_the_size_kept(width: int) -> None:
    summary = json.loads(SUMMARY.read_text(encoding="utf-8"))
    buf = io.StringIO()
    Console(width=width, file=buf).print(points_table(summary, "L", width=width))
    out = buf.getvalue()
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= width
    header = next(line for line in out.splitlines() if "variant" in line).split()
    assert header[:2] == ["L", "variant"] and "bwd" in header
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert sorted(int(r[0]) for r in rows) == sorted(p["size"] for p in summary["points"])
    if width >= 200:
        assert "left out" not in out and "eff" in header
    else:
        assert "left out to fit" in out and "eff" not in header
