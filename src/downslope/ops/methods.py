"""Tensor methods for the ops of this package that tensor.py does not define itself (``x.atan2(y)``,
``x.cumprod_(0)``...), and the in-place forms of out-of-place ops.
"""

from __future__ import annotations

import inspect
from typing import Any

from .. import backend
from ..errors import ArgumentTypeError, DTypeError, StateError
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
from .out import _INPUT_OTHER

_MODULES = (pointwise, arithmetic, shape, indexing, rearrange, reductions, sorting, scans, comparison, linalg, sampling)


def _op(name: str) -> Any:
    """The op called ``name``, from the module of this package that defines it."""
    for module in _MODULES:
        fn = module.__dict__.get(name)
        if fn is not None:
            return fn
    raise StateError(f"internal error: no module of downslope.ops defines an op named {name!r}")


def _as_method(fn: Any, name: str | None = None) -> Any:
    operands = _TORCH_OPERANDS.get(name or fn.__name__)
    if operands is not None:  # torch's keywords for the operands (x.addmm(mat1=a, mat2=b)): see _TORCH_OPERANDS
        return _with_torch_operands(fn, operands)
    own = _other_param(fn)
    if own is not None:  # torch's keyword for the operand is other= (x.atan2(other=y)); fn names it otherwise

        def renaming(self: Tensor, *args: Any, **kwargs: Any) -> Any:
            if "other" in kwargs:
                if own in kwargs:
                    raise ArgumentTypeError(f"got multiple values for argument {own!r} (also given as 'other')")
                kwargs[own] = kwargs.pop("other")
            return fn(self, *args, **kwargs)

        renaming.__name__ = renaming.__qualname__ = fn.__name__
        renaming.__doc__ = fn.__doc__
        return renaming

    def method(self: Tensor, *args: Any, **kwargs: Any) -> Any:
        return fn(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


def _operand_positions(spec: str) -> dict[str, int]:
    """``"mat1 mat2"`` -> {"mat1": 0, "mat2": 1}; ``"indices|sections"``: two names for one position."""
    return {name: i for i, names in enumerate(spec.split()) for name in names.split("|")}


# torch's names for the operands that follow self in a Tensor method, where the op behind the method
# names them otherwise (ops.baddbmm(x, b1, b2)): model code passes them by keyword (Bloom's
# alibi.baddbmm(batch1=q, batch2=k, beta=..., alpha=...)). The names are torch's schemas' (checked by
# tests/ops/test_method_keywords.py); each keyword is moved to its position, so the op's own names still work.
_TORCH_OPERANDS: dict[str, dict[str, int]] = {
    name: _operand_positions(spec)
    for names, spec in (
        ("addmm addmm_", "mat1 mat2"),
        ("addmv addmv_", "mat vec"),
        ("addr addr_", "vec1 vec2"),
        ("baddbmm baddbmm_ addbmm addbmm_", "batch1 batch2"),
        ("ger outer", "vec2"),
        ("dot", "tensor"),
        ("cholesky_solve", "input2"),
        ("diag", "diagonal"),
        ("float_power float_power_", "exponent"),
        ("hsplit vsplit dsplit", "indices|sections"),
        ("tensor_split", "indices|sections|tensor_indices_or_sections"),
        ("swapdims swapdims_", "dim0 dim1"),
        ("swapaxes_", "axis0 axis1"),
        ("sum_to_size", "size"),
    )
    for name in names.split()
}


def _with_torch_operands(fn: Any, positions: dict[str, int]) -> Any:
    """``fn`` as a method that also takes torch's keyword names for its operands (``positions``); a call
    without keywords goes straight through."""

    names = positions.keys()

    def method(self: Tensor, *args: Any, **kwargs: Any) -> Any:
        if kwargs and not names.isdisjoint(kwargs):  # beta=/alpha= alone go straight through
            args = _keywords_to_positions(fn.__name__, positions, args, kwargs)
        return fn(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = fn.__name__
    method.__doc__ = fn.__doc__
    method.__wrapped__ = fn  # type: ignore[attr-defined]  # inspect.signature shows the op's parameters
    return method


_UNSET = object()


def _keywords_to_positions(
    name: str, positions: dict[str, int], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """``args`` with the keywords of ``kwargs`` named in ``positions`` moved (popped) to their places."""
    given = [key for key in kwargs if key in positions]
    filled = list(args)
    for key in given:
        i = positions[key]
        filled.extend([_UNSET] * (i + 1 - len(filled)))
        if filled[i] is not _UNSET:
            raise ArgumentTypeError(
                f"{name}(): got multiple values for argument {key!r} (operand {i + 1}, given twice)"
            )
        filled[i] = kwargs.pop(key)
    missing = [i for i, value in enumerate(filled) if value is _UNSET]
    if missing:
        names = ["|".join(k for k, j in positions.items() if j == i) for i in missing]
        raise ArgumentTypeError(
            f"{name}(): expected operands {', '.join(names)} before {', '.join(map(repr, given))}, "
            "got them neither by position nor by keyword"
        )
    return tuple(filled)


def _other_param(fn: Any) -> str | None:
    """The name ``fn`` gives its second parameter, where torch's method calls it ``other`` and ``fn`` not."""
    if getattr(fn, "__name__", None) not in _OTHER_NAMED:
        return None
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if len(params) < 2 or params[1].name == "other" or params[1].kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
        return None
    return params[1].name


_OTHER_NAMED = {*_INPUT_OTHER, "igamma"}  # torch's Tensor methods whose operand is named other

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
    "sgn": _op("sgn"),  # z / |z| for complex, sign for real
    "ravel": _op("public_ravel"),  # copies where torch's copies (ops.ravel keeps the kernels' views)
}


for _name, _fn in _METHODS.items():
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _as_method(_fn, _name))


def _positive(self: Tensor) -> Tensor:
    return self


Tensor.positive = _positive  # type: ignore[attr-defined]


# In-place forms of out-of-place methods: computed out of place, then written into the tensor's array
# (recorded like every in-place op when gradients are). The ones with a NumPy in-place form are in tensor.py.
_NO_GRAD_RESULTS = {"eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal", "not_equal"}


_NO_GRAD_RESULTS |= {"logical_and", "logical_or", "logical_not", "logical_xor", "heaviside"}


def _refuse_other_dtype(self: Tensor, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """An in-place scan asked for another dtype (``a.cumsum_(0, dtype=int32)`` on float64) would cast the
    input, compute, and cast back: silently truncated values. torch refuses it; so does this."""
    dtype = kwargs.get("dtype", args[1] if name in ("cumsum", "cumprod") and len(args) > 1 else None)
    if dtype is not None and backend.as_dtype(dtype) != self.array.dtype:
        raise DTypeError(
            f"{name}_: Bad in-place call: input tensor dtype {self.array.dtype} and output tensor dtype "
            f"{backend.as_dtype(dtype)} should match"
        )


def _inplace_form(name: str) -> Any:
    keep_kind = name not in _NO_GRAD_RESULTS

    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        _refuse_other_dtype(self, name, args, kwargs)
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
        setattr(Tensor, _name, _as_method(_op(_name), _name))


Tensor.index_put = _as_method(_op("index_put_op"))  # type: ignore[attr-defined]


for _name in ("cumprod", "masked_scatter", "put", "index_put"):
    if not hasattr(Tensor, _name + "_"):
        setattr(Tensor, _name + "_", _inplace_form(_name))


for _name in (
    "kron rot90 fliplr flipud unfold as_strided diag_embed diagflat split_with_sizes sum_to_size msort select_scatter "
    "slice_scatter diagonal_scatter"
).split():
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _as_method(_op(_name), _name))


def _broadcast_to(self: Tensor, *sizes: Any, size: Any = None) -> Tensor:
    """``x.broadcast_to(shape)``, as ``x.expand(shape)`` (the size as one sequence, as ints, or as torch's
    keyword ``size=``)."""
    if size is not None:
        if sizes:
            raise ArgumentTypeError(f"broadcast_to(): got the size twice, as {sizes} and as size={size!r}")
        return shape.broadcast_to(self, size)
    return shape.broadcast_to(self, sizes[0] if len(sizes) == 1 and not isinstance(sizes[0], int) else sizes)


if not hasattr(Tensor, "broadcast_to"):
    Tensor.broadcast_to = _broadcast_to  # type: ignore[attr-defined]


# Order statistics, histograms and statistics of torch's Tensor API (quantile, mode, cov...)
for _name in "quantile nanquantile nanmedian mode histc unique_consecutive cov corrcoef dist renorm".split():
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _as_method(_op(_name), _name))
if not hasattr(Tensor, "renorm_"):
    Tensor.renorm_ = _inplace_form("renorm")  # type: ignore[attr-defined]


# Special functions and the integer ops of torch's Tensor API (x.lgamma(), x.polygamma(n), x.gcd(y)...)
from . import special as _special  # noqa: E402  (after the loops above: special imports nothing of these)

for _name in "lgamma digamma erfinv i0 igamma igammac mvlgamma".split():
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _as_method(getattr(_special, _name), _name))


def _polygamma(self: Tensor, n: int) -> Tensor:
    """``x.polygamma(n)``: :func:`downslope.ops.special.polygamma` (n, x)."""
    return _special.polygamma(n, self)


if not hasattr(Tensor, "polygamma"):
    Tensor.polygamma = _polygamma  # type: ignore[attr-defined]
for _name in "gcd lcm ldexp logaddexp2 nextafter frexp".split():
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _as_method(_op(_name), _name))
for _name in "lgamma digamma erfinv i0 igamma igammac mvlgamma polygamma gcd lcm ldexp nextafter".split():
    if not hasattr(Tensor, _name + "_"):
        setattr(Tensor, _name + "_", _inplace_form(_name))
for _name in ("is_neg",):
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _as_method(_op(_name), _name))


def _rlshift(self: Tensor, other: Any) -> Tensor:
    """``other << x`` for a number ``other``."""
    return _op("bitwise_left_shift")(other, self)


def _rrshift(self: Tensor, other: Any) -> Tensor:
    """``other >> x`` for a number ``other``."""
    return _op("bitwise_right_shift")(other, self)


if not hasattr(Tensor, "__rlshift__"):
    Tensor.__rlshift__ = _rlshift  # type: ignore[attr-defined]
if not hasattr(Tensor, "__rrshift__"):
    Tensor.__rrshift__ = _rrshift  # type: ignore[attr-defined]


# The Tensor methods that the newer op modules list in their METHODS (narrow_copy, histogram, new,
# bernoulli, addmm_...)
from . import compositions, constructors, copy_variants, histograms, inplace_products, random_samplers  # noqa: E402

for _module in (copy_variants, compositions, histograms, constructors, random_samplers, inplace_products):
    for _name, _fn in _module.METHODS.items():
        if not hasattr(Tensor, _name):
            setattr(
                Tensor, _name, _with_torch_operands(_fn, _TORCH_OPERANDS[_name]) if _name in _TORCH_OPERANDS else _fn
            )

# torch's operand keywords for the products and views tensor.py defines under the op's names
# (x.dot(other) where torch's is x.dot(tensor=...), x.outer(vec2=...)...)
for _name in ("dot", "outer", "cholesky_solve", "swapaxes_", "swapdims_"):
    if _name in Tensor.__dict__:  # tests/ops/test_method_keywords.py fails should one move elsewhere
        setattr(Tensor, _name, _with_torch_operands(Tensor.__dict__[_name], _TORCH_OPERANDS[_name]))
