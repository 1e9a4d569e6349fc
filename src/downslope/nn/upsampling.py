"""Resizing feature maps: ``F.interpolate`` and ``nn.Upsample`` with PyTorch's modes and index rules.

Modes: ``nearest`` and ``nearest-exact`` (a gather of source pixels), ``linear`` (3-D input),
``bilinear`` (4-D input) and ``trilinear`` (5-D input), separable blends of the two neighbouring source pixels along each resized
dim, and ``bicubic`` (4-D input), PyTorch's separable cubic convolution of four source pixels (A =
-0.75, edge pixels repeated). All are built from indexing and arithmetic ops, so their gradients
(and second derivatives) come from those ops. With numba (host arrays) the nearest and linear modes
instead run one compiled op per resized dim (``_jit_resample``: the same products and sums forward,
its backward a scatter in one pass rather than the gathers' ``np.add.at``; under create_graph a
product with the dim's weight matrix).

Where a source coordinate comes from (``scale`` = in/out, or 1/scale_factor when a scale factor is
given, as PyTorch computes it):

* nearest: ``floor(dst * scale)``; nearest-exact: ``floor((dst + 0.5) * scale)``;
* linear, align_corners=False: ``(dst + 0.5) * scale - 0.5`` clamped at 0;
* linear, align_corners=True: ``dst * (in - 1) / (out - 1)``;
* bicubic: as linear, but not clamped at 0 (the taps at -1 repeat the edge pixel).

As torch's kernels, the linear modes compute the coordinate in float32 (float64 for a float64 input),
keep the index at most ``in - 1`` and the blend weight in [0, 1], and read a dim whose size is
unchanged at the same positions whatever the scale factor (bicubic resamples it): a copy, except that
an inf becomes NaN there (torch's blend ``x * 1 + x * 0``).

The dense weight matrices (bicubic, antialiased) are used only for finite host data: with a NaN or
inf, each output sums only its own taps (``_tap_sums``), so the value reaches only the outputs that
read it, as in torch.

``antialias=True`` (bilinear and bicubic, 4-D input) is PyTorch's (and PIL's) resampling: each output
pixel is a normalised weighted sum of the source pixels within the filter's support around
``(dst + 0.5) * scale``, the support (1 for the triangle filter, 2 for the cubic one with A = -0.5)
stretched by ``scale`` when downscaling, so every source pixel counts. Each dim's weights form an
(out, in) matrix applied by a matrix product (the last dim first, as torch; a dim whose size is
unchanged is skipped), which gives the gradients.

Example:
    >>> import downslope as ds
    >>> import downslope.nn.functional as F
    >>> F.interpolate(ds.tensor([[[1.0, 2.0]]]), scale_factor=2, mode="nearest")
    tensor([[[1., 1., 2., 2.]]])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import jit_gate, ops
from ..autograd import keep_shape_index
from ..devices import like
from ..errors import (
    ArgumentError,
    ArgumentTypeError,
    DTypeError,
    InvalidValueError,
    ShapeError,
    ShapeUnimplementedError,
)
from ..tensor import Tensor, record_op, wrap_array
from ._tap_sums import host_finite, matrix_or_taps, tap_sum
from .module import Module

__all__ = [
    "interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "Upsample", "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
]  # fmt: skip

_MODES = {
    "nearest": None, "nearest-exact": None, "area": None, "linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3,
}  # fmt: skip
# Keys' cubic convolution with PyTorch's A = -0.75 (torch's upsample_bicubic2d): the weights of the
# four source pixels around a point t in [0, 1) past the second of them.
_CUBIC_A = -0.75


def _cubic_weights(t: Any) -> list[Any]:
    a = _CUBIC_A

    def near(x: Any) -> Any:  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: Any) -> Any:  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far((1 - t) + 1)]  # torch's grouping of the last tap


def _sizes(
    x: Tensor, size: Any, scale_factor: Any, spatial: int, area: bool = False
) -> tuple[list[int], list[float | None]]:
    """The output sizes and scale factors; ``area`` (adaptive average pooling) allows an empty output."""
    if (size is None) == (scale_factor is None):
        raise ArgumentError("interpolate: give exactly one of size and scale_factor")
    in_sizes = list(x.shape[2:])
    if size is not None:
        out = [int(size)] * spatial if isinstance(size, (int, np.integer)) else [int(s) for s in size]
        if len(out) != spatial:
            raise ShapeError(f"interpolate: size {size} has {len(out)} entries for {spatial} spatial dim(s)")
        _check_positive_sizes(in_sizes, out, area)
        return out, [None] * spatial
    if isinstance(scale_factor, (int, float, np.integer, np.floating)):
        factors = [float(scale_factor)] * spatial  # host: the caller's Python numbers
    else:
        factors = [float(f) for f in scale_factor]  # host: the caller's Python numbers
    if len(factors) != spatial or any(f <= 0 for f in factors):
        raise ArgumentError(f"interpolate: scale_factor {scale_factor} must be {spatial} positive number(s)")
    out = [int(math.floor(n * f)) for n, f in zip(in_sizes, factors)]
    _check_positive_sizes(in_sizes, out, area)
    return out, list(factors)


def _check_positive_sizes(in_sizes: list[int], out: list[int], area: bool = False) -> None:
    """torch's check: a size of 0 (or less) would make an empty output, or divide by zero. 'area'
    is adaptive average pooling, which gives an empty output for an output size of 0."""
    if any(n <= 0 for n in in_sizes) or any(n < 0 if area else n <= 0 for n in out):
        raise InvalidValueError(  # torch: RuntimeError
            f"interpolate: input and output sizes should be greater than 0, got input {tuple(in_sizes)} "
            f"and output {tuple(out)}"
        )


def _nearest_source(n_in: int, n_out: int, factor: float | None, exact: bool, small_2d: bool, wide: bool) -> np.ndarray:
    """The source index of each output position along one dim, as PyTorch's CPU kernels compute it.

    torch's generic kernel (1-D, 3-D, and 2-D outputs of height + width over 128) computes the scale
    ``1/factor`` (or ``n_in/n_out``) in the input's opmath type: float32, float64 when ``wide`` (a
    float64 input). Its 2-D kernel for small outputs (``small_2d``: see :func:`_small_2d_kernel`)
    computes in float32 whatever the input (``nearest_idx``), and takes two shortcuts first for
    'nearest': an unchanged size copies (``dst``), an exactly doubled one halves (``dst >> 1``),
    whatever the scale factor. ``dst * scale`` (nearest) or, for nearest-exact, ``(dst + 0.5) * scale``
    in float64 (small 2-D) or ``max((dst + 0.5) * scale - 0.5, 0) + 0.5`` (generic) is rounded to
    float32 before the floor, as torch's ``floorf``."""
    dst = np.arange(n_out, dtype=np.int64)  # host: indices from the sizes, moved to the data's device
    if small_2d and not exact:
        if n_out == n_in:
            return dst
        if n_out == 2 * n_in:
            return dst >> 1
    real: Any = np.float64 if wide and not small_2d else np.float32
    scale: Any = real(1.0 / factor) if factor is not None else real(n_in) / real(n_out)
    if not exact:
        product = dst.astype(real) * scale
    elif small_2d:  # nearest_exact_idx: (dst + 0.5) * scale, the product in float64
        product = (dst + 0.5) * np.float64(scale)
    else:  # area_pixel_compute_source_index in ``real``, clamped at 0, then + 0.5 in float64
        # scale * (dst + 0.5) - 0.5 is one fused multiply-add in torch's build: in float32 it is
        # rounded once, from float64 (where a product of two float32 numbers is exact)
        centre = (np.float64(scale) * (dst.astype(real) + real(0.5)).astype(np.float64) - 0.5).astype(real)
        product = np.maximum(centre, real(0)).astype(np.float64) + 0.5
    src = np.floor(product.astype(np.float32)).astype(np.int64)
    return np.minimum(src, n_in - 1)


def _small_2d_kernel(out_sizes: list[int]) -> bool:
    """Whether torch's 2-D nearest resize runs its channels-last kernel (``nearest_idx``: float32
    coordinates and the copy/halve shortcuts) rather than the generic one: it does when the output's
    height + width is at most 128 (``_use_channels_last_kernel_2d``: small outputs run faster there;
    it also takes channels-last inputs of more than 3 channels, a layout NumPy's arrays do not mark)."""
    return len(out_sizes) == 2 and out_sizes[0] + out_sizes[1] <= 128


def _gather(x: Tensor, axis: int, index: np.ndarray) -> Tensor:
    key = (slice(None),) * axis + (index,)
    return keep_shape_index(x[key])  # the index: from sizes, kept as torch (which saves sizes only)


def interpolate(
    input: Tensor,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize the spatial dims of ``input`` (N, C, L), (N, C, H, W) or (N, C, D, H, W) to ``size`` or by ``scale_factor``.

    Example:
        >>> import downslope as ds
        >>> import downslope.nn.functional as F
        >>> F.interpolate(ds.tensor([[[0.0, 2.0]]]), size=3, mode="linear", align_corners=True)
        tensor([[[0., 1., 2.]]])
    """
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"interpolate: expected a Tensor, got {type(input).__name__}")
    if mode not in _MODES:
        raise ArgumentError(f"interpolate: mode must be one of {sorted(_MODES)} here, got {mode!r}")
    spatial = input.ndim - 2
    if antialias:
        if mode not in ("bilinear", "bicubic") or input.ndim != 4:
            raise ArgumentError(
                "interpolate: anti-alias option is restricted to bilinear and bicubic modes and requires a 4-D "
                f"tensor as input, got mode {mode!r} and shape {tuple(input.shape)}"
            )
        out_sizes, factors = _sizes(input, size, scale_factor, spatial)
        corners = align_corners is True  # a Python flag (None: False)
        if input.array.dtype == np.uint8:
            return _resized_uint8(input, out_sizes, factors, corners, mode == "bicubic", True, recompute_scale_factor)
        return _antialiased(input, out_sizes, factors, corners, mode == "bicubic", recompute_scale_factor)
    if input.array.dtype.kind in "biu" and mode not in ("nearest", "nearest-exact"):
        # torch blends images of bytes (bilinear, bicubic: torchvision's resize) and refuses other integers
        if input.array.dtype != np.uint8 or mode not in ("bilinear", "bicubic") or spatial != 2:
            raise DTypeError(
                f"interpolate: mode {mode!r} needs a floating-point input (or uint8 for 'bilinear' and "
                f"'bicubic' on 4-D input, as in torch), got {input.array.dtype} of shape {tuple(input.shape)}; "
                "cast it with .float() first"
            )
        out_sizes, factors = _sizes(input, size, scale_factor, spatial)
        corners = bool(align_corners)  # host: the caller's Python flag (None: False)
        return _resized_uint8(input, out_sizes, factors, corners, mode == "bicubic", False, recompute_scale_factor)
    if spatial not in (1, 2, 3) or (_MODES[mode] is not None and _MODES[mode] != spatial):
        rank = _MODES[mode]
        needs = f"{rank + 2}D input" if rank is not None else "3D, 4D or 5D input"
        raise ShapeUnimplementedError(  # torch's NotImplementedError, in its words
            f"interpolate: Got {input.ndim}D input, but {mode} mode needs {needs}: mode {mode!r} does not fit an "
            f"input of shape {tuple(input.shape)}"
        )
    if _MODES[mode] is None and align_corners is not None:
        raise ArgumentError("interpolate: align_corners only applies to the linear modes")
    out_sizes, factors = _sizes(input, size, scale_factor, spatial, mode == "area")
    if mode == "area":  # PyTorch's 'area' is adaptive average pooling to the output size
        from .pooling import adaptive_avg_pool1d, adaptive_avg_pool2d
        from .volumetric import adaptive_avg_pool3d

        pool = (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d)[spatial - 1]
        return pool(input, tuple(out_sizes) if spatial > 1 else out_sizes[0])
    x = input
    dtype = input.array.dtype
    # with numba (host arrays) one compiled blend (or gather) per resized dim, whose backward scatters
    # in one pass rather than through np.add.at; the gathers below on devices and without numba
    compiled = mode != "bicubic" and input.array.size > 0 and jit_gate.kernels(_KERNELS, input.array) is not None
    real: Any = np.float64 if dtype == np.float64 else np.float32  # torch's opmath type for the coordinates
    small_2d = _small_2d_kernel(out_sizes)
    # the last dim first: torch's kernels blend along it innermost, so float32 rounds as there
    for k in reversed(range(spatial)):
        n_in, n_out, factor = input.shape[2 + k], out_sizes[k], factors[k]
        axis = 2 + k
        given = factor if factor is not None and not recompute_scale_factor else None
        if mode in ("nearest", "nearest-exact"):
            src = _nearest_source(n_in, n_out, given, mode == "nearest-exact", small_2d, dtype == np.float64)
            x = _along_axis(x, axis, src, None) if compiled else _gather(x, axis, like(src, input.array))
            continue
        if mode != "bicubic" and n_out == n_in:
            # torch's linear kernels read a dim whose size is unchanged at the same position, whatever
            # the scale factor, as a blend x * 1 + x * 0: a copy for finite data, NaN from an inf
            if not host_finite(x.array):
                x = x * 1.0 + x * 0.0
            continue
        corners = bool(align_corners)  # host: the caller's Python flag (None: False)
        index, lam = _linear_source(n_in, n_out, given, corners, mode == "bicubic", real)
        shape = [1] * x.ndim
        shape[axis] = n_out

        def weight(w: np.ndarray, shape: list[int] = shape) -> Tensor:
            return wrap_array(like(w.astype(dtype).reshape(shape), input.array))

        if mode == "bicubic":
            taps = [np.clip(index + offset, 0, n_in - 1) for offset in (-1, 0, 1, 2)]

            def product(
                x: Tensor = x, axis: int = axis, taps: list[np.ndarray] = taps, lam: Any = lam, n: int = n_in
            ) -> Tensor:
                # one (n_out, n_in) matrix of the four taps' weights: a product along the axis (BLAS, and
                # its transpose in backward) instead of four gathers and their scatter-adds
                return _resample_by_matrix(x, axis, taps, _cubic_weights(lam), n, dtype)

            def gathers(
                x: Tensor = x, axis: int = axis, taps: list[np.ndarray] = taps, lam: Any = lam, shape: Any = shape
            ) -> Tensor:
                # each output's four taps only: with NaN or inf data (and on devices)
                ws = _cubic_weights(lam)
                parts = [_gather(x, axis, like(t, x.array)) * weight(w, shape) for t, w in zip(taps, ws)]
                return parts[0] + parts[1] + parts[2] + parts[3]

            x = matrix_or_taps(x, n_in, n_out, product, gathers)
            continue
        hi = index + (index < n_in - 1)
        if compiled:
            x = _along_axis(x, axis, index, (hi, (1 - lam).astype(dtype), lam.astype(dtype)))
            continue
        lo_part = _gather(x, axis, like(index, input.array)) * weight(1 - lam)
        x = lo_part + _gather(x, axis, like(hi, input.array)) * weight(lam)
    return x


_KERNELS = "downslope.nn._jit_resample"


def _resample_by_matrix(x: Tensor, axis: int, taps: list[np.ndarray], weights: Any, n_in: int, dtype: Any) -> Tensor:
    """``sum_k x.take(taps[k], axis) * weights[k]`` as a product with the (n_out, n_in) matrix that holds
    the weights at the taps (repeated taps at the edges add up), along ``axis`` of 4-D ``x``."""
    matrix = np.zeros((len(taps[0]), n_in), dtype=np.float64)  # host: the weights from the sizes
    rows = np.arange(len(taps[0]))  # host: positions from the sizes
    for t, w in zip(taps, weights):
        np.add.at(matrix, (rows, t), w)  # host: the weights from the sizes
    m = wrap_array(matrix.astype(dtype))
    if axis == x.ndim - 1:
        return ops.matmul(x, ops.transpose(m, 0, 1))
    return ops.matmul(m, x)  # axis 2 of (N, C, H, W): (H_out, H) @ (N, C, H, W)


def _along_axis(x: Tensor, axis: int, index: np.ndarray, blend: tuple[np.ndarray, ...] | None) -> Tensor:
    """``x`` resampled along ``axis`` by the compiled kernels: ``x.take(index)`` (nearest), or, with
    ``blend = (hi, w0, w1)``, ``x.take(index) * w0 + x.take(hi) * w1`` (the same products and sum as
    the gathers' formulation, so the same bits)."""
    a = np.ascontiguousarray(x.array)  # host: numba path
    shape = a.shape
    view = a.reshape(int(np.prod(shape[:axis])), shape[axis], -1)
    if blend is None:
        out = np.take(view, index, axis=1)
    else:
        out = np.empty((view.shape[0], len(index), view.shape[2]), dtype=a.dtype)  # host: numba path
        jit_gate.kernels(_KERNELS).blend_axis(view, index, blend[0], blend[1], blend[2], out)  # type: ignore[union-attr]
    new_shape = shape[:axis] + (len(index),) + shape[axis + 1 :]
    # the index from sizes, kept as torch keeps sizes (the blend's float weights are not: freed)
    return keep_shape_index(record_op(out.reshape(new_shape), (x,), _along_axis_vjp, (axis, shape, index, blend)))


def _along_axis_vjp(g, y, args, saved, needs, xp):
    axis, shape, index, blend = saved
    if xp.differentiable:  # create_graph: the transpose as a product with the (out, in) weight matrix
        weights = np.zeros((len(index), shape[axis]), dtype=np.dtype(g.dtype))  # host: numba path
        rows = np.arange(len(index))  # host: positions from the sizes
        if blend is None:
            weights[rows, index] = 1
        else:
            np.add.at(weights, (rows, index), blend[1])
            np.add.at(weights, (rows, blend[0]), blend[2])
        order = [d for d in range(g.ndim) if d != axis] + [axis]  # the resized dim last, then back
        out = xp.permute(g, order) @ xp.constant(weights)
        return (xp.permute(out, [int(d) for d in np.argsort(order)]),)
    k: Any = jit_gate.kernels(_KERNELS)
    gv = np.ascontiguousarray(g).reshape(int(np.prod(shape[:axis])), len(index), -1)  # host: numba path
    gx = np.zeros((gv.shape[0], shape[axis], gv.shape[2]), dtype=g.dtype)  # host: numba path
    if blend is None:
        k.gather_axis_backward(gv, index, gx)
    else:
        k.blend_axis_backward(gv, index, blend[0], blend[1], blend[2], gx)
    return (gx.reshape(shape),)


_along_axis_vjp.reads_inputs = False  # type: ignore[attr-defined]
_along_axis_vjp.reads_output = False  # type: ignore[attr-defined]


def _linear_source(
    n_in: int, n_out: int, factor: float | None, align_corners: bool, cubic: bool, real: Any
) -> tuple[np.ndarray, np.ndarray]:
    """The first source index and the blend weight ``lambda`` of each output position along one dim,
    as torch's CPU kernels compute them (``area_pixel_compute_source_index``, ``guard_index_and_lambda``).

    The scale is ``(in - 1) / (out - 1)`` with aligned corners, else ``1/factor`` when a scale factor
    is given (not ``in/out``: the output size was rounded down), else ``in/out``; the coordinate is
    computed in ``real`` (float32, float64 for a float64 input), floored in float32 (``floorf``),
    the index kept at most ``in - 1`` and lambda clamped to [0, 1]."""
    dst = np.arange(n_out).astype(real)  # host: positions from the sizes
    if align_corners:
        src = dst * (real(n_in - 1) / real(n_out - 1) if n_out > 1 else real(0))
    else:
        scale = real(1.0 / factor) if factor is not None else real(n_in) / real(n_out)
        src = scale * (dst + real(0.5)) - real(0.5)
        if real is np.float32:  # torch's vectorised build fuses this multiply-add (one rounding): exact in float64
            src = (np.float64(scale) * (dst + real(0.5)).astype(np.float64) - 0.5).astype(real)
        if not cubic:  # the linear modes clamp at 0; bicubic's taps at -1 repeat the edge pixel instead
            src = np.maximum(src, real(0))
    index = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), n_in - 1)
    lam = np.clip(src - index.astype(real), real(0), real(1))
    return index, lam


def _antialiased(
    x: Tensor, out_sizes: list[int], factors: list[float | None], align_corners: bool, cubic: bool, recompute: Any
) -> Tensor:
    """``x`` resampled with torch's antialiasing filters, one spatial dim at a time (width first); as
    torch, a dim whose size is unchanged is left as it is, whatever the scale factor."""
    real: Any = np.float64 if x.array.dtype == np.float64 else np.float32  # torch's weights' type
    for axis in (3, 2):
        n_in, n_out, factor = x.shape[axis], out_sizes[axis - 2], factors[axis - 2]
        if n_in == n_out:
            continue
        taps, w, count = _aa_taps(n_in, n_out, None if recompute else factor, align_corners, cubic, real)

        def product(
            x: Tensor = x, axis: int = axis, taps: np.ndarray = taps, w: np.ndarray = w, n: int = n_in
        ) -> Tensor:
            m = wrap_array(_aa_matrix(taps, w, n).T.astype(x.array.dtype))  # (in, out)
            return (x.transpose(axis, -1) @ m).transpose(axis, -1)

        def tap_sums(
            x: Tensor = x, axis: int = axis, taps: np.ndarray = taps, w: Any = w, count: Any = count
        ) -> Tensor:
            return tap_sum(x, axis, taps, w, count, None)  # NaN or inf (and devices): each output's taps only

        x = matrix_or_taps(x, n_in, n_out, product, tap_sums)
    return x


def _resized_uint8(
    x: Tensor,
    out_sizes: list[int],
    factors: list[float | None],
    align_corners: bool,
    cubic: bool,
    antialias: bool,
    recompute: Any,
) -> Tensor:
    """A uint8 image resized as torch's CPU kernels do (Pillow's method): one pass per spatial dim,
    width first, a dim of unchanged size skipped; each output pixel a sum of source pixels times
    weights held as int16 fixed-point numbers, rounded half up, clamped to [0, 255] and stored as
    uint8 between the passes. Blending the bytes in their own dtype (as before) made weights below 1
    zero: every output was 0. Integer images take no gradient."""
    a = x.array
    for axis in (3, 2):
        n_in, n_out = a.shape[axis], out_sizes[axis - 2]
        if n_in == n_out:
            continue
        factor = None if recompute else factors[axis - 2]
        if cubic and not antialias:
            taps, weights, top = _cubic_taps(n_in, n_out, factor, align_corners)
        else:
            taps, weights = _filter_taps(n_in, n_out, factor, align_corners, cubic, antialias)
            top = float(weights.max())  # host: interpolation weights made from the sizes, on the host
        fixed, bits = _int16_weights(weights, top)
        moved = np.moveaxis(a, axis, -1).astype(np.int64)
        total = (moved[..., like(taps, a)] * like(fixed, a)).sum(axis=-1)
        total += 1 << (bits - 1)
        total >>= bits
        a = np.moveaxis(np.clip(total, 0, 255).astype(np.uint8), -1, axis)
    return wrap_array(a if a is not x.array else a.copy())


def _filter_taps(
    n_in: int, n_out: int, factor: float | None, align_corners: bool, cubic: bool, antialias: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The (n_out, taps) source indices and float64 weights of torch's byte kernels for bilinear (and
    antialiased bicubic): the filter's taps that fall inside the image, renormalized to sum to 1
    (``_compute_indices_min_size_weights_aa``, whose support widens with the scale when antialiased)."""
    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        scale = 1.0 / factor if factor is not None and factor > 0 else n_in / n_out
    widened = antialias and scale >= 1.0
    support = (2.0 if cubic else 1.0) * (scale if widened else 1.0)
    widest = math.ceil(support) * 2 + 1
    inv = 1.0 / scale if widened else 1.0
    delta = 0.5 if align_corners and not antialias else 0.0
    center = scale * (np.arange(n_out) + 0.5 - delta)  # host: positions from the sizes
    lo = np.maximum((center - support + 0.5 + delta).astype(np.int64), 0)  # a C cast truncates
    hi = np.minimum((center + support + 0.5 + delta).astype(np.int64), n_in)
    count = np.clip(hi - lo, 0, widest)
    taps = lo[:, None] + np.arange(widest)  # host: tap offsets from the sizes
    w = _aa_filter((taps - center[:, None] + 0.5 - delta) * inv, cubic)
    w = np.where(np.arange(widest) < count[:, None], w, 0.0)  # host: tap offsets from the sizes
    total = w.sum(axis=1, keepdims=True)
    w = np.where(total != 0, w / np.where(total != 0, total, 1.0), w)
    return np.minimum(taps, n_in - 1), w


def _cubic_taps(
    n_in: int, n_out: int, factor: float | None, align_corners: bool
) -> tuple[np.ndarray, np.ndarray, float]:
    """The four taps, Keys' weights (A = -0.75) and the largest weight of torch's byte bicubic
    (``_compute_indices_min_size_weights``, in float64): the source index floored through float32
    (``floorf``), each weight of a tap outside the image summed in float64 into the edge tap it
    repeats, before the one rounding to int16 (rounding each copy apart, as the float kernel's
    repeated taps would, is a grey level off on some pixels), and the largest weight taken over the
    running sums, as torch's ``wt_max`` (it sets the fixed-point precision)."""
    dst = np.arange(n_out, dtype=np.float64)  # host: positions from the sizes
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        scale = 1.0 / factor if factor is not None and factor > 0 else n_in / n_out
        src = scale * (dst + 0.5) - 0.5
    first = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), n_in - 1)
    lam = np.clip(src - first, 0.0, 1.0)
    low = first - 1  # the unclamped first tap
    start = np.maximum(low, 0)
    rows = np.arange(n_out)  # host: positions from the sizes
    weights = np.zeros((n_out, 4))  # host: weights from the sizes
    top = 0.0
    for j in range(4):
        slot = np.clip(low + j, 0, n_in - 1) - start  # taps outside the image go to the edge's slot
        weights[rows, slot] += _keys_filter((j - 1) - lam)
        top = max(top, float(weights[rows, slot].max()))  # host: weights made from the sizes
    count = np.clip(np.minimum(first + 3, n_in) - start, 0, 4)
    weights[np.arange(4) >= count[:, None]] = 0.0  # host: tap offsets from the sizes
    taps = np.minimum(start[:, None] + np.arange(4), n_in - 1)  # host: tap offsets from the sizes
    return taps, weights, top


def _keys_filter(x: np.ndarray) -> np.ndarray:
    """torch's ``HelperInterpCubic::aa_filter<double, false>``: Keys' cubic with A = -0.75 at |x|."""
    a = _CUBIC_A
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _int16_weights(weights: np.ndarray, top: float) -> tuple[np.ndarray, int]:
    """``weights`` as int16 fixed-point numbers with the most fraction bits (at most 22) that keep
    ``top`` (the kernel's largest weight) below 2**15, each rounded half away from zero (Pillow's
    and torch's byte kernels)."""
    bits = 0
    while bits < 22 and int(0.5 + top * (1 << (bits + 1))) < (1 << 15):
        bits += 1
    scaled = weights * (1 << bits)
    return np.trunc(np.where(scaled < 0, scaled - 0.5, scaled + 0.5)).astype(np.int64), bits


def _aa_filter(t: np.ndarray, cubic: bool) -> np.ndarray:
    """torch's filters, evaluated in float64 (its C ``double`` literals) at float32 or float64 points."""
    t = np.abs(t.astype(np.float64))
    if not cubic:
        return np.where(t < 1.0, 1.0 - t, 0.0)
    a = -0.5  # PIL's (and torch's antialiased) cubic, not the -0.75 of plain bicubic
    near = ((a + 2.0) * t - (a + 3.0)) * t * t + 1
    far = (((t - 5) * t + 8) * t - 4) * a
    return np.where(t < 1.0, near, np.where(t < 2.0, far, 0.0))


def _aa_taps(
    n_in: int, n_out: int, factor: float | None, align_corners: bool, cubic: bool, real: Any = np.float64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """torch's antialiased weights along one dim (``_upsample_*2d_aa``): the (n_out, widest) source
    indices and weights of each output's taps, and how many of them (``count``) it reads.

    Follows torch's ``_compute_indices_min_size_weights_aa`` step by step, including where it rounds
    to ``real`` (the kernel's ``scalar_t``: float32, float64 for a float64 input) and where C's
    promotion to ``double`` keeps a step wide, so the taps each output pixel reads are torch's."""
    wide = np.float64
    if align_corners:
        scale = real(n_in - 1) / real(n_out - 1) if n_out > 1 else real(0)
    else:
        scale = real(1.0 / factor) if factor is not None and factor > 0 else real(n_in) / real(n_out)
    half = 1.0 if cubic else 0.5  # interp_size * 0.5: 4 taps for the cubic filter, 2 for the triangle
    support = real(half * wide(scale) * 2.0 if scale >= 1.0 else half * 2.0)
    widest = math.ceil(support) * 2 + 1
    inv = real(1.0 / wide(scale)) if scale >= 1.0 else real(1.0)
    center = (wide(scale) * (np.arange(n_out) + 0.5)).astype(real)  # host: positions from the sizes
    lo = np.maximum(((center - support).astype(wide) + 0.5).astype(np.int64), 0)  # a C cast truncates
    hi = np.minimum(((center + support).astype(wide) + 0.5).astype(np.int64), n_in)
    count = np.clip(hi - lo, 0, widest)
    taps = lo[:, None] + np.arange(widest)  # host: tap offsets from the sizes
    points = ((taps.astype(real) - center[:, None]).astype(wide) + 0.5) * wide(inv)
    w = _aa_filter(points.astype(real), cubic).astype(real)
    w = np.where(np.arange(widest) < count[:, None], w, real(0))  # host: tap offsets from the sizes
    total = np.cumsum(w, axis=1, dtype=real)[:, -1:]  # summed in order, as torch's loop
    w = np.where(total != 0, w / np.where(total != 0, total, real(1)), w)
    return taps, w, count


def _aa_matrix(taps: np.ndarray, w: np.ndarray, n_in: int) -> np.ndarray:
    """The (n_out, n_in) matrix holding the weights ``w`` at the ``taps`` of :func:`_aa_taps`."""
    weights = np.zeros((len(taps), n_in + taps.shape[1]), dtype=w.dtype)  # host: a matrix from the sizes
    np.put_along_axis(weights, taps, w, axis=1)
    return weights[:, :n_in]


def upsample(
    input: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest", align_corners: Any = None
) -> Tensor:
    """PyTorch's older name for :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:
    """PyTorch's older name for nearest-neighbour :func:`interpolate`."""
    return interpolate(input, size, scale_factor, "nearest")


def upsample_bilinear(input: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:
    """PyTorch's older name for bilinear :func:`interpolate` with ``align_corners=True``."""
    return interpolate(input, size, scale_factor, "bilinear", align_corners=True)


class Upsample(Module):
    """Resize feature maps (see :func:`interpolate`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.Upsample(scale_factor=2, mode="bilinear")(ds.randn(1, 3, 4, 5)).shape
        downslope.Size([1, 3, 8, 10])
    """

    def __init__(
        self, size: Any = None, scale_factor: Any = None, mode: str = "nearest", align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        # PyTorch stores the factor as a float (a tuple of floats), and a zero or None factor as None
        if isinstance(scale_factor, tuple):
            scale_factor = tuple(float(f) for f in scale_factor)  # host: Python numbers
        else:
            scale_factor = float(scale_factor) if scale_factor else None  # host: a Python number
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return interpolate(
            input, self.size, self.scale_factor, self.mode, self.align_corners, self.recompute_scale_factor
        )

    def extra_repr(self) -> str:
        # PyTorch stores the factor as a float (a tuple of floats), and a zero or None factor as None
        factor = self.scale_factor
        if isinstance(factor, (tuple, list)):
            factor = tuple(float(f) for f in factor)  # host: Python numbers
        else:
            factor = float(factor) if factor else None  # host: a Python number
        what = f"size={self.size!r}" if factor is None else f"scale_factor={factor!r}"
        return f"{what}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour upsampling of (N, C, H, W) input."""

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, "nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear upsampling of (N, C, H, W) input with ``align_corners=True`` (PyTorch's choice for this class)."""

    def __init__(self, size: Any = None, scale_factor: Any = None) -> None:
        super().__init__(size, scale_factor, "bilinear", align_corners=True)
