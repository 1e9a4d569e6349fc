"""A differential layout fuzzer (tests/test_tensor_layout_torch.py runs it): random chains of
convolution-family outputs (conv1d/conv2d, batch norm, ReLU, max/avg pooling, interpolate), channels-last
copies, views (permute, transpose, narrow, slicing, select, unsqueeze, expand, flatten, unflatten,
reshape, view, detach), joins (stack, cat) and clones in each memory format, ending in an in-place write
through the last tensor (index assignment, add_, mul_, copy_, fill_, zero_). ``run_one`` runs one chain
in torch and downslope and says where they differ: the values of every tensor in the chain after the
write (a write must reach its base exactly where torch's does), and whether each step raises."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

VIEWS = [
    "permute", "transpose", "narrow", "slice", "select", "unsqueeze", "expand", "flatten", "unflatten",
    "reshape", "view", "clone_p", "clone_c", "clone_cl", "contig", "detach",
]  # fmt: skip
PRODUCERS = ["conv2d", "bn", "relu", "maxpool", "avgpool", "interp", "cl", "cl_contig"]
WRITES = ["setitem", "add_", "copy_", "fill_", "zero_", "mul_"]


def _pick(rng: random.Random, t: Any) -> tuple[str, tuple[Any, ...]]:  # noqa: C901  (one branch per step kind)
    """A step that applies to ``t`` (a torch tensor): its name and parameters."""
    nd = t.dim()
    names = list(VIEWS) + ["stack", "cat"]
    if nd == 4 and t.shape[2] >= 2 and t.shape[3] >= 2:
        names += PRODUCERS * 2
    if nd == 3 and t.shape[2] >= 3:
        names.append("conv1d")
    for _ in range(50):
        n = rng.choice(names)
        if n == "permute" and nd >= 2:
            p = list(range(nd))
            rng.shuffle(p)
            return n, tuple(p)
        if n == "transpose" and nd >= 2:
            return n, tuple(rng.sample(range(nd), 2))
        if n == "narrow" and nd >= 1:
            d = rng.randrange(nd)
            if t.shape[d] >= 2:
                s = rng.randrange(t.shape[d] - 1)
                return n, (d, s, rng.randint(1, t.shape[d] - s))
        if n == "slice" and nd >= 1:
            d = rng.randrange(nd)
            if t.shape[d] >= 2:
                return n, (d, rng.randrange(2), rng.choice([1, 2]))
        if n == "select" and nd >= 2:
            d = rng.randrange(nd)
            return n, (d, rng.randrange(t.shape[d]))
        if n == "unsqueeze" and nd <= 5:
            return n, (rng.randint(0, nd),)
        if n == "expand":
            ones = [i for i in range(nd) if t.shape[i] == 1]
            if ones:
                s = list(t.shape)
                s[rng.choice(ones)] = 2
                return n, tuple(s)
        if n == "flatten" and nd >= 2:
            a = rng.randrange(nd - 1)
            return n, (a, rng.randrange(a + 1, nd))
        if n == "unflatten" and nd >= 1:
            d = rng.randrange(nd)
            if t.shape[d] % 2 == 0 and t.shape[d] > 0:
                return n, (d, (2, t.shape[d] // 2))
        if n in ("reshape", "view"):
            c = rng.choice(["flat", "merge", "split"])
            if c == "flat":
                return n, (-1,)
            if c == "merge" and nd >= 2:
                return n, (t.shape[0] * t.shape[1], *t.shape[2:])
            if c == "split" and nd >= 1 and t.shape[-1] % 2 == 0:
                return n, (*t.shape[:-1], 2, t.shape[-1] // 2)
        if n in ("clone_p", "clone_c", "contig", "detach") or (n == "clone_cl" and nd == 4):
            return n, ()
        if n in PRODUCERS or n == "conv1d":
            return n, (rng.randrange(10**6),)
        if n in ("stack", "cat") and nd >= 1:
            return n, (rng.randrange(nd + (n == "stack")), rng.randrange(10**6))
    return "clone_p", ()


def _other(lib: Any, shape: tuple[int, ...], seed: int) -> Any:
    """A second tensor of ``shape`` to join: a convolution's output when 4-d."""
    r = np.random.default_rng(seed)
    if len(shape) == 4:
        x = lib.tensor(r.standard_normal(shape).astype(np.float32))
        w = lib.tensor(r.standard_normal((shape[1], shape[1], 1, 1)).astype(np.float32))
        return lib.nn.functional.conv2d(x, w)
    return lib.tensor(r.standard_normal(shape).astype(np.float32))


def _apply(lib: Any, name: str, p: tuple[Any, ...], t: Any) -> Any:  # noqa: C901  (one branch per step kind)
    f = lib.nn.functional
    simple = {
        "permute": lambda: t.permute(*p),
        "transpose": lambda: t.transpose(*p),
        "narrow": lambda: t.narrow(*p),
        "select": lambda: t.select(*p),
        "unsqueeze": lambda: t.unsqueeze(*p),
        "expand": lambda: t.expand(*p),
        "flatten": lambda: t.flatten(*p),
        "unflatten": lambda: t.unflatten(*p),
        "reshape": lambda: t.reshape(*p),
        "view": lambda: t.view(*p),
        "clone_p": lambda: t.clone(),
        "clone_c": lambda: t.clone(memory_format=lib.contiguous_format),
        "clone_cl": lambda: t.clone(memory_format=lib.channels_last),
        "contig": lambda: t.contiguous(),
        "detach": lambda: t.detach(),
        "cl": lambda: t.to(memory_format=lib.channels_last),
        "cl_contig": lambda: t.contiguous(memory_format=lib.channels_last),
        "bn": lambda: f.batch_norm(t, None, None, training=True),
        "relu": lambda: f.relu(t),
        "maxpool": lambda: f.max_pool2d(t, 2),
        "avgpool": lambda: f.avg_pool2d(t, 2),
        "interp": lambda: f.interpolate(t, scale_factor=2, mode="nearest"),
    }
    if name in simple:
        return simple[name]()
    if name == "slice":
        d, start, step = p
        return t[(slice(None),) * d + (slice(start, None, step),)]
    r = np.random.default_rng(p[-1])
    if name in ("conv2d", "conv1d"):
        size = (int(r.integers(1, 4)), t.shape[1], *((3, 3) if name == "conv2d" else (3,)))
        w = lib.tensor(r.standard_normal(size).astype(np.float32))
        return getattr(f, name)(t, w, padding=1)
    if name in ("stack", "cat"):
        return getattr(lib, name)([t, _other(lib, tuple(t.shape), p[1])], p[0])
    raise AssertionError(name)


def _write(lib: Any, name: str, t: Any, seed: int) -> None:
    r = np.random.default_rng(seed)
    if t.numel() == 0:
        return
    if name == "setitem":
        t[tuple(int(r.integers(0, s)) for s in t.shape)] = 100.0
        if t.dim():
            t[(slice(None),) * (t.dim() - 1) + (0,)] = -7.0
    elif name == "add_":
        t.add_(1000.0)
    elif name == "mul_":
        t.mul_(-3.0)
    elif name == "copy_":
        t.copy_(lib.tensor(r.standard_normal(tuple(t.shape)).astype(np.float32)))
    elif name == "fill_":
        t.fill_(5.0)
    else:
        t.zero_()


def _values(t: Any) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def run_one(seed: int, torch: Any, ds: Any, max_steps: int = 6) -> tuple[list[Any], list[str]]:
    """One random chain in both libraries: (its steps, the differences found)."""
    rng = random.Random(seed)
    r = np.random.default_rng(seed)
    shape = (rng.choice([1, 2]), rng.choice([1, 3]), rng.choice([2, 4]), rng.choice([2, 4, 5]))
    x0 = r.standard_normal(shape).astype(np.float32)
    theirs, ours = [torch.tensor(x0)], [ds.tensor(x0)]
    steps: list[Any] = []
    problems: list[str] = []
    for _ in range(rng.randint(1, max_steps)):
        name, p = _pick(rng, theirs[-1])
        steps.append((name, p))
        try:
            a = _apply(torch, name, p, theirs[-1])
        except RuntimeError:
            try:
                _apply(ds, name, p, ours[-1])
            except RuntimeError:
                pass  # both refuse
            else:
                if name != "view":  # downslope lays an unshared tensor out anew where torch's view refuses
                    problems.append(f"torch raised, downslope did not at {name}{p}")
            break
        try:
            b = _apply(ds, name, p, ours[-1])
        except Exception as e:  # noqa: BLE001  (any refusal torch does not make is a finding)
            problems.append(f"downslope raised at {name}{p}: {type(e).__name__}: {e}")
            break
        theirs.append(a)
        ours.append(b)
    write = rng.choice(WRITES)
    steps.append(write)
    seed_w = rng.randrange(10**6)
    errors = []
    for lib, chain in ((torch, theirs), (ds, ours)):
        try:
            _write(lib, write, chain[-1], seed_w)
            errors.append(None)
        except RuntimeError as e:
            errors.append(e)
    repeats = write in ("fill_", "zero_") and 0 in ours[-1].stride() and ours[-1].numel() > 1
    if repeats and errors[0] is None and errors[1] is not None:
        pass  # downslope refuses any write into a tensor whose elements repeat; torch fills one (left as is)
    elif (errors[0] is None) != (errors[1] is None):
        problems.append(f"{write}: torch {errors[0]!r}, downslope {errors[1]!r}")
    else:
        for i, (a, b) in enumerate(zip(theirs, ours)):
            va, vb = _values(a), _values(b)
            if va.shape != vb.shape or not np.allclose(va, vb, rtol=1e-4, atol=1e-3):
                problems.append(f"values of step {i} differ after {write}")
    return steps, problems
