"""The engine hands each op's gradient rule an incoming gradient of the dtype of the output it belongs to
(torch's engine casts in ``validate_outputs``), so no rule sees a float64 gradient for a float32 output: a
float32 model whose hand-written loss compares with a float64 target (a NumPy array) gets float64 gradients
from the loss, and a compiled kernel planned for float32 must not be handed them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _recorder(lib: Any, seen: list[str]) -> Any:
    class Record(lib.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x * 2

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            seen.append(str(g.dtype).replace("torch.", "").replace("downslope.", ""))
            return g * 2

    return Record


def test_a_rule_sees_the_dtype_of_its_output_not_of_the_gradient_arriving() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    target = np.linspace(-1.0, 1.0, 6).reshape(2, 3)  # float64, as NumPy makes it
    results = []
    for lib, make in ((torch, torch.from_numpy), (ds, ds.from_numpy)):
        seen: list[str] = []
        leaf = make(x.copy()).requires_grad_()
        y = _recorder(lib, seen).apply(leaf)
        ((y - make(target)) ** 2).sum().backward()
        results.append((seen, str(leaf.grad.dtype).split(".")[-1], leaf.grad.numpy()))
    (t_seen, t_dtype, t_grad), (d_seen, d_dtype, d_grad) = results
    assert t_seen == ["float32"]
    assert d_seen == t_seen
    assert d_dtype == t_dtype == "float32"
    np.testing.assert_allclose(d_grad, t_grad, rtol=1e-6)


def _mixture(lib: Any, make: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """float16 / float32 / float64 leaves mixed by promotion and explicit casts; returns every leaf's grad."""
    leaves = {k: make(v.copy()).requires_grad_() for k, v in arrays.items()}
    h, f, d = leaves["half"], leaves["single"], leaves["double"]
    a = (f * h).sin()  # float32 from float32 x float16
    b = f.double() * d  # a float32 leaf reached through a .double() op
    c = (h.float() + a).exp() * d  # float16 -> float32 -> float64
    e = h * h + h.double().tanh()  # float16 branch joining float64
    loss = (a.sum() + b.sum() + c.sum() + e.sum()) * make(np.array(0.5))  # float64 scalar weight
    loss.backward()
    return {k: v.grad for k, v in leaves.items()}


def test_gradients_of_float16_float32_float64_mixtures_match_torch() -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "half": rng.uniform(-1, 1, 5).astype(np.float16),
        "single": rng.uniform(-1, 1, 5).astype(np.float32),
        "double": rng.uniform(-1, 1, 5),
    }
    expected = _mixture(torch, torch.from_numpy, arrays)
    got = _mixture(ds, ds.from_numpy, arrays)
    for key in arrays:
        assert str(got[key].dtype).split(".")[-1] == str(expected[key].dtype).split(".")[-1], key
        tol = {"half": 2e-3, "single": 1e-6, "double": 1e-12}[key]
        np.testing.assert_allclose(got[key].numpy(), expected[key].numpy(), rtol=tol, atol=tol, err_msg=key)


def test_the_gradient_a_float32_leaf_gets_through_double_is_float32() -> None:
    x = ds.tensor([0.5, -1.5], requires_grad=True)
    (x.double() * ds.tensor([3.0, 4.0], dtype=ds.float64)).sum().backward()
    assert x.grad.dtype == ds.float32
    np.testing.assert_array_equal(x.grad.numpy(), np.array([3.0, 4.0], np.float32))


def test_a_complex_gradient_for_a_real_output_is_refused_naming_both_dtypes():
    # torch: "For complex Tensors, both grad_output and output are required to have the same dtype";
    # a cast would drop the imaginary part (NumPy's ComplexWarning, raised as an error under -W error)
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"complex \(complex64\).*real \(float32\)"):
        y.backward(ds.tensor([1 + 1j, 1 - 1j], dtype=ds.complex64))
    with pytest.raises(TypeError, match="grad_outputs"):
        ds.autograd.grad(y, x, grad_outputs=ds.tensor([1j, 1j], dtype=ds.complex64))
