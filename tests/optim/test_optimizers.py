"""Each optimizer against torch.optim: 100 steps on the same small network and data.

The network is built by hand from leaf tensors (two layers, tanh, MSE) so the test does not depend
on downslope.nn. Parameters must agree to 1e-5 relative (float32) and 1e-10 (float64), measured
per tensor as ||ours - torch|| / ||torch||.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import downslope as ds
from downslope import optim
from downslope.devices import to_host

torch = pytest.importorskip("torch")

STEPS = 100


def _init(dtype: str) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    shapes = [(5, 16), (16,), (16, 3), (3,)]
    params = [rng.normal(0, 0.5, s).astype(dtype) for s in shapes]
    x = rng.normal(size=(32, 5)).astype(dtype)
    y = rng.normal(size=(32, 3)).astype(dtype)
    return params, x, y


def _ours_loss(p: list[ds.Tensor], x: ds.Tensor, y: ds.Tensor) -> ds.Tensor:
    h = (x @ p[0] + p[1]).tanh()
    out = h @ p[2] + p[3]
    return ((out - y) ** 2).mean()


def _torch_loss(p, x, y):  # type: ignore[no-untyped-def]
    h = torch.tanh(x @ p[0] + p[1])
    out = h @ p[2] + p[3]
    return ((out - y) ** 2).mean()


def _device_backward(ours: list[ds.Tensor], x: ds.Tensor, y: ds.Tensor) -> None:
    """Gradients for parameters on a device, computed from a host copy of them and moved to the device.

    The optimizer's step is what runs on the device here (the ops and backward are tested on devices
    by their own tests), so the gradients need not be made there."""
    host = [
        ds.tensor(p.detach().cpu().detach().numpy(), dtype=p.dtype, device=x.device, requires_grad=True) for p in ours
    ]
    _ours_loss(host, x, y).backward()
    for p, h in zip(ours, host):
        p.grad = h.grad.to(p.device)


def run_both(
    ours_cls,
    torch_cls,
    kwargs,
    torch_kwargs=None,
    dtype="float32",
    steps=STEPS,
    groups=False,
    torch_clip=None,
    device="cpu",
):  # type: ignore[no-untyped-def]
    """Train the same net with both libraries; return the two lists of final parameter arrays.

    ``device="strict"`` keeps our parameters, gradients and optimizer state on the strict stand-in
    for a GPU (downslope/devices/strict.py), which refuses any host array or host conversion."""
    init, x, y = _init(dtype)
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    ours = [ds.tensor(a, dtype=dtype, device=device, requires_grad=True) for a in init]
    theirs = [torch.tensor(a, dtype=tdtype, requires_grad=True) for a in init]
    if groups:  # second group: the biases, with their own lr and no weight decay
        extra = {"lr": kwargs.get("lr", 1e-3) * 0.5, "weight_decay": 0.0}
        opt = ours_cls([{"params": [ours[0], ours[2]]}, {"params": [ours[1], ours[3]], **extra}], **kwargs)
        topt = torch_cls(
            [{"params": [theirs[0], theirs[2]]}, {"params": [theirs[1], theirs[3]], **extra}],
            **(torch_kwargs if torch_kwargs is not None else kwargs),
        )
    else:
        opt = ours_cls(ours, **kwargs)
        topt = torch_cls(theirs, **(torch_kwargs if torch_kwargs is not None else kwargs))
    # The data stays where ``ds.tensor`` puts it by default (the host) unless the run is on the CPU:
    # a device run computes its gradients beside the data (``_device_backward``) and moves them over.
    data_device = "cpu" if device == "cpu" else None
    dx, dy = ds.tensor(x, dtype=dtype, device=data_device), ds.tensor(y, dtype=dtype, device=data_device)
    tx, ty = torch.tensor(x, dtype=tdtype), torch.tensor(y, dtype=tdtype)
    for _ in range(steps):
        opt.zero_grad()
        if device == "cpu":
            _ours_loss(ours, dx, dy).backward()
        else:
            _device_backward(ours, dx, dy)
        opt.step()
        assert all(p.device == device for p in ours)
        topt.zero_grad()
        _torch_loss(theirs, tx, ty).backward()
        if torch_clip is not None:
            torch_clip(theirs)
        topt.step()
    return [p.detach().cpu().detach().numpy() for p in ours], [t.detach().numpy() for t in theirs]


def assert_close(ours, theirs, dtype, float32_tol=1e-5):  # type: ignore[no-untyped-def]
    tol = float32_tol if dtype == "float32" else 1e-10
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.dtype == np.dtype(dtype), f"parameter {i} changed dtype to {a.dtype}"
        rel = np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b)
        assert rel <= tol, f"parameter {i}: relative difference {rel:.3g} > {tol}"
        assert not np.allclose(a, _init(dtype)[0][i]), "the parameters did not move"


CASES = [
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "dampening": 0.3, "maximize": False}),
    ("Adagrad", {"lr": 0.05}),
    ("Adagrad", {"lr": 0.05, "lr_decay": 1e-2, "initial_accumulator_value": 0.1, "weight_decay": 1e-2}),
    ("RMSprop", {"lr": 1e-2}),
    ("RMSprop", {"lr": 1e-3, "centered": True, "momentum": 0.9}),
    ("RMSprop", {"lr": 1e-3, "alpha": 0.9, "weight_decay": 1e-2, "momentum": 0.5}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "weight_decay": 1e-2}),
    ("Adam", {"lr": 1e-2}),
    ("Adam", {"lr": 1e-2, "amsgrad": True, "weight_decay": 1e-2}),
    ("Adam", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6, "decoupled_weight_decay": True, "weight_decay": 0.1}),
    ("AdamW", {"lr": 1e-2}),
    ("AdamW", {"lr": 1e-2, "amsgrad": True, "weight_decay": 0.1}),
    ("Adamax", {"lr": 1e-2}),
    ("Adamax", {"lr": 1e-2, "weight_decay": 1e-2, "betas": (0.8, 0.99)}),
    ("NAdam", {"lr": 1e-2}),
    ("NAdam", {"lr": 1e-2, "weight_decay": 1e-2, "momentum_decay": 1e-2}),
    ("NAdam", {"lr": 1e-2, "weight_decay": 1e-1, "decoupled_weight_decay": True}),
    ("RAdam", {"lr": 1e-2}),
    ("RAdam", {"lr": 1e-2, "weight_decay": 1e-2}),
    ("RAdam", {"lr": 1e-2, "weight_decay": 1e-1, "decoupled_weight_decay": True}),
    ("Rprop", {"lr": 1e-2}),
    ("Rprop", {"lr": 5e-2, "etas": (0.3, 1.5), "step_sizes": (1e-4, 0.2)}),
    ("Rprop", {"lr": 1e-3, "maximize": True}),
    ("ASGD", {"lr": 5e-2}),
    ("ASGD", {"lr": 5e-2, "lambd": 1e-2, "alpha": 0.5, "t0": 2, "weight_decay": 1e-2}),
    ("ASGD", {"lr": 1e-3, "maximize": True, "t0": 0}),
]


DEVICES = ["cpu", "strict"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_torch(name, kwargs, dtype, device):  # type: ignore[no-untyped-def]
    # both libraries at their default dtype (float32): torch keeps NAdam's mu_product and ASGD's eta/mu as
    # float32 numbers also for float64 parameters, and downslope rounds them as torch does
    ours, theirs = run_both(getattr(optim, name), getattr(torch.optim, name), kwargs, dtype=dtype, device=device)
    assert_close(ours, theirs, dtype)


TORCH_NAMED = ["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "Adamax", "NAdam", "RAdam"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", TORCH_NAMED)
def test_maximize_matches_torch(name, dtype, device):  # type: ignore[no-untyped-def]
    # Gradient ascent on the MSE grows the loss without bound, so the lr is kept small: with large
    # steps the run blows up and both libraries' rounding differences grow exponentially.
    kwargs = {"lr": 1e-3, "maximize": True, "weight_decay": 1e-2}
    if name in ("SGD", "RMSprop"):
        kwargs["momentum"] = 0.9
    if name == "SGD":
        kwargs["dampening"] = 0.1
    if name == "Adam":
        kwargs["amsgrad"] = True
    if name == "RMSprop":
        kwargs["centered"] = True
    ours, theirs = run_both(getattr(optim, name), getattr(torch.optim, name), kwargs, dtype=dtype, device=device)
    # ascent grows the parameters' rounding differences each step: an ulp apart per update (one fused
    # multiply-add or not, by the machine's SIMD width) ends 1.0e-5 apart in float32 on AVX-512
    assert_close(ours, theirs, dtype, float32_tol=3e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["SGD", "AdamW", "Adagrad"])
def test_param_groups_match_torch(name, device):  # type: ignore[no-untyped-def]
    kwargs = {"lr": 0.02, "weight_decay": 1e-2}
    ours, theirs = run_both(getattr(optim, name), getattr(torch.optim, name), kwargs, groups=True, device=device)
    assert_close(ours, theirs, "float32")


def test_gd_is_sgd_without_momentum():
    ours, theirs = run_both(optim.GD, torch.optim.SGD, {"lr": 0.05, "weight_decay": 1e-3})
    assert_close(ours, theirs, "float32")


@pytest.mark.parametrize("flat", [True, False])
def test_per_parameter_path_matches_flat_path(flat):  # type: ignore[no-untyped-def]
    ours, theirs = run_both(
        lambda p, **k: optim.Adam(p, flat=flat, **k), torch.optim.Adam, {"lr": 1e-2, "weight_decay": 1e-3}
    )
    assert_close(ours, theirs, "float32")


def _lion_reference(params, grads_fn, steps, lr, betas, wd):  # type: ignore[no-untyped-def]
    """Lion written from the paper's Algorithm 2 in torch (torch.optim has no Lion)."""
    m = [torch.zeros_like(p) for p in params]
    for _ in range(steps):
        grads = grads_fn(params)
        with torch.no_grad():
            for p, g, mi in zip(params, grads, m):
                c = betas[0] * mi + (1 - betas[0]) * g
                p.sub_(lr * (torch.sign(c) + wd * p))
                mi.mul_(betas[1]).add_((1 - betas[1]) * g)
    return params


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kwargs", [{"lr": 1e-3}, {"lr": 3e-3, "betas": (0.95, 0.98), "weight_decay": 0.1}])
def test_lion_matches_paper(kwargs, dtype):  # type: ignore[no-untyped-def]
    init, x, y = _init(dtype)
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    ours = [ds.tensor(a, dtype=dtype, requires_grad=True) for a in init]
    opt = optim.Lion(ours, **kwargs)
    dx, dy = ds.tensor(x, dtype=dtype), ds.tensor(y, dtype=dtype)
    for _ in range(STEPS):
        opt.zero_grad()
        _ours_loss(ours, dx, dy).backward()
        opt.step()
    tx, ty = torch.tensor(x, dtype=tdtype), torch.tensor(y, dtype=tdtype)

    def grads_fn(ps):  # type: ignore[no-untyped-def]
        ps = [p.detach().requires_grad_(True) for p in ps]
        return torch.autograd.grad(_torch_loss(ps, tx, ty), ps)

    theirs = [torch.tensor(a, dtype=tdtype) for a in init]
    _lion_reference(
        theirs, grads_fn, STEPS, kwargs["lr"], kwargs.get("betas", (0.9, 0.99)), kwargs.get("weight_decay", 0.0)
    )
    assert_close([p.detach().numpy() for p in ours], [t.detach().numpy() for t in theirs], dtype)


@pytest.mark.parametrize("name", [*TORCH_NAMED, "LBFGS"])
def test_defaults_match_torch(name):  # type: ignore[no-untyped-def]
    import inspect

    ours = inspect.signature(getattr(optim, name).__init__).parameters
    theirs = inspect.signature(getattr(torch.optim, name).__init__).parameters
    for key, p in theirs.items():
        if key in ("self", "params", "foreach", "capturable", "differentiable", "fused"):
            continue
        assert key in ours, f"{name} lacks torch's option {key!r}"
        assert ours[key].default == p.default, f"{name}.{key}: default {ours[key].default!r}, torch {p.default!r}"


def test_lion_defaults_are_the_papers():
    """torch.optim has no Lion: the defaults are those of the paper's reference implementation
    (Chen et al., 2023, google/automl lion_pytorch.py): lr=1e-4, betas=(0.9, 0.99), weight_decay=0."""
    import inspect

    params = inspect.signature(optim.Lion.__init__).parameters
    assert params["lr"].default == 1e-4
    assert params["betas"].default == (0.9, 0.99)
    assert params["weight_decay"].default == 0.0
    assert params["maximize"].default is False


def test_clip_norm_option_matches_clip_grad_norm():
    def clip(ps):  # type: ignore[no-untyped-def]
        torch.nn.utils.clip_grad_norm_(ps, 0.05)

    ours, theirs = run_both(
        lambda p, **k: optim.SGD(p, clip_norm=0.05, **k), torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, torch_clip=clip
    )
    assert_close(ours, theirs, "float32")


def test_clip_value_option_matches_clip_grad_value():
    def clip(ps):  # type: ignore[no-untyped-def]
        torch.nn.utils.clip_grad_value_(ps, 0.01)

    ours, theirs = run_both(
        lambda p, **k: optim.Adam(p, clip_value=0.01, **k), torch.optim.Adam, {"lr": 1e-2}, torch_clip=clip
    )
    assert_close(ours, theirs, "float32")


def test_clip_option_leaves_grad_untouched():
    w = ds.tensor([3.0, 4.0], requires_grad=True)
    opt = optim.SGD([w], lr=1.0, clip_norm=1.0)
    (w * w).sum().backward()
    opt.step()
    np.testing.assert_allclose(w.grad.detach().numpy(), [6.0, 8.0])
    np.testing.assert_allclose(w.detach().numpy(), [3.0 - 0.6, 4.0 - 0.8], rtol=1e-5)


def test_nonfinite_gradient_raises_when_asked():
    w = ds.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([w], clip_norm=1.0, error_if_nonfinite=True)
    (w * w).sum().backward()
    w.grad.array[0] = np.nan
    with pytest.raises(RuntimeError, match="NaN or inf"):
        opt.step()
    np.testing.assert_array_equal(w.detach().numpy(), [1.0, 2.0])


def test_param_without_grad_is_skipped_like_torch():
    """A parameter whose .grad is None neither moves nor advances its state (PyTorch semantics)."""
    init, x, y = _init("float32")
    ours = [ds.tensor(a, requires_grad=True) for a in init]
    theirs = [torch.tensor(a, requires_grad=True) for a in init]
    opt = optim.Adam(ours, lr=1e-2)
    topt = torch.optim.Adam(theirs, lr=1e-2)
    dx, dy = ds.tensor(x), ds.tensor(y)
    tx, ty = torch.tensor(x), torch.tensor(y)
    for step in range(40):
        opt.zero_grad()
        topt.zero_grad()
        _ours_loss(ours, dx, dy).backward()
        _torch_loss(theirs, tx, ty).backward()
        if step % 3 == 0:  # the last bias misses some steps
            ours[3].grad = None
            theirs[3].grad = None
        opt.step()
        topt.step()
    assert opt.state[ours[3]]["step"] == int(topt.state[theirs[3]]["step"]) == 26
    assert_close([p.detach().numpy() for p in ours], [t.detach().numpy() for t in theirs], "float32")


def test_model_sees_updates_without_copies():
    w = ds.tensor([[1.0, 2.0]], requires_grad=True)
    b = ds.tensor([0.5], requires_grad=True)
    opt = optim.SGD([w, b], lr=0.1)
    assert w.array.base is not None and w.array.base is b.array.base  # views of one flat buffer
    (w.sum() + b.sum()).backward()
    opt.step()
    np.testing.assert_allclose(w.detach().numpy(), [[0.9, 1.9]])


@pytest.mark.host_only  # found by the host array's reference count; a held device array is not looked for
def test_an_array_held_elsewhere_keeps_seeing_the_parameter():
    w = ds.tensor([[1.0, 2.0]], requires_grad=True)
    held = w.array  # as PyTorch's w.numpy(): the same memory, so it must follow the updates
    opt = optim.SGD([w], lr=0.1)
    (w.sum()).backward()
    opt.step()
    np.testing.assert_allclose(to_host(held), [[0.9, 1.9]])


def test_replaced_data_is_picked_up():
    w = ds.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.5)
    w.array = np.array([10.0, 20.0], np.float32)  # e.g. weights loaded by assignment
    (w * w).sum().backward()
    opt.step()
    np.testing.assert_allclose(w.detach().numpy(), [0.0, 0.0])


def test_closure_returns_loss():
    w = ds.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)

    def closure():  # type: ignore[no-untyped-def]
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss) == 1.0
    np.testing.assert_allclose(w.detach().numpy(), [0.8])


def test_zero_grad_set_to_none_false_keeps_zeroed_buffer():
    w = ds.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.detach().numpy(), [0.0])
    opt.zero_grad()
    assert w.grad is None


def test_gradients_accumulate_until_zero_grad():
    w = ds.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    for _ in range(2):
        (w * w).sum().backward()  # two micro-batches: grad 2 + 2
    opt.step()
    np.testing.assert_allclose(w.detach().numpy(), [1.0 - 0.1 * 4.0])


def test_float32_stays_float32():
    w = ds.tensor(np.ones((3, 3)), requires_grad=True)
    opt = optim.NAdam([w], lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    assert w.dtype == np.float32
    for v in opt.state[w].values():
        if isinstance(v, np.ndarray):
            assert v.dtype == np.float32


def test_from_transform_wraps_a_user_chain():
    T = optim.transforms
    init, x, y = _init("float32")
    ours = [ds.tensor(a, requires_grad=True) for a in init]
    chain = T.chain(T.clip_by_global_norm(1.0), T.trace(0.9, nesterov=True), T.scale_by_lr())
    opt = optim.Optimizer.from_transform(ours, chain, lr=0.05)

    def clip(ps):  # type: ignore[no-untyped-def]
        torch.nn.utils.clip_grad_norm_(ps, 1.0)

    theirs = [torch.tensor(a, requires_grad=True) for a in init]
    topt = torch.optim.SGD(theirs, lr=0.05, momentum=0.9, nesterov=True)
    dx, dy = ds.tensor(x), ds.tensor(y)
    tx, ty = torch.tensor(x), torch.tensor(y)
    for _ in range(50):
        opt.zero_grad()
        _ours_loss(ours, dx, dy).backward()
        opt.step()
        topt.zero_grad()
        _torch_loss(theirs, tx, ty).backward()
        clip(theirs)
        topt.step()
    assert_close([p.detach().numpy() for p in ours], [t.detach().numpy() for t in theirs], "float32")


ALL = [
    "GD",
    "SGD",
    "Adagrad",
    "RMSprop",
    "Adadelta",
    "Rprop",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "Lion",
    "LBFGS",
]


def _w():  # type: ignore[no-untyped-def]
    return [ds.zeros(2, requires_grad=True)]


@pytest.mark.parametrize("name", ALL)
def test_negative_lr_is_refused_with_the_value(name):  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"lr=-0\.5"):
        getattr(optim, name)(_w(), lr=-0.5)


@pytest.mark.parametrize("name", ALL)
def test_unknown_option_lists_the_valid_ones(name):  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['lerning_rate'\].*valid options are: lr"):
        getattr(optim, name)(_w(), lr=0.1, lerning_rate=0.1)


@pytest.mark.parametrize("name", ALL)
def test_every_shared_option_is_accepted(name):  # type: ignore[no-untyped-def]
    opt = getattr(optim, name)(_w(), lr=0.1, clip_norm=1.0, clip_value=2.0, error_if_nonfinite=True)
    assert (opt.clip_norm, opt.clip_value, opt.error_if_nonfinite) == (1.0, 2.0, True)


@pytest.mark.slow
def test_a_misspelt_option_is_a_type_error_that_mypy_reports(tmp_path):  # type: ignore[no-untyped-def]
    import pathlib
    import subprocess
    import sys

    pytest.importorskip("mypy")
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import downslope as ds\nfrom downslope import optim\n"
        "w = ds.zeros(2, requires_grad=True)\n"
        "optim.Adam([w], lr=0.1, clip_norm=1.0)\n"  # a shared option: fine
        "optim.Adam([w], lrr=0.1)\n"
    )
    src = pathlib.Path(ds.__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent", str(probe)],
        capture_output=True,
        text=True,
        env={"MYPYPATH": str(src), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert 'probe.py:5: error: Unexpected keyword argument "lrr"' in done.stdout, done.stdout
    assert "probe.py:4" not in done.stdout, done.stdout


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Lion"])
@pytest.mark.parametrize("betas", [(1.0, 0.9), (0.9, 1.0), (-0.1, 0.9), (0.9,), "0.9"])
def test_betas_outside_unit_interval_are_refused(name, betas):  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="betas"):
        getattr(optim, name)(_w(), betas=betas)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("Adam", {"eps": -1e-8}, "eps=-1e-08"),
        ("Adam", {"weight_decay": -0.1}, "weight_decay=-0.1"),
        ("SGD", {"momentum": -0.9}, "momentum=-0.9"),
        ("SGD", {"nesterov": True}, "Nesterov"),
        ("SGD", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "dampening=0.1"),
        ("RMSprop", {"alpha": 1.5}, "alpha=1.5"),
        ("Adadelta", {"rho": 1.1}, "rho=1.1"),
        ("Adagrad", {"lr_decay": -1.0}, "lr_decay=-1.0"),
        ("NAdam", {"momentum_decay": -1.0}, "momentum_decay=-1.0"),
        ("LBFGS", {"history_size": 0}, "history_size=0"),
        ("Adam", {"lr": float("nan")}, "lr=nan"),
        ("Adam", {"clip_norm": -1.0}, "clip_norm=-1.0"),
    ],
)
def test_bad_hyperparameters_raise_clear_errors(name, kwargs, match):  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        getattr(optim, name)(_w(), **kwargs)


def test_bad_param_groups_raise():
    w = ds.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"lr=-1"):
        optim.SGD([{"params": [w], "lr": -1}])
    opt = optim.Adam([w])
    with pytest.raises(ValueError, match="already belong"):
        opt.add_param_group({"params": [w]})
    with pytest.raises(ValueError, match="betas"):
        opt.add_param_group({"params": [ds.zeros(1, requires_grad=True)], "betas": (0.9, 2.0)})


def test_bad_parameter_collections_raise():
    w = ds.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match="set"):
        optim.Adam({w})
    with pytest.warns(UserWarning, match="duplicate parameters"):  # as PyTorch (tests/optim/test_duplicate_params.py)
        optim.Adam([w, w])
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(TypeError, match="single Tensor"):
        optim.Adam(w)
    with pytest.raises(TypeError, match="ndarray"):
        optim.Adam([np.zeros(2)])
    with pytest.raises(ValueError, match="leaf"):
        optim.Adam([w * 2])
    with pytest.raises(TypeError, match="lr"):
        optim.GD([w])


def test_base_optimizer_needs_a_transform():
    with pytest.raises(TypeError, match="from_transform"):
        optim.Optimizer([ds.zeros(1, requires_grad=True)], {"lr": 0.1})


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "Adamax", "NAdam", "RAdam", "Lion"]),
    shapes=st.lists(st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple), min_size=1, max_size=4),
    masks=st.lists(st.lists(st.booleans(), min_size=4, max_size=4), min_size=6, max_size=6),
)
def test_flat_buffers_equal_per_parameter_loop(name, shapes, masks):  # type: ignore[no-untyped-def]
    """The flat fast path (with its subset path for missing gradients) computes what a loop over
    single parameters computes, whatever the shapes and whichever gradients are missing."""
    rng = np.random.default_rng(len(shapes))
    init = [rng.normal(size=s) for s in shapes]
    kwargs = {"lr": 0.01, "weight_decay": 0.01}
    if name in ("SGD", "RMSprop"):
        kwargs["momentum"] = 0.9
    runs = []
    for flat in (True, False):
        params = [ds.tensor(a, dtype="float64", requires_grad=True) for a in init]
        opt = getattr(optim, name)(params, flat=flat, **kwargs)
        for step, mask in enumerate(masks):
            opt.zero_grad()
            for i, p in enumerate(params):
                if mask[i % 4]:
                    p.grad = ds.tensor(np.cos(np.arange(p.numel()) + step + i).reshape(p.shape), dtype="float64")
            opt.step()
        runs.append([p.detach().numpy().copy() for p in params])
        # PyTorch's SGD keeps no step count in its state; the others a float32 0-d tensor
        # (and, as PyTorch's, no entry at all for a parameter that never took a step)
        steps = [int(opt.state[p].get("step", 0)) for p in params] if name != "SGD" else None
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    if steps is not None:
        assert steps == [sum(m[i % 4] for m in masks) for i in range(len(shapes))]


def test_adagrad_group_initial_accumulator_value_closed_form():
    """As PyTorch's: every sum starts at the constructor's initial_accumulator_value, whatever a group
    says, also for a group added later and for a parameter whose state is reset."""
    a, b = ds.ones(3, requires_grad=True), ds.ones(2, requires_grad=True)
    opt = optim.Adagrad(
        [{"params": [a]}, {"params": [b], "initial_accumulator_value": 3.0}], lr=0.1, initial_accumulator_value=0.5
    )
    assert opt.param_groups[1]["initial_accumulator_value"] == 3.0  # kept in the group, as PyTorch keeps it
    ((a * a).sum() + (b * b).sum()).backward()  # gradient 2 everywhere
    opt.step()
    np.testing.assert_allclose(a.detach().numpy(), 1 - 0.1 * 2 / np.sqrt(0.5 + 4), rtol=1e-6)
    np.testing.assert_allclose(b.detach().numpy(), 1 - 0.1 * 2 / np.sqrt(0.5 + 4), rtol=1e-6)


def test_adagrad_initial_accumulator_value_as_torch_for_added_groups_and_resets():
    def run(lib):  # type: ignore[no-untyped-def]
        a, b, c = (lib.nn.Parameter(lib.tensor([1.0, -2.0], dtype=lib.float64)) for _ in range(3))
        opt = lib.optim.Adagrad(
            [{"params": [a]}, {"params": [b], "initial_accumulator_value": 3.0}], lr=0.1, initial_accumulator_value=0.5
        )
        opt.add_param_group({"params": [c], "initial_accumulator_value": 7.0})
        assert len(opt.state[c]) == 0  # a group added later gets its state at its first step
        for i in range(4):
            if i == 2:
                opt.state[b] = {}  # made afresh at the next step, from the constructor's value
            opt.zero_grad()
            sum((p * p * (k + 1)).sum() for k, p in enumerate((a, b, c))).backward()
            opt.step()
        return [p.detach().numpy() for p in (a, b, c)], opt.state[c]["sum"].numpy()

    (ours, our_sum), (theirs, their_sum) = run(ds), run(torch)
    np.testing.assert_allclose(np.concatenate(ours), np.concatenate(theirs), rtol=1e-12)
    np.testing.assert_allclose(our_sum, their_sum, rtol=1e-12)


def test_named_parameters_are_accepted_and_named_in_the_state_dict():
    w, b = ds.ones(2, requires_grad=True), ds.zeros(1, requires_grad=True)
    opt = optim.SGD([("layer.weight", w), ("layer.bias", b)], lr=0.1)
    assert opt.param_groups[0]["params"][0] is w and opt.param_groups[0]["params"][1] is b
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["layer.weight", "layer.bias"]
    (w.sum() + b.sum()).backward()
    opt.step()
    np.testing.assert_allclose(w.detach().numpy(), [0.9, 0.9])


def test_error_if_nonfinite_without_clipping_fails_fast_and_changes_nothing():
    w = ds.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9, error_if_nonfinite=True)
    (w * w).sum().backward()
    opt.step()
    after_one = w.detach().numpy().copy()
    buf = opt.state[w]["momentum_buffer"].clone()
    opt.zero_grad()
    (w * w).sum().backward()
    w.grad.array[1] = np.inf
    with pytest.raises(RuntimeError, match="NaN or inf"):
        opt.step()
    np.testing.assert_array_equal(w.detach().numpy(), after_one)
    np.testing.assert_array_equal(to_host(opt.state[w]["momentum_buffer"]), to_host(buf))
    assert opt.state_dict()["counts"] == {0: 1}  # SGD's count of updates did not advance either


def test_asgd_keeps_torchs_parameter_average() -> None:
    rng = np.random.default_rng(4)
    w0 = rng.standard_normal(6).astype(np.float32)
    w, tw = ds.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    opt = optim.ASGD([w], lr=0.05, t0=3, lambd=1e-3)
    topt = torch.optim.ASGD([tw], lr=0.05, t0=3, lambd=1e-3)
    for _ in range(8):
        opt.zero_grad(), topt.zero_grad()
        ((w - 1.0) ** 4).sum().backward()
        ((tw - 1.0) ** 4).sum().backward()
        opt.step(), topt.step()
    np.testing.assert_allclose(to_host(opt.state[w]["ax"]), topt.state[tw]["ax"].detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_pytorchs_kernel_options_are_accepted(name):  # type: ignore[no-untyped-def]
    import inspect

    flags = {"foreach": None, "fused": False, "capturable": False, "differentiable": False}
    if hasattr(torch.optim, name):  # the flags PyTorch's class takes (SGD has no capturable, RMSprop no fused)
        taken = inspect.signature(getattr(torch.optim, name)).parameters
        flags = {k: v for k, v in flags.items() if k in taken}
    opt = getattr(optim, name)(_w(), lr=0.1, **flags)
    assert opt.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize("name", [n for n in ALL if n not in ("GD", "Lion", "LBFGS")])
@pytest.mark.parametrize("flag", ["foreach", "fused", "capturable"])
def test_a_kernel_flag_pytorchs_class_lacks_is_a_type_error_as_there(name, flag):  # type: ignore[no-untyped-def]
    import inspect

    if flag in inspect.signature(getattr(torch.optim, name)).parameters:
        getattr(optim, name)(_w(), lr=0.1, **{flag: False})
        return
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{flag}'"):
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], lr=0.1, **{flag: False})
    with pytest.raises(ds.errors.ArgumentTypeError, match=f"{name}.*unexpected keyword argument '{flag}'"):
        getattr(optim, name)(_w(), lr=0.1, **{flag: False})


@pytest.mark.parametrize("name", [n for n in ALL if n not in ("GD", "Lion", "LBFGS")])
def test_differentiable_true_is_refused_not_ignored(name):  # type: ignore[no-untyped-def]
    # PyTorch records the step so gradients flow through it; downslope's step would silently cut that graph
    with pytest.raises(ds.errors.UnimplementedError, match=r"differentiable=True.*out-of-place"):
        getattr(optim, name)(_w(), lr=0.1, differentiable=True)
    opt = getattr(optim, name)(_w(), lr=0.1)
    with pytest.raises(NotImplementedError, match=r"add_param_group.*differentiable=True"):
        opt.add_param_group({"params": [ds.zeros(1, requires_grad=True)], "differentiable": True})


def _host_gradients(params: list[ds.Tensor]) -> None:
    """A fixed gradient rule (sin of the values), computed on the host and moved to each parameter's device."""
    for p in params:
        p.grad = ds.tensor(np.sin(p.detach().cpu().detach().numpy()) + 0.1, dtype=p.dtype, device=p.device)


@pytest.mark.parametrize("built", ["before the move", "after the move"])
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("Adam", {"lr": 1e-2, "weight_decay": 1e-2, "clip_norm": 0.5, "error_if_nonfinite": True}),
        ("SGD", {"lr": 0.1, "momentum": 0.9, "clip_value": 0.05}),
        ("ASGD", {"lr": 5e-2, "t0": 2}),
    ],
)
def test_optimizer_on_the_strict_device_follows_model_to_and_matches_the_cpu_bit_for_bit(name, kwargs, built):
    from downslope import nn

    ds.manual_seed(0)
    on_cpu = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
    moved = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
    moved.load_state_dict(on_cpu.state_dict())
    cpu_opt = getattr(optim, name)(on_cpu.parameters(), **kwargs)
    if built == "before the move":
        opt = getattr(optim, name)(moved.parameters(), **kwargs)
        moved.to("strict")
    else:
        opt = getattr(optim, name)(moved.to("strict").parameters(), **kwargs)
    for step in range(6):
        for model, o in ((on_cpu, cpu_opt), (moved, opt)):
            o.zero_grad()
            params = list(model.parameters())
            _host_gradients(params if step % 3 else params[:-1])  # the last bias misses some steps
            o.step()
    assert all(p.device == "strict" for p in moved.parameters())
    for a, b in zip(on_cpu.parameters(), moved.parameters()):
        np.testing.assert_array_equal(b.detach().cpu().detach().numpy(), a.detach().numpy())
    ours, reference = opt.state_dict(), cpu_opt.state_dict()
    for pos, entry in reference["state"].items():
        for key, value in entry.items():
            got = ours["state"][pos][key]
            assert type(got) is type(value)  # host arrays in the state dict, whatever the device
            np.testing.assert_array_equal(got, value)
    fresh = getattr(optim, name)(moved.parameters(), **kwargs)
    fresh.load_state_dict(ours)  # host arrays load onto the device
    for model, o in ((on_cpu, cpu_opt), (moved, fresh)):
        o.zero_grad()
        _host_gradients(list(model.parameters()))
        o.step()
    for a, b in zip(on_cpu.parameters(), moved.parameters()):
        np.testing.assert_array_equal(b.detach().cpu().detach().numpy(), a.detach().numpy())


def test_parameters_on_two_devices_in_one_group_are_refused_naming_both():
    params = [ds.zeros(2, device="cpu", requires_grad=True), ds.zeros(2, device="strict", requires_grad=True)]
    with pytest.raises(RuntimeError, match=r"different devices \(cpu, strict\)"):
        optim.SGD(params, lr=0.1)
