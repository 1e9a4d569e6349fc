"""downslope: see and control gradient descent. Tensors with reverse-mode autodiff on NumPy.

Example:
    >>> import downslope as ds
    >>> w = ds.tensor([1.0, -2.0], requires_grad=True)
    >>> loss = (w * w).sum()
    >>> loss.backward()
    >>> w.grad
    tensor([ 2., -4.])
"""

from __future__ import annotations

import builtins as _builtins  # ds.int, ds.float and ds.bool are dtypes here
import math as _math
import operator as _operator
import sys as _sys
import warnings as _warnings
from typing import Any

# first, before numpy: signals during the command's start-up end it with one line (see there)
from . import startup_signals as _startup_signals  # noqa: F401  (imported for its effect: see there)

# isort: split
import numpy as _np

from . import amp, autograd, func, linalg, random  # random: torch.random's names (light)
from . import jacobians as _jacobians  # noqa: F401  (attaches torch.autograd.functional as ds.autograd.functional)
from . import profiler as profiler  # torch.profiler, also ds.autograd.profiler (record_function; light)
from .amp import autocast, get_autocast_cpu_dtype, get_autocast_dtype, is_autocast_cpu_enabled, is_autocast_enabled
from .autograd import autograd_grad, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import (
    bfloat16,
    bool_,
    float16,
    float32,
    float64,
    get_default_dtype,
    get_rng_state,
    initial_seed,
    int8,
    int16,
    int32,
    int64,
    manual_seed,
    seed,
    set_default_dtype,
    set_rng_state,
    uint8,
)
from .device import (
    accelerator,
    are_deterministic_algorithms_enabled,
    backends,
    cpu,
    cuda,
    device,
    get_default_device,
    get_float32_matmul_precision,
    is_deterministic_algorithms_warn_only_enabled,
    set_default_device,
    set_float32_matmul_precision,
    use_deterministic_algorithms,
)
from .errors import (
    ArgumentTypeError,
    CheckpointError,
    ConfigError,
    DataError,
    DivergenceError,
    DownslopeError,
    ShapeError,
)
from .func import grad as _func_grad
from .func import vmap  # torch.vmap is torch.func.vmap
from .functional import addcdiv, addcmul, cdist, elu, lerp, norm, reciprocal, square, std, var
from .generator import Generator, default_generator
from .gradcheck import GradcheckError, GradcheckReport, gradcheck
from .ops import (  # torch's less everyday functions
    abs,
    acos,
    acosh,
    add,
    addbmm,
    addmm,
    addmv,
    addr,
    all,
    allclose,
    amax,
    amin,
    aminmax,
    any,
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctan2,
    arctanh,
    argmax,
    argmin,
    argsort,
    argwhere,
    as_strided,
    asin,
    asinh,
    atan,
    atan2,
    atanh,
    atleast_1d,
    atleast_2d,
    atleast_3d,
    baddbmm,
    bincount,
    bmm,
    broadcast_tensors,
    broadcast_to,
    cat,
    ceil,
    chunk,
    clamp,
    clamp_max,
    clamp_min,
    clip,
    clone,
    column_stack,
    concat,
    concatenate,
    copysign,
    cos,
    cosh,
    count_nonzero,
    cross,
    cummax,
    cummin,
    cumprod,
    cumsum,
    deg2rad,
    diag,
    diagonal,
    diff,
    div,
    dot,
    dsplit,
    dstack,
    einsum,
    eq,
    equal,
    erf,
    erfc,
    exp,
    exp2,
    expm1,
    flip,
    float_power,
    floor,
    floor_divide,
    fmax,
    fmin,
    fmod,
    frac,
    gather,
    ge,
    ger,
    getitem,
    gt,
    heaviside,
    hsplit,
    hstack,
    hypot,
    index_add,
    index_copy,
    index_fill,
    index_reduce,
    index_select,
    inner,
    is_floating_point,
    isclose,
    isfinite,
    isinf,
    isnan,
    isneginf,
    isposinf,
    kthvalue,
    le,
    leaky_relu,
    log,
    log1p,
    log2,
    log10,
    log_softmax,
    logaddexp,
    logcumsumexp,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    logit,
    logsumexp,
    lt,
    masked_fill,
    masked_scatter,
    masked_select,
    matmul,
    max,
    maximum,
    mean,
    median,
    meshgrid,
    min,
    minimum,
    mm,
    moveaxis,
    movedim,
    mul,
    multinomial,
    mv,
    nan_to_num,
    nanmean,
    nansum,
    narrow,
    ne,
    neg,
    nonzero,
    numel,
    outer,
    pad,
    permute,
    pow,
    prod,
    rad2deg,
    relu,
    remainder,
    repeat_interleave,
    return_types,
    roll,
    round,
    rsqrt,
    scatter,
    scatter_add,
    scatter_reduce,
    segment_reduce,
    select,
    sigmoid,
    sign,
    signbit,
    sin,
    sinc,
    sinh,
    softmax,
    softplus,
    sort,
    split,
    sqrt,
    squeeze,
    stack,
    sub,
    sum,
    sum_to,
    swapaxes,
    swapdims,
    t,
    take,
    take_along_dim,
    tan,
    tanh,
    tensor_split,
    tile,
    topk,
    trace,
    transpose,
    tril,
    triu,
    trunc,
    unbind,
    unflatten,
    unique,
    unsqueeze,
    vdot,
    vsplit,
    vstack,
    where,
    xlogy,
)
from .ops.arithmetic import (
    bitwise_and,
    bitwise_left_shift,
    bitwise_not,
    bitwise_or,
    bitwise_right_shift,
    bitwise_xor,
    gcd,
    lcm,
    ldexp,
    logaddexp2,
    nextafter,
)  # fmt: skip
from .ops.comparison import is_neg, is_nonzero, is_same_size, is_signed, isin
from .ops.factories import (  # range shadows the builtin, as in torch
    asarray,
    range,
    tril_indices,
    triu_indices,
    unravel_index,
)
from .ops.linalg import block_diag, chain_matmul, diag_embed, diagflat, diagonal_scatter, kron, tensordot
from .ops.pointwise import fix, frexp, positive, sgn
from .ops.rearrange import (
    cartesian_prod,
    combinations,
    fliplr,
    flipud,
    msort,
    rot90,
    select_scatter,
    slice_scatter,
    split_with_sizes,
)
from .ops.reductions import (
    corrcoef,
    cov,
    cumulative_trapezoid,
    dist,
    histc,
    renorm,
    std_mean,
    trapezoid,
    trapz,
    var_mean,
)  # fmt: skip
from .ops.shape import public_flatten as flatten  # copies where torch's copies (ops.flatten: the kernels')
from .ops.shape import public_ravel as ravel
from .ops.shape import public_reshape as reshape
from .ops.shape import row_stack
from .ops.sorting import bucketize, mode, nanmedian, nanquantile, quantile, searchsorted, unique_consecutive
from .ops.special import digamma, erfinv, i0, igamma, igammac, lgamma, mvlgamma, polygamma
from .tensor import (
    Tensor,
    arange,
    as_tensor,
    bernoulli,
    empty,
    empty_like,
    eye,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    is_tensor,
    linspace,
    logspace,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)

# PyTorch's dtype names (NumPy dtypes underneath): ds.float is float32, ds.long is int64, ...
dtype = _np.dtype  # isinstance(ds.float32, ds.dtype)
float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
short = int16
bool = bool_  # noqa: A001
inference_mode = autograd.inference_mode  # torch.inference_mode (graph.inference_mode)
from .graph import is_inference_mode_enabled  # noqa: E402  (torch.is_inference_mode_enabled)

subtract, multiply, divide, true_divide, negative = sub, mul, div, div, neg
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne
absolute = abs
from .backend import (  # noqa: E402  (torch.Size: a tuple with numel(), what tensor.shape and size() return)
    Size,
    channels_last,
    channels_last_3d,
    contiguous_format,
    memory_format,
    preserve_format,
)
from .device import mps as mps  # noqa: E402  (torch.mps: is_available() False; outside torch.__all__ too)

legacy_contiguous_format = contiguous_format  # torch's own alias (F.gumbel_softmax's body uses it)
pi, e, inf, nan, newaxis = _math.pi, _math.e, _math.inf, _math.nan, None
iinfo = _np.iinfo
# torch's promotion queries, by the rules downslope's own ops follow
from .ops.operands import broadcast_shapes  # noqa: E402  (torch.broadcast_shapes: a Size from shapes alone)
from .ops.promotion import can_cast, promote_types, result_type  # noqa: E402

GradScaler = amp.GradScaler  # torch.GradScaler is torch.amp.GradScaler (torch >= 2.3)
# torch.OutOfMemoryError: here what NumPy and CuPy raise when an allocation fails (a MemoryError)
OutOfMemoryError = MemoryError


class _FloatInfo:
    """``torch.finfo``'s answer: a floating type's numbers as Python floats (``bits`` an int, ``dtype``
    the type's name), so that they serialize (``json.dumps``) and compute as Python numbers do
    (``finfo(float16).max * 2`` is 131008.0, not a float16 inf)."""

    __slots__ = ("bits", "dtype", "eps", "max", "min", "resolution", "smallest_normal", "tiny")

    def __init__(
        self,
        bits: _builtins.int,
        eps: _builtins.float,
        max: _builtins.float,  # noqa: A002  (torch's field name)
        tiny: _builtins.float,
        resolution: _builtins.float,
        dtype: str,
    ) -> None:
        self.bits, self.eps, self.max, self.min = bits, eps, max, -max
        self.tiny = self.smallest_normal = tiny
        self.resolution, self.dtype = resolution, dtype

    def __eq__(self, other: object) -> _builtins.bool:
        fields = ("bits", "eps", "max", "min", "tiny", "resolution", "dtype")
        return isinstance(other, _FloatInfo) and _builtins.all(getattr(self, k) == getattr(other, k) for k in fields)

    def __hash__(self) -> _builtins.int:
        return hash((self.bits, self.eps, self.max, self.dtype))

    def __repr__(self) -> str:
        return (
            f"finfo(resolution={self.resolution}, min={self.min:.6g}, max={self.max:.6g}, eps={self.eps:.6g}, "
            f"smallest_normal={self.smallest_normal:.6g}, tiny={self.tiny:.6g}, dtype={self.dtype})"
        )


# bfloat16's numbers (8 exponent bits, 7 mantissa bits), for code that reads them; no downslope tensor holds bfloat16
_BFLOAT16_INFO = _FloatInfo(16, 0.0078125, 3.3895313892515355e38, 1.1754943508222875e-38, 0.01, "bfloat16")


def finfo(type: Any = None) -> Any:  # noqa: A002  (torch's argument name)
    """``torch.finfo``: the floating type's limits (``eps``, ``max``, ``tiny``, ``bits``...) as Python
    numbers, torch's (``resolution`` is 10 to the minus the decimal digits, 0.001 for float16);
    ``finfo(ds.bfloat16)`` gives bfloat16's numbers, ``finfo()`` the default dtype's, and a complex
    dtype its parts' (complex64: float32's).

    Example:
        >>> import downslope as ds
        >>> ds.finfo(ds.bfloat16).eps, ds.finfo(ds.float32).bits, ds.finfo(ds.float16).resolution
        (0.0078125, 32, 0.001)
    """
    from .backend import _NoSuchDtype

    if type is None:
        type = get_default_dtype()  # noqa: A001
    if isinstance(type, _NoSuchDtype) or (isinstance(type, str) and type == "bfloat16"):
        return _BFLOAT16_INFO
    info = _np.finfo(type)
    # (.item(): this module's ``float`` and ``int`` are dtypes, as torch's)
    return _FloatInfo(
        info.bits, info.eps.item(), info.max.item(), info.tiny.item(), 10.0**-info.precision, info.dtype.name
    )


def compile(  # noqa: A001  (torch.compile's name)
    model: Any = None,
    *,
    fullgraph: _builtins.bool = False,
    dynamic: _builtins.bool | None = None,
    backend: Any = "inductor",
    mode: str | None = None,
    options: dict[str, Any] | None = None,
    name: str | None = None,
    disable: _builtins.bool = False,
    recompile_limit: _builtins.int | None = None,
    isolate_recompiles: _builtins.bool = False,
    shapes_spec: Any = None,
) -> Any:
    """``torch.compile``: nothing is compiled (the kernels are already NumPy's, oneDNN's and numba's), but
    the result is torch's kind of object. A Module becomes an ``OptimizedModule`` (``ds._dynamo``) holding
    it as ``_orig_mod``: its ``state_dict`` keys start with ``_orig_mod.``, its parameters are the model's
    own, attribute reads and writes reach the model, and calling it calls the model. A function comes back
    wrapped (``__wrapped__`` is the function); called without ``model``, a decorator that does this.
    ``disable=True`` returns ``model`` itself, as torch's. torch's checks of the arguments are kept:
    ``mode`` with ``options``, an unknown ``backend`` name, for the default backend ("inductor") an unknown
    ``mode`` and ``options`` that torch's inductor config does not have or of another type (a RuntimeError
    naming the option), a ``dynamic`` that is not a bool or None, or a model that is not callable raise.

    Example:
        >>> import downslope as ds
        >>> model = ds.nn.Linear(2, 1)
        >>> compiled = ds.compile(model, mode="max-autotune")
        >>> type(compiled).__name__, compiled._orig_mod is model
        ('OptimizedModule', True)
        >>> ds.compile(model, disable=True) is model
        True
    """
    import functools

    from . import _dynamo
    from .errors import ArgumentAssertionError, InvalidValueError

    settings = dict(fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode, options=options, name=name)
    settings.update(disable=disable, recompile_limit=recompile_limit, isolate_recompiles=isolate_recompiles)
    settings.update(shapes_spec=shapes_spec)
    if model is None:  # decorator form: the checks run when it is applied, as torch's
        return lambda fn: compile(fn, **settings)
    modes = ("default", "lite", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")
    if mode is not None and options is not None:
        raise InvalidValueError(
            "compile: Either mode or options can be specified, but both can't be specified at the same time."
        )
    if backend is None or (isinstance(backend, str) and backend == "inductor"):
        # torch's inductor checks its mode and options; another backend gets them as they are
        if mode is not None and mode not in modes:
            raise InvalidValueError(f"compile: Unrecognized mode={mode}, should be one of: {', '.join(modes)}")
        _dynamo.check_inductor_options(options)
    elif isinstance(backend, str) and backend not in _dynamo.BACKENDS:
        raise InvalidValueError(
            f"compile: Invalid backend: {backend!r}, see `torch._dynamo.list_backends()` for available backends "
            f"({', '.join(_dynamo.BACKENDS)})"
        )
    if disable:
        return model
    if dynamic is not None and type(dynamic) is not _builtins.bool:  # torch's dynamo asserts it, after disable
        raise ArgumentAssertionError(
            f"compile: Expected enable to be a bool, got {type(dynamic)} (dynamic={dynamic!r})"
        )
    from .nn.module import Module

    optimized = _dynamo._optimized_module()
    if isinstance(model, optimized):  # torch compiles the model's own forward again: a function
        model = model._orig_mod.forward
    elif isinstance(model, Module):
        return optimized(model, settings)
    if not callable(model):
        raise ArgumentAssertionError(f"compile: A callable function is expected, but {type(model)} is provided.")

    @functools.wraps(model)
    def compiled(*args: Any, **kwargs: Any) -> Any:
        return model(*args, **kwargs)

    return compiled


def _assert(condition: Any, message: Any) -> None:
    """``torch._assert``: Python's ``assert`` as a function (an AssertionError with ``message`` when
    ``condition`` is false), which model code calls so that tracers can see it.

    Example:
        >>> import downslope as ds
        >>> ds._assert(ds.tensor(2) > 1, "small")
    """
    if not condition:
        raise AssertionError(message)


class _TorchC:
    """``torch._C``: only the call model code makes of it, ``_get_tracing_state()``: None, as no JIT tracer
    runs here (Glow-style ActNorm skips its data-dependent init while tracing)."""

    @staticmethod
    def _get_tracing_state() -> None:
        return None


_C = _TorchC()


def scalar_tensor(value: Any, dtype: Any = None, **options: Any) -> Tensor:
    """A 0-d tensor holding ``value`` (the default float dtype unless ``dtype`` says otherwise)."""
    return tensor(value, dtype=get_default_dtype() if dtype is None else dtype, **options)


def typename(obj: Any) -> str:
    """torch.typename: 'torch.FloatTensor' for a float32 tensor, else the type's name."""
    return obj.type() if isinstance(obj, Tensor) else type(obj).__name__


def detach(t: Tensor) -> Tensor:
    return t.detach()


def is_complex(input: Tensor) -> _builtins.bool:  # noqa: A002  (torch's argument name)
    """torch.is_complex: whether ``input`` holds complex64 or complex128 values (optimizers copied from
    PyTorch ask it of every parameter before stepping)."""
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"is_complex: expected a Tensor, got {type(input).__name__}")
    return input.is_complex()


def _typed(name: str, dt: Any, device_type: str = "cpu") -> Any:
    from .typed_tensors import typed_tensor  # classes: isinstance(x, ds.FloatTensor) checks the dtype

    return typed_tensor(name, dt, device_type)


FloatTensor = _typed("FloatTensor", float32)
DoubleTensor = _typed("DoubleTensor", float64)
HalfTensor = _typed("HalfTensor", float16)
LongTensor = _typed("LongTensor", int64)
IntTensor = _typed("IntTensor", int32)
ShortTensor = _typed("ShortTensor", int16)
CharTensor = _typed("CharTensor", int8)
ByteTensor = _typed("ByteTensor", uint8)
BoolTensor = _typed("BoolTensor", bool_)
# torch.cuda.FloatTensor and its kin: isinstance is True only for tensors on a GPU
_CPU_CLASSES = (FloatTensor, DoubleTensor, HalfTensor, LongTensor, IntTensor, ShortTensor, CharTensor, ByteTensor)
for _cpu_class in (*_CPU_CLASSES, BoolTensor):
    setattr(cuda, _cpu_class.__name__, _typed(_cpu_class.__name__, _cpu_class.dtype, "cuda"))
del _cpu_class, _CPU_CLASSES

_DEFAULT_TENSOR_TYPE_WARNING = (
    "torch.set_default_tensor_type() is deprecated as of PyTorch 2.1, please use torch.set_default_dtype() and "
    "torch.set_default_device() as alternatives."
)


def set_default_tensor_type(t: Any) -> None:
    """Old PyTorch's ``torch.set_default_tensor_type(torch.DoubleTensor)`` (or the name
    ``'torch.DoubleTensor'``): the default dtype becomes the class's floating dtype, with torch's
    deprecation warning. A CUDA type is refused (set the dtype and ``set_default_device('cuda')``).

    Example:
        >>> import downslope as ds, warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     ds.set_default_tensor_type(ds.DoubleTensor)
        >>> ds.ones(1).dtype
        dtype('float64')
        >>> ds.set_default_dtype(ds.float32)
    """
    typed = t
    if isinstance(t, str):  # 'torch.FloatTensor', 'torch.cuda.FloatTensor'
        module, _, name = t.rpartition(".")
        if module == "torch.cuda":
            raise ArgumentTypeError(
                f"set_default_tensor_type: {t} would put new tensors on the GPU by default; use "
                f"ds.set_default_dtype(...) and ds.set_default_device('cuda') instead"
            )
        typed = globals().get(name) if module == "torch" else None
        if typed is None:
            raise ArgumentTypeError(f"set_default_tensor_type: invalid type {t!r}: expected 'torch.FloatTensor' or kin")
    dtype = getattr(typed, "dtype", None)
    if getattr(typed, "device_type", None) == "cuda":
        raise ArgumentTypeError(
            f"set_default_tensor_type: {typed!r} would put new tensors on the GPU by default; use "
            "ds.set_default_dtype(...) and ds.set_default_device('cuda') instead"
        )
    if not isinstance(typed, type) or not isinstance(dtype, _np.dtype) or dtype.kind != "f":
        raise ArgumentTypeError(
            f"set_default_tensor_type: invalid type object: only floating-point types are supported as the default "
            f"type, got {t!r}"
        )
    _warnings.warn(_DEFAULT_TENSOR_TYPE_WARNING, UserWarning, stacklevel=2)
    set_default_dtype(dtype)


def set_flush_denormal(mode: _builtins.bool) -> _builtins.bool:
    """torch.set_flush_denormal: whether flushing denormal floats to zero could be switched on. Always
    False here, as torch answers on a CPU without the instruction: NumPy computes with denormals, and
    nothing changes.

    Example:
        >>> import downslope as ds
        >>> ds.set_flush_denormal(True)
        False
    """
    if type(mode) is not _builtins.bool:
        raise ArgumentTypeError(f"set_flush_denormal: flush_denormal expects a bool, but got {type(mode).__name__}")
    return False


# torch.set_printoptions' profiles, as np.array2string's keywords (linewidth stays NumPy's 75 unless set)
_PRINT_PROFILES: dict[str, dict[str, Any]] = {
    "default": {"precision": 4},
    "short": {"precision": 2, "edgeitems": 2},
    "full": {"precision": 4, "threshold": _sys.maxsize},
}


def set_printoptions(
    precision: _builtins.int | None = None,
    threshold: _builtins.float | None = None,
    edgeitems: _builtins.int | None = None,
    linewidth: _builtins.int | None = None,
    profile: str | None = None,
    sci_mode: _builtins.bool | None = None,
) -> None:
    """How tensors print (torch.set_printoptions): digits after the point, the element count beyond
    which only ``edgeitems`` per edge are shown, the line width, a ``profile`` ('default', 'short',
    'full') applied before the other arguments, and ``sci_mode`` (True: always scientific, False:
    never, None: NumPy's choice; reset by every call, as in torch). NumPy lays the numbers out
    (``1.`` where torch shows ``1.0000``).

    Example:
        >>> import downslope as ds
        >>> ds.set_printoptions(precision=2)
        >>> ds.tensor([1.23456])
        tensor([1.23])
        >>> ds.set_printoptions(profile="default")
    """
    options = Tensor._print_options
    if profile is not None:
        if profile not in _PRINT_PROFILES:
            raise ConfigError(f"set_printoptions: profile must be one of {sorted(_PRINT_PROFILES)}, got {profile!r}")
        options.clear()
        options.update(_PRINT_PROFILES[profile])
    if precision is not None:
        options["precision"] = _operator.index(precision)
    if threshold is not None:  # torch code passes float('inf') for "print everything"
        options["threshold"] = _sys.maxsize if threshold == _math.inf else _math.floor(threshold)
    if edgeitems is not None:
        options["edgeitems"] = _operator.index(edgeitems)
    if linewidth is not None:
        options["max_line_width"] = _operator.index(linewidth)
    options.pop("formatter", None)
    options.pop("suppress_small", None)
    if sci_mode:
        digits = options["precision"]
        options["formatter"] = {"float_kind": lambda v: f"{v:.{digits}e}"}
    elif sci_mode is not None:
        options["suppress_small"] = True


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """GELU, x * Phi(x) (``approximate='tanh'``: the tanh formula): the very function of
    ``downslope.nn.functional.gelu`` (one name, one set of numbers; fused in float32, within float32
    rounding of PyTorch's exact GELU), also taking numbers and arrays.

    Example:
        >>> import downslope as ds
        >>> ds.gelu([-1.0, 0.0, 1.0])
        tensor([-0.1587,  0.    ,  0.8413])
    """
    from .nn.functional import gelu as nn_gelu  # nn loads on first use: `import downslope` stays fast
    from .ops import _lift

    return nn_gelu(_lift(x), approximate)


def grad(fn_or_outputs: Any = None, inputs: Any = None, *args: Any, outputs: Any = None, **kwargs: Any) -> Any:
    """``ds.grad(f)`` is :func:`downslope.func.grad` (``torch.func.grad``): the function computing the
    gradient of the scalar ``f(*args)``, with ``argnums=`` and ``has_aux=``; it composes
    (``ds.grad(ds.grad(f))`` is the second derivative).

    Called PyTorch's ``torch.autograd.grad`` way (``ds.grad(outputs, inputs, ...)`` or ``outputs=``),
    it still returns those gradients for this release, with a DeprecationWarning: that is
    :func:`downslope.autograd.grad`.

    Example:
        >>> import downslope as ds
        >>> ds.grad(lambda x: (x ** 3).sum())(ds.tensor([1.0, 2.0]))
        tensor([ 3., 12.])
    """
    torch_style = outputs is not None or inputs is not None or len(args) > 0 or "inputs" in kwargs
    if not torch_style and callable(fn_or_outputs):
        return _func_grad(fn_or_outputs, **kwargs)
    _warnings.warn(
        "ds.grad(outputs, inputs) is deprecated: ds.grad is the function transform (torch.func.grad); "
        "use ds.autograd.grad(outputs, inputs), PyTorch's torch.autograd.grad",
        DeprecationWarning,
        stacklevel=2,
    )
    if outputs is not None:
        if fn_or_outputs is not None:
            raise ArgumentTypeError("grad: outputs given twice (positionally and as outputs=)")
        fn_or_outputs = outputs
    if inputs is None and not args and "inputs" not in kwargs:
        raise ArgumentTypeError(
            f"grad: expected a function (ds.grad(f)) or outputs and inputs (ds.autograd.grad(outputs, inputs)), "
            f"got only {type(fn_or_outputs).__name__}"
        )
    if inputs is not None:
        args = (inputs, *args)
    return autograd.grad(fn_or_outputs, *args, **kwargs)


__version__ = "0.1.0"

_LAZY = {"nn", "optim", "data", "train", "viz", "distributed", "cli", "utils", "distributions", "special"}
# torch's compiler/TorchScript/fx shims and torch.serialization's module path (see each module)
_LAZY |= {"compiler", "_dynamo", "_inductor", "jit", "fx", "serialization"}
_LAZY |= {"testing", "version"}  # torch.testing (assert_close) and torch.version (cuda: None)
_LAZY |= {"signal"}  # torch.signal.windows (hann, kaiser...): SciPy-style windows
_LAZY |= {"fft"}  # torch.fft (fft, rfft, irfft2...), with gradients
_LAZY |= {"quasirandom"}  # torch.quasirandom.SobolEngine (its direction numbers read on first use)
# torch's top-level spellings of nn functions (torch.conv2d, torch.dropout(x, p, train), ...), with
# torch's top-level signatures: downslope.nn._torch_aliases, loaded on first use like nn itself.
from .torch_alias_names import TORCH_ALIAS_NAMES as _TORCH_ALIASES  # noqa: E402

_QUANTIZATION_NAMES = frozenset(
    ("qscheme", "per_tensor_affine", "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric")
    + ("per_channel_affine_float_qparams", "quint8", "qint8", "qint32")
)


def __getattr__(name: str) -> Any:
    # Subpackages load on first use so that `import downslope` stays fast.
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name in _TORCH_ALIASES:
        from .nn import _torch_aliases

        value = getattr(_torch_aliases, name)
        globals()[name] = value
        return value
    if name in ("fit", "evaluate", "predict"):  # Keras' trio, beside each other as in Keras
        # from the defining modules: the attribute `train.fit` is the submodule once it is imported by path
        from .train import evaluation
        from .train.fit import fit

        return fit if name == "fit" else getattr(evaluation, name)
    if name in ("stft", "istft"):  # torch.stft / torch.istft, beside torch.fft (loaded with it)
        from . import fft

        return getattr(fft, name)
    if name == "open_run":  # a run the CLI trained, from Python: ds.open_run("runs/houses").predict(rows)
        from .runs import open_run

        return open_run
    if name in ("ao", "quantization"):  # torch.ao.quantization / torch.quantization: fake quantization for QAT
        import importlib

        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name in ("fake_quantize_per_tensor_affine", "fake_quantize_per_channel_affine"):
        from .ops import fake_quant

        return getattr(fake_quant, name)
    if name in _QUANTIZATION_NAMES:  # torch.per_tensor_affine, torch.qint8, ...: what observers are told
        from .ao.quantization import qtypes

        return getattr(qtypes, name)
    if name == "resize_as_":
        from .ops.resize import resize_as_

        return resize_as_
    if name in ("save", "load"):
        from . import serialization

        return getattr(serialization, name)
    if name == "onnx":  # the ONNX exporter; imports the optional `onnx` package only when it runs
        from .export import onnx

        globals()[name] = onnx
        return onnx
    if name in ("save_safetensors", "load_safetensors", "safetensors_metadata"):
        from .export import safetensors

        return getattr(safetensors, name)
    from ._unsupported import missing_module_attribute  # says why for torch's names downslope leaves out

    missing_module_attribute(name)


# torch's top-level names for linear algebra (torch.linalg's are ds.linalg's)
inverse, det, logdet, slogdet, pinverse, matrix_power = (
    linalg.inv,
    linalg.det,
    linalg.logdet,
    linalg.slogdet,
    linalg.pinv,
    linalg.matrix_power,
)
svd, qr, lu, lu_unpack, lu_solve, triangular_solve = (
    linalg.svd_legacy,
    linalg.qr_legacy,
    linalg.lu_legacy,
    linalg.lu_unpack,
    linalg.lu_solve_legacy,
    linalg.triangular_solve,
)
cholesky, cholesky_solve, cholesky_inverse, matrix_exp = (
    linalg.cholesky_legacy,
    linalg.cholesky_solve,
    linalg.cholesky_inverse,
    linalg.matrix_exp,
)
from .householder import geqrf, orgqr, ormqr  # noqa: E402  (LAPACK's compact Q: torch's top-level names)

# torch's out= keyword on the top-level functions that take it (the ops and Tensor methods stay as they are)
from .ops.out import OUT_FACTORIES as _OUT_FACTORIES  # noqa: E402
from .ops.out import OUT_FUNCTIONS as _OUT_FUNCTIONS  # noqa: E402
from .ops.out import with_out as _with_out  # noqa: E402

_wrapped: dict[Any, Any] = {}  # one wrapper per function, so that aliases stay one object (ds.subtract is ds.sub)
for _name in (*_OUT_FUNCTIONS, *_OUT_FACTORIES):
    if _name in globals():
        _fn = globals()[_name]
        if id(_fn) not in _wrapped:
            _wrapped[id(_fn)] = _with_out(_fn, factory=_name in _OUT_FACTORIES)
        globals()[_name] = _wrapped[id(_fn)]
from .ops.out import LINALG_OUT_FUNCTIONS as _LINALG_OUT_FUNCTIONS  # noqa: E402

for _name in _LINALG_OUT_FUNCTIONS:  # with_out gives a function one wrapper: ds.inverse is ds.linalg.inv
    setattr(linalg, _name, _with_out(getattr(linalg, _name)))
from .ops.out import INPUT_FUNCTIONS as _INPUT_FUNCTIONS  # noqa: E402
from .ops.out import with_input as _with_input  # noqa: E402

for _name in _INPUT_FUNCTIONS:  # torch's input= keyword on the rest of the top-level functions
    if _name in globals():
        globals()[_name] = _with_input(globals()[_name])
del _name, _fn, _wrapped
from .ops.out import accept_numpy_keywords as _accept_numpy_keywords  # noqa: E402

_accept_numpy_keywords(Tensor)  # NumPy's axis=/keepdims= on the Tensor methods, as torch's (A.cumsum(axis=0))

# PyTorch's names left out on purpose (ds.fft, t.share_memory_(), import downslope.multiprocessing) say why
from ._unsupported import install_module_finder, install_tensor_names  # noqa: E402

install_tensor_names(Tensor)
install_module_finder()

# einops (optional, never imported here) takes downslope tensors: its backend is defined now if einops is
# loaded, else right after einops loads (a one-shot import hook; see ops/_einops.py)
from .ops._einops import register as _register_einops  # noqa: E402

_register_einops()

__all__ = [
    "inverse", "det", "logdet", "slogdet", "pinverse", "matrix_power", "svd", "qr", "lu", "lu_unpack", "lu_solve",
    "triangular_solve", "cholesky", "cholesky_solve", "cholesky_inverse", "matrix_exp", "geqrf", "orgqr", "ormqr",
    "Tensor", "tensor", "from_numpy", "from_dlpack", "as_tensor", "zeros", "ones", "full", "zeros_like", "ones_like",
    "randn", "rand", "arange", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "grad",
    "autograd_grad", "gradcheck", "GradcheckError", "GradcheckReport", "manual_seed", "get_rng_state",
    "set_rng_state", "get_default_dtype", "set_default_dtype", "float16", "float32", "float64", "int32",
    "int64", "bool_", "add", "sub", "mul", "div", "pow", "neg", "matmul", "exp", "log", "sqrt", "abs",
    "sin", "cos", "tanh", "sigmoid", "relu", "leaky_relu", "gelu", "elu", "softplus", "erf", "clip", "clamp",
    "maximum", "minimum", "where", "sum", "mean", "max", "min", "amax", "amin", "var", "std", "logsumexp", "softmax",
    "log_softmax", "reshape", "permute", "transpose", "squeeze", "unsqueeze", "flatten", "broadcast_to",
    "sum_to", "concatenate", "cat", "stack", "getitem", "gather", "pad", "save", "load", "save_safetensors", "load_safetensors", "safetensors_metadata", "onnx", "DownslopeError",
    "ShapeError", "CheckpointError", "DataError", "ConfigError", "DivergenceError", "device", "cuda",
    "accelerator", "backends", "autograd", "func", "vmap", "cpu", "int8", "int16", "uint8", "addcdiv", "addcmul", "lerp", "norm",
    "reciprocal", "square", "all", "allclose", "any", "argmax", "argmin", "argsort", "bincount", "bmm", "ceil",
    "chunk", "clone", "concat", "cumsum", "dot", "eq", "equal", "expm1", "flip", "floor", "ge", "gt", "hstack",
    "index_select", "is_floating_point", "isclose", "isfinite", "isinf", "isnan", "le", "log1p", "logical_and",
    "logical_not", "logical_or", "lt", "masked_fill", "mm", "mv", "narrow", "ne", "numel", "outer", "prod",
    "return_types", "round", "rsqrt", "sign", "sort", "split", "t", "tile", "topk", "tril", "triu", "trunc",
    "unbind", "unique", "vstack", "bernoulli", "empty", "empty_like", "eye", "full_like", "is_tensor",
    "linspace", "logspace", "normal", "rand_like", "randint", "randint_like", "randn_like", "randperm", "dtype",
    "float", "double", "half", "long", "int", "short", "bool", "inference_mode", "is_inference_mode_enabled",
    "subtract", "multiply",
    "divide", "true_divide", "negative", "scatter", "scatter_add", "scatter_reduce", "index_reduce", "segment_reduce", "einsum", "Size", "memory_format", "contiguous_format", "preserve_format", "channels_last", "channels_last_3d", "pi", "e", "inf", "nan", "newaxis", "finfo", "iinfo",
    "result_type", "promote_types", "can_cast", "broadcast_shapes", "typename", "scalar_tensor", "asarray", "detach", "initial_seed",
"acos", "acosh", "addbmm", "addmm", "addmv", "addr", "aminmax", "as_strided", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh", "argwhere", "asin", "asinh", "atan", "atan2", "atanh", "atleast_1d", "atleast_2d", "atleast_3d", "baddbmm", "broadcast_tensors", "clamp_max", "clamp_min", "column_stack", "copysign", "cosh", "count_nonzero", "cross", "deg2rad", "diag", "diagonal", "diff", "dsplit", "dstack", "erfc", "exp2", "float_power", "floor_divide", "fmax", "fmin", "fmod", "frac", "ger", "heaviside", "hsplit", "hypot", "index_add", "index_copy", "index_fill", "inner", "isneginf", "isposinf", "kthvalue", "log10", "log2", "logaddexp", "logical_xor", "logit", "median", "meshgrid", "moveaxis", "movedim", "multinomial", "nan_to_num", "nanmean", "nansum", "nonzero", "rad2deg", "ravel", "remainder", "repeat_interleave", "roll", "select", "signbit", "sinc", "sinh", "swapaxes", "swapdims", "take", "take_along_dim", "tan", "tensor_split", "trace", "unflatten", "vdot", "vsplit", "xlogy",
"cumprod", "cummax", "cummin", "logcumsumexp", "masked_select", "masked_scatter",
"Generator", "default_generator", "random", "FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor",     "seed", "greater", "greater_equal", "less", "less_equal", "not_equal", "absolute",
"amp", "autocast", "is_autocast_enabled", "get_autocast_dtype", "is_autocast_cpu_enabled", "get_autocast_cpu_dtype", "bfloat16", "cdist", "compile", "set_float32_matmul_precision", "get_float32_matmul_precision",
"set_default_device", "get_default_device", "use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
"is_deterministic_algorithms_warn_only_enabled",
"block_diag", "cartesian_prod", "chain_matmul", "combinations", "diag_embed", "diagflat", "diagonal_scatter", "fliplr",
"flipud", "kron", "msort", "range", "rot90", "row_stack", "select_scatter", "slice_scatter", "split_with_sizes",
"tensordot", "tril_indices", "triu_indices", "unravel_index",
"is_neg", "is_nonzero", "is_same_size", "is_signed", "isin", "corrcoef", "cov", "cumulative_trapezoid", "dist",
"histc", "renorm", "std_mean", "trapezoid", "trapz", "var_mean", "bucketize", "mode", "nanmedian", "nanquantile",
"quantile", "searchsorted", "unique_consecutive", "digamma", "erfinv", "i0", "igamma", "igammac", "lgamma",
"mvlgamma", "polygamma", "bitwise_and", "bitwise_left_shift", "bitwise_not", "bitwise_or", "bitwise_right_shift",
"bitwise_xor", "gcd", "lcm", "ldexp", "logaddexp2", "nextafter", "fix", "frexp", "positive", "sgn", "special",
"set_printoptions",
]  # fmt: skip
__all__ += ["GradScaler", "OutOfMemoryError", *sorted(_TORCH_ALIASES)]

# torch's top-level in-place functions: ds.sin_(x) is x.sin_()
from . import inplace as _inplace  # noqa: E402

globals().update(_inplace.FUNCTIONS)
__all__ += list(_inplace.NAMES)

# torch's view-copy functions, windows, histograms, finite differences, samplers and the rest
from .ops.compositions import adjoint, fill, frobenius_norm, nonzero_static, nuclear_norm, rsub, vander  # noqa: E402
from .ops.constructors import empty_permuted, empty_strided, frombuffer  # noqa: E402
from .ops.copy_variants import (  # noqa: E402
    alias_copy,
    detach_copy,
    diagonal_copy,
    expand_copy,
    narrow_copy,
    permute_copy,
    select_copy,
    slice_copy,
    split_copy,
    split_with_sizes_copy,
    squeeze_copy,
    t_copy,
    transpose_copy,
    unbind_copy,
    unsqueeze_copy,
    view_copy,
)
from .ops.finite_differences import gradient  # noqa: E402
from .ops.histograms import histogram, histogramdd  # noqa: E402
from .ops.indexing import index_put_op as index_put  # noqa: E402  (torch.index_put(x, indices, values, accumulate))
from .ops.indexing import put  # noqa: E402
from .ops.inplace_products import addmv_  # noqa: E402
from .ops.random_samplers import binomial, poisson  # noqa: E402
from .ops.warning_modes import (  # noqa: E402
    is_anomaly_check_nan_enabled,
    is_anomaly_enabled,
    is_warn_always_enabled,
    set_warn_always,
)
from .ops.windows import bartlett_window, blackman_window, hamming_window, hann_window, kaiser_window  # noqa: E402

__all__ += [
    "adjoint", "fill", "frobenius_norm", "nonzero_static", "nuclear_norm", "rsub", "vander", "empty_permuted",
    "empty_strided", "set_default_tensor_type", "set_flush_denormal",
    "frombuffer", "alias_copy", "detach_copy", "diagonal_copy", "expand_copy", "narrow_copy", "permute_copy",
    "select_copy", "slice_copy", "split_copy", "split_with_sizes_copy", "squeeze_copy", "t_copy", "transpose_copy",
    "unbind_copy", "unsqueeze_copy", "view_copy", "gradient", "histogram", "histogramdd", "index_put", "put",
    "addmv_", "binomial", "poisson", "is_anomaly_check_nan_enabled", "is_anomaly_enabled", "is_warn_always_enabled",
    "set_warn_always", "bartlett_window", "blackman_window", "hamming_window", "hann_window", "kaiser_window",
]  # fmt: skip

# torch's thread settings and its _foreach_* list ops
from . import foreach as _foreach  # noqa: E402
from .parallel import get_num_interop_threads, get_num_threads, set_num_interop_threads, set_num_threads  # noqa: E402

globals().update(_foreach.FUNCTIONS)
__all__ += ["get_num_interop_threads", "get_num_threads", "set_num_interop_threads", "set_num_threads"]
__all__ += ["is_complex"]

# torch's randomized low-rank SVD and PCA (torch/_lowrank.py)
from .lowrank import pca_lowrank, svd_lowrank  # noqa: E402

__all__ += ["pca_lowrank", "svd_lowrank"]

# complex tensors: torch's dtype names and the complex-only functions (ops/complex.py)
from .backend import complex64, complex128  # noqa: E402
from .ops.complex import (  # noqa: E402
    angle,
    conj,
    is_conj,
    isreal,
    polar,
    real,
    resolve_conj,
    view_as_complex,
    view_as_real,
)
from .ops.complex import complex as complex  # noqa: E402, A004  (torch.complex(real, imag); shadows the builtin here)
from .ops.complex import imag as imag  # noqa: E402

angle = _with_out(angle)  # torch.angle takes out= too (imported after the out= wrapping above)

cfloat, cdouble = complex64, complex128
conj_physical, resolve_neg = conj, resolve_conj
__all__ += [
    "complex64", "complex128", "cfloat", "cdouble", "complex", "polar", "real", "imag", "conj", "conj_physical",
    "resolve_conj", "resolve_neg", "angle", "view_as_real", "view_as_complex", "fft", "stft", "istft", "is_conj",
    "isreal",
]  # fmt: skip

# sparse COO tensors: torch.sparse_coo_tensor, torch.spmm, the layouts, torch.sparse (mm, sum, softmax...)
from . import sparse as sparse  # noqa: E402
from .sparse import layout, sparse_coo, sparse_coo_tensor, spmm, strided  # noqa: E402

__all__ += ["sparse", "layout", "sparse_coo", "sparse_coo_tensor", "spmm", "strided"]
