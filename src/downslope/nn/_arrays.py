"""Arrays on the data's device: small helpers the layers and losses share.

The array namespace comes from the data (NumPy on the host, CuPy on a GPU, the strict stand-in in
tests). A layer often receives a second operand as plain Python or NumPy data (a target list, a
mask, class weights); these helpers put it on the device of the tensor it meets, once, explicitly.

Example:
    >>> import numpy as np
    >>> from downslope.nn._arrays import array_like
    >>> array_like([1, 2], np.zeros(2, np.float32)).dtype
    dtype('int64')
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..devices import device_of, is_array, to_device
from ..tensor import Tensor


def is_host(array: Any) -> bool:
    """Whether ``array`` is a host NumPy array (its values can be read without a device sync)."""
    return type(array) is np.ndarray


def array_of(value: Any) -> Any:
    """``value``'s array: a Tensor's, an array of any device as it is, host data (a list) as a NumPy array."""
    if isinstance(value, Tensor):
        return value.array
    return value if is_array(value) else np.asarray(value)  # host: user data is on the host by nature


def array_like(value: Any, like: Any, dtype: Any = None) -> Any:
    """``value`` (a Tensor, an array of any device, or host data such as a list) as an array on the
    device of the array ``like``; cast to ``dtype`` when given. Device arrays are not copied to the host."""
    arr = value.array if isinstance(value, Tensor) else value
    if not is_array(arr):
        arr = np.asarray(arr)  # host: user data (a list, a scalar) is on the host by nature
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr if is_host(like) and is_host(arr) else to_device(arr, device_of(like))


def scalar(value: Any, dtype: Any) -> Any:
    """A NumPy scalar of ``dtype`` (not an array): it meets host and device arrays alike and keeps
    their dtype (a float32 array times it stays float32)."""
    return np.dtype(dtype).type(value)
