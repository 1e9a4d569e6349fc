"""``torch.distributions.utils``: the helpers distributions are written with (probabilities to logits
and back, clamping, broadcasting parameters, lazily computed properties)."""

from __future__ import annotations

import math
from numbers import Number

from .. import backend, ops
from ..errors import ArgumentError
from ..tensor import Tensor, tensor
from .distribution import EULER_GAMMA, clamp_probs, lazy_property, logits_to_probs, probs_to_logits
from .transforms import tril_matrix_to_vec, vec_to_tril_matrix

euler_constant = EULER_GAMMA

__all__ = [
    "broadcast_all",
    "clamp_probs",
    "euler_constant",
    "lazy_property",
    "logits_to_probs",
    "probs_to_logits",
    "tril_matrix_to_vec",
    "vec_to_tril_matrix",
]


def broadcast_all(*values: Tensor | Number) -> tuple[Tensor, ...]:
    """Tensors and numbers broadcast to one shape, as torch's: tensors keep their dtypes, numbers
    become tensors of the first tensor's dtype (the default dtype when there is none).

    A non-integral number next to an integer tensor raises, where torch would truncate it.

    Example:
        >>> import downslope as ds
        >>> from downslope.distributions.utils import broadcast_all
        >>> loc, scale = broadcast_all(ds.zeros(3), 2.0)
        >>> scale
        tensor([2., 2., 2.])
    """
    for v in values:
        if not isinstance(v, (Tensor, Number)):
            raise ArgumentError(f"broadcast_all: expected numbers or Tensors, got {type(v).__name__}")
    first = next((v for v in values if isinstance(v, Tensor)), None)
    dtype = first.dtype if first is not None else backend.get_default_dtype()
    converted = []
    for v in values:
        if isinstance(v, Tensor):
            converted.append(v)
            continue
        if dtype.kind in "iub" and isinstance(v, (float, complex)) and not (math.isfinite(v.real) and v == int(v.real)):
            raise ArgumentError(f"broadcast_all: the number {v!r} does not fit the first tensor's dtype {dtype}")
        t = tensor(v, dtype=dtype)
        converted.append(t if first is None or t.device == first.device else t.to(first.device))
    return tuple(ops.broadcast_tensors(*converted))
