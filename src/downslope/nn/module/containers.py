"""Containers of modules and parameters: Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict."""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

from ...errors import ArgumentError, ArgumentTypeError, OutOfRangeError, StateDictError
from ...tensor import Tensor
from .base import Module, _addindent, _typename
from .hooks import _global_flags
from .parameter import Parameter


def _check_module(owner: str, value: Any) -> Module:
    if not isinstance(value, Module):
        kind = type(value)
        hint = ""
        if kind.__module__.startswith("einops.layers"):  # einops.layers.torch's classes are torch modules
            hint = f"; einops' layers for downslope are downslope.nn.{kind.__name__} (from downslope.nn import {kind.__name__})"
        elif kind.__module__.startswith("torch."):
            hint = "; it is a PyTorch module: build the layer from downslope.nn instead"
        raise ArgumentTypeError(f"{owner}: expected Module objects, got {kind.__name__}{hint}")
    return value


class _FusedPairs(dict[tuple[type, type], Callable[[Module, Module, Any], Any]]):
    """FUSED_PAIRS: a dict that also keeps the set of the pairs' first types, so that Sequential's
    forward looks ahead only after a layer that can start a pair."""

    def __init__(self) -> None:
        super().__init__()
        self.firsts: set[type] = set()

    def __setitem__(self, key: tuple[type, type], fn: Callable[[Module, Module, Any], Any]) -> None:
        super().__setitem__(key, fn)
        self.firsts.add(key[0])

    def __delitem__(self, key: tuple[type, type]) -> None:
        super().__delitem__(key)
        self.firsts = {first for first, _ in self}


#: Pairs of consecutive layers that :class:`Sequential` runs as one fused op: (type of the first,
#: type of the second) -> ``fn(first, second, x)``, which returns the pair's output, or None when
#: the fused op does not apply to these layers or this input (both layers then run as usual). The
#: modules that own a fused op register it (pooling: ReLU then 2x2 max pooling, one pass instead of
#: three over the activations). A fused pair gives the same values and gradients as its two layers;
#: only the first layer's output is never made. Layers with hooks or a replaced ``forward`` always
#: run on their own.
FUSED_PAIRS: _FusedPairs = _FusedPairs()
_END = object()  # the end of Sequential's layers

_MODULE_CALL = Module.__call__


def _plain(m: Module) -> bool:
    """Whether ``m`` runs its class's forward with no hooks (its own or global ones) and through
    Module's own ``__call__`` (a tracer such as the ONNX exporter replaces that to see every layer),
    so that a fused op may stand in for it."""
    return (
        type(m).__call__ is _MODULE_CALL
        and not m.__dict__.get("_hooks")
        and "forward" not in m.__dict__
        and not _global_flags["any"]
    )


def _renumber(container: Module, items: list[Module]) -> None:
    """Register ``items`` as ``container``'s modules "0", "1", ... in order: the names PyTorch keeps
    after an insertion or a deletion in a Sequential or a ModuleList."""
    for key in list(container._modules):
        container.__dict__.pop(key, None)
    container._modules.clear()
    for i, m in enumerate(items):
        container.add_module(str(i), m)


def _entry_repr(key: Any, value: Any, dtype_name: Callable[[Any], str]) -> str:
    """One line of a ParameterList's or ParameterDict's repr, in PyTorch's words."""
    if not isinstance(value, Tensor):
        return f"  ({key}): Object of type: {type(value).__name__}"
    size = "x".join(str(n) for n in value.shape)
    device = "" if value.device.type == "cpu" else f" ({value.device})"
    kind = "Parameter" if isinstance(value, Parameter) else "Tensor"
    return f"  ({key}): {kind} containing: [{dtype_name(value)} of size {size}{device}]"


class Sequential(Module):
    """Layers applied one after another; indexable, sliceable and of known length.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> len(model), type(model[1]).__name__, model(ds.randn(5, 4)).shape
        (3, 'ReLU', downslope.Size([5, 2]))
    """

    def __init__(self, *layers: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            for name, m in layers[0].items():
                self.add_module(str(name), _check_module("Sequential", m))
        else:
            for i, layer in enumerate(layers):
                self.add_module(str(i), _check_module("Sequential", layer))

    def forward(self, input: Any) -> Any:
        # The live registry, as PyTorch iterates it: a layer replaced during the pass (by a hook) is the
        # one that runs. A layer is read ahead only after a plain one that can start a fused pair.
        layers = iter(self._modules.values())
        firsts = FUSED_PAIRS.firsts
        m: Any = next(layers, _END)
        while m is not _END:
            if m is None:
                m = next(layers, _END)
                continue
            if type(m) in firsts and _plain(m):
                after: Any = next(layers, _END)
                fused = FUSED_PAIRS.get((type(m), type(after)))
                if fused is not None and _plain(after):
                    out = fused(m, after, input)
                    if out is not None:
                        input = out
                        m = next(layers, _END)
                        continue
                input = m(input)
                m = after
                continue
            input = m(input)
            m = next(layers, _END)
        return input

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter([m for m in self._modules.values() if m is not None])

    @overload
    def __getitem__(self, index: int) -> Module: ...
    @overload
    def __getitem__(self, index: slice) -> Sequential: ...
    def __getitem__(self, index: int | slice) -> Module:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict((k, m) for k, m in items[index] if m is not None))
        if not -len(items) <= index < len(items):
            raise OutOfRangeError(f"Sequential index {index} out of range for {len(items)} layers")
        m = items[index][1]
        assert m is not None
        return m

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), _check_module("Sequential.append", module))
        return self

    # PyTorch's list-like editing; the layers keep the names "0", "1", ... in order afterwards, as there.
    def extend(self, modules: Iterable[Module]) -> Sequential:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        items = list(self)
        if not -len(items) <= index <= len(items):
            raise OutOfRangeError(f"Sequential.insert: index {index} out of range for {len(items)} layers")
        items.insert(index, _check_module("Sequential.insert", module))
        self._renumber(items)
        return self

    def __setitem__(self, index: int, module: Module) -> None:
        # The layer at that position is replaced under its own name (a named Sequential keeps its
        # names), in place in the registry, as PyTorch's setattr on the key does.
        keys = list(self._modules)
        if not -len(keys) <= index < len(keys):
            raise OutOfRangeError(f"Sequential index {index} out of range for {len(keys)} layers")
        setattr(self, keys[index], _check_module("Sequential", module))

    def __delitem__(self, index: int | slice) -> None:
        items = list(self)
        if isinstance(index, int) and not -len(items) <= index < len(items):
            raise OutOfRangeError(f"Sequential index {index} out of range for {len(items)} layers")
        del items[index]
        self._renumber(items)

    def pop(self, index: int | slice = -1) -> Any:
        taken = self[index]
        del self[index]
        return taken

    def __add__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):  # a ValueError, as PyTorch's
            raise ArgumentError(f"Sequential + {type(other).__name__}: expected another Sequential")
        return Sequential(*self, *other)

    def __iadd__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):
            raise ArgumentError(f"Sequential += {type(other).__name__}: expected another Sequential")
        return self.extend(list(other))

    def _repeats(self, other: Any, op: str) -> int:
        """The factor of ``*``: an int (TypeError otherwise) above zero (ValueError), as PyTorch's."""
        if not isinstance(other, int):
            raise ArgumentTypeError(f"unsupported operand type(s) for {op}: 'Sequential' and '{type(other).__name__}'")
        if other <= 0:
            raise ArgumentError(f"Sequential {op} {other}: non-positive multiplication factor (expected an int >= 1)")
        return other

    def __mul__(self, other: int) -> Sequential:
        """A new Sequential that runs the layers ``other`` times over: the same layer objects repeated
        (their parameters shared), not copies, as PyTorch's."""
        return Sequential(*(list(self) * self._repeats(other, "*")))

    def __rmul__(self, other: int) -> Sequential:
        return self.__mul__(other)

    def __imul__(self, other: int) -> Sequential:
        return self.extend(list(self) * (self._repeats(other, "*=") - 1))

    def _renumber(self, items: list[Module]) -> None:
        _renumber(self, items)


_V = TypeVar("_V")


class _ListView(Generic[_V]):
    """The read side of a list of entries named "0", "1", ... (ModuleList's modules, ParameterList's
    parameters): ``len``, iteration over the entries, and an index checked against the length."""

    _kind = ""  # the container's name and what it holds, for the out-of-range message
    _noun = ""

    def _entries(self) -> dict[str, _V | None]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._entries())

    def __iter__(self) -> Iterator[_V]:
        return iter([v for v in self._entries().values() if v is not None])

    def _index(self, index: int) -> str:
        index = operator.index(index)  # an int, or a one-element integer tensor (torch's __index__)
        n = len(self)
        if not -n <= index < n:
            raise OutOfRangeError(f"{self._kind} index {index} out of range for {n} {self._noun}")
        return str(index % n)


class ModuleList(_ListView[Module], Module):
    """A list of modules whose parameters are registered (a plain Python list would hide them).

    Example:
        >>> from downslope import nn
        >>> layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
        >>> len(layers), len(list(layers.parameters()))
        (3, 6)
    """

    _kind, _noun = "ModuleList", "modules"

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _entries(self) -> dict[str, Module | None]:
        return self._modules

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return ModuleList(list(self)[index])
        m = self._modules[self._index(index)]
        assert m is not None
        return m

    def __setitem__(self, index: int, module: Module) -> None:
        self.add_module(self._index(index), _check_module("ModuleList", module))

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), _check_module("ModuleList.append", module))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self)
        items.insert(index, _check_module("ModuleList.insert", module))
        self._renumber(items)

    def __delitem__(self, index: int | slice) -> None:
        items = list(self)
        if isinstance(index, slice):
            del items[index]
        else:
            del items[int(self._index(index))]
        self._renumber(items)

    def pop(self, index: int = -1) -> Module:
        module = self[index]
        del self[index]
        return module

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList([*self, *other])

    def _renumber(self, items: list[Module]) -> None:
        _renumber(self, items)

    def forward(self, *input: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward(); iterate over it and call the modules yourself")

    def __repr__(self) -> str:
        """PyTorch's layout, with runs of identical entries shown once: ``(0-5): 6 x Linear(...)``.

        Example:
            >>> from downslope import nn
            >>> print(nn.ModuleList([nn.ReLU(), nn.ReLU(), nn.Tanh()]))
            ModuleList(
              (0-1): 2 x ReLU()
              (2): Tanh()
            )
        """
        reprs = [repr(m) for m in self]
        if not reprs:
            return self._get_name() + "()"
        runs: list[list[Any]] = []  # [first index, last index, repr]
        for i, text in enumerate(reprs):
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        lines = [
            _addindent(f"({a}): {text}" if a == b else f"({a}-{b}): {b - a + 1} x {text}", 2) for a, b, text in runs
        ]
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class _DictView(Generic[_V]):
    """The read side of a dict of named entries (ModuleDict's modules, ParameterDict's parameters):
    ``len``, iteration over keys, ``in``, ``keys``/``values``/``items`` (entries set to None are skipped)."""

    def _entries(self) -> dict[str, _V | None]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._entries())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries()))

    def __contains__(self, key: object) -> bool:
        return key in self._entries()

    def keys(self) -> list[str]:
        return list(self._entries())

    def values(self) -> list[_V]:
        return [v for v in self._entries().values() if v is not None]

    def items(self) -> list[tuple[str, _V]]:
        return [(k, v) for k, v in self._entries().items() if v is not None]


class ModuleDict(_DictView[Module], Module):
    """A dict of modules whose parameters are registered, in insertion order.

    Example:
        >>> from downslope import nn
        >>> heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 3)})
        >>> list(heads.keys()), heads["b"].out_features
        (['a', 'b'], 3)
    """

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def _entries(self) -> dict[str, Module | None]:
        return self._modules

    def __getitem__(self, key: str) -> Module:
        m = self._modules.get(key)
        if m is None:
            raise StateDictError(f"ModuleDict has no module {key!r}; keys are {list(self._modules)}")
        return m

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, _check_module("ModuleDict", module))

    def __delitem__(self, key: str) -> None:
        del self._modules[key]
        self.__dict__.pop(key, None)

    def update(self, modules: Mapping[str, Module] | ModuleDict | Iterable[tuple[str, Module]]) -> None:
        # a ModuleDict iterates over its keys: its pairs come from items(), as a mapping's
        pairs = modules.items() if isinstance(modules, (Mapping, ModuleDict)) else modules
        for k, m in pairs:
            self[str(k)] = m

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        for key in list(self._modules):
            del self[key]

    def forward(self, *input: Any) -> Any:
        raise NotImplementedError("ModuleDict has no forward(); pick a module by key and call it")


class ParameterList(_ListView[Parameter], Module):
    """A list of parameters, registered under the names "0", "1", ... (e.g. one weight per step).

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> ps = nn.ParameterList([nn.Parameter(ds.zeros(2)) for _ in range(3)])
        >>> len(ps), [name for name, _ in ps.named_parameters()]
        (3, ['0', '1', '2'])
    """

    _kind, _noun = "ParameterList", "parameters"

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        super().__init__()
        if values is not None:
            self.extend(values)

    def _entries(self) -> dict[str, Parameter | None]:
        return self._parameters

    @overload
    def __getitem__(self, index: int) -> Parameter: ...
    @overload
    def __getitem__(self, index: slice) -> ParameterList: ...
    def __getitem__(self, index: int | slice) -> Parameter | ParameterList:
        if isinstance(index, slice):  # a new list of the same Parameter objects, as PyTorch's
            return type(self)([self[i] for i in range(*index.indices(len(self)))])
        p = self._parameters[self._index(index)]
        assert p is not None
        return p

    def __setitem__(self, index: int, value: Any) -> None:
        self.register_parameter(self._index(index), value if isinstance(value, Parameter) else Parameter(value))

    def append(self, value: Any) -> ParameterList:
        """Add a parameter (a tensor or array is wrapped in a Parameter)."""
        self.register_parameter(str(len(self)), value if isinstance(value, Parameter) else Parameter(value))
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        if isinstance(values, Tensor) or not isinstance(values, Iterable):  # a tensor is never unpacked
            raise ArgumentTypeError(
                f"ParameterList.extend should be called with an iterable of parameters, but got {type(values).__name__}"
            )
        for v in values:
            self.append(v)
        return self

    def __iadd__(self, values: Iterable[Any]) -> ParameterList:
        return self.extend(values)

    def forward(self, *input: Any) -> Any:
        raise NotImplementedError("ParameterList has no forward(); use its parameters in your own module's forward")

    def extra_repr(self) -> str:
        return "\n".join(_entry_repr(i, p, lambda t: str(t.dtype)) for i, p in enumerate(self))


class ParameterDict(_DictView[Parameter], Module):
    """A dict of parameters, registered under their keys: in insertion order, except that the items of
    a plain mapping (not an OrderedDict or ParameterDict) are added sorted by key, as PyTorch's.

    Example:
        >>> import downslope as ds
        >>> from downslope import nn
        >>> pd = nn.ParameterDict({"scale": nn.Parameter(ds.ones(1))})
        >>> list(pd.state_dict())
        ['scale']
    """

    def __init__(self, parameters: Mapping[str, Any] | ParameterDict | Iterable[tuple[str, Any]] | None = None) -> None:
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def _entries(self) -> dict[str, Parameter | None]:
        return self._parameters

    def __getitem__(self, key: str) -> Parameter:
        p = self._parameters.get(key)
        if p is None:
            raise StateDictError(f"ParameterDict has no parameter {key!r}; keys are {list(self._parameters)}")
        return p

    def __setitem__(self, key: str, value: Any) -> None:
        self.register_parameter(str(key), value if isinstance(value, Parameter) else Parameter(value))

    # PyTorch's dict methods (insertion order kept, as there)
    def __delitem__(self, key: str) -> None:
        self[key]  # the missing-key error names the keys
        del self._parameters[key]
        self.__dict__.pop(key, None)

    def get(self, key: str, default: Any = None) -> Any:
        return self._parameters.get(key, default)

    def pop(self, key: str) -> Parameter:
        value = self[key]
        del self[key]
        return value

    def popitem(self) -> tuple[str, Parameter]:
        if not self._parameters:
            raise StateDictError("ParameterDict.popitem(): the dict is empty")
        key = next(reversed(self._parameters))
        return key, self.pop(key)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self._parameters:
            self[key] = default
        return self._parameters[key]

    def update(self, values: Mapping[str, Any] | ParameterDict | Iterable[tuple[str, Any]]) -> None:
        """Add or overwrite entries: an OrderedDict's, a ParameterDict's and an iterable of pairs' in
        their order, a plain mapping's sorted by key (PyTorch's rule, which parameters() and
        state_dict() follow, so both libraries list them alike)."""
        if isinstance(values, (OrderedDict, ParameterDict)):
            pairs: Iterable[tuple[str, Any]] = values.items()
        elif isinstance(values, Mapping):
            pairs = sorted(values.items())
        else:
            pairs = values
        for k, v in pairs:
            self[k] = v

    def clear(self) -> None:
        for key in list(self._parameters):
            del self[key]

    def copy(self) -> ParameterDict:
        """A new ParameterDict holding the same Parameter objects (as PyTorch's copy)."""
        return ParameterDict(OrderedDict(self.items()))  # the order kept: a plain dict would be sorted

    def fromkeys(self, keys: Iterable[str], default: Any = None) -> ParameterDict:
        return ParameterDict((k, default) for k in keys)  # pairs: the keys' order kept, as PyTorch's

    def __or__(self, other: ParameterDict) -> ParameterDict:
        merged = self.copy()
        merged.update(other)  # a plain dict's items sorted, as PyTorch's update
        return merged

    def __ior__(self, other: ParameterDict) -> ParameterDict:
        self.update(other)
        return self

    def __reversed__(self) -> Iterator[str]:
        return reversed(list(self._parameters))

    def forward(self, *input: Any) -> Any:
        raise NotImplementedError("ParameterDict has no forward(); use its parameters in your own module's forward")

    def extra_repr(self) -> str:
        return "\n".join(_entry_repr(k, p, _typename) for k, p in self.items())
