"""Pure-function schedules against the torch scheduler that produces the same sequence, and used
inside a transform chain against torch.optim + scheduler."""

from __future__ import annotations

import numpy as np
import pytest

import downslope as ds
from downslope import optim
from downslope.optim import schedules as S
from downslope.optim import transforms as T

torch = pytest.importorskip("torch")
tls = torch.optim.lr_scheduler
STEPS = 200
LR = 0.1


def _torch_lrs(make, steps=STEPS):  # type: ignore[no-untyped-def]
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    sched = make(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])  # the lr the next optimizer step uses
        opt.step()
        sched.step()
    return np.array(lrs)


CASES = [
    (S.exponential_decay(LR, 1, 0.97), lambda o: tls.ExponentialLR(o, 0.97)),
    (S.exponential_decay(LR, 30, 0.5, staircase=True), lambda o: tls.StepLR(o, 30, 0.5)),
    (S.piecewise_constant_schedule(LR, {40: 0.1, 90: 0.1}), lambda o: tls.MultiStepLR(o, [40, 90], 0.1)),
    (S.linear_schedule(LR * 0.2, LR * 0.9, 60), lambda o: tls.LinearLR(o, 0.2, 0.9, total_iters=60)),
    (S.polynomial_schedule(LR, 0.0, 2.0, 150), lambda o: tls.PolynomialLR(o, total_iters=150, power=2.0)),
    (
        S.cosine_decay_schedule(LR, STEPS, alpha=0.05),
        lambda o: tls.CosineAnnealingLR(o, T_max=STEPS, eta_min=LR * 0.05),
    ),
    (
        S.warmup_cosine_decay_schedule(LR * 0.1, LR, warmup_steps=20, decay_steps=STEPS, end_value=LR * 0.01),
        lambda o: tls.SequentialLR(
            o,
            [tls.LinearLR(o, 0.1, 1.0, total_iters=20), tls.CosineAnnealingLR(o, T_max=STEPS - 20, eta_min=LR * 0.01)],
            milestones=[20],
        ),
    ),
]


@pytest.mark.parametrize(("schedule", "make"), CASES)
def test_same_values_as_the_torch_scheduler(schedule, make):  # type: ignore[no-untyped-def]
    ours = np.array([schedule(t) for t in range(STEPS)])
    np.testing.assert_allclose(ours, _torch_lrs(make), rtol=1e-10, atol=1e-15)


def test_schedule_in_a_chain_matches_torch_sgd_with_scheduler():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    w = ds.tensor(w0, requires_grad=True)
    opt = optim.Optimizer.from_transform([w], T.chain(T.trace(0.9), T.scale_by_lr(S.cosine_decay_schedule(0.1, 50))))
    tw = torch.tensor(w0, requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.1, momentum=0.9)
    tsched = tls.CosineAnnealingLR(topt, T_max=50)
    for _ in range(50):
        opt.zero_grad()
        ((ds.tensor(x) @ w).tanh() ** 2).mean().backward()
        opt.step()
        topt.zero_grad()
        (torch.tanh(torch.tensor(x) @ tw) ** 2).mean().backward()
        topt.step()
        tsched.step()
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-7)


def test_bad_arguments():
    with pytest.raises(ValueError, match="decay_steps"):
        S.cosine_decay_schedule(0.1, 0)
    with pytest.raises(ValueError, match="scales"):
        S.piecewise_constant_schedule(0.1, {10: -1.0})
    with pytest.raises(ValueError, match="boundaries"):
        S.join_schedules([S.constant_schedule(1.0)], [3])
