"""masked_scatter refuses a source of another dtype than the tensor, as torch 2.13 does ("masked_scatter:
expected self and source to have same dtypes"), in its function, method and in-place forms."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.errors import DTypeError

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    ("self_dtype", "source_dtype"), [("float32", "float64"), ("float64", "float32"), ("int64", "float32")]
)
def test_masked_scatter_refuses_a_source_of_another_dtype(self_dtype: str, source_dtype: str) -> None:
    mask = [True, False, True, False]
    calls = {
        "function": lambda L, x, m, s: L.masked_scatter(x, m, s),
        "method": lambda L, x, m, s: x.masked_scatter(m, s),
        "in place": lambda L, x, m, s: x.masked_scatter_(m, s),
    }
    for name, call in calls.items():
        with pytest.raises(RuntimeError, match="same dtypes"):
            call(
                torch,
                torch.zeros(4, dtype=getattr(torch, self_dtype)),
                torch.tensor(mask),
                torch.ones(4, dtype=getattr(torch, source_dtype)),
            )
        x = ds.zeros(4, dtype=self_dtype)
        with pytest.raises(DTypeError, match="same dtypes"):
            call(ds, x, ds.tensor(mask), ds.ones(4, dtype=source_dtype))
        assert x.tolist() == [0, 0, 0, 0], name  # nothing written


def test_masked_scatter_of_one_dtype_matches_torch() -> None:
    mask = [True, False, True, False]
    source = np.arange(1.0, 5.0, dtype=np.float32)
    got = ds.zeros(4).masked_scatter_(ds.tensor(mask), ds.tensor(source))
    want = torch.zeros(4).masked_scatter_(torch.tensor(mask), torch.tensor(source))
    np.testing.assert_array_equal(got.numpy(), want.numpy())
