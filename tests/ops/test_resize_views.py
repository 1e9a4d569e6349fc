"""resize_ of a view (or of a tensor a view shares memory with) as torch 2.13: the new shape laid out
contiguously at the tensor's place in its storage when it fits there (shrinking, growing within the
base's memory, transposed and strided views exposing the storage order), sharing memory with the base;
growing past the storage that another tensor shares is refused with torch's message for a storage
that cannot be resized (torch would grow the storage both see)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import downslope as ds

torch = pytest.importorskip("torch")

# a view's place in its base's memory is read from host arrays (a device's views keep the plain resize)
pytestmark = pytest.mark.host_only


def _shrink_view(lib: Any) -> Any:
    x = lib.arange(12.0)
    v = x[2:8]
    v.resize_(2, 2)
    return v.tolist(), x.tolist()


def _grow_view_within(lib: Any) -> Any:
    x = lib.arange(12.0)
    v = x[2:5]
    v.resize_(6)
    v.fill_(-1)
    return v.tolist(), x.tolist()


def _view_of_view(lib: Any) -> Any:
    x = lib.arange(12.0)
    v = x[1:][1:4]
    v.resize_(10)
    return v.tolist()


def _row_grows_into_next_rows(lib: Any) -> Any:
    x = lib.arange(12.0)
    v = x.view(3, 4)[0]
    v.resize_(8)
    v.fill_(-1)
    return v.tolist(), x.tolist()


def _transposed(lib: Any) -> Any:
    x = lib.arange(6.0).reshape(2, 3)
    v = x.t()
    v.resize_(6)
    w = lib.arange(6.0).reshape(2, 3).t()
    w.resize_(2)
    return v.tolist(), x.tolist(), w.tolist()


def _strided(lib: Any) -> Any:
    x = lib.arange(10.0)
    v = x[::2]
    v.resize_(3)
    v.fill_(-1)
    return v.tolist(), x.tolist()


def _base_shrinks_under_its_view(lib: Any) -> Any:
    x = lib.arange(12.0)
    v = x[2:5]
    x.resize_(3)
    x.fill_(-1)
    return x.tolist(), v.tolist()


CASES: dict[str, Callable[[Any], Any]] = {
    "shrink_view": _shrink_view,
    "grow_view_within": _grow_view_within,
    "view_of_view": _view_of_view,
    "row_grows_into_next_rows": _row_grows_into_next_rows,
    "transposed": _transposed,
    "strided": _strided,
    "base_shrinks_under_its_view": _base_shrinks_under_its_view,
}


@pytest.mark.parametrize("case", list(CASES))
def test_resize_of_views_matches_torch(case: str) -> None:
    assert CASES[case](ds) == CASES[case](torch)


def test_growing_shared_memory_is_refused_with_torchs_message() -> None:
    x = ds.arange(12.0)
    v = x[8:]
    with pytest.raises(RuntimeError, match="Trying to resize storage that is not resizable"):
        v.resize_(6)  # torch grows the storage; here the base's memory cannot grow
    assert v.tolist() == [8.0, 9.0, 10.0, 11.0]
    base = ds.arange(4.0)
    view = base[1:3]
    with pytest.raises(RuntimeError, match="Trying to resize storage that is not resizable"):
        base.resize_(8)
    assert view.tolist() == [1.0, 2.0]


def test_a_view_of_a_tensor_that_requires_grad_is_refused_as_torch() -> None:
    for lib in (ds, torch):
        x = lib.arange(12.0, requires_grad=True)
        with pytest.raises(RuntimeError, match="resize"):
            x[2:5].resize_(2)
