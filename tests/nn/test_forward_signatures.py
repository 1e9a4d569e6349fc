"""Every built-in module's ``forward`` and every function of ``nn.functional`` has torch's parameters:
the same names, in the same order, of the same kinds, with the same defaults. Ported code calls them by
keyword (``m(input=x)``, ``functional_call(m, params, (), {"input": x})``, ``F.cross_entropy(x, y, w,
None, 0)``) and hooks registered ``with_kwargs`` see the keywords, so a renamed parameter is a
TypeError (or a positional argument bound to the wrong parameter) in code that runs under torch."""

from __future__ import annotations

import inspect
import re
import sys
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn as nn
import downslope.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

_EMPTY = inspect.Parameter.empty

# Modules whose forward differs from torch's on purpose, each with its reason.
_MODULE_DIFFERENCES = {
    # torch's RNNBase and RNNCellBase define no forward (Module's ``forward(*input)``, which raises) and
    # each subclass defines ``forward(input, hx=None)``; downslope's bases carry that one shared forward.
    "RNNBase": "the subclasses' forward(input, hx=None), defined once on the base",
    "RNNCellBase": "the subclasses' forward(input, hx=None), defined once on the base",
}

# downslope-only keyword-only parameters allowed after torch's, as {name: {parameter, ...}}: none yet.
# A deliberate extra goes here, with a comment saying why torch's parameters do not cover it.
_EXTRA_KEYWORDS: dict[str, set[str]] = {}

# torch.nn.functional's C functions have no Python signature: their parameters come from the first line
# of the docstring, where it names a parameter that torch's argument parser does not take by that name:
# one_hot's docstring says ``tensor``, but only ``F.one_hot(input=...)`` works.
_DOC_RENAMES = {"one_hot": {"tensor": "input"}}
# C functions whose docstring has no signature line: theirs as torch's schema gives it (checked by calling
# them with these keywords)
_SCHEMAS = {"conv_tbc": "conv_tbc(input, weight, bias, pad=0) -> Tensor"}


def _params(fn: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def _without_extras(name: str, ours: list[tuple[str, Any, Any]]) -> list[tuple[str, Any, Any]]:
    extra = _EXTRA_KEYWORDS.get(name, set())
    return [p for p in ours if not (p[0] in extra and p[1] is inspect.Parameter.KEYWORD_ONLY)]


def _describe(params: list[tuple[str, Any, Any]]) -> str:
    parts = []
    for n, kind, default in params:
        prefix = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(kind, "")
        keyword_only = "kw:" if kind is inspect.Parameter.KEYWORD_ONLY else ""
        parts.append(keyword_only + prefix + n + ("" if default is _EMPTY else f"={default!r}"))
    return "(" + ", ".join(parts) + ")"


def _shared_modules() -> list[str]:
    names = []
    for name in sorted(dir(torch.nn)):
        theirs = getattr(torch.nn, name)
        if (
            isinstance(theirs, type)
            and issubclass(theirs, torch.nn.Module)
            and isinstance(getattr(nn, name, None), type)
        ):
            names.append(name)
    return names


def test_most_of_torchs_modules_are_compared() -> None:
    assert len(_shared_modules()) > 150


@pytest.mark.parametrize("name", _shared_modules())
def test_module_forward_has_torchs_signature(name: str) -> None:
    if name in _MODULE_DIFFERENCES:
        pytest.skip(_MODULE_DIFFERENCES[name])
    theirs = _params(getattr(torch.nn, name).forward)
    ours = _without_extras(name, _params(getattr(nn, name).forward))
    assert ours == theirs, f"{name}.forward: downslope {_describe(ours)}, torch {_describe(theirs)}"


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    direct: list[type] = type.__subclasses__(cls)
    for sub in direct:
        found += [sub, *_subclasses(sub)]
    return found


def test_downslopes_own_subclasses_keep_torchs_forward_signature() -> None:
    # e.g. MultiheadAttention's out_proj (NonDynamicallyQuantizableLinear), a Linear in torch too:
    # its forward is what ported code calls
    shared = set(_shared_modules())
    checked, wrong = 0, []
    for sub in _subclasses(nn.Module):
        if not sub.__module__.startswith("downslope.") or getattr(nn, sub.__name__, None) is sub:
            continue  # someone else's subclass, or a public class (checked above)
        named = next((c for c in sub.__mro__ if c.__name__ in shared and getattr(nn, c.__name__) is c), None)
        if named is None or named.__name__ in _MODULE_DIFFERENCES or named is nn.Module:
            continue
        checked += 1
        # a class torch has at the same place (ParametrizationList) is compared with that one
        twin = getattr(sys.modules.get(sub.__module__.replace("downslope", "torch", 1)), sub.__qualname__, None)
        ours = _params(getattr(sub, "forward"))  # noqa: B009  (a Module subclass, typed as type)
        theirs = _params((twin or getattr(torch.nn, named.__name__)).forward)
        if ours != theirs:
            wrong.append(f"{sub.__qualname__} ({named.__name__}): {_describe(ours)}, torch {_describe(theirs)}")
    assert checked >= 2  # the scan finds them (ParametrizationList and MultiheadAttention's out_proj at least)
    assert not wrong, wrong


def test_the_module_differences_are_still_differences() -> None:
    for name in _MODULE_DIFFERENCES:
        assert _params(getattr(nn, name).forward) != _params(getattr(torch.nn, name).forward), name


def _doc_params(name: str, fn: Any) -> list[tuple[str, Any]] | None:
    """(name, default) from the signature on the docstring's first lines, ``conv2d(input, weight,
    bias=None, ...) -> Tensor``; None where the docstring has none."""
    match = re.search(rf"^\s*{re.escape(name)}\((.*?)\)\s*->", _SCHEMAS.get(name, fn.__doc__ or ""), re.S | re.M)
    if match is None:
        return None
    out = []
    for part in match.group(1).replace("\n", " ").split(","):
        part = part.strip()
        if not part or part in ("*", "/"):
            continue
        key, _, default = (s.strip() for s in part.partition("="))
        key = _DOC_RENAMES.get(name, {}).get(key, key)
        out.append((key, eval(default, {"__builtins__": {}}) if default else _EMPTY))  # numbers, strings, None
    return out


def _shared_functions() -> list[str]:
    return sorted(
        n
        for n in dir(TF)
        if not n.startswith("_")
        and callable(getattr(TF, n))
        and not isinstance(getattr(TF, n), type)
        and callable(getattr(F, n, None))
        and not isinstance(getattr(F, n), type)
    )


def test_most_of_torchs_functions_are_compared() -> None:
    assert len(_shared_functions()) > 100


@pytest.mark.parametrize("name", _shared_functions())
def test_functional_has_torchs_signature(name: str) -> None:
    theirs_fn = getattr(TF, name)
    ours = _without_extras(f"F.{name}", _params(getattr(F, name)))
    try:
        theirs = _params(theirs_fn)
    except (TypeError, ValueError):  # a C function: names, order and defaults from its docstring
        documented = _doc_params(name, theirs_fn)
        assert documented is not None, f"no signature for torch's {name}"
        got = [(n, d) for n, kind, d in ours if kind not in (inspect.Parameter.VAR_KEYWORD,)]
        assert got == documented, f"F.{name}: downslope {_describe(ours)}, torch {documented}"
        return
    if [kind for _, kind, _ in theirs] == [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]:
        # max_pool2d and the like dispatch on return_indices; the signature they document is the
        # one of the function they dispatch to, F._max_pool2d
        theirs = _params(getattr(TF, "_" + name))
    assert ours == theirs, f"F.{name}: downslope {_describe(ours)}, torch {_describe(theirs)}"


# ---------------------------------------------------------------------- calls by torch's keywords
def _a(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _modules_and_inputs() -> list[tuple[str, Any, Any, dict[str, np.ndarray]]]:
    return [
        ("Linear", nn.Linear(3, 2), torch.nn.Linear(3, 2), {"input": _a(4, 3)}),
        ("Conv2d", nn.Conv2d(2, 3, 3), torch.nn.Conv2d(2, 3, 3), {"input": _a(1, 2, 5, 5)}),
        ("ReLU", nn.ReLU(), torch.nn.ReLU(), {"input": _a(2, 3)}),
        ("LayerNorm", nn.LayerNorm(3), torch.nn.LayerNorm(3), {"input": _a(2, 3)}),
        ("Flatten", nn.Flatten(), torch.nn.Flatten(), {"input": _a(2, 3, 4)}),
        ("MaxPool2d", nn.MaxPool2d(2), torch.nn.MaxPool2d(2), {"input": _a(1, 1, 4, 4)}),
        ("Bilinear", nn.Bilinear(2, 3, 4), torch.nn.Bilinear(2, 3, 4), {"input1": _a(5, 2), "input2": _a(5, 3)}),
        ("CosineSimilarity", nn.CosineSimilarity(), torch.nn.CosineSimilarity(), {"x1": _a(2, 3), "x2": _a(2, 3, seed=1)}),
        ("MSELoss", nn.MSELoss(), torch.nn.MSELoss(), {"input": _a(2, 3), "target": _a(2, 3, seed=1)}),
    ]  # fmt: skip


@pytest.mark.parametrize("case", _modules_and_inputs(), ids=lambda c: c[0])
def test_modules_take_torchs_keywords(case: Any) -> None:
    name, ours, theirs, kwargs = case
    ours.load_state_dict({k: ds.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    got = ours(**{k: ds.tensor(v) for k, v in kwargs.items()})
    want = theirs(**{k: torch.tensor(v) for k, v in kwargs.items()})
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_functional_call_with_the_input_keyword_as_torch() -> None:
    lin, ref = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    x = _a(4, 3)
    params = {k: ds.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()}
    got = ds.func.functional_call(lin, params, (), {"input": ds.tensor(x)})
    want = torch.func.functional_call(ref, dict(ref.state_dict()), (), {"input": torch.tensor(x)})
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)  # torch's random init


def test_with_kwargs_hooks_see_torchs_keyword_names() -> None:
    seen = []
    for lib, make in ((nn, lambda: ds.zeros(2, 3)), (torch.nn, lambda: torch.zeros(2, 3))):
        m = lib.Linear(3, 1)
        m.register_forward_pre_hook(lambda mod, args, kwargs: seen.append(sorted(kwargs)), with_kwargs=True)
        m(input=make())
    assert seen == [["input"], ["input"]]


def test_embedding_and_recurrent_layers_by_keyword() -> None:
    idx = np.array([[0, 2], [1, 1]])
    emb = nn.Embedding(3, 2)
    np.testing.assert_array_equal(emb(input=ds.tensor(idx)).detach().numpy(), emb(ds.tensor(idx)).detach().numpy())
    lstm = nn.LSTM(3, 2)
    x = ds.tensor(_a(4, 1, 3))
    out, _ = lstm(input=x, hx=None)
    np.testing.assert_array_equal(out.detach().numpy(), lstm(x)[0].detach().numpy())
    up = nn.ConvTranspose2d(1, 1, 3, stride=2)
    assert up(input=ds.zeros(1, 1, 3, 3), output_size=[8, 8]).shape == (1, 1, 8, 8)


def test_adaptive_log_softmax_takes_torchs_trailing_underscore_names() -> None:
    asm = nn.AdaptiveLogSoftmaxWithLoss(4, 6, [2])
    out = asm(input_=ds.tensor(_a(3, 4)), target_=ds.tensor(np.array([0, 3, 5])))
    assert out.output.shape == (3,)


def test_module_forward_by_default_raises_as_torch() -> None:
    with pytest.raises(NotImplementedError):
        nn.Module()(ds.zeros(1))
    with pytest.raises(NotImplementedError):
        nn.ModuleList()(ds.zeros(1))


# ---------------------------------------------------------------------- functional: positions and new params
def test_losses_bind_legacy_flags_at_torchs_positions() -> None:
    x, labels = _a(4, 3), np.array([0, 2, 1, 2])
    # (input, target, weight, size_average, ignore_index, reduce, reduction)
    got = F.cross_entropy(ds.tensor(x), ds.tensor(labels), None, None, 1, None, "sum").item()
    want = TF.cross_entropy(torch.tensor(x), torch.tensor(labels), None, None, 1, None, "sum").item()
    assert got == pytest.approx(want, rel=1e-6)
    with pytest.warns(UserWarning):  # torch's deprecation warning for the legacy flags
        want = TF.nll_loss(torch.tensor(x), torch.tensor(labels), None, False).item()
    assert F.nll_loss(ds.tensor(x), ds.tensor(labels), None, False).item() == pytest.approx(want, rel=1e-6)
    y = _a(4, 3, seed=1)
    with pytest.warns(UserWarning):
        want = TF.mse_loss(torch.tensor(x), torch.tensor(y), None, False).numpy()
    np.testing.assert_allclose(F.mse_loss(ds.tensor(x), ds.tensor(y), None, False).numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses_take_torchs_weight(name: str, reduction: str) -> None:
    rng = np.random.default_rng(3)
    a, b, w = rng.standard_normal((3, 4, 5))
    w = np.abs(w)
    xa, wa = (ds.tensor(v, dtype=ds.float64, requires_grad=True) for v in (a, w))
    xt, wt = torch.tensor(a, requires_grad=True), torch.tensor(w, requires_grad=True)
    got = getattr(F, name)(xa, ds.tensor(b, dtype=ds.float64), reduction=reduction, weight=wa)
    want = getattr(TF, name)(xt, torch.tensor(b), reduction=reduction, weight=wt)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12)
    got.sum().backward()
    want.sum().backward()
    assert xa.grad is not None and wa.grad is not None
    np.testing.assert_allclose(xa.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(wa.grad.numpy(), wt.grad.numpy(), rtol=1e-12)


def test_regression_loss_weight_of_another_shape_is_refused_as_torch() -> None:
    with pytest.raises(ValueError, match="Weights and input"):
        TF.mse_loss(torch.zeros(2, 3), torch.zeros(2, 3), weight=torch.ones(3))
    with pytest.raises(ds.errors.ShapeError, match=r"mse_loss: expected a weight of the input's shape"):
        F.mse_loss(ds.zeros(2, 3), ds.zeros(2, 3), weight=ds.ones(3))


def test_normalize_writes_into_out_as_torch() -> None:
    a = _a(2, 3)
    out = ds.empty(2, 3)
    assert F.normalize(ds.tensor(a), out=out) is out
    np.testing.assert_allclose(out.numpy(), TF.normalize(torch.tensor(a)).numpy(), rtol=1e-6)


def test_max_pool_with_indices_returns_indices_whatever_return_indices_says() -> None:
    x = _a(1, 1, 4, 4)
    for fn in ("max_pool2d_with_indices", "adaptive_max_pool2d_with_indices"):
        ours = getattr(F, fn)(ds.tensor(x), 2, return_indices=False)
        theirs = getattr(TF, fn)(torch.tensor(x), 2, return_indices=False)
        assert isinstance(theirs, tuple) and isinstance(ours, tuple)
        np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())


def test_functions_take_torchs_input_keyword() -> None:
    a = _a(2, 3)
    for fn in ("gelu", "softplus", "logsigmoid", "softshrink", "hardshrink", "pdist"):
        got = getattr(F, fn)(input=ds.tensor(a))
        np.testing.assert_allclose(got.numpy(), getattr(TF, fn)(input=torch.tensor(a)).numpy(), rtol=1e-5, atol=1e-6)
    for fn in ("relu_", "elu_", "selu_"):
        got = getattr(F, fn)(input=ds.tensor(a))
        np.testing.assert_allclose(got.numpy(), getattr(TF, fn)(input=torch.tensor(a)).numpy(), rtol=1e-6)
    got = F.one_hot(input=ds.tensor(np.array([0, 2])), num_classes=3)
    np.testing.assert_array_equal(got.numpy(), TF.one_hot(input=torch.tensor([0, 2]), num_classes=3).numpy())
