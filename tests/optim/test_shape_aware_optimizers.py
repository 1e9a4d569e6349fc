"""Adafactor, Muon and SparseAdam against torch.optim: 20 steps from the same start, then the state
dict (PyTorch's keys and shapes, a save/load round trip, PyTorch's own saved state continuing its
run), the hyperparameter checks and the options every optimizer takes.

Each run computes its gradients from its own parameters (so differences would compound); SparseAdam
runs on an embedding model, ``nn.Embedding(sparse=True)`` on both sides. Parameters must agree per
tensor to ``||ours - torch|| / ||torch|| <= 1e-5``.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import optim
from downslope.errors import ArgumentError, ShapeError

torch = pytest.importorskip("torch")

STEPS = 20


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b) / max(np.linalg.norm(b.astype(np.float64)), 1e-30))


def _start(shapes: list[tuple[int, ...]], seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    values = [rng.normal(0, 1, s).astype(np.float32) for s in shapes]
    targets = [rng.normal(0, 1, s).astype(np.float32) for s in shapes]
    return values, targets


def _loss(lib: Any, params: list[Any], targets: list[Any]) -> Any:
    """sum((p - t)^2 / 2 + 0.3 sin(3 p)): curved, with gradients that change sign."""
    total = 0
    for p, t in zip(params, targets):
        total = total + (((p - t) ** 2) * 0.5 + lib.sin(p * 3.0) * 0.3).sum()
    return total


def _gradient(p: np.ndarray, target: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """A fixed noisy gradient pulling towards ``target``: the same NumPy numbers for both runs while
    their parameters agree. (A loss written twice would differ in its last bits, sin's for one, and
    the scale-free steps of Adafactor and Muon near a minimum amplify any such difference.)"""
    return (noise + 0.5 * (p - target)).astype(np.float32)


def run_both(ours_cls: Any, torch_cls: Any, kwargs: dict[str, Any], shapes: list[tuple[int, ...]],
             steps: int = STEPS) -> tuple[list[np.ndarray], list[np.ndarray]]:  # fmt: skip
    values, targets = _start(shapes)
    rng = np.random.default_rng(1)
    noises = [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(steps)]
    ours = [ds.tensor(v, requires_grad=True) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    opt, topt = ours_cls(ours, **kwargs), torch_cls(theirs, **kwargs)
    for noise in noises:
        for p, tp, t, n in zip(ours, theirs, targets, noise):
            p.grad = ds.tensor(_gradient(p.detach().numpy(), t, n))
            tp.grad = torch.tensor(_gradient(tp.detach().numpy(), t, n))
        opt.step()
        topt.step()
    return [p.detach().numpy() for p in ours], [p.detach().numpy() for p in theirs]


def assert_close(ours: list[np.ndarray], theirs: list[np.ndarray], tol: float = 1e-5) -> float:
    worst = max(rel(a, b) for a, b in zip(ours, theirs))
    assert worst <= tol, f"max relative difference {worst:.3g} > {tol}"
    return worst


# ------------------------------------------------------------------------------------------ Adafactor
ADAFACTOR_SHAPES = [(7,), (5, 6), (3, 4, 5), ()]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"lr": 0.1},
        {"lr": 0.05, "weight_decay": 0.1},
        {"lr": 0.05, "eps": (1e-3, 1e-2), "d": 2.0},
        {"lr": 0.05, "beta2_decay": -0.5, "maximize": True},
        {"lr": 0.05, "foreach": True},
    ],
)
def test_adafactor_follows_torch_for_vectors_matrices_and_3d(kwargs: dict[str, Any]) -> None:
    ours, theirs = run_both(optim.Adafactor, torch.optim.Adafactor, kwargs, ADAFACTOR_SHAPES)
    assert_close(ours, theirs)


def test_adafactor_state_has_torchs_keys_and_shapes() -> None:
    values, _ = _start(ADAFACTOR_SHAPES)
    ours = [ds.tensor(v, requires_grad=True) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    opt, topt = optim.Adafactor(ours), torch.optim.Adafactor(theirs)
    for p in ours:
        p.grad = ds.ones_like(p)
    for p in theirs:
        p.grad = torch.ones_like(p)
    opt.step()
    topt.step()
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sd["param_groups"][0].keys() == tsd["param_groups"][0].keys()
    assert list(sd["param_groups"][0]) == list(tsd["param_groups"][0])  # PyTorch's order too
    for pos, entry in tsd["state"].items():
        assert sorted(sd["state"][pos]) == sorted(entry)
        for key, value in entry.items():
            if key != "step":
                assert sd["state"][pos][key].shape == tuple(value.shape)
                np.testing.assert_allclose(sd["state"][pos][key], value.numpy(), rtol=1e-6)
        assert sd["state"][pos]["step"] == int(entry["step"])


# ------------------------------------------------------------------------------------------ Muon
MUON_SHAPES = [(6, 6), (8, 3), (4, 10)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"lr": 0.02},
        {"lr": 0.02, "nesterov": False},
        {"lr": 0.02, "momentum": 0.5, "weight_decay": 0.0},
        {"lr": 0.01, "adjust_lr_fn": "match_rms_adamw"},
        {"lr": 0.01, "adjust_lr_fn": "original", "ns_steps": 3, "ns_coefficients": (2.0, -1.5, 0.5)},
    ],
)
def test_muon_follows_torch(kwargs: dict[str, Any]) -> None:
    """Within float32 rounding (about 3e-8), except that now and then a bfloat16 rounding tie inside
    the Newton-Schulz iteration breaks the other way (torch's float32 sums run in another order):
    one entry of one step then differs by a bfloat16 unit, about 1e-5 of the parameter."""
    ours, theirs = run_both(optim.Muon, torch.optim.Muon, kwargs, MUON_SHAPES)
    assert_close(ours, theirs, tol=5e-5)


def test_newton_schulz_is_torchs_bfloat16_iteration() -> None:
    from torch.optim._muon import _zeropower_via_newtonschulz

    from downslope.optim.muon import zeropower_via_newtonschulz

    rng = np.random.default_rng(1)
    for shape in [(4, 6), (9, 3), (16, 16), (64, 20), (1, 5)]:
        g = rng.normal(size=shape).astype(np.float32)
        theirs = _zeropower_via_newtonschulz(torch.tensor(g), (3.4445, -4.775, 2.0315), 5, 1e-7).float().numpy()
        ours = zeropower_via_newtonschulz(g)
        assert ours.dtype == np.float32 and ours.shape == shape
        # every entry a bfloat16 number; the rare rounding tie broken the other way is one bfloat16 step
        np.testing.assert_array_equal(ours.view(np.uint32) & 0xFFFF, 0)
        assert np.mean(ours != theirs) <= 0.01
        np.testing.assert_allclose(ours, theirs, rtol=2**-7, atol=2**-12)
    zero = zeropower_via_newtonschulz(np.zeros((3, 4), np.float32))
    np.testing.assert_array_equal(zero, 0)


def test_round_to_bfloat16_is_torchs_conversion() -> None:
    from downslope.optim.muon import round_to_bfloat16

    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(size=1000) * 10.0 ** rng.integers(-30, 30, 1000), [0.0, -0.0, np.inf, -np.inf]])
    x = x.astype(np.float32)
    theirs = torch.tensor(x).bfloat16().float().numpy()
    np.testing.assert_array_equal(round_to_bfloat16(x), theirs)


def test_muon_refuses_parameters_that_are_not_matrices_as_torch() -> None:
    with pytest.raises(ValueError, match="Muon only supports 2D parameters"):
        torch.optim.Muon([torch.zeros(3, requires_grad=True)])
    with pytest.raises(ShapeError, match=r"Muon only supports 2D parameters.*shape \(3,\)"):
        optim.Muon([ds.zeros(3, requires_grad=True)])
    opt = optim.Muon([ds.zeros(2, 2, requires_grad=True)])
    with pytest.raises(ShapeError, match="Muon only supports 2D"):
        opt.add_param_group({"params": [ds.zeros(2, 2, 2, requires_grad=True)]})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": -1.0}, "lr"),
        ({"momentum": -0.1}, "momentum"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"adjust_lr_fn": "other"}, "adjust_lr_fn"),
        ({"ns_steps": 100}, "ns_steps"),
        ({"ns_coefficients": (1.0, 2.0)}, "ns_coefficients"),
    ],
)
def test_muon_checks_its_hyperparameters(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ArgumentError, match=match):
        optim.Muon([ds.zeros(2, 2, requires_grad=True)], **kwargs)


def test_muon_state_is_torchs_momentum_buffer_only() -> None:
    w = ds.ones(3, 2, requires_grad=True)
    opt = optim.Muon([w], lr=0.02)
    assert opt.state_dict()["state"] == {}
    w.grad = ds.ones(3, 2)
    opt.step()
    entry = opt.state_dict()["state"][0]
    assert list(entry) == ["momentum_buffer"] and entry["momentum_buffer"].shape == (3, 2)
    tw = torch.ones(3, 2, requires_grad=True)
    tsd = torch.optim.Muon([tw]).state_dict()
    assert list(opt.state_dict()["param_groups"][0]) == list(tsd["param_groups"][0])


# ------------------------------------------------------------------------------------------ SparseAdam
def _embedding_runs(kwargs: dict[str, Any], steps: int = STEPS) -> tuple[Any, Any]:
    rng = np.random.default_rng(3)
    table = rng.normal(size=(12, 4)).astype(np.float32)
    head = rng.normal(size=(4, 2)).astype(np.float32)
    batches = [rng.integers(0, 12, size=(5, 3)) for _ in range(steps)]  # repeats within a batch, rows unused
    targets = [rng.normal(size=(5, 3, 2)).astype(np.float32) for _ in range(steps)]
    emb = ds.nn.Embedding(12, 4, sparse=True, _weight=ds.tensor(table))
    temb = torch.nn.Embedding(12, 4, sparse=True, _weight=torch.tensor(table))
    opt = optim.SparseAdam(list(emb.parameters()), **kwargs)
    topt = torch.optim.SparseAdam(list(temb.parameters()), **kwargs)
    h, th = ds.tensor(head), torch.tensor(head)
    for idx, y in zip(batches, targets):
        opt.zero_grad()
        ((emb(ds.tensor(idx)) @ h).tanh() - ds.tensor(y)).pow(2).mean().backward()
        opt.step()
        topt.zero_grad()
        ((temb(torch.tensor(idx)) @ th).tanh() - torch.tensor(y)).pow(2).mean().backward()
        topt.step()
    return (emb, opt), (temb, topt)


@pytest.mark.parametrize("kwargs", [{}, {"lr": 0.05}, {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-4},
                                    {"lr": 0.05, "maximize": True}])  # fmt: skip
def test_sparse_adam_follows_torch_on_a_sparse_embedding(kwargs: dict[str, Any]) -> None:
    (emb, opt), (temb, topt) = _embedding_runs(kwargs)
    assert_close([emb.weight.detach().numpy()], [temb.weight.detach().numpy()])
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sd["state"][0]["step"] == tsd["state"][0]["step"] == STEPS
    for key in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_allclose(sd["state"][0][key], tsd["state"][0][key].numpy(), rtol=1e-5, atol=1e-9)
    assert list(sd["param_groups"][0]) == list(tsd["param_groups"][0])


def test_sparse_adam_leaves_rows_without_gradient_and_their_moments_alone() -> None:
    w = ds.ones(4, 3, requires_grad=True)
    opt = optim.SparseAdam([w], lr=0.1)
    w.grad = ds.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, -1]])
    opt.step()
    w.grad = ds.tensor([[0.0, 0, 0], [0, 0, 0], [0, 2, 0], [0, 0, 0]])
    opt.step()
    state = opt.state[w]
    assert state["step"] == 2
    # row 0 and row 3 kept their first-step moments and values; row 1 never moved; row 2 moved once
    np.testing.assert_allclose(state["exp_avg"].numpy()[0], [0.1, 0, 0], rtol=1e-6)
    np.testing.assert_array_equal(state["exp_avg"].numpy()[1], 0)
    np.testing.assert_allclose(w.detach().numpy()[0], [0.9, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(w.detach().numpy()[1], 1.0)
    assert w.detach().numpy()[2, 1] < 1.0


@pytest.mark.parametrize(
    "kwargs, match", [({"lr": 0.0}, "lr"), ({"eps": 0.0}, "eps"), ({"betas": (1.0, 0.9)}, "betas")]
)
def test_sparse_adam_refuses_what_torchs_refuses(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError):
        torch.optim.SparseAdam([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(ArgumentError, match=match):
        optim.SparseAdam([ds.zeros(2, requires_grad=True)], **kwargs)


# ------------------------------------------------------------------------------------------ all three
CASES = [
    ("Adafactor", {"lr": 0.05, "weight_decay": 0.01}, [(5,), (3, 4), (2, 3, 4)]),
    ("Muon", {"lr": 0.02}, [(4, 4), (5, 2)]),
    ("SparseAdam", {"lr": 0.05}, [(6, 3), (4,)]),
]


def _save(tree: Any) -> tuple[str, bytes]:
    """The state through JSON text plus an .npz of its tensors' arrays (no pickle). The state's values
    are Tensors, as torch's are (``step`` a 0-d one); they come back as Tensors of the same dtype."""
    arrays: dict[str, np.ndarray] = {}

    def strip(x: Any) -> Any:
        if isinstance(x, ds.Tensor):
            arrays[f"a{len(arrays)}"] = x.detach().numpy()
            return {"__tensor__": f"a{len(arrays) - 1}"}
        if isinstance(x, dict):
            return {str(k): strip(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [strip(v) for v in x]
        return x

    text = json.dumps(strip(tree))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return text, buf.getvalue()


def _load(text: str, blob: bytes) -> Any:
    arrays = np.load(io.BytesIO(blob), allow_pickle=False)

    def put(x: Any) -> Any:
        if isinstance(x, dict):
            if set(x) == {"__tensor__"}:
                array = arrays[x["__tensor__"]]
                return ds.tensor(array, dtype=array.dtype)
            return {k: put(v) for k, v in x.items()}
        if isinstance(x, list):
            return [put(v) for v in x]
        return x

    return put(json.loads(text))


def _grad_steps(opt: Any, params: list[Any], n: int, seed: int, lib: Any = ds) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        for p in params:
            g = rng.normal(size=tuple(p.shape)).astype(np.float32)
            if g.ndim == 2:
                g[::2] = 0  # some rows without gradient (SparseAdam leaves them alone)
            p.grad = lib.tensor(g)
        opt.step()


@pytest.mark.parametrize("name, kwargs, shapes", CASES)
def test_save_load_resumes_bit_identically(name: str, kwargs: dict[str, Any], shapes: list[tuple[int, ...]]) -> None:
    values, _ = _start(shapes)
    ref = [ds.tensor(v, requires_grad=True) for v in values]
    opt = getattr(optim, name)(ref, **kwargs)
    _grad_steps(opt, ref, 3, seed=1)
    saved = _save(opt.state_dict())
    mid = [p.detach().numpy().copy() for p in ref]
    _grad_steps(opt, ref, 3, seed=2)
    resumed = [ds.tensor(v, requires_grad=True) for v in mid]
    other = getattr(optim, name)(resumed, lr=0.5)  # the groups' hyperparameters come from the state
    other.load_state_dict(_load(*saved))
    assert other.param_groups[0]["lr"] == kwargs["lr"]
    _grad_steps(other, resumed, 3, seed=2)
    for a, b in zip(resumed, ref):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


@pytest.mark.parametrize("name, kwargs, shapes", CASES)
def test_a_torch_optimizers_state_dict_continues_its_run(name: str, kwargs: dict[str, Any],
                                                         shapes: list[tuple[int, ...]]) -> None:  # fmt: skip
    values, _ = _start(shapes)
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    topt = getattr(torch.optim, name)(theirs, **kwargs)
    sparse = name == "SparseAdam"

    def torch_steps(n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(n):
            for p in theirs:
                g = rng.normal(size=tuple(p.shape)).astype(np.float32)
                if g.ndim == 2:
                    g[::2] = 0
                p.grad = torch.tensor(g).to_sparse(1) if sparse else torch.tensor(g)
            topt.step()

    torch_steps(3, seed=1)
    sd = topt.state_dict()
    converted = {
        "state": {
            k: {n: v.numpy() if hasattr(v, "numpy") else v for n, v in e.items()} for k, e in sd["state"].items()
        },
        "param_groups": sd["param_groups"],
    }
    ours = [ds.tensor(p.detach().numpy(), requires_grad=True) for p in theirs]
    opt = getattr(optim, name)(ours, **kwargs)
    opt.load_state_dict(converted)
    torch_steps(3, seed=2)
    _grad_steps(opt, ours, 3, seed=2)
    assert_close([p.detach().numpy() for p in ours], [p.detach().numpy() for p in theirs])


@pytest.mark.parametrize("name, kwargs, shapes", CASES)
def test_load_refuses_a_state_of_another_shape_or_optimizer(name: str, kwargs: dict[str, Any],
                                                             shapes: list[tuple[int, ...]]) -> None:  # fmt: skip
    values, _ = _start(shapes)
    params = [ds.tensor(v, requires_grad=True) for v in values]
    opt = getattr(optim, name)(params, **kwargs)
    _grad_steps(opt, params, 1, seed=1)
    sd = opt.state_dict()
    key = next(k for k, v in sd["state"][0].items() if isinstance(v, ds.Tensor) and v.ndim)  # not the 0-d step
    bad = {**sd, "state": {**sd["state"], 0: {**sd["state"][0], key: ds.zeros(7, 7, 7)}}}
    with pytest.raises(ShapeError, match=key):
        getattr(optim, name)([ds.tensor(v, requires_grad=True) for v in values], **kwargs).load_state_dict(bad)
    adam = optim.Adam([ds.tensor(v, requires_grad=True) for v in values])
    with pytest.raises(ArgumentError, match="different optimizer"):
        adam.load_state_dict(sd)
    with pytest.raises(ArgumentError, match=f"saved by {name}"):
        optim.Adam([ds.tensor(v, requires_grad=True) for v in values]).load_state_dict(
            {**sd, "param_groups": adam.state_dict()["param_groups"]}
        )
    # another optimizer's buffer is refused (a key of the user's, such as "momentum", is stored)
    with pytest.raises(ArgumentError, match="different optimizer"):
        getattr(optim, name)([ds.tensor(v, requires_grad=True) for v in values], **kwargs).load_state_dict(
            {"state": {0: {"square_avg": ds.zeros(3)}}, "param_groups": sd["param_groups"]}
        )


@pytest.mark.parametrize("name, kwargs, shapes", CASES)
def test_closure_tensor_lr_clipping_and_missing_gradients(name: str, kwargs: dict[str, Any],
                                                          shapes: list[tuple[int, ...]]) -> None:  # fmt: skip
    values, targets = _start(shapes)
    params = [ds.tensor(v, requires_grad=True) for v in values]
    tensor_lr = {**kwargs, "lr": ds.tensor(kwargs["lr"])}
    opt = getattr(optim, name)(params, clip_norm=0.5, **tensor_lr)
    assert opt.param_groups[0]["lr"] is tensor_lr["lr"]  # kept as given, as PyTorch keeps it
    assert float(opt.param_groups[0]["lr"]) == pytest.approx(kwargs["lr"])

    def closure() -> Any:
        opt.zero_grad()
        loss = _loss(ds, params, [ds.tensor(t) for t in targets])
        loss.backward()
        return loss

    grads_before = None
    loss = opt.step(closure)
    assert isinstance(loss, ds.Tensor)
    grads_before = [p.grad.numpy().copy() for p in params]
    opt.step()  # the clipping works on copies: .grad is untouched
    for p, g in zip(params, grads_before):
        np.testing.assert_array_equal(p.grad.numpy(), g)
    # a parameter without a gradient neither moves nor gets state
    params[-1].grad = None
    last = params[-1].detach().numpy().copy()
    opt.step()
    np.testing.assert_array_equal(params[-1].detach().numpy(), last)
    fresh = [ds.tensor(v, requires_grad=True) for v in values]
    opt2 = getattr(optim, name)(fresh, **kwargs)
    fresh[0].grad = ds.ones_like(fresh[0])
    opt2.step()
    assert set(opt2.state_dict()["state"]) == {0}
    assert list(opt2.state) == [fresh[0]]


@pytest.mark.parametrize("name, kwargs, shapes", CASES)
def test_clip_norm_matches_clipping_the_gradients_first(name: str, kwargs: dict[str, Any],
                                                        shapes: list[tuple[int, ...]]) -> None:  # fmt: skip
    values, _ = _start(shapes)
    a = [ds.tensor(v, requires_grad=True) for v in values]
    b = [ds.tensor(v, requires_grad=True) for v in values]
    opt_a = getattr(optim, name)(a, clip_norm=0.3, **kwargs)
    opt_b = getattr(optim, name)(b, **kwargs)
    rng = np.random.default_rng(4)
    for _ in range(3):
        grads = [rng.normal(size=s).astype(np.float32) for s in shapes]
        for p, q, g in zip(a, b, grads):
            p.grad, q.grad = ds.tensor(g), ds.tensor(g)
        opt_a.step()
        optim.clip_grad_norm_(b, 0.3)
        opt_b.step()
    for p, q in zip(a, b):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name, kwargs, shapes", CASES)
def test_the_step_runs_on_the_strict_device_as_on_the_cpu(name: str, kwargs: dict[str, Any],
                                                          shapes: list[tuple[int, ...]]) -> None:  # fmt: skip
    values, _ = _start(shapes)
    runs = []
    for device in ("cpu", "strict"):
        params = [ds.tensor(v, device=device, requires_grad=True) for v in values]
        opt = getattr(optim, name)(params, **kwargs)
        rng = np.random.default_rng(5)
        for _ in range(3):
            for p in params:
                g = rng.normal(size=tuple(p.shape)).astype(np.float32)
                p.grad = ds.tensor(g, device=device)
            opt.step()
        assert all(p.device == device for p in params)
        runs.append(([p.detach().cpu().numpy() for p in params], opt.state_dict()))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    (_, sd_cpu), (_, sd_strict) = runs
    for pos, entry in sd_cpu["state"].items():
        for key, value in entry.items():
            np.testing.assert_array_equal(np.asarray(sd_strict["state"][pos][key]), value)


def test_adafactor_checks_its_hyperparameters_as_torch() -> None:
    w = ds.zeros(2, requires_grad=True)
    for kwargs in ({"lr": -1.0}, {"beta2_decay": 0.5}, {"eps": (-1.0, 1e-3)}, {"eps": (None, -1.0)}, {"d": 0.5},
                   {"weight_decay": -0.1}):  # fmt: skip
        with pytest.raises(ValueError):
            torch.optim.Adafactor([torch.zeros(2, requires_grad=True)], **kwargs)
        with pytest.raises(ArgumentError, match=next(iter(kwargs))):
            optim.Adafactor([w], **kwargs)


def test_muon_over_matrices_is_optimizer_like_and_schedulers_drive_all_three() -> None:
    from downslope.optim.protocols import OptimizerLike

    matrices = [p for p in ds.nn.Linear(3, 2).parameters() if p.ndim == 2]
    assert isinstance(optim.Muon(matrices, lr=0.01), OptimizerLike)
    for name, kwargs, shapes in CASES:
        values, _ = _start(shapes)
        params = [ds.tensor(v, requires_grad=True) for v in values]
        opt = getattr(optim, name)(params, **kwargs)
        sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        _grad_steps(opt, params, 1, seed=0)
        sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(kwargs["lr"] / 2)
        before = [p.detach().numpy().copy() for p in params]
        _grad_steps(opt, params, 1, seed=0)
        assert any((p.detach().numpy() != b).any() for p, b in zip(params, before))
