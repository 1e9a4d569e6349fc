"""The transforms alone, on flat arrays: each rule against its textbook formula written out in
float64, composition with chain, live hyperparameters, schedules, and no float64 creep."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from downslope.optim import transforms as T


def _run(t, grads, params=None, group=None):  # type: ignore[no-untyped-def]
    """Apply a transform to a sequence of gradients (float64) and return the list of updates."""
    params = np.zeros_like(grads[0]) if params is None else params
    state = t.init(params)
    out = []
    for i, g in enumerate(grads):
        u, state = t.update(g.copy(), state, params, T.StepContext(group or {}, i + 1, i))
        out.append(u.copy())
    return out, state


@pytest.fixture
def grads():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    return [rng.normal(size=7) for _ in range(6)]


def test_scale_by_adam_is_the_paper_rule(grads):  # type: ignore[no-untyped-def]
    b1, b2, eps = 0.8, 0.95, 1e-6
    ups, _ = _run(T.scale_by_adam(b1, b2, eps), grads)
    m = v = 0.0
    for t, (g, u) in enumerate(zip(grads, ups), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        np.testing.assert_allclose(u, (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps), rtol=1e-12)


def test_amsgrad_uses_the_running_max(grads):  # type: ignore[no-untyped-def]
    grads = [g * s for g, s in zip(grads, [10, 1, 1, 1, 1, 1])]  # a big first gradient, then small ones
    ups, state = _run(T.scale_by_adam(0.9, 0.99, 0.0, amsgrad=True), grads)
    m = v = vmax = 0.0
    for t, (g, u) in enumerate(zip(grads, ups), start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g * g
        vmax = np.maximum(vmax, v)
        np.testing.assert_allclose(u, (m / (1 - 0.9**t)) / (np.sqrt(vmax) / np.sqrt(1 - 0.99**t)), rtol=1e-12)
    assert "max_exp_avg_sq" in state


def test_trace_first_step_and_nesterov(grads):  # type: ignore[no-untyped-def]
    ups, _ = _run(T.trace(0.9, dampening=0.5), grads)
    buf = grads[0]
    np.testing.assert_allclose(ups[0], grads[0])
    for g, u in zip(grads[1:], ups[1:]):
        buf = 0.9 * buf + 0.5 * g
        np.testing.assert_allclose(u, buf, rtol=1e-12)
    ups, _ = _run(T.trace(0.9, nesterov=True), grads)
    buf = grads[0]
    np.testing.assert_allclose(ups[0], grads[0] + 0.9 * grads[0])
    for g, u in zip(grads[1:], ups[1:]):
        buf = 0.9 * buf + g
        np.testing.assert_allclose(u, g + 0.9 * buf, rtol=1e-12)


def test_rms_adagrad_adadelta_adamax_lion(grads):  # type: ignore[no-untyped-def]
    rms, _ = _run(T.scale_by_rms(0.9, 1e-8, centered=True), grads)
    ada, _ = _run(T.scale_by_adagrad(lr_decay=0.1, initial_accumulator_value=0.5, eps=1e-10), grads)
    delta, _ = _run(T.scale_by_adadelta(0.9, 1e-6), grads)
    amax, _ = _run(T.scale_by_adamax(0.9, 0.99, 1e-8), grads)
    lion, _ = _run(T.scale_by_lion(0.9, 0.99), grads)
    v = mg = u_acc = m = u_inf = lm = 0.0
    s = 0.5
    for t, g in enumerate(grads, start=1):
        v = 0.9 * v + 0.1 * g * g
        mg = 0.9 * mg + 0.1 * g
        np.testing.assert_allclose(rms[t - 1], g / (np.sqrt(v - mg * mg) + 1e-8), rtol=1e-10)
        s = s + g * g
        np.testing.assert_allclose(ada[t - 1], g / (np.sqrt(s) + 1e-10) / (1 + (t - 1) * 0.1), rtol=1e-12)
        v_d = v  # same decay 0.9 as the RMS above
        step = np.sqrt(u_acc + 1e-6) / np.sqrt(v_d + 1e-6) * g
        u_acc = 0.9 * u_acc + 0.1 * step * step
        np.testing.assert_allclose(delta[t - 1], step, rtol=1e-12)
        m = 0.9 * m + 0.1 * g
        u_inf = np.maximum(0.99 * u_inf, np.abs(g) + 1e-8)
        np.testing.assert_allclose(amax[t - 1], m / u_inf / (1 - 0.9**t), rtol=1e-12)
        np.testing.assert_array_equal(lion[t - 1], np.sign(0.9 * lm + 0.1 * g))
        lm = 0.99 * lm + 0.01 * g


def test_radam_is_sgd_with_momentum_until_the_variance_is_tractable(grads):  # type: ignore[no-untyped-def]
    ups, _ = _run(T.scale_by_radam(0.9, 0.999, 1e-8), grads)
    m = 0.0
    for t, (g, u) in enumerate(zip(grads[:5], ups[:5]), start=1):  # rho_t <= 5 for t <= 5 with b2 = 0.999
        m = 0.9 * m + 0.1 * g
        np.testing.assert_allclose(u, m / (1 - 0.9**t), rtol=1e-12)
    assert not np.allclose(ups[5], (0.9 * m + 0.1 * grads[5]) / (1 - 0.9**6))


def test_chain_weight_decay_and_lr(grads):  # type: ignore[no-untyped-def]
    p = np.linspace(-1, 1, 7)
    t = T.chain(T.add_decayed_weights(0.1), T.scale_by_lr(0.5))
    ups, state = _run(t, grads[:1], params=p)
    np.testing.assert_allclose(ups[0], -0.5 * (grads[0] + 0.1 * p))
    assert state == ({}, {})


def test_lr_from_group_and_schedule(grads):  # type: ignore[no-untyped-def]
    ups, _ = _run(T.scale_by_lr(), grads[:1], group={"lr": 0.25})
    np.testing.assert_allclose(ups[0], -0.25 * grads[0])
    ups, _ = _run(T.scale_by_lr(lambda count: 1.0 / (1 + count)), grads[:3])
    for i, (g, u) in enumerate(zip(grads, ups)):
        np.testing.assert_allclose(u, -g / (1 + i))
    with pytest.raises(KeyError, match="lr"):
        _run(T.scale_by_lr(), grads[:1], group={"momentum": 0.9})


def test_clip_transforms(grads):  # type: ignore[no-untyped-def]
    g = grads[0] * 10
    (u,), _ = _run(T.clip_by_global_norm(1.0), [g])
    np.testing.assert_allclose(np.linalg.norm(u), 1.0, rtol=1e-5)
    (u,), _ = _run(T.clip(0.5), [g])
    np.testing.assert_array_equal(u, np.clip(g, -0.5, 0.5))


def test_float32_stays_float32_even_with_numpy_float64_hyperparameters():
    g = np.ones(4, np.float32)
    t = T.chain(
        T.scale_by_nadam(np.float64(0.9), np.float64(0.999)),
        T.add_decayed_weights(np.float64(0.1)),
        T.scale_by_lr(np.float64(0.1)),
    )
    (u,), state = _run(t, [g], params=np.ones(4, np.float32))
    assert u.dtype == np.float32
    assert all(a.dtype == np.float32 for a in state[0].values())


def test_chain_rejects_non_transforms():
    with pytest.raises(TypeError, match="argument 1"):
        T.chain(T.scale_by_adam(), lambda g: g)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(st.integers(1, 6), min_size=3, max_size=3), seed=st.integers(0, 1000))
def test_per_element_steps_equal_separate_runs(steps, seed):  # type: ignore[no-untyped-def]
    """When parameters have taken different numbers of steps, the per-element step array must
    give each the same result as running it alone with its own scalar step."""
    rng = np.random.default_rng(seed)
    sizes = [2, 3, 1]
    t = T.scale_by_radam()
    g = rng.normal(size=6)
    state = {"exp_avg": rng.normal(size=6) * 0.1, "exp_avg_sq": rng.random(6) * 0.1}
    together, _ = t.update(
        g.copy(),
        {k: v.copy() for k, v in state.items()},
        np.zeros(6),
        T.StepContext({}, np.repeat(np.array(steps, float), sizes), 0),
    )
    start = 0
    for n, s in zip(sizes, steps):
        sl = slice(start, start + n)
        alone, _ = t.update(
            g[sl].copy(), {k: v[sl].copy() for k, v in state.items()}, np.zeros(n), T.StepContext({}, s, 0)
        )
        np.testing.assert_allclose(together[sl], alone, rtol=1e-12)
        start += n
