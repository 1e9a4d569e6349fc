"""A module's state: its parameters and persistent buffers by ``state_dict`` key, and the checks
``load_state_dict`` makes before it writes anything."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ...devices import device_of, is_array, to_device, to_host
from ...errors import CheckpointError, ShapeError, StateDictError, StateError
from ...tensor import Tensor, wrap_array
from .parameter import Parameter, is_lazy

if TYPE_CHECKING:
    from .base import Module


def named_state(module: Module, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
    """Every parameter and persistent buffer under its ``state_dict`` key (``prefix`` before each).

    A module registered under two names appears under both, as in PyTorch.

    Example:
        >>> from downslope import nn
        >>> [key for key, _ in named_state(nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1)))][:3]
        ['0.weight', '0.bias', '1.weight']
    """
    for mod_name, mod in module.named_modules(remove_duplicate=False):
        pre = prefix + (f"{mod_name}." if mod_name else "")  # PyTorch's prefix ends with its own dot
        for name, p in mod._parameters.items():
            if p is not None:
                yield pre + name, p
        for name, b in mod._buffers.items():
            if b is not None and name not in mod._non_persistent:
                yield pre + name, b


# A norm layer's batch counter, which PyTorch's BatchNorm gained after its first release: PyTorch's
# _NormBase._load_from_state_dict keeps the layer's own counter when a state_dict has none (neither an
# error nor a missing key), so checkpoints saved without it load; the norm layers here are the only
# modules with a buffer of that name.
_COUNTER = "num_batches_tracked"


def _kept_when_absent(key: str) -> bool:
    return key.rpartition(".")[2] == _COUNTER


def check_keys(
    where: str, own: Mapping[str, Tensor], state_dict: Mapping[str, Any], strict: bool
) -> tuple[list[str], list[str]]:
    """The missing and unexpected keys of ``state_dict``; with ``strict``, any of them is an error.

    A norm layer's ``num_batches_tracked`` may be absent, as in PyTorch: the layer keeps its own.

    Example:
        >>> import numpy as np
        >>> check_keys("load", {"w": None, "b": None}, {"w": np.zeros(1), "x": np.zeros(1)}, strict=False)
        (['b'], ['x'])
    """
    missing = [k for k in own if k not in state_dict and not _kept_when_absent(k)]
    unexpected = [k for k in state_dict if k not in own]
    if strict and (missing or unexpected):
        # the size mismatches of the same load go in the same message, as torch lists all three kinds
        mismatches = []
        for k, target in own.items():
            value = state_dict.get(k)
            if value is None or is_lazy(target) or is_lazy(value):
                continue
            shape = _shape_of(value)
            if shape is not None and not _fits(shape, target.array.shape):
                mismatches.append(_size_mismatch(k, shape, target.array.shape))
        raise StateDictError(f"{where} failed: {_all_problems(missing, unexpected, mismatches)}")
    return missing, unexpected


def _shape_of(value: Any) -> tuple[int, ...] | None:
    """A checkpoint value's shape (a Tensor, any array or a torch tensor: their ``.shape``; nested lists),
    or None for a value without one (ragged lists: checked_arrays says what is wrong with them)."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return tuple(shape)
    try:
        return np.shape(value)  # host: nested Python lists from a checkpoint, no device array
    except (ValueError, TypeError):
        return None


def _fits(shape: tuple[int, ...], own: tuple[int, ...]) -> bool:
    """Whether a checkpoint value of ``shape`` loads into an entry of shape ``own``: the same shape, or
    one element in 1-d for a 0-d entry (old checkpoints stored 0-d buffers such as a norm layer's
    ``num_batches_tracked`` as shape (1,), and torch loads them)."""
    return shape == own or (own == () and shape == (1,))


def _size_mismatch(key: str, shape: tuple[int, ...], own: tuple[int, ...]) -> str:
    return f"size mismatch for {key!r}: the checkpoint has shape {tuple(shape)}, this module has shape {tuple(own)}"


def _all_problems(missing: list[str], unexpected: list[str], mismatches: list[str]) -> str:
    """The missing and unexpected keys and the size mismatches of one load, in one message (torch's order)."""
    return " ".join([key_problems(missing, unexpected), *(f"{m}." for m in mismatches)]).strip()


def _mismatch_error(where: str, mismatches: list[str]) -> ShapeError:
    if len(mismatches) == 1:
        return ShapeError(f"{where}: {mismatches[0]}")
    return ShapeError(f"{where}: {len(mismatches)} size mismatches:\n\t" + "\n\t".join(mismatches))


def key_problems(missing: list[str], unexpected: list[str]) -> str:
    """The missing and unexpected keys in PyTorch's words (code that reads them matches those).

    Example:
        >>> key_problems(["bias"], ["extra"])
        'Missing key(s) in state_dict: "bias". Unexpected key(s) in state_dict: "extra".'
    """
    parts = []
    if missing:
        parts.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
    if unexpected:
        parts.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
    return " ".join(parts)


def checked_arrays(
    where: str,
    own: Mapping[str, Tensor],
    state_dict: Mapping[str, Any],
    allow_nonfinite: bool,
    buffers: frozenset[str] = frozenset(),
    mismatches: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays to load, by key: real numbers of each target's shape, finite unless allowed (the
    ``buffers`` may hold infinities: an attention mask's -inf, a running maximum's start) or unless
    the target already holds the same non-finite value at each such place (a constant kept on
    purpose). Size mismatches raise, all of them listed, or are added to ``mismatches`` when it is given.

    Example:
        >>> import downslope as ds
        >>> checked_arrays("load", {"w": ds.zeros(2)}, {"w": [1, 2]}, allow_nonfinite=False)
        {'w': array([1, 2])}
    """
    arrays: dict[str, np.ndarray] = {}
    found: list[str] = []
    for key, target in own.items():
        if key not in state_dict:
            continue
        value = state_dict[key]
        if is_lazy(value):
            raise ShapeError(f"{where}: {key!r}: " + _LAZY_INTO_INITIALIZED)
        # Checked and cast on the host (a load, not a training step); copied to each target's device below.
        arr = to_host(value.array if isinstance(value, Tensor) else value)
        if arr.dtype.kind not in "biuf" and not (arr.dtype.kind == "c" and target.array.dtype.kind == "c"):
            raise CheckpointError(
                f"{where}: {key!r} has dtype {arr.dtype}; expected real "
                f"numbers (bool, integer or float) to cast to {target.array.dtype}"
            )
        if arr.shape != target.array.shape:
            if not _fits(arr.shape, target.array.shape):  # every mismatched key is listed, as torch lists them
                found.append(_size_mismatch(key, arr.shape, target.array.shape))
                continue
            arr = arr.reshape(())  # an old checkpoint's (1,) for a 0-d entry
        if not allow_nonfinite and arr.dtype.kind in "fc":
            ok = ~np.isnan(arr) if key in buffers else np.isfinite(arr)
            bad = 0 if ok.all() else _new_nonfinite(target, arr, ok)
            if bad:
                what = "NaN" if key in buffers else "NaN/infinite"
                raise CheckpointError(
                    f"{where}: {key!r} holds {bad} {what} value(s) of {arr.size} where this module's {key!r} "
                    "holds other values (a diverged run's weights?); pass allow_nonfinite=True to load it anyway"
                )
        arrays[key] = arr
    if mismatches is not None:
        mismatches.extend(found)
    elif found:
        raise _mismatch_error(where, found)
    return arrays


def _new_nonfinite(target: Tensor, arr: np.ndarray, ok: np.ndarray) -> int:
    """How many of ``arr``'s refused (``~ok``) entries ``target`` does not already hold, the same
    value at the same place. Those it holds are a constant the module keeps non-finite on purpose (a
    pointer network's ``Parameter(tensor([-inf]), requires_grad=False)``, a NaN sentinel), so its own
    ``state_dict`` loads back, while a trained weight that diverged (finite in the module, NaN or inf
    in the file) is still refused."""
    bad = ~ok
    own = to_host(target.array)
    if own.shape != arr.shape or own.dtype.kind not in "fc":
        return int(np.count_nonzero(bad))
    theirs, mine = arr[bad], own[bad]
    return int(np.count_nonzero(~((theirs == mine) | (np.isnan(theirs) & np.isnan(mine)))))


def copy_into(own: Mapping[str, Tensor], arrays: Mapping[str, np.ndarray]) -> None:
    """Writes each array into its tensor in place (cast to the tensor's dtype), so optimizers holding
    the parameters keep seeing them; a read-only array is replaced instead.

    Example:
        >>> import numpy as np, downslope as ds
        >>> w = ds.zeros(2)
        >>> copy_into({"w": w}, {"w": np.array([1, 2])})
        >>> w.tolist()
        [1.0, 2.0]
    """
    for key, arr in arrays.items():
        target = own[key]
        where = device_of(target.array)  # a model moved to a device loads host checkpoints onto it
        if getattr(target.array.flags, "writeable", True):  # CuPy's arrays have no read-only flag
            np.copyto(target.array, to_device(arr, where), casting="unsafe")
        else:
            target.array = to_device(arr.astype(target.array.dtype), where)


def _adoptable(value: Any, checked: np.ndarray) -> Any:
    """The array ``assign=True`` adopts for ``value``: a tensor's or array's own memory on its own
    device; for anything else (a PyTorch tensor, a list) the host array the checks made of it."""
    if isinstance(value, Tensor):
        arr = value.array
    elif is_array(value):
        arr = value
    else:
        arr = checked
    if not getattr(getattr(arr, "flags", None), "writeable", True):
        arr = arr.copy()  # a read-only (memory-mapped) array could not be trained in place
    return arr


def assign_into(module: Module, state_dict: Mapping[str, Any], arrays: Mapping[str, np.ndarray], where: str) -> None:
    """``load_state_dict(..., assign=True)``: each parameter and buffer becomes the given value itself
    (its dtype, device and memory) instead of receiving a copy, as PyTorch's ``assign`` does.

    A parameter becomes a Parameter around the given array (a given Parameter is used as it is), with
    ``requires_grad`` taken from the parameter it replaces; a buffer becomes the given tensor. The
    replaced objects are gone from the module: an optimizer built over them beforehand keeps updating
    the old ones (build optimizers after loading, as in PyTorch), and weights tied by sharing one
    Parameter are untied when their keys get different values.

    Example:
        >>> import numpy as np
        >>> from downslope import nn
        >>> lin = nn.Linear(2, 1)
        >>> sd = {"weight": np.ones((1, 2), np.float16), "bias": np.zeros(1, np.float16)}
        >>> assign_into(lin, sd, checked_arrays("load", lin.state_dict(), sd, False), "load")
        >>> lin.weight.dtype, lin.weight.requires_grad
        (dtype('float16'), True)
    """
    slots: dict[str, tuple[Module, str, bool]] = {}
    for mod_name, mod in module.named_modules(remove_duplicate=False):
        pre = f"{mod_name}." if mod_name else ""
        for name, p in mod._parameters.items():
            if p is not None:
                slots[pre + name] = (mod, name, True)
        for name, b in mod._buffers.items():
            if b is not None and name not in mod._non_persistent:
                slots[pre + name] = (mod, name, False)
    new: dict[str, Tensor] = {}
    for key, checked in arrays.items():
        mod, name, is_param = slots[key]
        value = state_dict[key]
        if getattr(value, "shape", checked.shape) != checked.shape:  # (1,) for a 0-d entry: adopt a 0-d view
            value = value.reshape(())
        if not is_param:
            new[key] = value if isinstance(value, Tensor) else wrap_array(_adoptable(value, checked))
            continue
        old = mod._parameters[name]
        assert old is not None
        if isinstance(value, Parameter):
            param = value
        else:
            arr = _adoptable(value, checked)
            if old.requires_grad and arr.dtype.kind not in "fc":  # complex parameters have gradients too
                raise CheckpointError(
                    f"{where}: cannot assign {key!r} of dtype {arr.dtype} to a parameter that requires grad "
                    "(only floating point tensors have gradients); pass floating values, or load without assign=True"
                )
            param = Parameter(None, requires_grad=False)
            param.array = arr  # adopted as it is: Parameter(arr) would cast it to the default dtype
        param.requires_grad_(old.requires_grad)
        new[key] = param
    # Everything is checked above before anything is written, so a failed load leaves the module as it was.
    for key, t in new.items():
        mod, name, is_param = slots[key]
        if is_param:
            assert isinstance(t, Parameter)
            mod._parameters[name] = t
        else:
            mod._buffers[name] = t
        mod.__dict__[name] = t  # a module keeps its parameters and buffers as plain attributes too


# The state_dict key (after the module's prefix) of what a module's get_extra_state() returns, as PyTorch's.
EXTRA_STATE_KEY = "_extra_state"


def _saves_extra(module: Module) -> bool:
    from .base import Module

    return type(module).get_extra_state is not Module.get_extra_state


def _loads_extra(module: Module) -> bool:
    from .base import Module

    return type(module).set_extra_state is not Module.set_extra_state


def _module_class() -> type[Module]:
    from .base import Module  # base imports this module

    return Module


def save_with_hooks(root: Module, destination: Any, prefix: str, keep_vars: bool) -> Any:
    """``state_dict`` the way PyTorch walks it, module by module: each module's state-dict pre-hooks,
    its own entries (``_save_to_state_dict``: parameters, persistent buffers, extra state), its
    children, then its post-hooks. The walk keeps its own stack, so deep nesting needs no recursion.

    Example:
        >>> from downslope import nn
        >>> lin = nn.Linear(1, 1)
        >>> _ = lin.register_state_dict_pre_hook(lambda m, prefix, keep_vars: None)
        >>> list(save_with_hooks(lin, {}, "", False))
        ['weight', 'bias']
    """
    # (module, prefix, its metadata, leaving): a module is entered (metadata recorded, pre-hooks, own
    # entries, children pushed) and left (post-hooks, given the same metadata dict, as PyTorch's).
    stack: list[tuple[Module, str, dict[str, Any], bool]] = [(root, prefix, {}, False)]
    while stack:
        mod, pre, metadata, leaving = stack.pop()
        tables = mod.__dict__.get("_state_hooks") or {}
        if leaving:
            for hook in list(tables.get("save_post", {}).values()):
                result = hook(mod, destination, pre, metadata)
                if getattr(hook, "_from_public_api", False):
                    if result is not None:
                        raise StateError("state_dict post-hook must return None")
                elif result is not None and mod is root and pre == prefix:
                    destination = result  # PyTorch's private hook: only the root module's result counts
            continue
        if mod is not root and type(mod).state_dict is not _module_class().state_dict:
            # a child with its own state_dict (a wrapper renaming or filtering keys): called, as PyTorch does
            mod.state_dict(destination=destination, prefix=pre, keep_vars=keep_vars)
            continue
        metadata = {"version": type(mod)._version}
        recorded = getattr(destination, "_metadata", None)
        if recorded is not None:
            recorded[pre[:-1]] = metadata
        for hook in list(tables.get("save_pre", {}).values()):
            hook(mod, pre, keep_vars)
        mod._save_to_state_dict(destination, pre, keep_vars)
        stack.append((mod, pre, metadata, True))
        children = [(f"{pre}{name}.", child) for name, child in mod._modules.items() if child is not None]
        stack.extend((child, child_prefix, {}, False) for child_prefix, child in reversed(children))
    return destination


class _Visit:
    """One module's part of a load: the tensors it loads and the values for them, its extra state."""

    __slots__ = ("module", "prefix", "missing", "unexpected", "targets", "values", "extra")

    def __init__(self, module: Module, prefix: str) -> None:
        self.module, self.prefix = module, prefix
        self.missing: list[str] = []
        self.unexpected: list[str] = []
        self.targets: dict[str, Tensor] = {}
        self.values: dict[str, Any] = {}
        self.extra: tuple[Any, ...] = ()


def _visit_own(visit: _Visit, local: Mapping[str, Any]) -> None:
    """What ``visit.module`` itself loads from ``local`` (its keys keep their full prefix): PyTorch's
    ``_load_from_state_dict`` bookkeeping, with a norm layer's batch counter allowed to be absent."""
    mod, prefix = visit.module, visit.prefix
    own: dict[str, Tensor] = {}
    for name, p in mod._parameters.items():
        if p is not None:
            own[name] = p
    for name, b in mod._buffers.items():
        if b is not None and name not in mod._non_persistent:
            own[name] = b
    for name, target in own.items():
        key = prefix + name
        if key in local:
            visit.targets[key] = target
            visit.values[key] = local[key]
        elif not _kept_when_absent(key):
            visit.missing.append(key)
    extra_key = prefix + EXTRA_STATE_KEY
    if _loads_extra(mod):
        if extra_key in local:
            visit.extra = (local[extra_key],)
        else:
            visit.missing.append(extra_key)
    elif extra_key in local:
        visit.unexpected.append(extra_key)
    for key in local:
        if key.startswith(prefix) and key != extra_key:
            head, dot, _ = key[len(prefix) :].partition(".")
            if (dot and head not in mod._modules) or (not dot and head not in own):
                visit.unexpected.append(key)


def _load_own(
    visit: _Visit, assign: bool, allow_nonfinite: bool, where: str, mismatches: list[str] | None = None
) -> None:
    """Check this module's values (all of them, before writing any), then write them and its extra state.
    Size mismatches raise, or are added to ``mismatches`` when it is given (and nothing of the module is
    written), so that the load goes on and reports them with the other problems, as torch's does."""
    targets: dict[str, Tensor] = {}
    values: dict[str, Any] = {}
    for key, target in visit.targets.items():
        value = visit.values[key]
        if is_lazy(value):
            if is_lazy(target):
                continue  # an uninitialized entry into an uninitialized one: nothing to copy, as PyTorch
            raise ShapeError(f"{where}: {key!r}: " + _LAZY_INTO_INITIALIZED)
        if is_lazy(target):
            raise ShapeError(
                f"{where}: {key!r} is uninitialized in this module and has no lazy module to initialize it"
            )
        targets[key], values[key] = target, value
    buffers = frozenset(k for k, t in targets.items() if not isinstance(t, Parameter))
    found: list[str] | None = None if mismatches is None else []
    arrays = checked_arrays(where, targets, values, allow_nonfinite, buffers, found)
    if found and mismatches is not None:  # found is a list only when mismatches is
        mismatches.extend(found)
        return
    if assign:
        _assign_own(visit, values, arrays, where)
    else:
        copy_into(targets, arrays)
    if visit.extra:
        visit.module.set_extra_state(visit.extra[0])


def _assign_own(visit: _Visit, values: Mapping[str, Any], arrays: Mapping[str, np.ndarray], where: str) -> None:
    """``assign=True`` for one module's own entries (assign_into with the module as the root)."""
    prefix = visit.prefix
    local_values = {key[len(prefix) :]: value for key, value in values.items()}
    local_arrays = {key[len(prefix) :]: arr for key, arr in arrays.items()}
    own_only = {k: v for k, v in local_values.items() if "." not in k}
    assign_into(visit.module, own_only, {k: local_arrays[k] for k in own_only}, where)


# downslope's own options of the load in progress (allow_nonfinite, the error messages' prefix), which
# PyTorch's _load_from_state_dict signature has no room for; a direct call outside a load gets the defaults.
# The third item gathers the load's size mismatches, reported at its end with its other problems.
_LOAD_OPTIONS: contextvars.ContextVar[tuple[bool, str, list[str]] | None] = contextvars.ContextVar(
    "_LOAD_OPTIONS", default=None
)


def load_from_state_dict(
    module: Module,
    state_dict: Mapping[str, Any],
    prefix: str,
    local_metadata: Mapping[str, Any],
    missing_keys: list[str],
    unexpected_keys: list[str],
    error_msgs: list[str],
) -> None:
    """PyTorch's ``Module._load_from_state_dict``: run ``module``'s load pre-hooks, then load its own
    parameters, persistent buffers and extra state from the entries under ``prefix`` (not its
    children's), adding the keys it lacks or does not know to ``missing_keys`` / ``unexpected_keys``.

    Example:
        >>> from downslope import nn
        >>> lin, missing, unexpected = nn.Linear(1, 1), [], []
        >>> load_from_state_dict(lin, {"weight": nn.Linear(1, 1).weight.detach(), "x": 1}, "", {}, missing, unexpected, [])
        >>> missing, unexpected
        (['bias'], ['x'])
    """
    options = _LOAD_OPTIONS.get()
    allow_nonfinite, where, mismatches = (
        options if options is not None else (False, f"load_state_dict into {type(module).__name__}", None)
    )
    tables = module.__dict__.get("_state_hooks") or {}
    for hook in list(tables.get("load_pre", {}).values()):
        hook(state_dict, prefix, local_metadata, True, missing_keys, unexpected_keys, error_msgs)
    visit = _Visit(module, prefix)
    _visit_own(visit, state_dict)
    missing_keys.extend(visit.missing)
    unexpected_keys.extend(visit.unexpected)
    assign = bool(local_metadata.get("assign_to_params_buffers", False))  # host: a Python flag
    _load_own(visit, assign, allow_nonfinite, where, mismatches)


def load_with_hooks(
    root: Module, state_dict: Mapping[str, Any], strict: bool, assign: bool, allow_nonfinite: bool, where: str
) -> Any:
    """``load_state_dict`` the way PyTorch walks it, for modules with load hooks or extra state.

    Module by module (parents before children): its load pre-hooks (given the entries under its prefix,
    which they may change), then its own values are checked (shapes, dtypes, finiteness; all of the
    module's before any is written) and written and ``set_extra_state`` called, then its children,
    then its post-hooks with the missing and unexpected keys gathered so far (which they may change in
    place). A strict load fails at the end if any keys are left, or if a pre-hook added to
    ``error_msgs``; a module with a size mismatch writes none of its values, the others load, and the
    load fails at the end naming every mismatch with the keys left (as PyTorch's one message). Unlike
    the load without hooks, another bad value (a dtype, NaN) found in a later module raises at once and
    leaves the modules before it loaded (as in PyTorch).

    Example:
        >>> from downslope import nn
        >>> a, b = nn.Linear(1, 1), nn.Linear(1, 1)
        >>> _ = b.register_load_state_dict_post_hook(lambda m, keys: None)
        >>> load_with_hooks(b, a.state_dict(), True, False, False, "load")
        <All keys matched successfully>
    """
    from collections import OrderedDict

    from .base import IncompatibleKeys

    metadata = getattr(state_dict, "_metadata", None)
    copied: Any = OrderedDict(state_dict)
    if metadata is not None:
        copied._metadata = metadata
    missing: list[str] = []
    unexpected: list[str] = []
    error_msgs: list[str] = []
    keys = IncompatibleKeys(missing, unexpected)

    # (module, prefix, its entries, leaving): entered (pre-hooks, own load, children pushed), then left (post-hooks)
    stack: list[tuple[Module, str, Any, bool]] = [(root, "", copied, False)]
    mismatches: list[str] = []
    token = _LOAD_OPTIONS.set((allow_nonfinite, where, mismatches))
    try:
        while stack:
            mod, prefix, local, leaving = stack.pop()
            tables = mod.__dict__.get("_state_hooks") or {}
            if leaving:
                for hook in list(tables.get("load_post", {}).values()):
                    if hook(mod, keys) is not None:
                        raise AssertionError(
                            "Hooks registered with ``register_load_state_dict_post_hook`` are not expected to return "
                            "new values, if incompatible_keys need to be modified, it should be done inplace."
                        )
                continue
            local_metadata: dict[str, Any] = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
            if assign:
                local_metadata["assign_to_params_buffers"] = assign
            # A subclass's override (e.g. one that renames old checkpoint keys, then calls super()) runs here.
            mod._load_from_state_dict(local, prefix, local_metadata, True, missing, unexpected, error_msgs)
            stack.append((mod, prefix, local, True))
            pushed = []
            for name, child in mod._modules.items():
                if child is not None:
                    child_prefix = f"{prefix}{name}."
                    pushed.append(
                        (child, child_prefix, {k: v for k, v in local.items() if k.startswith(child_prefix)}, False)
                    )
            stack.extend(reversed(pushed))
    finally:
        _LOAD_OPTIONS.reset(token)

    problems = list(error_msgs)
    keyed = strict and bool(missing or unexpected)  # host: Python lists of key names
    if keyed or (problems and mismatches):
        problems.insert(0, _all_problems(missing if keyed else [], unexpected if keyed else [], mismatches))
    elif mismatches:  # only sizes: the class a size mismatch has in every load
        raise _mismatch_error(where, mismatches)
    if problems:
        raise StateDictError(f"{where} failed: " + "; ".join(problems))
    return keys


_LAZY_INTO_INITIALIZED = (
    "the checkpoint holds an uninitialized parameter or buffer (a lazy module's, saved before its first "
    "forward) and this module's is initialized; run the lazy model's forward once before saving it"
)
