"""The errors for a missing or wrong-shaped output gradient name the call and the argument, as torch's do:
autograd.grad()'s grad_outputs[i] and outputs[i]; backward()'s gradient and its output."""

from __future__ import annotations

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def test_grad_names_grad_outputs_and_outputs_for_a_wrong_shape() -> None:
    tx = torch.ones(4, 1, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad_output\[0\] has a shape of torch.Size\(\[4\]\)"):
        torch.autograd.grad(tx**2, tx, grad_outputs=torch.ones(4))
    x = ds.ones(4, 1, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"^autograd.grad\(\): grad_outputs\[0\] has shape \(4,\) but outputs\[0\] "):
        ds.autograd.grad(x**2, x, grad_outputs=ds.ones(4))
    with pytest.raises(
        ds.errors.StateError, match=r"grad_outputs\[1\] has shape \(3,\) but outputs\[1\] has shape \(4, 1\)"
    ):
        ds.autograd.grad([x.sum(), x**2], [x], grad_outputs=[None, ds.ones(3)])


def test_grad_names_grad_outputs_for_a_non_scalar_output_without_one() -> None:
    tx = torch.ones(4, 1, requires_grad=True)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        torch.autograd.grad(tx**2, tx)
    x = ds.ones(4, 1, requires_grad=True)
    with pytest.raises(
        RuntimeError,
        match=r"^autograd.grad\(\): grad can be implicitly created only for scalar outputs, "
        r"but outputs\[0\] has shape \(4, 1\); pass grad_outputs=",
    ):
        ds.autograd.grad(x**2, x)


def test_backward_keeps_its_own_words() -> None:
    x = ds.ones(4, 1, requires_grad=True)
    with pytest.raises(
        ds.errors.StateError, match=r"^backward\(\): gradient has shape \(4,\) but the output has shape"
    ):
        (x**2).backward(ds.ones(4))
    with pytest.raises(
        ds.errors.StateError, match=r"^backward\(\): gradient can be implicitly created .* pass gradient="
    ):
        (x**2).backward()
