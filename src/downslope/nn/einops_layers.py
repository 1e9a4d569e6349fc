"""einops' layers as downslope Modules: ``Rearrange``, ``Reduce`` and ``EinMix``, what
``einops.layers.torch`` gives torch (whose classes subclass ``torch.nn.Module``). Ported code changes one
import line: ``from einops.layers.torch import Rearrange`` becomes ``from downslope.nn import Rearrange``.

They are einops' own layer mixins (the pattern parsed once, the same recipes, reprs and errors) over
:class:`downslope.nn.Module`; the computation goes through einops' downslope backend
(``downslope.ops._einops``), so gradients flow through. Needs the optional package einops.

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> model = nn.Sequential(nn.Rearrange("b c h w -> b (c h w)"), nn.Linear(12, 2))
    >>> model(ds.zeros(5, 3, 2, 2)).shape
    downslope.Size([5, 2])
"""

from __future__ import annotations

from typing import Any

from einops.layers import RearrangeMixin, ReduceMixin
from einops.layers._einmix import _EinmixMixin

from .. import ops
from ..tensor import Tensor, empty
from .module import Module, Parameter


class Rearrange(RearrangeMixin, Module):
    """einops' ``rearrange`` as a layer (``einops.layers.torch.Rearrange``).

    Example:
        >>> import downslope as ds
        >>> ds.nn.Rearrange("b (h p) -> b h p", p=2)(ds.zeros(3, 8)).shape
        downslope.Size([3, 4, 2])
    """

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002  (torch's argument name)
        return self._apply_recipe(input)


class Reduce(ReduceMixin, Module):
    """einops' ``reduce`` as a layer (``einops.layers.torch.Reduce``): 'mean', 'max', 'min', 'sum' or
    'prod' over the axes the pattern drops.

    Example:
        >>> import downslope as ds
        >>> ds.nn.Reduce("b c h w -> b c", "mean")(ds.ones(2, 3, 4, 4)).shape
        downslope.Size([2, 3])
    """

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002  (torch's argument name)
        return self._apply_recipe(input)


class EinMix(_EinmixMixin, Module):
    """einops' ``EinMix`` (``einops.layers.torch.EinMix``): an einsum of the input with a learned weight
    (and an optional bias), with rearranges around it; weight and bias start uniform in
    ±sqrt(3 / fan_in) and ±sqrt(1 / fan_in), as einops draws them.

    Example:
        >>> import downslope as ds
        >>> mix = ds.nn.EinMix("b t c -> b t d", weight_shape="c d", bias_shape="d", c=4, d=6)
        >>> mix(ds.zeros(2, 5, 4)).shape
        downslope.Size([2, 5, 6])
    """

    def _create_parameters(
        self, weight_shape: list[int], weight_bound: float, bias_shape: list[int] | None, bias_bound: float
    ) -> None:
        self.weight = Parameter(empty(*weight_shape).uniform_(-weight_bound, weight_bound))
        self.bias: Parameter | None = None
        if bias_shape is not None:
            self.bias = Parameter(empty(*bias_shape).uniform_(-bias_bound, bias_bound))

    def _create_rearrange_layers(
        self,
        pre_reshape_pattern: str | None,
        pre_reshape_lengths: dict[str, Any] | None,
        post_reshape_pattern: str | None,
        post_reshape_lengths: dict[str, Any] | None,
    ) -> None:
        self.pre_rearrange: Rearrange | None = None
        if pre_reshape_pattern is not None:
            self.pre_rearrange = Rearrange(pre_reshape_pattern, **(pre_reshape_lengths or {}))
        self.post_rearrange: Rearrange | None = None
        if post_reshape_pattern is not None:
            self.post_rearrange = Rearrange(post_reshape_pattern, **(post_reshape_lengths or {}))

    def forward(self, input: Tensor) -> Tensor:  # noqa: A002  (torch's argument name)
        if self.pre_rearrange is not None:
            input = self.pre_rearrange(input)  # noqa: A001
        result = ops.einsum(self.einsum_pattern, input, self.weight)
        if self.bias is not None:
            result = result + self.bias
        if self.post_rearrange is not None:
            result = self.post_rearrange(result)
        return result


__all__ = ["EinMix", "Rearrange", "Reduce"]
