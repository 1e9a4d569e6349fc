"""Lazy modules: layers that learn their input size from the first batch (PyTorch's ``nn.LazyLinear``,
``nn.LazyConv2d``, ``nn.LazyBatchNorm1d``...).

Until the first forward their weights are :class:`UninitializedParameter` s (no shape, no values);
the first call reads ``in_features`` / ``in_channels`` / ``num_features`` from its input, makes the
weights, initializes them as the plain layer does, and the module BECOMES the plain layer
(``type(m) is nn.Linear`` afterwards, as in PyTorch). Loading a state dict into a lazy module
initializes it with the loaded shapes.

An optimizer built before the first forward (as d2l's Trainer builds it) takes the uninitialized
parameters, as PyTorch's do, and makes their buffers at its first step after that forward.
"""

from __future__ import annotations

import itertools
from typing import Any

from .. import backend
from ..errors import ArgumentError, ArgumentTypeError, ShapeError, UninitializedError
from ..random import fork_rng
from ..tensor import Tensor, zeros
from .conv_transpose import ConvTranspose1d, ConvTranspose2d
from .convolution import Conv1d, Conv2d
from .layers import Linear
from .module import Module, Parameter
from .module.parameter import UninitializedBuffer, UninitializedParameter, is_lazy
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from .volumetric import Conv3d, ConvTranspose3d

__all__ = [
    "LazyModuleMixin",
    "LazyLinear",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "LazyInstanceNorm1d",
    "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
]


class LazyModuleMixin:
    """What every lazy module shares (PyTorch's ``torch.nn.modules.lazy.LazyModuleMixin``): a forward
    pre-hook that calls :meth:`initialize_parameters` with the first input and then turns the module
    into ``cls_to_become``, and a load_state_dict pre-hook that gives uninitialized entries the
    shapes of the loaded values.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> layer = nn.LazyLinear(3)
        >>> layer.has_uninitialized_params()
        True
        >>> _ = layer(ds.ones(2, 5))
        >>> type(layer).__name__, layer.weight.shape
        ('Linear', downslope.Size([3, 5]))
    """

    cls_to_become: type[Module] | None = None
    _parameters: dict[str, Any]
    _buffers: dict[str, Any]

    def _setup_lazy(self) -> None:
        module: Any = self
        module._load_hook = module._register_load_state_dict_pre_hook(self._lazy_load_hook)
        module._initialize_hook = module.register_forward_pre_hook(self._infer_parameters)

    def _lazy_load_hook(self, state_dict: Any, prefix: str, *rest: Any) -> None:
        """Give each uninitialized parameter or buffer the shape of the value about to be loaded into it."""
        for name, param in itertools.chain(self._parameters.items(), self._buffers.items()):
            key = prefix + name
            if key in state_dict and param is not None and is_lazy(param):
                value = state_dict[key]
                if not is_lazy(value):
                    param.materialize(_shape_of(value, key))

    def initialize_parameters(self, *args: Any, **kwargs: Any) -> None:
        """Make the parameters from the first input (each lazy class defines it)."""
        raise NotImplementedError(f"initialize_parameters is not implemented for {type(self).__name__}")

    def has_uninitialized_params(self) -> bool:
        """Whether any of this module's own parameters or buffers is still uninitialized."""
        return any(is_lazy(t) for t in itertools.chain(self._parameters.values(), self._buffers.values()))

    def _infer_parameters(self, module: Any, args: tuple[Any, ...]) -> None:
        module.initialize_parameters(*args)
        if module.has_uninitialized_params():
            raise UninitializedError(f"module {type(module).__name__} has not been fully initialized")
        module._initialize_hook.remove()
        module._load_hook.remove()
        delattr(module, "_initialize_hook")
        delattr(module, "_load_hook")
        hooks = module.__dict__.get("_hooks")
        if hooks is not None and not any(hooks.values()):
            del module.__dict__["_hooks"]  # no hook left: the plain layer's fast call path again
        become = module.__dict__.get("cls_to_become", type(module).cls_to_become)
        if become is not None:
            module.__dict__.pop("cls_to_become", None)
            module.__class__ = become

    def _replicate_for_data_parallel(self) -> None:
        raise UninitializedError(
            "Modules with uninitialized parameters can't be used with `DataParallel`. "
            "Run a dummy forward pass to correctly initialize the modules"
        )


def _shape_of(value: Any, key: str) -> tuple[int, ...]:
    shape = getattr(value, "shape", None)
    if shape is None:
        raise ArgumentTypeError(f"load_state_dict: {key!r} is a {type(value).__name__}, expected a tensor or array")
    return tuple(int(s) for s in shape)


def _input(x: Any, where: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(f"{where}: expected a Tensor input, got {type(x).__name__}")
    return x


def _build_plain(self: Module, init: Any, *args: Any, **kwargs: Any) -> None:
    """Run the plain layer's constructor (with a stand-in size, since lazy sizes are 0 until the first
    forward) without drawing from the generator: the weights are drawn at the first forward, so a
    seeded lazy layer gets the numbers the plain layer would get with the same seed."""
    with fork_rng():
        init(self, *args, **kwargs)


def _uninitialized_like(old: Parameter | None) -> UninitializedParameter | None:
    if old is None:
        return None
    return UninitializedParameter(old.requires_grad, dtype=old.array.dtype)


# ---------------------------------------------------------------------------------------------- Linear
class LazyLinear(LazyModuleMixin, Linear):
    """:class:`Linear` whose ``in_features`` is read from the first input's last dim.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> layer = nn.LazyLinear(4)
        >>> layer  # torch's repr: in_features is 0 until the first forward
        LazyLinear(in_features=0, out_features=4, bias=True)
        >>> layer(ds.randn(2, 7)).shape, isinstance(layer, nn.Linear), layer.in_features
        (downslope.Size([2, 4]), True, 7)
    """

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        # device and dtype: the placeholders are cast and moved by Module's constructor wrapper
        _build_plain(self, Linear.__init__, 1, out_features, bias)
        self.in_features = 0
        self.weight = _uninitialized_like(self.weight)  # type: ignore[assignment]
        if bias:
            self.bias = _uninitialized_like(self.bias)
        self._setup_lazy()

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Any) -> None:
        """Set ``in_features`` from the input's last dim, make the weights and initialize them."""
        x = _input(input, type(self).__name__)
        if x.ndim == 0:
            raise ShapeError(f"{type(self).__name__}: expected input of shape (..., in_features), got {tuple(x.shape)}")
        if self.has_uninitialized_params():
            self.in_features = int(x.shape[-1])
            weight: Any = self.weight
            bias: Any = self.bias
            weight.materialize((self.out_features, self.in_features))
            if bias is not None:
                bias.materialize((self.out_features,))
            self.reset_parameters()
        if self.in_features == 0:  # made by load_state_dict: the loaded weight gives the size
            if x.shape[-1] != self.weight.shape[-1]:
                raise ShapeError(
                    f"{type(self).__name__}: the in_features inferred from input: {x.shape[-1]} is not equal "
                    f"to in_features from self.weight: {self.weight.shape[-1]}"
                )
            self.in_features = int(x.shape[-1])


# ---------------------------------------------------------------------------------------------- convolutions
class _LazyConvXdMixin(LazyModuleMixin):
    groups: int
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    _spatial: int
    _transposed: bool
    weight: Any
    bias: Any

    def _lazy_conv_setup(self, bias: bool) -> None:
        self.in_channels = 0
        self.weight = _uninitialized_like(self.weight)
        if bias:
            self.bias = _uninitialized_like(self.bias)
        self._setup_lazy()

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()  # type: ignore[misc]

    def _get_in_channels(self, x: Tensor) -> int:
        n = self._spatial
        if x.ndim not in (n + 1, n + 2):
            raise ShapeError(
                f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {type(self).__name__}, "
                f"but got input of size: {tuple(x.shape)}"
            )
        return int(x.shape[1] if x.ndim == n + 2 else x.shape[0])

    def initialize_parameters(self, input: Any, *args: Any, **kwargs: Any) -> None:
        """Set ``in_channels`` from the input's channel dim, make the weights and initialize them."""
        x = _input(input, type(self).__name__)
        if self.has_uninitialized_params():
            self.in_channels = self._get_in_channels(x)
            if self.in_channels % self.groups != 0:
                raise ArgumentError("in_channels must be divisible by groups")
            if self._transposed:
                shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
            else:
                shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
            self.weight.materialize(shape)
            if self.bias is not None:
                self.bias.materialize((self.out_channels,))
            self.reset_parameters()
        elif self.in_channels == 0:  # made by load_state_dict: the loaded weight gives the size
            w = self.weight.shape
            self.in_channels = int(w[0] if self._transposed else w[1] * self.groups)


class _LazyConvInit:
    """The constructor the three lazy convolutions share (PyTorch's argument order)."""

    def __init__(
        self,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        # device and dtype: the placeholders are cast and moved by Module's constructor wrapper
        plain: Any = type(self).cls_to_become  # type: ignore[attr-defined]
        args = (out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode)
        _build_plain(self, plain.__init__, groups, *args)  # type: ignore[arg-type]
        self._lazy_conv_setup(bias)  # type: ignore[attr-defined]


class LazyConv1d(_LazyConvInit, _LazyConvXdMixin, Conv1d):
    """:class:`Conv1d` whose ``in_channels`` is read from the first input.

    Example:
        >>> import downslope as ds
        >>> conv = ds.nn.LazyConv1d(4, 3)
        >>> conv(ds.randn(2, 5, 10)).shape, type(conv).__name__, conv.weight.shape
        (downslope.Size([2, 4, 8]), 'Conv1d', downslope.Size([4, 5, 3]))
    """

    cls_to_become = Conv1d


class LazyConv2d(_LazyConvInit, _LazyConvXdMixin, Conv2d):
    """:class:`Conv2d` whose ``in_channels`` is read from the first input.

    Example:
        >>> import downslope as ds
        >>> conv = ds.nn.LazyConv2d(8, 3, padding=1)
        >>> conv  # torch's repr: in_channels is 0 until the first forward
        LazyConv2d(0, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
        >>> conv(ds.randn(2, 3, 6, 6)).shape, conv.in_channels
        (downslope.Size([2, 8, 6, 6]), 3)
    """

    cls_to_become = Conv2d


class LazyConv3d(_LazyConvInit, _LazyConvXdMixin, Conv3d):
    """:class:`Conv3d` whose ``in_channels`` is read from the first input.

    Example:
        >>> import downslope as ds
        >>> conv = ds.nn.LazyConv3d(2, 2)
        >>> conv(ds.randn(1, 3, 4, 4, 4)).shape, conv.weight.shape
        (downslope.Size([1, 2, 3, 3, 3]), downslope.Size([2, 3, 2, 2, 2]))
    """

    cls_to_become = Conv3d


class _LazyConvTransposeInit:
    """The constructor the three lazy transposed convolutions share (PyTorch's argument order)."""

    def __init__(
        self,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        # device and dtype: the placeholders are cast and moved by Module's constructor wrapper
        plain: Any = type(self).cls_to_become  # type: ignore[attr-defined]
        args = (out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation, padding_mode)
        _build_plain(self, plain.__init__, groups, *args)  # type: ignore[arg-type]
        self._lazy_conv_setup(bias)  # type: ignore[attr-defined]


class LazyConvTranspose1d(_LazyConvTransposeInit, _LazyConvXdMixin, ConvTranspose1d):
    """:class:`ConvTranspose1d` whose ``in_channels`` is read from the first input.

    Example:
        >>> import downslope as ds
        >>> up = ds.nn.LazyConvTranspose1d(2, 3, stride=2)
        >>> up(ds.randn(1, 4, 5)).shape, up.weight.shape
        (downslope.Size([1, 2, 11]), downslope.Size([4, 2, 3]))
    """

    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyConvTransposeInit, _LazyConvXdMixin, ConvTranspose2d):
    """:class:`ConvTranspose2d` whose ``in_channels`` is read from the first input.

    Example:
        >>> import downslope as ds
        >>> up = ds.nn.LazyConvTranspose2d(4, 3, groups=2)
        >>> up(ds.randn(6, 5, 5)).shape, up.weight.shape
        (downslope.Size([4, 7, 7]), downslope.Size([6, 2, 3, 3]))
    """

    cls_to_become = ConvTranspose2d


class LazyConvTranspose3d(_LazyConvTransposeInit, _LazyConvXdMixin, ConvTranspose3d):
    """:class:`ConvTranspose3d` whose ``in_channels`` is read from the first input.

    Example:
        >>> import downslope as ds
        >>> up = ds.nn.LazyConvTranspose3d(2, 2)
        >>> up(ds.randn(1, 3, 2, 2, 2)).shape
        downslope.Size([1, 2, 3, 3, 3])
    """

    cls_to_become = ConvTranspose3d


# ---------------------------------------------------------------------------------------------- norms
class _LazyNormBase(LazyModuleMixin):
    """What the lazy batch and instance norms share: ``num_features`` read from the input's dim 1,
    PyTorch's defaults (``affine=True, track_running_stats=True``, for the instance norms too)."""

    num_features: int
    affine: bool
    track_running_stats: bool
    weight: Any
    bias: Any
    running_mean: Any
    running_var: Any
    num_batches_tracked: Any

    def __init__(
        self,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        # device and dtype: the placeholders are cast and moved by Module's constructor wrapper
        plain: Any = type(self).cls_to_become
        _build_plain(self, plain.__init__, 1, eps, momentum, False, False)  # type: ignore[arg-type]
        dt = backend.get_default_dtype()
        self.num_features = 0
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.weight = UninitializedParameter(dtype=dt) if affine else None
        self.bias = UninitializedParameter(dtype=dt) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", UninitializedBuffer(dtype=dt))  # type: ignore[attr-defined]
            self.register_buffer("running_var", UninitializedBuffer(dtype=dt))  # type: ignore[attr-defined]
            self.register_buffer("num_batches_tracked", zeros((), dtype="int64"))  # type: ignore[attr-defined]
        self._setup_lazy()

    def reset_parameters(self) -> None:
        """weight = 1, bias = 0 and the running statistics reset (mean 0, variance 1, no batches)."""
        if self.has_uninitialized_params() or self.num_features == 0:
            return
        if self.track_running_stats:
            self.running_mean.array[...] = 0
            self.running_var.array[...] = 1
            self.num_batches_tracked.array[...] = 0
        if self.weight is not None:
            self.weight.array[...] = 1
        if self.bias is not None:
            self.bias.array[...] = 0

    def initialize_parameters(self, input: Any) -> None:
        """Set ``num_features`` from the input's dim 1, make the weights and statistics and reset them."""
        x = _input(input, type(self).__name__)
        if self.has_uninitialized_params():
            self.num_features = self._channels(x)
            for t in (self.weight, self.bias, getattr(self, "running_mean", None), getattr(self, "running_var", None)):
                if t is not None:
                    t.materialize((self.num_features,))
            self.reset_parameters()
        elif self.num_features == 0:  # made by load_state_dict: the loaded values give the size
            made = self.weight if self.weight is not None else getattr(self, "running_mean", None)
            # with nothing to make (no affine weights, no statistics) PyTorch keeps 0 and ignores the
            # size; the plain layers here check it, so it is read from the input
            self.num_features = self._channels(x) if made is None else int(made.shape[0])

    def _channels(self, x: Tensor) -> int:
        if x.ndim < 2:
            raise ShapeError(f"{type(self).__name__}: expected input (N, C, ...), got shape {tuple(x.shape)}")
        return int(x.shape[1])


class LazyBatchNorm1d(_LazyNormBase, BatchNorm1d):
    """:class:`BatchNorm1d` whose ``num_features`` is read from the first input's dim 1.

    Example:
        >>> import downslope as ds
        >>> bn = ds.nn.LazyBatchNorm1d()
        >>> _ = bn(ds.randn(8, 3)); type(bn).__name__, bn.running_mean.shape
        ('BatchNorm1d', downslope.Size([3]))
    """

    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNormBase, BatchNorm2d):
    """:class:`BatchNorm2d` whose ``num_features`` is read from the first input's dim 1.

    Example:
        >>> import downslope as ds
        >>> bn = ds.nn.LazyBatchNorm2d()
        >>> bn(ds.randn(2, 4, 3, 3)).shape, bn.num_features
        (downslope.Size([2, 4, 3, 3]), 4)
    """

    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyNormBase, BatchNorm3d):
    """:class:`BatchNorm3d` whose ``num_features`` is read from the first input's dim 1.

    Example:
        >>> import downslope as ds
        >>> bn = ds.nn.LazyBatchNorm3d()
        >>> bn(ds.randn(2, 2, 3, 3, 3)).shape, bn.num_features
        (downslope.Size([2, 2, 3, 3, 3]), 2)
    """

    cls_to_become = BatchNorm3d


class _LazyInstanceNorm(_LazyNormBase):
    def _channels(self, x: Tensor) -> int:
        unbatched = x.ndim == self._spatial + 1  # type: ignore[attr-defined]
        if x.ndim < 2:
            raise ShapeError(
                f"{type(self).__name__}: expected input (N, C, ...) or (C, ...), got shape {tuple(x.shape)}"
            )
        return int(x.shape[0] if unbatched else x.shape[1])


class LazyInstanceNorm1d(_LazyInstanceNorm, InstanceNorm1d):
    """:class:`InstanceNorm1d` whose ``num_features`` is read from the first input's dim 1 (PyTorch's
    defaults: ``affine=True, track_running_stats=True``).

    Example:
        >>> import downslope as ds
        >>> norm = ds.nn.LazyInstanceNorm1d()
        >>> norm(ds.randn(2, 3, 5)).shape, norm.weight.shape, norm.running_var.shape
        (downslope.Size([2, 3, 5]), downslope.Size([3]), downslope.Size([3]))
    """

    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyInstanceNorm, InstanceNorm2d):
    """:class:`InstanceNorm2d` whose ``num_features`` is read from the first input's dim 1.

    Example:
        >>> import downslope as ds
        >>> norm = ds.nn.LazyInstanceNorm2d(affine=False, track_running_stats=False)
        >>> norm(ds.randn(2, 3, 4, 4)).shape
        downslope.Size([2, 3, 4, 4])
    """

    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyInstanceNorm, InstanceNorm3d):
    """:class:`InstanceNorm3d` whose ``num_features`` is read from the first input's dim 1.

    Example:
        >>> import downslope as ds
        >>> norm = ds.nn.LazyInstanceNorm3d()
        >>> norm(ds.randn(1, 2, 3, 3, 3)).shape, norm.num_features
        (downslope.Size([1, 2, 3, 3, 3]), 2)
    """

    cls_to_become = InstanceNorm3d
