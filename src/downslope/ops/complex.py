"""Complex tensors (complex64, complex128): the complex-only ops (real, imag, conj, angle, abs, complex,
polar, view_as_real, view_as_complex) and the table of the other ops' rules that hold for complex values.

Gradients follow torch's convention ("Autograd for Complex Numbers"): the gradient of a real loss L with
respect to z = x + iy is dL/dx + i dL/dy (the conjugate Wirtinger derivative, doubled), and a real input
that took part in a complex computation gets the real part of its gradient.

A rule written for real values as the product of the output's gradient with the transposed Jacobian
(``g * b`` for ``a * b``, ``g @ b.T`` for ``a @ b``) becomes the complex one by conjugation: for an op
holomorphic in its inputs the complex rule is ``conj(rule(conj(g)))``, which is what :func:`_holomorphic`
wraps. Only the rules listed in :data:`HOLOMORPHIC_RULES` are wrapped; record_op refuses any other op
that makes a complex output (``relu``, ``maximum``...), naming it, instead of computing a wrong gradient.
"""

from __future__ import annotations

import builtins
import functools
import warnings
from typing import Any

import numpy as np

from .. import backend
from ..autograd import rerun
from ..backend import as_array
from ..errors import ArgumentTypeError, DTypeError, ShapeError
from ..graph import _rule_stem
from ..tensor import COMPLEX_RULES, PART_VIEWS, Tensor, _alias, record_op, wrap_array
from .operands import _pair as _real_pair

_SUPPORTED = (
    "+, -, *, /, pow, neg, conj, real, imag, abs, angle, exp, exp2, expm1, log, log2, log10, log1p, sqrt, rsqrt, "
    "square, sin, cos, tan, sinh, cosh, tanh, asin, acos, atan, asinh, acosh, atanh, sigmoid, sinc, sum, mean, "
    "prod, cumsum, cumprod, logcumsumexp, logaddexp, var/std, index_add/scatter_add, vector/matrix norms, "
    "reshape/view, permute, transpose, squeeze/unsqueeze, flatten, indexing, "
    "cat, stack, pad, where, matmul, einsum, linear, conv1d/conv2d, linalg's eig/eigvals, eigh/eigvalsh, inv, solve, "
    "det, slogdet, matrix_exp, cholesky, qr, svd/svdvals, pinv, lstsq, view_as_real, view_as_complex, complex, "
    "polar and downslope.fft"
)


def refuse_complex(vjp: Any) -> Any:
    """Raise for an op that made a complex output but whose gradient rule is not known to hold for
    complex values (record_op's guard calls it)."""
    raise DTypeError(
        f"{_rule_stem(vjp)}: not implemented for complex tensors (complex64/complex128); the complex ops "
        f"downslope has are {_SUPPORTED}"
    )


def _conj(x: Any) -> Any:
    """The conjugate of an array or (under create_graph) a Tensor; real values as they are."""
    if isinstance(x, Tensor):
        return conj(x)
    return x.conj() if x.dtype.kind == "c" else x


def _real_part(x: Any) -> Any:
    if isinstance(x, Tensor):
        return real(x)
    return np.real(x) if x.dtype.kind == "c" else x  # np.real: device arrays dispatch it


def _holomorphic(rule: Any) -> Any:
    """``rule`` for complex values: ``conj(rule(conj(g)))``, the real part for a real input."""

    @functools.wraps(rule)
    def complex_rule(g, y, args, saved, needs, xp):
        grads = rule(_conj(g), y, args, saved, needs, xp)
        out: list[Any] = []
        for grad, arg in zip(grads, args):
            if grad is None:
                out.append(None)
            elif _is_complex(arg):
                out.append(_conj(grad))
            else:  # a real input in a complex computation: the real part (dL/dx)
                out.append(_real_part(grad))
        return tuple(out)

    # backward's in-place checks read these; the wrapper reads what the rule reads
    from ..autograd import _reads_output

    complex_rule.reads_output = _reads_output(rule)  # type: ignore[attr-defined]
    if hasattr(rule, "reads_inputs"):
        complex_rule.reads_inputs = rule.reads_inputs  # type: ignore[attr-defined]
    return complex_rule


def _is_complex(x: Any) -> bool:
    return (x.array if isinstance(x, Tensor) else x).dtype.kind == "c"


def register(rule: Any, complex_rule: Any = None) -> None:
    """Let record_op record ``rule``'s op with a complex output, with ``complex_rule`` (the rule
    itself when it already follows torch's convention, e.g. the complex-only ops below)."""
    COMPLEX_RULES[rule] = rule if complex_rule is None else complex_rule


def register_holomorphic(rule: Any) -> None:
    """Let record_op record ``rule``'s op with a complex output, its complex rule ``conj(rule(conj(g)))``:
    for a rule written as the output's gradient times the transposed Jacobian of an op holomorphic (or
    linear) in its inputs, with derivatives evaluated on the inputs or outputs as they are (packages above
    the core register their own ops' rules this way)."""
    register(rule, _holomorphic(rule))


# ---------------------------------------------------------------------- the complex-only ops


def real(x: Tensor) -> Tensor:
    """torch.real: the real part of a complex tensor (a real tensor itself), a view: a write into it
    writes into ``x`` (recorded: x's gradient then comes through the written values); ``real(x).clone()``
    gives a tensor of its own."""
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"real: expected a Tensor, got {type(x).__name__}")
    if x.array.dtype.kind != "c":
        return x
    return _alias(record_op(np.real(x.array), (x,), _real_vjp), x)


def _real_vjp(g, y, args, saved, needs, xp):
    return (_as_complex(g, args[0]),)


_real_vjp.reads_inputs = False  # type: ignore[attr-defined]
_real_vjp.reads_output = False  # type: ignore[attr-defined]


def _as_complex(g: Any, like: Any) -> Any:
    """A real gradient as a complex one of ``like``'s dtype (imaginary part zero)."""
    if isinstance(g, Tensor):
        return complex(g, g * 0)
    return g.astype(like.dtype)


def imag(x: Tensor) -> Tensor:
    """torch.imag: the imaginary part of a complex tensor (a view, as :func:`real`); a real tensor
    is refused, as torch refuses it."""
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"imag: expected a Tensor, got {type(x).__name__}")
    if x.array.dtype.kind != "c":
        raise DTypeError(f"imag is not implemented for tensors with non-complex dtypes (got {x.array.dtype})")
    return _alias(record_op(np.imag(x.array), (x,), _imag_vjp), x)


def _imag_vjp(g, y, args, saved, needs, xp):
    # L depends on y = Im z: dL/dx = 0, dL/dy = g, so the gradient is i g
    if isinstance(g, Tensor):
        return (complex(g * 0, g),)
    return ((g * 1j).astype(args[0].dtype, copy=False),)


_imag_vjp.reads_inputs = False  # type: ignore[attr-defined]
_imag_vjp.reads_output = False  # type: ignore[attr-defined]


def conj(x: Tensor) -> Tensor:
    """torch.conj: the complex conjugate (a real tensor itself, as in torch)."""
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"conj: expected a Tensor, got {type(x).__name__}")
    if x.array.dtype.kind != "c":
        return x
    return record_op(np.conj(x.array), (x,), _conj_vjp)


def _conj_vjp(g, y, args, saved, needs, xp):
    return (_conj(g),)


_conj_vjp.reads_inputs = False  # type: ignore[attr-defined]
_conj_vjp.reads_output = False  # type: ignore[attr-defined]


def abs(x: Tensor) -> Tensor:  # noqa: A001  (torch's name)
    """|z| of a complex tensor, real (float32 for complex64); gradient g z / |z|, 0 where z is 0."""
    return record_op(np.abs(x.array), (x,), _abs_vjp)


def _abs_vjp(g, y, args, saved, needs, xp):
    z = args[0]
    if y is None:  # the output was changed in place (torch saves the input only): recomputed
        y = rerun(abs, args, xp)
    if isinstance(g, Tensor):
        safe = xp.where(xp.data(y) == 0, 1.0, y)
        return (z * (g / safe),)
    zero = y == 0
    return (np.where(zero, 0, z * (g / np.where(zero, 1, y))).astype(z.dtype, copy=False),)


_abs_vjp.reads_output = "optional"  # type: ignore[attr-defined]


def angle(x: Tensor) -> Tensor:
    """torch.angle: the argument of each complex value in (-pi, pi] (real: 0, or pi for negatives; NaN
    stays NaN), real dtype; gradient g i z / |z|^2 (0 at 0; 0 for a real input, as torch)."""
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"angle: expected a Tensor, got {type(x).__name__}")
    a = x.array
    if a.dtype.kind != "c":
        if a.dtype.kind != "f":
            a = a.astype(backend.get_default_dtype())
        out = np.where(a < 0, np.pi, 0).astype(a.dtype)
        out = np.where(np.isnan(a), a, out)
        return record_op(as_array(out), (x,), _zero_vjp) if x.array.dtype.kind == "f" else wrap_array(out)
    return record_op(as_array(np.angle(a)), (x,), _angle_vjp)


def _zero_vjp(g, y, args, saved, needs, xp):
    # exact zeros, as torch: g * 0 would turn an inf or NaN upstream gradient into NaN
    data = xp.data(g)
    return (xp.constant(backend.namespace_of(data).zeros(data.shape, data.dtype)),)


_zero_vjp.reads_inputs = False  # type: ignore[attr-defined]
_zero_vjp.reads_output = False  # type: ignore[attr-defined]


def _angle_vjp(g, y, args, saved, needs, xp):
    z = args[0]
    if isinstance(g, Tensor):
        r2 = real(z) * real(z) + imag(z) * imag(z)
        safe = xp.where(xp.data(r2) == 0, 1.0, r2)
        return (z * (g / safe) * 1j,)
    re, im = np.real(z), np.imag(z)
    r2 = re * re + im * im
    zero = r2 == 0
    return (np.where(zero, 0, z * 1j * (g / np.where(zero, 1, r2))).astype(z.dtype, copy=False),)


def _float_pair(a: Any, b: Any, name: str) -> tuple[Tensor, Tensor]:
    for label, t in (("real" if name == "complex" else "abs", a), ("imag" if name == "complex" else "angle", b)):
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(f"{name}: expected {label} to be a Tensor, got {type(t).__name__}")
        if t.array.dtype.kind != "f" or t.array.dtype == backend.float16:
            raise DTypeError(
                f"{name}: expected both inputs to be float32 or float64 tensors, got {label} of dtype {t.array.dtype}"
            )
    if a.array.dtype != b.array.dtype:
        raise DTypeError(
            f"{name}: expected object of scalar type {a.array.dtype} but got scalar type {b.array.dtype} for the "
            "second argument"
        )
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(f"{name}: shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast together") from None
    return a, b


def complex(real: Tensor, imag: Tensor) -> Tensor:  # noqa: A001  (torch's name)
    """torch.complex: ``real + i imag`` from two float32 (or float64) tensors of one dtype."""
    real, imag = _float_pair(real, imag, "complex")
    return record_op(_from_parts(real.array, imag.array), (real, imag), _complex_vjp)


def _from_parts(re: Any, im: Any) -> Any:
    """The complex array ``re + i im`` (exact for infinite parts, where ``re + 1j * im`` makes NaNs)."""
    shape = np.broadcast_shapes(re.shape, im.shape)
    parts = np.stack([np.broadcast_to(re, shape), np.broadcast_to(im, shape)], axis=-1)
    return parts.view(backend.complex_of(re.dtype))[..., 0]


def _complex_vjp(g, y, args, saved, needs, xp):
    re, im = args
    return (
        xp.sum_to(_real_part(g), re.shape) if needs[0] else None,
        xp.sum_to(_imag_part(g), im.shape) if needs[1] else None,
    )


_complex_vjp.reads_inputs = False  # type: ignore[attr-defined]
_complex_vjp.reads_output = False  # type: ignore[attr-defined]


def _imag_part(x: Any) -> Any:
    return imag(x) if isinstance(x, Tensor) else np.imag(x)


def polar(abs: Tensor, angle: Tensor) -> Tensor:  # noqa: A002  (torch's names)
    """torch.polar: ``abs * (cos(angle) + i sin(angle))`` from two float tensors of one dtype."""
    r, theta = _float_pair(abs, angle, "polar")
    out = _from_parts(r.array * np.cos(theta.array), r.array * np.sin(theta.array))
    return record_op(out, (r, theta), _polar_vjp)


def _polar_vjp(g, y, args, saved, needs, xp):
    # dL/du = Re(g conj(dz/du)): dz/dr = e^(i angle) = z / r, dz/dangle = i z
    r, theta = args
    gr = gt = None
    if needs[0]:
        unit = (xp.cos(theta) + xp.sin(theta) * 1j) if not isinstance(g, Tensor) else polar(theta * 0 + 1, theta)
        gr = xp.sum_to(_real_part(g * _conj(unit)), r.shape)
    if needs[1]:
        gt = xp.sum_to(_real_part(g * _conj(y * 1j)), theta.shape)
    return gr, gt


def view_as_real(x: Tensor) -> Tensor:
    """torch.view_as_real: a complex tensor as a real one with a trailing dim of 2 (real, imaginary).
    It shares the complex tensor's memory: a write into it writes into ``x``, as torch's view."""
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"view_as_real: expected a Tensor, got {type(x).__name__}")
    if x.array.dtype.kind != "c":
        raise DTypeError(f"view_as_real is only supported for complex tensors, got dtype {x.array.dtype}")
    a = x.array
    parts = a[..., None].view(backend.real_of(a.dtype))
    return _alias(record_op(parts, (x,), _view_as_real_vjp), x)


def _view_as_real_vjp(g, y, args, saved, needs, xp):
    if isinstance(g, Tensor):
        return (view_as_complex(g.contiguous()),)
    return (backend.namespace_of(g).ascontiguousarray(g).view(args[0].dtype)[..., 0],)


_view_as_real_vjp.reads_inputs = False  # type: ignore[attr-defined]
_view_as_real_vjp.reads_output = False  # type: ignore[attr-defined]


def _write_real(base: Tensor, values: Tensor) -> None:
    """``base.real = values`` recorded: base becomes complex(values, imag(old base))."""
    from ..tensor import _inplace_recorded

    part = values.to(backend.real_of(base.array.dtype))
    _inplace_recorded(base, "copy_", lambda src: complex(part, imag(src)))


def _write_imag(base: Tensor, values: Tensor) -> None:
    """``base.imag = values`` recorded: base becomes complex(real(old base), values)."""
    from ..tensor import _inplace_recorded

    part = values.to(backend.real_of(base.array.dtype))
    _inplace_recorded(base, "copy_", lambda src: complex(real(src), part))


def _write_parts(base: Tensor, values: Tensor) -> None:
    """``view_as_real(base)[...] = values`` recorded: base becomes view_as_complex(values), with no edge to
    its old values (every element is written)."""
    from ..tensor import _inplace_recorded

    parts = values.to(backend.real_of(base.array.dtype))
    _inplace_recorded(base, "copy_", lambda src: view_as_complex(parts))


def view_as_complex(x: Tensor) -> Tensor:
    """torch.view_as_complex: a float32/float64 tensor whose last dim is 2 (real, imaginary) as a complex
    one (a copy when the parts are not adjacent in memory)."""
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"view_as_complex: expected a Tensor, got {type(x).__name__}")
    a = x.array
    if a.dtype.kind != "f" or a.dtype == backend.float16:
        raise DTypeError(
            f"view_as_complex is only supported for float32 and float64 tensors, but got a tensor of dtype {a.dtype}"
        )
    if a.ndim == 0 or a.shape[-1] != 2:
        raise ShapeError(f"view_as_complex: Tensor must have a last dimension of size 2, got shape {tuple(a.shape)}")
    xp = backend.namespace_of(a)
    out = xp.ascontiguousarray(a).view(backend.complex_of(a.dtype))[..., 0]
    return record_op(out, (x,), _view_as_complex_vjp)


def _view_as_complex_vjp(g, y, args, saved, needs, xp):
    if isinstance(g, Tensor):
        return (view_as_real(g),)
    return (backend.namespace_of(g).ascontiguousarray(g)[..., None].view(args[0].dtype),)


_view_as_complex_vjp.reads_inputs = False  # type: ignore[attr-defined]
_view_as_complex_vjp.reads_output = False  # type: ignore[attr-defined]


def to_real(x: Tensor, target: Any) -> Tensor:
    """A complex tensor cast to a real dtype, as torch casts it: the real part, with torch's warning."""
    warnings.warn("Casting complex values to real discards the imaginary part", UserWarning, stacklevel=_caller_level())
    from .pointwise import astype

    return astype(real(x), target)


def _caller_level() -> int:
    """The stack level of the first frame outside downslope (where the user asked for the cast)."""
    import sys

    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("downslope."):
        frame, level = frame.f_back, level + 1
    return level


def _complex_astype_vjp(g, y, args, saved, needs, xp):
    """A cast's gradient cast back; into a real dtype only the real part (a real input's gradient)."""
    if saved.kind != "c":
        g = _real_part(g)
    return (xp.astype(g, saved),)


# it reads only g and the saved dtype: as torch's cast, it saves no values, so a graph through a real-to-
# complex cast (every FFT of a real tensor) may be differentiated again, and its input written in place
_complex_astype_vjp.reads_inputs = False  # type: ignore[attr-defined]
_complex_astype_vjp.reads_output = False  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- promotion


def _operand_dtype(x: Any) -> tuple[int, np.dtype]:
    """torch's promotion level of an operand (2: a tensor with dims, 1: a 0-d tensor, 0: a number) and
    the dtype it brings (a float number the default dtype, a complex number the default's complex)."""
    if isinstance(x, Tensor):
        return (2 if x.ndim else 1), x.array.dtype
    if isinstance(x, (bool, np.bool_)):
        return 0, backend.bool_
    if isinstance(x, (int, np.integer)):
        return 0, backend.int64
    if isinstance(x, (float, np.floating)):
        return 0, backend.get_default_dtype()
    if isinstance(x, (builtins.complex, np.complexfloating)):
        return 0, backend.complex_of(backend.get_default_dtype())
    raise ArgumentTypeError(f"cannot combine a complex tensor with {type(x).__name__}")


def _combine(higher: Any, lower: Any) -> Any:
    """torch's combine_categories: a higher level keeps its dtype unless the lower one is of a higher
    category (complex over floating over integer over bool)."""
    if higher is None:
        return lower
    if lower is None or higher.kind == "c":
        return higher
    if lower.kind == "c":
        return backend.complex_of(higher) if higher.kind == "f" else lower
    if higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return np.result_type(higher, lower)
    return higher


def complex_result_dtype(a: Any, b: Any) -> np.dtype:
    """The dtype torch gives ``a op b`` when one of them is complex (torch.result_type's rule)."""
    levels: dict[int, Any] = {}
    for x in (a, b):
        level, dtype = _operand_dtype(x)
        have = levels.get(level)
        levels[level] = dtype if have is None else _promote(have, dtype)
    return _combine(levels.get(2), _combine(levels.get(1), levels.get(0)))


def _promote(d1: np.dtype, d2: np.dtype) -> np.dtype:
    """torch.promote_types with a complex dtype: the complex of the wider floating precision (integers
    do not widen it, where NumPy makes complex64 and int64 complex128)."""
    if d1.kind == "c" or d2.kind == "c":
        wide = max((backend.real_of(d) for d in (d1, d2) if d.kind in "fc"), key=lambda d: d.itemsize)
        return backend.complex_of(wide)
    return np.result_type(d1, d2)


def pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """operands' pair promotion, with torch's complex rule where an operand is complex (real with
    complex is complex; operands' _pair hands such pairs to :func:`complex_pair` too). The two common
    real cases are decided first, at the cost of a few attribute reads."""
    if isinstance(a, Tensor):
        x = a.array
        if isinstance(b, Tensor):
            y = b.array
            if x.dtype is y.dtype and x.__class__ is y.__class__:
                return a, b  # the common case: nothing to lift or promote
            if x.dtype.kind != "c" and y.dtype.kind != "c":
                return _real_pair(a, b)
        elif (b.__class__ is float or b.__class__ is int) and x.dtype.kind != "c":
            return _real_pair(a, b)  # a real tensor and a number, the other common case
    if (a.array.dtype.kind == "c" if isinstance(a, Tensor) else isinstance(a, _COMPLEX_NUMBERS)) or (
        b.array.dtype.kind == "c" if isinstance(b, Tensor) else isinstance(b, _COMPLEX_NUMBERS)
    ):
        return complex_pair(a, b)
    return _real_pair(a, b)


_COMPLEX_NUMBERS = (builtins.complex, np.complexfloating)


def sgn(x: Tensor) -> Tensor:
    """torch.sgn of a complex tensor: z / |z| (0 at 0), differentiable (0 gradient at 0, as torch)."""
    from .pointwise import where

    r = abs(x)
    zero = r.array == 0
    safe = where(wrap_array(zero), 1.0, r)
    return where(wrap_array(zero), 0.0, x / safe)


def complex_pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Two operands of a binary op, one of them complex, lifted and cast to torch's result dtype (the
    cast of a tensor that requires grad recorded, its gradient the real part for a real tensor)."""
    from .operands import _onto_device_of
    from .pointwise import astype

    dtype = complex_result_dtype(a, b)
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None  # None: two numbers
    out: list[Tensor] = []
    for x in (a, b):
        if isinstance(x, Tensor):
            out.append(x if x.array.dtype == dtype else astype(x, dtype))
        else:
            arr = np.asarray(x, dtype=dtype)  # host: a number
            out.append(wrap_array(arr if like is None else _onto_device_of(arr, like.array)))
    return out[0], out[1]


# ---------------------------------------------------------------------- the table


def _stft_method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """Tensor.stft: :func:`downslope.fft.stft` of this tensor (loaded on first use)."""
    from ..fft import stft

    return stft(self, *args, **kwargs)


def _istft_method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """Tensor.istft: :func:`downslope.fft.istft` of this tensor (loaded on first use)."""
    from ..fft import istft

    return istft(self, *args, **kwargs)


def resolve_conj(x: Tensor) -> Tensor:
    """torch's resolve_conj/resolve_neg: conj() here makes the conjugate at once, so nothing is pending."""
    return x


def isreal(x: Tensor) -> Tensor:
    """torch.isreal: True where the value has no imaginary part (everywhere for a real tensor)."""
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"isreal: expected a Tensor, got {type(x).__name__}")
    if x.array.dtype.kind != "c":
        return wrap_array(backend.namespace_of(x.array).ones(x.shape, dtype=bool))
    return wrap_array(np.imag(x.array) == 0)


def is_conj(x: Tensor) -> bool:
    """torch.is_conj: False, as conj() here makes the conjugate at once (no lazy conjugate bit)."""
    return False


def install(tensor_class: type) -> None:
    """Fill record_op's table of complex rules and put the complex methods on Tensor (tensor.py calls it
    once the ops are loaded)."""
    from . import pointwise

    tensor_class.real = property(real)  # type: ignore[attr-defined]
    tensor_class.imag = property(imag)  # type: ignore[attr-defined]
    for name, fn in (
        ("conj", conj),
        ("conj_physical", conj),
        ("resolve_conj", resolve_conj),
        ("resolve_neg", resolve_conj),
    ):
        setattr(tensor_class, name, fn)
    tensor_class.angle = angle  # type: ignore[attr-defined]
    tensor_class.stft = _stft_method  # type: ignore[attr-defined]
    tensor_class.istft = _istft_method  # type: ignore[attr-defined]
    tensor_class.is_conj = is_conj  # type: ignore[attr-defined]
    tensor_class.isreal = isreal  # type: ignore[attr-defined]
    tensor_class.cfloat = lambda self: self.to(backend.complex64)  # type: ignore[attr-defined]
    tensor_class.cdouble = lambda self: self.to(backend.complex128)  # type: ignore[attr-defined]

    for rule in (_real_vjp, _imag_vjp, _conj_vjp, _complex_vjp, _polar_vjp, _view_as_complex_vjp):
        register(rule)
    PART_VIEWS[_real_vjp] = (_write_real, real)
    PART_VIEWS[_imag_vjp] = (_write_imag, imag)
    PART_VIEWS[_view_as_real_vjp] = (_write_parts, view_as_real)
    register(pointwise._astype_vjp, _complex_astype_vjp)
    import importlib

    from .indexing import _VIEW_RULES

    for module, names in HOLOMORPHIC_RULES.items():
        source = importlib.import_module(module, __package__)
        for name in names:
            rule = getattr(source, name)
            # the view ops move values without arithmetic, so conj(rule(conj(g))) is rule(g): they keep their
            # own rule, whose identity the in-place machinery reads (a write through a view of a complex
            # tensor must reach its base as for a real one)
            register(rule, rule if rule in _VIEW_RULES else _holomorphic(rule))
    for name in pointwise._COMPLEX_UNARY:  # the unary table's rules are closures, listed by op name
        rule = pointwise.UNARY_RULES[name]
        register(rule, _holomorphic(rule))


# Rules (module: names) of ops holomorphic in their inputs (linear ops included), written as the output's
# gradient times the transposed Jacobian: their complex forms are conj(rule(conj(g))).
HOLOMORPHIC_RULES: dict[str, tuple[str, ...]] = {
    ".arithmetic": ("_add_vjp", "_sub_vjp", "_mul_vjp", "_div_vjp", "_pow_vjp", "_neg_vjp", "_logaddexp_vjp"),
    ".pointwise": (
        "_exp_vjp",
        "_clone_vjp",
        "_where_vjp",
        "_expm1_vjp",
        "_log_vjp",
        "_log1p_vjp",
        "_sqrt_vjp",
        "_rsqrt_vjp",
        "_sin_vjp",
        "_cos_vjp",
        "_tanh_vjp",
        "_sigmoid_vjp",
    ),
    ".scans": ("_cumsum_vjp", "_cumprod_vjp", "_logcumsumexp_vjp"),
    ".linalg": ("_matmul_vjp", "_einsum_vjp", "_triangle_vjp"),
    ".reductions": ("_sum_vjp", "_mean_vjp", "_prod_vjp", "_logsumexp_vjp"),
    ".shape": ("_reshape_vjp", "_permute_vjp", "_broadcast_to_vjp", "_sum_to_vjp", "_concatenate_vjp", "_stack_vjp"),
    ".indexing": ("_getitem_vjp", "_index_put_vjp", "_scatter_add_into_vjp"),
    ".rearrange": ("_pad_vjp", "copy_pad_vjp", "_fold_pad_vjp", "_unfold_vjp", "_roll_vjp"),
    "..tensor": ("_rsub_vjp",),
    "..functional": ("_square_vjp",),
}
