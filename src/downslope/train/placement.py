"""Where fit, evaluate and predict compute, and the numbers they keep on a device until the epoch ends.

On the CPU nothing here runs: the loop reads each batch loss as a Python float, as it always has. On
a device (a CUDA GPU, or the strict test stand-in) reading a number back to the host waits for the
device to finish its queued work (a synchronisation), which costs far more than the arithmetic when
it happens every batch. So on a device:

- a batch's loss is a :class:`DeviceScalar` (a 0-d array on the device) that is copied to the host
  only if something asks for it (``float(logs["loss"])``); fit itself never does;
- the epoch's loss sum (and the outputs for the metrics) stay on the device and are read back once
  per epoch, so the host reads O(1) numbers per epoch, not one per batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import namespace_of
from ..device import CPU, device, resolve
from ..devices import device_of, to_device, to_host


def model_device(model: Any) -> device:
    """The device of ``model``'s first parameter (or buffer); the CPU for a model without any.

    Example:
        >>> from downslope import nn
        >>> str(model_device(nn.Linear(2, 1)))
        'cpu'
    """
    for source in ("parameters", "buffers"):
        tensors = getattr(model, source, None)
        if callable(tensors):
            for t in tensors():
                return device_of(t.array)
    return CPU


def training_device(target: Any, model: Any, where: str) -> device:
    """The device to compute on: ``target`` resolved (a clear error for a CUDA device that is absent),
    or the model's own device when ``target`` is None.

    Example:
        >>> from downslope import nn
        >>> str(training_device(None, nn.Linear(2, 1), "fit")), str(training_device("strict", None, "fit"))
        ('cpu', 'strict')
    """
    if target is None:
        return model_device(model)
    return resolve(target, f"{where}(device=...)")


def load_on_host(model: Any, state: Any, **options: Any) -> None:
    """``model.load_state_dict(state, **options)`` also when the model lives on a device and ``state``
    holds arrays of any device: the values are copied to the host, loaded there (where the checks of the
    values run) and the model is moved back, so it continues from exactly these values.

    Example:
        >>> from downslope import nn
        >>> a, b = nn.Linear(2, 1), nn.Linear(2, 1).to("strict")
        >>> load_on_host(b, a.state_dict()); bool((b.weight.detach().cpu().numpy() == a.weight.detach().numpy()).all())
        True
    """
    placed = model_device(model)
    if placed == CPU or not hasattr(model, "to"):
        model.load_state_dict(state, **options)
        return
    host = {k: (to_host(v.array) if hasattr(v, "array") else to_host(v)) for k, v in state.items()}
    model.to(CPU)
    try:
        model.load_state_dict(host, **options)
    finally:
        model.to(placed)


def state_snapshot(model: Any) -> dict[str, Any]:
    """Copies of ``model.state_dict()``'s values as arrays on the model's device: a snapshot that later
    training leaves alone (a state_dict's tensors share the model's memory, as in PyTorch).

    Example:
        >>> from downslope import nn
        >>> m = nn.Linear(2, 1)
        >>> saved = state_snapshot(m)
        >>> _ = m.bias.data.fill_(5.0)
        >>> bool(saved["bias"][0] == 5.0)
        False
    """
    return {k: (v.array if hasattr(v, "array") else v).copy() for k, v in model.state_dict().items()}


class DeviceScalar:
    """A number held on a device as a 0-d array, copied to the host the first time it is read.

    fit puts one in a batch's logs (``logs["loss"]``) when it trains on a device: ``float(v)``,
    ``v.item()``, formatting and comparisons read it (one device synchronisation, then cached);
    ``v.array`` is the device array itself.

    Example:
        >>> import numpy as np
        >>> v = DeviceScalar(np.array(0.25))
        >>> float(v), f"{v:.1f}", v < 1
        (0.25, '0.2', True)
    """

    __slots__ = ("array", "_value")

    def __init__(self, array: Any) -> None:
        self.array = array
        self._value: float | None = None

    @property
    def read(self) -> bool:
        """Whether the value has been copied to the host already (reading it again is free)."""
        return self._value is not None

    def __float__(self) -> float:
        if self._value is None:
            self._value = float(to_host(self.array))
        return self._value

    def item(self) -> float:
        return float(self)

    def __format__(self, spec: str) -> str:
        return format(float(self), spec)

    def __repr__(self) -> str:
        return f"DeviceScalar({float(self)!r})" if self.read else f"DeviceScalar(on {device_of(self.array)})"

    def __lt__(self, other: Any) -> bool:
        return float(self) < float(other)

    def __le__(self, other: Any) -> bool:
        return float(self) <= float(other)

    def __gt__(self, other: Any) -> bool:
        return float(self) > float(other)

    def __ge__(self, other: Any) -> bool:
        return float(self) >= float(other)


class EpochLoss:
    """The epoch's weighted loss sum on a device: each batch's 0-d loss array is kept as it is (no work
    on the device per batch) and the sum is taken there and read once, at the end.

    The sum runs in float64, left to right (a cumulative sum), as the host loop adds Python floats, so
    on the strict stand-in it is the CPU's number exactly.

    Example:
        >>> import numpy as np
        >>> total = EpochLoss()
        >>> total.add(np.array(0.5, np.float32), 4); total.add(np.array(1.0, np.float32), 2)
        >>> total.mean(6)
        0.6666666666666666
    """

    def __init__(self) -> None:
        self.losses: list[Any] = []
        self.weights: list[float] = []

    def add(self, loss: Any, weight: float) -> None:
        """Keeps one batch's loss (a 0-d array on the device) and its weight in the epoch's mean."""
        self.losses.append(loss)
        self.weights.append(weight)

    def mean(self, count: float) -> float:
        """The weighted sum over ``count`` samples (or total target weight; 1 when 0), read from the device
        (one copy); 0.0 when empty."""
        if not self.losses:
            return 0.0
        xp = namespace_of(self.losses[0])
        weights = to_device(np.asarray(self.weights, np.float64), device_of(self.losses[0]))  # host: one copy over
        total = xp.cumsum(xp.stack(self.losses).astype(np.float64) * weights)[-1]
        return float(to_host(total)) / (count or 1)  # host: once per epoch


def on_host(array: Any) -> bool:
    """Whether ``array`` is host data (a NumPy array or scalar), read without a device synchronisation."""
    return isinstance(array, (np.ndarray, np.generic, float, int))


__all__ = ["EpochLoss", "DeviceScalar", "model_device", "training_device", "on_host", "load_on_host"]
