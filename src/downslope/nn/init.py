"""Weight initializers (PyTorch's ``torch.nn.init`` names and formulas), drawn from the library's
one seeded generator (``downslope.backend.rng()``), so ``ds.manual_seed`` makes them repeatable.

Every initializer fills its tensor in place (outside gradient recording) and returns it.
Fans are computed as in PyTorch: for a weight of shape ``(out, in, *kernel)``,
``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``.

==================  =====================================================================
initializer         distribution
==================  =====================================================================
xavier_uniform_     U(-a, a),  a = gain * sqrt(6 / (fan_in + fan_out))
xavier_normal_      N(0, std), std = gain * sqrt(2 / (fan_in + fan_out))
kaiming_uniform_    U(-b, b),  b = gain * sqrt(3 / fan)   (fan = fan_in or fan_out)
kaiming_normal_     N(0, std), std = gain / sqrt(fan)
orthogonal_         a (semi-)orthogonal matrix from the QR of a Gaussian matrix, times gain
==================  =====================================================================
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np

from .. import backend
from ..devices import device_of, to_device
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, DTypeUnimplementedError
from ..generator import as_numpy_generator
from ..tensor import Tensor

__all__ = [
    "calculate_gain",
    "zeros_",
    "ones_",
    "constant_",
    "normal_",
    "uniform_",
    "trunc_normal_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "eye_",
    "dirac_",
    "sparse_",
]

_LINEAR_LIKE = {
    "linear",
    "identity",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended scale for weights feeding ``nonlinearity`` (PyTorch's table).

    linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu sqrt(2 / (1 + slope^2))
    (slope ``param``, default 0.01), selu 3/4.

    Example:
        >>> from downslope.nn import init
        >>> round(init.calculate_gain("relu"), 6)
        1.414214
    """
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ArgumentError(f"calculate_gain('leaky_relu', param): expected a number for the slope, got {param!r}")
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ArgumentError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
        f"{sorted(_LINEAR_LIKE | {'tanh', 'relu', 'leaky_relu', 'selu'})}"
    )


def _check(tensor: Any, fn: str) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise ArgumentTypeError(f"init.{fn}: expected a Tensor (e.g. a layer's weight), got {type(tensor).__name__}")
    return tensor


def _fill(tensor: Tensor, values: Any) -> Tensor:
    # Written into the existing array, so the Parameter object an optimizer holds stays the same.
    # The values are drawn on the host (seeded runs start alike on every device); a device tensor
    # gets them cast and copied over once.
    arr = tensor.array
    if type(arr) is not np.ndarray:
        values = to_device(np.asarray(values, dtype=arr.dtype), device_of(arr))
    if getattr(arr.flags, "writeable", True):  # CuPy's arrays have no read-only flag
        arr[...] = values
    else:
        tensor.array = np.array(np.broadcast_to(values, tensor.shape), dtype=arr.dtype)
    return tensor


# torch's names of the dtypes its random kernels refuse, for its message
_TORCH_NAMES = {"bool": "Bool", "uint8": "Byte", "int8": "Char", "int16": "Short", "int32": "Int", "int64": "Long"}


def _refuse_integral(tensor: Tensor, kernel: str) -> None:
    """Refuse an integer or boolean tensor, as torch's random kernels do (samples truncated into it would
    be mostly 0 and -1, silently)."""
    dtype = tensor.array.dtype
    if dtype.kind in "iub":
        raise DTypeUnimplementedError(
            f"\"{kernel}\" not implemented for '{_TORCH_NAMES.get(dtype.name, dtype.name)}': random initial values "
            f"need a floating tensor, got {dtype}"
        )


def _uniform(tensor: Tensor, lo: float, hi: float) -> Any:
    """U(lo, hi) samples of the tensor's shape; for a complex tensor each part drawn so, as torch's uniform_."""
    _refuse_integral(tensor, "check_uniform_bounds")
    if tensor.array.dtype.kind == "c":
        parts = backend.rng().uniform(lo, hi, (*tensor.shape, 2))
        return parts[..., 0] + 1j * parts[..., 1]
    return backend.rng().uniform(lo, hi, tensor.shape)


def _normal(tensor: Tensor, mean: float, std: float) -> Any:
    """N(mean, std^2) samples; for a complex tensor torch's complex normal: each part N(mean, std^2 / 2),
    so that E|z - mean|^2 = std^2."""
    _refuse_integral(tensor, "normal_kernel_cpu")
    if tensor.array.dtype.kind == "c":
        parts = backend.rng().normal(mean, std / math.sqrt(2.0), (*tensor.shape, 2))
        return parts[..., 0] + 1j * parts[..., 1]
    return backend.rng().normal(mean, std, tensor.shape)


def _refuse_complex(tensor: Tensor, fn: str, why: str) -> None:
    if tensor.array.dtype.kind == "c":  # as torch, which refuses these for complex tensors
        raise DTypeError(f"init.{fn}: not implemented for complex tensors ({tensor.array.dtype}), as in torch: {why}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ArgumentError(
            f"fan in and fan out need a tensor with at least 2 dims (out, in, *kernel); got shape {tuple(tensor.shape)}"
        )
    receptive = math.prod(tensor.shape[2:]) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ArgumentError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


_F = TypeVar("_F", bound=Callable[..., Tensor])


def _drawing(fn: _F) -> _F:
    """Make a random initializer's keyword ``generator=`` (PyTorch 2's; a ds.Generator or a NumPy one)
    take effect: its draws then come from that generator instead of the library's."""

    @functools.wraps(fn)
    def with_generator(*args: Any, generator: Any = None, **kwargs: Any) -> Tensor:
        if generator is None:
            return fn(*args, **kwargs)
        with backend.use_generator(as_numpy_generator(generator, f"init.{fn.__name__}")):
            return fn(*args, **kwargs)

    return cast(_F, with_generator)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    return _fill(_check(tensor, "zeros_"), 0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return _fill(_check(tensor, "ones_"), 1)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``.

    Example:
        >>> import downslope as ds
        >>> ds.nn.init.constant_(ds.zeros(2), 0.5)
        tensor([0.5, 0.5])
    """
    _check(tensor, "constant_")
    if isinstance(val, (complex, np.complexfloating)) and tensor.array.dtype.kind != "c":  # as torch's fill_
        if val.imag != 0:
            raise DTypeError(
                f"init.constant_: value {val!r} cannot be converted to type {tensor.array.dtype} without overflow "
                "(a complex number with a nonzero imaginary part, into a real tensor); make the tensor complex first"
            )
        val = val.real
    return _fill(tensor, val)


@_drawing
def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples from U(a, b)."""
    _check(tensor, "uniform_")
    if not a <= b:
        raise ArgumentError(f"init.uniform_: expected a <= b, got a={a}, b={b}")
    return _fill(tensor, _uniform(tensor, a, b))


@_drawing
def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples from N(mean, std^2)."""
    _check(tensor, "normal_")
    if std < 0:
        raise ArgumentError(f"init.normal_: std must be non-negative, got {std}")
    return _fill(tensor, _normal(tensor, mean, std))


@_drawing
def trunc_normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0, generator: Any = None
) -> Tensor:
    """Fill with N(mean, std^2) samples redrawn until they fall in [a, b] (absolute bounds, as in PyTorch)."""
    _refuse_complex(_check(tensor, "trunc_normal_"), "trunc_normal_", "its bounds compare values (lt)")
    _refuse_integral(tensor, "normal_kernel_cpu")
    if not a < b:
        raise ArgumentError(f"init.trunc_normal_: expected a < b, got a={a}, b={b}")
    rng = backend.rng()
    if std > 0:
        alpha, beta = (a - mean) / std, (b - mean) / std
        if _normal_cdf(beta) - _normal_cdf(alpha) < 0.25:
            # [a, b] holds little of the mass: rejection would redraw for ever. Invert the CDF instead
            # (PyTorch's method), in the tail's own terms: uniform draws between the bounds' tail
            # probabilities, which stay exact far out where the CDF itself rounds to 1.
            flip = alpha + beta < 0  # the lower tail, mirrored onto the upper one
            lo_z, hi_z = (-beta, -alpha) if flip else (alpha, beta)
            tail = rng.uniform(_normal_tail(hi_z), _normal_tail(lo_z), tensor.shape)
            z = math.sqrt(2.0) * _erfcinv(2.0 * tail)
            return _fill(tensor, np.clip(mean + std * (-z if flip else z), a, b))
    out = rng.normal(mean, std, tensor.shape)
    bad = (out < a) | (out > b)
    while bad.any():  # rejection sampling: exact, and at least a quarter of the draws are kept per round
        out[bad] = rng.normal(mean, std, int(bad.sum()))
        bad = (out < a) | (out > b)
    return _fill(tensor, out)


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _normal_tail(z: float) -> float:
    """P(Z > z) for a standard normal Z, exact in the far tail (erfc, not 1 - cdf)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _erfcinv(y: np.ndarray) -> np.ndarray:
    """The inverse of erfc on (0, 1] for x >= 0 (float64): Newton's method on log(erfc), which stays
    accurate where erfc is tiny (25 standard deviations out)."""
    y = np.clip(np.asarray(y, dtype=np.float64), 1e-300, 1.0)
    log_y = np.log(y)
    x = np.sqrt(np.maximum(-log_y, 0.0))  # the tail's leading term, then refined
    for _ in range(8):
        e = np.maximum(backend.erfc(x), 1e-300)  # whole-array erfc, exact to 2 ulps in the far tail
        slope = -2.0 / math.sqrt(math.pi) * np.exp(-x * x) / e  # d log(erfc(x)) / dx
        x = np.maximum(x - (np.log(e) - log_y) / slope, 0.0)
    return x


@_drawing
def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).

    Example:
        >>> import downslope as ds
        >>> w = ds.nn.init.xavier_uniform_(ds.zeros(30, 20))
        >>> bool(abs(w.numpy()).max() <= (6 / 50) ** 0.5)
        True
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(_check(tensor, "xavier_uniform_"))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, _uniform(tensor, -bound, bound))


@_drawing
def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(_check(tensor, "xavier_normal_"))
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, _normal(tensor, 0.0, std))


@_drawing
def kaiming_uniform_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator: Any = None
) -> Tensor:
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).

    Example:
        >>> import downslope as ds
        >>> w = ds.nn.init.kaiming_uniform_(ds.zeros(64, 100), nonlinearity="relu")
        >>> bool(abs(w.numpy()).max() <= (6 / 100) ** 0.5)
        True
    """
    fan = _fan(_check(tensor, "kaiming_uniform_"), mode)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return _fill(tensor, _uniform(tensor, -bound, bound))


@_drawing
def kaiming_normal_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator: Any = None
) -> Tensor:
    """He normal: N(0, std^2) with std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)."""
    fan = _fan(_check(tensor, "kaiming_normal_"), mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _fill(tensor, _normal(tensor, 0.0, std))


@_drawing
def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """A (semi-)orthogonal matrix (rows or columns orthonormal) times ``gain``; dims after the
    first are flattened. Made from the QR decomposition of a Gaussian matrix, with the signs of
    R's diagonal folded into Q so that the result is uniformly distributed (Haar measure).

    Example:
        >>> import numpy as np, downslope as ds
        >>> w = ds.nn.init.orthogonal_(ds.zeros(4, 4)).numpy()
        >>> bool(np.allclose(w @ w.T, np.eye(4), atol=1e-5))
        True
    """
    _refuse_complex(_check(tensor, "orthogonal_"), "orthogonal_", "it takes the sign of R's diagonal (sign)")
    _refuse_integral(tensor, "normal_kernel_cpu")
    if tensor.ndim < 2:
        raise ArgumentError(f"init.orthogonal_: needs a tensor with at least 2 dims, got shape {tuple(tensor.shape)}")
    rows = tensor.shape[0]
    cols = tensor.numel() // rows if rows else 0
    flat = backend.rng().standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, (q * gain).reshape(tensor.shape))


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity (ones on the main diagonal; rectangular allowed).

    Example:
        >>> import downslope as ds
        >>> ds.nn.init.eye_(ds.zeros(2, 3))
        tensor([[1., 0., 0.],
                [0., 1., 0.]])
    """
    _check(tensor, "eye_")
    if tensor.ndim != 2:
        raise ArgumentError(f"init.eye_: expected a 2-D tensor, got shape {tuple(tensor.shape)}")
    rows, cols = tensor.shape
    return _fill(tensor, np.eye(rows, cols))


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a 3-, 4- or 5-D convolution weight (out, in, *kernel) so that the convolution passes its
    input through: a 1 at the kernel centre linking output channel ``k`` to input channel ``k``
    within each of ``groups`` blocks of output channels.

    Example:
        >>> import downslope as ds
        >>> w = ds.nn.init.dirac_(ds.zeros(2, 2, 3))
        >>> w.numpy()[:, :, 1]
        array([[1., 0.],
               [0., 1.]], dtype=float32)
    """
    _check(tensor, "dirac_")
    if tensor.ndim not in (3, 4, 5):
        raise ArgumentError(f"init.dirac_: expected a 3-, 4- or 5-D tensor, got shape {tuple(tensor.shape)}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or tensor.shape[0] % groups:
        raise ArgumentError(f"init.dirac_: groups must divide the {tensor.shape[0]} output channels, got {groups!r}")
    out_per_group = tensor.shape[0] // groups
    values = np.zeros(tensor.shape)
    centre = tuple(k // 2 for k in tensor.shape[2:])
    for g in range(groups):
        for k in range(min(out_per_group, tensor.shape[1])):
            values[(g * out_per_group + k, k, *centre)] = 1.0
    return _fill(tensor, values)


@_drawing
def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01, generator: Any = None) -> Tensor:
    """A 2-D tensor drawn from N(0, std) with a fraction ``sparsity`` of each column set to zero.

    Example:
        >>> import downslope as ds
        >>> w = ds.nn.init.sparse_(ds.zeros(10, 3), sparsity=0.3)
        >>> [int((w.numpy()[:, j] == 0).sum()) for j in range(3)]
        [3, 3, 3]
    """
    _check(tensor, "sparse_")
    if tensor.ndim != 2:
        raise ArgumentError(f"init.sparse_: expected a 2-D tensor, got shape {tuple(tensor.shape)}")
    if not 0.0 <= float(sparsity) <= 1.0:
        raise ArgumentError(f"init.sparse_: sparsity must lie in [0, 1], got {sparsity!r}")
    rows, cols = tensor.shape
    rng = backend.rng()
    values = _normal(tensor, 0.0, std)
    zeros = int(math.ceil(sparsity * rows))
    for j in range(cols):
        values[rng.permutation(rows)[:zeros], j] = 0.0
    return _fill(tensor, values)


def _deprecated(new: Any) -> Any:
    # PyTorch kept the pre-0.4 names (without the trailing underscore) with a FutureWarning.
    def old(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            f"nn.init.{new.__name__[:-1]} is deprecated in favor of nn.init.{new.__name__}", FutureWarning, stacklevel=2
        )
        return new(*args, **kwargs)

    old.__name__ = new.__name__[:-1]
    old.__doc__ = f"Deprecated name of :func:`{new.__name__}` (PyTorch's, kept for old code)."
    return old


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)
