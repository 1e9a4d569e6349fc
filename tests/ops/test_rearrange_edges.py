"""Edge cases of shape ops against torch 2.13: diff with n=0, hsplit/vsplit/dsplit of a size the
sections do not divide, meshgrid of mixed dtypes."""

from __future__ import annotations

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def test_diff_with_order_zero_returns_a_copy_of_the_input_as_torch() -> None:
    for L in (torch, ds):
        x = L.tensor([[1.0, 2.0]])
        y = L.diff(x, n=0, dim=1, prepend=L.tensor([[9.0]]), append=L.tensor([[9.0]]))
        assert y.tolist() == [[1.0, 2.0]]
        y.add_(1)
        assert x.tolist() == [[1.0, 2.0]]  # a copy, not x itself
        assert L.diff(x, n=0).tolist() == [[1.0, 2.0]]
        with pytest.raises(RuntimeError):  # prepend's shape is still checked
            L.diff(x, n=0, dim=1, prepend=L.ones(3, 3))


def test_diff_with_order_zero_passes_the_gradient_through() -> None:
    x = ds.tensor([1.0, 4.0], requires_grad=True)
    (ds.diff(x, n=0) * ds.tensor([2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [2.0, 3.0]


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.hsplit(L.ones(1, 5), 3),
        lambda L: L.hsplit(L.ones(5), 3),
        lambda L: L.hsplit(L.ones(1, 6), 0),
        lambda L: L.hsplit(L.ones(1, 5), L.tensor(3)),
        lambda L: L.vsplit(L.ones(5, 2), 2),
        lambda L: L.vsplit(L.ones(5), 5),
        lambda L: L.dsplit(L.ones(1, 1, 4), 3),
        lambda L: L.dsplit(L.ones(5, 2), 2),
        lambda L: L.ones(1, 5).hsplit(3),
    ],
)
def test_directional_splits_refuse_what_torch_refuses(call) -> None:
    with pytest.raises(RuntimeError):
        call(torch)
    with pytest.raises(ds.errors.ShapeError):  # a RuntimeError too
        call(ds)


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.hsplit(L.ones(1, 6), 3),
        lambda L: L.hsplit(L.ones(6), 2),
        lambda L: L.hsplit(L.ones(1, 5), [1, 3]),
        lambda L: L.hsplit(L.ones(1, 0), 3),
        lambda L: L.vsplit(L.ones(4, 2), [3]),
        lambda L: L.dsplit(L.ones(1, 1, 6), L.tensor(2)),
    ],
)
def test_directional_splits_give_torchs_pieces(call) -> None:
    assert [tuple(t.shape) for t in call(ds)] == [tuple(t.shape) for t in call(torch)]


def test_meshgrid_refuses_tensors_of_different_dtypes_as_torch() -> None:
    for L in (torch, ds):
        with pytest.raises(RuntimeError, match="same dtype"):
            L.meshgrid(L.ones(2, dtype=L.float16), L.ones(3, dtype=L.uint8), indexing="ij")
        grids = L.meshgrid(L.ones(2, dtype=L.int32), L.ones(3, dtype=L.int32), indexing="xy")
        assert [tuple(g.shape) for g in grids] == [(3, 2), (3, 2)]
