"""PyTorch's ``torch.ao.quantization`` (also ``torch.quantization``), the part that runs in floating
point: fake quantization for quantization-aware training.

Present, with torch's values: the observers (:class:`MinMaxObserver`,
:class:`MovingAverageMinMaxObserver`, :class:`PerChannelMinMaxObserver`,
:class:`MovingAveragePerChannelMinMaxObserver`), :class:`FakeQuantize` and its defaults,
:class:`QConfig` / :func:`get_default_qat_qconfig`, :class:`QuantStub` / :class:`DeQuantStub` (the
identity, as torch's before ``convert``), and the switches ``enable_observer``/``disable_observer``/
``enable_fake_quant``/``disable_fake_quant`` for ``model.apply``.

Also torch's eager-mode preparation: :func:`prepare_qat` (Linear and Conv2d swapped for
``downslope.ao.nn.qat``'s, which fake-quantize their weights, and ``activation_post_process`` on the
quantizable outputs), :func:`prepare` and :func:`propagate_qconfig_`.

Left out, with the reason in the error: what makes or runs quantized (int8) tensors and modules
(``convert``, ``quantize``, ``quantize_dynamic``) and module fusion (``fuse_modules``).

Example:
    >>> import downslope as ds
    >>> fq = get_default_qat_qconfig("x86").weight()
    >>> w = ds.tensor([[0.5, -1.0], [0.25, 2.0]])
    >>> fq(w).shape
    downslope.Size([2, 2])
"""

from __future__ import annotations

from typing import Any

from . import fake_quantize as fake_quantize
from . import observer as observer
from . import qconfig as qconfig
from . import quantize as quantize
from . import stubs as stubs
from .fake_quantize import (
    FakeQuantize,
    FakeQuantizeBase,
    default_fake_quant,
    default_per_channel_weight_fake_quant,
    default_weight_fake_quant,
    disable_fake_quant,
    disable_observer,
    enable_fake_quant,
    enable_observer,
)
from .observer import (
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MovingAveragePerChannelMinMaxObserver,
    ObserverBase,
    PerChannelMinMaxObserver,
    UniformQuantizationObserverBase,
    default_observer,
    default_per_channel_weight_observer,
    default_weight_observer,
)
from .qconfig import QConfig, default_qat_qconfig, get_default_qat_qconfig
from .quantize import get_default_qat_module_mappings, prepare, prepare_qat, propagate_qconfig_
from .stubs import DeQuantStub, QuantStub, QuantWrapper

__all__ = [
    "DeQuantStub",
    "FakeQuantize",
    "FakeQuantizeBase",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "MovingAveragePerChannelMinMaxObserver",
    "ObserverBase",
    "PerChannelMinMaxObserver",
    "QConfig",
    "QuantStub",
    "QuantWrapper",
    "UniformQuantizationObserverBase",
    "default_fake_quant",
    "default_observer",
    "default_per_channel_weight_fake_quant",
    "default_per_channel_weight_observer",
    "default_qat_qconfig",
    "default_weight_fake_quant",
    "default_weight_observer",
    "disable_fake_quant",
    "disable_observer",
    "enable_fake_quant",
    "enable_observer",
    "get_default_qat_module_mappings",
    "get_default_qat_qconfig",
    "prepare",
    "prepare_qat",
    "propagate_qconfig_",
]


def __getattr__(name: str) -> Any:
    from ..._unsupported import missing_module_attribute  # says why for the names left out

    missing_module_attribute(name, "torch.ao.quantization")
