"""DataLoader against torch.utils.data.DataLoader 2.13: positional arguments, batch sizes above the sample
count, batch_size=None, fresh batch arrays, the attributes torch code reads, timeout, and the edge cases
(empty datasets, empty batches, gradients through the collate)."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

import downslope as ds
from downslope.errors import ConfigError

torch = pytest.importorskip("torch")
TD = torch.utils.data
DD = ds.utils.data


def _values(batches):
    """Batches as nested Python lists, whatever the library (tuples and lists alike)."""
    out = []
    for b in batches:
        fields = b if isinstance(b, (tuple, list)) else [b]
        out.append([np.asarray(f.detach().numpy() if hasattr(f, "detach") else f.numpy()).tolist() for f in fields])
    return out


def _both(build):
    return build(torch, TD), build(ds, DD)


def test_positional_arguments_follow_torchs_order():
    x = np.arange(10, dtype=np.float32)
    order = list(range(9, -1, -1))

    def sampled(lib, u):
        return _values(u.DataLoader(u.TensorDataset(lib.from_numpy(x.copy())), 4, False, order))

    ref, ours = _both(sampled)
    assert ours == ref == [[[9.0, 8.0, 7.0, 6.0]], [[5.0, 4.0, 3.0, 2.0]], [[1.0, 0.0]]]

    def collated(lib, u):
        return list(u.DataLoader(list(range(5)), 2, False, None, None, 0, lambda s: ("mine", s)))

    ref, ours = _both(collated)
    assert ours == ref
    # the 9th positional is drop_last, the 13th the generator, as torch's
    ref, ours = _both(lambda lib, u: len(u.DataLoader(list(range(5)), 2, False, None, None, 0, None, False, True)))
    assert ours == ref == 2
    with pytest.raises(TypeError):
        DD.DataLoader(list(range(5)), 2, False, None, None, 0, None, False, True, 0, None, None, None, 3)


@pytest.mark.parametrize("replacement_sampler", [False, True])
def test_a_batch_size_above_the_sample_count_is_kept_when_the_sampler_draws_more(replacement_sampler):
    n, draws, bs = 100, 1000, 256
    weights = np.where(np.arange(n) < 10, 5.0, 1.0)

    def run(lib, u):
        data = u.TensorDataset(lib.arange(n))
        if replacement_sampler:
            sampler = u.RandomSampler(data, replacement=True, num_samples=draws)
        else:
            sampler = u.WeightedRandomSampler(weights, draws)
        loader = u.DataLoader(data, batch_size=bs, sampler=sampler)
        return len(loader), loader.batch_size, [len(b[0]) for b in loader]

    ref, ours = _both(run)
    assert ours == ref == (4, 256, [256, 256, 256, 232])


def test_a_batch_size_above_the_sample_count_is_reported_as_asked():
    ref, ours = _both(
        lambda lib, u: (
            u.DataLoader(list(range(10)), batch_size=16).batch_size,
            len(u.DataLoader(list(range(10)), batch_size=16)),
        )
    )
    assert ours == ref == (16, 1)
    assert DD.DataLoader((np.zeros((10, 2)), np.zeros(10)), batch_size=16).method == "full-batch gradient descent"


@pytest.mark.parametrize(
    "options", [{}, {"shuffle": True}, {"batch_size": "full"}, {"batch_size": 4, "shuffle": True, "device": "strict"}]
)
def test_writes_into_a_batch_never_reach_the_dataset(options):
    x = np.full((6, 2), 255.0, np.float32)
    kept = x.copy()
    data = DD.TensorDataset(ds.from_numpy(x))
    loader = DD.DataLoader(data, **{"batch_size": 3, **options})
    firsts = []
    for _ in range(3):
        for (xb,) in loader:
            xb /= 255.0
            firsts.append(float(xb.cpu()[0, 0]))
    assert firsts == [1.0] * len(firsts)
    np.testing.assert_array_equal(x, kept)
    arrays = (x, np.zeros(6, np.float32))
    for xb, _y in DD.DataLoader(arrays, batch_size=3):
        xb.mul_(0)
    np.testing.assert_array_equal(x, kept)


def test_batch_size_none_turns_automatic_batching_off_as_torch():
    class PreBatched:
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.full((4, 2), i, np.float32), np.full(4, i)

    def run(lib, u):
        loader = u.DataLoader(PreBatched(), batch_size=None)
        return len(loader), [(tuple(x.shape), str(x.dtype).replace("torch.", "")) for x, _y in loader]

    ref, ours = _both(run)
    assert ours == ref == (3, [((4, 2), "float32")] * 3)

    def shuffled(lib, u):
        lib.manual_seed(0)
        loader = u.DataLoader(list(range(10)), batch_size=None, shuffle=True)
        return len(loader), sorted(int(v) for v in loader), type(loader.sampler).__name__, loader.batch_sampler

    ref, ours = _both(shuffled)
    assert ours == ref == (10, list(range(10)), "RandomSampler", None)
    for u in (TD, DD):
        with pytest.raises(ValueError, match="mutually exclusive with drop_last"):
            u.DataLoader(PreBatched(), batch_size=None, drop_last=True)


def test_the_attributes_torch_code_reads():
    def run(lib, u):
        loader = u.DataLoader(u.TensorDataset(lib.arange(10.0)), batch_size=16, shuffle=True)
        plain = u.DataLoader(u.TensorDataset(lib.arange(10.0)), batch_size=4, drop_last=True)
        given = u.DataLoader(list(range(6)), batch_sampler=[[0, 1], [2]])
        unbatched = u.DataLoader(list(range(6)), batch_size=None)
        return (
            type(loader.sampler).__name__,
            isinstance(loader.sampler, u.RandomSampler),
            type(loader.batch_sampler).__name__,
            loader.batch_sampler.batch_size,
            loader.batch_sampler.drop_last,
            loader.batch_size,
            loader.collate_fn is u.default_collate,
            loader.multiprocessing_context,
            type(plain.sampler).__name__,
            plain.batch_sampler.drop_last,
            list(plain.batch_sampler),
            given.batch_size,
            given.drop_last,
            unbatched.collate_fn is u.default_convert,
        )

    ref, ours = _both(run)
    assert ours == ref


def test_a_collate_fn_set_after_the_loader_is_made_is_used():
    loader = DD.DataLoader((np.arange(6.0), np.arange(6)), batch_size=3)
    loader.collate_fn = lambda samples: len(samples)
    assert list(loader) == [3, 3]


def test_timeout_with_workers_raises_torchs_error_for_a_slow_batch():
    class Slow(DD.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            time.sleep(0.6 if i == 1 else 0.0)
            return float(i)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader = DD.DataLoader(Slow(), batch_size=1, num_workers=1, timeout=0.3)
        batches = iter(loader)
        assert next(batches).tolist() == [0.0]
        with pytest.raises(RuntimeError, match=r"DataLoader timed out after 0.3 seconds"):
            next(batches)
        fast = DD.DataLoader(Slow(), batch_size=1, num_workers=1, timeout=5)
        assert [b.tolist() for b in fast] == [[0.0], [1.0]]
    # torch's single-process iterator refuses a timeout when iterated
    for u in (TD, DD):
        loader = u.DataLoader(list(range(3)), timeout=1)
        with pytest.raises((AssertionError, ConfigError), match="timeout"):
            iter(loader)


def test_an_empty_dataset_gives_no_batch():
    ref, ours = _both(lambda lib, u: (list(u.DataLoader([], batch_size=4)), len(u.DataLoader([], batch_size=4))))
    assert ours == ref == ([], 0)
    ref, ours = _both(lambda lib, u: _values(u.DataLoader(u.TensorDataset(lib.zeros(0, 3)), batch_size=2)))
    assert ours == ref == []


def test_an_empty_batch_from_a_batch_sampler_is_refused():
    for u, lib in ((TD, torch), (DD, ds)):
        with pytest.raises(IndexError):
            list(u.DataLoader(u.TensorDataset(lib.arange(5.0)), batch_sampler=[[], [1]]))


def test_a_non_bool_drop_last_is_refused_as_torch():
    for u in (TD, DD):
        with pytest.raises(ValueError, match="drop_last should be a boolean value"):
            u.DataLoader(list(range(4)), batch_size=2, drop_last=0)


def test_batches_of_tensors_that_require_grad_keep_their_gradient():
    def run(lib, u):
        w = lib.ones(4, 2, requires_grad=True)
        (batch,) = next(iter(u.DataLoader(u.TensorDataset(w), batch_size=2, shuffle=False)))
        stacked = u.default_collate([w[1], w[3]])
        (batch.sum() * 2 + (stacked * 3).sum()).backward()
        return batch.requires_grad, stacked.requires_grad, w.grad.numpy().tolist()

    ref, ours = _both(run)
    assert ours == ref
    assert ours[2] == [[2.0, 2.0], [5.0, 5.0], [0.0, 0.0], [3.0, 3.0]]


def test_tensor_samples_keep_their_dtype_and_numpy_floats_become_float32():
    values = np.array([16777217.0, 1.0 + 1e-9])

    def run(lib, u):
        t = lib.tensor(values, dtype=lib.float64)

        class Samples(u.Dataset):
            def __len__(self):
                return 2

            def __getitem__(self, i):
                return t[i]

        a = next(iter(u.DataLoader(u.TensorDataset(t), batch_size=2)))[0]
        b = next(iter(u.DataLoader(Samples(), batch_size=2)))
        c = u.default_collate([lib.tensor([1 + 1j], dtype=lib.complex128)] * 2)
        return [str(v.dtype).replace("torch.", "") for v in (a, b, c)] + [b.tolist()]

    ref, ours = _both(run)
    assert ours == ref == ["float64", "float64", "complex128", values.tolist()]
    # NumPy floating data and Python floats follow downslope's float32 default (torch: float64)
    assert str(DD.default_collate([np.float64(1.5), np.float64(2.0)]).dtype) == "float32"
    assert str(DD.default_collate([1.5, 2.0]).dtype) == "float32"
    assert str(DD.TensorDataset(values).tensors[0].dtype) == "float32"
