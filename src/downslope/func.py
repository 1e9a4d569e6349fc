"""Function transforms, as ``torch.func``: ``grad(f)`` is a new function returning f's gradient.

``torch.autograd.grad(outputs, inputs)`` (gradients of tensors already computed) is
:func:`downslope.autograd.grad`; this module holds the transform style, where the function itself is
the argument. Both run the same backward walk (``autograd.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import autograd
from .errors import ArgumentError, ArgumentTypeError
from .graph import enable_grad, is_grad_enabled

__all__ = ["grad", "functional_call"]


def functional_call(
    module: Any,
    parameter_and_buffer_dicts: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    args: Any = None,
    kwargs: dict[str, Any] | None = None,
    *,
    tie_weights: bool = True,
    strict: bool = False,
) -> Any:
    """``torch.func.functional_call``: call ``module(*args, **kwargs)`` with the named tensors (one dict,
    or a sequence of dicts with distinct keys) standing in for its parameters and buffers; the module
    is unchanged afterwards, even if the call raises. It behaves as
    :func:`downslope.nn.utils.stateless.functional_call` (torch's older name), so MAML code written with
    ``from torch.func import functional_call`` ports: the given tensors are part of the graph, so
    gradients of gradients flow through an inner step. ``args`` may be one tensor or a tuple;
    ``tie_weights`` replaces a tensor shared under several names under all of them; ``strict=True``
    requires every parameter and buffer to be given.

    Example:
        >>> import downslope as ds
        >>> layer = ds.nn.Linear(2, 1)
        >>> ds.func.functional_call(layer, {"weight": ds.ones(1, 2), "bias": ds.zeros(1)}, ds.tensor([[1.0, 2.0]]))
        tensor([[3.]])
    """
    dicts = (
        [parameter_and_buffer_dicts] if isinstance(parameter_and_buffer_dicts, Mapping) else parameter_and_buffer_dicts
    )
    values: dict[str, Any] = {}
    for d in dicts:
        for key, value in d.items():
            if key in values:
                raise ArgumentError(f"functional_call: {key!r} is given twice")
            values[key] = value
    known = dict(module.named_parameters(remove_duplicate=False)) | dict(module.named_buffers(remove_duplicate=False))
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ArgumentError(f"functional_call: {type(module).__name__} has no parameters or buffers {unknown}")
    if strict and set(values) != set(known):
        raise ArgumentError(f"functional_call: strict=True but {sorted(set(known) - set(values))} are not given")
    if tie_weights:  # a tensor shared by several names is replaced under all of them
        for name, tensor in known.items():
            for other, given in list(values.items()):
                if other != name and known[other] is tensor and name not in values:
                    values[name] = given
    saved = []
    try:
        for key, value in values.items():
            owner_path, _, attr = key.rpartition(".")
            owner = module.get_submodule(owner_path)
            saved.append((owner, attr, owner.__dict__.get(attr)))
            object.__setattr__(owner, attr, value)
        call_args = () if args is None else args if isinstance(args, tuple) else (args,)
        return module(*call_args, **(kwargs or {}))
    finally:
        for owner, attr, original in reversed(saved):
            object.__setattr__(owner, attr, original)


def grad(func: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Callable[..., Any]:
    """The function computing the gradient of the scalar ``func(*args)`` with respect to the argument(s)
    ``argnums`` (``torch.func.grad``).

    An integer ``argnums`` gives one gradient, a tuple gives a tuple. With ``has_aux=True``, ``func``
    returns ``(scalar, aux)`` and the new function returns ``(gradient, aux)``. Transforms compose:
    ``grad(grad(f))`` is the second derivative, because an argument that already requires grad (while
    recording) gets a gradient that is itself differentiable. Arguments may be tensors, arrays or numbers.

    Example:
        >>> import downslope as ds
        >>> ds.func.grad(lambda x: (x ** 3).sum())(ds.tensor([1.0, 2.0]))
        tensor([ 3., 12.])
        >>> ds.func.grad(ds.func.grad(lambda x: x ** 3))(ds.tensor(2.0))
        tensor(12.)
    """
    from .tensor import Tensor, to_array, wrap_array

    if not callable(func):
        raise ArgumentTypeError(
            f"func.grad: expected a function to differentiate, got {type(func).__name__}; "
            "for gradients of tensors already computed use ds.autograd.grad(outputs, inputs)"
        )
    single = isinstance(argnums, int)
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)

    @functools.wraps(func)
    def grad_fn(*args: Any, **kwargs: Any) -> Any:
        call_args = list(args)
        wrt = []
        nested = False
        for i in nums:
            if i >= len(args):
                raise ArgumentTypeError(f"func.grad: argnums={i} but the function got {len(args)} argument(s)")
            a = args[i]
            if isinstance(a, Tensor) and a.requires_grad and is_grad_enabled():
                # Already part of a recorded computation (e.g. grad(grad(f))): differentiate through a
                # itself and record the gradient's graph, or the outer gradient would silently be 0.
                t, nested = a, True
            else:
                arr = a.array if isinstance(a, Tensor) else to_array(a)
                t = wrap_array(arr).requires_grad_(True)
            call_args[i] = t
            wrt.append(t)
        with enable_grad():
            result = func(*call_args, **kwargs)
        out, aux = result if has_aux else (result, None)
        if not isinstance(out, Tensor) or out.array.size != 1:
            shape = getattr(out, "shape", type(out).__name__)
            raise ArgumentTypeError(f"func.grad: the function must return a scalar tensor, got {shape}")
        if not out.requires_grad:
            grads: tuple[Any, ...] = tuple(wrap_array(np.zeros_like(t.array)) for t in wrt)
        else:
            grads = autograd.grad(out, wrt, create_graph=nested, materialize_grads=True)
        found = grads[0] if single else grads
        return (found, aux) if has_aux else found

    return grad_fn
