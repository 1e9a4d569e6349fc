"""The everyday torch namespace and Tensor methods (creation, joining, pointwise, reductions, comparisons,
conversions), each compared with PyTorch; the differentiable ones also by their gradients (check_op) and
by finite differences in float64 (ds.gradcheck)."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def _u(seed, shape, dtype=np.float64, lo=-2.0, hi=2.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(dtype)


# ---------------------------------------------------------------------- differentiable ops, against torch
GRAD_CASES = {
    "mm": (lambda a, b: a.mm(b), lambda a, b: a.mm(b), [(3, 4), (4, 2)]),
    "ds.mm": (lambda a, b: ds.mm(a, b), lambda a, b: torch.mm(a, b), [(3, 4), (4, 2)]),
    "bmm": (lambda a, b: a.bmm(b), lambda a, b: a.bmm(b), [(2, 3, 4), (2, 4, 5)]),
    "mv": (lambda a, b: a.mv(b), lambda a, b: a.mv(b), [(3, 4), (4,)]),
    "dot": (lambda a, b: ds.dot(a, b), lambda a, b: torch.dot(a, b), [(4,), (4,)]),
    "outer": (lambda a, b: a.outer(b), lambda a, b: a.outer(b), [(3,), (4,)]),
    "matmul_method": (lambda a, b: a.matmul(b), lambda a, b: a.matmul(b), [(2, 3, 4), (4,)]),
    "t": (lambda a: a.t(), lambda a: a.t(), [(3, 4)]),
    "ds.t_1d": (lambda a: ds.t(a), lambda a: torch.t(a), [(3,)]),
    "pow_method": (lambda a: a.abs().pow(1.5), lambda a: a.abs().pow(1.5), [(3, 4)]),
    "split": (
        lambda a: a.split(2, 1)[1] * 2 + a.split(2, 1)[0],
        lambda a: a.split(2, 1)[1] * 2 + a.split(2, 1)[0],
        [(3, 4)],
    ),
    "split_sizes": (lambda a: a.split([1, 3], 1)[1], lambda a: a.split([1, 3], 1)[1], [(3, 4)]),
    "chunk_uneven": (lambda a: a.chunk(3, 0)[2], lambda a: a.chunk(3, 0)[2], [(5, 2)]),
    "narrow": (lambda a: a.narrow(1, 1, 2), lambda a: a.narrow(1, 1, 2), [(3, 4)]),
    "narrow_negative_start": (lambda a: ds.narrow(a, 0, -2, 2), lambda a: torch.narrow(a, 0, -2, 2), [(3, 4)]),
    "unbind": (lambda a: a.unbind(1)[2], lambda a: a.unbind(1)[2], [(3, 4)]),
    "repeat": (lambda a: a.repeat(2, 1, 3), lambda a: a.repeat(2, 1, 3), [(3, 2)]),
    "tile": (lambda a: a.tile((2,)), lambda a: a.tile((2,)), [(3, 2)]),
    "flip": (lambda a: a.flip(0, 1), lambda a: a.flip(0, 1), [(3, 4)]),
    "index_select": (
        lambda a: a.index_select(1, ds.tensor([2, 0, 2])),
        lambda a: a.index_select(1, torch.tensor([2, 0, 2])),
        [(3, 4)],
    ),
    "masked_fill": (lambda a: a.masked_fill(a > 0, 0.5), lambda a: a.masked_fill(a > 0, 0.5), [(3, 4)]),
    "tril": (lambda a: a.tril(), lambda a: a.tril(), [(2, 3, 4)]),
    "triu_diag": (lambda a: ds.triu(a, 1), lambda a: torch.triu(a, 1), [(4, 4)]),
    "sort": (lambda a: a.sort(1).values, lambda a: a.sort(1).values, [(3, 4)]),
    "sort_descending": (lambda a: ds.sort(a, 0, True).values, lambda a: torch.sort(a, 0, True).values, [(3, 4)]),
    "topk": (lambda a: a.topk(2).values, lambda a: a.topk(2).values, [(3, 4)]),
    "topk_smallest": (
        lambda a: a.topk(3, 0, largest=False).values,
        lambda a: a.topk(3, 0, largest=False).values,
        [(3, 4)],
    ),
    "cumsum": (lambda a: a.cumsum(1), lambda a: a.cumsum(1), [(3, 4)]),
    "cumsum_dim0": (lambda a: ds.cumsum(a, 0), lambda a: torch.cumsum(a, 0), [(3, 4)]),
    "prod_dim": (lambda a: a.prod(1), lambda a: a.prod(1), [(3, 4)]),
    "prod_all": (lambda a: a.prod(), lambda a: a.prod(), [(2, 3)]),
    "prod_keepdim": (lambda a: ds.prod(a, 0, keepdim=True), lambda a: torch.prod(a, 0, keepdim=True), [(3, 4)]),
    "norm": (lambda a: a.norm(), lambda a: a.norm(), [(3, 4)]),
    "norm_dim": (lambda a: a.norm(dim=1, keepdim=True), lambda a: a.norm(dim=1, keepdim=True), [(3, 4)]),
    "norm_p1": (lambda a: ds.norm(a, 1, 0), lambda a: torch.norm(a, 1, 0), [(3, 4)]),
    "norm_p3": (lambda a: a.norm(3), lambda a: a.norm(3), [(3, 4)]),
    "norm_inf": (lambda a: a.norm(float("inf"), 1), lambda a: a.norm(float("inf"), 1), [(3, 4)]),
    "log1p": (lambda a: a.abs().log1p(), lambda a: a.abs().log1p(), [(3, 4)]),
    "expm1": (lambda a: ds.expm1(a), lambda a: torch.expm1(a), [(3, 4)]),
    "rsqrt": (lambda a: (a.abs() + 0.1).rsqrt(), lambda a: (a.abs() + 0.1).rsqrt(), [(3, 4)]),
    "square": (lambda a: a.square(), lambda a: a.square(), [(3, 4)]),
    "reciprocal": (lambda a: (a.abs() + 0.5).reciprocal(), lambda a: (a.abs() + 0.5).reciprocal(), [(3, 4)]),
    "sign": (lambda a: a.sign() * a, lambda a: a.sign() * a, [(3, 4)]),
    "floor_ceil_round": (
        lambda a: a.floor() + a.ceil() + ds.round(a) + a.trunc() + a,
        lambda a: a.floor() + a.ceil() + torch.round(a) + a.trunc() + a,
        [(3, 4)],
    ),
    "add_alpha": (lambda a, b: a.add(b, alpha=2), lambda a, b: a.add(b, alpha=2), [(3, 4), (4,)]),
    "sub_alpha": (lambda a, b: a.sub(b, alpha=0.5), lambda a, b: a.sub(b, alpha=0.5), [(3, 4), (3, 4)]),
    "lerp": (lambda a, b: a.lerp(b, 0.3), lambda a, b: a.lerp(b, 0.3), [(3, 4), (3, 4)]),
    "addcmul": (lambda a, b: ds.addcmul(a, b, b, value=2), lambda a, b: torch.addcmul(a, b, b, value=2), [(3,), (3,)]),
    "addcdiv": (
        lambda a, b: a.addcdiv(b, b.abs() + 1, value=0.5),
        lambda a, b: a.addcdiv(b, b.abs() + 1, value=0.5),
        [(3,), (3,)],
    ),
    "view_as": (lambda a, b: a.view_as(b) * b, lambda a, b: a.view_as(b) * b, [(3, 4), (2, 6)]),
    "reshape_as": (lambda a, b: a.reshape_as(b) * b, lambda a, b: a.reshape_as(b) * b, [(3, 4), (4, 3)]),
    "expand_as": (lambda a, b: a.expand_as(b) * b, lambda a, b: a.expand_as(b) * b, [(1, 4), (3, 4)]),
    "contiguous": (lambda a: a.t().contiguous(), lambda a: a.t().contiguous(), [(3, 4)]),
    "clone": (lambda a: a.clone() * 2, lambda a: a.clone() * 2, [(3, 4)]),
    "type_as": (lambda a, b: a.type_as(b) * b, lambda a, b: a.type_as(b) * b, [(3,), (3,)]),
    "hstack": (lambda a, b: ds.hstack([a, b]), lambda a, b: torch.hstack([a, b]), [(3, 2), (3, 4)]),
    "vstack": (lambda a, b: ds.vstack([a, b]), lambda a, b: torch.vstack([a, b]), [(4,), (2, 4)]),
    "concat": (lambda a, b: ds.concat([a, b], dim=1), lambda a, b: torch.concat([a, b], dim=1), [(3, 2), (3, 1)]),
    "where_method": (lambda a, b: a.where(a > 0, b), lambda a, b: a.where(a > 0, b), [(3, 4), (3, 4)]),
    "scatter": (
        lambda a, b: a.scatter(1, ds.tensor([[2, 0], [1, 1], [0, 3]]), b),
        lambda a, b: a.scatter(1, torch.tensor([[2, 0], [1, 1], [0, 3]]), b),
        [(3, 4), (3, 2)],
    ),
    "scatter_value": (
        lambda a: ds.scatter(a, 0, ds.tensor([[1, 2, 0, 1]]), value=2.5),
        lambda a: torch.scatter(a, 0, torch.tensor([[1, 2, 0, 1]]), value=2.5),
        [(3, 4)],
    ),
    "scatter_add": (
        lambda a, b: a.scatter_add(1, ds.tensor([[2, 2], [1, 1], [0, 3]]), b),
        lambda a, b: a.scatter_add(1, torch.tensor([[2, 2], [1, 1], [0, 3]]), b),
        [(3, 4), (3, 2)],
    ),
    "einsum_matmul": (
        lambda a, b: ds.einsum("ij,jk->ik", a, b),
        lambda a, b: torch.einsum("ij,jk->ik", a, b),
        [(3, 4), (4, 2)],
    ),
    "einsum_batched": (
        lambda a, b: ds.einsum("bij,bkj->bik", a, b),
        lambda a, b: torch.einsum("bij,bkj->bik", a, b),
        [(2, 3, 4), (2, 5, 4)],
    ),
    "einsum_implicit_sum": (
        lambda a, b: ds.einsum("ij,j", a, b),
        lambda a, b: torch.einsum("ij,j", a, b),
        [(3, 4), (4,)],
    ),
    "einsum_reduce_own_index": (lambda a: ds.einsum("ij->", a), lambda a: torch.einsum("ij->", a), [(3, 4)]),
    "einsum_outer_list": (
        lambda a, b: ds.einsum("i,j->ji", [a, b]),
        lambda a, b: torch.einsum("i,j->ji", [a, b]),
        [(3,), (2,)],
    ),
    # elementwise math
    "tan": (lambda a: (a * 0.5).tan(), lambda a: (a * 0.5).tan(), [(3, 4)]),
    "sinh_cosh": (lambda a: ds.sinh(a) + a.cosh(), lambda a: torch.sinh(a) + a.cosh(), [(3, 4)]),
    "asin_acos_atan": (
        lambda a: (a * 0.4).asin() + ds.acos(a * 0.4) + a.atan(),
        lambda a: (a * 0.4).asin() + torch.acos(a * 0.4) + a.atan(),
        [(3, 4)],
    ),
    "asinh_acosh_atanh": (
        lambda a: a.asinh() + (a.abs() + 1.1).acosh() + ds.atanh(a * 0.4),
        lambda a: a.asinh() + (a.abs() + 1.1).acosh() + torch.atanh(a * 0.4),
        [(3, 4)],
    ),
    "arc_aliases": (lambda a: ds.arcsin(a * 0.3) + a.arctan(), lambda a: torch.arcsin(a * 0.3) + a.arctan(), [(3,)]),
    "log2_log10_exp2": (
        lambda a: (a.abs() + 0.1).log2() + ds.log10(a.abs() + 0.1) + a.exp2(),
        lambda a: (a.abs() + 0.1).log2() + torch.log10(a.abs() + 0.1) + a.exp2(),
        [(3, 4)],
    ),
    "erfc_logit": (
        lambda a: a.erfc() + (a * 0.2 + 0.5).logit(),
        lambda a: a.erfc() + (a * 0.2 + 0.5).logit(),
        [(3, 4)],
    ),
    "deg2rad_frac": (
        lambda a: a.deg2rad() + ds.rad2deg(a) + a.frac(),
        lambda a: a.deg2rad() + torch.rad2deg(a) + a.frac(),
        [(3, 4)],
    ),
    "sinc": (lambda a: ds.sinc(a), lambda a: torch.sinc(a), [(3, 4)]),
    "atan2": (lambda a, b: ds.atan2(a, b), lambda a, b: torch.atan2(a, b), [(3, 4), (4,)]),
    "hypot": (lambda a, b: a.hypot(b), lambda a, b: a.hypot(b), [(3, 4), (3, 4)]),
    "logaddexp": (lambda a, b: ds.logaddexp(a, b), lambda a, b: torch.logaddexp(a, b), [(3, 4), (3, 4)]),
    "xlogy": (lambda a, b: ds.xlogy(a, b.abs() + 0.1), lambda a, b: torch.xlogy(a, b.abs() + 0.1), [(3, 4), (3, 4)]),
    "fmod_remainder": (
        lambda a, b: ds.fmod(a, b.abs() + 0.5) + a.remainder(b.abs() + 0.5),
        lambda a, b: torch.fmod(a, b.abs() + 0.5) + a.remainder(b.abs() + 0.5),
        [(3, 4), (3, 4)],
    ),
    "copysign": (lambda a: ds.copysign(a, -1.0), lambda a: torch.copysign(a, -1.0), [(3, 4)]),
    "fmax_fmin": (
        lambda a, b: ds.fmax(a, b) * ds.fmin(a, b),
        lambda a, b: torch.fmax(a, b) * torch.fmin(a, b),
        [(3, 4), (3, 4)],
    ),
    "clamp_min_max": (
        lambda a: a.clamp_min(-0.5) * ds.clamp_max(a, 0.5),
        lambda a: a.clamp_min(-0.5) * torch.clamp_max(a, 0.5),
        [(3, 4)],
    ),
    "float_power": (lambda a: ds.float_power(a.abs(), 1.5), lambda a: torch.float_power(a.abs(), 1.5), [(3,)]),
    # shapes and indexing
    "movedim": (lambda a: a.movedim(0, -1), lambda a: a.movedim(0, -1), [(2, 3, 4)]),
    "moveaxis_pair": (
        lambda a: ds.moveaxis(a, (0, 1), (2, 0)),
        lambda a: torch.moveaxis(a, (0, 1), (2, 0)),
        [(2, 3, 4)],
    ),
    "swapaxes_ravel": (lambda a: a.swapaxes(0, 2).ravel(), lambda a: a.swapaxes(0, 2).ravel(), [(2, 3, 4)]),
    "roll": (lambda a: a.roll((1, -2), (0, 1)), lambda a: a.roll((1, -2), (0, 1)), [(3, 4)]),
    "roll_flat": (lambda a: ds.roll(a, 5), lambda a: torch.roll(a, 5), [(3, 4)]),
    "diff": (
        lambda a: a.diff(dim=1) + ds.diff(a, 2, 1).sum(),
        lambda a: a.diff(dim=1)[:, :] + torch.diff(a, 2, 1).sum(),
        [(3, 4)],
    ),
    "diagonal": (lambda a: a.diagonal(1), lambda a: a.diagonal(1), [(3, 4)]),
    "diagonal_negative": (lambda a: ds.diagonal(a, -1, 1, 2), lambda a: torch.diagonal(a, -1, 1, 2), [(2, 3, 4)]),
    "diag_vector": (lambda a: ds.diag(a, -1), lambda a: torch.diag(a, -1), [(3,)]),
    "diag_matrix_trace": (lambda a: a.diag() * a.trace(), lambda a: a.diag() * a.trace(), [(3, 3)]),
    "take": (lambda a: a.take(ds.tensor([0, 5, 5, 11])), lambda a: a.take(torch.tensor([0, 5, 5, 11])), [(3, 4)]),
    "take_along_dim": (
        lambda a: ds.take_along_dim(a, a.argsort(1), 1),
        lambda a: torch.take_along_dim(a, a.argsort(1), 1),
        [(3, 4)],
    ),
    "tensor_split": (lambda a: a.tensor_split(3, 1)[0] * 2, lambda a: a.tensor_split(3, 1)[0] * 2, [(3, 4)]),
    "hsplit_indices": (lambda a: ds.hsplit(a, [1, 3])[1], lambda a: torch.hsplit(a, [1, 3])[1], [(3, 4)]),
    "repeat_interleave": (lambda a: a.repeat_interleave(2, 0), lambda a: a.repeat_interleave(2, 0), [(3, 4)]),
    "repeat_interleave_flat": (
        lambda a: ds.repeat_interleave(a, ds.tensor([1, 0, 3])),
        lambda a: torch.repeat_interleave(a, torch.tensor([1, 0, 3])),
        [(3,)],
    ),
    "unflatten_select": (
        lambda a: a.unflatten(1, (2, 2)).select(2, 1),
        lambda a: a.unflatten(1, (2, 2)).select(2, 1),
        [(3, 4)],
    ),
    "index_add": (
        lambda a, b: a.index_add(0, ds.tensor([2, 0, 2]), b, alpha=2),
        lambda a, b: a.index_add(0, torch.tensor([2, 0, 2]), b, alpha=2),
        [(3, 4), (3, 4)],
    ),
    "index_copy": (
        lambda a, b: a.index_copy(1, ds.tensor([3, 0]), b),
        lambda a, b: a.index_copy(1, torch.tensor([3, 0]), b),
        [(3, 4), (3, 2)],
    ),
    "cross": (lambda a, b: ds.cross(a, b, dim=1), lambda a, b: torch.cross(a, b, dim=1), [(4, 3), (4, 3)]),
    "inner": (lambda a, b: ds.inner(a, b), lambda a, b: torch.inner(a, b), [(3, 4), (2, 4)]),
    "addmm": (
        lambda a, b: ds.addmm(a, b, b.t(), beta=0.5, alpha=2),
        lambda a, b: torch.addmm(a, b, b.t(), beta=0.5, alpha=2),
        [(3, 3), (3, 4)],
    ),
    "addmv_addr": (
        lambda a, b: ds.addmv(a, b, b[0]) + ds.addr(b, a, b[0])[:, 0],
        lambda a, b: torch.addmv(a, b, b[0]) + torch.addr(b, a, b[0])[:, 0],
        [(3,), (3, 4)],
    ),
    "baddbmm_addbmm": (
        lambda a, b: ds.baddbmm(a, b, b.transpose(1, 2)).sum(0) + ds.addbmm(a[0], b, b.transpose(1, 2)),
        lambda a, b: torch.baddbmm(a, b, b.transpose(1, 2)).sum(0) + torch.addbmm(a[0], b, b.transpose(1, 2)),
        [(2, 3, 3), (2, 3, 4)],
    ),
    "kthvalue": (lambda a: a.kthvalue(2, 1).values, lambda a: a.kthvalue(2, 1).values, [(3, 4)]),
    "median": (lambda a: a.median(0).values + a.median(), lambda a: a.median(0).values + a.median(), [(3, 4)]),
    "nansum_nanmean": (lambda a: a.nansum(1) + ds.nanmean(a), lambda a: a.nansum(1) + torch.nanmean(a), [(3, 4)]),
    "meshgrid": (
        lambda a, b: (lambda g: g[0] * g[1])(ds.meshgrid(a, b, indexing="ij")),
        lambda a, b: (lambda g: g[0] * g[1])(torch.meshgrid(a, b, indexing="ij")),
        [(3,), (4,)],
    ),
    "meshgrid_xy": (
        lambda a, b: (lambda g: g[0] * 2 + g[1])(ds.meshgrid(a, b, indexing="xy")),
        lambda a, b: (lambda g: g[0] * 2 + g[1])(torch.meshgrid(a, b, indexing="xy")),
        [(3,), (4,)],
    ),
    "broadcast_tensors": (
        lambda a, b: (lambda t: t[0] * t[1])(ds.broadcast_tensors(a, b)),
        lambda a, b: (lambda t: t[0] * t[1])(torch.broadcast_tensors(a, b)),
        [(3, 1), (4,)],
    ),
    "column_stack_dstack": (
        lambda a, b: ds.column_stack([a, b]).sum() + ds.dstack([a, b]),
        lambda a, b: torch.column_stack([a, b]).sum() + torch.dstack([a, b]),
        [(3,), (3,)],
    ),
    "cumprod": (lambda a: a.cumprod(1), lambda a: a.cumprod(1), [(3, 4)]),
    "cummax_cummin": (
        lambda a: a.cummax(1).values + ds.cummin(a, 0).values,
        lambda a: a.cummax(1).values + torch.cummin(a, 0).values,
        [(3, 4)],
    ),
    "logcumsumexp": (lambda a: a.logcumsumexp(1), lambda a: a.logcumsumexp(1), [(3, 4)]),
    "masked_select": (lambda a: a.masked_select(a > 0), lambda a: a.masked_select(a > 0), [(3, 4)]),
    "masked_scatter": (
        lambda a, b: a.masked_scatter(a > 0, b),
        lambda a, b: a.masked_scatter(a > 0, b),
        [(3, 4), (3, 4)],
    ),
    "put_accumulate": (
        lambda a, b: a.put(ds.tensor([0, 5, 5]), b, accumulate=True),
        lambda a, b: a.put(torch.tensor([0, 5, 5]), b, accumulate=True),
        [(3, 4), (3,)],
    ),
    "index_put_accumulate": (
        lambda a, b: a.index_put((ds.tensor([0, 2, 0]), ds.tensor([1, 1, 1])), b, accumulate=True),
        lambda a, b: a.index_put((torch.tensor([0, 2, 0]), torch.tensor([1, 1, 1])), b, accumulate=True),
        [(3, 4), (3,)],
    ),
    "index_fill": (
        lambda a: a.index_fill(0, ds.tensor([0, 2]), -1.0),
        lambda a: a.index_fill(0, torch.tensor([0, 2]), -1.0),
        [(3, 4)],
    ),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_op_matches_torch_values_and_gradients(check_op, name, dtype):
    ours, theirs, shapes = GRAD_CASES[name]
    check_op(ours, theirs, [_u(i, s, dtype) for i, s in enumerate(shapes)])


@pytest.mark.parametrize(
    "name",
    ["prod_dim", "prod_all", "cumsum", "sort", "topk", "repeat", "flip", "norm", "norm_p3", "rsqrt", "log1p"]
    + ["einsum_batched", "einsum_reduce_own_index"],
)
def test_op_passes_gradcheck(name):
    ours, _, shapes = GRAD_CASES[name]
    ds.gradcheck(lambda *xs: ours(*xs).sum(), tuple(_u(10 + i, s) for i, s in enumerate(shapes)))


def test_prod_gradient_with_zeros_matches_torch(check_op):
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 5.0], [1.0, -2.0, 4.0]])
    check_op(lambda a: a.prod(1), lambda a: a.prod(1), [x])
    check_op(lambda a: a.prod(), lambda a: a.prod(), [x[2:]])


def test_norm_of_zero_vector_has_zero_gradient_as_in_torch(check_op):
    check_op(lambda a: a.norm(dim=1), lambda a: a.norm(dim=1), [np.array([[0.0, 0.0], [3.0, 4.0]])])


def test_cumsum_double_backward():
    x = ds.tensor([0.5, 1.0, 2.0], dtype="float64", requires_grad=True)
    (g,) = ds.autograd.grad((x.cumsum(0) ** 2).sum(), x, create_graph=True)
    g.sum().backward()
    xt = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    (gt,) = torch.autograd.grad((xt.cumsum(0) ** 2).sum(), xt, create_graph=True)
    gt.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy())


# ---------------------------------------------------------------------- results without gradients
def _same(ours, theirs):
    if isinstance(theirs, (tuple, list)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same(a, b)
        return
    if isinstance(theirs, torch.Tensor):
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", ""))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    else:
        assert ours == theirs


X = _u(0, (3, 4))
I = np.array([[3, 1, 2], [0, 5, 1]])
SPECIAL = np.array([1.0, np.nan, np.inf, -np.inf])

VALUE_CASES = {
    "argmax": lambda m, x, i: m.argmax(x),
    "argmax_dim": lambda m, x, i: m.argmax(x, 1),
    "argmin_keepdim": lambda m, x, i: m.argmin(x, dim=0, keepdim=True),
    "argsort": lambda m, x, i: m.argsort(x, 1),
    "argsort_desc": lambda m, x, i: x.argsort(0, descending=True),
    "sort_indices": lambda m, x, i: x.sort(1).indices,
    "topk_indices": lambda m, x, i: m.topk(x, 2, 0).indices,
    "eq": lambda m, x, i: (x.eq(x[0]), m.eq(x, 0.5), x.ne(x), m.ne(x, x[:, :1])),
    "lt_le_gt_ge": lambda m, x, i: (x.lt(0), m.le(x, 0), x.gt(x.t().t()), m.ge(x, 0.1)),
    "equal": lambda m, x, i: (m.equal(x, x.clone()), x.equal(x + 1), m.allclose(x, x + 1e-9)),
    "isclose": lambda m, x, i: m.isclose(x, x + 1e-7),
    "isnan_isinf": lambda m, x, i: (
        m.isnan(m.tensor(SPECIAL)),
        m.tensor(SPECIAL).isinf(),
        m.isfinite(m.tensor(SPECIAL)),
    ),
    "logical": lambda m, x, i: (m.logical_and(x > 0, x < 1), (x > 0).logical_or(x < -1), m.logical_not(x > 0)),
    "bitwise": lambda m, x, i: (~(x > 0), (x > 0) & (x < 1), (x > 0) | (x < -1), (x > 0) ^ (x > 1)),
    "all_any": lambda m, x, i: (m.all(x > -3), (x > 0).any(), (x > 0).all(1), m.any(x > 1, 0)),
    "int_sum_cumsum": lambda m, x, i: (i.sum(), i.cumsum(1), i.prod(1), m.cumsum(x > 0, 0)),
    "integer_ops": lambda m, x, i: (i // 2, i % 2, m.bincount(m.tensor([0, 2, 2, 3]))),
    "unique": lambda m, x, i: m.unique(i, return_counts=True),
    "sign_int": lambda m, x, i: m.sign(i),
    "numel": lambda m, x, i: (m.numel(x), x.nelement(), x.element_size(), x.ndimension(), m.is_tensor(x)),
    "is_floating_point": lambda m, x, i: (m.is_floating_point(x), i.is_floating_point()),
    "type_conversions": lambda m, x, i: (x.int(), x.long(), x.half(), x.bool(), x.double(), i.float()),
    "type_dtype": lambda m, x, i: (x.type(m.int64), i.type(m.float32), x.to(m.float64).type(m.float32)),
    "new_tensors": lambda m, x, i: (
        x.new_zeros(2, 3),
        x.new_ones((2,)),
        x.new_full((2, 2), 7),
        x.new_tensor([1, 2]),
        i.new_zeros(3),
    ),
    "tril_int": lambda m, x, i: m.tril(i),
    "masked_fill_int": lambda m, x, i: i.masked_fill(i > 2, -1),
}


@pytest.mark.parametrize("name", list(VALUE_CASES))
def test_results_match_torch(name):
    fn = VALUE_CASES[name]
    _same(fn(ds, ds.tensor(X, dtype="float64"), ds.tensor(I)), fn(torch, torch.tensor(X), torch.tensor(I)))


def test_type_without_argument_names_torchs_tensor_type():
    for dtype, name in [("float32", "FloatTensor"), ("float64", "DoubleTensor"), ("int64", "LongTensor")]:
        assert ds.zeros(1, dtype=dtype).type() == torch.zeros(1, dtype=getattr(torch, dtype)).type() == f"torch.{name}"
    assert ds.ones(2).type("torch.LongTensor").dtype == np.int64
    with pytest.raises(TypeError, match="FloatTensor"):
        ds.ones(2).type("torch.NoSuchTensor")


def test_dtype_aliases_are_torchs():
    pairs = {
        "float": "float32",
        "double": "float64",
        "half": "float16",
        "long": "int64",
        "int": "int32",
        "bool": "bool",
    }
    for alias, name in pairs.items():
        assert getattr(ds, alias) == np.dtype(name)
        assert str(getattr(torch, alias)) == f"torch.{name}"
    assert isinstance(ds.float32, ds.dtype)
    assert ds.zeros(2, dtype=ds.long).dtype == np.int64
    assert ds.tensor([1.5]).to(ds.double).dtype == np.float64


# ---------------------------------------------------------------------- creation
def test_factories_match_torch():
    cases = [
        (lambda m: m.linspace(-1, 2, 7), None),
        (lambda m: m.linspace(0, 1, 5, dtype=m.float64), None),
        (lambda m: m.logspace(0, 2, 3), None),
        (lambda m: m.logspace(0, 3, 4, base=2), None),
        (lambda m: m.eye(3), None),
        (lambda m: m.eye(2, 4, dtype=m.float64), None),
        (lambda m: m.arange(5), None),
        (lambda m: m.arange(0, 1, 0.25, dtype=m.float64), None),
        (lambda m: m.empty(2, 3).shape, None),
        (lambda m: m.zeros_like(m.ones(2, 3, dtype=m.int64)), None),
        (lambda m: m.ones_like(m.zeros(2), dtype=m.float64), None),
        (lambda m: m.full_like(m.zeros(2, 2), 3.5), None),
        (lambda m: m.empty_like(m.zeros(3, dtype=m.int64)).shape, None),
        (lambda m: m.full((2,), 3), None),
        (lambda m: m.full((2,), True), None),
        (lambda m: m.zeros(2, 3, device="cpu", requires_grad=True).requires_grad, None),
        (lambda m: m.tensor([1.0, 2.0], device=m.device("cpu"), dtype=m.float64), None),
    ]
    for make, _ in cases:
        _same(make(ds), make(torch))


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.rand_like(m.zeros(3, 4)),
        lambda m: m.randn_like(m.zeros(3, 4, dtype=m.float64)),
        lambda m: m.randint(0, 10, (3, 4)),
        lambda m: m.randint(5, (6,)),
        lambda m: m.randint_like(m.zeros(2, 2), 3, 7),
        lambda m: m.randperm(8),
        lambda m: m.normal(0.0, 1.0, size=(3,)),
        lambda m: m.normal(m.zeros(3), 2.0),
        lambda m: m.bernoulli(m.full((4,), 0.5)),
    ],
)
def test_random_factories_have_torchs_shape_and_dtype_and_are_seeded(make):
    ref = make(torch)
    ds.manual_seed(7)
    a = make(ds)
    ds.manual_seed(7)
    b = make(ds)
    assert a.shape == tuple(ref.shape)
    assert a.dtype == np.dtype(str(ref.dtype).replace("torch.", ""))
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_random_factory_ranges():
    ds.manual_seed(0)
    r = ds.randint(3, 7, (1000,))
    assert r.numpy().min() == 3 and r.numpy().max() == 6
    assert sorted(ds.randperm(10).tolist()) == list(range(10))
    n = ds.normal(5.0, 0.1, size=(4000,))
    assert abs(float(n.mean()) - 5.0) < 0.01 and abs(float(n.std()) - 0.1) < 0.01


# ---------------------------------------------------------------------- Python protocols
def test_zero_d_integer_tensor_is_a_list_index_and_formats_like_a_number():
    items = ["a", "b", "c"]
    for lib in (ds, torch):
        i = lib.tensor([0, 2, 1]).argmax()
        assert items[i] == "b"
        assert list(range(10))[lib.tensor(2) : lib.tensor(5)] == [2, 3, 4]
        assert f"{lib.tensor(3.14159):.2f}" == "3.14"
        assert f"{lib.tensor(7):>3d}" == "  7"
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        items[ds.tensor(1.0)]
    with pytest.raises(TypeError, match="0-d"):
        f"{ds.tensor([1.0, 2.0]):.2f}"
    assert f"{ds.tensor([1.0, 2.0])}" == str(ds.tensor([1.0, 2.0]))


def test_bad_arguments_are_refused_with_clear_errors():
    x = ds.zeros(3, 4)
    with pytest.raises(ds.ShapeError, match="mm: expected two 2-D"):
        ds.mm(x, ds.zeros(4))
    with pytest.raises(ds.ShapeError, match="bmm"):
        x.bmm(x)
    with pytest.raises(ds.ShapeError, match="t\\(\\) expects"):
        ds.zeros(2, 2, 2).t()
    with pytest.raises(ds.ShapeError, match="add up to 3"):
        x.split([1, 2], 1)
    with pytest.raises(IndexError, match="narrow"):
        x.narrow(1, 3, 2)
    with pytest.raises(IndexError, match="topk"):
        x.topk(5)
    with pytest.raises(ValueError, match="repeat"):
        x.repeat(2)


def test_factories_take_size_keyword_and_ignore_only_layout_options():
    for lib in (ds, torch):
        assert tuple(lib.zeros(size=(2, 3)).shape) == (2, 3)
        assert tuple(lib.ones(2, pin_memory=False).shape) == (2,)
        assert tuple(lib.randn(size=(4,)).shape) == (4,)
    o = ds.ones(2)
    assert ds.zeros(2, out=o) is o and o.tolist() == [0.0, 0.0]  # out= is honoured, not silently ignored


def test_einsum_double_backward_and_refusals():
    a = ds.tensor(_u(1, (3, 4)), dtype="float64", requires_grad=True)
    b = ds.tensor(_u(2, (4,)), dtype="float64", requires_grad=True)
    (ga,) = ds.autograd.grad(ds.einsum("ij,j->i", a, b).pow(2).sum(), a, create_graph=True)
    ga.sum().backward()
    at, bt = torch.tensor(a.detach().numpy(), requires_grad=True), torch.tensor(b.detach().numpy(), requires_grad=True)
    (gt,) = torch.autograd.grad(torch.einsum("ij,j->i", at, bt).pow(2).sum(), at, create_graph=True)
    gt.sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), bt.grad.numpy(), rtol=1e-10)
    # a repeated index takes the diagonal, as in torch
    np.testing.assert_array_equal(ds.einsum("ii->i", ds.tensor([[1.0, 2.0], [3.0, 4.0]])).numpy(), [1.0, 4.0])
    with pytest.raises(ValueError, match="in no operand"):
        ds.einsum("i->...i", ds.zeros(2))
    with pytest.raises(ValueError, match="operand 0 has 2 dims"):
        ds.einsum("ijk->i", ds.zeros(2, 2))
    assert ds.zeros(2, 3).shape == ds.Size([2, 3])


def test_less_common_results_match_torch():
    x = np.array([[0.0, -1.5, 2.0], [np.nan, np.inf, -np.inf]])
    for fn in [
        lambda m, t: m.nonzero(m.tensor([[0, 1], [2, 0]])),
        lambda m, t: m.nonzero(m.tensor([0, 3, 0, 4]), as_tuple=True),
        lambda m, t: m.argwhere(m.tensor([[0, 1], [2, 0]])),
        lambda m, t: (m.count_nonzero(m.tensor([[0, 1], [2, 0]])), m.count_nonzero(m.tensor([[0, 1], [2, 0]]), dim=1)),
        lambda m, t: (m.signbit(t), m.isneginf(t), m.isposinf(t)),
        lambda m, t: m.nan_to_num(t),
        lambda m, t: m.nan_to_num(t, nan=1.0, posinf=9.0, neginf=-9.0),
        lambda m, t: (m.nansum(t[0]), m.nanmean(m.tensor([1.0, np.nan, 3.0], dtype=m.float64))),
        lambda m, t: tuple(m.aminmax(m.tensor([[1, 5], [0, 2]]), dim=1)),
        lambda m, t: m.heaviside(t[0], m.tensor(0.5, dtype=m.float64)),
        lambda m, t: (m.floor_divide(m.tensor([7, -7]), 2), m.logical_xor(t[0] > 0, t[0] < 2)),
        lambda m, t: (m.atleast_1d(m.tensor(1.0)), m.atleast_2d(m.tensor([1.0, 2.0]))),
        lambda m, t: (m.vsplit(m.zeros(4, 2), 2)[1], m.dsplit(m.zeros(1, 2, 4), 2)[0]),
        lambda m, t: (m.pi, m.e, m.inf, m.finfo(m.float32).eps, m.iinfo(m.int64).max),
        lambda m, t: (m.typename(m.zeros(1)), m.scalar_tensor(2), m.asarray([1, 2]), m.detach(m.ones(2))),
    ]:
        _same(fn(ds, ds.tensor(x, dtype="float64")), fn(torch, torch.tensor(x)))


def test_multinomial_is_seeded_and_draws_from_the_rows():
    probs = [[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]]
    ds.manual_seed(1)
    a = ds.multinomial(ds.tensor(probs), 4, replacement=True)
    ds.manual_seed(1)
    b = ds.tensor(probs).multinomial(4, replacement=True)
    assert a.shape == tuple(torch.multinomial(torch.tensor(probs), 4, replacement=True).shape) == (2, 4)
    assert a.dtype == np.int64 and a.tolist() == b.tolist()
    assert a[0].tolist() == [1, 1, 1, 1]
    assert sorted(ds.multinomial(ds.tensor([1.0, 1.0, 1.0]), 3).tolist()) == [0, 1, 2]
    with pytest.raises(ValueError, match="without replacement"):
        ds.multinomial(ds.tensor([1.0, 0.0]), 3)  # more than the row holds: torch raises too


def test_multinomial_of_many_rows_draws_each_row_by_its_own_probabilities():
    rng = np.random.default_rng(0)
    probs = rng.random((300, 7)) * (rng.random((300, 7)) > 0.4)
    probs[:, 3] += 0.01  # every row has a non-zero entry
    ds.manual_seed(0)
    with_replacement = ds.multinomial(ds.tensor(probs, dtype="float64"), 2000, replacement=True).numpy()
    assert (np.take_along_axis(probs, with_replacement, 1) > 0).all()  # never a zero-probability index
    freq = np.stack([np.bincount(r, minlength=7) for r in with_replacement]) / 2000
    np.testing.assert_allclose(freq, probs / probs.sum(1, keepdims=True), atol=0.05)
    first = ds.multinomial(ds.tensor(np.tile([0.1, 0.0, 0.3, 0.6], (20000, 1))), 2).numpy()
    theirs = torch.multinomial(torch.tensor(np.tile([0.1, 0.0, 0.3, 0.6], (20000, 1))), 2).numpy()
    for j in range(2):  # successive sampling: the first draw by weight, the second among the rest
        np.testing.assert_allclose(
            np.bincount(first[:, j], minlength=4) / 20000, np.bincount(theirs[:, j], minlength=4) / 20000, atol=0.02
        )


def test_multinomial_without_replacement_returns_zero_probability_indices_after_the_others_as_torch():
    probs = [[0.0, 1.0, 0.0, 0.0], [0.0, 2.0, 1.0, 0.0]]
    theirs = torch.multinomial(torch.tensor(probs), 4, replacement=False)
    for seed in range(20):
        ds.manual_seed(seed)
        ours = ds.multinomial(ds.tensor(probs), 4, replacement=False)
        assert ours.shape == tuple(theirs.shape)
        for row, drawn in zip(probs, ours.tolist()):
            nonzero = sum(1 for p in row if p > 0)
            assert sorted(drawn) == [0, 1, 2, 3]  # distinct, all of the row
            assert all(row[i] > 0 for i in drawn[:nonzero]) and all(row[i] == 0 for i in drawn[nonzero:])


def test_seed_and_initial_seed():
    ds.manual_seed(5)
    assert ds.initial_seed() == 5
    s = ds.seed()
    assert ds.initial_seed() == s and isinstance(s, int)


def test_cumprod_gradient_with_zeros_matches_torch(check_op):
    x = np.array([[2.0, 0.0, 3.0, 0.5], [0.0, 0.0, 1.5, 2.0]])
    check_op(lambda a: a.cumprod(1), lambda a: a.cumprod(1), [x])
    check_op(lambda a: a.cumprod(0), lambda a: a.cumprod(0), [x])
    _same(ds.tensor([[1, 3], [2, 1]]).cummax(0), torch.tensor([[1, 3], [2, 1]]).cummax(0))


def test_tensor_utilities_match_torch():
    x = np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]])
    for fn in [
        lambda m, t: (t.byte(), t.char(), t.short(), t.mH, t.H, t.adjoint()),
        lambda m, t: (t.is_signed(), t.byte().is_signed(), t[0, 0].is_nonzero(), t.is_same_size(t * 2)),
        lambda m, t: t.clone().fill_diagonal_(9.0),
        lambda m, t: m.zeros(7, 3).fill_diagonal_(1.0, wrap=True),
        lambda m, t: t.clone().apply_(lambda v: v * 10 + 1) if m is ds else (t.clone() * 10 + 1),
        lambda m, t: t.clone().t_(),
        lambda m, t: t.clone().transpose_(0, 1).unsqueeze_(0).squeeze_(0),
        lambda m, t: t.clone().masked_scatter_(t > 0, m.zeros(6, dtype=m.float64)),
        lambda m, t: t.clone().put_(m.tensor([1, 4]), m.tensor([7.0, 8.0], dtype=m.float64)),
        lambda m, t: t.clone().index_put_((m.tensor([1]), m.tensor([2])), m.tensor(0.0, dtype=m.float64)),
        lambda m, t: t.clone().cumprod_(0),
    ]:
        _same(fn(ds, ds.tensor(x, dtype="float64")), fn(torch, torch.tensor(x)))
    y = ds.tensor(x)
    y.map_(ds.tensor([1.0, 2.0, 3.0]), lambda a, b: a * b)
    assert y.tolist() == [[1.0, -4.0, 9.0], [4.0, 10.0, -18.0]]
    with pytest.raises(RuntimeError, match="requires grad"):
        ds.zeros(2, 2, requires_grad=True).t_()


@pytest.mark.parametrize(
    "fill",
    [
        lambda t: t.bernoulli_(0.3),
        lambda t: t.exponential_(2.0),
        lambda t: t.log_normal_(0.0, 0.5),
        lambda t: t.cauchy_(),
        lambda t: t.geometric_(0.5),
        lambda t: t.random_(0, 10),
        lambda t: t.random_(5),
    ],
)
def test_random_fills_are_in_place_seeded_and_in_range(fill):
    ref = fill(torch.zeros(200, dtype=torch.float64))
    t = ds.zeros(200, dtype="float64")
    arr = t.array
    ds.manual_seed(3)
    fill(t)
    ds.manual_seed(3)
    again = fill(ds.zeros(200, dtype="float64"))
    assert t.array is arr and t.tolist() == again.tolist()
    assert (t.numpy().min() >= 0) == (ref.numpy().min() >= 0)
    assert (t.numpy() == np.round(t.numpy())).all() == (ref.numpy() == np.round(ref.numpy())).all()


@pytest.mark.parametrize(
    "draw",
    [
        lambda g: ds.randn(4, generator=g),
        lambda g: ds.rand(2, 2, generator=g),
        lambda g: ds.randint(0, 9, (5,), generator=g),
        lambda g: ds.randperm(6, generator=g),
        lambda g: ds.normal(0.0, 1.0, size=(3,), generator=g),
        lambda g: ds.zeros(3).normal_(generator=g),
        lambda g: ds.zeros(3).uniform_(-1, 1, generator=g),
        lambda g: ds.multinomial(ds.tensor([0.2, 0.3, 0.5]), 4, True, generator=g),
    ],
)
def test_generator_keyword_draws_from_that_generator(draw):
    a = draw(ds.Generator().manual_seed(11))
    ds.manual_seed(0)
    state = ds.get_rng_state()
    b = draw(ds.Generator().manual_seed(11))
    assert a.tolist() == b.tolist()
    assert ds.get_rng_state().tolist() == state.tolist()  # the library's own generator was not used


def test_python_protocols_contains_round_reversed():
    for lib in (ds, torch):
        t = lib.tensor([1.0, 2.5, 3.0])
        assert 2.5 in t and 4.0 not in t
        assert reversed(t).tolist() == [3.0, 2.5, 1.0]
    assert round(ds.tensor(2.567), 1).item() == pytest.approx(2.6)  # torch has no __round__


def test_more_of_pytorchs_spellings_match_it():
    """where(cond) alone, div's rounding modes, dtype= on reductions and softmax, diff's prepend/append,
    the old _LRScheduler name and step(epoch), and RuntimeError for shape and state-dict mismatches."""
    mask = np.array([[True, False], [False, True]])
    for ours, theirs in zip(ds.where(ds.tensor(mask)), torch.where(torch.tensor(mask))):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    a, b = np.array([7, -7, 7, -7]), np.array([2, 2, -2, -2])
    for mode in ("trunc", "floor"):
        for bb in (b, b.astype(np.float32)):
            ours, theirs = (
                ds.div(ds.tensor(a), ds.tensor(bb), rounding_mode=mode),
                torch.div(torch.tensor(a), torch.tensor(bb), rounding_mode=mode),
            )
            assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    x = ds.tensor([1, 2, 3])
    assert x.sum(dtype=ds.float32).dtype == np.float32 and ds.mean(x, dtype=ds.float32).item() == 2.0
    assert x.float().softmax(0, dtype=ds.float64).dtype == np.float64
    t = np.array([1.0, 4.0, 9.0], np.float32)
    np.testing.assert_array_equal(
        ds.diff(ds.tensor(t), prepend=ds.tensor([0.0]), append=ds.tensor([16.0])).numpy(),
        torch.diff(torch.tensor(t), prepend=torch.tensor([0.0]), append=torch.tensor([16.0])).numpy(),
    )
    assert ds.optim.lr_scheduler._LRScheduler is ds.optim.lr_scheduler.LRScheduler
    opt = ds.optim.SGD(ds.nn.Linear(1, 1).parameters(), lr=1.0)
    sched = ds.optim.lr_scheduler.StepLR(opt, 2, 0.5)
    with pytest.warns(UserWarning, match="deprecated"):
        sched.step(5)
    assert sched.get_last_lr() == [0.25]
    with pytest.raises(RuntimeError):
        ds.nn.Linear(2, 2).load_state_dict({"weight": np.zeros((2, 2), np.float32)})
    with pytest.raises(RuntimeError):
        ds.cat([ds.ones(2, 3), ds.ones(3, 2)])


def test_nonzero_of_a_0d_tensor_and_clear_integer_errors_as_in_torch():
    for value in (5, 0):
        ours, theirs = ds.tensor(value).nonzero(), torch.tensor(value).nonzero()
        assert ours.shape == tuple(theirs.shape)
        assert [t.tolist() for t in ds.tensor(value).nonzero(as_tuple=True)] == [
            t.tolist() for t in torch.tensor(value).nonzero(as_tuple=True)
        ]
    x = ds.tensor([1, 2])
    with pytest.raises(TypeError, match="result type float32 can't be cast"):
        x /= 2
    with pytest.raises(TypeError, match="var/std"):
        ds.tensor([1, 2]).std()
