"""square's higher derivatives as torch's (square is pow(x, 2) there: its second derivative keeps a graph,
so a third one, 0, can be taken), checked against torch and the closed form."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _derivatives(lib, method: bool):  # type: ignore[no-untyped-def]
    x = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    w = lib.tensor([1.0, 3.0, -2.0], dtype=lib.float64)
    y = (x.square() if method else lib.square(x)).sum()
    out = []
    for _ in range(3):
        (d,) = lib.autograd.grad(y, x, create_graph=True)
        out.append(d.detach().numpy().copy())
        y = (d * w).sum()
    return out


@pytest.mark.parametrize("method", [False, True], ids=["function", "method"])
def test_square_third_derivative_matches_torch_and_the_closed_form(method: bool) -> None:
    ours, theirs = _derivatives(ds, method), _derivatives(torch, method)
    x = np.array([0.5, -1.0, 2.0])
    closed = [2 * x, 2 * np.array([1.0, 3.0, -2.0]), np.zeros(3)]
    for a, b, c in zip(ours, theirs, closed):
        np.testing.assert_allclose(a, b)
        np.testing.assert_allclose(a, c)


def test_square_keeps_its_values_and_integer_results_as_torch() -> None:
    x = np.array([0.1, -3.0, 1e20], np.float32)
    assert ds.square(ds.tensor(x)).numpy().tolist() == torch.square(torch.tensor(x)).numpy().tolist()
    assert ds.square(ds.tensor([3, -2])).tolist() == torch.square(torch.tensor([3, -2])).tolist()
    assert str(ds.square(ds.tensor([True, False])).dtype) == "int64"
