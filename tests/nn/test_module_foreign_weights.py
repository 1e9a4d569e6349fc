"""Loading another library's weights: PyTorch tensors of dtypes NumPy lacks (bfloat16, float8) widen
exactly to float32, ``load_state_dict(assign=True)`` adopts the given tensors as PyTorch does, and
``Module.bfloat16()`` is refused with the reason."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import nn
from downslope.errors import ArgumentTypeError, CheckpointError

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------------- bfloat16 / float8 tensors
def test_tensor_from_torch_bfloat16_widens_exactly():
    t = torch.randn(4, 5).bfloat16()
    got = ds.tensor(t)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.detach().numpy(), t.float().detach().numpy())
    assert ds.tensor(t, dtype=ds.float64).dtype == np.float64
    assert ds.as_tensor(t).dtype == np.float32


def test_tensor_from_torch_float8_widens_exactly():
    t = torch.randn(6).to(torch.float8_e4m3fn)
    np.testing.assert_array_equal(ds.tensor(t).detach().numpy(), t.float().detach().numpy())


def test_tensor_from_torch_copies_and_detaches_like_torch_tensor():
    t = torch.ones(2, requires_grad=True)  # numpy() alone refuses a tensor that requires grad
    d = ds.tensor(t)
    with torch.no_grad():
        t[0] = 5.0
    assert d.tolist() == [1.0, 1.0]  # ds.tensor copies, as torch.tensor does


def test_load_state_dict_takes_torch_bfloat16_tensors():
    theirs = torch.nn.Linear(3, 2).bfloat16()
    ours = nn.Linear(3, 2)
    ours.load_state_dict(theirs.state_dict())
    assert ours.weight.dtype == np.float32
    np.testing.assert_array_equal(ours.weight.detach().numpy(), theirs.weight.float().detach().numpy())
    # Parameters themselves (requires_grad=True), as dict(model.named_parameters()) gives them
    ours.load_state_dict(dict(theirs.named_parameters()))
    np.testing.assert_array_equal(ours.bias.detach().numpy(), theirs.bias.float().detach().numpy())


def test_bfloat16_model_output_matches_torch():
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 3)).bfloat16()
    ours = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 3))
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    ref = theirs.float()(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(ours(ds.tensor(x)).detach().numpy(), ref, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- assign=True
def test_assign_adopts_dtype_and_memory_keeping_requires_grad_as_torch():
    results = []
    for lib in (torch, ds):
        m = lib.nn.Linear(3, 2)
        m.weight.requires_grad_(False)
        w = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float16)
        given_w = torch.from_numpy(w) if lib is torch else w
        given_b = lib.nn.Parameter(lib.zeros(2, dtype=lib.float64), requires_grad=False)
        m.load_state_dict({"weight": given_w, "bias": given_b}, assign=True)
        shares = (
            m.weight.data_ptr() == given_w.data_ptr() if lib is torch else np.shares_memory(m.weight.array, given_w)
        )
        results.append(
            (
                type(m.weight).__name__,
                str(m.weight.dtype).removeprefix("torch."),
                m.weight.requires_grad,
                shares,
                m.bias is given_b,
                m.bias.requires_grad,  # from the replaced parameter, though the given one had False
                str(m.bias.dtype).removeprefix("torch."),
            )
        )
    assert results[0] == results[1] == ("Parameter", "float16", False, True, True, True, "float64")


def test_assign_new_parameters_are_the_ones_the_module_uses():
    m = nn.Linear(2, 1)
    m.load_state_dict({"weight": np.ones((1, 2)), "bias": np.zeros(1)}, assign=True)
    assert m.weight.dtype == np.float64 and list(m.parameters())[0] is m.weight
    out = m(ds.ones(3, 2, dtype=ds.float64))
    out.sum().backward()
    assert m.weight.grad.tolist() == [[3.0, 3.0]]


def test_assign_buffers_become_the_given_tensors():
    for lib in (torch, ds):
        bn = lib.nn.BatchNorm1d(2)
        mean = lib.ones(2, dtype=lib.float64)
        bn.load_state_dict({**bn.state_dict(), "running_mean": mean}, assign=True)
        assert bn.running_mean is mean


def test_assign_leaves_old_optimizers_stale_as_torch():
    m = nn.Linear(2, 1)
    opt = ds.optim.SGD(m.parameters(), lr=0.1)
    old = m.weight
    m.load_state_dict({"weight": np.ones((1, 2), np.float32), "bias": np.zeros(1, np.float32)}, assign=True)
    assert m.weight is not old and opt.param_groups[0]["params"][0] is old


def _tied(lib):
    class Tied(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = lib.nn.Linear(2, 2, bias=False)
            self.b = lib.nn.Linear(2, 2, bias=False)
            self.b.weight = self.a.weight

    return Tied()


def test_assign_unties_weights_given_different_values_as_torch():
    outs = []
    for lib in (torch, ds):
        t = _tied(lib)
        given = {"a.weight": np.eye(2, dtype=np.float32), "b.weight": np.ones((2, 2), np.float32)}
        t.load_state_dict(given if lib is ds else {k: torch.from_numpy(v) for k, v in given.items()}, assign=True)
        outs.append((t.a.weight is t.b.weight, t.b.weight.detach().numpy().tolist()))
    assert outs[0] == outs[1] == (False, [[1.0, 1.0], [1.0, 1.0]])


def test_assign_refuses_integers_for_a_parameter_that_requires_grad_and_changes_nothing():
    m = nn.Linear(2, 1)
    before = m.weight
    with pytest.raises(CheckpointError, match="'weight' of dtype int64 to a parameter that requires grad"):
        m.load_state_dict({"weight": np.ones((1, 2), np.int64), "bias": np.zeros(1, np.float32)}, assign=True)
    assert m.weight is before


def test_assign_copies_read_only_arrays():
    w = np.ones((1, 2), np.float32)
    w.flags.writeable = False
    m = nn.Linear(2, 1)
    m.load_state_dict({"weight": w, "bias": np.zeros(1, np.float32)}, assign=True)
    m.weight.data.fill_(2.0)  # trainable in place
    assert w.tolist() == [[1.0, 1.0]]


def test_assign_from_torch_bfloat16_gives_float32():
    m = nn.Linear(3, 2)
    theirs = torch.nn.Linear(3, 2).bfloat16()
    m.load_state_dict(theirs.state_dict(), assign=True)
    assert m.weight.dtype == np.float32 and m.weight.requires_grad
    np.testing.assert_array_equal(m.weight.detach().numpy(), theirs.weight.float().detach().numpy())


# ---------------------------------------------------------------------- Module.bfloat16
def test_module_bfloat16_gives_the_same_message_as_to_bfloat16():
    m = nn.Linear(2, 2)
    with pytest.raises(ArgumentTypeError) as to_err:
        m.to(ds.bfloat16)
    with pytest.raises(ArgumentTypeError) as method_err:
        m.bfloat16()
    assert str(method_err.value) == str(to_err.value) and "bfloat16" in str(to_err.value)
    assert m.weight.dtype == np.float32
