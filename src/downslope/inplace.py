"""PyTorch's top-level in-place functions (``torch.sin_(x)``, ``torch.clamp_(x, min=0)`` ...): each
is the tensor method of its name, ``x.sin_()``, which writes into ``x`` and returns it.

Example:
    >>> import downslope as ds
    >>> x = ds.tensor([0.25, 4.0])
    >>> ds.sqrt_(x) is x, x
    (True, tensor([0.5, 2. ]))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ArgumentTypeError
from .tensor import Tensor

# The names torch has at the top level (torch.<name>) whose Tensor method exists here.
NAMES = (
    "abs_", "acos_", "acosh_", "arccos_", "arccosh_", "arcsin_", "arcsinh_", "arctan_", "arctanh_", "asin_", "asinh_",
    "atan_", "atanh_", "ceil_", "clamp_", "clamp_max_", "clamp_min_", "clip_", "cos_", "cosh_", "deg2rad_", "detach_",
    "erf_", "erfc_", "exp2_", "exp_", "expm1_", "fill_", "fix_", "floor_", "frac_", "gcd_", "i0_", "index_put_", "lcm_",
    "ldexp_", "log10_", "log1p_", "log2_", "log_", "logit_", "nan_to_num_", "neg_", "negative_", "rad2deg_",
    "reciprocal_", "round_", "rsqrt_", "sigmoid_", "sin_", "sinc_", "sinh_", "sqrt_", "square_", "tan_", "tanh_",
    "trunc_", "xlogy_", "zero_",
)  # fmt: skip


def _inplace_function(name: str) -> Callable[..., Tensor]:
    def function(input: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        if not isinstance(input, Tensor):
            raise ArgumentTypeError(f"{name}(): argument 'input' must be Tensor, not {type(input).__name__}")
        result: Tensor = getattr(input, name)(*args, **kwargs)
        return result

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``torch.{name}(input, ...)``: ``input.{name}(...)``, in place; returns ``input``."
    return function


FUNCTIONS: dict[str, Callable[..., Tensor]] = {name: _inplace_function(name) for name in NAMES}
__all__ = list(NAMES)
globals().update(FUNCTIONS)
