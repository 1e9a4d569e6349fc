"""torch's promotion queries with complex dtypes (promote_types, result_type, can_cast), and the in-place
ops' cast check they drive, against torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import DTypeError

torch = pytest.importorskip("torch")

_NAMES = ["complex64", "complex128", "float16", "float32", "float64", "int64", "uint8", "bool"]


def _torch_dtype(name: str) -> Any:
    return getattr(torch, name)


def _ours(name: str) -> Any:
    return ds.bool_ if name == "bool" else getattr(ds, name)


@pytest.mark.parametrize("first", _NAMES)
@pytest.mark.parametrize("second", ["complex64", "complex128"])
def test_promote_types_and_can_cast_with_complex_match_torch(first: str, second: str) -> None:
    want = str(torch.promote_types(_torch_dtype(first), _torch_dtype(second))).replace("torch.", "")
    assert str(ds.promote_types(_ours(first), _ours(second))) == want
    assert str(ds.promote_types(_ours(second), _ours(first))) == want
    for a, b in ((first, second), (second, first)):
        assert ds.can_cast(_ours(a), _ours(b)) is torch.can_cast(_torch_dtype(a), _torch_dtype(b))


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: (ds.tensor([1j]), 1.0), lambda: (torch.tensor([1j]), 1.0)),
        (lambda: (ds.ones(2), 1j), lambda: (torch.ones(2), 1j)),
        (
            lambda: (ds.ones(2, dtype=ds.float64), ds.tensor(1j)),
            lambda: (torch.ones(2, dtype=torch.float64), torch.tensor(1j)),
        ),
        (lambda: (ds.ones(2, dtype=ds.int64), 2j), lambda: (torch.ones(2, dtype=torch.int64), 2j)),
        (
            lambda: (ds.tensor(1j), ds.ones(2, dtype=ds.float64)),
            lambda: (torch.tensor(1j), torch.ones(2, dtype=torch.float64)),
        ),
    ],
)
def test_result_type_with_complex_matches_torch(ours: Any, theirs: Any) -> None:
    want = str(torch.result_type(*theirs())).replace("torch.", "")
    assert str(ds.result_type(*ours())) == want


def test_in_place_complex_into_real_is_refused_as_torch() -> None:
    with pytest.raises(RuntimeError, match="can't be cast"):
        torch.ones(2).add_(torch.tensor([1j, 1j]))
    x = ds.ones(2)
    with pytest.raises(DTypeError, match="can't be cast to the desired output type float32"):
        x.add_(ds.tensor([1j, 1j]))
    np.testing.assert_array_equal(x.numpy(), [1.0, 1.0])
    z = ds.ones(2, dtype=ds.complex64)
    z.add_(ds.tensor([1.0, 2.0]))  # real into complex: allowed, as in torch
    np.testing.assert_array_equal(
        z.numpy(), torch.ones(2, dtype=torch.complex64).add_(torch.tensor([1.0, 2.0])).numpy()
    )


def test_backward_of_a_complex_output_needs_a_gradient_as_torch() -> None:
    with pytest.raises(RuntimeError, match="real scalar outputs"):
        torch.tensor([1 + 1j], requires_grad=True).sum().backward()
    z = ds.tensor([1 + 1j], requires_grad=True)
    with pytest.raises(DTypeError, match="grad can be implicitly created only for real scalar outputs"):
        z.sum().backward()
