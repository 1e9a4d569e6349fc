"""PyTorch's observers (``torch.ao.quantization.observer``): modules that record the range of the
values passing through them and turn it into a ``scale`` and ``zero_point``, with torch's arithmetic
(float32, ties rounded to even), so fake quantization lands on torch's grid.

Example:
    >>> import downslope as ds
    >>> obs = MinMaxObserver()
    >>> _ = obs(ds.tensor([-1.0, 0.5, 2.0]))
    >>> obs.calculate_qparams()
    (tensor([0.0118]), tensor([85], dtype=int32))
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

from ... import nn, ops
from ...backend import float32, int32, int64
from ...errors import ArgumentError, ArgumentTypeError, StateError
from ...tensor import Tensor, full, tensor, zeros
from .qtypes import (
    PER_CHANNEL,
    PER_TENSOR,
    SYMMETRIC,
    integer_kind,
    per_channel_affine,
    per_channel_affine_float_qparams,
    per_channel_symmetric,
    per_tensor_affine,
    per_tensor_symmetric,
    qint8,
    quint8,
)

__all__ = [
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "MovingAveragePerChannelMinMaxObserver",
    "ObserverBase",
    "PerChannelMinMaxObserver",
    "UniformQuantizationObserverBase",
    "default_observer",
    "default_per_channel_weight_observer",
    "default_weight_observer",
]

_FLOAT32_EPS = 1.1920928955078125e-07  # torch.finfo(torch.float32).eps, the observers' default


class _PartialWrapper:
    """A constructor with some arguments bound (torch's ``Observer.with_args(...)``): each call makes
    a new instance; ``with_args`` binds more."""

    def __init__(self, p: functools.partial) -> None:
        self.p = p
        self.callable_args: dict[str, Any] = {}

    def __call__(self, *args: Any, **keywords: Any) -> Any:
        for name, make in self.callable_args.items():
            if name not in keywords:
                keywords = {**keywords, name: make()}
        return self.p(*args, **keywords)

    def __repr__(self) -> str:
        return self.p.__repr__() + self.callable_args.__repr__()

    def with_args(self, **kwargs: Any) -> _PartialWrapper:
        return _with_args(self, **kwargs)

    def with_callable_args(self, **kwargs: Any) -> _PartialWrapper:
        result = _PartialWrapper(p=self.p)
        result.callable_args = {**self.callable_args, **kwargs}
        return result


def _with_args(cls_or_self: Any, **kwargs: Any) -> _PartialWrapper:
    return _PartialWrapper(functools.partial(cls_or_self, **kwargs))


def _with_callable_args(cls_or_self: Any, **kwargs: Any) -> _PartialWrapper:
    return _PartialWrapper(functools.partial(cls_or_self)).with_callable_args(**kwargs)


def calculate_qmin_qmax(
    quant_min: int | None, quant_max: int | None, has_customized_qrange: bool, dtype: Any, reduce_range: bool
) -> tuple[int, int]:
    """The integer range of an observer, as torch's: the one given, else the dtype's full range (less
    one bit with ``reduce_range``)."""
    kind = integer_kind(dtype)
    if has_customized_qrange:
        assert quant_min is not None and quant_max is not None
        span = quant_max - quant_min + 1
        if kind == "qint8" and not 0 < span <= 256:
            raise ArgumentError(
                f"quantization range [{quant_min}, {quant_max}] should be positive and not exceed the maximum bit "
                "range (=256) of qint8"
            )
        if reduce_range:
            return quant_min // 2, quant_max // 2
        return quant_min, quant_max
    if kind == "qint8":
        return (-64, 63) if reduce_range else (-128, 127)
    if kind == "quint8":
        return (0, 127) if reduce_range else (0, 255)
    return -(2**31), 2**31 - 1


class ObserverBase(nn.Module):
    """The base of observers: ``forward`` records statistics of its input (and returns the input),
    ``calculate_qparams`` gives the scale and zero point."""

    # **kwargs: so that nn.Module does not take this dtype (a quantized integer type) for its layers'
    # dtype= (the floating dtype of their parameters)
    def __init__(self, dtype: Any, is_dynamic: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dtype = dtype
        self.is_dynamic = is_dynamic

    def forward(self, x: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}: an observer subclass defines forward")

    def calculate_qparams(self, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}: an observer subclass defines calculate_qparams")

    with_args = classmethod(_with_args)
    with_callable_args = classmethod(_with_callable_args)


class UniformQuantizationObserverBase(ObserverBase):
    """The range, scheme and ``eps`` of observers that quantize uniformly (torch's class of the name).

    ``dtype`` is ``ds.quint8`` / ``ds.qint8`` / ``ds.qint32`` (or ``ds.uint8`` / ``ds.int8`` /
    ``ds.int32``); ``qscheme`` one of ``ds.per_tensor_affine``, ``ds.per_tensor_symmetric``,
    ``ds.per_channel_affine``, ``ds.per_channel_symmetric``, ``ds.per_channel_affine_float_qparams``."""

    def __init__(
        self,
        dtype: Any = quint8,
        qscheme: Any = per_tensor_affine,
        reduce_range: bool = False,
        quant_min: int | None = None,
        quant_max: int | None = None,
        factory_kwargs: Any = None,
        eps: float = _FLOAT32_EPS,
        is_dynamic: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(dtype, is_dynamic)
        if qscheme not in PER_TENSOR + PER_CHANNEL:
            raise ArgumentError(
                f"{type(self).__name__}: qscheme must be one of ds.per_tensor_affine, ds.per_tensor_symmetric, "
                f"ds.per_channel_affine, ds.per_channel_symmetric, ds.per_channel_affine_float_qparams; got {qscheme!r}"
            )
        if integer_kind(dtype) is None:
            raise ArgumentTypeError(
                f"{type(self).__name__}: dtype must be ds.quint8, ds.qint8 or ds.qint32 (or ds.uint8, ds.int8, "
                f"ds.int32); got {dtype!r}"
            )
        self.qscheme = qscheme
        if reduce_range:
            warnings.warn(
                "Please use quant_min and quant_max to specify the range for observers. reduce_range will be "
                "deprecated in a future release of PyTorch.",
                stacklevel=2,
            )
        self.reduce_range = reduce_range
        self.register_buffer("eps", tensor([eps], dtype=float32))
        self.has_customized_qrange = quant_min is not None and quant_max is not None
        if self.has_customized_qrange:
            assert quant_min is not None and quant_max is not None
            if not quant_min <= 0 <= quant_max:
                raise ArgumentError(
                    f"{type(self).__name__}: the quantization range [{quant_min}, {quant_max}] must include 0"
                )
            if quant_min >= quant_max:
                raise ArgumentError(
                    f"{type(self).__name__}: quant_min ({quant_min}) must be strictly less than quant_max ({quant_max})"
                )
        self.quant_min, self.quant_max = calculate_qmin_qmax(
            quant_min, quant_max, self.has_customized_qrange, dtype, reduce_range
        )

    def _calculate_qparams(self, min_val: Tensor, max_val: Tensor) -> tuple[Tensor, Tensor]:
        """torch's scale and zero point for the range [min_val, max_val] (per tensor or per channel)."""
        if not _valid_range(min_val, max_val):
            return tensor([1.0]), tensor([0], dtype=int64)
        qmin, qmax = self.quant_min, self.quant_max
        min_val_neg = ops.minimum(min_val, zeros(tuple(min_val.shape), dtype=min_val.dtype))
        max_val_pos = ops.maximum(max_val, zeros(tuple(max_val.shape), dtype=max_val.dtype))
        zero_point = zeros(tuple(min_val_neg.shape), dtype=int64)
        if self.qscheme in SYMMETRIC:
            max_val_pos = ops.maximum(-min_val_neg, max_val_pos)
            scale = ops.maximum(max_val_pos / (float(qmax - qmin) / 2), self.eps)
            if integer_kind(self.dtype) == "quint8":
                middle = (qmin + qmax) // 2 if self.has_customized_qrange else 128
                zero_point = full(tuple(zero_point.shape), middle, dtype=int64)
        elif self.qscheme is per_channel_affine_float_qparams:
            scale = (max_val - min_val) / float(qmax - qmin)
            scale = ops.where(scale > self.eps, scale, full(tuple(scale.shape), 1.0, dtype=scale.dtype))
            zero_point = -1 * min_val / scale
        else:
            scale = ops.maximum((max_val_pos - min_val_neg) / float(qmax - qmin), self.eps)
            zero_point = qmin - ops.round(min_val_neg / scale).to(int32)
            zero_point = ops.clamp(zero_point, qmin, qmax)
        if scale.ndim == 0:
            scale = tensor([float(scale)], dtype=scale.dtype)
        if zero_point.ndim == 0:
            zero_point = tensor([int(zero_point)], dtype=zero_point.dtype)
        return scale, zero_point

    def reset_min_max_vals(self) -> None:
        raise StateError(f"{type(self).__name__}: cannot reset min/max values in this observer")


def _valid_range(min_val: Tensor, max_val: Tensor) -> bool:
    if min_val.numel() == 0 or max_val.numel() == 0:
        warnings.warn("must run observer before calling calculate_qparams. Returning default values.", stacklevel=3)
        return False
    if min_val.ndim == 0 or max_val.ndim == 0:
        if float(min_val) == float("inf") and float(max_val) == float("-inf"):
            warnings.warn("must run observer before calling calculate_qparams. Returning default values.", stacklevel=3)
            return False
        if float(min_val) > float(max_val):
            raise ArgumentError(f"observer: min {float(min_val)} should be less than max {float(max_val)}")
    elif bool((min_val > max_val).any()):
        raise ArgumentError(f"observer: min {min_val} should be less than max {max_val}")
    return True


class MinMaxObserver(UniformQuantizationObserverBase):
    """Records the running minimum and maximum of its inputs (buffers ``min_val``, ``max_val``) and
    computes per-tensor qparams from them, as torch's ``MinMaxObserver``."""

    def __init__(
        self,
        dtype: Any = quint8,
        qscheme: Any = per_tensor_affine,
        reduce_range: bool = False,
        quant_min: int | None = None,
        quant_max: int | None = None,
        factory_kwargs: Any = None,
        eps: float = _FLOAT32_EPS,
        is_dynamic: bool = False,
        **kwargs: Any,
    ) -> None:
        if qscheme not in PER_TENSOR:
            raise ArgumentError(
                f"{type(self).__name__}: qscheme must be ds.per_tensor_affine or ds.per_tensor_symmetric, "
                f"got {qscheme!r}"
            )
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps, is_dynamic, **kwargs)
        self.register_buffer("min_val", tensor(float("inf")))
        self.register_buffer("max_val", tensor(float("-inf")))
        if qscheme in SYMMETRIC and reduce_range and integer_kind(dtype) == "quint8":
            raise ArgumentError(f"{type(self).__name__}: cannot reduce range for symmetric quantization for quint8")

    def forward(self, x_orig: Tensor) -> Tensor:
        """Record ``x_orig``'s range; returns ``x_orig``."""
        if x_orig.numel() == 0:
            return x_orig
        x = x_orig.detach().to(self.min_val.dtype)
        lo, hi = ops.aminmax(x)
        self.min_val.copy_(ops.minimum(lo, self.min_val))
        self.max_val.copy_(ops.maximum(hi, self.max_val))
        return x_orig

    def calculate_qparams(self) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """The scale (float32, shape (1,)) and zero point (shape (1,)) for the range seen so far."""
        return self._calculate_qparams(self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def reset_min_max_vals(self) -> None:
        """Forget the range seen so far."""
        self.min_val.fill_(float("inf"))
        self.max_val.fill_(float("-inf"))


class MovingAverageMinMaxObserver(MinMaxObserver):
    """A running average of the minimum and maximum (``min += c * (min(x) - min)``, the first batch's
    taken as is), as torch's ``MovingAverageMinMaxObserver``."""

    def __init__(
        self,
        averaging_constant: float = 0.01,
        dtype: Any = quint8,
        qscheme: Any = per_tensor_affine,
        reduce_range: bool = False,
        quant_min: int | None = None,
        quant_max: int | None = None,
        eps: float = _FLOAT32_EPS,
        is_dynamic: bool = False,
        **kwargs: Any,
    ) -> None:
        self.averaging_constant = averaging_constant
        super().__init__(
            dtype=dtype,
            qscheme=qscheme,
            reduce_range=reduce_range,
            quant_min=quant_min,
            quant_max=quant_max,
            eps=eps,
            is_dynamic=is_dynamic,
            **kwargs,
        )

    def forward(self, x_orig: Tensor) -> Tensor:
        if x_orig.numel() == 0:
            return x_orig
        x = x_orig.detach().to(self.min_val.dtype)
        min_val, max_val = self.min_val, self.max_val
        if float(min_val) == float("inf") and float(max_val) == float("-inf"):
            min_val, max_val = ops.aminmax(x)
        else:
            lo, hi = ops.aminmax(x)
            min_val = min_val + self.averaging_constant * (lo - min_val)
            max_val = max_val + self.averaging_constant * (hi - max_val)
        self.min_val.copy_(min_val)
        self.max_val.copy_(max_val)
        return x_orig


def _take_shapes(module: nn.Module, state_dict: Any, prefix: str, names: tuple[str, ...]) -> None:
    """Give ``module``'s buffers ``names`` the shapes of the checkpoint's (torch's observers and
    FakeQuantize resize theirs on load: a per-channel one holds one value per channel only once it
    has seen data, so a fresh module must take a trained one's state)."""
    for name in names:
        value = state_dict.get(prefix + name)
        own = getattr(module, name)
        if value is not None and tuple(getattr(value, "shape", ())) != tuple(own.shape):
            setattr(module, name, zeros(tuple(value.shape), dtype=own.dtype))


class PerChannelMinMaxObserver(UniformQuantizationObserverBase):
    """The running minimum and maximum of each index of dim ``ch_axis``, and per-channel qparams, as
    torch's ``PerChannelMinMaxObserver``."""

    def __init__(
        self,
        ch_axis: int = 0,
        dtype: Any = quint8,
        qscheme: Any = per_channel_affine,
        reduce_range: bool = False,
        quant_min: int | None = None,
        quant_max: int | None = None,
        factory_kwargs: Any = None,
        eps: float = _FLOAT32_EPS,
        is_dynamic: bool = False,
        **kwargs: Any,
    ) -> None:
        if qscheme not in PER_CHANNEL:
            raise ArgumentError(
                f"{type(self).__name__}: qscheme must be ds.per_channel_affine, ds.per_channel_symmetric or "
                f"ds.per_channel_affine_float_qparams, got {qscheme!r}"
            )
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs, eps, is_dynamic, **kwargs)
        self.ch_axis = ch_axis
        self.register_buffer("min_val", tensor([], dtype=float32))
        self.register_buffer("max_val", tensor([], dtype=float32))
        if qscheme is per_channel_symmetric and reduce_range and integer_kind(dtype) == "quint8":
            raise ArgumentError(f"{type(self).__name__}: cannot reduce range for symmetric quantization for quint8")

    def _channel_rows(self, x_orig: Tensor) -> Tensor:
        x = x_orig.detach()
        axes = list(range(x.ndim))
        axes[self.ch_axis], axes[0] = 0, self.ch_axis
        return ops.flatten(x.permute(axes).to(self.min_val.dtype), start_dim=1)

    def _store(self, min_val: Tensor, max_val: Tensor) -> None:
        if tuple(self.min_val.shape) != tuple(min_val.shape):
            self.min_val.resize_(min_val.shape)
            self.max_val.resize_(max_val.shape)
        self.min_val.copy_(min_val)
        self.max_val.copy_(max_val)

    def forward(self, x_orig: Tensor) -> Tensor:
        if x_orig.numel() == 0:
            return x_orig
        y = self._channel_rows(x_orig)
        lo, hi = ops.aminmax(y, dim=1)
        if self.min_val.numel() != 0 and self.max_val.numel() != 0:
            lo, hi = ops.minimum(lo, self.min_val), ops.maximum(hi, self.max_val)
        self._store(lo, hi)
        return x_orig

    def calculate_qparams(self) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        return self._calculate_qparams(self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any) -> None:
        _take_shapes(self, state_dict, prefix, ("min_val", "max_val"))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def reset_min_max_vals(self) -> None:
        self.min_val = tensor([], dtype=float32)
        self.max_val = tensor([], dtype=float32)


class MovingAveragePerChannelMinMaxObserver(PerChannelMinMaxObserver):
    """The per-channel running averages of the minimum and maximum, as torch's
    ``MovingAveragePerChannelMinMaxObserver``."""

    def __init__(
        self,
        averaging_constant: float = 0.01,
        ch_axis: int = 0,
        dtype: Any = quint8,
        qscheme: Any = per_channel_affine,
        reduce_range: bool = False,
        quant_min: int | None = None,
        quant_max: int | None = None,
        eps: float = _FLOAT32_EPS,
        is_dynamic: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            ch_axis=ch_axis,
            dtype=dtype,
            qscheme=qscheme,
            reduce_range=reduce_range,
            quant_min=quant_min,
            quant_max=quant_max,
            eps=eps,
            is_dynamic=is_dynamic,
            **kwargs,
        )
        self.averaging_constant = averaging_constant

    def forward(self, x_orig: Tensor) -> Tensor:
        if x_orig.numel() == 0:
            return x_orig
        y = self._channel_rows(x_orig)
        lo, hi = ops.aminmax(y, dim=1)
        if self.min_val.numel() != 0 and self.max_val.numel() != 0:
            lo = self.min_val + self.averaging_constant * (lo - self.min_val)
            hi = self.max_val + self.averaging_constant * (hi - self.max_val)
        self._store(lo, hi)
        return x_orig


default_observer = MinMaxObserver.with_args(quant_min=0, quant_max=127)
default_weight_observer = MinMaxObserver.with_args(dtype=qint8, qscheme=per_tensor_symmetric)
default_per_channel_weight_observer = PerChannelMinMaxObserver.with_args(dtype=qint8, qscheme=per_channel_symmetric)
