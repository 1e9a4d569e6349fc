"""An optimizer's step is an in-place write to each parameter it changes, as PyTorch's ``p.add_(...)``:
it bumps the parameter's version, so a graph that saved the old weights refuses a later backward
(PyTorch's "modified by an inplace operation") instead of silently using the new ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope.errors import StateError

torch = pytest.importorskip("torch")

MODIFIED = "modified by an inplace operation"

# (name, keyword arguments) of every built-in optimizer stepped on plain gradients
BUILT_INS: list[tuple[str, dict[str, Any]]] = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 0.1}),
    ("AdamW", {"lr": 0.1}),
    ("Adamax", {"lr": 0.1}),
    ("NAdam", {"lr": 0.1}),
    ("RAdam", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1}),
    ("Adadelta", {"lr": 0.1}),
    ("RMSprop", {"lr": 0.1}),
    ("Rprop", {"lr": 0.1}),
    ("ASGD", {"lr": 0.1}),
    ("Adafactor", {"lr": 0.1}),
    ("Muon", {"lr": 0.1}),
]


def _critic_then_actor(T: Any, make_opt: Callable[[Any], Any]) -> Any:
    """The actor-critic ordering bug: the critic's step runs before the actor's loss is backpropagated
    through a graph that saved the critic's old weights."""
    T.manual_seed(0)
    actor, critic = T.nn.Linear(2, 2), T.nn.Linear(2, 2, bias=False)
    opt = make_opt(list(critic.parameters()))
    x = T.ones(4, 2)
    q = critic(T.tanh(actor(x)))
    opt.zero_grad()
    (q - 1).pow(2).mean().backward(retain_graph=True)
    opt.step()
    (-q.mean()).backward()
    return actor.weight.grad


def _make(T: Any, name: str, kwargs: dict[str, Any]) -> Callable[[Any], Any]:
    return lambda params: getattr(T.optim, name)(params, **kwargs)


def test_the_actor_critic_repro_raises_as_in_torch() -> None:
    with pytest.raises(RuntimeError, match=MODIFIED):
        _critic_then_actor(torch, _make(torch, "SGD", {"lr": 0.1}))
    with pytest.raises(StateError, match=MODIFIED) as info:
        _critic_then_actor(ds, _make(ds, "SGD", {"lr": 0.1}))
    assert isinstance(info.value, RuntimeError)  # caught by torch code's `except RuntimeError`


@pytest.mark.parametrize(("name", "kwargs"), BUILT_INS, ids=lambda v: v if isinstance(v, str) else "")
def test_every_built_in_step_is_refused_by_a_graph_of_the_old_weights(name: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(RuntimeError, match=MODIFIED):
        _critic_then_actor(torch, _make(torch, name, kwargs))
    with pytest.raises(StateError, match=MODIFIED):
        _critic_then_actor(ds, _make(ds, name, kwargs))


def test_the_message_is_the_one_of_a_hand_written_update() -> None:
    def manual(params: list[Any]) -> Any:
        class Manual:
            def zero_grad(self) -> None:
                for p in params:
                    p.grad = None

            def step(self) -> None:
                with ds.no_grad():
                    for p in params:
                        p -= 0.1 * p.grad

        return Manual()

    with pytest.raises(StateError, match=MODIFIED) as by_hand:
        _critic_then_actor(ds, manual)
    with pytest.raises(StateError, match=MODIFIED) as by_step:
        _critic_then_actor(ds, _make(ds, "SGD", {"lr": 0.1}))
    assert str(by_hand.value) == str(by_step.value)


@pytest.mark.parametrize(("name", "kwargs"), BUILT_INS, ids=lambda v: v if isinstance(v, str) else "")
def test_a_training_loop_never_raises_and_matches_torch(name: str, kwargs: dict[str, Any]) -> None:
    def train(T: Any) -> np.ndarray:
        T.manual_seed(0)
        w = T.nn.Parameter(T.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2)))
        opt = getattr(T.optim, name)([w], **kwargs)
        x = T.tensor(np.arange(8, dtype=np.float32).reshape(4, 2) / 8)
        for _ in range(4):
            opt.zero_grad()
            (x @ w.T).tanh().pow(2).sum().backward()
            opt.step()
        return w.detach().numpy()

    np.testing.assert_allclose(train(ds), train(torch), rtol=2e-4, atol=2e-5)


def test_the_version_counts_one_write_per_step_for_the_parameters_stepped() -> None:
    a = ds.zeros(3, requires_grad=True)
    b = ds.zeros(2, requires_grad=True)
    alias = a.detach()  # shares a's version counter, as in PyTorch
    opt = ds.optim.Adam([a, b], lr=0.1)
    a.grad = ds.ones(3)
    opt.step()  # b has no gradient: PyTorch leaves it (and its version) alone
    assert (a._version, b._version, alias._version) == (1, 0, 1)
    b.grad = ds.ones(2)
    opt.step()
    assert (a._version, b._version) == (2, 1)


def test_tied_and_per_parameter_steps_bump_too() -> None:
    w = ds.zeros(4, requires_grad=True)
    tied = ds.zeros(4, requires_grad=True)
    tied.data = w.data  # weight tying by .data: the tied parameter is updated where it is
    opt = ds.optim.SGD([w, tied], lr=0.1)
    before = (w._version, tied._version)
    w.grad, tied.grad = ds.ones(4), ds.ones(4)
    opt.step()
    assert (w._version, tied._version) == (before[0] + 1, before[1] + 1)

    emb = ds.nn.Embedding(5, 2, sparse=True)
    sparse = ds.optim.SparseAdam(list(emb.parameters()), lr=0.1)
    out = emb(ds.tensor([1, 3])) * emb.weight[0]  # saves the weight's values
    out.sum().backward(retain_graph=True)
    sparse.step()
    assert emb.weight._version == 1
    with pytest.raises(StateError, match=MODIFIED):
        out.sum().backward()


def test_a_gradient_taken_after_the_step_through_an_older_graph_is_refused() -> None:
    w = ds.tensor([1.0, 2.0], requires_grad=True)
    opt = ds.optim.Adam([w], lr=0.1)
    y = (w * w).sum()
    (g,) = ds.autograd.grad(y, w, retain_graph=True)
    w.grad = g
    opt.step()
    with pytest.raises(StateError, match=MODIFIED):
        ds.autograd.grad(y, w)
    # a graph that reads no values of w is not refused (PyTorch saves none for it)
    z = (w + 1).sum()
    w.grad = ds.ones(2)
    opt.step()
    w.grad = None
    z.backward()
    assert w.grad.tolist() == [1.0, 1.0]


def test_lbfgs_writes_are_versioned_and_its_closures_never_raise() -> None:
    def run(T: Any) -> tuple[Any, Any]:
        x = T.nn.Parameter(T.tensor([1.5, -0.5]))
        opt = T.optim.LBFGS([x], max_iter=5, line_search_fn="strong_wolfe")

        def closure() -> Any:
            opt.zero_grad()
            loss = ((x - 1) ** 4).sum() + (x**2).sum()
            loss.backward()
            return loss

        held = (x * x).sum()  # a graph of the weights before the step
        for _ in range(2):
            opt.step(closure)
        return x, held

    x_ds, held = run(ds)
    x_t, held_t = run(torch)
    np.testing.assert_allclose(x_ds.detach().numpy(), x_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert x_ds._version > 0
    with pytest.raises(RuntimeError, match=MODIFIED):
        held_t.backward()
    with pytest.raises(StateError, match=MODIFIED):
        held.backward()


def test_an_optimizer_without_a_gradient_to_apply_writes_nothing() -> None:
    w = ds.zeros(2, requires_grad=True)
    opt = ds.optim.AdamW([w], lr=0.1)
    y = (w * w).sum()
    opt.step()  # no gradient yet: nothing changes, and the graph stays usable
    y.backward()
    assert w._version == 0


def test_an_averaged_models_update_is_versioned_as_in_torch() -> None:
    def run(T: Any) -> None:
        T.manual_seed(0)
        model = T.nn.Sequential(T.nn.Linear(2, 2), T.nn.Tanh(), T.nn.Linear(2, 1))
        swa = T.optim.swa_utils.AveragedModel(model)
        swa.update_parameters(model)
        y = swa(T.ones(3, 2)).sum()
        with T.no_grad():
            model[2].weight.add_(1.0)
        swa.update_parameters(model)
        y.backward()

    with pytest.raises(RuntimeError, match=MODIFIED):
        run(torch)
    with pytest.raises(StateError, match=MODIFIED):
        run(ds)
