"""PyTorch's ``QConfig`` and its default for quantization-aware training: which fake-quantize
constructors go on activations and on weights.

Example:
    >>> qconfig = get_default_qat_qconfig("qnnpack")
    >>> type(qconfig.activation()).__name__
    'FakeQuantize'
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ...errors import ArgumentError
from .fake_quantize import FakeQuantize, default_per_channel_weight_fake_quant, default_weight_fake_quant
from .observer import MovingAverageMinMaxObserver

__all__ = ["QConfig", "default_qat_qconfig", "get_default_qat_qconfig"]


class QConfig(NamedTuple):
    """The constructors of the activation and weight fake-quantize (or observer) modules."""

    activation: Any
    weight: Any


default_qat_qconfig = QConfig(
    activation=FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255),
    weight=default_weight_fake_quant,
)

_BACKENDS = ("fbgemm", "x86", "qnnpack", "onednn")


def get_default_qat_qconfig(backend: str = "x86", version: int = 1) -> QConfig:
    """torch's default QAT qconfig for ``backend``: activations fake-quantized to quint8 with a
    moving-average observer (7 bits for fbgemm/x86, ``reduce_range``), weights to qint8 symmetric,
    per channel (per tensor for qnnpack), torch's ``version=0`` modules, with its values. torch's
    default ``version=1`` puts its fused observe-and-quantize kernel (``FusedMovingAvgObsFakeQuantize``)
    in their place, whose scales differ from these in the last bits (and whose symmetric per-channel
    zero point can differ); here both versions give :class:`FakeQuantize`."""
    if backend not in _BACKENDS:
        raise ArgumentError(f"get_default_qat_qconfig: backend must be one of {list(_BACKENDS)}, got {backend!r}")
    if version not in (0, 1):
        raise ArgumentError(f"get_default_qat_qconfig: version must be 0 or 1, got {version!r}")
    reduce_range = backend in ("fbgemm", "x86")
    activation = FakeQuantize.with_args(
        observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, reduce_range=reduce_range
    )
    if backend == "onednn":
        activation = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255)
    weight = default_weight_fake_quant if backend == "qnnpack" else default_per_channel_weight_fake_quant
    return QConfig(activation=activation, weight=weight)
