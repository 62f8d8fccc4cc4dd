"""The memory hierarchy: caches read from sysfs, where the working set passes them, the
time per unit of work across them, and how the claims are judged around them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trainbench.claims.claim import Claim
from trainbench.core.vocabulary import CONFIRMED, INCONCLUSIVE, REFUTED
from trainbench.experiments.builtin import EXPERIMENTS
from trainbench.harness.analysis import fit_points, judge_claims
from trainbench.measure.caches import (
    Crossing,
    bytes_text,
    crossings,
    in_window,
    parse_size,
    read_caches,
    step_at_crossings,
    time_per_work,
)
from trainbench.stats.fit import OrderFit
from trainbench.stats.judge import judge

SIZES = [2**k for k in range(2, 12)]  # 4 .. 2048; the fit window is 16 .. 2048
SAVED_PER_SIZE, PARAM_BYTES = 4096, 1000


def _cache_between(lo: int, hi: int, level: str = "L2") -> dict[str, Any]:
    """A cache that the working set passes between sizes lo and hi."""
    return {"level": level, "bytes": SAVED_PER_SIZE * (lo + hi) // 2}


# --------------------------------------------------------------------------- sysfs


def _index(root: Path, i: int, level: str, kind: str, size: str) -> None:
    d = root / f"index{i}"
    d.mkdir(parents=True)
    for name, text in (("level", level), ("type", kind), ("size", size)):
        (d / name).write_text(text + "\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("32K", 32768), ("1024K", 1048576), ("32768K", 33554432), ("2M", 2097152), ("512", 512),
     (" 48K\n", 49152), ("", None), ("lots", None), ("K", None)],
)  # fmt: skip
def test_parse_size(text: str, expected: int | None) -> None:
    assert parse_size(text) == expected


def test_read_caches_from_a_sysfs_like_folder(tmp_path: Path) -> None:
    _index(tmp_path, 0, "1", "Data", "32K")
    _index(tmp_path, 1, "1", "Instruction", "32K")
    _index(tmp_path, 2, "2", "Unified", "1024K")
    _index(tmp_path, 3, "3", "Unified", "32768K")
    _index(tmp_path, 4, "2", "Unified", "1024K")  # a second core's copy: once
    _index(tmp_path, 5, "4", "Unified", "bogus")  # unreadable size: skipped
    assert read_caches(root=tmp_path) == [
        {"level": "L1d", "bytes": 32768},
        {"level": "L2", "bytes": 1048576},
        {"level": "L3", "bytes": 33554432},
    ]


def test_read_caches_without_sysfs_and_on_cuda(tmp_path: Path) -> None:
    assert read_caches(root=tmp_path / "missing") == []
    assert read_caches("cuda", 50 * 2**20, root=tmp_path) == [
        {"level": "GPU L2", "bytes": 50 * 2**20}
    ]
    assert read_caches("cuda", None) == []


def test_bytes_text() -> None:
    assert bytes_text(32 * 2**20) == "32 MiB"
    assert bytes_text(48 * 1024) == "48 KiB"
    assert bytes_text(300) == "300 B"


# --------------------------------------------------------------------------- crossings


def test_crossings_on_synthetic_working_sets() -> None:
    sizes = [1, 2, 4, 8, 16]
    ws = [100, 200, 400, 800, 1600]
    caches = [{"level": "L1d", "bytes": 150}, {"level": "L2", "bytes": 400},
              {"level": "L3", "bytes": 10_000}, {"level": "L0", "bytes": 50}]  # fmt: skip
    found = crossings(sizes, ws, caches)
    # L2 holds exactly 400: size 4 still fits, 8 does not; L3 and L0 are never passed
    assert found == [Crossing("L1d", 150, 1, 2), Crossing("L2", 400, 4, 8)]
    assert "passes L2 (400 B) between L = 4 and 8" in found[1].text("L")
    # sizes without a working set (older runs) are skipped; none at all: no crossing
    assert crossings(sizes, [100, None, 400, float("nan"), 1600], caches)[0].n_hi == 4
    assert crossings(sizes, [None] * 5, caches) == []
    assert crossings(sizes, ws, None) == []


def test_in_window_needs_both_sizes_inside() -> None:
    c = Crossing("L2", 1, 8, 16)
    assert in_window([c], 8, 64) == [c]
    assert in_window([c], 16, 64) == []  # straddles the bottom edge: every fitted size is past it
    assert in_window([c], 2, 8) == []


def test_time_per_work_per_flop_and_per_node() -> None:
    pts = [{"variant": "v", "size": n, "bwd_s": 2.0 * n, "bwd_flops": 4 * n, "graph_nodes": n}
           for n in (4, 1, 2)]  # fmt: skip
    tpw = time_per_work(pts, "v")
    assert tpw.unit == "FLOP" and tpw.sizes == (1, 2, 4) and tpw.values == (0.5, 0.5, 0.5)
    pts[0]["bwd_flops"] = 0  # not counted at one size: the whole series per graph node
    tpw = time_per_work(pts, "v")
    assert tpw.unit == "graph node" and tpw.values == (2.0, 2.0, 2.0)
    pts[1]["bwd_s"] = 4.0  # size 1 now takes twice the time per node
    assert time_per_work(pts, "v").ratio(Crossing("L2", 1, 1, 2)) == pytest.approx(0.5)


# --------------------------------------------------------------------------- claims


def _run(
    step_from: int | None, time_power: float = 1.0, work_power: float = 1.0, seed: int = 1
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Points and raw samples of a variant whose backward time is n**time_power, twice as
    slow per unit of work from ``step_from`` on; its FLOPs grow as n**work_power."""
    rng = np.random.default_rng(seed)
    points, samples = [], []
    for n in SIZES:
        step = 2.0 if step_from is not None and n >= step_from else 1.0
        t = 1e-6 * n**time_power * step
        times = t * (1 + 0.01 * rng.standard_normal(5))
        saved = SAVED_PER_SIZE * n
        points.append({
            "variant": "full", "size": n, "fwd_s": t / 2, "fwd_iqr_s": 0.01 * t,
            "bwd_s": float(np.median(times)), "bwd_iqr_s": 0.01 * t, "fwd_flops": 500 * n,
            "bwd_flops": 1000 * n**work_power, "graph_nodes": 10 * n, "graph_depth": n,
            "saved_bytes": saved, "param_bytes": PARAM_BYTES,
            "working_set_bytes": 2 * PARAM_BYTES + saved, "noisy": False,
        })  # fmt: skip
        samples += [{"variant": "full", "size": n, "phase": "bwd", "round": 0, "sample_s": s}
                    for s in times]  # fmt: skip
    return points, samples


CLAIM = Claim(id="T1", problem="p", statement="backward time grows as L",
              experiment="mlp-heads", variant="full", metric="bwd_s", expected=1.0,
              tolerance=0.15, work_metric="bwd_flops")  # fmt: skip


def _judged(points: list[dict[str, Any]], samples: list[dict[str, Any]],
            caches: list[dict[str, Any]] | None) -> dict[str, Any]:  # fmt: skip
    fits, _ = fit_points(points, samples)
    exp = EXPERIMENTS["mlp-heads"]
    (record,) = judge_claims(exp, fits, {"full"}, {}, [CLAIM], points=points, samples=samples,
                             caches=caches)  # fmt: skip
    return record


def test_crossing_is_named_in_the_reason() -> None:
    points, samples = _run(step_from=256)
    record = _judged(points, samples, [_cache_between(128, 256)])
    assert "the working set passes L2 (768 KiB) between L = 128 and 256" in record["reason"]
    assert "time per FLOP rose 2.02× there" in record["reason"]
    (crossing,) = record["crossings"]
    assert (crossing["level"], crossing["n_lo"], crossing["n_hi"]) == ("L2", 128, 256)
    assert crossing["time_per_work_ratio"] == pytest.approx(2.0, rel=0.05)


def test_true_linear_time_with_a_step_is_confirmed_beyond_the_crossing() -> None:
    points, samples = _run(step_from=256)
    without = _judged(points, samples, None)
    # the step bends the whole window's fit (the settling rule reads the top of the range)
    assert without["verdict"] != CONFIRMED and without["exponent"] > 1.15
    record = _judged(points, samples, [_cache_between(128, 256)])
    assert record["verdict"] == CONFIRMED, record["reason"]
    assert record["reason"].startswith("beyond the last cache crossing (L = 256..2048, 4 sizes)")


def test_true_linear_time_with_a_late_step_is_inconclusive_naming_the_crossing() -> None:
    points, samples = _run(step_from=1024)  # only two sizes beyond the crossing
    assert _judged(points, samples, None)["verdict"] == REFUTED
    record = _judged(points, samples, [_cache_between(512, 1024, "L3")])
    assert record["verdict"] == INCONCLUSIVE, record["reason"]
    assert "steps up where the working set passes L3" in record["reason"]
    assert "between L = 512 and 1024" in record["reason"]


@pytest.mark.parametrize("step_from", [256, 1024])
def test_work_growing_faster_than_claimed_is_refuted_whatever_the_caches(step_from: int) -> None:
    points, samples = _run(step_from=step_from, time_power=1.5, work_power=1.5)
    record = _judged(points, samples, [_cache_between(step_from // 2, step_from)])
    assert record["verdict"] == REFUTED, record["reason"]
    assert record["crossings"]  # named all the same


@pytest.mark.parametrize("step_from", [256, 1024])
def test_time_growing_faster_than_its_work_everywhere_is_not_excused(step_from: int) -> None:
    """Linear work, but the time per unit of work rises all along (not at the cache)."""
    points, samples = _run(step_from=step_from, time_power=1.5)
    record = _judged(points, samples, [_cache_between(step_from // 2, step_from)])
    assert record["verdict"] == REFUTED, record["reason"]


def test_without_a_crossing_the_verdict_is_unchanged() -> None:
    points, samples = _run(step_from=256)
    plain = _judged(points, samples, None)
    huge = _judged(points, samples, [{"level": "L3", "bytes": 2**40}])  # never passed
    below = _judged(points, samples, [_cache_between(8, 16)])  # below the fit window's bottom
    assert plain == huge == below
    assert "crossings" not in plain
    old = [{k: v for k, v in p.items() if k != "working_set_bytes"} for p in points]
    assert _judged(old, samples, [_cache_between(128, 256)]) == _judged(old, samples, None)


def _fit(lo: float, hi: float, **kw: Any) -> OrderFit:
    return OrderFit(exponent=(lo + hi) / 2, ci_low=lo, ci_high=hi, best_class="n", n_sizes=8,
                    size_range=128.0, fit_from=16.0, exact=False, rel_spread=0.01,
                    **kw)  # fmt: skip


def test_judge_beyond_the_last_crossing() -> None:
    steep, flat = _fit(1.2, 1.3), replace(_fit(0.97, 1.03), n_sizes=4, size_range=4.0)
    linear_work = replace(_fit(1.0, 1.0), exact=True, poly_degree=1)
    faster_work = replace(_fit(1.5, 1.5), exact=True)
    v = judge(steep, 1.0, 0.15, work=linear_work, beyond=flat, beyond_text="L = 256..1024")
    assert v.verdict == CONFIRMED and "beyond the last cache crossing (L = 256..1024)" in v.reason
    # the regime beyond is allowed 4x, not less
    short = replace(flat, size_range=3.0)
    assert judge(steep, 1.0, 0.15, work=linear_work, beyond=short).verdict == INCONCLUSIVE
    # never a rescue where the work itself does not grow as claimed, or without a work count
    assert judge(steep, 1.0, 0.15, work=faster_work, beyond=flat).verdict == REFUTED
    assert judge(steep, 1.0, 0.15, beyond=flat).verdict == REFUTED
    assert judge(steep, 1.0, 0.15, step_at="the working set passes L2").verdict == REFUTED
    # a time growing slower than claimed: no refutation where the work is exactly of the
    # claimed degree (a time cannot stay below its work's order), crossing or not, and no
    # rescue by the crossing either; without that work count it refutes
    slow = _fit(0.6, 0.7)
    v = judge(slow, 1.0, 0.15, work=linear_work, step_at="x")
    assert v.verdict == INCONCLUSIVE and "cannot grow more slowly than its work" in v.reason
    assert judge(slow, 1.0, 0.15, step_at="x").verdict == REFUTED
    assert judge(slow, 1.0, 0.15, work=faster_work, step_at="x").verdict == REFUTED
    # the regime beyond the crossing still refutes a time that grows too fast there
    steep_beyond = replace(_fit(1.4, 1.6), n_sizes=4, size_range=4.0)
    assert judge(steep, 1.0, 0.15, work=linear_work, beyond=steep_beyond).verdict == REFUTED


def test_step_located_at_the_crossings() -> None:
    points, _ = _run(step_from=256)
    tpw = time_per_work(points, "full")
    at = [Crossing("L2", 1, 128, 256)]
    assert step_at_crossings(tpw, at, 16, 2048, 0.15)
    assert not step_at_crossings(tpw, [Crossing("L2", 1, 512, 1024)], 16, 2048, 0.15)
    rising, _ = _run(step_from=256, time_power=1.5)
    assert not step_at_crossings(time_per_work(rising, "full"), at, 16, 2048, 0.15)
