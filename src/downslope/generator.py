"""``Generator``: PyTorch's explicit source of random numbers, for code that seeds its own stream
(``random_split(ds, [0.8, 0.2], generator=torch.Generator().manual_seed(42))``).

It wraps a ``numpy.random.Generator`` (``.numpy_generator``), which is what downslope's data
utilities draw from. The numbers differ from PyTorch's for the same seed; the same seed gives the
same numbers here on every run.

Example:
    >>> import numpy as np
    >>> from downslope.generator import Generator
    >>> a = Generator().manual_seed(42).numpy_generator.permutation(5)
    >>> b = Generator().manual_seed(42).numpy_generator.permutation(5)
    >>> bool((a == b).all())
    True
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .errors import ArgumentError, ArgumentTypeError

__all__ = ["Generator", "as_numpy_generator"]

_DEFAULT_SEED = 67280421310721  # PyTorch's default seed of a new Generator


class Generator:
    """A seeded random stream with PyTorch's methods: ``manual_seed`` (returns the generator),
    ``seed``, ``initial_seed``, ``get_state``/``set_state``; ``device`` is the CPU."""

    def __init__(self, device: Any = "cpu") -> None:
        from .device import check_cpu

        self.device = check_cpu(device, "Generator")
        self.manual_seed(_DEFAULT_SEED)

    def manual_seed(self, seed: int) -> Generator:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ArgumentTypeError(f"Generator.manual_seed: expected an integer seed, got {seed!r}")
        self._seed = int(seed) % 2**64
        self.numpy_generator = np.random.Generator(np.random.PCG64(self._seed))
        return self

    def seed(self) -> int:
        """Reseed from the operating system's entropy and return the new seed."""
        new = int.from_bytes(os.urandom(8), "little")
        self.manual_seed(new)
        return new

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> bytes:
        """The stream's position, for ``set_state`` (JSON bytes; PyTorch returns a uint8 tensor)."""
        state = self.numpy_generator.bit_generator.state
        inner = {k: str(v) for k, v in state["state"].items()}
        return json.dumps({**state, "state": inner, "seed": self._seed}).encode()

    def set_state(self, new_state: Any) -> Generator:
        try:
            raw = bytes(new_state.numpy().tobytes() if hasattr(new_state, "numpy") else new_state)
            state = json.loads(raw)
            state["state"] = {k: int(v) for k, v in state["state"].items()}
            self._seed = int(state.pop("seed"))
            self.numpy_generator.bit_generator.state = state
        except (TypeError, ValueError, KeyError) as exc:
            raise ArgumentError(f"Generator.set_state: not a state from get_state() ({exc})") from None
        return self

    def __repr__(self) -> str:
        return f"Generator(initial_seed={self._seed})"


def as_numpy_generator(generator: Any, where: str) -> np.random.Generator:
    """The ``numpy.random.Generator`` behind ``generator`` (a Generator or a NumPy one)."""
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, Generator):
        return generator.numpy_generator
    raise ArgumentTypeError(
        f"{where}: generator must be a downslope Generator or a numpy.random.Generator, got {type(generator).__name__}"
    )
