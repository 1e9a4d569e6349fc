"""torch.nn.grad: the gradients of conv1d/2d/3d with respect to their input or weight, given the
output's gradient (per-sample gradients, custom autograd Functions around a convolution).

Each is the convolution op's own backward rule, run through ``autograd.grad`` on a zero operand of
the requested size, so it agrees with the gradient the op gives in training, and under grad mode it
is recorded (differentiable in the other operand and in ``grad_output``, as torch's).

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> nn.grad.conv1d_input((1, 1, 4), ds.tensor([[[1.0, -1.0]]]), ds.tensor([[[1.0, 2.0, 3.0]]]))
    tensor([[[ 1.,  1.,  1., -3.]]])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from ..autograd import grad as _autograd_grad
from ..errors import ArgumentTypeError, ShapeError
from ..graph import enable_grad, is_grad_enabled
from ..tensor import Tensor, zeros
from .convolution import conv1d, conv2d
from .volumetric import conv3d

__all__ = ["conv1d_input", "conv1d_weight", "conv2d_input", "conv2d_weight", "conv3d_input", "conv3d_weight"]

Conv = Callable[..., Tensor]


def _size(size: Any, where: str, what: str) -> tuple[int, ...]:
    """A shape given as a torch.Size, tuple or list of non-negative ints."""
    if isinstance(size, Tensor) or not isinstance(size, Sequence) or isinstance(size, str):
        raise ArgumentTypeError(f"{where}: {what} must be a sequence of ints (a shape), got {size!r}")
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in size):
        raise ArgumentTypeError(f"{where}: {what} must hold non-negative ints, got {tuple(size)!r}")
    return tuple(int(n) for n in size)


def _gradient(
    conv: Conv,
    input: Tensor,
    weight: Tensor,
    grad_output: Tensor,
    of_input: bool,
    options: tuple[Any, Any, Any, int],
    where: str,
) -> Tensor:
    """The gradient of ``conv(input, weight, None, *options)`` with respect to the input or the weight."""
    if not isinstance(grad_output, Tensor):
        raise ArgumentTypeError(f"{where}: grad_output must be a Tensor, got {type(grad_output).__name__}")
    other = weight if of_input else input
    # recorded (torch's result is differentiable) when grad mode is on and an operand it depends on wants it
    record = is_grad_enabled() and (other.requires_grad or grad_output.requires_grad)
    with enable_grad():
        given = other if record else other.detach()
        x = input.detach().requires_grad_(True) if of_input else given
        w = given if of_input else weight.detach().requires_grad_(True)
        out = conv(x, w, None, *options)
        if out.shape != grad_output.shape:
            raise ShapeError(
                f"{where}: grad_output has shape {tuple(grad_output.shape)}, but the convolution of an input of shape "
                f"{tuple(x.shape)} with a weight of shape {tuple(w.shape)} gives {tuple(out.shape)}"
            )
        (result,) = _autograd_grad(out, x if of_input else w, grad_output, create_graph=record)
    return cast(Tensor, result)  # never None: the convolution reaches both operands


def _input_grad(conv: Conv, input_size: Any, weight: Tensor, grad_output: Tensor, options: Any, where: str) -> Tensor:
    if not isinstance(weight, Tensor):
        raise ArgumentTypeError(f"{where}: weight must be a Tensor, got {type(weight).__name__}")
    size = _size(input_size, where, "input_size")
    zero = zeros(*size, dtype=grad_output.dtype, device=grad_output.device)
    return _gradient(conv, zero, weight, grad_output, True, options, where)


def _weight_grad(conv: Conv, input: Tensor, weight_size: Any, grad_output: Tensor, options: Any, where: str) -> Tensor:
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"{where}: input must be a Tensor, got {type(input).__name__}")
    size = _size(weight_size, where, "weight_size")
    zero = zeros(*size, dtype=grad_output.dtype, device=grad_output.device)
    return _gradient(conv, input, zero, grad_output, False, options, where)


def conv1d_input(
    input_size: Sequence[int],
    weight: Tensor,
    grad_output: Tensor,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """The gradient of conv1d with respect to its input, of shape ``input_size`` (N, C_in, L)."""
    return _input_grad(conv1d, input_size, weight, grad_output, (stride, padding, dilation, groups), "conv1d_input")


def conv1d_weight(
    input: Tensor,
    weight_size: Sequence[int],
    grad_output: Tensor,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """The gradient of conv1d with respect to its weight, of shape ``weight_size`` (C_out, C_in / groups, k)."""
    return _weight_grad(conv1d, input, weight_size, grad_output, (stride, padding, dilation, groups), "conv1d_weight")


def conv2d_input(
    input_size: Sequence[int],
    weight: Tensor,
    grad_output: Tensor,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """The gradient of conv2d with respect to its input, of shape ``input_size`` (N, C_in, H, W).

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> nn.grad.conv2d_input((1, 1, 2, 2), ds.ones(1, 1, 1, 1), ds.ones(1, 1, 1, 1), stride=2).tolist()
        [[[[1.0, 0.0], [0.0, 0.0]]]]
    """
    return _input_grad(conv2d, input_size, weight, grad_output, (stride, padding, dilation, groups), "conv2d_input")


def conv2d_weight(
    input: Tensor,
    weight_size: Sequence[int],
    grad_output: Tensor,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """The gradient of conv2d with respect to its weight, of shape ``weight_size`` (C_out, C_in / groups, kh, kw)."""
    return _weight_grad(conv2d, input, weight_size, grad_output, (stride, padding, dilation, groups), "conv2d_weight")


def conv3d_input(
    input_size: Sequence[int],
    weight: Tensor,
    grad_output: Tensor,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """The gradient of conv3d with respect to its input, of shape ``input_size`` (N, C_in, D, H, W)."""
    return _input_grad(conv3d, input_size, weight, grad_output, (stride, padding, dilation, groups), "conv3d_input")


def conv3d_weight(
    input: Tensor,
    weight_size: Sequence[int],
    grad_output: Tensor,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """The gradient of conv3d with respect to its weight, of shape ``weight_size`` (C_out, C_in / groups, kd, kh, kw)."""
    return _weight_grad(conv3d, input, weight_size, grad_output, (stride, padding, dilation, groups), "conv3d_weight")
