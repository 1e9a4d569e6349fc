"""``ctx.mark_dirty`` on a view inside a custom Function, against torch 2.13 in float64: as torch's
CopySlices, the base takes the Function's output as a recorded write (the base's readers after it get the
Function's gradient), the view becomes a view of the new base, what ctx saved keeps its version, and a
reader of the base's old values raises; torch's refusals (a view of a leaf, more than one output) kept."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _functions(lib: Any) -> dict[str, Any]:
    class MulTwo(lib.autograd.Function):  # type: ignore[misc,name-defined]
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            x.mul_(2)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * 2

    class Exp_(lib.autograd.Function):  # type: ignore[misc,name-defined]
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            x.exp_()
            ctx.mark_dirty(x)
            ctx.save_for_backward(x)  # the written values: their version is the one after the write
            return x

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            (y,) = ctx.saved_tensors
            return g * y

    class AddInto(lib.autograd.Function):  # type: ignore[misc,name-defined]
        @staticmethod
        def forward(ctx: Any, x: Any, w: Any) -> Any:
            x.add_(w)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g, g * 3

    class AddIntoTwo(lib.autograd.Function):  # type: ignore[misc,name-defined]
        @staticmethod
        def forward(ctx: Any, x: Any, w: Any) -> Any:
            x.add_(w)
            ctx.mark_dirty(x)
            return x, w * 2

        @staticmethod
        def backward(ctx: Any, g: Any, g2: Any) -> Any:
            return g, g + 2 * g2

    return {"MulTwo": MulTwo, "Exp_": Exp_, "AddInto": AddInto, "AddIntoTwo": AddIntoTwo}


def _np(t: Any) -> np.ndarray:
    return np.array(t.detach().numpy())


def _case(lib: Any, case: str) -> list[np.ndarray]:
    f = _functions(lib)
    a = lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64, requires_grad=True)
    c = lib.arange(4.0, dtype=lib.float64) + 1
    if case == "slice":
        b = a * 1
        out = f["MulTwo"].apply(b[1:3])
        (b * c).sum().backward()
        return [_np(b), _np(out), _np(a.grad)]
    if case == "saved_output":
        b = a * 1
        out = f["Exp_"].apply(b[1:3])
        ((b * c).sum() + (out * out).sum()).backward()
        return [_np(b), _np(a.grad)]
    if case == "view_of_view":
        b = a * 1
        out = f["Exp_"].apply(b[1:3][0:1])
        ((b * c).sum() + out.sum()).backward()
        return [_np(b), _np(a.grad)]
    if case == "transpose":
        b = (a * 1).view(2, 2)
        out = f["Exp_"].apply(b.t())
        ((b * c.view(2, 2)).sum() + (out * 2).sum()).backward()
        return [_np(b), _np(a.grad)]
    if case == "reshape":
        b = a * 1
        out = f["Exp_"].apply(b.view(2, 2))
        ((b * c).sum() + (out * 2).sum()).backward()
        return [_np(b), _np(a.grad)]
    if case == "view_outside_the_graph":  # a buffer that requires no grad joins the graph through the write
        buf = lib.zeros(4, dtype=lib.float64)
        out = f["AddInto"].apply(buf[1:3], a[:2] * 1)
        ((buf * c).sum() + (out * out).sum()).backward()
        return [_np(buf), _np(a.grad), np.array([out._version, buf._version])]
    if case == "double_backward":
        b = a * 1
        f["Exp_"].apply(b[1:3])
        (g,) = lib.autograd.grad((b * b).sum(), a, create_graph=True)
        return [_np(g), _np(lib.autograd.grad(g.sum(), a)[0])]
    raise KeyError(case)


@pytest.mark.parametrize(
    "case",
    ["slice", "saved_output", "view_of_view", "transpose", "reshape", "view_outside_the_graph", "double_backward"],
)
def test_mark_dirty_on_a_view_matches_torch(case: str) -> None:
    got, expected = _case(ds, case), _case(torch, case)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12, err_msg=case)


def test_a_reader_of_the_base_before_the_write_raises_as_torch() -> None:
    for lib in (ds, torch):
        a = lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64, requires_grad=True)
        b = a * 1
        s = b.sin()  # saves b's values before the Function wrote them
        _functions(lib)["MulTwo"].apply(b[1:3])
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            (s.sum() + b.sum()).backward()


def test_mark_dirty_on_a_view_refusals_are_torchs() -> None:
    for lib in (ds, torch):
        f = _functions(lib)
        leaf = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
            f["MulTwo"].apply(leaf[1:])
        with pytest.raises(RuntimeError, match="your Function cannot return more than one Tensor"):
            f["AddIntoTwo"].apply(lib.zeros(4)[:2], lib.ones(2, requires_grad=True))
