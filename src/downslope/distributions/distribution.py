"""The base class every distribution derives from, with ``validate_args``, and the helpers that turn
parameters into broadcast floating tensors."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from .. import backend, ops
from ..autograd import enable_grad, no_grad
from ..backend import Size
from ..errors import ArgumentError
from ..graph import is_grad_enabled
from ..tensor import Tensor, as_tensor, record_op
from . import constraints

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
EULER_GAMMA = 0.57721566490153286060


class lazy_property:  # noqa: N801  (torch's name)
    """A property computed on first use and then kept in the instance (``probs`` from ``logits``).

    Example:
        >>> from downslope.distributions.utils import lazy_property
        >>> class A:
        ...     @lazy_property
        ...     def x(self):
        ...         print("computed")
        ...         return 1
        >>> a = A()
        >>> a.x + a.x
        computed
        2
    """

    def __init__(self, fn: Any) -> None:
        self.fn, self.__doc__, self.name = fn, fn.__doc__, fn.__name__
        self.wrapped = fn  # torch's attribute name

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        # Computed with gradients recorded even when first asked for under no_grad (sample() reads
        # probs that way): the kept value must carry the graph for later log_prob/entropy, as torch's.
        with enable_grad():
            value = self.fn(instance)
        instance.__dict__[self.name] = value
        return value


def _param(value: Any, like: Any = None) -> Tensor:
    """A parameter or value as a floating tensor: numbers, and integer or bool tensors, take ``like``'s
    floating dtype (the default dtype without one), so a float64 distribution evaluates integer
    counts in float64, as torch's type promotion does; floating tensors are kept as they are."""
    floating_like = isinstance(like, Tensor) and like.dtype.kind == "f"
    if isinstance(value, Tensor):
        if value.dtype.kind == "f":
            return value
        return ops.astype(value, like.dtype if floating_like else backend.get_default_dtype())
    t = as_tensor(value, dtype=like.dtype if floating_like else None)
    if isinstance(like, Tensor) and t.device != like.device:
        t = t.to(like.device)
    return t if t.dtype.kind == "f" else ops.astype(t, backend.get_default_dtype())


def broadcast_all(*values: Any) -> list[Tensor]:
    """The values as floating tensors broadcast to one shape; numbers take the first tensor's dtype."""
    like = next((v for v in values if isinstance(v, Tensor) and v.dtype.kind == "f"), None)
    tensors = [_param(v, like) for v in values]
    first = tensors[0].shape
    if all(t.shape == first for t in tensors):  # the usual case (a policy's mean and std): nothing to broadcast
        return tensors
    shape = np.broadcast_shapes(*(t.shape for t in tensors))
    return [t if t.shape == shape else ops.broadcast_to(t, shape) for t in tensors]


def no_graph(*tensors: Tensor) -> bool:
    """Whether nothing computed from ``tensors`` now would be recorded: grad mode is off or none of
    them requires grad. The distributions then compute on the arrays directly (an RL rollout builds a
    distribution, samples and scores at batch 1 on every environment step, where a chain of recorded
    ops costs more than the arithmetic); when a gradient is needed they go through the ops."""
    if not is_grad_enabled():
        return True
    for t in tensors:
        if t.requires_grad:
            return False
    return True


_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def untracked_host(*tensors: Tensor) -> bool:
    """Whether nothing computed from ``tensors`` would be recorded (:func:`no_graph`) and they are host
    arrays of one float32/float64 dtype: then the ``log_prob`` of Gamma, Beta, Dirichlet, StudentT,
    Poisson and Binomial take their tensor ops' NumPy steps on the arrays, in the same order and dtype
    (so the same bits), without a tensor per step. A sampler's per-step call on a few elements was
    3-5x torch's, nearly all of it the per-op cost of a dozen tensor ops."""
    return no_graph(*tensors) and host_floats(*tensors)


def host_floats(*tensors: Tensor) -> bool:
    """Whether ``tensors`` are host arrays of one float32/float64 dtype: then a draw (``sample``, which
    records nothing whatever grad mode says, or an ``rsample`` that :func:`no_graph` says records nothing)
    takes its steps on the arrays, in the same order and dtype as its tensor ops (so the same numbers
    from the same generator state), without a tensor per step: a sampler's per-step draw of a few
    elements was 2-4x torch's, most of it the per-op cost."""
    dtype = tensors[0].array.dtype
    if dtype not in _FAST_DTYPES:
        return False
    return all(type(t.array) is np.ndarray and t.array.dtype == dtype for t in tensors)  # host: host arrays only


# Up to this many elements NumPy's samplers are called once per element, on a Python float: its array
# path checks the parameters with whole-array reductions that cost ~12 us a call (a batch-1 draw was
# 8x the draw itself), where the scalar path checks one number. Each element's draw comes from the same
# C routine in the same order either way, so the numbers and the generator's state after are the same.
_SCALAR_DRAWS = 8


def draw_per_element(draw: Any, params: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``draw(params)`` (a NumPy Generator method: standard_gamma, poisson) for ``params`` broadcast
    to ``shape``, one call per element when there are few."""
    if params.dtype not in _FAST_DTYPES:  # (float16, bfloat16: their tolist() need not give Python floats)
        params = np.asarray(params, np.float64)
    if params.shape != shape:
        params = np.broadcast_to(params, shape)
    if params.size <= _SCALAR_DRAWS:
        return np.array([draw(v) for v in params.ravel().tolist()]).reshape(shape)
    return np.asarray(draw(np.asarray(params, np.float64)))


def xlogy_array(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ops.xlogy's value on host arrays of one dtype: x log y, 0 where x == 0, NaN where y is NaN."""
    return np.where(y != y, y, np.where(x == 0, 0, x * np.log(y)))


def _no_vjp(g: Any, y: Any, args: Any, saved: Any, needs: Any, xp: Any) -> tuple[()]:
    return ()


def constant(array: Any) -> Tensor:
    """A tensor around ``array``, computed directly on arrays where :func:`no_graph` said no gradient
    is needed. Made as an op's output with no parents, so that it is what the ops would have given
    (a 0-d array for NumPy's scalar results; an inference tensor inside ``inference_mode()``)."""
    return record_op(array, (), _no_vjp)


def _shape(sample_shape: Any) -> tuple[int, ...]:
    if isinstance(sample_shape, (int, np.integer)):
        return (int(sample_shape),)
    return tuple(int(s) for s in sample_shape)


def _size(shape: Any) -> Size:
    """A shape as a :class:`downslope.Size` (torch.Size: ``numel()``), without Size()'s per-item checks
    for one that is already a Size (every distribution made or expanded in a training step passes here)."""
    if shape.__class__ is Size:
        return shape
    if isinstance(shape, (int, np.integer)):
        return tuple.__new__(Size, (int(shape),))
    return tuple.__new__(Size, map(int, shape))


_TINY: dict[Any, float] = {}  # per dtype: np.finfo costs microseconds, on every draw
_EPS: dict[Any, float] = {}


def _tiny(dtype: Any) -> float:
    value = _TINY.get(dtype)
    if value is None:
        value = _TINY[dtype] = float(np.finfo(dtype).tiny)
    return value


def _eps(dtype: Any) -> float:
    value = _EPS.get(dtype)
    if value is None:
        value = _EPS[dtype] = float(np.finfo(dtype).eps)
    return value


def clamp_probs(probs: Tensor) -> Tensor:
    """Probabilities clamped into [eps, 1 - eps], eps the dtype's machine epsilon (no log of 0).

    Example:
        >>> import downslope as ds
        >>> from downslope.distributions.utils import clamp_probs
        >>> clamp_probs(ds.tensor([0.0, 0.5, 1.0], dtype=ds.float64)).tolist()
        [2.220446049250313e-16, 0.5, 0.9999999999999998]
    """
    eps = _eps(probs.dtype)
    return ops.clamp(probs, min=eps, max=1 - eps)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """Logits of (clamped) probabilities: log p, or log(p / (1 - p)) when ``is_binary``.

    Example:
        >>> import downslope as ds
        >>> from downslope.distributions.utils import probs_to_logits
        >>> probs_to_logits(ds.tensor([0.5]), is_binary=True)
        tensor([0.])
    """
    p = clamp_probs(probs)
    return ops.log(p) - ops.log1p(-p) if is_binary else ops.log(p)


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """Probabilities from logits: softmax over the last dim, or the sigmoid when ``is_binary``.

    Example:
        >>> import downslope as ds
        >>> from downslope.distributions.utils import logits_to_probs
        >>> logits_to_probs(ds.tensor([0.0, 0.0]))
        tensor([0.5, 0.5])
    """
    return ops.sigmoid(logits) if is_binary else ops.softmax(logits, -1)


def uniform(shape: tuple[int, ...], like: Tensor, low: float = 0.0) -> Tensor:
    """Uniform draws on [low, 1) with ``like``'s dtype and device, from the library's generator."""
    u = Tensor(backend.random_like(shape, like.array, np.float64)).astype(like.dtype)
    if low:
        u = ops.clamp(u, min=low)
    return u


def standard_normal(shape: tuple[int, ...], like: Tensor) -> Tensor:
    from ..tensor import randn

    return randn(*shape, dtype=like.dtype, device=like.device) if shape else randn((), dtype=like.dtype).to(like.device)


def host_draw(array: np.ndarray, like: Tensor) -> Tensor:
    """A draw made on the host (NumPy's gamma, Poisson, binomial samplers) as a tensor like ``like``."""
    from ..tensor import wrap_array

    t = wrap_array(np.asarray(array).astype(like.dtype, copy=False))
    return t if t.device == like.device else t.to(like.device)


def bce_with_logits(logits: Tensor, target: Tensor) -> Tensor:
    """Elementwise binary cross-entropy of ``target`` against ``sigmoid(logits)``, in the form
    ``max(x, 0) - x t + log1p(exp(-|x|))`` that keeps its precision for large |x| (the form
    ``(1 - t) x + softplus(-x)`` cancels: Geometric(logits=-30)'s entropy came out a nat low); the
    max is written ``(x + |x|) / 2`` so its gradient at x = 0 is the right 1/2."""
    return (logits + ops.abs(logits)) / 2 - logits * target + ops.log1p(ops.exp(-ops.abs(logits)))


def sum_rightmost(value: Tensor, dim: int) -> Tensor:
    return value if dim == 0 else ops.sum(value, axis=tuple(range(-dim, 0)))


class Distribution:
    """The interface: ``sample``, ``rsample`` (when ``has_rsample``), ``log_prob``, ``entropy``, ``cdf``,
    ``icdf``, ``mean``, ``mode``, ``variance``, ``stddev``, ``batch_shape``, ``event_shape``, ``support``,
    ``arg_constraints`` and ``expand``.

    Parameters are checked against ``arg_constraints`` when the distribution is made, and values given to
    ``log_prob`` against ``support``, unless ``validate_args=False`` (or
    ``Distribution.set_default_validate_args(False)``); a violation raises :class:`ArgumentError`, a
    ValueError, naming the distribution, the parameter and the constraint, as PyTorch does.

    Example:
        >>> from downslope.distributions import Normal
        >>> try:
        ...     Normal(0.0, -1.0)
        ... except ValueError as e:
        ...     print(str(e).splitlines()[0])
        Expected parameter scale (Tensor of shape ()) of distribution Normal(loc: 0.0, scale: -1.0) to satisfy the constraint GreaterThan(lower_bound=0.0), but found invalid values:
    """

    has_rsample = False
    has_enumerate_support = False
    arg_constraints: ClassVar[dict[str, Any]] = {}
    support: Any = None
    _validate_args_default = True

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Whether distributions validate their arguments when ``validate_args`` is not given (True)."""
        if value not in (True, False):
            raise ArgumentError(f"set_default_validate_args: expected True or False, got {value!r}")
        Distribution._validate_args_default = bool(value)

    def __init__(
        self, batch_shape: tuple[int, ...] = (), event_shape: tuple[int, ...] = (), validate_args: Any = None
    ) -> None:
        self._batch_shape = _size(batch_shape)
        self._event_shape = _size(event_shape)
        self._validate_args = Distribution._validate_args_default if validate_args is None else bool(validate_args)
        if self._validate_args:
            self._check_parameters()

    # Kept in torch's attribute names (_batch_shape, _event_shape), which torch-style subclasses set
    # directly; read back as Size, whatever was stored, as torch's shapes are torch.Size.
    @property
    def batch_shape(self) -> Size:
        """The shape over which parameters are batched, as a :class:`downslope.Size`."""
        shape = self._batch_shape
        return shape if shape.__class__ is Size else _size(shape)

    @batch_shape.setter
    def batch_shape(self, value: Any) -> None:
        self._batch_shape = _size(value)

    @property
    def event_shape(self) -> Size:
        """The shape of a single sample (without batching), as a :class:`downslope.Size`."""
        shape = self._event_shape
        return shape if shape.__class__ is Size else _size(shape)

    @event_shape.setter
    def event_shape(self, value: Any) -> None:
        self._event_shape = _size(value)

    def _get_checked_instance(self, cls: type, _instance: Any = None) -> Any:
        """The object a custom ``expand(batch_shape, _instance=None)`` fills in: ``_instance`` when a
        subclass's ``expand`` passes one down, else a new uninitialised instance of ``type(self)``
        (torch's helper). A subclass that defines its own ``__init__`` must define its own ``expand``
        too, since ``cls``'s would not know its parameters."""
        if _instance is None and type(self).__init__ is not cls.__init__:  # type: ignore[misc]
            raise NotImplementedError(
                f"Subclass {type(self).__name__} of {cls.__name__} that defines a custom __init__ method "
                "must also define a custom .expand() method."
            )
        return self.__new__(type(self)) if _instance is None else _instance

    def _check_parameters(self) -> None:
        for name, constraint in self.arg_constraints.items():
            if constraints.is_dependent(constraint):
                continue
            if name not in self.__dict__ and isinstance(getattr(type(self), name, None), lazy_property):
                continue  # derived from the parameter that was given (logits from probs)
            value = getattr(self, name)
            if value is None:
                continue
            if not constraints.satisfied(constraint, value):
                raise ArgumentError(
                    f"Expected parameter {name} ({type(value).__name__} of shape {tuple(value.shape)}) of "
                    f"distribution {self!r} to satisfy the constraint {constraint!r}, but found invalid values:\n"
                    f"{value}"
                )

    def _validate_sample(self, value: Tensor) -> None:
        """Check a ``log_prob``/``cdf`` value's shape against the distribution's and its values against
        ``support``."""
        event = self.event_shape
        if event and tuple(value.shape[len(value.shape) - len(event) :]) != event:
            raise ArgumentError(
                f"The right-most size of value must match event_shape: {tuple(value.shape)} vs {event} "
                f"({type(self).__name__})"
            )
        full = self.batch_shape + event
        if value.shape != full:  # (a value of the distribution's own shape, the usual one, broadcasts)
            try:
                np.broadcast_shapes(tuple(value.shape), full)
            except ValueError:
                raise ArgumentError(
                    f"Value of shape {tuple(value.shape)} is not broadcastable with batch_shape+event_shape: "
                    f"{self.batch_shape} vs {event} ({type(self).__name__})"
                ) from None
        support = self.support
        if support is None or constraints.is_dependent(support):
            return
        if not constraints.satisfied(support, value):
            raise ArgumentError(
                f"Expected value argument ({type(value).__name__} of shape {tuple(value.shape)}) to be within "
                f"the support ({support!r}) of the distribution {self!r}, but found invalid values:\n{value}"
            )

    def _value(self, value: Any, like: Tensor) -> Tensor:
        """``value`` as a floating tensor like ``like``, validated when the distribution validates."""
        v = _param(value, like)
        if self._validate_args:
            self._validate_sample(v)
        return v

    def sample(self, sample_shape: Any = ()) -> Tensor:
        """A draw of shape ``sample_shape + batch_shape + event_shape``, without gradient."""
        with no_grad():
            return self.rsample(sample_shape).detach()

    def rsample(self, sample_shape: Any = ()) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no reparameterised sample (rsample)")

    def sample_n(self, n: int) -> Tensor:
        return self.sample((n,))

    def log_prob(self, value: Any) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no log_prob")

    def cdf(self, value: Any) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no cdf")

    def icdf(self, value: Any) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no icdf")

    def entropy(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no entropy")

    def perplexity(self) -> Tensor:
        return ops.exp(self.entropy())

    def enumerate_support(self, expand: bool = True) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no enumerate_support")

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no mean")

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no mode")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no variance")

    @property
    def stddev(self) -> Tensor:
        return ops.sqrt(self.variance)

    def _extended(self, sample_shape: Any) -> Size:
        if sample_shape.__class__ is tuple and not sample_shape:  # the usual sample()
            return tuple.__new__(Size, self.batch_shape + self.event_shape)
        shape = _shape(sample_shape)
        for size in shape:
            if size < 0:  # refused here, not deep inside a sampler (some draws go to NumPy's directly)
                raise ArgumentError(
                    f"{type(self).__name__}: expected a sample_shape of non-negative sizes, got {tuple(shape)}"
                )
        return tuple.__new__(Size, shape + self.batch_shape + self.event_shape)

    def _extended_shape(self, sample_shape: Any = ()) -> Size:
        """``sample_shape + batch_shape + event_shape``: the shape of ``sample(sample_shape)`` (torch's
        name, which custom distributions call in their ``sample``)."""
        return self._extended(sample_shape)

    def expand(self, batch_shape: Any, _instance: Any = None) -> Distribution:
        """The distribution with its parameters broadcast to ``batch_shape`` (no copies, no validation).

        A subclass's ``expand`` may pass the instance it has begun to fill in as ``_instance``
        (torch's pattern, with :meth:`_get_checked_instance`): what it has set there is kept."""
        batch = _size(batch_shape)
        new = object.__new__(type(self)) if _instance is None else _instance
        set_by_subclass = () if _instance is None else set(new.__dict__)
        old = self.batch_shape
        for key, value in self.__dict__.items():
            if key in set_by_subclass:
                continue
            if isinstance(value, Tensor) and tuple(value.shape[: len(old)]) == old:
                value = ops.broadcast_to(value, batch + tuple(value.shape[len(old) :]))
            elif isinstance(value, Distribution) and value.batch_shape[: len(old)] == old:
                value = value.expand(batch + value.batch_shape[len(old) :])
            new.__dict__[key] = value
        new.batch_shape = batch
        new._validate_args = False
        return new

    def __repr__(self) -> str:
        names = [k for k in self.arg_constraints if k in self.__dict__]
        parts = []
        for k in names:
            v = self.__dict__[k]
            if isinstance(v, Tensor):
                parts.append(
                    f"{k}: {v.detach().cpu().numpy().item() if int(np.prod(v.shape)) == 1 else tuple(v.shape)}"
                )
            else:
                parts.append(f"{k}: {v!r}")
        return f"{type(self).__name__}({', '.join(parts)})"
