"""Pruning (``torch.nn.utils.prune``): zero a share of a parameter's entries through a mask.

Pruning ``name`` of a module keeps the trained values as the parameter ``<name>_orig`` and the mask as
the buffer ``<name>_mask``, and makes ``<name>`` their product, recomputed before every forward, so
the pruned entries stay zero while training (their gradient is masked too). The state_dict keys are
PyTorch's, so pruned checkpoints load across. Pruning the same parameter again prunes the entries
that are left (a fraction counts them, not the whole tensor); :func:`remove` makes the pruning
permanent (``<name>`` becomes a plain parameter holding the zeros).

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
from collections.abc import Iterable
from typing import Any

from ... import backend, ops
from ...backend import namespace_of
from ...errors import ArgumentError, ArgumentTypeError, StateError
from ...tensor import Tensor, wrap_array

__all__ = [
    "BasePruningMethod", "Identity", "RandomUnstructured", "L1Unstructured", "RandomStructured", "LnStructured",
    "CustomFromMask", "identity", "random_unstructured", "l1_unstructured", "random_structured", "ln_structured",
    "global_unstructured", "custom_from_mask", "remove", "is_pruned",
]  # fmt: skip


def _count(amount: Any, size: int, where: str) -> int:
    """How many entries ``amount`` asks for: an int as is, a fraction of ``size`` rounded (as PyTorch)."""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise ArgumentTypeError(f"{where}: amount must be an int or a float, got {type(amount).__name__}")
    if isinstance(amount, numbers.Integral):
        if not 0 <= int(amount) <= size:
            raise ArgumentError(f"{where}: amount={amount} must lie between 0 and the {size} entries to prune")
        return int(amount)
    if not 0.0 <= float(amount) <= 1.0:  # host: a Python number
        raise ArgumentError(f"{where}: a fractional amount must lie in [0, 1], got {amount}")
    return round(float(amount) * size)  # host: a Python number


class BasePruningMethod:
    """A way of choosing entries to zero: subclasses define ``compute_mask(t, default_mask)``, the mask
    (1 keep, 0 prune) of ``t`` given the mask it already has. ``PRUNING_TYPE`` is 'unstructured'
    (entries), 'structured' (whole slices along ``dim``) or 'global'."""

    PRUNING_TYPE = "unstructured"
    dim = -1
    _tensor_name = ""  # set when attached to a module: the parameter it prunes

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        raise NotImplementedError

    def __call__(self, module: Any, inputs: Any) -> None:
        _recompute(module, self._tensor_name)

    @classmethod
    def apply(cls, module: Any, name: str, *args: Any, importance_scores: Any = None, **kwargs: Any) -> Any:
        method = cls(*args, **kwargs)
        _prune(module, name, method, importance_scores)
        return method

    def prune(self, t: Any, default_mask: Any = None, importance_scores: Any = None) -> Tensor:
        """``t`` times the mask this method computes for it (nothing is attached to a module)."""
        arr = t.array if isinstance(t, Tensor) else t
        scores = importance_scores.array if isinstance(importance_scores, Tensor) else importance_scores
        base = namespace_of(arr).ones_like(arr) if default_mask is None else _array(default_mask)
        return t * wrap_array(self._combined(arr if scores is None else scores, base))

    def _combined(self, scores: Any, mask: Any) -> Any:
        """The new mask: this method applied to the entries (or slices) ``mask`` still keeps."""
        xp = namespace_of(mask)
        if self.PRUNING_TYPE == "structured":
            dim = self.dim % scores.ndim
            others = tuple(a for a in range(scores.ndim) if a != dim)
            alive = xp.nonzero(mask.sum(axis=others) != 0)[0]
            sub_scores, sub_mask = xp.take(scores, alive, axis=dim), xp.take(mask, alive, axis=dim)
            new = mask.copy()
            index = [slice(None)] * scores.ndim
            index[dim] = alive
            new[tuple(index)] = self.compute_mask(sub_scores, sub_mask)
            return new
        alive = mask == 1
        new = mask.copy()
        new[alive] = self.compute_mask(scores[alive], mask[alive])
        return new


def _array(value: Any) -> Any:
    return value.array if isinstance(value, Tensor) else value


class Identity(BasePruningMethod):
    """Prunes nothing (the mask is all ones): attaches the mask machinery only."""

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        return default_mask.copy()


class RandomUnstructured(BasePruningMethod):
    """``amount`` entries chosen at random (from the library's generator, ``ds.manual_seed``)."""

    def __init__(self, amount: Any) -> None:
        self.amount = amount

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        k = _count(self.amount, t.size, "random_unstructured")
        mask = default_mask.copy()
        if k:
            draws = backend.random_like(t.shape, t).reshape(-1)
            mask.reshape(-1)[namespace_of(t).argsort(-draws, kind="stable")[:k]] = 0
        return mask


class L1Unstructured(BasePruningMethod):
    """The ``amount`` entries of smallest absolute value (of ``importance_scores`` when given)."""

    def __init__(self, amount: Any) -> None:
        self.amount = amount

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        k = _count(self.amount, t.size, "l1_unstructured")
        mask = default_mask.copy()
        if k:
            mask.reshape(-1)[namespace_of(t).argsort(namespace_of(t).abs(t).reshape(-1), kind="stable")[:k]] = 0
        return mask


class RandomStructured(BasePruningMethod):
    """``amount`` whole slices along ``dim`` (channels, for a conv weight with dim=0), chosen at random."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount: Any, dim: int = -1) -> None:
        self.amount, self.dim = amount, dim

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        dim = self.dim % t.ndim
        k = _count(self.amount, t.shape[dim], "random_structured")
        draws = backend.random_like((t.shape[dim],), t)
        return _keep_slices(default_mask, dim, namespace_of(t).argsort(-draws, kind="stable")[k:])


class LnStructured(BasePruningMethod):
    """The ``amount`` slices along ``dim`` of smallest ``n``-norm (``n`` a number, 'fro' or inf)."""

    PRUNING_TYPE = "structured"

    def __init__(self, amount: Any, n: Any, dim: int = -1) -> None:
        self.amount, self.n, self.dim = amount, n, dim

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        dim = self.dim % t.ndim
        k = _count(self.amount, t.shape[dim], "ln_structured")
        others = tuple(a for a in range(t.ndim) if a != dim)
        order = 2 if self.n == "fro" else self.n
        norms = ops.vector_norm(wrap_array(t), order, others).array
        keep = namespace_of(t).argsort(-norms, kind="stable")[: t.shape[dim] - k]  # the largest norms stay
        return _keep_slices(default_mask, dim, keep)


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

    def compute_mask(self, t: Any, default_mask: Any) -> Any:
        given = _array(self.mask)
        if tuple(given.shape) != tuple(default_mask.shape):
            raise ArgumentError(
                f"custom_from_mask: mask of shape {tuple(given.shape)} for a tensor of shape {default_mask.shape}"
            )
        return default_mask * namespace_of(default_mask).asarray(given).astype(default_mask.dtype)

    def _combined(self, scores: Any, mask: Any) -> Any:
        return self.compute_mask(scores, mask)


# ---------------------------------------------------------------------- attaching to a module
def _recompute(module: Any, name: str) -> None:
    object.__setattr__(module, name, getattr(module, name + "_orig") * getattr(module, name + "_mask"))


def _prune(module: Any, name: str, method: BasePruningMethod, importance_scores: Any) -> None:
    from ..module import Parameter

    hooks = module.__dict__.setdefault("_pruning_hooks", {})
    if name in hooks:
        orig = getattr(module, name + "_orig")
        old_mask = getattr(module, name + "_mask").array
    else:
        param = module._parameters.get(name)
        if not isinstance(param, Parameter):
            raise ArgumentError(f"prune: {type(module).__name__} has no parameter {name!r}")
        orig, old_mask = param, namespace_of(param.array).ones_like(param.array)
    # as PyTorch: scored on the current (masked) weight, so a second structured pruning sees the zeros
    scores = (orig.array * old_mask) if importance_scores is None else _array(importance_scores)
    if tuple(scores.shape) != tuple(orig.shape):
        raise ArgumentError(
            f"prune: importance_scores of shape {tuple(scores.shape)} for {name!r} of shape {orig.shape}"
        )
    mask = method._combined(scores, old_mask)
    if name not in hooks:
        delattr(module, name)
        module.register_parameter(name + "_orig", orig)
        method._tensor_name = name
        hooks[name] = (method, module.register_forward_pre_hook(method))
    module.register_buffer(name + "_mask", wrap_array(mask))
    _recompute(module, name)


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
    importance_scores: Any = None,
    **kwargs: Any,
) -> None:
    """Prune across several parameters at once, as if they were one tensor: e.g. the 20% smallest
    weights of the whole network (``pruning_method=L1Unstructured, amount=0.2``)."""
    pairs = list(parameters)
    if not pairs:
        raise ArgumentError("global_unstructured: expected at least one (module, name) pair")
    if getattr(pruning_method, "PRUNING_TYPE", None) == "structured":
        raise ArgumentError("global_unstructured: only unstructured pruning methods can be applied globally")
    scores, masks = [], []
    for module, name in pairs:
        current = getattr(module, name + "_orig", None) if name in module.__dict__.get("_pruning_hooks", {}) else None
        tensor = current if current is not None else getattr(module, name)
        given = None if importance_scores is None else importance_scores.get((module, name))
        scores.append(_array(tensor if given is None else given).reshape(-1))
        mask = getattr(module, name + "_mask", None)
        masks.append(namespace_of(scores[-1]).ones_like(scores[-1]) if mask is None else mask.array.reshape(-1))
    xp = namespace_of(scores[0])
    joint = pruning_method(**kwargs)._combined(xp.concatenate(scores), xp.concatenate(masks))
    start = 0
    for (module, name), part in zip(pairs, scores):
        piece = joint[start : start + part.size]
        start += part.size
        custom_from_mask(module, name, piece.reshape(getattr(module, name).shape))


def remove(module: Any, name: str) -> Any:
    """Make the pruning of ``name`` permanent: ``name`` becomes a plain parameter holding
    ``<name>_orig * <name>_mask``; the mask, the original and the hook go."""
    hooks = module.__dict__.get("_pruning_hooks", {})
    if name not in hooks:
        raise StateError(f"prune.remove: parameter {name!r} of {type(module).__name__} has no pruning to remove")
    _, handle = hooks.pop(name)
    handle.remove()
    orig = getattr(module, name + "_orig")
    # the same Parameter object, holding the pruned values (as PyTorch): an optimizer built after the
    # pruning keeps training it, and its requires_grad is kept
    orig.array *= getattr(module, name + "_mask").array.astype(orig.array.dtype)
    delattr(module, name + "_orig")
    delattr(module, name + "_mask")
    object.__delattr__(module, name)
    module.register_parameter(name, orig)
    return module


def is_pruned(module: Any) -> bool:
    """Whether ``module`` or any of its submodules has a pruned parameter."""
    return any(m.__dict__.get("_pruning_hooks") for m in module.modules())
