"""PyTorch's ``torch.ao.nn.qat``: :class:`Linear` and :class:`Conv2d` whose forward fake-quantizes the
weight (``weight_fake_quant``, built from the ``qconfig``), which ``prepare_qat`` swaps in.

Example:
    >>> import downslope as ds
    >>> from downslope.ao.quantization import get_default_qat_qconfig
    >>> layer = ds.ao.nn.qat.Linear(3, 2, qconfig=get_default_qat_qconfig())
    >>> layer(ds.ones(1, 3)).shape
    downslope.Size([1, 2])
"""

from __future__ import annotations

from .modules import Conv2d, Linear

__all__ = ["Conv2d", "Linear"]
