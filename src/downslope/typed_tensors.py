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
    device_type: str

    def __call__(cls, *args: Any) -> Tensor:
        t = args[0] if len(args) == 1 and isinstance(args[0], Tensor) else Tensor(*args, dtype=cls.dtype)
        t = t.to(cls.dtype)
        return t if cls.device_type == "cpu" else t.to(cls.device_type)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, Tensor) and obj.array.dtype == cls.dtype and obj.device.type == cls.device_type

    def __repr__(cls) -> str:
        return f"<class '{cls.__module__}.{cls.__name__}'>"


def typed_tensor(name: str, dtype: Any, device_type: str = "cpu") -> TypedTensorMeta:
    """The typed tensor class ``name`` of ``dtype`` (``typed_tensor("FloatTensor", ds.float32)``);
    ``device_type="cuda"`` for ``torch.cuda.FloatTensor`` and its kin (``isinstance`` is True only for
    tensors on a GPU, as old code checks before moving data).

    >>> import downslope as ds
    >>> ds.FloatTensor([1, 2])
    tensor([1., 2.])
    >>> isinstance(ds.zeros(2), ds.cuda.FloatTensor)
    False
    """
    where = "downslope" if device_type == "cpu" else f"downslope.{device_type}"
    doc = f"Old PyTorch's torch.{name}(data or sizes): a {dtype} tensor (use ds.tensor(..., dtype=) in new code)."
    if device_type != "cpu":
        doc = doc.replace("torch.", f"torch.{device_type}.", 1).replace(" tensor ", f" tensor on {device_type} ", 1)
    attributes = {"dtype": dtype, "device_type": device_type, "__doc__": doc, "__module__": where}
    return TypedTensorMeta(name, (), attributes)
