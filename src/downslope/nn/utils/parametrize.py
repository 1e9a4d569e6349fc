"""PyTorch's ``torch.nn.utils.parametrize``: compute a module's tensor from other tensors.

:func:`register_parametrization` replaces ``module.<name>`` by a property that returns
``parametrization(original)``: the original tensor moves to ``module.parametrizations.<name>.original``
(so state_dict keys read as in PyTorch and an optimizer trains the original), the module's class
becomes ``Parametrized<Class>``, and assigning ``module.<name> = X`` stores ``right_inverse(X)``
in the original. Several parametrizations registered on one tensor are applied in order.

Example:
    >>> import downslope as ds
    >>> from downslope import nn
    >>> from downslope.nn.utils import parametrize
    >>> class Symmetric(nn.Module):
    ...     def forward(self, X):
    ...         return X.triu() + X.triu(1).mT
    >>> layer = parametrize.register_parametrization(nn.Linear(3, 3), "weight", Symmetric())
    >>> type(layer).__name__, list(layer.state_dict())
    ('ParametrizedLinear', ['bias', 'parametrizations.weight.original'])
    >>> bool((layer.weight == layer.weight.mT).all())
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from ...errors import ArgumentError, ArgumentTypeError, ShapeError, StateError
from ...graph import no_grad
from ...tensor import Tensor
from ..module import Module, ModuleDict, ModuleList, Parameter

__all__ = [
    "cached",
    "ParametrizationList",
    "register_parametrization",
    "is_parametrized",
    "remove_parametrizations",
    "type_before_parametrizations",
    "transfer_parametrizations_and_params",
]

_cache_enabled = 0
_cache: dict[tuple[int, str], Tensor] = {}


@contextlib.contextmanager
def cached() -> Iterator[None]:
    """Inside this context each parametrized tensor is computed once, on first access, and then reused
    (PyTorch's ``parametrize.cached``): useful when a weight is read many times, as in an RNN's loop.

    Example:
        >>> from downslope import nn
        >>> class Double(nn.Module):
        ...     def forward(self, x):
        ...         return 2 * x
        >>> layer = register_parametrization(nn.Linear(3, 3), "weight", Double())
        >>> with cached():
        ...     layer.weight is layer.weight
        True
        >>> layer.weight is layer.weight
        False
    """
    global _cache_enabled, _cache
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache = {}


def _plists(module: Module) -> Any:
    """``module.parametrizations``: the ModuleDict of ParametrizationLists."""
    return module.__dict__["parametrizations"]


def _register_parameter_or_buffer(module: Module, name: str, value: Tensor) -> None:
    if isinstance(value, Parameter):
        module.register_parameter(name, value)
    else:
        module.register_buffer(name, value)


def _maybe_set(dest: Tensor, src: Tensor) -> None:
    """Give ``dest`` the values of ``src`` while keeping ``dest`` the same object (PyTorch's ``set_``),
    so an optimizer that holds it keeps training it. Same shape and dtype: written into its storage
    (an optimizer's flat buffer may view it); otherwise its array is replaced."""
    if dest is src:
        return
    if dest.shape == src.shape and dest.dtype == src.dtype:
        with no_grad():
            dest.copy_(src)
    else:
        dest.data = src.detach().clone()


def _check_tensor(value: Any, what: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise ArgumentTypeError(f"register_parametrization: {what} must return a Tensor, got {type(value).__name__}")
    return value


def _check_keeps_dtype_and_shape(parametrized: Tensor, dtype: Any, shape: tuple[int, ...]) -> None:
    """The check of every registration without ``unsafe`` (the first on a tensor and each one added to
    its chain): the parametrized tensor keeps the unparametrized one's dtype and shape."""
    if parametrized.dtype != dtype:
        raise ArgumentError(
            f"registering a parametrization may not change the dtype of the tensor, unless `unsafe` is set: "
            f"unparametrized dtype {dtype}, parametrized dtype {parametrized.dtype}"
        )
    if parametrized.shape != shape:
        raise ShapeError(
            f"registering a parametrization may not change the shape of the tensor, unless `unsafe` is set: "
            f"unparametrized shape {tuple(shape)}, parametrized shape {tuple(parametrized.shape)}"
        )


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order, and the original tensor(s) they start
    from: ``original`` (or ``original0``, ``original1``, ... when the first parametrization's
    ``right_inverse`` returns several tensors). Built by :func:`register_parametrization`.

    Example:
        >>> from downslope import nn
        >>> from downslope.nn.utils import parametrizations
        >>> layer = parametrizations.weight_norm(nn.Linear(3, 2))
        >>> type(layer.parametrizations.weight).__name__, layer.parametrizations.weight.original0.shape
        ('ParametrizationList', downslope.Size([2, 1]))
    """

    original: Tensor
    unsafe: bool

    def __init__(self, modules: Sequence[Module], original: Tensor, unsafe: bool = False) -> None:
        if len(modules) == 0:
            raise ArgumentError("ParametrizationList requires one or more modules, got none")
        super().__init__(modules)
        self.unsafe = unsafe
        original_shape, original_dtype = original.shape, original.dtype
        with no_grad():
            new: Any = original
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    try:
                        new = module.right_inverse(new)
                    except NotImplementedError:
                        pass
                # without right_inverse (or when it raises NotImplementedError) it is taken as the identity
        if not isinstance(new, (Tensor, Sequence)):
            raise ArgumentTypeError(
                f"'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...), got {type(new).__name__}"
            )
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if isinstance(new, Tensor) else len(new)
        if isinstance(new, Tensor):
            if original.dtype != new.dtype:
                raise ArgumentError(
                    f"when 'right_inverse' returns a Tensor, its dtype must be the original's: got {new.dtype}, "
                    f"expected {original.dtype}"
                )
            _maybe_set(original, new)  # the same object stays the parameter: no need to rebuild the optimizer
            _register_parameter_or_buffer(self, "original", original)
        else:
            for i, originali in enumerate(new):
                if not isinstance(originali, Tensor):
                    raise ArgumentTypeError(
                        f"'right_inverse' must return a Tensor or a Sequence of tensors, got element {i} of type "
                        f"{type(originali).__name__}"
                    )
                originali = originali.detach().clone()
                if isinstance(original, Parameter):
                    originali = Parameter(originali, original.requires_grad)
                else:
                    originali.requires_grad_(original.requires_grad)
                _register_parameter_or_buffer(self, f"original{i}", originali)
        if not self.unsafe:
            z = self()
            if not isinstance(z, Tensor):
                raise ArgumentTypeError(f"a parametrization must return a Tensor, got {type(z).__name__}")
            _check_keeps_dtype_and_shape(z, original_dtype, original_shape)

    def right_inverse(self, value: Tensor) -> None:
        """Store ``value`` as the parametrized tensor: the parametrizations' ``right_inverse`` are
        applied in reverse order and the result is written into the original tensor(s)."""
        with no_grad():
            result: Any = value
            for module in reversed(list(self)):
                if not hasattr(module, "right_inverse"):
                    raise StateError(f"parametrization {type(module).__name__} does not implement right_inverse")
                result = module.right_inverse(result)
            if self.is_tensor:
                if not isinstance(result, Tensor):
                    raise ArgumentTypeError(f"`right_inverse` should return a Tensor, got {type(result).__name__}")
                if result.dtype != self.original.dtype:
                    raise ArgumentError(
                        f"the tensor returned by `right_inverse` has dtype {result.dtype} while `original` has "
                        f"dtype {self.original.dtype}"
                    )
                _maybe_set(self.original, result)
            else:
                if not isinstance(result, Sequence) or isinstance(result, Tensor):
                    raise ArgumentTypeError(
                        f"'right_inverse' must return a sequence of tensors, got {type(result).__name__}"
                    )
                if len(result) != self.ntensors:
                    raise ArgumentError(
                        f"'right_inverse' must return a sequence of {self.ntensors} tensors, got {len(result)}"
                    )
                for i, tensor in enumerate(result):
                    original_i = getattr(self, f"original{i}")
                    if not isinstance(tensor, Tensor):
                        raise ArgumentTypeError(
                            f"`right_inverse` must return a sequence of tensors, got element {i} of type "
                            f"{type(tensor).__name__}"
                        )
                    if original_i.dtype != tensor.dtype:
                        raise ArgumentError(
                            f"tensor {i} returned by `right_inverse` has dtype {tensor.dtype} while `original{i}` "
                            f"has dtype {original_i.dtype}"
                        )
                    _maybe_set(original_i, tensor)

    def forward(self) -> Tensor:
        modules = list(self)
        if self.is_tensor:
            x = modules[0](self.original)
        else:
            x = modules[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in modules[1:]:
            x = module(x)
        return x


def _compute(module: Module, tensor_name: str) -> Tensor:
    """``module.<tensor_name>``: computed on each access (PyTorch's rule), reused inside
    :func:`cached` and, so that a layer reading its weight twice in one forward sees one value
    (and a spectral norm takes one power-iteration step), during the module's own forward."""
    parametrization = _plists(module)[tensor_name]
    if _cache_enabled:
        key = (id(module), tensor_name)
        tensor = _cache.get(key)
        if tensor is None:
            tensor = _cache[key] = parametrization()
        return tensor
    local = module.__dict__.get("_parametrized_forward_cache")
    if local is not None:
        tensor = local.get(tensor_name)
        if tensor is None:
            tensor = local[tensor_name] = parametrization()
        return tensor
    result: Tensor = parametrization()
    return result


def _inject_new_class(module: Module) -> None:
    """Make ``module`` an instance of a new subclass ``Parametrized<Class>`` (as PyTorch does), whose
    properties are the parametrized tensors; the class is dropped again by the last removal."""
    cls = module.__class__
    base_forward = cls.forward

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        d = self.__dict__
        outer = "_parametrized_forward_cache" in d
        if not outer:
            d["_parametrized_forward_cache"] = {}
        try:
            return base_forward(self, *args, **kwargs)
        finally:
            if not outer:
                d.pop("_parametrized_forward_cache", None)

    def setattr_(self: Any, name: str, value: Any) -> None:
        if isinstance(value, Parameter) and is_parametrized(self, name):
            raise ArgumentTypeError(
                f"cannot assign a Parameter to {type(self).__name__}.{name}: it is parametrized; assign a Tensor "
                "(stored through right_inverse) or call remove_parametrizations first"
            )
        cls.__setattr__(self, name, value)

    param_cls = type(
        f"Parametrized{cls.__name__}",
        (cls,),
        {"forward": forward, "__setattr__": setattr_, "__module__": cls.__module__, "__qualname__": cls.__qualname__},
    )
    param_cls.__qualname__ = f"Parametrized{cls.__qualname__}"
    object.__setattr__(module, "__class__", param_cls)


def _inject_property(module: Module, tensor_name: str) -> None:
    def get_parametrized(self: Module) -> Tensor:
        return _compute(self, tensor_name)

    def set_original(self: Module, value: Tensor) -> None:
        _plists(self)[tensor_name].right_inverse(value)

    setattr(module.__class__, tensor_name, property(get_parametrized, set_original))


def register_parametrization(
    module: Module, tensor_name: str, parametrization: Module, *, unsafe: bool = False
) -> Module:
    """Compute ``module.<tensor_name>`` as ``parametrization(original)`` from now on (PyTorch's
    ``register_parametrization``).

    The tensor (a parameter or a buffer) is kept, as the same object, at
    ``module.parametrizations.<tensor_name>.original``; if ``parametrization`` has a
    ``right_inverse``, the original is first set to ``right_inverse(tensor)`` (a sequence of tensors
    gives ``original0``, ``original1``, ...). Registering on an already parametrized tensor appends
    the new parametrization to the chain. ``unsafe=True`` skips the checks that the parametrization
    keeps the shape and the dtype.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> from downslope.nn.utils import parametrize
        >>> class Double(nn.Module):
        ...     def forward(self, x):
        ...         return 2 * x
        ...     def right_inverse(self, x):
        ...         return x / 2
        >>> m = parametrize.register_parametrization(nn.Linear(2, 1), "bias", Double())
        >>> m.bias = ds.tensor([3.0]); m.parametrizations.bias.original, m.bias
        (Parameter containing:
        tensor([1.5], requires_grad=True), tensor([3.], grad_fn=<MulBackward0>))
    """
    if not isinstance(module, Module):
        raise ArgumentTypeError(f"register_parametrization: expected an nn.Module, got {type(module).__name__}")
    if not isinstance(parametrization, Module):
        raise ArgumentTypeError(
            f"register_parametrization: expected the parametrization to be an nn.Module, got "
            f"{type(parametrization).__name__}"
        )
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            y = getattr(module, tensor_name)
            x = _check_tensor(parametrization(y), "the parametrization")
            _check_keeps_dtype_and_shape(x, y.dtype, y.shape)
            if hasattr(parametrization, "right_inverse"):
                try:
                    z = parametrization.right_inverse(x)
                except NotImplementedError:
                    pass
                else:
                    z = _check_tensor(z, "right_inverse")
                    if z.dtype != y.dtype or z.shape != y.shape:
                        raise ShapeError(
                            f"the parametrization's right_inverse must keep the shape and dtype: got {tuple(z.shape)} "
                            f"{z.dtype}, expected {tuple(y.shape)} {y.dtype}"
                        )
        plist = _plists(module)[tensor_name]
        plist.append(parametrization)
        plist.unsafe |= unsafe  # an unsafe chain stays unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        if not isinstance(original, Tensor):
            raise ArgumentError(f"register_parametrization: {type(module).__name__}.{tensor_name} is None")
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        _plists(module)[tensor_name] = plist
    else:
        raise ArgumentError(
            f"register_parametrization: {type(module).__name__} has no parameter, buffer or parametrized tensor "
            f"named {tensor_name!r}"
        )
    return module


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` has a parametrization (on ``tensor_name``, when given).

    Example:
        >>> from downslope import nn
        >>> from downslope.nn.utils import parametrize, parametrizations
        >>> layer = parametrizations.weight_norm(nn.Linear(3, 2))
        >>> parametrize.is_parametrized(layer), parametrize.is_parametrized(layer, "bias")
        (True, False)
    """
    parametrizations = module.__dict__.get("parametrizations")
    if not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def remove_parametrizations(module: Module, tensor_name: str, leave_parametrized: bool = True) -> Module:
    """Turn ``module.<tensor_name>`` back into an ordinary parameter (or buffer): its current
    parametrized value (``leave_parametrized=True``), or the unparametrized original (possible only
    when the original is a single tensor). A single original keeps its identity, as in PyTorch.

    Example:
        >>> from downslope import nn
        >>> from downslope.nn.utils import parametrize, parametrizations
        >>> layer = parametrize.remove_parametrizations(parametrizations.weight_norm(nn.Linear(3, 2)), "weight")
        >>> type(layer).__name__, [n for n, _ in layer.named_parameters()]
        ('Linear', ['bias', 'weight'])
    """
    if not is_parametrized(module, tensor_name):
        raise ArgumentError(f"remove_parametrizations: {type(module).__name__}.{tensor_name} is not parametrized")
    plist = _plists(module)[tensor_name]
    original: Tensor
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                t = getattr(module, tensor_name)
            _maybe_set(original, t)
    else:
        if not leave_parametrized:
            raise ArgumentError(
                "remove_parametrizations: cannot leave unparametrized (`leave_parametrized=False`) a tensor that is "
                "parametrized in terms of a sequence of tensors"
            )
        with no_grad():
            t = getattr(module, tensor_name)
        first = plist.original0
        original = Parameter(t.detach().clone(), first.requires_grad) if isinstance(first, Parameter) else t.detach()
    delattr(module.__class__, tensor_name)
    del _plists(module)[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        object.__setattr__(module, "__class__", module.__class__.__bases__[0])
    return module


def type_before_parametrizations(module: Module) -> type:
    """The module's class before any parametrization was registered (``Linear`` for a ``ParametrizedLinear``).

    Example:
        >>> from downslope import nn
        >>> from downslope.nn.utils import parametrize, parametrizations
        >>> parametrize.type_before_parametrizations(parametrizations.weight_norm(nn.Linear(3, 2))).__name__
        'Linear'
    """
    if is_parametrized(module):
        return module.__class__.__bases__[0]
    return type(module)


def transfer_parametrizations_and_params(
    from_module: Module, to_module: Module, tensor_name: str | None = None
) -> Module:
    """Copy the parametrizations of ``tensor_name`` (all of them when None) and their original values
    from ``from_module`` to ``to_module`` (PyTorch's helper, used when swapping a layer for another).

    Example:
        >>> from downslope import nn
        >>> from downslope.nn.utils import parametrize, parametrizations
        >>> src = parametrizations.orthogonal(nn.Linear(3, 3))
        >>> dst = parametrize.transfer_parametrizations_and_params(src, nn.Linear(3, 3))
        >>> bool((dst.weight == src.weight).all())
        True
    """
    if not is_parametrized(from_module):
        return to_module
    names = list(_plists(from_module)) if tensor_name is None else [tensor_name]
    for name in names:
        if not is_parametrized(from_module, name):
            raise ArgumentError(f"transfer_parametrizations_and_params: {name!r} is not parametrized in from_module")
        source = _plists(from_module)[name]
        if not hasattr(to_module, name) or name in to_module.__dict__ and to_module.__dict__[name] is None:
            proto = source.original if source.is_tensor else getattr(from_module, name)
            setattr(to_module, name, Parameter(proto.detach().clone()))
        for parametrization in source:
            register_parametrization(to_module, name, parametrization)
        target = _plists(to_module)[name]
        with no_grad():
            if source.is_tensor:
                _maybe_set(target.original, source.original)
            else:
                for i in range(source.ntensors):
                    _maybe_set(getattr(target, f"original{i}"), getattr(source, f"original{i}"))
    return to_module
