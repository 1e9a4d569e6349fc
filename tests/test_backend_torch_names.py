"""backend's torch names against torch itself: Python's ``float`` as a dtype, ``Size``, the memory
formats, and NumPy's floating-point warnings that torch never gives."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

import downslope as ds
from downslope import backend
from downslope.errors import ShapeError

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "make",
    [
        lambda T: T.zeros(2, dtype=float),
        lambda T: T.tensor([0.1], dtype=float),
        lambda T: T.ones(2).to(float),
        lambda T: T.ones(2).to(dtype=float),
        lambda T: T.arange(3, dtype=float),
        lambda T: T.ones(2).sum(dtype=float),
        lambda T: T.tensor([1.5]).to(int),
        lambda T: T.ones(2, dtype=bool),
    ],
)
def test_python_types_as_dtypes_are_torchs(make) -> None:  # type: ignore[no-untyped-def]
    assert str(make(ds).dtype) == str(make(torch).dtype).removeprefix("torch.")


def test_python_float_is_float64_whatever_the_default_dtype() -> None:
    assert backend.as_dtype(float) == np.float64
    ds.set_default_dtype("float64")
    try:
        assert backend.as_dtype(float) == np.float64
        assert ds.zeros(1).dtype == np.float64
    finally:
        ds.set_default_dtype("float32")
    assert (ds.ones(1, dtype=float) + 1e-9).item() - 1 == (torch.ones(1, dtype=float) + 1e-9).item() - 1


def test_size_behaves_as_torch_size() -> None:
    ours, theirs = ds.Size([2, 3]), torch.Size([2, 3])
    assert ours.numel() == theirs.numel() == 6
    assert ds.Size().numel() == torch.Size().numel() == 1
    for op in (lambda s: s + (4,), lambda s: (4,) + s, lambda s: s[1:], lambda s: s * 2, lambda s: 2 * s):
        assert type(op(ours)) is ds.Size and tuple(op(ours)) == tuple(op(theirs))
    assert ours[0] == 2 and ours == (2, 3) and hash(ours) == hash((2, 3)) and isinstance(ours, tuple)
    assert repr(ours) == "downslope.Size([2, 3])"
    assert ds.Size([ds.tensor(3)]) == (3,)
    with pytest.raises(TypeError, match="item 0 is 'float'"):
        ds.Size([2.5])
    with pytest.raises(TypeError):
        ours + [4]  # noqa: RUF005  (torch refuses a list too)
    assert pickle.loads(pickle.dumps(ours)) == ours and type(copy.deepcopy(ours)) is ds.Size


def test_size_makes_a_tensor_of_that_shape() -> None:
    assert ds.Tensor(ds.Size([2, 3])).shape == tuple(torch.Tensor(torch.Size([2, 3])).shape)
    assert ds.Tensor((2, 3)).tolist() == torch.Tensor((2, 3)).tolist()  # a plain tuple is data


def test_memory_formats_are_accepted_where_torch_takes_them() -> None:
    x = ds.ones(1, 2, 3, 4)
    for fmt in (ds.contiguous_format, ds.preserve_format, ds.channels_last, ds.channels_last_3d):
        assert isinstance(fmt, ds.memory_format)
        assert ds.empty_like(x, memory_format=fmt).shape == (1, 2, 3, 4)
        if fmt is ds.channels_last_3d:  # torch: "required rank 5 tensor to use channels_last_3d format"
            for copy_in in (x.contiguous, x.to, x.clone):
                with pytest.raises(ShapeError, match="required rank 5 tensor to use channels_last_3d format"):
                    copy_in(memory_format=fmt)
            continue
        assert x.contiguous(memory_format=fmt).shape == (1, 2, 3, 4)
        assert x.to(memory_format=fmt).shape == (1, 2, 3, 4)
        assert x.clone(memory_format=fmt).shape == (1, 2, 3, 4)
    assert repr(ds.contiguous_format) == "downslope.contiguous_format"
    assert copy.deepcopy(ds.channels_last) is ds.channels_last


def _numpy_notes(fn) -> list[str]:  # type: ignore[no-untyped-def]
    # The condition a user's script has after ``import downslope``: the library's filter installed.
    # pytest drops it (it imports test modules inside catch_warnings and restores its filters for
    # every test), so it is installed here again with the very function the import calls: nothing
    # broader, so a kernel that warns from a module the filter does not name still fails. No
    # simplefilter, which would override the library's filter.
    with warnings.catch_warnings(record=True) as caught:
        backend.quiet_numpy_notes()
        fn()
    return [str(w.message) for w in caught if "encountered" in str(w.message)]


def _sqrt_backward_at_zero() -> None:
    x = ds.tensor([0.0, 1.0], requires_grad=True)
    ds.sqrt(x).sum().backward()
    assert np.isinf(x.grad.numpy()[0])


def _log_in_where() -> None:
    x = ds.tensor([0.0, 1.0], requires_grad=True)
    ds.where(x > 0, ds.log(x), ds.zeros(2)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [np.nan, 1.0])  # torch's values


@pytest.mark.parametrize(
    "fn",
    [
        _sqrt_backward_at_zero,
        _log_in_where,
        lambda: ds.tensor([1, 0]) / 0,
        lambda: ds.tensor([60000.0], dtype=ds.float16) * 2,
        lambda: ds.exp(ds.tensor([200.0])),
        lambda: ds.tensor([1.0]).std(),
    ],
    ids=["sqrt_backward_at_0", "log_inside_where", "int_div_0", "float16_overflow", "exp_overflow", "std_of_one"],
)
def test_library_arithmetic_gives_no_numpy_warnings(fn) -> None:  # type: ignore[no-untyped-def]
    assert _numpy_notes(fn) == []


def test_the_users_own_numpy_keeps_its_warnings() -> None:
    assert _numpy_notes(lambda: np.log(np.zeros(1))) == ["divide by zero encountered in log"]


def test_import_installs_the_filter_in_a_fresh_interpreter() -> None:
    """The user's condition itself, out of pytest's filter handling: a fresh ``import downslope``,
    then the library's arithmetic is quiet while the user's own NumPy still warns."""
    script = """
import warnings
import numpy as np
import downslope as ds
with warnings.catch_warnings(record=True) as caught:
    x = ds.tensor([0.0, 1.0], requires_grad=True)
    ds.sqrt(x).sum().backward()
    ds.exp(ds.tensor([200.0]))
    ds.tensor([1.0]).std()
    np.log(np.zeros(1))
print([str(w.message) for w in caught if "encountered" in str(w.message)])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "['divide by zero encountered in log']"
