"""Problems 1a, 1c and 2: the models (PlainMLP, ResidualMLP, CNNStack) and the trainability run.

Models: shapes, the equations worked by hand in float64, the einsum and conv forms of the
convolution against each other, gradcheck, and the forward FLOPs against the closed form.
Trainability: the gradient signal against a chain rule worked by hand, its behaviour with
depth (seeded), train(), judge() on synthetic records, validation, and a tiny whole run with
its files. Timings are never asserted.

Every test runs torch on one thread (restored afterwards): these models are tiny, and two
threads on a busy two-core machine made a 512 × 64 product sixty times slower.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from trainbench.measure.point import count_point
from trainbench.models import ugcnn
from trainbench.models.residual_mlp import PlainMLP, ResidualMLP
from trainbench.models.ugcnn import CNNStack, convolve, make_images
from trainbench.results.files import to_json
from trainbench.trainability.config import (
    ACTIVATIONS,
    VARIANTS,
    TrainabilityConfig,
    TrainabilityError,
)
from trainbench.trainability.files import FILES, activation_rows, training_rows, write_files
from trainbench.trainability.gradients import gradient_signal, layer_grad_norms, training_loss
from trainbench.trainability.judge import (
    GATE,
    KEPT,
    LOST,
    MARGIN,
    claim_records,
    gates,
    judge,
)
from trainbench.trainability.run import run_trainability, units
from trainbench.trainability.tasks import build
from trainbench.trainability.training import train

pytestmark = pytest.mark.slow  # real sweeps or real processes

F64 = torch.float64
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTS = tuple(f for f in FILES if f.endswith(".png"))
TABLES = tuple(f for f in FILES if not f.endswith(".png"))
CLAIMS = claim_records()
CLAIM_BY_ID = {c["id"]: c for c in CLAIMS}


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def mlp(cls: type[PlainMLP], depth: int, width: int = 5, in_dim: int = 3) -> PlainMLP:
    torch.manual_seed(0)
    model = cls(depth, width, in_dim).to(F64)
    with torch.no_grad():  # non-zero biases, so that the sign convention (- B) is tested
        for p in (*model.B_hh, model.B_hy):
            p.uniform_(-1, 1)
    return model


def mlp_data(batch: int = 4, in_dim: int = 3) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, in_dim, generator=g, dtype=F64), torch.randn(
        batch, generator=g, dtype=F64
    )


def cnn(depth: int, channels: int = 2, kernel: int = 3, *, gated: bool = True,
        heads: str = "every", impl: str = "einsum", seed: int = 0) -> CNNStack:  # fmt: skip
    torch.manual_seed(seed)
    model = CNNStack(depth, channels, kernel, gated=gated, heads=heads, impl=impl).to(F64)
    with torch.no_grad():  # non-zero biases everywhere (B^G keeps its - gate_bias start)
        biases = [*model.B_y, *(model.B_R if gated else model.B)]
        for p in biases:
            p.uniform_(-1, 1)
        if gated:
            for p in model.B_G:
                p.add_(torch.empty_like(p).uniform_(-0.5, 0.5))
    return model


def images(batch: int = 2, size: int = 4, channels: int = 2) -> tuple[Tensor, Tensor]:
    x, y = make_images(batch, size, channels, generator=torch.Generator().manual_seed(2))
    return x.to(F64), y.to(F64)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("cls", [PlainMLP, ResidualMLP])
@pytest.mark.parametrize("depth", [1, 2, 5])
def test_mlp_shapes(cls: type[PlainMLP], depth: int) -> None:
    model = mlp(cls, depth)
    x, y = mlp_data()
    assert model.predict(x).shape == (4,)
    losses = model(x, y)
    assert len(losses) == 1 and losses[0].shape == ()
    weights = model.layer_weights()
    assert len(weights) == depth
    first = (5, 5) if cls is ResidualMLP else (5, 3)
    assert [tuple(w.shape) for w in weights] == [first] + [(5, 5)] * (depth - 1)
    if cls is ResidualMLP:
        assert tuple(model.W_xh.shape) == (5, 3)


@pytest.mark.parametrize("gated", [True, False])
@pytest.mark.parametrize("heads", ["every", "top"])
@pytest.mark.parametrize("depth", [1, 3])
def test_cnn_shapes(gated: bool, heads: str, depth: int) -> None:
    model = cnn(depth, channels=3, gated=gated, heads=heads)
    x, y = images(batch=2, size=5, channels=3)
    preds = model.predictions(x)
    assert len(preds) == (depth if heads == "every" else 1)
    assert all(p.shape == (2,) for p in preds)
    assert model.predict(x).shape == (2,)
    losses = model(x, y)
    assert len(losses) == len(preds) and all(loss.shape == () for loss in losses)
    layers = model.layer_weights()
    assert len(layers) == depth
    assert all(len(ws) == (2 if gated else 1) for ws in layers)
    assert all(tuple(w.shape) == (3, 3, 3, 3) for ws in layers for w in ws)
    box = x
    for i in range(depth):
        box = model.layer(i, box)
        assert box.shape == (2, 5, 5, 3)  # [b, x, y, C], every layer


def test_cnn_rejects_bad_options() -> None:
    for kwargs in ({"impl": "foo"}, {"heads": "some"}, {"activation": "foo"}, {"kernel": 4}):
        with pytest.raises(ValueError):
            CNNStack(2, 2, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- equations


def test_plain_mlp_by_hand() -> None:
    """h_{l+1} = σ(h_l W^T - B); ŷ = h_L·W^{h,p} - B^{h,y}; Loss = Σ_b (y - ŷ)²."""
    model = mlp(PlainMLP, 3)
    x, y = mlp_data()
    h = x
    for W, B in zip(model.W_hh, model.B_hh, strict=True):
        h = torch.sigmoid(h @ W.T - B)
    y_hat = h @ model.W_hp - model.B_hy
    assert torch.allclose(model.predict(x), y_hat, atol=1e-12, rtol=0)
    (loss,) = model(x, y)
    assert torch.allclose(loss, ((y - y_hat) ** 2).sum(), atol=1e-12, rtol=0)


def test_residual_mlp_by_hand() -> None:
    """h_0 = x W_xh^T; h += σ(h W^T - B) - ½; ŷ = h·W_hp - B_hy."""
    model = mlp(ResidualMLP, 4)
    x, y = mlp_data()
    h = x @ model.W_xh.T
    for W, B in zip(model.W_hh, model.B_hh, strict=True):
        h = h + torch.sigmoid(h @ W.T - B) - 0.5
    y_hat = h @ model.W_hp - model.B_hy
    assert torch.allclose(model.predict(x), y_hat, atol=1e-12, rtol=0)
    (loss,) = model(x, y)
    assert torch.allclose(loss, ((y - y_hat) ** 2).sum(), atol=1e-12, rtol=0)


def conv_by_loops(box: Tensor, W: Tensor) -> Tensor:
    """Σ_{Δx,Δy,J} W[Δx,Δy,j,J] box[b,x+Δx,y+Δy,J], zero outside the image, by explicit loops."""
    k = W.shape[0]
    p = (k - 1) // 2
    b, X, Y, _ = box.shape
    out = torch.zeros(b, X, Y, W.shape[2], dtype=box.dtype)
    for u in range(k):
        for v in range(k):
            dx, dy = u - p, v - p
            for x in range(X):
                for y in range(Y):
                    if 0 <= x + dx < X and 0 <= y + dy < Y:
                        out[:, x, y, :] += box[:, x + dx, y + dy, :] @ W[u, v].T
    return out


def conv_by_conv2d(box: Tensor, W: Tensor) -> Tensor:
    p = (W.shape[0] - 1) // 2
    out = F.conv2d(box.permute(0, 3, 1, 2), W.permute(2, 3, 0, 1), padding=p)
    return out.permute(0, 2, 3, 1)


@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("impl", ["einsum", "conv"])
def test_convolve_by_loops(kernel: int, impl: str) -> None:
    box, _ = images(batch=2, size=4, channels=2)
    W = torch.randn(kernel, kernel, 2, 2, generator=torch.Generator().manual_seed(3), dtype=F64)
    want = conv_by_loops(box, W)
    assert torch.allclose(conv_by_conv2d(box, W), want, atol=1e-12, rtol=0)
    assert torch.allclose(convolve(box, W, impl), want, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("impl", ["einsum", "conv"])
def test_ugcnn_layer_by_hand(kernel: int, impl: str) -> None:
    """R = tanh(W^{L,R} * L - B^R); G = σ(W^{L,G} * L - B^G); L' = G L + (1 - G) R."""
    model = cnn(2, channels=2, kernel=kernel, gated=True, impl=impl)
    box, _ = images(batch=2, size=4, channels=2)
    for i in range(2):
        R = torch.tanh(conv_by_loops(box, model.W_LR[i]) - model.B_R[i])
        G = torch.sigmoid(conv_by_loops(box, model.W_LG[i]) - model.B_G[i])
        want = G * box + (1 - G) * R
        got = model.layer(i, box)
        assert torch.allclose(got, want, atol=1e-12, rtol=0)
        # the head: ŷ = W^p · mean over pixels - B^y
        y_hat = box_mean_head(want, model.W_p[i], model.B_y[i])
        assert torch.allclose(model.head(i, want), y_hat, atol=1e-12, rtol=0)
        box = want


def box_mean_head(box: Tensor, Wp: Tensor, By: Tensor) -> Tensor:
    X, Y = box.shape[1], box.shape[2]
    return (box.sum(dim=(1, 2)) / (X * Y)) @ Wp - By


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("impl", ["einsum", "conv"])
def test_plain_cnn_layer_by_hand(kernel: int, impl: str) -> None:
    """L' = σ(W * L - B)."""
    model = cnn(2, channels=2, kernel=kernel, gated=False, impl=impl)
    box, _ = images(batch=2, size=4, channels=2)
    for i in range(2):
        want = torch.sigmoid(conv_by_conv2d(box, model.W[i]) - model.B[i])
        assert torch.allclose(model.layer(i, box), want, atol=1e-12, rtol=0)
        box = want


@pytest.mark.parametrize("heads", ["every", "top"])
def test_cnn_stack_predictions_by_hand(heads: str) -> None:
    model = cnn(3, gated=True, heads=heads)
    x, y = images()
    box, want = x, []
    for i in range(3):
        R = torch.tanh(conv_by_conv2d(box, model.W_LR[i]) - model.B_R[i])
        G = torch.sigmoid(conv_by_conv2d(box, model.W_LG[i]) - model.B_G[i])
        box = G * box + (1 - G) * R
        if heads == "every":
            want.append(box_mean_head(box, model.W_p[i], model.B_y[i]))
    if heads == "top":
        want.append(box_mean_head(box, model.W_p[0], model.B_y[0]))
    got = model.predictions(x)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g, w, atol=1e-12, rtol=0)
    for loss, w in zip(model(x, y), want, strict=True):
        assert torch.allclose(loss, ((y - w) ** 2).sum(), atol=1e-12, rtol=0)


# --------------------------------------------------------------- einsum against conv


@pytest.mark.parametrize("kernel", [3, 5])
def test_convolve_einsum_equals_conv(kernel: int) -> None:
    g = torch.Generator().manual_seed(4)
    box = torch.randn(3, 6, 5, 4, generator=g, dtype=F64)  # X ≠ Y on purpose
    W = torch.randn(kernel, kernel, 4, 4, generator=g, dtype=F64)
    assert torch.allclose(convolve(box, W, "einsum"), convolve(box, W, "conv"), atol=1e-12, rtol=0)


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("gated", [True, False])
@pytest.mark.parametrize("heads", ["every", "top"])
def test_cnn_stack_einsum_equals_conv(kernel: int, gated: bool, heads: str) -> None:
    ein = cnn(4, channels=3, kernel=kernel, gated=gated, heads=heads, impl="einsum", seed=0)
    conv = cnn(4, channels=3, kernel=kernel, gated=gated, heads=heads, impl="conv", seed=9)
    conv.load_state_dict(ein.state_dict())
    x, _ = images(batch=2, size=5, channels=3)
    a, b = ein.predictions(x), conv.predictions(x)
    assert len(a) == len(b) == (4 if heads == "every" else 1)
    for p, q in zip(a, b, strict=True):
        assert torch.allclose(p, q, atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- gradcheck


def gradcheck_model(model: torch.nn.Module, *args: Tensor) -> bool:
    names, params = zip(*model.named_parameters(), strict=True)

    def loss(*values: Tensor) -> Tensor:
        state = dict(zip(names, values, strict=True))
        return torch.stack(functional_call(model, state, args)).sum()

    inputs = tuple(p.detach().clone().requires_grad_(True) for p in params)
    return torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("cls", [PlainMLP, ResidualMLP])
def test_gradcheck_mlp(cls: type[PlainMLP]) -> None:
    model = mlp(cls, 2, width=4, in_dim=3)
    x, y = mlp_data(batch=2)
    assert gradcheck_model(model, x, y)


@pytest.mark.parametrize("gated", [True, False])
@pytest.mark.parametrize("impl", ["einsum", "conv"])
def test_gradcheck_cnn(gated: bool, impl: str) -> None:
    model = cnn(2, channels=2, gated=gated, impl=impl)
    x, y = images(batch=2, size=3, channels=2)
    assert gradcheck_model(model, x, y)


# --------------------------------------------------------------------------- FLOPs


@pytest.mark.parametrize("impl", ["einsum", "conv"])
@pytest.mark.parametrize("gated", [True, False])
@pytest.mark.parametrize("heads", ["every", "top"])
@pytest.mark.parametrize(("depth", "kernel"), [(1, 3), (3, 3), (2, 5)])
def test_forward_flops_equal_the_formula(
    impl: str, gated: bool, heads: str, depth: int, kernel: int
) -> None:
    C, size, batch = 3, 5, 2
    model = cnn(depth, channels=C, kernel=kernel, gated=gated, heads=heads, impl=impl)
    x, y = images(batch=batch, size=size, channels=C)
    counts = count_point(lambda: [torch.stack(model(x, y)).sum()], torch.device("cpu"))
    assert counts["fwd_flops"] == ugcnn.flops_forward(depth, C, kernel, size, batch, gated, heads)


def test_flops_formula_by_hand() -> None:
    # b=2, X=Y=4, k=3, C=2: one convolution 2·2·16·9·4 = 2304; a head 2·2·2 = 8
    assert ugcnn.flops_forward(3, 2, 3, 4, 2, True, "every") == 3 * 2 * 2304 + 3 * 8
    assert ugcnn.flops_forward(3, 2, 3, 4, 2, False, "top") == 3 * 2304 + 8


# --------------------------------------------------------------- gradient signal by hand


def hand_grads_plain2(model: PlainMLP, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """∂Loss/∂W_1 and ∂Loss/∂W_2 of a depth-2 PlainMLP, Loss = Σ_b (ŷ - y)² / b, chain rule."""
    W1, W2 = model.W_hh
    B1, B2 = model.B_hh
    n = len(y)
    with torch.no_grad():
        h1 = torch.sigmoid(x @ W1.T - B1)
        h2 = torch.sigmoid(h1 @ W2.T - B2)
        y_hat = h2 @ model.W_hp - model.B_hy
        d_yhat = 2 * (y_hat - y) / n  # ∂Loss/∂ŷ[b]
        d_a2 = d_yhat[:, None] * model.W_hp[None, :] * h2 * (1 - h2)  # through σ' = s(1 - s)
        d_a1 = (d_a2 @ W2) * h1 * (1 - h1)
        return d_a1.T @ x, d_a2.T @ h1  # ∂/∂W[i,I] = Σ_b δ[b,i] h[b,I]


def test_layer_grad_norms_by_hand() -> None:
    cfg = TrainabilityConfig(width=3, in_dim=2)
    task = build("plain", 2, cfg, F64)
    model = task.make(cfg.seed)
    assert isinstance(model, PlainMLP)
    x, y = task.held_out
    assert x.dtype == F64 and x.shape == (512, 2)
    g1, g2 = hand_grads_plain2(model, x, y)
    assert g1.shape == (3, 2) and g2.shape == (3, 3)
    want = [float(torch.linalg.norm(g1)), float(torch.linalg.norm(g2))]
    got = layer_grad_norms(model, training_loss(model, x, y))
    assert got == pytest.approx(want, rel=1e-10, abs=1e-10)

    signal = gradient_signal("plain", 2, cfg)  # builds the same seeded model
    assert (signal["variant"], signal["depth"], signal["activation"]) == ("plain", 2, "sigmoid")
    assert signal["layer_grad_norms"] == pytest.approx(want, rel=1e-10, abs=1e-10)
    assert signal["first_layer_grad_norm"] == signal["layer_grad_norms"][0]
    assert signal["last_layer_grad_norm"] == signal["layer_grad_norms"][-1]
    assert signal["ratio"] == pytest.approx(want[0] / want[1], rel=1e-10)
    # one head: the top head's loss alone is the loss
    assert signal["top_only_ratio"] == pytest.approx(signal["ratio"], rel=1e-10)


def test_held_out_batches_are_apart() -> None:
    for variant in ("plain", "cnn"):
        task = build(variant, 2, TrainabilityConfig(), torch.float32)
        assert not torch.equal(task.held_out[0], task.validation[0]), variant
        assert task.held_out[0].shape == task.validation[0].shape


def test_training_loss_is_the_batch_mean_summed_over_heads() -> None:
    """One head: the batch-mean squared error; several: Σ over the heads of that mean."""
    x, y = images()
    for heads, n_heads in (("top", 1), ("every", 3)):
        model = cnn(3, heads=heads)
        with torch.no_grad():
            got = float(training_loss(model, x, y))
            want = sum(float(((y - p) ** 2).mean()) for p in model.predictions(x))
        assert len(model.predictions(x)) == n_heads
        assert got == pytest.approx(want, rel=1e-12), heads


def test_ugcnn_layer_norm_joins_both_filters() -> None:
    model = cnn(3, gated=True, heads="top")
    x, y = images()
    loss = training_loss(model, x, y)
    grads = torch.autograd.grad(loss, [w for ws in model.layer_weights() for w in ws],
                                retain_graph=True)  # fmt: skip
    want = [
        math.sqrt(float((grads[2 * i] ** 2).sum()) + float((grads[2 * i + 1] ** 2).sum()))
        for i in range(3)
    ]
    assert layer_grad_norms(model, loss) == pytest.approx(want, rel=1e-12)


def test_residual_cnn_layer_by_hand() -> None:
    torch.manual_seed(0)
    model = CNNStack(2, 2, 3, gated=False, heads="top", impl="einsum", activation="tanh",
                     residual=True).to(F64)  # fmt: skip
    with torch.no_grad():
        model.B[0].uniform_(-1, 1)
    x, _ = images()
    want = x + torch.tanh(F.conv2d(x.permute(0, 3, 1, 2), model.W[0].permute(2, 3, 0, 1),
                                   padding=1).permute(0, 2, 3, 1) - model.B[0])  # fmt: skip
    assert torch.allclose(model.layer(0, x), want, atol=1e-12)
    with pytest.raises(ValueError):
        CNNStack(2, gated=True, residual=True)


def test_gain_scales_the_weights() -> None:
    torch.manual_seed(3)
    unit = PlainMLP(3, 8, 4, "sigmoid", 1.0)
    torch.manual_seed(3)
    four = PlainMLP(3, 8, 4, "sigmoid", 4.0)
    for a, b in zip(unit.W_hh, four.W_hh, strict=True):
        assert torch.allclose(4 * a, b)
    assert torch.equal(unit.W_hp, four.W_hp)  # the heads keep unit gain
    assert ACTIVATIONS["sigmoid-glorot"] == ("sigmoid", 4.0)
    assert ACTIVATIONS["relu"][1] == pytest.approx(math.sqrt(2))


# --------------------------------------------------------------- signal against depth


@pytest.fixture(scope="module")
def signals() -> dict[tuple[str, str, int], dict[str, Any]]:
    cfg = TrainabilityConfig()
    out = {}
    for act in ("sigmoid", "tanh"):
        for v in VARIANTS:
            for d in (2, 32):
                out[(v, act, d)] = gradient_signal(v, d, cfg, act)
    return out


def test_signal_records(signals: dict[tuple[str, str, int], dict[str, Any]]) -> None:
    for (variant, act, depth), r in signals.items():
        assert (r["variant"], r["activation"], r["depth"]) == (variant, act, depth)
        assert len(r["layer_grad_norms"]) == depth
        assert all(n >= 0 and math.isfinite(n) for n in r["layer_grad_norms"])
        assert r["ratio"] == r["first_layer_grad_norm"] / r["last_layer_grad_norm"]


def test_signal_is_kept_at_depth_2(signals: dict[tuple[str, str, int], dict[str, Any]]) -> None:
    for (v, act, d), r in signals.items():
        if d == 2:
            assert r["ratio"] > KEPT, (v, act)


def test_sigmoid_signal_at_depth_32(signals: dict[tuple[str, str, int], dict[str, Any]]) -> None:
    ratio = {v: signals[(v, "sigmoid", 32)]["ratio"] for v in VARIANTS}
    assert ratio["plain"] < LOST, ratio
    for v in ("heads", "residual"):
        assert ratio[v] > KEPT, (v, ratio)
    # the vanishing signal is a small number, not an underflow to zero (float64)
    assert signals[("plain", "sigmoid", 32)]["first_layer_grad_norm"] > 0
    # the heads net's top head alone loses the signal as the plain net does
    assert signals[("heads", "sigmoid", 32)]["top_only_ratio"] < LOST


def test_tanh_keeps_the_signal_without_help(
    signals: dict[tuple[str, str, int], dict[str, Any]],
) -> None:
    """The vanishing gradient is sigmoid's at unit gain: a tanh plain MLP and a tanh plain
    CNN keep theirs at L = 32, so a CNN baseline with the UGCNN's nonlinearity is fair."""
    for v in ("plain", "cnn", "rescnn", "ugcnn"):
        assert signals[(v, "tanh", 32)]["ratio"] > KEPT, v


# --------------------------------------------------------------------------- train()


TINY = TrainabilityConfig(depths=(3,), train_depths=(3,), steps=20, eval_every=10, seeds=2,
                          width=8, finetune_steps=10)  # fmt: skip


@pytest.fixture(scope="module")
def trained() -> dict[str, dict[str, Any]]:
    return {v: train(v, 3, "sgd", TINY, finetune=v == "heads") for v in ("plain", "heads", "ugcnn")}


def test_train_record(trained: dict[str, dict[str, Any]]) -> None:
    for variant, r in trained.items():
        assert (r["variant"], r["depth"], r["optimizer"], r["activation"]) == (
            variant, 3, "sgd", "sigmoid" if variant != "ugcnn" else "sigmoid")  # fmt: skip
        assert r["seeds"] == [0, 1] and r["lr_grid"] == list(TINY.lr_sgd)
        assert [c["step"] for c in r["curve"]] == [0, 10, 20]
        for key in ("final_loss", "head_losses", "deepest_head", "deep_head_loss",
                    "steps_to_threshold", "diverged", "trained_ratio", "initial_loss"):  # fmt: skip
            assert len(r[key]) == 2, (variant, key)
        assert r["final_loss"] == r["curve"][-1]["loss"]
        assert r["final_loss"] == [h[-1] for h in r["head_losses"]]
        assert r["threshold"] == TINY.threshold * r["target_variance"]


def test_the_rate_is_the_first_seeds_best_validation_loss(
    trained: dict[str, dict[str, Any]],
) -> None:
    for r in trained.values():
        scores = [math.inf if s is None else s for s in r["lr_scores"]]
        assert len(scores) == len(TINY.lr_sgd)
        assert r["lr"] == r["lr_grid"][scores.index(min(scores))]
        assert r["lr_at_edge"] == (r["lr"] in (min(TINY.lr_sgd), max(TINY.lr_sgd)))


def test_the_other_seeds_are_the_rate_trained_alone() -> None:
    """Seed 1 at the chosen rate: the same numbers as an ensemble of that one member."""
    from trainbench.trainability import ensemble
    r = train("plain", 3, "sgd", TINY)
    task = build("plain", 3, TINY, torch.float32)
    alone = ensemble.members(task.make, (1,), (r["lr"],))
    curve = ensemble.train(alone, task.batch, TINY.steps, "sgd", "sum",
                           {"test": task.held_out}, TINY.eval_every)  # fmt: skip
    assert r["final_loss"][1] == curve[-1]["test"][0][-1]  # type: ignore[index]


def test_deepest_and_deep_heads_by_hand(trained: dict[str, dict[str, Any]]) -> None:
    r = trained["heads"]
    for losses, deepest, deep in zip(r["head_losses"], r["deepest_head"], r["deep_head_loss"],
                                     strict=True):  # fmt: skip
        assert len(losses) == 3
        below = [i + 1 for i, v in enumerate(losses) if v <= r["threshold"]]
        assert deepest == (max(below) if below else 0)
        assert deep == min(losses[1:])  # heads at depth ≥ ⌈3/2⌉ = 2
    plain = trained["plain"]
    for losses, deepest, deep in zip(plain["head_losses"], plain["deepest_head"],
                                     plain["deep_head_loss"], strict=True):  # fmt: skip
        assert len(losses) == 1 and deep == losses[0]  # one head, at the top: depth 3
        assert deepest == (3 if losses[0] <= plain["threshold"] else 0)


def test_steps_to_threshold_follows_the_curve(trained: dict[str, dict[str, Any]]) -> None:
    for r in trained.values():
        for i, reached in enumerate(r["steps_to_threshold"]):
            losses = {c["step"]: c["loss"][i] for c in r["curve"]}
            if reached is None:
                assert all(v > r["threshold"] for v in losses.values())
            else:
                assert losses[reached] <= r["threshold"]
                assert all(losses[s] > r["threshold"] for s in losses if s < reached)


def test_finetune_only_where_asked(trained: dict[str, dict[str, Any]]) -> None:
    assert trained["plain"]["finetune"] is None
    ft = trained["heads"]["finetune"]
    assert ft["steps"] == 10 and len(ft["final_loss"]) == 2


def test_train_absurd_rate_diverges() -> None:
    cfg = TrainabilityConfig(steps=20, eval_every=10, lr_sgd=(1e6,), seeds=1, width=8)
    r = train("plain", 3, "sgd", cfg, "relu")
    assert r["diverged"] == [True]
    assert r["final_loss"] == [None] and r["deep_head_loss"] == [None]
    assert r["deepest_head"] == [None] and r["steps_to_threshold"] == [None]
    assert r["lr_scores"] == [None]
    # the record is JSON-safe: no NaN or Infinity in the document
    json.loads(to_json(r), parse_constant=lambda c: pytest.fail(f"non-finite {c} in JSON"))


# --------------------------------------------------------------------------- judge()


def sig(variant: str, depth: int, ratios: list[float | None], act: str = "sigmoid"
        ) -> list[dict[str, Any]]:  # fmt: skip
    return [{"variant": variant, "activation": act, "depth": depth, "seed": i, "ratio": r}
            for i, r in enumerate(ratios)]  # fmt: skip


def run(
    variant: str, depth: int, losses: list[float | None], act: str = "sigmoid",
    variance: float = 1.0, deep: list[float | None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    return {"variant": variant, "activation": act, "depth": depth, "optimizer": "sgd",
            "final_loss": losses, "deep_head_loss": deep or losses, "target_variance": variance,
            "threshold": 0.5 * variance, "steps": 3000, "lr": 0.1,
            "seeds": list(range(len(losses)))}  # fmt: skip


P1A = CLAIM_BY_ID["P1a"]
P1A_DEEP = CLAIM_BY_ID["P1a-deep"]
P1C = CLAIM_BY_ID["P1c"]
P2 = CLAIM_BY_ID["P2"]
P1A_TANH = CLAIM_BY_ID["P1a-tanh"]
# the signal part of P1a holds: heads keep it, plain loses it, in all three seeds
SIGNAL = [*sig("heads", 64, [0.1, 0.2, 0.3]), *sig("plain", 64, [1e-9, 1e-12, 1e-20])]
GATE_OK = run("plain", 2, [0.01, 0.02, 0.03])


def test_claims_table() -> None:
    ids = [c["id"] for c in CLAIMS]
    assert ids[:3] == ["P1a", "P1a-deep", "P1c"] and ids[-1] == "P2"
    assert {c["activation"] for c in CLAIMS} == set(ACTIVATIONS) | {"tanh"}
    assert CLAIM_BY_ID["P2"]["activation"] == "tanh"  # the CNNs': the UGCNN's update's
    assert [c["metrics"][1:] for c in CLAIMS[:3]] == [
        ["final_loss"], ["deep_head_loss"], ["final_loss"]
    ]  # fmt: skip
    assert LOST < KEPT and 0 < MARGIN < 1 and 0 < GATE < 0.5


def test_judge_confirmed_when_every_seed_learns() -> None:
    training = [GATE_OK, run("heads", 32, [0.1, 0.2, 0.3]), run("plain", 32, [1.0, 0.99, 1.01])]
    v = judge(P1A, SIGNAL, training)
    assert v["verdict"] == "confirmed", v
    assert (v["depth"], v["train_depth"], v["seeds_passed"]) == (64, 32, 3)
    assert (v["ratio"], v["baseline_ratio"]) == (0.1, 1e-9)  # the worst seed of each
    for words in ("L = 32", "3000 sgd steps", "L = 64", "sigmoid", "lr 0.1"):
        assert words in v["reason"], words


def test_judge_refuted_when_no_seed_learns() -> None:
    training = [GATE_OK, run("heads", 32, [0.9, 0.95, 1.0]), run("plain", 32, [1.0, 1.0, 1.0])]
    v = judge(P1A, SIGNAL, training)
    assert v["verdict"] == "refuted", v
    assert "in no seed" in v["reason"]


def test_judge_inconclusive_when_the_seeds_disagree() -> None:
    training = [GATE_OK, run("heads", 32, [0.1, 0.9, 0.2]), run("plain", 32, [1.0, 1.0, 1.0])]
    v = judge(P1A, SIGNAL, training)
    assert v["verdict"] == "inconclusive", v
    assert "2 of 3" in v["reason"]


def test_judge_inconclusive_when_the_gate_fails() -> None:
    """A plain net that does not train at the smallest depth: the budget decides, not depth."""
    weak = run("plain", 2, [0.3, 0.4, 0.5])
    training = [weak, run("heads", 32, [0.1, 0.2, 0.3]), run("plain", 32, [1.0, 1.0, 1.0])]
    v = judge(P1A, SIGNAL, training)
    assert v["verdict"] == "inconclusive", v
    assert "sanity gate failed" in v["reason"] and "too weak" in v["reason"]
    (g,) = gates(training)
    assert (g["baseline"], g["depth"], g["passed"]) == ("plain", 2, False)
    assert g["loss"] == pytest.approx(0.4)


def test_judge_inconclusive_when_the_plain_net_trains_too() -> None:
    training = [GATE_OK, run("heads", 32, [0.01] * 3), run("plain", 32, [0.02, 0.03, 0.9])]
    v = judge(P1A, SIGNAL, training)
    assert v["verdict"] == "inconclusive", v
    assert "nothing here to fix" in v["reason"]


def test_p1a_deep_reads_the_deep_heads_not_the_top() -> None:
    heads = run("heads", 32, [0.99, 1.0, 1.0], deep=[0.05, 0.1, 0.2])
    training = [GATE_OK, heads, run("plain", 32, [1.0, 1.0, 1.0])]
    assert judge(P1A_DEEP, SIGNAL, training)["verdict"] == "confirmed"
    assert judge(P1A, SIGNAL, training)["verdict"] == "refuted"


def test_judge_margin_scales_with_the_variance() -> None:
    # variance 4: a loss of 1.9 is below the threshold 2 and 1 below the baseline's 2.9
    gate = run("plain", 2, [0.1], variance=4.0)
    ok = [gate, run("heads", 32, [1.9], variance=4.0), run("plain", 32, [2.9], variance=4.0)]
    signal = [*sig("heads", 64, [0.1]), *sig("plain", 64, [1e-9])]
    assert judge(P1A, signal, ok)["verdict"] == "confirmed"
    close = [gate, run("heads", 32, [1.9], variance=4.0), run("plain", 32, [2.8], variance=4.0)]
    assert judge(P1A, signal, close)["verdict"] == "refuted"


@pytest.mark.parametrize("ratios", [[1e-7] * 3, [LOST] * 3, [0.0] * 3, [None] * 3])
def test_judge_refuted_when_the_variant_lost_its_signal(ratios: list[float | None]) -> None:
    signal = [*sig("heads", 64, ratios), *sig("plain", 64, [1e-9] * 3)]
    v = judge(P1A, signal, [GATE_OK, run("heads", 32, [0.1] * 3), run("plain", 32, [1.0] * 3)])
    assert v["verdict"] == "refuted", v


def test_judge_inconclusive_when_the_seeds_disagree_on_the_signal() -> None:
    signal = [*sig("heads", 64, [0.1, 1e-5, 0.2]), *sig("plain", 64, [1e-9] * 3)]
    v = judge(P1A, signal, [GATE_OK, run("heads", 32, [0.1] * 3), run("plain", 32, [1.0] * 3)])
    assert v["verdict"] == "inconclusive", v
    assert "seeds disagree" in v["reason"]


def test_a_baseline_that_keeps_its_signal_leaves_training_to_decide() -> None:
    signal = [*sig("heads", 64, [0.5] * 3, "tanh"), *sig("plain", 64, [0.4] * 3, "tanh")]
    gate = run("plain", 2, [0.01] * 3, "tanh")
    learns = [gate, run("heads", 32, [0.1] * 3, "tanh"), run("plain", 32, [1.0] * 3, "tanh")]
    v = judge(P1A_TANH, signal, learns)
    assert v["verdict"] == "confirmed" and "training alone decides" in v["reason"], v
    both = [gate, run("heads", 32, [0.1] * 3, "tanh"), run("plain", 32, [0.1] * 3, "tanh")]
    assert judge(P1A_TANH, signal, both)["verdict"] == "inconclusive"
    # a claim on the signal alone has nothing to show then
    p2_signal = [*sig("ugcnn", 64, [1.0] * 3, "tanh"), *sig("cnn", 64, [4.9] * 3, "tanh")]
    gradient_only = dict(P2) | {"metrics": ["gradient_ratio"]}
    v = judge(gradient_only, p2_signal, [])
    assert v["verdict"] == "inconclusive" and "did not lose its signal" in v["reason"], v


def test_a_claim_reads_its_own_activation() -> None:
    """P1a-tanh ignores sigmoid's records (where P1a would be confirmed)."""
    training = [GATE_OK, run("heads", 32, [0.1] * 3), run("plain", 32, [1.0] * 3)]
    assert judge(P1A, SIGNAL, training)["verdict"] == "confirmed"
    v = judge(P1A_TANH, SIGNAL, training)
    assert v["verdict"] == "inconclusive" and "under tanh" in v["reason"], v


def test_judge_inconclusive_without_training_of_both() -> None:
    v = judge(P1C, [*sig("residual", 64, [0.9]), *sig("plain", 64, [1e-9])],
              [GATE_OK, run("residual", 32, [0.1])])  # fmt: skip
    assert v["verdict"] == "inconclusive", v
    assert "not measured" in v["reason"]


# --------------------------------------------------------------------------- validate()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"depths": (0,)},
        {"depths": (2, 0)},
        {"depths": ()},
        {"variants": ("foo",)},
        {"variants": ()},
        {"activations": ("swish",)},
        {"activations": ()},
        {"train_depths": (5,)},
        {"steps": -1},
        {"finetune_steps": -1},
        {"seeds": 0},
        {"jobs": 0},
        {"eval_every": 0},
        {"lr_sgd": (0.0,)},
        {"lr_sgd": (0.1, -0.1)},
        {"lr_sgd": (math.nan,)},
        {"lr_sgd": ()},
        {"lr_adam": (math.inf,)},
        {"threshold": 0.0},
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_validate_refuses(kwargs: dict[str, Any]) -> None:
    cfg = TrainabilityConfig(**kwargs)
    with pytest.raises(TrainabilityError) as info:
        cfg.validate()
    assert str(info.value).startswith("--")  # names the CLI flag
    with pytest.raises(TrainabilityError):
        run_trainability(cfg)


def test_validate_accepts_the_defaults() -> None:
    TrainabilityConfig().validate()
    TrainabilityConfig(depths=(1,), variants=("cnn",), steps=0).validate()
    assert issubclass(TrainabilityError, ValueError)


def test_units_put_the_long_ones_first() -> None:
    cfg = TrainabilityConfig(depths=(2, 4, 8), train_depths=(2, 4), activations=("sigmoid",),
                             variants=("plain", "cnn"))  # fmt: skip
    got = units(cfg)
    assert got[:6] == [(v, a, d, "signal") for v, a in (("plain", "sigmoid"), ("cnn", "tanh"))
                       for d in (2, 4, 8)]  # fmt: skip
    assert got[6:] == [("plain", "sigmoid", 4, "train"), ("cnn", "tanh", 4, "train"),
                       ("plain", "sigmoid", 2, "train"), ("cnn", "tanh", 2, "train")]  # fmt: skip
    assert units(replace(cfg, steps=0)) == got[:6]


# --------------------------------------------------------------------------- a whole run


SMALL = TrainabilityConfig(depths=(2, 4), train_depths=(2, 4), steps=6, eval_every=3, seeds=2,
                           width=8, variants=("plain", "heads"), activations=("sigmoid", "tanh"),
                           finetune_steps=3)  # fmt: skip


@pytest.fixture(scope="module")
def small_run() -> dict[str, Any]:
    progress: list[tuple[str, int, int]] = []
    result = run_trainability(SMALL, on_progress=lambda *a: progress.append(a))
    return {"result": result, "summary": result.summary(), "progress": progress}


def test_run_records(small_run: dict[str, Any]) -> None:
    summary = small_run["summary"]
    assert summary["complete"] is True
    assert summary["experiment"] == "trainability"
    keys = [(r["variant"], r["activation"], r["depth"], r["seed"])
            for r in summary["gradient_signal"]]  # fmt: skip
    assert keys == [(v, a, d, s) for v in ("plain", "heads") for a in ("sigmoid", "tanh")
                    for d in (2, 4) for s in (0, 1)]  # fmt: skip
    assert [(r["variant"], r["activation"], r["depth"]) for r in summary["training"]] == [
        (v, a, d) for v in ("plain", "heads") for a in ("sigmoid", "tanh") for d in (2, 4)
    ]
    deepest = [r for r in summary["training"] if r["finetune"]]
    assert {(r["variant"], r["depth"]) for r in deepest} == {("plain", 4), ("heads", 4)}
    assert [g["activation"] for g in summary["gates"]] == ["sigmoid", "tanh"]
    progress = small_run["progress"]
    assert [total for *_, total in progress] == [16] * len(progress)
    assert sorted({done for _, done, _ in progress}) == list(range(17))


def test_run_claims_only_what_its_variants_allow(small_run: dict[str, Any]) -> None:
    claims = small_run["summary"]["claims"]
    # P1c needs residual, P2 the CNNs; the glorot and relu claims their activations
    assert [c["id"] for c in claims] == ["P1a", "P1a-deep", "P1a-tanh"]
    for c in claims:
        assert c["verdict"] in {"confirmed", "refuted", "inconclusive"}
        assert c["depth"] == 4 and c["reason"]


def test_workers_give_the_same_numbers() -> None:
    """Two worker processes and one: the same records (every unit is seeded)."""
    cfg = TrainabilityConfig(depths=(2, 3), train_depths=(3,), steps=4, eval_every=2, seeds=1,
                             width=8, variants=("plain", "ugcnn"),
                             activations=("sigmoid",))  # fmt: skip
    one = run_trainability(cfg).summary()
    two = run_trainability(replace(cfg, jobs=2)).summary()
    assert one["gradient_signal"] == two["gradient_signal"]
    assert one["training"] == two["training"]
    assert two["environment"]["jobs"] == 2


def test_run_leaves_torch_threads_as_it_found_them() -> None:
    torch.set_num_threads(2)
    try:
        summary = run_trainability(
            TrainabilityConfig(depths=(2,), steps=0, variants=("cnn", "ugcnn"), seeds=1)
        ).summary()
        assert summary["environment"]["threads"] == 1  # it ran with one
        assert torch.get_num_threads() == 2  # and put the caller's count back
    finally:
        torch.set_num_threads(1)


def test_run_without_training() -> None:
    cfg = TrainabilityConfig(depths=(2,), steps=0, variants=("cnn", "ugcnn"), seeds=1)
    summary = run_trainability(cfg).summary()
    assert summary["training"] == [] and summary["gates"] == []
    assert [c["id"] for c in summary["claims"]] == ["P2"]


def test_write_files(small_run: dict[str, Any], tmp_path: Path) -> None:
    summary = small_run["summary"]
    folder = tmp_path / "trainability"
    written = write_files(folder, summary)
    assert sorted(p.name for p in written) == sorted(TABLES + PLOTS)
    assert sorted(p.name for p in folder.iterdir()) == sorted(TABLES + PLOTS)  # no temp files
    for name in PLOTS:
        assert (folder / name).read_bytes()[:8] == PNG_MAGIC, name
    assert json.loads((folder / "summary.json").read_text(encoding="utf-8")) == json.loads(
        to_json(summary)
    )
    signal_csv = (folder / "gradient_signal.csv").read_text(encoding="utf-8").splitlines()
    assert signal_csv[0].split(",")[:4] == ["variant", "activation", "depth", "seed"]
    assert len(signal_csv) == 1 + 16
    training_csv = (folder / "training.csv").read_text(encoding="utf-8").splitlines()
    header = training_csv[0].split(",")
    for column in ("variant", "activation", "depth", "seed", "lr", "final_loss",
                   "deep_head_loss", "finetune_loss"):  # fmt: skip
        assert column in header
    assert "curve" not in header
    assert len(training_csv) == 1 + 8 * 2  # a row per record and seed
    table = (folder / "activations.csv").read_text(encoding="utf-8").splitlines()
    assert table[0] == "activation,variant,ratio_L2,ratio_L4,loss_L2,loss_L4"
    assert len(table) == 1 + 4


def test_table_rows_by_hand(small_run: dict[str, Any]) -> None:
    summary = small_run["summary"]
    rows = training_rows(summary["training"])
    r0 = summary["training"][0]
    assert rows[1]["final_loss"] == r0["final_loss"][1] and rows[1]["seed"] == 1
    (plain_sigmoid, *_) = activation_rows(summary)
    key = ("plain", "sigmoid", 4)
    ratios = [r["ratio"] for r in summary["gradient_signal"]
              if (r["variant"], r["activation"], r["depth"]) == key]  # fmt: skip
    assert plain_sigmoid["ratio_L4"] == pytest.approx(sum(ratios) / 2)  # two seeds: the mean
    assert plain_sigmoid["loss_L2"] == pytest.approx(
        sum(r0["final_loss"]) / 2 / r0["target_variance"]
    )


def test_write_files_without_plots(small_run: dict[str, Any], tmp_path: Path) -> None:
    written = write_files(tmp_path, small_run["summary"], plots=False)
    assert sorted(p.name for p in written) == sorted(TABLES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(TABLES)


@pytest.mark.parametrize("variant", ["plain", "heads", "residual", "cnn", "rescnn", "ugcnn"])
def test_a_run_is_reproducible_from_its_seed(variant: str) -> None:
    cfg = TrainabilityConfig(depths=(3,), steps=6, eval_every=3, width=8, in_dim=4, seeds=1)
    assert gradient_signal(variant, 3, cfg) == gradient_signal(variant, 3, cfg)
    assert train(variant, 3, "adam", cfg) == train(variant, 3, "adam", cfg)
    other = replace(cfg, seed=1)
    assert gradient_signal(variant, 3, cfg)["ratio"] != gradient_signal(variant, 3, other)["ratio"]


def test_write_files_leaves_no_stale_plot_and_headers_on_empty_tables(tmp_path: Path) -> None:
    cfg = TrainabilityConfig(depths=(2, 3), train_depths=(2, 3), steps=2, eval_every=1,
                             variants=("plain",), seeds=1, activations=("sigmoid",))  # fmt: skip
    folder = tmp_path / "trainability"
    write_files(folder, run_trainability(cfg).summary())
    assert (folder / "loss_curves.png").is_file() and (folder / "profile.png").is_file()
    written = write_files(folder, run_trainability(replace(cfg, steps=0)).summary())
    # the training plots of the earlier run are gone; the gradient plots are new
    assert not (folder / "loss_curves.png").exists() and not (folder / "profile.png").exists()
    assert (folder / "grad_ratio.png") in written
    header = (folder / "training.csv").read_text(encoding="utf-8").splitlines()
    assert header[0].startswith("variant,activation,depth,optimizer,seed")
    assert len(header) == 1  # no rows, but a header pandas can read
