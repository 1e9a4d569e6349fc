"""``downslope.random``: PyTorch's ``torch.random`` names for the library generator.

Every random draw downslope makes (initialization, dropout, shuffling, ``ds.randn``...) comes from one
generator, :data:`default_generator`; on a GPU each draw takes its key from it, so its state covers
the device draws too.

Example:
    >>> import downslope as ds
    >>> _ = ds.random.manual_seed(0)
    >>> with ds.random.fork_rng():
    ...     _ = ds.randn(3)  # drawn inside: the stream outside the block is untouched
    >>> ds.random.get_rng_state().tolist() == ds.manual_seed(0).get_state().tolist()
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .backend import get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from .generator import Generator, default_generator

__all__ = [
    "Generator",
    "default_generator",
    "fork_rng",
    "get_rng_state",
    "initial_seed",
    "manual_seed",
    "seed",
    "set_rng_state",
]


@contextmanager
def fork_rng(
    devices: Iterable[Any] | None = None,
    enabled: bool = True,
    _caller: str = "fork_rng",
    _devices_kw: str = "devices",
    device_type: str | None = None,
) -> Iterator[None]:
    """Within the block draw freely: on exit the library generator is back where it was (and its
    :func:`initial_seed`), as ``torch.random.fork_rng``. ``devices`` and ``device_type`` are accepted
    for PyTorch's signature: device draws are keyed from this one generator, so restoring it restores
    them. ``enabled=False`` makes the block a no-op.

    Example:
        >>> import downslope as ds
        >>> _ = ds.manual_seed(1); before = ds.rand(1).item(); _ = ds.manual_seed(1)
        >>> with fork_rng():
        ...     _ = ds.rand(5)
        >>> ds.rand(1).item() == before
        True
    """
    if not enabled:
        yield
        return
    saved = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(saved)
