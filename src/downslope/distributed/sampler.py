"""Sharding: every rank sees a disjoint part of each epoch's shuffled data.

Every rank draws the *same* permutation of the N samples (seeded by ``(seed, epoch)``, so no
communication is needed), makes it divisible by the world size W, and keeps the strided part
``perm[rank::W]``. Batch k of rank r is then ``perm[k*W*B + r :: W][:B]``: the W ranks' k-th batches
together are exactly the k-th batch of size ``W*B`` of a single process reading ``perm`` in order.
That is why W processes with batch B follow the same trajectory as one process with batch W*B.

Making N divisible by W (all ranks must run the same number of steps, or the Allreduce hangs):

* ``drop_last=False`` (default): pad by repeating the first ``W - N % W`` samples of the
  permutation (as ``torch.utils.data.DistributedSampler`` does); those samples count twice that epoch.
* ``drop_last=True``: drop the last ``N % W`` samples of the permutation (different ones every epoch).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..data import ArrayDataset, DataLoader, Dataset, Subset
from ..errors import ArgumentError, ArgumentTypeError
from ..tensor import Tensor
from ..train.inputs import InputsDataset, inputs_dataset, multi_input
from .world import DisagreementError, World, get_world


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the ``num_samples`` samples in ``epoch``: the same on every rank.

    It is ``np.random.default_rng([seed, epoch]).permutation(num_samples)``.

    Example:
        >>> sorted(epoch_permutation(5, seed=0, epoch=0).tolist())
        [0, 1, 2, 3, 4]
    """
    return np.random.default_rng([int(seed), int(epoch)]).permutation(int(num_samples))


def _check_nonneg_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ArgumentError(f"DistributedSampler: {name} must be a non-negative integer, got {value!r}")
    return int(value)


def _dataset_size(dataset: Any) -> Any:
    """N for a dataset (anything with ``len()``, as PyTorch's sampler takes), or ``dataset`` itself if it
    is a number (checked by the caller)."""
    if isinstance(dataset, (int, np.integer)) or not hasattr(dataset, "__len__"):
        if not isinstance(dataset, (int, np.integer)):
            raise ArgumentTypeError(
                f"DistributedSampler: expected a dataset with len() or its number of samples, got "
                f"{type(dataset).__name__}"
            )
        return dataset
    return len(dataset)


class DistributedSampler:
    """The indices one rank reads in one epoch (an iterable of ints, like PyTorch's sampler).

    Args:
        dataset: the dataset (anything with ``len()``, as PyTorch's sampler takes) or its size N;
            ``num_samples=N`` (keyword) is the same as passing N.
        num_replicas / rank: the world size and this rank (default: from :func:`init`).
        shuffle: a fresh permutation each epoch (``False``: ``0..N-1`` in order).
        seed: must be the same on every rank.
        drop_last: drop the ``N % W`` leftover samples instead of padding (see the module doc).

    Call :meth:`set_epoch` before each epoch, or every epoch repeats the first one's order
    (:class:`DistributedDataLoader` does this for you).

    Without shuffling the indices are PyTorch's, padding and ``drop_last`` included; a shuffled
    epoch's order is :func:`epoch_permutation`'s, not ``torch.randperm``'s. The attributes are
    PyTorch's (subclasses read them): ``num_samples`` is this rank's count (``len(s)``), ``total_size``
    is ``num_samples * num_replicas``, and ``dataset``, ``num_replicas``, ``rank``, ``epoch``,
    ``seed``, ``shuffle`` and ``drop_last``; ``dataset_size`` is N.

    Example:
        >>> s = DistributedSampler(10, num_replicas=3, rank=1, shuffle=False)
        >>> list(s), len(s), s.num_samples, s.total_size
        ([1, 4, 7, 0], 4, 4, 12)
    """

    def __init__(
        self,
        dataset: Any = None,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        *,
        num_samples: int | None = None,
    ) -> None:
        if (dataset is None) == (num_samples is None):
            raise ArgumentTypeError(
                "DistributedSampler: expected the dataset (or its size) as the first argument or num_samples=N, "
                f"got {'neither' if dataset is None else 'both'}"
            )
        if num_samples is None:
            num_samples = _dataset_size(dataset)
        size = _check_nonneg_int(num_samples, "num_samples")
        # PyTorch's subclasses read len(self.dataset): a size alone stands for the dataset of its indices
        self.dataset = dataset if dataset is not None and hasattr(dataset, "__len__") else range(size)
        if num_replicas is None or rank is None:
            world = get_world()
            num_replicas = world.world_size if num_replicas is None else num_replicas
            rank = world.rank if rank is None else rank
        self.dataset_size = size  # N (PyTorch's len(self.dataset))
        self.num_replicas = _check_nonneg_int(num_replicas, "num_replicas")
        self.rank = _check_nonneg_int(rank, "rank")
        if self.num_replicas < 1 or self.rank >= self.num_replicas:
            raise ArgumentError(
                f"DistributedSampler: need 0 <= rank < num_replicas, got rank {rank} of {num_replicas} replicas"
            )
        self.seed = _check_nonneg_int(seed, "seed")
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if self.drop_last and 0 < size < self.num_replicas:
            raise ArgumentError(
                f"DistributedSampler: drop_last=True with {size} samples for {self.num_replicas} "
                f"ranks leaves every rank empty"
            )
        # an empty dataset gives every rank no indices, as PyTorch's sampler does
        self.epoch = 0
        w = self.num_replicas
        # PyTorch's attributes: this rank's count (N rounded down or up to a multiple of W, over W) and
        # the samples all ranks read together per epoch
        self.num_samples = size // w if self.drop_last else -(-size // w)
        self.total_size = self.num_samples * w

    def __len__(self) -> int:
        """Samples this rank reads per epoch (the same on every rank)."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose permutation :meth:`indices` returns."""
        self.epoch = _check_nonneg_int(epoch, "epoch")

    def global_order(self) -> np.ndarray:
        """All ranks' samples of this epoch, in the order a single process with batch W*B reads them."""
        n = self.dataset_size
        order = epoch_permutation(n, self.seed, self.epoch) if self.shuffle else np.arange(n)
        total = self.total_size
        if total <= n:
            return order[:total]
        return np.resize(order, total)  # pads by repeating from the start (wraps again if N < W)

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch."""
        return self.global_order()[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __repr__(self) -> str:
        return (
            f"DistributedSampler({self.dataset_size} samples, rank {self.rank} of {self.num_replicas}, "
            f"{len(self)} per rank, shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}, "
            f"epoch={self.epoch})"
        )


class DistributedDataLoader(DataLoader):
    """A DataLoader over this rank's shard; each pass over it is the next epoch.

    A :class:`~downslope.data.DataLoader` subclass, so it can be given to ``fit`` as ``train``.

    Every rank gets ``len(self)`` batches of ``batch_size`` (the last one smaller unless
    ``drop_last``), so all ranks take the same number of steps. The effective (global) batch is
    ``batch_size * world_size``. Iterating advances the epoch automatically; :meth:`set_epoch`
    jumps to an epoch (e.g. on resume).

    Args:
        dataset: a Dataset or a tuple of arrays ``(x, y)``; ``x`` may be several inputs (a list or tuple
            of arrays, or a dict of them), as ``fit`` takes: each batch then holds the same rows of every
            input, as ``(Inputs, y)`` (``model(*xb)``) or ``(NamedInputs, y)`` (``model(**xb)``).
        batch_size: per-rank batch size B.
        shuffle, seed: see :class:`DistributedSampler` (the seed must match on all ranks; checked).
        drop_last: drop the last, smaller per-rank batch.
        pad: pad the dataset to a multiple of the world size (default) instead of dropping samples.
        device: where the batches are made (as DataLoader's ``device``); None: host memory.

    Example:
        >>> import numpy as np
        >>> loader = DistributedDataLoader((np.arange(10.0).reshape(10, 1),), batch_size=4, shuffle=False)
        >>> [x.shape for (x,) in loader], loader.epoch
        ([downslope.Size([4, 1]), downslope.Size([4, 1]), downslope.Size([2, 1])], 1)
    """

    sampler: DistributedSampler  # the base class's sampler slot, holding this rank's shard order

    def __init__(
        self,
        dataset: Dataset | Sequence[Any],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        pad: bool = True,
        *,
        world: World | None = None,
        device: Any = None,
    ) -> None:
        if isinstance(dataset, (tuple, list)) and dataset and multi_input(dataset[0]):  # ((x1, x2), y), ({...}, y)
            dataset = inputs_dataset(dataset[0], dataset[1:], "DistributedDataLoader")
        elif isinstance(dataset, (tuple, list)):
            dataset = ArrayDataset(*dataset)
        if not isinstance(dataset, Dataset):
            raise ArgumentTypeError(
                f"DistributedDataLoader: expected a Dataset or a tuple of arrays (x, y), got {type(dataset).__name__}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ArgumentError(
                f"DistributedDataLoader: batch_size must be a positive integer (per rank), got {batch_size!r}"
            )
        self.world = world if world is not None else get_world()
        if len(dataset) == 0:
            raise ArgumentError("DistributedDataLoader: the dataset is empty (0 samples); there is nothing to train on")
        if not pad and len(dataset) < self.world.world_size:
            # the sampler's own words would be drop_last=True, which is how pad=False reaches it
            raise ArgumentError(
                f"DistributedDataLoader: pad=False with {len(dataset)} samples for {self.world.world_size} ranks "
                f"leaves every rank empty (pad=False drops the samples left over after the last multiple of "
                f"{self.world.world_size}); keep pad=True (the default), which repeats samples to fill every rank"
            )
        self.sampler = DistributedSampler(
            len(dataset), self.world.world_size, self.world.rank, shuffle=shuffle, seed=seed, drop_last=not pad
        )
        if drop_last and len(self.sampler) < batch_size:
            raise ArgumentError(
                f"DistributedDataLoader: drop_last=True with per-rank batch {batch_size} > {len(self.sampler)} "
                f"samples per rank gives no batches"
            )
        # The base class holds the dataset and the flags; it never shuffles (the sampler does).
        super().__init__(
            dataset,
            batch_size=min(int(batch_size), len(self.sampler)),
            shuffle=False,
            drop_last=drop_last,
            sampler=self.sampler,
            device=device,
        )
        self.shuffle = self.sampler.shuffle
        self._check_agreement()

    def _check_agreement(self) -> None:
        # Ranks with different data sizes or seeds would draw different permutations: the shards
        # would overlap, or the ranks would disagree on the number of steps and hang.
        if self.world.world_size == 1:
            return
        mine = f"{len(self.dataset)} samples, seed {self.sampler.seed}, shuffle {self.sampler.shuffle}, batch {self.batch_size}"
        for other, raw in enumerate(self.world.comm.allgather_bytes(mine.encode())):
            if raw.decode() != mine:
                raise DisagreementError(
                    f"DistributedDataLoader: rank {self.world.rank} has {mine} but rank {other} has "
                    f"{raw.decode()}; every rank must load the same dataset with the same seed and batch size"
                )

    @property
    def method(self) -> str:
        """The kind of gradient descent, judged by the global batch (all ranks together)."""
        if self.global_batch_size >= self.num_samples:
            return "full-batch gradient descent"
        if self.global_batch_size == 1:
            return "stochastic gradient descent"
        return "mini-batch gradient descent"

    @property
    def epoch(self) -> int:
        """The epoch the next iteration will read."""
        return self.sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    @property
    def global_batch_size(self) -> int:
        """Samples per optimizer step over all ranks: batch_size * world_size."""
        return self.batch_size * self.world.world_size

    def __len__(self) -> int:
        """Batches (= optimizer steps) per epoch, the same on every rank."""
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        dataset: Any = self.dataset  # a Dataset: __init__ wrapped arrays and refused anything else
        shard = Subset(dataset, self.sampler.indices())
        self.sampler.set_epoch(self.sampler.epoch + 1)
        batches = DataLoader(
            shard, batch_size=self.batch_size, shuffle=False, drop_last=self.drop_last, device=self.device
        )
        if isinstance(dataset, InputsDataset):  # several inputs (the same rows of each): (inputs, targets, ...)
            for batch in batches:
                yield dataset.group(batch)
            return
        yield from batches

    def state_dict(self) -> dict[str, Any]:
        """The epoch to resume from (the permutations are a function of the seed and the epoch)."""
        return {"epoch": self.sampler.epoch, "seed": self.sampler.seed, "world_size": self.world.world_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or "epoch" not in state:
            raise ArgumentError(
                f"DistributedDataLoader.load_state_dict: expected a dict with 'epoch' (from state_dict()), got {state!r}"
            )
        saved_world = state.get("world_size", self.world.world_size)
        if saved_world != self.world.world_size:  # the batch each update sees, and the sample order, would change
            raise ArgumentError(
                f"DistributedDataLoader.load_state_dict: the state was saved by {saved_world} processes, this run "
                f"has {self.world.world_size}; resume under mpiexec -n {saved_world}"
            )
        if state.get("seed", self.sampler.seed) != self.sampler.seed:
            raise ArgumentError(
                f"DistributedDataLoader.load_state_dict: the state was saved with seed {state.get('seed')}, "
                f"this loader uses seed {self.sampler.seed}"
            )
        self.set_epoch(state["epoch"])

    def __repr__(self) -> str:
        return (
            f"DistributedDataLoader(per-rank batch {self.batch_size} x {self.world.world_size} ranks = "
            f"{self.global_batch_size} per step, {len(self)} steps/epoch, {self.sampler!r})"
        )
