"""PyTorch's ``FakeQuantize`` (``torch.ao.quantization.fake_quantize``): an observer that sets
``scale`` and ``zero_point`` from the values it sees, then fake quantization with them, the module
quantization-aware training puts on activations and weights.

Example:
    >>> import downslope as ds
    >>> fq = FakeQuantize()
    >>> fq(ds.tensor([-1.0, 0.3, 2.0]))
    tensor([-1.    ,  0.3059,  2.    ])
"""

from __future__ import annotations

from typing import Any

from ... import nn
from ...backend import float32, int32, uint8
from ...errors import ArgumentError
from ...ops.fake_quant import fake_quantize_per_channel_affine, fake_quantize_per_tensor_affine
from ...tensor import Tensor, tensor
from .observer import (
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    _take_shapes,
    _with_args,
    _with_callable_args,
)
from .qtypes import (
    PER_CHANNEL,
    PER_TENSOR,
    integer_kind,
    per_channel_affine_float_qparams,
    per_channel_symmetric,
    per_tensor_affine,
    per_tensor_symmetric,
    qint8,
    qint32,
    quint8,
)

__all__ = [
    "FakeQuantize",
    "FakeQuantizeBase",
    "default_fake_quant",
    "default_per_channel_weight_fake_quant",
    "default_weight_fake_quant",
    "disable_fake_quant",
    "disable_observer",
    "enable_fake_quant",
    "enable_observer",
]

_RANGES = {"quint8": quint8, "qint8": qint8, "qint32": qint32}


class FakeQuantizeBase(nn.Module):
    """What every fake-quantize module has: the switches ``fake_quant_enabled`` and
    ``observer_enabled`` (uint8 buffers, as torch's) and the methods that flip them."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("fake_quant_enabled", tensor([1], dtype=uint8))
        self.register_buffer("observer_enabled", tensor([1], dtype=uint8))

    def forward(self, x: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}: a fake-quantize subclass defines forward")

    def calculate_qparams(self, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}: a fake-quantize subclass defines calculate_qparams")

    def enable_fake_quant(self, enabled: bool = True) -> None:
        self.fake_quant_enabled[0] = 1 if enabled else 0

    def disable_fake_quant(self) -> None:
        self.enable_fake_quant(False)

    def enable_observer(self, enabled: bool = True) -> None:
        self.observer_enabled[0] = 1 if enabled else 0

    def disable_observer(self) -> None:
        self.enable_observer(False)

    with_args = classmethod(_with_args)
    with_callable_args = classmethod(_with_callable_args)


class FakeQuantize(FakeQuantizeBase):
    """Observe, then fake-quantize (torch's ``FakeQuantize``): in ``forward``, while the observer is
    enabled, ``activation_post_process`` (the observer, ``MovingAverageMinMaxObserver`` by default)
    records the input and ``scale``/``zero_point`` are updated from it; while fake quantization is
    enabled the output is ``fake_quantize_per_tensor_affine`` (or ``_per_channel_affine`` for a
    per-channel observer) of the input, with the straight-through gradient."""

    def __init__(
        self,
        observer: Any = MovingAverageMinMaxObserver,
        quant_min: int | None = None,
        quant_max: int | None = None,
        is_dynamic: bool = False,
        **observer_kwargs: Any,
    ) -> None:
        super().__init__()
        if quant_min is not None and quant_max is not None:
            if quant_min > quant_max:
                raise ArgumentError(f"FakeQuantize: quant_min ({quant_min}) must be <= quant_max ({quant_max})")
            dtype = observer_kwargs.get("dtype", quint8)
            if hasattr(observer, "p"):  # a with_args constructor: its bound dtype
                dtype = getattr(getattr(observer, "p", {}), "keywords", {}).get("dtype", dtype)
            kind = _RANGES.get(integer_kind(dtype) or "")
            if kind is not None and not kind.min <= quant_min <= quant_max <= kind.max:
                raise ArgumentError(
                    f"FakeQuantize: [quant_min, quant_max] = [{quant_min}, {quant_max}] is out of {dtype!r}'s range "
                    f"[{kind.min}, {kind.max}]"
                )
            observer_kwargs.update({"quant_min": quant_min, "quant_max": quant_max})
        observer_kwargs["is_dynamic"] = is_dynamic
        self.activation_post_process = observer(**observer_kwargs)
        self.quant_min = self.activation_post_process.quant_min
        self.quant_max = self.activation_post_process.quant_max
        self.is_dynamic = self.activation_post_process.is_dynamic
        float_qparams = self.activation_post_process.qscheme is per_channel_affine_float_qparams
        self.register_buffer("scale", tensor([1.0], dtype=float32))
        self.register_buffer("zero_point", tensor([0], dtype=float32 if float_qparams else int32))
        self.dtype = self.activation_post_process.dtype
        self.qscheme = self.activation_post_process.qscheme
        self.ch_axis = getattr(self.activation_post_process, "ch_axis", -1)
        if self.qscheme not in PER_TENSOR + PER_CHANNEL:
            raise ArgumentError(f"FakeQuantize: only per-channel and per-tensor schemes, got {self.qscheme!r}")
        self.is_per_channel = self.qscheme in PER_CHANNEL

    def calculate_qparams(self) -> Any:  # type: ignore[override]
        return self.activation_post_process.calculate_qparams()

    def forward(self, X: Tensor) -> Tensor:
        if int(self.observer_enabled[0]) == 1:
            self.activation_post_process(X.detach())
            scale, zero_point = self.calculate_qparams()
            if tuple(self.scale.shape) != tuple(scale.shape):
                self.scale.resize_(scale.shape)
                self.zero_point.resize_(zero_point.shape)
            self.scale.copy_(scale)
            self.zero_point.copy_(zero_point)
        if int(self.fake_quant_enabled[0]) == 1:
            if self.is_per_channel:
                X = fake_quantize_per_channel_affine(
                    X, self.scale, self.zero_point, self.ch_axis, self.quant_min, self.quant_max
                )
            else:
                X = fake_quantize_per_tensor_affine(X, self.scale, self.zero_point, self.quant_min, self.quant_max)
        return X

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any) -> None:
        _take_shapes(self, state_dict, prefix, ("scale", "zero_point"))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def extra_repr(self) -> str:
        return (
            f"fake_quant_enabled={self.fake_quant_enabled}, observer_enabled={self.observer_enabled}, "
            f"quant_min={self.quant_min}, quant_max={self.quant_max}, dtype={self.dtype}, qscheme={self.qscheme}, "
            f"ch_axis={self.ch_axis}, scale={self.scale}, zero_point={self.zero_point}"
        )


default_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver,
    quant_min=0,
    quant_max=255,
    dtype=quint8,
    qscheme=per_tensor_affine,
    reduce_range=True,
)
default_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAverageMinMaxObserver,
    quant_min=-128,
    quant_max=127,
    dtype=qint8,
    qscheme=per_tensor_symmetric,
    reduce_range=False,
)
default_per_channel_weight_fake_quant = FakeQuantize.with_args(
    observer=MovingAveragePerChannelMinMaxObserver,
    quant_min=-128,
    quant_max=127,
    dtype=qint8,
    qscheme=per_channel_symmetric,
    reduce_range=False,
    ch_axis=0,
)


def disable_fake_quant(mod: Any) -> None:
    """``model.apply(disable_fake_quant)``: turn fake quantization off in each fake-quantize module."""
    if isinstance(mod, FakeQuantizeBase):
        mod.disable_fake_quant()


def enable_fake_quant(mod: Any) -> None:
    """``model.apply(enable_fake_quant)``: turn fake quantization on in each fake-quantize module."""
    if isinstance(mod, FakeQuantizeBase):
        mod.enable_fake_quant()


def disable_observer(mod: Any) -> None:
    """``model.apply(disable_observer)``: freeze the scale and zero point of each fake-quantize module."""
    if isinstance(mod, FakeQuantizeBase):
        mod.disable_observer()


def enable_observer(mod: Any) -> None:
    """``model.apply(enable_observer)``: let each fake-quantize module update its scale and zero point."""
    if isinstance(mod, FakeQuantizeBase):
        mod.enable_observer()
