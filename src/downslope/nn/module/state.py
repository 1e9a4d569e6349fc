"""A module's state: its parameters and persistent buffers by ``state_dict`` key, and the checks
``load_state_dict`` makes before it writes anything."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ...devices import device_of, is_array, to_device, to_host
from ...errors import CheckpointError, ShapeError, StateDictError
from ...tensor import Tensor, wrap_array
from .parameter import Parameter

if TYPE_CHECKING:
    from .base import Module


def named_state(module: Module, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
    """Every parameter and persistent buffer under its ``state_dict`` key (``prefix`` before each).

    A module registered under two names appears under both, as in PyTorch.

    Example:
        >>> from downslope import nn
        >>> [key for key, _ in named_state(nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1)))][:3]
        ['0.weight', '0.bias', '1.weight']
    """
    for mod_name, mod in module.named_modules(remove_duplicate=False):
        pre = prefix + (f"{mod_name}." if mod_name else "")  # PyTorch's prefix ends with its own dot
        for name, p in mod._parameters.items():
            if p is not None:
                yield pre + name, p
        for name, b in mod._buffers.items():
            if b is not None and name not in mod._non_persistent:
                yield pre + name, b


# A norm layer's batch counter, which PyTorch's BatchNorm gained after its first release: PyTorch's
# _NormBase._load_from_state_dict keeps the layer's own counter when a state_dict has none (neither an
# error nor a missing key), so checkpoints saved without it load; the norm layers here are the only
# modules with a buffer of that name.
_COUNTER = "num_batches_tracked"


def _kept_when_absent(key: str) -> bool:
    return key.rpartition(".")[2] == _COUNTER


def check_keys(
    where: str, own: Mapping[str, Tensor], state_dict: Mapping[str, Any], strict: bool
) -> tuple[list[str], list[str]]:
    """The missing and unexpected keys of ``state_dict``; with ``strict``, any of them is an error.

    A norm layer's ``num_batches_tracked`` may be absent, as in PyTorch: the layer keeps its own.

    Example:
        >>> import numpy as np
        >>> check_keys("load", {"w": None, "b": None}, {"w": np.zeros(1), "x": np.zeros(1)}, strict=False)
        (['b'], ['x'])
    """
    missing = [k for k in own if k not in state_dict and not _kept_when_absent(k)]
    unexpected = [k for k in state_dict if k not in own]
    if strict and (missing or unexpected):
        parts = [f"{where} failed:"]
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        raise StateDictError(" ".join(parts))
    return missing, unexpected


def checked_arrays(
    where: str,
    own: Mapping[str, Tensor],
    state_dict: Mapping[str, Any],
    allow_nonfinite: bool,
    buffers: frozenset[str] = frozenset(),
) -> dict[str, np.ndarray]:
    """The arrays to load, by key: real numbers of each target's shape, finite unless allowed (the
    ``buffers`` may hold infinities: an attention mask's -inf, a running maximum's start).

    Example:
        >>> import downslope as ds
        >>> checked_arrays("load", {"w": ds.zeros(2)}, {"w": [1, 2]}, allow_nonfinite=False)
        {'w': array([1, 2])}
    """
    arrays: dict[str, np.ndarray] = {}
    for key, target in own.items():
        if key not in state_dict:
            continue
        value = state_dict[key]
        # Checked and cast on the host (a load, not a training step); copied to each target's device below.
        arr = to_host(value.array if isinstance(value, Tensor) else value)
        if arr.dtype.kind not in "biuf":
            raise CheckpointError(
                f"{where}: {key!r} has dtype {arr.dtype}; expected real "
                f"numbers (bool, integer or float) to cast to {target.array.dtype}"
            )
        if arr.shape != target.array.shape:
            raise ShapeError(
                f"{where}: size mismatch for {key!r}: "
                f"the checkpoint has shape {arr.shape}, this module has shape {target.array.shape}"
            )
        if not allow_nonfinite and arr.dtype.kind == "f":
            ok = ~np.isnan(arr) if key in buffers else np.isfinite(arr)
            if not ok.all():
                bad = int(arr.size - np.count_nonzero(ok))
                what = "NaN" if key in buffers else "NaN/infinite"
                raise CheckpointError(
                    f"{where}: {key!r} holds {bad} {what} value(s) of {arr.size}; pass allow_nonfinite=True to load it anyway"
                )
        arrays[key] = arr
    return arrays


def copy_into(own: Mapping[str, Tensor], arrays: Mapping[str, np.ndarray]) -> None:
    """Writes each array into its tensor in place (cast to the tensor's dtype), so optimizers holding
    the parameters keep seeing them; a read-only array is replaced instead.

    Example:
        >>> import numpy as np, downslope as ds
        >>> w = ds.zeros(2)
        >>> copy_into({"w": w}, {"w": np.array([1, 2])})
        >>> w.tolist()
        [1.0, 2.0]
    """
    for key, arr in arrays.items():
        target = own[key]
        where = device_of(target.array)  # a model moved to a device loads host checkpoints onto it
        if getattr(target.array.flags, "writeable", True):  # CuPy's arrays have no read-only flag
            np.copyto(target.array, to_device(arr, where), casting="unsafe")
        else:
            target.array = to_device(arr.astype(target.array.dtype), where)


def _adoptable(value: Any, checked: np.ndarray) -> Any:
    """The array ``assign=True`` adopts for ``value``: a tensor's or array's own memory on its own
    device; for anything else (a PyTorch tensor, a list) the host array the checks made of it."""
    if isinstance(value, Tensor):
        arr = value.array
    elif is_array(value):
        arr = value
    else:
        arr = checked
    if not getattr(getattr(arr, "flags", None), "writeable", True):
        arr = arr.copy()  # a read-only (memory-mapped) array could not be trained in place
    return arr


def assign_into(module: Module, state_dict: Mapping[str, Any], arrays: Mapping[str, np.ndarray], where: str) -> None:
    """``load_state_dict(..., assign=True)``: each parameter and buffer becomes the given value itself
    (its dtype, device and memory) instead of receiving a copy, as PyTorch's ``assign`` does.

    A parameter becomes a Parameter around the given array (a given Parameter is used as it is), with
    ``requires_grad`` taken from the parameter it replaces; a buffer becomes the given tensor. The
    replaced objects are gone from the module: an optimizer built over them beforehand keeps updating
    the old ones (build optimizers after loading, as in PyTorch), and weights tied by sharing one
    Parameter are untied when their keys get different values.

    Example:
        >>> import numpy as np
        >>> from downslope import nn
        >>> lin = nn.Linear(2, 1)
        >>> sd = {"weight": np.ones((1, 2), np.float16), "bias": np.zeros(1, np.float16)}
        >>> assign_into(lin, sd, checked_arrays("load", lin.state_dict(), sd, False), "load")
        >>> lin.weight.dtype, lin.weight.requires_grad
        (dtype('float16'), True)
    """
    slots: dict[str, tuple[Module, str, bool]] = {}
    for mod_name, mod in module.named_modules(remove_duplicate=False):
        pre = f"{mod_name}." if mod_name else ""
        for name, p in mod._parameters.items():
            if p is not None:
                slots[pre + name] = (mod, name, True)
        for name, b in mod._buffers.items():
            if b is not None and name not in mod._non_persistent:
                slots[pre + name] = (mod, name, False)
    new: dict[str, Tensor] = {}
    for key, checked in arrays.items():
        mod, name, is_param = slots[key]
        value = state_dict[key]
        if not is_param:
            new[key] = value if isinstance(value, Tensor) else wrap_array(_adoptable(value, checked))
            continue
        old = mod._parameters[name]
        assert old is not None
        if isinstance(value, Parameter):
            param = value
        else:
            arr = _adoptable(value, checked)
            if old.requires_grad and arr.dtype.kind != "f":
                raise CheckpointError(
                    f"{where}: cannot assign {key!r} of dtype {arr.dtype} to a parameter that requires grad "
                    "(only floating point tensors have gradients); pass floating values, or load without assign=True"
                )
            param = Parameter(None, requires_grad=False)
            param.array = arr  # adopted as it is: Parameter(arr) would cast it to the default dtype
        param.requires_grad_(old.requires_grad)
        new[key] = param
    # Everything is checked above before anything is written, so a failed load leaves the module as it was.
    for key, t in new.items():
        mod, name, is_param = slots[key]
        if is_param:
            assert isinstance(t, Parameter)
            mod._parameters[name] = t
        else:
            mod._buffers[name] = t
        mod.__dict__[name] = t  # a module keeps its parameters and buffers as plain attributes too
