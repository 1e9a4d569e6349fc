"""Stateless versions of the layers (``downslope.nn.functional``, imported as ``F`` by habit).

The hot ops get a fused forward with their own vector-Jacobian product: ``linear`` (one GEMM per
gradient instead of a matmul, a transpose and a broadcast add) and ``dropout`` (one multiply by a
saved scaled mask). Their rules use only operators, so they still work under ``create_graph``.
Losses live in :mod:`downslope.nn.losses`, normalization in :mod:`downslope.nn.normalization`;
both are re-exported here.

Example:
    >>> import downslope as ds
    >>> import downslope.nn.functional as F
    >>> F.relu(ds.tensor([-1.0, 2.0]))
    tensor([0., 2.])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, gemm, ops
from ..backend import namespace_of
from ..devices import to_host
from ..errors import ArgumentError, ArgumentTypeError, DTypeError, InvalidValueError, ShapeError
from ..functional import gelu as _gelu
from ..graph import is_grad_enabled
from ..ops import distances as _distance
from ..ops import normalize_dim as _dim
from ..ops.complex import register_holomorphic
from ..ops.out import with_input as _with_input
from ..ops.out import with_out as _with_out
from ..ops.pointwise import link_input as _link_input
from ..ops.rearrange import copy_pad_vjp
from ..tensor import Tensor, record_op, wrap_array
from ._arrays import array_of, is_host, scalar

__all__ = [
    "linear",
    "dropout",
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "softplus",
    "silu",
    "one_hot",
    "softmin",
    "relu6",
    "hardtanh",
    "selu",
    "celu",
    "logsigmoid",
    "softsign",
    "tanhshrink",
    "mish",
    "hardsigmoid",
    "hardswish",
    "threshold",
    "gumbel_softmax",
    "pdist",
    "softshrink",
    "hardshrink",
    "glu",
    "prelu",
    "normalize",
    "cosine_similarity",
    "pairwise_distance",
    "pad",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "alpha_dropout",
    "feature_alpha_dropout",
    "rrelu",
]


def _as_tensor(x: Any, fn: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    raise ArgumentTypeError(f"{fn}: expected a Tensor, got {type(x).__name__}; wrap arrays with ds.tensor(...)")


# ---------------------------------------------------------------------- linear
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` for ``x`` of shape (..., in), ``weight`` (out, in), ``bias`` (out,).

    2-D input runs as one fused op (its VJP is one GEMM per gradient and a column sum for the
    bias); other shapes are flattened to 2-D around it.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.linear(ds.ones(2, 3), ds.ones(4, 3), ds.zeros(4)).shape
        downslope.Size([2, 4])
    """
    x = _as_tensor(input, "linear")
    weight = _as_tensor(weight, "linear (weight)")
    # torch raises RuntimeError for these: ShapeError and DTypeError are RuntimeErrors too
    if weight.ndim == 1 and bias is None and x.ndim >= 1 and x.shape[-1] == weight.shape[0]:
        _check_linear_dtypes(x, weight, None)
        return ops.matmul(x, weight)  # torch: a vector of weights gives x @ w, without the last dim
    if weight.ndim != 2:
        raise ShapeError(f"linear: weight must be 2-D (out_features, in_features), got shape {tuple(weight.shape)}")
    out_f, in_f = weight.shape
    if x.ndim == 0 or x.shape[-1] != in_f:
        raise ShapeError(
            f"linear: input of shape {tuple(x.shape)} does not fit weight of shape {tuple(weight.shape)}: "
            f"expected the last input dim to be in_features={in_f}"
        )
    if x.array.dtype != weight.array.dtype or (bias is not None and bias.array.dtype != weight.array.dtype):
        _check_linear_dtypes(x, weight, bias)
    if bias is not None and bias.shape != (out_f,):
        # torch adds any bias that broadcasts to the output without changing its shape (0-d, (1,), (N, out))
        out_shape = tuple(x.shape[:-1]) + (out_f,)
        try:
            fits = np.broadcast_shapes(tuple(bias.shape), out_shape) == out_shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(
                f"linear: bias of shape {tuple(bias.shape)} does not broadcast to the output shape {tuple(out_shape)}"
            )
        return ops.add(linear(x, weight), bias)
    if x.ndim == 2:
        return _linear2d(x, weight, bias)
    lead = x.shape[:-1]
    out = _linear2d(ops.reshape(x, (-1, in_f)), weight, bias)
    return ops.reshape(out, lead + (out_f,))


def _check_linear_dtypes(x: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    if x.array.dtype != weight.array.dtype:
        raise DTypeError(
            f"linear: input dtype {x.array.dtype} differs from weight dtype {weight.array.dtype}; "
            "cast the input (x.to(weight.dtype)) or the module (model.to(x.dtype))" + _float64_data_hint(x, weight)
        )
    if bias is not None and bias.array.dtype != weight.array.dtype:  # torch refuses; NumPy would promote
        raise DTypeError(f"linear: bias dtype {bias.array.dtype} differs from weight dtype {weight.array.dtype}")


def _float64_data_hint(x: Tensor, weight: Tensor) -> str:
    """Why a float32 input may meet a float64 (``.double()``) module: unlike torch, ``ds.tensor`` and
    ``ds.as_tensor`` make float64 NumPy data float32 (the default dtype), so a float64 program that
    only changed its imports lands here."""
    if x.array.dtype == np.float32 and weight.array.dtype == np.float64:
        return (
            "; note that ds.tensor(a) and ds.as_tensor(a) turn float64 NumPy data into float32 (the default "
            "dtype); ds.tensor(a, dtype=ds.float64) or ds.from_numpy(a) keeps it float64"
        )
    return ""


#: A layer's forward product ``x @ weight.T`` (the weight read transposed) stays on NumPy's matmul
#: below this many times gemm.MIN_MULTIPLY_ADDS multiply-adds. With the weight in this layout oneDNN's
#: GEMM was the slower one at every inference-sized product measured (one thread, AMD EPYC, medians,
#: NumPy vs oneDNN: 32x64 @ 64x256 31 vs 49 us, 160x64 @ 64x192 76 vs 109 us, 64x256 @ 256x256 130 vs
#: 141 us; about even from 16M multiply-adds), and token-by-token generation makes such products
#: (a context of 25-32 rows) nine times a step. A multiple of gemm's bound, so that the tests' run
#: with that bound at 0 still takes oneDNN here.
LINEAR_NUMPY_BELOW = 10


def _forward_product(d: Any, w: Any) -> Any:
    """``d @ w.T`` for the 2-D input ``d`` and weight ``w`` (arrays): NumPy's matmul for host float32
    products below the bound above, gemm.matmul's choice otherwise (the same values for every caller:
    the recorded and the unrecorded forward pick the same way)."""
    if (
        type(d) is np.ndarray
        and type(w) is np.ndarray
        and d.shape[0] * w.shape[0] * w.shape[1] < LINEAR_NUMPY_BELOW * gemm.MIN_MULTIPLY_ADDS
    ):
        return d @ w.T
    return gemm.matmul(d, w.T)


def _linear2d(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    if x.array.dtype == np.float16:
        return _linear2d_half(x, weight, bias)
    out = _forward_product(x.array, weight.array)
    if bias is None:
        return record_op(out, (x, weight), _linear_vjp)
    out += bias.array
    return record_op(out, (x, weight, bias), _linear_vjp)


def _linear_nd_no_grad(d: np.ndarray, w: np.ndarray, bias: Tensor | None) -> Tensor:
    """``linear`` of the host float32/float64 (..., in) array ``d`` when no gradient is recorded: the
    same GEMM and bias add as :func:`_linear2d` on ``d`` flattened to 2-D (a view: the caller checks
    that ``d`` is C-contiguous), the output unflattened, one tensor made for it."""
    out = _forward_product(d.reshape(-1, d.shape[-1]), w)
    if bias is not None:
        out += bias.array
    return record_op(out.reshape(d.shape[:-1] + (w.shape[0],)), (), _linear_vjp)


def _linear2d_half(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """float16: products summed and the bias added in float32, then one rounding to float16, as
    torch's addmm does (rounding the product before adding the bias doubles the error; NumPy's
    float16 matmul has no BLAS kernel either)."""
    out = gemm.matmul(x.array.astype(np.float32), weight.array.astype(np.float32).T)  # float32's GEMM
    if bias is None:
        return record_op(out.astype(np.float16), (x, weight), _linear_vjp)
    out += bias.array.astype(np.float32)
    return record_op(out.astype(np.float16), (x, weight, bias), _linear_vjp)


def _linear_vjp(g, y, args, saved, needs, xp):
    x, w = args[0], args[1]
    # On oneDNN for float32 host arrays; Tensors (a rule recorded under create_graph) use their @.
    gx = gemm.matmul(g, w) if needs[0] else None
    gw = gemm.matmul(g.T, x) if needs[1] else None
    if len(args) == 2:
        return gx, gw
    if needs[2] and not isinstance(g, Tensor) and g.dtype == np.float16:  # summed in float32, as torch
        return gx, gw, g.sum(axis=0, dtype=np.float32).astype(np.float16)
    return gx, gw, (g.sum(axis=0) if needs[2] else None)


# x is read for the weight's gradient, the weight for x's, the bias never: a weight changed in place
# after the forward (under no_grad) is no error when x wants no gradient, as in torch.
_linear_vjp.reads_inputs = lambda i, needs: needs is None or (i == 0 and bool(needs[1])) or (i == 1 and bool(needs[0]))  # type: ignore[attr-defined]  # host: flags
# x @ w.T + b is linear in each operand: by conjugation the rule holds for complex values (torch's complex Linear)
register_holomorphic(_linear_vjp)


# ---------------------------------------------------------------------- inplace=True
def _write_into(input: Any, name: str, op: Any) -> Tensor:
    """torch's ``inplace=True``: ``op(input)`` written into ``input``, which is returned. Code relies
    on the aliasing (a forward hook that kept a conv's output sees the ReLU'd values). The write is
    a recorded in-place op: a leaf that requires grad is refused, and backward refuses an earlier
    rule that reads the overwritten values (exp's, sigmoid's output), as torch. The op itself runs on
    a recorded copy (its rule may read its input, as torch saves an in-place op's original input)."""
    x = _as_tensor(input, name)
    if x.requires_grad and is_grad_enabled():
        if name in _SAVES_RESULT:
            # torch's in-place form of these saves its result: a later in-place write to it is refused
            return x._inplace_via(name + "_", lambda t: _reading_result(op(t.clone())))
        return x.copy_(op(x.clone()))
    return x.copy_(op(x))


_SAVES_RESULT = frozenset({"elu", "celu", "selu", "leaky_relu", "rrelu"})


def _reading_result(y: Tensor) -> Tensor:
    """``y`` passed through a node that counts as reading its output (the tensor written in place)."""
    return record_op(y.array, (y,), _reads_result_vjp)


def _reads_result_vjp(g, y, args, saved, needs, xp):
    return (g,)


_reads_result_vjp.reads_inputs = False  # type: ignore[attr-defined]
_reads_result_vjp.reads_output = True  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- dropout
def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (inverted dropout),
    so nothing changes at evaluation time. Identity when ``training`` is False or ``p == 0``.
    The mask comes from ``downslope.backend.rng()`` (seeded by ``ds.manual_seed``). ``inplace=True``
    writes the result into ``input`` and returns it, as PyTorch.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.dropout(ds.ones(4), p=0.5, training=False)
        tensor([1., 1., 1., 1.])
    """
    x = input  # torch's parameter name (F.dropout(input=...))
    if isinstance(p, Tensor) and p.array.size == 1 and p.array.dtype.kind in "fiu":
        p = p.item()  # host: a 0-d tensor as p, read as a number as torch reads it
    x = _as_tensor(x, "dropout")
    _check_probability(p, "dropout")
    if not training or p == 0:
        return x
    if inplace:
        return _write_into(x, "dropout", lambda t: dropout(t, p, training))
    dtype = x.array.dtype if backend.is_floating(x.array.dtype) else backend.get_default_dtype()
    if p == 1:
        scale = np.zeros_like(x.array, dtype=dtype)
    else:
        keep = backend.random_like(x.shape, x.array) >= np.float32(p)  # drawn on x's device
        scale = keep * scalar(1.0 / (1.0 - p), dtype)
    return record_op(x.array * scale, (x,), _dropout_vjp, scale)


def _dropout_vjp(g, y, args, saved, needs, xp):
    return (g * saved,)


_dropout_vjp.reads_inputs = False  # type: ignore[attr-defined]  # the scaled mask only, as torch saves it


def _check_probability(p: Any, where: str) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0.0 <= p <= 1.0:
        raise ArgumentError(f"{where}: probability p must be a number in [0, 1], got {p!r}")


# ---------------------------------------------------------------------- activations
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0)."""
    x = input  # torch's parameter name (F.relu(input=...))
    if inplace:  # the rule reads the output only: no copy of the old values is needed
        return _as_tensor(x, "relu").relu_()
    return ops.relu(x)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    x = input  # torch's parameter name (F.leaky_relu(input=...))
    if inplace:
        return _write_into(x, "leaky_relu", lambda t: ops.leaky_relu(t, negative_slope))
    return ops.leaky_relu(x, negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha (e^x - 1) otherwise.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> [round(v, 4) for v in F.elu(ds.tensor([-1.0, 0.0, 2.0])).tolist()]
        [-0.6321, 0.0, 2.0]
    """
    x = input  # torch's parameter name (F.elu(input=...))
    if inplace:
        return _write_into(x, "elu", lambda t: _elu_op(t, alpha, 1.0, 1.0, "elu"))
    return _elu_op(x, alpha, 1.0, 1.0, "elu")


def _elu_op(x: Tensor, alpha: float, scale: float, input_scale: float, name: str) -> Tensor:
    """torch's ELU kernel (elu, selu, celu): scale x for x > 0, alpha scale (e^(input_scale x) - 1)
    otherwise, as one op without a select (a ``where`` on random signs costs NumPy a mispredicted
    branch per element): max(x, 0) and min(x, 0) go through expm1 separately and add up, keeping
    -0.0 and NaN as torch does. float16 is computed in float32 and rounded once."""
    x = _as_tensor(x, name)
    d = x.array
    if d.dtype.kind != "f":  # integers and bools: the float result the composite (expm1) gave
        x = ops.astype(x, backend.get_default_dtype())
        d = x.array
    w = d.astype(np.float32) if d.dtype == np.float16 else d
    w = w.reshape(w.shape or (1,))  # 0-d as 1-d: the in-place steps need arrays, not NumPy scalars
    xp = namespace_of(w)
    neg = xp.clip(w, -np.inf, 0)  # clip, not minimum: NumPy's minimum with a scalar is 3x slower
    if input_scale != 1.0:
        neg *= input_scale
    xp.expm1(neg, out=neg)
    neg *= alpha * scale
    out = xp.clip(w, 0, np.inf)  # -0.0 stays -0.0 and adds to expm1(-0.0) = -0.0, as torch's
    if scale != 1.0:
        out *= scale
    out += neg
    return record_op(out.astype(d.dtype, copy=False).reshape(d.shape), (x,), _elu_vjp, (alpha, scale, input_scale))


def _elu_vjp(g, y, args, saved, needs, xp):
    # torch's elu_backward on the input: input_scale alpha scale e^(input_scale x) for x <= 0, else scale
    alpha, scale, input_scale = saved
    x = args[0]
    if xp.differentiable:
        # torch's double backward differentiates the exp branch only for x < 0: at x = 0 the first
        # derivative takes the x <= 0 value but is constant in x (second derivative 0, as torch's)
        a = xp.data(x)
        c = input_scale * alpha * scale
        at_zero_or_above = xp.constant((a == 0).astype(a.dtype) * (c - scale) + scale)
        return (xp.where(a < 0, g * (xp.exp(x * input_scale) * c), g * at_zero_or_above),)
    w = x.astype(np.float32) if x.dtype == np.float16 else x
    w = w.reshape(w.shape or (1,))
    m = namespace_of(w)
    e = m.fmin(w, 0)  # fmin: NaN becomes 0 here, so that the NaN row takes the x > 0 factor, as torch's
    if input_scale != 1.0:
        e *= input_scale
    m.exp(e, out=e)
    e *= input_scale * alpha * scale
    nonpos = (w <= 0).astype(w.dtype)
    e *= nonpos  # exact selection: nonpos is 0 or 1 and both terms are finite
    nonpos -= 1
    nonpos *= -scale
    e += nonpos
    e *= g
    return (e.astype(g.dtype, copy=False).reshape(g.shape),)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF, or its tanh approximation (``approximate='tanh'``).

    float32 input runs as one fused op with a vectorized erfc (Numerical Recipes' Chebyshev fit,
    fractional error < 1.2e-7), several times faster than the per-element exact erf. Measured
    against the exact value in float64: relative error < 6e-6 for x > -8 (below that the result
    is under 1e-15; PyTorch's float32 GELU returns 0 there). Host arrays with numba installed run
    the same fit as one compiled pass forward and one backward (``_jit_activation_kernels``, with
    the same accuracy). float16 runs the same op in float32
    and rounds once (as torch); float64 (gradcheck) uses the exact composite. The tanh form is one
    fused op with torch's formulas in every float dtype. Double backward uses the exact forms.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> [round(v, 4) for v in F.gelu(ds.tensor([-1.0, 0.0, 1.0])).tolist()]
        [-0.1587, 0.0, 0.8413]
    """
    x = _as_tensor(input, "gelu")  # input: torch's parameter name (F.gelu(input=...))
    dtype = x.array.dtype
    if approximate == "tanh" and dtype in (np.float16, np.float32, np.float64):
        return _gelu_tanh(x)
    if approximate != "none" or dtype not in (np.float16, np.float32):
        return _gelu(x, approximate)
    d = x.array if dtype == np.float32 else x.array.astype(np.float32)
    d = d.reshape(d.shape or (1,))  # 0-d as 1-d: the in-place steps need arrays, not NumPy scalars
    from . import _jit

    if d.size and _jit.kernels(d) is not None:  # host arrays: one compiled pass, Phi saved only when recorded
        from ..graph import is_grad_enabled
        from ._jit_activation_kernels import gelu_erf

        flat = np.ascontiguousarray(d).reshape(-1)  # host: the compiled path takes host arrays only
        out, cdf = gelu_erf(flat, save=is_grad_enabled() and x.requires_grad)
        return record_op(out.astype(dtype, copy=False).reshape(x.shape), (x,), _gelu_vjp, cdf)
    with np.errstate(invalid="ignore"):  # -inf * Phi(-inf) = -inf * 0: NaN, as torch's, silently
        cdf = _erfc(d * np.float32(-_SQRT1_2))
        cdf *= np.float32(0.5)  # Phi(x) = erfc(-x / sqrt 2) / 2, accurate in both tails
        out = d * cdf
    return record_op(out.astype(dtype, copy=False).reshape(x.shape), (x,), _gelu_vjp, cdf)


_GELU_BETA = 0.7978845608028654  # sqrt(2 / pi)
_GELU_KAPPA = 0.044715


def _gelu_tanh(x: Tensor) -> Tensor:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) as one op (float16 computed in float32)."""
    d = x.array
    if type(d) is np.ndarray and d.ndim and d.dtype != np.float16 and not (is_grad_enabled() and x.requires_grad):
        return record_op(_gelu_tanh_unrecorded(d), (), _gelu_tanh_vjp)
    w = d.astype(np.float32) if d.dtype == np.float16 else d
    w = w.reshape(w.shape or (1,))  # 0-d as 1-d: the in-place steps need arrays, not NumPy scalars
    xp = namespace_of(w)
    with np.errstate(over="ignore", invalid="ignore"):  # x^3 overflows to inf for huge |x|: tanh saturates
        inner = w * w
        inner *= _GELU_KAPPA
        inner += 1
        inner *= w
        inner *= _GELU_BETA
        th = xp.tanh(inner, out=inner)
        out = w * 0.5  # torch's order, (0.5 x)(1 + th): x (1 + th) overflows for x near the float's max
        out *= th + 1
    return record_op(out.astype(d.dtype, copy=False).reshape(d.shape), (x,), _gelu_tanh_vjp, th)


def _gelu_tanh_unrecorded(d: np.ndarray) -> np.ndarray:
    """:func:`_gelu_tanh`'s values for a host float32/float64 array with nothing recorded (inference,
    token-by-token generation, where the op's fixed cost is most of its time): the same operations in
    the same order, without the namespace lookup and the reshapes, and with 1 + tanh written over the
    tanh that no rule will read."""
    with np.errstate(over="ignore", invalid="ignore"):  # as in _gelu_tanh: x^3 overflows, -inf gives NaN
        inner = d * d
        inner *= _GELU_KAPPA
        inner += 1
        inner *= d
        inner *= _GELU_BETA
        np.tanh(inner, out=inner)
        inner += 1
        out = d * 0.5
        out *= inner
    return out


def _gelu_tanh_vjp(g, y, args, saved, needs, xp):
    # torch's formula term for term: 0.5 (1 + th) + 0.5 x (1 - th^2) beta (1 + 3 kappa x^2)
    x = args[0]
    if xp.differentiable:
        th = ops.tanh((x + x * x * x * _GELU_KAPPA) * _GELU_BETA)
        return (g * (0.5 * (1 + th) + 0.5 * x * (1 - th * th) * (_GELU_BETA * (1 + 3 * _GELU_KAPPA * x * x))),)
    th = saved
    w = x.astype(th.dtype, copy=False).reshape(th.shape)  # 0-d input: saved as 1-d
    with np.errstate(over="ignore", invalid="ignore"):
        inner = w * w
        inner *= 3 * _GELU_KAPPA
        inner += 1
        inner *= _GELU_BETA
        right = th * th
        np.subtract(1, right, out=right)
        right *= w
        right *= 0.5
        right *= inner
        left = th + 1
        left *= 0.5
        right += left
        right *= g
    return (right.astype(g.dtype, copy=False).reshape(g.shape),)


_SQRT1_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327
# Numerical Recipes' erfc (Chebyshev): fractional error < 1.2e-7 for every z.
_ERFC_COEFFS = (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196,
                1.00002368, -1.26551223)  # fmt: skip


def _erfc(z: np.ndarray) -> np.ndarray:
    """erfc of a float32 array, in place on temporaries and without a select: ``where`` on a mask
    of random signs costs NumPy a mispredicted branch per element (it took most of GELU's time)."""
    a = np.abs(z)
    t = np.multiply(a, np.float32(0.5))
    t += np.float32(1.0)
    np.divide(np.float32(1.0), t, out=t)
    poly = np.multiply(t, np.float32(_ERFC_COEFFS[0]))
    poly += np.float32(_ERFC_COEFFS[1])
    for c in _ERFC_COEFFS[2:]:
        poly *= t
        poly += np.float32(c)
    with np.errstate(over="ignore"):  # |z| > 1.8e19: a^2 = inf, e^-inf = 0, the limit
        a *= a
    poly -= a
    np.exp(poly, out=poly)
    poly *= t  # erfc(|z|)
    # erfc(z) = 2 - erfc(|z|) for z < 0: 2 neg + (1 - 2 neg) erfc(|z|) with neg in {0, 1} is exact
    # up to that one subtraction's rounding
    neg = (z < 0).astype(poly.dtype)
    poly *= 1 - 2 * neg
    neg *= 2
    poly += neg
    return poly


def _gelu_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    if xp.differentiable:
        cdf = 0.5 * (1.0 + ops.erf(x * _SQRT1_2))
        return (g * (cdf + x * (ops.exp(x * x * -0.5) * _INV_SQRT_2PI)),)
    x = x.astype(saved.dtype, copy=False).reshape(saved.shape)  # float16 in float32, 0-d as 1-d: as the forward
    from . import _jit

    if g.dtype == saved.dtype and _jit.kernels(g, x, saved) is not None:  # the forward's compiled path, one pass
        from ._jit_activation_kernels import gelu_erf_backward

        flat_g = np.ascontiguousarray(g).reshape(-1)  # host: the compiled path takes host arrays only
        flat_x = np.ascontiguousarray(x).reshape(-1)  # host: as flat_g
        return (gelu_erf_backward(flat_g, flat_x, saved.reshape(-1)).reshape(g.shape),)
    with np.errstate(over="ignore", invalid="ignore"):  # x^2 = inf -> pdf 0; at x = inf, 0 * inf: NaN as torch
        pdf = x * x
        pdf *= np.float32(-0.5)
        np.exp(pdf, out=pdf)
        pdf *= np.float32(_INV_SQRT_2PI)
        pdf *= x
        pdf += saved  # d/dx x Phi(x) = Phi(x) + x phi(x)
        pdf *= g.reshape(pdf.shape)  # the compiled forward saves Phi flat (float16 gradients come here)
    return (pdf.astype(g.dtype, copy=False).reshape(g.shape),)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + e^-x), without overflow."""
    x = input  # torch's parameter name (F.sigmoid(input=...))
    return ops.sigmoid(x)


def tanh(input: Tensor) -> Tensor:
    x = input  # torch's parameter name (F.tanh(input=...))
    return ops.tanh(x)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim`` (stable); ``dtype`` casts the input first, as in PyTorch.

    Pass ``dim``. Left out (None), it is torch's deprecated implicit choice, with torch's warning:
    dim 0 for 0-, 1- and 3-d input, else dim 1 (for (N, C) input that is the class dim)."""
    x = input  # torch's parameter name (F.softmax(input=...))
    x = _cast(x, dtype)
    return ops.softmax(x, _implicit_dim("softmax", dim, x.ndim, _stacklevel))


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """x - logsumexp(x) along ``dim`` (stable); ``dtype`` casts the input first; ``dim=None`` as in
    :func:`softmax`."""
    x = input  # torch's parameter name (F.log_softmax(input=...))
    x = _cast(x, dtype)
    return ops.log_softmax(x, _implicit_dim("log_softmax", dim, x.ndim, _stacklevel))


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """softmax(-x) along ``dim``; ``dim=None`` as in :func:`softmax`."""
    x = input  # torch's parameter name (F.softmin(input=...))
    x = _cast(x, dtype)
    return ops.softmax(-x, _implicit_dim("softmin", dim, x.ndim, _stacklevel))


def _implicit_dim(name: str, dim: int | None, ndim: int, stacklevel: int) -> int:
    """``dim``, or for None torch's implicit (deprecated) choice, with its warning: never "all elements"."""
    if dim is not None:
        return dim
    import warnings

    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an argument.",
        UserWarning,
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _cast(x: Tensor, dtype: Any) -> Tensor:
    x = _as_tensor(x, "softmax")
    return x if dtype is None else x.to(dtype)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta; linear where beta x > threshold."""
    return ops.softplus(input, beta, threshold)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (also called swish); ``inplace=True`` writes it into ``input``, as PyTorch.

    One op with torch's formulas: x / (1 + e^-x) (-0.0 below x = -88.7 in float32, NaN at -inf, as
    torch) and the gradient sigmoid(x) (1 + x (1 - sigmoid(x))); float16 is computed in float32.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> [round(v, 4) for v in F.silu(ds.tensor([-1.0, 0.0, 2.0])).tolist()]
        [-0.2689, 0.0, 1.7616]
    """
    x = _as_tensor(input, "silu")  # torch's parameter name (F.silu(input=...))
    if inplace:
        return _write_into(x, "silu", silu)
    d = x.array
    if d.dtype.kind != "f":
        return x * ops.sigmoid(x)
    w = d.astype(np.float32) if d.dtype == np.float16 else d
    w = w.reshape(w.shape or (1,))  # 0-d as 1-d: the in-place steps need arrays, not NumPy scalars
    xp = namespace_of(w)
    with np.errstate(over="ignore", invalid="ignore"):  # e^-x = inf: the limit; -inf / inf: NaN, as torch
        den = xp.negative(w)
        xp.exp(den, out=den)
        den += 1
        out = w / den
    return record_op(out.astype(d.dtype, copy=False).reshape(d.shape), (x,), _silu_vjp, den)


def _silu_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    if xp.differentiable:
        s = xp.sigmoid(x)
        return (g * (s * (1 + x * (1 - s))),)
    w = x.astype(saved.dtype, copy=False)
    with np.errstate(invalid="ignore"):  # +-inf * 0: NaN, as torch's gradient there
        s = 1 / saved  # sigmoid(x), from the forward's 1 + e^-x
        out = 1 - s
        out *= w
        out += 1
        out *= s
        out *= g
    return (out.astype(g.dtype, copy=False).reshape(g.shape),)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6); the gradient is 0 at 0 and 6 (see :func:`hardtanh`)."""
    x = input  # torch's parameter name (F.relu6(input=...))
    return hardtanh(x, 0.0, 6.0, inplace)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clamped into [min_val, max_val].

    Unlike ``clamp`` (whose gradient is 1 on the bounds), the gradient is 0 at ``min_val`` and
    ``max_val`` themselves: torch's hardtanh passes it only strictly inside (and at NaN).
    """
    x = input  # torch's parameter name (F.hardtanh(input=...))
    if inplace:
        return _write_into(x, "hardtanh", lambda t: ops.pointwise.hardtanh(t, min_val, max_val))
    return ops.pointwise.hardtanh(_as_tensor(x, "hardtanh"), min_val, max_val)


_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalizing constants (alpha 1.6733, scale 1.0507)."""
    x = input  # torch's parameter name (F.selu(input=...))
    if inplace:
        return _write_into(x, "selu", selu)
    return _elu_op(x, _SELU_ALPHA, _SELU_SCALE, 1.0, "selu")


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha (e^(x/alpha) - 1) otherwise."""
    x = input  # torch's parameter name (F.celu(input=...))
    if alpha == 0:  # e^(x / 0): torch refuses it too
        raise InvalidValueError("celu: alpha cannot be 0 (it divides the input)")
    if inplace:
        return _write_into(x, "celu", lambda t: _elu_op(t, alpha, 1.0, 1.0 / alpha, "celu"))
    return _elu_op(x, alpha, 1.0, 1.0 / alpha, "celu")


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = min(x, 0) - log1p(e^-|x|), without overflow (torch's formula), as one op.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> [round(v, 4) for v in F.logsigmoid(ds.tensor([-100.0, 0.0, 2.0])).tolist()]
        [-100.0, -0.6931, -0.1269]
    """
    x = _as_tensor(input, "logsigmoid")
    d = x.array
    if d.dtype.kind != "f":
        return -ops.softplus(-x)
    w = d.astype(np.float32) if d.dtype == np.float16 else d
    w = w.reshape(w.shape or (1,))  # 0-d as 1-d: the in-place steps need arrays, not NumPy scalars
    xp = namespace_of(w)
    tail = xp.abs(w)
    xp.negative(tail, out=tail)
    xp.exp(tail, out=tail)  # e^-|x| in [0, 1]: log1p is fast and exact there
    out = xp.log1p(tail)
    xp.subtract(xp.clip(w, -np.inf, 0), out, out=out)
    return record_op(out.astype(d.dtype, copy=False).reshape(d.shape), (x,), _logsigmoid_vjp, tail)


def _logsigmoid_vjp(g, y, args, saved, needs, xp):
    # sigmoid(-x) = e^min(-x, 0) / (1 + e^-|x|): relative precision on both sides, no select
    x = args[0]
    if xp.differentiable:
        return (g * xp.sigmoid(-x),)
    w = x.astype(saved.dtype, copy=False).reshape(saved.shape)
    m = namespace_of(w)
    out = m.negative(w)
    m.clip(out, -np.inf, 0, out=out)
    m.exp(out, out=out)
    out /= saved + 1
    out *= g
    return (out.astype(g.dtype, copy=False).reshape(g.shape),)


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    x = input  # torch's parameter name (F.softsign(input=...))
    return x / (ops.abs(x) + 1.0)


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x)."""
    x = input  # torch's parameter name (F.tanhshrink(input=...))
    return x - ops.tanh(x)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x)), as one op with torch's gradient tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2)
    (softplus(x) = max(x, 0) + log1p(e^-|x|); float16 computed in float32).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> [round(v, 4) for v in F.mish(ds.tensor([-1.0, 0.0, 2.0])).tolist()]
        [-0.3034, 0.0, 1.944]
    """
    x = _as_tensor(input, "mish")  # torch's parameter name (F.mish(input=...))
    if inplace:
        return _write_into(x, "mish", mish)
    d = x.array
    if d.dtype.kind != "f":
        return x * ops.tanh(ops.softplus(x))
    w = d.astype(np.float32) if d.dtype == np.float16 else d
    w = w.reshape(w.shape or (1,))  # 0-d as 1-d: the in-place steps need arrays, not NumPy scalars
    xp = namespace_of(w)
    th = xp.abs(w)
    xp.negative(th, out=th)
    xp.exp(th, out=th)
    xp.log1p(th, out=th)
    th += xp.clip(w, 0, np.inf)  # softplus(x)
    xp.tanh(th, out=th)
    with np.errstate(invalid="ignore"):  # -inf * tanh(0): NaN, as torch's
        out = w * th
    return record_op(out.astype(d.dtype, copy=False).reshape(d.shape), (x,), _mish_vjp, th)


def _mish_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    if xp.differentiable:
        th = ops.tanh(ops.softplus(x))
        return (g * (th + x * xp.sigmoid(x) * (1 - th * th)),)
    w = x.astype(saved.dtype, copy=False).reshape(saved.shape)
    m = namespace_of(w)
    with np.errstate(over="ignore", invalid="ignore"):  # e^-x = inf: sigmoid 0; inf * 0 at +-inf: NaN, as torch
        s = m.negative(w)
        m.exp(s, out=s)
        s += 1
        m.divide(1, s, out=s)  # sigmoid(x), torch's 1 / (1 + e^-x)
        s *= w
        out = saved * saved
        m.subtract(1, out, out=out)
        out *= s
        out += saved
        out *= g
    return (out.astype(g.dtype, copy=False).reshape(g.shape),)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """clamp(x + 3, 0, 6) / 6: a piecewise-linear sigmoid; its gradient is 1/6 strictly inside
    (-3, 3) and 0 elsewhere, at -3 and 3 and at NaN too (torch's rule). Host float32/float64 arrays
    (from 4096 elements) take one compiled pass forward and one backward
    (``_jit_hard_kernels``: torch's formulas, its values bit for bit but float64's gradient, g times
    1/6 in float64 where torch multiplies by float32's 1/6)."""
    x = input  # torch's parameter name (F.hardsigmoid(input=...))
    x = _as_tensor(x, "hardsigmoid")
    if inplace:
        return _write_into(x, "hardsigmoid", hardsigmoid)
    a = x.array
    kernels = _hard_kernels(a)
    if kernels is not None:  # host float32/float64: one compiled pass, torch's formula
        flat = np.ascontiguousarray(a).reshape(-1)  # host: the compiled path takes host arrays only
        out = np.empty_like(flat)  # host: as flat
        kernels.hardsigmoid(flat, out)
        return record_op(out.reshape(a.shape), (x,), _hardsigmoid_vjp)
    inside = (a > -3.0) & (a < 3.0)
    values = ops.where(inside, x + 3.0, (a + 3.0).clip(0.0, 6.0)) / 6.0  # an array keeps float16
    if not x.requires_grad or not is_grad_enabled():
        return values
    return record_op(values.array, (x,), _hardsigmoid_vjp)


def _hardsigmoid_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    if xp.differentiable:
        a = xp.data(x)
        # linked to x: a zero second derivative, but x stays in the graph (torch's rule reads x)
        return (_link_input(xp.where((a > -3.0) & (a < 3.0), g / 6.0, 0.0), x),)
    return (_hard_backward("hardsigmoid_backward", g, x),)


# Below this many elements these two run on NumPy (numba's import and the cache load cost a process
# some 0.5 s once), even when a larger call has loaded the kernels: the path a call takes depends on
# the call alone, never on what ran earlier in the process (see ``nn._jit.kernels_at``)
_HARD_JIT_MIN_SIZE = 4096


def _hard_kernels(a: Any) -> Any:
    """The compiled hardswish/hardsigmoid kernels for the host float32/float64 array ``a``, else None."""
    if type(a) is not np.ndarray or a.dtype not in (np.float32, np.float64) or a.size == 0:
        return None
    from .. import jit_gate

    name = "downslope.nn._jit_hard_kernels"
    if a.size < _HARD_JIT_MIN_SIZE:
        return None
    return jit_gate.kernels(name, a)


def _hard_backward(kernel: str, g: Any, x: Any) -> Any:
    """The gradient of hardswish or hardsigmoid by its compiled kernel where it applies (g and x host
    arrays of one dtype), else by NumPy steps."""
    if type(g) is np.ndarray and type(x) is np.ndarray and g.dtype == x.dtype and g.shape == x.shape:
        kernels = _hard_kernels(x)
        if kernels is not None:
            flat_g = np.ascontiguousarray(g).reshape(-1)  # host: the compiled path takes host arrays only
            flat_x = np.ascontiguousarray(x).reshape(-1)  # host: as flat_g
            out = np.empty_like(flat_x)  # host: as flat_g
            getattr(kernels, kernel)(flat_g, flat_x, out)
            return out.reshape(g.shape)
    m = namespace_of(x)
    if kernel == "hardsigmoid_backward":
        return m.where((x > -3.0) & (x < 3.0), g * (1.0 / 6.0), 0.0).astype(g.dtype, copy=False)
    return None


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * clamp(x + 3, 0, 6) / 6, one op: the product rule at the kinks would give -1/2 at -3 and
    3/2 at 3, torch's gradient is 0 for x <= -3, x / 3 + 1/2 in between and 1 from 3 on (NaN and
    inf included), so the rule is written out. Host float32/float64 arrays (from 4096 elements) take
    one compiled pass forward and one backward (``_jit_hard_kernels``: torch's formulas, its values
    bit for bit)."""
    x = input  # torch's parameter name (F.hardswish(input=...))
    x = _as_tensor(x, "hardswish")
    if inplace:
        return _write_into(x, "hardswish", hardswish)
    a = x.array
    kernels = _hard_kernels(a)
    if kernels is not None:  # host float32/float64: one compiled pass, torch's formula
        flat = np.ascontiguousarray(a).reshape(-1)  # host: the compiled path takes host arrays only
        out = np.empty_like(flat)  # host: as flat
        kernels.hardswish(flat, out)
        return record_op(out.reshape(a.shape), (x,), _hardswish_vjp)
    xp = namespace_of(a)
    # float16 in float32, rounded once, as torch's kernel: x * 6 overflows float16 from x = 10923 on
    wide = a.astype(np.float32) if a.dtype == np.float16 else a
    with np.errstate(invalid="ignore"):  # -inf * 0: NaN, as torch's, silently
        out = wide * xp.clip(wide + 3.0, 0.0, 6.0) / 6.0
    return record_op(out.astype(a.dtype, copy=False), (x,), _hardswish_vjp)


def _hardswish_vjp(g, y, args, saved, needs, xp):
    x = args[0]
    a = xp.data(x)
    if xp.differentiable:
        return (xp.where(a <= -3.0, 0.0, xp.where(a < 3.0, g * (x / 3.0 + 0.5), g)),)
    compiled = _hard_backward("hardswish_backward", g, a)
    if compiled is not None:
        return (compiled,)
    # Without a select (``where`` on random data costs NumPy a mispredicted branch per element):
    # x clamped into [-3, 3] with NaN sent to 3 (fmin/fmax drop NaN), then the slope x / 3 + 1/2
    # strictly inside, 0 at -3 and 1 at 3
    m = namespace_of(a)
    c = m.fmin(a.reshape(a.shape or (1,)), 3.0)  # 0-d as 1-d: fmax(out=) needs an array
    m.fmax(c, -3.0, out=c)
    inside = (c > -3.0) & (c < 3.0)
    out = c / 3.0
    out += 0.5
    out *= inside
    out += c >= 3.0
    out *= g
    return (out.reshape(g.shape),)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else ``value``."""
    x = input  # torch's parameter name (F.threshold(input=...))
    if inplace:
        return _write_into(x, "threshold", lambda t: ops.pointwise.threshold(t, threshold, value))
    return ops.pointwise.threshold(_as_tensor(x, "threshold"), threshold, value)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    return ops.pointwise.softshrink(_as_tensor(input, "softshrink"), lambd)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, 0 elsewhere."""
    return ops.pointwise.hardshrink(_as_tensor(input, "hardshrink"), lambd)


hardshrink = _with_out(hardshrink)  # torch's F.hardshrink is torch.hardshrink, which takes out=


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10, dim: int = -1) -> Tensor:
    """A differentiable sample from the categorical distribution of ``logits``: softmax((logits + g) / tau)
    with Gumbel noise g; ``hard=True`` returns the one-hot argmax whose gradient is the soft sample's
    (straight-through estimator).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> y = F.gumbel_softmax(ds.zeros(2, 3), hard=True)
        >>> y.sum(-1).tolist()
        [1.0, 1.0]
    """
    logits = _as_tensor(logits, "gumbel_softmax")
    gumbels = -np.log(backend.rng().exponential(1.0, logits.shape)).astype(logits.array.dtype)
    soft = ops.softmax((logits + gumbels) / tau, dim)
    if not hard:
        return soft
    winner = np.argmax(soft.array, axis=dim)
    one_hot_ = np.zeros_like(soft.array)
    np.put_along_axis(one_hot_, np.expand_dims(winner, dim), 1.0, axis=dim)
    return soft + (one_hot_ - soft.array)  # the values of the one-hot, the gradient of the soft sample


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm distances between all pairs of rows of (N, M) ``x``: the upper triangle, row by row.

    On host arrays the Euclidean distances come from the Gram matrix (close pairs from their
    differences), p = 1 and inf from numba's kernels (``ops.distances``, where numba is installed and
    the values are finite), the other norms from the differences a block of rows at a time, each with
    its own backward: no (N * (N - 1) / 2, M) array of differences is ever held.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.pdist(ds.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])).tolist()
        [5.0, 1.0, 4.242640495300293]
    """
    x = _as_tensor(input, "pdist")
    if x.ndim != 2:
        raise ArgumentError(f"pdist: expected a 2-D (N, M) input, got shape {tuple(x.shape)}")
    if not backend.is_floating(x.array.dtype):
        raise ArgumentTypeError(f"pdist: expected a floating-point input, got {x.dtype}")
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not p >= 0:
        raise ArgumentError(f"pdist: p must be a non-negative number (inf included), got {p!r}")
    p = float(p)  # host: the norm order, a Python number
    n, m = x.shape
    if m == 0:  # every distance is 0, whatever p (the norm op gives torch's zero gradient)
        i, j = np.triu_indices(n, 1)
        return ops.vector_norm(x[i] - x[j], 1, 1)
    a = x.array
    if a.dtype == np.float16 and not is_host(a):  # in float32, rounded once, as the host path below
        return ops.astype(pdist(ops.astype(x, np.float32), p), np.float16)
    if not is_host(a):  # a device's arrays: the pairs' differences as ops (no host loops over blocks)
        i, j = np.triu_indices(n, 1)
        d = x[i] - x[j]
        if p in (0.0, np.inf):
            return _pdist_count_or_max(d, p == 0)
        return ops.vector_norm(d, p, 1)
    # the Gram matrix centres the rows on their mean, which one NaN or inf row would make NaN for every pair:
    # non-finite rows take the differences, as torch, whose pairs without them keep their distances
    finite = bool(np.isfinite(a).all())  # host: the device inputs returned above
    gram = p == 2 and a.dtype in (np.float32, np.float64) and n > 1 and finite
    compiled = None if gram else _distance.pdist_forward(a, p)  # numba's kernels for p = 1 and inf
    if compiled is not None:
        return record_op(compiled[0], (x,), _pdist_rule, (p, None, compiled[1]))
    if a.dtype == np.float16:  # in float32, rounded once, as torch's kernel: 300**2 overflows float16
        return record_op(_pdist_blocks(a.astype(np.float32), p).astype(np.float16), (x,), _pdist_rule, (p, None, None))
    out, close = _pdist_gram(a) if gram else (_pdist_blocks(a, p), None)
    return record_op(out, (x,), _pdist_rule, (p, close, None))


# Row blocks of the pairwise kernels hold at most this many bytes of (rows, N, M) differences: small
# enough to stay in cache while the few passes over a block run (1 MiB ran 3-7x faster than 64 MiB on
# 512 x 64 inputs), large enough that the Python loop over blocks costs little.
_PDIST_BLOCK_BYTES = 1 << 20
# A Gram-matrix distance with |d|^2 below this fraction of |xi|^2 + |xj|^2 (rows centred) lost too many
# digits to cancellation: its pair is computed again from the difference, as torch computes all of them.
_PDIST_CLOSE = 0.125


def _pdist_rows(n: int, m: int, itemsize: int, start: int) -> int:
    """How many rows from ``start`` one block takes: their differences with the rows after them fit the budget."""
    return max(1, _PDIST_BLOCK_BYTES // max(1, (n - start) * m * itemsize))


def _pdist_flat(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """The position of pair (i, j), i < j, in pdist's output (the upper triangle row by row)."""
    return i * (2 * n - i - 1) // 2 + (j - i - 1)


def _pdist_blocks(a: np.ndarray, p: float) -> np.ndarray:
    """pdist computed from the differences, a block of rows at a time (against the rows after them)."""
    n, m = a.shape
    out = np.empty(n * (n - 1) // 2, dtype=a.dtype)  # host: the host kernel (device inputs take the ops path)
    start = pos = 0
    while start < n - 1:
        stop = min(n - 1, start + _pdist_rows(n, m, a.itemsize, start))
        dist = _distance.difference_norms(a[start:stop, None, :] - a[None, start + 1 :, :], p)
        keep = np.triu(np.ones(dist.shape, dtype=bool))  # host: host kernel; row start+k pairs with the rows after it
        block = dist[keep]
        out[pos : pos + block.size] = block
        pos += block.size
        start = stop
    return out


def _pdist_gram(a: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Euclidean pdist through the Gram matrix of the centred rows (|xi|^2 + |xj|^2 - 2 xi.xj, as
    torch's cdist with use_mm_for_euclid_dist), with the close pairs (and identical rows: exactly 0)
    computed from their differences. Returns the distances and the close pairs (rows i, rows j)."""
    n, m = a.shape
    # float32 rows in float64: what cancellation leaves is below float32's rounding (small integer rows
    # give exact distances, as torch's differences do), for one GEMM of N x N x M
    wide = a.astype(np.float64)
    c = wide - wide.mean(axis=0)  # distances do not move with the origin; centring keeps the squares small
    sq = np.einsum("ij,ij->i", c, c)
    out = np.empty(n * (n - 1) // 2, dtype=a.dtype)  # host: the host kernel (device inputs take the ops path)
    close_i, close_j = [], []
    start = pos = 0
    while start < n - 1:
        stop = min(n - 1, start + max(1, _PDIST_BLOCK_BYTES // max(1, (n - start) * c.itemsize * 4)))
        rows, cols = sq[start:stop, None], sq[None, start + 1 :]
        d2 = rows + cols - 2 * gemm.matmul(c[start:stop], c[start + 1 :].T)
        keep = np.triu(np.ones(d2.shape, dtype=bool))  # host: the host kernel (device inputs take the ops path)
        near = keep & (d2 <= _PDIST_CLOSE * (rows + cols))
        if near.any():  # usually none: nonzero costs more than the test
            ni, nj = np.nonzero(near)
            close_i.append(ni + start)
            close_j.append(nj + start + 1)
        block = np.sqrt(np.maximum(d2[keep], 0))
        out[pos : pos + block.size] = block
        pos += block.size
        start = stop
    ci = np.concatenate(close_i) if close_i else np.zeros(0, dtype=np.intp)  # host: host kernel
    cj = np.concatenate(close_j) if close_j else np.zeros(0, dtype=np.intp)  # host: host kernel
    chunk = max(1, _PDIST_BLOCK_BYTES // (m * a.itemsize))
    for s in range(0, ci.size, chunk):
        i, j = ci[s : s + chunk], cj[s : s + chunk]
        out[_pdist_flat(i, j, n)] = _distance.difference_norms(a[i] - a[j], 2.0)
    return out, (ci, cj)


def _pdist_rule(g, y, args, saved, needs, xp):
    p, close, compiled = saved
    x = args[0]
    n, m = x.shape
    if compiled is not None and not xp.differentiable:
        return (_distance.pdist_backward(compiled, g, y),)
    if xp.differentiable:  # create_graph: the pairs' differences as recorded ops, differentiable again
        i, j = np.triu_indices(n, 1)
        w = xp.expand_dims(g, -1) * _distance.distance_factor(x[i] - x[j], y, p, xp)
        return (xp.scatter((n, m), i, True, w) - xp.scatter((n, m), j, True, w),)
    a = x
    if p == 0:
        return (np.zeros_like(a),)
    if close is not None:
        return (_pdist_gram_grad(g, y, a, close),)
    gx = np.zeros_like(a)
    start = pos = 0
    while start < n - 1:
        stop = min(n - 1, start + _pdist_rows(n, m, a.itemsize, start))
        d = a[start:stop, None, :] - a[None, start + 1 :, :]
        keep = np.triu(np.ones(d.shape[:2], dtype=bool))  # host: the host kernel (device inputs take the ops path)
        size = int(keep.sum())
        gb = np.zeros(d.shape[:2], dtype=a.dtype)  # host: the host kernel (device inputs take the ops path)
        yb = np.zeros(d.shape[:2], dtype=a.dtype)  # host: the host kernel (device inputs take the ops path)
        gb[keep], yb[keep] = g[pos : pos + size], y[pos : pos + size]
        factor = _distance.distance_factor(d, yb, p, xp)
        # the pairs below the diagonal (a row with itself: inf - inf) add nothing
        if not np.isfinite(factor).all():  # host: the host kernel (device inputs take the ops path)
            factor = np.where(keep[..., None], factor, 0)  # host: the host kernel
        # each pair's g times its factor, summed over the pairs of a row: contractions, no (rows, N, M) product
        gx[start:stop] += np.einsum("bl,blm->bm", gb, factor)
        gx[start + 1 :] -= np.einsum("bl,blm->lm", gb, factor)
        pos += size
        start = stop
    return (gx,)


_pdist_rule.reads_output = True  # type: ignore[attr-defined]


def _pdist_gram_grad(g: np.ndarray, y: np.ndarray, a: np.ndarray, close: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The Euclidean gradient sum_j g_ij (xi - xj) / d_ij through one (N, N) product; the close pairs
    (whose difference the product would lose to cancellation) from their differences."""
    n = a.shape[0]
    ci, cj = close
    positive = y > 0
    coef = np.where(positive, g / np.where(positive, y, 1), 0).astype(a.dtype, copy=False)
    upper = np.zeros((n, n), dtype=a.dtype)  # host: the host kernel (device inputs take the ops path)
    upper[np.triu(np.ones((n, n), dtype=bool), 1)] = coef  # host: the host kernel (device inputs take the ops path)
    flat = _pdist_flat(ci, cj, n)
    upper[ci, cj] = 0
    c = a - a.mean(axis=0)
    # the symmetric coefficients U + U^T applied as two products (no transposed copy of U)
    gx = (upper.sum(axis=1) + upper.sum(axis=0))[:, None] * c
    gx -= gemm.matmul(upper, c)
    gx -= gemm.matmul(upper.T, c)
    chunk = max(1, _PDIST_BLOCK_BYTES // (a.shape[1] * a.itemsize))
    for s in range(0, ci.size, chunk):
        i, j, k = ci[s : s + chunk], cj[s : s + chunk], flat[s : s + chunk]
        w = coef[k][:, None] * (a[i] - a[j])
        np.add.at(gx, i, w)
        np.subtract.at(gx, j, w)
    return gx


def _pdist_count_or_max(d: Tensor, count: bool) -> Tensor:
    """The number of nonzeros (p = 0) or the largest |d| (p = inf) per row, with torch's pdist
    gradients: a zero one for the count (not none), and for the max the whole gradient to each tied
    element (the inf-norm shares it among them)."""
    a = d.array
    mag = namespace_of(a).abs(a)
    xp = namespace_of(a)
    # the count is torch's min(ceil(|d|), 1) summed: a NaN difference makes it NaN (mag != 0 counts it 1)
    out = xp.minimum(xp.ceil(mag), 1).sum(axis=1) if count else mag.max(axis=1)
    return record_op(out, (d,), _pdist_vjp, count)


def _pdist_vjp(g, y, args, saved, needs, xp):
    a = xp.data(args[0])
    if saved:  # the count: a zero gradient, not none
        return (xp.expand_dims(g, 1) * namespace_of(a).zeros_like(a),)
    # the max: torch's formula, the sign at each tie, NaN at a NaN (or inf - inf) difference
    return (xp.expand_dims(g, 1) * _distance.max_factor(args[0], xp.expand_dims(y, 1), xp),)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: split ``dim`` into halves a, b and return a * sigmoid(b).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.glu(ds.tensor([[2.0, 0.0]])).tolist()
        [[1.0]]
    """
    x = input  # torch's parameter name (F.glu(input=...))
    x = _as_tensor(x, "glu")
    if x.ndim == 0:
        raise ArgumentError(f"glu: a 0-d tensor has no dim to halve (shape {tuple(x.shape)})")
    axis = _dim(dim, x.ndim, "glu")
    if x.shape[axis] % 2:
        raise InvalidValueError(f"glu: dim {dim} must have an even size, got shape {tuple(x.shape)}")
    half = x.shape[axis] // 2
    lead = (slice(None),) * axis
    return x[lead + (slice(0, half),)] * ops.sigmoid(x[lead + (slice(half, None),)])


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x for x > 0, weight * x otherwise; ``weight`` has one slope or one per channel (dim 1)."""
    x = _as_tensor(input, "prelu")
    w = weight
    if x.array.dtype != w.array.dtype:  # torch refuses any mix; NumPy would promote (or take an integer input)
        raise DTypeError(
            f"prelu: input dtype {x.array.dtype} differs from weight dtype {w.array.dtype}; cast the input "
            "(x.to(weight.dtype)) or the module (model.to(x.dtype))"
        )
    if w.numel() > 1:
        if x.ndim < 2 or x.shape[1] != w.numel():
            raise InvalidValueError(
                f"prelu: {w.numel()} slopes do not match the channel dim of input shape {tuple(x.shape)}"
            )
        w = ops.reshape(w, (w.numel(),) + (1,) * (x.ndim - 2))
    positive = x.array > 0
    # the product sees 0 where x > 0: its weight gradient would be the zeroed gradient times x, and
    # 0 * inf is NaN at x = +inf (torch: finite)
    values = ops.where(positive, x, ops.where(positive, 0.0, x) * w)
    if not (x.requires_grad or w.requires_grad) or not is_grad_enabled():
        return values
    return record_op(values.array, (x, w), _prelu_vjp, positive)


def _prelu_vjp(g, y, args, saved, needs, xp):
    # one rule (torch's node): under create_graph x's gradient keeps x in the graph (a zero second
    # derivative in x, as torch's), and w's reads x, the select's ops would keep neither
    x, w = args
    positive = saved
    gx = _link_input(xp.where(positive, g, g * w), x) if needs[0] else None
    gw = None
    if needs[1]:
        below = xp.where(positive, 0.0, x) if xp.differentiable else namespace_of(positive).where(positive, 0.0, x)
        gw = xp.sum_to(g * below, tuple(w.shape))
    return (gx, gw)


_prelu_vjp.reads_output = False  # type: ignore[attr-defined]


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Tensor | None = None) -> Tensor:
    """x / max(||x||_p, eps) along ``dim`` (unit vectors); any p of :func:`ops.vector_norm` (inf too).

    A zero row stays 0 with a finite gradient (1/eps), as in torch: the norm's own gradient is 0
    there.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.normalize(ds.tensor([[3.0, 4.0]])).tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """
    if out is not None:  # written into out with torch's checks (and, as there, not differentiable)
        from ..ops.out import with_out

        return with_out(normalize)(input, p, dim, eps, out=out)
    x = input  # torch's parameter name (F.normalize(input=...))
    x = _as_tensor(x, "normalize")
    return x / ops.clip(ops.vector_norm(x, p, dim, keepdim=True), eps, None)


def _clamp_min_passing(n: Tensor, eps: float) -> Tensor:
    """max(n, eps) whose gradient is n's everywhere: torch's cosine_similarity clamps its norms in
    place outside the graph, so the gradient flows through the norm even where it was below eps."""
    xp = namespace_of(n.array)
    return record_op(xp.maximum(n.array, scalar(eps, n.array.dtype)), (n,), _pass_vjp)


def _pass_vjp(g, y, args, saved, needs, xp):
    return (g,)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between x1 and x2 along ``dim``, torch's formula:
    sum((x1 / max(|x1|, eps)) * (x2 / max(|x2|, eps))), the clamp leaving the norms' gradient as is.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.cosine_similarity(ds.tensor([[1.0, 0.0]]), ds.tensor([[1.0, 1.0]])).tolist()
        [0.7071067690849304]
    """
    x1 = _as_tensor(x1, "cosine_similarity")
    x2 = _as_tensor(x2, "cosine_similarity")
    if not (backend.is_floating(x1.array.dtype) or backend.is_floating(x2.array.dtype)):
        raise ArgumentTypeError(f"cosine_similarity: expected a floating-point input, got {x1.dtype} and {x2.dtype}")
    if x1.array.dtype != x2.array.dtype:  # in the promoted dtype, as torch (int8 with float16 is float16)
        common = np.promote_types(x1.array.dtype, x2.array.dtype)
        common = x1.array.dtype if x1.array.dtype.kind == "f" and x2.array.dtype.kind != "f" else common
        common = x2.array.dtype if x2.array.dtype.kind == "f" and x1.array.dtype.kind != "f" else common
        x1, x2 = ops.astype(x1, common), ops.astype(x2, common)
    if x1.shape != x2.shape:
        # torch broadcasts first: a norm over ``dim`` of an input that is then broadcast along
        # ``dim`` would be too small and the result could exceed 1
        try:
            shape = np.broadcast_shapes(x1.shape, x2.shape)  # host: shapes are Python tuples
        except ValueError:
            raise ShapeError(
                f"cosine_similarity: shapes {tuple(x1.shape)} and {tuple(x2.shape)} do not broadcast together"
            ) from None
        x1, x2 = ops.broadcast_to(x1, shape), ops.broadcast_to(x2, shape)
    n1 = _clamp_min_passing(ops.vector_norm(x1, 2, dim, keepdim=True), eps)
    n2 = _clamp_min_passing(ops.vector_norm(x2, 2, dim, keepdim=True), eps)
    return ops.sum((x1 / n1) * (x2 / n2), dim)


# torch's cosine_similarity is native (F's is torch.cosine_similarity): its parser takes axis= for dim=
cosine_similarity = _with_input(cosine_similarity)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dim; any p of :func:`ops.vector_norm` (inf, -inf, 0 too)."""
    return ops.vector_norm(x1 - x2 + eps, p, -1, keepdim=keepdim)


def pad(input: Tensor, pad: Any, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last dims: ``pad`` is (left, right[, top, bottom, ...]), last dim first. Modes:
    constant (``value``, default 0), reflect, replicate, circular.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.pad(ds.ones(1, 2), (1, 0)).tolist()
        [[0.0, 1.0, 1.0]]
    """
    if mode not in ("constant", "reflect", "replicate", "circular"):  # before the modes' rank checks
        raise InvalidValueError(f"pad: unknown mode {mode!r}; expected one of constant, reflect, replicate, circular")
    if mode != "constant" and type(input) is Tensor and type(input.array) is np.ndarray and value is None:
        fast = _pad_last_dim(input, pad, mode)
        if fast is not None:
            return fast
    if mode != "constant" and isinstance(input, Tensor):
        # torch's rule for the copying modes: k padded dims need (k + 1)- or (k + 2)-d input (batch dim
        # and channel dim are never padded)
        k = len(pad) // 2
        if not len(pad):  # torch: the copying modes pad at least one dim
            raise ShapeError(f"pad: {mode} padding needs at least one (left, right) pair, got an empty pad")
        if len(pad) % 2 == 0 and not (pad and isinstance(pad[0], (tuple, list))) and input.ndim not in (k + 1, k + 2):
            raise ShapeError(
                f"pad: {mode} padding of the last {k} dim(s) ({len(pad)} pads) expects a {k + 1}-d or {k + 2}-d "
                f"(batched) input, got shape {tuple(input.shape)}"
            )
    if mode == "constant" and isinstance(input, Tensor) and input.ndim == 0 and len(pad) == 0:
        return ops.clone(input)  # nothing to pad: a copy, as torch (NumPy's pad refuses a 0-d array)
    if mode == "constant" and value is not None and isinstance(input, Tensor):
        value = _pad_value(value, input.array.dtype)
    return ops.pad(input, pad, mode, 0.0 if value is None else value)


def _pad_value(value: Any, dtype: Any) -> Any:
    """``F.pad``'s fill value converted as torch converts it: the value is a float (torch's signature),
    and one past the dtype's range is refused ("value cannot be converted to type c10::Half without
    overflow") where NumPy would write inf into float16/float32 or wrap an integer. inf and NaN fill a
    floating tensor; into an integer dtype a float in range is truncated toward zero; bool takes any."""
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        value = value.item()  # host: a NumPy scalar is a number in torch
    if type(value) not in (int, float, bool) or dtype.kind not in "iuf" or dtype.itemsize == 8 and dtype.kind == "f":
        return value
    v = float(value)  # host: a Python number (one past float64's range raises OverflowError, as torch's)
    if dtype.kind == "f":
        largest = float(np.finfo(dtype).max)  # host: the dtype's limit, a Python number
        if math.isfinite(v) and abs(v) > largest:
            raise InvalidValueError(f"pad: value {value!r} cannot be converted to type {dtype} without overflow")
        return v
    info = np.iinfo(dtype)
    low, high = float(info.min), float(info.max)  # host: the dtype's limits, Python numbers
    if not low <= v <= high:  # NaN fails it too
        raise InvalidValueError(f"pad: value {value!r} cannot be converted to type {dtype} without overflow")
    # int64's largest is not a float64: 2**63 compares equal to it and wraps to the smallest, as torch's
    n = int(v)
    return n if n <= int(info.max) else int(info.min)


def _pad_last_dim(x: Tensor, pad: Any, mode: str) -> Tensor | None:
    """The copying modes' padding of the last dim only (``pad`` a (left, right) pair of non-negative
    ints) of a 2-d or 3-d host tensor, in one concatenate: what ops.pad gives (the same values and
    backward), without its general bookkeeping, which costs 20 times the copy at small sizes (a
    stencil padded at each step of a simulation). None where it does not apply, or where ops.pad's
    checks would refuse the pad (its error is raised there)."""
    if type(pad) not in (tuple, list) or len(pad) != 2 or x.ndim not in (2, 3):
        return None
    b, e = pad
    if type(b) is not int or type(e) is not int or b < 0 or e < 0:
        return None
    a = x.array
    n = a.shape[-1]
    if mode == "replicate" and n > 0:
        first, last = a[..., :1], a[..., n - 1 :]
        parts = [
            first if b == 1 else np.broadcast_to(first, a.shape[:-1] + (b,)),
            a,
            last if e == 1 else np.broadcast_to(last, a.shape[:-1] + (e,)),
        ]
    elif mode == "reflect" and b < n and e < n:  # about the end elements, which are not repeated
        parts = [a[..., b:0:-1], a, a[..., n - 2 : n - 2 - e : -1] if n - 2 - e >= 0 else a[..., n - 2 :: -1]]
    elif mode == "circular" and b <= n and e <= n:
        parts = [a[..., n - b :], a, a[..., :e]]
    else:
        return None
    out = np.concatenate(parts, axis=-1)
    widths = [(0, 0)] * (x.ndim - 1) + [(b, e)]
    return record_op(out, (x,), copy_pad_vjp, (widths, mode))


# ---------------------------------------------------------------------- channel dropout
def _feature_dropout(x: Tensor, p: float, training: bool, batched: bool, where: str) -> Tensor:
    # One draw per channel (and sample), broadcast over the spatial dims: whole feature maps are
    # zeroed, as adjacent pixels are too correlated for element-wise dropout to regularize.
    _check_probability(p, where)
    if not training or p == 0:
        return x
    lead = 2 if batched else 1
    if p != 1 and x.ndim + 2 - lead < 2:  # torch's check, made only where it draws the mask (p = 1 zeroes)
        raise ShapeError(
            f"{where}: feature dropout requires at least 2 dimensions in the input (batched), got shape {tuple(x.shape)}"
        )
    mask_shape = x.shape[:lead] + (1,) * (x.ndim - lead)
    dtype = x.array.dtype if backend.is_floating(x.array.dtype) else backend.get_default_dtype()
    if p == 1:
        scale = namespace_of(x.array).zeros(mask_shape, dtype=dtype)
    else:
        keep = backend.random_like(mask_shape, x.array) >= np.float32(p)
        scale = keep * scalar(1.0 / (1.0 - p), dtype)
    return record_op(x.array * scale, (x,), _dropout_vjp, scale)


def _channel_dims(x: Tensor, spatial: int, where: str) -> bool:
    if x.ndim not in (spatial + 1, spatial + 2):  # a ShapeError is torch's RuntimeError too
        raise ShapeError(
            f"{where}: expected a {spatial + 1}-D (C, ...) or {spatial + 2}-D (N, C, ...) input, got shape {tuple(x.shape)}"
        )
    return x.ndim == spatial + 2


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) input with probability ``p``; scale the rest by 1/(1-p).

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> y = F.dropout1d(ds.ones(1, 4, 3), 0.5)
        >>> sorted({tuple(row) for row in y[0].tolist()} - {(0.0, 0.0, 0.0), (2.0, 2.0, 2.0)})
        []
    """
    x = input  # torch's parameter name (F.dropout1d(input=...))
    x = _as_tensor(x, "dropout1d")
    if inplace and training and p != 0:
        return _write_into(x, "dropout1d", lambda t: dropout1d(t, p, training))
    return _feature_dropout(x, p, training, _channel_dims(x, 1, "dropout1d"), "dropout1d")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) input with probability ``p``; scale the rest by 1/(1-p).

    Other ranks run as PyTorch runs them, with its warnings: dims 0 and 1 are always read as (N, C),
    so a 3-D input is (N, C, L) and a 2-D (N, C) input drops single elements (an LSTM's output
    through Dropout2d, as pytorch/examples' mnist_rnn does).

    Example:
        >>> import warnings
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     y = F.dropout2d(ds.ones(4, 6), 0.5)
        >>> sorted(set(y.flatten().tolist()) - {0.0, 2.0})
        []
    """
    x = input  # torch's parameter name (F.dropout2d(input=...))
    x = _as_tensor(x, "dropout2d")
    if x.ndim not in (3, 4):
        import warnings

        warnings.warn(
            f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is deprecated and will result in an "
            "error in a future release. To retain the behavior and silence this warning, please use dropout "
            "instead. Note that dropout2d exists to provide channel-wise dropout on inputs with 2 spatial "
            "dimensions, a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs).",
            stacklevel=2,
        )
    if x.ndim == 3:
        import warnings

        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior is "
            "desired - input is interpreted as shape (N, C, L), where C is the channel dim. This behavior will "
            "change in a future release to interpret the input as one without a batch dimension, i.e. shape "
            "(C, H, W). To maintain the 1D channel-wise dropout behavior, please switch to using dropout1d "
            "instead.",
            stacklevel=2,
        )
    if inplace and training and p != 0:
        return _write_into(x, "dropout2d", lambda t: _feature_dropout(t, p, training, True, "dropout2d"))
    return _feature_dropout(x, p, training, True, "dropout2d")


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) input with probability ``p``.

    Another number of dims runs as PyTorch does, with its deprecation warning: the input is read
    as unbatched, one draw per entry of its first dim.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.dropout3d(ds.ones(2, 3, 2, 2, 2), 0.5, training=False).shape
        downslope.Size([2, 3, 2, 2, 2])
    """
    x = input  # torch's parameter name (F.dropout3d(input=...))
    x = _as_tensor(x, "dropout3d")
    if x.ndim not in (4, 5):
        import warnings

        warnings.warn(
            f"dropout3d: Received a {x.ndim}-D input to dropout3d, which is deprecated and will result in an "
            "error in a future release. To retain the behavior and silence this warning, please use dropout "
            "instead. Note that dropout3d exists to provide channel-wise dropout on inputs with 3 spatial "
            "dimensions, a channel dimension, and an optional batch dimension (i.e. 4D or 5D inputs).",
            stacklevel=2,
        )
    if inplace and training and p != 0:
        return _write_into(x, "dropout3d", lambda t: _feature_dropout(t, p, training, t.ndim == 5, "dropout3d"))
    return _feature_dropout(x, p, training, x.ndim == 5, "dropout3d")


# ---------------------------------------------------------------------- self-normalizing dropout and random slopes
_SELU_NEG_SATURATION = 1.7580993408473766  # scale * alpha of SELU: where dropped units are set


def _alpha_dropout(x: Tensor, p: float, training: bool, mask_shape: tuple[int, ...], where: str) -> Tensor:
    # Dropped units take SELU's negative saturation value and the result is rescaled (a x + b) so
    # that zero-mean, unit-variance inputs keep their mean and variance (PyTorch's formula).
    _check_probability(p, where)
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    keep = (backend.random_like(mask_shape, x.array) >= np.float32(p)).astype(x.array.dtype)
    a = 1.0 / np.sqrt((_SELU_NEG_SATURATION**2 * p + 1) * (1 - p))
    shift = (keep - 1.0) * (_SELU_NEG_SATURATION * a) + _SELU_NEG_SATURATION * a * p
    return x * (keep * a).astype(x.array.dtype) + shift.astype(x.array.dtype)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Dropout for SELU networks: dropped elements are set to SELU's saturation value and the output
    is rescaled to keep the mean and variance. Identity unless ``training``.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.alpha_dropout(ds.ones(3), 0.5, training=False)
        tensor([1., 1., 1.])
    """
    x = input  # torch's parameter name (F.alpha_dropout(input=...))
    x = _as_tensor(x, "alpha_dropout")
    if inplace and training and p != 0:
        return _write_into(x, "alpha_dropout", lambda t: alpha_dropout(t, p, training))
    return _alpha_dropout(x, p, training, x.shape, "alpha_dropout")


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """:func:`alpha_dropout` of whole channels of (N, C, ...) input."""
    x = input  # torch's parameter name (F.feature_alpha_dropout(input=...))
    x = _as_tensor(x, "feature_alpha_dropout")
    if inplace and training and p != 0:
        return _write_into(x, "feature_alpha_dropout", lambda t: feature_alpha_dropout(t, p, training))
    return _alpha_dropout(x, p, training, x.shape[:2] + (1,) * (x.ndim - 2), "feature_alpha_dropout")


def rrelu(
    input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False, inplace: bool = False
) -> Tensor:
    """Randomized leaky ReLU: negative inputs are scaled by a slope drawn from U(lower, upper) per
    element while training, by (lower + upper) / 2 otherwise.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.rrelu(ds.tensor([-3.0, 2.0]), 0.2, 0.4)
        tensor([-0.9,  2. ])
    """
    x = input  # torch's parameter name (F.rrelu(input=...))
    x = _as_tensor(x, "rrelu")
    if not 0 <= lower <= upper:
        raise ArgumentError(f"rrelu: expected 0 <= lower <= upper, got lower={lower}, upper={upper}")
    if inplace:
        return _write_into(x, "rrelu", lambda t: rrelu(t, lower, upper, training))
    if training:
        # lower + (upper - lower) * u is Generator.uniform's own formula: the same slopes on the host as before
        u = backend.random_like(x.shape, x.array, np.float64)
        slope = (lower + (upper - lower) * u).astype(x.array.dtype)
    else:
        slope = scalar((lower + upper) / 2, x.array.dtype)
    # at 0 the gradient is the slope, as torch's leaky_relu and rrelu (x > 0 takes the identity)
    positive = x.array > 0
    values = ops.where(positive, x, x * slope)
    if not x.requires_grad or not is_grad_enabled():
        return values
    return record_op(values.array, (x,), _rrelu_vjp, (positive, slope))


def _rrelu_vjp(g, y, args, saved, needs, xp):
    # one rule, torch's node: under create_graph x stays in the graph of its gradient (zero second
    # derivative), which the select's ops would drop
    positive, slope = saved
    return (_link_input(xp.where(positive, g, g * slope), args[0]),)


# x counts as read, as torch's leaky_relu and rrelu save it (an in-place write to it raises in backward)
_rrelu_vjp.reads_output = False  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- encodings
def one_hot(input: Any, num_classes: int = -1) -> Tensor:
    """int64 class indices of any shape -> int64 one-hot tensor with a new last dim (other integer dtypes
    are refused, as in torch).

    ``num_classes=-1`` uses ``max(indices) + 1`` (on a GPU that reads the maximum back to the host).
    Indices are range-checked on the host only: on a device an out-of-range index gives a row of zeros.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.one_hot(ds.tensor([0, 2]), 3)
        tensor([[1, 0, 0],
                [0, 0, 1]])
    """
    idx = array_of(input)  # input: the class indices, under torch's parameter name
    if idx.dtype != np.int64:  # torch takes int64 indices only (int32 and uint8 are refused too)
        raise DTypeError(
            f"one_hot is only applicable to index tensor of type LongTensor: expected int64 class indices, got "
            f"dtype {idx.dtype} (convert with .long())"
        )
    if num_classes == -1:
        # The output's size depends on the values: a device waits here (so does PyTorch's).
        n = int(to_host(idx.max())) + 1 if idx.size else 0  # host: the number of classes sizes the output
    else:
        n = int(num_classes)
    if is_host(idx) and idx.size and (idx.min() < 0 or idx.max() >= n):  # value checks: host arrays only
        bad = idx.min() if idx.min() < 0 else idx.max()
        raise InvalidValueError(f"one_hot: class index {bad} is out of range for num_classes={n}")
    return wrap_array((idx[..., None] == namespace_of(idx).arange(n)).astype(np.int64))


# Losses, normalization and embedding live beside their modules; re-exported here so that
# ``F.cross_entropy``, ``F.batch_norm`` etc. read as in PyTorch.
from .layers import (  # noqa: E402
    bilinear,
    channel_shuffle,
    embedding,
    embedding_bag,
    pixel_shuffle,
    pixel_unshuffle,
)
from .losses import (  # noqa: E402
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cosine_embedding_loss,
    cross_entropy,
    ctc_loss,
    gaussian_nll_loss,
    hinge_embedding_loss,
    huber_loss,
    kl_div,
    l1_loss,
    linear_cross_entropy,
    margin_ranking_loss,
    mse_loss,
    multi_margin_loss,
    multilabel_margin_loss,
    multilabel_soft_margin_loss,
    nll_loss,
    poisson_nll_loss,
    smooth_l1_loss,
    soft_margin_loss,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
)
from .normalization import batch_norm, group_norm, instance_norm, layer_norm, local_response_norm, rms_norm  # noqa: E402

__all__ += [
    "embedding", "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "huber_loss",
    "kl_div", "l1_loss", "mse_loss", "nll_loss", "smooth_l1_loss", "batch_norm", "layer_norm",
    "cosine_embedding_loss", "gaussian_nll_loss", "hinge_embedding_loss", "margin_ranking_loss",
    "ctc_loss", "multilabel_soft_margin_loss", "multi_margin_loss", "multilabel_margin_loss", "poisson_nll_loss", "soft_margin_loss", "triplet_margin_loss",
    "triplet_margin_with_distance_loss", "group_norm", "linear_cross_entropy",
    "instance_norm", "rms_norm", "embedding_bag", "local_response_norm", "bilinear", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
]  # fmt: skip

# Convolution and pooling live in convolution.py beside their modules.
from .conv_transpose import conv_transpose1d, conv_transpose2d  # noqa: E402
from .convolution import (  # noqa: E402
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    conv1d,
    conv2d,
    conv_tbc,
    max_pool1d,
    max_pool2d,
)
from .fold import fold, unfold  # noqa: E402
from .pooling_extra import (  # noqa: E402
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    lp_pool1d,
    lp_pool2d,
    lp_pool3d,
    max_unpool1d,
    max_unpool2d,
    max_unpool3d,
)
from .pooling_windows import (  # noqa: E402
    adaptive_max_pool1d_with_indices,
    adaptive_max_pool2d_with_indices,
    adaptive_max_pool3d,
    adaptive_max_pool3d_with_indices,
    fractional_max_pool2d,
    fractional_max_pool2d_with_indices,
    fractional_max_pool3d,
    fractional_max_pool3d_with_indices,
    max_pool3d_with_indices,
)
from .sampling import affine_grid, grid_sample  # noqa: E402
from .upsampling import interpolate, upsample, upsample_bilinear, upsample_nearest  # noqa: E402
from .volumetric import adaptive_avg_pool3d, avg_pool3d, conv3d, conv_transpose3d, max_pool3d  # noqa: E402

__all__ += [
    "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d",
    "adaptive_max_pool3d_with_indices", "fractional_max_pool2d", "fractional_max_pool2d_with_indices",
    "fractional_max_pool3d", "fractional_max_pool3d_with_indices", "max_pool3d_with_indices", "lp_pool3d",
    "max_unpool3d",
]  # fmt: skip

__all__ += [
    "conv_transpose1d", "conv_transpose2d", "interpolate", "upsample", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "lp_pool1d", "lp_pool2d", "affine_grid", "grid_sample", "fold", "unfold", "max_unpool1d", "max_unpool2d", "conv3d", "conv_transpose3d", "max_pool3d", "avg_pool3d",
    "adaptive_avg_pool3d", "upsample_nearest", "upsample_bilinear", "max_pool1d_with_indices",
    "max_pool2d_with_indices",
    "conv1d", "conv2d", "conv_tbc", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
]  # fmt: skip


def max_pool2d_with_indices(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                            ceil_mode: bool = False, return_indices: bool = False) -> Any:  # fmt: skip
    """:func:`max_pool2d` returning ``(values, indices)`` (PyTorch's explicit name; whatever
    ``return_indices`` says, as there)."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def max_pool1d_with_indices(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                            ceil_mode: bool = False, return_indices: bool = False) -> Any:  # fmt: skip
    """:func:`max_pool1d` returning ``(values, indices)`` (PyTorch's explicit name; whatever
    ``return_indices`` says, as there)."""
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


# ---------------------------------------------------------------------- in-place activations
def _in_place(x: Tensor, fn: Any) -> Tensor:
    # The activation of a copy, written back into x: x keeps its identity and its version counter
    # counts the write, and the gradient flows through the activation as in PyTorch.
    x = _as_tensor(x, "in-place activation")
    return x.copy_(fn(x.clone()))


def relu_(input: Tensor) -> Tensor:
    """:func:`relu` written into ``input`` (returns ``input``)."""
    return _in_place(input, relu)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """:func:`leaky_relu` written into ``input``."""
    return _in_place(input, lambda t: leaky_relu(t, negative_slope))


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """:func:`elu` written into ``input``."""
    return _in_place(input, lambda t: elu(t, alpha))


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """:func:`celu` written into ``input``."""
    return _in_place(input, lambda t: celu(t, alpha))


def selu_(input: Tensor) -> Tensor:
    """:func:`selu` written into ``input``."""
    return _in_place(input, selu)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """:func:`hardtanh` written into ``input``."""
    return _in_place(input, lambda t: hardtanh(t, min_val, max_val))


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    """:func:`threshold` written into ``input``."""
    return _in_place(input, lambda t: globals()["threshold"](t, threshold, value))


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False) -> Tensor:
    """:func:`rrelu` written into ``input``."""
    return _in_place(input, lambda t: rrelu(t, lower, upper, training))


__all__ += ["relu_", "leaky_relu_", "elu_", "celu_", "selu_", "hardtanh_", "threshold_", "rrelu_"]


# Attention lives in attention.py beside MultiheadAttention.
from .attention import multi_head_attention_forward, scaled_dot_product_attention  # noqa: E402

__all__ += ["scaled_dot_product_attention", "multi_head_attention_forward"]


def __getattr__(name: str) -> Any:
    """A name torch.nn.functional has and downslope leaves out says why (``F.grouped_mm``), as
    ``downslope.X`` does; other missing names raise the usual AttributeError."""
    if name == "grad":  # torch.nn.functional.grad is torch.nn.grad, loaded on first use
        import importlib

        return importlib.import_module(f"{__package__}.grad")  # not `from . import`: it would ask this hook again
    from .._unsupported import missing_module_attribute

    missing_module_attribute(name, "torch.nn.functional")
