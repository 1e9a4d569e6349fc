"""Speed against PyTorch, one thread each, of the implicit reparameterisation gradient of Gamma-family
samples: ``rsample((100000,)).sum().backward()`` of Gamma(c, 1), Chi2(c) and StudentT(c) with c a
one-element parameter (a VAE's or a Bayesian model's sampling step), and Hurwitz's zeta at q far below
0 (special.zeta(3, -20000.3) over 64 elements).

Peers run in one process, interleaved slice by slice (the order rotating), so a burst of load from
other jobs hits both alike; each line is the median over slices of CPU time per call, and the ratio is
downslope's over PyTorch's (<= 1.0: downslope is as fast or faster). The gradients are checked against
torch's ``_standard_gamma_grad`` at downslope's own samples, and zeta against torch's values, before
timing.
Run: python benchmarks/distributions_rsample.py [--quick]
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

_N = 100_000
_FAMILIES: dict[str, Callable[[Any, Any], Any]] = {
    "Gamma(c, 1) rsample backward": lambda lib, c: lib.distributions.Gamma(c, 1.0),
    "Chi2(c) rsample backward": lambda lib, c: lib.distributions.Chi2(c),
    "StudentT(c) rsample backward": lambda lib, c: lib.distributions.StudentT(c),
}


def _rsample_backward(lib: Any, family: Callable[[Any, Any], Any]) -> Callable[[], object]:
    c = lib.tensor([2.0], requires_grad=True)

    def step() -> object:
        family(lib, c).rsample((_N,)).sum().backward()
        return c.grad

    return step


def bench_rsample(name: str, slices: int, budget_us: float) -> float:
    import torch

    import downslope as ds

    family = _FAMILIES[name]
    if name.startswith("Gamma"):  # the gradient at downslope's samples is torch's formula there
        c = ds.tensor([2.0], requires_grad=True)
        sample = family(ds, c).rsample((_N,))
        sample.sum().backward()
        want = torch._standard_gamma_grad(torch.full((_N, 1), 2.0), torch.from_numpy(sample.detach().numpy())).sum(0)
        check_close(name, c.grad.numpy(), want.numpy(), tol=1e-4)
    peers = {"torch": _rsample_backward(torch, family), "downslope": _rsample_backward(ds, family)}
    steps = steps_for(list(peers.values()), budget_us)
    return show_ratio(name, interleaved(peers, slices, steps), 34, unit="ms")


def bench_zeta(slices: int, budget_us: float) -> float:
    import torch

    import downslope as ds

    x = np.full(64, 3.0)
    q = -20000.3 - np.arange(64.0)
    theirs = torch.special.zeta(torch.from_numpy(x), torch.from_numpy(q))
    ours = ds.special.zeta(ds.from_numpy(x), ds.from_numpy(q))
    check_close("zeta", ours.numpy(), theirs.numpy(), tol=1e-10)
    peers = {
        "torch": lambda: torch.special.zeta(torch.from_numpy(x), torch.from_numpy(q)),
        "downslope": lambda: ds.special.zeta(ds.from_numpy(x), ds.from_numpy(q)),
    }
    steps = steps_for(list(peers.values()), budget_us)
    return show_ratio("zeta(3, q ~ -2e4), 64 elements", interleaved(peers, slices, steps), 34, unit="ms")


def main() -> None:
    args, threads = parse_args(__doc__, "fewer and shorter slices (a smoke run)")
    print_header(threads)
    slices, budget = (3, 20_000.0) if args.quick else (9, 100_000.0)
    ratios = [bench_rsample(name, slices, budget) for name in _FAMILIES]
    ratios.append(bench_zeta(slices, budget))
    print(f"geometric mean ratio {statistics.geometric_mean(ratios):.2f}; worst {max(ratios):.2f}")


if __name__ == "__main__":
    main()
