"""NumPy's ``axis=``/``keepdims=`` spellings (downslope.ops.out), taken where PyTorch's parser takes them."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentTypeError
from downslope.ops.out import AXIS_FUNCTIONS, AXIS_METHODS
from downslope.torch_alias_names import TORCH_ALIAS_NAMES

torch = pytest.importorskip("torch")

A = np.arange(20, dtype=np.float32).reshape(5, 4)
IDX = np.zeros((5, 4), dtype=np.int64)

# (call, takes a module m and a tensor t); each must agree with torch
CALLS = {
    "cumsum": lambda m, t: t.cumsum(axis=0),
    "cumprod": lambda m, t: t.cumprod(axis=1),
    "prod": lambda m, t: t.prod(axis=0, keepdims=True),
    "all": lambda m, t: (t > 1).all(axis=0),
    "any keepdims": lambda m, t: (t > 1).any(axis=1, keepdims=True),
    "squeeze": lambda m, t: t[None].squeeze(axis=0),
    "unsqueeze": lambda m, t: m.unsqueeze(t, axis=1),
    "m.cumsum": lambda m, t: m.cumsum(t, axis=0),
    "m.cumsum dtype": lambda m, t: m.cumsum(t, axis=0, dtype=m.float64),
    "m.argmax": lambda m, t: m.argmax(t, axis=1),
    "argmax keepdims": lambda m, t: t.argmax(1, keepdims=True),
    "median": lambda m, t: t.median(axis=0).values,
    "m.median": lambda m, t: m.median(t, axis=0, keepdims=True).values,
    "nansum": lambda m, t: t.nansum(axis=0),
    "m.nansum": lambda m, t: m.nansum(t, axis=1),
    "count_nonzero": lambda m, t: t.count_nonzero(axis=0),
    "m.count_nonzero": lambda m, t: m.count_nonzero(t, axis=0),
    "logcumsumexp": lambda m, t: t.logcumsumexp(axis=1),
    "cummax": lambda m, t: t.cummax(axis=0).values,
    "softmax": lambda m, t: t.softmax(axis=1),
    "log_softmax": lambda m, t: t.log_softmax(axis=1),
    "sort": lambda m, t: t.sort(axis=0, descending=True).values,
    "argsort": lambda m, t: m.argsort(t, axis=0),
    "topk": lambda m, t: t.topk(2, axis=1).indices,
    "gather": lambda m, t: t.gather(axis=1, index=m.tensor(IDX)),
    "index_select": lambda m, t: t.index_select(axis=0, index=m.tensor([0, 2])),
    "narrow": lambda m, t: t.narrow(axis=0, start=1, length=2),
    "chunk": lambda m, t: t.chunk(2, axis=1)[1],
    "unbind": lambda m, t: m.unbind(t, axis=1)[0],
    "std keepdims": lambda m, t: t.std(axis=0, keepdims=True),
    "var_mean": lambda m, t: m.var_mean(t, axis=0)[0],
    "quantile": lambda m, t: t.quantile(0.5, axis=0, keepdims=True),
    "diff": lambda m, t: m.diff(t, axis=0),
    "repeat_interleave": lambda m, t: t.repeat_interleave(2, axis=0),
    "vector_norm": lambda m, t: m.linalg.vector_norm(t, axis=0, keepdims=True),
    "linalg.norm": lambda m, t: m.linalg.norm(t, axis=1),
    "cumsum_": lambda m, t: t.clone().cumsum_(axis=0),
    "m.cosine_similarity": lambda m, t: m.cosine_similarity(t, t * t, axis=0),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_numpy_axis_keywords_match_torch(name):
    ours, theirs = CALLS[name](ds, ds.tensor(A)), CALLS[name](torch, torch.tensor(A))
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "call",
    [
        lambda m, t: m.split(t, 2, axis=0),  # written in Python in torch: no NumPy spellings
        lambda m, t: t.norm(axis=0),
        lambda m, t: m.norm(t, axis=0),
        lambda m, t: m.nn.functional.softmax(t, axis=0),
    ],
)
def test_functions_written_in_python_in_torch_refuse_axis_as_torch_does(call):
    with pytest.raises(TypeError):
        call(torch, torch.tensor(A))
    with pytest.raises(TypeError):
        call(ds, ds.tensor(A))


def test_dim_and_axis_together_are_refused():
    with pytest.raises(ArgumentTypeError, match="multiple values for argument 'dim'"):
        ds.tensor(A).cumsum(dim=0, axis=0)
    with pytest.raises(ArgumentTypeError, match="multiple values for argument 'dim'"):
        ds.cumsum(ds.tensor(A), dim=0, axis=0)


def test_the_wrapped_methods_keep_their_names_docs_and_gradients():
    assert ds.Tensor.cumsum.__name__ == "cumsum"
    x = ds.tensor(A, requires_grad=True)
    x.cumsum(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.tile([4.0, 3.0, 2.0, 1.0], (5, 1)))


def _native(obj):
    return type(obj).__name__ in ("builtin_function_or_method", "method_descriptor")


def test_the_lists_name_only_functions_torch_implements_natively():
    for name in AXIS_FUNCTIONS:
        assert _native(getattr(torch, name)), name
    for name in AXIS_METHODS:
        assert _native(getattr(torch.Tensor, name)), name


def _own_params(fn):
    while hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params.values()) and getattr(fn, "__closure__", None):
        inner = [c.cell_contents for c in fn.__closure__ if callable(c.cell_contents)]
        if len(inner) == 1:
            return _own_params(inner[0])
    return params


# Methods left out on purpose: size() and stride() are on every hot path, and torch code spells them
# without keywords.
_NOT_WRAPPED = {"size", "stride"}


@pytest.mark.parametrize("where", ["top", "Tensor"])
def test_every_native_torch_function_with_a_dim_takes_axis_here(where):
    ours, theirs, listed = (ds, torch, AXIS_FUNCTIONS) if where == "top" else (ds.Tensor, torch.Tensor, AXIS_METHODS)
    missing = []
    # torch's top-level spellings of nn functions load on first use: listed by dir() only once used
    lazy = TORCH_ALIAS_NAMES if where == "top" else frozenset()
    for name in sorted(set(dir(ours)) | lazy):
        fn, tfn = getattr(ours, name), getattr(theirs, name, None)
        if name.startswith("_") or not callable(fn) or isinstance(fn, type) or not _native(tfn):
            continue
        params = _own_params(fn)
        if params and "dim" in params and "axis" not in params and name not in listed | _NOT_WRAPPED:
            missing.append(name)
    assert not missing
