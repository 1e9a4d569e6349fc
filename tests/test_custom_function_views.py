"""An in-place op on a custom Function's output that is a view of its input (or the input returned
as-is) is refused, as in PyTorch: the view's new history would bypass the Function's backward (the
gradient came out silently wrong before)."""

from __future__ import annotations

from typing import Any

import numpy as np
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


def test_saved_variables_is_torchs_deprecated_name_for_saved_tensors() -> None:
    torch = pytest.importorskip("torch")
    grads = []
    for lib in (torch, ds):

        class Square(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):  # noqa: ANN001, ANN205
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx, g):  # noqa: ANN001, ANN205
                with pytest.warns(DeprecationWarning, match="'saved_variables' is deprecated; use 'saved_tensors'"):
                    (x,) = ctx.saved_variables
                return 2 * x * g

        x = lib.tensor([0.37, -0.5], requires_grad=True)
        Square.apply(x).sum().backward()
        grads.append(x.grad.detach().cpu().numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)
