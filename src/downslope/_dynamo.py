"""``torch._dynamo``'s names that training code calls (``reset()`` between runs, ``is_compiling()``,
``config`` switches, ``disable``): downslope compiles nothing, so they are the eager answers.

``OptimizedModule`` (also ``downslope._dynamo.eval_frame.OptimizedModule``, torch's path) is what
``ds.compile(model)`` returns: a Module holding the model as ``_orig_mod``, as torch's, so code that reads
``model._orig_mod`` or loads a checkpoint saved from a compiled model (``_orig_mod.`` keys) runs unchanged.

Example:
    >>> import downslope as ds
    >>> ds._dynamo.reset()
    >>> ds._dynamo.is_compiling()
    False
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from .compiler import allow_in_graph, assume_constant_result, disable, is_compiling, reset

__all__ = [
    "OptimizedModule",
    "allow_in_graph",
    "assume_constant_result",
    "config",
    "disable",
    "eval_frame",
    "is_compiling",
    "list_backends",
    "reset",
]

if TYPE_CHECKING:
    OptimizedModule: Any  # made on first use by __getattr__ below (nn sits above this module)

# ``torch._dynamo.config.suppress_errors = True`` and the like: kept, and read by nothing.
config = SimpleNamespace(suppress_errors=False, cache_size_limit=8, verbose=False)

# torch 2.13's registered backends (``torch._dynamo.list_backends(exclude_tags=())``): the names
# ``compile(backend=...)`` accepts; none changes anything here.
BACKENDS = (
    "aot_eager",
    "aot_eager_decomp_partition",
    "aot_eager_decomp_partition_crossref",
    "aot_eager_decomp_partition_with_mode",
    "aot_eager_default_partitioner",
    "aot_ts",
    "cudagraphs",
    "dynamo_accuracy_minifier_backend",
    "dynamo_minifier_backend",
    "eager",
    "eager_debug",
    "eager_noexcept",
    "inductor",
    "invoke_subgraph",
    "openxla",
    "openxla_eval",
    "pre_dispatch_eager",
    "ts",
    "tvm",
)
# what torch lists without exclude_tags (its default hides the debug and experimental ones)
_LISTED = ("cudagraphs", "inductor", "openxla", "tvm")


def list_backends(exclude_tags: Any = ("debug", "experimental")) -> list[str]:
    """``torch._dynamo.list_backends()``: the backend names ``compile`` accepts (each runs eagerly here).

    Example:
        >>> list_backends()
        ['cudagraphs', 'inductor', 'openxla', 'tvm']
    """
    return sorted(BACKENDS if not exclude_tags else _LISTED)


def check_inductor_options(options: Any) -> None:
    """torch's checks of ``compile(options=...)`` for its inductor backend: each name (``-`` read as
    ``_``) must be one of torch 2.13's inductor config options, its value of the option's type (where torch
    checks one); ``guard_filter_fn`` and ``use_aoti`` are compile's own. Nothing is compiled with them.

    Example:
        >>> check_inductor_options({"max_autotune": True, "triton.cudagraphs": False})
        >>> check_inductor_options({"max_autotune": 1})
        Traceback (most recent call last):
        ...
        downslope.errors.InvalidValueError: compile: Unexpected type of attr max_autotune, got int should be bool
    """
    from .errors import ArgumentTypeError, InvalidValueError

    if not options:
        return
    if not isinstance(options, dict):  # torch: AttributeError ('list' object has no attribute 'items')
        raise ArgumentTypeError(
            f"compile: options must be a dict of inductor config options, got {type(options).__name__}"
        )
    from ._inductor.known_options import OPTION_NAMES, OPTION_TYPES

    types = {"bool": bool, "int": int, "str": str, "float": float, "tuple": tuple, "list": list, "NoneType": type(None)}
    for key, value in options.items():
        if key in ("guard_filter_fn", "use_aoti"):  # compile's own, taken out before the config is checked
            continue
        if not isinstance(key, str):
            raise ArgumentTypeError(f"compile: option names must be strings, got {key!r}")
        name = key.replace("-", "_")
        if name not in OPTION_TYPES:
            raise InvalidValueError(
                f"compile: Unexpected optimization option {key}, known options are {list(OPTION_NAMES)}"
            )
        checked, shown = OPTION_TYPES[name]
        if checked and not isinstance(value, types[checked]):
            raise InvalidValueError(
                f"compile: Unexpected type of attr {key}, got {type(value).__name__} should be {shown}"
            )


_classes: dict[str, Any] = {}


def _optimized_module() -> Any:
    """The OptimizedModule class, made on first use (nn sits above this module: imported only then)."""
    if "OptimizedModule" in _classes:
        return _classes["OptimizedModule"]
    from .nn.module import Module

    class OptimizedModule(Module):
        """``torch.compile(model)``'s result: a Module that holds ``model`` as its one child ``_orig_mod``
        and calls it. As torch's: its ``state_dict`` keys start with ``_orig_mod.``, its parameters are
        the model's own, attribute reads it lacks and attribute writes (but for its own few names) go to
        the model, and ``train()``/``eval()`` set the model's mode. Nothing is compiled: calling it calls
        the model.

        Example:
            >>> import downslope as ds
            >>> model = ds.nn.Linear(2, 1)
            >>> compiled = ds.compile(model)
            >>> compiled._orig_mod is model, compiled.weight is model.weight
            (True, True)
            >>> list(compiled.state_dict())
            ['_orig_mod.weight', '_orig_mod.bias']
        """

        # torch's own attributes of the wrapper: written on it, not on the model
        _opt_mod_attributes = frozenset(
            {
                "_orig_mod",
                "dynamo_ctx",
                "_torchdynamo_orig_callable",
                "_torchdynamo_wrapper_id",
                "get_compiler_config",
                "forward",
                "_forward",
                "__dict__",
                "named_children_walk",
                "_super_module_initialized",
            }
        )

        def __init__(self, mod: Module, dynamo_ctx: Any = None) -> None:
            # First: reads and writes during Module.__init__ already go through _orig_mod.
            object.__setattr__(self, "_orig_mod", mod)
            object.__setattr__(self, "_super_module_initialized", False)
            super().__init__()
            object.__setattr__(self, "_super_module_initialized", True)
            self._orig_mod = mod  # registered as the one child (state_dict's "_orig_mod." prefix)
            self.dynamo_ctx = dynamo_ctx

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            """Calls the model (its hooks run), as torch's compiled forward does."""
            return self._orig_mod(*args, **kwargs)

        @property
        def training(self) -> bool:
            return bool(self._orig_mod.training)

        @training.setter
        def training(self, value: bool) -> None:
            # Module.__init__'s default is not the model's: only later writes reach the model.
            if self.__dict__.get("_super_module_initialized"):
                self._orig_mod.training = value

        def __getattr__(self, name: str) -> Any:
            d = object.__getattribute__(self, "__dict__")
            if name == "_orig_mod":
                modules = d.get("_modules")
                if modules is not None and "_orig_mod" in modules:
                    return modules["_orig_mod"]
            orig = d.get("_orig_mod")
            if orig is None:  # mid-unpickling or copying: no model yet to ask
                raise AttributeError(f"'OptimizedModule' object has no attribute '{name}'", name=name, obj=self)
            return getattr(orig, name)

        def __setattr__(self, name: str, value: Any) -> None:
            if hasattr(type(self), name) or name in self._opt_mod_attributes:
                return super().__setattr__(name, value)
            return setattr(self._orig_mod, name, value)

        def __delattr__(self, name: str) -> None:
            if hasattr(type(self), name) or name in self._opt_mod_attributes:
                return super().__delattr__(name)
            return delattr(self._orig_mod, name)

        def __len__(self) -> int:
            try:
                return len(self._orig_mod)
            except TypeError:
                from .errors import ArgumentTypeError

                raise ArgumentTypeError(f"{type(self._orig_mod).__name__} does not support len()") from None

        def __dir__(self) -> list[str]:
            own = list(dir(self._orig_mod))
            return own + [name for name in super().__dir__() if name not in own]

    OptimizedModule.__module__ = eval_frame.__name__  # torch's path, where pickle looks it up
    OptimizedModule.__qualname__ = "OptimizedModule"
    _classes["OptimizedModule"] = OptimizedModule
    return OptimizedModule


def __getattr__(name: str) -> Any:
    if name == "OptimizedModule":
        return _optimized_module()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _eval_frame_getattr(name: str) -> Any:
    if name == "OptimizedModule":
        return _optimized_module()
    raise AttributeError(f"module 'downslope._dynamo.eval_frame' has no attribute {name!r}")


# ``torch._dynamo.eval_frame``: where torch's OptimizedModule lives (``isinstance(m, eval_frame.OptimizedModule)``
# is how libraries ask whether a model was compiled); entered in sys.modules so its import line works too.
eval_frame = types.ModuleType(f"{__name__}.eval_frame", "torch._dynamo.eval_frame: OptimizedModule.")
eval_frame.__getattr__ = _eval_frame_getattr  # type: ignore[method-assign]
eval_frame.__spec__ = importlib.machinery.ModuleSpec(eval_frame.__name__, None)
sys.modules.setdefault(eval_frame.__name__, eval_frame)
