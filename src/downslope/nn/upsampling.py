"""Resizing feature maps: ``F.interpolate`` and ``nn.Upsample`` with PyTorch's modes and index rules.

Modes: ``nearest`` and ``nearest-exact`` (a gather of source pixels), ``linear`` (3-D input),
``bilinear`` (4-D input) and ``trilinear`` (5-D input), separable blends of the two neighbouring source pixels along each resized
dim, and ``bicubic`` (4-D input), PyTorch's separable cubic convolution of four source pixels (A =
-0.75, edge pixels repeated). All are built from indexing and arithmetic ops, so their gradients
(and second derivatives) come from those ops.

Where a source coordinate comes from (``scale`` = in/out, or 1/scale_factor when a scale factor is
given, as PyTorch computes it):

* nearest: ``floor(dst * scale)``; nearest-exact: ``floor((dst + 0.5) * scale)``;
* linear, align_corners=False: ``(dst + 0.5) * scale - 0.5`` clamped at 0;
* linear, align_corners=True: ``dst * (in - 1) / (out - 1)``;
* bicubic: as linear, but not clamped at 0 (the taps at -1 repeat the edge pixel).

``antialias=True`` (bilinear and bicubic, 4-D input) is PyTorch's (and PIL's) resampling: each output
pixel is a normalised weighted sum of the source pixels within the filter's support around
``(dst + 0.5) * scale``, the support (1 for the triangle filter, 2 for the cubic one with A = -0.5)
stretched by ``scale`` when downscaling, so every source pixel counts. Each dim's weights form an
(out, in) matrix applied by a matrix product (the last dim first, as torch), which gives the gradients.

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

from ..backend import namespace_of
from ..devices import like
from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..tensor import Tensor, wrap_array
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

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


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
        raise ArgumentError(
            f"interpolate: input and output sizes should be greater than 0, got input {tuple(in_sizes)} "
            f"and output {tuple(out)}"
        )


def _nearest_source(n_in: int, n_out: int, factor: float | None, exact: bool, spatial: int, wide: bool) -> np.ndarray:
    """The source index of each output position along one dim, as PyTorch's CPU kernels compute it.

    The scale is ``1/factor`` (or ``n_in/n_out``) in float32, or in float64 for a float64 input of
    the 1-D and 3-D kernels; ``floor(dst * scale)`` (nearest) or ``floor((dst + 0.5) * scale)``
    (nearest-exact, the product in float64) is rounded to float32 before the floor, as torch's
    ``floorf``. torch's 2-D nearest kernel takes two shortcuts first: an unchanged size copies
    (``dst``), an exactly doubled one halves (``dst >> 1``), whatever the scale factor."""
    dst = np.arange(n_out, dtype=np.int64)  # host: indices from the sizes, moved to the data's device
    if spatial == 2 and not exact:
        if n_out == n_in:
            return dst
        if n_out == 2 * n_in:
            return dst >> 1
    real: Any = np.float64 if wide and spatial != 2 else np.float32
    scale: Any = real(1.0 / factor) if factor is not None else real(n_in) / real(n_out)
    product = (dst + 0.5) * np.float64(scale) if exact else dst.astype(real) * scale
    src = np.floor(product.astype(np.float32)).astype(np.int64)
    return np.minimum(src, n_in - 1)


def _gather(x: Tensor, axis: int, index: np.ndarray) -> Tensor:
    key = (slice(None),) * axis + (index,)
    return x[key]


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
                f"tensor as input, got mode {mode!r} and shape {input.shape}"
            )
        out_sizes, factors = _sizes(input, size, scale_factor, spatial)
        corners = align_corners is True  # a Python flag (None: False)
        return _antialiased(input, out_sizes, factors, corners, mode == "bicubic", recompute_scale_factor)
    if spatial not in (1, 2, 3) or (_MODES[mode] is not None and _MODES[mode] != spatial):
        raise ShapeError(f"interpolate: mode {mode!r} does not fit an input of shape {input.shape}")
    if _MODES[mode] is None and align_corners is not None:
        raise ArgumentError("interpolate: align_corners only applies to the linear modes")
    out_sizes, factors = _sizes(input, size, scale_factor, spatial, mode == "area")
    if mode == "area":  # PyTorch's 'area' is adaptive average pooling to the output size
        from .pooling import adaptive_avg_pool1d, adaptive_avg_pool2d
        from .volumetric import adaptive_avg_pool3d

        pool = (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d)[spatial - 1]
        return pool(input, tuple(out_sizes) if spatial > 1 else out_sizes[0])
    x = input
    xp = namespace_of(input.array)  # the index arrays are made on the input's device
    for k, (n_in, n_out, factor) in enumerate(zip(input.shape[2:], out_sizes, factors)):
        axis = 2 + k
        dst = xp.arange(n_out, dtype=np.float64)
        scale = 1.0 / factor if factor is not None and not recompute_scale_factor else n_in / n_out
        if mode in ("nearest", "nearest-exact"):
            given = factor if factor is not None and not recompute_scale_factor else None
            wide = input.array.dtype == np.float64
            src = _nearest_source(n_in, n_out, given, mode == "nearest-exact", spatial, wide)
            x = _gather(x, axis, like(src, input.array))
            continue
        if align_corners:
            src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros_like(dst)
        elif mode == "bicubic":
            src = (dst + 0.5) * scale - 0.5
        else:
            src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
        shape = [1] * x.ndim
        shape[axis] = n_out
        if mode == "bicubic":
            base = np.floor(src)
            weights = _cubic_weights(src - base)
            taps = [np.clip(base.astype(np.int64) + offset, 0, n_in - 1) for offset in (-1, 0, 1, 2)]
            parts = [
                _gather(x, axis, tap) * wrap_array(w.astype(input.array.dtype).reshape(shape))
                for tap, w in zip(taps, weights)
            ]
            x = parts[0] + parts[1] + parts[2] + parts[3]
            continue
        lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        frac = (src - lo).astype(input.array.dtype).reshape(shape)
        frac_t = wrap_array(frac)
        x = _gather(x, axis, lo) * (1.0 - frac_t) + _gather(x, axis, hi) * frac_t
    return x


def _antialiased(
    x: Tensor, out_sizes: list[int], factors: list[float | None], align_corners: bool, cubic: bool, recompute: Any
) -> Tensor:
    """``x`` resampled with torch's antialiasing filters, one spatial dim at a time (width first)."""
    for axis in (3, 2):
        n_in, n_out, factor = x.shape[axis], out_sizes[axis - 2], factors[axis - 2]
        weights = _aa_weights(n_in, n_out, None if recompute else factor, align_corners, cubic)
        w = wrap_array(like(weights.T.astype(x.array.dtype), x.array))  # (in, out)
        x = (x.transpose(axis, -1) @ w).transpose(axis, -1)
    return x


def _aa_filter(t: np.ndarray, cubic: bool) -> np.ndarray:
    t = np.abs(t)
    if not cubic:
        return np.maximum(0.0, 1.0 - t)
    a = -0.5  # PIL's (and torch's antialiased) cubic, not the -0.75 of plain bicubic
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t < 1.0, near, np.where(t < 2.0, far, 0.0))


def _aa_weights(n_in: int, n_out: int, factor: float | None, align_corners: bool, cubic: bool) -> np.ndarray:
    """The (n_out, n_in) matrix of torch's antialiased weights along one dim (_upsample_*2d_aa)."""
    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        scale = 1.0 / factor if factor is not None and factor > 0 else n_in / n_out
    support = (2.0 if cubic else 1.0) * (scale if scale >= 1.0 else 1.0)
    widest = math.ceil(support) * 2 + 1
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    weights = np.zeros((n_out, n_in))  # host: a matrix from the sizes
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)  # int() truncates, as torch's cast
        count = min(max(min(int(center + support + 0.5), n_in) - lo, 0), widest)
        w = _aa_filter((np.arange(count) + lo - center + 0.5) * inv, cubic)  # host: taps from the sizes
        total = w.sum()
        weights[i, lo : lo + count] = w / total if total != 0 else w
    return weights


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
        (1, 3, 8, 10)
    """

    def __init__(
        self, size: Any = None, scale_factor: Any = None, mode: str = "nearest", align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
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
