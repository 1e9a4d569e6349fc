"""The *_copy functions against torch: values, shapes, dtypes, gradients (float64), fresh memory and
the errors of bad arguments."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

X = np.arange(24, dtype=np.float64).reshape(2, 3, 4) * 0.5 - 3.0

# (name, input shape, args, kwargs): each is called as fn(x, *args, **kwargs) on both libraries
CASES: list[tuple[str, tuple[int, ...], tuple[Any, ...], dict[str, Any]]] = [
    ("alias_copy", (2, 3, 4), (), {}),
    ("diagonal_copy", (2, 3, 4), (), {}),
    ("diagonal_copy", (2, 3, 4), (1, -1, 0), {}),
    ("diagonal_copy", (3, 4), (-1,), {}),
    ("expand_copy", (3, 1), ((2, -1, 4),), {}),
    ("expand_copy", (3, 1), ([3, 5],), {"implicit": True}),
    ("permute_copy", (2, 3, 4), ((2, 0, 1),), {}),
    ("select_copy", (2, 3, 4), (1, -1), {}),
    ("select_copy", (2, 3, 4), (-1, 2), {}),
    ("slice_copy", (2, 3, 4), (), {}),
    ("slice_copy", (2, 3, 4), (2, 1, None, 2), {}),
    ("slice_copy", (2, 3, 4), (1, -10, 10), {}),
    ("slice_copy", (2, 3, 4), (-1, -3, -1), {}),
    ("squeeze_copy", (1, 3, 1), (), {}),
    ("squeeze_copy", (1, 3, 1), (0,), {}),
    ("squeeze_copy", (1, 3, 1), ((0, 2),), {}),
    ("squeeze_copy", (2, 3), (0,), {}),
    ("t_copy", (3, 4), (), {}),
    ("t_copy", (4,), (), {}),
    ("transpose_copy", (2, 3, 4), (0, 2), {}),
    ("unsqueeze_copy", (2, 3), (-1,), {}),
    ("unsqueeze_copy", (2, 3), (0,), {}),
    ("view_copy", (2, 3, 4), ((6, -1),), {}),
    ("view_copy", (2, 3, 4), ((24,),), {}),
    ("narrow_copy", (2, 3, 4), (1, 1, 2), {}),
    ("narrow_copy", (2, 3, 4), (-1, 2, 2), {}),
]
SPLITS = [
    ("split_copy", (5, 2), (2,), {}),
    ("split_copy", (2, 5), (3, 1), {}),
    ("split_with_sizes_copy", (5, 2), ([1, 4],), {}),
    ("split_with_sizes_copy", (2, 5), ([2, 0, 3], -1), {}),
    ("unbind_copy", (2, 3), (), {}),
    ("unbind_copy", (2, 3), (1,), {}),
]


def _data(shape: tuple[int, ...]) -> np.ndarray:
    return (np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) * 0.75 - 2.0) if shape else np.ones(())


@pytest.mark.parametrize(("name", "shape", "args", "kwargs"), CASES)
def test_matches_torch_values_and_gradient(name: str, shape: tuple[int, ...], args: Any, kwargs: Any) -> None:
    data = _data(shape)
    ours = ds.tensor(data, dtype=ds.float64, requires_grad=True)
    theirs = torch.tensor(data, requires_grad=True)
    y = getattr(ds, name)(ours, *args, **kwargs)
    ty = getattr(torch, name)(theirs, *args, **kwargs)
    assert y.shape == tuple(ty.shape) and y.dtype == ds.float64
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    g = np.random.default_rng(0).standard_normal(y.shape)
    (y * ds.tensor(g, dtype=ds.float64)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("name", "shape", "args", "kwargs"), SPLITS)
def test_splits_match_torch_values_and_gradient(name: str, shape: tuple[int, ...], args: Any, kwargs: Any) -> None:
    data = _data(shape)
    ours = ds.tensor(data, dtype=ds.float64, requires_grad=True)
    theirs = torch.tensor(data, requires_grad=True)
    parts = getattr(ds, name)(ours, *args, **kwargs)
    tparts = getattr(torch, name)(theirs, *args, **kwargs)
    assert isinstance(parts, tuple) and len(parts) == len(tparts)
    loss, tloss = 0, 0
    for i, (p, tp) in enumerate(zip(parts, tparts)):
        assert p.shape == tuple(tp.shape)
        np.testing.assert_array_equal(p.detach().numpy(), tp.detach().numpy())
        loss = loss + (p * (i + 1.5)).sum()
        tloss = tloss + (tp * (i + 1.5)).sum()
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12)


@pytest.mark.host_only
@pytest.mark.parametrize(("name", "shape", "args", "kwargs"), CASES + SPLITS)
def test_results_have_their_own_memory(name: str, shape: tuple[int, ...], args: Any, kwargs: Any) -> None:
    x = ds.tensor(_data(shape))
    before = x.numpy().copy()
    out = getattr(ds, name)(x, *args, **kwargs)
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        assert not np.shares_memory(o.numpy(), x.numpy())
        o.fill_(123.0)
    np.testing.assert_array_equal(x.numpy(), before)  # writes to the copies never reach the input
    kept = [o.numpy().copy() for o in outs]
    x.fill_(-7.0)
    for o, k in zip(outs, kept):
        np.testing.assert_array_equal(o.numpy(), k)  # and writes to the input never reach the copies


def test_detach_copy_is_a_copy_outside_the_graph() -> None:
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    y = ds.detach_copy(x)
    assert not y.requires_grad and y.grad_fn is None
    np.testing.assert_array_equal(y.numpy(), [1.0, 2.0])
    y.add_(1.0)
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0])


def test_view_copy_of_a_dtype_reinterprets_the_bytes_as_torch() -> None:
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    ours = ds.view_copy(ds.tensor(data), ds.int32)
    theirs = torch.view_copy(torch.tensor(data), torch.int32)
    assert ours.dtype == ds.int32
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    eight = ds.view_copy(ds.tensor(np.arange(6).reshape(2, 3), dtype=ds.int16), ds.int8)
    assert eight.shape == tuple(torch.view_copy(torch.arange(6, dtype=torch.int16).reshape(2, 3), torch.int8).shape)


def test_view_copy_of_a_transposed_tensor_copies_in_order_as_torch() -> None:
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(
        ds.view_copy(ds.tensor(x).t(), (6,)).numpy(), torch.view_copy(torch.tensor(x).t(), (6,)).numpy()
    )


def test_narrow_copy_method_and_tensor_start() -> None:
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(
        ds.tensor(x).narrow_copy(0, 1, 2).numpy(), torch.tensor(x).narrow_copy(0, 1, 2).numpy()
    )
    np.testing.assert_array_equal(ds.narrow_copy(ds.tensor(x), 1, ds.tensor(1), 2).numpy(), x[:, 1:3])
    # a negative start counts from the end (torch's backward fails there, so only the values are compared)
    np.testing.assert_array_equal(
        ds.narrow_copy(ds.tensor(x), -1, -3, 2).numpy(), torch.narrow_copy(torch.tensor(x), -1, -3, 2).numpy()
    )


def test_integer_and_boolean_inputs_keep_their_dtype() -> None:
    x = ds.tensor([[1, 2], [3, 4]])
    assert ds.t_copy(x).dtype == ds.int64
    assert ds.unsqueeze_copy(ds.tensor([True, False]), 0).dtype == ds.bool


@pytest.mark.parametrize(
    "call",
    [
        "select_copy(x, 1, 3)",
        "narrow_copy(x, 1, 2, 2)",
        "slice_copy(x, 5)",
        "slice_copy(x, 1, 0, 3, -1)",
        "slice_copy(x, 1, 0, 3, 0)",
        "split_copy(x, 0)",
        "split_with_sizes_copy(x, [1, 1], 1)",
        "t_copy(ones(2, 2, 2))",
        "expand_copy(x, (3, 3))",
        "permute_copy(x, (0, 0))",
        "transpose_copy(x, 0, 2)",
        "unsqueeze_copy(x, 3)",
        "diagonal_copy(x, 0, 0, 0)",
        "view_copy(x, (4, 2))",
        "split_copy(x, [1, 2], 1)",
        "select_copy(x, 1, 1.5)",
    ],
)
def test_bad_arguments_raise_where_torch_does(call: str) -> None:
    with pytest.raises((RuntimeError, IndexError, TypeError, ValueError)):
        eval("L." + call.replace("ones(", "L.ones("), {"L": torch, "x": torch.arange(6.0).reshape(2, 3)})
    with pytest.raises(ds.DownslopeError):
        eval("L." + call.replace("ones(", "L.ones("), {"L": ds, "x": ds.arange(6.0).reshape(2, 3)})


def test_create_graph_through_a_copy() -> None:
    x = ds.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=ds.float64, requires_grad=True)
    y = (ds.transpose_copy(x, 0, 1) ** 3).sum()
    (g,) = ds.autograd.grad(y, x, create_graph=True)
    (h,) = ds.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.detach().numpy())
