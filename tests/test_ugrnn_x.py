"""The x-only UGRNN: the time loop and the prefix scan compute the same function."""

import pytest
import torch

from trainbench.models.rnn_lm import UGRNNX, UGRNNXScan

H, B = 4, 3


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 9, 17, 63])
def test_scan_equals_the_loop_in_values_and_gradients(n: int) -> None:
    torch.manual_seed(n)
    loop = UGRNNX(H).double()
    scan = UGRNNXScan(H).double()
    scan.load_state_dict(loop.state_dict())
    h0 = torch.randn(B, H, dtype=torch.float64)
    x = torch.randn(B, n, H, dtype=torch.float64)
    hs, ht = loop.sequence(h0, x), scan.sequence(h0, x)
    assert len(hs) == len(ht) == n
    if n == 0:
        return
    weights = torch.randn(n, B, H, dtype=torch.float64)
    (torch.stack(hs) * weights).sum().backward()
    (torch.stack(ht) * weights).sum().backward()
    for a, b in zip(hs, ht, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    for (name, p), q in zip(loop.named_parameters(), scan.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-10, msg=name)


def test_scan_gradcheck() -> None:
    torch.manual_seed(0)
    scan = UGRNNXScan(H).double()
    h0 = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    x = torch.randn(B, 6, H, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h, x: torch.stack(scan.sequence(h, x)), (h0, x))
