"""The Adam family (Adam, AdamW, Adamax, NAdam, RAdam) and Lion, with PyTorch's names and defaults.

Weight decay is L2 regularisation (added to the gradient before the moments) unless
``decoupled_weight_decay`` is set (AdamW's rule ``p <- p - lr * wd * p`` beside the Adam step).
AdamW's default ``weight_decay=1e-2`` is PyTorch's (Optax uses 1e-4): we follow PyTorch so that
scripts carry over unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from typing_extensions import Unpack

from ..autograd import enable_grad
from ..devices import device_of, to_device, to_host
from ..errors import ArgumentError, ArgumentTypeError
from ..tensor import wrap_array
from . import _fused
from . import transforms as T
from .buckets import state_slots
from .optimizer import (
    Optimizer,
    OptimizerOptions,
    check_betas,
    check_nonnegative,
    check_tensor_hyper_with_foreach,
)
from .transforms import StepContext, from_group
from .transforms.adaptive import nadam_float16_update


def _weight_decay(decoupled: bool) -> T.GradientTransformation:
    """Add ``wd * p`` to the updates when the group's ``decoupled_weight_decay`` equals ``decoupled``."""
    inner = T.add_decayed_weights(from_group("weight_decay"), decoupled=decoupled)

    def update(g: np.ndarray, state: Any, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, Any]:
        if bool(ctx.group.get("decoupled_weight_decay", False)) == decoupled:  # host: a group's flag
            return inner.update(g, state, params, ctx)
        return g, state

    return T.GradientTransformation(inner.init, update)


def _adam_like_chain(core: T.GradientTransformation) -> T.GradientTransformation:
    return T.chain(
        T.negate_if(from_group("maximize")),
        _weight_decay(decoupled=False),
        core,
        _weight_decay(decoupled=True),
        T.scale_by_lr(from_group("lr")),
    )


class _AdamBase(Optimizer):
    def _check_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        check_nonnegative(name, "lr", group["lr"])
        check_nonnegative(name, "eps", group["eps"])
        check_nonnegative(name, "weight_decay", group["weight_decay"])
        check_betas(name, group["betas"])


class Adam(_AdamBase):
    """Adam (Kingma & Ba, 2015), with AMSGrad (``amsgrad=True``) and optional decoupled weight decay.

    PyTorch's defaults: ``lr=1e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8``, ``weight_decay=0``.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> w = ds.tensor([1.0, -1.0], requires_grad=True)
        >>> opt = optim.Adam([w], lr=0.1)
        >>> (w * w).sum().backward(); opt.step()
        >>> w
        tensor([ 0.9, -0.9], requires_grad=True)
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        name = type(self).__name__
        check_tensor_hyper_with_foreach(name, "lr", lr, options)
        if isinstance(betas, (tuple, list)):
            for i, beta in enumerate(betas):
                check_tensor_hyper_with_foreach(name, f"betas[{i}]", beta, options)
        defaults = {
            "lr": lr,
            "betas": tuple(betas) if isinstance(betas, list) else betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults, **options)

    def _make_transform(self) -> T.GradientTransformation:
        return _adam_like_chain(
            T.scale_by_adam(from_group("betas", 0), from_group("betas", 1), from_group("eps"), from_group("amsgrad"))
        )

    _fused_update = staticmethod(_fused.adam_step)
    _fused_transform = _make_transform


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): ``p <- p - lr * (adam_step + wd * p)``.

    ``weight_decay`` defaults to 1e-2 as in PyTorch (Optax's adamw uses 1e-4).

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> w = ds.tensor([1.0], requires_grad=True)
        >>> opt = optim.AdamW([w], lr=0.1, weight_decay=0.5)
        >>> (w * w).sum().backward(); opt.step()
        >>> w   # 1 - 0.1 * (1 + 0.5 * 1)
        tensor([0.85], requires_grad=True)
    """

    def __init__(  # type: ignore[misc]  # the kernel flags are named here and in OptimizerOptions
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        # PyTorch's kernel choices, named in the signature as there (nanoGPT looks for "fused" in it);
        # they change how PyTorch runs the update, not the update, and are kept in the groups only
        options.update(foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused)
        if "decoupled_weight_decay" in options:
            raise ArgumentTypeError(
                "AdamW: weight decay is always decoupled; use Adam(decoupled_weight_decay=...) to choose"
            )
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
            **options,
        )


class Adamax(_AdamBase):
    """Adamax (Kingma & Ba, 2015, section 7): Adam with the infinity norm in place of the RMS.

    PyTorch's defaults: ``lr=2e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8``.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> w = ds.tensor([1.0], requires_grad=True)
        >>> opt = optim.Adamax([w], lr=0.1, eps=0.0)
        >>> (w * w).sum().backward(); opt.step()
        >>> w
        tensor([0.9], requires_grad=True)
    """

    def __init__(
        self,
        params: Any,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "maximize": maximize}
        super().__init__(params, defaults, **options)

    def _make_transform(self) -> T.GradientTransformation:
        return _adam_like_chain(T.scale_by_adamax(from_group("betas", 0), from_group("betas", 1), from_group("eps")))


def _spread(product: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """A 0-d running product as one per element of ``flat``, in the product's own dtype."""
    return np.zeros_like(flat, dtype=product.dtype) + product


def _product_after(steps: int, group: dict[str, Any], dtype: Any) -> np.ndarray:
    """NAdam's running product after ``steps`` steps with the group's hyperparameters, as PyTorch
    multiplies it (``mu_product *= mu_t`` in ``dtype``): the product of a parameter that has no element
    to keep it in (an empty one)."""
    beta1, psi = float(group["betas"][0]), float(group["momentum_decay"])  # host: the group's hyperparameters
    kind = np.dtype(dtype).type
    product = kind(1.0)
    for t in range(1, steps + 1):
        product = kind(product * kind(beta1 * (1.0 - 0.5 * (0.96 ** (t * psi)))))
    return np.array(product, dtype)  # host: one number, handed out as the parameter's state


class NAdam(_AdamBase):
    """NAdam (Dozat, 2016): Adam with Nesterov momentum and PyTorch's momentum schedule
    (``momentum_decay=4e-3``); ``decoupled_weight_decay=True`` gives NAdamW.

    PyTorch's defaults: ``lr=2e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8``.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> w = ds.tensor([1.0], requires_grad=True)
        >>> opt = optim.NAdam([w], lr=0.1)
        >>> (w * w).sum().backward(); opt.step()
        >>> bool(0.8 < w.item() < 0.95)
        True
    """

    def __init__(
        self,
        params: Any,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults, **options)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        check_nonnegative("NAdam", "momentum_decay", group["momentum_decay"])

    def _make_transform(self) -> T.GradientTransformation:
        chain = _adam_like_chain(
            T.scale_by_nadam(
                from_group("betas", 0),
                from_group("betas", 1),
                from_group("eps"),
                from_group("momentum_decay"),
                shared_product=True,
            )
        )

        def update(g: np.ndarray, state: Any, params: np.ndarray, ctx: StepContext) -> tuple[np.ndarray, Any]:
            if params.dtype != np.float16:
                return chain.update(g, state, params, ctx)
            # float16: PyTorch stores the parameter after each of the step's parts, which the chain's
            # single float32 update would not round alike; the states are the chain's (its third entry)
            group = ctx.group
            updates = nadam_float16_update(
                g,
                state[2],
                params,
                ctx,
                lr=T.hyper(from_group("lr"), ctx),
                weight_decay=T.hyper(from_group("weight_decay"), ctx),
                decoupled_weight_decay=bool(group.get("decoupled_weight_decay", False)),  # host: a group's flag
                maximize=bool(group.get("maximize", False)),  # host: a group's flag
            )
            return updates, state

        return T.GradientTransformation(chain.init, update)

    _fused_update = staticmethod(_fused.nadam_step)
    _fused_transform = _make_transform

    # ``mu_product`` is one number per flat buffer while its parameters step together (PyTorch keeps
    # one per parameter), and one per element once some parameter has missed a step. state_dict and
    # the ``state`` view give it per parameter as a 0-d array, as PyTorch's state_dict does.
    @staticmethod
    def _product_slot(bucket: Any) -> dict[str, Any] | None:
        for slot in state_slots(bucket.state):
            if "mu_product" in slot:
                return slot
        return None

    @classmethod
    def _product_of(cls, bucket: Any, j: int, group: dict[str, Any]) -> Any:
        """Parameter ``j``'s running product, a 0-d array (None before the state exists)."""
        slot = cls._product_slot(bucket)
        if slot is None:
            return None
        mu = slot["mu_product"]
        if mu.ndim == 0:
            return mu
        if bucket.sizes[j] == 0:
            # an empty parameter: no element holds its product, so it is PyTorch's rebuilt from its step count
            return _product_after(int(bucket.steps[j]), group, mu.dtype)  # host: a step count
        return mu[bucket.offsets[j]].reshape(())

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        spread = self.__dict__.get("_number_views")
        for buckets in self._buckets:
            for b in buckets:
                slot = self._product_slot(b)
                if slot is not None and spread and slot["mu_product"].shape == b.flat.shape:
                    # opt.state's mu_product is a view of each parameter's first element (see _entry_view):
                    # a value written there is the parameter's whole product, as PyTorch's one number
                    mu = slot["mu_product"]
                    for start, stop in zip(b.offsets, b.offsets[1:]):
                        if stop > start + 1:
                            mu[start + 1 : stop] = mu[start]
                if slot is None or slot["mu_product"].ndim:
                    continue
                missing = sum(p.grad is None for p in b.params)
                uneven = not bool((b.steps == b.steps[0]).all())  # host: step counts are host integers
                if uneven or 0 < missing < len(b.params):  # the steps will differ: one product per element
                    slot["mu_product"] = _spread(slot["mu_product"], b.flat)
        super().step()
        return loss

    def _entry_view(self, gi: int, b: Any, j: int, names: dict[str, tuple[int, str]]) -> dict[str, Any]:
        entry = super()._entry_view(gi, b, j, names)
        slot = self._product_slot(b)
        if slot is None:
            return entry
        if b.sizes[j] == 0:  # an empty parameter: no element holds its product
            entry["mu_product"] = wrap_array(to_host(self._product_of(b, j, self.param_groups[gi])).copy())
            return entry
        if slot["mu_product"].ndim == 0 and len(b.params) > 1:
            # one number shared by the bucket: the parameter's own is handed out, which a write changes
            # for that parameter only (PyTorch keeps one per parameter)
            slot["mu_product"] = _spread(slot["mu_product"], b.flat)
        mu = slot["mu_product"]
        if mu.ndim:
            start = b.offsets[j]
            mu = mu[start : start + 1].reshape(())  # a view: step() spreads it over the parameter's elements
            self.__dict__["_number_views"] = True
        entry["mu_product"] = wrap_array(mu)
        return entry

    def state_dict(self) -> dict[str, Any]:
        saved = super().state_dict()
        for pos, (gi, b, j) in enumerate(self._positions()):
            mu = self._product_of(b, j, self.param_groups[gi])
            if b.started[j] and pos in saved["state"] and mu is not None:
                saved["state"][pos]["mu_product"] = wrap_array(to_host(mu).copy())
        return saved

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Also reads ``mu_product`` as PyTorch saves it (a 0-d tensor's array) and as older downslope
        checkpoints did (an array shaped like the parameter, one value repeated)."""
        products: dict[int, Any] = {}
        if isinstance(state_dict, dict) and isinstance(state_dict.get("state"), dict):
            entries = {}
            for key, entry in state_dict["state"].items():
                if isinstance(entry, dict) and "mu_product" in entry:
                    given = getattr(entry["mu_product"], "array", entry["mu_product"])  # a Tensor's array
                    value = np.asarray(to_host(given))  # host: a saved number, read once per load
                    if value.size == 0:
                        raise ArgumentError(f"NAdam.load_state_dict: parameter {key}'s mu_product is empty")
                    products[int(key)] = value.reshape(-1)[0]
                    entry = {k: v for k, v in entry.items() if k != "mu_product"}
                entries[key] = entry
            state_dict = {**state_dict, "state": entries}
        super().load_state_dict(state_dict)
        by_bucket: dict[int, tuple[Any, list[Any]]] = {}
        for pos, (gi, b, j) in enumerate(self._positions()):
            mu = products.get(pos)
            if mu is None:
                mu = self._product_of(b, j, self.param_groups[gi])
            by_bucket.setdefault(id(b), (b, []))[1].append(mu)
        for b, values in by_bucket.values():
            slot = self._product_slot(b)
            if slot is None:
                continue
            # in the product's dtype (PyTorch's float32 for float16 parameters too): a checkpoint that
            # saved it in the parameters' dtype loads its value widened
            dtype = slot["mu_product"].dtype
            host = np.array([float(to_host(v)) for v in values], dtype=dtype)  # host: one number per parameter
            if (host == host[0]).all():
                slot["mu_product"] = np.full_like(b.flat, host[0], dtype=dtype, shape=())
            else:
                spread = np.repeat(host, b.sizes)  # host: built once per load, then moved to the buffer's device
                slot["mu_product"] = to_device(spread, device_of(b.flat))


class RAdam(_AdamBase):
    """RAdam (Liu et al., 2020): Adam with the variance of its adaptive step rectified; plain
    momentum SGD for the first steps (while ``rho_t <= 5``). ``decoupled_weight_decay=True`` gives RAdamW.

    PyTorch's defaults: ``lr=1e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8``.

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> w = ds.tensor([1.0], requires_grad=True)
        >>> opt = optim.RAdam([w], lr=0.1)
        >>> (w * w).sum().backward(); opt.step()
        >>> w   # first steps are un-adapted: 1 - 0.1 * 2
        tensor([0.8], requires_grad=True)
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults, **options)

    def _make_transform(self) -> T.GradientTransformation:
        return _adam_like_chain(T.scale_by_radam(from_group("betas", 0), from_group("betas", 1), from_group("eps")))


class Lion(Optimizer):
    """Lion (Chen et al., 2023): the sign of an interpolated momentum, with decoupled weight decay::

        p <- p - lr * (sign(b1 m + (1 - b1) g) + wd * p);   m <- b2 m + (1 - b2) g

    PyTorch has no Lion; defaults follow the paper's reference implementation: ``betas=(0.9, 0.99)``,
    ``lr=1e-4`` (3-10x smaller than AdamW's, as the paper advises) and ``weight_decay=0`` (Optax's
    lion uses the same betas but ``weight_decay=1e-3``).

    Example:
        >>> import downslope as ds
        >>> from downslope import optim
        >>> w = ds.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = optim.Lion([w], lr=0.1)
        >>> (w * w).sum().backward(); opt.step()
        >>> w
        tensor([ 0.9, -1.9], requires_grad=True)
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        **options: Unpack[OptimizerOptions],
    ) -> None:
        defaults = {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay, "maximize": maximize}
        super().__init__(params, defaults, **options)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_nonnegative("Lion", "lr", group["lr"])
        check_nonnegative("Lion", "weight_decay", group["weight_decay"])
        check_betas("Lion", group["betas"])

    def _make_transform(self) -> T.GradientTransformation:
        return T.chain(
            T.negate_if(from_group("maximize")),
            T.scale_by_lion(from_group("betas", 0), from_group("betas", 1)),
            T.add_decayed_weights(from_group("weight_decay")),
            T.scale_by_lr(from_group("lr")),
        )
