"""PyTorch's module path ``torch.nn.utils.memory_format``: converting convolution weights to a memory
format (channels_last), which torch uses to pick NHWC kernels on GPUs.

downslope's arrays have one layout whatever the memory format asked for (``Module.to(memory_format=...)``
takes it too), so the conversion checks its arguments and leaves the weights as they are: values,
shapes and results are those of torch's converted module."""

from __future__ import annotations

from typing import Any, TypeVar

from ...errors import ArgumentTypeError

__all__ = ["convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format"]

_M = TypeVar("_M")


def _check(module: Any, memory_format: Any, where: str) -> None:
    from ... import memory_format as format_type
    from ..module import Module

    if not isinstance(module, Module):
        raise ArgumentTypeError(f"{where}: expected an nn.Module, got {type(module).__name__}")
    if not isinstance(memory_format, format_type):
        raise ArgumentTypeError(
            f"{where}: expected a memory format (ds.channels_last, ds.contiguous_format ...), got {memory_format!r}"
        )


def convert_conv2d_weight_memory_format(module: _M, memory_format: Any) -> _M:
    """torch converts the weight of every Conv2d and ConvTranspose2d in ``module`` (recursively) to
    ``memory_format``; here the weights keep their one layout. Returns ``module``.

    Example:
        >>> import downslope as ds
        >>> net = ds.nn.Sequential(ds.nn.Conv2d(3, 4, 3))
        >>> ds.nn.utils.convert_conv2d_weight_memory_format(net, ds.channels_last) is net
        True
    """
    _check(module, memory_format, "convert_conv2d_weight_memory_format")
    return module


def convert_conv3d_weight_memory_format(module: _M, memory_format: Any) -> _M:
    """The 3-D form of :func:`convert_conv2d_weight_memory_format` (Conv3d and ConvTranspose3d weights,
    ``ds.channels_last_3d``). Returns ``module``."""
    _check(module, memory_format, "convert_conv3d_weight_memory_format")
    return module
