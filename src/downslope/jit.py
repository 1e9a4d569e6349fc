"""``torch.jit``'s markers that model code calls outside TorchScript: ``is_scripting()``,
``is_tracing()`` and the decorators ``ignore``, ``unused`` and ``export``; ``script`` and ``trace``,
which hand back what they are given; ``freeze`` and ``optimize_for_inference``, the inference steps
that follow them, which hand back the model too; ``save`` and ``load``, which refuse.

downslope has no TorchScript: nothing is ever scripted or traced, and the decorators return the
function they mark, as PyTorch's do when the code runs eagerly. ``script(m)`` and ``trace(m, x)``
return ``m`` itself (``trace`` runs it once on ``x``, so a model that cannot run fails there as
torch's does), with a one-time warning that the result runs eagerly; there is no TorchScript
archive to ``save`` or ``load`` (``ds.save(model.state_dict(), f)`` or ``ds.onnx.export`` write
a model out).

Example:
    >>> import downslope as ds
    >>> ds.jit.is_scripting(), ds.jit.is_tracing()
    (False, False)
"""

from __future__ import annotations

import sys
import types
import typing
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar

from .errors import StateError

__all__ = [
    "Attribute",
    "Final",
    "ScriptModule",
    "annotations",
    "export",
    "freeze",
    "ignore",
    "is_scripting",
    "is_tracing",
    "load",
    "optimize_for_inference",
    "save",
    "script",
    "script_method",
    "trace",
    "unused",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_warned: set[str] = set()  # the names whose "runs eagerly" warning was given (once per process each)


def _warn_eager(name: str) -> None:
    if name not in _warned:
        _warned.add(name)
        warnings.warn(
            f"downslope.jit.{name}: downslope has no TorchScript; the model or function is returned unchanged "
            "and runs eagerly (its results are the same; nothing is compiled)",
            UserWarning,
            stacklevel=3,
        )


def is_scripting() -> bool:
    """False: code here never runs as TorchScript.

    Example:
        >>> is_scripting()
        False
    """
    return False


def is_tracing() -> bool:
    """False: code here is never being traced.

    Example:
        >>> is_tracing()
        False
    """
    return False


def ignore(drop: Any = False, **kwargs: Any) -> Any:
    """``@torch.jit.ignore`` or ``@torch.jit.ignore(drop=...)``: returns the function unchanged.

    Example:
        >>> @ignore
        ... def helper(x):
        ...     return x
        >>> helper(3)
        3
    """
    if callable(drop):
        return drop
    if not isinstance(drop, bool):
        raise StateError(
            f"Argument to @torch.jit.ignore must be a bool or a function but got {drop}"
        )  # torch: RuntimeError
    return lambda fn: fn


def unused(fn: F) -> F:
    """``@torch.jit.unused``: returns ``fn`` (a method or property) unchanged.

    Example:
        >>> unused(len) is len
        True
    """
    return fn


def export(fn: F) -> F:
    """``@torch.jit.export``: returns ``fn`` unchanged.

    Example:
        >>> export(len) is len
        True
    """
    return fn


def script_method(fn: F) -> F:
    """``@torch.jit.script_method`` (a ``ScriptModule``'s methods): returns ``fn`` unchanged.

    Example:
        >>> script_method(len) is len
        True
    """
    return fn


def _overload(fn: F) -> F:
    """``torch.jit._overload`` / ``_overload_method``: TorchScript's overload declarations. In eager
    PyTorch the decorated stub is never called (the real definition that follows replaces it), so the
    stub is returned as it is."""
    return fn


_overload_method = _overload


def _script_if_tracing(fn: F) -> F:
    """``torch.jit._script_if_tracing``: scripts ``fn`` only while tracing, which never happens here."""
    return fn


class Attribute(NamedTuple):
    """``torch.jit.Attribute(value, type)``: the pair TorchScript reads a module attribute's type from;
    in eager code (here, always) the module keeps the pair, as PyTorch's eager mode does.

    Example:
        >>> Attribute([1, 2], list).value
        [1, 2]
    """

    value: Any
    type: Any


if TYPE_CHECKING:
    ScriptModule: Any  # made on first use by __getattr__ below


def __getattr__(name: str) -> Any:
    """``torch.jit.ScriptModule``, made on first use: a plain ``nn.Module`` subclass here (no TorchScript;
    ``@script_method`` methods run eagerly, as the same code does in PyTorch without scripting)."""
    if name != "ScriptModule":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .nn.module import Module  # nn sits above jit: imported only when this name is asked for

    class ScriptModule(Module):
        """``torch.jit.ScriptModule``: a plain Module (downslope has no TorchScript).

        Example:
            >>> import downslope as ds
            >>> class Shift(ds.jit.ScriptModule):
            ...     @ds.jit.script_method
            ...     def forward(self, x):
            ...         return x + 1
            >>> Shift()(ds.zeros(2))
            tensor([1., 1.])
        """

    ScriptModule.__module__ = __name__
    globals()["ScriptModule"] = ScriptModule
    return ScriptModule


# torch.jit.annotations: the typing names TorchScript code imports from there (List, Tuple, Optional...); the
# module attribute is set through globals() because `from __future__ import annotations` binds the name too
_annotations = types.ModuleType(
    f"{__name__}.annotations", "torch.jit.annotations: the typing names TorchScript code imports from there"
)
for _name in ("Any", "Callable", "Dict", "Final", "List", "Optional", "Tuple", "Union"):
    setattr(_annotations, _name, getattr(typing, _name))
for _name in ("BroadcastingList1", "BroadcastingList2", "BroadcastingList3"):
    setattr(_annotations, _name, typing.List)  # noqa: UP006  (typing's generic, as torch's eager alias)
sys.modules[_annotations.__name__] = globals()["annotations"] = _annotations


def script(obj: T, optimize: Any = None, _frames_up: int = 0, _rcb: Any = None, example_inputs: Any = None) -> T:
    """``torch.jit.script(module_or_fn)``: returns ``obj`` unchanged (warning once that it runs eagerly).

    Example:
        >>> import warnings; warnings.simplefilter("ignore")
        >>> import downslope as ds
        >>> layer = ds.nn.Linear(2, 1)
        >>> script(layer) is layer
        True
    """
    _warn_eager("script")
    return obj


def trace(
    func: T,
    example_inputs: Any = None,
    optimize: Any = None,
    check_trace: bool = True,
    check_inputs: Any = None,
    check_tolerance: float = 1e-5,
    strict: bool = True,
    _force_outplace: bool = False,
    _module_class: Any = None,
    _compilation_unit: Any = None,
    example_kwarg_inputs: Any = None,
    _store_inputs: bool = True,
) -> T:
    """``torch.jit.trace(module_or_fn, example_inputs)``: runs ``func`` once on the example (a tensor, or
    a tuple of positional arguments; ``example_kwarg_inputs`` a dict of keyword ones), without
    recording gradients, and returns ``func`` unchanged (warning once that it runs eagerly).

    Example:
        >>> import warnings; warnings.simplefilter("ignore")
        >>> import downslope as ds
        >>> layer = ds.nn.Linear(2, 1)
        >>> trace(layer, ds.ones(3, 2)) is layer
        True
    """
    from .graph import no_grad

    if not callable(func):
        from .errors import ArgumentTypeError

        raise ArgumentTypeError(f"jit.trace: expected a Module or a function to trace, got {type(func).__name__}")
    _warn_eager("trace")
    args = () if example_inputs is None else example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    with no_grad():
        func(*args, **(example_kwarg_inputs or {}))
    return func


def _require_module(what: str, mod: Any) -> None:
    from .nn.module import Module  # nn sits above jit: imported only when a model is handed in

    if not isinstance(mod, Module):
        # torch: RuntimeError "... expects a ScriptModule as input"; here script(m) is m, so any Module is one
        raise StateError(
            f"jit.{what}: expected a Module (what jit.script or jit.trace returned), got {type(mod).__name__}"
        )


def freeze(mod: T, preserved_attrs: Any = None, optimize_numerics: bool = True) -> T:
    """``torch.jit.freeze(scripted_module)``: returns ``mod`` unchanged (warning once that it runs eagerly).

    As in PyTorch the module must be in eval mode (freezing bakes in eval-mode behaviour such as
    BatchNorm's running statistics), so a module still in training mode is refused. downslope's eval
    path already reuses prepared weights between calls, which is what freezing buys in PyTorch.

    Example:
        >>> import warnings; warnings.simplefilter("ignore")
        >>> import downslope as ds
        >>> layer = ds.nn.Linear(2, 1).eval()
        >>> freeze(script(layer)) is layer
        True
    """
    _require_module("freeze", mod)
    if getattr(mod, "training", False):
        raise StateError(
            "jit.freeze: freezing is only implemented for modules in eval mode (as in PyTorch), but the module "
            f"{type(mod).__name__} is in training mode; call .eval() on it before freezing"
        )  # torch: RuntimeError
    _warn_eager("freeze")
    return mod


def optimize_for_inference(mod: T, other_methods: Any = None) -> T:
    """``torch.jit.optimize_for_inference(scripted_module)``: puts ``mod`` in eval mode, as PyTorch's
    does before freezing it, and returns it (warning once that it runs eagerly).

    Example:
        >>> import warnings; warnings.simplefilter("ignore")
        >>> import downslope as ds
        >>> layer = ds.nn.Linear(2, 1)
        >>> optimize_for_inference(script(layer)).training
        False
    """
    _require_module("optimize_for_inference", mod)
    _warn_eager("optimize_for_inference")
    mod.eval()  # type: ignore[attr-defined]  # torch: freeze(mod.eval(), ...)
    return mod


_NO_ARCHIVE = (
    "downslope has no TorchScript, so there is no TorchScript archive to {what}; save the weights with "
    "ds.save(model.state_dict(), path) (and load them into the model's class with ds.load and "
    "model.load_state_dict), or write the model as ONNX with ds.onnx.export(model, example, path)"
)


def save(m: Any, f: Any, _extra_files: Any = None) -> None:
    """``torch.jit.save``: refused (there is no TorchScript archive); the error names what to use instead.

    Example:
        >>> import downslope as ds
        >>> try:
        ...     save(ds.nn.Linear(2, 1), "model.pt")
        ... except RuntimeError as e:
        ...     print(str(e)[:52])
        jit.save: downslope has no TorchScript, so there is
    """
    raise StateError(f"jit.save: {_NO_ARCHIVE.format(what='write')}")


def load(f: Any, map_location: Any = None, _extra_files: Any = None, _restore_shapes: bool = False) -> Any:
    """``torch.jit.load``: refused (there is no TorchScript archive); the error names what to use instead."""
    raise StateError(f"jit.load: {_NO_ARCHIVE.format(what='read')}")
