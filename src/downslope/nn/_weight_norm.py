"""Weight normalization as one op: ``w = g * v / ||v||``, the norm over every dim of ``v`` but
``dim`` (over all of them for ``dim`` None or -1), PyTorch's ``torch._weight_norm``.

Both ``nn.utils.weight_norm`` and ``nn.utils.parametrizations.weight_norm`` recompute the weight
from ``g`` and ``v`` on every forward. Built from ordinary ops (a square, a sum, a sqrt, a divide
and a multiply), its backward runs about ten passes over the full weight, each allocating an
array of its size; for the large weights and small activations of GAN discriminators (HiFi-GAN's
1024 x 1024 x 5 convolutions) that dominated a training step. The closed form needs three:

    grad_g = sum(v * grad_w) / ||v||                    (= sum(w_hat * grad_w), w_hat = v / ||v||)
    grad_v = g / ||v|| * (grad_w - w_hat * grad_g)

and the per-slice sums of products run as one ``einsum`` pass without a temporary.

Example:
    >>> import downslope as ds
    >>> from downslope.nn._weight_norm import weight_norm_op
    >>> v = ds.tensor([[3.0, 4.0]])
    >>> weight_norm_op(ds.tensor([[10.0]]), v, 0)
    tensor([[6., 8.]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..backend import as_array, namespace_of
from ..tensor import Tensor, record_op

__all__ = ["norm_except_dim", "weight_norm_op"]

_FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def norm_except_dim(v: Tensor, dim: int | None) -> Tensor:
    """The 2-norm of ``v`` over every dim but ``dim``, keeping dims; over all of them for None or -1
    (PyTorch's ``norm_except_dim``, where -1 means the whole tensor, not the last dim)."""
    if dim is None or dim == -1:
        return ops.sqrt(ops.sum(v * v))
    dim = dim % v.ndim
    axes = tuple(a for a in range(v.ndim) if a != dim)
    if not axes:
        # a norm over no dims is |v| element by element (a 1-D parameter with dim 0); ops.sum over
        # an empty tuple of axes would reduce everything
        return ops.abs(v)
    return ops.sqrt(ops.sum(v * v, axes, keepdim=True))


def _kept_dim(dim: int | None, ndim: int) -> int | None:
    """The one dim the norm keeps, or None when it runs over the whole tensor."""
    return None if dim is None or dim == -1 else dim % ndim


def _norm_shape(shape: tuple[int, ...], kept: int | None) -> tuple[int, ...]:
    """The shape of ``g`` and of the norms: () for the whole tensor, else ``shape`` with 1 but at ``kept``."""
    if kept is None:
        return ()
    return tuple(n if a == kept else 1 for a, n in enumerate(shape))


def _slice_dots(a: Any, b: Any, kept: int | None) -> Any:
    """``sum(a * b)`` over every dim but ``kept``, in the norms' shape (see :func:`_norm_shape`), as
    one einsum pass over the two arrays on their own device (no product array of the weight's size).
    The dims before and after ``kept`` are flattened so that the einsum is a plain row or column dot."""
    xp = namespace_of(a)
    if kept is None:
        return xp.einsum("i,i->", a.reshape(-1), b.reshape(-1))
    shape = a.shape
    before = int(np.prod(shape[:kept], dtype=np.int64))  # host: a shape computed from Python ints
    after = int(np.prod(shape[kept + 1 :], dtype=np.int64))  # host: as above
    n = shape[kept]
    if before == 1:  # dim 0 (Linear, Conv): one dot per row
        out = xp.einsum("ij,ij->i", a.reshape(n, after), b.reshape(n, after))
    elif after == 1:  # the last dim: one dot per column
        out = xp.einsum("ij,ij->j", a.reshape(before, n), b.reshape(before, n))
    else:  # a middle dim (ConvTranspose's dim 1)
        out = xp.einsum("ijk,ijk->j", a.reshape(before, n, after), b.reshape(before, n, after))
    return out.reshape(_norm_shape(shape, kept))


def _fusable(g: Tensor, v: Tensor, kept: int | None) -> bool:
    """Whether the fused op applies: float32/float64 ``g`` and ``v`` of one dtype on one device, and
    ``g`` in the norms' shape. Anything else (float16, complex, a 1-D ``v`` normalized per element,
    a ``g`` of another shape that only broadcasts) takes the ordinary ops, which handle it as before."""
    a, b = g.array, v.array
    if type(a) is not type(b) or b.dtype not in _FUSED_DTYPES or a.dtype != b.dtype or not b.size:
        return False
    if kept is not None and v.ndim < 2:
        return False
    return tuple(a.shape) == _norm_shape(tuple(b.shape), kept)


def weight_norm_op(g: Tensor, v: Tensor, dim: int | None) -> Tensor:
    """``g * v / ||v||`` with the norm over every dim of ``v`` but ``dim`` (all of them for None or
    -1), recorded as one op with its closed-form gradient (see the module's docstring); ``g`` has the
    norms' shape (``v``'s with 1 but at ``dim``, or () for the whole tensor)."""
    kept = _kept_dim(dim, v.ndim)
    if not _fusable(g, v, kept):
        return g * (v / norm_except_dim(v, dim))
    xp = namespace_of(v.array)
    norm = as_array(xp.sqrt(_slice_dots(v.array, v.array, kept)))
    w = v.array * (g.array / norm)  # one pass over the weight; g / norm has the norms' small shape
    return record_op(w, (g, v), _weight_norm_vjp, (kept, norm))


def _weight_norm_vjp(grad_w, y, args, saved, needs, xp):
    g, v = args
    kept, norm = saved
    if xp.differentiable:
        # double backward: the same closed form from recorded ops, the norm recomputed from v so that
        # its dependence on v is part of the graph
        axes = None if kept is None else tuple(a for a in range(v.ndim) if a != kept)
        norm_t = ((v * v).sum(axis=axes, keepdims=kept is not None)) ** 0.5
        grad_g = (v * grad_w).sum(axis=axes, keepdims=kept is not None) / norm_t
        grad_v = (g / norm_t) * (grad_w - v * (grad_g / norm_t)) if needs[1] else None
        return (grad_g if needs[0] else None, grad_v)
    dots = _slice_dots(v, grad_w, kept)  # sum(v * grad_w) per slice
    # as_array: over the whole tensor NumPy gives a scalar, which the engine could not add into in place
    grad_g = as_array(dots / norm) if needs[0] else None
    grad_v = None
    if needs[1]:
        scale = g / norm
        # g/n * (grad_w - v * dots / n^2), in three passes over one new array
        grad_v = v * (dots / (norm * norm))
        xp_data = namespace_of(grad_v)
        xp_data.subtract(grad_w, grad_v, out=grad_v)
        grad_v *= scale
    return (grad_g, grad_v)


# The rule reads g, v and the norms it saved, never the output: an in-place change of w is safe.
_weight_norm_vjp.reads_output = False  # type: ignore[attr-defined]
# Both gradients are new arrays (never g passed through, nor a view of a saved array): the engine
# may add a second contribution (the same layer called twice in one step) into them in place.
_weight_norm_vjp.fresh_grads = True  # type: ignore[attr-defined]
