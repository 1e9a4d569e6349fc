"""torch.func transforms with has_aux=True: the aux comes back detached (aux.numpy() works), as torch's,
except where it depends on an outer computation (a nested transform, a closed-over tensor)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")
tfunc = torch.func


def _transforms(lib, func):  # type: ignore[no-untyped-def]
    x = lib.tensor([0.3, 0.7], dtype=lib.float64)

    def f(a):  # type: ignore[no-untyped-def]
        return lib.sin(a).sum(), {"norm": a.norm(), "cube": [a**3]}

    return {
        "grad": func.grad(f, has_aux=True)(x)[1],
        "grad_and_value": func.grad_and_value(f, has_aux=True)(x)[1][1],
        "jacrev": func.jacrev(f, has_aux=True)(x)[1],
        "jacfwd": func.jacfwd(f, has_aux=True)(x)[1],
        "vjp": func.vjp(f, x, has_aux=True)[2],
        "jvp": func.jvp(f, (x,), (lib.ones_like(x),), has_aux=True)[2],
    }


@pytest.mark.parametrize("name", ["grad", "grad_and_value", "jacrev", "jacfwd", "vjp", "jvp"])
def test_aux_is_detached_as_torch(name: str) -> None:
    ours, theirs = _transforms(ds, ds.func)[name], _transforms(torch, tfunc)[name]
    for a, b in ((ours["norm"], theirs["norm"]), (ours["cube"][0], theirs["cube"][0])):
        assert a.requires_grad == b.requires_grad is False
        np.testing.assert_allclose(a.numpy(), b.numpy())


def test_nested_transforms_still_differentiate_through_the_aux_as_torch() -> None:
    def run(lib, func):  # type: ignore[no-untyped-def]
        def f(a):  # type: ignore[no-untyped-def]
            return lib.sin(a).sum(), a**3

        x = lib.tensor([0.3, 0.7], dtype=lib.float64)
        return func.grad(lambda a: func.grad(f, has_aux=True)(a)[1].sum())(x).numpy()

    np.testing.assert_allclose(run(ds, ds.func), run(torch, tfunc))


def test_an_aux_made_from_a_closed_over_tensor_keeps_its_graph_as_torch() -> None:
    def run(lib, func):  # type: ignore[no-untyped-def]
        y = lib.tensor([2.0], dtype=lib.float64, requires_grad=True)
        x = lib.tensor([0.3, 0.7], dtype=lib.float64)
        _, aux = func.grad(lambda a: ((a * y).sum(), a.sum() * y), has_aux=True)(x)
        assert aux.requires_grad
        aux.sum().backward()
        return y.grad.numpy()

    np.testing.assert_allclose(run(ds, ds.func), run(torch, tfunc))
