"""nn.utils.parametrize / parametrizations against PyTorch: values, gradients w.r.t. the originals,
state_dict keys and interchange, right_inverse on assignment, chains, removal, orthogonal maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import downslope as ds
from downslope.nn.utils import parametrizations, parametrize

T = torch.nn.utils.parametrize
TP = torch.nn.utils.parametrizations


def _symmetric(lib):  # type: ignore[no-untyped-def]
    class Symmetric(lib.nn.Module):
        def forward(self, X):  # type: ignore[no-untyped-def] # noqa: N803
            return X.triu() + X.triu(1).mT

        def right_inverse(self, A):  # type: ignore[no-untyped-def] # noqa: N803
            return A.triu()

    return Symmetric()


def _scale(lib, k: float):  # type: ignore[no-untyped-def]
    class Scale(lib.nn.Module):
        def forward(self, X):  # type: ignore[no-untyped-def] # noqa: N803
            return X * k

        def right_inverse(self, X):  # type: ignore[no-untyped-def] # noqa: N803
            return X / k

    return Scale()


def _pair(n_in: int = 4, n_out: int = 4, seed: int = 0):  # type: ignore[no-untyped-def]
    theirs = torch.nn.Linear(n_in, n_out).double()
    ours = ds.nn.Linear(n_in, n_out, dtype="float64")
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(seed).standard_normal((5, n_in))
    return ours, theirs, x


def _load_from_torch(ours, theirs) -> None:  # type: ignore[no-untyped-def]
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})


def _grads_match(ours, theirs, rtol: float = 1e-9, atol: float = 1e-10) -> None:  # type: ignore[no-untyped-def]
    named_t = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(
            p.grad.detach().numpy(), named_t[name].grad.detach().numpy(), rtol=rtol, atol=atol, err_msg=name
        )


def test_register_parametrization_matches_torch_values_grads_and_keys() -> None:
    ours, theirs, x = _pair()
    original = ours.weight
    parametrize.register_parametrization(ours, "weight", _symmetric(ds))
    T.register_parametrization(theirs, "weight", _symmetric(torch))
    assert type(ours).__name__ == type(theirs).__name__ == "ParametrizedLinear"
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "parametrizations.weight.original"]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert ours.parametrizations.weight.original is original  # the same object: an optimizer keeps training it
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-12)
    w = ours.weight.detach().numpy()
    np.testing.assert_array_equal(w, w.T)
    out, tout = ours(ds.from_numpy(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-12)
    (out**2).sum().backward()
    (tout**2).sum().backward()
    _grads_match(ours, theirs)


def test_state_dicts_interchange_both_ways() -> None:
    ours, theirs, _ = _pair(seed=1)
    parametrize.register_parametrization(ours, "weight", _symmetric(ds))
    T.register_parametrization(theirs, "weight", _symmetric(torch))
    fresh = torch.nn.Linear(4, 4).double()
    T.register_parametrization(fresh, "weight", _symmetric(torch))
    fresh.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in ours.state_dict().items()})
    np.testing.assert_allclose(fresh.weight.detach().numpy(), ours.weight.detach().numpy(), rtol=1e-12)
    other = parametrize.register_parametrization(ds.nn.Linear(4, 4, dtype="float64"), "weight", _symmetric(ds))
    _load_from_torch(other, theirs)
    np.testing.assert_allclose(other.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-12)


def test_assignment_goes_through_right_inverse() -> None:
    ours, theirs, _ = _pair(seed=2)
    parametrize.register_parametrization(ours, "weight", _symmetric(ds))
    T.register_parametrization(theirs, "weight", _symmetric(torch))
    a = np.random.default_rng(5).standard_normal((4, 4))
    a = a + a.T
    original = ours.parametrizations.weight.original
    ours.weight = ds.from_numpy(a)
    theirs.weight = torch.tensor(a)
    assert ours.parametrizations.weight.original is original
    np.testing.assert_allclose(
        original.detach().numpy(), theirs.parametrizations.weight.original.detach().numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(ours.weight.detach().numpy(), a, rtol=1e-12)
    with pytest.raises(TypeError, match="parametrized"):
        ours.weight = ds.nn.Parameter(ds.from_numpy(a))


def test_chained_parametrizations_match_torch() -> None:
    ours, theirs, x = _pair(seed=3)
    for lib, m in ((ds, ours), (torch, theirs)):
        reg = parametrize.register_parametrization if lib is ds else T.register_parametrization
        reg(m, "weight", _symmetric(lib))
        reg(m, "weight", _scale(lib, 3.0))
    assert len(ours.parametrizations.weight) == len(theirs.parametrizations.weight) == 2
    assert list(ours.state_dict()) == list(theirs.state_dict())
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-12)
    a = np.eye(4) * 6.0
    ours.weight = ds.from_numpy(a)
    theirs.weight = torch.tensor(a)
    np.testing.assert_allclose(
        ours.parametrizations.weight.original.detach().numpy(), theirs.parametrizations.weight.original.detach().numpy()
    )
    out, tout = ours(ds.from_numpy(x)), theirs(torch.tensor(x))
    out.sum().backward()
    tout.sum().backward()
    _grads_match(ours, theirs)


def test_parametrizing_a_buffer_and_shape_checks() -> None:
    m = ds.nn.BatchNorm1d(3)
    parametrize.register_parametrization(m, "running_var", _scale(ds, 2.0))
    t = torch.nn.BatchNorm1d(3)
    T.register_parametrization(t, "running_var", _scale(torch, 2.0))
    assert list(m.state_dict()) == list(t.state_dict())
    np.testing.assert_allclose(m.running_var.detach().numpy(), t.running_var.detach().numpy())

    class Shrink(ds.nn.Module):
        def forward(self, x):  # type: ignore[no-untyped-def]
            return x[:1]

    with pytest.raises(ValueError, match="shape"):
        parametrize.register_parametrization(ds.nn.Linear(2, 2), "weight", Shrink())
    with pytest.raises(ValueError, match="no parameter"):
        parametrize.register_parametrization(ds.nn.Linear(2, 2), "wieght", Shrink())
    m2 = parametrize.register_parametrization(ds.nn.Linear(2, 2), "weight", Shrink(), unsafe=True)
    assert m2.weight.shape == (1, 2)


@pytest.mark.parametrize("leave", [True, False])
def test_remove_parametrizations_matches_torch(leave: bool) -> None:
    ours, theirs, _ = _pair(seed=4)
    parametrize.register_parametrization(ours, "weight", _symmetric(ds))
    T.register_parametrization(theirs, "weight", _symmetric(torch))
    original = ours.parametrizations.weight.original
    assert parametrize.is_parametrized(ours) and parametrize.is_parametrized(ours, "weight")
    assert not parametrize.is_parametrized(ours, "bias")
    assert parametrize.type_before_parametrizations(ours) is ds.nn.Linear
    parametrize.remove_parametrizations(ours, "weight", leave_parametrized=leave)
    T.remove_parametrizations(theirs, "weight", leave_parametrized=leave)
    assert type(ours) is ds.nn.Linear and not parametrize.is_parametrized(ours)
    assert ours.weight is original and isinstance(ours.weight, ds.nn.Parameter)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="not parametrized"):
        parametrize.remove_parametrizations(ours, "weight")


def test_weight_norm_cannot_be_left_unparametrized_and_keeps_parameters() -> None:
    m = parametrizations.weight_norm(ds.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="sequence"):
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    value = m.weight.detach().numpy()
    parametrize.remove_parametrizations(m, "weight")
    assert isinstance(m.weight, ds.nn.Parameter)
    np.testing.assert_allclose(m.weight.detach().numpy(), value)


def test_weight_norm_assignment_matches_torch() -> None:
    ours, theirs, _ = _pair(3, 2, seed=6)
    parametrizations.weight_norm(ours)
    TP.weight_norm(theirs)
    a = np.arange(6.0).reshape(2, 3)
    ours.weight = ds.from_numpy(a)
    theirs.weight = torch.tensor(a)
    for k in ("original0", "original1"):
        np.testing.assert_allclose(
            getattr(ours.parametrizations.weight, k).detach().numpy(),
            getattr(theirs.parametrizations.weight, k).detach().numpy(),
            rtol=1e-12,
        )


@pytest.mark.parametrize(("name", "dim"), [("bias", 0), ("bias", -1), ("bias", None), ("weight", -1), ("weight", -2)])
def test_weight_norm_dims_and_1d_parameters_match_torch(name: str, dim) -> None:  # type: ignore[no-untyped-def]
    # a 1-D parameter with dim 0 keeps one g per element (|v|); -1 means the whole tensor, not the last dim
    ours, theirs, x = _pair(4, 3, seed=7)
    parametrizations.weight_norm(ours, name=name, dim=dim)
    TP.weight_norm(theirs, name=name, dim=dim)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (k, v), tv in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert v.shape == tuple(tv.shape), k
        np.testing.assert_allclose(v.detach().numpy(), tv.detach().numpy(), rtol=1e-12, err_msg=k)
    out, tout = ours(ds.from_numpy(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-12)
    (out**3).sum().backward()
    (tout**3).sum().backward()
    _grads_match(ours, theirs)
    # torch's state_dict loads into a fresh weight-normalized layer and gives torch's output
    with torch.no_grad():
        getattr(theirs.parametrizations, name).original0.mul_(1.5)
    fresh = parametrizations.weight_norm(ds.nn.Linear(4, 3, dtype="float64"), name=name, dim=dim)
    _load_from_torch(fresh, theirs)
    np.testing.assert_allclose(
        fresh(ds.from_numpy(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-12
    )


def test_weight_norm_rejects_a_dim_torch_rejects() -> None:
    for name, dim in (("bias", 1), ("bias", -2), ("weight", 2)):
        with pytest.raises(IndexError):
            TP.weight_norm(torch.nn.Linear(4, 3), name=name, dim=dim)
        with pytest.raises(IndexError, match=f"weight_norm: dim {dim} is out of range for a parameter with"):
            parametrizations.weight_norm(ds.nn.Linear(4, 3), name=name, dim=dim)


def test_cached_reuses_and_the_weight_is_recomputed_after_a_change() -> None:
    m = parametrize.register_parametrization(ds.nn.Linear(3, 3), "weight", _symmetric(ds))
    with parametrize.cached():
        assert m.weight is m.weight
    assert m.weight is not m.weight
    before = m.weight.detach().numpy()
    with ds.no_grad():
        m.parametrizations.weight.original.mul_(2.0)
    np.testing.assert_allclose(m.weight.detach().numpy(), 2 * before, rtol=1e-6)


def test_spectral_norm_takes_one_power_step_per_forward() -> None:
    # Linear reads its weight twice per forward; the power iteration must still run once, as in torch.
    theirs = torch.nn.Linear(4, 3)
    ours = ds.nn.Linear(4, 3)
    parametrizations.spectral_norm(ours)
    TP.spectral_norm(theirs)
    _load_from_torch(ours, theirs)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    for _ in range(3):
        ours(ds.from_numpy(x))
        theirs(torch.tensor(x))
    u, tu = ours.parametrizations.weight[0]._u.detach().numpy(), theirs.parametrizations.weight[0]._u.detach().numpy()
    np.testing.assert_allclose(u, tu, rtol=1e-5, atol=1e-6)


ORTH_CASES = [
    ((5, 3), None, True),
    ((3, 5), None, True),
    ((4, 4), None, True),
    ((5, 3), "matrix_exp", True),
    ((3, 5), "cayley", True),
    ((4, 4), "cayley", True),
    ((4, 4), "householder", True),
    ((5, 3), "householder", False),
    ((3, 5), "householder", False),
    ((4, 4), "matrix_exp", False),
    ((5, 3), "cayley", False),
]


@pytest.mark.parametrize(("shape", "orth_map", "triv"), ORTH_CASES)
def test_orthogonal_matches_torch(shape: tuple[int, int], orth_map: str | None, triv: bool) -> None:
    n_out, n_in = shape
    ours, theirs, x = _pair(n_in, n_out, seed=7)
    parametrizations.orthogonal(ours, orthogonal_map=orth_map, use_trivialization=triv)
    TP.orthogonal(theirs, orthogonal_map=orth_map, use_trivialization=triv)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    q = ours.weight.detach().numpy()
    gram = q.T @ q if n_out >= n_in else q @ q.T
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-10)
    if not triv or n_out == n_in:  # no random completion: the registration itself matches
        np.testing.assert_allclose(
            ours.parametrizations.weight.original.detach().numpy(),
            theirs.parametrizations.weight.original.detach().numpy(),
            atol=1e-10,
        )
        np.testing.assert_allclose(q, theirs.weight.detach().numpy(), atol=1e-10)
    # A few SGD steps from torch's state agree (values, gradients w.r.t. the original).
    _load_from_torch(ours, theirs)
    opt = ds.optim.SGD(ours.parameters(), lr=0.1)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    target = np.random.default_rng(8).standard_normal((5, n_out))
    for _ in range(3):
        opt.zero_grad()
        topt.zero_grad()
        loss = ((ours(ds.from_numpy(x)) - ds.from_numpy(target)) ** 2).mean()
        tloss = ((theirs(torch.tensor(x)) - torch.tensor(target)) ** 2).mean()
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-9)
        loss.backward()
        tloss.backward()
        _grads_match(ours, theirs, rtol=1e-7, atol=1e-9)
        opt.step()
        topt.step()
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), atol=1e-9)


def test_orthogonal_assignment_and_errors() -> None:
    ours, theirs, _ = _pair(4, 4, seed=9)
    parametrizations.orthogonal(ours)
    TP.orthogonal(theirs)
    q = np.linalg.qr(np.random.default_rng(1).standard_normal((4, 4)))[0]
    ours.weight = ds.from_numpy(q)
    theirs.weight = torch.tensor(q)
    np.testing.assert_allclose(ours.weight.detach().numpy(), q, atol=1e-10)
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), atol=1e-10)
    with pytest.raises(ValueError, match="matrix"):
        parametrizations.orthogonal(ds.nn.Linear(3, 3), "bias")
    with pytest.raises(ValueError, match="orthogonal_map"):
        parametrizations.orthogonal(ds.nn.Linear(3, 3), orthogonal_map="qr")
    m = parametrizations.orthogonal(ds.nn.Linear(3, 3), orthogonal_map="cayley", use_trivialization=False)
    with pytest.raises(NotImplementedError):
        m.weight = ds.eye(3)


def test_orthogonal_on_a_batch_of_matrices() -> None:
    class Batched(ds.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = ds.nn.Parameter(ds.randn(2, 5, 3))

    m = parametrizations.orthogonal(Batched(), orthogonal_map="householder")
    q = m.weight.detach().numpy()
    np.testing.assert_allclose(np.swapaxes(q, -1, -2) @ q, np.broadcast_to(np.eye(3), (2, 3, 3)), atol=1e-5)
    m.weight.sum().backward()
    assert m.parametrizations.weight.original.grad.shape == (2, 5, 3)
