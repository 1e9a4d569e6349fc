"""Tensor methods for the ops of this package that tensor.py does not define itself (``x.atan2(y)``,
``x.cumprod_(0)``...), and the in-place forms of out-of-place ops.
"""

from __future__ import annotations

from typing import Any

from ..errors import StateError
from ..tensor import Tensor
from . import (
    arithmetic,
    comparison,
    indexing,
    linalg,
    pointwise,
    rearrange,
    reductions,
    sampling,
    scans,
    shape,
    sorting,
)

_MODULES = (pointwise, arithmetic, shape, indexing, rearrange, reductions, sorting, scans, comparison, linalg, sampling)


def _op(name: str) -> Any:
    """The op called ``name``, from the module of this package that defines it."""
    for module in _MODULES:
        fn = module.__dict__.get(name)
        if fn is not None:
            return fn
    raise StateError(f"internal error: no module of downslope.ops defines an op named {name!r}")


def _as_method(fn: Any) -> Any:
    def method(self: Tensor, *args: Any, **kwargs: Any) -> Any:
        return fn(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


_METHODS = {
    **{
        n: _op(n)
        for n in (
            "tan sinh cosh asin acos atan asinh acosh atanh arcsin arccos arctan arcsinh arccosh arctanh log2 log10 "
            "exp2 erfc erf logit deg2rad rad2deg frac sinc atan2 arctan2 hypot logaddexp xlogy float_power fmod "
            "remainder floor_divide copysign heaviside fmax fmin clamp_min clamp_max nan_to_num movedim moveaxis "
            "swapaxes swapdims ravel roll diff diagonal diag trace take take_along_dim nonzero argwhere count_nonzero "
            "tensor_split hsplit vsplit dsplit repeat_interleave unflatten select index_add index_copy cross inner "
            "vdot ger addmm addmv baddbmm addbmm addr kthvalue median aminmax nansum nanmean signbit isneginf "
            "isposinf logical_xor multinomial softplus scatter_reduce index_reduce"
        ).split()
    },
    "absolute": _op("abs"),
    "fix": _op("trunc"),
    "sgn": _op("sign"),
}


for _name, _fn in _METHODS.items():
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _as_method(_fn))


def _positive(self: Tensor) -> Tensor:
    return self


Tensor.positive = _positive  # type: ignore[attr-defined]


# In-place forms of out-of-place methods: computed out of place, then written into the tensor's array
# (recorded like every in-place op when gradients are). The ones with a NumPy in-place form are in tensor.py.
_NO_GRAD_RESULTS = {"eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal", "not_equal"}


_NO_GRAD_RESULTS |= {"logical_and", "logical_or", "logical_not", "logical_xor", "heaviside", "floor_divide"}


def _inplace_form(name: str) -> Any:
    keep_kind = name not in _NO_GRAD_RESULTS

    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        operands = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        return self._inplace_via(
            name + "_",
            lambda t: getattr(t, name)(*[t if a is self else a for a in args], **kwargs),
            *operands,
            reads_self=True,
            keep_kind=keep_kind,
        )

    method.__name__ = method.__qualname__ = name + "_"
    method.__doc__ = f"In-place :meth:`{name}` (writes into this tensor and returns it)."
    return method


for _name in (
    "tan sinh cosh asin acos atan asinh acosh atanh arcsin arccos arctan arcsinh arccosh arctanh log2 log10 exp2 erfc "
    "erf logit deg2rad rad2deg frac sinc atan2 arctan2 hypot logaddexp xlogy fmod remainder floor_divide copysign "
    "heaviside clamp_min clamp_max nan_to_num fix absolute sgn negative expm1 log1p rsqrt tril triu cumsum "
    "eq ne lt le gt ge greater greater_equal less less_equal not_equal logical_and logical_or logical_not "
    "logical_xor index_add index_copy subtract multiply divide true_divide scatter_reduce index_reduce"
).split():
    if not hasattr(Tensor, _name + "_"):
        setattr(Tensor, _name + "_", _inplace_form(_name))


for _name in ("cumprod", "cummax", "cummin", "logcumsumexp", "masked_select", "masked_scatter", "put"):
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _as_method(_op(_name)))


Tensor.index_put = _as_method(_op("index_put_op"))  # type: ignore[attr-defined]


for _name in ("cumprod", "masked_scatter", "put", "index_put"):
    if not hasattr(Tensor, _name + "_"):
        setattr(Tensor, _name + "_", _inplace_form(_name))
