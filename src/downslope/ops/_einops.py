"""einops' backend for downslope tensors: ``rearrange``, ``repeat``, ``reduce``, ``pack``/``unpack`` and
``einsum`` from einops take downslope tensors, and gradients flow through (each step is a downslope op).

einops is optional and ``import downslope`` does not import it. einops finds a backend among the
subclasses of ``einops._backends.AbstractBackend`` whose ``framework_name`` is in ``sys.modules``, so the
subclass has to exist before einops first meets a downslope tensor, whichever of the two was imported
first. :func:`register` (called by ``import downslope``) defines it at once when einops is already loaded;
otherwise it puts a one-shot finder first on ``sys.meta_path`` that, when ``einops._backends`` is
imported, lets the usual finders find it and defines the subclass right after the module has run, then
takes itself off. Importing einops costs nothing more; importing downslope only a finder.

Example (not a doctest: einops may be absent; tests/test_einops.py runs these)::

    import downslope as ds
    from einops import rearrange

    rearrange(ds.zeros(2, 3, 4), "b c n -> b (c n)").shape  # (2, 12)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader  # importlib.abc is not loaded at startup: for the type only

_BACKENDS_MODULE = "einops._backends"
_backend_class: list[type] = []  # a strong reference: einops finds backends through __subclasses__ (weak)


def register() -> None:
    """Make einops know downslope tensors: now if einops is loaded, else as soon as it loads."""
    loaded = sys.modules.get(_BACKENDS_MODULE)
    if loaded is not None and hasattr(loaded, "AbstractBackend"):
        _define_backend(loaded)
    elif not any(isinstance(finder, _EinopsFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _EinopsFinder())


class _EinopsFinder:
    """First on ``sys.meta_path`` until einops' backends module is imported: finds that module through the
    other finders and wraps its loader so the downslope backend is defined right after it runs."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None) -> Any:
        if fullname != _BACKENDS_MODULE:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # one shot: also keeps the search below from reaching this finder
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec: ModuleSpec | None = None if find is None else find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = cast("Loader", _DefineAfterLoading(spec.loader))
                return spec
        return None


class _DefineAfterLoading:
    """einops' own loader, which also defines the downslope backend once the module has run; every other
    attribute (get_source, get_data...) is the wrapped loader's."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _define_backend(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


def _define_backend(backends: ModuleType) -> None:
    if _backend_class or any(c.framework_name == "downslope" for c in backends.AbstractBackend.__subclasses__()):
        return
    from .. import ops
    from ..backend import int64
    from ..tensor import Tensor, arange, from_numpy

    class DownslopeBackend(backends.AbstractBackend):  # type: ignore[name-defined]
        """einops' operations as downslope ops (torch's backend's choices, so results match torch's)."""

        framework_name = "downslope"

        def is_appropriate_type(self, tensor: Any) -> bool:
            return isinstance(tensor, Tensor)

        def from_numpy(self, x: Any) -> Tensor:
            variable = from_numpy(x)
            if self.is_float_type(variable):  # as torch's backend: floating tensors require grad
                variable.requires_grad_(True)
            return variable

        def to_numpy(self, x: Tensor) -> Any:
            return x.detach().cpu().numpy()

        def arange(self, start: int, stop: int) -> Tensor:
            return arange(start, stop, dtype=int64)

        def reduce(self, x: Tensor, operation: str, reduced_axes: tuple[int, ...]) -> Tensor:
            if operation in ("min", "max"):
                return getattr(x, "a" + operation)(dim=reduced_axes)
            if operation in ("sum", "mean"):
                return getattr(x, operation)(dim=reduced_axes)
            if operation in ("any", "all", "prod"):  # one dim at a time, as torch takes them
                for axis in sorted(reduced_axes)[::-1]:
                    x = getattr(x, operation)(dim=axis)
                return x
            return super().reduce(x, operation, reduced_axes)  # einops' own error for an unknown reduction

        def transpose(self, x: Tensor, axes: Sequence[int]) -> Tensor:
            return x.permute(tuple(axes))

        def stack_on_zeroth_dimension(self, tensors: list[Tensor]) -> Tensor:
            return ops.stack(tensors)

        def add_axes(self, x: Tensor, n_axes: int, pos2len: dict[int, int]) -> Tensor:
            repeats = [-1] * n_axes
            for axis_position, axis_length in pos2len.items():
                x = self.add_axis(x, axis_position)
                repeats[axis_position] = axis_length
            return x.expand(repeats)  # a broadcast view, as torch's backend (no copy)

        def tile(self, x: Tensor, repeats: Sequence[int]) -> Tensor:
            return x.repeat(tuple(repeats))

        def concat(self, tensors: list[Tensor], axis: int) -> Tensor:
            return ops.cat(tensors, dim=axis)

        def add_axis(self, x: Tensor, new_position: int) -> Tensor:
            return ops.unsqueeze(x, new_position)

        def is_float_type(self, x: Tensor) -> bool:
            return x.dtype.kind == "f"  # torch's backend: floating, not complex

        def einsum(self, pattern: str, *x: Tensor) -> Tensor:
            return ops.einsum(pattern, *x)

    _backend_class.append(DownslopeBackend)
