"""F.embedding_bag / nn.EmbeddingBag against PyTorch: every mode, padding, per-sample weights,
include_last_offset, 2-D input, empty bags, max_norm, scale_grad_by_freq and sparse=True (with
SparseAdam); values and gradients in float64, and work that grows with the number of indices."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest

import downslope as ds
import downslope.nn.functional as F
from downslope import nn, optim
from downslope.devices import to_host

from .._counting import lines_run

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(11)
TABLE = RNG.standard_normal((12, 3))
FLAT = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0, 0, 7, 11, 3])
OFFSETS = np.array([0, 3, 3, 5, 5, 9, 12])  # bags 1 and 3 are empty, the last has one index
ROWS2D = np.array([[1, 2, 0, 4], [0, 0, 0, 0], [4, 4, 9, 3]])


def _run(lib: Any, fn: Any, inputs: Any, table: np.ndarray, psw: np.ndarray | None, **kw: Any) -> Any:
    """Output, weight gradient and per-sample-weight gradient of a weighted sum of ``fn``'s output."""
    w = lib.tensor(table, dtype=lib.float64, requires_grad=True)
    s = None if psw is None else lib.tensor(psw, dtype=lib.float64, requires_grad=True)
    out = fn(*[lib.tensor(a) for a in inputs], w, per_sample_weights=s, **kw)
    proj = lib.tensor(np.arange(out.numel()).reshape(tuple(out.shape)) % 5 - 2.0, dtype=lib.float64)
    (out * proj).sum().backward()
    grads = (w.grad.detach().numpy(), None if s is None else s.grad.detach().numpy())
    return out.detach().numpy(), *grads


def _compare(inputs: Any, psw: np.ndarray | None = None, table: np.ndarray = TABLE, **kw: Any) -> None:
    def ours(*a: Any, **k: Any) -> Any:
        if len(a) == 3:
            return F.embedding_bag(a[0], a[2], a[1], **k)
        return F.embedding_bag(a[0], a[1], **k)

    def theirs(*a: Any, **k: Any) -> Any:
        if len(a) == 3:
            return TF.embedding_bag(a[0], a[2], a[1], **k)
        return TF.embedding_bag(a[0], a[1], **k)

    got = _run(ds, ours, inputs, table, psw, **kw)
    ref = _run(torch, theirs, inputs, table, psw, **kw)
    for what, a, b in zip(("value", "weight grad", "per_sample_weights grad"), got, ref):
        if b is None:
            assert a is None
            continue
        assert a.shape == b.shape, what
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 4, -12])
def test_values_and_gradients_match_torch(mode: str, padding_idx: int | None) -> None:
    _compare((FLAT, OFFSETS), mode=mode, padding_idx=padding_idx)
    _compare((ROWS2D,), mode=mode, padding_idx=padding_idx)
    last = np.append(OFFSETS, FLAT.size)
    _compare((FLAT, last), mode=mode, padding_idx=padding_idx, include_last_offset=True)
    if mode == "sum":
        _compare((FLAT, OFFSETS), psw=RNG.standard_normal(FLAT.size), mode=mode, padding_idx=padding_idx)
        _compare((ROWS2D,), psw=RNG.standard_normal(ROWS2D.shape), mode=mode, padding_idx=padding_idx)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_empty_bags_trailing_bags_and_no_indices_give_zeros(mode: str) -> None:
    _compare((np.array([3, 1, 2]), np.array([0, 0, 3, 3, 3])), mode=mode)  # leading and trailing empty bags
    _compare((np.zeros(0, dtype=np.int64), np.array([0, 0])), mode=mode)  # no indices at all
    _compare((np.array([0, 0, 1]), np.array([0, 2])), mode=mode, padding_idx=0)  # a bag of padding only
    _compare((np.array([2, 5]), np.array([0, 1, 2])), mode=mode, include_last_offset=True)


def test_max_gradient_goes_to_the_first_maximum_of_a_tie() -> None:
    table = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 5.0]])
    _compare((np.array([0, 1, 2, 1, 0]), np.array([0, 3])), table=table, mode="max")


def test_int32_indices_and_offsets() -> None:
    got = F.embedding_bag(ds.tensor(FLAT, dtype=ds.int32), ds.tensor(TABLE), ds.tensor(OFFSETS, dtype=ds.int32))
    ref = TF.embedding_bag(
        torch.tensor(FLAT, dtype=torch.int32), torch.tensor(TABLE), torch.tensor(OFFSETS, dtype=torch.int32)
    )
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-6)
    assert got.dtype == ds.float32


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("norm_type", [2.0, 1.0])
def test_max_norm_renormalizes_the_rows_looked_up_in_place(mode: str, norm_type: float) -> None:
    table = RNG.standard_normal((12, 3)) * 2
    ours, theirs = ds.tensor(table, dtype=ds.float64), torch.tensor(table)
    got = F.embedding_bag(ds.tensor(FLAT), ours, ds.tensor(OFFSETS), max_norm=1.0, norm_type=norm_type, mode=mode)
    ref = TF.embedding_bag(
        torch.tensor(FLAT), theirs, torch.tensor(OFFSETS), max_norm=1.0, norm_type=norm_type, mode=mode
    )
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)  # only the rows looked up changed
    assert not np.allclose(ours.numpy(), table)


def test_max_norm_module_renormalizes_its_weight_and_still_trains() -> None:
    ours = nn.EmbeddingBag(12, 3, max_norm=0.5, mode="sum")
    theirs = torch.nn.EmbeddingBag(12, 3, max_norm=0.5, mode="sum")
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    ours(ds.tensor(FLAT), ds.tensor(OFFSETS)).pow(2).sum().backward()
    theirs(torch.tensor(FLAT), torch.tensor(OFFSETS)).pow(2).sum().backward()
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_scale_grad_by_freq_divides_by_the_count_in_the_batch(mode: str, padding_idx: int | None) -> None:
    # The reference: torch's nn.Embedding(scale_grad_by_freq=True) (the documented rule) reduced per
    # bag; torch's CPU embedding_bag kernel looks the count up at the wrong position (see DIFFERS).
    flat, offsets = np.array([0, 2, 2, 1, 0, 0, 2]), np.array([0, 2, 5])
    psw = RNG.standard_normal(flat.size) if mode == "sum" else None
    w = ds.tensor(TABLE, dtype=ds.float64, requires_grad=True)
    s = None if psw is None else ds.tensor(psw, dtype=ds.float64, requires_grad=True)
    out = F.embedding_bag(
        ds.tensor(flat), w, ds.tensor(offsets), scale_grad_by_freq=True, mode=mode, per_sample_weights=s,
        padding_idx=padding_idx,
    )  # fmt: skip
    proj = np.arange(out.numel()).reshape(out.shape) - 2.0
    (out * ds.tensor(proj, dtype=ds.float64)).sum().backward()
    tw = torch.tensor(TABLE, requires_grad=True)
    rows = TF.embedding(torch.tensor(flat), tw, padding_idx=padding_idx, scale_grad_by_freq=True)
    if psw is not None:
        rows = rows * torch.tensor(psw)[:, None]
    bags = []
    for lo, hi in zip(offsets, [*offsets[1:], flat.size]):
        member = [i for i in range(lo, hi) if flat[i] != padding_idx]
        part = rows[member].sum(0)
        bags.append(part / max(len(member), 1) if mode == "mean" else part)
    ref = torch.stack(bags)
    (ref * torch.tensor(proj)).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_scale_grad_by_freq_agrees_with_torch_where_its_kernel_counts_right() -> None:
    # every index occurs equally often, so torch's CPU kernel reads the right count
    flat, offsets = np.array([3, 1, 1, 3, 5, 5]), np.array([0, 3])
    _compare((flat, offsets), mode="sum", scale_grad_by_freq=True)
    _compare((flat, offsets), mode="mean", scale_grad_by_freq=True)


def test_sparse_notes_the_rows_looked_up_and_sparse_adam_matches_torch() -> None:
    table = RNG.standard_normal((10, 3)).astype(np.float32)
    ours = nn.EmbeddingBag(10, 3, mode="mean", sparse=True, padding_idx=4)
    theirs = torch.nn.EmbeddingBag(10, 3, mode="mean", sparse=True, padding_idx=4)
    ours.load_state_dict({"weight": table})
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(table))
    opt_ours, opt_theirs = (
        optim.SparseAdam(ours.parameters(), lr=0.1),
        torch.optim.SparseAdam(theirs.parameters(), lr=0.1),
    )
    for ix, off in [([1, 2, 3, 4], [0, 2]), ([5, 1], [0, 1]), ([4, 8, 8], [0, 1])]:
        opt_ours.zero_grad()
        opt_theirs.zero_grad()
        (ours(ds.tensor(ix), ds.tensor(off)) ** 2).sum().backward()
        (theirs(torch.tensor(ix), torch.tensor(off)) ** 2).sum().backward()
        noted = to_host(ours.weight.grad_rows.mask(ours.weight)).tolist()
        assert noted == [i in set(ix) - {4} for i in range(10)]  # the padding row is not noted, as in torch
        opt_ours.step()
        opt_theirs.step()
        np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_max_mode_refuses_scale_grad_by_freq_and_sparse_as_torch_does() -> None:
    w = ds.tensor(TABLE)
    with pytest.raises(ValueError, match="max mode does not support scaling the gradient by the frequency"):
        F.embedding_bag(ds.tensor(FLAT), w, ds.tensor(OFFSETS), mode="max", scale_grad_by_freq=True)
    with pytest.raises(ValueError, match="max mode does not support sparse weights"):
        F.embedding_bag(ds.tensor(FLAT), w, ds.tensor(OFFSETS), mode="max", sparse=True)


def _torch_bags(
    flat: np.ndarray, offsets: np.ndarray, w: Any, mode: str, psw: Any = None, padding_idx: Any = None
) -> Any:
    """embedding_bag composed from torch ops that have second derivatives (torch's own has none)."""
    rows = TF.embedding(torch.tensor(flat), w)
    if psw is not None:
        rows = rows * psw[:, None]
    bags = []
    for lo, hi in zip(offsets, [*offsets[1:], flat.size]):
        member = [i for i in range(lo, hi) if flat[i] != padding_idx]
        if not member:
            bags.append(torch.zeros(w.shape[1], dtype=w.dtype))
        elif mode == "max":
            bags.append(rows[member].max(0).values)
        else:
            bags.append(rows[member].sum(0) / (len(member) if mode == "mean" else 1))
    return torch.stack(bags)


def test_double_backward_matches_torch() -> None:
    psw = np.linspace(-1, 1, FLAT.size)
    w = ds.tensor(TABLE, dtype=ds.float64, requires_grad=True)
    s = ds.tensor(psw, dtype=ds.float64, requires_grad=True)
    out = F.embedding_bag(ds.tensor(FLAT), w, ds.tensor(OFFSETS), mode="sum", per_sample_weights=s)
    (gw,) = ds.autograd.grad((out**2).sum(), (w,), create_graph=True)
    (gw * ds.tensor(TABLE, dtype=ds.float64)).sum().backward()
    tw = torch.tensor(TABLE, requires_grad=True)
    ts = torch.tensor(psw, requires_grad=True)
    (tgw,) = torch.autograd.grad((_torch_bags(FLAT, OFFSETS, tw, "sum", ts) ** 2).sum(), (tw,), create_graph=True)
    (tgw * torch.tensor(TABLE)).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.grad.numpy(), ts.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_double_backward_through_mean_and_max(mode: str) -> None:
    w = ds.tensor(TABLE, dtype=ds.float64, requires_grad=True)
    out = F.embedding_bag(ds.tensor(FLAT), w, ds.tensor(OFFSETS), mode=mode, padding_idx=4)
    (gw,) = ds.autograd.grad((out**3).sum(), (w,), create_graph=True)
    (gw**2).sum().backward()
    tw = torch.tensor(TABLE, requires_grad=True)
    (tgw,) = torch.autograd.grad(
        (_torch_bags(FLAT, OFFSETS, tw, mode, padding_idx=4) ** 3).sum(), (tw,), create_graph=True
    )
    (tgw**2).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-11, atol=1e-12)


def test_bad_input_errors_say_what_was_expected_and_given() -> None:
    w = ds.tensor(TABLE)
    x = ds.tensor([0, 1, 2])
    with pytest.raises(
        RuntimeError, match=r"offsets\[-1\] can not be greater than input's length 3, got offsets\[-1\] of 4"
    ):
        F.embedding_bag(x, w, ds.tensor([0, 4]))
    with pytest.raises(RuntimeError, match=r"offsets\[-1\] can not be greater than input's length 3"):
        F.embedding_bag(x, w, ds.tensor([0, 1, 4]), include_last_offset=True)
    with pytest.raises(RuntimeError, match=r"offsets\[0\] has to be 0.*got 1"):
        F.embedding_bag(x, w, ds.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"must not decrease, got \[0, 2, 1\]"):
        F.embedding_bag(x, w, ds.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="offsets has to be a 1-D tensor, got shape"):
        F.embedding_bag(x, w, ds.tensor([[0, 1]]))
    with pytest.raises(TypeError, match="integer offsets"):
        F.embedding_bag(x, w, ds.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="integer indices"):
        F.embedding_bag(ds.tensor([0.0, 1.0]), w, ds.tensor([0]))
    with pytest.raises(ValueError, match="per_sample_weights need mode='sum', got mode='mean'"):
        F.embedding_bag(x, w, ds.tensor([0]), per_sample_weights=ds.ones(3))
    with pytest.raises(ValueError, match=r"per_sample_weights must have the input's shape \(3,\), got \(2,\)"):
        F.embedding_bag(x, w, ds.tensor([0]), mode="sum", per_sample_weights=ds.ones(2))
    with pytest.raises(RuntimeError, match="per_sample_weights must have the weight's dtype float32, got float64"):
        F.embedding_bag(x, w, ds.tensor([0]), mode="sum", per_sample_weights=ds.ones(3, dtype=ds.float64))
    with pytest.raises(ValueError, match="padding_idx 12 is out of range"):
        F.embedding_bag(x, w, ds.tensor([0]), padding_idx=12)
    with pytest.raises(ValueError, match="padding_idx 12 is out of range"):
        nn.EmbeddingBag(12, 3, padding_idx=12)


@pytest.mark.host_only
def test_an_index_out_of_range_is_refused() -> None:
    with pytest.raises(IndexError, match="index 12 is out of range for a table of 12 rows"):
        F.embedding_bag(ds.tensor([0, 12]), ds.tensor(TABLE), ds.tensor([0]))


@pytest.mark.host_only
@pytest.mark.slow
def test_work_grows_with_the_indices_not_indices_times_bags() -> None:
    # 200k indices in 10k bags: the bag-by-index mixing matrix this replaced (sum, mean: 2e9 entries) and its
    # Python loop over bags (max) took ~30 s here. Bounded by what the call allocates (tracemalloc sees
    # NumPy's buffers) and the Python lines it runs, not by its time (a shared machine); the speed against
    # torch is benchmarks/embedding.py's
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 50000, 200000)
    offsets = np.arange(0, 200000, 20)
    rows_bytes = idx.size * 32 * 4  # the gathered float32 rows, (200k, 32)
    for mode in ("mean", "sum", "max"):
        bag = nn.EmbeddingBag(50000, 32, mode=mode)
        bag(ds.tensor(idx[:100]), ds.tensor(offsets[:5])).sum().backward()  # warm up (compiled kernels)
        bag.zero_grad()
        x, o = ds.tensor(idx), ds.tensor(offsets)
        tracemalloc.start()
        try:
            _, lines = lines_run(lambda bag=bag, x=x, o=o: bag(x, o).sum().backward())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 16 * rows_bytes, f"{mode}: {peak / 2**20:.0f} MB allocated"
        assert lines < 10_000, f"{mode}: {lines} Python lines for 10k bags"
        assert bag.weight.grad is not None


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_include_last_offset_must_close_the_input(mode: str) -> None:
    """torch documents that the last offset equals the input's length; for a smaller one its own modes
    disagree (sum drops the trailing indices, max keeps them), so it is refused in one line."""
    bag = nn.EmbeddingBag(4, 2, mode=mode, include_last_offset=True)
    with pytest.raises(ValueError, match=r"include_last_offset=True .* must equal the input's length 4, got .* 2"):
        bag(ds.tensor([0, 1, 2, 3]), ds.tensor([0, 1, 2]))
    torch_bag = torch.nn.EmbeddingBag(4, 2, mode=mode, include_last_offset=True)
    torch_bag.load_state_dict({"weight": torch.from_numpy(bag.weight.detach().numpy().copy())})
    idx, offsets = np.array([0, 1, 2, 3]), np.array([0, 1, 4])  # the documented form: as torch
    ours = bag(ds.tensor(idx), ds.tensor(offsets)).detach().numpy()
    theirs = torch_bag(torch.from_numpy(idx), torch.from_numpy(offsets)).detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
