"""The in-place forms of the fused products (``x.addmm_(m1, m2)``, ``addmv_``, ``addr_``, ``baddbmm_``,
``addbmm_``) and of ``bitwise_not`` and ``float_power``: each computed out of place and written into
the tensor, recorded like every in-place op when gradients are (a leaf that requires grad is
refused, the version counter moves, backward flows through the write).

Example:
    >>> import downslope as ds
    >>> x = ds.ones(2, 2)
    >>> x.addmm_(ds.eye(2), ds.full((2, 2), 3.0), beta=0.5) is x, x
    (True, tensor([[3.5, 3.5],
            [3.5, 3.5]]))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ArgumentTypeError
from ..tensor import Tensor
from . import arithmetic, linalg

__all__ = ["addmv_"]


def _product_(name: str, op: Callable[..., Tensor]) -> Callable[..., Tensor]:
    def method(self: Tensor, a: Any, b: Any, *legacy: Any, beta: Any = 1, alpha: Any = 1) -> Tensor:
        if legacy:  # torch's deprecated self.addmm_(beta, [alpha,] mat1, mat2) (center-loss code still has it)
            _, a, b, beta, alpha = linalg.legacy_product_arguments(name, self, a, b, legacy, beta, alpha)
        return self._inplace_via(
            name, lambda t: op(t, a, b, beta=beta, alpha=alpha), a, b, reads_self=True, keep_kind=True
        )

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"In-place :meth:`{name[:-1]}`: ``beta * self + alpha * (product)`` written into this tensor."
    return method


def _bitwise_not_(self: Tensor) -> Tensor:
    """In-place :meth:`bitwise_not` (integer and boolean tensors).

    Example:
        >>> import downslope as ds
        >>> ds.tensor([1, 2]).bitwise_not_()
        tensor([-2, -3])
    """
    return self._inplace_via("bitwise_not_", arithmetic.bitwise_not, keep_kind=True)


def _float_power_(self: Tensor, exponent: Any) -> Tensor:
    """In-place :meth:`float_power`; as in torch, this tensor must be float64 (the result's dtype).

    Example:
        >>> import downslope as ds
        >>> ds.tensor([2.0, 3.0], dtype=ds.float64).float_power_(2)
        tensor([4., 9.], dtype=float64)
    """
    if self.array.dtype != "float64":
        raise ArgumentTypeError(
            f"float_power_: the base given to float_power_ has dtype {self.array.dtype} but the operation's result "
            "requires dtype float64"
        )
    return self._inplace_via(
        "float_power_", lambda t: arithmetic.float_power(t, exponent), exponent, reads_self=True, keep_kind=True
    )


def addmv_(input: Tensor, mat: Any, vec: Any, *legacy: Any, beta: Any = 1, alpha: Any = 1) -> Tensor:
    """``torch.addmv_``: ``input.addmv_(mat, vec, beta=, alpha=)``, written into ``input``.

    Example:
        >>> import downslope as ds
        >>> ds.addmv_(ds.ones(2), ds.ones(2, 3), ds.ones(3), beta=2)
        tensor([5., 5.])
    """
    if legacy:  # torch's deprecated torch.addmv_(beta, input, [alpha,] mat, vec)
        input, mat, vec, beta, alpha = linalg.legacy_product_arguments("addmv_", input, mat, vec, legacy, beta, alpha)
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(f"addmv_(): argument 'input' must be Tensor, not {type(input).__name__}")
    result: Tensor = input.addmv_(mat, vec, beta=beta, alpha=alpha)  # type: ignore[attr-defined]
    return result


METHODS: dict[str, Callable[..., Tensor]] = {
    **{
        name + "_": _product_(name + "_", getattr(linalg, name))
        for name in ("addmm", "addmv", "addr", "baddbmm", "addbmm")
    },
    "bitwise_not_": _bitwise_not_,
    "float_power_": _float_power_,
}
