"""torch's deprecated scalar-first overloads (``p.add_(-lr, g)``, ``v.addcmul_(1 - b2, g, g)``), still
accepted by torch with a UserWarning and called by optimizers copied from older published code."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ArgumentError, ArgumentTypeError

torch = pytest.importorskip("torch")

P = [1.0, -2.0, 0.5]
A = [1.0, 2.0, -3.0]
B = [0.5, 4.0, 2.0]

CASES = {
    "add_": (lambda L, p, a, b: p.add_(-0.1, a), "add_(Number alpha, Tensor other)"),
    "sub_": (lambda L, p, a, b: p.sub_(0.3, a), "sub_(Number alpha, Tensor other)"),
    "addcmul_": (lambda L, p, a, b: p.addcmul_(0.25, a, b), "addcmul_(Number value, Tensor tensor1, Tensor tensor2)"),
    "addcdiv_": (lambda L, p, a, b: p.addcdiv_(-0.5, a, b), "addcdiv_(Number value, Tensor tensor1, Tensor tensor2)"),
    "add": (lambda L, p, a, b: p.add(2, a), "add(Number alpha, Tensor other)"),
    "sub": (lambda L, p, a, b: p.sub(1.5, a), "sub(Number alpha, Tensor other)"),
    "addcmul": (lambda L, p, a, b: p.addcmul(3.0, a, b), "addcmul(Number value, Tensor tensor1, Tensor tensor2)"),
    "addcdiv": (lambda L, p, a, b: p.addcdiv(0.75, a, b), "addcdiv(Number value, Tensor tensor1, Tensor tensor2)"),
    "add_ 0-d tensor": (lambda L, p, a, b: p.add_(L.tensor(2.0), a), "add_(Number alpha, Tensor other)"),
}


def _run(L, case):
    fn = CASES[case][0]
    p, a, b = L.tensor(P), L.tensor(A), L.tensor(B)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(L, p, a, b)
    return p.tolist(), out.tolist(), [w for w in caught if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize("case", list(CASES))
def test_scalar_first_overload_matches_torch_and_warns(case):
    ours_p, ours_out, ours_warn = _run(ds, case)
    ref_p, ref_out, ref_warn = _run(torch, case)
    np.testing.assert_allclose(ours_out, ref_out, rtol=1e-6)
    np.testing.assert_allclose(ours_p, ref_p, rtol=1e-6)  # in place only for the underscore forms
    assert len(ours_warn) == 1
    ours_text = str(ours_warn[0].message)
    assert ours_text.startswith(f"This overload of {case.split()[0]} is deprecated:\n\t{CASES[case][1]}\n")
    if ref_warn:  # torch warns once per process (one TORCH_WARN_ONCE for every deprecated overload)
        # torch's text, less its "(Triggered internally at ...)" suffix
        assert str(ref_warn[0].message).startswith(ours_text)
    assert ours_warn[0].filename == __file__  # points at the caller's line


def test_scalar_first_optimizer_update_records_gradients_as_torch():
    # a RAdam-style update written with the old forms, under autograd: same values and gradients
    def update(L, w, g):
        m = L.zeros(3, dtype=L.float64).addcmul_(0.1, g, g)
        return w.clone().add_(-0.5, g).addcdiv_(-0.2, g, m + 1.0).sum()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        results = []
        for L in (ds, torch):
            w = L.tensor(P, dtype=L.float64, requires_grad=True)
            g = L.tensor(A, dtype=L.float64, requires_grad=True)
            loss = update(L, w, g)
            loss.backward()
            results.append((loss.item(), w.grad.tolist(), g.grad.tolist()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)
    np.testing.assert_allclose(results[0][2], results[1][2], rtol=1e-12)


def test_scalar_first_refuses_a_tensor_first_or_a_second_scalar():
    p, g = ds.ones(2), ds.tensor([1.0, 2.0])
    with pytest.raises(ArgumentTypeError, match=r"add_: the deprecated .* takes a number first, got Tensor of shape"):
        p.add_(g, g)
    with pytest.raises(ArgumentError, match=r"alpha given both first .* and as alpha=2"):
        p.add_(0.5, g, alpha=2)
    with pytest.raises(ArgumentError, match=r"value given both first .* and as value=3"):
        p.addcmul_(0.5, g, g, value=3)
    np.testing.assert_array_equal(p.numpy(), [1.0, 1.0])  # nothing written


TOP_LEVEL = {
    "add": (
        lambda L, p, a, b: L.add(p, -0.1, a),
        "add(Tensor input, Number alpha, Tensor other, *, Tensor out = None)",
    ),
    "sub": (lambda L, p, a, b: L.sub(p, 0.3, a), "sub(Tensor input, Number alpha, Tensor other, *, Tensor out = None)"),
    "addcmul": (
        lambda L, p, a, b: L.addcmul(p, 0.25, a, b),
        "addcmul(Tensor input, Number value, Tensor tensor1, Tensor tensor2, *, Tensor out = None)",
    ),
    "addcdiv": (
        lambda L, p, a, b: L.addcdiv(p, -0.5, a, b),
        "addcdiv(Tensor input, Number value, Tensor tensor1, Tensor tensor2, *, Tensor out = None)",
    ),
}


@pytest.mark.parametrize("case", list(TOP_LEVEL))
def test_top_level_scalar_first_overload_matches_torch_and_warns(case):
    # ds.add(p, -lr, g): the functional form of the same deprecated overload
    results = []
    for L in (ds, torch):
        p, a, b = L.tensor(P), L.tensor(A), L.tensor(B)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = TOP_LEVEL[case][0](L, p, a, b)
        results.append((out.tolist(), p.tolist(), [w for w in caught if issubclass(w.category, UserWarning)]))
    (ours, ours_p, ours_warn), (ref, ref_p, ref_warn) = results
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    assert ours_p == ref_p == P  # out of place
    assert len(ours_warn) == 1
    ours_text = str(ours_warn[0].message)
    assert ours_text.startswith(f"This overload of {case} is deprecated:\n\t{TOP_LEVEL[case][1]}\n")
    if ref_warn:
        assert str(ref_warn[0].message).startswith(ours_text)
    assert ours_warn[0].filename == __file__


def test_top_level_forms_keep_their_current_signatures():
    p, g = ds.tensor(P), ds.tensor(A)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation warning on the current forms
        np.testing.assert_allclose(ds.add(p, g, alpha=2).numpy(), np.add(P, np.multiply(2, A)), rtol=1e-6)
        np.testing.assert_allclose(ds.sub(p, 1.5).numpy(), np.subtract(P, 1.5), rtol=1e-6)
        np.testing.assert_allclose(ds.addcmul(p, g, g, value=0.5).numpy(), np.add(P, np.multiply(A, A) / 2), rtol=1e-6)
    with pytest.raises(ArgumentError, match=r"alpha given both first"):
        ds.add(p, 0.5, g, alpha=2)
    assert ds.subtract is ds.sub
