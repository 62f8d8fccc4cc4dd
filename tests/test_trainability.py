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
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from trainbench.measure import count_point
from trainbench.models import ugcnn
from trainbench.models.residual_mlp import PlainMLP, ResidualMLP
from trainbench.models.ugcnn import CNNStack, convolve, make_images
from trainbench.results import to_json
from trainbench.trainability import (
    KEPT,
    LOST,
    MARGIN,
    VARIANTS,
    TrainabilityConfig,
    TrainabilityError,
    build,
    claim_records,
    gradient_signal,
    judge,
    layer_grad_norms,
    run_trainability,
    train,
    training_loss,
)
from trainbench.trainability_report import write_files

F64 = torch.float64
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTS = ("grad_norms.png", "grad_ratio.png", "loss_curves.png", "final_loss.png")
TABLES = ("summary.json", "gradient_signal.csv", "training.csv")
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
    model = task.model
    assert isinstance(model, PlainMLP)
    x, y = task.held_out
    assert x.dtype == F64 and x.shape == (512, 2)
    g1, g2 = hand_grads_plain2(model, x, y)
    assert g1.shape == (3, 2) and g2.shape == (3, 3)
    want = [float(torch.linalg.norm(g1)), float(torch.linalg.norm(g2))]
    got = layer_grad_norms(model, training_loss(model, x, y))
    assert got == pytest.approx(want, rel=1e-10, abs=1e-10)

    signal = gradient_signal("plain", 2, cfg)  # builds the same seeded model
    assert signal["variant"] == "plain" and signal["depth"] == 2
    assert signal["layer_grad_norms"] == pytest.approx(want, rel=1e-10, abs=1e-10)
    assert signal["first_layer_grad_norm"] == signal["layer_grad_norms"][0]
    assert signal["last_layer_grad_norm"] == signal["layer_grad_norms"][-1]
    assert signal["ratio"] == signal["first_layer_grad_norm"] / signal["last_layer_grad_norm"]
    assert signal["ratio"] == pytest.approx(want[0] / want[1], rel=1e-10)


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


# --------------------------------------------------------------- signal against depth


@pytest.fixture(scope="module")
def signals() -> dict[tuple[str, int], dict[str, Any]]:
    cfg = TrainabilityConfig()
    return {(v, d): gradient_signal(v, d, cfg) for v in VARIANTS for d in (2, 32)}


def test_signal_records(signals: dict[tuple[str, int], dict[str, Any]]) -> None:
    for (variant, depth), r in signals.items():
        assert (r["variant"], r["depth"]) == (variant, depth)
        assert len(r["layer_grad_norms"]) == depth
        assert all(n >= 0 and math.isfinite(n) for n in r["layer_grad_norms"])
        assert r["ratio"] == r["first_layer_grad_norm"] / r["last_layer_grad_norm"]


def test_signal_is_kept_at_depth_2(signals: dict[tuple[str, int], dict[str, Any]]) -> None:
    for v in VARIANTS:
        assert signals[(v, 2)]["ratio"] > KEPT, v


def test_signal_at_depth_32(signals: dict[tuple[str, int], dict[str, Any]]) -> None:
    ratio = {v: signals[(v, 32)]["ratio"] for v in VARIANTS}
    assert ratio["plain"] < LOST, ratio
    assert ratio["cnn"] < LOST, ratio
    for v in ("heads", "residual", "ugcnn"):
        assert ratio[v] > KEPT, (v, ratio)
    # the vanishing signal is a small number, not an underflow to zero (float64)
    assert signals[("plain", 32)]["first_layer_grad_norm"] > 0
    assert signals[("cnn", 32)]["first_layer_grad_norm"] > 0


def test_p2_is_confirmed_on_the_signal(signals: dict[tuple[str, int], dict[str, Any]]) -> None:
    verdict = judge(CLAIM_BY_ID["P2"], list(signals.values()), [])
    assert verdict["verdict"] == "confirmed", verdict
    assert verdict["depth"] == 32


# --------------------------------------------------------------------------- train()


@pytest.mark.parametrize("variant", ["plain", "heads", "ugcnn"])
def test_train_curve(variant: str) -> None:
    cfg = TrainabilityConfig(steps=20, eval_every=10)
    r = train(variant, 3, "sgd", cfg)
    assert (r["variant"], r["depth"], r["optimizer"]) == (variant, 3, "sgd")
    assert [c["step"] for c in r["curve"]] == [0, 10, 20]
    assert r["diverged"] is False
    assert r["final_loss"] == r["curve"][-1]["loss"]
    assert r["initial_loss"] == r["curve"][0]["loss"]
    assert r["threshold"] == cfg.threshold * r["target_variance"]
    reached = r["steps_to_threshold"]
    losses = {c["step"]: c["loss"] for c in r["curve"]}
    if reached is None:
        assert all(v > r["threshold"] for v in losses.values())
    else:
        assert reached in losses and losses[reached] <= r["threshold"]
        assert all(losses[s] > r["threshold"] for s in losses if s < reached)
    if variant == "plain":
        assert r["best_head_loss"] is None
    else:
        assert r["best_head_loss"] is not None and math.isfinite(r["best_head_loss"])


def test_train_last_step_is_evaluated() -> None:
    r = train("plain", 2, "adam", TrainabilityConfig(steps=7, eval_every=3))
    assert [c["step"] for c in r["curve"]] == [0, 3, 6, 7]
    assert r["final_loss"] == r["curve"][-1]["loss"]


def test_train_no_steps() -> None:
    r = train("residual", 2, "sgd", TrainabilityConfig(steps=0))
    assert [c["step"] for c in r["curve"]] == [0]
    assert r["final_loss"] == r["initial_loss"]


@pytest.mark.parametrize("variant", ["plain", "cnn"])
def test_train_absurd_lr_diverges(variant: str) -> None:
    r = train(variant, 3, "sgd", TrainabilityConfig(steps=20, eval_every=10, lr_sgd=1e6, clip=0))
    assert r["diverged"] is True
    assert r["final_loss"] is None  # a diverged run reports no final loss
    assert r["best_head_loss"] is None
    steps = [c["step"] for c in r["curve"]]
    assert steps[0] == 0 and set(steps) <= {0, 10, 20}
    assert r["steps_to_threshold"] is None  # never "reached" by a run that diverged
    # the record is JSON-safe: no NaN or Infinity in the document
    json.loads(to_json(r), parse_constant=lambda c: pytest.fail(f"non-finite {c} in JSON"))


# --------------------------------------------------------------------------- judge()


def sig(variant: str, depth: int, ratio: float | None) -> dict[str, Any]:
    return {"variant": variant, "depth": depth, "ratio": ratio}


def run(variant: str, depth: int, loss: float | None, optimizer: str = "sgd",
        variance: float = 1.0) -> dict[str, Any]:  # fmt: skip
    return {"variant": variant, "depth": depth, "optimizer": optimizer, "final_loss": loss,
            "target_variance": variance, "best_head_loss": None}  # fmt: skip


# judged on the top prediction's loss (P1a itself is judged on the best head's)
P1A = CLAIM_BY_ID["P1a-top"]
P1C = CLAIM_BY_ID["P1c"]
P2 = CLAIM_BY_ID["P2"]
# at depth 2 nothing has been lost: the verdict is taken at the deepest depth only
SHALLOW = [sig("heads", 2, 0.5), sig("plain", 2, 0.5), sig("residual", 2, 0.5)]


def test_claims_table() -> None:
    assert [c["id"] for c in CLAIMS] == ["P1a", "P1a-top", "P1c", "P2"]
    assert [(c["variant"], c["baseline"]) for c in CLAIMS] == [
        ("heads", "plain"), ("heads", "plain"), ("residual", "plain"), ("ugcnn", "cnn")
    ]  # fmt: skip
    assert [c["metrics"][1:] for c in CLAIMS] == [
        ["best_head_loss"], ["final_loss"], ["final_loss"], []
    ]  # fmt: skip
    assert [c["expect"] for c in CLAIMS] == ["confirmed", "refuted", "confirmed", "confirmed"]
    assert LOST < KEPT and 0 < MARGIN < 1


def test_judge_on_the_best_head() -> None:
    """P1a reads the best head's loss: a heads net whose top prediction learns nothing
    but whose lower heads do is confirmed for P1a and refuted for P1a-top."""
    signal = [*SHALLOW, sig("heads", 32, 0.1), sig("plain", 32, 1e-9)]
    heads = run("heads", 32, 0.98) | {"best_head_loss": 0.05}
    training = [heads, run("plain", 32, 0.99)]
    best = judge(CLAIM_BY_ID["P1a"], signal, training)
    assert best["verdict"] == "confirmed", best
    assert (best["final_loss"], best["baseline_final_loss"]) == (0.05, 0.99)
    assert best["loss_metric"] == "best_head_loss"
    top = judge(CLAIM_BY_ID["P1a-top"], signal, training)
    assert top["verdict"] == "refuted", top
    assert "top prediction did not beat" in top["reason"]
    # a heads net none of whose heads learns: P1a refuted too
    flat = [heads | {"best_head_loss": 0.97}, run("plain", 32, 0.99)]
    assert judge(CLAIM_BY_ID["P1a"], signal, flat)["verdict"] == "refuted"


def test_judge_confirmed() -> None:
    signal = [*SHALLOW, sig("heads", 32, 0.1), sig("plain", 32, 1e-9)]
    training = [run("heads", 32, 0.1), run("plain", 32, 0.9), run("heads", 32, 5.0, "adam")]
    v = judge(P1A, signal, training)
    assert v["verdict"] == "confirmed", v
    assert (v["id"], v["depth"], v["ratio"], v["baseline_ratio"]) == ("P1a-top", 32, 0.1, 1e-9)
    assert (v["final_loss"], v["baseline_final_loss"]) == (0.1, 0.9)  # SGD's, not Adam's
    assert v["is_control"] is False and v["reason"]


def test_judge_confirmed_when_the_baseline_diverged() -> None:
    signal = [sig("residual", 8, 0.9), sig("plain", 8, 1e-12)]
    v = judge(P1C, signal, [run("residual", 8, 0.2), run("plain", 8, None)])
    assert v["verdict"] == "confirmed", v
    assert v["baseline_final_loss"] is None


@pytest.mark.parametrize("ratio", [1e-7, LOST, 0.0, None])
def test_judge_refuted_when_the_variant_lost_its_signal(ratio: float | None) -> None:
    signal = [*SHALLOW, sig("heads", 32, ratio), sig("plain", 32, 1e-9)]
    training = [run("heads", 32, 0.1), run("plain", 32, 0.9)]
    v = judge(P1A, signal, training)
    assert v["verdict"] == "refuted", v
    assert v["reason"] and "heads" in v["reason"]


def test_judge_weak_signal_is_inconclusive_unless_below_the_baseline() -> None:
    training = [run("heads", 32, 0.1), run("plain", 32, 0.9)]
    v = judge(P1A, [sig("heads", 32, 1e-4), sig("plain", 32, 1e-9)], training)
    assert v["verdict"] == "inconclusive", v
    v = judge(P1A, [sig("heads", 32, 1e-4), sig("plain", 32, 1e-2)], training)
    assert v["verdict"] == "refuted", v


def test_judge_inconclusive_when_the_baseline_kept_its_signal() -> None:
    signal = [sig("heads", 32, 0.1), sig("plain", 32, 1e-3)]
    v = judge(P1A, signal, [run("heads", 32, 0.1), run("plain", 32, 0.9)])
    assert v["verdict"] == "inconclusive", v
    assert v["reason"] and "plain" in v["reason"]


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        (0.8, 2.0),  # below the baseline, but not below predicting the mean (0.75 of variance)
        (0.5, 0.6),  # below the variance, but not by the margin below the baseline
        (None, 0.9),  # diverged
    ],
)
def test_judge_refuted_on_training(mine: float | None, theirs: float) -> None:
    signal = [sig("heads", 32, 0.1), sig("plain", 32, 1e-9)]
    v = judge(P1A, signal, [run("heads", 32, mine), run("plain", 32, theirs)])
    assert v["verdict"] == "refuted", v
    assert v["reason"] and "heads" in v["reason"]


def test_judge_margin_scales_with_the_variance() -> None:
    signal = [sig("heads", 32, 0.1), sig("plain", 32, 1e-9)]
    # variance 4: a loss of 2.5 is below 0.75·4 = 3 and 1 below the baseline's 3.5
    v = judge(P1A, signal, [run("heads", 32, 2.5, variance=4.0), run("plain", 32, 3.5)])
    assert v["verdict"] == "confirmed", v
    v = judge(P1A, signal, [run("heads", 32, 2.5, variance=4.0), run("plain", 32, 3.4)])
    assert v["verdict"] == "refuted", v


def test_judge_inconclusive_without_sgd_training() -> None:
    signal = [sig("heads", 32, 0.1), sig("plain", 32, 1e-9)]
    v = judge(P1A, signal, [run("heads", 32, 0.1, "adam"), run("plain", 32, 0.9, "adam")])
    assert v["verdict"] == "inconclusive", v
    assert v["reason"]


def test_judge_inconclusive_without_the_variant_at_the_deepest_depth() -> None:
    v = judge(P1A, [sig("heads", 8, 0.1), sig("plain", 16, 1e-9)], [])
    assert v["verdict"] == "inconclusive", v
    v = judge(P1A, [sig("residual", 8, 0.1)], [])
    assert v["verdict"] == "inconclusive", v


@pytest.mark.parametrize("training", [[], [run("ugcnn", 32, 9.0), run("cnn", 32, 0.01)]])
def test_judge_p2_ignores_training(training: list[dict[str, Any]]) -> None:
    signal = [sig("ugcnn", 2, 1.0), sig("cnn", 2, 0.02), sig("ugcnn", 32, 1.2),
              sig("cnn", 32, 1e-22)]  # fmt: skip
    v = judge(P2, signal, training)
    assert v["verdict"] == "confirmed", v
    assert "final_loss" not in v
    v = judge(P2, [sig("ugcnn", 32, 1e-8), sig("cnn", 32, 1e-22)], training)
    assert v["verdict"] == "refuted", v
    v = judge(P2, [sig("ugcnn", 32, 1.0), sig("cnn", 32, 1e-2)], training)
    assert v["verdict"] == "inconclusive", v


# --------------------------------------------------------------------------- validate()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"depths": (0,)},
        {"depths": (2, 0)},
        {"depths": (-1,)},
        {"depths": ()},
        {"variants": ("foo",)},
        {"variants": ("plain", "bogus")},
        {"variants": ()},
        {"steps": -1},
        {"eval_every": 0},
        {"lr_sgd": 0.0},
        {"lr_sgd": -0.1},
        {"lr_sgd": math.nan},
        {"lr_sgd": math.inf},
        {"lr_adam": 0.0},
        {"lr_adam": math.nan},
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


# --------------------------------------------------------------------------- a whole run


@pytest.fixture(scope="module")
def small_run() -> dict[str, Any]:
    cfg = TrainabilityConfig(depths=(2, 4), steps=5, variants=("plain", "heads"))
    progress: list[tuple[str, int, int]] = []
    result = run_trainability(cfg, on_progress=lambda *a: progress.append(a))
    return {"result": result, "summary": result.summary(), "progress": progress}


def test_run_records(small_run: dict[str, Any]) -> None:
    summary = small_run["summary"]
    assert summary["complete"] is True
    assert summary["experiment"] == "trainability"
    assert summary["config"]["depths"] == (2, 4)
    assert sorted((r["variant"], r["depth"]) for r in summary["gradient_signal"]) == [
        ("heads", 2), ("heads", 4), ("plain", 2), ("plain", 4)
    ]  # fmt: skip
    assert sorted((r["variant"], r["depth"], r["optimizer"]) for r in summary["training"]) == [
        (v, d, o) for v in ("heads", "plain") for d in (2, 4) for o in ("adam", "sgd")
    ]
    for r in summary["training"]:
        assert [c["step"] for c in r["curve"]] == [0, 5]
    # 4 gradient signals and 8 training runs, reported before each starts
    progress = small_run["progress"]
    assert [(done, total) for _, done, total in progress] == [(i, 12) for i in range(12)]


def test_run_claims_only_what_its_variants_allow(small_run: dict[str, Any]) -> None:
    claims = small_run["summary"]["claims"]
    # P1c needs residual, P2 the CNNs
    assert [c["id"] for c in claims] == ["P1a", "P1a-top"]
    for c in claims:
        assert c["verdict"] in {"confirmed", "refuted", "inconclusive"}
        assert c["depth"] == 4 and c["reason"]


def test_run_leaves_torch_threads_as_it_found_them() -> None:
    torch.set_num_threads(2)
    try:
        summary = run_trainability(
            TrainabilityConfig(depths=(2,), steps=0, variants=("cnn", "ugcnn"))
        ).summary()
        assert summary["environment"]["threads"] == 1  # it ran with one
        assert torch.get_num_threads() == 2  # and put the caller's count back
    finally:
        torch.set_num_threads(1)


def test_run_without_training() -> None:
    cfg = TrainabilityConfig(depths=(2,), steps=0, variants=("cnn", "ugcnn"))
    summary = run_trainability(cfg).summary()
    assert summary["training"] == []
    assert [c["id"] for c in summary["claims"]] == ["P2"]


def test_write_files(small_run: dict[str, Any], tmp_path: Path) -> None:
    summary = small_run["summary"]
    folder = tmp_path / "trainability"
    written = write_files(folder, summary)
    assert sorted(p.name for p in written) == sorted(TABLES + PLOTS)
    assert sorted(p.name for p in folder.iterdir()) == sorted(TABLES + PLOTS)  # no temp files
    for name in TABLES + PLOTS:
        assert (folder / name).stat().st_size > 0, name
    for name in PLOTS:
        assert (folder / name).read_bytes()[:8] == PNG_MAGIC, name
    assert json.loads((folder / "summary.json").read_text(encoding="utf-8")) == json.loads(
        to_json(summary)
    )
    signal_csv = (folder / "gradient_signal.csv").read_text(encoding="utf-8").splitlines()
    assert signal_csv[0].split(",") == [
        "variant", "depth", "first_layer_grad_norm", "last_layer_grad_norm", "ratio"
    ]  # fmt: skip
    assert len(signal_csv) == 1 + 4
    training_csv = (folder / "training.csv").read_text(encoding="utf-8").splitlines()
    header = training_csv[0].split(",")
    for column in ("variant", "depth", "optimizer", "final_loss", "steps_to_threshold"):
        assert column in header
    assert "curve" not in header
    assert len(training_csv) == 1 + 8


def test_write_files_without_plots(small_run: dict[str, Any], tmp_path: Path) -> None:
    written = write_files(tmp_path, small_run["summary"], plots=False)
    assert sorted(p.name for p in written) == sorted(TABLES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(TABLES)


@pytest.mark.parametrize("variant", ["plain", "heads", "residual", "cnn", "ugcnn"])
def test_a_run_is_reproducible_from_its_seed(variant: str) -> None:
    cfg = TrainabilityConfig(depths=(3,), steps=6, eval_every=3, width=8, in_dim=4)
    assert gradient_signal(variant, 3, cfg) == gradient_signal(variant, 3, cfg)
    assert train(variant, 3, "adam", cfg) == train(variant, 3, "adam", cfg)
    other = TrainabilityConfig(depths=(3,), steps=6, eval_every=3, width=8, in_dim=4, seed=1)
    assert gradient_signal(variant, 3, cfg)["ratio"] != gradient_signal(variant, 3, other)["ratio"]


def test_write_files_leaves_no_stale_plot_and_headers_on_empty_tables(tmp_path: Path) -> None:
    cfg = TrainabilityConfig(depths=(2, 3), steps=2, eval_every=1, variants=("plain",))
    folder = tmp_path / "trainability"
    write_files(folder, run_trainability(cfg).summary())
    assert (folder / "loss_curves.png").is_file() and (folder / "final_loss.png").is_file()
    untrained = TrainabilityConfig(depths=(2, 3), steps=0, variants=("plain",))
    written = write_files(folder, run_trainability(untrained).summary())
    # the training plots of the earlier run are gone; the gradient plots are new
    assert not (folder / "loss_curves.png").exists() and not (folder / "final_loss.png").exists()
    assert (folder / "grad_ratio.png") in written
    header = (folder / "training.csv").read_text(encoding="utf-8").splitlines()
    assert header[0].startswith("variant,depth,optimizer,final_loss")
    assert len(header) == 1  # no rows, but a header pandas can read
