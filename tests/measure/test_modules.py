"""--by-module: FLOPs and saved bytes per module of the model's tree, each module's order
and share; a 2-layer transformer's attention is its n² part, its feed-forward n, and the
parts add up to the whole exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cli_helpers import assert_one_line_error, invoke
from torch import nn

import trainbench
from trainbench.measure.modules import count_modules, depth_of
from trainbench.measure.point import count_point

SIZES = [8, 16, 32, 64, 128]
FAST = {"repeats": 1, "max_passes": 1, "min_time": 0.002, "reference": "64", "threads": 1}
ROOT = "TransformerEncoder"


def encoder(n: int):
    """Two torch.nn.TransformerEncoderLayer over n tokens (dropout 0: identity modules)."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    x = torch.randn(1, n, 16)
    return lambda: model(x).sum()


@pytest.fixture(scope="module")
def swept() -> trainbench.SweepResult:
    return trainbench.sweep(encoder, SIZES, by_module=4, **FAST)


def _part(mods: dict, name: str, i: int) -> int:
    return mods.get(name, [0, 0, 0])[i]


PARTS = ("self_attn", "linear1", "linear2", "norm1", "norm2", "dropout", "dropout1", "dropout2")


def test_the_parts_add_up_to_the_whole_exactly(swept: trainbench.SweepResult) -> None:
    for p in swept.run.points:
        mods = p["modules"]
        assert mods[ROOT] == [p["fwd_flops"], p["bwd_flops"], p["saved_bytes"]]
        layers = [f"{ROOT}.layers.{i}" for i in (0, 1)]
        for i in (0, 1):  # forward FLOPs, backward FLOPs
            assert _part(mods, ROOT, i) == sum(_part(mods, layer, i) for layer in layers)
            for layer in layers:
                assert _part(mods, layer, i) == sum(
                    _part(mods, f"{layer}.{part}", i) for part in PARTS
                )


def test_a_module_that_passes_its_input_through_is_charged_nothing(
    swept: trainbench.SweepResult,
) -> None:
    """torch's counter gives a dropout with p = 0 the backward FLOPs of what ran before it;
    here the backward of an op belongs to the module that ran the op."""
    for p in swept.run.points:
        for name, (fwd, bwd, _) in p["modules"].items():
            if name.rsplit(".", 1)[-1].startswith("dropout"):
                assert fwd == bwd == 0, name


def test_attention_is_the_quadratic_part_and_the_feed_forward_linear(
    swept: trainbench.SweepResult,
) -> None:
    rows = swept.modules[swept.modules.metric == "bwd_flops"].set_index("module")
    for i in (0, 1):
        assert rows.loc[f"{ROOT}.layers.{i}.self_attn", "poly_degree"] == 2
        assert rows.loc[f"{ROOT}.layers.{i}.linear1", "poly_degree"] == 1
        assert rows.loc[f"{ROOT}.layers.{i}.linear2", "poly_degree"] == 1
    assert rows.loc[ROOT, "share"] == 1.0
    top = max(SIZES)
    point = next(p for p in swept.run.points if p["size"] == top)
    attn = point["modules"][f"{ROOT}.layers.0.self_attn"][1]
    assert rows.loc[f"{ROOT}.layers.0.self_attn", "share"] == attn / point["bwd_flops"]


def test_the_per_module_count_matches_the_whole_count() -> None:
    forward = encoder(32)
    whole = count_point(lambda: [forward()], torch.device("cpu"))
    mods = count_modules(lambda: [forward()], depth=1)
    assert list(mods) == [ROOT]  # depth 1: the model itself
    assert mods[ROOT] == [whole["fwd_flops"], whole["bwd_flops"], whole["saved_bytes"]]
    assert depth_of("TransformerEncoder.layers.0.self_attn") == 4


def test_the_cli_names_where_it_grows_fastest(tmp_path: Path) -> None:
    spec = f"{Path(__file__).resolve()}:encoder"
    result = invoke("sweep", spec, "--sizes", "8:128", "--by-module", "3", "--repeats", "1",
                    "--max-passes", "1", "--out", tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    out = " ".join(result.stdout.split())
    assert "model: backward FLOPs grow fastest in TransformerEncoder.layers.0.self_attn" not in out
    assert "per module (n = 128" in out  # depth 3 stops at the layers
    assert "model: backward FLOPs grow fastest in TransformerEncoder.layers.0: n^2" in out


def test_a_depth_below_one_is_one_line_error(tmp_path: Path) -> None:
    spec = f"{Path(__file__).resolve()}:encoder"
    result = invoke("sweep", spec, "--sizes", "8:64", "--by-module", "0", "--out", tmp_path)
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, ("--by-module",))


class _Convs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.r = nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()
        self.b = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.r(self.a(x)))


def test_each_convolution_carries_its_own_backward() -> None:
    """A convolution's backward node is made before its kernel runs: it is charged to its
    own module, not to the module that ran before it (here the ReLU)."""
    torch.manual_seed(0)
    model, x = _Convs(), torch.randn(2, 3, 16, 16)
    forward = lambda: [model(x).pow(2).mean()]  # noqa: E731
    whole = count_point(forward, torch.device("cpu"))
    mods = count_modules(forward, depth=2)
    pixels = 2 * 16 * 16
    # a: its weight's gradient only (the input needs none); b: its input's and its weight's
    assert mods["_Convs.a"][1] == 2 * pixels * 8 * 3 * 9
    assert mods["_Convs.b"][1] == 2 * (2 * pixels * 8 * 8 * 9)
    assert mods["_Convs.r"][1] == 0
    assert mods["_Convs"][1] == whole["bwd_flops"] == mods["_Convs.a"][1] + mods["_Convs.b"][1]
