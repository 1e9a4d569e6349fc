"""``torch.nn.utils.fusion``: folding an eval-mode batch norm into the convolution or linear layer before
it (the same functions as ``downslope.nn.utils``'s), for code that imports them from this path.

Example:
    >>> import downslope as ds
    >>> fuse_conv_bn_eval is ds.nn.utils.fuse_conv_bn_eval
    True
"""

from __future__ import annotations

from . import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights"]
