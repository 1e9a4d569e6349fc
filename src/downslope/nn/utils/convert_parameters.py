"""PyTorch's module path ``torch.nn.utils.convert_parameters``: parameters flattened to one vector and
back (defined in :mod:`downslope.nn.utils`)."""

from __future__ import annotations

from . import parameters_to_vector, vector_to_parameters

__all__ = ["parameters_to_vector", "vector_to_parameters"]
