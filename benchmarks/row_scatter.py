"""The backward of an integer-tensor row gather ``x[idx]`` (a graph network's edge pattern: 50,000
indices into a 10,000 x 64 float32 table) against PyTorch, one thread each: the gradient's
scatter-add through the compiled kernel (``ops._jit_scatter``, numba on) and through the NumPy path
(numba off: ``indexing._rows_in_rounds``, each row's k-th value added in round k after one stable
sort, where it took ``np.add.at`` on one flat index), with a dense incoming gradient and with the
broadcast one of ``.sum()``.

Peers run in one process on the same data, interleaved slice by slice (the order rotating); each line
is the median over slices of CPU time per call (``time.process_time``) and the ratio is downslope's
over PyTorch's (<= 1.0: downslope is as fast or faster). The gradients are checked against PyTorch's
first (equal within float32 rounding: the two add each row's values in different orders).
Run: python benchmarks/row_scatter.py [--quick]
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import check_close, interleaved, parse_args, print_header, show_ratio  # noqa: E402

WIDTH = 52


def main() -> None:
    import torch

    import downslope as ds
    from downslope import jit_gate

    args, threads = parse_args(__doc__, "a few calls only (CI smoke test, no timing claims)")
    print_header(threads)
    slices, steps = (2, 1) if args.quick else (15, 5)
    rng = np.random.default_rng(0)
    table = rng.standard_normal((10_000, 64)).astype(np.float32)
    idx = rng.integers(0, 10_000, 50_000)
    g = rng.standard_normal((50_000, 64)).astype(np.float32)
    xt, xd = torch.tensor(table, requires_grad=True), ds.tensor(table, requires_grad=True)
    it, idd = torch.tensor(idx), ds.tensor(idx)
    gt, gd = torch.tensor(g), ds.tensor(g)
    yt, yd = xt[it], xd[idd]  # the graph is kept: each call runs the backward only

    def backward_t() -> Any:
        return torch.autograd.grad(yt, xt, gt, retain_graph=True)[0]

    def backward_d() -> Any:
        return ds.autograd.grad(yd, xd, gd, retain_graph=True)[0]

    def summed_t() -> Any:
        xt.grad = None
        xt[it].sum().backward()
        return xt.grad

    def summed_d() -> Any:
        xd.grad = None
        xd[idd].sum().backward()
        return xd.grad

    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("x[idx] backward (grad of 50,000 x 64)", backward_t, backward_d),
        ("x[idx].sum() forward + backward", summed_t, summed_d),
    ]
    for switched_off in (False, True):
        label = "NumPy path" if switched_off else "compiled"
        for title, theirs, ours in cases:
            with jit_gate.disabled() if switched_off else contextlib.nullcontext():
                check_close(title, ours().numpy(), theirs().numpy(), 1e-5)
                show_ratio(f"{title}, {label}", interleaved({"torch": theirs, "downslope": ours}, slices, steps),
                           WIDTH, "ms")  # fmt: skip


if __name__ == "__main__":
    main()
