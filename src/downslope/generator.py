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

from . import backend
from .errors import ArgumentError, ArgumentTypeError

__all__ = ["Generator", "as_numpy_generator", "default_generator"]

_DEFAULT_SEED = 67280421310721  # PyTorch's default seed of a new Generator


class Generator:
    """A seeded random stream with PyTorch's methods: ``manual_seed`` (returns the generator),
    ``seed``, ``initial_seed``, ``get_state``/``set_state`` (a uint8 Tensor, as PyTorch's: ``ds.save``
    stores it); ``device`` is the CPU.

    Reseeding or restoring a state changes the stream in place, so a DataLoader or a sampler built with
    this generator follows ``manual_seed`` calls made afterwards (as in PyTorch).

    Example:
        >>> g = Generator().manual_seed(1)
        >>> state = g.get_state(); a = g.numpy_generator.random()
        >>> g.set_state(state).numpy_generator.random() == a
        True
    """

    def __init__(self, device: Any = "cpu") -> None:
        from .device import check_cpu

        self.device = check_cpu(device, "Generator")
        self.numpy_generator = np.random.Generator(np.random.PCG64(_DEFAULT_SEED))
        self._seed = _DEFAULT_SEED

    def manual_seed(self, seed: int) -> Generator:
        """Restart the stream from ``seed`` (an integer in [-2**63, 2**64), as PyTorch); returns self."""
        value = backend.check_seed(seed, "Generator.manual_seed")
        # in place: loaders and samplers built with this generator hold its numpy_generator
        self.numpy_generator.bit_generator.state = np.random.PCG64(value).state
        self._seed = value
        return self

    def seed(self) -> int:
        """Reseed from the operating system's entropy and return the new seed."""
        new = int.from_bytes(os.urandom(8), "little")
        self.manual_seed(new)
        return new

    def initial_seed(self) -> int:
        """The seed the stream started from (the last ``manual_seed``/``seed``, or PyTorch's default)."""
        return self._seed

    def get_state(self) -> Any:
        """The stream's position and seed as a uint8 Tensor, for ``set_state`` (PyTorch's bytes differ)."""
        from .tensor import wrap_array

        return wrap_array(backend.pack_rng_state(self.numpy_generator, self._seed))

    def set_state(self, new_state: Any) -> Generator:
        """Restore a state from ``get_state`` (the JSON bytes of older versions are accepted too)."""
        if isinstance(new_state, (bytes, bytearray)) and new_state[:1] == b"{":
            new_state = _old_json_state(new_state)
        state, seed = backend.unpack_rng_state(new_state, "Generator.set_state")
        try:
            self.numpy_generator.bit_generator.state = state
        except (TypeError, ValueError, KeyError) as exc:
            raise ArgumentError(f"Generator.set_state: not a state from get_state() ({exc})") from None
        if seed is not None:
            self._seed = seed
        return self

    def clone_state(self) -> Generator:
        """A new Generator at this one's position, with its seed (``torch.Generator.clone_state``): the
        two then draw the same numbers, each from its own stream.

        Example:
            >>> g = Generator().manual_seed(3); _ = g.numpy_generator.random()
            >>> h = g.clone_state()
            >>> h.numpy_generator.random() == g.numpy_generator.random(), h.initial_seed()
            (True, 3)
        """
        return Generator(self.device).set_state(self.get_state())

    def __repr__(self) -> str:
        return f"Generator(initial_seed={self.initial_seed()})"


def _old_json_state(raw: bytes | bytearray) -> Any:
    """The packed state of the JSON bytes ``get_state`` returned in earlier versions."""
    try:
        state = json.loads(bytes(raw))
        seed = int(state.pop("seed"))
        state["state"] = {k: int(v) for k, v in state["state"].items()}
        gen = np.random.Generator(np.random.PCG64())
        gen.bit_generator.state = state
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ArgumentError(f"Generator.set_state: not a state from get_state() ({exc})") from None
    return backend.pack_rng_state(gen, seed)


class _DefaultGenerator(Generator):
    """The library generator (``ds.default_generator``, what ``ds.manual_seed`` returns): every method
    acts on the one stream that init, dropout, shuffling and ``ds.randn`` draw from."""

    def __init__(self) -> None:
        from .device import CPU

        self.device = CPU

    @property
    def numpy_generator(self) -> np.random.Generator:  # type: ignore[override]
        return backend._default_rng

    def manual_seed(self, seed: int) -> Generator:
        backend.manual_seed(seed)
        return self

    def seed(self) -> int:
        return backend.seed()

    def initial_seed(self) -> int:
        return backend.initial_seed()

    def get_state(self) -> Any:
        return backend.get_rng_state()

    def set_state(self, new_state: Any) -> Generator:
        if isinstance(new_state, (bytes, bytearray)) and new_state[:1] == b"{":
            new_state = _old_json_state(new_state)
        backend.set_rng_state(new_state)
        return self


default_generator: Generator = _DefaultGenerator()


def as_numpy_generator(generator: Any, where: str) -> np.random.Generator:
    """The ``numpy.random.Generator`` behind ``generator`` (a Generator or a NumPy one)."""
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, Generator):
        return generator.numpy_generator
    raise ArgumentTypeError(
        f"{where}: generator must be a downslope Generator or a numpy.random.Generator, got {type(generator).__name__}"
    )
