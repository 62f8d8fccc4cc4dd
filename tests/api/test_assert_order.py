"""``trainbench.assert_order`` in a test suite, and ``trainbench.load`` of a saved run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import targets_for_tests as T

import trainbench
from trainbench.api import OrderAssertionError
from trainbench.results.schema import ResultsError

SIZES = [4, 8, 16, 32, 64]
FAST = {"repeats": 1, "max_passes": 1, "min_time": 0.002, "reference": "64", "threads": 1}


def test_the_attention_target_is_quadratic_in_its_flops() -> None:
    """The project's own use of it: the tests' attention target, O(n²) in backward FLOPs."""
    verdict = trainbench.assert_order(T.attention, SIZES, "O(n^2)", reference="64")
    assert verdict.verdict == "confirmed"


def test_a_false_order_raises_with_the_reason() -> None:
    with pytest.raises(OrderAssertionError) as caught:
        trainbench.assert_order(T.attention, SIZES, "O(n)", reference="64")
    assert isinstance(caught.value, AssertionError)
    assert str(caught.value).startswith(
        "backward FLOPs is not shown to grow as O(n): refuted (an exact count, a polynomial "
        "of degree 2"
    )
    assert caught.value.verdict.verdict == "refuted"


def test_a_time_claim_needs_to_be_asked_for() -> None:
    with pytest.raises(ValueError, match="pass time=True"):
        trainbench.assert_order(T.linear, SIZES, "O(n)", metric="bwd_s")


def test_a_saved_run_loads_as_it_was_judged(tmp_path: Path) -> None:
    first = trainbench.sweep(T.attention, SIZES, claim="O(n^2)", metric="bwd_flops",
                             out=tmp_path, **FAST)  # fmt: skip
    again = trainbench.load(first.folder)
    assert again.name == first.name
    pd.testing.assert_frame_equal(again.fits, first.fits)
    pd.testing.assert_frame_equal(again.claims, first.claims)
    assert again.points[["size", "bwd_flops"]].values.tolist() == (
        first.points[["size", "bwd_flops"]].values.tolist()
    )
    # judged again, on the fits as saved: another claim, no measuring
    assert again.verdict("O(n^3)", "bwd_flops").verdict == "refuted"
    assert again.verdict("O(n^2)", "bwd_flops").verdict == "confirmed"


def test_a_loaded_builtin_run_has_its_experiment(tmp_path: Path) -> None:
    run = trainbench.sweep("mlp-heads", [1, 2, 4, 8], options={"width": 8, "batch": 4,
                           "in_dim": 4}, out=tmp_path, **FAST)  # fmt: skip
    loaded = trainbench.load(run.folder)
    assert loaded.experiment.name == "mlp-heads"
    assert loaded.verdict("O(L)", "bwd_flops").verdict == run.verdict("O(L)", "bwd_flops").verdict


def test_a_folder_that_is_no_run_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="summary.json"):
        trainbench.load(tmp_path)
