"""An in-place op on a custom Function's output that is a view of its input (or the input returned
as-is) is refused, as in PyTorch: the view's new history would bypass the Function's backward (the
gradient came out silently wrong before)."""

from __future__ import annotations

from typing import Any

import pytest

import downslope as ds
from downslope.errors import StateError

torch = pytest.importorskip("torch")


def _functions(lib: Any) -> dict[str, Any]:
    class RetView(lib.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x.view(-1)

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g.view(2)

    class RetInput(lib.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g

    class RetNew(lib.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return x * 2

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * 2

    return {"view": RetView, "input": RetInput, "new": RetNew}


@pytest.mark.parametrize("kind", ["view", "input", "new"])
def test_in_place_on_a_functions_view_output_is_refused_as_torch(kind: str) -> None:
    outcomes = []
    for lib, error in ((torch, RuntimeError), (ds, StateError)):
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        y = _functions(lib)[kind].apply(a * 1)
        try:
            y.mul_(lib.tensor([3.0, 5.0]))
        except error as e:
            assert "is a view and is being modified inplace" in str(e)
            outcomes.append("refused")
            continue
        y.sum().backward()
        outcomes.append(a.grad.tolist())
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0] == "refused") is (kind != "new")
