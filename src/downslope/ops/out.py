"""``out=``: PyTorch's output-tensor argument, for the top-level functions that take it.

One wrapper, :func:`with_out`, is applied to the top-level names (``downslope/__init__.py`` wraps the
names in :data:`OUT_FUNCTIONS` and :data:`OUT_FACTORIES`, and ``ds.linalg``'s in
:data:`LINALG_OUT_FUNCTIONS`; ``ds.special`` wraps its own), so the ops themselves and the Tensor
methods (which take no ``out=`` in PyTorch either) stay as they are. A function has one wrapper
wherever it is wrapped, so the aliases stay one object (``ds.special.expit is ds.sigmoid``). A call without keywords goes
straight through; PyTorch's keyword ``input=`` (and ``where``'s ``condition=``/``other=``) is taken
too, renamed to the function's own parameter, and so are the binary ops' ``other=`` (``mm``'s ``mat2=``...)
and NumPy's ``axis=``/``keepdims=`` where PyTorch takes them for ``dim=``/``keepdim=`` (:data:`AXIS_FUNCTIONS`;
:func:`accept_numpy_keywords` does the same for the Tensor methods in :data:`AXIS_METHODS`). With ``out=``,
the result is computed as usual, checked against ``out`` as PyTorch checks it, and written into ``out``,
which is returned:

- gradients: refused while grad mode is on and an argument (or ``out``) requires grad, with
  PyTorch's message (``out=`` writes are not recorded);
- dtype: the result is cast into ``out``'s dtype where PyTorch allows it (not float into an integer
  tensor, nor anything but bool into a bool tensor); the functions that return several tensors, the
  products, and the ops PyTorch implements without a cast (abs, clamp, where, gather, tril...) want
  ``out``'s dtype to be the result's (their indices int64); ``sum``/``prod``/``cumsum``/``cumprod``
  compute in ``out``'s dtype, as if it were their ``dtype=``; with a ``dtype=`` given, ``out`` must
  have it; the factories make their values in ``out``'s dtype;
- shape: an ``out`` of another shape is resized, with PyTorch's warning when it had elements;
- a function that returns several tensors (``max(x, dim)``, ``sort``, ``topk``...) takes a tuple of
  as many tensors, and returns them in its usual named tuple.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any

from ..errors import ArgumentTypeError, StateError
from ..graph import _mode, no_grad
from ..tensor import Tensor, _torch_can_cast

__all__ = [
    "AXIS_FUNCTIONS",
    "AXIS_METHODS",
    "INPUT_FUNCTIONS",
    "LINALG_OUT_FUNCTIONS",
    "OUT_FACTORIES",
    "OUT_FUNCTIONS",
    "accept_numpy_keywords",
    "with_input",
    "with_out",
]

# Top-level functions that PyTorch documents with out= (and that downslope has); arithmetic, pointwise
# math, products, reductions, joining, selection, sorting.
OUT_FUNCTIONS = (
    # arithmetic
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "pow", "neg", "negative",
    "remainder", "fmod", "floor_divide", "float_power", "maximum", "minimum", "fmax", "fmin", "atan2",
    "arctan2", "hypot", "copysign", "logaddexp", "logaddexp2", "xlogy", "addcmul", "addcdiv", "lerp",
    # pointwise math
    "abs", "absolute", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "square",
    "reciprocal", "sin", "cos", "tan", "sinh", "cosh", "tanh", "asin", "acos", "atan", "asinh", "acosh",
    "atanh", "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "erf", "erfc", "erfinv", "sign",
    "sgn", "ceil", "floor", "round", "trunc", "frac", "fix", "clamp", "clip", "clamp_min", "clamp_max",
    "deg2rad", "rad2deg", "logit", "nan_to_num", "sinc", "heaviside", "signbit", "sigmoid", "isposinf",
    "isneginf", "nextafter",
    # special functions (lgamma and igamma are wrapped in ops/special.py itself: downslope.distributions
    # re-exports them as the very top-level objects)
    "digamma", "i0", "igammac", "polygamma", "mvlgamma",
    # integer and bit ops
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "bitwise_left_shift", "bitwise_right_shift",
    "gcd", "lcm",
    # comparisons and logic
    "eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal", "not_equal",
    "logical_and", "logical_or", "logical_xor", "logical_not", "isin",
    # products
    "matmul", "mm", "bmm", "mv", "dot", "vdot", "inner", "outer", "ger", "addmm", "addmv", "addbmm",
    "baddbmm", "addr", "cross", "kron", "tensordot",
    # reductions and scans
    "sum", "mean", "prod", "max", "min", "amax", "amin", "aminmax", "argmax", "argmin", "std", "var",
    "logsumexp", "cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "median", "nanmedian", "mode",
    "kthvalue", "nansum", "nanmean", "quantile", "nanquantile", "all", "any", "norm", "softmax", "log_softmax",
    # linear algebra (torch's top-level spellings)
    "inverse", "matrix_power", "cholesky", "cholesky_inverse", "cholesky_solve", "qr", "svd", "lu",
    "triangular_solve", "lu_unpack", "lu_solve", "chain_matmul",
    # the rest
    "histc", "renorm", "ldexp", "bernoulli", "multinomial",
    # joining, selecting, rearranging
    "cat", "concat", "concatenate", "stack", "hstack", "vstack", "dstack", "column_stack", "row_stack",
    "where", "gather", "index_select", "masked_select", "take", "take_along_dim", "tril", "triu", "diag",
    "diff", "nonzero", "searchsorted", "bucketize",
    # sorting
    "sort", "msort", "topk",
    # several results
    "frexp",
)  # fmt: skip

# torch.linalg's functions that take out= (and that downslope has); all but matrix_rank, cond, pinv and
# tensorinv want out in the result's dtype.
LINALG_OUT_FUNCTIONS = (
    "cholesky", "cholesky_ex", "cond", "cross", "det", "eig", "eigh", "eigvals", "eigvalsh", "inv", "inv_ex", "lu",
    "lu_factor", "lu_factor_ex", "lu_solve", "matmul", "matrix_norm", "matrix_power", "matrix_rank", "multi_dot",
    "norm", "pinv", "qr", "slogdet", "solve", "solve_ex", "solve_triangular", "svd", "svdvals", "tensorinv",
    "tensorsolve", "vecdot", "vector_norm", "householder_product",
)  # fmt: skip

# Factories: their values are made in out's dtype when no dtype is given.
OUT_FACTORIES = (
    "zeros", "ones", "full", "empty", "eye", "arange", "range", "linspace", "logspace", "rand", "randn",
    "randint", "randperm", "normal", "tril_indices", "triu_indices",
)  # fmt: skip

# PyTorch's argument parser takes NumPy's ``axis=`` for ``dim=`` (and ``keepdims=`` for ``keepdim=``) on
# every function it implements natively, not on those written in Python (split, unique, norm,
# Tensor.unflatten, torch.nn.functional's): ``A.cumsum(axis=0)``, ``torch.argmax(t, axis=1)``. These are
# the top-level functions and Tensor methods among them whose downslope parameter is only ``dim``
# (each checked against torch 2.13 by calling it; tests/ops/test_out_numpy_keywords.py keeps the lists
# complete). size() and stride() are left out: they are on every hot path.
AXIS_FUNCTIONS = frozenset(
    """
    all aminmax any argmax argmin argsort chunk cosine_similarity count_nonzero cross cummax cummin cumprod
    cumsum cumulative_trapezoid diff frobenius_norm gather gradient index_add index_copy index_fill index_reduce
    index_select kthvalue logcumsumexp median mode nanmean nanmedian nanquantile nansum narrow narrow_copy
    nuclear_norm prod quantile renorm repeat_interleave scatter scatter_add scatter_reduce select select_copy
    select_scatter slice_copy slice_scatter sort split_copy split_with_sizes split_with_sizes_copy squeeze
    squeeze_copy std std_mean take_along_dim tensor_split topk trapezoid trapz unbind unbind_copy unflatten
    unsqueeze unsqueeze_copy var var_mean
    """.split()
)
AXIS_METHODS = frozenset(
    """
    all aminmax any argmax argmin argsort chunk count_nonzero cross cummax cummin cumprod cumprod_ cumsum
    cumsum_ diff gather index_add index_add_ index_copy index_copy_ index_fill index_fill_ index_reduce
    index_reduce_ index_select kthvalue log_softmax logcumsumexp median mode nanmean nanmedian nanquantile
    nansum narrow narrow_copy prod quantile renorm renorm_ repeat_interleave scatter scatter_ scatter_add
    scatter_add_ scatter_reduce scatter_reduce_ select select_scatter slice_scatter softmax sort
    split_with_sizes squeeze squeeze_ std take_along_dim tensor_split topk unbind unsqueeze unsqueeze_ var
    """.split()
)
# Of these, the reductions, which take ``keepdims=`` for ``keepdim=`` too.
_KEEPDIM = frozenset(
    """
    all aminmax any argmax argmin frobenius_norm kthvalue median mode nanmean nanmedian nanquantile nansum
    nuclear_norm prod quantile std std_mean var var_mean matrix_norm vector_norm
    """.split()
)
# torch.linalg's functions are all native: each with a dim takes axis= too (linalg.norm does, torch.norm not).
_LINALG_AXIS = frozenset({"vector_norm", "matrix_norm", "norm", "cross", "vecdot", "cond"})
_AXIS = {"axis": "dim"}
_AXIS_KEEPDIMS = {"axis": "dim", "keepdims": "keepdim"}

# Top-level functions without out= whose tensor PyTorch names ``input`` (``torch.zeros_like(input=x)``)
# where downslope's parameter has another name, and those (in AXIS_FUNCTIONS) that take NumPy's axis=;
# ``downslope/__init__.py`` wraps them with with_input.
INPUT_FUNCTIONS: tuple[str, ...] = (
    "allclose", "argsort", "argwhere", "bincount", "broadcast_to", "chunk", "clone", "combinations",
    "corrcoef", "count_nonzero", "cov", "det", "detach", "diag_embed", "diagflat", "diagonal", "diagonal_scatter",
    "dist", "dsplit", "empty_like", "equal", "flatten", "flip", "fliplr", "flipud", "full_like", "hsplit",
    "index_add", "index_copy", "index_reduce", "is_floating_point", "is_nonzero", "isclose", "isfinite",
    "isinf", "isnan", "logdet", "moveaxis", "movedim", "narrow", "numel", "ones_like", "permute", "pinverse",
    "positive", "rand_like", "randint_like", "randn_like", "ravel", "relu", "repeat_interleave", "reshape",
    "roll", "rot90", "scatter", "scatter_add", "scatter_reduce", "select", "select_scatter", "slice_scatter",
    "slogdet", "squeeze", "std_mean", "swapaxes", "swapdims", "t", "tensor_split", "tile", "trace",
    "transpose", "unbind", "unflatten", "unique", "unsqueeze", "var_mean", "vsplit", "zeros_like",
)  # fmt: skip
INPUT_FUNCTIONS += tuple(sorted(AXIS_FUNCTIONS.difference(OUT_FUNCTIONS, INPUT_FUNCTIONS)))

# Functions whose PyTorch signature is ``(input, other, ...)`` (``torch.add(input=x, other=y)``).
_INPUT_OTHER = (
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide", "remainder",
    "fmod", "maximum", "minimum", "fmax", "fmin", "atan2", "arctan2", "hypot", "copysign", "logaddexp",
    "logaddexp2", "xlogy", "nextafter", "igamma", "igammac", "ldexp", "bitwise_and", "bitwise_or", "bitwise_xor",
    "bitwise_left_shift", "bitwise_right_shift", "gcd", "lcm", "eq", "ne", "lt", "le", "gt", "ge", "greater",
    "greater_equal", "less", "less_equal", "not_equal", "logical_and", "logical_or", "logical_xor", "matmul",
    "vdot", "inner", "cross", "kron", "equal", "isclose", "allclose", "dist",
)  # fmt: skip

# PyTorch's names for the leading parameters, where they are not just ``input`` (read from torch's
# signatures); each is renamed to the function's own parameter at that position.
_TORCH_LEADING: dict[str, tuple[str, ...]] = {
    **{name: ("input", "other") for name in _INPUT_OTHER},
    "pow": ("input", "exponent"),
    "float_power": ("input", "exponent"),
    "mm": ("input", "mat2"),
    "bmm": ("input", "mat2"),
    "mv": ("input", "vec"),
    "dot": ("input", "tensor"),
    "outer": ("input", "vec2"),
    "ger": ("input", "vec2"),
    "addmm": ("input", "mat1", "mat2"),
    "addmv": ("input", "mat", "vec"),
    "addbmm": ("input", "batch1", "batch2"),
    "baddbmm": ("input", "batch1", "batch2"),
    "addr": ("input", "vec1", "vec2"),
    "heaviside": ("input", "values"),
    "where": ("condition", "input", "other"),
    "polygamma": ("n", "input"),
    "cosine_similarity": ("x1", "x2"),
    "diag": ("input", "diagonal"),  # ops.diag names its offset diagonal_ (diagonal is a function there)
}
# Functions whose PyTorch signature has no ``input`` (they take tensors, sequences or sizes).
_NO_INPUT = frozenset(
    {
        "cat", "concat", "concatenate", "stack", "hstack", "vstack", "dstack", "column_stack", "row_stack",
        "isin", "searchsorted", "chain_matmul", "tensordot", "lu", "lu_unpack", "lu_solve", "cholesky_solve",
        "triangular_solve", *OUT_FACTORIES,
    }
)  # fmt: skip

# Functions whose out must already have the result's dtype in PyTorch (checked against torch 2.x, which
# implements these without a cast to out's dtype); those returning several tensors are all like this.
_EXACT_DTYPE = frozenset(
    {
        "matmul", "mm", "bmm", "mv", "dot", "vdot", "inner", "cross", "tensordot", "addmm", "addmv", "addbmm",
        "baddbmm", "argmax", "argmin", "abs", "absolute", "neg", "negative", "sign", "sgn", "ceil", "floor",
        "round", "trunc", "fix", "frac", "clamp", "clip", "clamp_min", "clamp_max", "nan_to_num", "heaviside",
        "signbit", "isin", "float_power", "logcumsumexp", "quantile", "nanquantile", "norm", "amax", "amin",
        "all", "any", "where", "gather", "index_select", "masked_select", "take", "take_along_dim", "tril",
        "triu", "diag", "msort", "nonzero", "searchsorted", "bucketize", "softmax", "log_softmax", "bitwise_not",
        "isposinf", "isneginf",
        # torch.linalg's (by their function names: ds.inverse is linalg.inv, ds.cholesky cholesky_legacy...)
        "cholesky", "det", "eigvalsh", "inv", "lu_solve", "matrix_norm", "matrix_power", "multi_dot", "slogdet",
        "solve", "solve_triangular", "svdvals", "tensorsolve", "vecdot", "vector_norm", "eigvals",
        "lu_solve_legacy", "chain_matmul", "histc", "renorm", "ldexp",
    }
)  # fmt: skip

# Reductions and scans that compute in out's dtype when no dtype= is given (out's dtype acts as dtype=).
_DTYPE_FROM_OUT = frozenset({"sum", "prod", "cumsum", "cumprod"})


def _check_out_type(out: Any, name: str, several: bool) -> tuple[Tensor, ...]:
    if several:
        if not isinstance(out, (tuple, list)) or not all(isinstance(o, Tensor) for o in out):
            raise ArgumentTypeError(f"{name}(): argument 'out' must be tuple of Tensors, not {type(out).__name__}")
        return tuple(out)
    if not isinstance(out, Tensor):
        raise ArgumentTypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    return (out,)


def _write(out: Tensor, result: Tensor, name: str, exact: bool = False) -> None:
    """``result``'s values into ``out`` (resized first if its shape differs), cast to out's dtype
    (``exact``: out must have the result's dtype)."""
    src, dst = result.array.dtype, out.array.dtype
    if (exact or name in _EXACT_DTYPE) and src != dst:
        raise ArgumentTypeError(f"{name}(): expected out tensor to have dtype {src}, but got {dst} instead")
    if not _torch_can_cast(src, dst):
        raise ArgumentTypeError(f"{name}(): result type {src} can't be cast to the desired output type {dst}")
    if tuple(out.shape) != tuple(result.shape):
        if out.array.size:
            warnings.warn(
                f"{name}(): an output with one or more elements was resized since it had shape {list(out.shape)}, "
                f"which does not match the required output shape {list(result.shape)} (resize it to zero elements "
                "first to reuse it without this warning, as in PyTorch)",
                UserWarning,
                stacklevel=4,
            )
        # a new buffer of the right shape, on out's device (views of the old buffer no longer see out)
        out.array = result.array.astype(dst, copy=True)
        return
    with no_grad():
        out.copy_(result)  # in place: views of out see the values, and its version counter moves


_WRAPPERS: dict[tuple[Callable[..., Any], bool], Callable[..., Any]] = {}
_INPUT_WRAPPERS: dict[Callable[..., Any], Callable[..., Any]] = {}


def _renames(fn: Callable[..., Any], name: str) -> dict[str, str]:
    """PyTorch's keyword for each leading parameter -> ``fn``'s, where they differ (``input`` -> ``x``)."""
    if name in _NO_INPUT:
        return {}
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return {}
    own = {p.name for p in params}
    renames = {}
    for torch_name, p in zip(_TORCH_LEADING.get(name, ("input",)), params):
        if torch_name not in own and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
            renames[torch_name] = p.name
    return renames


def _numpy_renames(fn: Callable[..., Any], name: str) -> dict[str, str]:
    """``axis`` -> ``dim`` (and ``keepdims`` -> ``keepdim``) where PyTorch's ``name`` takes them."""
    linalg = getattr(fn, "__module__", "") == "downslope.linalg"  # linalg.norm takes axis=, torch.norm not
    if name not in (_LINALG_AXIS if linalg else AXIS_FUNCTIONS):
        return {}
    return _AXIS_KEEPDIMS if name in _KEEPDIM else _AXIS


def accept_numpy_keywords(cls: type) -> None:
    """Gives ``cls``'s methods named in :data:`AXIS_METHODS` NumPy's ``axis=`` (and ``keepdims=``) for
    ``dim=`` (``keepdim=``), as PyTorch's methods take them; a call without keywords goes straight through.

    Example:
        >>> import downslope as ds
        >>> ds.tensor([[1, 2], [3, 4]]).cumsum(axis=0)
        tensor([[1, 2],
                [4, 6]])
    """
    for name in sorted(AXIS_METHODS):
        fn = cls.__dict__.get(name)
        if fn is None or hasattr(fn, "_numpy_renames"):
            continue
        setattr(cls, name, _with_renames(fn, _AXIS_KEEPDIMS if name in _KEEPDIM else _AXIS))


def _with_renames(fn: Callable[..., Any], renames: dict[str, str]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def method(*args: Any, **kwargs: Any) -> Any:
        if not kwargs:
            return fn(*args)
        _rename(renames, kwargs)
        return fn(*args, **kwargs)

    method._numpy_renames = renames  # type: ignore[attr-defined]
    return method


def _rename(renames: dict[str, str], kwargs: dict[str, Any]) -> None:
    for torch_name, own in renames.items():
        if torch_name in kwargs:
            if own in kwargs:  # both spellings of one parameter: neither may silently win
                raise ArgumentTypeError(f"got multiple values for argument {own!r} (also given as {torch_name!r})")
            kwargs[own] = kwargs.pop(torch_name)


def with_input(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` taking PyTorch's keyword ``input=`` for its tensor (when ``fn`` names it otherwise); the
    same object for the same ``fn``. A call without keywords goes straight through.

    Example:
        >>> import downslope as ds
        >>> with_input(ds.ops.flip)(input=ds.arange(3), dims=(0,))
        tensor([2, 1, 0])
    """
    known = _INPUT_WRAPPERS.get(fn)
    if known is not None:
        return known
    renames = {**_renames(fn, fn.__name__), **_numpy_renames(fn, fn.__name__)}
    if not renames:
        return fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if kwargs:
            _rename(renames, kwargs)
        return fn(*args, **kwargs)

    _INPUT_WRAPPERS[fn] = wrapper
    return wrapper


def with_out(fn: Callable[..., Any], factory: bool = False) -> Callable[..., Any]:
    """``fn`` taking PyTorch's ``out=`` keyword (see the module's docstring); without it, ``fn`` as it is.
    Wrapping the same function again returns the same wrapper (aliases stay one object).

    Example:
        >>> import downslope as ds
        >>> add = with_out(ds.ops.add)
        >>> o = ds.empty(2)
        >>> add(ds.ones(2), ds.ones(2), out=o) is o, o
        (True, tensor([2., 2.]))
    """
    known = _WRAPPERS.get((fn, factory))
    if known is not None:
        return known
    _WRAPPERS[fn, factory] = wrapper = _make_wrapper(fn, factory)
    return wrapper


def _make_wrapper(fn: Callable[..., Any], factory: bool) -> Callable[..., Any]:
    name = fn.__name__
    renames = {} if factory else {**_renames(fn, name), **_numpy_renames(fn, name)}

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not kwargs:
            return fn(*args)
        if renames:
            _rename(renames, kwargs)
        if "out" not in kwargs:
            return fn(*args, **kwargs)
        out = kwargs.pop("out")
        if out is None:
            return fn(*args, **kwargs)
        several = isinstance(out, (tuple, list))
        outs = _check_out_type(out, name, several)
        if factory and isinstance(out, Tensor):
            dtype = kwargs.get("dtype")
            if dtype is None:
                kwargs["dtype"] = out.dtype
            elif _as_dtype(dtype) != out.dtype:
                raise ArgumentTypeError(
                    f"{name}(): dtype {_as_dtype(dtype)} does not match dtype of out parameter ({out.dtype})"
                )
        if name in _DTYPE_FROM_OUT and name in ("sum", "prod") and len(args) < 2 and "dim" not in kwargs:
            # torch's whole-tensor overloads of these take no out=
            raise ArgumentTypeError(
                f"{name}(): out= is taken only with a dim: {name}(input, dim, keepdim=False, *, out)"
            )
        # an explicit dtype= must be out's; without one, these compute in out's dtype
        exact = not factory and kwargs.get("dtype") is not None
        if not factory and not several and name in _DTYPE_FROM_OUT and kwargs.get("dtype") is None:
            kwargs["dtype"] = outs[0].dtype
        result = fn(*args, **kwargs)
        results = tuple(result) if isinstance(result, tuple) else (result,)
        if several != isinstance(result, tuple) or len(results) != len(outs):
            expected = f"a tuple of {len(results)} tensors" if isinstance(result, tuple) else "one Tensor"
            raise ArgumentTypeError(f"{name}(): argument 'out' must be {expected} for this call, got {_describe(out)}")
        if _mode.enabled and (
            any(r.requires_grad for r in results if isinstance(r, Tensor)) or any(o.requires_grad for o in outs)
        ):
            raise StateError(
                f"{name}(): functions with out=... arguments don't support automatic differentiation, but one of "
                "the arguments requires grad."
            )
        for o, r in zip(outs, results):
            _write(o, r, name, exact=exact or several)
        if isinstance(result, tuple):
            return type(result)(*outs) if hasattr(result, "_fields") else tuple(outs)
        return out

    return wrapper


def _as_dtype(dtype: Any) -> Any:
    from ..backend import as_dtype

    return as_dtype(dtype)


def _describe(out: Any) -> str:
    return f"a tuple of {len(out)}" if isinstance(out, (tuple, list)) else type(out).__name__
