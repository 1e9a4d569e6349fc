"""The quantization schemes and quantized integer types PyTorch's observers take
(``torch.per_tensor_affine``, ``torch.quint8``, ...). downslope has no quantized tensors, so these are
only descriptions: an observer reads its integer range and scheme from them."""

from __future__ import annotations

from typing import Any

import numpy as np


class qscheme:  # noqa: N801  (torch's name)
    """A quantization scheme (torch's ``torch.qscheme``): per tensor or per channel, affine or symmetric."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self) -> str:
        return self.name  # pickles (copy.deepcopy of an observer) as the module-level constant


per_tensor_affine = qscheme("per_tensor_affine")
per_tensor_symmetric = qscheme("per_tensor_symmetric")
per_channel_affine = qscheme("per_channel_affine")
per_channel_symmetric = qscheme("per_channel_symmetric")
per_channel_affine_float_qparams = qscheme("per_channel_affine_float_qparams")

PER_TENSOR = (per_tensor_affine, per_tensor_symmetric)
PER_CHANNEL = (per_channel_affine, per_channel_symmetric, per_channel_affine_float_qparams)
SYMMETRIC = (per_tensor_symmetric, per_channel_symmetric)


class QuantizedDtype:
    """A quantized integer type (torch's ``torch.quint8``, ``torch.qint8``, ``torch.qint32``): its name
    and range. No downslope tensor holds one; observers and fake quantization read the range."""

    def __init__(self, name: str, integer: Any) -> None:
        self.name = name
        self.min = int(np.iinfo(integer).min)
        self.max = int(np.iinfo(integer).max)

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self) -> str:
        return self.name


quint8 = QuantizedDtype("quint8", np.uint8)
qint8 = QuantizedDtype("qint8", np.int8)
qint32 = QuantizedDtype("qint32", np.int32)


def integer_kind(dtype: Any) -> str | None:
    """'qint8' style name of the integer type ``dtype`` stands for (a QuantizedDtype or a plain
    int8/uint8/int32 dtype, as torch's observers also take), or None."""
    if isinstance(dtype, QuantizedDtype):
        return dtype.name
    try:
        kind = np.dtype(getattr(dtype, "numpy_dtype", dtype))
    except TypeError:
        return None
    return {np.dtype(np.uint8): "quint8", np.dtype(np.int8): "qint8", np.dtype(np.int32): "qint32"}.get(kind)
