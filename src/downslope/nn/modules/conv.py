"""``torch.nn.modules.conv``: the convolutions and their base ``_ConvNd`` (every convolution and
transposed convolution, lazy ones included, as in PyTorch).

Example:
    >>> import downslope as ds
    >>> isinstance(ds.nn.Conv3d(1, 1, 1), _ConvNd), isinstance(ds.nn.ConvTranspose2d(1, 1, 1), _ConvNd)
    (True, True)
"""

from __future__ import annotations

from .. import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
    LazyConv1d,
    LazyConv2d,
    LazyConv3d,
    LazyConvTranspose1d,
    LazyConvTranspose2d,
    LazyConvTranspose3d,
)
from ..convolution import _ConvLayer as _ConvNd

__all__ = [
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "LazyConv1d",
    "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d", "_ConvNd",
]  # fmt: skip
