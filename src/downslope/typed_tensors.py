"""Old PyTorch's typed tensor classes (``torch.FloatTensor``, ``torch.LongTensor``...).

Each is a class that makes tensors when called (``FloatTensor(2, 3)``, ``FloatTensor([1, 2])``), names
a dtype for ``x.type(ds.LongTensor)``, and answers ``isinstance`` by dtype, as in PyTorch: a float32
tensor on the CPU is a ``FloatTensor`` (a Parameter too), a float64 one is not.
"""

from __future__ import annotations

from typing import Any

from .tensor import Tensor

__all__ = ["TypedTensorMeta", "typed_tensor"]


class TypedTensorMeta(type):
    """The metaclass of the typed tensor classes: calling one makes a tensor of its dtype, and
    ``isinstance(x, ds.FloatTensor)`` checks ``x``'s dtype (and that it is on the CPU, as torch's
    CPU types are).

    >>> import downslope as ds
    >>> isinstance(ds.zeros(2), ds.FloatTensor), isinstance(ds.zeros(2, dtype=ds.float64), ds.FloatTensor)
    (True, False)
    """

    dtype: Any

    def __call__(cls, *args: Any) -> Tensor:
        t = args[0] if len(args) == 1 and isinstance(args[0], Tensor) else Tensor(*args)
        return t.to(cls.dtype)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, Tensor) and obj.array.dtype == cls.dtype and obj.device.type == "cpu"

    def __repr__(cls) -> str:
        return f"<class 'downslope.{cls.__name__}'>"


def typed_tensor(name: str, dtype: Any) -> TypedTensorMeta:
    """The typed tensor class ``name`` of ``dtype`` (``typed_tensor("FloatTensor", ds.float32)``).

    >>> import downslope as ds
    >>> ds.FloatTensor([1, 2])
    tensor([1., 2.])
    """
    doc = f"Old PyTorch's torch.{name}(data or sizes): a {dtype} tensor (use ds.tensor(..., dtype=) in new code)."
    return TypedTensorMeta(name, (), {"dtype": dtype, "__doc__": doc, "__module__": "downslope"})
