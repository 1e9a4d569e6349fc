"""Complex numbers written into real tensors, as torch: a nonzero imaginary part is refused (a cast
would drop it silently), a zero one writes the real part; and Tensor.normal_/uniform_ fill complex
tensors (both parts), as torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _mask(m: Any) -> Any:
    return m.tensor([True, False, True])


WRITES = {
    "fill_": lambda m, v: m.zeros(3).fill_(v),
    "fill_ int64": lambda m, v: m.zeros(3, dtype=m.int64).fill_(v),
    "masked_fill_": lambda m, v: m.zeros(3).masked_fill_(_mask(m), v),
    "masked_fill_ float64": lambda m, v: m.zeros(3, dtype=m.float64).masked_fill_(_mask(m), v),
    "masked_fill_ recorded": lambda m, v: (m.zeros(3, requires_grad=True) * 1).masked_fill_(_mask(m), v),
    "fill_ recorded": lambda m, v: (m.zeros(3, requires_grad=True) * 1).fill_(v),
    "full float32": lambda m, v: m.full((3,), v, dtype=m.float32),
    "full int64": lambda m, v: m.full((3,), v, dtype=m.int64),
    "new_full": lambda m, v: m.zeros(3).new_full((3,), v),
    "full_like": lambda m, v: m.full_like(m.zeros(3), v),
    "clamp_ min": lambda m, v: m.zeros(3).clamp_(min=v),
    "clamp_ max": lambda m, v: m.ones(3).clamp_(max=v),
    "setitem": lambda m, v: _set(m.zeros(3), v),
}


def _set(t: Any, v: Any) -> Any:
    t[1] = v
    return t


@pytest.mark.parametrize("value", [2 + 1j, 1j, -0.5j], ids=["2+1j", "1j", "-0.5j"])
@pytest.mark.parametrize("case", list(WRITES))
def test_complex_value_into_real_tensor_is_refused(case: str, value: complex) -> None:
    with pytest.raises(RuntimeError, match="cannot be converted"):
        WRITES[case](torch, value)
    with pytest.raises(ds.errors.DTypeError, match="cannot be converted to type .* without overflow"):
        WRITES[case](ds, value)


@pytest.mark.parametrize("case", list(WRITES))
def test_complex_value_with_zero_imaginary_part_writes_the_real_part(case: str) -> None:
    ref = WRITES[case](torch, 2 + 0j)
    ours = WRITES[case](ds, 2 + 0j)
    assert ours.dtype == np.dtype(str(ref.dtype).removeprefix("torch."))
    np.testing.assert_array_equal(ours.detach().numpy(), ref.detach().numpy())


COMPLEX_WRITES = {
    "fill_": lambda m, t: t.fill_(2 + 1j),
    "masked_fill_": lambda m, t: t.masked_fill_(_mask(m), 2 + 1j),
    "setitem": lambda m, t: _set(t, 2 + 1j),
}


@pytest.mark.parametrize("name", ["complex64", "complex128"])
@pytest.mark.parametrize("case", list(COMPLEX_WRITES))
def test_complex_tensors_still_take_complex_writes(case: str, name: str) -> None:
    ref, ours = (COMPLEX_WRITES[case](m, m.zeros(3, dtype=getattr(m, name))).numpy() for m in (torch, ds))
    assert ours.dtype == ref.dtype
    np.testing.assert_array_equal(ours, ref)


def test_clamp_of_a_real_tensor_by_a_complex_number_is_refused_as_torch() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError):
        torch.zeros(2).clamp(min=1j)
    with pytest.raises(ds.errors.DTypeError, match="clamp"):
        ds.zeros(2).clamp(min=1j)


def test_load_state_dict_assign_takes_complex_values_for_parameters_that_require_grad() -> None:
    model = ds.nn.Linear(2, 2, dtype=ds.complex64)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(state, assign=True)
    assert model.weight.dtype == ds.complex64 and model.weight.requires_grad
