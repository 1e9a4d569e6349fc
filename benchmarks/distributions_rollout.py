"""Speed against PyTorch, one thread each, of the distribution calls an RL rollout makes at batch 1 on
every environment step: build the policy's distribution from the network's output, sample an action,
score it (all under no_grad), for Categorical, Normal, Bernoulli, Independent(Normal), a Tanh-squashed
Normal (SAC), a diagonal MultivariateNormal and OneHotCategorical; then two PPO-style action-selection
loops of 50 steps (forward, distribution, sample, log_prob, value, ``.item()``), with a Categorical and
with a Normal policy.

Peers run in one process, interleaved slice by slice (the order rotating), so a burst of load from
other jobs hits both alike; each line is the median over slices of CPU time per call, and the ratio is
downslope's over PyTorch's (<= 1.0: downslope is as fast or faster). The targets: each call within 2x
of torch, the loops within 1.2x. Values are checked against torch's before timing.
Run: python benchmarks/distributions_rollout.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_close, interleaved, parse_args, print_header, show_ratio, steps_for  # noqa: E402


def _no_grad(lib: Any, fn: Callable[[], object]) -> Callable[[], object]:
    def call() -> object:
        with lib.no_grad():
            return fn()

    return call


def _calls(lib: Any) -> dict[str, Callable[[], object]]:
    """One call of each kind, on one library (the same inputs for both)."""
    D = lib.distributions  # noqa: N806
    logits = lib.tensor([[0.3, -0.2]])
    mu, std = lib.tensor([0.1, -0.4]), lib.tensor([0.5, 1.5])
    cat, normal = D.Categorical(logits=logits), D.Normal(mu, std)
    action, x = cat.sample(), normal.sample()
    bern = D.Bernoulli(logits=logits)
    b = bern.sample()
    ind = D.Independent(D.Normal(mu, std), 1)
    tril = lib.diag_embed(std)
    mvn = D.MultivariateNormal(mu, scale_tril=tril)
    onehot = D.OneHotCategorical(logits=logits)
    oh = onehot.sample()
    tanh = D.TransformedDistribution(D.Normal(mu, std), [D.TanhTransform(cache_size=1)])
    squashed = lib.tensor([0.3, -0.5])
    calls = {
        "Categorical(logits)": lambda: D.Categorical(logits=logits),
        "Categorical.sample()": cat.sample,
        "Categorical.log_prob(a)": lambda: cat.log_prob(action),
        "Categorical.entropy()": cat.entropy,
        "Normal(mu, std)": lambda: D.Normal(mu, std),
        "Normal.sample()": normal.sample,
        "Normal.log_prob(x)": lambda: normal.log_prob(x),
        "Bernoulli(logits)": lambda: D.Bernoulli(logits=logits),
        "Bernoulli.sample()": bern.sample,
        "Bernoulli.log_prob(b)": lambda: bern.log_prob(b),
        "Independent(Normal, 1).log_prob": lambda: ind.log_prob(x),
        "MVN(scale_tril=diag)": lambda: D.MultivariateNormal(mu, scale_tril=tril),
        "MVN.sample()": mvn.sample,
        "MVN.log_prob(x)": lambda: mvn.log_prob(x),
        "OneHotCategorical.sample()": onehot.sample,
        "OneHotCategorical.log_prob(a)": lambda: onehot.log_prob(oh),
        "Tanh(Normal) build+sample": lambda: D.TransformedDistribution(
            D.Normal(mu, std), [D.TanhTransform(cache_size=1)]
        ).sample(),
        "Tanh(Normal).log_prob(y)": lambda: tanh.log_prob(squashed),
    }
    return {name: _no_grad(lib, fn) for name, fn in calls.items()}


def _check_values() -> None:
    """The scores both libraries give for the same inputs (the samples differ: separate generators)."""
    import torch

    import downslope as ds

    for lib in (torch, ds):
        lib.manual_seed(0)
    results = {}
    for lib in (torch, ds):
        D = lib.distributions  # noqa: N806
        logits, mu, std = lib.tensor([[0.3, -0.2]]), lib.tensor([0.1, -0.4]), lib.tensor([0.5, 1.5])
        x = lib.tensor([0.2, 0.7])
        results[lib.__name__] = np.concatenate(
            [
                D.Categorical(logits=logits).log_prob(lib.tensor([1])).numpy().ravel(),
                D.Normal(mu, std).log_prob(x).numpy().ravel(),
                D.Bernoulli(logits=logits).log_prob(lib.tensor([[1.0, 0.0]])).numpy().ravel(),
                D.MultivariateNormal(mu, scale_tril=lib.diag_embed(std)).log_prob(x).numpy().ravel(),
                D.TransformedDistribution(D.Normal(mu, std), [D.TanhTransform()]).log_prob(x).numpy().ravel(),
            ]
        )
    check_close("log_prob", results["downslope"], results["torch"], tol=1e-5)


def _rollout(lib: Any, continuous: bool) -> Callable[[], object]:
    """50 environment steps of PPO action selection (bench2.py of an RL port), on one library."""
    nn, D = lib.nn, lib.distributions  # noqa: N806
    lib.manual_seed(0)
    n_in = 8 if continuous else 4
    pi = nn.Sequential(nn.Linear(n_in, 64), nn.Tanh(), nn.Linear(64, 2))
    v = nn.Sequential(nn.Linear(n_in, 64), nn.Tanh(), nn.Linear(64, 1))
    log_std = nn.Parameter(lib.zeros(2))
    obs = np.random.RandomState(0).randn(n_in).astype(np.float32)

    def categorical() -> object:
        for _ in range(50):
            with lib.no_grad():
                x = lib.as_tensor(obs).unsqueeze(0)
                d = D.Categorical(logits=pi(x))
                a = d.sample()
                lp = d.log_prob(a)
                val = v(x)
            a.item(), lp.item(), val.item()
        return None

    def normal() -> object:
        for _ in range(50):
            with lib.no_grad():
                d = D.Normal(pi(lib.as_tensor(obs)), log_std.exp())
                a = d.sample()
                lp = d.log_prob(a).sum(-1)
            a.numpy(), lp.item()
        return None

    return normal if continuous else categorical


def main() -> None:
    import torch

    import downslope as ds

    args, threads = parse_args(__doc__, "fewer and shorter slices (a smoke run)")
    print_header(threads)
    _check_values()
    slices, budget = (3, 10_000.0) if args.quick else (9, 60_000.0)
    ours, theirs = _calls(ds), _calls(torch)
    calls = []
    for name in ours:
        peers = {"torch": theirs[name], "downslope": ours[name]}
        calls.append(show_ratio(name, interleaved(peers, slices, steps_for(list(peers.values()), budget)), 34))
    loops = []
    for name, continuous in (("PPO loop, Categorical (50 steps)", False), ("PPO loop, Normal (50 steps)", True)):
        peers = {"torch": _rollout(torch, continuous), "downslope": _rollout(ds, continuous)}
        times = interleaved(peers, slices, steps_for(list(peers.values()), budget * 10))
        loops.append(show_ratio(name, times, 34, unit="ms"))
    print(f"calls: geometric mean ratio {statistics.geometric_mean(calls):.2f}; worst {max(calls):.2f} (target 2.0)")
    print(f"loops: worst ratio {max(loops):.2f} (target 1.2)")


if __name__ == "__main__":
    main()
