"""The layers that only pass or reshape their input: Identity, Flatten, Unflatten."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...errors import ShapeIndexError
from ...ops import flatten as _flatten
from ...tensor import Tensor
from .base import Module


class Identity(Module):
    """Returns its input unchanged (a placeholder layer); extra arguments are accepted and ignored.

    Example:
        >>> import downslope as ds
        >>> ds.nn.Identity()(ds.ones(2)).shape
        downslope.Size([2])
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one (default: all but the batch dim).

    Example:
        >>> import downslope as ds
        >>> ds.nn.Flatten()(ds.zeros(8, 3, 4, 4)).shape
        downslope.Size([8, 48])
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim <= self.start_dim and self.start_dim >= 0 and input.ndim > 0:
            raise ShapeIndexError(  # torch: an IndexError (dimension out of range)
                f"Flatten(start_dim={self.start_dim}): input of shape {tuple(input.shape)} has only {input.ndim} dim(s)"
            )
        return _flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size`` (the inverse of :class:`Flatten`).

    Example:
        >>> import downslope as ds
        >>> ds.nn.Unflatten(1, (2, 5))(ds.zeros(3, 10)).shape
        downslope.Size([3, 2, 5])
    """

    def __init__(self, dim: int, unflattened_size: Iterable[int]) -> None:
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(int(s) for s in unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        from ...ops import normalize_dim as _dim
        from ...ops import reshape

        d = _dim(self.dim, input.ndim, "Unflatten")
        return reshape(input, input.shape[:d] + self.unflattened_size + input.shape[d + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
