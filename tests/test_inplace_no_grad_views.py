"""A view taken under no_grad from a tensor that requires grad, then written in place with grad mode on:
refused with torch's error (the write would not be recorded, and the gradient would be silently wrong);
writes under no_grad, and views of tensors that do not require grad, stay allowed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _graph_view(lib: Any) -> Any:
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 2
    with lib.no_grad():
        return h[1:]


def _leaf_view(lib: Any) -> Any:
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with lib.no_grad():
        return x.view(3, 1)


def _view_of_the_view(lib: Any) -> Any:
    return _graph_view(lib)[0:1]


def _plain_view(lib: Any) -> Any:
    b = lib.zeros(3)
    with lib.no_grad():
        return b[1:]


VIEWS: dict[str, Callable[[Any], Any]] = {
    "graph_view": _graph_view,
    "leaf_view": _leaf_view,
    "view_of_the_view": _view_of_the_view,
    "plain_view": _plain_view,
}
WRITES: dict[str, Callable[[Any], Any]] = {
    "mul_": lambda v: v.mul_(2),
    "add_": lambda v: v.add_(1),
    "setitem": lambda v: v.__setitem__(0, 5.0),
    "fill_": lambda v: v.fill_(0.5),
}


def _outcome(lib: Any, view: str, write: str, under_no_grad: bool) -> str:
    v = VIEWS[view](lib)
    try:
        if under_no_grad:
            with lib.no_grad():
                WRITES[write](v)
        else:
            WRITES[write](v)
    except RuntimeError as exc:
        return "view was created in no_grad mode" if "created in no_grad mode" in str(exc) else str(exc)
    return "ok"


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("under_no_grad", [False, True])
def test_an_inplace_write_to_a_view_taken_under_no_grad_as_torch(view: str, write: str, under_no_grad: bool) -> None:
    assert _outcome(ds, view, write, under_no_grad) == _outcome(torch, view, write, under_no_grad)


def test_the_refusal_is_a_state_error_with_torchs_words() -> None:
    v = _graph_view(ds)
    with pytest.raises(ds.errors.StateError, match="A view was created in no_grad mode and is being modified inplace"):
        v.mul_(2)
