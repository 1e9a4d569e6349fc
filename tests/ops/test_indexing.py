"""Indexing (downslope.ops.indexing) against PyTorch: where an integer mixed with advanced indices puts
the indexed dims, and how repeated indices share a gradient."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope.errors import OutOfRangeError, ShapeError

torch = pytest.importorskip("torch")

_X = np.arange(3 * 3 * 4 * 5, dtype=np.float64).reshape(3, 3, 4, 5)


def _mixed_indices(m):
    """Indices mixing integers (Python ints and 0-d integer tensors) with advanced indices."""
    i = m.tensor([2, 0])
    return [
        (0, slice(None), i),
        (m.tensor(0), slice(None), i),
        (slice(None), 0, slice(None), i),
        (i, slice(None), 0),
        (i, slice(None), 0, i),
        (0, slice(None), i, None),
        (None, 0, slice(None), i),
        (Ellipsis, 0, slice(None), i),
        (0, Ellipsis, 1, i),
        (1, slice(None), [0, 1], 2),
        (0, slice(None), True),
        (0, slice(None), m.tensor([[1, 2], [0, 1]])),
        (0, m.tensor([True, False, True]), slice(None), 1),
        (m.tensor(0), slice(None), i, m.tensor(1)),
    ]


@pytest.mark.parametrize("device", ["cpu", "strict"])
@pytest.mark.parametrize("case", range(len(_mixed_indices(torch))))
def test_an_integer_mixed_with_advanced_indices_selects_first_like_torch(check_op, device, case):
    ours, theirs = _mixed_indices(ds)[case], _mixed_indices(torch)[case]
    check_op(lambda t: t[ours], lambda t: t[theirs], [_X], device=device)


@pytest.mark.parametrize("case", range(len(_mixed_indices(torch))))
def test_writing_through_a_mixed_index_matches_torch(case):
    ours, theirs = _mixed_indices(ds)[case], _mixed_indices(torch)[case]
    shape = torch.zeros(_X.shape)[theirs].shape
    value = np.random.default_rng(case).standard_normal(shape)
    # plain assignment
    ref = torch.zeros(_X.shape, dtype=torch.float64)
    ref[theirs] = torch.tensor(value)
    got = ds.zeros(*_X.shape, dtype=ds.float64)
    got[ours] = ds.tensor(value, dtype=ds.float64)
    np.testing.assert_array_equal(got.numpy(), ref.numpy())
    # recorded assignment and an in-place op through the index: values and gradients
    tx, tv = torch.tensor(_X, requires_grad=True), torch.tensor(value, requires_grad=True)
    dx = ds.tensor(_X, dtype=ds.float64, requires_grad=True)
    dv = ds.tensor(value, dtype=ds.float64, requires_grad=True)
    ty, dy = tx * 1, dx * 1
    ty[theirs] = tv * 2
    dy[ours] = dv * 2
    ty[theirs] += tv
    dy[ours] += dv
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy())
    weights = np.random.default_rng(1).standard_normal(_X.shape)
    (ty * torch.tensor(weights)).sum().backward()
    (dy * ds.tensor(weights, dtype=ds.float64)).sum().backward()
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy())
    np.testing.assert_allclose(dv.grad.numpy(), tv.grad.numpy())


@pytest.mark.parametrize("device", ["cpu", "strict"])
def test_writing_through_a_mixed_index_on_a_device(device):
    x = ds.zeros(2, 3, 3, device=device)
    x[0, :, ds.tensor([2, 0, 1], device=device)] = ds.tensor([[1.0, 2.0, 3.0]] * 3, device=device)
    ref = torch.zeros(2, 3, 3)
    ref[0, :, torch.tensor([2, 0, 1])] = torch.tensor([[1.0, 2.0, 3.0]] * 3)
    np.testing.assert_array_equal(x.cpu().numpy(), ref.numpy())


@pytest.mark.parametrize("device", ["cpu", "strict"])
@pytest.mark.parametrize("index", [[1, 1, 1], [0, 2, 0]])
def test_index_fill_with_repeated_indices_gives_the_value_one_gradient_per_slice_like_torch(check_op, device, index):
    check_op(
        lambda t, v: t.index_fill(0, ds.tensor(index, device=device), v),
        lambda t, v: t.index_fill(0, torch.tensor(index), v),
        [np.zeros((3, 2)), np.array(2.0)],
        device=device,
    )


@pytest.mark.parametrize("value", [2.5, "tensor", 3])
@pytest.mark.parametrize("dtype", ["int64", "bool", "float16", "float32"])
def test_masked_fill_keeps_the_tensor_dtype_like_torch(value, dtype):
    data, mask = [1, 0, 2], [True, False, True]
    ours = ds.tensor(data, dtype=getattr(ds, dtype)).masked_fill(
        ds.tensor(mask), ds.tensor(2.5, dtype=ds.float64) if value == "tensor" else value
    )
    theirs = torch.tensor(data, dtype=getattr(torch, dtype)).masked_fill(
        torch.tensor(mask), torch.tensor(2.5, dtype=torch.float64) if value == "tensor" else value
    )
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scatter_reduce_matches_torch_with_gradients(reduce, include_self, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    x, idx, src = rng.standard_normal((3, 5)), rng.integers(0, 5, (3, 4)), rng.standard_normal((3, 4))
    src[0, 1], idx[0, 1] = src[0, 0], idx[0, 0]  # a tie within one group (amax/amin share its gradient)
    x[1, idx[1, 2]] = src[1, 2]  # a tie with self
    src[2, 3], x[2, idx[2, 0]] = 0.0, 0.0  # zeros in products
    mine = [ds.tensor(a, dtype=ds.float64, requires_grad=True) for a in (x, src)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, src)]
    out = mine[0].scatter_reduce(1, ds.tensor(idx), mine[1], reduce, include_self=include_self)
    ref = theirs[0].scatter_reduce(1, torch.tensor(idx), theirs[1], reduce, include_self=include_self)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    weights = rng.standard_normal(out.shape)
    (out * ds.tensor(weights, dtype=ds.float64)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_index_reduce_and_scatter_reduce_arguments_match_torch():
    torch = pytest.importorskip("torch")
    x, source = np.arange(6.0).reshape(3, 2) + 1, np.array([[2.0, 3.0], [4.0, 5.0], [6.0, 7.0]])
    for reduce in ("prod", "mean", "amax", "amin"):
        for include_self in (True, False):
            mine = ds.tensor(x, dtype=ds.float64).index_reduce(
                0, ds.tensor([2, 0, 2]), ds.tensor(source, dtype=ds.float64), reduce, include_self=include_self
            )
            ref = torch.tensor(x).index_reduce(
                0, torch.tensor([2, 0, 2]), torch.tensor(source), reduce, include_self=include_self
            )
            np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=1e-12)
    for reduce in ("add", "multiply"):
        mine = ds.ones(2, 3).scatter(1, ds.tensor([[0, 0], [2, 1]]), 3.0, reduce=reduce)
        ref = torch.ones(2, 3).scatter(1, torch.tensor([[0, 0], [2, 1]]), 3.0, reduce=reduce)
        np.testing.assert_array_equal(mine.numpy(), ref.numpy())
    t = ds.zeros(3)
    t.scatter_reduce_(0, ds.tensor([0, 0, 2]), ds.tensor([1.0, 5.0, 2.0]), "amax", include_self=False)
    assert t.tolist() == [5.0, 0.0, 2.0]
    with pytest.raises(RuntimeError, match="reduce argument must be either"):
        torch.zeros(3).scatter_reduce(0, torch.tensor([0]), torch.tensor([1.0]), "add")
    with pytest.raises(ds.DownslopeError, match="reduce must be one of"):  # ('max' is torch's alias of 'amax')
        ds.zeros(3).scatter_reduce(0, ds.tensor([0]), ds.tensor([1.0]), "add")


def test_masks_must_be_boolean_tensors_as_in_torch() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    float_mask = np.array([[0.3, 0, -1e9], [0, 0, 0]], np.float32)
    with pytest.raises(RuntimeError):
        torch.masked_fill(torch.tensor(x), torch.tensor(float_mask), 99.0)
    with pytest.raises(ds.errors.ArgumentTypeError, match="masked_fill: expected a boolean mask, got float32"):
        ds.masked_fill(ds.tensor(x), ds.tensor(float_mask), 99.0)  # was "nonzero is true"
    with pytest.raises(ds.errors.ArgumentTypeError, match="masked_fill_: expected a boolean mask"):
        ds.tensor(x).masked_fill_(ds.tensor(float_mask), 99.0)
    with pytest.raises(RuntimeError):
        torch.masked_select(torch.tensor(x), torch.tensor(float_mask))
    with pytest.raises(ds.errors.ArgumentTypeError, match="masked_select: expected a boolean mask, got float32"):
        ds.masked_select(ds.tensor(x), ds.tensor(float_mask))
    for junk in (None, "a"):
        with pytest.raises(TypeError):
            torch.masked_select(torch.tensor(x), junk)
        with pytest.raises(ds.errors.ArgumentTypeError, match="masked_select: expected a boolean mask tensor"):
            ds.masked_select(ds.tensor(x), junk)
    with pytest.raises(RuntimeError):
        torch.masked_select(torch.tensor(x), torch.ones(3, 2, dtype=torch.bool))
    with pytest.raises(ds.errors.ShapeError, match=r"masked_select: mask of shape \(3, 2\)"):
        ds.masked_select(ds.tensor(x), ds.ones(3, 2).bool())
    # boolean masks, broadcast both ways as torch does
    m = np.array([True, False, True])
    np.testing.assert_array_equal(
        ds.masked_select(ds.tensor(x), ds.tensor(m)).numpy(),
        torch.masked_select(torch.tensor(x), torch.tensor(m)).numpy(),
    )
    np.testing.assert_array_equal(
        ds.masked_select(ds.tensor(x[0]), ds.tensor(np.ones((2, 3), bool))).numpy(),
        torch.masked_select(torch.tensor(x[0]), torch.ones(2, 3, dtype=torch.bool)).numpy(),
    )
    np.testing.assert_array_equal(
        ds.masked_fill(ds.tensor(x), ds.tensor(m), 9.0).numpy(),
        torch.tensor(x).masked_fill(torch.tensor(m), 9.0).numpy(),
    )


def _zero_dim_cases():
    return [
        ("scatter value", (5,), lambda lib, x: x.scatter(0, lib.tensor(2), value=1.5)),
        ("scatter 0-d src", (5,), lambda lib, x: x.scatter(0, lib.tensor(2), lib.tensor(3.0))),
        ("scatter 1-d src", (5,), lambda lib, x: x.scatter(0, lib.tensor(2), lib.tensor([3.0, 4.0]))),
        ("scatter 0-d self", (), lambda lib, x: x.scatter(-1, lib.tensor(0), value=2.0)),
        ("scatter 0-d self 1-d index", (), lambda lib, x: x.scatter(0, lib.tensor([0]), lib.tensor([4.0]))),
        ("scatter reduce=add", (5,), lambda lib, x: x.scatter(0, lib.tensor(2), 2.0, reduce="add")),
        ("scatter_add", (5,), lambda lib, x: x.scatter_add(0, lib.tensor(2), lib.tensor(3.0))),
        ("scatter_reduce", (5,), lambda lib, x: x.scatter_reduce(0, lib.tensor(1), lib.tensor(9.0), "amax")),
        ("gather", (5,), lambda lib, x: x.gather(0, lib.tensor(3))),
        ("gather 0-d self", (), lambda lib, x: x.gather(0, lib.tensor([0, 0]))),
        ("in place scatter_", (5,), lambda lib, x: x.clone().scatter_(0, lib.tensor(2), value=1.0)),
    ]


@pytest.mark.parametrize("name, shape, op", _zero_dim_cases(), ids=[c[0] for c in _zero_dim_cases()])
def test_gather_and_scatter_count_a_0d_tensor_as_1d_like_torch(name, shape, op):
    torch = pytest.importorskip("torch")
    base = np.arange(1, 6, dtype=np.float32)[: int(np.prod(shape))].reshape(shape)  # the srcs are float32
    x, tx = ds.tensor(base, requires_grad=True), torch.tensor(base, requires_grad=True)
    y, ty = op(ds, x), op(torch, tx)
    assert tuple(y.shape) == tuple(ty.shape)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy())
    if "reduce=" in name:  # torch has no derivative for scatter(reduce=...)
        return
    weights = np.arange(1, int(np.prod(ty.shape)) + 1, dtype=np.float32).reshape(tuple(ty.shape))
    (y * ds.tensor(weights)).sum().backward()
    (ty * torch.tensor(weights)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())  # small integers: exact


def test_scatter_src_gradient_through_a_0d_index_matches_torch():
    torch = pytest.importorskip("torch")
    grads = []
    for lib in (ds, torch):
        src = lib.tensor(3.0, dtype=lib.float64, requires_grad=True)
        x = lib.ones(5, dtype=lib.float64, requires_grad=True)
        (x.scatter(0, lib.tensor(2), src) * lib.arange(5, dtype=lib.float64)).sum().backward()
        grads.append((x.grad.numpy(), float(src.grad)))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    assert grads[0][1] == grads[1][1] == 2.0


@pytest.mark.parametrize(
    "shape, index, dim",
    [((2, 3), 0, 1), ((2, 3), [0], 1), ((5,), 7, 0), ((5,), 2, 1), ((), 0, 1)],
)
def test_gather_and_scatter_with_a_0d_index_still_refuse_what_torch_refuses(shape, index, dim):
    x = ds.zeros(*shape)
    with pytest.raises((ShapeError, OutOfRangeError)):
        x.scatter(dim, ds.tensor(index), value=1.0)
    with pytest.raises((ShapeError, OutOfRangeError)):
        x.gather(dim, ds.tensor(index))
