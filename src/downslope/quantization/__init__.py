"""PyTorch's ``torch.quantization``, the older path of ``torch.ao.quantization``: the same names
(see :mod:`downslope.ao.quantization`)."""

from __future__ import annotations

from typing import Any

from ..ao.quantization import *  # noqa: F403  (torch.quantization re-exports torch.ao.quantization)
from ..ao.quantization import __all__ as __all__
from ..ao.quantization import fake_quantize as fake_quantize
from ..ao.quantization import observer as observer
from ..ao.quantization import qconfig as qconfig
from ..ao.quantization import quantize as quantize
from ..ao.quantization import stubs as stubs


def __getattr__(name: str) -> Any:
    from .._unsupported import missing_module_attribute  # says why for the names left out

    missing_module_attribute(name, "torch.quantization")
