"""Speed against PyTorch, one thread each, of small distribution calls: ``log_prob``, ``sample`` and
``rsample`` of Gamma, Chi2, Beta, Dirichlet (5 categories), StudentT, Poisson, Binomial (10 trials) and
MultivariateNormal (4 dimensions, from a covariance matrix) at batch 1 and batch 64, float32, on
parameters that do not require gradients (the per-step calls of a sampler, a VAE's prior or an RL
policy), and the special functions under them (lgamma, digamma) on 1 and 64 elements.

Peers run in one process, interleaved slice by slice (the order rotating), so a burst of load from
other jobs hits both alike; each line is the median over slices of CPU time per call, and the ratio is
downslope's over PyTorch's (<= 1.0: downslope is as fast or faster). The log_probs and special
functions are checked against torch's values before timing (the samples differ: separate generators).
Run: python benchmarks/distributions_small.py [--quick] [--only Gamma,Beta,...]
"""

from __future__ import annotations

import os
import statistics
import sys
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_close, interleaved, parse_args, print_header, show_ratio, steps_for  # noqa: E402

_DIM = 4


def _inputs(batch: int) -> dict[str, np.ndarray]:
    """The parameters and the scored values, float32, the same for both libraries."""
    rng = np.random.default_rng(batch)
    a = rng.normal(size=(_DIM, _DIM))
    return {
        "c": rng.uniform(0.5, 4.0, batch).astype(np.float32),
        "r": rng.uniform(0.5, 3.0, batch).astype(np.float32),
        "x": rng.uniform(0.1, 3.0, batch).astype(np.float32),
        "u": rng.uniform(0.05, 0.95, batch).astype(np.float32),
        "k": rng.integers(0, 10, batch).astype(np.float32),
        "conc": rng.uniform(0.5, 3.0, (batch, 5)).astype(np.float32),
        "simplex": rng.dirichlet(np.ones(5), batch).astype(np.float32),
        "loc": rng.normal(size=(batch, _DIM)).astype(np.float32),
        "cov": (a @ a.T + _DIM * np.eye(_DIM)).astype(np.float32),
    }


def _families(lib: Any, inputs: dict[str, np.ndarray]) -> dict[str, tuple[Any, Any]]:
    """name -> (the distribution, a value to score), built by one library from the shared inputs."""
    D = lib.distributions  # noqa: N806
    t = {name: lib.from_numpy(value) for name, value in inputs.items()}
    return {
        "Gamma": (D.Gamma(t["c"], t["r"]), t["x"]),
        "Chi2": (D.Chi2(t["c"]), t["x"]),
        "Beta": (D.Beta(t["c"], t["r"]), t["u"]),
        "Dirichlet": (D.Dirichlet(t["conc"]), t["simplex"]),
        "StudentT": (D.StudentT(t["c"], t["x"], t["r"]), t["u"]),
        "Poisson": (D.Poisson(t["r"]), t["k"]),
        "Binomial": (D.Binomial(10, probs=t["u"]), t["k"]),
        "MultivariateNormal": (D.MultivariateNormal(t["loc"], covariance_matrix=t["cov"]), t["loc"] + 0.25),
    }


def bench_family(name: str, batch: int, slices: int, budget_us: float) -> list[float]:
    import torch

    import downslope as ds

    inputs = _inputs(batch)
    theirs, ours = _families(torch, inputs)[name], _families(ds, inputs)[name]
    check_close(f"{name} log_prob", ours[0].log_prob(ours[1]).numpy(), theirs[0].log_prob(theirs[1]).numpy(), 1e-5)
    ratios = []
    calls = ["log_prob", "sample"] + (["rsample"] if theirs[0].has_rsample else [])
    for call in calls:
        if call == "log_prob":
            peers = {"torch": lambda: theirs[0].log_prob(theirs[1]), "downslope": lambda: ours[0].log_prob(ours[1])}
        else:
            peers = {"torch": getattr(theirs[0], call), "downslope": getattr(ours[0], call)}
        steps = steps_for(list(peers.values()), budget_us)
        ratios.append(show_ratio(f"{name}.{call} batch {batch}", interleaved(peers, slices, steps), 38))
    return ratios


def bench_special(name: str, size: int, slices: int, budget_us: float) -> float:
    import torch

    import downslope as ds

    x = np.random.default_rng(size).uniform(0.1, 6.0, size).astype(np.float32)
    xt, xd = torch.from_numpy(x), ds.from_numpy(x)
    check_close(name, getattr(ds, name)(xd).numpy(), getattr(torch, name)(xt).numpy(), 1e-5)
    peers = {"torch": lambda: getattr(torch, name)(xt), "downslope": lambda: getattr(ds, name)(xd)}
    steps = steps_for(list(peers.values()), budget_us)
    return show_ratio(f"{name}, {size} element(s)", interleaved(peers, slices, steps), 38)


_NAMES = ["Gamma", "Chi2", "Beta", "Dirichlet", "StudentT", "Poisson", "Binomial", "MultivariateNormal"]


def main() -> None:
    def flags(parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--only", default=",".join(_NAMES), help=f"comma-separated of {', '.join(_NAMES)}")

    args, threads = parse_args(__doc__, "fewer and shorter slices (a smoke run)", flags)
    print_header(threads)
    slices, budget = (3, 5_000.0) if args.quick else (9, 40_000.0)
    ratios: list[float] = []
    for special in ("lgamma", "digamma"):
        for size in (1, 64):
            ratios.append(bench_special(special, size, slices, budget))
    for name in args.only.split(","):
        if name not in _NAMES:
            raise SystemExit(f"unknown family {name!r}; pick from {', '.join(_NAMES)}")
        for batch in (1, 64):
            ratios += bench_family(name, batch, slices, budget)
    print(f"geometric mean ratio {statistics.geometric_mean(ratios):.2f}; worst {max(ratios):.2f}")


if __name__ == "__main__":
    main()
