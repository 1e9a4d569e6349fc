"""torch's deprecated positional beta/alpha overloads of the fused products (``dist.addmm_(1, -2, x, y)``
in center-loss and triplet-loss code, ``torch.addmm(beta, M, alpha, a, b)``), against PyTorch: the
values, and torch's deprecation warning word for word."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

_SHAPES = {
    "addmm": ((2, 2), (2, 3), (3, 2)),
    "addmv": ((2,), (2, 3), (3,)),
    "addr": ((2, 2), (2,), (2,)),
    "baddbmm": ((4, 2, 2), (4, 2, 3), (4, 3, 2)),
    "addbmm": ((2, 2), (4, 2, 3), (4, 3, 2)),
}
_FORMS = {
    "function (beta, input, alpha, a, b)": lambda lib, n, x, a, b: getattr(lib, n)(2, x, -3, a, b),
    "function (beta, input, a, b)": lambda lib, n, x, a, b: getattr(lib, n)(2, x, a, b),
    "method (beta, alpha, a, b)": lambda lib, n, x, a, b: getattr(x, n)(2, -3, a, b),
    "method (beta, a, b)": lambda lib, n, x, a, b: getattr(x, n)(2, a, b),
    "in place (beta, alpha, a, b)": lambda lib, n, x, a, b: getattr(x, n + "_")(2, -3, a, b),
    "in place (beta, a, b)": lambda lib, n, x, a, b: getattr(x, n + "_")(2, a, b),
}


def _inputs(lib, name):
    rng = np.random.default_rng(0)
    return [lib.tensor(rng.standard_normal(s).astype(np.float32)) for s in _SHAPES[name]]


def _run(lib, name, form):
    x, a, b = _inputs(lib, name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _FORMS[form](lib, name, x, a, b)
    messages = [re.sub(r" \(Triggered internally at .*\)$", "", str(w.message), flags=re.S) for w in caught]
    return out, x, messages


@pytest.fixture(autouse=True)
def _torch_warns_every_time():
    torch._C._set_warnAlways(True)  # torch warns these once per process otherwise
    yield
    torch._C._set_warnAlways(False)


@pytest.mark.parametrize("form", list(_FORMS))
@pytest.mark.parametrize("name", list(_SHAPES))
def test_the_deprecated_overload_computes_and_warns_as_torch(name, form):
    ours, ours_x, our_warnings = _run(ds, name, form)
    ref, ref_x, torch_warnings = _run(torch, name, form)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours_x.numpy(), ref_x.numpy(), rtol=1e-5, atol=1e-6)  # in place: written
    assert our_warnings == torch_warnings
    assert len(torch_warnings) == 1
    if "in place" in form:
        assert ours is ours_x


@pytest.mark.parametrize("form", ["(beta, input, alpha, mat, vec)", "(beta, input, mat, vec)"])
def test_the_deprecated_overload_of_the_top_level_addmv_(form):
    def call(lib):
        x, a, b = _inputs(lib, "addmv")
        fn = (lambda: lib.addmv_(2, x, -3, a, b)) if "alpha" in form else (lambda: lib.addmv_(2, x, a, b))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = fn()
        assert out is x
        return out.numpy(), [
            re.sub(r" \(Triggered internally at .*\)$", "", str(w.message), flags=re.S) for w in caught
        ]

    (ours, our_warnings), (ref, torch_warnings) = call(ds), call(torch)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
    assert our_warnings == torch_warnings and len(our_warnings) == 1


def test_center_loss_distance_matrix():
    # KaiyangZhou/pytorch-center-loss: distmat.addmm_(1, -2, x, centers.t())
    rng = np.random.default_rng(1)
    x, centers = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    results = []
    for lib in (ds, torch):
        xt, ct = lib.tensor(x), lib.tensor(centers)
        distmat = (xt**2).sum(1, keepdim=True).expand(5, 4) + (ct**2).sum(1, keepdim=True).expand(4, 5).t()
        distmat = distmat.clone()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            distmat.addmm_(1, -2, xt, ct.t())
        results.append(distmat.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-5)


def test_the_deprecated_overload_keeps_gradients():
    x = ds.ones(2, 2, requires_grad=True)
    a = ds.ones(2, 3, requires_grad=True)
    b = ds.ones(3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.addmm(2, x, -3, a, b).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 2), 2.0))
    np.testing.assert_allclose(a.grad.numpy(), np.full((2, 3), -6.0))


def test_beta_both_first_and_as_a_keyword_is_refused():
    x, a, b = _inputs(ds, "addmm")
    with pytest.raises(ds.errors.ArgumentError, match="beta"):
        x.addmm_(2, a, b, beta=3)


def test_a_mixed_up_call_is_refused_with_the_signatures():
    x, a, b = _inputs(ds, "addmm")
    with pytest.raises(TypeError, match=r"addmm\(Tensor input, Tensor mat1, Tensor mat2"):
        ds.addmm(2, 3, a, b)
