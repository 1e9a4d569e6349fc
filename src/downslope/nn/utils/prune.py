"""Pruning (``torch.nn.utils.prune``): zero a share of a parameter's entries through a mask.

Pruning ``name`` of a module keeps the trained values as the parameter ``<name>_orig`` and the mask as
the buffer ``<name>_mask``, and makes ``<name>`` their product, recomputed before every forward, so
the pruned entries stay zero while training (their gradient is masked too). The state_dict keys are
PyTorch's, so pruned checkpoints load across. Pruning the same parameter again prunes the entries
that are left (a fraction counts them, not the whole tensor); :func:`remove` makes the pruning
permanent (``<name>`` becomes a plain parameter holding the zeros). Among entries (or slices) of equal
importance, the ones pruned are those torch's CPU ``topk`` picks (a zero-initialised bias pruned by half
loses its second half, as in torch).

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> from downslope.nn.utils import prune
    >>> layer = nn.Linear(4, 2)
    >>> _ = prune.l1_unstructured(layer, "weight", amount=0.5)
    >>> int((layer.weight == 0).sum()), sorted(layer.state_dict())
    (4, ['bias', 'weight_mask', 'weight_orig'])
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ... import backend, ops
from ...backend import namespace_of
from ...devices import to_host
from ...errors import ArgumentError, ArgumentTypeError, OutOfRangeError, ShapeError, StateError
from ...tensor import Tensor, wrap_array

__all__ = [
    "BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured", "RandomStructured", "LnStructured",
    "CustomFromMask", "identity", "random_unstructured", "l1_unstructured", "random_structured", "ln_structured",
    "global_unstructured", "custom_from_mask", "remove", "is_pruned",
]  # fmt: skip


def _check_amount(amount: Any, where: str) -> None:
    """PyTorch's check when a method is made: an int >= 0 or a fraction in [0, 1]."""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise ArgumentTypeError(f"{where}: amount must be an int or a float, got {type(amount).__name__}")
    if isinstance(amount, numbers.Integral) and int(amount) < 0:
        raise ArgumentError(f"{where}: amount={amount} should be a non-negative integer or a float in [0, 1]")
    if not isinstance(amount, numbers.Integral) and not 0.0 <= float(amount) <= 1.0:  # host: a Python number
        raise ArgumentError(f"{where}: a fractional amount must lie in [0, 1], got {amount}")


def _count(amount: Any, size: int, where: str) -> int:
    """How many entries ``amount`` asks for: an int as is, a fraction of ``size`` rounded (as PyTorch)."""
    _check_amount(amount, where)
    if isinstance(amount, numbers.Integral):
        if int(amount) > size:
            raise ArgumentError(f"{where}: amount={amount} must lie between 0 and the {size} entries to prune")
        return int(amount)
    return round(float(amount) * size)  # host: a Python number


def _array(value: Any) -> Any:
    return value.array if isinstance(value, Tensor) else value


def _topk_indices(values: Any, k: int, largest: bool) -> Any:
    """The indices ``torch.topk(values, k, largest=largest).indices`` holds on the CPU (1-d ``values``, as a
    set: the order is not kept), ties included: torch's kernel selects with libstdc++'s
    ``std::nth_element`` (``std::partial_sort`` when ``64 * k <= n``) on (value, index) pairs compared by
    value, NaN largest, so which of equal values it takes follows from those algorithms' swaps. When no
    tie straddles the k-th value the set is the k smallest (largest) and found with NumPy; otherwise the
    algorithm is replayed in Python (O(n) steps, on the host), which gives torch's choice.
    On a GPU torch picks ties differently; this gives the CPU's choice there too."""
    xp = namespace_of(values)
    host = np.asarray(to_host(values)).reshape(-1)  # host: torch's tie order comes from a sequential algorithm
    n = host.size
    # ranks: equal values (and -0.0, 0.0) share one, NaN is the largest; selecting the k smallest ranks
    ranks = np.unique(host, return_inverse=True)[1].reshape(-1)
    if largest:
        ranks = ranks.max(initial=0) - ranks
    chosen = np.argsort(ranks, kind="stable")[:k]
    if (
        k == 0
        or k == n
        or np.count_nonzero(ranks == ranks[chosen[-1]]) == np.count_nonzero(ranks[chosen] == ranks[chosen[-1]])
    ):
        return xp.asarray(chosen)
    pairs = list(zip(ranks.tolist(), range(n)))  # host: the replay runs in Python
    if 64 * k <= n:
        _heap_select(pairs, 0, k, n)
    else:
        _introselect(pairs, 0, k - 1, n, 2 * (n.bit_length() - 1))
    return xp.asarray(np.array([index for _, index in pairs[:k]], dtype=np.int64))  # host: back to xp


# libstdc++'s selection algorithms (bits/stl_algo.h, bits/stl_heap.h) step for step, on a list of
# (rank, index) pairs compared by rank: what torch's CPU topk runs, so ties fall as they do there.
def _introselect(q: list[tuple[int, int]], first: int, nth: int, last: int, depth: int) -> None:
    while last - first > 3:
        if depth == 0:
            _heap_select(q, first, nth + 1, last)
            q[first], q[nth] = q[nth], q[first]
            return
        depth -= 1
        cut = _partition_pivot(q, first, last)
        if cut <= nth:
            first = cut
        else:
            last = cut
    _insertion_sort(q, first, last)


def _partition_pivot(q: list[tuple[int, int]], first: int, last: int) -> int:
    mid = first + (last - first) // 2
    a, b, c = first + 1, mid, last - 1  # the median of three moves to first
    if q[a][0] < q[b][0]:
        m = b if q[b][0] < q[c][0] else c if q[a][0] < q[c][0] else a
    else:
        m = a if q[a][0] < q[c][0] else c if q[b][0] < q[c][0] else b
    q[first], q[m] = q[m], q[first]
    pivot = q[first][0]
    lo, hi = first + 1, last
    while True:
        while q[lo][0] < pivot:
            lo += 1
        hi -= 1
        while pivot < q[hi][0]:
            hi -= 1
        if not lo < hi:
            return lo
        q[lo], q[hi] = q[hi], q[lo]
        lo += 1


def _insertion_sort(q: list[tuple[int, int]], first: int, last: int) -> None:
    for i in range(first + 1, last):
        value = q[i]
        if value[0] < q[first][0]:
            q[first + 1 : i + 1] = q[first:i]
            q[first] = value
        else:
            j = i
            while value[0] < q[j - 1][0]:
                q[j] = q[j - 1]
                j -= 1
            q[j] = value


def _heap_select(q: list[tuple[int, int]], first: int, middle: int, last: int) -> None:
    length = middle - first
    if length >= 2:  # make_heap
        parent = (length - 2) // 2
        while True:
            _adjust_heap(q, first, parent, length, q[first + parent])
            if parent == 0:
                break
            parent -= 1
    for i in range(middle, last):
        if q[i][0] < q[first][0]:  # pop_heap(first, middle, i)
            value = q[i]
            q[i] = q[first]
            _adjust_heap(q, first, 0, length, value)


def _adjust_heap(q: list[tuple[int, int]], first: int, hole: int, length: int, value: tuple[int, int]) -> None:
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if q[first + child][0] < q[first + child - 1][0]:
            child -= 1
        q[first + hole] = q[first + child]
        hole = child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        q[first + hole] = q[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2  # push_heap
    while hole > top and q[first + parent][0] < value[0]:
        q[first + hole] = q[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    q[first + hole] = value


def _as_mask(value: Any, like: Any) -> Tensor:
    """A mask a ``compute_mask`` returned, as a Tensor (a user's method may hand back an array)."""
    if isinstance(value, Tensor):
        return value.detach()
    return wrap_array(namespace_of(_array(like)).asarray(value))


def _dim(t: Any, dim: int, where: str) -> int:
    ndim = len(t.shape)
    if not -ndim <= dim < ndim:
        raise OutOfRangeError(f"{where}: dim={dim} is out of range for a tensor of shape {tuple(t.shape)}")
    return dim % ndim


class BasePruningMethod:
    """A way of choosing entries to zero: subclasses define ``compute_mask(t, default_mask)``, the mask
    (1 keep, 0 prune) of ``t`` given the mask it already has, both Tensors of ``t``'s shape.
    ``PRUNING_TYPE`` is 'unstructured' (entries), 'structured' (whole slices along ``dim``) or 'global'.

    As in PyTorch, the first pruning of a parameter calls ``compute_mask`` with the whole parameter
    (or its ``importance_scores``) and a mask of ones; pruning it again goes through a
    :class:`PruningContainer`, which calls the new method on what is left only: an unstructured
    method gets the 1-D tensor ``t[mask == 1]`` (and ``default_mask[mask == 1]``), a structured one
    the slices along ``dim`` that are not all zero, a global one the whole tensor. The method is
    the module's forward pre-hook (``module._forward_pre_hooks``) that recomputes ``<name>``.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils import prune
        >>> class EveryOther(prune.BasePruningMethod):
        ...     PRUNING_TYPE = "unstructured"
        ...     def compute_mask(self, t, default_mask):
        ...         mask = default_mask.clone()
        ...         mask.view(-1)[::2] = 0
        ...         return mask
        >>> layer = ds.nn.Linear(3, 4)
        >>> _ = EveryOther.apply(layer, "bias")
        >>> layer.bias_mask
        tensor([0., 1., 0., 1.])
    """

    PRUNING_TYPE = "unstructured"
    dim = -1
    _tensor_name = ""  # set when attached to a module: the parameter it prunes

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        """The mask (1 keep, 0 prune) for ``t``, respecting the zeros of ``default_mask``."""
        raise NotImplementedError(f"{type(self).__name__} must define compute_mask(t, default_mask)")

    def __call__(self, module: Any, inputs: Any) -> None:
        object.__setattr__(module, self._tensor_name, self.apply_mask(module))

    def apply_mask(self, module: Any) -> Tensor:
        """``<name>_orig * <name>_mask`` of ``module``: the pruned parameter."""
        if not self._tensor_name:
            raise StateError(f"{type(self).__name__}.apply_mask: the method is not attached to a parameter yet")
        mask = getattr(module, self._tensor_name + "_mask")
        orig = getattr(module, self._tensor_name + "_orig")
        return (mask if mask.dtype == orig.dtype else mask.to(orig.dtype)) * orig

    @classmethod
    def apply(cls, module: Any, name: str, *args: Any, importance_scores: Any = None, **kwargs: Any) -> Any:
        """Prune ``module.<name>`` with ``cls(*args, **kwargs)``; returns the hook now attached (the
        method, or the :class:`PruningContainer` holding it when ``name`` was pruned before)."""
        method: BasePruningMethod = cls(*args, **kwargs)
        method._tensor_name = name
        hooks = module._forward_pre_hooks
        old = [k for k, h in hooks.items() if isinstance(h, BasePruningMethod) and h._tensor_name == name]
        if len(old) > 1:
            raise StateError(f"prune: {type(module).__name__} has several pruning hooks for {name!r}")
        container = None
        if old:
            previous = hooks[old[0]]
            container = previous if isinstance(previous, PruningContainer) else PruningContainer(previous)
            container.add_pruning_method(method)
            method = container
        orig = getattr(module, name)
        if importance_scores is not None and tuple(importance_scores.shape) != tuple(orig.shape):
            raise ShapeError(
                f"prune: importance_scores of shape {tuple(importance_scores.shape)} for {name!r} of shape "
                f"{tuple(orig.shape)}"
            )
        scores = orig if importance_scores is None else importance_scores
        if container is None:
            from ..module import Parameter

            if not isinstance(module._parameters.get(name), Parameter):
                raise ArgumentError(f"prune: {type(module).__name__} has no parameter {name!r}")
            delattr(module, name)
            module.register_parameter(name + "_orig", orig)
            default_mask = wrap_array(namespace_of(orig.array).ones_like(orig.array))
        else:
            default_mask = getattr(module, name + "_mask").detach().clone()
        try:
            mask = _as_mask(method.compute_mask(scores, default_mask=default_mask), default_mask)
            if tuple(mask.shape) != tuple(orig.shape):
                raise ShapeError(
                    f"prune: {type(method).__name__}.compute_mask returned shape {tuple(mask.shape)} for "
                    f"{name!r} of shape {tuple(orig.shape)}"
                )
            old_mask = getattr(module, name + "_mask", None)
            module.register_buffer(name + "_mask", mask)
            try:
                object.__setattr__(module, name, method.apply_mask(module))
            except Exception:
                if old_mask is not None:
                    module.register_buffer(name + "_mask", old_mask)
                raise
        except Exception:
            # leave the module as it was: the old hook and container, or the plain parameter
            if container is not None:
                container._pruning_methods = container._pruning_methods[:-1]
            else:
                if name + "_mask" in module._buffers:
                    delattr(module, name + "_mask")
                delattr(module, name + "_orig")
                module.register_parameter(name, orig)
            raise
        for k in old:
            del hooks[k]
        module.register_forward_pre_hook(method)
        return method

    def prune(self, t: Any, default_mask: Any = None, importance_scores: Any = None) -> Tensor:
        """``t`` times the mask this method computes for it (nothing is attached to a module)."""
        t = t if isinstance(t, Tensor) else wrap_array(t)
        if importance_scores is not None and tuple(importance_scores.shape) != tuple(t.shape):
            raise ShapeError(
                f"prune: importance_scores of shape {tuple(importance_scores.shape)} for a tensor of shape "
                f"{tuple(t.shape)}"
            )
        scores = t if importance_scores is None else importance_scores
        base = wrap_array(namespace_of(t.array).ones_like(t.array)) if default_mask is None else default_mask
        return t * _as_mask(self.compute_mask(scores, default_mask=base), base)

    def remove(self, module: Any) -> None:
        """Make this pruning of ``module`` permanent (what :func:`remove` does with the hook)."""
        name = self._tensor_name
        if not name:
            raise StateError(f"{type(self).__name__}.remove: the method is not attached to a parameter")
        weight = self.apply_mask(module)
        orig = module._parameters[name + "_orig"]
        # the same Parameter object, holding the pruned values (as PyTorch): an optimizer built after the
        # pruning keeps training it, and its requires_grad is kept
        orig.array[...] = weight.array
        delattr(module, name + "_orig")
        delattr(module, name + "_mask")
        if name in module.__dict__:
            object.__delattr__(module, name)
        module.register_parameter(name, orig)


class PruningContainer(BasePruningMethod):
    """The pruning methods applied one after another to the same parameter (PyTorch's class of the
    same name): iterating it gives them in order; its ``compute_mask`` applies the latest one to
    what the mask still keeps.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils import prune
        >>> layer = ds.nn.Linear(3, 2)
        >>> _ = prune.l1_unstructured(layer, "weight", amount=2)
        >>> container = prune.RandomUnstructured.apply(layer, "weight", amount=1)
        >>> [type(m).__name__ for m in container], container._tensor_name
        (['L1Unstructured', 'RandomUnstructured'], 'weight')
    """

    def __init__(self, *args: BasePruningMethod) -> None:
        self._pruning_methods: tuple[BasePruningMethod, ...] = ()
        if args:
            self._tensor_name = args[0]._tensor_name if isinstance(args[0], BasePruningMethod) else ""
        for method in args:
            self.add_pruning_method(method)

    def add_pruning_method(self, method: BasePruningMethod) -> None:
        """Append ``method`` (it must prune the same parameter as the container)."""
        if not isinstance(method, BasePruningMethod):
            raise ArgumentTypeError(f"PruningContainer: expected a BasePruningMethod, got {type(method).__name__}")
        if self._tensor_name != method._tensor_name:
            raise ArgumentError(
                f"PruningContainer: holds methods for {self._tensor_name!r}, got one for {method._tensor_name!r}"
            )
        self._pruning_methods += (method,)

    def __len__(self) -> int:
        return len(self._pruning_methods)

    def __iter__(self) -> Iterator[BasePruningMethod]:
        return iter(self._pruning_methods)

    def __getitem__(self, idx: Any) -> Any:
        return self._pruning_methods[idx]

    def compute_mask(self, t: Any, default_mask: Any) -> Tensor:
        """The latest method applied to the part of ``t`` that ``default_mask`` keeps (entries where it
        is 1 for an unstructured method, the slices along ``dim`` not all zero for a structured one,
        all of ``t`` for a global one), combined with ``default_mask``."""
        if not self._pruning_methods:
            raise StateError("PruningContainer.compute_mask: the container holds no pruning method")
        method = self._pruning_methods[-1]
        scores, mask = _array(t), _array(default_mask)
        new = mask.astype(scores.dtype)  # a copy, as PyTorch's mask.to(t.dtype) after the clone in apply
        if method.PRUNING_TYPE == "unstructured":
            slc: Any = mask == 1
        elif method.PRUNING_TYPE == "structured":
            if not hasattr(method, "dim"):
                raise ArgumentError(f"{type(method).__name__}: a structured pruning method needs a `dim` attribute")
            dim = _dim(scores, method.dim, type(method).__name__)
            others = tuple(a for a in range(scores.ndim) if a != dim)
            index: list[Any] = [slice(None)] * scores.ndim
            index[dim] = mask.sum(axis=others) != 0
            slc = tuple(index)
        elif method.PRUNING_TYPE == "global":
            slc = (slice(None),) * scores.ndim
        else:
            raise ArgumentError(f"{type(method).__name__}: unknown PRUNING_TYPE {method.PRUNING_TYPE!r}")
        partial = method.compute_mask(wrap_array(scores[slc]), default_mask=wrap_array(mask[slc]))
        new[slc] = _array(partial)
        return wrap_array(new)


class Identity(BasePruningMethod):
    """Prunes nothing (the mask is all ones): attaches the mask machinery only."""

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        return default_mask


class RandomUnstructured(BasePruningMethod):
    """``amount`` entries chosen at random (from the library's generator, ``ds.manual_seed``)."""

    def __init__(self, amount: Any) -> None:
        _check_amount(amount, "random_unstructured")
        self.amount = amount

    def compute_mask(self, t: Any, default_mask: Any) -> Tensor:
        t = _array(t)
        k = _count(self.amount, t.size, "random_unstructured")
        mask = _array(default_mask).copy()
        if k:
            draws = backend.random_like(t.shape, t).reshape(-1)
            mask.reshape(-1)[namespace_of(t).argsort(-draws, kind="stable")[:k]] = 0
        return wrap_array(mask)


class L1Unstructured(BasePruningMethod):
    """The ``amount`` entries of smallest absolute value (of ``importance_scores`` when given)."""

    def __init__(self, amount: Any) -> None:
        _check_amount(amount, "l1_unstructured")
        self.amount = amount

    def compute_mask(self, t: Any, default_mask: Any) -> Tensor:
        t = _array(t)
        k = _count(self.amount, t.size, "l1_unstructured")
        mask = _array(default_mask).copy()
        if k:
            mask.reshape(-1)[_topk_indices(namespace_of(t).abs(t), k, largest=False)] = 0
        return wrap_array(mask)


class RandomStructured(BasePruningMethod):
    """``amount`` whole slices along ``dim`` (channels, for a conv weight with dim=0), chosen at random."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount: Any, dim: int = -1) -> None:
        _check_amount(amount, "random_structured")
        self.amount, self.dim = amount, dim

    def compute_mask(self, t: Any, default_mask: Any) -> Tensor:
        t = _array(t)
        dim = _dim(t, self.dim, "random_structured")
        k = _count(self.amount, t.shape[dim], "random_structured")
        draws = backend.random_like((t.shape[dim],), t)
        return wrap_array(_keep_slices(_array(default_mask), dim, namespace_of(t).argsort(-draws, kind="stable")[k:]))


class LnStructured(BasePruningMethod):
    """The ``amount`` slices along ``dim`` of smallest ``n``-norm (``n`` a number, 'fro' or inf)."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount: Any, n: Any, dim: int = -1) -> None:
        _check_amount(amount, "ln_structured")
        self.amount, self.n, self.dim = amount, n, dim

    def compute_mask(self, t: Any, default_mask: Any) -> Tensor:
        t = _array(t)
        dim = _dim(t, self.dim, "ln_structured")
        k = _count(self.amount, t.shape[dim], "ln_structured")
        others = tuple(a for a in range(t.ndim) if a != dim)
        order = 2 if self.n == "fro" else self.n
        norms = ops.vector_norm(wrap_array(t), order, others).array
        keep = _topk_indices(norms, t.shape[dim] - k, largest=True)  # the largest norms stay
        return wrap_array(_keep_slices(_array(default_mask), dim, keep))


def _keep_slices(default_mask: Any, dim: int, keep: Any) -> Any:
    mask = namespace_of(default_mask).zeros_like(default_mask)
    index = [slice(None)] * mask.ndim
    index[dim] = keep
    mask[tuple(index)] = default_mask[tuple(index)]
    return mask


class CustomFromMask(BasePruningMethod):
    """Prunes where the given ``mask`` is 0."""

    PRUNING_TYPE = "global"

    def __init__(self, mask: Any) -> None:
        self.mask = mask

    def compute_mask(self, t: Any, default_mask: Any) -> Tensor:
        given, base = _array(self.mask), _array(default_mask)
        if tuple(given.shape) != tuple(base.shape):
            raise ShapeError(
                f"custom_from_mask: mask of shape {tuple(given.shape)} for a tensor of shape {tuple(base.shape)}"
            )
        return wrap_array(base * namespace_of(base).asarray(given).astype(base.dtype))


def identity(module: Any, name: str) -> Any:
    """Attach an all-ones mask to ``name`` (``torch.nn.utils.prune.identity``)."""
    Identity.apply(module, name)
    return module


def random_unstructured(module: Any, name: str, amount: Any) -> Any:
    """Prune ``amount`` (an int, or a fraction of the entries left) entries of ``name`` at random."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module: Any, name: str, amount: Any, importance_scores: Any = None) -> Any:
    """Prune the ``amount`` entries of ``name`` of smallest magnitude (of ``importance_scores`` if given)."""
    L1Unstructured.apply(module, name, amount, importance_scores=importance_scores)
    return module


def random_structured(module: Any, name: str, amount: Any, dim: int) -> Any:
    """Prune ``amount`` whole slices of ``name`` along ``dim`` at random."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module: Any, name: str, amount: Any, n: Any, dim: int, importance_scores: Any = None) -> Any:
    """Prune the ``amount`` slices of ``name`` along ``dim`` of smallest ``n``-norm."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module: Any, name: str, mask: Any) -> Any:
    """Prune ``name`` where ``mask`` is 0."""
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(
    parameters: Iterable[tuple[Any, str]],
    pruning_method: type[BasePruningMethod],
    importance_scores: dict[tuple[Any, str], Any] | None = None,
    **kwargs: Any,
) -> None:
    """Prune across several parameters at once, as if they were one tensor: e.g. the 20% smallest
    weights of the whole network (``pruning_method=L1Unstructured, amount=0.2``)."""
    pairs = list(parameters)
    if not pairs:
        raise ArgumentError("global_unstructured: expected at least one (module, name) pair")
    if importance_scores is not None and not isinstance(importance_scores, dict):
        raise ArgumentTypeError(
            f"global_unstructured: importance_scores must be a dict, got {type(importance_scores).__name__}"
        )
    given = importance_scores or {}
    scores, masks = [], []
    for module, name in pairs:
        scores.append(_array(given.get((module, name), getattr(module, name))).reshape(-1))
        mask = getattr(module, name + "_mask", None)
        masks.append(namespace_of(scores[-1]).ones_like(scores[-1]) if mask is None else mask.array.reshape(-1))
    method = pruning_method(**kwargs)
    if method.PRUNING_TYPE != "unstructured":
        raise ArgumentTypeError(
            f"global_unstructured: only unstructured pruning methods can be applied globally, got "
            f"{pruning_method.__name__} of type {method.PRUNING_TYPE!r}"
        )
    container = PruningContainer()
    container._tensor_name = method._tensor_name = "temp"
    container.add_pruning_method(method)
    xp = namespace_of(scores[0])
    joint = container.compute_mask(wrap_array(xp.concatenate(scores)), wrap_array(xp.concatenate(masks))).array
    start = 0
    for (module, name), part in zip(pairs, scores):
        piece = joint[start : start + part.size]
        start += part.size
        custom_from_mask(module, name, wrap_array(piece.reshape(getattr(module, name).shape)))


def remove(module: Any, name: str) -> Any:
    """Make the pruning of ``name`` permanent: ``name`` becomes a plain parameter holding
    ``<name>_orig * <name>_mask``; the mask, the original and the hook go."""
    hooks = module._forward_pre_hooks
    for k, hook in list(hooks.items()):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del hooks[k]
            return module
    raise ArgumentError(
        f"prune.remove: parameter {name!r} of {type(module).__name__} has no pruning to remove "
        "(it has to be pruned before pruning can be removed)"
    )


def _pruning_hooks(module: Any) -> list[BasePruningMethod]:
    # read without creating the hook table: modules never hooked keep their fast call path
    hooks = module.__dict__.get("_hooks")
    return [h for h in hooks["forward_pre"].values() if isinstance(h, BasePruningMethod)] if hooks else []


def is_pruned(module: Any) -> bool:
    """Whether ``module`` or any of its submodules has a pruned parameter."""
    return any(_pruning_hooks(m) for m in module.modules())
