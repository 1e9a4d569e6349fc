"""A second backward through the same graph without retain_graph, checked against PyTorch: it works where
every op on the path saved no tensor (indices built from shapes, as tril's mask, a diagonal's index or
repeat's grid, count as sizes there), and it raises where an op saved one (exp, a user's index)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds

_X = np.random.default_rng(0).standard_normal((3, 4, 4))


def _both(build):
    """``build(lib, x)`` on the same float64 input in downslope and torch: (downslope's, torch's) of
    (x, y)."""
    out = []
    for lib in (ds, torch):
        x = lib.tensor(_X.copy(), dtype=lib.float64, requires_grad=True)
        out.append((x, build(lib, x)))
    return out


def _np(t):
    return t.detach().numpy()


# ops whose backward needs no saved tensor in torch: a second grad through y works there
_KEEPS = {
    "triu": lambda lib, x: lib.triu(x),
    "tril": lambda lib, x: lib.tril(x, -1),
    "tril_in_place": lambda lib, x: x.clone().tril_(1),
    "diag_of_matrix": lambda lib, x: lib.diag(x[0], 1),
    "diag_of_vector": lambda lib, x: lib.diag(x[0, 0], -1),
    "diagflat": lambda lib, x: lib.diagflat(x[0, :2]),
    "diagonal": lambda lib, x: lib.diagonal(x, 1, 1, 2),
    "tensor_diagonal": lambda lib, x: x.diagonal(0, 0, 2),
    "linalg_diagonal": lambda lib, x: lib.linalg.diagonal(x, offset=-1),
    "diag_embed": lambda lib, x: lib.diag_embed(x, 1),
    "diagonal_scatter": lambda lib, x: lib.diagonal_scatter(x[0], x[1, 0]),
    "repeat": lambda lib, x: x.repeat(2, 1, 3),
    "tile": lambda lib, x: lib.tile(x, (2, 1)),
    "trace": lambda lib, x: lib.trace(x[0]),
    "trapezoid": lambda lib, x: lib.trapezoid(x),
    "trapezoid_dx": lambda lib, x: lib.trapezoid(x, dx=0.3, dim=1),
    "trapz_int_dx": lambda lib, x: lib.trapz(x, dx=3),
    "cumulative_trapezoid_dx": lambda lib, x: lib.cumulative_trapezoid(x, dx=0.5),
    "einsum_trace": lambda lib, x: lib.einsum("ii->", x[0]),
    "einsum_batched_diagonal": lambda lib, x: lib.einsum("bii->bi", x),
    "einsum_sum": lambda lib, x: lib.einsum("bij->", x),
    "repeat_interleave": lambda lib, x: lib.repeat_interleave(x, 2, dim=1),
    "repeat_interleave_flat": lambda lib, x: lib.repeat_interleave(x, 3),
}


@pytest.mark.parametrize("name", sorted(_KEEPS))
def test_second_grad_without_retain_graph_matches_torch(name):
    """As a scientist's code does: one gradient of a loss of y, then another of a second loss of the same
    y, with no retain_graph; both equal torch's."""
    (x, y), (tx, ty) = _both(_KEEPS[name])
    (g1,) = ds.autograd.grad(y.abs().sum(), x)
    (t1,) = torch.autograd.grad(ty.abs().sum(), tx)
    (g2,) = ds.autograd.grad((y * y).sum(), x)
    (t2,) = torch.autograd.grad((ty * ty).sum(), tx)
    np.testing.assert_allclose(g1.numpy(), _np(t1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g2.numpy(), _np(t2), rtol=1e-12, atol=1e-12)
    (g3,) = ds.autograd.grad(y.sum(), x)  # and a third: nothing was freed
    np.testing.assert_allclose(g3.numpy(), _np(torch.autograd.grad(ty.sum(), tx)[0]), rtol=1e-12, atol=1e-12)


def test_second_backward_through_triu_accumulates_as_torch():
    """The brief's repro with .backward(): two backward calls through T = triu(M) add into M.grad."""
    grads = []
    for lib in (ds, torch):
        m = lib.tensor(_X[0].copy(), dtype=lib.float64, requires_grad=True)
        t = lib.triu(m)
        t.abs().sum().backward()
        (t * 2).sum().backward()
        grads.append(_np(m.grad))
    np.testing.assert_array_equal(grads[0], grads[1])


# ops whose backward reads a saved tensor in torch: the second grad raises there, and here
_REFUSES = {
    "exp": lambda lib, x: x.exp(),
    "times_python_number": lambda lib, x: x * 2,
    "relu": lambda lib, x: lib.relu(x),
    "triu_after_exp": lambda lib, x: lib.triu(x.exp()),
    "diagonal_then_sin": lambda lib, x: x.diagonal(dim1=1, dim2=2).sin(),
    "index_by_list": lambda lib, x: x[[0, 2]],
    "index_by_tensor": lambda lib, x: x[lib.tensor([2, 0])],
    "index_by_mask": lambda lib, x: x[x > 0],
    "tril_indices_as_index": lambda lib, x: x[0][tuple(lib.tril_indices(4, 4))],
    "index_select": lambda lib, x: lib.index_select(x, 1, lib.tensor([1, 0])),
    "repeat_interleave_tensor_counts": lambda lib, x: lib.repeat_interleave(x, lib.tensor([1, 0, 2, 1]), dim=2),
    "repeat_interleave_0d_tensor": lambda lib, x: lib.repeat_interleave(x, lib.tensor(2), dim=1),
    "trapezoid_with_x": lambda lib, x: lib.trapezoid(x, lib.tensor([0.0, 1.0, 3.0, 4.0], dtype=lib.float64)),
    "einsum_two_operands": lambda lib, x: lib.einsum("bij,bjk->bik", x, x),
    "einsum_with_constant": lambda lib, x: lib.einsum("bij,jk->bik", x, lib.ones(4, 2, dtype=lib.float64)),
    "trace_of_product": lambda lib, x: lib.trace(x[0] @ x[1]),
}


@pytest.mark.parametrize("name", sorted(_REFUSES))
def test_second_grad_refused_where_torch_refuses(name):
    (x, y), (tx, ty) = _both(_REFUSES[name])
    torch.autograd.grad(ty.sum(), tx)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        torch.autograd.grad(ty.sum(), tx)
    ds.autograd.grad(y.sum(), x)
    with pytest.raises(ds.errors.StateError, match="Trying to backward through the graph a second time"):
        ds.autograd.grad(y.sum(), x)


def test_index_kept_for_a_second_backward_survives_the_tensor_it_indexed():
    """The kept diagonal index belongs to the node: a second backward after the input was changed in place
    (which the rule does not read) still scatters to the diagonal, as torch's."""
    grads = []
    for lib in (ds, torch):
        m = lib.tensor(_X[0].copy(), dtype=lib.float64, requires_grad=True)
        d = m.diagonal(1)
        lib.autograd.grad(d.sum(), m)
        with lib.no_grad():
            m.mul_(3.0)
        grads.append(_np(lib.autograd.grad((d * lib.arange(3.0, dtype=lib.float64)).sum(), m)[0]))
    np.testing.assert_array_equal(grads[0], grads[1])


def test_trapezoid_keeps_its_values_and_node_name():
    y = _X[0].astype(np.float32)
    for dx in (None, 0.1, 2):
        kw = {} if dx is None else {"dx": dx}
        got = ds.trapezoid(ds.tensor(y, requires_grad=True), **kw)
        want = torch.trapezoid(torch.tensor(y, requires_grad=True), **kw)
        assert got.dtype == ds.float32
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-6, atol=1e-6)
        assert got.grad_fn.name() == want.grad_fn.name() == "MulBackward1"


def test_unused_input_names_its_index_and_the_allow_unused_hint():
    """torch's message, word for word: the index of the unused input in ``inputs``, and allow_unused."""
    for order in ((0, 1), (1, 0)):
        msgs = []
        for lib in (ds, torch):
            a = lib.tensor([1.0, 2.0], requires_grad=True)
            b = lib.tensor([3.0, 4.0, 5.0], requires_grad=True)
            inputs = [(a, b)[k] for k in order]
            with pytest.raises(RuntimeError) as caught:
                lib.autograd.grad((a * 2).sum(), inputs)
            msgs.append(str(caught.value))
        assert msgs[0] == msgs[1]
        assert f"The differentiated Tensor at index {order.index(1)} appears" in msgs[0]
        assert "Set allow_unused=True" in msgs[0]
