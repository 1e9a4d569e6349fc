"""PyTorch's ``torch.nn.utils``: gradient clipping over parameters' ``.grad`` (``clip_grad_norm_``,
``clip_grad_value_``) and flattening parameters to one vector and back (``parameters_to_vector``,
``vector_to_parameters``).

The same clipping is available as optimizer options (``clip_norm=``, ``clip_value=``), which leave
``.grad`` untouched; ``downslope.optim`` re-exports these functions.

Example:
    >>> from downslope import nn
    >>> model = nn.Linear(3, 2)
    >>> nn.utils.parameters_to_vector(model.parameters()).shape
    downslope.Size([8])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from ... import ops
from ...backend import namespace_of, real_of
from ...devices import device_of, to_device, to_host
from ...errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError, StateError
from ...graph import no_grad
from ...row_grads import rows_of
from ...tensor import Tensor, wrap_array
from .._arrays import array_like
from .._weight_norm import weight_norm_op
from . import parametrizations as parametrizations  # PyTorch's attribute paths
from . import parametrize as parametrize
from . import prune as prune
from . import rnn as rnn
from . import stateless as stateless


def _grads(parameters: Any, owner: str, rows: bool = True) -> list[np.ndarray]:
    """The gradient arrays of ``parameters``, to read or scale in place. With ``rows``, a gradient
    still held as rows + values (Embedding(sparse=True)) gives its coalesced values: the same
    numbers as the dense gradient's less its zeros, so norms (but the -inf one), scaling and
    clipping by value come out the same without making the table-sized array."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    if isinstance(parameters, (set, frozenset)):
        parameters = list(parameters)  # the order does not matter for a norm
    out = []
    for i, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise ArgumentTypeError(f"{owner}: item {i} is a {type(p).__name__}, expected a Tensor")
        if p.grad is not None:
            note = rows_of(p.grad) if rows else None
            if note is not None:
                out.append(note.coalesced()[1])
                continue
            a = p.grad.array
            if isinstance(a, np.generic):  # a NumPy scalar cannot be written in place: hold a 0-d array
                a = p.grad.array = np.asarray(a)  # host: a NumPy scalar is on the host
            out.append(a)
    return out


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Scale the gradients in place so that their total norm is at most ``max_norm``.

    The total norm is that of all gradients concatenated into one vector (``norm_type`` may be
    ``inf``). As in PyTorch, gradients are multiplied by ``max_norm / (total_norm + 1e-6)`` when
    that is below 1. Returns the total norm *before* clipping (a 0-d tensor). ``foreach`` (PyTorch's
    choice of kernel) is accepted and has no effect.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils import clip_grad_norm_
        >>> w = ds.tensor([3.0, 4.0], requires_grad=True)
        >>> (w * w).sum().backward()        # grad = [6, 8], norm 10
        >>> float(clip_grad_norm_([w], max_norm=1.0))
        10.0
        >>> w.grad
        tensor([0.6, 0.8])
    """
    limit = _max_norm(max_norm, "clip_grad_norm_")
    grads = _grads(parameters, "clip_grad_norm_", rows=norm_type != -math.inf)  # -inf: the least |g| (zeros too)
    if not grads:
        return Tensor(0.0)
    total = _total_norm(grads, norm_type, error_if_nonfinite, "clip_grad_norm_")
    scale_to_max_norm_(grads, _on_device_of(limit, grads), total.array)
    return total


def global_norm(arrays: list[np.ndarray], norm_type: float = 2.0) -> Any:
    """The norm of all ``arrays`` taken together as one vector (``norm_type`` 2, inf or any p > 0),
    as a 0-d float64 value on the arrays' device (no host round-trip; ``float()`` it to read it).

    The one definition of "total gradient norm" behind ``clip_grad_norm_``, the optimizers'
    ``clip_norm=`` option and ``optim.transforms.clip_by_global_norm``. The 2-norm sums per-array dot products
    in float64, so a large float32 model does not lose precision in the sum. A float16 array's own
    norm is taken in float32 and rounded to float16, as PyTorch's per-tensor norms are (its sum of
    squares would overflow float16 at a norm of 256).

    Example:
        >>> import numpy as np
        >>> float(global_norm([np.array([3.0], np.float32), np.array([4.0], np.float32)]))
        5.0
    """
    if not arrays:
        return np.float64(0.0)
    total: Any = 0.0
    if norm_type == 2.0:
        for a in arrays:
            flat = a.reshape(-1)
            if flat.dtype == np.float16:
                flat = flat.astype(np.float32)
                with np.errstate(over="ignore"):  # a norm past 65504 is inf, as PyTorch's
                    own = np.sqrt(np.dot(flat, flat)).astype(np.float16).astype(np.float64)
                total = total + own * own
            elif flat.dtype.kind == "c":  # |z|^2 summed: vdot conjugates its first argument
                total = total + np.real(np.vdot(flat, flat)).astype(np.float64)
            else:
                total = total + np.dot(flat, flat).astype(np.float64)
        return np.sqrt(total)
    if norm_type == math.inf:
        for a in arrays:
            if a.size:
                total = np.maximum(total, np.abs(a).max().astype(np.float64))
        return total if not isinstance(total, float) else np.float64(total)
    if norm_type == -math.inf:  # the smallest |g| (PyTorch: the -inf norm of the per-tensor -inf norms)
        total = np.float64(np.inf)
        for a in arrays:
            if a.size:
                total = np.minimum(total, np.abs(a).min().astype(np.float64))
        return total
    if norm_type == 0:  # as PyTorch: the 0-"norm" of the per-tensor counts of nonzeros
        return sum((np.count_nonzero(a) > 0 for a in arrays), np.float64(0.0))  # host: a rare order, counted
    for a in arrays:
        part = (np.abs(a).astype(np.float64) ** norm_type).sum()  # |z| first: a cast would drop the imaginary part
        if a.dtype == np.float16:  # the array's own norm rounded to float16, as PyTorch's per-tensor norms
            with np.errstate(over="ignore"):  # a norm past 65504 is inf, as PyTorch's
                part = (part ** (1.0 / norm_type)).astype(np.float16).astype(np.float64) ** norm_type
        total = total + part
    return total ** (1.0 / norm_type)


def scale_to_max_norm_(arrays: list[np.ndarray], max_norm: float, total: Any) -> None:
    """Multiply ``arrays`` in place by PyTorch's clipping coefficient ``max_norm / (total + 1e-6)``
    clamped at 1, as PyTorch does (``total`` is their norm, from :func:`global_norm`: a number or a
    0-d array on their device, so no value goes to the host)."""
    coef = np.minimum(max_norm / (total + 1e-6), 1.0)
    with np.errstate(invalid="ignore"):  # inf * 0 is NaN, as in PyTorch
        for a in arrays:
            a *= coef.astype(a.dtype)


def _total_norm(arrays: list[np.ndarray], norm_type: float, error_if_nonfinite: bool, where: str) -> Tensor:
    """The norm of all arrays concatenated into one vector (``norm_type`` may be inf), as a 0-d tensor."""
    norm_type = float(norm_type)
    if not (norm_type >= 0 or norm_type == -math.inf):
        raise ArgumentError(f"{where}: expected norm_type >= 0, inf or -inf, got {norm_type!r}")
    # torch stacks the per-tensor norms, so the total takes their promoted dtype (a float16 gradient listed
    # before a float32 one gives a float32 norm); a complex gradient's norm is that of its moduli, real
    dtypes = {a.dtype for a in arrays}
    dtype = real_of(dtypes.pop() if len(dtypes) == 1 else np.result_type(*dtypes))
    total = global_norm(arrays, norm_type)
    if error_if_nonfinite:
        value = float(to_host(total))  # host: the caller asked for the check (PyTorch synchronises here too)
        if not math.isfinite(value):
            raise StateError(
                f"{where}: the total norm of order {norm_type} of the gradients is {value}, so they cannot be "
                "clipped; set error_if_nonfinite=False to clip anyway (the result will be NaN)"
            )
    return wrap_array(namespace_of(arrays[0]).asarray(total, dtype=dtype))  # a 0-d tensor on the arrays' device


def get_total_norm(
    tensors: Tensor | Iterable[Tensor],
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """The norm of the given tensors taken together (PyTorch's ``get_total_norm``).

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils import get_total_norm
        >>> float(get_total_norm([ds.tensor([3.0]), ds.tensor([4.0])]))
        5.0
    """
    arrays = [t.array for t in _parameter_list(tensors, "get_total_norm")]
    if not arrays:
        return Tensor(0.0)
    return _total_norm(arrays, norm_type, error_if_nonfinite, "get_total_norm")


def clip_grads_with_norm_(
    parameters: Tensor | Iterable[Tensor], max_norm: float, total_norm: Any, foreach: bool | None = None
) -> None:
    """Scale the gradients by ``max_norm / (total_norm + 1e-6)`` when that is below 1 (the second
    half of :func:`clip_grad_norm_`, with a total norm computed elsewhere)."""
    limit = _max_norm(max_norm, "clip_grads_with_norm_")
    total = total_norm.array if isinstance(total_norm, Tensor) else total_norm
    grads = _grads(parameters, "clip_grads_with_norm_")
    scale_to_max_norm_(grads, _on_device_of(limit, grads), total)


def clip_grad_norm(
    parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:  # fmt: skip
    """PyTorch's deprecated name of :func:`clip_grad_norm_`."""
    warnings.warn(
        "nn.utils.clip_grad_norm is deprecated in favor of nn.utils.clip_grad_norm_", FutureWarning, stacklevel=2
    )
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def skip_init(module_cls: Any, *args: Any, **kwargs: Any) -> Any:
    """Build ``module_cls(*args, **kwargs)``; PyTorch skips the initialization, here it runs (cheap on the CPU)."""
    return module_cls(*args, **kwargs)


def fuse_conv_bn_weights(
    conv_w: Tensor, conv_b: Tensor | None, bn_rm: Tensor, bn_rv: Tensor, bn_eps: float, bn_w: Tensor | None,
    bn_b: Tensor | None, transpose: bool = False,
) -> tuple[Any, Any]:  # fmt: skip
    """Fold an eval-mode BatchNorm into the preceding convolution's weight and bias (returns Parameters)."""
    from ..module import Parameter

    w, rm, rv = conv_w.array, bn_rm.array, bn_rv.array
    b = np.zeros_like(rm) if conv_b is None else conv_b.array
    gamma = np.ones_like(rm) if bn_w is None else bn_w.array
    beta = np.zeros_like(rm) if bn_b is None else bn_b.array
    scale = gamma / np.sqrt(rv + bn_eps)
    shape = [1] * w.ndim
    shape[1 if transpose else 0] = -1
    fused_w = (w * scale.reshape(shape)).astype(w.dtype)
    fused_b = ((b - rm) * scale + beta).astype(w.dtype)
    return Parameter(wrap_array(fused_w), conv_w.requires_grad), Parameter(wrap_array(fused_b), conv_w.requires_grad)


def fuse_linear_bn_weights(
    linear_w: Tensor, linear_b: Tensor | None, bn_rm: Tensor, bn_rv: Tensor, bn_eps: float, bn_w: Tensor, bn_b: Tensor
) -> tuple[Any, Any]:
    """Fold an eval-mode BatchNorm1d into the preceding Linear layer's weight and bias."""
    return fuse_conv_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b)


def fuse_conv_bn_eval(conv: Any, bn: Any, transpose: bool = False) -> Any:
    """A copy of the (eval-mode) ``conv`` with the following ``bn`` folded in."""
    return _fuse_eval(conv, bn, transpose, "fuse_conv_bn_eval")


def fuse_linear_bn_eval(linear: Any, bn: Any) -> Any:
    """A copy of the (eval-mode) ``linear`` with the following ``bn`` folded in."""
    return _fuse_eval(linear, bn, False, "fuse_linear_bn_eval")


def _fuse_eval(layer: Any, bn: Any, transpose: bool, where: str) -> Any:
    import copy

    if layer.training or bn.training:
        raise StateError(f"{where}: fusing is only for evaluation; call .eval() on both modules first")
    fused = copy.deepcopy(layer)
    if bn.running_mean is None:
        raise ArgumentError(f"{where}: the BatchNorm keeps no running statistics (track_running_stats=False)")
    w, b = fuse_conv_bn_weights(layer.weight, layer.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias,
                                transpose)  # fmt: skip
    fused.weight = w
    fused.bias = b
    return fused


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None) -> None:
    """Clip every gradient coordinate into ``[-clip_value, clip_value]`` in place.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils import clip_grad_value_
        >>> w = ds.tensor([3.0, -0.1], requires_grad=True)
        >>> (w * w).sum().backward()
        >>> clip_grad_value_([w], 1.0); w.grad
        tensor([ 1. , -0.2])
    """
    if isinstance(clip_value, Tensor) and clip_value.numel() == 1:
        clip_value = clip_value.item()  # host: np.clip's bounds are numbers (PyTorch reads it with float() too)
    _check_limit(clip_value, "clip_value", "clip_grad_value_")
    grads = _grads(parameters, "clip_grad_value_")
    for i, g in enumerate(grads):
        if g.dtype.kind == "c":  # NumPy would clip each part (or warn and drop one); torch refuses
            raise DTypeError(
                f"clip_grad_value_: clamp is not supported for complex types, got a {g.dtype} gradient (item {i} "
                "with a gradient); clip complex gradients by norm (clip_grad_norm_) instead"
            )
    for g in grads:
        np.clip(g, -clip_value, clip_value, out=g)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _check_limit(value: Any, name: str, where: str) -> None:
    """Refuse a clipping limit that is not a number >= 0, saying which of the two it is not."""
    if not _number(value):
        shape = f" of shape {tuple(value.shape)} and dtype {value.dtype}" if isinstance(value, Tensor) else ""
        raise ArgumentTypeError(
            f"{where}: expected {name} to be a number or a one-element tensor, got a {type(value).__name__}{shape}"
        )
    if not value >= 0:  # NaN too
        raise ArgumentError(f"{where}: expected {name} >= 0, got {value!r} (it would flip or NaN the gradients)")


def _max_norm(max_norm: Any, where: str) -> Any:
    """``max_norm`` as a number or, for a one-element tensor (PyTorch accepts one: a schedule's or a
    config's value), its 0-d array, left on its device unread: as in PyTorch, its sign is not checked."""
    if isinstance(max_norm, Tensor) and max_norm.numel() == 1 and max_norm.dtype.kind in "iuf":
        return max_norm.array.reshape(())
    _check_limit(max_norm, "max_norm", where)
    return max_norm


def _on_device_of(limit: Any, grads: list[np.ndarray]) -> Any:
    """A tensor limit's array moved to the gradients' device (a number stays as it is)."""
    if not grads or _number(limit):
        return limit
    return to_device(limit, device_of(grads[0]))


def _parameter_list(parameters: Any, owner: str) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    out = list(parameters)
    for i, p in enumerate(out):
        if not isinstance(p, Tensor):
            raise ArgumentTypeError(f"{owner}: item {i} is a {type(p).__name__}, expected a Tensor")
    return out


def parameters_to_vector(parameters: Tensor | Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (differentiable, as in PyTorch).

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils import parameters_to_vector
        >>> parameters_to_vector([ds.ones(2, 2), ds.zeros(1)])
        tensor([1., 1., 1., 1., 0.])
    """
    params = _parameter_list(parameters, "parameters_to_vector")
    if not params:
        raise ArgumentError("parameters_to_vector: expected at least one parameter, got none")
    return ops.cat([ops.reshape(p, (-1,)) for p in params], 0)


def vector_to_parameters(vec: Tensor, parameters: Tensor | Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into the parameters' values, in place.

    Example:
        >>> import downslope as ds
        >>> from downslope.nn.utils import vector_to_parameters
        >>> a, b = ds.zeros(2), ds.zeros(1)
        >>> vector_to_parameters(ds.tensor([1.0, 2.0, 3.0]), [a, b]); a, b
        (tensor([1., 2.]), tensor([3.]))
    """
    if not isinstance(vec, Tensor):
        raise ArgumentTypeError(f"vector_to_parameters: expected vec to be a Tensor, got {type(vec).__name__}")
    params = _parameter_list(parameters, "vector_to_parameters")
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != total:
        raise ShapeError(
            f"vector_to_parameters: expected a 1-D vector of {total} values (the parameters' total size), "
            f"got shape {tuple(vec.shape)}"
        )
    offset = 0
    for p in params:
        n = p.numel()
        # Written into the existing storage, so an optimizer's flat buffer that views it sees the change.
        p.array[...] = to_device(vec.array[offset : offset + n].reshape(p.shape), device_of(p.array))
        offset += n


# ---------------------------------------------------------------------- weight normalization
def _copy(a: Any) -> Tensor:
    """A tensor holding a copy of ``a`` on its device (a NumPy scalar becomes a 0-d array)."""
    return wrap_array(namespace_of(a).array(a))


# the same norm as the newer parametrization's: -1 (like None) is the whole tensor, and a 1-D
# parameter with dim 0 gets one g per element
_norm_except_dim = parametrizations._norm_except_dim


def weight_norm(module: Any, name: str = "weight", dim: int | None = 0) -> Any:
    """Reparameterize ``module.<name>`` as ``g * v / ||v||`` (Salimans and Kingma, 2016): the
    parameter is replaced by ``<name>_g`` (the norms) and ``<name>_v`` (the direction), and the
    weight is recomputed from them before every forward. PyTorch's older API, still common.

    Example:
        >>> from downslope import nn
        >>> layer = nn.utils.weight_norm(nn.Linear(3, 2))
        >>> [n for n, _ in layer.named_parameters()]
        ['bias', 'weight_g', 'weight_v']
    """
    from ..module import Parameter

    weight = module._parameters.get(name)
    if weight is None:
        raise ArgumentError(f"weight_norm: {type(module).__name__} has no parameter {name!r}")
    if name in getattr(module, "_weight_norm", {}):
        raise ArgumentError(f"weight_norm: {name!r} of {type(module).__name__} is already weight-normalized")
    parametrizations._check_norm_dim(dim, weight.ndim, "weight_norm")
    delattr(module, name)
    g = Parameter(_copy(_norm_except_dim(weight.detach(), dim).array))
    v = Parameter(_copy(weight.array))
    module.register_parameter(name + "_g", g)
    module.register_parameter(name + "_v", v)

    def recompute(mod: Any, args: Any) -> None:
        object.__setattr__(mod, name, weight_norm_op(mod._parameters[name + "_g"], mod._parameters[name + "_v"], dim))

    recompute(module, ())
    handle = module.register_forward_pre_hook(recompute)
    hooks = module.__dict__.setdefault("_weight_norm", {})
    hooks[name] = (handle, dim)
    return module


def remove_weight_norm(module: Any, name: str = "weight") -> Any:
    """Undo :func:`weight_norm`: ``<name>`` becomes an ordinary parameter with the current value."""
    from ..module import Parameter

    hooks = module.__dict__.get("_weight_norm", {})
    if name not in hooks:
        raise ArgumentError(f"remove_weight_norm: {name!r} of {type(module).__name__} is not weight-normalized")
    handle, dim = hooks.pop(name)
    handle.remove()
    g, v = module._parameters[name + "_g"], module._parameters[name + "_v"]
    value = weight_norm_op(g.detach(), v.detach(), dim).array.copy()
    delattr(module, name + "_g")
    delattr(module, name + "_v")
    module.__dict__.pop(name, None)
    module.register_parameter(name, Parameter(_copy(value)))
    return module


# ---------------------------------------------------------------------- spectral normalization
def _normalize(a: np.ndarray, eps: float) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a), eps)  # on the array's device: no host round-trip


def spectral_norm(
    module: Any, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12, dim: int | None = None
) -> Any:
    """Divide ``module.<name>`` by its largest singular value (Miyato et al., 2018), estimated by
    ``n_power_iterations`` steps of power iteration per training forward (PyTorch's older API):
    the parameter becomes ``<name>_orig`` and the buffers ``<name>_u``, ``<name>_v`` hold the
    singular-vector estimates (random at first; ``ds.manual_seed`` fixes them).

    Example:
        >>> from downslope import nn
        >>> layer = nn.utils.spectral_norm(nn.Linear(3, 2))
        >>> [n for n, _ in layer.named_parameters()], [n for n, _ in layer.named_buffers()]
        (['bias', 'weight_orig'], ['weight_u', 'weight_v'])
    """
    from ... import backend
    from ..module import Parameter

    weight = module._parameters.get(name)
    if weight is None:
        raise ArgumentError(f"spectral_norm: {type(module).__name__} has no parameter {name!r}")
    if n_power_iterations <= 0:
        raise ArgumentError(f"spectral_norm: expected n_power_iterations > 0, got {n_power_iterations}")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    order = (dim, *[d for d in range(weight.ndim) if d != dim])
    height = weight.shape[dim]
    width = weight.numel() // height
    rng = backend.rng()
    # Drawn by the host generator (the same start on every device), then placed on the weight's device.
    u = _normalize(array_like(rng.standard_normal(height).astype(weight.dtype), weight.array), eps)
    v = _normalize(array_like(rng.standard_normal(width).astype(weight.dtype), weight.array), eps)
    delattr(module, name)
    module.register_parameter(name + "_orig", Parameter(_copy(weight.array)))
    module.register_buffer(name + "_u", wrap_array(u))
    module.register_buffer(name + "_v", wrap_array(v))

    def compute(mod: Any, power_iteration: bool) -> Tensor:
        w = mod._parameters[name + "_orig"]
        u_buf, v_buf = mod._buffers[name + "_u"], mod._buffers[name + "_v"]
        if power_iteration:  # outside the graph, updating the buffers in place
            matrix = w.array.transpose(order).reshape(height, -1)
            for _ in range(n_power_iterations):
                v_buf.array[...] = _normalize(matrix.T @ u_buf.array, eps)
                u_buf.array[...] = _normalize(matrix @ v_buf.array, eps)
        w_mat = ops.reshape(ops.permute(w, order), (height, -1))
        sigma = ops.sum(ops.matmul(w_mat, wrap_array(v_buf.array.copy())) * wrap_array(u_buf.array.copy()))
        return w / sigma

    def recompute(mod: Any, args: Any) -> None:
        object.__setattr__(mod, name, compute(mod, mod.training))

    recompute(module, ())
    handle = module.register_forward_pre_hook(recompute)
    # torch's state format version of spectral_norm, saved in state_dict()._metadata under
    # "spectral_norm" so that a load can tell an old checkpoint (version None: it stored the normalized
    # <name> and no <name>_v) from a current one
    version_key = name + ".version"

    def save_version(mod: Any, state_dict: Any, prefix: str, local_metadata: dict[str, Any]) -> None:
        local_metadata.setdefault("spectral_norm", {})[version_key] = _SPECTRAL_NORM_VERSION

    def convert_old(
        state_dict: Any, prefix: str, local_metadata: Any, strict: bool, missing: list[str], unexpected: list[str],
        error_msgs: list[str],
    ) -> None:  # fmt: skip
        version = local_metadata.get("spectral_norm", {}).get(version_key)
        if version is not None and version >= 1:
            return
        key = prefix + name
        if version is None and key not in state_dict and all(key + s in state_dict for s in ("_orig", "_u", "_v")):
            return  # a current checkpoint made without metadata (by hand): loaded as it is, as torch does
        absent = [key + s for s in ("_orig", "", "_u") if key + s not in state_dict]
        if absent:
            if strict:
                missing.extend(absent)
            return
        state_dict[key + "_v"] = wrap_array(
            _solve_v(state_dict[key + "_orig"], state_dict.pop(key), state_dict[key + "_u"], order, height)
        )

    module.__dict__.setdefault("_spectral_norm", {})[name] = (
        handle,
        module._register_state_dict_hook(save_version),
        module._register_load_state_dict_pre_hook(convert_old),
    )
    # read by remove_spectral_norm, which must see the current <name>_orig (a step or a load may have
    # changed it since the last forward)
    module.__dict__.setdefault("_spectral_norm_compute", {})[name] = compute
    return module


_SPECTRAL_NORM_VERSION = 1


def _solve_v(weight_orig: Any, weight: Any, u: Any, order: tuple[int, ...], height: int) -> Any:
    """The right singular-vector estimate ``v`` an old spectral_norm checkpoint did not store, from what
    it did (torch's conversion): with ``sigma = mean(weight_orig / weight)``, the ``v`` that solves
    ``weight_orig @ v = u`` in the least-squares sense, scaled so that ``u @ weight_orig @ v = sigma``."""
    # a Tensor stays on its device; a torch tensor or a list is read on the host (a load, not a step)
    arrays = [x.array if isinstance(x, Tensor) else np.asarray(x) for x in (weight_orig, weight, u)]
    w_orig, w, u_arr = arrays
    sigma = (w_orig / w).mean()
    matrix = w_orig.transpose(order).reshape(height, -1)
    v = np.linalg.pinv(matrix.T @ matrix) @ (matrix.T @ u_arr)
    return (v * (sigma / (u_arr @ (matrix @ v)))).astype(w_orig.dtype)


def remove_spectral_norm(module: Any, name: str = "weight") -> Any:
    """Undo :func:`spectral_norm`: ``<name>`` becomes an ordinary parameter holding the normalized weight."""
    from ..module import Parameter

    hooks = module.__dict__.get("_spectral_norm", {})
    if name not in hooks:
        raise ArgumentError(f"remove_spectral_norm: {name!r} of {type(module).__name__} is not spectrally normalized")
    for handle in hooks.pop(name):  # the forward pre-hook and the state dict hooks
        handle.remove()
    compute = module.__dict__.get("_spectral_norm_compute", {}).pop(name, None)
    stale = module.__dict__.pop(name)
    # as torch: weight_orig / (u . W v) from the current weight_orig, u and v, with no power iteration
    with no_grad():
        value = (stale if compute is None else compute(module, False)).array.copy()
    delattr(module, name + "_orig")
    delattr(module, name + "_u")
    delattr(module, name + "_v")
    module.register_parameter(name, Parameter(_copy(value)))
    return module


# PyTorch's module paths torch.nn.utils.clip_grad, .convert_parameters and .fusion, imported last: they
# re-export the functions above (and .memory_format)
from . import clip_grad as clip_grad  # noqa: E402
from . import convert_parameters as convert_parameters  # noqa: E402
from . import fusion as fusion  # noqa: E402
from . import memory_format as memory_format  # noqa: E402
from .memory_format import (  # noqa: E402
    convert_conv2d_weight_memory_format as convert_conv2d_weight_memory_format,
)
from .memory_format import (  # noqa: E402
    convert_conv3d_weight_memory_format as convert_conv3d_weight_memory_format,
)
