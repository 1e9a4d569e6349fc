"""torch.fft: discrete Fourier transforms with gradients (``import downslope as torch; torch.fft.rfft(x)``).

Three recorded transforms carry every function here, each computed by scipy.fft on the host when SciPy
is installed (pocketfft, float32 kept in single precision as torch does; numpy.fft otherwise) and by the
array's own ``fft`` module on a device (CuPy's cuFFT on a GPU):

- complex to complex (fft, ifft, fft2, ifft2, fftn, ifftn): the gradient of ``y = T x`` is ``T^H g``,
  the transform the other way with the same scale (``norm`` swapped between "backward" and "forward");
- real to complex, one-sided (rfft, rfft2, rfftn; ihfft as its conjugate): the gradient is the real
  part of the inverse transform of the one-sided gradient padded with zeros to the full length;
- complex (one-sided, Hermitian) to real (irfft, irfft2, irfftn; hfft through the conjugate): the
  gradient is the one-sided forward transform of ``g``, its entries that stand for two mirrored
  frequencies doubled (torch's rule).

``n``/``s`` pad with zeros or trim the input along the transformed dims first, as torch does; the
gradient is trimmed or padded back. Real inputs of the complex transforms are cast to complex (their
gradient is the real part), integer inputs to the default float dtype first, as in torch.
"""

from __future__ import annotations

import builtins
import warnings
from typing import Any

import numpy as np

from . import backend
from .errors import ArgumentError, ArgumentTypeError, DTypeError, InvalidValueError, OutOfRangeError
from .ops.complex import conj, real, register
from .ops.pointwise import astype
from .tensor import Tensor, record_op

__all__ = [
    "fft",
    "ifft",
    "rfft",
    "irfft",
    "fft2",
    "ifft2",
    "rfft2",
    "irfft2",
    "fftn",
    "ifftn",
    "rfftn",
    "irfftn",
    "hfft",
    "ihfft",
    "hfft2",
    "ihfft2",
    "hfftn",
    "ihfftn",
    "fftfreq",
    "rfftfreq",
    "fftshift",
    "ifftshift",
    "stft",
    "istft",
]


def __dir__() -> list[str]:
    # torch.fft's names only: the imports and helpers here are not part of the namespace
    return sorted(__all__)


_NORMS = {None: "backward", "backward": "backward", "forward": "forward", "ortho": "ortho"}
# the scale of a transform in one direction is that of the other direction under the swapped name
_SWAP = {"backward": "forward", "forward": "backward", "ortho": "ortho"}

Dims = tuple[int, ...]


def _norm(norm: Any, fn: str) -> str:
    if not isinstance(norm, (str, type(None))) or norm not in _NORMS:
        raise InvalidValueError(  # torch: a RuntimeError
            f'{fn}: Invalid normalization mode: {norm!r}; expected None, "forward", "backward" or "ortho"'
        )
    return _NORMS[norm]


def _fft_of(arr: Any) -> Any:
    """The module that transforms ``arr``: scipy.fft for a host array when SciPy is installed, else the
    ``fft`` module of the array's namespace (numpy.fft, cupy.fft)."""
    if type(arr) is np.ndarray:
        return _host_fft()
    return backend.namespace_of(arr).fft


_HOST_FFT: list[Any] = []  # the host's transform module, chosen on the first transform


def _host_fft() -> Any:
    """scipy.fft when it can be imported, else numpy.fft. Both run pocketfft, but NumPy (2.x) loops
    over the transformed lines one at a time and takes a real float32 input through float64 (7-15x
    slower than SciPy on a (64, 16, 1024) float32 rfft); SciPy vectorises across lines and keeps
    float32 in single precision, as torch does. Imported here, not with downslope: SciPy's fft
    package takes a few hundred ms to import."""
    if not _HOST_FFT:
        try:
            import scipy.fft as module
        except ImportError:  # SciPy is optional: NumPy's transforms serve, slower
            module = np.fft
        _HOST_FFT.append(module)
    return _HOST_FFT[0]


def _type_name(x: Any) -> str:
    """The type of ``x`` as an error names it: with its library's name where it is not a builtin, so
    another library's tensor reads ``torch.Tensor``, not ``Tensor``."""
    module = type(x).__module__.split(".")[0]
    return type(x).__name__ if module == "builtins" else f"{module}.{type(x).__name__}"


def _input(x: Any, fn: str, to_complex: bool) -> Tensor:
    """``x`` as the transform reads it: integers and booleans as the default float dtype, a real tensor
    as complex for the complex transforms (recorded casts: gradients flow back)."""
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"{fn}(): argument 'input' must be Tensor, not {_type_name(x)}")
    kind = x.array.dtype.kind
    if kind in "iub":
        x = astype(x, backend.get_default_dtype())
    elif x.array.dtype == backend.float16:
        raise DTypeError(f"{fn}: Unsupported dtype Half (float16 FFTs need a GPU in torch); use float32")
    if to_complex and x.array.dtype.kind != "c":
        x = astype(x, backend.complex_of(x.array.dtype))
    return x


def _real_input(x: Any, fn: str) -> Tensor:
    x = _input(x, fn, to_complex=False)
    if x.array.dtype.kind == "c":
        raise DTypeError(f"{fn} expects a real input tensor, but got {x.array.dtype}")
    return x


def _one_dim(x: Tensor, n: Any, dim: Any, fn: str) -> tuple[Dims, tuple[int | None]]:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise ArgumentTypeError(f"{fn}(): argument 'dim' must be int, not {type(dim).__name__}")
    dims = _dims(x, (dim,), fn)
    if n is not None:
        _check_size(n, fn)
    else:
        _check_size(x.shape[dims[0]], fn)  # an empty input: named here, not by pocketfft's bare ValueError
    return dims, (None if n is None else builtins.int(n),)


def _dims(x: Tensor, dim: Any, fn: str) -> Dims:
    ndim = x.ndim
    out = []
    for d in dim:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise ArgumentTypeError(f"{fn}(): dim must be an int or a sequence of ints, got {dim!r}")
        if not -ndim <= d < ndim or ndim == 0:
            raise OutOfRangeError(
                f"{fn}: Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {d})"
            )
        out.append(builtins.int(d) % ndim)
    if len(set(out)) != len(out):
        raise InvalidValueError(f"{fn}: FFT dims must be unique, got dim={tuple(dim)}")  # torch: a RuntimeError
    return tuple(out)


def _check_size(n: Any, fn: str) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ArgumentTypeError(f"{fn}: the signal size must be an int, got {type(n).__name__}")
    if n < 1:
        raise InvalidValueError(f"{fn}: Invalid number of data points ({n}) specified")  # torch: a RuntimeError


def _many_dims(x: Tensor, s: Any, dim: Any, fn: str, default: Dims | None) -> tuple[Dims, tuple[int | None, ...]]:
    """torch's dims and sizes of fftn-like calls: ``dim`` (an int or sequence; ``default`` when None, or
    the last len(s) dims when ``s`` is given, or all dims) and ``s`` (-1: the input's size)."""
    if s is not None:
        if isinstance(s, (int, np.integer)):
            s = (s,)
        s = tuple(s)
    if dim is None:
        if s is not None:
            if len(s) > x.ndim:
                raise ArgumentError(
                    f"{fn}: Got shape with {len(s)} values but input tensor only has {x.ndim} dimensions."
                )
            dims = tuple(range(x.ndim - len(s), x.ndim))
        elif default is not None:
            dims = _dims(x, default, fn)
        else:
            dims = tuple(range(x.ndim))
    else:
        dims = _dims(x, (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim), fn)
    if s is None:
        for d in dims:
            _check_size(x.shape[d], fn)  # an empty input: named here, not by pocketfft's bare ValueError
        return dims, (None,) * len(dims)
    if len(s) != len(dims):
        raise ArgumentError(
            f"{fn}: When given, dim and shape arguments must have the same length (got s={s} and dim={dims})"
        )
    sizes: list[int | None] = []
    for d, n in zip(dims, s):
        if n == -1:
            _check_size(x.shape[d], fn)  # as above
            sizes.append(None)
        else:
            _check_size(n, fn)
            sizes.append(builtins.int(n))
    return dims, tuple(sizes)


def _full_sizes(shape: tuple[int, ...], dims: Dims, sizes: tuple[int | None, ...]) -> tuple[int, ...]:
    return tuple(shape[d] if n is None else n for d, n in zip(dims, sizes))


# ---------------------------------------------------------------------- resizing along dims


def _resize(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``x`` trimmed or padded with zeros at the end of each dim to ``shape`` (what n/s do)."""
    if tuple(x.shape) == tuple(shape):
        return x
    return record_op(_resized(x.array, shape), (x,), _resize_vjp)


def _resized(a: Any, shape: tuple[int, ...]) -> Any:
    out = backend.namespace_of(a).zeros(shape, dtype=a.dtype)
    common = tuple(slice(0, min(m, n)) for m, n in zip(a.shape, shape))
    out[common] = a[common]
    return out


def _resize_vjp(g, y, args, saved, needs, xp):
    if isinstance(g, Tensor):
        return (_resize(g, tuple(args[0].shape)),)
    return (_resized(g, tuple(args[0].shape)),)


_resize_vjp.reads_inputs = False  # type: ignore[attr-defined]
_resize_vjp.reads_output = False  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- the three transforms


def _c2c(x: Tensor, dims: Dims, sizes: tuple[int, ...], norm: str, forward: bool) -> Tensor:
    """The complex transform (forward: e^-i) of complex ``x`` over ``dims``, resized to ``sizes``."""
    x = _resize(x, _shape_with(x.shape, dims, sizes))
    module = _fft_of(x.array)
    out = (module.fftn if forward else module.ifftn)(x.array, axes=dims, norm=norm)
    return record_op(out.astype(x.array.dtype, copy=False), (x,), _c2c_vjp, (dims, sizes, norm, forward))


def _c2c_vjp(g, y, args, saved, needs, xp):
    dims, sizes, norm, forward = saved
    if isinstance(g, Tensor):
        return (_c2c(g, dims, sizes, _SWAP[norm], not forward),)
    module = _fft_of(g)
    back = (module.ifftn if forward else module.fftn)(g, axes=dims, norm=_SWAP[norm])
    return (back.astype(g.dtype, copy=False),)


_c2c_vjp.reads_inputs = False  # type: ignore[attr-defined]
_c2c_vjp.reads_output = False  # type: ignore[attr-defined]


def _shape_with(shape: tuple[int, ...], dims: Dims, sizes: tuple[int, ...]) -> tuple[int, ...]:
    out = list(shape)
    for d, n in zip(dims, sizes):
        out[d] = n
    return tuple(out)


def _r2c(x: Tensor, dims: Dims, sizes: tuple[int, ...], norm: str) -> Tensor:
    """The one-sided transform of real ``x`` (the last of ``dims`` halved to n // 2 + 1)."""
    x = _resize(x, _shape_with(x.shape, dims, sizes))
    out = _fft_of(x.array).rfftn(x.array, axes=dims, norm=norm)
    dtype = backend.complex_of(x.array.dtype)
    return record_op(out.astype(dtype, copy=False), (x,), _r2c_vjp, (dims, sizes, norm))


def _r2c_vjp(g, y, args, saved, needs, xp):
    # y = half(F x): the gradient is Re(F^H g') with g' the one-sided g padded with zeros to full length
    dims, sizes, norm = saved
    full = _shape_with(tuple(g.shape), dims[-1:], sizes[-1:])
    if isinstance(g, Tensor):
        return (real(_c2c(_resize(g, full), dims, sizes, _SWAP[norm], False)),)
    back = _fft_of(g).ifftn(_resized(g, full), axes=dims, norm=_SWAP[norm])
    return (np.real(back).astype(args[0].dtype, copy=False),)


_r2c_vjp.reads_inputs = False  # type: ignore[attr-defined]
_r2c_vjp.reads_output = False  # type: ignore[attr-defined]


def _c2r(x: Tensor, dims: Dims, sizes: tuple[int, ...], norm: str) -> Tensor:
    """The inverse of the one-sided transform: complex ``x`` (its last dim the n // 2 + 1 frequencies of
    a Hermitian signal of length sizes[-1]) to a real signal."""
    half = sizes[-1] // 2 + 1
    x = _resize(x, _shape_with(x.shape, dims, (*sizes[:-1], half)))
    out = _fft_of(x.array).irfftn(x.array, s=sizes, axes=dims, norm=norm)
    dtype = backend.real_of(x.array.dtype)
    return record_op(out.astype(dtype, copy=False), (x,), _c2r_vjp, (dims, sizes, norm))


def _c2r_vjp(g, y, args, saved, needs, xp):
    # torch's fft_c2r_backward: the one-sided forward transform of g, the frequencies that stand for two
    # (a mirrored pair in the Hermitian signal) doubled
    dims, sizes, norm = saved
    n = sizes[-1]
    half = n // 2 + 1
    twice = n - half  # frequencies 1 .. twice have a mirrored partner
    weight = np.ones(half, dtype=backend.real_of(args[0].dtype))  # host: a constant of the sizes
    weight[1 : 1 + twice] = 2
    shape = [1] * len(g.shape)
    shape[dims[-1]] = half
    if isinstance(g, Tensor):
        w = xp.constant(_on_device_of(weight.reshape(shape), xp.data(g)))
        return (_r2c(g, dims, sizes, _SWAP[norm]) * w,)
    one_sided = _fft_of(g).rfftn(g, axes=dims, norm=_SWAP[norm])
    w = _on_device_of(weight.reshape(shape), g)
    return ((one_sided * w).astype(args[0].dtype, copy=False),)


_c2r_vjp.reads_inputs = False  # type: ignore[attr-defined]
_c2r_vjp.reads_output = False  # type: ignore[attr-defined]


def _on_device_of(arr: np.ndarray, like: Any) -> Any:
    from .devices import device_of, to_device

    return arr if isinstance(like, np.ndarray) else to_device(arr, device_of(like))


for _rule in (_resize_vjp, _c2c_vjp, _r2c_vjp):
    register(_rule)


# ---------------------------------------------------------------------- torch.fft's functions


def _complex_transform(x: Any, s: Any, dim: Any, norm: Any, fn: str, forward: bool, default: Dims | None) -> Tensor:
    scale = _norm(norm, fn)
    x = _input(x, fn, to_complex=True)
    dims, sizes = _many_dims(x, s, dim, fn, default)
    return _c2c(x, dims, _full_sizes(x.shape, dims, sizes), scale, forward)


def fft(input: Any, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:  # noqa: A002
    """The one-dimensional discrete Fourier transform (torch.fft.fft); complex output."""
    x = _input(input, "fft", to_complex=True)
    dims, sizes = _one_dim(x, n, dim, "fft")
    return _c2c(x, dims, _full_sizes(x.shape, dims, sizes), _norm(norm, "fft"), True)


def ifft(input: Any, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:  # noqa: A002
    """The inverse of :func:`fft` (torch.fft.ifft)."""
    x = _input(input, "ifft", to_complex=True)
    dims, sizes = _one_dim(x, n, dim, "ifft")
    return _c2c(x, dims, _full_sizes(x.shape, dims, sizes), _norm(norm, "ifft"), False)


def fft2(input: Any, s: Any = None, dim: Any = (-2, -1), norm: str | None = None) -> Tensor:  # noqa: A002
    """The two-dimensional transform over ``dim`` (torch.fft.fft2)."""
    return _complex_transform(input, s, dim, norm, "fft2", True, None)


def ifft2(input: Any, s: Any = None, dim: Any = (-2, -1), norm: str | None = None) -> Tensor:  # noqa: A002
    """The inverse of :func:`fft2` (torch.fft.ifft2)."""
    return _complex_transform(input, s, dim, norm, "ifft2", False, None)


def fftn(input: Any, s: Any = None, dim: Any = None, norm: str | None = None) -> Tensor:  # noqa: A002
    """The N-dimensional transform (torch.fft.fftn): over ``dim``, or the last len(s) dims, or all."""
    return _complex_transform(input, s, dim, norm, "fftn", True, None)


def ifftn(input: Any, s: Any = None, dim: Any = None, norm: str | None = None) -> Tensor:  # noqa: A002
    """The inverse of :func:`fftn` (torch.fft.ifftn)."""
    return _complex_transform(input, s, dim, norm, "ifftn", False, None)


def rfft(input: Any, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:  # noqa: A002
    """The transform of a real signal, one-sided: n // 2 + 1 frequencies (torch.fft.rfft)."""
    x = _real_input(input, "rfft")
    dims, sizes = _one_dim(x, n, dim, "rfft")
    return _r2c(x, dims, _full_sizes(x.shape, dims, sizes), _norm(norm, "rfft"))


def irfft(input: Any, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:  # noqa: A002
    """The inverse of :func:`rfft` (torch.fft.irfft): a real signal of length ``n`` (default
    2 * (m - 1) for m frequencies along ``dim``)."""
    x = _input(input, "irfft", to_complex=True)
    dims, sizes = _one_dim(x, n, dim, "irfft")
    return _c2r(x, dims, _c2r_sizes(x, dims, sizes, "irfft"), _norm(norm, "irfft"))


def _c2r_sizes(x: Tensor, dims: Dims, sizes: tuple[int | None, ...], fn: str) -> tuple[int, ...]:
    full = list(_full_sizes(x.shape, dims, sizes))
    if sizes[-1] is None:
        full[-1] = 2 * (x.shape[dims[-1]] - 1)
        if full[-1] < 1:
            raise InvalidValueError(f"{fn}: Invalid number of data points ({full[-1]}) specified")
    return tuple(full)


def rfft2(input: Any, s: Any = None, dim: Any = (-2, -1), norm: str | None = None) -> Tensor:  # noqa: A002
    """The two-dimensional one-sided transform of a real signal (torch.fft.rfft2)."""
    return _real_transform(input, s, dim, norm, "rfft2")


def rfftn(input: Any, s: Any = None, dim: Any = None, norm: str | None = None) -> Tensor:  # noqa: A002
    """The N-dimensional one-sided transform of a real signal, halved along the last of ``dim``
    (torch.fft.rfftn)."""
    return _real_transform(input, s, dim, norm, "rfftn")


def _real_transform(x: Any, s: Any, dim: Any, norm: Any, fn: str) -> Tensor:
    scale = _norm(norm, fn)
    x = _real_input(x, fn)
    dims, sizes = _many_dims(x, s, dim, fn, None)
    return _r2c(x, dims, _full_sizes(x.shape, dims, sizes), scale)


def irfft2(input: Any, s: Any = None, dim: Any = (-2, -1), norm: str | None = None) -> Tensor:  # noqa: A002
    """The inverse of :func:`rfft2` (torch.fft.irfft2)."""
    return _inverse_real_transform(input, s, dim, norm, "irfft2")


def irfftn(input: Any, s: Any = None, dim: Any = None, norm: str | None = None) -> Tensor:  # noqa: A002
    """The inverse of :func:`rfftn` (torch.fft.irfftn): the last of ``dim`` has 2 * (m - 1) points
    unless ``s`` says otherwise."""
    return _inverse_real_transform(input, s, dim, norm, "irfftn")


def _inverse_real_transform(x: Any, s: Any, dim: Any, norm: Any, fn: str) -> Tensor:
    scale = _norm(norm, fn)
    x = _input(x, fn, to_complex=True)
    dims, sizes = _many_dims(x, s, dim, fn, None)
    return _c2r(x, dims, _c2r_sizes(x, dims, sizes, fn), scale)


def hfft(input: Any, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:  # noqa: A002
    """The transform of a one-sided Hermitian signal, a real spectrum of length ``n`` (default
    2 * (m - 1)); torch.fft.hfft, irfft of the conjugate under the other direction's scale."""
    scale = _norm(norm, "hfft")
    x = _input(input, "hfft", to_complex=True)
    dims, sizes = _one_dim(x, n, dim, "hfft")
    return _c2r(conj(x), dims, _c2r_sizes(x, dims, sizes, "hfft"), _SWAP[scale])


def ihfft(input: Any, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:  # noqa: A002
    """The inverse of :func:`hfft` (torch.fft.ihfft): of a real signal, the one-sided Hermitian half."""
    scale = _norm(norm, "ihfft")
    x = _real_input(input, "ihfft")
    dims, sizes = _one_dim(x, n, dim, "ihfft")
    return conj(_r2c(x, dims, _full_sizes(x.shape, dims, sizes), _SWAP[scale]))


def hfft2(input: Any, s: Any = None, dim: Any = (-2, -1), norm: str | None = None) -> Tensor:  # noqa: A002
    """The two-dimensional transform of a signal Hermitian along the last of ``dim`` (torch.fft.hfft2)."""
    return _hermitian_transform(input, s, dim, norm, "hfft2")


def hfftn(input: Any, s: Any = None, dim: Any = None, norm: str | None = None) -> Tensor:  # noqa: A002
    """The N-dimensional :func:`hfft` (torch.fft.hfftn): a real spectrum whose last of ``dim`` has
    2 * (m - 1) points unless ``s`` says otherwise."""
    return _hermitian_transform(input, s, dim, norm, "hfftn")


def _hermitian_transform(x: Any, s: Any, dim: Any, norm: Any, fn: str) -> Tensor:
    # the forward transform of a Hermitian signal is real: irfftn of the conjugate, the scale swapped
    scale = _norm(norm, fn)
    x = _input(x, fn, to_complex=True)
    dims, sizes = _many_dims(x, s, dim, fn, None)
    return _c2r(conj(x), dims, _c2r_sizes(x, dims, sizes, fn), _SWAP[scale])


def ihfft2(input: Any, s: Any = None, dim: Any = (-2, -1), norm: str | None = None) -> Tensor:  # noqa: A002
    """The inverse of :func:`hfft2` (torch.fft.ihfft2): of a real signal, the one-sided half."""
    return _inverse_hermitian_transform(input, s, dim, norm, "ihfft2")


def ihfftn(input: Any, s: Any = None, dim: Any = None, norm: str | None = None) -> Tensor:  # noqa: A002
    """The inverse of :func:`hfftn` (torch.fft.ihfftn): of a real signal, halved along the last of ``dim``."""
    return _inverse_hermitian_transform(input, s, dim, norm, "ihfftn")


def _inverse_hermitian_transform(x: Any, s: Any, dim: Any, norm: Any, fn: str) -> Tensor:
    # the inverse transform of a real signal: the conjugate of its one-sided forward one, the scale swapped
    scale = _norm(norm, fn)
    x = _real_input(x, fn)
    dims, sizes = _many_dims(x, s, dim, fn, None)
    return conj(_r2c(x, dims, _full_sizes(x.shape, dims, sizes), _SWAP[scale]))


def _frequency_count(n: Any, fn: str) -> int:
    """The ``n`` of fftfreq and rfftfreq: an int (a 0-d integer tensor too, as torch takes one), any sign:
    what a negative one gives is decided by the count of frequencies it makes."""
    if isinstance(n, Tensor) and n.ndim == 0 and np.dtype(n.dtype).kind in "iu":
        return builtins.int(n.item())
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ArgumentTypeError(f"{fn}(): argument 'n' (position 1) must be int, not {type(n).__name__}")
    return builtins.int(n)


def _spacing(d: Any, fn: str) -> float:
    """The sample spacing ``d``: a number or a 0-d tensor (torch converts one; a 1-d one it refuses)."""
    if isinstance(d, Tensor):
        if d.ndim != 0:
            raise ArgumentTypeError(f"{fn}(): argument 'd' must be float, not a Tensor of shape {tuple(d.shape)}")
        return builtins.float(d.item())
    if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(f"{fn}(): argument 'd' must be float, not {type(d).__name__}")
    return builtins.float(d)


def _frequencies(
    fn: str, n: int, count: int, negative_from: int, d: float, dtype: Any, device: Any, requires_grad: bool
) -> Tensor:
    """torch's computation: ``count`` whole numbers (those from ``negative_from`` on shifted down by ``n``)
    in ``dtype``, times ``1 / (n * d)`` (a double, so ``d = 0`` or ``n = 0`` give inf: 0 * inf is NaN), in
    ``dtype``'s precision as torch's in-place product rounds it."""
    from .tensor import tensor

    if count < 0:  # torch's arange of a negative length
        raise InvalidValueError(f"{fn}: Trying to create tensor with negative dimension {count}: [{count}]")
    target = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
    if target.kind not in "fc":
        raise DTypeError(f"{fn} requires a floating point or complex dtype, got {target}")
    k = np.arange(count, dtype=np.float64)
    k[negative_from:] -= n
    product = n * d
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.float64(1.0) / np.float64(product)  # inf for a zero product, as C++'s 1.0 / 0.0
        part = np.float32 if target in (np.float32, np.complex64) else target
        values = k.astype(target) * np.asarray(scale).astype(part)
    return tensor(values.astype(target), dtype=target, device=device, requires_grad=requires_grad)


def fftfreq(
    n: int,
    d: float = 1.0,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    layout: Any = None,
) -> Tensor:
    """The sample frequencies of an :func:`fft` of ``n`` points spaced ``d`` apart (torch.fft.fftfreq):
    ``[0, 1, ..., (n - 1) // 2, -(n // 2), ..., -1] / (d * n)``. As torch's: ``n = 0`` gives an empty
    tensor, a negative ``n`` a RuntimeError, ``d = 0`` NaN and infinities; ``d`` may be a 0-d tensor;
    ``dtype`` must be a floating (or complex) one."""
    count = _frequency_count(n, "fftfreq")
    return _frequencies("fftfreq", count, count, (count + 1) // 2, _spacing(d, "fftfreq"), dtype, device, requires_grad)


def rfftfreq(
    n: int,
    d: float = 1.0,
    *,
    dtype: Any = None,
    device: Any = None,
    requires_grad: bool = False,
    layout: Any = None,
) -> Tensor:
    """The sample frequencies of an :func:`rfft` of ``n`` points: ``[0, 1, ..., n // 2] / (d * n)``
    (torch.fft.rfftfreq). As torch's, the count is ``n / 2 + 1`` with C's truncating division, so
    ``n = 0`` gives ``[nan]``, ``n = -1`` ``[-0.]``, ``n = -2`` or ``-3`` an empty tensor and
    ``n <= -4`` a RuntimeError; ``d = 0`` gives NaN and infinities."""
    count = _frequency_count(n, "rfftfreq")
    half = builtins.int(count / 2) if count < 0 else count // 2  # C's division truncates toward zero
    return _frequencies("rfftfreq", count, half + 1, half + 1, _spacing(d, "rfftfreq"), dtype, device, requires_grad)


def _shift(x: Any, dim: Any, fn: str, inverse: bool) -> Tensor:
    from .ops import roll

    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"{fn}(): argument 'input' must be Tensor, not {_type_name(x)}")
    if x.ndim == 0:
        return x
    dims = tuple(range(x.ndim)) if dim is None else _dims(x, (dim,) if isinstance(dim, (int, np.integer)) else dim, fn)
    shifts = tuple(-(x.shape[d] // 2) if inverse else x.shape[d] // 2 for d in dims)
    return roll(x, shifts, dims)


def fftshift(input: Any, dim: Any = None) -> Tensor:  # noqa: A002
    """The zero frequency moved to the middle of ``dim`` (all dims by default): torch.fft.fftshift."""
    return _shift(input, dim, "fftshift", inverse=False)


def ifftshift(input: Any, dim: Any = None) -> Tensor:  # noqa: A002
    """The inverse of :func:`fftshift` (torch.fft.ifftshift)."""
    return _shift(input, dim, "ifftshift", inverse=True)


# ---------------------------------------------------------------------- short-time transforms


def _window_of(window: Any, n_fft: int, win_length: int, like: Tensor, fn: str, advice: str) -> Tensor:
    """The window as torch uses it: ``win_length`` values (ones when None, with torch's warning) padded
    with zeros on both sides to ``n_fft``."""
    from .ops.rearrange import pad
    from .tensor import ones

    if window is None:
        warnings.warn(
            "A window was not provided. A rectangular window will be applied, " + advice,
            UserWarning,
            stacklevel=3,
        )
        dtype = backend.real_of(like.array.dtype)
        window = ones(win_length, dtype=dtype, device=like.device)
    elif not isinstance(window, Tensor):
        raise ArgumentTypeError(f"{fn}: expected window to be a Tensor or None, got {type(window).__name__}")
    if window.ndim != 1 or window.shape[0] != win_length:
        raise ArgumentError(
            f"{fn}: expected a 1D window tensor of size equal to win_length={win_length}, but got window with size "
            f"{list(window.shape)}"
        )
    left = (n_fft - win_length) // 2
    return pad(window, (left, n_fft - win_length - left)) if win_length < n_fft else window


def _frame_sizes(n_fft: Any, hop_length: Any, win_length: Any, fn: str) -> tuple[int, int, int]:
    _check_size(n_fft, fn)
    hop = builtins.int(n_fft) // 4 if hop_length is None else hop_length
    win = builtins.int(n_fft) if win_length is None else win_length
    if isinstance(hop, bool) or not isinstance(hop, (int, np.integer)) or hop <= 0:
        raise ArgumentError(f"{fn}: expected hop_length > 0, but got hop_length={hop}")
    if isinstance(win, bool) or not isinstance(win, (int, np.integer)) or not 0 < win <= n_fft:
        raise ArgumentError(f"{fn}: expected 0 < win_length <= n_fft, but got win_length={win}")
    return builtins.int(n_fft), builtins.int(hop), builtins.int(win)


def stft(
    input: Any,  # noqa: A002  (torch's name)
    n_fft: int,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Any = None,
    center: bool = True,
    pad_mode: str = "reflect",
    normalized: bool = False,
    onesided: bool | None = None,
    return_complex: bool | None = None,
) -> Tensor:
    """The short-time Fourier transform (torch.stft): of a signal (L) or a batch (B, L), the transforms
    of its frames of ``n_fft`` points, ``hop_length`` apart (default n_fft // 4), each multiplied by
    ``window`` (``win_length`` values centered in n_fft; ones by default, with torch's warning), as a
    (B, n_fft // 2 + 1 frequencies, frames) complex tensor. ``center`` pads the signal by n_fft // 2
    on both sides first (``pad_mode``, reflect by default); ``normalized`` scales by n_fft ** -0.5;
    ``onesided`` (default for a real signal and window) keeps the non-negative frequencies. A real
    signal needs ``return_complex``, as in torch (False: the real view, with torch's deprecation
    warning). Differentiable in the signal and the window.

    Example:
        >>> import downslope as ds
        >>> ds.stft(ds.ones(16), 8, hop_length=4, window=ds.hann_window(8), return_complex=True).shape
        downslope.Size([5, 5])
    """
    from .ops.complex import view_as_real
    from .ops.rearrange import pad, unfold
    from .ops.shape import reshape, transpose

    fn = "stft"
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"stft(): argument 'input' must be Tensor, not {_type_name(input)}")
    n_fft, hop, win = _frame_sizes(n_fft, hop_length, win_length, fn)
    x = input
    if x.ndim not in (1, 2):
        raise ArgumentError(f"stft: expected a 1D or 2D tensor, got a tensor of shape {tuple(x.shape)}")
    complex_input = x.array.dtype.kind == "c" or (isinstance(window, Tensor) and window.array.dtype.kind == "c")
    if return_complex is None:
        if not complex_input:
            raise ArgumentError(
                "stft requires the return_complex parameter be given for real inputs, and will further require "
                "that return_complex=True in a future PyTorch release."
            )
        return_complex = True
    if not return_complex:
        warnings.warn(
            "stft with return_complex=False is deprecated. In a future pytorch release, stft will return complex "
            "tensors for all inputs, and return_complex=False will raise an error. Note: you can still call "
            "torch.view_as_real on the complex output to recover the old return format.",
            UserWarning,
            stacklevel=2,
        )
    x = _input(x, fn, to_complex=False)
    if onesided is None:
        onesided = not complex_input
    elif onesided and complex_input:
        raise ArgumentError("stft: Cannot have onesided output if window or input is complex")
    w = _window_of(window, n_fft, win, x, fn, "which is known to cause spectral leakage.")
    batched = x.ndim == 2
    if not batched:
        x = reshape(x, (1, x.shape[0]))
    if center:
        half = n_fft // 2
        if pad_mode not in ("constant", "reflect", "replicate", "circular"):
            raise ArgumentError(f"stft: pad_mode must be constant, reflect, replicate or circular, got {pad_mode!r}")
        if pad_mode == "reflect" and half >= x.shape[-1]:
            raise ArgumentError(
                f"stft: Padding size should be less than the corresponding input dimension, but got: padding "
                f"({half}, {half}) at dimension 1 of input {list(x.shape)}"
            )
        x = pad(x, (half, half), mode=pad_mode)
    if x.shape[-1] < n_fft:
        raise ArgumentError(
            f"stft: expected 0 < n_fft <= {x.shape[-1]} (the padded signal's length), but got n_fft={n_fft}"
        )
    frames = unfold(x, -1, n_fft, hop) * w  # (B, frames, n_fft)
    norm = "ortho" if normalized else "backward"
    if onesided:
        spectrum = _r2c(_real_input(frames, fn), (2,), (n_fft,), norm)
    else:
        spectrum = _c2c(_input(frames, fn, to_complex=True), (2,), (n_fft,), norm, True)
    out = transpose(spectrum, 1, 2)  # (B, frequencies, frames)
    if not batched:
        out = reshape(out, out.shape[1:])
    return out if return_complex else view_as_real(out)


def istft(
    input: Any,  # noqa: A002  (torch's name)
    n_fft: int,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Any = None,
    center: bool = True,
    normalized: bool = False,
    onesided: bool | None = None,
    length: int | None = None,
    return_complex: bool = False,
) -> Tensor:
    """The inverse of :func:`stft` (torch.istft): the frames' inverse transforms, windowed, overlapped and
    added, divided by the overlapped squared window (which must not vanish: torch's NOLA check), the
    n_fft // 2 centering pad cut off; ``length`` trims or zero-pads the result. Differentiable.

    Example:
        >>> import downslope as ds
        >>> x = ds.randn(32); w = ds.hann_window(8)
        >>> y = ds.istft(ds.stft(x, 8, window=w, return_complex=True), 8, window=w, length=32)
        >>> bool((y - x).abs().max() < 1e-5)
        True
    """
    from .ops.shape import broadcast_to, reshape, transpose

    fn = "istft"
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"istft(): argument 'input' must be Tensor, not {_type_name(input)}")
    if input.array.dtype.kind != "c":
        raise DTypeError(
            "istft requires a complex-valued input tensor matching the output from stft with return_complex=True."
        )
    n_fft, hop, win = _frame_sizes(n_fft, hop_length, win_length, fn)
    x = input
    if x.ndim not in (2, 3):
        raise ArgumentError(f"istft: expected a tensor with 2 or 3 dimensions of complex values, got {x.ndim}")
    batched = x.ndim == 3
    if not batched:
        x = reshape(x, (1, *x.shape))
    bins, count = x.shape[1], x.shape[2]
    if onesided is None:
        onesided = bins != n_fft
    if onesided and bins != n_fft // 2 + 1:
        raise ArgumentError(
            f"istft: expected the frequency dimension (3rd to the last) of the input tensor to match n_fft / 2 + 1 "
            f"when onesided=True, but got {bins}"
        )
    if not onesided and bins != n_fft:
        raise ArgumentError(
            f"istft: expected the frequency dimension (3rd to the last) of the input tensor to match n_fft when "
            f"onesided=False, but got {bins}"
        )
    if onesided and return_complex:
        raise ArgumentError("istft: cannot have onesided output if window or input is complex")
    w = _window_of(
        window,
        n_fft,
        win,
        x,
        fn,
        "Please provide the same window used by stft to make the inversion lossless.",
    )
    norm = "ortho" if normalized else "backward"
    frames = transpose(x, 1, 2)  # (B, frames, frequencies)
    if return_complex:
        signal = _c2c(frames, (2,), (n_fft,), norm, False)
    else:
        if not onesided:
            frames = frames[:, :, : n_fft // 2 + 1]
        signal = _c2r(frames, (2,), (n_fft,), norm)
    full = n_fft + hop * (count - 1)
    summed = _overlap_add(signal * w, hop, full)
    # the squared window overlapped and added: what the frames' sum is divided by (a function of the
    # window, differentiated through as in torch)
    envelope = _overlap_add(broadcast_to(reshape(w * w, (1, 1, n_fft)), (1, count, n_fft)), hop, full)
    start = n_fft // 2 if center else 0
    end = full - n_fft // 2 if center else full
    if length is not None:
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
            raise ArgumentError(f"istft: length must be a non-negative int, got {length!r}")
        end = start + builtins.int(length)
    kept = envelope[:, start : min(end, full)]
    smallest = _smallest_magnitude(kept)
    if smallest is not None and smallest < 1e-11:
        raise InvalidValueError(  # torch: a RuntimeError
            f"istft: window overlap add min: {smallest} (the window fails the NOLA condition)"
        )
    y = summed[:, start : min(end, full)] / kept
    if end > full:
        warnings.warn(
            "The length of signal is shorter than the length parameter. Result is being padded with zeros in the "
            "tail. Please check your center and hop_length settings.",
            UserWarning,
            stacklevel=2,
        )
        y = _resize(y, (y.shape[0], end - start))
    return y if batched else reshape(y, y.shape[1:])


def _smallest_magnitude(t: Tensor) -> float | None:
    from .devices import to_host

    values = to_host(t.array)  # host: torch's NOLA check reads the envelope's values too
    return float(np.abs(values).min()) if values.size else None


def _overlap_add_array(frames: Any, hop: int, length: int) -> Any:
    """Frames (B, T, n) added into signals (B, length), frame t at t * hop: in ceil(n / hop) strided
    passes, each adding a block of the frames' columns laid end to end."""
    batch, count, n = frames.shape
    out = backend.namespace_of(frames).zeros((batch, length), dtype=frames.dtype)
    for start in range(0, n, hop):
        width = min(hop, n - start)
        block = frames[:, :, start : start + width]
        if width < hop:
            block = backend.namespace_of(frames).concatenate(
                [block, backend.namespace_of(frames).zeros((batch, count, hop - width), dtype=frames.dtype)], axis=2
            )
        span = min(count * hop, length - start)
        out[:, start : start + span] += block.reshape(batch, count * hop)[:, :span]
    return out


def _overlap_add(frames: Tensor, hop: int, length: int) -> Tensor:
    return record_op(_overlap_add_array(frames.array, hop, length), (frames,), _overlap_add_vjp, hop)


def _overlap_add_vjp(g, y, args, saved, needs, xp):
    # each frame's gradient is the signal's gradient over the frame's span
    hop = saved
    n = args[0].shape[2]
    if isinstance(g, Tensor):
        from .ops.rearrange import unfold

        return (unfold(g, 1, n, hop),)
    return (_frames_array(g, hop, n, args[0].shape[1]),)


def _frames_array(signal: Any, hop: int, n: int, count: int) -> Any:
    """The frames (B, count, n) of signals (B, length), frame t from t * hop: the reverse of
    :func:`_overlap_add_array`, in the same strided passes."""
    xp = backend.namespace_of(signal)
    batch, length = signal.shape
    need = (n - 1) // hop * hop + count * hop
    if need > length:
        signal = xp.concatenate([signal, xp.zeros((batch, need - length), dtype=signal.dtype)], axis=1)
    out = xp.empty((batch, count, n), dtype=signal.dtype)
    for start in range(0, n, hop):
        width = min(hop, n - start)
        out[:, :, start : start + width] = signal[:, start : start + count * hop].reshape(batch, count, hop)[
            :, :, :width
        ]
    return out


_overlap_add_vjp.reads_inputs = False  # type: ignore[attr-defined]
_overlap_add_vjp.reads_output = False  # type: ignore[attr-defined]
register(_overlap_add_vjp)
