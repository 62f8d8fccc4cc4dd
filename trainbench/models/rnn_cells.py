"""The recurrent cells of Problems 2, 3, 4 and 5 that :mod:`trainbench.models.rnn_lm` runs.

Each cell is one step h[t-1], x[t] -> h[t]; its index letters are the language model's
(the glossary in :mod:`trainbench.models.rnn_lm`).

The cells (``--cell``), each an explicit loop over t:

* ``ugrnn``           Problem 4's cell (the template of Problems 2, 3 and 5): update
                      gate G, update R.
* ``ugrnn2``          Problem 3: a second gate G^R mixes the inputs to tanh.
* ``gru``             Problem 5: Olah's / Cho et al.'s GRU (reset gate before W^{h,R}).
* ``gru-torch``       the GRU of ``torch.nn.GRUCell`` (reset gate after W^{h,R}).
* ``gru-torch-fast``  the same function as ``gru-torch``: input products for all t
                      in one matrix product, the three recurrent products in one.
* ``torch-gru``       the same LM driven by the fused ``torch.nn.GRU`` module.
* ``none``            no recurrence: h[t] from x[t] alone (work O(T), span O(1)).

Beyond the problem: the UGRNN with its gate and update from x[t] alone, so that h[t-1]
enters h[t] linearly (a first-order linear recurrence), in two forms of one function:

* ``ugrnn-x``         the explicit time loop (graph depth O(T)).
* ``ugrnn-x-scan``    a Hillis–Steele prefix scan over t (graph depth O(log T), work
                      O(T log T)).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainbench.models.mlp_heads import scaled_weight


def _bias(size: int) -> nn.Parameter:
    return nn.Parameter(torch.zeros(size))


class Cell(nn.Module):
    """One step h[t-1], x[t] -> h[t]; ``sequence`` runs the explicit time loop."""

    def step(self, h: Tensor, x: Tensor) -> Tensor:
        raise NotImplementedError

    def sequence(self, h0: Tensor, x: Tensor) -> list[Tensor]:
        """h0[b,I], x[b,t,K] for t = 1..n -> [h[1], ..., h[n]]."""
        hs = []
        h = h0
        # unbind: one backward node hands every step its slice of dL/dx (x[:, t]
        # would add a full-size zero gradient per step: O(T²) work).
        for x_t in x.unbind(1):
            h = self.step(h, x_t)
            hs.append(h)
        return hs


class UGRNN(Cell):
    """Problems 2, 3 and 5: the update-gate RNN."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        H = hidden
        self.W_hR, self.W_xR, self.B_R = scaled_weight(H, H), scaled_weight(H, H), _bias(H)
        self.W_hG, self.W_xG, self.B_G = scaled_weight(H, H), scaled_weight(H, H), _bias(H)

    def step(self, h: Tensor, x: Tensor) -> Tensor:
        # R[b,t,j] = tanh(W^{h,R}[j,I] h[b,t-1,I] + W^{x,R}[j,K] x[b,t,K] - B^R[j])
        R = torch.tanh(
            torch.einsum("jI,bI->bj", self.W_hR, h)
            + torch.einsum("jK,bK->bj", self.W_xR, x)
            - self.B_R
        )
        # G[b,t,j] = σ(W^{h,G}[j,I] h[b,t-1,I] + W^{x,G}[j,K] x[b,t,K] - B^G[j])
        G = torch.sigmoid(
            torch.einsum("jI,bI->bj", self.W_hG, h)
            + torch.einsum("jK,bK->bj", self.W_xG, x)
            - self.B_G
        )
        # h[b,t,j] = G[b,t,j] h[b,t-1,j] + (1 - G[b,t,j]) R[b,t,j]
        return G * h + (1 - G) * R


class UGRNN2(Cell):
    """Problem 3: a second gate G^R makes the input to tanh a convex combination."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        H = hidden
        self.W_hR, self.B_hR = scaled_weight(H, H), _bias(H)
        self.W_xR, self.B_xR = scaled_weight(H, H), _bias(H)
        self.W_hGR, self.W_xGR, self.B_GR = scaled_weight(H, H), scaled_weight(H, H), _bias(H)
        self.W_hG, self.W_xG, self.B_G = scaled_weight(H, H), scaled_weight(H, H), _bias(H)

    def step(self, h: Tensor, x: Tensor) -> Tensor:
        # G^R[b,t,j] = σ(W^{h,GR}[j,I] h[b,t-1,I] + W^{x,GR}[j,K] x[b,t,K] - B^{GR}[j])
        G_R = torch.sigmoid(
            torch.einsum("jI,bI->bj", self.W_hGR, h)
            + torch.einsum("jK,bK->bj", self.W_xGR, x)
            - self.B_GR
        )
        # R[b,t,j] = tanh(G^R[b,t,j] (W^{h,R}[j,I] h[b,t-1,I] - B^{h,R}[j])
        #                 + (1 - G^R[b,t,j]) (W^{x,R}[j,K] x[b,t,K] - B^{x,R}[j]))
        R = torch.tanh(
            G_R * (torch.einsum("jI,bI->bj", self.W_hR, h) - self.B_hR)
            + (1 - G_R) * (torch.einsum("jK,bK->bj", self.W_xR, x) - self.B_xR)
        )
        # G^h[b,t,j] = σ(W^{h,G}[j,I] h[b,t-1,I] + W^{x,G}[j,K] x[b,t,K] - B^G[j])
        G_h = torch.sigmoid(
            torch.einsum("jI,bI->bj", self.W_hG, h)
            + torch.einsum("jK,bK->bj", self.W_xG, x)
            - self.B_G
        )
        # h[b,t,j] = G^h[b,t,j] h[b,t-1,j] + (1 - G^h[b,t,j]) R[b,t,j]
        return G_h * h + (1 - G_h) * R


class GRU(Cell):
    """Problem 5: the GRU of Olah's diagram (Cho et al. 2014), in the UGRNN's letters.

    G^h is the update gate (Olah's z_t = 1 - G^h), G^R the reset gate, which
    multiplies h[t-1] *before* the recurrent matrix W^{h,R}.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        H = hidden
        self.W_hR, self.W_xR, self.B_R = scaled_weight(H, H), scaled_weight(H, H), _bias(H)
        self.W_hGR, self.W_xGR, self.B_GR = scaled_weight(H, H), scaled_weight(H, H), _bias(H)
        self.W_hG, self.W_xG, self.B_G = scaled_weight(H, H), scaled_weight(H, H), _bias(H)

    def step(self, h: Tensor, x: Tensor) -> Tensor:
        # G^R[b,t,i] = σ(W^{h,GR}[i,I] h[b,t-1,I] + W^{x,GR}[i,K] x[b,t,K] - B^{GR}[i])
        G_R = torch.sigmoid(
            torch.einsum("iI,bI->bi", self.W_hGR, h)
            + torch.einsum("iK,bK->bi", self.W_xGR, x)
            - self.B_GR
        )
        # G^h[b,t,j] = σ(W^{h,G}[j,I] h[b,t-1,I] + W^{x,G}[j,K] x[b,t,K] - B^G[j])
        G_h = torch.sigmoid(
            torch.einsum("jI,bI->bj", self.W_hG, h)
            + torch.einsum("jK,bK->bj", self.W_xG, x)
            - self.B_G
        )
        # R[b,t,j] = tanh(W^{h,R}[j,I] (G^R[b,t,I] h[b,t-1,I]) + W^{x,R}[j,K] x[b,t,K] - B^R[j])
        R = torch.tanh(
            torch.einsum("jI,bI->bj", self.W_hR, G_R * h)
            + torch.einsum("jK,bK->bj", self.W_xR, x)
            - self.B_R
        )
        # h[b,t,j] = G^h[b,t,j] h[b,t-1,j] + (1 - G^h[b,t,j]) R[b,t,j]
        return G_h * h + (1 - G_h) * R


class GRUTorch(Cell):
    """The GRU of ``torch.nn.GRUCell`` and cuDNN: the reset gate multiplies W^{h,R} h - B^{h,R}.

    With torch's r, z, n: G^R = r, G^h = z, R = n, and each bias B is minus
    torch's (the input and hidden biases of a gate add up: B^G = -(b_iz + b_hz)).
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        H = hidden
        self.W_hR, self.B_hR = scaled_weight(H, H), _bias(H)
        self.W_xR, self.B_xR = scaled_weight(H, H), _bias(H)
        self.W_hGR, self.W_xGR, self.B_GR = scaled_weight(H, H), scaled_weight(H, H), _bias(H)
        self.W_hG, self.W_xG, self.B_G = scaled_weight(H, H), scaled_weight(H, H), _bias(H)

    def step(self, h: Tensor, x: Tensor) -> Tensor:
        # G^R[b,t,j] = σ(W^{h,GR}[j,I] h[b,t-1,I] + W^{x,GR}[j,K] x[b,t,K] - B^{GR}[j])
        G_R = torch.sigmoid(
            torch.einsum("jI,bI->bj", self.W_hGR, h)
            + torch.einsum("jK,bK->bj", self.W_xGR, x)
            - self.B_GR
        )
        # G^h[b,t,j] = σ(W^{h,G}[j,I] h[b,t-1,I] + W^{x,G}[j,K] x[b,t,K] - B^G[j])
        G_h = torch.sigmoid(
            torch.einsum("jI,bI->bj", self.W_hG, h)
            + torch.einsum("jK,bK->bj", self.W_xG, x)
            - self.B_G
        )
        # R[b,t,j] = tanh(W^{x,R}[j,K] x[b,t,K] - B^{x,R}[j]
        #                 + G^R[b,t,j] (W^{h,R}[j,I] h[b,t-1,I] - B^{h,R}[j]))
        R = torch.tanh(
            torch.einsum("jK,bK->bj", self.W_xR, x)
            - self.B_xR
            + G_R * (torch.einsum("jI,bI->bj", self.W_hR, h) - self.B_hR)
        )
        # h[b,t,j] = G^h[b,t,j] h[b,t-1,j] + (1 - G^h[b,t,j]) R[b,t,j]
        return G_h * h + (1 - G_h) * R

    @torch.no_grad()
    def copy_from(self, cell: nn.GRUCell) -> GRUTorch:
        """Take the weights of a ``torch.nn.GRUCell`` (rows r, z, n; biases negated)."""
        H = self.W_hR.shape[0]
        if cell.hidden_size != H or cell.input_size != H or cell.bias is False:
            raise ValueError("need a GRUCell with bias and input and hidden size equal to H")
        w_ih, w_hh = cell.weight_ih.split(H), cell.weight_hh.split(H)
        b_ih, b_hh = cell.bias_ih.split(H), cell.bias_hh.split(H)
        self.W_xGR.copy_(w_ih[0]), self.W_hGR.copy_(w_hh[0])
        self.B_GR.copy_(-(b_ih[0] + b_hh[0]))
        self.W_xG.copy_(w_ih[1]), self.W_hG.copy_(w_hh[1])
        self.B_G.copy_(-(b_ih[1] + b_hh[1]))
        self.W_xR.copy_(w_ih[2]), self.B_xR.copy_(-b_ih[2])
        self.W_hR.copy_(w_hh[2]), self.B_hR.copy_(-b_hh[2])
        return self


class GRUTorchFast(GRUTorch):
    """``gru-torch``'s equations with fewer, larger products (what ``torch.nn.GRU`` does).

    The input products W^{x,·}[j,K] x[b,t,K] - B^{x,·}[j] of all three gates are one
    matrix product over every t at once, before the loop (they do not depend on
    h); inside the loop the three recurrent products are one product with the
    stacked matrix [W^{h,GR}; W^{h,G}; W^{h,R}]. Same FLOPs, same function.
    """

    def sequence(self, h0: Tensor, x: Tensor) -> list[Tensor]:
        if x.shape[1] == 0:
            return []
        H = self.W_hR.shape[0]
        W_x = torch.cat([self.W_xGR, self.W_xG, self.W_xR])  # [3H, K]
        W_h = torch.cat([self.W_hGR, self.W_hG, self.W_hR])  # [3H, I]
        B_x = torch.cat([self.B_GR, self.B_G, self.B_xR])
        B_h = torch.cat([torch.zeros_like(self.B_GR), torch.zeros_like(self.B_G), self.B_hR])
        # A[b,t,g] = W^x[g,K] x[b,t,K] - B^x[g], every t in one product
        b, n, k = x.shape
        A = torch.addmm(B_x, x.reshape(b * n, k), W_x.t(), beta=-1).view(b, n, 3 * H)
        hs = []
        h = h0
        for A_t in A.unbind(1):
            # C[b,g] = W^h[g,I] h[b,t-1,I] - B^h[g]
            C = torch.addmm(B_h, h, W_h.t(), beta=-1)
            G_R, G_h = torch.sigmoid(A_t[:, : 2 * H] + C[:, : 2 * H]).chunk(2, dim=1)
            R = torch.tanh(A_t[:, 2 * H :] + G_R * C[:, 2 * H :])
            # h = G^h h + (1 - G^h) R, written as R + G^h (h - R)
            h = R + G_h * (h - R)
            hs.append(h)
        return hs


class TorchGRU(Cell):
    """The fused ``torch.nn.GRU`` module over the whole sentence (a speed reference)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(hidden, hidden, batch_first=True)

    def step(self, h: Tensor, x: Tensor) -> Tensor:
        out, _ = self.gru(x.unsqueeze(1), h.unsqueeze(0).contiguous())
        return out[:, 0]

    def sequence(self, h0: Tensor, x: Tensor) -> list[Tensor]:
        if x.shape[1] == 0:
            return []
        out, _ = self.gru(x, h0.unsqueeze(0).contiguous())
        return list(out.unbind(1))


class NoRecurrence(Cell):
    """The parallel contrast: h[t] from x[t] alone, by one layer; no path from h[t-1]."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        H = hidden
        self.W_xR, self.B_R = scaled_weight(H, H), _bias(H)

    def update(self, x: Tensor) -> Tensor:
        """x[b,K] -> tanh(W^{x,R}[j,K] x[b,t,K] - B^R[j]), from x[t] alone."""
        return torch.tanh(torch.einsum("jK,bK->bj", self.W_xR, x) - self.B_R)

    def step(self, h: Tensor, x: Tensor) -> Tensor:
        # h[b,t,j] = tanh(W^{x,R}[j,K] x[b,t,K] - B^R[j])
        return self.update(x)


class UGRNNX(NoRecurrence):
    """Beyond Problem 4: Problem 4's UGRNN with the gate and the update from x[t] alone.

    The one change from the UGRNN: W^{h,R} and W^{h,G} are gone, so h[t-1] enters
    only the last line, linearly: h[t] = a[t] ⊙ h[t-1] + v[t]. Pairs (a, v) compose
    associatively, which ``UGRNNXScan`` uses to run the same function in O(log T) depth.
    (Its update R is the ``none`` cell's h[t]; the gate G mixes it with h[t-1].)
    """

    def __init__(self, hidden: int) -> None:
        super().__init__(hidden)  # W^{x,R}, B^R
        self.W_xG, self.B_G = scaled_weight(hidden, hidden), _bias(hidden)

    def gate_and_update(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x[b,K] -> G[b,j], R[b,j] for one step (from x[t] alone)."""
        # R[b,t,j] = tanh(W^{x,R}[j,K] x[b,t,K] - B^R[j])
        R = self.update(x)
        # G[b,t,j] = σ(W^{x,G}[j,K] x[b,t,K] - B^G[j])
        G = torch.sigmoid(torch.einsum("jK,bK->bj", self.W_xG, x) - self.B_G)
        return G, R

    def step(self, h: Tensor, x: Tensor) -> Tensor:
        G, R = self.gate_and_update(x)
        # h[b,t,j] = G[b,t,j] h[b,t-1,j] + (1 - G[b,t,j]) R[b,t,j]
        return G * h + (1 - G) * R


class UGRNNXScan(UGRNNX):
    """``ugrnn-x`` by an inclusive Hillis–Steele scan over t, in plain torch ops.

    With a[t] = G[t] and v[t] = (1 - G[t]) R[t], h[t] = a[t] h[t-1] + v[t]; the pair
    of steps s < t composes as (a[t] a[s], a[t] v[s] + v[t]). Round d = 1, 2, 4, ...
    (< n = T-1) combines every t >= d with t-d, so after ⌈log₂ n⌉ rounds (a[t], v[t])
    spans steps 1..t, and h[t] = a[t] h[0] + v[t]. Work O(T log T) (every round
    touches all n steps), depth O(log T). The gates' products are the loop's, one per
    step: they do not depend on each other.
    """

    def sequence(self, h0: Tensor, x: Tensor) -> list[Tensor]:
        n = x.shape[1]
        if n == 0:
            return []
        gates = [self.gate_and_update(x_t) for x_t in x.unbind(1)]
        a = torch.stack([G for G, _ in gates], 1)  # a[b,t,j] = G[b,t,j]
        v = torch.stack([(1 - G) * R for G, R in gates], 1)  # v[b,t,j] = (1-G) R
        d = 1
        while d < n:
            # (a, v)[t] <- (a[t] a[t-d], a[t] v[t-d] + v[t]) for t >= d
            v = torch.cat([v[:, :d], a[:, d:] * v[:, :-d] + v[:, d:]], 1)
            a = torch.cat([a[:, :d], a[:, d:] * a[:, :-d]], 1)
            d *= 2
        # h[b,t,j] = a[b,t,j] h[b,0,j] + v[b,t,j]
        return list((a * h0.unsqueeze(1) + v).unbind(1))


CELL_CLASSES: dict[str, type[Cell]] = {
    "ugrnn": UGRNN,
    "ugrnn2": UGRNN2,
    "gru": GRU,
    "gru-torch": GRUTorch,
    "gru-torch-fast": GRUTorchFast,
    "torch-gru": TorchGRU,
    "none": NoRecurrence,
    "ugrnn-x": UGRNNX,
    "ugrnn-x-scan": UGRNNXScan,
}

