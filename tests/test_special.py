"""The ``ds.special`` namespace (torch.special): every name is there and agrees with torch."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds

torch = pytest.importorskip("torch")

UNARY = [
    "expit", "erf", "erfc", "erfcx", "erfinv", "gammaln", "digamma", "psi", "i0", "i0e", "i1", "i1e", "ndtr",
    "ndtri", "log_ndtr", "entr", "sinc", "expm1", "exp2", "log1p", "round", "logit",
]  # fmt: skip


@pytest.mark.parametrize("name", UNARY)
def test_unary_special_functions_match_torch(check_op, name):
    values = (
        np.array([0.05, 0.3, 0.5, 0.9]) if name in ("erfinv", "ndtri", "logit") else np.array([-2.5, 0.3, 1.7, 4.0])
    )
    # digamma's gradient is torch's trigamma, accurate to only ~5e-10 (tests/ops/test_special.py compares it)
    check_op(
        getattr(ds.special, name), getattr(torch.special, name), [values], grad=name not in ("round", "digamma", "psi")
    )


def test_special_functions_with_more_arguments_match_torch(check_op):
    a, b = np.array([0.0, 0.5, 2.0]), np.array([1.0, 0.25, 3.0])
    check_op(ds.special.xlog1py, torch.special.xlog1py, [a, b])
    check_op(ds.special.xlogy, torch.special.xlogy, [a, b])
    check_op(ds.xlogy, torch.xlogy, [a, b - 1])
    check_op(
        ds.special.xlog1py,
        torch.special.xlog1py,
        [np.array([0.0, 1.0, 0.0]), np.array([-1.0, 0.5, float("nan")])],
        grad=False,
    )
    check_op(lambda x: ds.special.polygamma(2, x), lambda x: torch.special.polygamma(2, x), [b])
    check_op(lambda x: ds.special.multigammaln(x, 2), lambda x: torch.special.multigammaln(x, 2), [b + 1])
    check_op(
        lambda x: ds.special.gammainc(ds.tensor(b, dtype=ds.float64), x),
        lambda x: torch.special.gammainc(torch.tensor(b), x),
        [b],
    )
    check_op(
        lambda x: ds.special.gammaincc(ds.tensor(b, dtype=ds.float64), x),
        lambda x: torch.special.gammaincc(torch.tensor(b), x),
        [b],
    )
    m = np.array([[0.5, 1.0, -2.0], [3.0, 0.0, 1.0]])
    check_op(lambda x: ds.special.softmax(x, 1), lambda x: torch.special.softmax(x, 1), [m])
    check_op(lambda x: ds.special.log_softmax(x, 0), lambda x: torch.special.log_softmax(x, 0), [m])
    check_op(lambda x: ds.special.logsumexp(x, 1), lambda x: torch.special.logsumexp(x, 1), [m])
    check_op(
        lambda x: ds.special.logit(x, eps=0.1), lambda x: torch.special.logit(x, eps=0.1), [np.array([0.0, 0.3, 1.0])]
    )
    check_op(
        lambda x: ds.special.round(x, decimals=1), lambda x: torch.special.round(x, decimals=1), [m * 1.234], grad=False
    )


def test_special_names_are_the_top_level_ops():
    """The aliases are the top level's objects, out= wrapper included (one wrapper per function)."""
    assert ds.special.expit is ds.sigmoid and ds.special.gammaln is ds.lgamma and ds.special.psi is ds.digamma
    assert ds.special.i0 is ds.i0 and ds.special.gammainc is ds.igamma and ds.special.erf is ds.erf
    assert ds.special.gammaincc is ds.igammac and ds.special.multigammaln is ds.mvlgamma
    assert ds.special.round is ds.round and ds.special.xlogy is ds.xlogy
    for name in ds.special.__all__:
        assert callable(getattr(ds.special, name)), name


@pytest.mark.parametrize("name", [n for n in UNARY if n != "gammaln"])
def test_unary_special_functions_take_out_as_torch(name):
    """torch.special's functions take out= (all but softmax and log_softmax): cast into a float64 out
    (round, as torch's, wants its own dtype), written in place and returned; gammaln is ds.lgamma, left
    without out= (see downslope.special)."""
    values = np.array([0.05, 0.3, 0.5, 0.9], np.float32)
    results = []
    for lib in (ds, torch):
        dtype = "float32" if name == "round" else "float64"
        out = lib.zeros(4, dtype=getattr(lib, dtype))
        view = out[1:]
        got = getattr(lib.special, name)(lib.tensor(values), out=out)
        assert got is out and str(out.dtype).endswith(dtype)
        np.testing.assert_array_equal(view.numpy(), out.numpy()[1:])
        results.append(out.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6, atol=1e-7)
